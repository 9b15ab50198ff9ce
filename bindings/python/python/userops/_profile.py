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
        says how two observations combine (on a new value and when two persons merge):
        ``"latest"``, ``"earliest"``, ``"max"``, ``"min"``, ``"sum"``, ``"union"`` (lists) or
        ``{"source_priority": [sources, highest first]}``. Returns the definition. Raises
        ``InvalidArgument`` for an unknown type or a strategy the type cannot take.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.define_attribute("city", "string", merge={"source_priority": ["crm", "app"]})
        {'name': 'city', 'type': 'string', 'merge': {'source_priority': ['crm', 'app']}}
        """
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

        An undefined attribute is defined from the value's type (str, number, bool, list).
        ``source`` and ``at`` (default: now) decide between observations under the merge
        strategy. Raises ``InvalidArgument`` for a value of the wrong type, ``NotFound`` for an
        unknown OneID.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> at = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> e.set_attribute(("member_no", "M1"), "city", "Shanghai", source="crm", at=at)["attributes"]
        {'city': 'Shanghai'}
        """
        args: Dict[str, Any] = {"user": _convert.user(user), "name": name, "value": value, "source": source}
        if at is not None:
            args["at"] = at
        out: Dict[str, Any] = self.call("set_attribute", **args)
        return out

    def profile(self, user: _convert.UserLike) -> Dict[str, Any]:
        """The 360° view: identifiers (by kind, then value), attributes, tags, aggregates
        (orders, GMV, refunds, touches, coupons) and the member's loyalty state per program
        (``points`` and ``tier`` are ``None`` for a person without a loyalty account). Raises
        ``NotFound`` for an unknown user.

        >>> import userops
        >>> p = userops.sample_engine().profile(("phone", "13800000001"))
        >>> p["oneid"], p["aggregates"]["orders"], p["aggregates"]["gmv"], p["aggregates"]["last_order"]
        (1, 3, '465.00', '2026-02-12T02:00:00Z')
        """
        out: Dict[str, Any] = self.call("profile", user=_convert.user(user))
        return out
