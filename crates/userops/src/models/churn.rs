//! Churn warning: risk bands over a churn probability, and a supervised churn score by
//! logistic regression fitted with IRLS.
//!
//! **Logistic regression.** P(churn | x) = σ(β₀ + Σ βⱼ xⱼ). Fitted by iteratively reweighted
//! least squares (Newton–Raphson on the log-likelihood): β ← β + (XᵀWX)⁻¹ Xᵀ(y − p) with
//! W = diag(p(1 − p)), X with a leading column of ones, started at β = 0, until
//! max |Δβ| < 1e-10 · (1 + max |β|), at most 100 iterations; the normal equations are solved by
//! Cholesky. No regularization, so coefficients are the plain maximum-likelihood estimates (the
//! same as `statsmodels.Logit` or scikit-learn with `penalty=None`). Perfectly separable data has
//! no maximum: reported as [`ModelError::NotConverged`]; constant or collinear features make XᵀWX
//! singular: [`ModelError::InvalidInput`].
//!
//! **Explanation.** A user's score decomposes on the log-odds scale into β₀ plus the
//! contributions βⱼ·xⱼ; [`LogisticModel::contributions`] returns them.
//!
//! **AUC** is the Mann–Whitney statistic: the share of (churned, retained) pairs ranked in the
//! right order, ties counting one half.
//!
//! **Holdout.** Row i is in the holdout when `splitmix64(seed ⊕ i) / 2⁶⁴ < fraction`, so the
//! split is reproducible from the seed.

use serde::{Deserialize, Serialize};

use super::ModelError;

/// Churn risk band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RiskBand {
    /// Churn probability below the low cut-off.
    Low,
    /// Between the cut-offs.
    Mid,
    /// At or above the high cut-off.
    High,
}

impl RiskBand {
    /// The tag value.
    pub fn name(self) -> &'static str {
        match self {
            RiskBand::Low => "low",
            RiskBand::Mid => "mid",
            RiskBand::High => "high",
        }
    }
}

/// Cut-offs on a churn probability: `p < low_below` → low, `p ≥ high_from` → high, else mid.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskBands {
    /// Upper bound (exclusive) of the low band.
    pub low_below: f64,
    /// Lower bound (inclusive) of the high band.
    pub high_from: f64,
}

impl Default for RiskBands {
    /// Low below 0.3, high from 0.7.
    fn default() -> Self {
        RiskBands {
            low_below: 0.3,
            high_from: 0.7,
        }
    }
}

impl RiskBands {
    /// Cut-offs, checked: 0 ≤ low_below ≤ high_from ≤ 1.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidInput`] at `bands` when the cut-offs are not ordered within 0 to 1.
    pub fn new(low_below: f64, high_from: f64) -> Result<RiskBands, ModelError> {
        if !(0.0..=1.0).contains(&low_below)
            || !(0.0..=1.0).contains(&high_from)
            || low_below > high_from
        {
            return Err(ModelError::invalid(
                "bands",
                format!("need 0 ≤ low_below ≤ high_from ≤ 1, got {low_below} and {high_from}"),
            ));
        }
        Ok(RiskBands {
            low_below,
            high_from,
        })
    }

    /// The band of a churn probability.
    pub fn band(&self, p_churn: f64) -> RiskBand {
        if p_churn < self.low_below {
            RiskBand::Low
        } else if p_churn >= self.high_from {
            RiskBand::High
        } else {
            RiskBand::Mid
        }
    }
}

