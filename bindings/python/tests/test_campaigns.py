import threading
from decimal import Decimal
from typing import Any, Dict, List, Tuple, Union

import pytest

import userops

SRC = {"platform": "app", "program": "b"}


Line = Tuple[str, str, Union[str, Decimal], int]


def cart(*lines: Line, time: str = "2026-03-02T10:00:00+08:00", channel: str = "app") -> Dict[str, Any]:
    return {
        "time": time,
        "channel": channel,
        "lines": [{"sku": s, "category": c, "price": p, "qty": q} for (s, c, p, q) in lines],
    }


def activity(e: userops.Engine, key: str, user: str, time: str) -> None:
    e.ingest({"kind": "activity", "key": key, "time": time, "source": SRC, "user": {"kind": "member_no", "value": user}, "type": "login"})


def order(e: userops.Engine, key: str, user: str, time: str, category: str, amount: str) -> None:
    e.ingest({
        "kind": "order", "key": key, "time": time, "source": SRC, "user": {"kind": "member_no", "value": user},
        "order_id": key, "amount": amount, "lines": [{"sku": category + "-1", "category": category, "price": amount, "qty": 1}],
    })


def test_quote_worked_example_and_reasons() -> None:
    e = userops.Engine()
    e.add_promotion({"id": "m", "name": "满300减50", "conditions": {},
                     "action": {"type": "threshold_discount", "threshold": "300", "off": "50"},
                     "stacking": {"mode": "stackable", "group": "g", "priority": 1}})
    e.add_promotion({"id": "pos", "conditions": {"channels": ["pos"]},
                     "action": {"type": "percent_off", "percent": "20"}})
    # a 120.00 x 2 = 240.00, b 90.00 -> 330.00; 50 off split 36.36 / 13.64 (largest remainder).
    q = e.quote(cart(("a", "x", "120.00", 2), ("b", "y", Decimal("90.00"), 1)))
    assert (q["subtotal"], q["discount"], q["total"]) == ("330.00", "50.00", "280.00")
    assert [l["discount"] for l in q["lines"]] == ["36.36", "13.64"]
    assert q["applied"][0]["id"] == "m" and q["applied"][0]["discount"] == "50.00"
    assert q["not_applied"] == [{"id": "pos", "code": "channel", "reason": "the cart's channel is not eligible"}]


def test_commit_cancel_budget_and_typed_errors() -> None:
    e = userops.Engine()
    e.add_promotion({"id": "b", "action": {"type": "threshold_discount", "threshold": "100", "off": "40"},
                     "budget": {"kind": "money", "amount": "50"}})
    q = e.quote(cart(("a", "x", "100.00", 1)))
    r = e.commit(q, "order-1")
    assert r["state"] == "committed" and not r["duplicate"]
    assert e.commit(q, "order-1")["duplicate"] is True
    assert e.promotion_usage("b")["budget_left"] == "10.00"
    with pytest.raises(userops.BudgetExhausted) as info:
        e.commit(q, "order-2")
    assert info.value.status == 80
    with pytest.raises(userops.DuplicateKey):
        e.commit({"applied": []}, "order-1")
    e.cancel("order-1")
    assert e.promotion_usage("b")["budget_left"] == "50.00"
    with pytest.raises(userops.InvalidArgument) as contradictory:
        e.add_promotion({"id": "c", "conditions": {"skus": ["a"], "exclude_skus": ["a"]}, "action": {"type": "percent_off", "percent": "5"}})
    assert contradictory.value.field == "promotion.conditions.exclude_skus"
    with pytest.raises(userops.InvalidArgument):
        e.add_promotion({"id": "c", "budget": {"kind": "money", "amount": "-1"}, "action": {"type": "percent_off", "percent": "5"}})
    with pytest.raises(userops.InvalidArgument) as negative:
        e.quote(cart(("a", "x", "10.00", -1)))
    assert negative.value.field == "cart.lines[0].qty"
    bad = cart(("a", "x", "10.00", 1))
    bad["lines"][0]["currency"] = "USD"
    with pytest.raises(userops.InvalidArgument):
        e.quote(bad)


