"""Profiles: typed attributes with merge strategies and the 360° view (SPEC §4)."""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from . import _convert
from ._base import EngineBase

if TYPE_CHECKING:
    _Mixin = EngineBase
else:
    # `Engine` lists `EngineBase` first and the mixins after it; a mixin deriving from
    # `EngineBase` at run time would make that order impossible (no consistent MRO).
    _Mixin = object

#: A merge strategy: ``"latest"``, ``"earliest"``, ``"max"``, ``"min"``, ``"sum"``,
#: ``"union"`` or ``{"source_priority": ["crm", "app"]}``.
MergeLike = Union[str, Dict[str, List[str]]]


class ProfileMethods(_Mixin):
    """Attributes and profiles."""

    def define_attribute(self, name: str, type: str, merge: MergeLike = "latest") -> Dict[str, Any]:
        """Define an attribute: ``type`` is string, number, decimal, date, bool or list; ``merge``
        says how two observations combine (on a new value and when two persons merge)."""
        out: Dict[str, Any] = self.call("define_attribute", name=name, type=type, merge=merge)
        return out

    def set_attribute(
        self,
        user: _convert.UserLike,
        name: str,
        value: Any,
        *,
        source: str = "operator",
        at: Optional[_dt.datetime] = None,
    ) -> Dict[str, Any]:
        """Observe an attribute value (``None`` removes it); returns the profile.

        An undefined attribute is defined from the value's type (str, number, bool, list)."""
        args: Dict[str, Any] = {"user": _convert.user(user), "name": name, "value": value, "source": source}
        if at is not None:
            args["at"] = at
        out: Dict[str, Any] = self.call("set_attribute", **args)
        return out

    def profile(self, user: _convert.UserLike) -> Dict[str, Any]:
        """The 360° view: identifiers, attributes, tags, aggregates (orders, GMV, refunds,
        touches, coupons). ``points`` and ``tier`` are ``None`` until loyalty is wired in."""
        out: Dict[str, Any] = self.call("profile", user=_convert.user(user))
        return out
