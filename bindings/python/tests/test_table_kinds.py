"""Every public table function with pandas, polars and pyarrow input: the same answer, the
caller's kind of table back (or ``output=``), and bad columns reported as ``TableError`` naming
the column and the first bad row."""

from __future__ import annotations

import datetime as dt
import math
import random
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Tuple

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import userops
from userops._tables import Kind

KINDS: List[Kind] = ["arrow", "pandas", "polars"]
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 1, 3, 10, tzinfo=UTC)


def days(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def activity() -> pa.Table:
    users = ["u1", "u2", "u3", "u1", "u2", "u1", "u3", "u4"]
    return pa.table({
        "member": users,
        "at": pa.array([days(d) for d in (0, 1, 2, 31, 33, 62, 64, 65)], pa.timestamp("us", tz="UTC")),
        "step": ["view", "view", "view", "cart", "cart", "buy", "cart", "view"],
        "tier": ["a", "b", "a", "a", "b", "a", "a", "b"],
    })


def orders() -> pa.Table:
    return pa.table({
        "member": ["M1", "M1", "M2", "M3", "M2", "M1"],
        "day": pa.array([days(d) for d in (0, 10, 3, 20, 40, 45)], pa.timestamp("us", tz="UTC")),
        "amount": [120.0, 80.0, 35.5, 500.0, 60.0, 10.0],
        "cat": ["tea", "cups", "tea", "tea", "cups", "tea"],
    })


def churn_rows() -> pa.Table:
    return pa.table({
        "quiet": [1.0, 3, 20, 30, 2, 25, 4, 28, 5, 22, 7, 18],
        "orders": [5.0, 4, 1, 0, 6, 1, 3, 0, 4, 2, 3, 1],
        "churned": [0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1],
    })


def identifiers() -> pa.Table:
    return pa.table({
        "rec": ["A", "A", "B", "B", "C"],
        "id_kind": ["phone", "device_id", "device_id", "email", "openid"],
        "id_value": ["13800138000", "d1", "d1", "b@x.com", "o1"],
    })


def touches() -> pa.Table:
    return pa.table({
        "member": [1, 1, 2],
        "via": ["sms", "push", "sms"],
        "at": pa.array([T0, T0 + dt.timedelta(hours=1), T0], pa.timestamp("ms", tz="UTC")),
    })


def conversions() -> pa.Table:
    return pa.table({
        "member": [1, 2],
        "at": pa.array([T0 + dt.timedelta(hours=2)] * 2, pa.timestamp("ms", tz="UTC")),
        "paid": ["100.00", "10.00"],
    })


def as_kind(t: pa.Table, kind: str) -> Any:
    if kind == "pandas":
        return t.to_pandas()
    if kind == "polars":
        return pl.from_arrow(t)
    return t


def norm(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, Decimal):
        return v.normalize()
    return v


def rows(result: Any) -> List[Dict[str, Any]]:
    if isinstance(result, pd.DataFrame):
        if result.index.name is not None:
            result = result.reset_index()
        recs: List[Dict[str, Any]] = result.astype(object).to_dict("records")
    elif isinstance(result, pl.DataFrame):
        recs = result.to_dicts()
    else:
        assert isinstance(result, pa.Table), type(result)
        recs = result.to_pylist()
    return [{k: norm(v) for k, v in r.items()} for r in recs]


def is_kind(result: Any, kind: str) -> bool:
    return isinstance(result, {"pandas": pd.DataFrame, "polars": pl.DataFrame, "arrow": pa.Table}[kind])


Fn = Callable[[Any, Optional[Kind]], Any]

# name -> (base table, call(table, output)); every call names its columns (none are defaults).
CASES: Dict[str, Tuple[Callable[[], pa.Table], Fn]] = {
    "lifecycle": (activity, lambda t, o: userops.lifecycle(t, user="member", time="at", tz=0, output=o)),
    "active_rate_decomposition": (
        activity,
        lambda t, o: userops.active_rate_decomposition(t, user="member", time="at", tz=0, by="tier", output=o),
    ),
    "funnel": (
        activity,
        lambda t, o: userops.funnel(t, ["view", "cart", "buy"], user="member", time="at", event="step",
                                    window_seconds=90 * 86400, output=o),
    ),
    "cohort_retention": (activity, lambda t, o: userops.cohort_retention(t, user="member", time="at", tz=0, output=o)),
    "attribution": (
        touches,
        lambda t, o: userops.attribution(t, conversions(), user="member", time="at", channel="via",
                                         value="paid", output=o),
    ),
    "summary_data": (orders, lambda t, o: userops.summary_data(t, "member", "day", "amount", output=o)),
    "calibration_and_holdout": (
        orders,
        lambda t, o: userops.calibration_and_holdout(t, "member", "day", "2026-01-20", "2026-02-20", "amount", output=o),
    ),
    "rfm": (orders, lambda t, o: userops.rfm(t, "member", "day", "amount", as_of="2026-02-20", output=o)),
    "preferences": (
        orders,
        lambda t, o: userops.preferences(t, "member", "cat", datetime_col="day", weight_col="amount", output=o),
    ),
    "churn_scores": (
        churn_rows,
        lambda t, o: userops.churn_scores(t, ["quiet", "orders"], "churned", holdout=0.0, output=o)[0],
    ),
    "resolve_identities": (
        identifiers,
        lambda t, o: userops.resolve_identities(t, record_id="rec", kind="id_kind", value="id_value", output=o),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("kind", KINDS)
def test_same_answer_in_every_kind(name: str, kind: Kind) -> None:
    base, call = CASES[name]
    want = rows(call(base(), None))
    assert want, f"{name} gave an empty table"
    got = call(as_kind(base(), kind), None)
    assert is_kind(got, kind), f"{name}: {type(got)} for {kind} input"
    if name == "resolve_identities" and kind != "arrow":
        # The caller's own frame comes back with the columns added (pandas keeps its index).
        assert list(rows(got)[0])[:3] == ["rec", "id_kind", "id_value"]
    assert rows(got) == want
    for out in KINDS:
        assert is_kind(call(as_kind(base(), kind), out), out)


def test_every_table_function_is_covered() -> None:
    tables = {"lifecycle", "active_rate_decomposition", "funnel", "cohort_retention", "attribution",
              "summary_data", "calibration_and_holdout", "rfm", "preferences", "churn_scores",
              "resolve_identities"}
    assert tables <= set(userops.__all__) and tables == set(CASES)


# (case, column to break, how) -> the column and row TableError must name.
def with_null(t: pa.Table, column: str, row: int) -> pa.Table:
    values = t.column(column).to_pylist()
    values[row] = None
    return t.set_column(t.schema.get_field_index(column), column, pa.array(values, t.schema.field(column).type))


def with_column(t: pa.Table, column: str, values: Any) -> pa.Table:
    return t.set_column(t.schema.get_field_index(column), column, pa.array(values))


BAD: List[Tuple[str, str, Callable[[pa.Table], pa.Table], Optional[int]]] = [
    ("lifecycle", "member", lambda t: t.drop_columns(["member"]), None),
    ("lifecycle", "member", lambda t: with_null(t, "member", 3), 3),
    ("lifecycle", "at", lambda t: with_null(t, "at", 5), 5),
    ("lifecycle", "at", lambda t: with_column(t, "at", list(range(t.num_rows))), None),
    ("active_rate_decomposition", "tier", lambda t: with_null(t, "tier", 2), 2),
    ("funnel", "step", lambda t: with_null(t, "step", 4), 4),
    ("funnel", "step", lambda t: with_column(t, "step", [[1]] * t.num_rows), None),
    ("cohort_retention", "at", lambda t: t.drop_columns(["at"]), None),
    ("attribution", "via", lambda t: with_null(t, "via", 1), 1),
    ("summary_data", "amount", lambda t: with_null(t, "amount", 4), 4),
    ("summary_data", "day", lambda t: with_column(t, "day", [True] * t.num_rows), None),
    ("rfm", "member", lambda t: with_null(t, "member", 0), 0),
    ("rfm", "amount", lambda t: with_column(t, "amount", ["x"] * t.num_rows), None),
    ("preferences", "day", lambda t: with_null(t, "day", 2), 2),
    ("churn_scores", "churned", lambda t: with_column(t, "churned", [0, 1, 2] * 4), 2),
    ("churn_scores", "quiet", lambda t: with_null(t, "quiet", 7), 7),
    ("resolve_identities", "id_value", lambda t: with_null(t, "id_value", 3), 3),
    ("resolve_identities", "rec", lambda t: t.drop_columns(["rec"]), None),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", range(len(BAD)))
def test_bad_columns_name_column_and_row(case: int, kind: str) -> None:
    name, column, breaker, row = BAD[case]
    base, call = CASES[name]
    broken = breaker(base())
    if kind == "polars" and any(pa.types.is_list(f.type) for f in broken.schema):
        pytest.skip("the list column stays a list in polars too; checked with arrow and pandas")
    with pytest.raises(userops.TableError) as e:
        call(as_kind(broken, kind), None)
    assert isinstance(e.value, userops.UserOpsError)
    assert e.value.column == column, str(e.value)
    assert e.value.row == row, str(e.value)
    assert "panicked" not in str(e.value)


def test_attribution_refuses_float_money() -> None:
    with pytest.raises(userops.TableError) as e:
        userops.attribution(touches(), with_column(conversions(), "paid", [1.5, 2.0]), user="member",
                            time="at", channel="via", value="paid")
    assert e.value.column == "paid" and "money" in str(e.value)


def test_core_refusals_keep_their_class() -> None:
    with pytest.raises(userops.InvalidArgument) as e:
        userops.lifecycle(activity(), user="member", time="at", period="year")
    assert e.value.field == "period" and not isinstance(e.value, userops.TableError)
    with pytest.raises(userops.InvalidArgument) as f:
        userops.funnel(activity(), ["view", "nope"], user="member", time="at", event="step")
    assert "nope" in str(f.value)


ARRAYS: Dict[str, Callable[[List[float]], Any]] = {
    "list": lambda x: x,
    "numpy": lambda x: pd.Series(x).to_numpy(),
    "pandas": lambda x: pd.Series(x),
    "polars": lambda x: pl.Series(x),
    "arrow": lambda x: pa.array(x),
}


@pytest.mark.parametrize("kind", sorted(ARRAYS))
def test_models_take_every_array_kind(kind: str) -> None:
    # Simulated BG/NBD customers over 52 weeks and their spend (as in the models' doctests).
    rng = random.Random(3)
    f, r, T, m = [], [], [], []
    for _ in range(500):
        lam, p, t, x, last = rng.gammavariate(2, 0.1), rng.betavariate(1, 3), 0.0, 0, 0.0
        while True:
            t += rng.expovariate(lam)
            if t > 52:
                break
            x, last = x + 1, t
            if rng.random() < p:
                break
        f.append(float(x)); r.append(last); T.append(52.0)
        m.append(rng.gammavariate(3.0, 10.0) if x else 0.0)
    conv = ARRAYS[kind]
    bg = userops.BetaGeo().fit(conv(f), conv(r), conv(T))
    ref = userops.BetaGeo().fit(f, r, T)
    assert bg.params == ref.params
    alive = bg.p_alive(conv(f), conv(r), conv(T))
    want_type = {"list": type(pd.Series([1.0]).to_numpy()), "numpy": type(pd.Series([1.0]).to_numpy()),
                 "pandas": pd.Series, "polars": pl.Series, "arrow": pa.Array}[kind]
    assert isinstance(alive, want_type), type(alive)
    assert [round(float(x), 12) for x in alive] == [round(float(x), 12) for x in ref.p_alive(f, r, T)]
    repeat = [i for i, x in enumerate(f) if x > 0]
    gg = userops.GammaGamma().fit(conv([f[i] for i in repeat]), conv([m[i] for i in repeat]))
    assert gg.params == userops.GammaGamma().fit([f[i] for i in repeat], [m[i] for i in repeat]).params
    with pytest.raises(userops.TableError) as e:
        userops.BetaGeo().fit(conv(f[:-1] + [float("nan")]), conv(r), conv(T))
    assert e.value.column == "frequency" and e.value.row == len(f) - 1


@pytest.mark.parametrize("kind", KINDS)
def test_set_tags_typed_from_arrow(kind: str) -> None:
    t = pa.table({
        "uid": ["M1", "M2", "M3"],
        "vip": [True, False, None],
        "spend": [Decimal("10.50"), Decimal("250"), Decimal("900")],
        "tier": pa.array(["gold", "silver", "gold"]).dictionary_encode(),
        "joined": pa.array([T0, T0 + dt.timedelta(days=40), None], pa.timestamp("ms", tz="UTC")),
    })
    e = userops.Engine()
    out = e.set_tags(as_kind(t, kind), user="uid", kind="member_no", now=days(50))
    assert (out["rows"], out["created"], sorted(out["tags"])) == (3, 3, ["joined", "spend", "tier", "vip"]), out
    types = {d["name"]: d["type"] for d in e.tags()}
    assert types == {"vip": "bool", "spend": "number", "tier": "enum", "joined": "date"}
    assert len(e.audience('tier = "gold" AND spend > 100', now=days(50))) == 1
    assert len(e.audience("joined >= now - 30d", now=days(50))) == 1
    with pytest.raises(userops.TableError) as bad:
        e.set_tags(as_kind(with_null(t, "uid", 1), kind), user="uid")
    assert (bad.value.column, bad.value.row) == ("uid", 1)
    with pytest.raises(userops.TableError) as missing:
        e.set_tags(as_kind(t, kind), user="member")
    assert missing.value.column == "member"


@pytest.mark.parametrize("kind", KINDS)
def test_engine_rows_as_tables(kind: Kind) -> None:
    e = userops.Engine()
    e.create_program({"id": "brand-a", "level": "brand"})
    e.earn(("member_no", "M1"), "brand-a", 100, "o1", time=T0)
    e.spend(("member_no", "M1"), "brand-a", 30, "s1", time=days(1))
    st = e.statement(("member_no", "M1"), "brand-a", output=kind)
    assert is_kind(st, kind)
    want = e.call("statement", user={"kind": "member_no", "value": "M1"}, program="brand-a")
    got = rows(st)
    assert [(r["kind"], r["amount"], r["balance"], r["pending"]) for r in got] == [
        (w["kind"], w["amount"], w["balance"], w["pending"]) for w in want
    ]
    assert pa.table(st).schema.field("time").type == pa.timestamp("ms", tz="UTC")
    with pytest.raises(userops.InvalidArgument):
        e.statement(("member_no", "M1"), "brand-a", output="excel")  # type: ignore[arg-type]
    e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
    e.add_rule({"id": "wb", "trigger": {"type": "inactive", "days": 30},
                "actions": [{"type": "touch", "channel": "sms", "content": "hi"}]})
    e.ingest({"kind": "activity", "key": "a1", "time": "2026-01-01T10:00:00+08:00", "type": "login",
              "source": {"platform": "app", "program": "p"}, "user": {"kind": "member_no", "value": "M1"}})
    plan = e.run_automation("2026-03-01T10:00:00+08:00", output=kind)
    assert is_kind(plan, kind) and [(r["user"], r["rule"]) for r in rows(plan)] == [(1, "wb")]
    with pytest.raises(userops.NotFound):
        e.statement(("member_no", "NOBODY"), "nope", output=kind)


def test_pandas_integer_ids_with_a_gap_report_the_row() -> None:
    df = pd.DataFrame({"user": [1, 2, None, 4], "time": pd.to_datetime(["2026-01-05"] * 4).tz_localize("UTC")})
    assert df["user"].dtype == "float64"  # pandas' missing integer
    with pytest.raises(userops.TableError) as e:
        userops.lifecycle(df)
    assert (e.value.column, e.value.row) == ("user", 2)
    ok = userops.lifecycle(df.dropna())
    assert sorted(ok["user"].tolist()) == [1, 2, 4]


def _people(x: pa.Table) -> List[List[int]]:
    groups: Dict[int, List[int]] = {}
    for i, o in enumerate(x.column("oneid").to_pylist()):
        if o is not None:
            groups.setdefault(o, []).append(i)
    return sorted(groups.values())


def _own(i: int) -> Tuple[str, str]:
    """Record i's own identifier: a phone for even i, an email for odd i (one of each per person)."""
    return ("phone", f"138{i:08d}") if i % 2 == 0 else ("email", f"u{i}@x.com")


def _pairs(records: int) -> pa.Table:
    """Record i: its own identifier and a device shared with record i ^ 1 (persons of two records)."""
    rec = [f"r{i}" for i in range(records) for _ in range(2)]
    kind = [k for i in range(records) for k in (_own(i)[0], "device_id")]
    value = [v for i in range(records) for v in (_own(i)[1], f"d{i // 2}")]
    return pa.table({"record_id": rec, "kind": kind, "value": value})


def test_resolve_progress_counts_rows_and_changes_nothing() -> None:
    t = _pairs(100_000)
    n = t.num_rows
    seen: List[Tuple[int, int]] = []
    reported = userops.resolve_identities(t, progress=lambda d, total: seen.append((d, total)))
    assert len(seen) >= 3 and seen[-1] == (n, n) and all(total == n for _, total in seen)
    assert all(a[0] < b[0] for a, b in zip(seen, seen[1:]))
    assert reported.equals(userops.resolve_identities(t, progress=False))
    assert len(_people(reported)) == 50_000


def test_a_resolve_stopped_by_its_callback_keeps_the_records_before_the_stop() -> None:
    t = _pairs(100_000)
    g = userops.IdentityGraph()
    calls: List[int] = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise RuntimeError("enough")

    with pytest.raises(RuntimeError, match="enough"):
        userops.resolve_identities(t, graph=g, progress=stop)
    assert len(calls) == 2 and 0 < calls[1] < t.num_rows
    linked = calls[1] // 2  # two rows per record, records in order
    assert g.resolve(_own(0)) is not None
    assert g.resolve(_own(linked - 1)) is not None
    assert g.resolve(_own(linked)) is None
    assert g.resolve(_own(99_999)) is None
    # The rest goes in on a second call: the same people as in one call.
    again = userops.resolve_identities(t, graph=g, progress=False)
    assert _people(again) == _people(userops.resolve_identities(t, progress=False))


def test_resolve_reads_a_table_of_many_chunks_in_place() -> None:
    # Uneven chunks, some empty, some smaller and some larger than the 4,096-row directory
    # step; large strings in one variant, a null source in a late chunk.
    t = _pairs(20_000).append_column("source", pa.array(["app"] * 40_000))
    whole = userops.resolve_identities(t, progress=False)
    assert len(_people(whole)) == 10_000
    cuts = [0, 1, 1, 4095, 4097, 9000, 9001, 21_000, 40_000]
    for large in (False, True):
        batches = [t.slice(a, b - a).to_batches() for a, b in zip(cuts, cuts[1:])]
        chunked = pa.Table.from_batches([b for bs in batches for b in bs], schema=t.schema)
        if large:
            chunked = chunked.cast(pa.schema([pa.field(f.name, pa.large_string()) for f in t.schema]))
        assert chunked.column("kind").num_chunks >= 6
        got = userops.resolve_identities(chunked, progress=False)
        for column in ("oneid", "reject_reason"):
            assert got.column(column).to_pylist() == whole.column(column).to_pylist()
    sources = t.column("source").to_pylist()
    sources[30_001] = None
    with_null_source = t.set_column(3, "source", pa.array(sources))
    assert len(_people(userops.resolve_identities(with_null_source, progress=False))) == 10_000
    values = t.column("value").to_pylist()
    values[30_001] = None
    chunked = pa.Table.from_batches(
        t.set_column(2, "value", pa.array(values)).to_batches(max_chunksize=7_000)
    )
    with pytest.raises(userops.TableError) as e:
        userops.resolve_identities(chunked, progress=False)
    assert (e.value.column, e.value.row) == ("value", 30_001)
