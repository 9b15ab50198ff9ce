//! Promotion evaluation: a 20-line cart against 1,000 active promotions.
//!
//! Criterion measures the mean/median; afterwards the bench times 20,000 single evaluations
//! one by one and prints p50 / p99 / max (criterion reports no tail percentiles).
//!
//! `cargo bench -p userops-benches --bench campaigns`
#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented `pub fn`; not `expect`, as it does not fire \
              where campaigns_latency.rs includes this file as a module"
)]
use std::time::Instant;

use criterion::{black_box, criterion_group, Criterion};
use userops::campaigns::{Campaigns, Cart, CustomerContext, Promotion, SelectMode};

/// A small deterministic generator (xorshift64*), so every run sees the same promotions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SKUS: u64 = 2_000;
const CATEGORIES: u64 = 50;

fn category_of(sku: u64) -> u64 {
    sku % CATEGORIES
}

/// 1,000 promotions: 40% category-targeted, 30% sku-targeted, 10% whole-cart, 10% gifts and
/// rebates, 10% gated on channel / hours that this cart does not meet; 20% exclusive, the rest
/// in 10 stacking groups; a third with budgets and per-user limits.
pub fn promotions(n: usize) -> Campaigns {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut c = Campaigns::default();
    for i in 0..n {
        let kind = r.below(10);
        let cats: Vec<String> = (0..1 + r.below(3))
            .map(|_| format!("c{}", r.below(CATEGORIES)))
            .collect();
        let skus: Vec<String> = (0..3).map(|_| format!("s{}", r.below(SKUS))).collect();
        let (conditions, action) = match kind {
            0..=3 => (
                serde_json::json!({"categories": cats}),
                if r.below(2) == 0 {
                    serde_json::json!({"type": "percent_off", "percent": format!("{}", 5 + r.below(20))})
                } else {
                    serde_json::json!({"type": "threshold_discount", "threshold": format!("{}", 50 + r.below(300)), "off": format!("{}", 5 + r.below(40))})
                },
            ),
            4..=6 => (
                serde_json::json!({"skus": skus}),
                if r.below(2) == 0 {
                    serde_json::json!({"type": "fixed_price", "price": format!("{}.90", r.below(50))})
                } else {
                    serde_json::json!({"type": "percent_off", "percent": "15"})
                },
            ),
            7 => (
                serde_json::json!({}),
                serde_json::json!({"type": "threshold_discount", "tiers": [
                    {"threshold": "200", "off": "10"}, {"threshold": "500", "off": "40"}, {"threshold": "1000", "off": "100"}]}),
            ),
            8 => (
                serde_json::json!({"categories": cats}),
                serde_json::json!({"type": "threshold_rebate", "threshold": "100",
                    "reward": {"type": "coupon", "template": "t1", "kind": "consumption"}, "every": true}),
            ),
            _ => (
                serde_json::json!({"channels": ["pos"], "hours": [20, 23]}),
                serde_json::json!({"type": "percent_off", "percent": "30"}),
            ),
        };
        let stacking = if r.below(5) == 0 {
            serde_json::json!({"mode": "exclusive", "priority": r.below(100)})
        } else {
            serde_json::json!({"mode": "stackable", "group": format!("g{}", r.below(10)), "priority": r.below(100)})
        };
        let mut p = serde_json::json!({"id": format!("p{i:04}"), "conditions": conditions,
            "action": action, "stacking": stacking});
        if r.below(3) == 0 {
            p["budget"] = serde_json::json!({"kind": "money", "amount": "100000"});
            p["limits"] = serde_json::json!({"per_user": 3, "total": 100000});
        }
        let p: Promotion = serde_json::from_value(p).expect("bench promotion parses");
        c.add_promotion(p).expect("bench promotion is valid");
    }
    c
}

/// A 20-line cart of random skus.
pub fn cart(lines: usize) -> Cart {
    let mut r = Rng(0x1234_5678_9abc_def1);
    let lines: Vec<serde_json::Value> = (0..lines)
        .map(|_| {
            let s = r.below(SKUS);
            serde_json::json!({"sku": format!("s{s}"), "category": format!("c{}", category_of(s)),
                "price": format!("{}.{:02}", 5 + r.below(200), r.below(100)), "qty": 1 + r.below(3)})
        })
        .collect();
    serde_json::from_value(serde_json::json!({"time": "2026-03-02T10:00:00+08:00",
        "channel": "app", "region": "sh", "lines": lines}))
    .expect("bench cart parses")
}

fn tz() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

fn evaluate(c: &mut Criterion) {
    let book = promotions(1_000);
    let k = cart(20);
    let who = CustomerContext {
        oneid: Some(userops::OneId(42)),
        ..CustomerContext::default()
    };
    let mut g = c.benchmark_group("promotions");
    for (name, mode) in [
        ("best_for_customer", SelectMode::BestForCustomer),
        ("priority", SelectMode::Priority),
    ] {
        g.bench_function(format!("evaluate_20_lines_1000_promotions_{name}"), |b| {
            b.iter(|| {
                book.quote(black_box(&k), &who, mode, tz())
                    .expect("bench quote")
            })
        });
    }
    g.finish();
}

fn percentiles() {
    let book = promotions(1_000);
    let k = cart(20);
    let who = CustomerContext {
        oneid: Some(userops::OneId(42)),
        ..CustomerContext::default()
    };
    let q = book
        .quote(&k, &who, SelectMode::BestForCustomer, tz())
        .expect("bench quote");
    println!(
        "cart: 20 lines, 1000 promotions → {} applied, {} not applied, discount {}",
        q.applied.len(),
        q.not_applied.len(),
        q.discount
    );
    for (name, mode) in [
        ("best_for_customer", SelectMode::BestForCustomer),
        ("priority", SelectMode::Priority),
    ] {
        // Wall clock per call: on a shared, overloaded machine it includes time spent
        // waiting for a core (see benches/README.md for CPU time per call from `perf stat`).
        let mut wall: Vec<u128> = Vec::with_capacity(20_000);
        for _ in 0..20_000 {
            let t = Instant::now();
            black_box(
                book.quote(black_box(&k), &who, mode, tz())
                    .expect("bench quote"),
            );
            wall.push(t.elapsed().as_nanos());
        }
        wall.sort_unstable();
        let p = |q: f64| wall[((wall.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
        println!(
            "evaluate ({name}), 20,000 single calls: wall p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            p(0.50),
            p(0.99),
            p(1.0),
        );
    }
}

criterion_group!(benches, evaluate);

fn main() {
    // PERCENTILES_ONLY=1 skips criterion (for profiling the single-call loop).
    if std::env::var_os("PERCENTILES_ONLY").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    percentiles();
}
