//! Intake rules at the engine's front door: orders and refunds reconcile, money
//! has bounds and a precision, event times a window, idempotency compares canonical content.

use serde_json::{json, Value};

use crate::{Config, Engine, Error, ErrorCode, OneId};

const SRC: &str = r#"{"platform": "app", "program": "b"}"#;

fn src() -> Value {
    serde_json::from_str(SRC).unwrap()
}

fn m(member: &str) -> Value {
    json!({"kind": "member_no", "value": member})
}

fn order(key: &str, order_id: &str, amount: &str) -> Value {
    json!({"kind": "order", "key": key, "time": "2026-03-01T10:00:00Z", "source": src(),
           "user": m("M1"), "order_id": order_id, "amount": amount, "channel": "app",
           "lines": [{"sku": "x", "category": "tea", "price": amount, "qty": 1}]})
}

fn refund(key: &str, order_id: &str, amount: &str) -> Value {
    json!({"kind": "refund", "key": key, "time": "2026-03-04T10:00:00Z", "source": src(),
           "user": m("M1"), "order_id": order_id, "amount": amount})
}

fn ingest(e: &mut Engine, v: &Value) -> Result<crate::Receipt, Error> {
    e.ingest_json(&v.to_string())
}

fn call(e: &mut Engine, method: &str, args: Value) -> Result<Value, Error> {
    e.call_json(method, &args.to_string())
        .map(|s| serde_json::from_str(&s).unwrap())
}

/// Refused, with `code` at `field`, and nothing changed.
fn refused(e: &mut Engine, v: &Value, code: ErrorCode, field: &str) -> Error {
    let before = e.snapshot();
    let err = ingest(e, v).unwrap_err();
    assert_eq!((err.code(), err.field()), (code, Some(field)), "{err}");
    assert!(before == e.snapshot(), "a refused event changed the state");
    err
}

/// An engine with program "b" earning a point a unit on orders.
fn earning_engine() -> Engine {
    let mut e = Engine::default();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "b", "earn": {"points_per_unit": "1"}}}),
    )
    .unwrap();
    e
}

fn aggregates(e: &mut Engine) -> Value {
    call(e, "profile", json!({"user": m("M1")})).unwrap()["aggregates"].clone()
}

/// repro_refund_unchecked: a 100.00 order took 6,199.00 of refunds.
#[test]
fn refunds_never_exceed_what_was_paid() {
    let mut e = earning_engine();
    ingest(&mut e, &order("o1", "O1", "100.00")).unwrap();
    ingest(&mut e, &refund("rf1", "O1", "60.00")).unwrap();
    let err = refused(
        &mut e,
        &refund("rf2", "O1", "40.01"),
        ErrorCode::OutOfRange,
        "amount",
    );
    assert!(err.to_string().contains("60.00 refunded before"), "{err}");
    refused(
        &mut e,
        &refund("rf3", "O1", "5000.00"),
        ErrorCode::OutOfRange,
        "amount",
    );
    refused(
        &mut e,
        &refund("rf4", "NOPE", "999.00"),
        ErrorCode::InvalidEvent,
        "order_id",
    );
    ingest(&mut e, &refund("rf2b", "O1", "40.00")).unwrap();
    refused(
        &mut e,
        &refund("rf5", "O1", "0.01"),
        ErrorCode::OutOfRange,
        "amount",
    );
    let a = aggregates(&mut e);
    assert_eq!(
        (&a["orders"], &a["gmv"], &a["refunds"], &a["refund_amount"]),
        (&json!(1), &json!("100.00"), &json!(2), &json!("100.00"))
    );
    // A replay of an accepted refund is the same event, not a refund too many.
    assert!(
        ingest(&mut e, &refund("rf1", "O1", "60.00"))
            .unwrap()
            .duplicate
    );
    // The loyalty command too: refund(amount=150.00) of a 100.00 order is refused.
    let mut e = earning_engine();
    ingest(&mut e, &order("o1", "O1", "100.00")).unwrap();
    let before = e.snapshot();
    let err = call(
        &mut e,
        "refund_amount",
        json!({"order_key": "O1", "key": "r1", "amount": "150.00", "time": "2026-03-02T00:00:00Z"}),
    )
    .unwrap_err();
    assert_eq!(err.field(), Some("amount"), "{err}");
    assert!(before == e.snapshot());
    let r = call(
        &mut e,
        "refund_amount",
        json!({"order_key": "O1", "key": "r1", "amount": "100.00", "time": "2026-03-02T00:00:00Z"}),
    )
    .unwrap();
    assert_eq!(r["points"], json!(100));
    // Its replay is the same refund.
    call(
        &mut e,
        "refund_amount",
        json!({"order_key": "O1", "key": "r1", "amount": "100.00", "time": "2026-03-02T00:00:00Z"}),
    )
    .unwrap();
}

