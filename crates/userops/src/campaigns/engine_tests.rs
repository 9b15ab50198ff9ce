//! Campaigns through the engine's command surface: first order from ingested orders, commit /
//! cancel, coupons, automation (consent, quiet hours, caps, de-duplication) and monitoring.

use serde_json::json;

use super::test_support::{call, cart, ingest, member, ok, run};
use crate::{Engine, ErrorCode};

fn order(e: &mut Engine, key: &str, user: &str, time: &str, category: &str, amount: &str) {
    ingest(
        e,
        json!({"kind": "order", "key": key, "time": time, "source": {"platform": "app", "program": "b"},
            "user": member(user), "order_id": key, "amount": amount,
            "lines": [{"sku": format!("{category}-1"), "category": category, "price": amount, "qty": 1}]}),
    );
}

fn activity(e: &mut Engine, key: &str, user: &str, time: &str) {
    ingest(
        e,
        json!({"kind": "activity", "key": key, "time": time, "source": {"platform": "app", "program": "b"},
            "user": member(user), "type": "login"}),
    );
}

#[test]
fn first_order_comes_from_ingested_orders() {
    let mut e = Engine::default();
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "new", "conditions": {"first_order": true},
        "action": {"type": "percent_off", "percent": "10"}}}),
    );
    activity(&mut e, "a1", "M1", "2026-03-01T10:00:00+08:00");
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("100.00"), "user": member("M1")}),
    );
    assert_eq!(q["total"], "90.00");
    assert_eq!(q["applied"][0]["id"], "new");
    order(
        &mut e,
        "o1",
        "M1",
        "2026-03-01T11:00:00+08:00",
        "x",
        "10.00",
    );
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("100.00"), "user": member("M1")}),
    );
    assert_eq!(q["total"], "100.00");
    assert_eq!(q["not_applied"][0]["code"], "first_order_only");
    // An unknown identifier is a new customer.
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("100.00"), "user": member("M404")}),
    );
    assert_eq!(q["total"], "90.00");
}

#[test]
fn commit_cancel_and_errors_change_nothing() {
    let mut e = Engine::default();
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "m", "name": "满300减50",
        "action": {"type": "threshold_discount", "threshold": "300", "off": "50"},
        "budget": {"kind": "money", "amount": "80"}}}),
    );
    let q = ok(&mut e, "quote", json!({"cart": cart("300.00")}));
    let r = ok(&mut e, "commit", json!({"quote": q, "key": "o-1"}));
    assert_eq!(r["state"], "committed");
    assert_eq!(
        ok(&mut e, "promotion_usage", json!({"id": "m"}))["budget_left"],
        "30.00"
    );
    let before = e.snapshot();
    let err = call(&mut e, "commit", json!({"quote": q, "key": "o-2"})).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BudgetExhausted);
    assert_eq!(err.to_report().status, 80);
    for (m, a) in [
        (
            "add_promotion",
            json!({"promotion": {"id": "bad", "conditions": {"categories": ["x"], "exclude_categories": ["x"]}, "action": {"type": "percent_off", "percent": "5"}}}),
        ),
        (
            "add_promotion",
            json!({"promotion": {"id": "bad", "budget": {"kind": "money", "amount": "-5"}, "action": {"type": "percent_off", "percent": "5"}}}),
        ),
        (
            "quote",
            json!({"cart": {"time": "2026-03-02T10:00:00Z", "lines": [{"sku": "a", "price": "1", "qty": -1}]}}),
        ),
        (
            "quote",
            json!({"cart": {"time": "2026-03-02T10:00:00Z", "lines": [{"sku": "a", "price": "1", "qty": 1, "currency": "EUR"}]}}),
        ),
        (
            "quote",
            json!({"cart": {"time": "2026-03-02T10:00:00Z", "lines": [{"sku": "a", "price": 1.5, "qty": 1}]}}),
        ),
        ("cancel", json!({"key": "nope"})),
    ] {
        let err = call(&mut e, m, a.clone()).unwrap_err();
        assert!(
            matches!(err.code(), ErrorCode::InvalidArgument | ErrorCode::NotFound),
            "{m} {a}: {err}"
        );
    }
    let err = call(&mut e, "add_promotion", json!({"promotion": {"id": "bad", "budget": {"kind": "money", "amount": "-5"}, "action": {"type": "percent_off", "percent": "5"}}})).unwrap_err();
    assert_eq!(err.field(), Some("promotion.budget.amount"));
    let err = call(&mut e, "quote", json!({"cart": {"time": "2026-03-02T10:00:00Z", "lines": [{"sku": "a", "price": "1", "qty": -1}]}})).unwrap_err();
    assert_eq!(err.field(), Some("cart.lines[0].qty"));
    assert_eq!(before, e.snapshot());
    ok(&mut e, "cancel", json!({"key": "o-1"}));
    assert_eq!(
        ok(&mut e, "promotion_usage", json!({"id": "m"}))["budget_left"],
        "80.00"
    );
    // State survives a snapshot.
    let back = Engine::restore(&e.snapshot()).unwrap();
    assert_eq!(back.snapshot(), e.snapshot());
}

