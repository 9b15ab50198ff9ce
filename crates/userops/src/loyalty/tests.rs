//! Engine-level tests of the loyalty commands (the JSON door Python and C use).

use serde_json::{json, Value};

use crate::error::{Error, ErrorCode};
use crate::ids::OneId;
use crate::Engine;

fn call(e: &mut Engine, method: &str, args: Value) -> Result<Value, Error> {
    e.call_json(method, &args.to_string())
        .map(|s| serde_json::from_str(&s).expect("outputs are JSON"))
}

fn ok(e: &mut Engine, method: &str, args: Value) -> Value {
    call(e, method, args).unwrap_or_else(|err| panic!("{method}: {err}"))
}

/// The call fails with `code` and changes nothing.
fn fails(e: &mut Engine, method: &str, args: Value, code: ErrorCode) -> Error {
    let before = e.snapshot();
    let err = call(e, method, args).expect_err("call should fail");
    assert_eq!(err.code(), code, "{method}: {err}");
    assert!(before == e.snapshot(), "{method} failed but changed state");
    err
}

const M1: &str = r#"{"kind": "member_no", "value": "M1"}"#;

fn m1() -> Value {
    serde_json::from_str(M1).unwrap()
}

fn engine() -> Engine {
    let mut e = Engine::default();
    ok(
        &mut e,
        "create_program",
        json!({"program": {"id": "group", "level": "group"}}),
    );
    ok(
        &mut e,
        "create_program",
        json!({"program": {
            "id": "brand-a", "level": "brand", "parent": "group",
            "expiry": {"kind": "end_of_year"}, "clawback": "debt",
            "conversions": {"group": {"from": 10, "to": 3}},
            "growth": {"weights": {"login": 2, "order": 10}, "daily_caps": {"login": 4}},
            "tiers": {"basis": "growth", "window": "calendar_year", "grace_days": 30,
                      "levels": [{"name": "silver", "threshold": "0"},
                                 {"name": "gold", "threshold": "100"}]},
            "benefits": [
                {"id": "lounge", "kind": "privilege", "tiers": ["gold"], "limit": 2, "per": "month"},
                {"id": "double", "kind": "points_multiplier", "tiers": ["gold"], "multiplier": "2"},
                {"id": "welcome", "kind": "coupon_bundle", "coupons": ["C10", "C20"], "limit": 1}
            ],
            "tasks": [
                {"id": "profile", "kind": "profile_completion", "points": 50, "growth": 20},
                {"id": "survey", "kind": "survey", "points": 5, "max_completions": 2}
            ]
        }}),
    );
    e
}

fn earn(e: &mut Engine, key: &str, points: i64, time: &str, extra: Value) -> Value {
    let mut args =
        json!({"user": m1(), "program": "brand-a", "points": points, "key": key, "time": time});
    if let (Value::Object(a), Value::Object(x)) = (&mut args, extra) {
        a.extend(x);
    }
    ok(e, "earn", args)
}

fn balance(e: &mut Engine) -> i64 {
    ok(e, "balance", json!({"user": m1(), "program": "brand-a"}))
        .as_i64()
        .unwrap()
}

#[test]
fn fifo_spend_and_expiry_conserve_every_bucket() {
    let mut e = engine();
    earn(
        &mut e,
        "late",
        100,
        "2026-01-10T00:00:00Z",
        json!({"expires": "2026-09-01T00:00:00Z"}),
    );
    earn(
        &mut e,
        "early",
        100,
        "2026-01-11T00:00:00Z",
        json!({"expires": "2026-03-01T00:00:00Z"}),
    );
    earn(&mut e, "never", 100, "2026-01-12T00:00:00Z", json!({})); // end of year by policy
    let s = ok(
        &mut e,
        "spend",
        json!({"user": m1(), "program": "brand-a", "points": 150,
        "key": "s1", "time": "2026-02-01T00:00:00Z"}),
    );
    assert_eq!(s["balance"], 150);
    // FIFO: the March bucket is empty, the September one half spent.
    let lo = &e.state.loyalty;
    let book = lo.program("brand-a").unwrap().book;
    let live: Vec<(i64, String)> = lo
        .ledger()
        .live_buckets(book, OneId(1))
        .iter()
        .map(|b| (b.remaining(), b.expires.unwrap().to_rfc3339()))
        .collect();
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].0, 50);
    assert!(live[0].1.starts_with("2026-09-01"));
    let x = ok(&mut e, "expire", json!({"now": "2026-09-01T00:00:00Z"}));
    assert_eq!(x["points"], 50);
    assert_eq!(balance(&mut e), 100);
    // Expiring again at the same time does nothing.
    assert_eq!(
        ok(&mut e, "expire", json!({"now": "2026-09-01T00:00:00Z"}))["points"],
        0
    );
    let rows = ok(
        &mut e,
        "statement",
        json!({"user": m1(), "program": "brand-a"}),
    );
    let kinds: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["earn", "earn", "earn", "spend", "expire"]);
    assert_eq!(rows[4]["amount"], -50);
    assert_eq!(rows[4]["balance"], 100);
    e.state.loyalty.check_invariants().unwrap();
}

