//! Worked examples (arithmetic in the comments) and property tests for the promotion engine.

use chrono::FixedOffset;
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::json;

use super::ledger::{Ledger, QuoteRef};
use super::quote::{evaluate, Cart, CustomerContext, Grant, Quote, SelectMode};
use super::{CampaignError, Campaigns, Promotion};
use crate::ids::OneId;

fn tz() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap()
}

fn promo(v: serde_json::Value) -> Promotion {
    let p: Promotion = serde_json::from_value(v).unwrap();
    p.validate().unwrap();
    p
}

fn cart(lines: &[(&str, &str, &str, i64)]) -> Cart {
    serde_json::from_value(json!({
        "time": "2026-03-02T10:00:00+08:00", "channel": "app", "region": "sh", "store": "s1",
        "lines": lines.iter().map(|(sku, cat, price, qty)|
            json!({"sku": sku, "category": cat, "price": price, "qty": qty})).collect::<Vec<_>>()
    }))
    .unwrap()
}

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn book(ps: Vec<serde_json::Value>) -> Campaigns {
    let mut c = Campaigns::default();
    for p in ps {
        c.add_promotion(promo(p)).unwrap();
    }
    c
}

fn quote_with(c: &Campaigns, k: &Cart, cust: &CustomerContext, mode: SelectMode) -> Quote {
    let q = c.quote(k, cust, mode, tz()).unwrap();
    check_invariants(k, &q);
    q
}

fn quote(c: &Campaigns, k: &Cart) -> Quote {
    quote_with(
        c,
        k,
        &CustomerContext::default(),
        SelectMode::BestForCustomer,
    )
}

/// Invariants every quote must satisfy.
fn check_invariants(cart: &Cart, q: &Quote) {
    assert!(q.total >= Decimal::ZERO, "{q:?}");
    assert!(
        q.discount >= Decimal::ZERO && q.discount <= q.subtotal,
        "{q:?}"
    );
    assert_eq!(q.subtotal - q.discount, q.total);
    let lines_total: Decimal = q.lines.iter().map(|l| l.total).sum();
    assert_eq!(lines_total, q.total);
    let applied: Decimal = q.applied.iter().map(|a| a.discount).sum();
    assert_eq!(applied, q.discount);
    for (i, l) in q.lines.iter().enumerate() {
        assert!(l.total >= Decimal::ZERO && l.discount >= Decimal::ZERO);
        assert_eq!(
            l.amount,
            cart.lines[i].price * Decimal::from(cart.lines[i].qty)
        );
        let shares: Decimal = q
            .applied
            .iter()
            .flat_map(|a| &a.lines)
            .filter(|s| s.line == i)
            .map(|s| s.discount)
            .sum();
        assert_eq!(shares, l.discount);
    }
    for a in &q.applied {
        let s: Decimal = a.lines.iter().map(|s| s.discount).sum();
        assert_eq!(
            s, a.discount,
            "line shares add up to the promotion's discount"
        );
        assert!(a.budget_use >= a.discount);
    }
}

fn discount_of(q: &Quote, id: &str) -> Option<Decimal> {
    q.applied.iter().find(|a| &*a.id == id).map(|a| a.discount)
}

fn reason_of(q: &Quote, id: &str) -> Option<&'static str> {
    q.not_applied
        .iter()
        .find(|n| &*n.id == id)
        .map(|n| n.reason.code())
}

#[test]
fn threshold_discount_with_remainder_allocation() {
    // 满300减50. Lines: a 120.00 × 2 = 240.00, b 90.00 × 1 = 90.00; subtotal 330.00 ≥ 300.
    // Allocation of 5000 cents by weight 24000 : 9000 (sum 33000):
    //   a: 5000·24000/33000 = 3636.36 → 3636 (remainder 12000)
    //   b: 5000·9000/33000  = 1363.63 → 1363 (remainder 21000)
    //   one cent left → b (larger remainder): a 36.36, b 13.64; total 330 − 50 = 280.00.
    let c = book(vec![
        json!({"id": "m", "action": {"type": "threshold_discount", "threshold": "300", "off": "50"}}),
    ]);
    let q = quote(
        &c,
        &cart(&[("a", "x", "120.00", 2), ("b", "y", "90.00", 1)]),
    );
    assert_eq!(q.total, d("280.00"));
    assert_eq!(q.lines[0].discount, d("36.36"));
    assert_eq!(q.lines[1].discount, d("13.64"));
    // Below the threshold: 120 + 90 = 210 < 300.
    let q = quote(
        &c,
        &cart(&[("a", "x", "120.00", 1), ("b", "y", "90.00", 1)]),
    );
    assert_eq!(q.total, d("210.00"));
    assert_eq!(reason_of(&q, "m"), Some("threshold"));
    assert!(q
        .not_applied
        .get(0)
        .unwrap()
        .reason
        .to_string()
        .contains("300.00"));
}

#[test]
fn tiered_and_every_x_off_y() {
    // Tiers 200→20, 400→60, 600→100; cart 450.00 reaches the 400 tier: 450 − 60 = 390.
    let c = book(vec![
        json!({"id": "t", "action": {"type": "threshold_discount", "tiers": [
        {"threshold": "200", "off": "20"}, {"threshold": "400", "off": "60"}, {"threshold": "600", "off": "100"}]}}),
    ]);
    assert_eq!(
        quote(&c, &cart(&[("a", "x", "450.00", 1)])).total,
        d("390.00")
    );
    // Every 300 off 50 on 950.00: ⌊950/300⌋ = 3 → 150 off → 800.00.
    let c = book(vec![
        json!({"id": "e", "action": {"type": "threshold_discount", "threshold": "300", "off": "50", "every": true}}),
    ]);
    assert_eq!(
        quote(&c, &cart(&[("a", "x", "950.00", 1)])).total,
        d("800.00")
    );
    // Same with per_order 2: 2 × 50 = 100 → 850.00.
    let c = book(vec![
        json!({"id": "e", "action": {"type": "threshold_discount", "threshold": "300", "off": "50", "every": true},
        "limits": {"per_order": 2}}),
    ]);
    assert_eq!(
        quote(&c, &cart(&[("a", "x", "950.00", 1)])).total,
        d("850.00")
    );
    // max_off caps: every 100 off 30 on 950 = 270, capped at 200 → 750.00.
    let c = book(vec![
        json!({"id": "e", "action": {"type": "threshold_discount", "threshold": "100", "off": "30", "every": true, "max_off": "200"}}),
    ]);
    assert_eq!(
        quote(&c, &cart(&[("a", "x", "950.00", 1)])).total,
        d("750.00")
    );
}