/// A refund names an order of its source program and of its person.
#[test]
fn a_refund_names_an_order_of_its_program_and_person() {
    let mut e = Engine::default();
    ingest(&mut e, &order("o1", "O1", "100.00")).unwrap();
    let mut other_program = refund("rf1", "O1", "1.00");
    other_program["source"]["program"] = json!("c");
    refused(&mut e, &other_program, ErrorCode::InvalidEvent, "order_id");
    let mut someone_else = refund("rf1", "O1", "1.00");
    someone_else["user"] = m("M2");
    let err = refused(&mut e, &someone_else, ErrorCode::InvalidEvent, "user");
    assert!(err.to_string().contains("a new person"), "{err}");
    ingest(
        &mut e,
        &json!({"kind": "register", "key": "r2", "time": "2026-03-01T00:00:00Z",
        "source": src(), "user": m("M2")}),
    )
    .unwrap();
    refused(&mut e, &someone_else, ErrorCode::InvalidEvent, "user");
    // After a merge the order's person is the survivor, whichever identifier the refund uses.
    ingest(
        &mut e,
        &json!({"kind": "identify", "key": "i1", "time": "2026-03-02T00:00:00Z",
        "source": src(), "ids": [m("M1"), m("M2")]}),
    )
    .unwrap();
    ingest(&mut e, &someone_else).unwrap();
}

/// Per line: units at most those bought, money at most the line's value.
#[test]
fn line_refunds_are_bounded_per_line() {
    let mut e = Engine::default();
    let mut o = order("o1", "O1", "250.00");
    o["lines"] = json!([{"sku": "a", "price": "50.00", "qty": 2},
                        {"sku": "b", "price": "150.00", "qty": 1}]);
    ingest(&mut e, &o).unwrap();
    let with = |key: &str, amount: &str, lines: Value| {
        let mut r = refund(key, "O1", amount);
        r["lines"] = lines;
        r
    };
    ingest(
        &mut e,
        &with("r1", "50.00", json!([{"sku": "a", "qty": 1}])),
    )
    .unwrap();
    refused(
        &mut e,
        &with("r2", "100.00", json!([{"sku": "a", "qty": 2}])),
        ErrorCode::OutOfRange,
        "lines[0].qty",
    );
    // Money without units: 50 refunded by the unit above, 50.01 more is above the line's 100.
    refused(
        &mut e,
        &with("r3", "50.01", json!([{"sku": "a", "amount": "50.01"}])),
        ErrorCode::OutOfRange,
        "lines[0].amount",
    );
    refused(
        &mut e,
        &with("r4", "1.00", json!([{"sku": "z", "qty": 1}])),
        ErrorCode::InvalidEvent,
        "lines[0].sku",
    );
    refused(
        &mut e,
        &with("r5", "1.00", json!([{"line": 7, "qty": 1}])),
        ErrorCode::InvalidEvent,
        "lines[0].line",
    );
    ingest(
        &mut e,
        &with(
            "r6",
            "200.00",
            json!([{"sku": "a", "qty": 1}, {"line": 1, "qty": 1}]),
        ),
    )
    .unwrap();
    // Everything is back: the order has nothing left.
    refused(
        &mut e,
        &refund("r7", "O1", "0.01"),
        ErrorCode::OutOfRange,
        "amount",
    );
}

