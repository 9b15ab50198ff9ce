//! User models (SPEC §5): transaction summary, RFM, BG/NBD and Gamma-Gamma, supervised churn,
//! preferences, activity score and high-value screening.
//!
//! Every model is a pure function over typed columns (slices of equal length), so that a data
//! scientist can reproduce each number from its documented definition. The engine commands
//! ([`ModelsCommand`]) feed them from the orders and behaviours the engine has ingested.
//!
//! Statistical models work in `f64` (amounts are converted from `Decimal` at the boundary).

mod activity;
mod bgnbd;
mod churn;
mod commands;
mod gamma_gamma;
mod high_value;
mod optim;
mod person;
mod preference;
mod query;
mod rfm;
mod summary;

pub use activity::{activity_scores, ActivityLevels, ActivityScores};
pub use bgnbd::{check_frt, log_likelihood as bgnbd_log_likelihood, BgNbdFit, BgNbdParams};
pub use churn::{
    auc, fit_churn_model, holdout_mask, ChurnModel, LogisticModel, RiskBand, RiskBands,
};
pub(crate) use commands::ModelsLog;
pub use commands::{
    ActivityRow, ChurnRisk, ChurnRow, CrossRow, Dimension, HighValueRow, ModelsCommand,
    ModelsOutput, PreferenceRow, RfmRow, SupervisedChurn, SupervisedChurnRow, CHURN_FEATURES,
};
pub use gamma_gamma::{check_fm, GammaGammaFit, GammaGammaParams};
pub use high_value::{high_value_features, HighValueFeatures, HighValueInput, HighValueRule};
pub use preference::{cross_table, lookback_start, preferences, price_band, Preferences};
pub(crate) use query::ModelsReads;
pub use rfm::{
    quantile_scores, rfm, rfm_with_progress, Monetary, Rfm, RfmScale, RfmSpec, Segment, Split,
};
pub use summary::{calibration_and_holdout, summary_data, CalibrationHoldout, Freq, Summary};

#[cfg(test)]
mod definition_tests;

/// What can go wrong in a model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Input that the model cannot take (NaN, a negative amount, T < recency, ...).
    #[error("invalid model input at `{field}`: {reason}")]
    InvalidInput {
        /// The offending column (and row, as `recency[12]`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A maximum-likelihood or IRLS fit that did not converge: no parameters are reported.
    #[error("{model} fit did not converge after {evaluations} evaluations: {reason}")]
    NotConverged {
        /// Which model.
        model: &'static str,
        /// Gradient evaluations (or IRLS steps) run.
        evaluations: u64,
        /// Why it stopped.
        reason: String,
    },
    /// The caller's [`Progress`](crate::Progress) hook stopped the computation.
    #[error("stopped by the progress hook")]
    Interrupted,
}

impl From<crate::progress::Interrupted> for ModelError {
    fn from(_: crate::progress::Interrupted) -> Self {
        ModelError::Interrupted
    }
}

impl ModelError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<ModelError> for crate::Error {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::InvalidInput { field, reason } => {
                crate::Error::InvalidArgument { field, reason }
            }
            ModelError::NotConverged { .. } => crate::Error::NotConverged(e.to_string()),
            // The engine's own commands never pass a hook that stops.
            ModelError::Interrupted => crate::Error::Internal(e.to_string()),
        }
    }
}

/// Amounts must be finite and ≥ 0.
pub(crate) fn check_amounts(field: &str, a: &[f64]) -> Result<(), ModelError> {
    match a.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        Some(i) => Err(ModelError::invalid(
            format!("{field}[{i}]"),
            format!("{} is not an amount ≥ 0", a[i]),
        )),
        None => Ok(()),
    }
}
