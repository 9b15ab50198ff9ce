"""`userops._tables`: tables in (every kind) and out (every kind)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Callable, Dict, List

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import userops
from userops import _tables

COLUMNS: Dict[str, List[Any]] = {"key": ["k1", "k2", "k3"], "n": [1, None, 3], "s": ["a", "b", None]}


class CapsuleOnly:
    """An object that speaks only the Arrow PyCapsule interface (as duckdb relations do)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)


MAKERS: Dict[str, Callable[[], Any]] = {
    "pandas": lambda: pd.DataFrame(COLUMNS),
    "polars": lambda: pl.DataFrame(COLUMNS),
    "arrow": lambda: pa.table(COLUMNS),
    "record_batch": lambda: pa.RecordBatch.from_pydict(COLUMNS),
    "capsule": lambda: CapsuleOnly(pa.table(COLUMNS)),
    "dict": lambda: dict(COLUMNS),
    "rows": lambda: [dict(zip(COLUMNS, r)) for r in zip(*COLUMNS.values())],
}
EXPECTED_KIND = {"pandas": "pandas", "polars": "polars"}


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_to_arrow_reads_every_kind(name: str) -> None:
    table, kind = _tables.to_arrow(MAKERS[name]())
    assert isinstance(table, pa.Table)
    assert kind == EXPECTED_KIND.get(name, "arrow")
    assert table.column("key").to_pylist() == ["k1", "k2", "k3"]
    assert table.column("n").to_pylist() == [1, None, 3]
    assert table.column("s").to_pylist() == ["a", "b", None]


def test_arrow_input_is_not_copied() -> None:
    t = pa.table(COLUMNS)
    same, _ = _tables.to_arrow(t)
    assert same is t
    df = pl.DataFrame({"x": list(range(1000))})
    arrow, _ = _tables.to_arrow(df)
    # polars hands its buffer over: the Arrow column points at polars' memory.
    assert arrow.column("x").chunk(0).buffers()[1].address == df.to_arrow().column("x").chunk(0).buffers()[1].address


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_from_arrow_gives_each_kind(kind: str) -> None:
    t = pa.table({"oneid": pa.array([1, None], pa.uint64()), "ok": pa.array([True, None])})
    out = _tables.from_arrow(t, kind)
    if kind == "pandas":
        assert isinstance(out, pd.DataFrame)
        assert str(out["oneid"].dtype) == "UInt64" and out["oneid"][0] == 1
        assert out["oneid"].isna().tolist() == [False, True]
        assert str(out["ok"].dtype) == "boolean"
    elif kind == "polars":
        assert isinstance(out, pl.DataFrame)
        assert out["oneid"].to_list() == [1, None]
    else:
        assert out.equals(t)


def test_from_arrow_takes_capsule_objects() -> None:
    out = _tables.from_arrow(CapsuleOnly(pa.table(COLUMNS)), "polars")
    assert isinstance(out, pl.DataFrame) and out.height == 3


def test_bad_tables_and_outputs() -> None:
    with pytest.raises(userops.TableError) as info:
        _tables.to_arrow(42)
    assert "int" in str(info.value)
    with pytest.raises(userops.TableError) as info:
        _tables.to_arrow(pd.DataFrame({"amount": [Decimal("1.5"), "x"]}))
    assert info.value.column == "amount"
    assert isinstance(info.value, userops.InvalidArgument)
    with pytest.raises(userops.InvalidArgument) as info2:
        _tables.from_arrow(pa.table(COLUMNS), "excel")
    assert info2.value.field == "output"


def test_kind_of() -> None:
    assert _tables.kind_of(pd.DataFrame()) == "pandas"
    assert _tables.kind_of(pl.DataFrame()) == "polars"
    assert _tables.kind_of(pa.table({})) == "arrow"
    assert _tables.kind_of(pl.DataFrame().lazy()) == "polars"
    table, kind = _tables.to_arrow(pl.DataFrame(COLUMNS).lazy())
    assert kind == "polars" and table.num_rows == 3