/// A fitted logistic regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogisticModel {
    /// Feature names, in column order.
    pub features: Vec<String>,
    /// β₀.
    pub intercept: f64,
    /// βⱼ per feature.
    pub coefficients: Vec<f64>,
    /// The maximized log-likelihood.
    pub log_likelihood: f64,
    /// IRLS iterations.
    pub iterations: u32,
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Solve A x = b for symmetric positive definite A (row-major, k×k) by Cholesky.
fn cholesky_solve(a: &[f64], b: &[f64], k: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; k * k];
    let scale = (0..k).map(|i| a[i * k + i].abs()).fold(0.0, f64::max);
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = a[i * k + j] - (0..j).map(|m| l[i * k + m] * l[j * k + m]).sum::<f64>();
            if i == j {
                if s <= 1e-12 * scale.max(f64::MIN_POSITIVE) {
                    return None;
                }
                l[i * k + i] = s.sqrt();
            } else {
                l[i * k + j] = s / l[j * k + j];
            }
        }
    }
    let mut y = vec![0.0; k];
    for i in 0..k {
        y[i] = (b[i] - (0..i).map(|m| l[i * k + m] * y[m]).sum::<f64>()) / l[i * k + i];
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        x[i] = (y[i] - (i + 1..k).map(|m| l[m * k + i] * x[m]).sum::<f64>()) / l[i * k + i];
    }
    Some(x)
}

fn check_xy(names: &[String], columns: &[&[f64]], labels: &[bool]) -> Result<(), ModelError> {
    if names.len() != columns.len() {
        return Err(ModelError::invalid(
            "features",
            "one name per feature column",
        ));
    }
    for (name, col) in names.iter().zip(columns) {
        if col.len() != labels.len() {
            return Err(ModelError::invalid(
                name.as_str(),
                format!("{} values for {} labels", col.len(), labels.len()),
            ));
        }
        if let Some(i) = col.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::invalid(
                format!("{name}[{i}]"),
                "not a finite number",
            ));
        }
    }
    Ok(())
}

