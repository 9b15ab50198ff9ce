"""OneID from Python: engine identity methods, the standalone ``IdentityGraph`` and
``resolve_identities`` over pandas / polars / pyarrow tables."""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import _convert, _progress, _tables
from ._base import EngineBase
from ._native import NativeIdentityGraph as _NativeIdentityGraph
from .errors import InvalidArgument, from_report

#: An identifier: ``{"kind": ..., "value": ...}`` or a ``(kind, value)`` tuple.
IdLike = Union[Mapping[str, Any], Tuple[str, str]]

#: A time: an aware ``datetime`` or RFC 3339 text with a zone.
TimeLike = Union[_dt.datetime, str]


def _ident(value: IdLike, field: str) -> Dict[str, Any]:
    if isinstance(value, tuple) and len(value) == 2:
        return {"kind": value[0], "value": value[1]}
    if isinstance(value, Mapping):
        return dict(value)
    raise InvalidArgument("an identifier is a {kind, value} dict or a (kind, value) tuple", field=field)


class IdentityMethods(EngineBase):
    """Identity commands of the engine: rules, operator merge and split, explanations."""

    def set_identity_rules(self, rules: Mapping[str, Any], actor: str, reason: str) -> Dict[str, Any]:
        """Replace the identity rules (they apply to links from now on); audited.

        ``rules`` fields: ``non_linking_kinds``, ``caps`` (kind -> max per person),
        ``per_source_caps``, ``blocklist`` (identifiers), ``block_patterns``
        (``{"kind", "glob"}``), ``junk_threshold``, ``priority`` (kinds, highest first).
        Missing fields take the defaults. Returns the rules now in force. Raises
        ``InvalidArgument`` for a malformed rule (an unknown kind, a cap of 0).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.set_identity_rules({"caps": {"phone": 1, "device_id": 2}}, actor="ops", reason="shared tablets")["caps"]
        {'phone': 1, 'device_id': 2}
        >>> e.identity_audit()[0]["action"]
        'set_identity_rules'
        """
        out: Dict[str, Any] = self.call("set_identity_rules", rules=dict(rules), actor=actor, reason=reason)
        return out

    def identity_rules(self) -> Dict[str, Any]:
        """The identity rules in force (see :meth:`set_identity_rules` for the fields).

        >>> import userops
        >>> r = userops.sample_engine().identity_rules()
        >>> r["caps"]["phone"], r["priority"][:3]
        (1, ['unionid', 'member_no', 'phone'])
        """
        out: Dict[str, Any] = self.call("identity_rules")
        return out

    def explain(self, a: IdLike, b: IdLike) -> Dict[str, Any]:
        """Why two identifiers are one person or not: ``joined``, their OneIDs (``oneid_a``,
        ``oneid_b``), the shortest ``chain`` of evidence (each link: ``from``, ``to``, the
        ``record`` and ``source`` that saw them together, ``ts``) or the ``reasons`` they are
        apart. Identifiers are normalized first (phones to E.164).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> x = e.explain(("member_no", "M1"), ("phone", "138 0000 0001"))
        >>> x["joined"], [(s["record"], s["to"]["value"]) for s in x["chain"]]
        (True, [('id-M1', '+8613800000001')])
        >>> e.explain(("member_no", "M1"), ("member_no", "M2"))["reasons"]
        ['no record links them, directly or through other identifiers']
        """
        out: Dict[str, Any] = self.call("explain", a=_ident(a, "a"), b=_ident(b, "b"))
        return out

    def merge(
        self,
        a: _convert.UserLike,
        b: _convert.UserLike,
        actor: str,
        reason: str,
        time: Optional[TimeLike] = None,
    ) -> Dict[str, Any]:
        """Merge two persons by hand (audited), at ``time`` (an aware ``datetime`` or RFC 3339
        text; default: now), which dates the points and tier changes the merge makes. The
        older OneID survives; every module folds the absorbed person's state into it (consent:
        the latest statement wins, a withdrawal wins a tie). Returns the merge report:
        ``survivor``, ``absorbed``, ``identifiers_moved``, ``evidence`` (the manual record,
        ``manual:N``, that :meth:`split` can remove) and ``modules`` (what each module moved:
        attributes, tags, points, journey steps, consent, ...). Raises ``InvalidArgument`` when
        the merged person would break a cap of the rules, ``NotFound`` for an unknown or erased
        person.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.ingest({"kind": "identify", "key": "jd-1", "time": "2026-02-01T10:00:00+08:00",
        ...               "source": {"platform": "jd", "program": "brand-a"},
        ...               "ids": [{"kind": "device_id", "value": "d-77"}]})
        >>> m = e.merge(("member_no", "M1"), ("device_id", "d-77"), actor="ops", reason="same shopper",
        ...             time="2026-02-02T10:00:00+08:00")
        >>> m["survivor"], m["absorbed"], m["evidence"]
        (1, [4], ['manual:1'])
        """
        out: Dict[str, Any] = self.call(
            "merge", a=_convert.user(a), b=_convert.user(b), actor=actor, reason=reason, time=time
        )
        return out

    def split(
        self, evidence: Sequence[str], actor: str, reason: str, time: Optional[TimeLike] = None
    ) -> Dict[str, Any]:
        """Remove the evidence of the named records (``manual:N`` for a manual merge) and
        recompute the persons (audited), at ``time`` (default: now). Each part gets back what
        the merges moved (points with their expiries, tags, attributes, orders, journey,
        consent, coupons, ...). Returns ``split`` (the persons split), ``parts`` (each ``oneid``
        with its ``identifiers``), ``edges_removed`` and ``not_split_back`` (per module, what
        could not go back, such as points spent since the merge). Raises ``NotFound`` for an
        unknown record and ``InvalidArgument`` for the evidence of an erased person.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.ingest({"kind": "identify", "key": "jd-1", "time": "2026-02-01T10:00:00+08:00",
        ...               "source": {"platform": "jd", "program": "brand-a"},
        ...               "ids": [{"kind": "device_id", "value": "d-77"}]})
        >>> _ = e.merge(("member_no", "M1"), ("device_id", "d-77"), actor="ops", reason="same shopper",
        ...             time="2026-02-02T10:00:00+08:00")
        >>> s = e.split(["manual:1"], actor="ops", reason="two people after all", time="2026-02-03T10:00:00+08:00")
        >>> [(p["oneid"], len(p["identifiers"])) for p in s["parts"]], list(s["not_split_back"])
        ([(1, 2), (4, 1)], ['identity'])
        """
        out: Dict[str, Any] = self.call(
            "split", evidence=list(evidence), actor=actor, reason=reason, time=time
        )
        return out

    def conflicts(self, oneid: Optional[int] = None) -> List[Dict[str, Any]]:
        """Links refused by the rules (all, or those involving one person): ``record``,
        ``identifier``, the person that ``kept`` it and the ``other``, and the ``reason`` (a
        cap, a blocklist entry, a junk identifier).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.ingest({"kind": "identify", "key": "jd-2", "time": "2026-02-01T10:00:00+08:00",
        ...               "source": {"platform": "jd", "program": "brand-a"},
        ...               "ids": [{"kind": "member_no", "value": "M1"}, {"kind": "phone", "value": "13800000009"}]})
        >>> [(c["identifier"]["value"], c["kept"], c["reason"]["type"]) for c in e.conflicts(1)]
        [('+8613800000009', 1, 'cap')]
        """
        out: List[Dict[str, Any]] = self.call("conflicts", oneid=oneid)
        return out

    def canonical(self, oneid: int) -> Optional[int]:
        """The live OneID an old (possibly absorbed) OneID stands for (itself when live,
        ``None`` when it never existed).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.ingest({"kind": "identify", "key": "jd-1", "time": "2026-02-01T10:00:00+08:00",
        ...               "source": {"platform": "jd", "program": "brand-a"},
        ...               "ids": [{"kind": "device_id", "value": "d-77"}]})
        >>> _ = e.merge(("member_no", "M1"), ("device_id", "d-77"), actor="ops", reason="same shopper")
        >>> e.canonical(4), e.canonical(2), e.canonical(99)
        (1, 2, None)
        """
        out: Optional[int] = self.call("canonical", oneid=oneid)["oneid"]
        return out

    def identifiers(self, user: _convert.UserLike) -> List[Dict[str, str]]:
        """A person's identifiers (normalized), in the order first seen. Raises ``NotFound``
        for an unknown user.

        >>> import userops
        >>> userops.sample_engine().identifiers(("member_no", "M2"))
        [{'kind': 'member_no', 'value': 'M2'}, {'kind': 'phone', 'value': '+8613800000002'}]
        """
        out: List[Dict[str, str]] = self.call("identifiers", user=_convert.user(user))
        return out

    def merge_history(self, oneid: Optional[int] = None) -> List[Dict[str, Any]]:
        """Merges (all, or those where ``oneid`` survived or was absorbed), oldest first:
        ``survivor``, ``absorbed``, ``cause`` (``record`` or ``manual``) and ``record``.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.ingest({"kind": "identify", "key": "jd-1", "time": "2026-02-01T10:00:00+08:00",
        ...               "source": {"platform": "jd", "program": "brand-a"},
        ...               "ids": [{"kind": "device_id", "value": "d-77"}]})
        >>> _ = e.merge(("member_no", "M1"), ("device_id", "d-77"), actor="ops", reason="same shopper")
        >>> e.merge_history(4)
        [{'survivor': 1, 'absorbed': 4, 'cause': 'manual', 'record': 'manual:1'}]
        """
        out: List[Dict[str, Any]] = self.call("merge_history", oneid=oneid)
        return out

    def identity_audit(self) -> List[Dict[str, Any]]:
        """Operator actions on identity (merges, splits, rule changes), oldest first: ``seq``,
        ``action``, ``actor``, ``reason`` and ``detail``.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> _ = e.ingest({"kind": "identify", "key": "jd-1", "time": "2026-02-01T10:00:00+08:00",
        ...               "source": {"platform": "jd", "program": "brand-a"},
        ...               "ids": [{"kind": "device_id", "value": "d-77"}]})
        >>> _ = e.merge(("member_no", "M1"), ("device_id", "d-77"), actor="ops", reason="same shopper")
        >>> [(a["action"], a["actor"], a["reason"]) for a in e.identity_audit()]
        [('merge', 'ops', 'same shopper')]
        """
        out: List[Dict[str, Any]] = self.call("identity_audit")
        return out