#[test]
fn coupon_life_cycle() {
    let mut e = Engine::default();
    activity(&mut e, "a1", "M1", "2026-03-01T10:00:00+08:00");
    activity(&mut e, "a2", "M2", "2026-03-01T10:00:00+08:00");
    ok(
        &mut e,
        "add_coupon_template",
        json!({"template": {"id": "c20", "kind": "consumption",
        "benefit": {"type": "amount_off", "off": "20"}, "categories": ["x"], "min_amount": "100",
        "valid_days": 30, "stock": 3}}),
    );
    let ids = ok(
        &mut e,
        "issue_coupons",
        json!({"template": "c20", "users": [member("M1"), member("M2")],
        "time": "2026-03-01T12:00:00+08:00"}),
    );
    assert_eq!(ids, json!(["c20#1", "c20#2"]));
    // Claiming takes the issued coupon the user holds.
    let c = ok(
        &mut e,
        "claim_coupon",
        json!({"template": "c20", "user": member("M1"), "time": "2026-03-01T12:00:00+08:00"}),
    );
    assert_eq!(c["coupon_id"], "c20#1");
    // Stock 3: one more claim works, the next issue does not.
    ok(
        &mut e,
        "claim_coupon",
        json!({"template": "c20", "user": member("M1"), "time": "2026-03-01T12:00:00+08:00"}),
    );
    let err = call(
        &mut e,
        "issue_coupons",
        json!({"template": "c20", "users": [member("M2")], "time": "2026-03-01T12:00:00+08:00"}),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PromotionLimitReached);
    // Use on a cart: 20 off the eligible x lines (60 + 90 = 150 ≥ 100): 20 × 60/150 = 8, 20 × 90/150 = 12.
    let k = json!({"time": "2026-03-05T10:00:00+08:00", "lines": [
        {"sku": "a", "category": "x", "price": "60.00", "qty": 1},
        {"sku": "b", "category": "x", "price": "90.00", "qty": 1},
        {"sku": "z", "category": "y", "price": "500.00", "qty": 1}]});
    let u = ok(
        &mut e,
        "use_coupon",
        json!({"coupon_id": "c20#1", "user": member("M1"), "cart": k}),
    );
    assert_eq!(u["discount"], "20.00");
    assert_eq!(
        u["lines"],
        json!([{"line": 0, "discount": "8.00"}, {"line": 1, "discount": "12.00"}])
    );
    let err = call(
        &mut e,
        "use_coupon",
        json!({"coupon_id": "c20#1", "user": member("M1"), "cart": k}),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::CouponUnusable);
    // Someone else's coupon; below the minimum; out of window.
    assert_eq!(
        call(
            &mut e,
            "use_coupon",
            json!({"coupon_id": "c20#2", "user": member("M1"), "cart": k})
        )
        .unwrap_err()
        .code(),
        ErrorCode::CouponUnusable
    );
    let small = json!({"time": "2026-03-05T10:00:00+08:00", "lines": [{"sku": "a", "category": "x", "price": "60.00", "qty": 1}]});
    assert_eq!(
        call(
            &mut e,
            "use_coupon",
            json!({"coupon_id": "c20#2", "user": member("M2"), "cart": small})
        )
        .unwrap_err()
        .code(),
        ErrorCode::CouponUnusable
    );
    let late = json!({"time": "2026-04-05T10:00:00+08:00", "lines": [{"sku": "a", "category": "x", "price": "160.00", "qty": 1}]});
    assert_eq!(
        call(
            &mut e,
            "use_coupon",
            json!({"coupon_id": "c20#2", "user": member("M2"), "cart": late})
        )
        .unwrap_err()
        .code(),
        ErrorCode::CouponUnusable
    );
    // Return on refund: usable again within its window.
    assert_eq!(
        ok(
            &mut e,
            "return_coupon",
            json!({"coupon_id": "c20#1", "time": "2026-03-06T10:00:00+08:00"})
        )["state"],
        "claimed"
    );
    ok(
        &mut e,
        "use_coupon",
        json!({"coupon_id": "c20#1", "user": member("M1"), "cart": k}),
    );
    // Expire after 30 days: the unused ones.
    let expired = ok(
        &mut e,
        "expire_coupons",
        json!({"now": "2026-04-01T00:00:00+08:00"}),
    );
    assert_eq!(expired, json!(["c20#2", "c20#3"]));
    let counts = ok(&mut e, "coupon_counts", json!({"template": "c20"}));
    assert_eq!(
        counts,
        json!([{"template": "c20", "issued": 0, "claimed": 0, "used": 1, "expired": 2, "returned": 1}])
    );
}