#[test]
fn pending_post_void_and_refund() {
    let mut e = engine();
    let p = earn(
        &mut e,
        "o1",
        80,
        "2026-01-10T00:00:00Z",
        json!({"pending": true}),
    );
    assert_eq!(
        (p["pending"].clone(), p["balance"].clone()),
        (json!(true), json!(0))
    );
    fails(
        &mut e,
        "spend",
        json!({"user": m1(), "program": "brand-a", "points": 1, "key": "s0"}),
        ErrorCode::InsufficientPoints,
    );
    let posted = ok(
        &mut e,
        "post",
        json!({"key": "o1", "time": "2026-01-20T00:00:00Z"}),
    );
    assert_eq!(posted["balance"], 80);
    assert_eq!(ok(&mut e, "post", json!({"key": "o1"}))["duplicate"], true);
    fails(&mut e, "void", json!({"key": "o1"}), ErrorCode::NotPending);
    earn(
        &mut e,
        "o2",
        40,
        "2026-01-21T00:00:00Z",
        json!({"pending": true}),
    );
    // A refund of a pending order voids it.
    let r = ok(&mut e, "refund", json!({"order_key": "o2", "key": "r2"}));
    assert_eq!(r["points"], 0);
    fails(&mut e, "post", json!({"key": "o2"}), ErrorCode::NotPending);
    assert_eq!(balance(&mut e), 80);
    // Spend 60 of the order's 80, then refund: 20 reversed, 60 clawed back into debt.
    ok(
        &mut e,
        "spend",
        json!({"user": m1(), "program": "brand-a", "points": 60, "key": "s1"}),
    );
    let r = ok(&mut e, "refund", json!({"order_key": "o1", "key": "r1"}));
    assert_eq!(
        (r["points"].as_i64(), r["other"].as_i64()),
        (Some(20), Some(60))
    );
    assert_eq!(balance(&mut e), -60);
    assert_eq!(
        ok(&mut e, "refund", json!({"order_key": "o1", "key": "r1"}))["duplicate"],
        true
    );
    fails(
        &mut e,
        "refund",
        json!({"order_key": "o1", "key": "r1b"}),
        ErrorCode::NotPending,
    );
    // The next earn repays the debt first.
    earn(&mut e, "o3", 100, "2026-02-01T00:00:00Z", json!({}));
    assert_eq!(balance(&mut e), 40);
    e.state.loyalty.check_invariants().unwrap();
}

#[test]
fn conversion_keeps_the_remainder() {
    let mut e = engine();
    earn(&mut e, "o1", 95, "2026-01-10T00:00:00Z", json!({}));
    let c = ok(
        &mut e,
        "convert",
        json!({"user": m1(), "src": "brand-a", "dst": "group", "points": 95, "key": "c1"}),
    );
    // 10 → 3: nine lots use 90 points and make 27; 5 stay.
    assert_eq!(
        (c["points"].as_i64(), c["other"].as_i64()),
        (Some(90), Some(27))
    );
    assert_eq!(balance(&mut e), 5);
    assert_eq!(
        ok(&mut e, "balance", json!({"user": m1(), "program": "group"})),
        27
    );
    fails(
        &mut e,
        "convert",
        json!({"user": m1(), "src": "brand-a", "dst": "group", "points": 5, "key": "c2"}),
        ErrorCode::InvalidAmount,
    );
    fails(
        &mut e,
        "convert",
        json!({"user": m1(), "src": "group", "dst": "brand-a", "points": 5, "key": "c3"}),
        ErrorCode::InvalidArgument,
    );
    e.state.loyalty.check_invariants().unwrap();
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let mut e = engine();
    earn(&mut e, "o1", 10, "2026-01-10T00:00:00Z", json!({}));
    let base = json!({"user": m1(), "program": "brand-a", "key": "k"});
    let with = |k: &str, v: Value| {
        let mut a = base.clone();
        a[k] = v;
        a
    };
    fails(
        &mut e,
        "earn",
        with("points", json!(0)),
        ErrorCode::InvalidAmount,
    );
    fails(
        &mut e,
        "earn",
        with("points", json!(-5)),
        ErrorCode::InvalidAmount,
    );
    fails(
        &mut e,
        "earn",
        with("points", json!(i64::MAX)),
        ErrorCode::InvalidAmount,
    );
    fails(
        &mut e,
        "earn",
        with("points", json!(u64::MAX)),
        ErrorCode::InvalidArgument,
    );
    let mut past = with("points", json!(5));
    past["expires"] = json!("2025-01-01T00:00:00Z");
    fails(&mut e, "earn", past, ErrorCode::ExpiryInPast);
    fails(
        &mut e,
        "spend",
        with("points", json!(11)),
        ErrorCode::InsufficientPoints,
    );
    let stranger = json!({"user": {"kind": "member_no", "value": "NOBODY"}, "program": "brand-a", "points": 1, "key": "k"});
    fails(&mut e, "spend", stranger, ErrorCode::UnknownAccount);
    fails(
        &mut e,
        "earn",
        json!({"user": m1(), "program": "nope", "points": 1, "key": "k"}),
        ErrorCode::NotFound,
    );
    // The same key with other content.
    let dup = json!({"user": m1(), "program": "brand-a", "points": 11, "key": "o1", "time": "2026-01-10T00:00:00Z"});
    let err = fails(&mut e, "earn", dup, ErrorCode::LedgerDuplicateKey);
    assert_eq!(err.to_report().code, "ledger_duplicate_key");
    // An unknown identifier on a failing earn creates no person.
    let persons = e.stats().persons;
    fails(
        &mut e,
        "earn",
        json!({"user": {"kind": "member_no", "value": "NEW"}, "program": "brand-a", "points": 0, "key": "k2"}),
        ErrorCode::InvalidAmount,
    );
    assert_eq!(e.stats().persons, persons);
    fails(
        &mut e,
        "create_program",
        json!({"program": {"id": "x", "parent": "nope"}}),
        ErrorCode::InvalidArgument,
    );
    fails(
        &mut e,
        "create_program",
        json!({"program": {"id": "x", "level": "group", "parent": "group"}}),
        ErrorCode::InvalidArgument,
    );
    fails(
        &mut e,
        "create_program",
        json!({"program": {"id": "brand-a"}}),
        ErrorCode::InvalidArgument,
    );
}

