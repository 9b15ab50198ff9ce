//! Campaigns wired to the other modules, through the engine: saved audiences (tags), member
//! tiers and the points ledger (loyalty), the birthday attribute (profile), consent (privacy);
//! rule actions and rebates executed, and idempotent.

use serde_json::{json, Value};

use super::test_support::{call, cart, member, ok, program_and_template, run, T};
use crate::{Engine, ErrorCode};

fn register(e: &mut Engine, n: &str) {
    e.ingest_json(
        &json!({"kind": "register", "key": format!("reg-{n}"), "time": "2026-01-01T00:00:00Z",
            "source": {"platform": "app", "program": "b"}, "user": member(n)})
        .to_string(),
    )
    .unwrap();
}

fn consent(e: &mut Engine, n: &str, channel: &str, granted: bool) {
    ok(
        e,
        "set_consent",
        json!({"user": member(n), "channel": channel, "purpose": "marketing",
            "granted": granted, "actor": "crm", "time": "2026-01-02T00:00:00Z"}),
    );
}

/// The users of a plan's rows, in order.
fn users_of(plan: &Value) -> Vec<u64> {
    plan.as_array()
        .unwrap()
        .iter()
        .map(|r| r["user"].as_u64().unwrap())
        .collect()
}

fn applied(q: &Value) -> Vec<&str> {
    q["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect()
}

fn reason<'a>(q: &'a Value, id: &str) -> Option<&'a str> {
    q["not_applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .and_then(|n| n["code"].as_str())
}

fn balance(e: &mut Engine, n: &str, program: &str) -> i64 {
    ok(e, "balance", json!({"user": member(n), "program": program}))
        .as_i64()
        .unwrap()
}

/// M1 and M2 hold `vip = true` / `false`; the saved audience "vips" holds M1 only.
fn with_vip_audience() -> Engine {
    let mut e = Engine::default();
    register(&mut e, "M1");
    register(&mut e, "M2");
    ok(
        &mut e,
        "set_tags",
        json!({"kind": "member_no", "users": ["M1", "M2"], "now": T,
            "tags": [{"name": "vip", "type": "bool", "values": [true, false]}]}),
    );
    ok(
        &mut e,
        "save_audience",
        json!({"name": "vips", "expression": "vip", "now": T}),
    );
    e
}

#[test]
fn promotion_audience_condition_reads_saved_audiences() {
    let mut e = with_vip_audience();
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "vip10", "conditions": {"audiences": ["vips"]},
            "action": {"type": "percent_off", "percent": "10"}}}),
    );
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("100.00"), "user": member("M1")}),
    );
    assert_eq!(applied(&q), vec!["vip10"]);
    assert_eq!(q["total"], "90.00");
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("100.00"), "user": member("M2")}),
    );
    assert_eq!(reason(&q, "vip10"), Some("audience"));
    let q = ok(&mut e, "quote", json!({"cart": cart("100.00")}));
    assert_eq!(reason(&q, "vip10"), Some("audience"));
    // The audience is re-saved without M1: the condition follows.
    ok(
        &mut e,
        "set_tag",
        json!({"user": member("M1"), "tag": "vip", "value": false, "now": T}),
    );
    ok(
        &mut e,
        "refresh_audience",
        json!({"name": "vips", "now": T}),
    );
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("100.00"), "user": member("M1")}),
    );
    assert_eq!(reason(&q, "vip10"), Some("audience"));
}

#[test]
fn audience_rule_and_audience_coupons_reach_exactly_the_members() {
    let mut e = with_vip_audience();
    consent(&mut e, "M1", "sms", true);
    consent(&mut e, "M2", "sms", true);
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "vip-sms", "trigger": {"type": "audience", "audience": "vips"},
            "actions": [{"type": "touch", "channel": "sms", "content": "vip-offer"}]}}),
    );
    let plan = run(&mut e, T);
    let users = users_of(&plan);
    assert_eq!(users, vec![1], "{plan}");
    assert_eq!(plan[0]["reason"], "in audience \"vips\"");
    ok(
        &mut e,
        "add_coupon_template",
        json!({"template": {"id": "c5", "kind": "consumption", "benefit": {"type": "amount_off", "off": "5"}}}),
    );
    let ids = ok(
        &mut e,
        "issue_coupons",
        json!({"template": "c5", "audience": "vips", "time": T}),
    );
    assert_eq!(ids, json!(["c5#1"]));
    let err = call(
        &mut e,
        "issue_coupons",
        json!({"template": "c5", "audience": "nope", "time": T}),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
}