#[test]
fn percent_off_rounds_to_the_cent_on_eligible_lines() {
    // 20% off category fruit. Eligible: 33.33 × 1 + 10.01 × 3 = 63.36; dairy 50.00 excluded.
    // 63.36 × 20% = 12.672 → 12.67 (half away from zero at the cent).
    // Allocation of 1267 over 3333 : 3003 (sum 6336):
    //   line0: 1267·3333/6336 = 666.49 → 666 (rem 3135); line1: 1267·3003/6336 = 600.50 → 600 (rem 3201)
    //   one cent left → line1: 6.66 and 6.01. Total 113.36 − 12.67 = 100.69.
    let c = book(vec![
        json!({"id": "p", "conditions": {"categories": ["fruit"]},
        "action": {"type": "percent_off", "percent": "20"}}),
    ]);
    let q = quote(
        &c,
        &cart(&[
            ("a", "fruit", "33.33", 1),
            ("b", "fruit", "10.01", 3),
            ("m", "dairy", "50.00", 1),
        ]),
    );
    assert_eq!(q.discount, d("12.67"));
    assert_eq!(q.lines[0].discount, d("6.66"));
    assert_eq!(q.lines[1].discount, d("6.01"));
    assert_eq!(q.lines[2].discount, d("0.00"));
    assert_eq!(q.total, d("100.69"));
    // Exclusion wins over inclusion: exclude sku b → eligible 33.33 → 6.666 → 6.67.
    let c = book(vec![
        json!({"id": "p", "conditions": {"categories": ["fruit"], "exclude_skus": ["b"]},
        "action": {"type": "percent_off", "percent": "20"}}),
    ]);
    let q = quote(
        &c,
        &cart(&[("a", "fruit", "33.33", 1), ("b", "fruit", "10.01", 3)]),
    );
    assert_eq!(q.discount, d("6.67"));
}

#[test]
fn fixed_price_only_lowers_prices() {
    // x at 9.90: (15.00 − 9.90) × 2 = 10.20 off; y costs 8.00 < 9.90, unchanged.
    // Total 30.00 + 8.00 − 10.20 = 27.80.
    let c = book(vec![
        json!({"id": "f", "conditions": {"skus": ["x", "y"]}, "action": {"type": "fixed_price", "price": "9.90"}}),
    ]);
    let q = quote(&c, &cart(&[("x", "c", "15.00", 2), ("y", "c", "8.00", 1)]));
    assert_eq!(q.total, d("27.80"));
    assert_eq!(q.lines[1].discount, d("0.00"));
    // All lines already cheaper: no effect, with a reason.
    let q = quote(&c, &cart(&[("y", "c", "8.00", 1)]));
    assert_eq!(reason_of(&q, "f"), Some("no_effect"));
}

#[test]
fn gift_rebate_exchange_and_points_multiplier() {
    // 满增: every 200 → a mug; 450.00 → ⌊450/200⌋ = 2 mugs, with the order, no discount.
    let c = book(vec![
        json!({"id": "g", "action": {"type": "threshold_gift", "threshold": "200", "every": true,
        "reward": {"type": "goods", "sku": "mug"}}}),
    ]);
    let q = quote(&c, &cart(&[("a", "x", "450.00", 1)]));
    assert_eq!(q.total, d("450.00"));
    assert!(matches!(&q.applied[0].rewards[0], Grant::Goods { sku, qty: 2, .. } if sku == "mug"));
    // 满返: spend 300 → a 50 red packet after the order; it counts against a money budget.
    let c = book(vec![
        json!({"id": "r", "action": {"type": "threshold_rebate", "threshold": "300",
        "reward": {"type": "red_packet", "amount": "50"}}}),
    ]);
    let q = quote(&c, &cart(&[("a", "x", "300.00", 1)]));
    assert_eq!(q.applied[0].budget_use, d("50.00"));
    assert_eq!(q.total, d("300.00"));
    // 满换: spend 100 on the rest → add-on at 1.00. Main 120.00 qualifies; the add-on line
    // (25.00) does not count toward the threshold; one unit drops 25.00 → 1.00: 24.00 off.
    let c = book(vec![
        json!({"id": "x", "action": {"type": "threshold_exchange", "threshold": "100", "sku": "addon", "price": "1.00"}}),
    ]);
    let q = quote(
        &c,
        &cart(&[("main", "x", "120.00", 1), ("addon", "y", "25.00", 1)]),
    );
    assert_eq!(q.total, d("121.00"));
    assert_eq!(q.lines[1].discount, d("24.00"));
    // Main 90.00 + add-on 25.00 = 115 but only 90 counts: below 100.
    let q = quote(
        &c,
        &cart(&[("main", "x", "90.00", 1), ("addon", "y", "25.00", 1)]),
    );
    assert_eq!(reason_of(&q, "x"), Some("threshold"));
    // Add-on not in the cart: offered.
    let q = quote(&c, &cart(&[("main", "x", "120.00", 1)]));
    assert!(matches!(&q.applied[0].rewards[0], Grant::ExchangeOffer { sku, .. } if sku == "addon"));
    // 翻倍: double points on the eligible amount.
    let c = book(vec![
        json!({"id": "pm", "conditions": {"categories": ["x"]}, "action": {"type": "points_multiplier", "factor": 2}}),
    ]);
    let q = quote(&c, &cart(&[("a", "x", "80.00", 1), ("b", "y", "20.00", 1)]));
    assert!(
        matches!(&q.applied[0].rewards[0], Grant::PointsMultiplier { factor: 2, on_amount, .. } if *on_amount == d("80.00"))
    );
}