#[test]
fn automation_consent_quiet_hours_caps_dedup_and_monitoring() {
    let mut e = Engine::default();
    // M1 and M2 bought an air conditioner on 2025-03-01; only M1 consented to SMS marketing.
    order(
        &mut e,
        "o1",
        "M1",
        "2025-03-01T10:00:00+08:00",
        "aircon",
        "3000.00",
    );
    order(
        &mut e,
        "o2",
        "M2",
        "2025-03-01T10:00:00+08:00",
        "aircon",
        "2800.00",
    );
    order(
        &mut e,
        "o3",
        "M3",
        "2025-03-01T10:00:00+08:00",
        "fridge",
        "2000.00",
    );
    ok(
        &mut e,
        "set_consent",
        json!({"user": member("M1"), "channel": "sms", "purpose": "marketing", "granted": true, "actor": "test", "time": "2026-01-01T00:00:00Z"}),
    );
    ok(
        &mut e,
        "set_consent",
        json!({"user": member("M2"), "channel": "sms", "purpose": "service", "granted": true, "actor": "test", "time": "2026-01-01T00:00:00Z"}),
    );
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "clean", "name": "365 days after an air conditioner → cleaning",
        "trigger": {"type": "order", "category": "aircon", "delay_days": 365},
        "actions": [{"type": "touch", "channel": "sms", "content": "cleaning-offer", "frequency_cap": {"max": 1, "days": 7}}],
        "quiet_hours": [22, 8]}}),
    );
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "second", "trigger": {"type": "order", "delay_days": 365},
        "actions": [{"type": "touch", "channel": "sms", "content": "other", "frequency_cap": {"max": 1, "days": 7}}]}}),
    );
    // Not due yet.
    assert_eq!(run(&mut e, "2026-02-27T10:00:00+08:00"), json!([]));
    // Due, but 23:00 local is quiet for "clean"; "second" has no quiet hours and touches M1.
    let plan = run(&mut e, "2026-03-01T23:00:00+08:00");
    let rows = plan.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{plan}");
    assert_eq!(
        (rows[0]["rule"].as_str(), rows[0]["user"].as_u64()),
        (Some("second"), Some(1))
    );
    // Next morning "clean" fires, but M1 was touched on sms within 7 days: capped. M2 has no
    // marketing consent (only service). Nothing is planned, and nothing again later (dedup).
    assert_eq!(run(&mut e, "2026-03-02T09:00:00+08:00"), json!([]));
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "svc", "trigger": {"type": "order", "category": "aircon", "delay_days": 365},
        "actions": [{"type": "touch", "channel": "sms", "content": "svc", "purpose": "service"}]}}),
    );
    let plan = run(&mut e, "2026-03-02T09:00:00+08:00");
    assert_eq!(
        plan.as_array()
            .unwrap()
            .iter()
            .map(|r| r["user"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![2],
        "{plan}"
    );
    assert_eq!(run(&mut e, "2026-03-02T10:00:00+08:00"), json!([]));
    // Monitoring: outcomes for M1's touch (id 1), then an order within 7 days converts it.
    let n = ok(
        &mut e,
        "record_outcomes",
        json!({"rows": [
        {"touch_id": 1, "outcome": "sent", "time": "2026-03-01T23:00:05+08:00"},
        {"touch_id": 1, "outcome": "opened", "time": "2026-03-02T08:00:00+08:00"}]}),
    );
    assert_eq!(n["recorded"], 2);
    let before = e.snapshot();
    assert_eq!(call(&mut e, "record_outcomes", json!({"rows": [{"touch_id": 1, "outcome": "clicked", "time": "2026-03-02T08:00:00+08:00"},
        {"touch_id": 99, "outcome": "sent", "time": "2026-03-02T08:00:00+08:00"}]})).unwrap_err().code(), ErrorCode::NotFound);
    assert_eq!(before, e.snapshot());
    order(
        &mut e,
        "o4",
        "M1",
        "2026-03-03T10:00:00+08:00",
        "filter",
        "199.00",
    );
    let report = ok(&mut e, "channel_effectiveness", json!({"by": "channel"}));
    // Touch 1 (M1, second): sent, opened (⇒ delivered), converted 199.00. Touch 2 (M2, svc):
    // nothing recorded; M2 did not order.
    assert_eq!(
        report,
        json!([{"key": "sms", "planned": 2, "sent": 1, "delivered": 1, "opened": 1, "clicked": 1,
        "converted": 1, "revenue": "199.00", "conversion_rate": 0.5}])
    );
    let by_rule = ok(&mut e, "channel_effectiveness", json!({"by": "rule"}));
    assert_eq!(by_rule.as_array().unwrap().len(), 2);
}

#[test]
fn inactive_rule_runs_every_action_kind() {
    let mut e = Engine::default();
    activity(&mut e, "a1", "M1", "2026-01-01T10:00:00+08:00");
    activity(&mut e, "a2", "M2", "2026-02-25T10:00:00+08:00");
    ok(
        &mut e,
        "create_program",
        json!({"program": {"id": "brand"}}),
    );
    ok(
        &mut e,
        "set_consent",
        json!({"user": member("M1"), "channel": "push", "purpose": "marketing", "granted": true, "actor": "test", "time": "2026-01-01T00:00:00Z"}),
    );
    ok(
        &mut e,
        "add_coupon_template",
        json!({"template": {"id": "back", "kind": "consumption", "benefit": {"type": "amount_off", "off": "10"}}}),
    );
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "winback", "trigger": {"type": "inactive", "days": 30},
        "actions": [{"type": "touch", "channel": "push", "content": "miss-you"}, {"type": "issue_coupon", "template": "back"},
                    {"type": "grant_points", "points": 50}, {"type": "add_tag", "tag": "winback"}]}}),
    );
    let plan = run(&mut e, "2026-03-01T10:00:00+08:00");
    let actions: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["touch", "issue_coupon", "grant_points", "add_tag"],
        "{plan}"
    );
    assert!(plan.as_array().unwrap().iter().all(|r| r["user"] == 1));
    assert_eq!(plan[1]["coupon_id"], "back#1");
    // Executed, not just planned: the points are on M1's balance, the tag is in the index,
    // the coupon exists.
    assert_eq!(plan[2]["program"], "brand");
    assert_eq!(
        ok(
            &mut e,
            "balance",
            json!({"user": member("M1"), "program": "brand"})
        ),
        json!(50)
    );
    assert_eq!(
        ok(
            &mut e,
            "audience",
            json!({"expression": "winback", "now": "2026-03-01T10:00:00+08:00"})
        )["oneids"],
        json!([1])
    );
    assert_eq!(
        ok(&mut e, "coupon_counts", json!({"template": "back"}))[0]["issued"],
        json!(1)
    );
    // Re-running the same run changes nothing at all.
    let before = e.snapshot();
    assert_eq!(run(&mut e, "2026-03-01T10:00:00+08:00"), json!([]));
    assert_eq!(before, e.snapshot());
    // Withdrawn consent: a new inactivity spell plans no touch, the other actions still run.
    activity(&mut e, "a3", "M1", "2026-03-02T10:00:00+08:00");
    ok(
        &mut e,
        "set_consent",
        json!({"user": member("M1"), "channel": "push", "purpose": "marketing", "granted": false, "actor": "test", "time": "2026-01-01T00:00:00Z"}),
    );
    let plan = run(&mut e, "2026-04-10T10:00:00+08:00");
    assert!(
        plan.as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] != "touch"),
        "{plan}"
    );
    assert!(!plan.as_array().unwrap().is_empty());
    // Rules referencing an unknown coupon template are refused.
    assert_eq!(
        call(
            &mut e,
            "add_rule",
            json!({"rule": {"id": "x", "trigger": {"type": "inactive", "days": 3},
        "actions": [{"type": "issue_coupon", "template": "nope"}]}})
        )
        .unwrap_err()
        .code(),
        ErrorCode::NotFound
    );
}

