"""The operator's analyses: table functions (funnel, cohort retention, attribution) and engine
methods over the engine's ingested events.

The table functions take any table :func:`userops._tables.to_arrow` reads; the columns are read
in Rust straight from the Arrow buffers (without the GIL) and the result comes back as the
caller's kind of table (or ``output=``).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from . import _columns as C
from . import _args, _convert, _native, _tables
from ._base import EngineBase


def funnel(
    table: _tables.TableLike,
    steps: Sequence[str],
    *,
    user: str = "user",
    time: str = "time",
    event: str = "event",
    window_seconds: _args.Seconds = 7 * 86400,
    by: Optional[str] = None,
    output: _tables.Output = None,
) -> Any:
    """An ordered funnel: for each step, the users who did the steps in order (each after the
    previous; ties in time in row order) within ``window_seconds`` of the first step. The
    window is inclusive: step k at ``t_k`` counts when ``t_k - t_0 <= window_seconds``, so a
    purchase exactly one window after the view still converts.

    Returns one row per step (per ``segment`` when ``by`` names a column with one value per user)
    with ``users``, ``from_previous``, ``from_first`` and ``drop_off``, as the caller's kind of
    table. A step name that never occurs raises ``InvalidArgument``; a bad column ``TableError``.

    >>> import pyarrow as pa, datetime as dt, userops
    >>> t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    >>> events = pa.table({"user": [1, 1, 2], "event": ["view", "buy", "view"],
    ...                    "time": [t0, t0 + dt.timedelta(hours=1), t0]})
    >>> userops.funnel(events, ["view", "buy"]).select(["step", "users", "drop_off"]).to_pylist()
    [{'step': 'view', 'users': 2, 'drop_off': 0}, {'step': 'buy', 'users': 1, 'drop_off': 1}]
    >>> [userops.funnel(events, ["view", "buy"], window_seconds=w).column("users").to_pylist()[1]
    ...  for w in (3600, 3599)]
    [1, 0]
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
    lookback_days: _args.Days = 30,
    output: _tables.Output = None,
) -> Any:
    """Attribute each conversion to the same user's touches in the ``lookback_days`` before it.

    ``model``: ``first_touch``, ``last_touch``, ``linear``, ``time_decay`` (with
    ``half_life_hours``) or ``position_based`` (40/20/40). ``value`` names an optional money
    column of ``conversions`` (decimals, integers or decimal strings; floats are refused with
    ``TableError``). A touch at the conversion's own instant counts. Each conversion's value
    is split in its own units (cents for ``"100.00"``), rounded half to even, the last touch
    (in time order) taking the remainder, so the shares add up to the value exactly. Returns
    one row per channel (``channel``, ``conversions`` credited, ``value`` credited as
    decimals, ``touches``) as the kind of table ``touches`` is.

    >>> import pyarrow as pa, datetime as dt, userops
    >>> t0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    >>> touches = pa.table({"user": [1, 1], "channel": ["sms", "push"],
    ...                     "time": [t0, t0 + dt.timedelta(hours=1)]})
    >>> orders = pa.table({"user": [1], "time": [t0 + dt.timedelta(hours=2)], "amount": ["100.00"]})
    >>> [(r["channel"], r["conversions"], str(r["value"]))
    ...  for r in userops.attribution(touches, orders, value="amount").to_pylist()]
    [('push', 0.5, '50.0000000000'), ('sms', 0.5, '50.0000000000')]
    >>> three = pa.table({"user": [1, 1, 1], "channel": ["sms", "push", "app"],
    ...                   "time": [t0, t0 + dt.timedelta(hours=1), t0 + dt.timedelta(hours=2)]})
    >>> [(r["channel"], str(r["value"].normalize()))
    ...  for r in userops.attribution(three, orders, value="amount").to_pylist()]
    [('app', '33.34'), ('push', '33.33'), ('sms', '33.33')]
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
        ``touch_<outcome>``, ``coupon_<action>``, ``community_<action>``): a user reaches a step
        when they did it after the previous one, within ``window_seconds`` of the first step
        (default 7 days). The window is inclusive: step k at ``t_k`` counts when
        ``t_k - t_0 <= window_seconds``. A person's events at the same instant come in one fixed
        order, whatever order they were ingested in: register, touch, activity, behaviour,
        community, coupon, order, refund, then by name (so a click and an order at the same
        second are in that order).

        Break it down by named OneID ``segments``, by every value of an enum or bool tag
        (``by_tag``, segments named ``tag=value``) or by named audience expressions
        (``audiences``, name → expression). Returns ``{"steps": [...]}`` (and ``"segments"``,
        name → steps), each step with ``users``, ``from_previous``, ``from_first`` and
        ``drop_off``. Raises ``InvalidArgument`` for no steps, ``AudienceSyntaxError`` for a bad
        audience.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> f = e.funnel(["login", "view", "share"], segments={"M1": [1], "others": [2, 3]})
        >>> [(s["step"], s["users"]) for s in f["steps"]], f["segments"]["others"][1]["users"]
        ([('login', 3), ('view', 1), ('share', 0)], 1)
        >>> # M1 logs in on Jan 10 and views on Feb 1 at the same hour, 22 days later.
        >>> [e.funnel(["login", "view"], window_seconds=d * 86400, segments={"M1": [1]})["segments"]["M1"][1]["users"]
        ...  for d in (22, 21)]
        [1, 0]
        """
        out: Dict[str, Any] = self.call(
            "funnel", steps=list(steps), window_seconds=window_seconds,
            segments=None if segments is None else {k: list(v) for k, v in segments.items()},
            by_tag=by_tag, audiences=None if audiences is None else dict(audiences),
        )
        return out

    def cohort_retention(self, *, period: Optional[str] = None) -> Dict[str, Any]:
        """Cohort retention of the ``activity`` events by first-activity period (``"day"``,
        ``"week"`` or ``"month"``, the default): ``{"cohorts": [{"cohort", "users",
        "retained", "rates"}]}``, where ``retained[k]`` users of the cohort were active ``k``
        periods later. For a table of activity rows see :func:`userops.cohort_retention`.

        >>> import userops
        >>> userops.sample_engine().cohort_retention()["cohorts"]
        [{'cohort': '2025-12', 'users': 3, 'retained': [3, 1, 2], 'rates': [1.0, 0.333..., 0.666...]}]
        """
        out: Dict[str, Any] = self.call("cohort_retention", period=period)
        return out

    def attribution(self, model: str, *, half_life_hours: Optional[float] = None,
                    lookback_days: Optional[float] = None, outcomes: Optional[Sequence[str]] = None) -> Dict[str, Any]:
        """Orders attributed to the ``touch`` events of the same person before them (within
        ``lookback_days``, default 30; a touch at the order's own instant counts), per channel.
        ``model``: ``first_touch``, ``last_touch``, ``linear``, ``time_decay`` (with
        ``half_life_hours``) or ``position_based``. ``outcomes`` are the touch outcomes that
        count (default: all of them — ``sent``, ``delivered``, ``opened``, ``clicked``,
        ``converted``); each touch event is one touch, so a delivery recorded as ``sent`` and
        then ``opened`` is two touches unless ``outcomes`` keeps one of them. An order's value
        is split in its own units (cents for ``"100.00"``), rounded half to even, the last touch
        taking the remainder: 100.00 over three touches, linear, is 33.33 + 33.33 + 33.34.

        Returns ``conversions``, ``attributed`` (orders with a touch before them),
        ``unattributed_value`` and ``channels`` (``channel``, ``conversions``, ``value``,
        ``touches``). Raises ``InvalidArgument`` for an unknown model or outcome.

        >>> import userops
        >>> e = userops.sample_engine()
        >>> for i, channel in enumerate(["sms", "push", "app"]):
        ...     _ = e.ingest({"kind": "touch", "key": f"t{i}", "time": f"2026-02-1{i}T09:00:00+08:00",
        ...                   "source": {"platform": "app", "program": "brand-a"},
        ...                   "user": {"kind": "member_no", "value": "M1"}, "channel": channel,
        ...                   "content": "spring-tea", "outcome": "sent"})
        >>> a = e.attribution("last_touch")
        >>> a["conversions"], a["attributed"], [(c["channel"], c["value"]) for c in a["channels"]]
        (6, 1, [('app', '180.00')])
        >>> [(c["channel"], c["value"]) for c in e.attribution("linear")["channels"]]
        [('app', '60.00'), ('push', '60.00'), ('sms', '60.00')]
        >>> e.attribution("linear", outcomes=["clicked"])["attributed"]
        0
        """
        out: Dict[str, Any] = self.call("attribution", model=model, half_life_hours=half_life_hours,
                                        lookback_days=lookback_days, outcomes=None if outcomes is None else list(outcomes))
        return out

    def journey(self, user: _convert.UserLike) -> Dict[str, Any]:
        """One person's full journey: ``{"oneid", "steps"}``, every event in time order
        (``time``, ``kind``, ``name`` and, for orders, ``channel``, ``detail``, ``amount``,
        ``skus``). Raises ``NotFound`` for an unknown user.

        >>> import userops
        >>> j = userops.sample_engine().journey(("member_no", "M2"))
        >>> [(s["time"][:10], s["name"]) for s in j["steps"]]
        [('2025-12-03', 'register'), ('2025-12-04', 'login'), ('2025-12-04', 'order'), ('2026-02-20', 'login'), ('2026-02-20', 'view')]
        """
        out: Dict[str, Any] = self.call("journey", user=_convert.user(user))
        return out

    def repurchase(self, *, period: Optional[str] = None, top: Optional[int] = None,
                   min_buyers: Optional[int] = None) -> Dict[str, Any]:
        """Repurchase per period (default month): ``periods`` with ``buyers``, ``new_buyers``
        (whose first order ever is in the period), ``old_buyers``, the repurchase ``rate`` of
        each (the share of buyers with two or more orders in the period — two orders at the same
        instant are two), and GMV split into ``first_order_gmv`` (each buyer's first order; of
        orders at the same instant, the smaller order id) and ``repurchase_gmv`` (every other
        order); ``products``: the ``top`` products bought again most (by at least
        ``min_buyers`` buyers; an order without lines buys no product).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> r = e.repurchase()
        >>> [(p["period"], p["buyers"], p["new_buyers"], p["repurchase_gmv"]) for p in r["periods"]]
        [('2025-12', 3, 3, '0'), ('2026-01', 2, 0, '141.00'), ('2026-02', 1, 0, '180.00')]
        >>> for order_id, amount in [("A8", "50.00"), ("A7", "100.00")]:
        ...     _ = e.ingest({"kind": "order", "key": order_id, "time": "2026-03-05T10:00:00+08:00",
        ...                   "source": {"platform": "app", "program": "brand-a"},
        ...                   "user": {"kind": "member_no", "value": "M9"}, "order_id": order_id,
        ...                   "amount": amount})
        >>> march = e.repurchase()["periods"][-1]
        >>> march["rate"], march["first_order_gmv"], march["repurchase_gmv"]
        (1.0, '100.00', '50.00')
        """
        out: Dict[str, Any] = self.call("repurchase", period=period, top=top, min_buyers=min_buyers)
        return out

    def paths(self, from_step: str, to_step: str, *, top: Optional[int] = None) -> Dict[str, Any]:
        """What follows ``from_step`` (``next_after_from``), what precedes ``to_step``
        (``previous_before_to``), how many users went from one to the other (``converted``,
        ``dropped``) and the steps where the others stopped (``drop_points``); ``top`` limits
        each list.

        >>> import userops
        >>> p = userops.sample_engine().paths("login", "order")
        >>> p["users"], p["converted"], p["next_after_from"][0]
        (3, 3, {'step': 'order', 'count': 5})
        """
        out: Dict[str, Any] = self.call("paths", **{"from": from_step, "to": to_step, "top": top})
        return out

    def micro_conversions(self, conversion: Optional[str] = None, *, output: _tables.Output = None) -> Any:
        """Every other step as a micro-conversion towards ``conversion`` (default ``order``):
        a table (pandas unless ``output="polars"`` / ``"arrow"``) with ``event``, ``users``
        who did it, ``reach`` (their share of all users), ``converted_after`` (of them, those
        who converted afterwards), ``rate`` and ``rate_without`` (the conversion rate of the
        users who never did it).

        >>> import userops
        >>> m = userops.sample_engine().micro_conversions()
        >>> m[["event", "users", "converted_after", "rate", "rate_without"]]
              event  users  converted_after  rate  rate_without
        0     login      3                3   1.0           NaN
        1  register      3                3   1.0           NaN
        2      view      2                1   0.5           1.0
        3    review      1                1   1.0           1.0
        4     share      1                1   1.0           1.0
        """
        return self._output_table(output, "micro_conversions", conversion=conversion)

    def metric_tree(self, *, period: Optional[str] = None) -> List[Dict[str, Any]]:
        """GMV = first-order GMV + repurchase GMV, per period (default month), as
        :meth:`repurchase` defines them: one ``{"period", "tree"}`` per period, the tree's nodes
        ``{"name", "value", "children"}`` (money as decimal strings).

        >>> import userops
        >>> t = userops.sample_engine().metric_tree()[1]
        >>> t["period"], t["tree"]["value"], [(c["name"], c["value"]) for c in t["tree"]["children"]]
        ('2026-01', '141.00', [('first_order_gmv', '0'), ('repurchase_gmv', '141.00')])
        """
        out: List[Dict[str, Any]] = self.call("metric_tree", period=period)
        return out

    def data_warnings(self, metric: str, method: Mapping[str, Any], *, period: Optional[str] = None,
                      output: _tables.Output = None) -> Any:
        """Periods (default day) where ``metric`` (``gmv``, ``buyers``, ``events``) left its
        band: ``method`` is ``{"method": "rolling", "window": 7, "k": 3}`` (mean ± k standard
        deviations of the previous ``window`` periods) or ``{"method": "seasonal", "season": 7,
        "k": 3}`` (the same periods of earlier seasons).

        Returns a table (pandas unless ``output=``) with ``index`` (the period's position),
        ``label``, ``value``, ``expected``, ``low`` and ``high``. Raises ``InvalidArgument`` for
        an unknown metric or method.

        >>> import userops
        >>> w = userops.sample_engine().data_warnings("gmv", {"method": "rolling", "window": 7, "k": 3})
        >>> w[["label", "value", "expected"]].head(2)
                label  value  expected
        0  2026-01-10   45.0       0.0
        1  2026-01-20   96.0       0.0
        """
        return self._output_table(output, "data_warnings", metric=metric, method=dict(method),
                                  period=period)

    def community_stats(self, *, period: Optional[str] = None, output: _tables.Output = None) -> Any:
        """Per community and period (default week): ``joins``, ``leavers``, ``members`` (the
        count at the period's end: a member who joins and leaves within the week is not
        counted), ``active_members`` (who posted in the period), ``activity_rate``,
        ``conversions`` (orders placed by members while members — a member's two orders count
        two) and ``gmv`` (their amount, decimal), as a table (pandas unless ``output=``).

        >>> import userops
        >>> e = userops.sample_engine()
        >>> for i, action in enumerate(["join", "message"]):
        ...     _ = e.ingest({"kind": "community", "key": f"c{i}", "time": f"2026-02-0{i + 1}T10:00:00+08:00",
        ...                   "source": {"platform": "wechat", "program": "brand-a"},
        ...                   "user": {"kind": "member_no", "value": "M1"},
        ...                   "community": "tea-lovers", "action": action})
        >>> e.community_stats(output="arrow").select(["period", "members", "active_members", "gmv"]).to_pylist()[1:]
        [{'period': '2026-02-02', 'members': 1, 'active_members': 1, 'gmv': Decimal('0E-10')}, {'period': '2026-02-09', 'members': 1, 'active_members': 0, 'gmv': Decimal('180.0000000000')}]
        """
        return self._output_table(output, "community_stats", period=period)
