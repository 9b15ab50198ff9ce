//! No arithmetic in any module saturates or panics on an accepted value. A pool of
//! the largest accepted amounts (10^12 an order, a line, a cart), the largest counts (`qty`
//! up to `u32::MAX`) and the earliest and latest accepted times goes through every analysis
//! and model of the README's module table (lifecycle, analytics, models, campaigns, loyalty):
//! each answers or gives a typed error — never a panic, never `internal` — and the sums that
//! are exact are exact.

use std::panic::{catch_unwind, AssertUnwindSafe};

use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::{Engine, ErrorCode};

const TIMES: [&str; 4] = [
    "1970-01-01T00:00:00Z",
    "2099-12-31T23:59:59.999Z",
    "2026-03-01T10:00:00+08:00",
    "2000-02-29T16:00:00Z",
];

/// Amounts: the largest, a cent less, the smallest, nothing.
const AMOUNTS: [&str; 4] = ["1000000000000.00", "999999999999.99", "0.01", "0.00"];

/// Lines at the bounds: (price, qty) with price × qty ≤ 10^12.
const LINES: [(&str, u32); 4] = [
    ("1000000000000.00", 1),
    ("0.01", u32::MAX),
    ("0.00", u32::MAX),
    ("232.83", u32::MAX),
];

#[derive(Debug, Clone)]
struct Order {
    user: u8,
    amount: usize,
    lines: Vec<usize>,
    time: usize,
}

fn order() -> impl Strategy<Value = Order> {
    (
        0u8..3,
        0usize..4,
        proptest::collection::vec(0usize..4, 0..3),
        0usize..4,
    )
        .prop_map(|(user, amount, lines, time)| Order {
            user,
            amount,
            lines,
            time,
        })
}

fn member(u: u8) -> Value {
    json!({"kind": "member_no", "value": format!("M{u}")})
}

