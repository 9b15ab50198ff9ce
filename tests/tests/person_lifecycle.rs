//! One person means one person in every module: each defect script under "Person
//! lifecycle" in `shared/repros` has its expected behaviour pinned here, through the engine's
//! front door (`call_json`, as Python and C call it) and, for erasure, the durable store.

use serde_json::{json, Value};
use userops::{Engine, Error, ErrorCode};

fn call(e: &mut Engine, method: &str, args: Value) -> Value {
    let out = e
        .call_json(method, &args.to_string())
        .unwrap_or_else(|err| panic!("{method}: {err}"));
    serde_json::from_str(&out).unwrap()
}

fn err(e: &mut Engine, method: &str, args: Value) -> Error {
    e.call_json(method, &args.to_string()).unwrap_err()
}

fn ingest(e: &mut Engine, event: Value) -> Value {
    call(e, "ingest", json!({ "event": event }))
}

const SRC: &str = r#"{"platform": "app", "program": "b"}"#;

fn src() -> Value {
    serde_json::from_str(SRC).unwrap()
}

fn m(v: &str) -> Value {
    json!({"kind": "member_no", "value": v})
}

fn register(e: &mut Engine, key: &str, member: &str, time: &str) {
    ingest(
        e,
        json!({"kind": "register", "key": key, "time": time, "source": src(), "user": m(member)}),
    );
}

fn link(e: &mut Engine, key: &str, time: &str, ids: Value) -> Value {
    ingest(
        e,
        json!({"kind": "identify", "key": key, "time": time, "source": src(), "ids": ids}),
    )
}

/// Merge M1 and M2, by an identify record or by an operator.
fn merge_m1_m2(e: &mut Engine, by_operator: bool, time: &str) {
    if by_operator {
        call(
            e,
            "merge",
            json!({"a": m("M1"), "b": m("M2"), "actor": "ops", "reason": "same", "time": time}),
        );
    } else {
        link(e, "link", time, json!([m("M1"), m("M2")]));
    }
    assert_eq!(
        call(e, "resolve", json!({"user": m("M2")}))["oneid"],
        1,
        "merged"
    );
    e.check_invariants().unwrap();
}

