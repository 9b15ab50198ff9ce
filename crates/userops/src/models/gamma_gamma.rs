//! Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV: Using Iso-Value Curves for
//! Customer Base Analysis"; Hardie's note 025), and discounted customer lifetime value.
//!
//! A customer's transaction values are Gamma(p, ν) with ν ~ Gamma(q, γ) across customers. For a
//! customer with `x` ≥ 1 repeat purchases of mean value `m`, the log-likelihood is
//!
//! ```text
//! ln L = lnΓ(px+q) − lnΓ(px) − lnΓ(q) + q ln γ + (px−1) ln m + px ln x − (px+q) ln(xm+γ)
//! ```
//!
//! (the density of the mean, as `lifetimes`' `GammaGammaFitter` uses it). Fitted like
//! [`BgNbdFit`](super::BgNbdFit): BFGS over ln(p, q, γ) from 0.1 each, no penalizer,
//! non-convergence is an error.

use serde::{Deserialize, Serialize};
use statrs::function::gamma::{digamma, ln_gamma};

use super::optim::minimize;
use super::{BgNbdParams, ModelError};

/// Fitted Gamma-Gamma parameters (`v` is γ, named as in `lifetimes`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    /// Shape of the per-transaction value distribution.
    pub p: f64,
    /// Shape of the distribution of the value scale across customers.
    pub q: f64,
    /// Scale of the distribution of the value scale across customers (γ).
    pub v: f64,
}

/// A converged Gamma-Gamma fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaFit {
    /// The maximum-likelihood parameters.
    pub params: GammaGammaParams,
    /// The maximized log-likelihood Σ wᵢ ln Lᵢ.
    pub log_likelihood: f64,
    /// Customers fitted (Σ weights).
    pub n: f64,
    /// Gradient evaluations the optimizer used (over any restarts).
    pub evaluations: u64,
}

fn ll_one(p: &GammaGammaParams, x: f64, m: f64) -> (f64, [f64; 3]) {
    let GammaGammaParams { p, q, v } = *p;
    let px = p * x;
    let ll = ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
        + q * v.ln()
        + (px - 1.0) * m.ln()
        + px * x.ln()
        - (px + q) * (x * m + v).ln();
    let d = digamma(px + q);
    let g = [
        x * (d - digamma(px) + m.ln() + x.ln() - (x * m + v).ln()),
        d - digamma(q) + v.ln() - (x * m + v).ln(),
        q / v - (px + q) / (x * m + v),
    ];
    (ll, g)
}

/// Validate (frequency, monetary value) for the spend model: equal lengths, frequency a whole
/// number ≥ 1, monetary value finite and > 0.
///
/// # Errors
///
/// [`ModelError::InvalidInput`] naming the first column and row that breaks a rule above.
pub fn check_fm(frequency: &[f64], monetary_value: &[f64]) -> Result<(), ModelError> {
    if frequency.len() != monetary_value.len() {
        return Err(ModelError::invalid(
            "monetary_value",
            "frequency and monetary_value must have equal length",
        ));
    }
    for (i, (&x, &m)) in frequency.iter().zip(monetary_value).enumerate() {
        if !(x.is_finite() && x >= 1.0 && x.fract() == 0.0) {
            return Err(ModelError::invalid(
                format!("frequency[{i}]"),
                format!("{x}: the spend model needs customers with ≥ 1 repeat purchase"),
            ));
        }
        if !(m.is_finite() && m > 0.0) {
            return Err(ModelError::invalid(
                format!("monetary_value[{i}]"),
                format!("{m} is not a number > 0"),
            ));
        }
    }
    Ok(())
}

impl GammaGammaFit {
    /// Fit by maximum likelihood on customers with ≥ 1 repeat purchase.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidInput`]: columns that fail [`check_fm`], weights that are not one
    /// number ≥ 0 per customer, or no customers; [`ModelError::NotConverged`] when the optimizer
    /// does not converge.
    pub fn fit(
        frequency: &[f64],
        monetary_value: &[f64],
        weights: Option<&[f64]>,
    ) -> Result<GammaGammaFit, ModelError> {
        check_fm(frequency, monetary_value)?;
        if let Some(w) = weights {
            if w.len() != frequency.len() || w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(ModelError::invalid(
                    "weights",
                    "one number ≥ 0 per customer",
                ));
            }
        }
        let n: f64 = weights.map_or(frequency.len() as f64, |w| w.iter().sum());
        if n <= 0.0 {
            return Err(ModelError::invalid("frequency", "no customers to fit"));
        }
        let objective = |lp: &[f64]| {
            let p = GammaGammaParams {
                p: lp[0].exp(),
                q: lp[1].exp(),
                v: lp[2].exp(),
            };
            let mut ll = 0.0;
            let mut g = [0.0; 3];
            for i in 0..frequency.len() {
                let w = weights.map_or(1.0, |w| w[i]);
                let (l, gi) = ll_one(&p, frequency[i], monetary_value[i]);
                ll += w * l;
                for k in 0..3 {
                    g[k] += w * gi[k];
                }
            }
            let theta = [p.p, p.q, p.v];
            let grad = (0..3).map(|k| -g[k] * theta[k] / n).collect();
            (-ll / n, grad)
        };
        let opt = minimize("Gamma-Gamma", objective, vec![0.1; 3], 1e-7, 2000)?;
        Ok(GammaGammaFit {
            params: GammaGammaParams {
                p: opt.x[0].exp(),
                q: opt.x[1].exp(),
                v: opt.x[2].exp(),
            },
            log_likelihood: -opt.cost * n,
            n,
            evaluations: opt.evaluations,
        })
    }
}