#[test]
fn inactive_rule_in_an_audience_only_reaches_members() {
    let mut e = with_vip_audience();
    consent(&mut e, "M1", "push", true);
    consent(&mut e, "M2", "push", true);
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "lapsed-vip", "trigger": {"type": "inactive", "audience": "vips", "days": 30},
            "actions": [{"type": "touch", "channel": "push", "content": "miss-you"}]}}),
    );
    let plan = run(&mut e, "2026-03-01T10:00:00+08:00");
    assert_eq!(plan.as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan[0]["user"], 1);
}

fn tiered_program(e: &mut Engine) {
    ok(
        e,
        "create_program",
        json!({"program": {"id": "brand", "tiers": {"basis": "spend",
            "levels": [{"name": "silver", "threshold": "0"}, {"name": "gold", "threshold": "1000"}]}}}),
    );
}

#[test]
fn tier_condition_reads_the_loyalty_tier() {
    let mut e = Engine::default();
    register(&mut e, "M1");
    register(&mut e, "M2");
    tiered_program(&mut e);
    ok(
        &mut e,
        "create_program",
        json!({"program": {"id": "other", "tiers": {"basis": "spend",
            "levels": [{"name": "gold", "threshold": "0"}]}}}),
    );
    ok(
        &mut e,
        "record_spend",
        json!({"user": member("M1"), "program": "brand", "amount": "1500", "key": "s1", "time": "2026-02-01T00:00:00Z"}),
    );
    ok(
        &mut e,
        "record_spend",
        json!({"user": member("M2"), "program": "brand", "amount": "10", "key": "s2", "time": "2026-02-01T00:00:00Z"}),
    );
    ok(
        &mut e,
        "record_spend",
        json!({"user": member("M2"), "program": "other", "amount": "10", "key": "s3", "time": "2026-02-01T00:00:00Z"}),
    );
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "gold-any", "conditions": {"tiers": ["gold"]},
            "action": {"type": "threshold_discount", "threshold": "50", "off": "20"}}}),
    );
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "gold-brand", "conditions": {"tiers": ["gold"], "tier_program": "brand"},
            "action": {"type": "threshold_discount", "threshold": "50", "off": "10"},
            "stacking": {"group": "b"}}}),
    );
    // M1 is gold in "brand": both apply (different groups; best for the customer picks 20).
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("100.00"), "user": member("M1")}),
    );
    assert_eq!(applied(&q), vec!["gold-any"]);
    assert_eq!(reason(&q, "gold-brand"), Some("stacking"));
    // M2 is silver in "brand" and gold in "other": only the any-program condition holds.
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("100.00"), "user": member("M2")}),
    );
    assert_eq!(applied(&q), vec!["gold-any"]);
    assert_eq!(reason(&q, "gold-brand"), Some("tier"));
    // An anonymous cart has no tier.
    let q = ok(&mut e, "quote", json!({"cart": cart("100.00")}));
    assert_eq!(reason(&q, "gold-any"), Some("tier"));
    // A tier program with no tiers listed is a contradiction.
    let err = call(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "x", "conditions": {"tier_program": "brand"},
            "action": {"type": "percent_off", "percent": "5"}}}),
    )
    .unwrap_err();
    assert_eq!(err.field(), Some("promotion.conditions.tier_program"));
}