/// Every analysis and model, with arguments that make it look at everything.
fn queries() -> Vec<(&'static str, Value)> {
    let as_of = "2099-12-31T23:59:59.999Z";
    let mut q = vec![
        // lifecycle
        ("lifecycle_report", json!({})),
        ("active_rate_decomposition", json!({})),
        (
            "project_active_rate",
            json!({"target": 0.9, "lever": "new_users"}),
        ),
        ("lifecycle_stages", json!({})),
        // analytics
        ("funnel", json!({"steps": ["register", "order"]})),
        ("cohort_retention", json!({})),
        ("repurchase", json!({})),
        ("paths", json!({"from": "register", "to": "order"})),
        ("micro_conversions", json!({"conversion": "order"})),
        ("metric_tree", json!({})),
        (
            "data_warnings",
            json!({"metric": "gmv", "method": {"method": "rolling", "window": 2, "k": 2.0}}),
        ),
        ("community_stats", json!({})),
        // models
        ("rfm", json!({"as_of": as_of})),
        (
            "rfm",
            json!({"as_of": as_of, "monetary": "mean", "split": "median"}),
        ),
        ("churn_risk", json!({"as_of": as_of})),
        ("churn_model", json!({"as_of": as_of})),
        ("activity_scores", json!({"as_of": as_of})),
        (
            "high_value_users",
            json!({"as_of": as_of, "rule": {"min_orders": 1}}),
        ),
        // campaigns, loyalty
        ("channel_effectiveness", json!({})),
        ("coupon_counts", json!({})),
        ("evaluate_tiers", json!({"now": as_of})),
    ];
    for model in [
        "first_touch",
        "last_touch",
        "linear",
        "time_decay",
        "position_based",
    ] {
        q.push(("attribution", json!({"model": model})));
    }
    for d in [
        "category",
        "price_band",
        "channel",
        "activity_type",
        "function",
        "region",
    ] {
        q.push((
            "preference_shares",
            json!({"as_of": as_of, "dimension": d, "lookback_months": 1600, "price_bands": ["0.01", "1000000000000"]}),
        ));
    }
    q.push((
        "cross_table",
        json!({"as_of": as_of, "rows": "category", "cols": "price_band", "lookback_months": 1600,
               "price_bands": ["0.01", "1000000000000"]}),
    ));
    q.push((
        "cross_table",
        json!({"as_of": as_of, "rows": "region", "cols": "channel", "lookback_months": 1600}),
    ));
    for u in 0..3 {
        q.push(("journey", json!({ "user": member(u) })));
        q.push(("statement", json!({"user": member(u), "program": "b"})));
        q.push((
            "tier",
            json!({"user": member(u), "program": "b", "now": as_of}),
        ));
    }
    q
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_largest_accepted_values_pass_every_analysis_and_model(
        orders in proptest::collection::vec(order(), 1..14),
        refund_share in 0u8..3,
    ) {
        let mut e = Engine::default();
        let call = |e: &mut Engine, m: &str, a: &Value| -> Result<Value, crate::Error> {
            catch_unwind(AssertUnwindSafe(|| e.call_json(m, &a.to_string())))
                .unwrap_or_else(|_| panic!("{m} {a} panicked"))
                .map(|s| serde_json::from_str(&s).unwrap())
        };
        call(&mut e, "create_program", &json!({"program": {"id": "b",
            "earn": {"points_per_unit": "1", "categories": {"tea": "3"}},
            "tiers": {"basis": "spend", "levels": [{"name": "silver", "threshold": "0"},
                      {"name": "gold", "threshold": "1000000000000"}]}}})).unwrap();
        let src = json!({"platform": "app", "program": "b"});
        let mut expected = [Decimal::ZERO; 3];
        for u in 0..3u8 {
            let t = TIMES[usize::from(u)];
            for (k, ev) in [
                json!({"kind": "register", "time": t, "user": member(u)}),
                json!({"kind": "activity", "time": t, "user": member(u), "type": "login"}),
                json!({"kind": "behavior", "time": t, "user": member(u), "type": "view", "category": "tea", "channel": "app"}),
                json!({"kind": "community", "time": t, "user": member(u), "community": "c1", "action": "join"}),
                json!({"kind": "community", "time": t, "user": member(u), "community": "c1", "action": "message", "reply_to": member((u + 1) % 3)}),
                json!({"kind": "touch", "time": t, "user": member(u), "channel": "sms", "content": "x", "outcome": "converted"}),
                json!({"kind": "coupon", "time": t, "user": member(u), "coupon_id": format!("c{u}"), "action": "used"}),
            ].into_iter().enumerate() {
                let mut ev = ev;
                ev["key"] = json!(format!("u{u}-{k}"));
                ev["source"] = src.clone();
                call(&mut e, "ingest", &json!({ "event": ev })).unwrap();
            }
        }
        for (i, o) in orders.iter().enumerate() {
            let amount = AMOUNTS[o.amount];
            let lines: Vec<Value> = o.lines.iter().enumerate().map(|(j, &l)| {
                let (price, qty) = LINES[l];
                let category = ["tea", "cake"][j % 2];
                json!({"sku": format!("s{j}"), "category": category, "price": price, "qty": qty})
            }).collect();
            let ev = json!({"kind": "order", "key": format!("o{i}"), "time": TIMES[o.time],
                "source": src.clone(), "user": member(o.user), "order_id": format!("O{i}"),
                "amount": amount, "channel": "app", "region": "north", "lines": lines});
            call(&mut e, "ingest", &json!({ "event": ev })).unwrap();
            expected[usize::from(o.user)] += amount.parse::<Decimal>().unwrap();
            // Refund none, a cent, or all of it (the largest refund there is).
            let refund = match refund_share {
                1 if amount != "0.00" => Some("0.01"),
                2 => Some(amount),
                _ => None,
            };
            if let Some(r) = refund {
                let ev = json!({"kind": "refund", "key": format!("r{i}"), "time": TIMES[o.time],
                    "source": src.clone(), "user": member(o.user), "order_id": format!("O{i}"), "amount": r});
                call(&mut e, "ingest", &json!({ "event": ev })).unwrap();
            }
            call(&mut e, "record_spend", &json!({"user": member(o.user), "program": "b",
                "amount": "1000000000000.00", "key": format!("sp{i}"), "time": TIMES[o.time]})).unwrap();
        }
        // The exact sums are exact.
        for u in 0..3u8 {
            let p = call(&mut e, "profile", &json!({"user": member(u)})).unwrap();
            let gmv: Decimal = p["aggregates"]["gmv"].as_str().unwrap().parse().unwrap();
            prop_assert_eq!(gmv, expected[usize::from(u)]);
        }
        let rep = call(&mut e, "repurchase", &json!({})).unwrap();
        let total: Decimal = rep["periods"].as_array().unwrap().iter()
            .map(|r| r["gmv"].as_str().unwrap().parse::<Decimal>().unwrap()).sum();
        prop_assert_eq!(total, expected.iter().sum::<Decimal>());
        for (m, a) in queries() {
            match call(&mut e, m, &a) {
                Ok(_) => {}
                Err(err) => prop_assert!(
                    err.code() != ErrorCode::Internal && err.code() != ErrorCode::OutOfRange,
                    "{} {}: {}", m, a, err
                ),
            }
        }
        // The largest cart quotes and commits exactly.
        call(&mut e, "add_promotion", &json!({"promotion": {"id": "pct", "conditions": {},
            "action": {"type": "percent_off", "percent": "10"}}})).unwrap();
        let q = call(&mut e, "quote", &json!({"user": member(0), "cart": {"time": TIMES[2], "lines": [
            {"sku": "a", "price": "500000000000.00", "qty": 1},
            {"sku": "b", "price": "0.01", "qty": u32::MAX},
            {"sku": "c", "price": "499957050327.05", "qty": 1}]}})).unwrap();
        prop_assert_eq!(&q["subtotal"], &json!("1000000000000.00"));
        prop_assert_eq!(&q["total"], &json!("900000000000.00"));
        call(&mut e, "commit", &json!({"quote": q, "key": "c1"})).unwrap();
        e.check_invariants().map_err(|b| TestCaseError::fail(format!("{b:?}")))?;
    }
}
