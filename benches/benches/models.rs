//! RFM on generated orders and the BG/NBD maximum-likelihood fit on generated summaries.
//! `MODELS_ORDERS` (default 1,000,000 orders over 100,000 customers) sizes the RFM input;
//! the BG/NBD fits run on 2,000 and 100,000 customers (`MODELS_BGNBD_MAX` to change the
//! larger). Data: splitmix64 of the row index.
//!
//! `cargo bench -p userops-benches --bench models`
use criterion::{criterion_group, criterion_main, Criterion};
use userops::models::{rfm, summary_data, BgNbdFit, Freq, RfmSpec};

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const DAY: i64 = 86_400;
const END: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z

/// `n` orders over `customers` customers in the year before END.
fn orders(n: u64, customers: u64) -> (Vec<u64>, Vec<i64>, Vec<f64>) {
    let (mut c, mut t, mut a) = (
        Vec::with_capacity(n as usize),
        Vec::with_capacity(n as usize),
        Vec::with_capacity(n as usize),
    );
    for i in 0..n {
        let h = splitmix64(i);
        c.push(h % customers);
        t.push(END - 365 * DAY + ((h >> 20) % (365 * DAY as u64)) as i64);
        a.push(5.0 + ((h >> 40) % 50_000) as f64 / 100.0);
    }
    (c, t, a)
}

/// A BG/NBD-like history: per customer a purchase rate and a dropout chance.
fn history(customers: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (mut cs, mut ts) = (Vec::new(), Vec::new());
    for c in 0..customers {
        let h = splitmix64(c ^ 0xABCD);
        let rate = 0.005 + (h % 1000) as f64 / 1000.0 * 0.08;
        let mut day = (h >> 12) % 300;
        let mut k = 0u64;
        loop {
            cs.push(c);
            ts.push(END - 365 * DAY + day as i64 * DAY);
            k += 1;
            let u = splitmix64(h + k);
            if u % 100 < 10 {
                break;
            }
            let gap = -((1.0 - (u >> 11) as f64 / (1u64 << 53) as f64).ln()) / rate;
            day += 1 + gap as u64;
            if day >= 365 {
                break;
            }
        }
    }
    let s = summary_data(&cs, &ts, None, Some(END), Freq::Day).expect("bench data is valid");
    let keep: Vec<usize> = (0..s.frequency.len()).filter(|&i| s.t[i] > 0.0).collect();
    let pick = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    (pick(&s.frequency), pick(&s.recency), pick(&s.t))
}

fn models(c: &mut Criterion) {
    let n: u64 = std::env::var("MODELS_ORDERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (cu, ti, am) = orders(n, (n / 10).max(1));
    let spec = RfmSpec::as_of(END);
    let mut g = c.benchmark_group("models");
    g.sample_size(10);
    g.bench_function(format!("rfm_{n}_orders"), |b| {
        b.iter(|| rfm(&cu, &ti, &am, &spec).expect("rfm"))
    });
    let big: u64 = std::env::var("MODELS_BGNBD_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    for customers in [2_000u64, big] {
        let (f, r, t) = history(customers);
        let fit = match BgNbdFit::fit(&f, &r, &t, None) {
            Ok(fit) => fit,
            Err(e) => {
                // The generator is not the BG/NBD story; say so instead of timing a failure.
                eprintln!("bgnbd {customers} customers: not timed, fit failed: {e}");
                continue;
            }
        };
        eprintln!(
            "bgnbd {customers} customers ({} with T > 0): params {:?}, log-likelihood {:.6}, {} gradient evaluations",
            f.len(),
            fit.params,
            fit.log_likelihood,
            fit.evaluations
        );
        g.bench_function(format!("bgnbd_fit_{customers}_customers"), |b| {
            b.iter(|| BgNbdFit::fit(&f, &r, &t, None).expect("fit"))
        });
    }
    g.finish();
}

criterion_group!(benches, models);
criterion_main!(benches);