#[test]
fn birthday_rule_reads_the_profile_attribute() {
    let mut e = Engine::default();
    for n in ["M1", "M2", "M3", "M4"] {
        register(&mut e, n);
        consent(&mut e, n, "sms", true);
    }
    let set = |e: &mut Engine, n: &str, v: Value| {
        ok(
            e,
            "set_attribute",
            json!({"user": member(n), "name": "birthday", "value": v, "at": T}),
        );
    };
    set(&mut e, "M1", json!("1990-03-05"));
    set(&mut e, "M2", json!("03-05"));
    set(&mut e, "M3", json!("1990-03-06"));
    set(&mut e, "M4", json!("2000-02-29"));
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "bday", "trigger": {"type": "birthday", "days_before": 3},
            "actions": [{"type": "touch", "channel": "sms", "content": "happy-birthday"}]}}),
    );
    // 2026-03-02 + 3 days = 5 March.
    let plan = run(&mut e, T);
    let users = users_of(&plan);
    assert_eq!(users, vec![1, 2], "{plan}");
    assert_eq!(plan[0]["reason"], "birthday on 2026-03-05");
    // Once per birthday year.
    assert_eq!(run(&mut e, "2026-03-02T11:00:00+08:00"), json!([]));
    // 29 February is kept on 28 February in 2026 (25 February + 3 days).
    let plan = run(&mut e, "2026-02-25T10:00:00+08:00");
    assert_eq!(plan[0]["user"], 4, "{plan}");
}

#[test]
fn no_touch_without_privacy_consent_for_that_channel_and_purpose() {
    let mut e = Engine::default();
    register(&mut e, "M1");
    register(&mut e, "M2");
    register(&mut e, "M3");
    consent(&mut e, "M1", "sms", true);
    consent(&mut e, "M2", "push", true); // another channel
    ok(
        &mut e,
        "set_consent",
        json!({"user": member("M3"), "channel": "sms", "purpose": "service",
            "granted": true, "actor": "crm", "time": "2026-01-02T00:00:00Z"}),
    );
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "welcome", "trigger": {"type": "register", "delay_days": 60, "grace_days": 30},
            "actions": [{"type": "touch", "channel": "sms", "content": "hello"}]}}),
    );
    let plan = run(&mut e, T);
    assert_eq!(plan.as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan[0]["user"], 1);
    // Withdrawn in the privacy module, or erased: nothing for a later rule.
    consent(&mut e, "M1", "sms", false);
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "again", "trigger": {"type": "register", "delay_days": 60, "grace_days": 30},
            "actions": [{"type": "touch", "channel": "sms", "content": "hello-again"}]}}),
    );
    assert_eq!(run(&mut e, T), json!([]));
    assert!(!e.has_consent(crate::OneId(1), "sms", "marketing"));
    // The legacy campaigns-only consent command is gone.
    assert!(call(
        &mut e,
        "set_touch_consent",
        json!({"user": member("M1"), "channel": "sms", "granted": true})
    )
    .is_err());
}

#[test]
fn grant_points_and_add_tag_actions_are_executed_once() {
    let mut e = Engine::default();
    register(&mut e, "M1");
    register(&mut e, "M2");
    program_and_template(
        &mut e,
        "brand",
        "w",
        json!({"type": "service", "service": "cleaning"}),
    );
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "welcome", "trigger": {"type": "register", "delay_days": 60, "grace_days": 30},
            "actions": [{"type": "grant_points", "points": 30}, {"type": "add_tag", "tag": "welcomed"},
                        {"type": "issue_coupon", "template": "w"}]}}),
    );
    let plan = run(&mut e, T);
    assert_eq!(plan.as_array().unwrap().len(), 6, "{plan}");
    assert_eq!(plan[0]["key"], "automation:welcome:1:register:0");
    assert_eq!(balance(&mut e, "M1", "brand"), 30);
    assert_eq!(balance(&mut e, "M2", "brand"), 30);
    assert_eq!(
        ok(
            &mut e,
            "audience",
            json!({"expression": "welcomed", "now": T})
        )["size"],
        json!(2)
    );
    assert_eq!(
        ok(&mut e, "coupon_counts", json!({"template": "w"}))[0]["issued"],
        json!(2)
    );
    // The same run again (and a later one) changes nothing.
    let before = e.snapshot();
    assert_eq!(run(&mut e, T), json!([]));
    assert_eq!(run(&mut e, "2026-03-03T10:00:00+08:00"), json!([]));
    assert_eq!(before, e.snapshot());
    // The ledger would refuse the key twice anyway: the same earn replays as a duplicate.
    let again = ok(
        &mut e,
        "earn",
        json!({"user": {"oneid": 1}, "program": "brand", "points": 30,
            "key": "automation:welcome:1:register:0", "reason": "automation rule welcome",
            "actor": "automation", "time": T}),
    );
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(balance(&mut e, "M1", "brand"), 30);
}

