//! Lifecycle stages (batch path) and the active-rate decomposition of every period, on
//! generated activity: `LIFECYCLE_USERS` users (default 200,000) over 24 months, ~20 events
//! each on average (a pure function of the seed: splitmix64).
//!
//! `cargo bench -p userops-benches --bench lifecycle`
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented `pub fn`"
)]
use criterion::{criterion_group, criterion_main, Criterion};
use userops::lifecycle::{stage_table, ActivityTable, LifecycleReport, PeriodClock, StageOptions};
use userops::Period;

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// (user, time ms) rows: each user registers (first event) in one of 24 months and is active
/// with a per-user probability in each later month.
fn activity(users: u64) -> (Vec<u64>, Vec<i64>) {
    let start = 1_704_067_200_000i64; // 2024-01-01T00:00:00Z
    let month = 30 * 86_400_000i64;
    let (mut u, mut t) = (Vec::new(), Vec::new());
    for id in 0..users {
        let h = splitmix64(id);
        let first = (h % 24) as i64;
        let p = 20 + (h >> 8) % 70;
        for m in first..24 {
            if m == first || splitmix64(h ^ m as u64) % 100 < p {
                u.push(id);
                t.push(start + m * month + (splitmix64(h + m as u64) % month as u64) as i64);
            }
        }
    }
    (u, t)
}

fn lifecycle(c: &mut Criterion) {
    let n: u64 = std::env::var("LIFECYCLE_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let (users, times) = activity(n);
    eprintln!("{n} users, {} activity events, 24 months", users.len());
    let clock = PeriodClock::new(Period::Month, 8 * 3600);
    let table = || {
        stage_table(
            ActivityTable {
                user: &users,
                time: &times,
            },
            None,
            StageOptions::new(clock),
        )
        .expect("bench data is valid")
    };
    let t = table();
    let mut g = c.benchmark_group(format!("lifecycle_{n}_users"));
    g.sample_size(10);
    g.bench_function("stages", |b| b.iter(table));
    g.bench_function("decomposition_all_periods", |b| {
        b.iter(|| LifecycleReport::from_table(&t).expect("identity holds"))
    });
    g.bench_function("stages_and_decomposition", |b| {
        b.iter(|| LifecycleReport::from_table(&table()).expect("identity holds"))
    });
    g.finish();
}

criterion_group!(benches, lifecycle);
criterion_main!(benches);
