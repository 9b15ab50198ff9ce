"""Tags, audiences and exports (SPEC §4)."""

from __future__ import annotations

import datetime as _dt
import math
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from . import _convert, _tables
from ._base import EngineBase

if TYPE_CHECKING:
    _Mixin = EngineBase
else:
    # `Engine` lists `EngineBase` first and the mixins after it; a mixin deriving from
    # `EngineBase` at run time would make that order impossible (no consistent MRO).
    _Mixin = object
from .errors import InvalidArgument


def _now_arg(now: Optional[_dt.datetime]) -> Dict[str, Any]:
    return {} if now is None else {"now": now}


def _wire(kind: str, v: Any) -> Any:
    if v is None:
        return None
    if kind == "number":
        x = float(v) if isinstance(v, Decimal) else v
        return None if isinstance(x, float) and math.isnan(x) else x
    if kind == "date":
        if isinstance(v, _dt.datetime):
            # Arrow timestamps without a zone are taken as UTC.
            return (v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc)).isoformat()
        if isinstance(v, _dt.date):
            return v.isoformat()
    return v


class Audience:
    """The result of evaluating an audience expression: its members at one instant.

    >>> import userops
    >>> e = userops.Engine()
    >>> _ = e.set_tags({"user_id": ["M1", "M2", "M3"], "spend": [10, 250, 900]})
    >>> a = e.audience("spend >= 100")
    >>> len(a), a.oneids("list")
    (2, [2, 3])
    """

    def __init__(self, engine: "TagsMethods", expression: str, now: str, oneids: List[int]) -> None:
        self._engine = engine
        #: The expression in canonical form.
        self.expression = expression
        #: The instant relative dates referred to (RFC 3339).
        self.now = now
        self._oneids = oneids

    def __len__(self) -> int:
        return len(self._oneids)

    def __repr__(self) -> str:
        return f"Audience({self.expression!r}, size={len(self)})"

    def oneids(self, like: str = "pyarrow") -> Any:
        """The members' OneIDs: a ``pyarrow`` uint64 array (default), or ``"list"``,
        ``"pandas"`` (Series) or ``"polars"`` (Series)."""
        if like == "list":
            return list(self._oneids)
        import pyarrow as pa

        arr = pa.array(self._oneids, type=pa.uint64())
        if like == "pyarrow":
            return arr
        if like == "pandas":
            return arr.to_pandas().rename("oneid")
        if like == "polars":
            import polars as pl

            return pl.Series("oneid", arr)
        raise InvalidArgument(f"like={like!r}: use pyarrow, list, pandas or polars", field="like")

    def export(self, kind: Optional[str] = None) -> Any:
        """The members as a pyarrow table: ``oneid`` and, when ``kind`` is given, one row per
        identifier of that kind (``value``; members without one are left out)."""
        import pyarrow as pa

        if kind is None:
            return pa.table({"oneid": pa.array(self._oneids, type=pa.uint64())})
        out = self._engine.call("export_oneids", oneids=self._oneids, kind=kind)
        rows = out["rows"]
        return pa.table(
            {
                "oneid": pa.array([r["oneid"] for r in rows], type=pa.uint64()),
                "value": pa.array([r["value"] for r in rows], type=pa.string()),
            }
        )