#[test]
fn rule_actions_are_checked_against_the_other_modules() {
    let mut e = Engine::default();
    let rule = |actions: Value| json!({"rule": {"id": "r", "trigger": {"type": "inactive", "days": 3}, "actions": actions}});
    // No program yet: grant_points cannot pick one.
    let err = call(
        &mut e,
        "add_rule",
        rule(json!([{"type": "grant_points", "points": 5}])),
    )
    .unwrap_err();
    assert_eq!(err.field(), Some("rule.actions[0].program"));
    ok(&mut e, "create_program", json!({"program": {"id": "a"}}));
    ok(&mut e, "create_program", json!({"program": {"id": "b"}}));
    let err = call(
        &mut e,
        "add_rule",
        rule(json!([{"type": "grant_points", "points": 5}])),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let err = call(
        &mut e,
        "add_rule",
        rule(json!([{"type": "grant_points", "points": 5, "program": "zz"}])),
    )
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    ok(
        &mut e,
        "add_rule",
        rule(json!([{"type": "grant_points", "points": 5, "program": "b"}])),
    );
    // A tag that is not a settable bool tag, or not a tag name.
    ok(
        &mut e,
        "define_tag",
        json!({"name": "score", "type": "number", "now": T}),
    );
    for bad in ["score", "1bad", "and"] {
        let err = call(
            &mut e,
            "add_rule",
            rule(json!([{"type": "add_tag", "tag": bad}])),
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("rule.actions[0].tag"), "{bad}");
    }
}

fn rebate_setup() -> Engine {
    let mut e = Engine::default();
    register(&mut e, "M1");
    program_and_template(
        &mut e,
        "brand",
        "next",
        json!({"type": "amount_off", "off": "20"}),
    );
    // 满300返100积分 (every 300), 满200返一张券.
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "pts", "action": {"type": "threshold_rebate", "threshold": "300",
            "every": true, "reward": {"type": "points", "points": 100}}}}),
    );
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "cpn", "action": {"type": "threshold_rebate", "threshold": "200",
            "reward": {"type": "coupon", "template": "next"}}}}),
    );
    e
}

#[test]
fn threshold_rebate_points_and_coupons_are_granted_on_commit() {
    let mut e = rebate_setup();
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("650.00"), "user": member("M1")}),
    );
    assert_eq!(applied(&q), vec!["cpn", "pts"]);
    let r = ok(&mut e, "commit", json!({"quote": q, "key": "order-1"}));
    assert_eq!(r["points"], 200, "{r}");
    assert_eq!(r["coupons"], json!(["next#1"]));
    assert_eq!(balance(&mut e, "M1", "brand"), 200);
    assert_eq!(
        ok(&mut e, "coupon_counts", json!({"template": "next"}))[0]["issued"],
        json!(1)
    );
    // Replaying the commit grants nothing again.
    let before = e.snapshot();
    let again = ok(&mut e, "commit", json!({"quote": q, "key": "order-1"}));
    assert_eq!(
        (again["duplicate"].as_bool(), again["points"].as_i64()),
        (Some(true), Some(200))
    );
    assert_eq!(before, e.snapshot());
    // A tampered reward is refused and changes nothing.
    let mut forged = q.clone();
    forged["applied"][1]["rewards"][0]["points"] = json!(100_000);
    let err = call(&mut e, "commit", json!({"quote": forged, "key": "order-2"})).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert_eq!(before, e.snapshot());
    // Cancel reverses the points and withdraws the unused coupon; a second cancel is a no-op.
    let c = ok(&mut e, "cancel", json!({"key": "order-1"}));
    assert_eq!(c["state"], "cancelled");
    assert_eq!(balance(&mut e, "M1", "brand"), 0);
    assert_eq!(
        ok(&mut e, "coupon_counts", json!({"template": "next"}))[0]["expired"],
        json!(1)
    );
    let before = e.snapshot();
    assert_eq!(
        ok(&mut e, "cancel", json!({"key": "order-1"}))["duplicate"],
        true
    );
    assert_eq!(before, e.snapshot());
}