#[test]
fn an_empty_key_or_order_is_an_invalid_argument_naming_it() {
    let mut e = engine();
    earn(&mut e, "o1", 10, "2026-01-10T00:00:00Z", json!({}));
    let earn_with = |key: &str, order: Option<&str>| json!({"user": m1(), "program": "brand-a", "points": 5, "key": key, "order": order});
    for (method, args, field) in [
        ("earn", earn_with("", None), "key"),
        ("earn", earn_with("k", Some("")), "order"),
        (
            "spend",
            json!({"user": m1(), "program": "brand-a", "points": 1, "key": ""}),
            "key",
        ),
        (
            "add_growth",
            json!({"user": m1(), "program": "brand-a", "behaviour": "login", "key": ""}),
            "key",
        ),
    ] {
        let err = fails(&mut e, method, args, ErrorCode::InvalidArgument);
        assert_eq!(
            err.to_report().field.as_deref(),
            Some(field),
            "{method}: {err}"
        );
    }
}

#[test]
fn replayed_keys_return_the_first_result() {
    let mut e = engine();
    let first = earn(&mut e, "o1", 10, "2026-01-10T00:00:00Z", json!({}));
    let before = e.snapshot();
    let again = earn(&mut e, "o1", 10, "2026-01-10T00:00:00Z", json!({}));
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["transfers"], first["transfers"]);
    assert!(before == e.snapshot());
}

#[test]
fn growth_caps_tiers_benefits_and_tasks() {
    let mut e = engine();
    let g = |e: &mut Engine, key: &str, behaviour: &str, count: u32, time: &str| {
        ok(
            e,
            "add_growth",
            json!({"user": m1(), "program": "brand-a", "behaviour": behaviour,
            "key": key, "count": count, "time": time}),
        )
    };
    let r = g(&mut e, "g1", "login", 3, "2026-05-01T01:00:00Z");
    assert_eq!(
        (r["growth"].as_i64(), r["tier"].as_str()),
        (Some(4), Some("silver"))
    ); // cap 4/day
    assert_eq!(
        g(&mut e, "g2", "login", 1, "2026-05-01T02:00:00Z")["growth"],
        0
    );
    assert_eq!(
        g(&mut e, "g3", "login", 1, "2026-05-02T02:00:00Z")["growth"],
        2
    );
    fails(
        &mut e,
        "claim_benefit",
        json!({"user": m1(), "program": "brand-a", "benefit": "lounge", "key": "b0"}),
        ErrorCode::NotEligible,
    );
    let up = g(&mut e, "g4", "order", 10, "2026-05-03T00:00:00Z");
    assert_eq!(
        (up["upgraded"].as_bool(), up["tier"].as_str()),
        (Some(true), Some("gold"))
    );
    // Gold doubles points on earns that ask for the multiplier.
    let p = earn(
        &mut e,
        "o1",
        7,
        "2026-05-03T01:00:00Z",
        json!({"apply_multiplier": true}),
    );
    assert_eq!(p["points"], 14);
    for k in ["b1", "b2"] {
        ok(
            &mut e,
            "claim_benefit",
            json!({"user": m1(), "program": "brand-a", "benefit": "lounge", "key": k, "time": "2026-05-04T00:00:00Z"}),
        );
    }
    fails(
        &mut e,
        "claim_benefit",
        json!({"user": m1(), "program": "brand-a", "benefit": "lounge", "key": "b3", "time": "2026-05-05T00:00:00Z"}),
        ErrorCode::LimitReached,
    );
    // A new month resets a monthly limit.
    let c = ok(
        &mut e,
        "claim_benefit",
        json!({"user": m1(), "program": "brand-a", "benefit": "lounge", "key": "b4", "time": "2026-06-04T00:00:00Z"}),
    );
    assert_eq!(c["remaining"], 1);
    let w = ok(
        &mut e,
        "claim_benefit",
        json!({"user": m1(), "program": "brand-a", "benefit": "welcome", "key": "b5"}),
    );
    assert_eq!(w["coupons"], json!(["C10", "C20"]));
    let list = ok(
        &mut e,
        "benefits",
        json!({"user": m1(), "program": "brand-a"}),
    );
    assert_eq!(list[2]["remaining"], 0);
    // Tasks: once, or up to a cap.
    let t = ok(
        &mut e,
        "complete_task",
        json!({"user": m1(), "program": "brand-a", "task": "profile", "key": "t1"}),
    );
    assert_eq!(
        (t["points"].as_i64(), t["growth"].as_i64()),
        (Some(50), Some(20))
    );
    fails(
        &mut e,
        "complete_task",
        json!({"user": m1(), "program": "brand-a", "task": "profile", "key": "t2"}),
        ErrorCode::LimitReached,
    );
    ok(
        &mut e,
        "complete_task",
        json!({"user": m1(), "program": "brand-a", "task": "survey", "key": "t3"}),
    );
    ok(
        &mut e,
        "complete_task",
        json!({"user": m1(), "program": "brand-a", "task": "survey", "key": "t4"}),
    );
    fails(
        &mut e,
        "complete_task",
        json!({"user": m1(), "program": "brand-a", "task": "survey", "key": "t5"}),
        ErrorCode::LimitReached,
    );
    assert_eq!(balance(&mut e), 14 + 50 + 10);
    // Next year: below gold; a downgrade waits for the grace period.
    let ev = ok(
        &mut e,
        "evaluate_tiers",
        json!({"now": "2027-01-05T00:00:00Z"}),
    );
    assert_eq!(
        (ev["grace"].as_u64(), ev["downgraded"].as_u64()),
        (Some(1), Some(0))
    );
    let ev = ok(
        &mut e,
        "evaluate_tiers",
        json!({"now": "2027-02-05T00:00:00Z"}),
    );
    assert_eq!(ev["downgraded"], 1);
    let tier = ok(&mut e, "tier", json!({"user": m1(), "program": "brand-a"}));
    assert_eq!(tier["tier"], "silver");
    assert_eq!(tier["history"].as_array().unwrap().len(), 3);
    assert_eq!(tier["next"], "gold");
    e.state.loyalty.check_invariants().unwrap();
}

