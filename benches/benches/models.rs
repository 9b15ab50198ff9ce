//! RFM on generated orders and the BG/NBD maximum-likelihood fit on generated summaries.
//! `MODELS_ORDERS` (default 1,000,000 orders over 100,000 customers) sizes the RFM input;
//! the BG/NBD fits run on 2,000 and 100,000 customers (`MODELS_BGNBD_MAX` to change the
//! larger). Orders: splitmix64 of the row index; BG/NBD customers: simulated from the model.
//!
//! `cargo bench -p userops-benches --bench models`
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented `pub fn`"
)]
use criterion::{criterion_group, criterion_main, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma};
use userops::models::{rfm, BgNbdFit, RfmSpec};

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

/// Customers drawn from the BG/NBD story itself (the same parameters as
/// `benches/compare/models_bench.py`: r = 0.25, α = 4, a = 0.8, b = 2.5, T uniform on
/// [1, 52] weeks), so the likelihood has an interior maximum near those parameters and the
/// fit is timed on data it can fit. Each customer buys at Poisson rate λ ~ Gamma(r, 1/α) and
/// drops out after each purchase with probability p ~ Beta(a, b).
fn history(customers: u64) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(customers);
    let rate = Gamma::<f64>::new(0.25, 1.0 / 4.0).expect("valid gamma");
    let dropout = Beta::<f64>::new(0.8, 2.5).expect("valid beta");
    let (mut f, mut r, mut t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..customers {
        let big_t: f64 = rng.random_range(1.0..52.0);
        let lambda: f64 = rate.sample(&mut rng).max(1e-12);
        let p: f64 = dropout.sample(&mut rng);
        let gap = Exp::new(lambda).expect("positive rate");
        let (mut now, mut x, mut last) = (0.0, 0.0, 0.0);
        loop {
            now += gap.sample(&mut rng);
            if now > big_t {
                break;
            }
            x += 1.0;
            last = now;
            if rng.random::<f64>() < p {
                break;
            }
        }
        f.push(x);
        r.push(last);
        t.push(big_t);
    }
    (f, r, t)
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
                eprintln!("bgnbd {customers} customers: not timed, fit failed: {e}");
                continue;
            }
        };
        eprintln!(
            "bgnbd {customers} customers ({} rows): params {:?}, log-likelihood {:.6}, {} gradient evaluations",
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
