"""Tags, audiences and exports (SPEC §4)."""

from __future__ import annotations

import datetime as _dt
import math
from array import array
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence

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

    def __init__(self, engine: "TagsMethods", expression: str, now: str, oneids: Iterable[int]) -> None:
        self._engine = engine
        #: The expression in canonical form.
        self.expression = expression
        #: The instant relative dates referred to (RFC 3339).
        self.now = now
        # Unsigned 64-bit, packed: a large audience is not a list of Python ints.
        self._oneids = oneids if isinstance(oneids, array) else array("Q", oneids)

    def __len__(self) -> int:
        return len(self._oneids)

    def __repr__(self) -> str:
        return f"Audience({self.expression!r}, size={len(self)})"

    def oneids(self, like: str = "pyarrow") -> Any:
        """The members' OneIDs: a ``pyarrow`` uint64 array (default), or ``"list"``,
        ``"pandas"`` (Series) or
        ``"polars"`` (Series). Raises ``InvalidArgument`` for another ``like``.

        >>> import userops
        >>> a = userops.sample_engine().audience("gmv >= 100")
        >>> a.oneids("list"), a.oneids().type, a.oneids("pandas").tolist()
        ([1, 3], DataType(uint64), [1, 3])
        """
        if like == "list":
            return self._oneids.tolist()
        arr = self._arrow()
        if like == "pyarrow":
            return arr
        if like == "pandas":
            return arr.to_pandas().rename("oneid")
        if like == "polars":
            import polars as pl

            return pl.Series("oneid", arr)
        raise InvalidArgument(f"like={like!r}: use pyarrow, list, pandas or polars", field="like")

    def _arrow(self) -> Any:
        """The members as a pyarrow uint64 array over the packed buffer (no copy)."""
        import pyarrow as pa

        return pa.Array.from_buffers(pa.uint64(), len(self._oneids), [None, pa.py_buffer(self._oneids)])

    def export(self, kind: Optional[str] = None) -> Any:
        """The members as a pyarrow table: ``oneid`` and, when ``kind`` is given, one row per
        identifier of that kind (``value``; members without one are left out).

        >>> import userops
        >>> userops.sample_engine().audience("gmv >= 100").export("phone").to_pylist()
        [{'oneid': 1, 'value': '+8613800000001'}, {'oneid': 3, 'value': '+8613800000003'}]
        """
        import pyarrow as pa

        if kind is None:
            return pa.table({"oneid": self._arrow()})
        out = self._engine.call("export_oneids", oneids=self._oneids.tolist(), kind=kind)
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
        audience expression, recomputed when its inputs change), or a model tag (``model``
        names the model that writes it). Returns the definition. Raises ``InvalidArgument`` for
        an unknown type or a name in use, ``AudienceSyntaxError`` for a bad rule.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> e.define_tag("big_spender", rule="gmv >= 400", now=now)["kind"]
        {'rule': {'expression': 'gmv >= 400.0'}}
        >>> e.audience("big_spender", now=now).oneids("list")
        [1]
        """
        out: Dict[str, Any] = self.call(
            "define_tag", name=name, type=type, rule=rule, model=model, description=description, **_now_arg(now)
        )
        return out

    def set_tag(self, user: Any, tag: str, value: Any, *, now: Optional[_dt.datetime] = None) -> int:
        """Set (``None``: remove) one user's value of a manual or model tag; returns the OneID
        (a new identifier creates its person). Raises ``InvalidArgument`` for an undefined
        tag, a rule tag or a value of the wrong type.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.define_tag("tier", "enum")
        >>> e.set_tag(("member_no", "M2"), "tier", "gold"), e.audience('tier = "gold"').oneids("list")
        (2, [2])
        """
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
        """Recompute every rule tag at ``now`` (default: the current time): rules with relative
        dates (``last_order >= now - 30d``) change as time passes. Returns ``rules`` (the rule
        tags recomputed).

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> _ = e.define_tag("recent_buyer", rule="last_order >= now - 30d", now=now)
        >>> e.refresh_tags(now=now)["rules"], len(e.audience("recent_buyer", now=now))
        (['recent_buyer'], 1)
        """
        out: Dict[str, Any] = self.call("refresh_tags", **_now_arg(now))
        return out

    def tags(self) -> List[Dict[str, Any]]:
        """Tag definitions with user counts and index memory (bytes): ``name``, ``type``,
        ``kind`` (``manual``, ``{"rule": ...}`` or ``{"model": ...}``), ``description``,
        ``users``, ``memory_bytes``.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.define_tag("vip", description="hand-picked"); _ = e.set_tag(("member_no", "M1"), "vip", True)
        >>> [(t["name"], t["type"], t["users"]) for t in e.tags()]
        [('vip', 'bool', 1)]
        """
        out: List[Dict[str, Any]] = self.call("tags")
        return out

    def audience(self, expression: str, *, now: Optional[_dt.datetime] = None) -> Audience:
        """Evaluate an audience expression, e.g.
        ``'tier IN ("gold", "silver") AND NOT churned AND last_order >= now - 30d'``.
        Tags, profile attributes and aggregates (``gmv``, ``orders``, ``last_order``, ...) may
        be used; relative dates are measured from ``now`` (default: the current time). A loyalty
        program's points and tier are columns too: ``points("brand-a") >= 1000``,
        ``tier("brand-a") = "gold"`` (current after every ledger write and tier change). Returns
        an :class:`Audience`. Raises ``AudienceSyntaxError`` (with ``.position``) on a bad
        expression (also for an unknown program).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.audience("orders >= 2 AND gmv > 200")
        Audience('orders >= 2.0 AND gmv > 200.0', size=1)
        >>> try:
        ...     e.audience("orders >=")
        ... except userops.AudienceSyntaxError as err:
        ...     print(err.position)
        9
        """
        ok, text, members = self._native.audience_members(
            _convert.dumps({"expression": expression, **_now_arg(now)})
        )
        out = self._reply(ok, text)
        packed = array("Q")
        packed.frombytes(members)
        return Audience(self, out["expression"], out["now"], packed)

    def save_audience(self, name: str, expression: str, *, now: Optional[_dt.datetime] = None) -> Dict[str, Any]:
        """Evaluate and save an audience (replacing one of the same name); returns ``name``,
        ``expression``, ``size`` and ``history`` (``at``, ``size`` per evaluation).

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> e.save_audience("big", "gmv >= 400", now=now)
        {'name': 'big', 'expression': 'gmv >= 400.0', 'size': 1, 'history': [{'at': '2026-03-01T00:00:00Z', 'size': 1}]}
        """
        out: Dict[str, Any] = self.call("save_audience", name=name, expression=expression, **_now_arg(now))
        return out

    def refresh_audience(self, name: str, *, now: Optional[_dt.datetime] = None) -> Dict[str, Any]:
        """Re-evaluate a saved audience, appending to its size history. Raises ``NotFound`` for
        an unknown name.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> _ = e.save_audience("big", "gmv >= 400", now=now)
        >>> [h["size"] for h in e.refresh_audience("big", now=now)["history"]]
        [1, 1]
        """
        out: Dict[str, Any] = self.call("refresh_audience", name=name, **_now_arg(now))
        return out

    def combine_audiences(
        self, name: str, op: str, audiences: Sequence[str], *, now: Optional[_dt.datetime] = None
    ) -> Dict[str, Any]:
        """Save ``union``, ``intersection`` or ``difference`` (first minus the rest) of saved
        audiences as a new audience (kept as an expression over ``in_audience(...)``): at
        least two, as many as you like.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> _ = e.define_tag("tier", "enum"); _ = e.set_tag(("member_no", "M2"), "tier", "gold")
        >>> _ = e.save_audience("gold", 'tier = "gold"', now=now)
        >>> _ = e.save_audience("big", "gmv >= 400", now=now)
        >>> c = e.combine_audiences("either", "union", ["gold", "big"], now=now)
        >>> c["expression"], c["size"]
        ('in_audience("gold") OR in_audience("big")', 2)
        """
        out: Dict[str, Any] = self.call(
            "combine_audiences", name=name, op=op, audiences=list(audiences), **_now_arg(now)
        )
        return out

    def delete_audience(self, name: str) -> Dict[str, Any]:
        """Delete a saved audience; returns what it was. Raises ``NotFound`` for an unknown
        name and ``InvalidArgument`` while an automation rule selects users by it (replace the
        rule first: a rule whose audience is gone would never fire).

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> _ = e.define_tag("tier", "enum"); _ = e.set_tag(("member_no", "M2"), "tier", "gold")
        >>> _ = e.save_audience("gold", 'tier = "gold"', now=now)
        >>> _ = e.save_audience("big", "gmv >= 400", now=now)
        >>> e.delete_audience("big")["name"], [a["name"] for a in e.audiences()]
        ('big', ['gold'])
        """
        out: Dict[str, Any] = self.call("delete_audience", name=name)
        return out

    def audiences(self) -> List[Dict[str, Any]]:
        """Saved audiences (without members), by name: ``name``, ``expression``, ``size``,
        ``history``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> _ = e.define_tag("tier", "enum"); _ = e.set_tag(("member_no", "M2"), "tier", "gold")
        >>> _ = e.save_audience("gold", 'tier = "gold"', now=now)
        >>> _ = e.save_audience("big", "gmv >= 400", now=now)
        >>> [(a["name"], a["size"]) for a in e.audiences()]
        [('big', 1), ('gold', 1)]
        """
        out: List[Dict[str, Any]] = self.call("audiences")
        return out

    def audience_members(self, name: str) -> Audience:
        """A saved audience's members as of its last evaluation, as an :class:`Audience`.
        Raises ``NotFound`` for an unknown name.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> _ = e.define_tag("tier", "enum"); _ = e.set_tag(("member_no", "M2"), "tier", "gold")
        >>> _ = e.save_audience("gold", 'tier = "gold"', now=now)
        >>> _ = e.save_audience("big", "gmv >= 400", now=now)
        >>> e.audience_members("gold").oneids("list")
        [2]
        """
        out = self.call("audience_members", name=name)
        return Audience(self, out["expression"], out["now"], out["oneids"])

    def export_audience(self, name: str, kind: Optional[str] = None) -> Dict[str, Any]:
        """Export a saved audience: OneIDs, or identifiers of ``kind`` (e.g. ``"phone"``) with
        the members that have none in ``missing``: ``{"kind", "rows": [{"oneid", "value"}],
        "missing"}``.

        >>> import datetime as dt, userops
        >>> e = userops.sample_engine()
        >>> now = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
        >>> _ = e.define_tag("tier", "enum"); _ = e.set_tag(("member_no", "M2"), "tier", "gold")
        >>> _ = e.save_audience("gold", 'tier = "gold"', now=now)
        >>> _ = e.save_audience("big", "gmv >= 400", now=now)
        >>> e.export_audience("gold", "phone")
        {'kind': 'phone', 'rows': [{'oneid': 2, 'value': '+8613800000002'}], 'missing': []}
        """
        out: Dict[str, Any] = self.call("export_audience", name=name, kind=kind)
        return out