class TagsMethods(_Mixin):
    """Tags, audience evaluation, saved audiences and exports."""

    def define_tag(
        self,
        name: str,
        type: str = "bool",
        *,
        rule: Optional[str] = None,
        model: Optional[str] = None,
        description: str = "",
        now: Optional[_dt.datetime] = None,
    ) -> Dict[str, Any]:
        """Define a tag (bool, enum, number or date): manual, or a rule tag (``rule`` is an
        audience expression, recomputed when its inputs change), or a model tag."""
        out: Dict[str, Any] = self.call(
            "define_tag", name=name, type=type, rule=rule, model=model, description=description, **_now_arg(now)
        )
        return out

    def set_tag(self, user: Any, tag: str, value: Any, *, now: Optional[_dt.datetime] = None) -> int:
        """Set (``None``: remove) one user's value of a manual or model tag; returns the OneID."""
        from . import _convert

        out = self.call("set_tag", user=_convert.user(user), tag=tag, value=_wire("date", value), **_now_arg(now))
        oneid: int = out["oneid"]
        return oneid

    def set_tags(
        self,
        table: _tables.TableLike,
        user: str = "user_id",
        kind: str = "member_no",
        *,
        now: Optional[_dt.datetime] = None,
    ) -> Dict[str, Any]:
        """Set tags from a wide table (pandas, polars, pyarrow, duckdb, any Arrow PyCapsule
        object): one row per user, identified by the ``user`` column as identifiers of ``kind``
        (created if new); every other column is a tag, typed from its Arrow type (bool → bool,
        numbers → number, text/categoricals → enum, dates/timestamps → date; timestamps without
        a zone are UTC). Nulls remove a value. Undefined tags are defined as manual tags. The
        table goes to the engine as Arrow (no JSON); a missing ``user`` column, a null user or a
        column of another type raises ``TableError`` naming the column (and row).

        >>> import pandas as pd, userops
        >>> e = userops.Engine()
        >>> _ = e.set_tags(pd.DataFrame({"user_id": ["M1", "M2"], "vip": [True, False],
        ...                              "tier": ["gold", None]}))
        >>> len(e.audience('vip AND tier = "gold"'))
        1
        """
        arrow, _ = _tables.to_arrow(table)
        args = {} if now is None else {"now": now.isoformat()}
        out: Dict[str, Any] = self._reply(*self._native.set_tags_table(arrow, user, kind, **args))
        return out

    def refresh_tags(self, *, now: Optional[_dt.datetime] = None) -> Dict[str, Any]:
        """Recompute every rule tag at ``now`` (default: the current time)."""
        out: Dict[str, Any] = self.call("refresh_tags", **_now_arg(now))
        return out

    def tags(self) -> List[Dict[str, Any]]:
        """Tag definitions with user counts and index memory (bytes)."""
        out: List[Dict[str, Any]] = self.call("tags")
        return out

    def audience(self, expression: str, *, now: Optional[_dt.datetime] = None) -> Audience:
        """Evaluate an audience expression, e.g.
        ``'tier IN ("gold", "silver") AND NOT churned AND last_order >= now - 30d'``.
        A loyalty program's points and tier are columns too: ``points("brand-a") >= 1000``,
        ``tier("brand-a") = "gold"`` (current after every ledger write and tier change).
        Raises ``AudienceSyntaxError`` (with ``.position``) on a bad expression (also for
        an unknown program)."""
        out = self.call("audience", expression=expression, **_now_arg(now))
        return Audience(self, out["expression"], out["now"], out["oneids"])

    def save_audience(self, name: str, expression: str, *, now: Optional[_dt.datetime] = None) -> Dict[str, Any]:
        """Evaluate and save an audience; returns name, expression, size and size history."""
        out: Dict[str, Any] = self.call("save_audience", name=name, expression=expression, **_now_arg(now))
        return out

    def refresh_audience(self, name: str, *, now: Optional[_dt.datetime] = None) -> Dict[str, Any]:
        """Re-evaluate a saved audience, appending to its size history."""
        out: Dict[str, Any] = self.call("refresh_audience", name=name, **_now_arg(now))
        return out

    def combine_audiences(
        self, name: str, op: str, audiences: Sequence[str], *, now: Optional[_dt.datetime] = None
    ) -> Dict[str, Any]:
        """Save ``union``, ``intersection`` or ``difference`` (first minus the rest) of saved
        audiences as a new audience."""
        out: Dict[str, Any] = self.call(
            "combine_audiences", name=name, op=op, audiences=list(audiences), **_now_arg(now)
        )
        return out

    def delete_audience(self, name: str) -> Dict[str, Any]:
        """Delete a saved audience."""
        out: Dict[str, Any] = self.call("delete_audience", name=name)
        return out

    def audiences(self) -> List[Dict[str, Any]]:
        """Saved audiences (without members)."""
        out: List[Dict[str, Any]] = self.call("audiences")
        return out

    def audience_members(self, name: str) -> Audience:
        """A saved audience's members as of its last evaluation."""
        out = self.call("audience_members", name=name)
        return Audience(self, out["expression"], out["now"], out["oneids"])

    def export_audience(self, name: str, kind: Optional[str] = None) -> Dict[str, Any]:
        """Export a saved audience: OneIDs, or identifiers of ``kind`` (e.g. ``"phone"``) with
        the members that have none in ``missing``."""
        out: Dict[str, Any] = self.call("export_audience", name=name, kind=kind)
        return out
