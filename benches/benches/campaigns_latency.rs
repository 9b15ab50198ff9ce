//! Promotion evaluation latency: a 20-line cart against 1,000 active promotions, timed call
//! by call (p50 / p90 / p99 / p99.9 / max), both stacking modes, through `Campaigns::quote`
//! (the cached promotion index) — the number issue 8 sets a target for (p99 < 100 µs).
//!
//! `cargo bench -p userops-benches --bench campaigns_latency` (`CALLS=n` per mode, default
//! 50,000; `ROUNDS=r` repeats the whole measurement, default 3, and every round is printed).
//! It also prints the thread's CPU time per call (`/proc/thread-self/schedstat`), which does not
//! count time spent waiting for a core on a shared machine.
#[path = "campaigns.rs"]
#[expect(
    dead_code,
    reason = "the latency bench uses only the workload builders of campaigns.rs, not its criterion groups"
)]
mod workload;

use std::hint::black_box;
use std::time::Instant;

use userops::campaigns::{CustomerContext, SelectMode};

/// Nanoseconds this thread has run on a CPU (Linux); `None` elsewhere.
fn cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() {
    let calls: usize = std::env::var("CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let book = workload::promotions(1_000);
    let k = workload::cart(20);
    let who = CustomerContext {
        oneid: Some(userops::OneId(42)),
        ..CustomerContext::default()
    };
    let tz = chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset");
    let q = book
        .quote(&k, &who, SelectMode::BestForCustomer, tz)
        .expect("bench quote");
    println!(
        "cart: 20 lines, 1000 promotions → {} applied, {} not applied, discount {}",
        q.applied.len(),
        q.not_applied.len(),
        q.discount
    );
    for round in 1..=rounds {
        for (name, mode) in [
            ("best_for_customer", SelectMode::BestForCustomer),
            ("priority", SelectMode::Priority),
        ] {
            // Warm-up: caches, the branch predictor, the allocator.
            for _ in 0..1_000 {
                black_box(
                    book.quote(black_box(&k), &who, mode, tz)
                        .expect("bench quote"),
                );
            }
            let mut wall: Vec<u64> = Vec::with_capacity(calls);
            let cpu0 = cpu_ns();
            let t0 = Instant::now();
            for _ in 0..calls {
                let t = Instant::now();
                black_box(
                    book.quote(black_box(&k), &who, mode, tz)
                        .expect("bench quote"),
                );
                wall.push(t.elapsed().as_nanos() as u64);
            }
            let total = t0.elapsed();
            let cpu = cpu0
                .zip(cpu_ns())
                .map(|(a, b)| (b - a) as f64 / calls as f64 / 1000.0);
            wall.sort_unstable();
            let p = |q: f64| wall[((wall.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
            println!(
                "round {round} {name:>17}: {calls} calls, wall p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, \
                 p99.9 {:.1} µs, max {:.1} µs; mean wall {:.1} µs, CPU {} µs/call",
                p(0.50),
                p(0.90),
                p(0.99),
                p(0.999),
                p(1.0),
                total.as_secs_f64() * 1e6 / calls as f64,
                cpu.map_or("n/a".into(), |c| format!("{c:.1}")),
            );
        }
    }
}