impl LogisticModel {
    /// Fit by IRLS (see the module docs) on feature columns and 0/1 labels.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidInput`]: not one name per column, a column of another length than the
    /// labels, a value that is not finite, labels of one class only, or features that are
    /// constant or collinear; [`ModelError::NotConverged`] when the classes are separable or IRLS
    /// does not converge.
    #[expect(
        clippy::needless_range_loop,
        reason = "row i indexes the feature columns and the labels together"
    )]
    pub fn fit(
        names: &[String],
        columns: &[&[f64]],
        labels: &[bool],
    ) -> Result<LogisticModel, ModelError> {
        check_xy(names, columns, labels)?;
        let n = labels.len();
        if n == 0 || labels.iter().all(|&y| y) || labels.iter().all(|&y| !y) {
            return Err(ModelError::invalid(
                "labels",
                "need both churned and retained examples",
            ));
        }
        let k = columns.len() + 1;
        let x = |i: usize, j: usize| if j == 0 { 1.0 } else { columns[j - 1][i] };
        let mut beta = vec![0.0; k];
        for iter in 1..=100u32 {
            let mut h = vec![0.0; k * k];
            let mut g = vec![0.0; k];
            for i in 0..n {
                let z: f64 = (0..k).map(|j| beta[j] * x(i, j)).sum();
                let p = sigmoid(z);
                let w = p * (1.0 - p);
                let r = f64::from(u8::from(labels[i])) - p;
                for a in 0..k {
                    let xa = x(i, a);
                    g[a] += xa * r;
                    for b in 0..=a {
                        h[a * k + b] += w * xa * x(i, b);
                    }
                }
            }
            for a in 0..k {
                for b in 0..a {
                    h[b * k + a] = h[a * k + b];
                }
            }
            let Some(step) = cholesky_solve(&h, &g, k) else {
                return if iter == 1 {
                    Err(ModelError::invalid(
                        "features",
                        "XᵀWX is singular: a feature is constant or collinear with others",
                    ))
                } else {
                    Err(ModelError::NotConverged {
                        model: "logistic regression",
                        evaluations: u64::from(iter),
                        reason: "fitted probabilities reached 0 or 1: the classes are separable"
                            .into(),
                    })
                };
            };
            let mut biggest = 0.0f64;
            for j in 0..k {
                beta[j] += step[j];
                biggest = biggest.max(beta[j].abs());
            }
            let moved = step.iter().fold(0.0f64, |m, s| m.max(s.abs()));
            if moved < 1e-10 * (1.0 + biggest) {
                let mut model = LogisticModel {
                    features: names.to_vec(),
                    intercept: beta[0],
                    coefficients: beta[1..].to_vec(),
                    log_likelihood: 0.0,
                    iterations: iter,
                };
                model.log_likelihood = (0..n)
                    .map(|i| {
                        let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
                        let z = model.log_odds(&row);
                        // ln σ(z) and ln(1 − σ(z)) = ln σ(−z), stable for large |z|.
                        let s = if labels[i] { z } else { -z };
                        -(1.0 + (-s).exp()).ln()
                    })
                    .sum();
                return Ok(model);
            }
        }
        Err(ModelError::NotConverged {
            model: "logistic regression",
            evaluations: 100,
            reason: "coefficients still moving after 100 IRLS steps (separable classes?)".into(),
        })
    }

    /// β₀ + Σ βⱼ xⱼ for one row (features in the model's order).
    pub fn log_odds(&self, row: &[f64]) -> f64 {
        self.intercept
            + self
                .coefficients
                .iter()
                .zip(row)
                .map(|(b, x)| b * x)
                .sum::<f64>()
    }

    /// The churn probability of one row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        sigmoid(self.log_odds(row))
    }

    /// βⱼ·xⱼ per feature: what drives this row's log-odds (add the intercept for the total).
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        self.coefficients
            .iter()
            .zip(row)
            .map(|(b, x)| b * x)
            .collect()
    }

    /// Scores for columns laid out as in [`LogisticModel::fit`].
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidInput`] for another number of columns than the model's features, or
    /// columns of different lengths.
    pub fn predict_columns(&self, columns: &[&[f64]]) -> Result<Vec<f64>, ModelError> {
        if columns.len() != self.coefficients.len() {
            return Err(ModelError::invalid(
                "features",
                format!("the model has {} features", self.coefficients.len()),
            ));
        }
        let n = columns.first().map_or(0, |c| c.len());
        if let Some(j) = columns.iter().position(|c| c.len() != n) {
            return Err(ModelError::invalid(
                self.features[j].as_str(),
                "columns differ in length",
            ));
        }
        Ok((0..n)
            .map(|i| {
                let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
                self.predict(&row)
            })
            .collect())
    }
}

/// Area under the ROC curve (Mann–Whitney, ties ½); `None` without both classes.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut idx: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut pos) = (0.0, 0.0);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] {
                rank_sum += mid_rank;
                pos += 1.0;
            }
        }
        i = j + 1;
    }
    let neg = idx.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    Some((rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which rows are in the holdout (see the module docs).
pub fn holdout_mask(n: usize, fraction: f64, seed: u64) -> Vec<bool> {
    (0..n)
        .map(|i| (splitmix64(seed ^ i as u64) as f64 / 18_446_744_073_709_551_616.0) < fraction)
        .collect()
}

/// A supervised churn model fitted on the training rows, with its AUC on the holdout rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnModel {
    /// The logistic regression fitted on the training rows.
    pub model: LogisticModel,
    /// AUC on the holdout (`None` when the holdout lacks a class).
    pub auc_holdout: Option<f64>,
    /// Rows fitted on.
    pub n_train: usize,
    /// Rows held out.
    pub n_holdout: usize,
}

/// Fit on the rows outside the holdout and measure AUC on the rest.
///
/// # Errors
///
/// [`ModelError::InvalidInput`] for a holdout fraction outside [0, 1), then as
/// [`LogisticModel::fit`] on the training rows.
pub fn fit_churn_model(
    names: &[String],
    columns: &[&[f64]],
    labels: &[bool],
    holdout_fraction: f64,
    seed: u64,
) -> Result<ChurnModel, ModelError> {
    if !(0.0..1.0).contains(&holdout_fraction) {
        return Err(ModelError::invalid("holdout", "a fraction in [0, 1)"));
    }
    check_xy(names, columns, labels)?;
    let mask = holdout_mask(labels.len(), holdout_fraction, seed);
    let pick = |keep: bool| -> (Vec<Vec<f64>>, Vec<bool>) {
        let cols = columns
            .iter()
            .map(|c| {
                c.iter()
                    .zip(&mask)
                    .filter(|(_, &m)| m == keep)
                    .map(|(v, _)| *v)
                    .collect()
            })
            .collect();
        let y = labels
            .iter()
            .zip(&mask)
            .filter(|(_, &m)| m == keep)
            .map(|(v, _)| *v)
            .collect();
        (cols, y)
    };
    let (train_x, train_y) = pick(false);
    let (test_x, test_y) = pick(true);
    let tx: Vec<&[f64]> = train_x.iter().map(Vec::as_slice).collect();
    let model = LogisticModel::fit(names, &tx, &train_y)?;
    let hx: Vec<&[f64]> = test_x.iter().map(Vec::as_slice).collect();
    let scores = model.predict_columns(&hx)?;
    Ok(ChurnModel {
        auc_holdout: auc(&scores, &test_y),
        n_train: train_y.len(),
        n_holdout: test_y.len(),
        model,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulate y ~ Bernoulli(σ(−1 + 2·x₁ − 0.5·x₂)) with a fixed generator and recover β.
    #[test]
    fn recovers_known_coefficients() {
        let n = 20_000;
        let mut s = 42u64;
        let mut unif = || {
            s = splitmix64(s);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut x1 = Vec::with_capacity(n);
        let mut x2 = Vec::with_capacity(n);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let a = unif() * 2.0 - 1.0;
            let b = unif() * 4.0;
            let p = sigmoid(-1.0 + 2.0 * a - 0.5 * b);
            x1.push(a);
            x2.push(b);
            y.push(unif() < p);
        }
        let names = vec!["x1".to_owned(), "x2".to_owned()];
        let m = fit_churn_model(&names, &[&x1, &x2], &y, 0.25, 7).unwrap();
        let b = &m.model;
        assert!((b.intercept + 1.0).abs() < 0.15, "{b:?}");
        assert!((b.coefficients[0] - 2.0).abs() < 0.15, "{b:?}");
        assert!((b.coefficients[1] + 0.5).abs() < 0.08, "{b:?}");
        let auc = m.auc_holdout.unwrap();
        assert!(auc > 0.7 && auc < 0.9, "{auc}");
        assert!(m.n_holdout > 4_000 && m.n_holdout < 6_000);
        let c = b.contributions(&[0.5, 2.0]);
        assert!((c[0] - 0.5 * b.coefficients[0]).abs() < 1e-12);
    }

    #[test]
    fn separable_and_singular_data_are_reported() {
        let names = vec!["x".to_owned()];
        let x = [1.0, 2.0, 3.0, 4.0];
        let y = [false, false, true, true];
        assert!(matches!(
            LogisticModel::fit(&names, &[&x], &y),
            Err(ModelError::NotConverged { .. })
        ));
        let c = [1.0; 4];
        let y = [false, true, true, false];
        assert!(matches!(
            LogisticModel::fit(&names, &[&c], &y),
            Err(ModelError::InvalidInput { .. })
        ));
        assert!(LogisticModel::fit(&names, &[&[f64::NAN, 1.0]], &[true, false]).is_err());
    }

    #[test]
    fn auc_and_bands() {
        assert_eq!(
            auc(&[0.1, 0.2, 0.3, 0.4], &[false, false, true, true]),
            Some(1.0)
        );
        assert_eq!(auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auc(&[0.5], &[true]), None);
        let b = RiskBands::new(0.2, 0.6).unwrap();
        assert_eq!(b.band(0.1), RiskBand::Low);
        assert_eq!(b.band(0.2), RiskBand::Mid);
        assert_eq!(b.band(0.6), RiskBand::High);
        assert!(RiskBands::new(0.7, 0.2).is_err());
    }
}