/// repro_dup_order_id: one order id under two keys counted twice in profile, RFM, journey and
/// repurchase, once in loyalty. Now the second key is refused and every module counts one.
#[test]
fn an_order_id_counts_once_per_source_program() {
    let mut e = earning_engine();
    ingest(&mut e, &order("pipeline-a:O1", "O1", "100.00")).unwrap();
    let err = refused(
        &mut e,
        &order("pipeline-b:O1", "O1", "100.00"),
        ErrorCode::DuplicateOrder,
        "order_id",
    );
    assert!(
        matches!(&err, Error::DuplicateOrder { first_key, .. } if first_key == "pipeline-a:O1")
    );
    // The same id from another source program is another order.
    let mut elsewhere = order("shop-c:O1", "O1", "30.00");
    elsewhere["source"]["program"] = json!("c");
    ingest(&mut e, &elsewhere).unwrap();
    let a = aggregates(&mut e);
    assert_eq!((&a["orders"], &a["gmv"]), (&json!(2), &json!("130.00")));
    let rfm = call(&mut e, "rfm", json!({"as_of": "2026-04-01T00:00:00Z"})).unwrap();
    assert_eq!(
        (&rfm[0]["frequency"], &rfm[0]["monetary"]),
        (&json!(2), &json!(130.0)),
        "{rfm}"
    );
    let journey = call(&mut e, "journey", json!({"user": m("M1")})).unwrap();
    let orders: Vec<&Value> = journey["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "order")
        .collect();
    assert_eq!(orders.len(), 2);
    let rep = call(&mut e, "repurchase", json!({})).unwrap();
    assert_eq!(rep["periods"][0]["gmv"], json!("130.00"), "{rep}");
    assert_eq!(
        call(&mut e, "balance", json!({"user": m("M1"), "program": "b"})).unwrap(),
        json!(100)
    );
}

/// Amounts at intake: plain decimals, at most the currency's minor-unit digits, at most 10^12.
#[test]
fn amounts_have_bounds_and_a_precision() {
    let mut e = Engine::default();
    refused(
        &mut e,
        &order("o1", "O1", "10.005"),
        ErrorCode::OutOfRange,
        "amount",
    );
    let mut o = order("o1", "O1", "10.00");
    o["lines"][0]["price"] = json!("3.333");
    refused(&mut e, &o, ErrorCode::OutOfRange, "lines[0].price");
    // "1e5" is not a plain decimal; a number is not a string.
    refused(
        &mut e,
        &order("o1", "O1", "1e5"),
        ErrorCode::InvalidEvent,
        "amount",
    );
    let mut o = order("o1", "O1", "10.00");
    o["amount"] = json!(10.0);
    refused(&mut e, &o, ErrorCode::InvalidEvent, "amount");
    // The largest amount is accepted, a cent more is not, nor is a 29-digit one.
    ingest(&mut e, &order("o-max", "OMAX", "1000000000000.00")).unwrap();
    refused(
        &mut e,
        &order("o2", "O2", "1000000000000.01"),
        ErrorCode::OutOfRange,
        "amount",
    );
    refused(
        &mut e,
        &order("o3", "O3", "79228162514264337593543950335"),
        ErrorCode::OutOfRange,
        "amount",
    );
    // A line's value is bounded too.
    let mut o = order("o4", "O4", "1.00");
    o["lines"] = json!([{"sku": "x", "price": "1000000.00", "qty": 2000000}]);
    refused(&mut e, &o, ErrorCode::OutOfRange, "lines[0]");
    // Trailing zeros do not count.
    ingest(&mut e, &order("o5", "O5", "10.000")).unwrap();
    refused(
        &mut e,
        &refund("rf1", "O5", "1.001"),
        ErrorCode::OutOfRange,
        "amount",
    );
    let mut r = refund("rf1", "O5", "1.00");
    r["lines"] = json!([{"sku": "x", "amount": "1.001"}]);
    refused(&mut e, &r, ErrorCode::OutOfRange, "lines[0].amount");
    // A currency without a minor unit.
    let mut yen = Engine::new(Config::builder().currency_minor_units(0).build().unwrap());
    refused(
        &mut yen,
        &order("o1", "O1", "10.50"),
        ErrorCode::OutOfRange,
        "amount",
    );
    ingest(&mut yen, &order("o1", "O1", "1050.00")).unwrap();
    let cart =
        json!({"time": "2026-03-02T10:00:00Z", "lines": [{"sku": "x", "price": "9.90", "qty": 1}]});
    let err = call(&mut yen, "quote", json!({"cart": cart})).unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        (ErrorCode::OutOfRange, Some("cart.lines[0].price"))
    );
    call(&mut yen, "create_program", json!({"program": {"id": "b"}})).unwrap();
    let err = call(
        &mut yen,
        "record_spend",
        json!({"user": m("M1"), "program": "b", "amount": "1.5", "key": "s1", "time": "2026-03-02T00:00:00Z"}),
    )
    .unwrap_err();
    assert_eq!(err.field(), Some("amount"), "{err}");
}

