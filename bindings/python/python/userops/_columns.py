"""Small argument conversions shared by the table functions (time zones and points in time).

The columns themselves never pass through Python: they go to Rust as Arrow (see
:mod:`userops._tables` and ``bindings/python/src/columns.rs``).
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Optional, Union

from .errors import InvalidArgument

#: A fixed business time zone: hours east of UTC (``8``), ``"+08:00"`` or a ``datetime.tzinfo``
#: with a fixed offset.
TzLike = Union[int, float, str, _dt.tzinfo]
#: A point in time: a ``datetime``, a ``date``, ISO text or a ``numpy.datetime64``.
TimeLike = object

_EPOCH = _dt.datetime(1970, 1, 1)


def utc_offset_seconds(tz: TzLike) -> int:
    """A fixed business time zone as seconds east of UTC.

    >>> utc_offset_seconds(8), utc_offset_seconds("-05:30"), utc_offset_seconds(_dt.timezone.utc)
    (28800, -19800, 0)
    """
    if isinstance(tz, bool):
        raise InvalidArgument("tz is hours east of UTC, '+08:00' or a datetime.timezone", field="tz")
    seconds: Optional[int] = None
    if isinstance(tz, (int, float)) and math.isfinite(tz):
        seconds = int(round(tz * 3600)) if abs(tz) < 24 else 86_400
    elif isinstance(tz, _dt.tzinfo):
        off = tz.utcoffset(None)
        if off is None:
            raise InvalidArgument("tz needs a fixed offset", field="tz")
        seconds = int(off.total_seconds())
    elif isinstance(tz, str):
        s = tz.strip()
        try:
            sign = -1 if s.startswith("-") else 1
            hh, _, mm = s.lstrip("+-").partition(":")
            seconds = sign * (int(hh) * 3600 + int(mm or 0) * 60)
        except ValueError:
            pass
    if seconds is not None:
        if abs(seconds) < 86_400:
            return seconds
        raise InvalidArgument(f"tz {tz!r}: an offset from UTC is less than 24 hours", field="tz")
    raise InvalidArgument(f"tz {tz!r}: hours east of UTC, '+08:00' or a datetime.timezone", field="tz")


def wall_seconds(value: TimeLike, field: str) -> int:
    """One point in time as wall-clock seconds since 1970 (an aware ``datetime`` counts in its
    own zone's wall clock, as the models read time columns).

    >>> wall_seconds("1970-01-02", "as_of"), wall_seconds(_dt.date(1970, 1, 3), "as_of")
    (86400, 172800)
    """
    if type(value).__name__ == "datetime64":  # numpy: microseconds give a datetime
        value = getattr(value, "astype")("datetime64[us]").item()
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value)
        except ValueError as e:
            raise InvalidArgument(f"{field}: {e}", field=field) from None
    if isinstance(value, _dt.datetime):
        naive = value.replace(tzinfo=None)
        return int((naive - _EPOCH) // _dt.timedelta(seconds=1))
    if isinstance(value, _dt.date):
        return (value - _EPOCH.date()).days * 86400
    raise InvalidArgument(f"{field}: expected a date, datetime or ISO string", field=field)
