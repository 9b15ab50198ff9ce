"""Conversions between Python values and the engine's JSON wire shape (SPEC §2)."""

from __future__ import annotations

import datetime as _dt
import json
from decimal import Decimal
from typing import Any, Mapping, Tuple, Union

from .errors import InvalidArgument

#: A user reference: an identifier dict, a ``(kind, value)`` tuple, or an int OneID.
UserLike = Union[Mapping[str, Any], Tuple[str, str], int]


def _default(value: Any) -> Any:
    # Money travels as decimal strings, never floats; times as RFC 3339.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Serialize call arguments, turning a serialization failure into ``InvalidArgument``."""
    try:
        return json.dumps(value, default=_default, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"arguments cannot be sent to the engine: {e}") from None


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