/// Accepted event times lie in [1970-01-01, 2100-01-01) UTC.
#[test]
fn event_times_lie_in_the_window() {
    let mut e = Engine::default();
    let at = |key: &str, time: &str| {
        json!({"kind": "activity", "key": key, "time": time, "source": src(), "user": m("M1"),
               "type": "login"})
    };
    for (i, t) in [
        "0001-01-01T00:00:00Z",
        "9999-12-31T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        refused(
            &mut e,
            &at(&format!("a{i}"), t),
            ErrorCode::OutOfRange,
            "time",
        );
    }
    ingest(&mut e, &at("first", "1970-01-01T00:00:00Z")).unwrap();
    ingest(&mut e, &at("last", "2099-12-31T23:59:59.999Z")).unwrap();
}

/// Idempotency compares canonical content: numerically equal amounts and reordered
/// identifiers are the same event; anything else is a conflict.
#[test]
fn idempotency_compares_canonical_content() {
    let mut e = Engine::default();
    ingest(&mut e, &order("o1", "O1", "10.0")).unwrap();
    for same in ["10", "10.00", "10.000"] {
        let mut o = order("o1", "O1", same);
        o["lines"][0]["price"] = json!("10.0");
        let r = ingest(&mut e, &o).unwrap();
        assert!(r.duplicate, "{same}");
        o["lines"][0]["price"] = json!(same);
        assert!(ingest(&mut e, &o).unwrap().duplicate, "{same}");
    }
    let before = e.snapshot();
    for other in ["10.01", "1.0"] {
        let err = ingest(&mut e, &order("o1", "O1", other)).unwrap_err();
        assert_eq!(err.code(), ErrorCode::DuplicateKey, "{other}");
    }
    let mut swapped = order("o1", "O1", "10.0");
    swapped["lines"] =
        json!([{"sku": "y", "price": "5", "qty": 1}, {"sku": "x", "price": "5", "qty": 1}]);
    assert_eq!(
        ingest(&mut e, &swapped).unwrap_err().code(),
        ErrorCode::DuplicateKey
    );
    let ids = |a: Value, b: Value| {
        json!({"kind": "identify", "key": "i1", "time": "2026-03-01T00:00:00Z", "source": src(),
               "ids": [a, b]})
    };
    let phone = json!({"kind": "phone", "value": "13800138000"});
    let device = json!({"kind": "device_id", "value": "a9f3"});
    ingest(&mut e, &ids(phone.clone(), device.clone())).unwrap();
    let before_ids = e.snapshot();
    assert!(
        ingest(&mut e, &ids(device.clone(), phone.clone()))
            .unwrap()
            .duplicate
    );
    // Identifiers are normalized: another spelling of the phone is the same identifier.
    let spelled = json!({"kind": "phone", "value": "+86 138-0013-8000"});
    assert!(
        ingest(&mut e, &ids(device.clone(), spelled))
            .unwrap()
            .duplicate
    );
    let other = json!({"kind": "device_id", "value": "b000"});
    assert_eq!(
        ingest(&mut e, &ids(phone, other)).unwrap_err().code(),
        ErrorCode::DuplicateKey
    );
    assert!(before_ids == e.snapshot());
    assert!(before != e.snapshot());
}

/// A receipt restored from a snapshot of a build before canonical fingerprints holds the
/// print of the event as it was given: an exact resend is still the same event.
#[test]
fn a_receipt_with_the_print_of_the_event_as_given_still_matches() {
    let mut e = Engine::default();
    let o = order("o1", "O1", "10.0");
    let r = ingest(&mut e, &o).unwrap();
    let event = crate::Event::from_json(&o.to_string()).unwrap();
    assert_ne!(event.fingerprint(), event.fingerprint_as_given());
    // What an older build stored.
    e.state.receipts.insert(&r, event.fingerprint_as_given());
    assert!(ingest(&mut e, &o).unwrap().duplicate);
    assert_eq!(
        ingest(&mut e, &order("o1", "O1", "10.01"))
            .unwrap_err()
            .code(),
        ErrorCode::DuplicateKey
    );
}

