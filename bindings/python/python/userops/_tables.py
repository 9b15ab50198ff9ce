"""Tables in and out: the helpers every table-taking method of userops uses.

userops accepts any table that speaks Arrow and gives back the kind of table it was given:

* **in**: a ``pyarrow.Table`` or ``RecordBatch``, a ``polars.DataFrame``, a ``pandas.DataFrame``
  (pandas 2.2 and later export Arrow directly; earlier ones convert through pyarrow), a duckdb
  relation, any object with the Arrow PyCapsule interface (``__arrow_c_stream__``), a dict of
  columns or a list of row dicts (the columns are the union of the rows' keys; a key a row
  lacks is null in that row);
* **out**: the same kind as the input (``"pandas"``, ``"polars"`` or ``"arrow"``), or the kind
  asked for with ``output="pandas" | "polars" | "arrow"``.

pyarrow is needed only when a table function is called; without it these helpers raise
``userops.MissingDependency`` saying what to install (``pip install "userops[tables]"``).

How another module adds a table method (Python side)::

    from . import _tables

    class FooMethods(EngineBase):
        def foo_table(self, table: _tables.TableLike, *, output: _tables.Output = None) -> Any:
            arrow, kind = _tables.to_arrow(table)            # zero-copy where possible
            native = self._native.foo_table(arrow)           # Rust takes a pyo3_arrow::PyTable
            return _tables.from_arrow(native, output or kind)

and on the Rust side the native function reads columns with the typed accessors of
``bindings/python/src/tables.rs`` (errors become ``userops.TableError`` naming the column and the
first bad row) and returns ``tables::table_out(batch)``.

>>> import pyarrow as pa
>>> from userops import _tables
>>> arrow, kind = _tables.to_arrow({"user": ["M1", "M2"], "points": [10, 20]})
>>> kind, arrow.num_rows, arrow.column_names
('arrow', 2, ['user', 'points'])
>>> _tables.from_arrow(arrow, "arrow").equals(arrow)
True
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Callable, Dict, List, Literal, Optional, Tuple

from .errors import InvalidArgument, MissingDependency, TableError

#: The kinds of table userops hands back.
Kind = Literal["pandas", "polars", "arrow"]
#: The ``output=`` argument of table methods: a kind, or ``None`` for "the kind I was given".
Output = Optional[Kind]
#: Anything :func:`to_arrow` accepts (pyarrow, polars, pandas, duckdb, Arrow PyCapsule objects,
#: dicts of columns, lists of row dicts).
TableLike = Any
#: A progress argument: ``None`` (a tqdm bar when tqdm is installed and stderr is a terminal),
#: ``True`` (always report), ``False`` (never), or a callable ``f(done_rows, total_rows)``.
Progress = Any

KINDS: Tuple[str, ...] = ("pandas", "polars", "arrow")

#: The kind of table an engine method returns when no ``output=`` is given (engine methods take
#: no table whose kind they could follow): pandas, the data scientist's default.
ENGINE_OUTPUT: Kind = "pandas"


def _import(name: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        extra = "tables" if name == "pyarrow" else name
        raise MissingDependency(
            f"{purpose} needs {name}, which is not installed: pip install {name} "
            f"(or pip install \"userops[{extra}]\")"
        ) from None


def require_pyarrow() -> ModuleType:
    """The ``pyarrow`` module, or ``MissingDependency`` with the install line."""
    return _import("pyarrow", "userops table functions")


def kind_of(obj: Any) -> str:
    """The kind of table ``obj`` is: ``"pandas"``, ``"polars"`` or ``"arrow"`` (everything else).

    >>> kind_of({"a": [1]})
    'arrow'
    """
    root = type(obj).__module__.split(".")[0]
    if root in ("pandas", "polars"):
        return root
    return "arrow"


def to_arrow(obj: TableLike) -> Tuple[Any, str]:
    """``obj`` as a ``pyarrow.Table``, and its kind (see :func:`kind_of`).

    No copy for pyarrow and polars input (polars hands its buffers over through the Arrow C
    interface); pandas columns backed by numpy are converted by pyarrow (one copy for strings).
    Raises ``TableError`` when ``obj`` is not a table or a column cannot be converted, and
    ``MissingDependency`` without pyarrow.

    >>> import pyarrow as pa
    >>> t, kind = to_arrow([{"key": "k1", "n": 1}, {"key": "k2", "n": None}])
    >>> t.column("n").null_count, kind
    (1, 'arrow')
    """
    pa = require_pyarrow()
    kind = kind_of(obj)
    try:
        if isinstance(obj, pa.Table):
            return obj, kind
        if isinstance(obj, pa.RecordBatch):
            return pa.Table.from_batches([obj]), kind
        if kind == "pandas" and type(obj).__name__ == "DataFrame":
            return pa.Table.from_pandas(obj, preserve_index=False), kind
        if kind == "polars" and type(obj).__name__ == "DataFrame":
            return obj.to_arrow(), kind
        if kind == "polars" and type(obj).__name__ == "LazyFrame":
            return obj.collect().to_arrow(), "polars"
        if hasattr(obj, "__arrow_c_stream__"):
            return pa.table(obj), kind
        if hasattr(obj, "to_arrow_table"):  # duckdb relations before the PyCapsule interface
            return obj.to_arrow_table(), kind
        if isinstance(obj, dict):
            return pa.table(obj), kind
        if isinstance(obj, list) and all(isinstance(r, dict) for r in obj):
            return _from_rows(pa, obj), kind
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError, OverflowError) as e:
        # pyarrow raises plain TypeError / OverflowError for Python values it cannot convert
        # (an int beyond 64 bits, mixed types in a column): the caller's table is at fault.
        column = _column_in(str(e)) or _failing_column(pa, obj)
        where = f" (column `{column}`)" if column is not None else ""
        raise TableError(f"the table cannot be read as Arrow{where}: {e}", column=column) from None
    raise TableError(
        f"expected a table (pyarrow, polars, pandas, duckdb or an object with "
        f"__arrow_c_stream__), got {type(obj).__name__}"
    )


def _failing_column(pa: Any, obj: Any) -> Optional[str]:
    # pyarrow names no column when a Python value does not convert (an int beyond 64 bits):
    # convert the columns of a dict or a list of row dicts one by one to find it.
    if isinstance(obj, dict):
        columns: Dict[Any, Any] = obj
    elif isinstance(obj, list) and all(isinstance(r, dict) for r in obj):
        columns = _row_columns(obj)
    else:
        return None
    for name, values in columns.items():
        try:
            pa.array(values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            return str(name)
    return None


def _from_rows(pa: ModuleType, rows: List[Dict[Any, Any]]) -> Any:
    """A list of row dicts as a ``pyarrow.Table`` whose columns are the union of the rows' keys
    in order of first appearance, a row's missing key being null (``pyarrow.Table.from_pylist``
    would keep only the first row's keys and drop the others' silently).

    >>> import pyarrow as pa
    >>> t = _from_rows(pa, [{"touch_id": 1, "outcome": "sent"},
    ...                     {"touch_id": 1, "outcome": "converted", "amount": "50.00"}])
    >>> t.column_names, t.column("amount").to_pylist()
    (['touch_id', 'outcome', 'amount'], [None, '50.00'])
    """
    return pa.table(_row_columns(rows))


def _row_columns(rows: List[Dict[Any, Any]]) -> Dict[Any, List[Any]]:
    keys: Dict[Any, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return {k: [row.get(k) for row in rows] for k in keys}


def _column_in(message: str) -> Optional[str]:
    # pyarrow says "Conversion failed for column amount with type object".
    marker = "for column "
    if marker in message:
        return message.split(marker, 1)[1].split(" with type", 1)[0]
    return None


def check_output(output: Optional[str]) -> None:
    """``InvalidArgument`` unless ``output`` is ``None`` or one of :data:`KINDS`."""
    if output is not None and output not in KINDS:
        raise InvalidArgument(
            f"output must be one of {', '.join(repr(k) for k in KINDS)} or None, got {output!r}",
            field="output",
        )


def from_arrow(table: Any, kind: str) -> Any:
    """An Arrow table (a ``pyarrow.Table`` or any ``__arrow_c_stream__`` object, such as what a
    native function returns) as a table of ``kind``: ``"pandas"`` (integer and boolean columns
    with nulls become pandas' nullable dtypes, so a OneID stays an integer), ``"polars"`` or
    ``"arrow"`` (a ``pyarrow.Table``).

    >>> import pyarrow as pa
    >>> df = from_arrow(pa.table({"oneid": pa.array([1, None], pa.uint64())}), "pandas")
    >>> str(df["oneid"].dtype), int(df["oneid"][0])
    ('UInt64', 1)
    """
    check_output(kind)
    pa = require_pyarrow()
    if not isinstance(table, pa.Table):
        table = pa.table(table)
    if kind == "arrow":
        return table
    if kind == "polars":
        pl = _import("polars", "output=\"polars\"")
        return pl.from_arrow(table)
    pd = _import("pandas", "output=\"pandas\"")
    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    mapper: Callable[[Any], Any] = nullable.get
    return table.to_pandas(types_mapper=mapper)
