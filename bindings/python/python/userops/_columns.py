"""Arrow plumbing for the table functions: accept pandas / polars / pyarrow, hand columns to the
native module as little-endian bytes, and give results back as the caller's kind of table."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Callable, List, Optional, Tuple, TypeVar

from .errors import InvalidArgument, from_report

T = TypeVar("T")


def _pa() -> Any:
    try:
        import pyarrow as pa
    except ImportError as e:  # pragma: no cover - pyarrow is a dependency of the table functions
        raise ImportError("userops table functions need pyarrow (pip install pyarrow)") from e
    return pa


def to_arrow(obj: Any, what: str = "table") -> Any:
    """A ``pyarrow.Table`` from a pandas or polars DataFrame, an Arrow table, or a dict of columns."""
    pa = _pa()
    if isinstance(obj, pa.Table):
        return obj
    if type(obj).__module__.startswith("polars"):
        return obj.to_arrow()
    try:
        return pa.table(obj)
    except Exception as e:  # noqa: BLE001 - any failure is the caller's input
        raise InvalidArgument(f"{what}: cannot read as a table ({e})", field=what) from None


def like(original: Any, result: Any) -> Any:
    """``result`` (a pyarrow.Table) as the same kind of table as ``original``."""
    module = type(original).__module__
    if module.startswith("pandas"):
        return result.to_pandas()
    if module.startswith("polars"):
        import polars as pl

        return pl.from_arrow(result)
    return result


def column(table: Any, name: str, field: str) -> Any:
    """One column as a single contiguous array, with a clear error when it is missing or null."""
    if name not in table.column_names:
        raise InvalidArgument(f"no column {name!r} (columns: {table.column_names})", field=field)
    col = table.column(name).combine_chunks()
    if col.null_count:
        raise InvalidArgument(f"column {name!r} has {col.null_count} nulls", field=field)
    return col


class UserCodes:
    """User ids as uint64: integers as they are, anything else dictionary-encoded (and decoded
    again on the way out)."""

    def __init__(self, arrays: List[Any], field: str = "user") -> None:
        pa = _pa()
        self.dictionary: Optional[Any] = None
        if all(pa.types.is_integer(a.type) for a in arrays):
            for a in arrays:
                if pa.types.is_signed_integer(a.type) and len(a) and pa.compute.min(a).as_py() < 0:
                    raise InvalidArgument("user ids must be ≥ 0", field=field)
            self.codes = [a.cast(pa.uint64()) for a in arrays]
        else:
            joined = pa.chunked_array([a.cast(pa.string()) for a in arrays]).combine_chunks()
            enc = joined.dictionary_encode()
            self.dictionary = enc.dictionary
            idx = enc.indices.cast(pa.uint64())
            self.codes, start = [], 0
            for a in arrays:
                self.codes.append(idx.slice(start, len(a)))
                start += len(a)

    def decode(self, ids: Any) -> Any:
        if self.dictionary is None:
            return ids
        return self.dictionary.take(ids)


def u64_bytes(arr: Any) -> bytes:
    return arr.cast(_pa().uint64()).to_numpy(zero_copy_only=False).astype("<u8", copy=False).tobytes()


def u32_bytes(arr: Any) -> bytes:
    return arr.to_numpy(zero_copy_only=False).astype("<u4", copy=False).tobytes()


def time_ms(arr: Any, field: str) -> Any:
    """Timestamps as int64 ms UTC. Timestamps without a zone are refused: which day or month an
    event falls in depends on it."""
    pa = _pa()
    t = arr.type
    if pa.types.is_timestamp(t):
        if t.tz is None:
            raise InvalidArgument(
                f"column of timestamps without a time zone ({t}): localize it first "
                "(pandas: .dt.tz_localize('Asia/Shanghai'); polars: .dt.replace_time_zone(...))",
                field=field,
            )
        return arr.cast(pa.timestamp("ms", tz=t.tz)).cast(pa.int64())
    if pa.types.is_date(t):
        raise InvalidArgument("dates have no time zone: give timestamps with a zone", field=field)
    raise InvalidArgument(f"expected timestamps with a time zone, got {t}", field=field)


def i64_bytes(arr: Any) -> bytes:
    return arr.to_numpy(zero_copy_only=False).astype("<i8", copy=False).tobytes()


def dictionary(arr: Any) -> Tuple[bytes, List[str]]:
    """Codes (u32 bytes) and names of a column of names."""
    pa = _pa()
    enc = arr.cast(pa.string()).dictionary_encode()
    return u32_bytes(enc.indices.cast(pa.uint32())), [str(x) for x in enc.dictionary.to_pylist()]


def utc_offset_seconds(tz: Any) -> int:
    """A fixed business time zone: hours (``8``), ``"+08:00"`` or a ``datetime.timezone``."""
    if isinstance(tz, bool):
        raise InvalidArgument("tz is hours east of UTC, '+08:00' or a datetime.timezone", field="tz")
    if isinstance(tz, (int, float)):
        return int(round(tz * 3600))
    if isinstance(tz, _dt.tzinfo):
        off = tz.utcoffset(None)
        if off is None:
            raise InvalidArgument("tz needs a fixed offset", field="tz")
        return int(off.total_seconds())
    if isinstance(tz, str):
        s = tz.strip()
        try:
            sign = -1 if s.startswith("-") else 1
            hh, _, mm = s.lstrip("+-").partition(":")
            return sign * (int(hh) * 3600 + int(mm or 0) * 60)
        except ValueError:
            pass
    raise InvalidArgument(f"tz {tz!r}: hours east of UTC, '+08:00' or a datetime.timezone", field="tz")


def native(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call a native table function, turning its error report into the typed exception."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        text = str(e)
        try:
            report = json.loads(text)
        except ValueError:
            raise InvalidArgument(text) from None
        raise from_report(report) from None