/// Values above the bounds can only come from a journal of an older build (replayed as it
/// was accepted): the analyses then answer with a typed error, never a panic, and the
/// models (in f64) answer.
#[test]
fn amounts_beyond_the_bounds_from_an_old_journal_give_typed_errors() {
    let mut e = Engine::default();
    let big = "79228162514264337593543950335";
    e.replaying = true;
    for k in ["big1", "big2"] {
        let mut o = order(k, k, big);
        o["lines"] = json!([{"sku": "s", "category": "tea", "price": big, "qty": 2}]);
        ingest(&mut e, &o).unwrap();
    }
    e.replaying = false;
    for method in ["repurchase", "metric_tree"] {
        let err = call(&mut e, method, json!({})).unwrap_err();
        assert_eq!(
            (err.code(), err.field()),
            (ErrorCode::OutOfRange, Some("amount")),
            "{method}"
        );
    }
    call(
        &mut e,
        "preference_shares",
        json!({"as_of": "2026-03-05T00:00:00Z", "dimension": "category"}),
    )
    .unwrap();
    call(
        &mut e,
        "cross_table",
        json!({"as_of": "2026-03-05T00:00:00Z", "rows": "category", "cols": "price_band", "price_bands": ["10", "100"]}),
    )
    .unwrap();
    // The book kept the first of the two: a refund is measured against it.
    assert_eq!(e.state.orders.len(), 2);
}

/// An erasure forgets the person's orders (their ids and keys are personal data).
#[test]
fn erasure_forgets_the_orders_of_the_person() {
    let mut e = Engine::default();
    ingest(&mut e, &order("o1", "O1", "10.00")).unwrap();
    let mut o2 = order("o2", "O2", "10.00");
    o2["user"] = m("M2");
    ingest(&mut e, &o2).unwrap();
    call(
        &mut e,
        "erase",
        json!({"oneid": 1, "actor": "dpo", "time": "2026-03-05T00:00:00Z"}),
    )
    .unwrap();
    assert_eq!(e.state.orders.len(), 1);
    let book = serde_json::to_string(&e.state.orders).unwrap();
    assert!(
        !book.contains("\"O1\"") && !book.contains("\"o1\""),
        "{book}"
    );
    assert_eq!(e.state.orders.totals(OneId(2), |o| o).orders, 1);
}

/// One step of [`every_module_agrees_with_the_order_book`].
#[derive(Debug, Clone)]
enum Step {
    /// Member `m` orders id `id` in program `p` (0: "b", 1: "c") for `cents`, one line per
    /// entry of `lines` (unit cents, qty) when not empty.
    Order {
        m: u8,
        p: u8,
        id: u8,
        cents: i64,
        lines: Vec<(i64, u32)>,
    },
    /// Member `m` refunds `cents` of order `id` of program `p`.
    Refund { m: u8, p: u8, id: u8, cents: i64 },
    /// Members `a` and `b` are seen together: their persons merge.
    Link { a: u8, b: u8 },
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        5 => (0u8..4, 0u8..2, 0u8..6, 1i64..50_000, proptest::collection::vec((0i64..20_000, 1u32..4), 0..3))
            .prop_map(|(m, p, id, cents, lines)| Step::Order { m, p, id, cents, lines }),
        4 => (0u8..4, 0u8..2, 0u8..7, 1i64..30_000)
            .prop_map(|(m, p, id, cents)| Step::Refund { m, p, id, cents }),
        1 => (0u8..4, 0u8..4).prop_map(|(a, b)| Step::Link { a, b }),
    ]
}