class IdentityGraph:
    """A standalone identity graph: link records, resolve, explain, merge, split.

    >>> g = IdentityGraph()
    >>> a = g.link("A", [("phone", "13800138000"), ("device_id", "d1")])["oneid"]
    >>> _ = g.link("B", [("email", "b@x.com"), ("device_id", "d1")])
    >>> g.link("C", [("email", "b@x.com"), ("openid", "o1")])["oneid"] == a
    True
    >>> [s["record"] for s in g.explain(("phone", "13800138000"), ("openid", "o1"))["chain"]]
    ['A', 'B', 'C']
    """

    def __init__(self, rules: Optional[Mapping[str, Any]] = None) -> None:
        self._native = _NativeIdentityGraph()
        if rules is not None:
            self._call("set_rules", rules=dict(rules))

    def _call(self, method: str, **args: Any) -> Any:
        ok, out = self._native.call(method, _convert.dumps(args))
        if not ok:
            raise from_report(json.loads(out))
        return json.loads(out)

    def link(self, record_id: str, ids: Sequence[IdLike], source: str = "", ts: int = 0) -> Dict[str, Any]:
        """Link the identifiers of one record (``record_id``; ``source`` and ``ts``, ms since
        the epoch, are kept as evidence). Returns ``oneid``, ``absorbed`` (persons merged into
        it), ``created``, ``conflicts`` (identifiers refused by a cap) and ``blocked``
        (blocklisted or junk identifiers). Raises ``InvalidIdentifier`` for a malformed
        identifier.

        >>> g = IdentityGraph()
        >>> g.link("A", [("phone", "13800138000"), ("device_id", "d1")])
        {'oneid': 1, 'absorbed': [], 'created': True, 'conflicts': [], 'blocked': []}
        >>> g.link("B", [("phone", "13800138000"), ("phone", "13900139000")])["conflicts"][0]["reason"]
        {'type': 'cap', 'kind': 'phone', 'cap': 1}
        """
        out: Dict[str, Any] = self._call(
            "link", id=record_id, ids=[_ident(i, f"ids[{n}]") for n, i in enumerate(ids)], source=source, ts=ts
        )
        return out

    def resolve(self, identifier: IdLike) -> Optional[int]:
        """The OneID of an identifier, or ``None`` when unknown (creates nothing).

        >>> g = IdentityGraph()
        >>> _ = g.link("A", [("phone", "13800138000")])
        >>> g.resolve(("phone", "+86 138 0013 8000")), g.resolve(("phone", "13900139000"))
        (1, None)
        """
        out: Optional[int] = self._call("resolve", id=_ident(identifier, "id"))["oneid"]
        return out

    def explain(self, a: IdLike, b: IdLike) -> Dict[str, Any]:
        """The shortest evidence chain joining two identifiers, or the reasons they are apart
        (as :meth:`userops.Engine.explain`).

        >>> g = IdentityGraph()
        >>> _ = g.link("A", [("phone", "13800138000"), ("device_id", "d1")])
        >>> _ = g.link("B", [("device_id", "d1"), ("openid", "o-1")])
        >>> [s["record"] for s in g.explain(("phone", "13800138000"), ("openid", "o-1"))["chain"]]
        ['A', 'B']
        """
        out: Dict[str, Any] = self._call("explain", a=_ident(a, "a"), b=_ident(b, "b"))
        return out

    def merge(self, a: _convert.UserLike, b: _convert.UserLike, actor: str, reason: str) -> Dict[str, Any]:
        """Merge two persons by hand (audited); returns the merge report (as
        :meth:`userops.Engine.merge`). Raises ``InvalidArgument`` when a cap would break.

        >>> g = IdentityGraph()
        >>> _ = g.link("A", [("phone", "13800138000")]); _ = g.link("C", [("openid", "o-9")])
        >>> g.merge(("phone", "13800138000"), ("openid", "o-9"), actor="ops", reason="same")["absorbed"]
        [2]
        """
        out: Dict[str, Any] = self._call("merge", a=_convert.user(a), b=_convert.user(b), actor=actor, reason=reason)
        return out

    def split(self, evidence: Sequence[str], actor: str, reason: str) -> Dict[str, Any]:
        """Remove the named records' evidence and recompute the persons (audited); returns
        ``split``, ``parts``, ``edges_removed``, ``not_split_back``.

        >>> g = IdentityGraph()
        >>> _ = g.link("A", [("phone", "13800138000"), ("device_id", "d1")])
        >>> _ = g.link("B", [("device_id", "d1"), ("openid", "o-1")])
        >>> [p["oneid"] for p in g.split(["B"], actor="ops", reason="shared device")["parts"]]
        [1, 2]
        """
        out: Dict[str, Any] = self._call("split", evidence=list(evidence), actor=actor, reason=reason)
        return out

    def conflicts(self, oneid: Optional[int] = None) -> List[Dict[str, Any]]:
        """Links refused by the rules (all, or those of one person).

        >>> g = IdentityGraph()
        >>> _ = g.link("D", [("phone", "13800138000"), ("phone", "13900139000")])
        >>> [(c["record"], c["identifier"]["value"]) for c in g.conflicts()]
        [('D', '+8613900139000')]
        """
        out: List[Dict[str, Any]] = self._call("conflicts", oneid=oneid)
        return out

    def canonical(self, oneid: int) -> Optional[int]:
        """The live OneID an old OneID stands for (``None`` if it never existed).

        >>> g = IdentityGraph()
        >>> _ = g.link("A", [("phone", "13800138000")]); _ = g.link("C", [("openid", "o-9")])
        >>> _ = g.link("E", [("phone", "13800138000"), ("openid", "o-9")])
        >>> g.canonical(2), g.canonical(7)
        (1, None)
        """
        out: Optional[int] = self._call("canonical", oneid=oneid)["oneid"]
        return out

    def identifiers(self, user: _convert.UserLike) -> List[Dict[str, str]]:
        """A person's identifiers (normalized), in the order first seen.

        >>> g = IdentityGraph()
        >>> _ = g.link("A", [("phone", "13800138000"), ("email", "Li@Example.com")])
        >>> g.identifiers(1)
        [{'kind': 'phone', 'value': '+8613800138000'}, {'kind': 'email', 'value': 'li@example.com'}]
        """
        out: List[Dict[str, str]] = self._call("identifiers", user=_convert.user(user))
        return out

    def merge_history(self, oneid: Optional[int] = None) -> List[Dict[str, Any]]:
        """Merges, all or of one person: ``survivor``, ``absorbed``, ``cause``, ``record``.

        >>> g = IdentityGraph()
        >>> _ = g.link("A", [("phone", "13800138000")]); _ = g.link("C", [("openid", "o-9")])
        >>> _ = g.link("E", [("phone", "13800138000"), ("openid", "o-9")])
        >>> g.merge_history()
        [{'survivor': 1, 'absorbed': 2, 'cause': 'record', 'record': 'E'}]
        """
        out: List[Dict[str, Any]] = self._call("merge_history", oneid=oneid)
        return out

    def audit(self) -> List[Dict[str, Any]]:
        """Operator actions (manual merges, splits, rule changes): ``seq``, ``action``,
        ``actor``, ``reason``, ``detail``.

        >>> g = IdentityGraph()
        >>> _ = g.link("A", [("phone", "13800138000")]); _ = g.link("C", [("openid", "o-9")])
        >>> _ = g.merge(1, 2, actor="ops", reason="same")
        >>> [(a["action"], a["actor"]) for a in g.audit()]
        [('merge', 'ops')]
        """
        out: List[Dict[str, Any]] = self._call("audit")
        return out

    def rules(self) -> Dict[str, Any]:
        """The rules in force (see :meth:`userops.Engine.set_identity_rules`).

        >>> IdentityGraph({"caps": {"phone": 2}}).rules()["caps"]
        {'phone': 2}
        """
        out: Dict[str, Any] = self._call("rules")
        return out

    def resolve_columns(
        self,
        record_id: Sequence[str],
        kind: Sequence[str],
        value: Sequence[str],
        source: Optional[Sequence[str]] = None,
        ts: Optional[Sequence[int]] = None,
    ) -> Tuple[List[Optional[int]], List[Dict[str, Any]]]:
        """Resolve identifier rows given as columns: one OneID (``None`` if rejected) per row,
        and the rejected rows (``row``, ``reason``). Rows with the same ``record_id`` are one
        record. For tables, :func:`resolve_identities` reads the columns straight from Arrow.

        >>> g = IdentityGraph()
        >>> oneids, rejected = g.resolve_columns(["r1", "r1", "r2"], ["phone", "device_id", "email"],
        ...                                      ["13700137000", "d9", "not-an-email"])
        >>> oneids, [r["row"] for r in rejected]
        ([1, 1, None], [2])
        """
        n = len(record_id)
        src = list(source) if source is not None else [""] * n
        times = list(ts) if ts is not None else [0] * n
        ok, reply, err = self._native.resolve_columns(list(record_id), list(kind), list(value), src, times)
        if not ok or reply is None:
            raise from_report(json.loads(err))
        oneids, rejected = reply
        return oneids, json.loads(rejected)


