"""The operator's analyses: table functions (funnel, cohort retention, attribution) and engine
methods over the engine's ingested events.

The table functions take any table :func:`userops._tables.to_arrow` reads; the columns are read
in Rust straight from the Arrow buffers (without the GIL) and the result comes back as the
caller's kind of table (or ``output=``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import _columns as C
from . import _convert, _native, _tables
from ._base import EngineBase


def funnel(
    table: _tables.TableLike,
    steps: Sequence[str],
    *,
    user: str = "user",
    time: str = "time",
    event: str = "event",
    window_seconds: float = 7 * 86400,
    by: Optional[str] = None,
    output: _tables.Output = None,
) -> Any:
    """An ordered funnel: for each step, the users who did the steps in order (each after the
    previous; ties in time in row order) within ``window_seconds`` of the first step.

    Returns one row per step (per ``segment`` when ``by`` names a column with one value per user)
    with ``users``, ``from_previous``, ``from_first`` and ``drop_off``, as the caller's kind of
    table. A step name that never occurs raises ``InvalidArgument``; a bad column ``TableError``.

    >>> import pyarrow as pa, datetime as dt, userops
    >>> t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    >>> events = pa.table({"user": [1, 1, 2], "event": ["view", "buy", "view"],
    ...                    "time": [t0, t0 + dt.timedelta(hours=1), t0]})
    >>> userops.funnel(events, ["view", "buy"]).select(["step", "users", "drop_off"]).to_pylist()
    [{'step': 'view', 'users': 2, 'drop_off': 0}, {'step': 'buy', 'users': 1, 'drop_off': 1}]
    """
    _tables.check_output(output)
    arrow, kind = _tables.to_arrow(table)
    native = _native.funnel(
        arrow, [str(s) for s in steps], int(window_seconds * 1000),
        user=user, time=time, event=event, by=by,
    )
    return _tables.from_arrow(native, output or kind)


def cohort_retention(
    table: _tables.TableLike,
    *,
    user: str = "user",
    time: str = "time",
    period: str = "month",
    tz: C.TzLike = 8,
    output: _tables.Output = None,
) -> Any:
    """Cohort retention by first-activity period: one row per (cohort, periods_later) with the
    cohort's size (``users``), the users active that many periods later (``retained``) and
    ``rate``.

    >>> import pyarrow as pa, datetime as dt, userops
    >>> t = pa.table({"user": ["a", "a", "b"],
    ...               "time": [dt.datetime(2026, 1, 5, tzinfo=dt.timezone.utc),
    ...                        dt.datetime(2026, 2, 5, tzinfo=dt.timezone.utc),
    ...                        dt.datetime(2026, 1, 7, tzinfo=dt.timezone.utc)]})
    >>> userops.cohort_retention(t, tz=0).to_pylist()[1]
    {'cohort': '2026-01', 'users': 2, 'periods_later': 1, 'retained': 1, 'rate': 0.5}
    """
    _tables.check_output(output)
    arrow, kind = _tables.to_arrow(table)
    native = _native.cohort_retention(
        arrow, user=user, time=time, period=period, utc_offset_seconds=C.utc_offset_seconds(tz)
    )
    return _tables.from_arrow(native, output or kind)


def attribution(
    touches: _tables.TableLike,
    conversions: _tables.TableLike,
    *,
    model: str = "linear",
    user: str = "user",
    time: str = "time",
    channel: str = "channel",
    value: Optional[str] = None,
    half_life_hours: Optional[float] = None,
    lookback_days: float = 30,
    output: _tables.Output = None,
) -> Any:
    """Attribute each conversion to the same user's touches in the ``lookback_days`` before it.

    ``model``: ``first_touch``, ``last_touch``, ``linear``, ``time_decay`` (with
    ``half_life_hours``) or ``position_based`` (40/20/40). ``value`` names an optional money
    column of ``conversions`` (decimals, integers or decimal strings; floats are refused with
    ``TableError``). Returns one row per channel (``channel``, ``conversions`` credited,
    ``value`` credited as decimals, ``touches``) as the kind of table ``touches`` is.

    >>> import pyarrow as pa, datetime as dt, userops
    >>> t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    >>> touches = pa.table({"user": [1, 1], "channel": ["sms", "push"],
    ...                     "time": [t0, t0 + dt.timedelta(hours=1)]})
    >>> orders = pa.table({"user": [1], "time": [t0 + dt.timedelta(hours=2)], "amount": ["100.00"]})
    >>> [(r["channel"], r["conversions"], str(r["value"]))
    ...  for r in userops.attribution(touches, orders, value="amount").to_pylist()]
    [('push', 0.5, '50.0000000000'), ('sms', 0.5, '50.0000000000')]
    """
    _tables.check_output(output)
    t, kind = _tables.to_arrow(touches)
    c, _ = _tables.to_arrow(conversions)
    native = _native.attribution(
        t, c, model, int(lookback_days * 86_400_000), half_life_hours=half_life_hours,
        user=user, time=time, channel=channel, value=value,
    )
    return _tables.from_arrow(native, output or kind)


class AnalyticsMethods(EngineBase):
    """Analyses over the engine's ingested events (each person's timeline)."""

    def funnel(self, steps: Sequence[str], *, window_seconds: Optional[int] = None,
               segments: Optional[Mapping[str, Sequence[int]]] = None,
               by_tag: Optional[str] = None,
               audiences: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
        """Ordered funnel of step names (activity/behaviour types, ``order``, ``register``,
        ``touch_<outcome>``, ``coupon_<action>``, ``community_<action>``) within the window.

        Break it down by named OneID ``segments``, by every value of an enum or bool tag
        (``by_tag``, segments named ``tag=value``) or by named audience expressions
        (``audiences``, name → expression)."""
        out: Dict[str, Any] = self.call(
            "funnel", steps=list(steps), window_seconds=window_seconds,
            segments=None if segments is None else {k: list(v) for k, v in segments.items()},
            by_tag=by_tag, audiences=None if audiences is None else dict(audiences),
        )
        return out

    def cohort_retention(self, *, period: Optional[str] = None) -> Dict[str, Any]:
        """Cohort retention of the ``activity`` events by first-activity period."""
        out: Dict[str, Any] = self.call("cohort_retention", period=period)
        return out

    def attribution(self, model: str, *, half_life_hours: Optional[float] = None,
                    lookback_days: Optional[float] = None, outcomes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Orders attributed to the touches before them, per channel."""
        out: Dict[str, Any] = self.call("attribution", model=model, half_life_hours=half_life_hours,
                                        lookback_days=lookback_days, outcomes=None if outcomes is None else list(outcomes))
        return out

    def journey(self, user: _convert.UserLike) -> Dict[str, Any]:
        """One person's full journey: every event, in time order."""
        out: Dict[str, Any] = self.call("journey", user=_convert.user(user))
        return out

    def repurchase(self, *, period: Optional[str] = None, top: Optional[int] = None,
                   min_buyers: Optional[int] = None) -> Dict[str, Any]:
        """Repurchase rate (new vs old buyers) per period, and the products bought again most."""
        out: Dict[str, Any] = self.call("repurchase", period=period, top=top, min_buyers=min_buyers)
        return out

    def paths(self, from_step: str, to_step: str, *, top: Optional[int] = None) -> Dict[str, Any]:
        """What follows ``from_step``, what precedes ``to_step``, and where users drop between."""
        out: Dict[str, Any] = self.call("paths", **{"from": from_step, "to": to_step, "top": top})
        return out

    def micro_conversions(self, conversion: Optional[str] = None) -> List[Dict[str, Any]]:
        """Every other step as a micro-conversion towards ``conversion`` (default ``order``)."""
        out: List[Dict[str, Any]] = self.call("micro_conversions", conversion=conversion)
        return out

    def metric_tree(self, *, period: Optional[str] = None) -> List[Dict[str, Any]]:
        """GMV = first-order GMV + repurchase GMV, per period."""
        out: List[Dict[str, Any]] = self.call("metric_tree", period=period)
        return out

    def data_warnings(self, metric: str, method: Mapping[str, Any], *, period: Optional[str] = None) -> List[Dict[str, Any]]:
        """Periods where ``metric`` (``gmv``, ``buyers``, ``events``) left its band: ``method`` is
        ``{"method": "rolling", "window": 7, "k": 3}`` or ``{"method": "seasonal", "season": 7, "k": 3}``."""
        out: List[Dict[str, Any]] = self.call("data_warnings", metric=metric, method=dict(method), period=period)
        return out

    def community_stats(self, *, period: Optional[str] = None) -> Dict[str, Any]:
        """Joins, members, active members, activity rate, conversions, GMV and leavers per
        community and period (default: week)."""
        out: Dict[str, Any] = self.call("community_stats", period=period)
        return out

