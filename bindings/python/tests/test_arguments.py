"""Every public function and method raises a ``userops.UserOpsError`` subclass for every bad
argument, names the argument, and changes nothing.

The callables are enumerated from ``userops.__all__`` (every public function, and every public
method and constructor of every public class), so a new one cannot escape: it needs a valid
baseline call in ``BASELINES`` below, and the sweep then calls it once per parameter per bad
value, the other arguments left valid.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import tempfile
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pyarrow as pa
import pytest

import userops
from userops import _sample

UTC = dt.timezone.utc
T = dt.datetime(2026, 3, 1, tzinfo=UTC)
NAIVE = dt.datetime(2026, 3, 1)
CART = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
        "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
PROMOTION = {"id": "m300", "name": "50 off 300", "conditions": {},
             "action": {"type": "threshold_discount", "threshold": "300", "off": "50"},
             "budget": {"kind": "money", "amount": "1000"}}
TEA20 = {"id": "tea20", "kind": "consumption", "categories": ["tea"],
         "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14}
RULE = {"id": "win-back", "trigger": {"type": "inactive", "days": 10},
        "actions": [{"type": "touch", "channel": "sms", "content": "we-miss-you"}]}


def _identify(key: str, device: str) -> Dict[str, Any]:
    return {"kind": "identify", "key": key, "time": "2026-02-01T10:00:00+08:00",
            "source": {"platform": "jd", "program": "brand-a"}, "ids": [{"kind": "device_id", "value": device}]}


class Context:
    """Valid objects to call methods on, built on first use: an engine with programs,
    points, a promotion, coupons, a saved audience, a rule and its touch, a manual merge; an
    identity graph; fitted models; small tables for the table functions."""

    def __init__(self) -> None:
        self._cache: Dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name not in self._cache:
            self._cache[name] = getattr(self, "_make_" + name)()
        return self._cache[name]

    def _make_engine(self) -> userops.Engine:
        e = userops.sample_engine(loyalty=True)
        e.add_promotion(PROMOTION)
        e.add_coupon_template(TEA20)
        e.issue_coupons("tea20", [("member_no", "M1"), ("member_no", "M2")], time="2026-03-01T10:00:00+08:00")
        e.use_coupon("tea20#1", ("member_no", "M1"), CART)
        e.define_tag("vip")
        e.set_tag(1, "vip", True)
        e.save_audience("big", "gmv >= 100", now=T)
        e.save_audience("vips", "vip", now=T)
        e.set_consent(1, "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
        e.add_rule(RULE)
        e.run_automation("2026-03-01T10:00:00+08:00")
        e.ingest(_identify("jd-1", "d-77"))
        e.ingest(_identify("jd-2", "d-88"))
        e.merge(("member_no", "M1"), ("device_id", "d-77"), actor="ops", reason="same shopper")
        e.earn(1, "brand-a", 100, "e0", time=T)
        e.earn(1, "brand-a", 50, "e-order", order="A9", time=T)
        e.earn(1, "brand-a", 20, "p1", pending=True, time=T)
        e.earn(1, "brand-a", 20, "p2", pending=True, time=T)
        e.record_spend(1, "brand-a", "1200.00", "sp1", time=T)
        e.commit(e.quote(CART, user=("member_no", "M1")), "order-B1")
        return e

    def _make_quote(self) -> Dict[str, Any]:
        q: Dict[str, Any] = self.get("engine").quote(CART, user=1)
        return q

    def _make_buyers(self) -> userops.Engine:
        return userops.sample_engine(buyers=150)

    def _make_graph(self) -> userops.IdentityGraph:
        g = userops.IdentityGraph()
        g.link("A", [("phone", "13800138000"), ("device_id", "d1")])
        g.link("C", [("openid", "o-9")])
        return g

    def _make_audience(self) -> userops.Audience:
        engine: userops.Engine = self.get("engine")
        return engine.audience("gmv >= 100", now=T)

    def _make_summary(self) -> Any:
        return userops.sample_summary()

    def _make_betageo(self) -> userops.BetaGeo:
        s = self.get("summary")
        return userops.BetaGeo().fit(s["frequency"], s["recency"], s["T"])

    def _make_repeat(self) -> Any:
        import pyarrow.compute as pc

        s = self.get("summary")
        return s.filter(pc.greater(s["frequency"], 0))

    def _make_gammagamma(self) -> userops.GammaGamma:
        r = self.get("repeat")
        return userops.GammaGamma().fit(r["frequency"], r["monetary_value"])

    def _make_path(self) -> str:
        return tempfile.mkdtemp()


ACTS = pa.table({"user": ["u1", "u1", "u2"],
                 "time": [dt.datetime(2026, 1, 5, tzinfo=UTC), dt.datetime(2026, 2, 3, tzinfo=UTC),
                          dt.datetime(2026, 1, 9, tzinfo=UTC)]})
EVENTS = pa.table({"user": [1, 1, 2], "event": ["view", "buy", "view"],
                   "time": [T, T + dt.timedelta(hours=1), T]})
TOUCHES = pa.table({"user": [1, 1], "channel": ["sms", "push"], "time": [T, T + dt.timedelta(hours=1)]})
CONVERSIONS = pa.table({"user": [1], "time": [T + dt.timedelta(hours=2)], "amount": ["100.00"]})
ORDERS = pa.table({"member": ["M1", "M1", "M2"],
                   "day": [dt.date(2026, 1, 2), dt.date(2026, 1, 20), dt.date(2026, 1, 5)],
                   "amount": [120.0, 80.0, 35.5]})
IDENTITY_ROWS = pa.table({"record_id": ["A", "A"], "kind": ["phone", "device_id"], "value": ["13800138000", "d1"]})
CHURN = pa.table({"days_quiet": [1.0, 3, 20, 30, 2, 25, 4, 28, 5, 22], "churned": [0, 0, 1, 1, 0, 1, 1, 1, 0, 0]})
BEHAVIOURS = pa.table({"member": ["M1", "M1", "M2"], "category": ["tea", "cups", "cups"]})
CHURN_SPEC = {"model": {"features": ["x"], "intercept": -1.0, "coefficients": [0.5], "log_likelihood": -3.2,
                        "iterations": 5}, "auc_holdout": None, "n_train": 10, "n_holdout": 0}
TABLE_INGEST = pa.table({"key": ["o9"], "time": ["2026-01-05T10:00:00+08:00"], "member_no": ["M1"],
                         "order_id": ["A-9"], "amount": ["19.90"]})

Args = Tuple[Tuple[Any, ...], Dict[str, Any]]
_AT = "2026-02-28T23:00:00+08:00"
_counter = iter(range(10**9))


def _fresh_db(c: Context) -> str:
    return os.path.join(c.get("path"), f"pool{next(_counter)}.db")


#: A valid call of every public callable: ``name -> (object it is called on, arguments)``.
#: ``engine`` / ``buyers`` / ``graph`` / ... name a :class:`Context` object; ``None`` is the
#: function or class itself.
BASELINES: Dict[str, Tuple[Optional[str], Callable[[Context], Args]]] = {
    "Engine.__init__": (None, lambda c: ((), {})),
    "Engine.active_rate_decomposition": ("engine", lambda c: (("2026-02",), {})),
    "Engine.activity_scores": ("engine", lambda c: ((_AT,), {"weights": {"login": 2.0}, "levels": [("hi", 3.0)]})),
    "Engine.add_coupon_template": ("engine", lambda c: (({"id": "t2", "kind": "consumption", "valid_days": 7,
                                                           "benefit": {"type": "amount_off", "off": "5"}},), {})),
    "Engine.add_growth": ("engine", lambda c: ((1, "brand-a", "order", "g1", 2), {"time": T})),
    "Engine.add_promotion": ("engine", lambda c: (({**PROMOTION, "id": "m400"},), {})),
    "Engine.add_rule": ("engine", lambda c: (({**RULE, "id": "r2"},), {})),
    "Engine.attribution": ("engine", lambda c: (("last_touch",), {"lookback_days": 30.0, "outcomes": ["opened"]})),
    "Engine.audience": ("engine", lambda c: (("gmv >= 100",), {"now": T})),
    "Engine.audience_members": ("engine", lambda c: (("big",), {})),
    "Engine.audiences": ("engine", lambda c: ((), {})),
    "Engine.audit_log": ("engine", lambda c: ((), {})),
    "Engine.balance": ("engine", lambda c: ((1, "brand-a"), {})),
    "Engine.benefits": ("engine", lambda c: ((1, "brand-a"), {"now": T})),
    "Engine.call": ("engine", lambda c: (("stats",), {})),
    "Engine.cancel": ("engine", lambda c: (("order-B1",), {"time": "2026-03-03T10:00:00+08:00"})),
    "Engine.canonical": ("engine", lambda c: ((4,), {})),
    "Engine.channel_effectiveness": ("engine", lambda c: (("rule",), {"output": "arrow"})),
    "Engine.churn_model": ("buyers", lambda c: (("2026-03-01T00:00:00Z",), {"window_days": 30, "seed": 1})),
    "Engine.churn_risk": ("buyers", lambda c: (("2026-03-01T00:00:00Z",), {"freq": "W", "tag": "churn"})),
    "Engine.claim_benefit": ("engine", lambda c: ((1, "brand-a", "wash", "b1"), {"time": T})),
    "Engine.claim_coupon": ("engine", lambda c: (("tea20", ("member_no", "M3"), "2026-03-01T11:00:00+08:00"), {})),
    "Engine.cohort_retention": ("engine", lambda c: ((), {"period": "month"})),
    "Engine.combine_audiences": ("engine", lambda c: (("either", "union", ["big", "vips"]), {"now": T})),
    "Engine.commit": ("engine", lambda c: ((c.get("quote"), "order-B2"), {"time": "2026-03-02T10:00:00+08:00"})),
    "Engine.community_stats": ("engine", lambda c: ((), {"period": "week"})),
    "Engine.complete_task": ("engine", lambda c: ((1, "brand-a", "survey", "k1"), {"time": T})),
    "Engine.conflicts": ("engine", lambda c: ((1,), {})),
    "Engine.consent": ("engine", lambda c: ((1, "sms", "marketing"), {})),
    "Engine.convert": ("engine", lambda c: ((1, "brand-a", "group", 20, "c1"), {"time": T})),
    "Engine.coupon_counts": ("engine", lambda c: (("tea20",), {})),
    "Engine.create_program": ("engine", lambda c: (({"id": "store-1", "level": "store", "parent": "brand-a"},), {})),
    "Engine.cross_table": ("engine", lambda c: ((_AT, "region", "category"), {"price_bands": ["50", "100"]})),
    "Engine.data_warnings": ("engine", lambda c: (("gmv", {"method": "rolling", "window": 7, "k": 3}), {})),
    "Engine.define_attribute": ("engine", lambda c: (("city", "string"), {"merge": "latest"})),
    "Engine.define_tag": ("engine", lambda c: (("big_spender",), {"rule": "gmv >= 400", "now": T})),
    "Engine.delete_audience": ("engine", lambda c: (("big",), {})),
    "Engine.earn": ("engine", lambda c: ((1, "brand-a", 5, "e9"), {"reason": "r", "time": T})),
    "Engine.erase": ("engine", lambda c: ((3,), {"actor": "dpo", "time": "2026-03-01T00:00:00Z"})),
    "Engine.evaluate_tiers": ("engine", lambda c: ((T,), {})),
    "Engine.expire": ("engine", lambda c: ((T,), {})),
    "Engine.expire_coupons": ("engine", lambda c: (("2026-03-20T00:00:00+08:00",), {})),
    "Engine.explain": ("engine", lambda c: ((("member_no", "M1"), ("phone", "138 0000 0001")), {})),
    "Engine.export_audience": ("engine", lambda c: (("big", "phone"), {})),
    "Engine.flush": ("engine", lambda c: ((), {})),
    "Engine.funnel": ("engine", lambda c: ((["login", "view"],), {"window_seconds": 86400,
                                                                   "segments": {"M1": [1]}})),
    "Engine.high_value_users": ("engine", lambda c: ((_AT,), {"window_days": 90, "rule": {"min_orders": 2}})),
    "Engine.identifiers": ("engine", lambda c: ((("member_no", "M2"),), {})),
    "Engine.identity_audit": ("engine", lambda c: ((), {})),
    "Engine.identity_rules": ("engine", lambda c: ((), {})),
    "Engine.ingest": ("engine", lambda c: (({"kind": "activity", "key": "a-new", "time": "2026-03-01T10:00:00+08:00",
                                             "source": {"platform": "app", "program": "brand-a"},
                                             "user": {"kind": "member_no", "value": "M2"}, "type": "login"},), {})),
    "Engine.ingest_table": ("engine", lambda c: ((TABLE_INGEST,), {
        "values": {"kind": "order", "platform": "app", "program": "brand-a"}, "exclude": [], "chunk_size": 10,
        "columns": {"order_id": "order_id"}, "output": "arrow", "progress": False})),
    "Engine.issue_coupons": ("engine", lambda c: (("tea20", [("member_no", "M3")]), {"time": "2026-03-01T10:00:00+08:00"})),
    "Engine.journey": ("engine", lambda c: ((("member_no", "M2"),), {})),
    "Engine.lifecycle_report": ("engine", lambda c: ((), {"segments": {"M1": [1]}, "churn_after": 2})),
    "Engine.lifecycle_stages": ("engine", lambda c: (("2026-01",), {})),
    "Engine.merge": ("engine", lambda c: ((("member_no", "M2"), ("device_id", "d-88"), "ops", "same"), {})),
    "Engine.merge_history": ("engine", lambda c: ((1,), {})),
    "Engine.metric_tree": ("engine", lambda c: ((), {"period": "month"})),
    "Engine.micro_conversions": ("engine", lambda c: (("order",), {})),
    "Engine.open": (None, lambda c: ((_fresh_db(c),), {"durability": "group"})),
    "Engine.paths": ("engine", lambda c: (("login", "order"), {"top": 3})),
    "Engine.post": ("engine", lambda c: (("p1",), {"time": T})),
    "Engine.post_due": ("engine", lambda c: ((T,), {})),
    "Engine.preference_shares": ("engine", lambda c: ((_AT, "category"), {"top_k": 2})),
    "Engine.profile": ("engine", lambda c: ((1,), {})),
    "Engine.project_active_rate": ("engine", lambda c: ((), {"target": 0.9, "lever": "new_users"})),
    "Engine.promotion_usage": ("engine", lambda c: (("m300",), {})),
    "Engine.quote": ("engine", lambda c: ((CART,), {"user": 1, "mode": "priority"})),
    "Engine.record_outcomes": ("engine", lambda c: (([{"touch_id": 1, "outcome": "opened",
                                                       "time": "2026-03-01T12:00:00+08:00"}],), {})),
    "Engine.record_spend": ("engine", lambda c: ((1, "brand-a", "100.00", "sp2"), {"time": T})),
    "Engine.refresh_audience": ("engine", lambda c: (("big",), {"now": T})),
    "Engine.refresh_tags": ("engine", lambda c: ((), {"now": T})),
    "Engine.refund": ("engine", lambda c: (("A9", "r1"), {"time": T})),
    "Engine.repurchase": ("engine", lambda c: ((), {"top": 3, "min_buyers": 1})),
    "Engine.resolve": ("engine", lambda c: ((("phone", "13800000002"),), {})),
    "Engine.return_coupon": ("engine", lambda c: (("tea20#1", "2026-03-03T10:00:00+08:00"), {})),
    "Engine.rfm": ("engine", lambda c: ((_AT,), {"window_days": 365, "tag": "rfm"})),
    "Engine.run_automation": ("engine", lambda c: (("2026-03-01T10:00:00+08:00",), {})),
    "Engine.save_audience": ("engine", lambda c: (("big2", "gmv >= 400"), {"now": T})),
    "Engine.set_attribute": ("engine", lambda c: ((1, "city", "Shanghai"), {"source": "crm", "at": T})),
    "Engine.set_consent": ("engine", lambda c: ((2, "sms", "marketing", True), {"actor": "crm",
                                                                                 "time": "2026-01-01T00:00:00Z"})),
    "Engine.set_identity_rules": ("engine", lambda c: (({"caps": {"phone": 1}}, "ops", "why"), {})),
    "Engine.set_tag": ("engine", lambda c: ((2, "vip", True), {"now": T})),
    "Engine.set_tags": ("engine", lambda c: ((pa.table({"user_id": ["M1"], "score": [1.0]}),), {"now": T})),
    "Engine.spend": ("engine", lambda c: ((1, "brand-a", 10, "s1"), {"time": T})),
    "Engine.split": ("engine", lambda c: ((["manual:1"], "ops", "two people"), {})),
    "Engine.statement": ("engine", lambda c: ((1, "brand-a"), {"output": "arrow"})),
    "Engine.stats": ("engine", lambda c: ((), {})),
    "Engine.tags": ("engine", lambda c: ((), {})),
    "Engine.tier": ("engine", lambda c: ((1, "brand-a"), {"now": T})),
    "Engine.use_coupon": ("engine", lambda c: (("tea20#2", ("member_no", "M2"), CART), {})),
    "Engine.void": ("engine", lambda c: (("p2",), {"time": T})),
    "Engine.write_lifecycle_tags": ("engine", lambda c: (("2026-02",), {"per_period": True, "now": T})),
    "sample_engine": (None, lambda c: ((), {"buyers": 2, "loyalty": True})),
    "sample_summary": (None, lambda c: ((5,), {"seed": 1})),
    "IdentityGraph.__init__": (None, lambda c: ((), {"rules": {"caps": {"phone": 2}}})),
    "IdentityGraph.audit": ("graph", lambda c: ((), {})),
    "IdentityGraph.canonical": ("graph", lambda c: ((1,), {})),
    "IdentityGraph.conflicts": ("graph", lambda c: ((1,), {})),
    "IdentityGraph.explain": ("graph", lambda c: ((("phone", "13800138000"), ("device_id", "d1")), {})),
    "IdentityGraph.identifiers": ("graph", lambda c: ((1,), {})),
    "IdentityGraph.link": ("graph", lambda c: (("B", [("phone", "13900139000")]), {"source": "crm", "ts": 5})),
    "IdentityGraph.merge": ("graph", lambda c: ((1, 2, "ops", "same"), {})),
    "IdentityGraph.merge_history": ("graph", lambda c: ((1,), {})),
    "IdentityGraph.resolve": ("graph", lambda c: ((("phone", "13800138000"),), {})),
    "IdentityGraph.resolve_columns": ("graph", lambda c: ((["r1"], ["phone"], ["13700137000"]),
                                                          {"source": ["crm"], "ts": [5]})),
    "IdentityGraph.rules": ("graph", lambda c: ((), {})),
    "IdentityGraph.split": ("graph", lambda c: ((["A"], "ops", "r"), {})),
    "resolve_identities": (None, lambda c: ((IDENTITY_ROWS,), {"rules": {"caps": {"phone": 2}}, "output": "arrow",
                                                               "progress": False})),
    "Audience.__init__": (None, lambda c: ((c.get("engine"), "gmv >= 100", "2026-03-01T00:00:00Z", [1, 3]), {})),
    "Audience.export": ("audience", lambda c: (("phone",), {})),
    "Audience.oneids": ("audience", lambda c: (("list",), {})),
    "lifecycle": (None, lambda c: ((ACTS,), {"tz": 0, "churn_after": 2, "output": "arrow", "progress": False})),
    "active_rate_decomposition": (None, lambda c: ((ACTS,), {"tz": "+08:00", "churn_after": 2, "progress": False})),
    "funnel": (None, lambda c: ((EVENTS, ["view", "buy"]), {"window_seconds": 3600.0})),
    "cohort_retention": (None, lambda c: ((ACTS,), {"tz": 0, "period": "month"})),
    "attribution": (None, lambda c: ((TOUCHES, CONVERSIONS), {"value": "amount", "lookback_days": 7.0,
                                                              "model": "time_decay", "half_life_hours": 24.0})),
    "summary_data": (None, lambda c: ((ORDERS, "member", "day", "amount"), {"observation_period_end": "2026-02-01"})),
    "calibration_and_holdout": (None, lambda c: ((ORDERS, "member", "day", "2026-01-15", "2026-02-01"), {})),
    "rfm": (None, lambda c: ((ORDERS, "member", "day", "amount", "2026-01-31"), {"window_days": 60,
                                                                                 "progress": False})),
    "BetaGeo.__init__": (None, lambda c: ((), {})),
    "BetaGeo.expected_purchases": ("betageo", lambda c: ((10, [0, 5], [0, 50], [52, 52]), {})),
    "BetaGeo.fit": ("betageo", lambda c: ((c.get("summary")["frequency"], c.get("summary")["recency"],
                                           c.get("summary")["T"]), {})),
    "BetaGeo.log_likelihood_at": ("betageo", lambda c: (([0, 5], [0, 35], [40, 40]), {})),
    "BetaGeo.p_alive": ("betageo", lambda c: (([0, 5], [0, 35], [40, 40]), {})),
    "GammaGamma.__init__": (None, lambda c: ((), {})),
    "GammaGamma.conditional_expected_average_profit": ("gammagamma", lambda c: (([5], [80.0]), {})),
    "GammaGamma.customer_lifetime_value": ("gammagamma", lambda c: ((c.get("betageo"), [5], [50.0], [52.0], [80.0]),
                                                                    {"time": 12, "discount_rate": 0.01, "freq": "W"})),
    "GammaGamma.fit": ("gammagamma", lambda c: ((c.get("repeat")["frequency"], c.get("repeat")["monetary_value"]), {})),
    "ChurnModel.__init__": (None, lambda c: ((CHURN_SPEC,), {})),
    "churn_scores": (None, lambda c: ((CHURN, ["days_quiet"], "churned"), {"holdout": 0.0, "seed": 3})),
    "preferences": (None, lambda c: ((BEHAVIOURS, "member", "category"), {"lookback_months": 3, "top_k": 1})),
}

#: Model table functions read a point in time as wall-clock time, as their time columns
#: (lifetimes does the same): a naive datetime is documented to be read that way.
WALL_CLOCK = {"summary_data.observation_period_end", "calibration_and_holdout.calibration_period_end",
              "calibration_and_holdout.observation_period_end", "rfm.as_of", "preferences.as_of"}


class _Unconvertible:
    """An object no argument accepts."""

    def __repr__(self) -> str:
        return "<unconvertible>"


#: Values that are wrong for every parameter (None: for every one without a None default or
#: an Optional hint): each must raise, name the parameter and change nothing.
ALWAYS_BAD: List[Tuple[str, Any]] = [
    ("object", _Unconvertible()),
    ("bytes", b"13800000001"),
    ("nan", float("nan")),
    ("+inf", float("inf")),
    ("-inf", float("-inf")),
    ("2**70", 2**70),
    ("-2**70", -(2**70)),
    ("10**400", 10**400),  # beyond every float too
    ("lone surrogate", "\udcff"),
    ("huge string", "x" * (userops._args.MAX_TEXT + 1)),
    ("naive datetime", NAIVE),
]
#: Values that are wrong for many parameters and right for some: each either works or raises a
#: UserOpsError that changes nothing.
MAYBE_BAD: List[Tuple[str, Any]] = [
    ("empty string", ""),
    ("float", 1.5),
    ("-1", -1),
    ("True", True),
    ("empty list", []),
    ("empty dict", {}),
]


def _public() -> Dict[str, Tuple[Callable[..., Any], inspect.Signature, bool]]:
    """Every public callable: name -> (function, signature, whether it is a method)."""
    out: Dict[str, Tuple[Callable[..., Any], inspect.Signature, bool]] = {}
    for name in userops.__all__:
        obj = getattr(userops, name)
        if isinstance(obj, type):
            if issubclass(obj, BaseException):
                continue
            for attr in dir(obj):
                if attr.startswith("_") and attr != "__init__":
                    continue
                raw = inspect.getattr_static(obj, attr)
                func = getattr(raw, "__func__", raw)
                if not inspect.isfunction(func) or not (func.__module__ or "").startswith("userops"):
                    continue
                out[f"{name}.{attr}"] = (func, inspect.signature(func), True)
        elif callable(obj):
            out[name] = (obj, inspect.signature(obj), False)
    return out


PUBLIC = _public()


def test_every_public_callable_is_checked_and_has_a_baseline() -> None:
    assert len(PUBLIC) > 120
    unchecked = [n for n, (f, _, _) in PUBLIC.items() if not getattr(f, "__userops_checked__", False)]
    assert unchecked == [], f"public callables without argument checks: {unchecked}"
    assert sorted(set(PUBLIC) - set(BASELINES)) == [], "add a valid call of each to BASELINES"
    assert sorted(set(BASELINES) - set(PUBLIC)) == []


def _target(c: Context, name: str) -> Callable[..., Any]:
    on, _ = BASELINES[name]
    owner, _, attr = name.rpartition(".")
    if on is None:
        obj = getattr(userops, owner or attr)
        return obj if attr == "__init__" or not owner else getattr(obj, attr)  # type: ignore[no-any-return]
    return getattr(c.get(on), attr)  # type: ignore[no-any-return]


def _state(c: Context, name: str) -> Any:
    """What a refused call must leave as it was."""
    on, _ = BASELINES[name]
    if on in ("engine", "buyers"):
        return c.get(on)._native.state_fingerprint()
    if on == "graph":
        g = c.get("graph")
        return json.dumps([g.rules(), g.audit(), g.merge_history(), g.conflicts(),
                           [g.identifiers(i) for i in (1, 2)]])
    if on in ("betageo", "gammagamma"):
        return repr(c.get(on).params)
    return None


def _params(sig: inspect.Signature, method: bool) -> List[inspect.Parameter]:
    ps = list(sig.parameters.values())
    if method:
        ps = ps[1:]
    return [p for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _with(args: Args, sig: inspect.Signature, method: bool, param: inspect.Parameter, value: Any) -> Args:
    """The baseline arguments with ``param`` set to ``value`` (positionally if it was given so)."""
    pos, kw = list(args[0]), dict(args[1])
    index = [p.name for p in _params(sig, method)].index(param.name)
    if param.kind is param.POSITIONAL_ONLY or (index < len(pos)):
        if index < len(pos):
            pos[index] = value
            return tuple(pos), kw
    kw[param.name] = value
    return tuple(pos), kw


def _none_ok(param: inspect.Parameter) -> bool:
    hint = str(param.annotation)
    return param.default is None or "Optional" in hint or "None" in hint or hint in ("Any", "_tables.Progress")


def _names(e: userops.UserOpsError, param: str) -> bool:
    """Whether the error names the parameter: as its field, or in its message."""
    field = e.field or ""
    if field == param or field.startswith(param + ".") or field.startswith(param + "["):
        return True
    return param in str(e)


def _cases() -> Iterator[Tuple[str, str, str, Any, bool]]:
    for name, (_, sig, method) in PUBLIC.items():
        for p in _params(sig, method):
            for label, value in ALWAYS_BAD:
                wall_clock = label == "naive datetime" and f"{name.split('.')[-1]}.{p.name}" in WALL_CLOCK
                # 2**70 is a fine float (1.2e21): a half-life, a rate, a bound may be that large.
                big_float = label.endswith("2**70") and "float" in str(p.annotation)
                yield name, p.name, label, value, not (wall_clock or big_float)
            yield name, p.name, "None", None, not _none_ok(p)
            for label, value in MAYBE_BAD:
                yield name, p.name, label, value, False


def test_baselines_work() -> None:
    c = Context()
    for name in PUBLIC:
        args = BASELINES[name][1](c)
        before = _state(c, name)
        _target(c, name)(*args[0], **args[1])
        if _state(c, name) != before:
            c = Context()


def test_every_bad_argument_raises_a_userops_error_naming_it_and_changes_nothing() -> None:
    c = Context()
    problems: List[str] = []
    calls = 0
    for name, param, label, value, must_raise in _cases():
        _, sig, method = PUBLIC[name]
        p = sig.parameters[param]
        args = _with(BASELINES[name][1](c), sig, method, p, value)
        before = _state(c, name)
        where = f"{name}({param}={label})"
        calls += 1
        try:
            _target(c, name)(*args[0], **args[1])
        except userops.UserOpsError as e:
            if _state(c, name) != before:
                problems.append(f"{where}: raised {type(e).__name__} but changed the state")
                c = Context()
            if must_raise and isinstance(e, userops.InvalidArgument) and not isinstance(e, userops.TableError):
                if not _names(e, param):
                    problems.append(f"{where}: {type(e).__name__} does not name `{param}`: field={e.field!r}: {e}")
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            problems.append(f"{where}: {type(e).__name__} is not a UserOpsError: {str(e)[:200]}")
            c = Context()
            continue
        if must_raise:
            problems.append(f"{where}: accepted")
        if _state(c, name) != before:
            c = Context()  # the next baseline may need what this call changed
    assert calls > 2000
    assert problems == [], f"{len(problems)} problems:\n" + "\n".join(problems)


def test_a_naive_datetime_is_refused_with_a_clear_message() -> None:
    e = userops.sample_engine(loyalty=True)
    before = e._native.state_fingerprint()
    with pytest.raises(userops.InvalidArgument) as err:
        e.earn(1, "brand-a", 5, "k", time=NAIVE)
    assert err.value.field == "time"
    assert "naive datetime" in str(err.value) and "tzinfo" in str(err.value)
    assert "premature end of input" not in str(err.value)
    # Inside a structure too, with the path to it.
    with pytest.raises(userops.InvalidArgument) as err:
        e.quote({**CART, "time": NAIVE})
    assert err.value.field == "cart.time"
    with pytest.raises(userops.InvalidArgument) as event_err:
        e.ingest({"kind": "activity", "key": "a", "time": NAIVE, "type": "login",
                  "source": {"platform": "app", "program": "p"}, "user": {"kind": "member_no", "value": "M1"}})
    assert event_err.value.field == "time"
    assert e._native.state_fingerprint() == before


def test_the_wrapper_errors_repro_cases() -> None:
    """repro_wrapper_errors.py: each case raises the class it should, naming the argument."""
    import datetime as _dt

    e = userops.sample_engine(loyalty=True)
    cases: List[Tuple[Callable[[], Any], type, Optional[str]]] = [
        (lambda: e.quote(None), userops.InvalidArgument, "cart"),  # type: ignore[arg-type]
        (lambda: e.add_promotion("x"), userops.InvalidArgument, "promotion"),  # type: ignore[arg-type]
        (lambda: e.split(None, actor="a", reason="r"), userops.InvalidArgument, "evidence"),  # type: ignore[arg-type]
        (lambda: e.funnel(None), userops.InvalidArgument, "steps"),  # type: ignore[arg-type]
        (lambda: e.lifecycle_report(segments=1.5), userops.InvalidArgument, "segments"),  # type: ignore[arg-type]
        (lambda: e.issue_coupons("t", [1], time=_dt.datetime(2026, 3, 1)), userops.InvalidArgument, "time"),
        (lambda: e.run_automation(_dt.datetime(2026, 3, 1)), userops.InvalidArgument, "now"),
        (lambda: e.record_outcomes([{"touch_id": 2**70, "outcome": "opened", "time": "2026-03-01T00:00:00Z"}]),
         userops.TableError, "touch_id"),
        (lambda: userops.Engine.open(tempfile.mkdtemp() + "/x.db", durability=None),  # type: ignore[arg-type]
         userops.InvalidArgument, "durability"),
        (lambda: userops.IdentityGraph().resolve_columns(["r"], ["phone"], [None]),  # type: ignore[list-item]
         userops.InvalidArgument, "value[0]"),
        (lambda: e.earn(1, "brand-a", 5, "", time=_dt.datetime(2026, 1, 1, tzinfo=UTC)), userops.InvalidArgument, "key"),
        (lambda: e.earn(1, "brand-a", 5, "k", time=_dt.datetime(2026, 1, 1)), userops.InvalidArgument, "time"),
    ]
    for f, cls, field in cases:
        with pytest.raises(userops.UserOpsError) as err:
            f()
        assert type(err.value) is cls, (type(err.value), str(err.value))
        assert err.value.field == field, str(err.value)
        if cls is userops.TableError:
            assert f"column `{field}`" in str(err.value), str(err.value)
        elif field is not None:
            assert "expect" in str(err.value) or "must not be empty" in str(err.value), str(err.value)


def test_money_travels_exactly_or_not_at_all() -> None:
    e = userops.sample_engine(loyalty=True)
    with pytest.raises(userops.InvalidArgument) as err:
        e.record_spend(1, "brand-a", 19.99, "k", time=T)  # type: ignore[arg-type]
    assert err.value.field == "amount" and "float" in str(err.value)
    with pytest.raises(userops.InvalidArgument) as err:
        e.set_attribute(1, "score", 2**70)
    assert err.value.field == "value" and "64 bits" in str(err.value)


@pytest.mark.parametrize("path", ["", ":memory:"])
def test_a_durable_engine_needs_a_file(path: str) -> None:
    # SQLite would keep the journal in memory (or a temporary file) and lose it at close.
    with pytest.raises(userops.StorageError) as err:
        userops.Engine.open(path)
    assert "names no file" in str(err.value)


def test_a_huge_list_of_audiences_is_combined_not_a_crash() -> None:
    # 65,537 names made an expression 65,536 ORs long, whose walk (a binary tree per operator)
    # overflowed the stack and killed the process. A chain is now one node: the combination is
    # saved and evaluated, and one naming an unsaved audience is a typed error that changes
    # nothing.
    e = userops.sample_engine()
    names = [f"a{i % 10}" for i in range(65_537)]
    before = e._native.state_fingerprint()
    with pytest.raises(userops.AudienceSyntaxError, match="unknown audience `a0`"):
        e.combine_audiences("x", "union", names)
    assert e._native.state_fingerprint() == before
    for i in range(10):
        e.save_audience(f"a{i}", f"orders >= {i}")
    sizes = {op: e.combine_audiences(f"c_{op}", op, names)["size"] for op in
             ("union", "intersection", "difference")}
    everyone = e.save_audience("everyone", "orders >= 0")["size"]
    assert everyone > 0 and sizes == {"union": everyone, "intersection": e.save_audience(
        "top", "orders >= 9")["size"], "difference": 0}
