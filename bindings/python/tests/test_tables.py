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