fn plan(e: &mut Engine, now: &str) -> Vec<(u64, String, String)> {
    call(e, "run_automation", json!({ "now": now }))
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["user"].as_u64().unwrap(),
                r["action"].as_str().unwrap().to_owned(),
                r["coupon_id"]
                    .as_str()
                    .or(r["channel"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn consent(e: &mut Engine, user: Value) -> bool {
    call(
        e,
        "consent",
        json!({"user": user, "channel": "sms", "purpose": "marketing"}),
    )["granted"]
        .as_bool()
        .unwrap()
}

fn set_consent(e: &mut Engine, user: Value, granted: bool, time: &str) {
    call(
        e,
        "set_consent",
        json!({"user": user, "channel": "sms", "purpose": "marketing", "granted": granted,
            "actor": "crm", "time": time}),
    );
}

/// repro_consent_operator_merge: the latest statement of either person wins, by either kind
/// of merge; on a tie a withdrawal wins; a split gives each part its own statements back.
#[test]
fn consent_follows_both_merges_and_comes_back_on_split() {
    for by_operator in [true, false] {
        let mut e = Engine::default();
        register(&mut e, "r1", "M1", "2026-02-01T00:00:00Z");
        register(&mut e, "r2", "M2", "2026-02-01T00:00:00Z");
        set_consent(&mut e, m("M1"), true, "2026-02-02T00:00:00Z");
        set_consent(&mut e, m("M2"), true, "2026-02-02T00:00:00Z");
        set_consent(&mut e, m("M2"), false, "2026-02-03T00:00:00Z");
        merge_m1_m2(&mut e, by_operator, "2026-02-04T00:00:00Z");
        assert!(!consent(&mut e, m("M1")), "M2 withdrew last");
        let evidence = if by_operator { "manual:1" } else { "link" };
        call(
            &mut e,
            "split",
            json!({"evidence": [evidence], "actor": "ops", "reason": "undo",
                "time": "2026-02-05T00:00:00Z"}),
        );
        assert!(consent(&mut e, m("M1")), "M1's own grant is back");
        assert!(
            !consent(&mut e, m("M2")),
            "M2's own withdrawal stays with M2"
        );
        e.check_invariants().unwrap();
    }
    // A grant and a withdrawal at the same time: the withdrawal wins, whichever person made it.
    for (m1, m2) in [(true, false), (false, true)] {
        let mut e = Engine::default();
        register(&mut e, "r1", "M1", "2026-02-01T00:00:00Z");
        register(&mut e, "r2", "M2", "2026-02-01T00:00:00Z");
        set_consent(&mut e, m("M1"), m1, "2026-02-02T00:00:00Z");
        set_consent(&mut e, m("M2"), m2, "2026-02-02T00:00:00Z");
        merge_m1_m2(&mut e, true, "2026-02-04T00:00:00Z");
        assert!(!consent(&mut e, m("M2")));
    }
}

/// repro_opmerge_gaps: an operator merge carries journey steps, lifecycle history and
/// frequency caps like an identify record does.
#[test]
fn operator_merge_moves_journey_lifecycle_and_caps() {
    for by_operator in [false, true] {
        let mut e = Engine::default();
        register(&mut e, "r1", "M1", "2025-10-01T00:00:00Z");
        register(&mut e, "r2", "M2", "2025-10-02T00:00:00Z");
        for (i, day) in ["2025-12-02", "2026-01-02"].iter().enumerate() {
            ingest(
                &mut e,
                json!({"kind": "activity", "key": format!("a{i}"), "time": format!("{day}T00:00:00Z"),
                    "source": src(), "user": m("M2"), "type": "login"}),
            );
        }
        for who in ["M1", "M2"] {
            set_consent(&mut e, m(who), true, "2025-10-01T00:00:00Z");
        }
        call(&mut e, "define_tag", json!({"name": "vip"}));
        call(
            &mut e,
            "set_tag",
            json!({"user": m("M2"), "tag": "vip", "value": true, "now": "2026-01-05T00:00:00Z"}),
        );
        call(
            &mut e,
            "save_audience",
            json!({"name": "vips", "expression": "vip", "now": "2026-01-05T00:00:00Z"}),
        );
        call(
            &mut e,
            "add_rule",
            json!({"rule": {"id": "vip-news", "trigger": {"type": "audience", "audience": "vips"},
                "actions": [{"type": "touch", "channel": "sms", "content": "vip news",
                    "frequency_cap": {"max": 1, "days": 30}}]}}),
        );
        assert_eq!(plan(&mut e, "2026-01-05T00:00:00Z").len(), 1);
        merge_m1_m2(&mut e, by_operator, "2026-01-06T00:00:00Z");
        call(
            &mut e,
            "add_rule",
            json!({"rule": {"id": "all-news", "trigger": {"type": "inactive", "days": 1},
                "actions": [{"type": "touch", "channel": "sms", "content": "news",
                    "frequency_cap": {"max": 1, "days": 30}}]}}),
        );
        assert_eq!(
            plan(&mut e, "2026-01-10T00:00:00Z"),
            vec![],
            "the sms M2 got on 01-05 counts against the merged person's cap"
        );
        let steps: Vec<String> = call(&mut e, "journey", json!({"user": {"oneid": 1}}))["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(steps, ["register", "register", "login", "login"]);
        let stages = call(&mut e, "lifecycle_stages", json!({"period": "2026-01"}));
        assert_eq!(
            stages["users"],
            json!([{"oneid": 1, "stage": "active"}]),
            "one person"
        );
    }
}

fn aircon_pool(delay_days: u32) -> Engine {
    let mut e = Engine::default();
    register(&mut e, "r1", "M1", "2026-01-01T00:00:00Z");
    register(&mut e, "r2", "M2", "2026-01-01T00:00:00Z");
    ingest(
        &mut e,
        json!({"kind": "order", "key": "o1", "time": "2026-01-02T00:00:00Z", "source": src(),
            "user": m("M2"), "order_id": "O1", "amount": "100.00",
            "lines": [{"sku": "ac-1", "category": "aircon", "price": "100.00", "qty": 1}]}),
    );
    call(
        &mut e,
        "add_coupon_template",
        json!({"template": {"id": "clean", "kind": "service",
            "benefit": {"type": "service", "service": "cleaning"}, "valid_days": 30}}),
    );
    call(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "ac-cleaning", "trigger": {"type": "order", "category": "aircon",
            "delay_days": delay_days}, "actions": [{"type": "issue_coupon", "template": "clean"}]}}),
    );
    e
}

/// repro_automation_facts_opmerge: after an operator merge an order rule fires for the
/// survivor, not the absorbed OneID.
#[test]
fn automation_facts_follow_an_operator_merge() {
    for by_operator in [false, true] {
        let mut e = aircon_pool(10);
        merge_m1_m2(&mut e, by_operator, "2026-01-05T00:00:00Z");
        assert_eq!(
            plan(&mut e, "2026-01-13T00:00:00Z"),
            vec![(1, "issue_coupon".to_owned(), "clean#1".to_owned())]
        );
    }
}

/// repro_automation_dedup_merge: a rule that handled an order does not fire again for it
/// after either kind of merge.
#[test]
fn automation_does_not_fire_twice_for_one_order_after_a_merge() {
    for by_operator in [false, true] {
        let mut e = aircon_pool(1);
        assert_eq!(
            plan(&mut e, "2026-01-04T00:00:00Z"),
            vec![(2, "issue_coupon".to_owned(), "clean#1".to_owned())]
        );
        merge_m1_m2(&mut e, by_operator, "2026-01-05T00:00:00Z");
        assert_eq!(plan(&mut e, "2026-01-06T00:00:00Z"), vec![]);
    }
}

/// repro_coupon_merge: the absorbed person's coupon is usable by the merged person, under
/// any of its identifiers or OneIDs; a split gives it back to its holder.
#[test]
fn a_coupon_follows_its_holder_through_merge_and_split() {
    let cart = json!({"time": "2026-01-04T00:00:00Z", "lines": [{"sku": "x", "price": "50.00", "qty": 1}]});
    for (who, by_operator) in [(m("M1"), false), (json!({"oneid": 2}), true)] {
        let mut e = Engine::default();
        register(&mut e, "r1", "M1", "2026-01-01T00:00:00Z");
        register(&mut e, "r2", "M2", "2026-01-01T00:00:00Z");
        call(
            &mut e,
            "add_coupon_template",
            json!({"template": {"id": "c10", "kind": "consumption",
                "benefit": {"type": "amount_off", "off": "10"}, "valid_days": 30}}),
        );
        let ids = call(
            &mut e,
            "issue_coupons",
            json!({"template": "c10", "users": [m("M2")], "time": "2026-01-02T00:00:00Z"}),
        );
        assert_eq!(ids, json!(["c10#1"]));
        merge_m1_m2(&mut e, by_operator, "2026-01-03T00:00:00Z");
        let used = call(
            &mut e,
            "use_coupon",
            json!({"coupon_id": "c10#1", "user": who, "cart": cart}),
        );
        assert_eq!(used["discount"], "10.00");
        e.check_invariants().unwrap();
    }
    // Split: the coupon is M2's again, not M1's.
    let mut e = Engine::default();
    register(&mut e, "r1", "M1", "2026-01-01T00:00:00Z");
    register(&mut e, "r2", "M2", "2026-01-01T00:00:00Z");
    call(
        &mut e,
        "add_coupon_template",
        json!({"template": {"id": "c10", "kind": "consumption",
            "benefit": {"type": "amount_off", "off": "10"}, "valid_days": 30}}),
    );
    call(
        &mut e,
        "issue_coupons",
        json!({"template": "c10", "users": [m("M2")], "time": "2026-01-02T00:00:00Z"}),
    );
    merge_m1_m2(&mut e, true, "2026-01-03T00:00:00Z");
    call(
        &mut e,
        "split",
        json!({"evidence": ["manual:1"], "actor": "ops", "reason": "undo", "time": "2026-01-03T12:00:00Z"}),
    );
    let e1 = err(
        &mut e,
        "use_coupon",
        json!({"coupon_id": "c10#1", "user": m("M1"), "cart": cart}),
    );
    assert_eq!(e1.code(), ErrorCode::CouponUnusable);
    let used = call(
        &mut e,
        "use_coupon",
        json!({"coupon_id": "c10#1", "user": m("M2"), "cart": cart}),
    );
    assert_eq!(used["discount"], "10.00");
}

/// repro_promo_limit_merge: a once-per-customer promotion the absorbed person used is not
/// granted to the merged person, by either kind of merge.
#[test]
fn a_per_customer_limit_counts_both_merged_persons() {
    let cart = json!({"time": "2026-01-05T00:00:00Z", "lines": [{"sku": "x", "price": "100.00", "qty": 1}]});
    for by_operator in [true, false] {
        let mut e = Engine::default();
        register(&mut e, "r1", "M1", "2026-01-01T00:00:00Z");
        register(&mut e, "r2", "M2", "2026-01-01T00:00:00Z");
        call(
            &mut e,
            "add_promotion",
            json!({"promotion": {"id": "newcomer", "name": "20 off, once per customer",
                "conditions": {}, "action": {"type": "threshold_discount", "threshold": "50", "off": "20"},
                "limits": {"per_user": 1}}}),
        );
        let q = call(&mut e, "quote", json!({"cart": cart, "user": m("M2")}));
        call(&mut e, "commit", json!({"quote": q, "key": "order-1"}));
        merge_m1_m2(&mut e, by_operator, "2026-01-06T00:00:00Z");
        for who in [m("M1"), m("M2")] {
            let q = call(&mut e, "quote", json!({"cart": cart, "user": who}));
            assert_eq!(q["applied"], json!([]), "{q}");
            assert!(q["not_applied"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["code"] == "user_limit"));
        }
        // Cancelling the absorbed person's commit gives the limit back to the merged person.
        call(&mut e, "cancel", json!({"key": "order-1"}));
        let q = call(&mut e, "quote", json!({"cart": cart, "user": m("M1")}));
        assert_eq!(q["applied"][0]["id"], "newcomer");
        e.check_invariants().unwrap();
    }
}

/// repro_statement_merge: statement rows add up to the balance after either kind of merge;
/// an operator merge is dated by its time (and, without one, when the command is made).
#[test]
fn statement_rows_add_up_after_a_merge_and_are_dated() {
    for (by_operator, time) in [
        (true, Some("2026-01-04T00:00:00Z")),
        (true, None),
        (false, Some("2026-01-04T00:00:00Z")),
    ] {
        let mut e = Engine::default();
        call(&mut e, "create_program", json!({"program": {"id": "p"}}));
        for (who, pts, key, day) in [("M1", 100, "e1", 2), ("M2", 50, "e2", 3)] {
            call(
                &mut e,
                "earn",
                json!({"user": m(who), "program": "p", "points": pts, "key": key,
                    "time": format!("2026-01-0{day}T00:00:00Z")}),
            );
        }
        match (by_operator, time) {
            (true, Some(t)) => merge_m1_m2(&mut e, true, t),
            (true, None) => {
                call(
                    &mut e,
                    "merge",
                    json!({"a": m("M1"), "b": m("M2"), "actor": "ops", "reason": "same"}),
                );
            }
            _ => merge_m1_m2(&mut e, false, time.unwrap()),
        }
        let rows = call(
            &mut e,
            "statement",
            json!({"user": {"oneid": 1}, "program": "p"}),
        );
        let rows = rows.as_array().unwrap();
        let sum: i64 = rows.iter().map(|r| r["amount"].as_i64().unwrap()).sum();
        let balance = call(
            &mut e,
            "balance",
            json!({"user": {"oneid": 1}, "program": "p"}),
        );
        assert_eq!(json!(sum), balance, "{rows:?}");
        assert_eq!(balance, 150);
        let merge_row = rows.iter().find(|r| r["kind"] == "merge").unwrap();
        let date = merge_row["time"].as_str().unwrap();
        match time {
            Some(t) => assert_eq!(date, t),
            None => assert!(!date.starts_with("1970"), "dated now: {date}"),
        }
    }
}

/// repro_split_ghost: after a merge and a split both persons are live in every audience.
#[test]
fn a_split_off_person_is_back_in_audiences() {
    let mut e = Engine::default();
    register(&mut e, "r1", "M1", "2026-01-01T00:00:00Z");
    register(&mut e, "r2", "M2", "2026-01-01T00:00:00Z");
    merge_m1_m2(&mut e, true, "2026-01-01T12:00:00Z");
    let s = call(
        &mut e,
        "split",
        json!({"evidence": ["manual:1"], "actor": "ops", "reason": "two people",
            "time": "2026-01-01T13:00:00Z"}),
    );
    assert_eq!(
        s["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["oneid"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    call(&mut e, "define_tag", json!({"name": "vip"}));
    for who in ["M1", "M2"] {
        call(
            &mut e,
            "set_tag",
            json!({"user": m(who), "tag": "vip", "value": true, "now": "2026-01-02T00:00:00Z"}),
        );
    }
    let members = |e: &mut Engine, expr: &str| {
        call(
            e,
            "audience",
            json!({"expression": expr, "now": "2026-01-03T00:00:00Z"}),
        )["oneids"]
            .clone()
    };
    assert_eq!(members(&mut e, "vip"), json!([1, 2]));
    assert_eq!(members(&mut e, "NOT vip"), json!([]));
    ingest(
        &mut e,
        json!({"kind": "order", "key": "o2", "time": "2026-01-02T00:00:00Z", "source": src(),
            "user": m("M2"), "order_id": "O2", "amount": "500.00"}),
    );
    assert_eq!(members(&mut e, "gmv >= 100"), json!([2]));
    e.check_invariants().unwrap();
}

fn standing(e: &mut Engine, who: &str) -> Value {
    let p = call(e, "profile", json!({"user": m(who)}));
    let journey: Vec<Value> = call(e, "journey", json!({"user": m(who)}))["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    json!({
        "oneid": p["oneid"],
        "points": call(e, "balance", json!({"user": m(who), "program": "p"})),
        "tags": p["tags"], "attributes": p["attributes"],
        "orders": p["aggregates"]["orders"], "journey": journey,
    })
}

/// repro_split_restores_nothing: a split gives the part back its points, tags, attributes,
/// orders and journey; what cannot go back is named per module.
#[test]
fn a_split_gives_each_part_its_state_back_and_names_what_cannot() {
    let mut e = Engine::default();
    call(&mut e, "create_program", json!({"program": {"id": "p"}}));
    register(&mut e, "r1", "M1", "2026-01-01T00:00:00Z");
    ingest(
        &mut e,
        json!({"kind": "order", "key": "o2", "time": "2026-01-02T00:00:00Z", "source": src(),
            "user": m("M2"), "order_id": "O2", "amount": "80.00"}),
    );
    call(
        &mut e,
        "earn",
        json!({"user": m("M2"), "program": "p", "points": 50, "key": "e2",
            "time": "2026-01-02T00:00:00Z"}),
    );
    call(&mut e, "define_tag", json!({"name": "vip"}));
    call(
        &mut e,
        "set_tag",
        json!({"user": m("M2"), "tag": "vip", "value": true, "now": "2026-01-02T00:00:00Z"}),
    );
    call(
        &mut e,
        "set_attribute",
        json!({"user": m("M2"), "name": "city", "value": "Beijing", "at": "2026-01-02T00:00:00Z"}),
    );
    let (m1, m2) = (standing(&mut e, "M1"), standing(&mut e, "M2"));
    assert_eq!(m2["points"], 50);
    let merged = call(
        &mut e,
        "merge",
        json!({"a": m("M1"), "b": m("M2"), "actor": "ops", "reason": "looked the same",
            "time": "2026-01-03T00:00:00Z"}),
    );
    assert_eq!(standing(&mut e, "M1")["points"], 50);
    let s = call(
        &mut e,
        "split",
        json!({"evidence": merged["evidence"], "actor": "ops", "reason": "two people",
            "time": "2026-01-04T00:00:00Z"}),
    );
    assert_eq!(standing(&mut e, "M2"), m2, "{s}");
    assert_eq!(standing(&mut e, "M1"), m1);
    assert_eq!(
        s["not_split_back"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["identity"],
        "nothing in between: everything went back"
    );
    e.check_invariants().unwrap();

    // Points spent by the merged person cannot go back: the report says how many, per program.
    let merged = call(
        &mut e,
        "merge",
        json!({"a": m("M1"), "b": m("M2"), "actor": "ops", "reason": "again",
            "time": "2026-01-05T00:00:00Z"}),
    );
    call(
        &mut e,
        "spend",
        json!({"user": m("M1"), "program": "p", "points": 30, "key": "s1",
            "time": "2026-01-06T00:00:00Z"}),
    );
    let s = call(
        &mut e,
        "split",
        json!({"evidence": merged["evidence"], "actor": "ops", "reason": "two people",
            "time": "2026-01-07T00:00:00Z"}),
    );
    assert_eq!(standing(&mut e, "M2")["points"], 20);
    assert_eq!(standing(&mut e, "M1")["points"], 0);
    let kept = &s["not_split_back"]["loyalty"];
    assert_eq!(kept["p (2)"]["points"], 30, "{s}");
    e.check_invariants().unwrap();
}

/// repro_erase_split: an erased person is a tombstone: its evidence cannot be split, it cannot
/// be merged, and nothing about it comes back.
#[test]
fn a_tombstone_cannot_be_split_or_merged() {
    let mut e = Engine::default();
    register(&mut e, "r1", "M1", "2026-01-01T00:00:00Z");
    register(&mut e, "r2", "M2", "2026-01-01T00:00:00Z");
    register(&mut e, "r3", "M3", "2026-01-01T00:00:00Z");
    call(
        &mut e,
        "set_attribute",
        json!({"user": m("M2"), "name": "full_name", "value": "Li Lei"}),
    );
    link(
        &mut e,
        "link",
        "2026-01-02T00:00:00Z",
        json!([m("M1"), m("M2"), {"kind": "phone", "value": "13800138000"}]),
    );
    call(
        &mut e,
        "erase",
        json!({"oneid": 1, "actor": "dpo", "time": "2026-02-01T00:00:00Z"}),
    );
    let before = e.snapshot();
    // The erased person's event keys are gone from the evidence (they are the host's keys and
    // may carry personal data): the record is known under its erased name only.
    let x = err(
        &mut e,
        "split",
        json!({"evidence": ["link"], "actor": "ops", "reason": "undo", "time": "2026-02-02T00:00:00Z"}),
    );
    assert_eq!(x.code(), ErrorCode::NotFound, "{x}");
    let record = call(&mut e, "merge_history", json!({"oneid": 1}))[0]["record"].clone();
    assert!(record.as_str().unwrap().starts_with("erased:"), "{record}");
    let x = err(
        &mut e,
        "split",
        json!({"evidence": [record], "actor": "ops", "reason": "undo", "time": "2026-02-02T00:00:00Z"}),
    );
    assert_eq!(
        (x.code(), x.field()),
        (ErrorCode::InvalidArgument, Some("evidence"))
    );
    for (a, b) in [
        (json!({"oneid": 1}), json!({"oneid": 3})),
        (json!({"oneid": 3}), json!({"oneid": 2})),
    ] {
        let x = err(
            &mut e,
            "merge",
            json!({"a": a, "b": b, "actor": "ops", "reason": "x", "time": "2026-02-02T00:00:00Z"}),
        );
        assert_eq!(x.code(), ErrorCode::NotFound, "{x}");
    }
    assert_eq!(e.snapshot(), before, "refusals change nothing");
    for o in [1, 2] {
        assert_eq!(
            err(&mut e, "profile", json!({"user": {"oneid": o}})).code(),
            ErrorCode::NotFound
        );
    }
    assert_eq!(call(&mut e, "stats", json!({}))["persons"], 2);
    e.check_invariants().unwrap();
}

/// repro_erase_leftovers: after an erasure no audience, table, model, tag or automation run
/// returns the person.
#[test]
fn an_erased_person_is_in_no_audience_table_model_tag_or_plan() {
    let mut e = Engine::default();
    let mm = m("M7");
    link(
        &mut e,
        "i1",
        "2026-01-01T00:00:00Z",
        json!([mm, {"kind": "phone", "value": "13800000007"}]),
    );
    register(&mut e, "r1", "M7", "2026-01-01T00:00:00Z");
    register(&mut e, "r9", "M9", "2026-01-01T00:00:00Z");
    for (key, who, day) in [("o1", "M7", "03"), ("o9", "M9", "04")] {
        ingest(
            &mut e,
            json!({"kind": "order", "key": key, "time": format!("2026-01-{day}T00:00:00Z"),
                "source": src(), "user": m(who), "order_id": key.to_uppercase(), "amount": "88.00",
                "lines": [{"sku": "s", "category": "tea", "price": "88.00", "qty": 1}]}),
        );
    }
    call(
        &mut e,
        "set_attribute",
        json!({"user": mm, "name": "full_name", "value": "Wang Fang"}),
    );
    call(
        &mut e,
        "define_tag",
        json!({"name": "nickname", "type": "enum"}),
    );
    call(
        &mut e,
        "set_tag",
        json!({"user": mm, "tag": "nickname", "value": "FangFang88"}),
    );
    call(
        &mut e,
        "erase",
        json!({"oneid": 1, "actor": "dpo", "time": "2026-03-01T00:00:00Z"}),
    );
    let members = |e: &mut Engine, expr: &str| {
        call(
            e,
            "audience",
            json!({"expression": expr, "now": "2026-03-01T00:00:00Z"}),
        )["oneids"]
            .clone()
    };
    assert_eq!(members(&mut e, "full_name = \"Wang Fang\""), json!([]));
    assert_eq!(members(&mut e, "nickname = \"FangFang88\""), json!([]));
    assert_eq!(members(&mut e, "NOT EXISTS nickname"), json!([2]));
    let stages = call(&mut e, "lifecycle_stages", json!({}));
    assert!(stages["users"]
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["oneid"] != 1));
    let rfm = call(&mut e, "rfm", json!({"as_of": "2026-03-01T00:00:00Z"}));
    let rows: Vec<&Value> = rfm.as_array().unwrap().iter().collect();
    assert_eq!(rows.len(), 1, "{rfm}");
    assert_eq!(rows[0]["oneid"], 2);
    call(
        &mut e,
        "rfm",
        json!({"as_of": "2026-03-01T00:00:00Z", "tag": "rfm"}),
    );
    assert_eq!(members(&mut e, "EXISTS rfm"), json!([2]));
    call(
        &mut e,
        "add_coupon_template",
        json!({"template": {"id": "c10", "kind": "consumption",
            "benefit": {"type": "amount_off", "off": "10"}, "valid_days": 30}}),
    );
    call(
        &mut e,
        "add_rule",
        json!({"rule": {"id": "winback", "trigger": {"type": "inactive", "days": 10},
            "actions": [{"type": "issue_coupon", "template": "c10"}, {"type": "add_tag", "tag": "winback"}]}}),
    );
    let p = plan(&mut e, "2026-03-10T00:00:00Z");
    assert!(p.iter().all(|(u, _, _)| *u == 2), "{p:?}");
    assert!(!p.is_empty());
    let rows = e.tag_rows();
    assert!(rows.iter().all(|(o, _, _)| o.0 == 2), "{rows:?}");
    e.check_invariants().unwrap();
}

/// repro_erase_leftovers, `conflicts()`: an identifier only the erased person's events claimed,
/// kept apart by a cap, is that person's data and goes with it; the conflicts that name the
/// tombstone go too. A claimed identifier with an event of its own, or that another person
/// holds, stays.
#[test]
fn an_identifier_only_the_erased_person_claimed_goes_with_it() {
    let mut e = Engine::default();
    let phone = |v: &str| json!({"kind": "phone", "value": v});
    // 1: a person of its own, by its own event.
    ingest(
        &mut e,
        json!({"kind": "register", "key": "s", "time": "2026-01-01T00:00:00Z", "source": src(),
            "user": phone("13900000001")}),
    );
    link(
        &mut e,
        "i1",
        "2026-01-01T00:00:00Z",
        json!([m("M7"), phone("13800000007")]),
    );
    // The one-phone cap refuses each further phone: 3 exists only through i2; 1 and 4 have
    // events of their own.
    for (key, p) in [
        ("i2", "13912345678"),
        ("i3", "13900000001"),
        ("i4", "13700000004"),
    ] {
        let r = link(
            &mut e,
            key,
            "2026-01-02T00:00:00Z",
            json!([m("M7"), phone(p)]),
        );
        assert_eq!(r["oneid"], 2, "{r}");
    }
    ingest(
        &mut e,
        json!({"kind": "register", "key": "f", "time": "2026-01-03T00:00:00Z", "source": src(),
            "user": phone("13700000004")}),
    );
    let conflicts = call(&mut e, "conflicts", json!({}));
    assert_eq!(conflicts.as_array().unwrap().len(), 3, "{conflicts}");
    let resolve =
        |e: &mut Engine, p: &str| call(e, "resolve", json!({"user": phone(p)}))["oneid"].clone();
    assert_eq!(resolve(&mut e, "13912345678"), 3);

    let out = call(
        &mut e,
        "erase",
        json!({"oneid": 2, "actor": "dpo", "time": "2026-03-01T00:00:00Z"}),
    );
    assert_eq!(out["also_erased"], json!([3]), "{out}");
    assert_eq!(
        out["identifiers_removed"], 3,
        "M7, its phone and the refused phone"
    );
    assert_eq!(call(&mut e, "conflicts", json!({})), json!([]));
    assert_eq!(resolve(&mut e, "13912345678"), Value::Null);
    assert_eq!(resolve(&mut e, "13900000001"), 1);
    assert_eq!(resolve(&mut e, "13700000004"), 4);
    let persons = |e: &mut Engine| {
        call(
            e,
            "audience",
            json!({"expression": "NOT EXISTS nothing_tag", "now": "2026-03-01T00:00:00Z"}),
        )["oneids"]
            .clone()
    };
    call(
        &mut e,
        "define_tag",
        json!({"name": "nothing_tag", "type": "enum"}),
    );
    assert_eq!(persons(&mut e), json!([1, 4]));
    let audit = call(&mut e, "audit_log", json!({}));
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["target"], "oneid:2 oneid:3", "{last}");
    e.check_invariants().unwrap();
}

/// Bad input stays a typed error that changes nothing: a merge of a person with itself, a
/// merge whose points would overflow the survivor's balance, a split of unknown evidence.
#[test]
fn refused_merges_and_splits_change_nothing() {
    let mut e = Engine::default();
    call(&mut e, "create_program", json!({"program": {"id": "p"}}));
    for (who, key) in [("M1", "e1"), ("M2", "e2")] {
        call(
            &mut e,
            "earn",
            json!({"user": m(who), "program": "p", "points": 6_000_000_000_000_000_000i64,
                "key": key, "time": "2026-01-02T00:00:00Z"}),
        );
    }
    let before = e.snapshot();
    let x = err(
        &mut e,
        "merge",
        json!({"a": m("M1"), "b": m("M2"), "actor": "ops", "reason": "same",
            "time": "2026-01-03T00:00:00Z"}),
    );
    assert_eq!(x.code(), ErrorCode::InvalidArgument, "{x}");
    let x = err(
        &mut e,
        "merge",
        json!({"a": m("M1"), "b": {"oneid": 1}, "actor": "ops", "reason": "same",
            "time": "2026-01-03T00:00:00Z"}),
    );
    assert_eq!(x.code(), ErrorCode::InvalidArgument, "{x}");
    let x = err(
        &mut e,
        "split",
        json!({"evidence": ["nope"], "actor": "ops", "reason": "x", "time": "2026-01-03T00:00:00Z"}),
    );
    assert_eq!(x.code(), ErrorCode::NotFound, "{x}");
    assert!(e.snapshot() == before);
    e.check_invariants().unwrap();
}
