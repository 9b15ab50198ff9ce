"""`Engine.ingest_table`: batch ingest from pandas, polars and pyarrow."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import userops

SOURCE = {"platform": "app", "program": "brand-a"}
KINDS = ["pandas", "polars", "arrow"]


def rows(n: int = 60) -> List[Dict[str, Any]]:
    """Mixed events as flat table rows: identify, register, activity and order."""
    out: List[Dict[str, Any]] = []
    for i in range(n):
        t = f"2026-01-{1 + i % 28:02d}T10:00:00+08:00"
        m = f"M{i % 17}"
        base: Dict[str, Any] = {"key": f"k{i}", "time": t, "member_no": m}
        if i % 4 == 0:
            out.append(dict(base, kind="identify", phone=f"1380013{i % 23:04d}"))
        elif i % 4 == 1:
            out.append(dict(base, kind="register"))
        elif i % 4 == 2:
            out.append(dict(base, kind="activity", type="login"))
        else:
            out.append(dict(base, kind="order", order_id=f"o{i}", amount=f"{i}.50", channel="app"))
    return out


def as_event(row: Dict[str, Any]) -> Dict[str, Any]:
    """The wire-shape event the table row stands for (SPEC §2)."""
    ev: Dict[str, Any] = {"kind": row["kind"], "key": row["key"], "time": row["time"], "source": SOURCE}
    if row["kind"] == "identify":
        ev["ids"] = [{"kind": "phone", "value": row["phone"]}, {"kind": "member_no", "value": row["member_no"]}]
    else:
        ev["user"] = {"kind": "member_no", "value": row["member_no"]}
    for f in ("type", "order_id", "amount", "channel"):
        if row.get(f) is not None:
            ev[f] = row[f]
    return ev


def make(kind: str, data: List[Dict[str, Any]]) -> Any:
    names = list(dict.fromkeys(k for r in data for k in r))  # every key, in first-seen order
    arrow = pa.table({k: [r.get(k) for r in data] for k in names})
    if kind == "pandas":
        return arrow.to_pandas()
    if kind == "polars":
        return pl.from_arrow(arrow)
    return arrow


def records(table: Any) -> List[Dict[str, Any]]:
    """Receipts as a list of dicts, whatever the kind, with missing values as None."""
    arrow, _ = userops._tables.to_arrow(table)
    result: List[Dict[str, Any]] = arrow.to_pylist()
    return result


@pytest.mark.parametrize("kind", KINDS)
def test_table_equals_one_by_one(kind: str) -> None:
    data = rows()
    one = userops.Engine()
    expected = [one.ingest(as_event(r)) for r in data]
    batch = userops.Engine()
    receipts = batch.ingest_table(make(kind, data), values=SOURCE, chunk_size=7)
    assert userops._tables.kind_of(receipts) == kind
    got = records(receipts)
    assert [r["row"] for r in got] == list(range(len(data)))
    for g, e in zip(got, expected):
        assert (g["key"], g["kind"], g["seq"], g["oneid"], g["duplicate"]) == (
            e["key"], e["kind"], e["seq"], e["oneid"], e["duplicate"]
        )
        assert list(g["absorbed"]) == e["absorbed"]
        assert g["error"] is None and g["error_code"] is None
    assert batch.stats() == one.stats()
    for r in data:
        assert batch.resolve(("member_no", r["member_no"])) == one.resolve(("member_no", r["member_no"]))


@pytest.mark.parametrize("kind", KINDS)
def test_output_kind_and_replay(kind: str) -> None:
    e = userops.Engine()
    table = make(kind, rows(8))
    e.ingest_table(table, values=SOURCE)
    before = e.stats()
    outputs: List[userops._tables.Kind] = ["pandas", "polars", "arrow"]
    for output in outputs:
        again = e.ingest_table(table, values=SOURCE, output=output)
        assert userops._tables.kind_of(again) == output
        assert all(r["duplicate"] for r in records(again))
    assert e.stats() == before


@pytest.mark.parametrize("kind", KINDS)
def test_bad_value_raises_with_row_and_column_and_changes_nothing(kind: str) -> None:
    e = userops.Engine()
    data = rows(30)
    data[24]["phone"] = "12"
    with pytest.raises(userops.InvalidEvent) as info:
        e.ingest_table(make(kind, data), values=SOURCE, chunk_size=7)
    assert (info.value.row, info.value.column) == (24, "phone")
    assert "row 24" in str(info.value)
    assert e.stats()["events"] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_skip_reports_rejected_rows_and_ingests_the_rest(kind: str) -> None:
    data = rows(20)
    data[4]["phone"] = "12"
    data[7]["amount"] = "lots"
    e = userops.Engine()
    out = records(e.ingest_table(make(kind, data), values=SOURCE, errors="skip", chunk_size=6))
    bad = {r["row"]: r for r in out if r["error"] is not None}
    assert sorted(bad) == [4, 7]
    assert bad[4]["error_column"] == "phone" and bad[4]["error_code"] == "invalid_event"
    assert bad[7]["error_column"] == "amount" and bad[4]["seq"] is None
    assert bad[7]["key"] == "k7" and bad[7]["kind"] == "order"
    assert e.stats()["events"] == 18
    assert all(r["seq"] is not None for r in out if r["row"] not in bad)


@pytest.mark.parametrize("kind", KINDS)
def test_engine_refusal_stops_at_the_row(kind: str) -> None:
    e = userops.Engine()
    e.ingest(as_event(dict(rows(2)[1], member_no="OTHER")))  # key k1 used for other content
    data = rows(10)
    with pytest.raises(userops.DuplicateKey) as info:
        e.ingest_table(make(kind, data), values=SOURCE, chunk_size=4)
    assert (info.value.row, info.value.column) == (1, "key")
    assert e.stats()["events"] == 2  # the earlier event and row 0
    out = records(e.ingest_table(make(kind, data), values=SOURCE, errors="skip"))
    assert [r["error_code"] for r in out if r["error"]] == ["duplicate_key"]
    assert e.stats()["events"] == 10


@pytest.mark.parametrize("kind", KINDS)
def test_table_errors_name_the_column(kind: str) -> None:
    e = userops.Engine()
    data = rows(5)
    with pytest.raises(userops.TableError) as info:
        e.ingest_table(make(kind, [{k: v for k, v in r.items() if k != "time"} for r in data]), values=SOURCE)
    assert info.value.column == "time" and info.value.row is None
    with pytest.raises(userops.TableError) as info:
        e.ingest_table(make(kind, data))
    assert info.value.column == "platform"
    nulls = [dict(r) for r in data]
    nulls[3]["key"] = None
    with pytest.raises(userops.TableError) as info:
        e.ingest_table(make(kind, nulls), values=SOURCE)
    assert (info.value.column, info.value.row) == ("key", 3)
    wrong = [dict(r, time=i) for i, r in enumerate(data)]
    with pytest.raises(userops.TableError) as info:
        e.ingest_table(make(kind, wrong), values=SOURCE)
    assert info.value.column == "time" and "int64" in str(info.value).lower()
    assert e.stats()["events"] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_float_money_is_refused(kind: str) -> None:
    data = [r for r in rows(8) if r["kind"] == "order"]
    floats = [dict(r, amount=float(r["amount"])) for r in data]
    e = userops.Engine()
    with pytest.raises(userops.InvalidEvent) as info:
        e.ingest_table(make(kind, floats), values=SOURCE)
    assert (info.value.column, info.value.row) == ("amount", 0)
    decimals = [dict(r, amount=Decimal(r["amount"])) for r in data]
    out = records(e.ingest_table(make(kind, decimals), values=SOURCE))
    assert len(out) == len(data) and e.stats()["events_by_kind"] == {"order": len(data)}


def test_timestamps_and_zones() -> None:
    naive = pd.DataFrame(
        {"kind": ["register"] * 2, "key": ["a", "b"], "member_no": ["M1", "M2"],
         "time": pd.to_datetime(["2026-01-05 10:00:00", "2026-01-05 11:00:00"])}
    )
    e = userops.Engine()
    with pytest.raises(userops.TableError) as info:
        e.ingest_table(naive, values=SOURCE)
    assert info.value.column == "time" and "naive_time_zone" in str(info.value)
    e.ingest_table(naive, values=SOURCE, naive_time_zone="+08:00")
    aware = naive.assign(time=naive["time"].dt.tz_localize("Asia/Shanghai"))
    # The same instants with their zone are the same events: duplicates, nothing new.
    out = e.ingest_table(aware, values=SOURCE)
    assert out["duplicate"].tolist() == [True, True]
    text = naive.assign(time=["2026-01-05T02:00:00Z", "2026-01-05T03:00:00+00:00"])
    assert e.ingest_table(text, values=SOURCE)["duplicate"].tolist() == [True, True]
    polars = pl.from_pandas(aware)
    assert e.ingest_table(polars, values=SOURCE)["duplicate"].to_list() == [True, True]
    with pytest.raises(userops.TableError):
        e.ingest_table(naive, values=SOURCE, naive_time_zone="Mars/Olympus")
    assert e.stats()["events"] == 2


def test_columns_values_exclude_oneid_and_lines() -> None:
    e = userops.Engine()
    e.ingest_table(pa.table({"k": ["r1"], "t": ["2026-01-01T00:00:00Z"], "who": ["M1"]}),
                   columns={"key": "k", "time": "t", "user_value": "who"},
                   values={"kind": "register", "user_kind": "member_no", **SOURCE})
    oneid = e.resolve(("member_no", "M1"))
    assert oneid == 1
    orders = pa.table(
        {
            "key": ["o1", "o2"],
            "time": ["2026-01-02T00:00:00Z"] * 2,
            "oneid": pa.array([1, 99], pa.int64()),
            "order_id": ["A", "B"],
            "paid": ["10.00", "5.00"],
            "lines": [[{"sku": "s1", "category": "fruit", "price": "5.00", "qty": 2}], []],
            "note": ["ignored", "ignored"],
        }
    )
    out = records(
        e.ingest_table(orders, columns={"amount": "paid"}, values={"kind": "order", "channel": "app", **SOURCE},
                       exclude=["note"], errors="skip")
    )
    assert out[0]["oneid"] == 1 and out[0]["error"] is None
    assert out[1]["error_code"] == "invalid_event" and out[1]["error_column"] == "oneid"
    # A constant fills nulls only: the column's amount wins, as replaying the event shows.
    # (Another order id: an order id is unique per source program.)
    one = orders.drop_columns(["note", "lines"]).slice(0, 1).set_column(0, "key", pa.array(["o3"]))
    one = one.set_column(one.schema.get_field_index("order_id"), "order_id", pa.array(["A3"]))
    e.ingest_table(one, columns={"amount": "paid"}, values={"kind": "order", "amount": "1", **SOURCE})
    replay = {"kind": "order", "key": "o3", "time": "2026-01-02T00:00:00Z", "source": SOURCE,
              "user": {"oneid": 1}, "order_id": "A3", "amount": "10.00"}
    assert e.ingest(replay)["duplicate"] is True
    lines_bad = orders.drop_columns(["note"]).slice(0, 1).set_column(
        5, "lines", pa.array([[{"sku": "s1", "price": "5.00", "qty": 0}]]))
    with pytest.raises(userops.InvalidEvent) as info:
        e.ingest_table(lines_bad, columns={"amount": "paid"}, values={"kind": "order", **SOURCE})
    assert info.value.column == "lines" and info.value.field == "lines[0].qty"


def test_identify_merges_report_absorbed() -> None:
    e = userops.Engine()
    t = pa.table(
        {
            "kind": ["identify"] * 3,
            "key": ["i1", "i2", "i3"],
            "time": ["2026-01-01T00:00:00Z"] * 3,
            "phone": ["13800138000", None, "13800138000"],
            "email": [None, "a@example.com", "a@example.com"],
        }
    )
    out = records(e.ingest_table(t, values=SOURCE))
    assert [r["oneid"] for r in out] == [1, 2, 1]
    assert list(out[2]["absorbed"]) == [2]
    assert e.stats()["persons"] == 1


def test_bad_arguments() -> None:
    e = userops.Engine()
    t = make("arrow", rows(3))
    with pytest.raises(userops.InvalidArgument):
        e.ingest_table(t, values=SOURCE, errors="ignore")  # type: ignore[arg-type]
    with pytest.raises(userops.InvalidArgument):
        e.ingest_table(t, values=SOURCE, chunk_size=0)
    with pytest.raises(userops.InvalidArgument):
        e.ingest_table(t, values=SOURCE, output="excel")  # type: ignore[arg-type]
    with pytest.raises(userops.InvalidArgument):
        e.ingest_table(t, values=SOURCE, progress="yes")
    with pytest.raises(userops.TableError):
        e.ingest_table(t, values=SOURCE, columns={"key": "nope"})
    with pytest.raises(userops.TableError):
        e.ingest_table(t, values={"platform": 3, "program": "p"})
    with pytest.raises(userops.TableError) as info:
        e.ingest_table(t.append_column("id", t.column("key")), values=SOURCE, columns={"key": "id"})
    assert info.value.column == "key" and "exclude" in str(info.value)
    with pytest.raises(userops.InvalidEvent) as info2:
        e.ingest_table(t.append_column("junk", t.column("key")), values=SOURCE)
    assert (info2.value.column, info2.value.row) == ("junk", 0)
    assert 'exclude=["junk"]' in str(info2.value)
    assert e.stats()["events"] == 0
    empty = e.ingest_table(t.slice(0, 0), values=SOURCE)
    assert empty.num_rows == 0 and "oneid" in empty.column_names


def test_progress_callback_and_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    seen: List[Any] = []
    e = userops.Engine()
    e.ingest_table(make("arrow", rows(25)), values=SOURCE, chunk_size=10,
                   progress=lambda done, total: seen.append((done, total)))
    assert seen == [(10, 25), (20, 25), (25, 25)]
    e.ingest_table(make("arrow", rows(25)), values=SOURCE, chunk_size=10, progress=False)
    try:
        import tqdm  # noqa: F401
    except ImportError:
        e.ingest_table(make("arrow", rows(25)), values=SOURCE, chunk_size=10, progress=True)
        assert "ingest: 25/25" in capsys.readouterr().err


def test_progress_uses_tqdm_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    bars: List["FakeBar"] = []

    class FakeBar:
        def __init__(self, total: int, desc: str, unit: str, disable: Optional[bool]) -> None:
            self.total, self.desc, self.disable, self.n, self.closed = total, desc, disable, 0, False
            bars.append(self)

        def update(self, k: int) -> None:
            self.n += k

        def close(self) -> None:
            self.closed = True

    fake = types.ModuleType("tqdm")
    setattr(fake, "tqdm", FakeBar)
    monkeypatch.setitem(sys.modules, "tqdm", fake)
    e = userops.Engine()
    e.ingest_table(make("arrow", rows(25)), values=SOURCE, chunk_size=10)
    e.ingest_table(make("arrow", rows(25)), values=SOURCE, chunk_size=10, progress=True)
    assert [(b.total, b.n, b.closed, b.desc) for b in bars] == [(25, 25, True, "ingest")] * 2
    assert [b.disable for b in bars] == [None, False]  # auto: tqdm hides it off a terminal


def test_callback_error_stops_the_ingest() -> None:
    e = userops.Engine()

    def fail(done: int, total: int) -> None:
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        e.ingest_table(make("arrow", rows(25)), values=SOURCE, chunk_size=10, progress=fail)
    assert e.stats()["events"] == 10


@pytest.mark.usefixtures("sigint_raises")
def test_ctrl_c_interrupts_between_chunks() -> None:
    """SIGINT arriving while native code runs (GIL released) stops the ingest at the next chunk."""
    n, chunk = 5_000, 50
    table = pa.table(
        {
            "kind": ["register"] * n,
            "key": [f"r{i}" for i in range(n)],
            "time": ["2026-01-01T00:00:00Z"] * n,
            "member_no": [f"M{i}" for i in range(n)],
        }
    )
    first = threading.Event()
    def kill_after_first_chunk() -> None:
        first.wait(10)
        os.kill(os.getpid(), signal.SIGINT)

    killer = threading.Thread(target=kill_after_first_chunk)
    killer.start()
    e = userops.Engine()
    try:
        with pytest.raises(KeyboardInterrupt):
            e.ingest_table(table, values=SOURCE, chunk_size=chunk, progress=lambda d, t: first.set())
    finally:
        killer.join()
    done = e.stats()["events"]
    assert 0 < done < n and done % chunk == 0, done


def test_other_threads_run_during_a_long_ingest() -> None:
    n = 5_000
    table = pa.table(
        {"kind": ["register"] * n, "key": [f"r{i}" for i in range(n)],
         "time": ["2026-01-01T00:00:00Z"] * n, "member_no": [f"M{i}" for i in range(n)]}
    )
    e = userops.Engine()
    ticks: List[int] = []
    running = threading.Event()
    stop = threading.Event()

    def tick() -> None:
        running.set()
        while not stop.is_set():
            ticks.append(1)
            stop.wait(0.001)

    t = threading.Thread(target=tick)
    t.start()
    running.wait(5)
    before: Optional[int] = len(ticks)
    e.ingest_table(table, values=SOURCE, chunk_size=n)  # one chunk: the GIL is released inside
    during = len(ticks) - (before or 0)
    stop.set()
    t.join()
    assert e.stats()["events"] == n
    assert during > 0


def test_receipt_columns_are_typed() -> None:
    out = userops.Engine().ingest_table(make("arrow", rows(4)), values=SOURCE)
    schema = {f.name: str(f.type) for f in out.schema}
    assert schema == {
        "row": "int64", "key": "string", "kind": "string", "seq": "uint64", "oneid": "uint64",
        "absorbed": "list<item: uint64>", "duplicate": "bool", "error_code": "string",
        "error_column": "string", "error": "string",
    }


def test_datetime_objects_and_dates_as_fields() -> None:
    # A datetime column with a zone written as the event time; the engine keeps UTC.
    t = pa.table(
        {
            "kind": ["register"],
            "key": ["d1"],
            "time": pa.array([dt.datetime(2026, 1, 5, 2, tzinfo=dt.timezone.utc)], pa.timestamp("ms", "UTC")),
            "member_no": ["M1"],
        }
    )
    e = userops.Engine()
    e.ingest_table(t, values=SOURCE)
    again = e.ingest({"kind": "register", "key": "d1", "time": "2026-01-05T10:00:00+08:00",
                      "source": SOURCE, "user": {"kind": "member_no", "value": "M1"}})
    assert again["duplicate"] is True


def test_duckdb_relation_in_arrow_out() -> None:
    duckdb = pytest.importorskip("duckdb")
    rel = duckdb.sql(
        "select 'register' as kind, 'k' || i::varchar as key, "
        "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) as time, 'M' || i::varchar as member_no "
        "from range(5) t(i)"
    )
    e = userops.Engine()
    out = e.ingest_table(rel, values=SOURCE)
    assert isinstance(out, pa.Table)
    assert out.column("oneid").to_pylist() == [1, 2, 3, 4, 5]
    assert e.resolve(("member_no", "M4")) == 5


@pytest.mark.parametrize("errors", ["raise", "skip"])
def test_a_float_money_column_is_refused_naming_the_column_and_the_fix(errors: str) -> None:
    """repro_inf_tags.py: money never floats, and the error says which column and
    what to do (not serde's "expected a Decimal type representing a fixed-point number")."""
    e = userops.Engine()
    before = e._native.state_fingerprint()
    orders = pd.DataFrame({"key": ["k1"], "time": ["2026-01-05T10:00:00+08:00"], "member_no": ["M1"],
                           "order_id": ["X"], "amount": [19.99]})
    values = {"kind": "order", **SOURCE}
    if errors == "raise":
        with pytest.raises(userops.InvalidEvent) as err:
            e.ingest_table(orders, values=values)
        assert (err.value.column, err.value.row, err.value.field) == ("amount", 0, "amount")
        message = str(err.value)
    else:
        out = e.ingest_table(orders, values=values, errors="skip", output="arrow").to_pylist()
        assert [(r["error_code"], r["error_column"]) for r in out] == [("invalid_event", "amount")]
        message = out[0]["error"]
    assert "column `amount` holds amounts as floats" in message, message
    assert "fixed-point" not in message and '"19.99"' in message and "decimal128" in message
    assert e._native.state_fingerprint() == before
    # Float money inside the lines, and as a constant, too.
    lines = pa.table({"key": ["k2"], "time": ["2026-01-05T10:00:00+08:00"], "member_no": ["M1"],
                      "order_id": ["Y"], "amount": ["10.00"],
                      "lines": [[{"sku": "s", "price": 10.0, "qty": 1}]]})
    with pytest.raises(userops.InvalidEvent) as err:
        e.ingest_table(lines, values=values)
    assert err.value.column == "lines" and "lines[].price" in str(err.value)
    with pytest.raises(userops.InvalidArgument) as arg_err:
        e.ingest_table(orders.drop(columns="amount"), values={**values, "amount": 19.99})
    assert arg_err.value.field == "values.amount"
    assert e._native.state_fingerprint() == before
    # The same amounts as decimal text go in, exactly.
    e.ingest_table(orders.assign(amount=orders["amount"].map("{:.2f}".format)), values=values)
    assert e.profile(1)["aggregates"]["gmv"] == "19.99"