def test_types_survive_the_round_trip() -> None:
    t = pa.table(
        {
            "when": pa.array([dt.datetime(2026, 1, 5, 2, tzinfo=dt.timezone.utc)], pa.timestamp("us", "UTC")),
            "money": pa.array([Decimal("399.00")], pa.decimal128(10, 2)),
        }
    )
    back, _ = _tables.to_arrow(_tables.from_arrow(t, "polars"))
    assert back.column("money").to_pylist() == [Decimal("399.00")]
    assert back.column("when").to_pylist()[0] == dt.datetime(2026, 1, 5, 2, tzinfo=dt.timezone.utc)


def test_docstrings_of_the_table_modules() -> None:
    import doctest

    from userops import _ingest, _progress

    for mod in (_tables, _progress, _ingest):
        result = doctest.testmod(mod)
        assert result.failed == 0 and result.attempted > 0, mod


def test_a_list_of_row_dicts_keeps_every_rows_keys() -> None:
    # The second row's `amount` and `region` are not in the first row: they are columns all the
    # same, null where a row lacks them (pyarrow's from_pylist would drop them silently).
    rows = [{"key": "k1", "n": 1}, {"key": "k2", "amount": "50.00", "region": "sh"}, {"n": 3, "key": "k3"}]
    t, kind = _tables.to_arrow(rows)
    assert kind == "arrow"
    assert t.column_names == ["key", "n", "amount", "region"]
    assert t.to_pylist() == [{"key": "k1", "n": 1, "amount": None, "region": None},
                             {"key": "k2", "n": None, "amount": "50.00", "region": "sh"},
                             {"key": "k3", "n": 3, "amount": None, "region": None}]


def test_record_outcomes_and_ingest_table_read_keys_the_first_row_lacks() -> None:
    e = userops.Engine()
    src = {"platform": "app", "program": "p"}
    e.ingest({"kind": "activity", "key": "a1", "time": "2026-01-01T10:00:00+08:00", "type": "login",
              "source": src, "user": {"kind": "member_no", "value": "M1"}})
    e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
    e.add_rule({"id": "wb", "trigger": {"type": "inactive", "days": 30},
                "actions": [{"type": "touch", "channel": "sms", "content": "hi"}]})
    plan = e.run_automation("2026-03-01T10:00:00+08:00", output="arrow").to_pylist()
    tid = plan[0]["touch_id"]
    # A `sent` row without an amount, then a `converted` row with 50.00: revenue 50.00.
    assert e.record_outcomes([{"touch_id": tid, "outcome": "sent", "time": "2026-03-01T10:01:00+08:00"},
                              {"touch_id": tid, "outcome": "converted", "time": "2026-03-01T11:00:00+08:00",
                               "amount": "50.00"}]) == 2
    assert e.channel_effectiveness("rule", output="arrow").column("revenue").to_pylist() == [Decimal("50.00")]
    # Row 2's `region` and `lines` reach the engine although row 1 has neither.
    e.ingest_table([{"kind": "order", "key": "o1", "time": "2026-03-02T10:00:00+08:00", "member_no": "M1",
                     "order_id": "o1", "amount": "10.00"},
                    {"kind": "order", "key": "o2", "time": "2026-03-03T10:00:00+08:00", "member_no": "M1",
                     "order_id": "o2", "amount": "20.00", "region": "shanghai",
                     "lines": [{"sku": "s1", "category": "tea", "price": "20.00", "qty": 1}]}],
                   values={"platform": "app", "program": "p"})
    steps = e.journey(("member_no", "M1"))["steps"]
    assert [s.get("skus", []) for s in steps if s["name"] == "order"] == [[], ["s1"]]
    x = e.cross_table("2026-03-31T00:00:00+08:00", "region", "category", output="arrow").to_pylist()
    assert x == [{"row": "shanghai", "col": "tea", "amount": 20.0}]