impl GammaGammaParams {
    /// E[M | x, m̄] = (pγ + p x m̄) / (p x + q − 1): the expected mean transaction value of a
    /// customer (Hardie note 025 eq. 5). Defined for q > 1; a customer with x = 0 gets the
    /// population mean pγ/(q−1).
    pub fn conditional_expected_average_profit(&self, x: f64, m: f64) -> f64 {
        let GammaGammaParams { p, q, v } = *self;
        let w = p * x / (p * x + q - 1.0);
        let population = v * p / (q - 1.0);
        (1.0 - w) * population + w * m
    }

    /// Discounted customer lifetime value as `lifetimes`' `customer_lifetime_value`:
    /// Σ_{i=1..months} E\[M\] · (E[Y(i·f)] − E[Y((i−1)·f)]) / (1 + d)^i, with
    /// `f` = periods per month (`D`: 30, `W`: 4.345, `M`: 1) of the BG/NBD time unit and `d`
    /// the monthly discount rate.
    #[expect(
        clippy::too_many_arguments,
        reason = "the parameters of `lifetimes`' `customer_lifetime_value`, which this mirrors"
    )]
    pub fn clv(
        &self,
        bgnbd: &BgNbdParams,
        x: f64,
        tx: f64,
        tt: f64,
        m: f64,
        months: u32,
        periods_per_month: f64,
        monthly_discount: f64,
    ) -> f64 {
        let value = self.conditional_expected_average_profit(x, m);
        let mut clv = 0.0;
        let mut prev = 0.0;
        for i in 1..=months {
            let t = f64::from(i) * periods_per_month;
            let cum = bgnbd.conditional_expected_purchases(t, x, tx, tt);
            clv += value * (cum - prev) / (1.0 + monthly_discount).powf(f64::from(i));
            prev = cum;
        }
        clv
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let p = GammaGammaParams {
            p: 6.25,
            q: 3.74,
            v: 15.44,
        };
        for (x, m) in [(1.0, 20.0), (4.0, 35.5), (12.0, 8.0)] {
            let (_, g) = ll_one(&p, x, m);
            let h = 1e-6;
            for k in 0..3 {
                let mut a = [p.p, p.q, p.v];
                let mut b = a;
                a[k] += h;
                b[k] -= h;
                let f = |q: [f64; 3]| {
                    ll_one(
                        &GammaGammaParams {
                            p: q[0],
                            q: q[1],
                            v: q[2],
                        },
                        x,
                        m,
                    )
                    .0
                };
                let fd = (f(a) - f(b)) / (2.0 * h);
                assert!((fd - g[k]).abs() < 1e-5 * (1.0 + g[k].abs()), "k={k}");
            }
        }
    }

    #[test]
    fn expected_profit_shrinks_to_population_mean() {
        let p = GammaGammaParams {
            p: 6.25,
            q: 3.74,
            v: 15.44,
        };
        let pop = p.v * p.p / (p.q - 1.0);
        assert!((p.conditional_expected_average_profit(0.0, 100.0) - pop).abs() < 1e-12);
        let few = p.conditional_expected_average_profit(1.0, 100.0);
        let many = p.conditional_expected_average_profit(50.0, 100.0);
        assert!(pop < few && few < many && many < 100.0);
    }

    #[test]
    fn bad_input() {
        assert!(GammaGammaFit::fit(&[0.0], &[1.0], None).is_err());
        assert!(GammaGammaFit::fit(&[1.0], &[-1.0], None).is_err());
        assert!(GammaGammaFit::fit(&[1.0], &[f64::NAN], None).is_err());
        assert!(GammaGammaFit::fit(&[], &[], None).is_err());
    }
}
