"""The operator's analyses: table functions (funnel, cohort retention, attribution) and engine
methods over the engine's ingested events."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import _columns as C
from . import _convert, _native
from ._base import EngineBase


def funnel(
    table: Any,
    steps: Sequence[str],
    *,
    user: str = "user",
    time: str = "time",
    event: str = "event",
    window_seconds: float = 7 * 86400,
    by: Optional[str] = None,
) -> Any:
    """An ordered funnel: for each step, the users who did the steps in order (each after the
    previous; ties in time in row order) within ``window_seconds`` of the first step.

    Returns one row per step (per ``segment`` when ``by`` names a column with one value per user)
    with ``users``, ``from_previous``, ``from_first`` and ``drop_off``, as the caller's kind of
    table. A step name that never occurs raises ``InvalidArgument``.
    """
    import pyarrow as pa

    t = C.to_arrow(table)
    users = C.UserCodes([C.column(t, user, "user")])
    codes, names = C.dictionary(C.column(t, event, "event"))
    args: Dict[str, Any] = dict(
        user=C.u64_bytes(users.codes[0]), time=C.i64_bytes(C.time_ms(C.column(t, time, "time"), "time")),
        event=codes, names=names, steps=[str(s) for s in steps], window_ms=int(window_seconds * 1000),
    )
    if by is not None:
        args["seg_code"], args["seg_names"] = C.dictionary(C.column(t, by, "by"))
    out = json.loads(C.native(_native.funnel, **args))
    rows: List[Dict[str, Any]] = []
    if by is None:
        rows = out["steps"]
    else:
        for s in out["steps"]:
            rows.append({"segment": "(all)", **s})
        for seg, steps_ in out.get("segments", {}).items():
            rows.extend({"segment": seg, **s} for s in steps_)
    return C.like(table, pa.Table.from_pylist(rows, schema=_funnel_schema(by is not None)))


def _funnel_schema(segmented: bool) -> Any:
    import pyarrow as pa

    fields = [("step", pa.string()), ("users", pa.int64()), ("from_previous", pa.float64()),
              ("from_first", pa.float64()), ("drop_off", pa.int64())]
    return pa.schema(([("segment", pa.string())] if segmented else []) + fields)


def cohort_retention(
    table: Any,
    *,
    user: str = "user",
    time: str = "time",
    period: str = "month",
    tz: Any = 8,
) -> Any:
    """Cohort retention by first-activity period: one row per (cohort, periods_later) with the
    cohort's size, the users active that many periods later, and the rate."""
    import pyarrow as pa

    t = C.to_arrow(table)
    users = C.UserCodes([C.column(t, user, "user")])
    out = json.loads(C.native(
        _native.cohort_retention, C.u64_bytes(users.codes[0]),
        C.i64_bytes(C.time_ms(C.column(t, time, "time"), "time")), period, C.utc_offset_seconds(tz),
    ))
    rows = [
        {"cohort": c["cohort"], "users": c["users"], "periods_later": k, "retained": r, "rate": c["rates"][k]}
        for c in out["cohorts"] for k, r in enumerate(c["retained"])
    ]
    schema = pa.schema([("cohort", pa.string()), ("users", pa.int64()), ("periods_later", pa.int64()),
                        ("retained", pa.int64()), ("rate", pa.float64())])
    return C.like(table, pa.Table.from_pylist(rows, schema=schema))


def attribution(
    touches: Any,
    conversions: Any,
    *,
    model: str = "linear",
    user: str = "user",
    time: str = "time",
    channel: str = "channel",
    value: Optional[str] = None,
    half_life_hours: Optional[float] = None,
    lookback_days: float = 30,
) -> Any:
    """Attribute each conversion to the same user's touches in the ``lookback_days`` before it.

    ``model``: ``first_touch``, ``last_touch``, ``linear``, ``time_decay`` (with
    ``half_life_hours``) or ``position_based`` (40/20/40). ``value`` names an optional money
    column of ``conversions`` (decimals, integers or decimal strings; floats are refused).
    Returns one row per channel (``channel``, ``conversions`` credited, ``value`` credited as
    decimals, ``touches``) as the kind of table ``touches`` is.
    """
    import pyarrow as pa

    t, c = C.to_arrow(touches, "touches"), C.to_arrow(conversions, "conversions")
    users = C.UserCodes([C.column(t, user, "user"), C.column(c, user, "user")])
    ch_codes, ch_names = C.dictionary(C.column(t, channel, "channel"))
    values: Optional[List[str]] = None
    if value is not None:
        v = C.column(c, value, "value")
        if pa.types.is_floating(v.type):
            raise C.InvalidArgument("money is never a float: give decimals or decimal strings", field="value")
        values = [str(x) for x in v.to_pylist()]
    out = json.loads(C.native(
        _native.attribution, C.u64_bytes(users.codes[0]), C.i64_bytes(C.time_ms(C.column(t, time, "time"), "time")),
        ch_codes, ch_names, C.u64_bytes(users.codes[1]), C.i64_bytes(C.time_ms(C.column(c, time, "time"), "time")),
        values, model, half_life_hours, int(lookback_days * 86_400_000),
    ))
    rows = [{"channel": x["channel"], "conversions": x["conversions"], "value": Decimal(x["value"]),
             "touches": x["touches"]} for x in out["channels"]]
    schema = pa.schema([("channel", pa.string()), ("conversions", pa.float64()),
                        ("value", pa.decimal128(38, 10)), ("touches", pa.int64())])
    return C.like(touches, pa.Table.from_pylist(rows, schema=schema))


class AnalyticsMethods(EngineBase):
    """Analyses over the engine's ingested events (each person's timeline)."""

    def funnel(self, steps: Sequence[str], *, window_seconds: Optional[int] = None,
               segments: Optional[Mapping[str, Sequence[int]]] = None) -> Dict[str, Any]:
        """Ordered funnel of step names (activity/behaviour types, ``order``, ``register``,
        ``touch_<outcome>``, ``coupon_<action>``, ``community_<action>``) within the window."""
        out: Dict[str, Any] = self.call("funnel", steps=list(steps), window_seconds=window_seconds,
                                        segments=None if segments is None else {k: list(v) for k, v in segments.items()})
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