#[test]
fn merge_moves_buckets_keeping_expiry_and_converts_by_policy() {
    let mut e = engine();
    ok(
        &mut e,
        "create_program",
        json!({"program": {"id": "store-1", "level": "store", "parent": "brand-a",
        "conversions": {"brand-a": {"from": 2, "to": 1}}, "merge_into": "brand-a"}}),
    );
    let m2 = json!({"kind": "member_no", "value": "M2"});
    earn(
        &mut e,
        "a1",
        100,
        "2026-01-10T00:00:00Z",
        json!({"expires": "2026-06-01T00:00:00Z"}),
    );
    ok(
        &mut e,
        "earn",
        json!({"user": m2, "program": "brand-a", "points": 30, "key": "b1",
        "expires": "2026-04-01T00:00:00Z", "time": "2026-01-10T00:00:00Z"}),
    );
    ok(
        &mut e,
        "earn",
        json!({"user": m2, "program": "store-1", "points": 21, "key": "b2", "time": "2026-01-10T00:00:00Z"}),
    );
    ok(
        &mut e,
        "earn",
        json!({"user": m2, "program": "brand-a", "points": 5, "key": "b3", "pending": true, "time": "2026-01-10T00:00:00Z"}),
    );
    let t = "2026-02-01T00:00:00Z".parse().unwrap();
    let rep = e
        .state
        .loyalty
        .merge_accounts(OneId(1), OneId(2), t)
        .unwrap();
    assert_eq!(rep.ledger.moved["brand-a"], 30);
    assert_eq!(rep.ledger.converted_in["brand-a"], 10); // 20 of 21 at 2:1
    assert_eq!(rep.ledger.moved["store-1"], 1); // the remainder moves unconverted
    assert_eq!(rep.ledger.pending, 1);
    assert_eq!(balance(&mut e), 140);
    // The moved bucket kept its April expiry.
    ok(&mut e, "expire", json!({"now": "2026-04-01T00:00:00Z"}));
    assert_eq!(balance(&mut e), 110);
    ok(&mut e, "post", json!({"key": "b3"}));
    assert_eq!(balance(&mut e), 115);
    e.state.loyalty.check_invariants().unwrap();
}

#[test]
fn snapshot_restores_the_loyalty_state() {
    let mut e = engine();
    earn(
        &mut e,
        "o1",
        10,
        "2026-01-10T00:00:00Z",
        json!({"pending": true}),
    );
    ok(
        &mut e,
        "add_growth",
        json!({"user": m1(), "program": "brand-a", "behaviour": "order", "key": "g"}),
    );
    let mut back = Engine::restore(&e.snapshot()).unwrap();
    assert!(back.snapshot() == e.snapshot());
    // Indexes were rebuilt: keys replay and pending earns post.
    assert_eq!(
        earn(
            &mut back,
            "o1",
            10,
            "2026-01-10T00:00:00Z",
            json!({"pending": true})
        )["duplicate"],
        true
    );
    assert_eq!(ok(&mut back, "post", json!({"key": "o1"}))["balance"], 10);
}

/// An engine with a brand that earns on orders (7-day return window, shoes count double) and a
/// store below it without rules of its own.
fn order_engine() -> Engine {
    let mut e = Engine::default();
    ok(
        &mut e,
        "create_program",
        json!({"program": {"id": "brand-o", "clawback": "debt",
            "earn": {"points_per_unit": "1", "categories": {"shoes": "2"}, "return_days": 7}}}),
    );
    ok(
        &mut e,
        "create_program",
        json!({"program": {"id": "store-o", "level": "store", "parent": "brand-o"}}),
    );
    e
}

fn ingest(e: &mut Engine, ev: Value) -> crate::Receipt {
    e.ingest_json(&ev.to_string())
        .unwrap_or_else(|err| panic!("ingest: {err}"))
}

fn order(key: &str, id: &str, amount: &str, time: &str, lines: Value) -> Value {
    json!({"kind": "order", "key": key, "time": time,
           "source": {"platform": "pos", "program": "store-o"},
           "user": m1(), "order_id": id, "amount": amount, "lines": lines})
}

fn refund_event(key: &str, id: &str, amount: &str, time: &str) -> Value {
    json!({"kind": "refund", "key": key, "time": time,
           "source": {"platform": "pos", "program": "store-o"},
           "user": m1(), "order_id": id, "amount": amount})
}

fn bal(e: &mut Engine, program: &str) -> i64 {
    ok(e, "balance", json!({"user": m1(), "program": program}))
        .as_i64()
        .unwrap()
}

