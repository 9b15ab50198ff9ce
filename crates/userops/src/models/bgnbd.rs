//! BG/NBD ("beta-geometric / negative binomial distribution", Fader, Hardie & Lee 2005,
//! "Counting Your Customers the Easy Way", Marketing Science 24(2)).
//!
//! While alive, a customer buys at Poisson rate λ ~ Gamma(r, α); after each purchase they die
//! with probability p ~ Beta(a, b). For a customer with `x` repeat purchases, the last at `t_x`,
//! observed for `T` (see [`summary_data`](super::summary_data)), the log-likelihood is
//! (FHL 2005 eq. 6, in the log-sum-exp form of Hardie's note 004):
//!
//! ```text
//! ln L = lnΓ(r+x) − lnΓ(r) + r ln α
//!      + lnΓ(a+b) + lnΓ(b+x) − lnΓ(b) − lnΓ(a+b+x)
//!      + ln( (α+T)^−(r+x) + [x>0] · a/(b+x−1) · (α+t_x)^−(r+x) )
//! ```
//!
//! The fit maximizes the sum over customers (optionally weighted by a count of identical
//! customers) with BFGS over the logarithms of (r, α, a, b), starting from ln θ = 0.1 each, with
//! time rescaled internally so that the longest T is 1 (as `lifetimes` does; the reported
//! parameters and log-likelihood are in the caller's units). Converged means the L2 norm of the
//! gradient of the mean negative log-likelihood (in ln θ) is ≤ 1e-7, at least as strict as the
//! max-norm test scipy's BFGS applies for `lifetimes` (`tol=1e-7`). No penalizer. A fit that does not
//! converge is an error ([`ModelError::NotConverged`]), never a silent result; so is a fit whose
//! parameters run off to the boundary (|ln θ| > 10 in rescaled time), where the likelihood has a
//! supremum but no maximum, or whose Hessian is not positive definite (a direction along which
//! the likelihood is flat: for example, when nobody ever repeats, a and b do not enter it).

use serde::{Deserialize, Serialize};
use statrs::function::gamma::{digamma, ln_gamma};

use super::optim::minimize;
use super::ModelError;

/// Fitted BG/NBD parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    /// Shape of the purchase-rate gamma distribution.
    pub r: f64,
    /// Scale of the purchase-rate gamma distribution (in the caller's time unit).
    pub alpha: f64,
    /// First shape of the dropout-probability beta distribution.
    pub a: f64,
    /// Second shape of the dropout-probability beta distribution.
    pub b: f64,
}

/// A converged BG/NBD fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BgNbdFit {
    /// The maximum-likelihood parameters.
    pub params: BgNbdParams,
    /// The maximized log-likelihood Σ wᵢ ln Lᵢ (caller's time units).
    pub log_likelihood: f64,
    /// Customers fitted (Σ weights).
    pub n: f64,
    /// Gradient evaluations the optimizer used (over any restarts).
    pub evaluations: u64,
}

/// Validate (frequency, recency, T) columns: finite, frequency a whole number ≥ 0,
/// 0 ≤ recency ≤ T, recency > 0 when frequency > 0, same lengths.
///
/// # Errors
///
/// [`ModelError::InvalidInput`] naming the first column and row that breaks a rule above.
pub fn check_frt(frequency: &[f64], recency: &[f64], t: &[f64]) -> Result<(), ModelError> {
    if recency.len() != frequency.len() || t.len() != frequency.len() {
        return Err(ModelError::invalid(
            "recency",
            "frequency, recency and T must have equal length",
        ));
    }
    for (i, ((&x, &tx), &tt)) in frequency.iter().zip(recency).zip(t).enumerate() {
        let bad =
            |field: &str, reason: String| ModelError::invalid(format!("{field}[{i}]"), reason);
        if !x.is_finite() || x < 0.0 || x.fract() != 0.0 {
            return Err(bad("frequency", format!("{x} is not a whole number ≥ 0")));
        }
        if !tx.is_finite() || tx < 0.0 {
            return Err(bad("recency", format!("{tx} is not a number ≥ 0")));
        }
        if !tt.is_finite() || tt <= 0.0 {
            return Err(bad("T", format!("{tt} is not a number > 0")));
        }
        if tx > tt {
            return Err(bad("recency", format!("recency {tx} exceeds T {tt}")));
        }
        if x > 0.0 && tx == 0.0 {
            return Err(bad(
                "recency",
                format!("frequency {x} > 0 needs a recency > 0"),
            ));
        }
    }
    Ok(())
}