fn stacking_book(exclusive_priority: i64) -> Campaigns {
    book(vec![
        json!({"id": "E", "action": {"type": "percent_off", "percent": "10"},
            "stacking": {"mode": "exclusive", "priority": exclusive_priority}}),
        json!({"id": "G1", "action": {"type": "threshold_discount", "threshold": "300", "off": "30"},
            "stacking": {"mode": "stackable", "group": "g", "priority": 2}}),
        json!({"id": "G2", "action": {"type": "percent_off", "percent": "5"},
            "stacking": {"mode": "stackable", "group": "g", "priority": 3}}),
    ])
}

#[test]
fn stacking_best_for_customer_and_priority() {
    // Cart 450.00. E alone: 10% = 45.00. Group g: G1 30.00 first, then G2 5% of 420.00 = 21.00
    // → 51.00. Best for the customer picks g (51 > 45): total 399.00.
    let k = cart(&[("a", "x", "450.00", 1)]);
    let c = stacking_book(1);
    let q = quote(&c, &k);
    assert_eq!(q.total, d("399.00"));
    assert_eq!(
        (discount_of(&q, "G1"), discount_of(&q, "G2")),
        (Some(d("30.00")), Some(d("21.00")))
    );
    assert_eq!(reason_of(&q, "E"), Some("stacking"));
    // Priority mode: E (priority 1) comes first and applies alone: 450 − 45 = 405.00.
    let q = quote_with(&c, &k, &CustomerContext::default(), SelectMode::Priority);
    assert_eq!(q.total, d("405.00"));
    assert_eq!(reason_of(&q, "G1"), Some("stacking"));
    assert_eq!(reason_of(&q, "G2"), Some("stacking"));
    // With E at priority 9 the group comes first in priority mode too.
    let q = quote_with(
        &stacking_book(9),
        &k,
        &CustomerContext::default(),
        SelectMode::Priority,
    );
    assert_eq!(q.total, d("399.00"));
    // Within a group, a later promotion sees the amounts the earlier ones left: cart 310.00,
    // G1 takes 30 → 280; a 300-threshold second step then fails.
    let c = book(vec![
        json!({"id": "A", "action": {"type": "threshold_discount", "threshold": "300", "off": "30"}, "stacking": {"priority": 1}}),
        json!({"id": "B", "action": {"type": "threshold_discount", "threshold": "300", "off": "10"}, "stacking": {"priority": 2}}),
    ]);
    let q = quote(&c, &cart(&[("a", "x", "310.00", 1)]));
    assert_eq!(q.total, d("280.00"));
    assert_eq!(reason_of(&q, "B"), Some("threshold"));
}

#[test]
fn every_condition_reports_its_reason() {
    let c = book(vec![
        json!({"id": "ch", "conditions": {"channels": ["pos"]}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "rg", "conditions": {"regions": ["bj"]}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "st", "conditions": {"stores": ["s9"]}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "late", "conditions": {"start": "2026-04-01T00:00:00+08:00"}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "over", "conditions": {"end": "2026-03-01T00:00:00+08:00"}, "action": {"type": "percent_off", "percent": "10"}}),
        // The cart is at 10:00 +08:00 on Monday 2026-03-02.
        json!({"id": "night", "conditions": {"hours": [20, 2]}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "wkend", "conditions": {"weekdays": [6, 7]}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "vip", "conditions": {"tiers": ["gold"]}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "aud", "conditions": {"audiences": ["lapsed"]}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "new", "conditions": {"first_order": true}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "qty", "conditions": {"min_qty": 3}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "amt", "conditions": {"min_amount": "1000"}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "sku", "conditions": {"skus": ["zzz"]}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "pu", "limits": {"per_user": 1}, "action": {"type": "percent_off", "percent": "10"}}),
        json!({"id": "morning", "conditions": {"hours": [9, 12], "weekdays": [1]}, "action": {"type": "percent_off", "percent": "10"},
            "stacking": {"mode": "exclusive"}}),
    ]);
    let repeat = CustomerContext {
        first_order: false,
        ..CustomerContext::default()
    };
    let q = quote_with(
        &c,
        &cart(&[("a", "x", "100.00", 1)]),
        &repeat,
        SelectMode::BestForCustomer,
    );
    let want = [
        ("ch", "channel"),
        ("rg", "region"),
        ("st", "store"),
        ("late", "not_started"),
        ("over", "ended"),
        ("night", "outside_hours"),
        ("wkend", "weekday"),
        ("vip", "tier"),
        ("aud", "audience"),
        ("new", "first_order_only"),
        ("qty", "min_qty"),
        ("amt", "min_amount"),
        ("sku", "no_eligible_lines"),
        ("pu", "no_customer"),
    ];
    for (id, code) in want {
        assert_eq!(reason_of(&q, id), Some(code), "{id}");
    }
    assert_eq!(discount_of(&q, "morning"), Some(d("10.00")));
    assert_eq!(q.not_applied.len(), want.len());
    // The same customer in the audience with the tier and a first order: those now apply
    // (they stack in the default group; "morning" is exclusive and worth less).
    let fits = CustomerContext {
        oneid: Some(OneId(1)),
        tier: Some("gold".into()),
        audiences: ["lapsed".to_owned()].into(),
        first_order: true,
        ..CustomerContext::default()
    };
    let q = quote_with(
        &c,
        &cart(&[("a", "x", "100.00", 1)]),
        &fits,
        SelectMode::BestForCustomer,
    );
    for id in ["vip", "aud", "new", "pu"] {
        assert!(discount_of(&q, id).is_some(), "{id}: {q:?}");
    }
}