fn money(cents: i64) -> String {
    crate::Decimal::new(cents, 2).to_string()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 96, ..Default::default() })]

    /// The profile, the models, the analyses and loyalty agree on every person's
    /// order count, GMV and refunds, whatever orders and refunds arrive (duplicates, refunds
    /// of unknown orders and above what was paid among them: refused, changing nothing), and
    /// across merges. The order book is the reference.
    #[test]
    fn every_module_agrees_with_the_order_book(steps in proptest::collection::vec(step(), 1..50)) {
        use proptest::prelude::*;
        use std::collections::BTreeMap;
        use crate::Decimal;
        let mut e = Engine::default();
        // 100 points a unit: every order of at least 0.01 earns, so loyalty sees it. Program c
        // is below b: every order, of b or of c, earns once in b (where order ids of the two
        // programs meet), and c's orders earn in c too.
        for (p, parent) in [("b", None), ("c", Some("b"))] {
            let level = if parent.is_some() { "store" } else { "brand" };
            call(&mut e, "create_program", json!({"program": {"id": p, "level": level,
                "parent": parent, "earn": {"points_per_unit": "100"}}})).unwrap();
        }
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap();
        for (k, s) in steps.iter().enumerate() {
            let time = (t0 + chrono::Duration::minutes(k as i64)).to_rfc3339();
            let program = |p: u8| ["b", "c"][usize::from(p)];
            let member = |n: u8| m(&format!("M{n}"));
            let (event, allowed): (Value, &[ErrorCode]) = match s {
                Step::Order { m: who, p, id, cents, lines } => {
                    let mut o = json!({"kind": "order", "key": format!("k{k}"), "time": time,
                        "source": {"platform": "app", "program": program(*p)}, "user": member(*who),
                        "order_id": format!("O{id}"), "amount": money(*cents)});
                    if !lines.is_empty() {
                        o["lines"] = lines.iter().enumerate()
                            .map(|(i, (c, q))| json!({"sku": format!("s{i}"), "category": "tea", "price": money(*c), "qty": q}))
                            .collect();
                    }
                    (o, &[ErrorCode::DuplicateOrder])
                }
                Step::Refund { m: who, p, id, cents } => (
                    json!({"kind": "refund", "key": format!("k{k}"), "time": time,
                        "source": {"platform": "app", "program": program(*p)}, "user": member(*who),
                        "order_id": format!("O{id}"), "amount": money(*cents)}),
                    &[ErrorCode::InvalidEvent, ErrorCode::OutOfRange],
                ),
                Step::Link { a, b } if a != b => (
                    json!({"kind": "identify", "key": format!("k{k}"), "time": time,
                        "source": {"platform": "app", "program": "b"}, "ids": [member(*a), member(*b)]}),
                    &[],
                ),
                Step::Link { .. } => continue,
            };
            let before = e.snapshot();
            if let Err(err) = ingest(&mut e, &event) {
                prop_assert!(allowed.contains(&err.code()), "{event}: {err}");
                prop_assert!(before == e.snapshot(), "refused but changed: {event}");
            }
        }
        let identity = e.state.identity.clone();
        let canonical = |o: OneId| identity.canonical(o).unwrap_or(o);
        // Loyalty: each earn on an order in program b (key `order:b:<id>` for b's orders,
        // `order:["b","c","<id>"]` for c's) and the money its refunds gave back, by the person
        // holding it.
        let loyalty_state = e.state.loyalty.clone();
        let ledger = loyalty_state.ledger();
        let mut loyalty: BTreeMap<OneId, (u64, Decimal, Decimal)> = BTreeMap::new();
        for op in ledger.ops() {
            let in_b = op.key.starts_with("order:b:") || op.key.starts_with(r#"order:["b","c","#);
            if op.kind == crate::loyalty::ledger::OpKind::Earn && in_b {
                let t = &ledger.transfers()[(op.first - 1) as usize];
                let crate::loyalty::AccountKind::Member(who) = ledger.accounts()[t.credit.0 as usize].kind else {
                    return Err(TestCaseError::fail("an earn credits a member"));
                };
                let who = canonical(who);
                let l = loyalty.entry(who).or_default();
                l.0 += 1;
                l.1 += op.money.unwrap_or_default();
            }
        }
        for op in ledger.ops() {
            if op.kind == crate::loyalty::ledger::OpKind::Refund {
                // Every cent refunded gives back a point (100 a unit): the refund moved points
                // from the account of the person it refunded.
                prop_assert!(op.count > 0, "a refund that moved nothing: {:?}", op);
                let t = &ledger.transfers()[(op.first - 1) as usize];
                let crate::loyalty::AccountKind::Member(who) = ledger.accounts()[t.debit.0 as usize].kind else {
                    return Err(TestCaseError::fail("a refund debits a member"));
                };
                loyalty.entry(canonical(who)).or_default().2 += op.money.unwrap_or_default();
            }
        }
        let rfm: Value = call(&mut e, "rfm", json!({"as_of": "2026-06-01T00:00:00Z"})).unwrap();
        let persons: Vec<OneId> = identity.persons().map(|(o, _)| o).collect();
        for &p in &persons {
            let book = e.state.orders.totals(p, canonical);
            let a = call(&mut e, "profile", json!({"user": {"oneid": p.0}})).unwrap()["aggregates"].clone();
            let dec = |v: &Value| v.as_str().unwrap().parse::<Decimal>().unwrap();
            prop_assert_eq!(a["orders"].as_u64(), Some(book.orders), "profile orders of {}", p);
            prop_assert_eq!(dec(&a["gmv"]), book.gmv, "profile gmv of {}", p);
            prop_assert_eq!(a["refunds"].as_u64(), Some(book.refunds), "profile refunds of {}", p);
            prop_assert_eq!(dec(&a["refund_amount"]), book.refunded, "profile refunds of {}", p);
            // Models: RFM over every order (gross: refunds are not the models' business).
            let row = rfm.as_array().unwrap().iter().find(|r| r["oneid"] == json!(p.0));
            let (freq, monetary) = row.map_or((0, 0.0), |r| (r["frequency"].as_u64().unwrap(), r["monetary"].as_f64().unwrap()));
            prop_assert_eq!(freq, book.orders, "rfm frequency of {}", p);
            let gmv = rust_decimal::prelude::ToPrimitive::to_f64(&book.gmv).unwrap();
            prop_assert!((monetary - gmv).abs() <= 1e-6 * gmv.max(1.0), "rfm monetary of {p}: {monetary} vs {gmv}");
            // Analytics: the journey's orders and refunds.
            let journey = call(&mut e, "journey", json!({"user": {"oneid": p.0}})).unwrap();
            let steps = journey["steps"].as_array().unwrap();
            let of = |kind: &str| steps.iter().filter(|s| s["kind"] == kind).collect::<Vec<_>>();
            let sum = |v: &[&Value]| v.iter().map(|s| dec(&s["amount"])).sum::<Decimal>();
            prop_assert_eq!(of("order").len() as u64, book.orders, "journey orders of {}", p);
            prop_assert_eq!(sum(&of("order")), book.gmv, "journey gmv of {}", p);
            prop_assert_eq!(of("refund").len() as u64, book.refunds, "journey refunds of {}", p);
            prop_assert_eq!(sum(&of("refund")), book.refunded, "journey refunds of {}", p);
            // Loyalty.
            let l = loyalty.get(&p).copied().unwrap_or_default();
            prop_assert_eq!((l.0, l.1, l.2), (book.orders, book.gmv, book.refunded), "loyalty of {}", p);
        }
        // The pool: repurchase's GMV is every order's.
        let rep = call(&mut e, "repurchase", json!({})).unwrap();
        let pool: Decimal = rep["periods"].as_array().unwrap().iter()
            .map(|r| r["gmv"].as_str().unwrap().parse::<Decimal>().unwrap()).sum();
        let book: Decimal = persons.iter().map(|o| e.state.orders.totals(*o, canonical).gmv).sum();
        prop_assert_eq!(pool, book);
        e.check_invariants().map_err(|b| TestCaseError::fail(format!("{b:?}")))?;
    }
}