/// The parts of ln L (and of its gradient) that depend on the parameters and x only: computed
/// once per distinct frequency per evaluation, since frequencies repeat across customers.
struct XTerms {
    /// lnΓ(r+x) − lnΓ(r) + lnΓ(a+b) + lnΓ(b+x) − lnΓ(b) − lnΓ(a+b+x).
    gammas: f64,
    /// ψ(r+x) − ψ(r).
    d_r: f64,
    /// ψ(a+b) − ψ(a+b+x).
    d_ab: f64,
    /// ψ(b+x) − ψ(b).
    d_b: f64,
}

fn x_terms(p: &BgNbdParams, x: f64) -> XTerms {
    let BgNbdParams { r, a, b, .. } = *p;
    XTerms {
        gammas: ln_gamma(r + x) - ln_gamma(r) + ln_gamma(a + b) + ln_gamma(b + x)
            - ln_gamma(b)
            - ln_gamma(a + b + x),
        d_r: digamma(r + x) - digamma(r),
        d_ab: digamma(a + b) - digamma(a + b + x),
        d_b: digamma(b + x) - digamma(b),
    }
}

/// Per-customer log-likelihood and its gradient with respect to (r, α, a, b).
fn ll_with(p: &BgNbdParams, xt: &XTerms, x: f64, tx: f64, tt: f64) -> (f64, [f64; 4]) {
    let BgNbdParams { r, alpha, a, b } = *p;
    let ln_alpha = alpha.ln();
    let ln_at = (alpha + tt).ln();
    let a3 = -(r + x) * ln_at;
    let (lse, w3, w4, ln_ax) = if x > 0.0 {
        let ln_ax = (alpha + tx).ln();
        let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * ln_ax;
        let m = a3.max(a4);
        let (e3, e4) = ((a3 - m).exp(), (a4 - m).exp());
        (m + (e3 + e4).ln(), e3 / (e3 + e4), e4 / (e3 + e4), ln_ax)
    } else {
        (a3, 1.0, 0.0, 0.0)
    };
    let ll = xt.gammas + r * ln_alpha + lse;
    let g = [
        xt.d_r + ln_alpha - w3 * ln_at - w4 * ln_ax,
        r / alpha - w3 * (r + x) / (alpha + tt) - w4 * (r + x) / (alpha + tx),
        xt.d_ab + w4 / a,
        xt.d_ab + xt.d_b - if x > 0.0 { w4 / (b + x - 1.0) } else { 0.0 },
    ];
    (ll, g)
}

#[cfg(test)]
fn ll_one(p: &BgNbdParams, x: f64, tx: f64, tt: f64) -> (f64, [f64; 4]) {
    ll_with(p, &x_terms(p, x), x, tx, tt)
}

/// The BG/NBD log-likelihood Σ wᵢ ln Lᵢ at `params` (weights default to 1).
///
/// # Errors
///
/// [`ModelError::InvalidInput`]: columns that fail [`check_frt`], or a parameter that is not a
/// finite number above 0.
pub fn log_likelihood(
    params: &BgNbdParams,
    frequency: &[f64],
    recency: &[f64],
    t: &[f64],
    weights: Option<&[f64]>,
) -> Result<f64, ModelError> {
    check_frt(frequency, recency, t)?;
    check_params(params)?;
    Ok((0..frequency.len())
        .map(|i| {
            let xt = x_terms(params, frequency[i]);
            weights.map_or(1.0, |w| w[i]) * ll_with(params, &xt, frequency[i], recency[i], t[i]).0
        })
        .sum())
}

fn check_params(p: &BgNbdParams) -> Result<(), ModelError> {
    for (name, v) in [("r", p.r), ("alpha", p.alpha), ("a", p.a), ("b", p.b)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(ModelError::invalid(
                name,
                format!("{v} is not a number > 0"),
            ));
        }
    }
    Ok(())
}

fn check_weights(weights: Option<&[f64]>, n: usize) -> Result<(), ModelError> {
    if let Some(w) = weights {
        if w.len() != n {
            return Err(ModelError::invalid("weights", "one weight per customer"));
        }
        if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(ModelError::invalid(
                format!("weights[{i}]"),
                "not a number ≥ 0",
            ));
        }
    }
    Ok(())
}