#[test]
fn budgets_and_limits_through_commit_and_cancel() {
    // Money budget 60; 满100减50. First order: 50 used, 10 left. A second quote no longer fits.
    let mut c = book(vec![
        json!({"id": "b", "action": {"type": "threshold_discount", "threshold": "100", "off": "50"},
        "budget": {"kind": "money", "amount": "60"}, "limits": {"per_user": 5, "total": 10}}),
    ]);
    let u = CustomerContext {
        oneid: Some(OneId(7)),
        ..CustomerContext::default()
    };
    let k = cart(&[("a", "x", "100.00", 1)]);
    let q1 = quote_with(&c, &k, &u, SelectMode::BestForCustomer);
    let stale = q1.clone();
    let r1: QuoteRef = serde_json::from_value(serde_json::to_value(&q1).unwrap()).unwrap();
    let rec = c.commit("order-1", &r1).unwrap();
    assert!(!rec.duplicate);
    assert_eq!(c.ledger().usage("b").unwrap().money, d("50.00"));
    // Replay: same receipt, nothing consumed twice.
    assert!(c.commit("order-1", &r1).unwrap().duplicate);
    assert_eq!(c.ledger().usage("b").unwrap().orders, 1);
    // A new quote sees 10 left < 50: not applied, reason budget.
    let q2 = quote_with(&c, &k, &u, SelectMode::BestForCustomer);
    assert_eq!(reason_of(&q2, "b"), Some("budget"));
    // The stale quote cannot overspend.
    let r_stale: QuoteRef = serde_json::from_value(serde_json::to_value(&stale).unwrap()).unwrap();
    assert!(matches!(
        c.commit("order-2", &r_stale),
        Err(CampaignError::BudgetExhausted { .. })
    ));
    // Another quote under a used key is refused.
    let other = QuoteRef {
        user: Some(OneId(8)),
        applied: vec![],
        subtotal: None,
        time: None,
        checksum: None,
    };
    assert!(matches!(
        c.commit("order-1", &other),
        Err(CampaignError::DuplicateKey(_))
    ));
    // Cancel gives it back, once.
    let back = c.cancel("order-1").unwrap();
    assert!(!back.duplicate);
    assert!(c.ledger().usage("b").is_none());
    assert!(c.cancel("order-1").unwrap().duplicate);
    assert!(c.ledger().usage("b").is_none());
    assert!(matches!(
        c.cancel("nope"),
        Err(CampaignError::NotFound { .. })
    ));
    // Per-user limit 1 with a count budget.
    let mut c = book(vec![
        json!({"id": "once", "action": {"type": "percent_off", "percent": "10"},
        "budget": {"kind": "count", "count": 2}, "limits": {"per_user": 1}}),
    ]);
    let q = quote_with(&c, &k, &u, SelectMode::BestForCustomer);
    let r: QuoteRef = serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
    c.commit("k1", &r).unwrap();
    assert_eq!(
        reason_of(&quote_with(&c, &k, &u, SelectMode::BestForCustomer), "once"),
        Some("user_limit")
    );
    assert!(matches!(
        c.commit("k2", &r),
        Err(CampaignError::LimitReached { .. })
    ));
}

