"""Lifecycle stages and the active-rate decomposition: table functions and engine methods."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import _columns as C
from . import _native
from ._base import EngineBase

_GROUPS = {
    # decomposition group -> (size column, retained column, rate column)
    "old_active": ("old_active", "old_retained", "old_retention"),
    "new": ("last_new", "new_retained", "new_retention"),
    "dormant": ("dormant", "woken", "wake_rate"),
    "churned": ("churned", "returned", "return_rate"),
}


def _inputs(
    table: Any, user: str, time: str, registered: Optional[str], period: str, tz: Any,
    churn_after: int, early_activity: str, through: Optional[str],
) -> Dict[str, Any]:
    t = C.to_arrow(table)
    users = C.UserCodes([C.column(t, user, "user")])
    ms = C.time_ms(C.column(t, time, "time"), "time")
    args: Dict[str, Any] = dict(
        user=C.u64_bytes(users.codes[0]), time=C.i64_bytes(ms), period=period,
        utc_offset_seconds=C.utc_offset_seconds(tz), churn_after=churn_after,
        early_activity=early_activity, through=through,
    )
    if registered is not None:
        if registered not in t.column_names:
            raise C.InvalidArgument(f"no column {registered!r}", field="registered")
        import pyarrow.compute as pc

        reg = t.column(registered).combine_chunks()
        keep = pc.is_valid(reg)
        args["reg_user"] = C.u64_bytes(users.codes[0].filter(keep))
        args["reg_time"] = C.i64_bytes(C.time_ms(reg.filter(keep), "registered"))
    return {"t": t, "users": users, "args": args}


def lifecycle(
    table: Any,
    *,
    user: str = "user",
    time: str = "time",
    registered: Optional[str] = None,
    period: str = "month",
    tz: Any = 8,
    churn_after: int = 2,
    early_activity: str = "error",
    through: Optional[str] = None,
) -> Any:
    """The lifecycle stage of every user in every period (SPEC §5), from an activity table.

    ``table`` (pandas, polars or Arrow) has one row per qualifying activity: ``user`` (ids) and
    ``time`` (timestamps *with* a time zone). ``registered`` names an optional column of
    registration times (null where unknown; a user with none is registered at their first
    activity). Periods (``"day"``, ``"week"``, ``"month"``) are cut in the business zone ``tz``
    (hours east of UTC, ``"+08:00"`` or a ``datetime.timezone``). An activity before registration
    raises ``InvalidArgument`` unless ``early_activity="register_at_first_activity"``.

    Returns a table of the caller's kind with columns ``user``, ``period`` and ``stage`` (one of
    new, last_period_new, active, awakened, returned, dormant, churned), from each user's
    registration period to the last period of the data (or ``through``).
    """
    import numpy as np
    import pyarrow as pa

    i = _inputs(table, user, time, registered, period, tz, churn_after, early_activity, through)
    ids, labels, codes, names = C.native(_native.lifecycle_stages, **i["args"])
    ids = np.frombuffer(ids, dtype="<u8")
    codes = np.frombuffer(codes, dtype=np.uint8)
    n_periods = len(labels)
    keep = codes > 0
    u = np.repeat(ids, n_periods)[keep]
    p = np.tile(np.arange(n_periods, dtype=np.int32), len(ids))[keep]
    s = codes[keep].astype(np.int32) - 1
    out = pa.table({
        user: i["users"].decode(pa.array(u, pa.uint64())),
        "period": pa.DictionaryArray.from_arrays(pa.array(p), pa.array(labels, pa.string())),
        "stage": pa.DictionaryArray.from_arrays(pa.array(s), pa.array(names, pa.string())),
    })
    return C.like(table, out)


def _report_rows(report: Mapping[str, Any], segment: Optional[str]) -> List[Dict[str, Any]]:
    rows = []
    for p in report["periods"]:
        row: Dict[str, Any] = {} if segment is None else {"segment": segment}
        row.update(period=p["period"], registered=p["registered"], actives=p["actives"],
                   active_rate=p["active_rate"], new=p["stages"]["new"])
        terms = {t["group"]: t for t in (p["decomposition"] or {}).get("terms", [])}
        for g, (size, kept, rate) in _GROUPS.items():
            t = terms.get(g)
            row[size] = None if t is None else t["size"]
            row[kept] = None if t is None else t["retained"]
            row[rate] = None if t is None else t["rate"]
        for stage, n in p["stages"].items():
            row[f"stage_{stage}"] = n
        rows.append(row)
    return rows


def active_rate_decomposition(
    table: Any,
    *,
    user: str = "user",
    time: str = "time",
    registered: Optional[str] = None,
    period: str = "month",
    tz: Any = 8,
    churn_after: int = 2,
    early_activity: str = "error",
    through: Optional[str] = None,
    by: Optional[str] = None,
) -> Any:
    """The active rate of every period and its exact decomposition (seed 003):

    ``actives = new + old_active·old_retention + last_new·new_retention + dormant·wake_rate +
    churned·return_rate``, where each group is counted in the previous period and each
    ``*_retained`` column is the group's users active now (so the identity holds in whole users:
    ``actives == new + old_retained + new_retained + woken + returned``).

    Arguments as for :func:`lifecycle`; ``by`` names a column with one value per user (a tag)
    to break the table down by (a ``segment`` column is added). Returns one row per period (per
    segment) as the caller's kind of table, with the stage counts as ``stage_*`` columns.
    """
    import pyarrow as pa

    i = _inputs(table, user, time, registered, period, tz, churn_after, early_activity, through)
    args = dict(i["args"])
    if by is not None:
        args["seg_code"], args["seg_names"] = C.dictionary(C.column(i["t"], by, "by"))
    out = json.loads(C.native(_native.lifecycle_report, **args))
    rows = _report_rows(out["all"], None if by is None else "(all)")
    for name, rep in out["segments"].items():
        rows.extend(_report_rows(rep, name))
    return C.like(table, pa.Table.from_pylist(rows))


class LifecycleMethods(EngineBase):
    """Lifecycle commands over the engine's ingested ``register`` and ``activity`` events."""

    def lifecycle_report(
        self,
        *,
        churn_after: Optional[int] = None,
        early_activity: Optional[str] = None,
        through: Optional[str] = None,
        segments: Optional[Mapping[str, Sequence[int]]] = None,
        by_tag: Optional[str] = None,
        audiences: Optional[Mapping[str, str]] = None,
    ) -> Dict[str, Any]:
        """Stages, transitions, active rate and decomposition of every period, and per segment:
        ``segments`` maps a name to a list of OneIDs, ``by_tag`` makes one segment per value of
        an enum or bool tag (``"city=bj"``), ``audiences`` maps a name to an audience expression."""
        out: Dict[str, Any] = self.call("lifecycle_report", churn_after=churn_after,
                                        early_activity=early_activity, through=through,
                                        segments=_segments(segments), by_tag=by_tag,
                                        audiences=None if audiences is None else dict(audiences))
        return out

    def active_rate_decomposition(
        self,
        period: Optional[str] = None,
        *,
        churn_after: Optional[int] = None,
        early_activity: Optional[str] = None,
        segments: Optional[Mapping[str, Sequence[int]]] = None,
        by_tag: Optional[str] = None,
        audiences: Optional[Mapping[str, str]] = None,
    ) -> Dict[str, Any]:
        """One period's active rate and decomposition (default: the last period), broken down
        as in :meth:`lifecycle_report`."""
        out: Dict[str, Any] = self.call("active_rate_decomposition", period=period, churn_after=churn_after,
                                        early_activity=early_activity, segments=_segments(segments),
                                        by_tag=by_tag,
                                        audiences=None if audiences is None else dict(audiences))
        return out

    def project_active_rate(
        self,
        period: Optional[str] = None,
        *,
        rates: Optional[Mapping[str, float]] = None,
        new_users: Optional[int] = None,
        target: Optional[float] = None,
        lever: Optional[str] = None,
        churn_after: Optional[int] = None,
        early_activity: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Next period's active rate from ``period``'s groups and ``rates`` (observed by default:
        ``old_retention``, ``new_retention``, ``wake_rate``, ``return_rate``); with ``target`` and
        ``lever`` (one of those or ``"new_users"``), the value the lever must reach."""
        out: Dict[str, Any] = self.call("project_active_rate", period=period,
                                        rates=None if rates is None else dict(rates), new_users=new_users,
                                        target=target, lever=lever, churn_after=churn_after,
                                        early_activity=early_activity)
        return out

    def lifecycle_stages(self, period: Optional[str] = None) -> Dict[int, str]:
        """``{oneid: stage}`` of every registered person in ``period`` (default: the last)."""
        out = self.call("lifecycle_stages", period=period)
        return {u["oneid"]: u["stage"] for u in out["users"]}


    def write_lifecycle_tags(
        self,
        period: Optional[str] = None,
        *,
        per_period: bool = False,
        churn_after: Optional[int] = None,
        now: Optional[str] = None,
    ) -> Dict[int, str]:
        """Write every person's stage in ``period`` (default: the last) as the enum model tag
        ``lifecycle_stage`` (and, with ``per_period``, ``stage_YYYY_MM``), so that
        ``engine.audience('lifecycle_stage = "dormant"')`` works. Returns ``{oneid: stage}``."""
        out = self.call("write_lifecycle_tags", period=period, per_period=per_period,
                        churn_after=churn_after, **({} if now is None else {"now": now}))
        return {u["oneid"]: u["stage"] for u in out["users"]}


def _segments(s: Optional[Mapping[str, Sequence[int]]]) -> Optional[Dict[str, List[int]]]:
    return None if s is None else {k: [int(x) for x in v] for k, v in s.items()}
