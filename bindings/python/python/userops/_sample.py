"""A small made-up user pool to try methods on: :func:`sample_engine`.

Every engine method's docstring example starts from it, so that the examples are short and
their output can be checked by hand against the events listed here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

if TYPE_CHECKING:
    from . import Engine

SOURCE = {"platform": "app", "program": "brand-a"}

# (member, phone, first day) — M1 and M2 also share a device, seen on JD (one identify each).
MEMBERS = [("M1", "13800000001", "2025-12-01"), ("M2", "13800000002", "2025-12-03"),
           ("M3", "13800000003", "2025-12-05")]
# (member, day, activity type)
ACTIVITY = [("M1", "2025-12-02", "login"), ("M1", "2026-01-10", "login"), ("M1", "2026-02-12", "login"),
            ("M2", "2025-12-04", "login"), ("M2", "2026-02-20", "login"),
            ("M3", "2025-12-06", "login")]
# (member, day, order id, category, price, qty, channel, region)
ORDERS = [("M1", "2025-12-02", "A1", "tea", "120.00", 2, "app", "shanghai"),
          ("M1", "2026-01-10", "A2", "cups", "45.00", 1, "app", "shanghai"),
          ("M1", "2026-02-12", "A3", "tea", "180.00", 1, "mini_program", "shanghai"),
          ("M2", "2025-12-04", "A4", "cups", "30.00", 1, "store", "beijing"),
          ("M3", "2025-12-06", "A5", "tea", "88.00", 1, "app", "hangzhou"),
          ("M3", "2026-01-20", "A6", "tea", "96.00", 1, "app", "hangzhou")]
# (member, day, behaviour type, category)
BEHAVIOURS = [("M1", "2026-02-01", "view", "tea"), ("M1", "2026-02-02", "view", "tea"),
              ("M1", "2026-02-03", "share", "cups"), ("M2", "2026-02-20", "view", "cups"),
              ("M3", "2026-01-18", "review", "tea")]


def sample_events() -> List[Dict[str, Any]]:
    """The events of :func:`sample_engine`, in the wire shape of SPEC §2 (times at 10:00+08:00).

    >>> from collections import Counter
    >>> sorted(Counter(e["kind"] for e in sample_events()).items())
    [('activity', 6), ('behavior', 5), ('identify', 3), ('order', 6), ('register', 3)]
    """

    def at(day: str) -> str:
        return f"{day}T10:00:00+08:00"

    def user(member: str) -> Dict[str, str]:
        return {"kind": "member_no", "value": member}

    events: List[Dict[str, Any]] = []
    for m, phone, day in MEMBERS:
        events.append({"kind": "identify", "key": f"id-{m}", "time": at(day), "source": SOURCE,
                       "ids": [{"kind": "member_no", "value": m}, {"kind": "phone", "value": phone}]})
        events.append({"kind": "register", "key": f"reg-{m}", "time": at(day), "source": SOURCE,
                       "user": user(m)})
    for i, (m, day, kind) in enumerate(ACTIVITY):
        events.append({"kind": "activity", "key": f"act-{i}", "time": at(day), "source": SOURCE,
                       "user": user(m), "type": kind})
    for m, day, order, category, price, qty, channel, region in ORDERS:
        amount = f"{float(price) * qty:.2f}"
        events.append({"kind": "order", "key": f"order-{order}", "time": at(day), "source": SOURCE,
                       "user": user(m), "order_id": order, "amount": amount, "channel": channel,
                       "region": region,
                       "lines": [{"sku": f"{category}-1", "category": category, "price": price, "qty": qty}]})
    for i, (m, day, kind, category) in enumerate(BEHAVIOURS):
        events.append({"kind": "behavior", "key": f"beh-{i}", "time": at(day), "source": SOURCE,
                       "user": user(m), "type": kind, "category": category, "channel": "app"})
    return events


def buyer_events(buyers: int, seed: int = 7) -> List[Dict[str, Any]]:
    """Orders of ``buyers`` generated customers (``member_no`` B0, B1, ...) as the BG/NBD story
    tells it: from September 2025 for 25 weeks, each buys at their own rate (Gamma(2, 0.25) a
    week) and may drop out after any purchase (Beta(2, 8)). Seeded: the same every time. Each
    order's key (and order id) is ``B<buyer>-<n>``, its number among the buyer's orders.

    >>> len(buyer_events(10)), buyer_events(10)[0]["user"]
    (45, {'kind': 'member_no', 'value': 'B0'})
    """
    import datetime as dt
    import random

    rng = random.Random(seed)
    start = dt.datetime(2025, 9, 1, 10, tzinfo=dt.timezone.utc)
    events: List[Dict[str, Any]] = []
    for b in range(buyers):
        rate, drop, week = rng.gammavariate(2, 0.25), rng.betavariate(2, 8), rng.uniform(0, 4)
        n = 0  # orders are numbered per buyer: two can fall in the same thousandth of a week
        while week < 25:
            key = f"B{b}-{n}"
            n += 1
            events.append({"kind": "order", "key": key, "time": (start + dt.timedelta(weeks=week)).isoformat(),
                           "source": SOURCE, "user": {"kind": "member_no", "value": f"B{b}"},
                           "order_id": key, "amount": f"{rng.randrange(20, 400)}.00", "channel": "app"})
            if rng.random() < drop:
                break
            week += rng.expovariate(rate)
    return events


#: The loyalty programs of ``sample_engine(loyalty=True)``: a group program and the brand's
#: program under it (10 brand points convert to 3 group points; spend-based silver/gold tiers
#: over a rolling year; a free service for gold members once; a survey task worth 5 points).
PROGRAMS: List[Dict[str, Any]] = [
    {"id": "group", "level": "group"},
    {
        "id": "brand-a", "level": "brand", "parent": "group",
        "conversions": {"group": {"from": 10, "to": 3}},
        "growth": {"weights": {"order": 10}},
        "tiers": {"basis": "spend", "window": "rolling_12_months",
                  "levels": [{"name": "silver", "threshold": "0"}, {"name": "gold", "threshold": "1000"}]},
        "benefits": [{"id": "wash", "kind": "free_service", "tiers": ["gold"], "limit": 1}],
        "tasks": [{"id": "survey", "kind": "survey", "points": 5}],
    },
]


def sample_summary(customers: int = 500, seed: int = 3) -> Any:
    """Per-customer ``frequency``, ``recency``, ``T`` (weeks, as :func:`userops.summary_data`
    gives them) and ``monetary_value`` of ``customers`` simulated customers, as a pyarrow
    table: each buys at a rate ~ Gamma(2, 0.1) a week over 52 weeks and drops out after a
    purchase with a probability ~ Beta(1, 3); their spend per purchase ~ Gamma(3, scale) with
    a scale ~ Gamma(4, 15) per customer. Seeded: the same every time. For trying the models
    (:class:`userops.BetaGeo`, :class:`userops.GammaGamma`).

    >>> import userops
    >>> s = userops.sample_summary()
    >>> s.num_rows, s.column_names
    (500, ['frequency', 'recency', 'T', 'monetary_value'])
    """
    import random

    import pyarrow as pa

    rng = random.Random(seed)
    cols: Dict[str, List[float]] = {"frequency": [], "recency": [], "T": [], "monetary_value": []}
    for _ in range(customers):
        lam, p, scale = rng.gammavariate(2, 0.1), rng.betavariate(1, 3), rng.gammavariate(4.0, 15.0)
        t, x, last, spend = 0.0, 0, 0.0, 0.0
        while True:
            t += rng.expovariate(lam)
            if t > 52:
                break
            x, last = x + 1, t
            spend += rng.gammavariate(3.0, scale)
            if rng.random() < p:
                break
        # As lifetimes counts: repeat purchases after the first, and their mean value.
        repeat = max(x - 1, 0)
        cols["frequency"].append(float(repeat))
        cols["recency"].append(round(last, 3) if repeat else 0.0)
        cols["T"].append(52.0)
        cols["monetary_value"].append(round(spend / x, 2) if repeat else 0.0)
    return pa.table(cols)


def sample_engine(buyers: int = 0, loyalty: bool = False) -> "Engine":
    """An in-memory :class:`userops.Engine` holding a small made-up pool, for trying methods out
    (every engine method's example starts from it).

    Three members (``member_no`` M1, M2, M3, OneIDs 1, 2, 3, each with a phone) registered in
    December 2025, with logins, six orders (tea and cups, on app, mini program and store, in
    Shanghai, Beijing and Hangzhou) and a few behaviours up to 20 February 2026 (the events are
    :func:`userops._sample.sample_events`). With ``buyers``, that many generated customers
    (OneIDs from 4 on) add their orders, enough for the statistical models (churn risk needs a
    few hundred; see :func:`userops._sample.buyer_events`). With ``loyalty``, the programs
    ``group`` and ``brand-a`` of :data:`userops._sample.PROGRAMS` exist (no points yet).

    >>> import userops
    >>> e = userops.sample_engine()
    >>> e.stats()["persons"], e.resolve(("member_no", "M3"))
    (3, 3)
    >>> userops.sample_engine(buyers=20).stats()["persons"]
    23
    """
    from . import Engine as _Engine

    engine = _Engine()
    for event in sample_events() + buyer_events(buyers):
        engine.ingest(event)
    if loyalty:
        for program in PROGRAMS:
            engine.create_program(program)
    return engine
