//! Audience evaluation on the bitmap index: N users × 50 tags (default N = 10M; set
//! `AUDIENCE_USERS` to change it), a 5-clause expression (2 enum tags, 1 numeric range, 1 NOT,
//! 1 OR), and the range index (bit-sliced) against a sorted index. The data is a pure function
//! of (user, tag) (splitmix64), so `benches/compare/audience.py` builds the very same table for
//! pandas and DuckDB and must find the same number of members.
//!
//! `cargo bench -p userops-benches --bench audience`
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented `pub fn`"
)]
use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use roaring::RoaringBitmap;
use userops::tags::TagIndex;

pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn h(u: u32, j: u64) -> u64 {
    splitmix64(u64::from(u) * 64 + j)
}

/// Tags t0..t19 bool, t20..t34 enum, t35..t44 number (even: age 18..80, odd: spend with 1M
/// distinct cent values), t45..t49 date (days over three years).
fn build(n: u32) -> TagIndex {
    let mut ix = TagIndex::new(n);
    let users = 0..n;
    for j in 0..50u64 {
        let name = format!("t{j}");
        match j {
            0..=19 => {
                let v: Vec<Option<bool>> = users
                    .clone()
                    .map(|u| Some(h(u, j) % 100 < 10 + 4 * j))
                    .collect();
                ix.set_bools(&name, &v).expect("bench column");
            }
            20..=34 => {
                let k = 4 + j % 5;
                let names: Vec<String> = (0..k).map(|i| format!("v{i}")).collect();
                let v: Vec<Option<&str>> = users
                    .clone()
                    .map(|u| Some(names[(h(u, j) % k) as usize].as_str()))
                    .collect();
                ix.set_enums(&name, &v).expect("bench column");
            }
            35..=44 => {
                let v: Vec<Option<f64>> = users
                    .clone()
                    .map(|u| {
                        Some(if j % 2 == 1 {
                            18.0 + (h(u, j) % 63) as f64
                        } else {
                            (h(u, j) % 1_000_000) as f64 / 100.0
                        })
                    })
                    .collect();
                ix.set_numbers(&name, &v).expect("bench column");
            }
            _ => {
                let base = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap();
                let v: Vec<_> = users
                    .clone()
                    .map(|u| Some(base + chrono::TimeDelta::days((h(u, j) % 1096) as i64)))
                    .collect();
                ix.set_dates(&name, &v).expect("bench column");
            }
        }
    }
    ix
}

/// The alternative range index: (key, user) sorted by key; a range is a binary search, then the
/// matching users are sorted into a bitmap.
fn sorted_range(sorted: &[(f64, u32)], lo: f64, hi: f64) -> RoaringBitmap {
    let a = sorted.partition_point(|p| p.0 < lo);
    let b = sorted.partition_point(|p| p.0 <= hi);
    let mut users: Vec<u32> = sorted[a..b].iter().map(|p| p.1).collect();
    users.sort_unstable();
    RoaringBitmap::from_sorted_iter(users).unwrap_or_default()
}

/// CPU time of this process in ms (utime + stime from /proc, 100 ticks a second): on a shared
/// machine it is inflated less by contention than wall time.
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let ticks: f64 =
                rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?;
            Some(ticks * 10.0)
        })
        .unwrap_or(f64::NAN)
}

/// Mean wall and CPU ms per call over `n` calls.
fn cpu_and_wall(n: u32, mut f: impl FnMut()) -> (f64, f64) {
    let (t, c) = (std::time::Instant::now(), cpu_ms());
    for _ in 0..n {
        f();
    }
    (
        t.elapsed().as_secs_f64() * 1000.0 / f64::from(n),
        (cpu_ms() - c) / f64::from(n),
    )
}

pub const EXPR_SPEND: &str =
    r#"t20 = "v1" AND t21 IN ("v0", "v2") AND t36 BETWEEN 1000 AND 5000 AND NOT t1 AND (t2 OR t3)"#;
pub const EXPR_AGE: &str =
    r#"t20 = "v1" AND t21 IN ("v0", "v2") AND t35 BETWEEN 30 AND 45 AND NOT t1 AND (t2 OR t3)"#;

fn audience(c: &mut Criterion) {
    let n: u32 = std::env::var("AUDIENCE_USERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let t0 = std::time::Instant::now();
    let ix = build(n);
    eprintln!("built {n} users x 50 tags in {:.1?}", t0.elapsed());
    let now = Utc::now();
    for (label, tag) in [
        ("bool t1 (14%)", "t1"),
        ("bool t10 (50%)", "t10"),
        ("enum t20 (5 values)", "t20"),
        ("number t35 (age, 63 distinct)", "t35"),
        ("number t36 (spend, 1M distinct)", "t36"),
        ("date t45 (1096 days)", "t45"),
    ] {
        eprintln!(
            "memory {label}: {:.2} MiB",
            ix.memory(tag).unwrap_or(0) as f64 / 1048576.0
        );
    }
    let total: usize = (0..50)
        .map(|j| ix.memory(&format!("t{j}")).unwrap_or(0))
        .sum();
    eprintln!("memory all 50 tags: {:.1} MiB", total as f64 / 1048576.0);
    for e in [EXPR_SPEND, EXPR_AGE] {
        eprintln!(
            "members of {e}: {}",
            ix.evaluate(e, now).expect("bench expression").len()
        );
    }

    for (label, e) in [("spend range", EXPR_SPEND), ("age range", EXPR_AGE)] {
        let (wall, cpu) = cpu_and_wall(40, || {
            ix.evaluate(e, now).expect("eval");
        });
        eprintln!(
            "5-clause ({label}): wall {wall:.2} ms, cpu {cpu:.2} ms per evaluation (mean of 40)"
        );
    }

    let mut g = c.benchmark_group(format!("audience_{n}"));
    g.sample_size(20);
    g.bench_function("5_clause_spend_range", |b| {
        b.iter(|| ix.evaluate(EXPR_SPEND, now).expect("eval"))
    });
    g.bench_function("5_clause_age_range", |b| {
        b.iter(|| ix.evaluate(EXPR_AGE, now).expect("eval"))
    });

    // Range index: bit-sliced (what the engine uses) against a sorted index, narrow and wide.
    let spend: Vec<(f64, u32)> = {
        let mut v: Vec<(f64, u32)> = (0..n)
            .map(|u| ((h(u, 36) % 1_000_000) as f64 / 100.0, u))
            .collect();
        v.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        v
    };
    for (label, lo, hi) in [("narrow_4pct", 1000.0, 1400.0), ("wide_50pct", 0.0, 5000.0)] {
        let e = format!("t36 BETWEEN {lo:?} AND {hi:?}");
        assert_eq!(
            ix.evaluate(&e, now).expect("eval"),
            sorted_range(&spend, lo, hi)
        );
        g.bench_function(format!("range_bsi_{label}"), |b| {
            b.iter(|| ix.evaluate(&e, now).expect("eval"))
        });
        g.bench_function(format!("range_sorted_{label}"), |b| {
            b.iter(|| sorted_range(&spend, lo, hi))
        });
    }
    eprintln!(
        "memory sorted index t36: {:.1} MiB (16 bytes per user)",
        (spend.len() * std::mem::size_of::<(f64, u32)>()) as f64 / 1048576.0
    );
    g.finish();
}

criterion_group!(benches, audience);
criterion_main!(benches);