/// Found by `every_module_agrees_with_the_order_book`: loyalty tied earns to the order id
/// alone, so a refund of order "O0" of program c also gave back the points program b's "O0"
/// (another person's order) had earned. A refund event gives back its own order's earns.
#[test]
fn a_refund_gives_back_the_points_of_its_own_programs_order_only() {
    let mut e = Engine::default();
    for p in ["b", "c"] {
        call(
            &mut e,
            "create_program",
            json!({"program": {"id": p, "earn": {"points_per_unit": "1"}}}),
        )
        .unwrap();
    }
    let mut in_c = order("o2", "O1", "50.00");
    in_c["source"]["program"] = json!("c");
    in_c["user"] = m("M2");
    ingest(&mut e, &order("o1", "O1", "100.00")).unwrap();
    ingest(&mut e, &in_c).unwrap();
    let mut r = refund("r1", "O1", "50.00");
    r["source"]["program"] = json!("c");
    r["user"] = m("M2");
    ingest(&mut e, &r).unwrap();
    let bal = |e: &mut Engine, who: &str, p: &str| {
        call(e, "balance", json!({"user": m(who), "program": p})).unwrap()
    };
    assert_eq!(bal(&mut e, "M1", "b"), json!(100));
    assert_eq!(bal(&mut e, "M2", "c"), json!(0));
}