/// repro_quote_saturation: cart amounts above i64 cents saturated silently (a 1e21
/// cart was quoted at 92,233,720,368,547,758.07). Cart prices, line values and the subtotal
/// are at most 10^12; above, `OutOfRange` names the line.
#[test]
fn cart_amounts_beyond_the_bound_are_refused_not_saturated() {
    let mut e = Engine::default();
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "pct", "conditions": {}, "action": {"type": "percent_off", "percent": "10"}}}),
    );
    let quote = |e: &mut Engine, lines: serde_json::Value| {
        call(
            e,
            "quote",
            json!({"cart": {"time": super::test_support::T, "lines": lines}}),
        )
    };
    for (lines, field) in [
        (
            json!([{"sku": "x", "price": "92233720368547758.07", "qty": 1}]),
            "cart.lines[0].price",
        ),
        (
            json!([{"sku": "x", "price": "1000000000000000000000.00", "qty": 1}]),
            "cart.lines[0].price",
        ),
        (
            json!([{"sku": "x", "price": "50000000.00", "qty": 2000000000i64}]),
            "cart.lines[0]",
        ),
        (
            json!([{"sku": "x", "price": "600000000000.00", "qty": 1},
                   {"sku": "y", "price": "600000000000.00", "qty": 1}]),
            "cart.lines",
        ),
        (
            json!([{"sku": "x", "price": "1.005", "qty": 1}]),
            "cart.lines[0].price",
        ),
    ] {
        let err = quote(&mut e, lines.clone()).unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            (ErrorCode::OutOfRange, Some(field)),
            "{lines}: {err}"
        );
    }
    // The largest cart is quoted exactly.
    let q = quote(
        &mut e,
        json!([{"sku": "x", "price": "999999999999.99", "qty": 1}]),
    )
    .unwrap();
    assert_eq!(
        (&q["subtotal"], &q["total"]),
        (&json!("999999999999.99"), &json!("899999999999.99"))
    );
    // Promotions' money is bounded the same way.
    let err = call(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "huge", "conditions": {}, "action": {"type": "threshold_discount",
            "threshold": "1000000000000.01", "off": "1"}}}),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::OutOfRange, "{err}");
}