def test_concurrent_commits_never_overspend() -> None:
    e = userops.Engine()
    e.add_promotion({"id": "b", "action": {"type": "percent_off", "percent": "10"},
                     "budget": {"kind": "count", "count": 25}})
    q = e.quote(cart(("a", "x", "100.00", 1)))
    outcomes: List[bool] = []

    def worker(t: int) -> None:
        for i in range(20):
            try:
                e.commit(q, f"t{t}-{i}")
                outcomes.append(True)
            except userops.BudgetExhausted:
                outcomes.append(False)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count(True) == 25 and len(outcomes) == 80
    assert e.promotion_usage("b")["budget_left"] == "0"


def test_coupons_through_python() -> None:
    e = userops.Engine()
    activity(e, "a1", "M1", "2026-03-01T10:00:00+08:00")
    e.add_coupon_template({"id": "c10", "kind": "consumption", "benefit": {"type": "amount_off", "off": "10"}, "valid_days": 7})
    ids = e.issue_coupons("c10", [("member_no", "M1")], time="2026-03-01T12:00:00+08:00")
    assert ids == ["c10#1"]
    assert e.claim_coupon("c10", ("member_no", "M1"), "2026-03-01T12:00:00+08:00") == "c10#1"
    used = e.use_coupon("c10#1", ("member_no", "M1"), cart(("a", "x", "30.00", 1)))
    assert used["discount"] == "10.00"
    with pytest.raises(userops.CouponUnusable):
        e.use_coupon("c10#1", ("member_no", "M1"), cart(("a", "x", "30.00", 1)))
    assert e.return_coupon("c10#1", "2026-03-03T00:00:00+08:00") == "claimed"
    assert e.expire_coupons("2026-03-09T00:00:00+08:00") == ["c10#1"]
    assert e.coupon_counts(output="arrow").to_pylist() == [
        {"template": "c10", "issued": 0, "claimed": 0, "used": 0, "expired": 1, "returned": 1}]