/// Order ids are unique per source program, so programs below one parent may each have an
/// order "O1": each earns in the parent (loyalty keyed the parent's earn by the order id alone,
/// so only the first did, and the profile counted three orders where loyalty counted one),
/// and a refund gives back its own order's points only.
#[test]
fn orders_of_sibling_programs_with_one_id_each_earn_in_their_parent() {
    let mut e = Engine::default();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "brand", "earn": {"points_per_unit": "1"}}}),
    )
    .unwrap();
    for store in ["s1", "s2"] {
        call(
            &mut e,
            "create_program",
            json!({"program": {"id": store, "level": "store", "parent": "brand"}}),
        )
        .unwrap();
    }
    let of = |key: &str, program: &str, who: &str, kind: fn(&str, &str, &str) -> Value| {
        let mut v = kind(key, "O1", "100.00");
        v["source"]["program"] = json!(program);
        v["user"] = m(who);
        v
    };
    for (program, who) in [("s1", "M1"), ("s2", "M2"), ("brand", "M3")] {
        ingest(&mut e, &of(&format!("o-{program}"), program, who, order)).unwrap();
    }
    let bal = |e: &mut Engine, who: &str| {
        call(e, "balance", json!({"user": m(who), "program": "brand"})).unwrap()
    };
    for who in ["M1", "M2", "M3"] {
        assert_eq!(bal(&mut e, who), json!(100), "{who}");
    }
    ingest(&mut e, &of("r-s2", "s2", "M2", refund)).unwrap();
    let balances: Vec<Value> = ["M1", "M2", "M3"].iter().map(|w| bal(&mut e, w)).collect();
    assert_eq!(balances, [json!(100), json!(0), json!(100)]);
}

/// An order whose points would not fit a member's balance was accepted and earned nothing,
/// silently: it is refused at intake, naming the amount, and changes nothing.
#[test]
fn an_order_whose_points_do_not_fit_a_balance_is_refused() {
    let mut e = Engine::default();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "b", "earn": {"points_per_unit": "100000000"}}}),
    )
    .unwrap();
    // 10^12 × 10^8 points: more than an i64.
    let err = refused(
        &mut e,
        &order("o1", "O1", "1000000000000.00"),
        ErrorCode::OutOfRange,
        "amount",
    );
    assert!(err.to_string().contains("program \"b\""), "{err}");
    // 10^18 points each: nine fit a balance (≤ 9.22 × 10^18), the tenth would not.
    let mut e = Engine::default();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "b", "earn": {"points_per_unit": "1000000"}}}),
    )
    .unwrap();
    for i in 0..9 {
        ingest(
            &mut e,
            &order(&format!("o{i}"), &format!("O{i}"), "1000000000000.00"),
        )
        .unwrap();
    }
    let err = refused(
        &mut e,
        &order("o9", "O9", "1000000000000.00"),
        ErrorCode::OutOfRange,
        "amount",
    );
    assert!(
        err.to_string()
            .contains("1000000000000000000 points would take the member's balance"),
        "{err}"
    );
    let balance = call(&mut e, "balance", json!({"user": m("M1"), "program": "b"})).unwrap();
    assert_eq!(balance, json!(9_000_000_000_000_000_000i64));
    assert_eq!(aggregates(&mut e)["orders"], json!(9));
}

/// A book started from a snapshot of a build before it is partial: it does not know the orders
/// before it, whose earns in a program above their source were keyed `order:<program>:<id>`.
/// A refund of such an order still gives back those points.
#[test]
fn a_refund_of_an_order_from_before_the_book_finds_its_earn_under_the_old_key() {
    let mut e = Engine::default();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "brand", "earn": {"points_per_unit": "1"}}}),
    )
    .unwrap();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "s1", "level": "store", "parent": "brand"}}),
    )
    .unwrap();
    let mut o = order("o1", "O1", "100.00");
    o["source"]["program"] = json!("s1");
    ingest(&mut e, &o).unwrap();
    // The snapshot as the build before the book wrote it: format 3, no book, the old key.
    let mut json = Vec::new();
    e.write_snapshot_json(&mut json).unwrap();
    let mut old: Value = serde_json::from_slice(&json).unwrap();
    old["format"] = json!(3);
    old["state"].as_object_mut().unwrap().remove("orders");
    let old = serde_json::to_string(&old)
        .unwrap()
        .replace(r#"order:[\"brand\",\"s1\",\"O1\"]"#, "order:brand:O1");
    assert!(old.contains("\"order:brand:O1\""));
    let mut e = Engine::upgrade_snapshot(old.as_bytes()).unwrap();
    assert!(e.state.orders.is_partial());
    let bal =
        |e: &mut Engine| call(e, "balance", json!({"user": m("M1"), "program": "brand"})).unwrap();
    assert_eq!(bal(&mut e), json!(100));
    let mut r = refund("r1", "O1", "100.00");
    r["source"]["program"] = json!("s1");
    ingest(&mut e, &r).unwrap();
    assert_eq!(bal(&mut e), json!(0));
}
