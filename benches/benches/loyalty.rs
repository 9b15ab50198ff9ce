//! Loyalty hot paths: ledger postings per second, FIFO spend across 100 buckets, and tier
//! evaluation of many members.
//!
//! `cargo bench -p userops-benches --bench loyalty` (members for the tier evaluation:
//! `LOYALTY_BENCH_MEMBERS`, default 10 000 000).
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented `pub fn`"
)]
use chrono::{DateTime, Duration, FixedOffset, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use userops::loyalty::ledger::{Earn, Entry, Spend};
use userops::loyalty::{Clawback, Ledger, Loyalty, ProgramSpec};
use userops::{Decimal, OneId};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn earn<'a>(user: u64, points: i64, key: &'a str, expires: Option<DateTime<Utc>>) -> Earn<'a> {
    Earn {
        entry: Entry {
            user: OneId(user),
            book: userops::loyalty::BookId(0),
            points,
            key,
            reason: "",
            actor: "",
            time: t0(),
        },
        expires,
        pending: false,
        order: None,
        money: None,
        lines: &[],
    }
}

/// 100 000 postings (earns, or earns and spends alternating) over 10 000 members.
fn postings(c: &mut Criterion) {
    const N: usize = 100_000;
    let keys: Vec<String> = (0..N).map(|i| format!("k{i}")).collect();
    let exp = Some(t0() + Duration::days(365));
    let mut g = c.benchmark_group("loyalty_postings");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    g.bench_function("earn_100k", |b| {
        b.iter_batched(
            || {
                let mut l = Ledger::new();
                l.open_book("p", 0, Clawback::Debt);
                l
            },
            |mut l| {
                for (i, k) in keys.iter().enumerate() {
                    l.earn(&earn((i % 10_000) as u64, 100, k, exp))
                        .expect("earn");
                }
                l
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("earn_spend_100k", |b| {
        b.iter_batched(
            || {
                let mut l = Ledger::new();
                l.open_book("p", 0, Clawback::Debt);
                l
            },
            |mut l| {
                for (i, k) in keys.iter().enumerate() {
                    let user = ((i / 2) % 10_000) as u64;
                    if i % 2 == 0 {
                        l.earn(&earn(user, 100, k, exp)).expect("earn");
                    } else {
                        l.spend(&Spend {
                            user: OneId(user),
                            book: userops::loyalty::BookId(0),
                            points: 60,
                            key: k,
                            reason: "",
                            actor: "",
                            time: t0(),
                        })
                        .expect("spend");
                    }
                }
                l
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// One spend that consumes 100 buckets, earliest expiry first.
fn fifo_spend(c: &mut Criterion) {
    let mut l = Ledger::new();
    l.open_book("p", 0, Clawback::Debt);
    let keys: Vec<String> = (0..100).map(|i| format!("e{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        // Earned in reverse expiry order so that each earn inserts at the front.
        let exp = Some(t0() + Duration::days(200 - i as i64));
        l.earn(&earn(1, 10, k, exp)).expect("earn");
    }
    let mut g = c.benchmark_group("loyalty_fifo");
    g.bench_function("spend_across_100_buckets", |b| {
        b.iter_batched(
            || l.clone(),
            |mut l| {
                let p = l
                    .spend(&Spend {
                        user: OneId(1),
                        book: userops::loyalty::BookId(0),
                        points: 1000,
                        key: "s",
                        reason: "",
                        actor: "",
                        time: t0(),
                    })
                    .expect("spend");
                assert_eq!(p.balance, 0);
                l
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// `evaluate_tiers` over many members (each with one day of growth and a tier).
fn tiers(c: &mut Criterion) {
    let n: u64 = std::env::var("LOYALTY_BENCH_MEMBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let tz = FixedOffset::east_opt(8 * 3600).unwrap();
    let spec: ProgramSpec = serde_json::from_value(serde_json::json!({
        "id": "p",
        "tiers": {"basis": "growth", "window": "rolling_12_months", "grace_days": 30,
                  "levels": [{"name": "silver", "threshold": "0"}, {"name": "gold", "threshold": "500"},
                             {"name": "platinum", "threshold": "2000"}]}
    }))
    .unwrap();
    let mut lo = Loyalty::default();
    lo.create_program(spec).unwrap();
    for u in 0..n {
        let when = t0() + Duration::days((u % 300) as i64);
        lo.record_growth("p", OneId(u), (u % 3000) as i64, Decimal::ZERO, when, tz)
            .unwrap();
    }
    let mut g = c.benchmark_group("loyalty_tiers");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    let now = t0() + Duration::days(400);
    // Evaluating is idempotent at a fixed time after the first pass (which starts the grace
    // periods), so the same state is measured every iteration.
    lo.evaluate_tiers(now, tz);
    g.bench_function(format!("evaluate_{n}_members"), |b| {
        b.iter(|| lo.evaluate_tiers(now, tz))
    });
    g.finish();
}

criterion_group!(benches, postings, fifo_spend, tiers);
criterion_main!(benches);
