"""Lifecycle stages and the active-rate decomposition: table functions and engine methods.

The table functions take any table :func:`userops._tables.to_arrow` reads (pandas, polars,
pyarrow, duckdb, Arrow PyCapsule objects); the columns are read in Rust straight from the Arrow
buffers, without the GIL, and the result comes back as the caller's kind of table (or
``output=``).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from . import _columns as C
from . import _args, _native, _progress, _tables
from ._base import EngineBase


def lifecycle(
    table: _tables.TableLike,
    *,
    user: str = "user",
    time: str = "time",
    registered: Optional[str] = None,
    period: str = "month",
    tz: C.TzLike = 8,
    churn_after: _args.UInt32 = 2,
    early_activity: str = "error",
    through: Optional[str] = None,
    output: _tables.Output = None,
    progress: _tables.Progress = None,
) -> Any:
    """The lifecycle stage of every user in every period (SPEC §5), from an activity table.

    ``table`` has one row per qualifying activity: ``user`` (integer or text ids) and ``time``
    (timestamps *with* a time zone, or RFC 3339 text). ``registered`` names an optional column
    of registration times (null where unknown; a user with none is registered at their first
    activity). Registering counts as a qualifying activity of its own period, so every user is
    active (``new``) in the period they register in, with or without another activity there. Periods (``"day"``, ``"week"``, ``"month"``) are cut in the business zone ``tz``
    (hours east of UTC, ``"+08:00"`` or a ``datetime.timezone``). An activity before registration
    raises ``InvalidArgument`` unless ``early_activity="register_at_first_activity"``. A missing
    column, a column of the wrong type or a null raises ``TableError`` naming the column (and row).

    Returns a table of the caller's kind (or ``output``) with columns ``user`` (named as the
    input column), ``period`` and ``stage`` (one of new, last_period_new, active, awakened,
    returned, dormant, churned), from each user's registration period to the last period of the
    data (or ``through``).

    The columns are read in Rust without the GIL; while the stages are computed, ``progress``
    is reported (see :mod:`userops._progress`: a tqdm bar by default on a terminal, ``False``
    for none, or a callable ``f(done, total)``; the unit is activity rows, counted once while
    read and once while the users are walked) and Ctrl-C stops the call with
    ``KeyboardInterrupt``.

    >>> import pandas as pd, userops
    >>> acts = pd.DataFrame({"user": ["u1", "u1", "u2"],
    ...                      "time": pd.to_datetime(["2026-01-05", "2026-02-03", "2026-01-09"]).tz_localize("Asia/Shanghai")})
    >>> [(r["user"], r["period"], r["stage"]) for r in userops.lifecycle(acts, output="arrow").to_pylist()]
    [('u1', '2026-01', 'new'), ('u1', '2026-02', 'last_period_new'), ('u2', '2026-01', 'new'), ('u2', '2026-02', 'dormant')]
    >>> # u3 registers on 2026-01-20 and first logs in on 2026-03-03: active in January all the same.
    >>> late = pd.DataFrame({"user": ["u3"], "time": [pd.Timestamp("2026-03-03", tz="Asia/Shanghai")],
    ...                      "registered": [pd.Timestamp("2026-01-20", tz="Asia/Shanghai")]})
    >>> [(r["period"], r["stage"]) for r in userops.lifecycle(late, registered="registered", output="arrow").to_pylist()]
    [('2026-01', 'new'), ('2026-02', 'dormant'), ('2026-03', 'awakened')]
    """
    _tables.check_output(output)
    arrow, kind = _tables.to_arrow(table)
    with _progress.reporter(progress, total=2 * arrow.num_rows, desc="lifecycle") as report:
        native = _native.lifecycle_stages(
            arrow, user=user, time=time, registered=registered, period=period,
            utc_offset_seconds=C.utc_offset_seconds(tz), churn_after=churn_after,
            early_activity=early_activity, through=through, progress=report,
        )
    return _tables.from_arrow(native, output or kind)


def active_rate_decomposition(
    table: _tables.TableLike,
    *,
    user: str = "user",
    time: str = "time",
    registered: Optional[str] = None,
    period: str = "month",
    tz: C.TzLike = 8,
    churn_after: _args.UInt32 = 2,
    early_activity: str = "error",
    through: Optional[str] = None,
    by: Optional[str] = None,
    output: _tables.Output = None,
    progress: _tables.Progress = None,
) -> Any:
    """The active rate of every period and its exact decomposition (seed 003):

    ``actives = new + old_active·old_retention + last_new·new_retention + dormant·wake_rate +
    churned·return_rate``, where each group is counted in the previous period and each
    ``*_retained`` column is the group's users active now (so the identity holds in whole users:
    ``actives == new + old_retained + new_retained + woken + returned``).

    Arguments as for :func:`lifecycle` (registering counts as a qualifying activity of its own
    period, so ``new`` users are among ``actives``); ``by`` names a column with one value per user (a tag)
    to break the table down by (a ``segment`` column is added, ``"(all)"`` for the whole).
    Returns one row per period (per segment) as the caller's kind of table, with the stage
    counts as ``stage_*`` columns. ``progress`` and Ctrl-C as for :func:`lifecycle`.

    >>> import pandas as pd, userops
    >>> acts = pd.DataFrame({"user": [1, 1, 2, 3],
    ...                      "time": pd.to_datetime(["2026-01-05", "2026-02-03", "2026-01-09", "2026-02-10"]).tz_localize("UTC")})
    >>> d = userops.active_rate_decomposition(acts, output="arrow")
    >>> d.select(["period", "registered", "actives", "new", "new_retained"]).to_pylist()[1]
    {'period': '2026-02', 'registered': 3, 'actives': 2, 'new': 1, 'new_retained': 1}
    """
    _tables.check_output(output)
    arrow, kind = _tables.to_arrow(table)
    with _progress.reporter(progress, total=2 * arrow.num_rows, desc="lifecycle") as report:
        native = _native.lifecycle_report(
            arrow, user=user, time=time, registered=registered, period=period,
            utc_offset_seconds=C.utc_offset_seconds(tz), churn_after=churn_after,
            early_activity=early_activity, through=through, by=by, progress=report,
        )
    return _tables.from_arrow(native, output or kind)


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
        an enum or bool tag (``"city=bj"``), ``audiences`` maps a name to an audience expression.

        Stages come from the ``register`` and ``activity`` events (monthly periods in the
        business time zone; a user dormant for ``churn_after`` periods, default 2, is churned).
        Registering counts as a qualifying activity of its own period: a user who registers in
        January and first logs in in March is active (``new``) in January, ``dormant`` in
        February and ``awakened`` in March, so that every new user is among the period's
        ``actives`` as the decomposition's ``new`` term requires.
        Returns ``churn_after``, ``periods`` (each: ``period``, ``registered``, ``actives``,
        ``active_rate``, ``stages`` counts, ``decomposition`` and ``transitions``) and
        ``segments`` (name → the same report over the segment's users). Raises ``InvalidArgument`` for a bad ``churn_after`` or
        ``through`` and ``AudienceSyntaxError`` for a bad audience.

        >>> import userops
        >>> r = userops.sample_engine().lifecycle_report(segments={"M1": [1]})
        >>> [(p["period"], p["actives"], p["stages"]["dormant"]) for p in r["periods"]]
        [('2025-12', 3, 0), ('2026-01', 1, 2), ('2026-02', 2, 0)]
        >>> [p["actives"] for p in r["segments"]["M1"]["periods"]]
        [1, 1, 1]
        """
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
        as in :meth:`lifecycle_report`. Returns the period's row of :meth:`lifecycle_report`:
        its ``decomposition`` holds ``actives``, ``new`` and one term per group of the previous
        period (``old_active``, ``new``, ``dormant``, ``churned``: ``size``, ``retained``,
        ``rate``), so that ``actives = new + Σ retained``: registering counts as a qualifying
        activity of its own period, so every user registered in the period is active in it.
        Raises ``InvalidArgument`` for a period outside the data.

        >>> import userops
        >>> d = userops.sample_engine().active_rate_decomposition("2026-02")["decomposition"]
        >>> d["actives"], d["new"], [(t["group"], t["size"], t["retained"]) for t in d["terms"]]
        (2, 0, [('old_active', 1, 1), ('new', 0, 0), ('dormant', 2, 1), ('churned', 0, 0)])
        """
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
        ``lever`` (one of those or ``"new_users"``), the value the lever must reach.

        Returns ``period``, ``projection`` (``actives``, ``registered``, ``active_rate``,
        ``rates``, ``new_users``) and, with a target, ``lever`` (``required``, ``current``,
        ``feasible``: whether a rate ≤ 1 reaches the target). Raises ``InvalidArgument`` for a
        rate outside 0..1 or an unknown lever.

        >>> import userops
        >>> p = userops.sample_engine().project_active_rate(target=0.9, lever="new_users")
        >>> round(p["projection"]["active_rate"], 3), round(p["lever"]["required"]), p["lever"]["feasible"]
        (0.667, 7, True)
        """
        out: Dict[str, Any] = self.call("project_active_rate", period=period,
                                        rates=None if rates is None else dict(rates), new_users=new_users,
                                        target=target, lever=lever, churn_after=churn_after,
                                        early_activity=early_activity)
        return out

    def lifecycle_stages(self, period: Optional[str] = None) -> Dict[int, str]:
        """``{oneid: stage}`` of every registered person in ``period`` (a label such as
        ``"2026-02"``; default: the last period of the data). Stages: new, last_period_new,
        active, awakened, returned, dormant, churned.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.lifecycle_stages(), e.lifecycle_stages("2026-01")
        ({1: 'active', 2: 'awakened', 3: 'churned'}, {1: 'last_period_new', 2: 'dormant', 3: 'dormant'})
        """
        out = self.call("lifecycle_stages", period=period)
        return {u["oneid"]: u["stage"] for u in out["users"]}


    def write_lifecycle_tags(
        self,
        period: Optional[str] = None,
        *,
        per_period: bool = False,
        churn_after: Optional[int] = None,
        now: Optional[Union[str, _dt.datetime]] = None,
    ) -> Dict[int, str]:
        """Write every person's stage in ``period`` (default: the last) as the enum model tag
        ``lifecycle_stage`` (and, with ``per_period``, ``stage_YYYY_MM``), so that
        ``engine.audience('lifecycle_stage = "dormant"')`` works. Returns ``{oneid: stage}``.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> e.write_lifecycle_tags(now="2026-03-01T00:00:00Z")
        {1: 'active', 2: 'awakened', 3: 'churned'}
        >>> e.audience('lifecycle_stage = "churned"').oneids("list")
        [3]
        """
        out = self.call("write_lifecycle_tags", period=period, per_period=per_period,
                        churn_after=churn_after, **({} if now is None else {"now": now}))
        return {u["oneid"]: u["stage"] for u in out["users"]}


def _segments(s: Optional[Mapping[str, Sequence[int]]]) -> Optional[Dict[str, List[int]]]:
    return None if s is None else {k: [int(x) for x in v] for k, v in s.items()}