#[test]
fn rebate_commit_checks_stock_before_anything_changes() {
    let mut e = rebate_setup();
    ok(
        &mut e,
        "add_coupon_template",
        json!({"template": {"id": "scarce", "kind": "gift", "stock": 0, "benefit": {"type": "item", "sku": "g"}}}),
    );
    ok(
        &mut e,
        "add_promotion",
        json!({"promotion": {"id": "gift", "stacking": {"group": "g2"},
            "action": {"type": "threshold_gift", "threshold": "1",
            "reward": {"type": "coupon", "template": "scarce", "kind": "gift"}}}}),
    );
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("650.00"), "user": member("M1"), "mode": "priority"}),
    );
    let mut q = q;
    // Force the gift into the committed quote (and forge its checksum: it detects edits,
    // not forgery, and the stock check must hold on its own).
    q["applied"] = json!([{"id": "gift", "discount": "0", "rewards": [{"type": "coupon", "template": "scarce", "count": 1}]}]);
    let forged: crate::campaigns::QuoteRef = serde_json::from_value(q.clone()).unwrap();
    q["checksum"] = json!(forged.expected_checksum());
    let before = e.snapshot();
    let err = call(&mut e, "commit", json!({"quote": q, "key": "o"})).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PromotionLimitReached);
    assert_eq!(before, e.snapshot());
    // An anonymous quote commits its budget but grants no rewards.
    let q = ok(&mut e, "quote", json!({"cart": cart("650.00")}));
    let r = ok(&mut e, "commit", json!({"quote": q, "key": "anon"}));
    assert_eq!(
        (r["points"].as_i64(), r["coupons"].clone()),
        (Some(0), json!([]))
    );
}

/// Rows without the ids that number touches and coupons in the order they were made, sorted.
fn rows_by_user(rows: Vec<Value>) -> Vec<String> {
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|mut r| {
            let o = r.as_object_mut().unwrap();
            assert!(o.remove("touch_id").is_some() && o.remove("coupon_id").is_some());
            r.to_string()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_chunked_run_plans_and_applies_what_one_run_does_and_reruns_plan_nothing() {
    let mut e = with_vip_audience();
    for n in 3..=9 {
        register(&mut e, &format!("M{n}"));
    }
    for n in [1, 2, 4, 5, 8] {
        consent(&mut e, &format!("M{n}"), "sms", true);
    }
    program_and_template(
        &mut e,
        "brand",
        "w",
        json!({"type": "service", "service": "cleaning"}),
    );
    for rule in [
        json!({"id": "a-vip", "trigger": {"type": "audience", "audience": "vips"},
            "actions": [{"type": "touch", "channel": "sms", "content": "vip"}]}),
        json!({"id": "b-welcome", "trigger": {"type": "register", "delay_days": 60, "grace_days": 30},
            "actions": [{"type": "grant_points", "points": 30}, {"type": "add_tag", "tag": "welcomed"},
                        {"type": "issue_coupon", "template": "w"},
                        {"type": "touch", "channel": "sms", "content": "hi", "frequency_cap": {"max": 1, "days": 7}}]}),
        json!({"id": "c-idle", "trigger": {"type": "inactive", "days": 30},
            "actions": [{"type": "touch", "channel": "sms", "content": "back", "frequency_cap": {"max": 1, "days": 7}}]}),
    ] {
        ok(&mut e, "add_rule", json!({ "rule": rule }));
    }
    let mut chunked = e.clone();
    let whole = run(&mut e, T);
    let whole = whole.as_array().unwrap().clone();
    let mut rows = Vec::new();
    let mut chunks = 0;
    let now = chrono::DateTime::parse_from_rfc3339(T).unwrap().to_utc();
    let n = chunked.run_automation_chunked(now, 2, |c| {
        chunks += 1;
        rows.extend(c.iter().map(|r| serde_json::to_value(r).unwrap()));
    });
    assert_eq!(n, rows.len());
    assert!(chunks >= 5, "9 users in chunks of 2: {chunks} chunks");
    // The same rows (touches capped per user the same way: M1 gets the VIP touch, not the
    // welcome one), the same points, tags and coupons.
    assert!(whole.len() > 20, "{whole:?}");
    assert_eq!(rows_by_user(rows), rows_by_user(whole));
    for m in ["M1", "M5", "M9"] {
        assert_eq!(
            balance(&mut chunked, m, "brand"),
            balance(&mut e, m, "brand")
        );
    }
    let welcomed = |e: &mut Engine| {
        ok(e, "audience", json!({"expression": "welcomed", "now": T}))["size"].clone()
    };
    assert_eq!(welcomed(&mut chunked), json!(9));
    assert_eq!(
        ok(&mut chunked, "coupon_counts", json!({"template": "w"})),
        ok(&mut e, "coupon_counts", json!({"template": "w"}))
    );
    // Running again, chunked or not, plans and changes nothing.
    let before = chunked.snapshot();
    assert_eq!(chunked.run_automation_chunked(now, 3, |_| {}), 0);
    assert_eq!(run(&mut chunked, T), json!([]));
    assert_eq!(before, chunked.snapshot());
}

#[test]
fn a_rule_names_a_saved_audience_not_an_expression() {
    let mut e = with_vip_audience();
    // `orders >= 3` is an expression, not a saved audience: refused, nothing added.
    for trigger in [
        json!({"type": "audience", "audience": "orders >= 3"}),
        json!({"type": "inactive", "audience": "nope", "days": 30}),
    ] {
        let err = call(
            &mut e,
            "add_rule",
            json!({"rule": {"id": "r", "trigger": trigger,
                "actions": [{"type": "touch", "channel": "sms", "content": "x"}]}}),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound, "{err}");
    }
    assert_eq!(run(&mut e, T), json!([]));
    // A saved audience works; while a rule uses it, it cannot be deleted.
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "r", "trigger": {"type": "audience", "audience": "vips"},
            "actions": [{"type": "add_tag", "tag": "reached"}]}}),
    );
    let err = call(&mut e, "delete_audience", json!({"name": "vips"})).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
    assert_eq!(users_of(&run(&mut e, T)), vec![1]);
    // Once no rule names it, it can go.
    ok(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "r", "trigger": {"type": "register"},
            "actions": [{"type": "add_tag", "tag": "reached"}]}}),
    );
    ok(&mut e, "delete_audience", json!({"name": "vips"}));
}