def resolve_identities(
    table: _tables.TableLike,
    rules: Optional[Mapping[str, Any]] = None,
    graph: Optional[IdentityGraph] = None,
    *,
    record_id: str = "record_id",
    kind: str = "kind",
    value: str = "value",
    source: str = "source",
    ts: str = "ts",
    output: _tables.Output = None,
    progress: _tables.Progress = None,
) -> Any:
    """Resolve a table of identifier rows to OneIDs.

    Columns (names configurable): ``record_id``, ``kind``, ``value`` (required, text or
    integers; a null raises ``TableError`` naming the column and row), ``source`` and ``ts``
    (optional: integer ms since the epoch, a timestamp with a zone or RFC 3339 text). Rows with
    the same ``record_id`` are one record. The columns are read in Rust straight from Arrow,
    without the GIL. Returns the same kind of table (or ``output``) with two columns added:
    ``oneid`` (null for a rejected row) and ``reject_reason`` (null for an accepted row). Links
    go into ``graph`` when given (so later calls see earlier ones), else into a new graph under
    ``rules``.

    The table is resolved as one batch. As its records are linked, ``progress`` hears of the
    rows done (see :mod:`userops._progress`) and Ctrl-C is honoured (``KeyboardInterrupt``; the
    records linked before it stay in ``graph``, the rest are not linked).

    >>> import pandas as pd, userops
    >>> rows = pd.DataFrame({"record_id": ["A", "A", "B", "B"],
    ...                      "kind": ["phone", "device_id", "device_id", "email"],
    ...                      "value": ["13800138000", "d1", "d1", "not-an-email"]})
    >>> out = userops.resolve_identities(rows)
    >>> out["oneid"].tolist(), out["reject_reason"].notna().tolist()
    ([1, 1, 1, <NA>], [False, False, False, True])
    """
    _tables.check_output(output)
    arrow, in_kind = _tables.to_arrow(table)
    g = graph if graph is not None else IdentityGraph(rules)
    with _progress.reporter(progress, total=arrow.num_rows, desc="resolve") as report:
        added = g._native.resolve_table(
            arrow, record_id=record_id, kind=kind, value=value, source=source, ts=ts,
            progress=report,
        )
    out_kind = output or in_kind
    if out_kind == in_kind == "pandas":
        extra = _tables.from_arrow(added, "pandas")
        result = table.copy()
        # Positional (the caller's index may be anything); nullable dtypes keep ids integers.
        result["oneid"] = extra["oneid"].astype("Int64").array
        result["reject_reason"] = extra["reject_reason"].astype("string").array
        return result
    if out_kind == in_kind == "polars":
        return table.with_columns(_tables.from_arrow(added, "polars"))
    pa = _tables.require_pyarrow()
    extra = pa.table(added)
    merged = arrow.append_column("oneid", extra.column("oneid")).append_column(
        "reject_reason", extra.column("reject_reason")
    )
    return _tables.from_arrow(merged, out_kind)