impl BgNbdFit {
    /// Fit by maximum likelihood (see the module docs). Errors on invalid input (NaN, negative
    /// values, T < recency, frequency > 0 with recency 0, no customers) and on non-convergence.
    ///
    /// ```
    /// use userops::models::{BgNbdFit, ModelError};
    /// let f = [0.0, 1.0, 3.0, 0.0, 2.0, 5.0, 0.0, 1.0];
    /// let rec = [0.0, 10.0, 30.0, 0.0, 20.0, 35.0, 0.0, 3.0];
    /// let t = [40.0, 38.0, 39.0, 20.0, 36.0, 40.0, 10.0, 30.0];
    /// // Eight customers do not pin down four parameters: reported, not fitted.
    /// let err = BgNbdFit::fit(&f, &rec, &t, None).unwrap_err();
    /// assert!(matches!(err, ModelError::NotConverged { .. }));
    /// // Bad input is a typed error too: recency beyond T.
    /// let err = BgNbdFit::fit(&[1.0], &[50.0], &[40.0], None).unwrap_err();
    /// assert!(matches!(err, ModelError::InvalidInput { .. }));
    /// ```
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidInput`]: columns that fail [`check_frt`], weights that are not one
    /// number ≥ 0 per customer, or no customers (weights summing to 0);
    /// [`ModelError::NotConverged`] when the optimizer does not converge (no parameters are
    /// reported).
    pub fn fit(
        frequency: &[f64],
        recency: &[f64],
        t: &[f64],
        weights: Option<&[f64]>,
    ) -> Result<BgNbdFit, ModelError> {
        check_frt(frequency, recency, t)?;
        check_weights(weights, frequency.len())?;
        let n: f64 = weights.map_or(frequency.len() as f64, |w| w.iter().sum());
        if n <= 0.0 {
            return Err(ModelError::invalid("frequency", "no customers to fit"));
        }
        let scale = 1.0 / t.iter().copied().fold(0.0, f64::max);
        let rs: Vec<f64> = recency.iter().map(|v| v * scale).collect();
        let ts: Vec<f64> = t.iter().map(|v| v * scale).collect();
        let mut distinct: Vec<f64> = frequency.to_vec();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let which: Vec<usize> = frequency
            .iter()
            .map(|x| distinct.partition_point(|d| d < x))
            .collect();
        // Mean negative log-likelihood over ln θ, in rescaled time.
        let objective = |lp: &[f64]| {
            let p = BgNbdParams {
                r: lp[0].exp(),
                alpha: lp[1].exp(),
                a: lp[2].exp(),
                b: lp[3].exp(),
            };
            let terms: Vec<XTerms> = distinct.iter().map(|&x| x_terms(&p, x)).collect();
            let mut ll = 0.0;
            let mut g = [0.0; 4];
            for i in 0..frequency.len() {
                let w = weights.map_or(1.0, |w| w[i]);
                let (l, gi) = ll_with(&p, &terms[which[i]], frequency[i], rs[i], ts[i]);
                ll += w * l;
                for k in 0..4 {
                    g[k] += w * gi[k];
                }
            }
            let theta = [p.r, p.alpha, p.a, p.b];
            let grad: Vec<f64> = (0..4).map(|k| -g[k] * theta[k] / n).collect();
            (-ll / n, grad)
        };
        let opt = minimize("BG/NBD", objective, vec![0.1; 4], 1e-7, 2000)?;
        let params = BgNbdParams {
            r: opt.x[0].exp(),
            alpha: opt.x[1].exp() / scale,
            a: opt.x[2].exp(),
            b: opt.x[3].exp(),
        };
        // Back to the caller's units: rescaling time by s shifts each ln Lᵢ by −xᵢ ln s.
        let sum_x: f64 = (0..frequency.len())
            .map(|i| weights.map_or(1.0, |w| w[i]) * frequency[i])
            .sum();
        let log_likelihood = -opt.cost * n + sum_x * scale.ln();
        Ok(BgNbdFit {
            params,
            log_likelihood,
            n,
            evaluations: opt.evaluations,
        })
    }
}

impl BgNbdParams {
    /// P(alive at T | x, t_x, T) = 1 / (1 + \[x>0\] · a/(b+x−1) · ((α+T)/(α+t_x))^(r+x))
    /// (FHL 2005 eq. 13); 1 for x = 0.
    pub fn p_alive(&self, x: f64, tx: f64, tt: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        let log_div = (r + x) * ((alpha + tt) / (alpha + tx)).ln() + (a / (b + x - 1.0)).ln();
        1.0 / (1.0 + log_div.exp())
    }

    /// E[X(t)]: expected purchases in `t` periods by a new customer (FHL 2005 eq. 9).
    pub fn expected_purchases(&self, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let z = t / (alpha + t);
        (a + b - 1.0) / (a - 1.0)
            * (1.0 - (alpha / (alpha + t)).powf(r) * hyp2f1(r, b, a + b - 1.0, z))
    }

    /// E[Y(t) | x, t_x, T]: expected purchases in the next `t` periods by a customer with this
    /// history (FHL 2005 eq. 10).
    pub fn conditional_expected_purchases(&self, t: f64, x: f64, tx: f64, tt: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let z = t / (alpha + tt + t);
        let first = (a + b + x - 1.0) / (a - 1.0);
        let second = 1.0
            - ((alpha + tt) / (alpha + tt + t)).powf(r + x)
                * hyp2f1(r + x, b + x, a + b + x - 1.0, z);
        let numerator = first * second;
        let denom = 1.0
            + if x > 0.0 {
                a / (b + x - 1.0) * ((alpha + tt) / (alpha + tx)).powf(r + x)
            } else {
                0.0
            };
        numerator / denom
    }
}

/// Gauss hypergeometric ₂F₁(a, b; c; z) for 0 ≤ z < 1 by its power series, summed until the
/// terms stop changing the sum (the series converges for |z| < 1, which eq. 9 and 10 guarantee).
pub(crate) fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 0..100_000 {
        let k = f64::from(k);
        term *= (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        sum += term;
        if term.abs() <= 1e-15 * sum.abs() {
            break;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd_check(p: BgNbdParams, x: f64, tx: f64, tt: f64) {
        let (_, g) = ll_one(&p, x, tx, tt);
        let h = 1e-6;
        let bump = |k: usize, d: f64| {
            let mut q = [p.r, p.alpha, p.a, p.b];
            q[k] += d;
            ll_one(
                &BgNbdParams {
                    r: q[0],
                    alpha: q[1],
                    a: q[2],
                    b: q[3],
                },
                x,
                tx,
                tt,
            )
            .0
        };
        for (k, gk) in g.iter().enumerate() {
            let fd = (bump(k, h) - bump(k, -h)) / (2.0 * h);
            assert!(
                (fd - gk).abs() < 1e-5 * (1.0 + gk.abs()),
                "k={k} fd={fd} g={gk}"
            );
        }
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let p = BgNbdParams {
            r: 0.24,
            alpha: 4.4,
            a: 0.79,
            b: 2.4,
        };
        fd_check(p, 0.0, 0.0, 38.0);
        fd_check(p, 1.0, 30.4, 38.9);
        fd_check(p, 7.0, 12.0, 30.0);
    }

    #[test]
    fn cdnow_published_values() {
        // FHL 2005 report for the CDNOW sample: r=0.243, α=4.414, a=0.793, b=2.426, LL=−9582.4.
        // For a customer with x=2, t_x=30.43, T=38.86, E[Y(39)] = 1.226 (Hardie note 004).
        let p = BgNbdParams {
            r: 0.242594,
            alpha: 4.413593,
            a: 0.792919,
            b: 2.425959,
        };
        let y = p.conditional_expected_purchases(39.0, 2.0, 30.43, 38.86);
        assert!((y - 1.226).abs() < 1e-3, "{y}");
        assert!(p.p_alive(0.0, 0.0, 10.0) == 1.0);
        let pa = p.p_alive(2.0, 30.43, 38.86);
        assert!(pa > 0.5 && pa < 1.0);
        // E[X(t)] grows with t and starts at 0.
        assert!(p.expected_purchases(0.0).abs() < 1e-12);
        assert!(p.expected_purchases(52.0) > p.expected_purchases(26.0));
    }

    #[test]
    fn bad_input_is_rejected() {
        let e = |f: &[f64], r: &[f64], t: &[f64]| BgNbdFit::fit(f, r, t, None).unwrap_err();
        assert!(matches!(
            e(&[1.0], &[0.0], &[5.0]),
            ModelError::InvalidInput { .. }
        ));
        assert!(matches!(
            e(&[1.0], &[6.0], &[5.0]),
            ModelError::InvalidInput { .. }
        ));
        assert!(matches!(
            e(&[f64::NAN], &[1.0], &[5.0]),
            ModelError::InvalidInput { .. }
        ));
        assert!(matches!(
            e(&[-1.0], &[1.0], &[5.0]),
            ModelError::InvalidInput { .. }
        ));
        assert!(matches!(e(&[], &[], &[]), ModelError::InvalidInput { .. }));
    }

    #[test]
    fn degenerate_data_reports_non_convergence() {
        // Nobody ever repeats: the likelihood rises without bound as r → 0, so no maximum.
        let n = 50;
        let f = vec![0.0; n];
        let r = vec![0.0; n];
        let t: Vec<f64> = (0..n).map(|i| 10.0 + i as f64).collect();
        match BgNbdFit::fit(&f, &r, &t, None) {
            Err(ModelError::NotConverged { .. }) => {}
            other => panic!("expected NotConverged, got {other:?}"),
        }
    }
}
