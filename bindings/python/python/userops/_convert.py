"""Conversions between Python values and the engine's JSON wire shape (SPEC §2).

Every value bound for the engine (call arguments, events) passes :func:`wire` first: money as
decimal strings, times as RFC 3339, and anything JSON cannot carry faithfully (NaN, ±inf, a
naive datetime, an object) refused with ``InvalidArgument`` naming where it sits
(``cart['lines'][0]['price']``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
from decimal import Decimal
from typing import Any, List, Mapping, Optional, Tuple, Union

from ._args import I64_MIN, NAIVE_HINT, U64_MAX, describe, field_path, text_problem
from .errors import InvalidArgument

#: A user reference: an identifier dict, a ``(kind, value)`` tuple, or an int OneID.
UserLike = Union[Mapping[str, Any], Tuple[str, str], int]


class _Refused(Exception):
    """A part of a value that cannot travel. ``keys`` is its path from the innermost key out,
    collected only while the exception passes up (no path is built for what travels)."""

    def __init__(self, expected: str, value: Any, got: Optional[str] = None) -> None:
        super().__init__(expected)
        self.expected = expected
        self.got = got if got is not None else describe(value)
        if isinstance(value, _dt.datetime):
            self.got += NAIVE_HINT
        self.keys: List[Union[str, int]] = []


def wire(value: Any, path: str) -> Any:
    """``value`` as plain JSON values, or ``InvalidArgument`` naming the first part at
    ``path`` that cannot travel.

    >>> import datetime as dt
    >>> from decimal import Decimal
    >>> wire({"price": Decimal("9.90"), "at": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)}, "cart")
    {'price': '9.90', 'at': '2026-01-01T00:00:00+00:00'}
    >>> try:
    ...     wire({"lines": [{"price": float("nan")}]}, "cart")
    ... except InvalidArgument as e:
    ...     print(e.field)
    cart.lines[0].price
    """
    try:
        return _wire(value)
    except _Refused as r:
        for key in reversed(r.keys):
            path = field_path(path, key)
        raise InvalidArgument(f"invalid argument at `{path}`: expected {r.expected}, got {r.got}", field=path) from None


def _wire(value: Any) -> Any:
    # The common JSON types first, by exact type: this runs on every value of every call.
    t = type(value)
    if t is str:
        if len(value) > 64 or not value.isascii():
            problem = text_problem(value)
            if problem is not None:
                raise _Refused(problem[0], value, got=problem[1])
        return value
    if t is dict:
        out = {}
        for k, v in value.items():
            try:
                if type(k) is not str:
                    raise _Refused("a string key", k)
                out[_wire(k)] = _wire(v)
            except _Refused as r:
                r.keys.append(k)
                raise
        return out
    if t is list or t is tuple:
        if t is list and all(type(x) is int and 0 <= x <= U64_MAX for x in value):
            return value  # a list of OneIDs: nothing to convert
        items = []
        for i, v in enumerate(value):
            try:
                items.append(_wire(v))
            except _Refused as r:
                r.keys.append(i)
                raise
        return items
    if value is None or t is bool:
        return value
    if isinstance(value, str):
        return _wire(str(value))
    if isinstance(value, numbers.Integral):
        # JSON numbers beyond 64 bits would be read as floats, silently rounded.
        if not I64_MIN <= int(value) <= U64_MAX:
            raise _Refused("an integer that fits in 64 bits", value)
        return int(value)
    if isinstance(value, Decimal):
        # Money travels as decimal strings, never floats.
        if not value.is_finite():
            raise _Refused("a finite Decimal", value)
        return str(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if not math.isfinite(f):
            raise _Refused("a finite number", value)
        return f
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise _Refused("a datetime with a time zone", value)
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _wire(dict(value))
    if type(value).__name__ == "bool_" and type(value).__module__ == "numpy":
        return bool(value)
    raise _Refused("JSON values: None, bool, int, finite float, str, Decimal, date, aware datetime, list, dict", value)


def dumps(value: Any) -> str:
    """Serialize call arguments or an event (a dict: each value is named by its key) after
    :func:`wire`.

    >>> dumps({"points": 5, "time": None})
    '{"points": 5, "time": null}'
    """
    return json.dumps(wire(value, ""))


def user(value: UserLike) -> Any:
    """Normalize a user reference to its wire shape."""
    if isinstance(value, bool):
        raise InvalidArgument("a user is an identifier dict, a (kind, value) tuple or a OneID", field="user")
    if isinstance(value, int):
        return {"oneid": value}
    if isinstance(value, tuple) and len(value) == 2:
        return {"kind": value[0], "value": value[1]}
    if isinstance(value, Mapping):
        return dict(value)
    raise InvalidArgument("a user is an identifier dict, a (kind, value) tuple or a OneID", field="user")
