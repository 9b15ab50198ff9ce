//! Intake rules of issue 25 at the engine's front door: orders and refunds reconcile, money
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

fn aggregates(e: &mut Engine) -> Value {
    call(e, "profile", json!({"user": m("M1")})).unwrap()["aggregates"].clone()
}

/// repro_refund_unchecked: a 100.00 order took 6,199.00 of refunds.
#[test]
fn refunds_never_exceed_what_was_paid() {
    let mut e = Engine::default();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "b", "earn": {"points_per_unit": "1"}}}),
    )
    .unwrap();
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
    let mut e = Engine::default();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "b", "earn": {"points_per_unit": "1"}}}),
    )
    .unwrap();
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
    let mut e = Engine::default();
    call(
        &mut e,
        "create_program",
        json!({"program": {"id": "b", "earn": {"points_per_unit": "1"}}}),
    )
    .unwrap();
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