#[test]
fn bad_input_is_a_typed_error() {
    let bad = |v: serde_json::Value| {
        serde_json::from_value::<Promotion>(v)
            .map_err(|e| e.to_string())
            .and_then(|p| p.validate().map_err(|e| e.to_string()))
    };
    assert!(bad(json!({"id": "c", "conditions": {"skus": ["a"], "exclude_skus": ["a"]}, "action": {"type": "percent_off", "percent": "10"}})).unwrap_err().contains("both included and excluded"));
    assert!(bad(json!({"id": "c", "conditions": {"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "action": {"type": "percent_off", "percent": "10"}})).is_err());
    assert!(bad(json!({"id": "c", "budget": {"kind": "money", "amount": "-1"}, "action": {"type": "percent_off", "percent": "10"}})).unwrap_err().contains("≥ 0"));
    assert!(bad(json!({"id": "c", "budget": {"kind": "count", "count": -1}, "action": {"type": "percent_off", "percent": "10"}})).is_err());
    assert!(bad(json!({"id": "c", "action": {"type": "percent_off", "percent": "120"}})).is_err());
    assert!(
        bad(json!({"id": "c", "action": {"type": "percent_off", "percent": 10.5}})).is_err(),
        "floats are refused"
    );
    assert!(
        bad(json!({"id": "c", "action": {"type": "threshold_discount", "threshold": "100"}}))
            .is_err()
    );
    assert!(bad(json!({"id": "c", "action": {"type": "threshold_discount", "tiers": [{"threshold": "200", "off": "20"}, {"threshold": "100", "off": "30"}]}})).is_err());
    let c = book(vec![]);
    let mut k = cart(&[("a", "x", "10.00", 1)]);
    k.lines[0].qty = -2;
    assert!(
        matches!(c.quote(&k, &CustomerContext::default(), SelectMode::Priority, tz()), Err(CampaignError::Invalid { field, .. }) if field == "lines[0].qty")
    );
    let mut k = cart(&[("a", "x", "10.00", 1)]);
    k.lines[0].currency = Some("USD".into());
    assert!(
        matches!(c.quote(&k, &CustomerContext::default(), SelectMode::Priority, tz()), Err(CampaignError::Invalid { field, .. }) if field == "lines[0].currency")
    );
    let k = cart(&[("a", "x", "10.001", 1)]);
    assert!(c
        .quote(&k, &CustomerContext::default(), SelectMode::Priority, tz())
        .is_err());
}

#[test]
fn evaluation_is_deterministic() {
    let c = stacking_book(1);
    let k = cart(&[("a", "x", "450.00", 1), ("b", "y", "33.33", 3)]);
    let a = serde_json::to_string(&quote(&c, &k)).unwrap();
    let b = serde_json::to_string(&quote(&c, &k)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn allocation_gives_remainders_to_largest_fractions() {
    // 100 cents over three equal weights: 33 each, the last cent to the lowest index.
    assert_eq!(
        super::quote::allocate(100, &[0, 1, 2], &[1, 1, 1]),
        vec![(0, 34), (1, 33), (2, 33)]
    );
    // Never more than a line's weight.
    assert_eq!(
        super::quote::allocate(3, &[0, 1], &[1, 2]),
        vec![(0, 1), (1, 2)]
    );
}

// ---- property tests ----

fn arb_cart() -> impl Strategy<Value = Cart> {
    prop::collection::vec((0..6usize, 0..3usize, 0i64..50_000, 1i64..5), 0..12).prop_map(|ls| {
        let lines: Vec<(String, String, String, i64)> = ls
            .into_iter()
            .map(|(s, c, p, q)| (format!("s{s}"), format!("c{c}"), Decimal::new(p, 2).to_string(), q))
            .collect();
        serde_json::from_value(json!({
            "time": "2026-03-02T10:00:00+08:00", "channel": "app",
            "lines": lines.iter().map(|(s, c, p, q)| json!({"sku": s, "category": c, "price": p, "qty": q})).collect::<Vec<_>>()
        }))
        .unwrap()
    })
}

fn arb_promo(i: usize) -> impl Strategy<Value = serde_json::Value> {
    let action = prop_oneof![
        (1i64..50_000, 1i64..20_000, any::<bool>()).prop_map(|(t, o, every)| {
            let (t, o) = if every { (t, o) } else { (t.max(o), o) };
            json!({"type": "threshold_discount", "threshold": Decimal::new(t, 2).to_string(), "off": Decimal::new(o, 2).to_string(), "every": every})
        }),
        (1i64..=1000).prop_map(|p| json!({"type": "percent_off", "percent": Decimal::new(p, 1).to_string()})),
        (0i64..20_000).prop_map(|p| json!({"type": "fixed_price", "price": Decimal::new(p, 2).to_string()})),
        (0i64..20_000, 0i64..5_000).prop_map(|(t, p)| json!({"type": "threshold_exchange", "threshold": Decimal::new(t, 2).to_string(), "sku": "s1", "price": Decimal::new(p, 2).to_string()})),
        (0i64..20_000).prop_map(|t| json!({"type": "threshold_rebate", "threshold": Decimal::new(t, 2).to_string(), "reward": {"type": "red_packet", "amount": "5"}})),
    ];
    (action, 0..4usize, any::<bool>(), 0..3i64, prop::option::of(0..3usize)).prop_map(move |(a, g, excl, pr, cat)| {
        let mut p = json!({"id": format!("p{i}"), "action": a,
            "stacking": if excl { json!({"mode": "exclusive", "priority": pr}) } else { json!({"group": format!("g{g}"), "priority": pr}) }});
        if let Some(c) = cat {
            p["conditions"] = json!({"categories": [format!("c{c}")]});
        }
        p
    })
}

fn arb_book() -> impl Strategy<Value = Vec<serde_json::Value>> {
    (0..8usize).prop_flat_map(|n| (0..n).map(arb_promo).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn quotes_are_never_negative_and_discounts_stay_within_eligible(ps in arb_book(), k in arb_cart(), best in any::<bool>()) {
        let c = book(ps);
        let mode = if best { SelectMode::BestForCustomer } else { SelectMode::Priority };
        let q = quote_with(&c, &k, &CustomerContext::default(), mode);
        // Every promotion's discount ≤ the amount of the lines it may touch.
        for a in &q.applied {
            let p = c.promotions().iter().find(|p| p.id == a.id).unwrap();
            // Lines it may discount: its categories, or for 满换 the add-on's line.
            let eligible: Decimal = match &p.action {
                super::Action::ThresholdExchange { sku, .. } => k.lines.iter().find(|l| &l.sku == sku).map(|l| l.price * Decimal::from(l.qty)).unwrap_or_default(),
                _ => k.lines.iter().filter(|l| p.conditions.categories.is_empty() || p.conditions.categories.contains(&l.category))
                    .map(|l| l.price * Decimal::from(l.qty)).sum(),
            };
            prop_assert!(a.discount <= eligible, "{a:?} > {eligible}");
        }
        prop_assert_eq!(q.applied.len() + q.not_applied.len(), c.promotions().len());
    }

    #[test]
    fn commit_then_cancel_restores_usage(ps in arb_book(), carts in prop::collection::vec(arb_cart(), 1..6), user in 1u64..4) {
        let mut c = book(ps);
        let before = c.ledger().clone();
        let cust = CustomerContext { oneid: Some(OneId(user)), ..CustomerContext::default() };
        let mut keys = vec![];
        for (i, k) in carts.iter().enumerate() {
            let q = quote_with(&c, k, &cust, SelectMode::BestForCustomer);
            let r: QuoteRef = serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
            if c.commit(&format!("k{i}"), &r).is_ok() {
                keys.push(format!("k{i}"));
            }
        }
        for k in keys.iter().rev() {
            c.cancel(k).unwrap();
        }
        prop_assert_eq!(c.ledger().all_usage(), before.all_usage());
    }
}

/// 10,000 random commits (fresh and stale quotes, random cancels) never overspend a budget.
#[test]
fn budget_never_overspent_across_10k_random_commits() {
    let mut c = book(vec![
        json!({"id": "money", "action": {"type": "percent_off", "percent": "15"}, "budget": {"kind": "money", "amount": "5000"},
            "stacking": {"group": "a"}}),
        json!({"id": "count", "action": {"type": "threshold_discount", "threshold": "50", "off": "7"}, "budget": {"kind": "count", "count": 300},
            "limits": {"per_user": 40}, "stacking": {"group": "a", "priority": 1}}),
        json!({"id": "cash", "action": {"type": "threshold_rebate", "threshold": "20", "reward": {"type": "red_packet", "amount": "3.33"}},
            "budget": {"kind": "money", "amount": "999.99"}, "stacking": {"group": "b"}}),
    ]);
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut stale: Vec<QuoteRef> = Vec::new();
    let mut live: Vec<String> = Vec::new();
    let (mut ok, mut refused) = (0, 0);
    for i in 0..10_000u64 {
        let price = Decimal::new(i64::try_from(next() % 40_000).unwrap() + 100, 2);
        let k = cart(&[("a", "x", &price.to_string(), 1)]);
        let cust = CustomerContext {
            oneid: Some(OneId(next() % 20 + 1)),
            ..CustomerContext::default()
        };
        let mode = if next() % 2 == 0 {
            SelectMode::Priority
        } else {
            SelectMode::BestForCustomer
        };
        let q = quote_with(&c, &k, &cust, mode);
        let r: QuoteRef = serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
        stale.push(r.clone());
        // Commit either the fresh quote or an old one (which may no longer fit).
        let pick = if next() % 3 == 0 {
            stale[usize::try_from(next()).unwrap() % stale.len()].clone()
        } else {
            r
        };
        match c.commit(&format!("k{i}"), &pick) {
            Ok(_) => {
                ok += 1;
                live.push(format!("k{i}"));
            }
            Err(CampaignError::BudgetExhausted { .. } | CampaignError::LimitReached { .. }) => {
                refused += 1
            }
            Err(e) => panic!("{e}"),
        }
        if next() % 10 == 0 && !live.is_empty() {
            let k = live.swap_remove(usize::try_from(next()).unwrap() % live.len());
            c.cancel(&k).unwrap();
        }
        let u = |id: &str| c.ledger().usage(id).cloned().unwrap_or_default();
        assert!(u("money").money <= d("5000"), "money overspent at {i}");
        assert!(u("count").orders <= 300, "count overspent at {i}");
        assert!(u("cash").money <= d("999.99"), "cash overspent at {i}");
        assert!(u("count").by_user.values().all(|n| *n <= 40));
    }
    assert!(
        ok > 1000 && refused > 0,
        "both paths exercised: {ok} ok, {refused} refused"
    );
}

#[test]
fn evaluate_is_the_free_function_behind_quote() {
    let c = stacking_book(1);
    let k = cart(&[("a", "x", "450.00", 1)]);
    let q = evaluate(
        c.promotions(),
        &Ledger::default(),
        &k,
        &CustomerContext::default(),
        SelectMode::BestForCustomer,
        tz(),
    )
    .unwrap();
    assert_eq!(q, quote(&c, &k));
}

#[test]
fn the_index_follows_added_and_replaced_promotions() {
    let mut c = book(vec![json!({"id": "a", "conditions": {"skus": ["s1"]},
        "action": {"type": "percent_off", "percent": "10"}})]);
    let k = cart(&[("s2", "x", "100.00", 1)]);
    assert_eq!(reason_of(&quote(&c, &k), "a"), Some("no_eligible_lines"));
    // Replaced to list the cart's sku, and a new one listing its category.
    c.add_promotion(promo(
        json!({"id": "a", "conditions": {"skus": ["s1", "s2"]},
        "action": {"type": "percent_off", "percent": "10"}}),
    ))
    .unwrap();
    c.add_promotion(promo(
        json!({"id": "b", "conditions": {"categories": ["x"]},
        "action": {"type": "threshold_discount", "threshold": "50", "off": "5"},
        "stacking": {"mode": "exclusive"}}),
    ))
    .unwrap();
    let q = quote(&c, &k);
    assert_eq!(discount_of(&q, "a"), Some(d("10.00")));
    assert_eq!(reason_of(&q, "b"), Some("stacking"));
    // A clone (e.g. an engine snapshot) rebuilds its own index.
    let copy = c.clone();
    assert_eq!(quote(&copy, &k), q);
}

proptest! {
    /// The integer percent path is exactly the `Decimal` one (half away from zero).
    #[test]
    fn percent_in_cents_matches_decimal(eligible in 0i64..10_000_000_000, m in 1i64..=10_000, scale in 0u32..=2) {
        let percent = Decimal::new(m, scale);
        prop_assume!(percent <= Decimal::ONE_HUNDRED);
        let exact = (Decimal::from(eligible) * percent / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        let p: Promotion = promo(json!({"id": "p", "action": {"type": "percent_off", "percent": percent.to_string()}}));
        let frac = p.compiled().percent;
        prop_assert!(frac.is_some());
        prop_assert_eq!(Decimal::from(super::quote::percent_of(eligible, &percent, frac)), exact);
    }
}

// ---- the bounded stacking search against the exhaustive one ----

/// Promotions of every action kind, most in a few stacking groups, with budgets small enough
/// to refuse, tiers whose `off` does not grow with the threshold, and add-ons.
fn arb_stacking_promo(i: usize) -> impl Strategy<Value = serde_json::Value> {
    let money = |lo: i64, hi: i64| (lo..hi).prop_map(|c| Decimal::new(c, 2).to_string());
    let action = prop_oneof![
        (1i64..40_000, 1i64..8_000, any::<bool>(), prop::option::of(money(1, 10_000)))
            .prop_map(|(t, o, every, cap)| {
                let (t, o) = (Decimal::new(t.max(o), 2).to_string(), Decimal::new(o, 2).to_string());
                let mut a = json!({"type": "threshold_discount", "threshold": t, "off": o, "every": every});
                if let Some(m) = cap {
                    a["max_off"] = json!(m);
                }
                a
            }),
        prop::collection::vec((1i64..30_000, 1i64..10_000), 1..4).prop_map(|mut ts| {
            ts.sort_unstable();
            ts.dedup_by_key(|t| t.0);
            json!({"type": "threshold_discount", "tiers": ts.iter().map(|(t, o)|
                json!({"threshold": Decimal::new(*t, 2).to_string(), "off": Decimal::new(*o.min(t), 2).to_string()})).collect::<Vec<_>>()})
        }),
        ((1i64..=1000), prop::option::of(money(1, 5_000))).prop_map(|(p, cap)| {
            let mut a = json!({"type": "percent_off", "percent": Decimal::new(p, 1).to_string()});
            if let Some(m) = cap {
                a["max_off"] = json!(m);
            }
            a
        }),
        money(0, 20_000).prop_map(|p| json!({"type": "fixed_price", "price": p})),
        (money(0, 20_000), money(0, 5_000), 0..6usize).prop_map(|(t, p, s)| json!({"type": "threshold_exchange", "threshold": t, "sku": format!("s{s}"), "price": p})),
        (money(0, 20_000), money(1, 2_000), any::<bool>()).prop_map(|(t, a, every)| json!({"type": "threshold_rebate", "threshold": t, "every": every, "reward": {"type": "red_packet", "amount": a}})),
        money(0, 20_000).prop_map(|t| json!({"type": "threshold_gift", "threshold": t, "reward": {"type": "points", "points": 10}})),
        Just(json!({"type": "points_multiplier", "factor": 2})),
    ];
    (
        action,
        0..3usize,
        0..4u32,
        0..3i64,
        prop::option::of(0..3usize),
        prop::option::of(money(1, 6_000)),
        prop::option::of(1u64..4),
    )
        .prop_map(move |(a, g, excl, pr, cat, budget, min_qty)| {
            let mut p = json!({"id": format!("p{i:02}"), "action": a,
                "stacking": if excl == 0 { json!({"mode": "exclusive", "priority": pr}) } else { json!({"group": format!("g{g}"), "priority": pr}) }});
            let mut k = json!({});
            if let Some(c) = cat {
                k["categories"] = json!([format!("c{c}")]);
            }
            if let Some(q) = min_qty {
                k["min_qty"] = json!(q);
            }
            p["conditions"] = k;
            if let Some(b) = budget {
                p["budget"] = json!({"kind": "money", "amount": b});
            }
            p
        })
}

fn arb_stacking_book() -> impl Strategy<Value = Vec<serde_json::Value>> {
    (0..16usize).prop_flat_map(|n| (0..n).map(arb_stacking_promo).collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The branch-and-bound search returns exactly the quote of simulating every alternative:
    /// the same applied promotions, shares, rewards, totals and reasons.
    #[test]
    fn bounded_search_matches_exhaustive(ps in arb_stacking_book(), k in arb_cart(), best in any::<bool>()) {
        let c = book(ps);
        let mode = if best { SelectMode::BestForCustomer } else { SelectMode::Priority };
        let cust = CustomerContext::default();
        let fast = quote_with(&c, &k, &cust, mode);
        let mut every = super::quote::PromoIndex::build(c.promotions());
        every.search = super::quote::Search::Exhaustive;
        let slow = super::quote::evaluate_indexed(&every, c.promotions(), c.ledger(), &k, &cust, mode, tz()).unwrap();
        prop_assert_eq!(fast, slow);
    }

    /// Remainder allocation picks the same cents as the original one-cent-at-a-time scan.
    #[test]
    fn allocation_matches_the_scan(total_frac in 0.0f64..=1.0, weights in prop::collection::vec(0i64..1_000_000, 1..24), scale in 0..4usize) {
        // Scales: the fast path (with ties among tiny weights; with sums near its limit of
        // √i64::MAX, where its floating-point quotient needs correcting) and the general one.
        let weights: Vec<i64> = match scale {
            0 => weights,
            1 => weights.iter().map(|w| w % 4).collect(),
            2 => weights.iter().map(|w| w * 120).collect(),
            _ => weights.iter().map(|w| w.saturating_mul(10_000_000)).collect(),
        };
        let sum: i64 = weights.iter().sum();
        let total = (sum as f64 * total_frac) as i64;
        let lines: Vec<usize> = (0..weights.len()).collect();
        prop_assert_eq!(super::quote::allocate(total, &lines, &weights), allocate_by_scan(total, &lines, &weights));
    }
}

/// The allocation as first written: floors, then one cent at a time to the largest remainder.
fn allocate_by_scan(total: i64, lines: &[usize], weights: &[i64]) -> Vec<(usize, i64)> {
    let sum: i128 = lines.iter().map(|&i| i128::from(weights[i])).sum();
    if total <= 0 || sum <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rem = Vec::new();
    let mut given = 0;
    for &i in lines {
        let exact = i128::from(total) * i128::from(weights[i]);
        let q = i64::try_from(exact / sum).unwrap();
        given += q;
        out.push((i, q));
        rem.push(exact % sum);
    }
    let mut left = total - given;
    while left > 0 {
        let mut best: Option<usize> = None;
        for (k, r) in rem.iter().enumerate() {
            if *r > 0 && best.is_none_or(|b| *r > rem[b]) {
                best = Some(k);
            }
        }
        let Some(k) = best else { break };
        out[k].1 += 1;
        rem[k] = 0;
        left -= 1;
    }
    out.retain(|(_, q)| *q > 0);
    out
}

#[test]
fn reasons_outside_the_chosen_alternative_are_their_own() {
    // Cart 450.00. Group g wins (G1 30.00 then G2 5% of 420.00 = 21.00 → 51.00 > E's 45.00).
    // In the losing group h: H1 (spend 1000) fails on its own → its own reason; H2 (spend
    // 440, 10 off) applies alone, so it is reported as not stacking with the chosen G1.
    let mut ps = vec![
        json!({"id": "E", "action": {"type": "percent_off", "percent": "10"}, "stacking": {"mode": "exclusive", "priority": 1}}),
        json!({"id": "G1", "action": {"type": "threshold_discount", "threshold": "300", "off": "30"}, "stacking": {"group": "g", "priority": 2}}),
        json!({"id": "G2", "action": {"type": "percent_off", "percent": "5"}, "stacking": {"group": "g", "priority": 3}}),
        json!({"id": "H1", "action": {"type": "threshold_discount", "threshold": "1000", "off": "100"}, "stacking": {"group": "h", "priority": 4}}),
        json!({"id": "H2", "action": {"type": "threshold_discount", "threshold": "440", "off": "10"}, "stacking": {"group": "h", "priority": 5}}),
    ];
    // Inside the chosen group, a member failing after the others gets that reason: G3 needs
    // 400 but only 399.00 is left after G1 and G2.
    ps.push(json!({"id": "G3", "action": {"type": "threshold_discount", "threshold": "400", "off": "5"}, "stacking": {"group": "g", "priority": 6}}));
    let c = book(ps);
    let k = cart(&[("a", "x", "450.00", 1)]);
    let q = quote(&c, &k);
    assert_eq!(q.total, d("399.00"));
    assert_eq!(reason_of(&q, "E"), Some("stacking"));
    assert_eq!(reason_of(&q, "H1"), Some("threshold"));
    assert_eq!(reason_of(&q, "H2"), Some("stacking"));
    let g3 = q.not_applied.iter().find(|n| &*n.id == "G3").unwrap();
    assert_eq!(g3.reason, super::quote::Reason::Threshold(40_000, 39_900));
    // Priority mode: E is chosen; H1 still fails on its own, the rest do not stack with E.
    let q = quote_with(&c, &k, &CustomerContext::default(), SelectMode::Priority);
    assert_eq!(q.total, d("405.00"));
    assert_eq!(reason_of(&q, "H1"), Some("threshold"));
    assert_eq!(
        (reason_of(&q, "G1"), reason_of(&q, "G3")),
        (Some("stacking"), Some("stacking"))
    );
}

#[test]
fn a_lower_tier_reached_after_other_discounts_can_be_worth_more() {
    // Cart 300.00. E alone: 20% = 60.00. Group g: G1 10% = 30.00, leaving 270.00, where G2's
    // tiers (100 → 50 off, 300 → 10 off) reach only the first tier: 50.00 → 80.00 in all.
    // G2 alone on 300.00 is worth only 10.00, so a search bounding the group by its members'
    // values alone (30 + 10 = 40 < 60) would wrongly skip it.
    let c = book(vec![
        json!({"id": "E", "action": {"type": "percent_off", "percent": "20"}, "stacking": {"mode": "exclusive", "priority": 1}}),
        json!({"id": "G1", "action": {"type": "percent_off", "percent": "10"}, "stacking": {"group": "g", "priority": 2}}),
        json!({"id": "G2", "action": {"type": "threshold_discount", "tiers": [
            {"threshold": "100", "off": "50"}, {"threshold": "300", "off": "10"}]}, "stacking": {"group": "g", "priority": 3}}),
    ]);
    let k = cart(&[("a", "x", "300.00", 1)]);
    let q = quote(&c, &k);
    assert_eq!(q.total, d("220.00"));
    assert_eq!(
        (discount_of(&q, "G1"), discount_of(&q, "G2")),
        (Some(d("30.00")), Some(d("50.00")))
    );
    assert_eq!(reason_of(&q, "E"), Some("stacking"));
}

#[test]
fn a_budget_too_small_alone_can_fit_after_other_discounts() {
    // Cart 300.00. E alone: 25% = 75.00. Group g: G1 10% = 30.00, then G2 20% of 270.00 =
    // 54.00, within its 55.00 budget (alone it would take 60.00: refused) → 84.00 > 75.00.
    let c = book(vec![
        json!({"id": "E", "action": {"type": "percent_off", "percent": "25"}, "stacking": {"mode": "exclusive", "priority": 1}}),
        json!({"id": "G1", "action": {"type": "percent_off", "percent": "10"}, "stacking": {"group": "g", "priority": 2}}),
        json!({"id": "G2", "action": {"type": "percent_off", "percent": "20"}, "budget": {"kind": "money", "amount": "55"},
            "stacking": {"group": "g", "priority": 3}}),
    ]);
    let q = quote(&c, &cart(&[("a", "x", "300.00", 1)]));
    assert_eq!(q.total, d("216.00"));
    assert_eq!(discount_of(&q, "G2"), Some(d("54.00")));
}

#[test]
fn not_applied_list_reads_and_serializes_every_entry() {
    // The book of `reasons_outside_the_chosen_alternative_are_their_own` (group g wins with
    // G1 first; E and H2 apply alone but do not stack; H1 and G3 miss their thresholds),
    // plus one ended promotion and one on another channel.
    let c = book(vec![
        json!({"id": "E", "action": {"type": "percent_off", "percent": "10"}, "stacking": {"mode": "exclusive", "priority": 1}}),
        json!({"id": "G1", "action": {"type": "threshold_discount", "threshold": "300", "off": "30"}, "stacking": {"group": "g", "priority": 2}}),
        json!({"id": "G2", "action": {"type": "percent_off", "percent": "5"}, "stacking": {"group": "g", "priority": 3}}),
        json!({"id": "H1", "action": {"type": "threshold_discount", "threshold": "1000", "off": "100"}, "stacking": {"group": "h", "priority": 4}}),
        json!({"id": "H2", "action": {"type": "threshold_discount", "threshold": "440", "off": "10"}, "stacking": {"group": "h", "priority": 5}}),
        json!({"id": "G3", "action": {"type": "threshold_discount", "threshold": "400", "off": "5"}, "stacking": {"group": "g", "priority": 6}}),
        json!({"id": "W", "conditions": {"end": "2026-01-01T00:00:00Z"}, "action": {"type": "percent_off", "percent": "50"}, "stacking": {"mode": "exclusive", "priority": 7}}),
        json!({"id": "P", "conditions": {"channels": ["pos"]}, "action": {"type": "percent_off", "percent": "50"}, "stacking": {"mode": "exclusive", "priority": 8}}),
    ]);
    let k = cart(&[("a", "x", "450.00", 1)]);
    let q = quote(&c, &k);
    let stacking = "does not stack with \"G1\", which was chosen";
    // The wire shape, entry by entry, in priority order (the applied G1 and G2 left out).
    assert_eq!(
        serde_json::to_value(&q).unwrap()["not_applied"],
        json!([
            {"id": "E", "code": "stacking", "reason": stacking},
            {"id": "H1", "code": "threshold", "reason": "eligible amount 450.00 is below the threshold 1000.00"},
            {"id": "H2", "code": "stacking", "reason": stacking},
            {"id": "G3", "code": "threshold", "reason": "eligible amount 399.00 is below the threshold 400.00"},
            {"id": "W", "code": "ended", "reason": "the promotion has ended"},
            {"id": "P", "code": "channel", "reason": "the cart's channel is not eligible"},
        ])
    );
    // Reading it: the same entries, a stacking reason naming the chosen promotion.
    use super::quote::{NotApplied, Reason};
    let na = &q.not_applied;
    assert_eq!((na.len(), na.is_empty()), (6, false));
    assert_eq!(
        na.get(0),
        Some(NotApplied {
            id: "E".into(),
            reason: Reason::Stacking("G1".into())
        })
    );
    assert_eq!(na.get(6), None);
    assert_eq!(na.reason_of("H2"), Some(Reason::Stacking("G1".into())));
    assert_eq!(na.reason_of("W"), Some(Reason::Ended));
    assert_eq!(na.reason_of("G1"), None, "applied");
    let ids: Vec<String> = na.iter().map(|n| n.id.to_string()).collect();
    assert_eq!(ids, ["E", "H1", "H2", "G3", "W", "P"]);
    // Each entry serializes alone as it does in the list.
    assert_eq!(
        serde_json::to_value(na.get(3).unwrap()).unwrap(),
        json!({"id": "G3", "code": "threshold", "reason": "eligible amount 399.00 is below the threshold 400.00"})
    );
    // Equality is by content: a book with one more promotion (so another id table) that
    // changes nothing else gives an equal list; a different reason does not.
    let mut more = c.clone();
    more.add_promotion(promo(json!({"id": "Z", "action": {"type": "percent_off", "percent": "1"}, "stacking": {"group": "g", "priority": 9}})))
        .unwrap();
    let q2 = quote(&more, &k);
    assert_eq!(
        q2.applied.len(),
        q.applied.len() + 1,
        "Z applies in group g"
    );
    assert_eq!(q2.not_applied, q.not_applied);
    let q3 = quote_with(&c, &k, &CustomerContext::default(), SelectMode::Priority);
    assert_ne!(q3.not_applied, q.not_applied);
}