/// `commit()` does not trust the quote it is handed (a `budget_use` edited to 0.01 would
/// commit, and the promotion's usage show 0.01 of a 50.00 discount): a quote carries a
/// checksum of what commit reads, and an edited quote is refused.
#[test]
fn a_commit_refuses_an_edited_quote() {
    let mut e = Engine::default();
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "d50", "conditions": {}, "budget": {"kind": "money", "amount": "500"},
            "action": {"type": "threshold_discount", "threshold": "100", "off": "50"}}}),
    );
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("200.00"), "user": member("M1")}),
    );
    assert_eq!(q["applied"][0]["budget_use"], json!("50.00"));
    let refused = |e: &mut Engine, q: serde_json::Value, key: &str| {
        let before = e.snapshot();
        let err = call(e, "commit", json!({"quote": q, "key": key})).unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            (ErrorCode::InvalidArgument, Some("quote.checksum")),
            "{err}"
        );
        assert!(before == e.snapshot());
    };
    for (path, value) in [
        ("budget_use", json!("0.01")),
        ("discount", json!("5.00")),
        ("id", json!("other")),
    ] {
        let mut edited = q.clone();
        edited["applied"][0][path] = value;
        refused(&mut e, edited, "k1");
    }
    let mut edited = q.clone();
    edited["subtotal"] = json!("2000.00");
    refused(&mut e, edited, "k1");
    let mut edited = q.clone();
    edited["applied"][0]
        .as_object_mut()
        .unwrap()
        .remove("budget_use");
    refused(&mut e, edited, "k1");
    let mut missing = q.clone();
    missing.as_object_mut().unwrap().remove("checksum");
    refused(&mut e, missing, "k1");
    // Amounts count by value; fields commit does not read may change.
    let mut same = q.clone();
    same["applied"][0]["budget_use"] = json!("50.0");
    same["total"] = json!("1.00");
    let r = ok(&mut e, "commit", json!({"quote": same, "key": "k1"}));
    assert_eq!(r["uses"][0]["money"], json!("50.0"));
    let usage = ok(&mut e, "promotion_usage", json!({"id": "d50"}));
    assert_eq!(usage["money"], json!("50.00"));
}