/// The commit plan names exactly what the commit then applies: the coupons issued, the points
/// posted to loyalty (with the plan's reason), nothing else; planning changes nothing, and a
/// committed key plans no grant again.
#[test]
fn a_commit_plan_names_what_the_commit_applies() {
    use super::commit::CommitPlan;
    use super::reads::Reads;
    fn plan(e: &Engine, key: &str, q: &Value) -> CommitPlan {
        let s = &e.state;
        let reads = Reads {
            identity: &s.identity,
            privacy: &s.privacy,
            users: &s.users,
            tags: &s.tags,
            profiles: &s.profiles,
            loyalty: &s.loyalty,
            tz: e.config.business_tz(),
        };
        let quote = serde_json::from_value(q.clone()).unwrap();
        s.campaigns
            .plan_commit(key, &quote, None, false, &reads)
            .unwrap()
    }
    let mut e = rebate_setup();
    let q = ok(
        &mut e,
        "quote",
        json!({"cart": cart("650.00"), "user": member("M1")}),
    );
    let before = e.snapshot();
    let CommitPlan::New(Some(grant)) = plan(&e, "order-1", &q) else {
        panic!("a quote with rewards for a known customer plans a grant")
    };
    assert_eq!(before, e.snapshot());
    assert_eq!(grant.coupons, vec![("next".to_owned(), 1)]);
    let earns: Vec<(&str, i64, &str)> = grant
        .earns
        .iter()
        .map(|x| (x.program.as_str(), x.points, x.key.as_str()))
        .collect();
    assert_eq!(earns, vec![("brand", 200, "promotion:order-1:pts")]);

    let r = ok(&mut e, "commit", json!({"quote": q, "key": "order-1"}));
    assert_eq!(r["coupons"], json!(["next#1"]));
    assert_eq!(r["points"], json!(grant.earns[0].points));
    let rows = ok(
        &mut e,
        "statement",
        json!({"user": member("M1"), "program": "brand"}),
    );
    let posted: Vec<(i64, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["amount"].as_i64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(posted, vec![(200, grant.earns[0].reason.as_str())]);
    assert_eq!(plan(&e, "order-1", &q), CommitPlan::Again);
}
