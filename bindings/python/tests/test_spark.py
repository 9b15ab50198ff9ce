"""userops.spark against userops on one machine, on the same rows (local Spark, ``local[2]``).

Each test builds its data with numpy, hands it to Spark, takes Spark's own Arrow copy back
(``toArrow``: the same rows in the same order, timestamps in the session zone) and compares the
Spark answer with the one-machine answer on that copy. A naive per-partition call is shown to
differ on the same data, so the equality tests can fail.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Dict, List, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import userops
import userops.spark as us

RULES: Dict[str, Any] = {
    "caps": {"phone": 1, "email": 1, "device_id": 3},
    "junk_threshold": 40,
    "blocklist": [{"kind": "phone", "value": "13800000000"}],
}


def identifier_rows(records: int, seed: int = 7) -> pa.Table:
    """``records`` records of 1-4 identifiers of about records/3 persons: own phones, emails and
    member numbers, family devices shared by 2-6 persons (cap conflicts and merges), store
    tablets shared by hundreds (junk), a blocklisted phone, invalid values, records with two
    phones (cap conflicts), the rows of a record not always together."""
    rng = np.random.default_rng(seed)
    persons = records // 3
    fam = rng.integers(0, persons // 4, persons)
    rid: List[str] = []
    kind: List[str] = []
    value: List[str] = []
    src: List[str] = []
    for r in range(records):
        p = int(rng.integers(0, persons))
        n = int(rng.integers(1, 5))
        for _ in range(n):
            x = rng.random()
            if x < 0.35:
                k, v = "phone", f"139{p:08d}"
            elif x < 0.5:
                k, v = "email", f"U{p}@Example.com "
            elif x < 0.62:
                k, v = "member_no", f"M{p}"
            elif x < 0.8:
                k, v = "device_id", f"fam-{fam[p]}"
            elif x < 0.84:
                k, v = "device_id", f"store-{int(rng.integers(0, 5))}"
            elif x < 0.86:
                k, v = "phone", f"137{int(rng.integers(0, persons)):08d}"  # a second phone
            elif x < 0.87:
                k, v = "phone", "13800000000"
            elif x < 0.88:
                k, v = "email", "not-an-email"
            elif x < 0.885:
                k, v = "fax", "123"
            else:
                k, v = "openid", f"o{p}"
            rid.append(f"r{r}")
            kind.append(k)
            value.append(v)
            src.append(f"app{p % 3}")
    order = np.arange(len(rid))
    # Move one row in twenty ahead, so some records' rows are apart.
    moved = order[rng.random(len(order)) < 0.05]
    order = np.concatenate([moved, np.setdiff1d(order, moved)])
    t = pa.table({"record_id": rid, "kind": kind, "value": value, "source": src})
    return t.take(pa.array(order))


def person_labels(oneids: Any) -> np.ndarray:
    """Each row's person as the index of the person's first row (-1 when rejected): equal
    labels for equal persons, whatever numbers name them."""
    ids = pa.array(oneids).to_pylist()
    first: Dict[Any, int] = {}
    out = np.full(len(ids), -1, dtype=np.int64)
    for i, o in enumerate(ids):
        if o is not None:
            out[i] = first.setdefault(o, i)
    return out


def by_row(df: Any) -> pa.Table:
    """A resolve_identities result as Arrow, in row order."""
    t = df.toArrow()
    return t.sort_by([("__row", "ascending")]) if "__row" in t.column_names else t.take(
        pc.sort_indices(pc.struct_field(t.column("oneid_state"), "row"))
    )


@pytest.fixture(scope="module")
def ids(spark: Any) -> Tuple[Any, pa.Table]:
    table = identifier_rows(110_000)
    df = spark.createDataFrame(table.to_pandas()).repartition(3).cache()
    return df, df.toArrow()


def test_identity_equals_one_machine(ids: Tuple[Any, pa.Table]) -> None:
    df, arrow = ids
    assert arrow.num_rows > 250_000 and len(set(arrow.column("record_id").to_pylist())) >= 100_000
    stats: Dict[str, Any] = {}
    got = by_row(us.resolve_identities(df, RULES, stats=stats))
    want = userops.resolve_identities(arrow, RULES, output="arrow")
    assert got.num_rows == arrow.num_rows
    # Row positions follow the DataFrame's order, which is the one-machine table's order.
    assert got.column("record_id").equals(arrow.column("record_id"))
    assert got.column("value").equals(arrow.column("value"))
    assert got.column("reject_reason").to_pylist() == want.column("reject_reason").to_pylist()
    assert (person_labels(got.column("oneid")) == person_labels(want.column("oneid"))).all()
    # The data exercises every rule: conflicts split components, junk and blocklist reject.
    reasons = set(r for r in want.column("reject_reason").to_pylist() if r)
    assert any("blocklist" in r for r in reasons) and any("invalid" in r for r in reasons)
    g = userops.IdentityGraph(RULES)
    userops.resolve_identities(arrow, graph=g, output="arrow")
    kinds = {c["reason"]["type"] for c in g.conflicts()}
    assert {"cap", "junk"} <= kinds, kinds
    # A person's OneID is 1 + the row position of its first row.
    state = got.column("oneid_state").combine_chunks()
    rows = np.asarray(state.field("row"))
    oneid = got.column("oneid").to_numpy(zero_copy_only=False)
    labels = person_labels(got.column("oneid"))
    ok = labels >= 0
    assert (oneid[ok] == rows[labels[ok]] + 1).all()
    assert stats["iterations"] >= 2


def test_identity_per_partition_is_wrong(ids: Tuple[Any, pa.Table]) -> None:
    """What the equality test guards against: the core called per partition (records cut
    apart from their identifiers' other records) gives other persons."""
    df, arrow = ids
    schema = "record_id string, kind string, value string, source string, oneid long, pos long"

    def part(batches: Any) -> Any:
        t = pa.Table.from_batches(list(batches))
        if t.num_rows:
            out = userops.resolve_identities(t.select(["record_id", "kind", "value", "source"]), RULES, output="arrow")
            # Persons apart in two partitions must not share a number.
            from pyspark import TaskContext

            ctx = TaskContext.get()
            base = ((ctx.partitionId() if ctx is not None else 0) + 1) << 40
            yield from pa.table({
                "record_id": t.column("record_id"), "kind": t.column("kind"), "value": t.column("value"),
                "source": t.column("source"), "oneid": pc.add(out.column("oneid").cast(pa.int64()), base),
                "pos": t.column("pos"),
            }).to_batches()

    from pyspark.sql import functions as F

    naive = (df.withColumn("pos", F.monotonically_increasing_id()).mapInArrow(part, schema).toArrow())
    naive = naive.sort_by([("pos", "ascending")])
    want = userops.resolve_identities(arrow, RULES, output="arrow")
    differ = (person_labels(naive.column("oneid")) != person_labels(want.column("oneid"))).mean()
    assert differ > 0.01, differ


def test_identity_incremental(spark: Any) -> None:
    table = identifier_rows(30_000, seed=11)
    n1 = int(table.num_rows * 0.7)
    day1 = spark.createDataFrame(table.slice(0, n1).to_pandas()).repartition(2)
    day2 = spark.createDataFrame(table.slice(n1).to_pandas()).repartition(2)
    r1 = us.resolve_identities(day1, RULES).cache()
    r2 = us.resolve_identities(day2, RULES, previous=r1)
    a1, a2 = by_row(r1), by_row(r2)
    assert a2.num_rows == table.num_rows
    # One machine: the same two batches, one after the other, into one graph.
    g = userops.IdentityGraph(RULES)
    old_rows = a1.select(["record_id", "kind", "value", "source"])
    userops.resolve_identities(old_rows, graph=g, output="arrow")
    new_rows = a2.slice(n1).select(["record_id", "kind", "value", "source"])
    want_new = userops.resolve_identities(new_rows, graph=g, output="arrow")
    # The old rows' persons after the second batch: the person of the identifier they hold.
    cache: Dict[Tuple[str, str], Any] = {}
    want_old: List[Any] = []
    for k, v, rej in zip(old_rows.column("kind").to_pylist(), old_rows.column("value").to_pylist(),
                         a1.column("reject_reason").to_pylist()):
        if rej is not None:
            want_old.append(None)
            continue
        if (k, v) not in cache:
            cache[(k, v)] = g.resolve((k, v))
        want_old.append(cache[(k, v)])
    want = want_old + want_new.column("oneid").to_pylist()
    assert a2.column("value").to_pylist() == old_rows.column("value").to_pylist() + new_rows.column("value").to_pylist()
    assert (person_labels(a2.column("oneid")) == person_labels(pa.array(want, pa.uint64()))).all()
    assert a2.column("reject_reason").to_pylist()[n1:] == want_new.column("reject_reason").to_pylist()
    # OneIDs: an old person keeps its number unless it merged; a merged one takes the smallest.
    before = a1.column("oneid").to_pylist()
    after = a2.column("oneid").to_pylist()[:n1]
    merged_into: Dict[int, set[int]] = {}
    for b, a in zip(before, after):
        if b is not None:
            merged_into.setdefault(a, set()).add(b)
    assert all(a == min(bs) for a, bs in merged_into.items())
    kept = sum(1 for a, bs in merged_into.items() if bs == {a})
    assert kept > 0.5 * len(merged_into) and any(len(bs) > 1 for bs in merged_into.values())
    # New persons are numbered after the old rows: 1 + the position of their first row.
    new_only = set(a2.column("oneid").to_pylist()[n1:]) - set(after) - {None}
    old_last = max(pc.struct_field(a1.column("oneid_state"), "row").to_pylist())
    assert new_only and min(new_only) > old_last + 1


def test_identity_giant_component_warns_and_refuses(spark: Any) -> None:
    rows = [(f"r{i}", "device_id", "hub-tablet") for i in range(300)] + [
        (f"r{i}", "phone", f"139{i:08d}") for i in range(300)
    ]
    df = spark.createDataFrame(rows, "record_id string, kind string, value string")
    with pytest.warns(us.GiantComponentWarning, match="hub-tablet"):
        us.resolve_identities(df, {"junk_threshold": None}, warn_component_rows=500).count()
    with pytest.raises(userops.InvalidArgument, match="hub-tablet"):
        us.resolve_identities(df, {"junk_threshold": None}, warn_component_rows=100, max_component_rows=500)


def test_identity_bad_columns(spark: Any) -> None:
    df = spark.createDataFrame([("r1", "phone", 1.5)], "record_id string, kind string, value double")
    with pytest.raises(userops.TableError, match="value"):
        us.resolve_identities(df)
    with pytest.raises(userops.TableError, match="nope"):
        us.resolve_identities(df, record_id="nope")
    with pytest.raises(userops.InvalidArgument):
        us.resolve_identities(df.withColumn("value", df["value"].cast("string")), {"caps": {"phone": 0}})


# ---------------------------------------------------------------- models


def orders(n: int, customers: int, seed: int = 1) -> pa.Table:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, customers, n)
    days = rng.integers(0, 365, n)
    base = np.datetime64("2025-01-01T00:00:00")
    stamps = base + days.astype("timedelta64[D]") + rng.integers(0, 86_400, n).astype("timedelta64[s]")
    return pa.table({
        "member": pa.array([f"M{u}" for u in users]),
        "day": pa.array(stamps.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC")),
        # Cents, plus ties: a tenth of the orders cost exactly 19.99.
        "amount": pa.array(np.where(rng.random(n) < 0.1, 19.99, np.round(rng.gamma(2, 50, n), 2))),
    })


@pytest.fixture(scope="module")
def order_df(spark: Any) -> Tuple[Any, pa.Table]:
    df = spark.createDataFrame(orders(200_000, 20_000).to_pandas()).repartition(4, "member").cache()
    return df, df.toArrow()


AS_OF = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("split", ["mean", "median"])
def test_rfm_equals_one_machine(order_df: Tuple[Any, pa.Table], split: str) -> None:
    df, arrow = order_df
    got = us.rfm(df, "member", "day", "amount", as_of=AS_OF, split=split).toArrow().sort_by("member")
    want = userops.rfm(arrow, "member", "day", "amount", as_of=AS_OF, split=split, output="arrow", progress=False)
    want = want.sort_by("member")
    assert got.num_rows == want.num_rows > 19_900
    for c in want.column_names:
        assert got.column(c).to_pylist() == want.column(c).to_pylist(), c
    assert len(set(want.column("segment").to_pylist())) == 8


def test_rfm_per_partition_is_wrong(order_df: Tuple[Any, pa.Table]) -> None:
    """The issue's experiment: rfm per partition scores against the partition, not everyone."""
    df, arrow = order_df
    out_schema = "member string, recency long, frequency long, monetary double, r_score long, f_score long, m_score long, segment string"

    def part(batches: Any) -> Any:
        t = pa.Table.from_batches(list(batches))
        if t.num_rows:
            yield from userops.rfm(t, "member", "day", "amount", as_of=AS_OF, output="arrow", progress=False).to_batches()

    got = df.mapInArrow(part, out_schema).toArrow().sort_by("member")
    want = userops.rfm(arrow, "member", "day", "amount", as_of=AS_OF, output="arrow", progress=False).sort_by("member")
    same = np.mean(np.array(got.column("segment").to_pylist()) == np.array(want.column("segment").to_pylist()))
    assert same < 0.995, same


def buyers(customers: int, seed: int = 2) -> pa.Table:
    """Orders of customers who buy at their own rate until they drop out (the BG/NBD story):
    rates ~ Gamma(0.8, 1/25 per day), drop-out after each order with p ~ Beta(1, 4)."""
    rng = np.random.default_rng(seed)
    cust: List[str] = []
    day: List[float] = []
    amount: List[float] = []
    for c in range(customers):
        lam, p, t = rng.gamma(0.8, 1 / 25), rng.beta(1, 4), float(rng.uniform(0, 200))
        scale = rng.gamma(4, 15)
        while t < 365:
            cust.append(f"C{c}")
            day.append(t)
            amount.append(round(float(rng.gamma(3, scale / 3)), 2))
            if rng.random() < p:
                break
            t += rng.exponential(1 / lam)
    base = np.datetime64("2025-01-01T00:00:00", "s")
    stamps = base + (np.array(day) * 86_400).astype("timedelta64[s]")
    return pa.table({
        "member": cust,
        "day": pa.array(stamps.astype("datetime64[us]")).cast(pa.timestamp("us", tz="UTC")),
        "amount": pa.array(amount),
    })


def test_summary_fit_and_predictions_equal_one_machine(spark: Any) -> None:
    df = spark.createDataFrame(buyers(20_000).to_pandas()).repartition(4).cache()
    arrow = df.toArrow()
    got = us.summary_data(df, "member", "day", "amount").toArrow().sort_by("member")
    want = userops.summary_data(arrow, "member", "day", "amount", output="arrow").sort_by("member")
    for c in want.column_names:
        assert got.column(c).to_pylist() == want.column(c).to_pylist(), c
    sdf = df.sparkSession.createDataFrame(got.to_pandas())
    bg = us.fit_beta_geo(sdf)
    one = userops.BetaGeo().fit(want["frequency"], want["recency"], want["T"])
    for k, v in one.params.items():
        assert math.isclose(bg.params[k], v, rel_tol=1e-6), (k, bg.params[k], v)
    assert math.isclose(bg.log_likelihood, one.log_likelihood, rel_tol=1e-9)
    rep = want.filter(pc.greater(want["frequency"], 0))
    gg = us.fit_gamma_gamma(sdf)
    gg1 = userops.GammaGamma().fit(rep["frequency"], rep["monetary_value"])
    for k, v in gg1.params.items():
        assert math.isclose(gg.params[k], v, rel_tol=1e-6), (k, gg.params[k], v)
    # Churn risk and predictions in the executors, with the one-machine model's formulas.
    risk = us.churn_risk(sdf, bg, 0.3, 0.7).toArrow().sort_by("member")
    p = bg.p_alive(want["frequency"], want["recency"], want["T"])
    assert risk.column("p_alive").to_pylist() == p.to_pylist()
    bands = ["low" if 1 - x < 0.3 else "high" if 1 - x >= 0.7 else "mid" for x in p.to_pylist()]
    assert risk.column("risk").to_pylist() == bands and len(set(bands)) == 3
    pred = us.predict(sdf, bg, 30, gg).toArrow().sort_by("member")
    exp = bg.expected_purchases(pa.array([30.0] * want.num_rows), want["frequency"], want["recency"], want["T"])
    assert pred.column("expected_purchases").to_pylist() == exp.to_pylist()
    clv = gg.customer_lifetime_value(bg, want["frequency"], want["recency"], want["T"], want["monetary_value"])
    assert pred.column("clv").to_pylist() == clv.to_pylist()


def activity(users: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    reg_day = rng.integers(0, 330, users)
    rows_u: List[int] = []
    rows_t: List[int] = []
    for u in range(users):
        k = int(rng.integers(1, 15))
        days = reg_day[u] + np.sort(rng.integers(0, 365 - reg_day[u], k))
        rows_u += [u] * k
        rows_t += days.tolist()
    base = np.datetime64("2025-01-01T00:00:00", "s")
    t = base + np.array(rows_t).astype("timedelta64[D]") + np.array(rows_u).astype("timedelta64[s]")
    reg = base + reg_day[np.array(rows_u)].astype("timedelta64[D]")
    utc = pa.timestamp("us", tz="UTC")
    return pa.table({
        "user": pa.array(rows_u, pa.int64()),
        "time": pa.array(t.astype("datetime64[us]")).cast(utc),
        "registered": pa.array(reg.astype("datetime64[us]")).cast(utc),
        "city": pa.array([["bj", "sh", "gz"][u % 3] for u in rows_u]),
    })


@pytest.fixture(scope="module")
def acts(spark: Any) -> Tuple[Any, pa.Table]:
    df = spark.createDataFrame(activity(12_000).to_pandas()).repartition(4).cache()
    return df, df.toArrow()


def test_lifecycle_equals_one_machine(acts: Tuple[Any, pa.Table]) -> None:
    df, arrow = acts
    assert arrow.num_rows > 80_000
    got = us.lifecycle(df, registered="registered").toArrow().sort_by([("user", "ascending"), ("period", "ascending")])
    want = userops.lifecycle(arrow, registered="registered", output="arrow", progress=False)
    want = pa.table({c: want.column(c).cast(got.schema.field(c).type) for c in want.column_names})
    want = want.sort_by([("user", "ascending"), ("period", "ascending")])
    assert got.num_rows == want.num_rows
    for c in want.column_names:
        assert got.column(c).to_pylist() == want.column(c).to_pylist(), c


@pytest.mark.parametrize("by", [None, "city"])
def test_active_rate_decomposition_equals_one_machine(acts: Tuple[Any, pa.Table], by: Any) -> None:
    df, arrow = acts
    got = us.active_rate_decomposition(df, registered="registered", by=by, buckets=5).toArrow()
    want = userops.active_rate_decomposition(arrow, registered="registered", by=by, output="arrow", progress=False)
    assert got.column_names == want.column_names
    assert got.num_rows == want.num_rows
    for c in want.column_names:
        assert got.column(c).to_pylist() == want.column(c).to_pylist(), c


def test_audiences_equal_one_engine(spark: Any) -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    users = [f"M{i}" for i in rng.integers(0, 18_000, n)]  # some users twice: the later row wins
    prof = pa.table({
        "user_id": users,
        "vip": pa.array(rng.random(n) < 0.2),
        "spend": pa.array(np.round(rng.gamma(2, 100, n), 2)),
        "city": pa.array(rng.choice(["bj", "sh", "gz"], n)),
    })
    df = spark.createDataFrame(prof.to_pandas()).repartition(3)
    arrow = df.toArrow()
    now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    exprs = {"big": "spend >= 300", "target": 'in_audience("big") AND (vip OR city = "bj")'}
    got = us.audiences(df, exprs, now=now).toArrow()
    e = userops.Engine()
    e.set_tags(arrow, now=now)
    for name, ex in exprs.items():
        e.save_audience(name, ex, now=now)
        members = {r["value"] for r in e.export_audience(name, "member_no")["rows"]}
        have = {u for u, m in zip(got.column("user_id").to_pylist(), got.column(name).to_pylist()) if m}
        assert have == members and 100 < len(members) < n, name


def test_readme_on_spark_example_runs(spark: Any) -> None:
    """The README's "On Spark" example runs as written (it finds this session)."""
    import pathlib

    readme = (pathlib.Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("## On Spark", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    scope: Dict[str, Any] = {}
    exec(compile(block, "README.md (On Spark)", "exec"), scope)
    day2 = {(r.record_id, r.value): r.oneid for r in scope["day2"].collect()}
    assert day2[("D", "li@example.com")] == day2[("A", "13800138000")] == 1
    assert {r.member for r in scope["summary"].collect()} == {"M1", "M2"}