def test_automation_plan_consent_and_outcomes_table() -> None:
    e = userops.Engine()
    order(e, "o1", "M1", "2025-03-01T10:00:00+08:00", "aircon", "3000.00")
    order(e, "o2", "M2", "2025-03-01T10:00:00+08:00", "aircon", "3000.00")
    e.set_consent(("member_no", "M1"), "sms", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
    e.add_rule({"id": "clean", "trigger": {"type": "order", "category": "aircon", "delay_days": 365},
                "actions": [{"type": "touch", "channel": "sms", "content": "cleaning"}], "quiet_hours": [22, 8]})
    quiet = e.run_automation("2026-03-01T23:30:00+08:00", output="arrow")
    assert quiet.num_rows == 0 and quiet.column_names[:3] == ["touch_id", "user", "action"]  # quiet hours
    plan = e.run_automation("2026-03-02T09:00:00+08:00", output="arrow").to_pylist()
    assert [(r["user"], r["channel"], r["content"], r["rule"]) for r in plan] == [(1, "sms", "cleaning", "clean")]
    assert "365 days after order" in plan[0]["reason"]
    assert e.run_automation("2026-03-02T10:00:00+08:00", output="arrow").num_rows == 0  # de-duplicated; M2 never: no consent
    rows = [{"touch_id": plan[0]["touch_id"], "outcome": "delivered", "time": "2026-03-02T09:00:10+08:00"},
            {"touch_id": plan[0]["touch_id"], "outcome": "clicked", "time": "2026-03-02T09:30:00+08:00"}]
    assert e.record_outcomes(rows) == 2
    order(e, "o3", "M1", "2026-03-04T10:00:00+08:00", "filter", "99.00")
    rep = e.channel_effectiveness("channel", output="arrow").to_pylist()
    assert rep == [{"key": "sms", "planned": 1, "sent": 1, "delivered": 1, "opened": 1, "clicked": 1,
                    "converted": 1, "revenue": Decimal("99.00"), "conversion_rate": 1.0}]
    assert rep == [{**r, "revenue": Decimal(r["revenue"])} for r in e.call("channel_effectiveness", by="channel")]
    with pytest.raises(userops.NotFound):
        e.record_outcomes([{"touch_id": 99, "outcome": "sent", "time": "2026-03-02T09:00:10+08:00"}])


def test_record_outcomes_accepts_a_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    e = userops.Engine()
    activity(e, "a1", "M1", "2026-01-01T10:00:00+08:00")
    e.set_consent(1, "push", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
    e.add_rule({"id": "wb", "trigger": {"type": "inactive", "days": 30},
                "actions": [{"type": "touch", "channel": "push", "content": "hi"}]})
    plan = e.run_automation("2026-03-01T10:00:00+08:00", output="pandas")
    assert isinstance(plan, pd.DataFrame) and str(plan["touch_id"].dtype) == "UInt64"
    df = pd.DataFrame({"touch_id": plan["touch_id"], "outcome": ["opened"],
                       "time": [pd.Timestamp("2026-03-01T11:00:00+08:00")]})
    assert e.record_outcomes(df) == 1
    assert e.channel_effectiveness("rule")["opened"].tolist() == [1]


def test_run_automation_executes_actions_once_and_plan_round_trips_as_tables() -> None:
    pa = pytest.importorskip("pyarrow")
    pl = pytest.importorskip("polars")
    e = userops.Engine()
    activity(e, "a1", "M1", "2026-01-01T10:00:00+08:00")
    activity(e, "a2", "M2", "2026-01-02T10:00:00+08:00")
    for u in (("member_no", "M1"), ("member_no", "M2")):
        e.set_consent(u, "push", "marketing", True, actor="crm", time="2026-01-01T00:00:00Z")
    e.create_program({"id": "brand"})
    e.add_rule({"id": "wb", "trigger": {"type": "inactive", "days": 30},
                "actions": [{"type": "touch", "channel": "push", "content": "hi"},
                            {"type": "grant_points", "points": 25},
                            {"type": "add_tag", "tag": "winback"}]})
    plan = e.run_automation("2026-03-01T10:00:00+08:00", output="polars")
    assert isinstance(plan, pl.DataFrame) and plan.height == 6
    assert plan.filter(pl.col("action") == "grant_points")["key"].to_list() == [
        "automation:wb:1:inactive:1767232800:1", "automation:wb:2:inactive:1767319200:1"]
    assert e.balance(("member_no", "M1"), "brand") == 25
    assert e.call("audience", expression="winback", now="2026-03-01T10:00:00+08:00")["size"] == 2
    # The same run again: an empty plan, and balances and tags unchanged.
    again = e.run_automation("2026-03-01T10:00:00+08:00", output="arrow")
    assert isinstance(again, pa.Table) and again.num_rows == 0
    assert e.balance(("member_no", "M2"), "brand") == 25
    # Outcomes from the plan's own touch ids, as a polars table.
    touches = plan.filter(pl.col("action") == "touch")
    outcomes = pl.DataFrame({"touch_id": touches["touch_id"], "outcome": ["sent", "sent"],
                             "time": ["2026-03-01T10:01:00+08:00"] * 2})
    assert e.record_outcomes(outcomes) == 2
    assert e.channel_effectiveness("channel", output="polars")["sent"].to_list() == [2]
    with pytest.raises(userops.InvalidArgument):
        e.run_automation("2026-03-01T10:00:00+08:00", output="csv")  # type: ignore[arg-type]


def test_rebate_points_granted_on_commit_and_reversed_on_cancel() -> None:
    e = userops.Engine()
    activity(e, "a1", "M1", "2026-01-01T10:00:00+08:00")
    e.create_program({"id": "brand"})
    e.add_promotion({"id": "pts", "action": {"type": "threshold_rebate", "threshold": "100", "every": True,
                                             "reward": {"type": "points", "points": 10}}})
    q = e.quote(cart(("a", "x", "250.00", 1)), user=("member_no", "M1"))
    r = e.commit(q, "order-1")
    assert r["points"] == 20
    assert e.balance(("member_no", "M1"), "brand") == 20
    assert e.commit(q, "order-1")["duplicate"] is True
    assert e.balance(("member_no", "M1"), "brand") == 20
    e.cancel("order-1")
    assert e.balance(("member_no", "M1"), "brand") == 0