#[test]
fn orders_earn_by_rule_pending_through_the_return_window() {
    let mut e = order_engine();
    let lines = json!([{"sku": "A", "category": "shoes", "price": "100", "qty": 1},
                       {"sku": "B", "category": "socks", "price": "50.50", "qty": 1}]);
    // 150.50 paid; shoes count double: floor(100 × 2 + 50.50) = 250 points, pending.
    ingest(
        &mut e,
        order("ev1", "O1", "150.50", "2026-03-01T10:00:00Z", lines.clone()),
    );
    let rows = ok(
        &mut e,
        "statement",
        json!({"user": m1(), "program": "brand-o"}),
    );
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(
        (&rows[0]["amount"], &rows[0]["pending"], &rows[0]["key"]),
        (
            &json!(250),
            &json!(true),
            &json!(r#"order:["brand-o","store-o","O1"]"#)
        )
    );
    assert_eq!(bal(&mut e, "brand-o"), 0);
    // The store has no rules. The same order under another event key is refused: an order id
    // is unique per source program, and accepting it would earn nothing more in loyalty but
    // count twice elsewhere.
    assert_eq!(bal(&mut e, "store-o"), 0);
    let before = e.snapshot();
    let err = e
        .ingest_json(&order("ev1-again", "O1", "150.50", "2026-03-01T11:00:00Z", lines).to_string())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::DuplicateOrder, "{err}");
    assert!(err.to_string().contains("\"ev1\""), "{err}");
    assert!(before == e.snapshot());
    let rows = ok(
        &mut e,
        "statement",
        json!({"user": m1(), "program": "brand-o"}),
    );
    assert_eq!(rows.as_array().unwrap().len(), 1);
    // The window closes 7 days after the order: not before.
    let d = ok(&mut e, "post_due", json!({"now": "2026-03-08T09:59:59Z"}));
    assert_eq!(d["posted"], json!([]));
    assert_eq!(bal(&mut e, "brand-o"), 0);
    let d = ok(&mut e, "post_due", json!({"now": "2026-03-08T10:00:00Z"}));
    assert_eq!(
        (d["posted"].clone(), d["points"].clone()),
        (json!([r#"order:["brand-o","store-o","O1"]"#]), json!(250))
    );
    assert_eq!(bal(&mut e, "brand-o"), 250);
    let d = ok(&mut e, "post_due", json!({"now": "2026-03-09T00:00:00Z"}));
    assert_eq!(d["posted"], json!([]), "a run posts each earn once");

    // Partly refunded inside the window: the pending earn shrinks, the rest posts.
    ingest(
        &mut e,
        order("ev2", "O2", "100", "2026-03-10T00:00:00Z", json!([])),
    );
    ingest(
        &mut e,
        refund_event("rf2", "O2", "25", "2026-03-11T00:00:00Z"),
    );
    // Wholly refunded inside the window: voided, and the run skips it.
    ingest(
        &mut e,
        order("ev3", "O3", "40", "2026-03-10T00:00:00Z", json!([])),
    );
    ingest(
        &mut e,
        refund_event("rf3", "O3", "40", "2026-03-12T00:00:00Z"),
    );
    // The due list and the partial refunds survive a snapshot.
    let mut e = Engine::restore(&e.snapshot()).unwrap();
    let d = ok(&mut e, "post_due", json!({"now": "2026-03-20T00:00:00Z"}));
    assert_eq!(d["posted"], json!([r#"order:["brand-o","store-o","O2"]"#]));
    assert_eq!(d["skipped"], json!([r#"order:["brand-o","store-o","O3"]"#]));
    assert_eq!(d["points"], 75);
    assert_eq!(bal(&mut e, "brand-o"), 325);
    e.state.loyalty.check_invariants().unwrap();
}

#[test]
fn partial_refunds_reverse_the_proportional_earn_and_claw_back_spent_points() {
    let mut e = order_engine();
    ingest(
        &mut e,
        order(
            "ev1",
            "O1",
            "150.50",
            "2026-03-01T10:00:00Z",
            json!([
        {"sku": "A", "category": "shoes", "price": "100", "qty": 1},
        {"sku": "B", "category": "socks", "price": "50.50", "qty": 1}]),
        ),
    );
    ingest(
        &mut e,
        order("ev2", "O2", "75", "2026-03-01T10:00:00Z", json!([])),
    );
    ok(&mut e, "post_due", json!({"now": "2026-03-09T00:00:00Z"}));
    assert_eq!(bal(&mut e, "brand-o"), 325);
    // 50.17 of 150.50 refunded: the member keeps floor(250 × 100.33 / 150.50) = 166 points.
    ingest(
        &mut e,
        refund_event("rf1", "O1", "50.17", "2026-03-10T00:00:00Z"),
    );
    assert_eq!(bal(&mut e, "brand-o"), 325 - 84);
    let mut e = Engine::restore(&e.snapshot()).unwrap();
    // Spend 200: the O1 bucket (166 left) first, then 34 of O2's.
    ok(
        &mut e,
        "spend",
        json!({"user": m1(), "program": "brand-o", "points": 200, "key": "s1",
               "time": "2026-03-11T00:00:00Z"}),
    );
    assert_eq!(bal(&mut e, "brand-o"), 41);
    // The rest of O1 refunded through the command: nothing left in its bucket, so its 166
    // spent points are clawed back (41 from O2's bucket, 125 as debt: the program's policy).
    let r = ok(
        &mut e,
        "refund_amount",
        json!({"order_key": "O1", "key": "rf1b", "amount": "100.33",
               "time": "2026-03-12T00:00:00Z"}),
    );
    assert_eq!(
        (r["points"].as_i64(), r["other"].as_i64()),
        (Some(0), Some(166))
    );
    assert_eq!(bal(&mut e, "brand-o"), -125);
    // A replay returns the first result; the order is now wholly refunded.
    let again = ok(
        &mut e,
        "refund_amount",
        json!({"order_key": "O1", "key": "rf1b", "amount": "100.33",
               "time": "2026-03-12T00:00:00Z"}),
    );
    assert_eq!(again["duplicate"], true);
    fails(
        &mut e,
        "refund_amount",
        json!({"order_key": "O1", "key": "rf1c", "amount": "1"}),
        ErrorCode::NotPending,
    );
    // Bad input changes nothing: a non-positive amount; an order whose earns record no amount.
    fails(
        &mut e,
        "refund_amount",
        json!({"order_key": "O2", "key": "rf2", "amount": "0"}),
        ErrorCode::InvalidAmount,
    );
    ok(
        &mut e,
        "earn",
        json!({"user": m1(), "program": "brand-o", "points": 10, "key": "manual"}),
    );
    fails(
        &mut e,
        "refund_amount",
        json!({"order_key": "manual", "key": "rf3", "amount": "1"}),
        ErrorCode::NotPending,
    );
    e.state.loyalty.check_invariants().unwrap();
}

#[test]
fn partial_refunds_add_up_to_one_refund_of_their_total() {
    // Refunding 1 + 2 + 3.33 of a 10.00 order of 997 points gives back exactly what one
    // refund of 6.33 would: 997 − floor(997 × 3.67 / 10) = 632.
    for steps in [vec!["1", "2", "3.33"], vec!["6.33"]] {
        let mut e = order_engine();
        ok(
            &mut e,
            "create_program",
            json!({"program": {"id": "flat", "earn": {"points_per_unit": "99.7"}}}),
        );
        let mut ev = order("ev", "O", "10.00", "2026-03-01T00:00:00Z", json!([]));
        ev["source"]["program"] = json!("flat");
        ingest(&mut e, ev);
        assert_eq!(bal(&mut e, "flat"), 997);
        for (i, s) in steps.iter().enumerate() {
            let mut r = refund_event(&format!("rf{i}"), "O", s, "2026-03-02T00:00:00Z");
            r["source"]["program"] = json!("flat");
            ingest(&mut e, r);
        }
        assert_eq!(bal(&mut e, "flat"), 997 - 632, "{steps:?}");
        e.state.loyalty.check_invariants().unwrap();
    }
}

/// The profile shows the loyalty aggregates (balance and tier per program), current after
/// every earn, spend and tier change.
#[test]
fn profile_shows_points_and_tier_per_program() {
    let mut e = engine();
    // Before any loyalty activity the person has no standing.
    ok(
        &mut e,
        "set_attribute",
        json!({"user": m1(), "name": "city", "value": "x", "at": "2026-01-01T00:00:00Z"}),
    );
    let p = ok(&mut e, "profile", json!({"user": m1()}));
    assert_eq!(p["points"], Value::Null);
    assert_eq!(p["tier"], Value::Null);
    earn(&mut e, "e1", 120, "2026-01-10T00:00:00Z", json!({}));
    let o = e
        .lookup(&serde_json::from_value(m1()).unwrap())
        .unwrap()
        .unwrap();
    let v = e.profile(o).unwrap();
    assert_eq!(v.points, Some(120));
    assert_eq!(v.loyalty["brand-a"].points, 120);
    ok(
        &mut e,
        "spend",
        json!({"user": m1(), "program": "brand-a", "points": 45,
        "key": "s1", "time": "2026-01-11T00:00:00Z"}),
    );
    assert_eq!(e.profile(o).unwrap().points, Some(75));
    // Growth: 10 orders × weight 10 reach gold (threshold 100).
    let before = e.profile(o).unwrap().tier;
    ok(
        &mut e,
        "add_growth",
        json!({"user": m1(), "program": "brand-a", "behaviour": "order", "key": "g1",
        "count": 10, "time": "2026-01-12T00:00:00Z"}),
    );
    let v = e.profile(o).unwrap();
    assert_ne!(before.as_deref(), Some("gold"));
    assert_eq!(v.tier.as_deref(), Some("gold"));
    assert_eq!(v.loyalty["brand-a"].tier.as_deref(), Some("gold"));
    // A second program adds to the total; the group program has no tiers.
    ok(
        &mut e,
        "earn",
        json!({"user": m1(), "program": "group", "points": 5, "key": "e2", "time": "2026-01-12T00:00:00Z"}),
    );
    let v = e.profile(o).unwrap();
    assert_eq!(v.points, Some(80));
    assert_eq!(v.loyalty.len(), 2);
    assert_eq!(v.loyalty["group"].tier, None);
}

/// A program earning on orders with category and tier multipliers and a return window; M1
/// holds its "gold" tier (points × 1.5).
fn lines_engine() -> Engine {
    let mut e = Engine::default();
    ok(
        &mut e,
        "create_program",
        json!({"program": {"id": "brand-l", "clawback": "debt",
            "earn": {"points_per_unit": "1", "categories": {"shoes": "2"}, "return_days": 7,
                     "apply_multiplier": true},
            "growth": {"weights": {"login": 1}},
            "tiers": {"basis": "growth", "window": "calendar_year",
                      "levels": [{"name": "gold", "threshold": "0"}]},
            "benefits": [{"id": "x", "kind": "points_multiplier", "tiers": ["gold"],
                          "multiplier": "1.5"}]}}),
    );
    ok(
        &mut e,
        "add_growth",
        json!({"user": m1(), "program": "brand-l", "behaviour": "login", "key": "g",
               "time": "2026-03-01T00:00:00Z"}),
    );
    let mut ev = order(
        "ev1",
        "O1",
        "180",
        "2026-03-01T10:00:00Z",
        json!([{"sku": "A", "category": "shoes", "price": "100", "qty": 1},
               {"sku": "B", "category": "socks", "price": "25", "qty": 2},
               {"sku": "C", "category": "hats", "price": "10", "qty": 3}]),
    );
    ev["source"]["program"] = json!("brand-l");
    ingest(&mut e, ev);
    e
}

fn refund_lines(e: &mut Engine, key: &str, lines: Value, time: &str) -> Value {
    ok(
        e,
        "refund_lines",
        json!({"order_key": "O1", "key": key, "lines": lines, "time": time}),
    )
}

#[test]
fn line_refunds_reverse_what_the_lines_earned_under_the_multipliers() {
    let mut e = lines_engine();
    // Weighted 100 × 2 + 50 + 30 = 280, × 1.5 (gold) = 420 pending points, shared out by
    // weight: A 300, B 75, C 45.
    assert_eq!(
        ok(&mut e, "tier", json!({"user": m1(), "program": "brand-l"}))["tier"],
        "gold"
    );
    let o = e.state.loyalty.program("brand-l").unwrap().book;
    let m = e
        .lookup(&serde_json::from_value(m1()).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(e.state.loyalty.ledger.pending(o, m), 420);
    // One of B's two units back inside the window: B keeps floor(75 / 2) = 37, so 38 of the
    // pending points are released.
    let r = refund_lines(
        &mut e,
        "r1",
        json!([{"sku": "B", "qty": 1, "amount": "25"}]),
        "2026-03-02T00:00:00Z",
    );
    assert_eq!(
        (r["points"].as_i64(), r["other"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(e.state.loyalty.ledger.pending(o, m), 382);
    // A replay returns the first result; the same key with other lines is refused.
    let again = refund_lines(
        &mut e,
        "r1",
        json!([{"sku": "B", "qty": 1, "amount": "25"}]),
        "2026-03-02T00:00:00Z",
    );
    assert_eq!(again["duplicate"], true);
    fails(
        &mut e,
        "refund_lines",
        json!({"order_key": "O1", "key": "r1", "lines": [{"sku": "B", "qty": 2}]}),
        ErrorCode::LedgerDuplicateKey,
    );
    ok(&mut e, "post_due", json!({"now": "2026-03-09T00:00:00Z"}));
    assert_eq!(bal(&mut e, "brand-l"), 382);
    ok(
        &mut e,
        "spend",
        json!({"user": m1(), "program": "brand-l", "points": 380, "key": "s1",
               "time": "2026-03-10T00:00:00Z"}),
    );
    // A back (by line index): 300 points, of which the bucket still holds 2; the 298 spent
    // are clawed back into debt (the program's policy).
    let r = refund_lines(
        &mut e,
        "r2",
        json!([{"line": 0, "qty": 1}]),
        "2026-03-11T00:00:00Z",
    );
    assert_eq!(
        (r["points"].as_i64(), r["other"].as_i64()),
        (Some(2), Some(298))
    );
    assert_eq!(bal(&mut e, "brand-l"), -298);
    // C: a price adjustment of 10 of its 30 (a third: 15 points), then all three units back:
    // the rest of its 45 (capped: never more than the line earned); B's other unit: 37.
    refund_lines(
        &mut e,
        "r3",
        json!([{"sku": "C", "amount": "10"}]),
        "2026-03-12T00:00:00Z",
    );
    assert_eq!(bal(&mut e, "brand-l"), -313);
    // Bad lines are refused and change nothing.
    for (lines, field) in [
        (json!([{"sku": "Z", "qty": 1}]), "lines[0].sku"),
        (json!([{"line": 3, "qty": 1}]), "lines[0].line"),
        (json!([{"line": 0, "sku": "B", "qty": 1}]), "lines[0].sku"),
        (json!([{"sku": "C", "qty": 4}]), "lines[0].qty"),
        (
            json!([{"sku": "C", "qty": 2}, {"sku": "C", "qty": 2}]),
            "lines[1].qty",
        ),
        (json!([{"sku": "A", "qty": 1}]), "lines[0].qty"),
        (json!([{"sku": "C", "amount": "20.01"}]), "lines[0].amount"),
        (json!([{"sku": "C", "amount": "-1"}]), "lines[0].amount"),
        (json!([{"sku": "C"}]), "lines[0].qty"),
        (json!([{"qty": 1}]), "lines[0].sku"),
    ] {
        let err = fails(
            &mut e,
            "refund_lines",
            json!({"order_key": "O1", "key": "bad", "lines": lines}),
            ErrorCode::InvalidAmount,
        );
        assert_eq!(err.field(), Some(field), "{lines}: {err}");
    }
    let err = fails(
        &mut e,
        "refund_lines",
        json!({"order_key": "O1", "key": "bad", "lines": [{"sku": "C", "qty": -1}]}),
        ErrorCode::InvalidArgument,
    );
    assert!(err.to_string().contains("qty"), "{err}");
    fails(
        &mut e,
        "refund_lines",
        json!({"order_key": "O9", "key": "bad", "lines": [{"sku": "C", "qty": 1}]}),
        ErrorCode::NotPending,
    );
    let r = refund_lines(
        &mut e,
        "r4",
        json!([{"sku": "C", "qty": 3}, {"sku": "B", "qty": 1}]),
        "2026-03-13T00:00:00Z",
    );
    assert_eq!(r["other"].as_i64(), Some(30 + 37));
    // Every line back: exactly the 420 earned were given back (38 + 300 + 15 + 30 + 37), so
    // the member owes the 380 spent; the order is done.
    assert_eq!(bal(&mut e, "brand-l"), -380);
    fails(
        &mut e,
        "refund_lines",
        json!({"order_key": "O1", "key": "r5", "lines": [{"sku": "C", "amount": "1"}]}),
        ErrorCode::NotPending,
    );
    let mut e = Engine::restore(&e.snapshot()).unwrap();
    e.state.loyalty.check_invariants().unwrap();
    assert_eq!(bal(&mut e, "brand-l"), -380);
}

#[test]
fn refund_events_with_lines_give_back_what_the_lines_earned() {
    let mut e = lines_engine();
    let refund = |key: &str, lines: Value| {
        json!({"kind": "refund", "key": key, "time": "2026-03-02T00:00:00Z",
               "source": {"platform": "pos", "program": "brand-l"},
               "user": m1(), "order_id": "O1", "amount": "100", "lines": lines})
    };
    // A line the order does not have: the event is refused, naming the field.
    let before = e.snapshot();
    let err = e
        .ingest_json(&refund("rf0", json!([{"sku": "Z", "qty": 1}])).to_string())
        .unwrap_err();
    assert_eq!(err.field(), Some("lines[0].sku"), "{err}");
    let err = e
        .ingest_json(&refund("rf0", json!([{"sku": "A", "qty": -1}])).to_string())
        .unwrap_err();
    assert_eq!(err.field(), Some("lines[0].qty"), "{err}");
    assert!(before == e.snapshot());
    // The shoes back: their 300 points, not the amount's share (100 / 180 of 420 = 233).
    ingest(&mut e, refund("rf1", json!([{"sku": "A", "qty": 1}])));
    ok(&mut e, "post_due", json!({"now": "2026-03-09T00:00:00Z"}));
    assert_eq!(bal(&mut e, "brand-l"), 120);
    // A refund of an order that was never ingested is refused: kept for the other modules,
    // they would count a refund of nothing.
    let mut other = refund("rf2", json!([{"sku": "A", "qty": 1}]));
    other["order_id"] = json!("elsewhere");
    let before = e.snapshot();
    let err = e.ingest_json(&other.to_string()).unwrap_err();
    assert_eq!(err.field(), Some("order_id"), "{err}");
    assert!(before == e.snapshot());
    assert_eq!(bal(&mut e, "brand-l"), 120);
    // An order without lines: a refund naming a line is refused (the order has no such line,
    // nothing was paid for it); by amount it gives back the amount's share (100 × 1.5 = 150
    // pending, half refunded).
    let mut o2 = order("ev2", "O2", "100", "2026-03-10T00:00:00Z", json!([]));
    o2["source"]["program"] = json!("brand-l");
    ingest(&mut e, o2);
    let mut r2 = refund("rf3", json!([{"sku": "A", "qty": 1}]));
    r2["order_id"] = json!("O2");
    r2["amount"] = json!("50");
    r2["time"] = json!("2026-03-11T00:00:00Z");
    let err = e.ingest_json(&r2.to_string()).unwrap_err();
    assert_eq!(err.field(), Some("lines[0].sku"), "{err}");
    r2["lines"] = json!([]);
    ingest(&mut e, r2);
    ok(&mut e, "post_due", json!({"now": "2026-03-20T00:00:00Z"}));
    assert_eq!(bal(&mut e, "brand-l"), 120 + 75);
    e.state.loyalty.check_invariants().unwrap();
}

/// repro_negative_balance: the default clawback left a balance of −30. SPEC §6: a
/// balance never goes below zero unless the program allows it; debt only where the program
/// says `"clawback": "debt"`.
#[test]
fn a_refund_takes_a_balance_below_zero_only_where_the_program_allows_debt() {
    for (program, expected) in [
        (json!({"id": "p"}), 0),
        (json!({"id": "p", "clawback": "balance"}), 0),
        (json!({"id": "p", "clawback": "none"}), 0),
        (json!({"id": "p", "clawback": "debt"}), -30),
    ] {
        let mut e = Engine::default();
        ok(
            &mut e,
            "create_program",
            json!({ "program": program.clone() }),
        );
        let at = |d: u32| format!("2026-01-{d:02}T00:00:00Z");
        ok(
            &mut e,
            "earn",
            json!({"user": m1(), "program": "p", "points": 100, "key": "k1", "time": at(2)}),
        );
        ok(
            &mut e,
            "spend",
            json!({"user": m1(), "program": "p", "points": 30, "key": "s1", "time": at(3)}),
        );
        let r = ok(
            &mut e,
            "refund",
            json!({"order_key": "k1", "key": "r1", "time": at(4)}),
        );
        assert_eq!(r["points"], json!(70), "{program}");
        let b = ok(&mut e, "balance", json!({"user": m1(), "program": "p"}));
        assert_eq!(b, json!(expected), "{program}");
        if expected == 0 {
            fails(
                &mut e,
                "spend",
                json!({"user": m1(), "program": "p", "points": 1, "key": "s2", "time": at(5)}),
                ErrorCode::InsufficientPoints,
            );
        }
        e.state.loyalty.check_invariants().unwrap();
    }
}

/// repro_backdated_upgrade: a late-arriving spend dated before an evaluation that
/// downgraded the member re-upgraded them although the current rolling-12-month spend (500)
/// is below the threshold (1,000). An upgrade is judged on the window as it stands now.
#[test]
fn a_backdated_spend_does_not_upgrade_on_a_window_that_has_moved_on() {
    let mut e = Engine::default();
    ok(
        &mut e,
        "create_program",
        json!({"program": {"id": "p", "tiers": {"basis": "spend", "window": "rolling_12_months",
            "levels": [{"name": "silver", "threshold": "0"}, {"name": "gold", "threshold": "1000"}]}}}),
    );
    let spend = |e: &mut Engine, key: &str, amount: &str, time: &str| {
        ok(
            e,
            "record_spend",
            json!({"user": m1(), "program": "p", "amount": amount, "key": key, "time": time}),
        )
    };
    let r = spend(&mut e, "sp1", "1200.00", "2025-01-15T02:00:00Z");
    assert_eq!(r["tier"], json!("gold"));
    ok(
        &mut e,
        "evaluate_tiers",
        json!({"now": "2026-01-16T02:00:00Z"}),
    );
    let tier = |e: &mut Engine, now: &str| {
        ok(e, "tier", json!({"user": m1(), "program": "p", "now": now}))
    };
    assert_eq!(
        tier(&mut e, "2026-01-16T02:00:00Z")["tier"],
        json!("silver")
    );
    // Arrives late, dated 2025-12-01: counted where its date puts it, but the window now
    // (to 2026-01-16) holds 500, not the 1,700 it held on 2025-12-01.
    let r = spend(&mut e, "late-pos-upload", "500.00", "2025-12-01T02:00:00Z");
    assert_eq!(
        (&r["tier"], &r["upgraded"]),
        (&json!("silver"), &json!(false))
    );
    let t = tier(&mut e, "2026-01-17T02:00:00Z");
    assert_eq!(
        (&t["tier"], &t["metric"]),
        (&json!("silver"), &json!("500.00")),
        "{t}"
    );
    // History stays in time order.
    let times: Vec<&str> = t["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Enough late spend to qualify now upgrades at once, dated now (the module's clock).
    let r = spend(&mut e, "late-2", "500.00", "2025-12-02T02:00:00Z");
    assert_eq!((&r["tier"], &r["upgraded"]), (&json!("gold"), &json!(true)));
    let t = tier(&mut e, "2026-01-17T02:00:00Z");
    let last = t["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["time"], json!("2026-01-16T02:00:00Z"), "{t}");
}
