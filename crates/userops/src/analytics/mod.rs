//! The operator's analyses (SPEC §8): funnel, cohort retention, repurchase, attribution,
//! micro-conversions, paths, one user's journey, metric trees, data warnings and community
//! statistics.
//!
//! Every analysis is a pure function over column slices (the batch path, also used by the
//! Python table functions); the engine keeps a per-person timeline of ingested events and answers
//! the analysis commands by feeding that timeline to the same functions.

mod attribution;
mod cohort;
mod commands;
mod community;
mod funnel;
mod metrics;
mod paths;
mod person;
mod repurchase;
mod tables;

pub use attribution::{attribute, AttributionModel, AttributionReport, ChannelCredit, Conversions};
pub use cohort::{cohort_retention, CohortRow, CohortTable};
pub use commands::{
    AnalyticsCommand, AnalyticsOutput, Journey, JourneyStep, ModelName, PeriodTree, WatchedMetric,
};
pub(crate) use commands::{AnalyticsReads, AnalyticsState};
pub use community::{community_stats, CommunityEvents, CommunityRow, CommunityTable};
pub use funnel::{funnel, funnel_levels, FunnelReport, FunnelStep};
pub use metrics::{data_warnings, gmv_tree, MetricNode, Warning, WarningMethod};
pub use paths::{micro_conversions, paths, MicroConversion, PathReport, StepCount};
pub use repurchase::{
    repurchase, OrderLines, OrderTable, ProductRepurchase, RepurchaseReport, RepurchaseRow,
};
pub use tables::table_call_json;

/// What can go wrong in an analysis.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalyticsError {
    /// Columns of one table with different lengths.
    #[error("{what}: columns of different lengths ({a} and {b})")]
    LengthMismatch {
        /// Which table.
        what: &'static str,
        /// One length.
        a: usize,
        /// The length of the column that differs.
        b: usize,
    },
    /// An event name code outside the names dictionary.
    #[error("row {row}: event code {code} is not in the dictionary of {names} names")]
    BadCode {
        /// The row, from 0.
        row: usize,
        /// The code found.
        code: u32,
        /// The dictionary size.
        names: usize,
    },
    /// A step (or event) name that never occurs in the data.
    #[error("unknown step {0:?}: no event of that name in the data")]
    UnknownStep(String),
    /// A bad argument (empty step list, negative window, ...).
    #[error("{field}: {reason}")]
    BadArgument {
        /// The argument's name.
        field: &'static str,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// A timestamp outside ±10 000 years.
    #[error("row {row}: time {time_ms} ms is out of range")]
    TimeOutOfRange {
        /// The row, from 0.
        row: usize,
        /// The time, in ms since the Unix epoch (UTC).
        time_ms: i64,
    },
    /// An unknown person.
    #[error("unknown user {0}")]
    UnknownUser(String),
    /// A sum of amounts that does not fit a `Decimal` (about 7.9 × 10²⁸): only amounts above
    /// what the intake accepts get there (see [`crate::money`]).
    #[error("{field}: the sum of the amounts overflows (amounts are at most 10^12 each)")]
    Overflow {
        /// The column summed.
        field: &'static str,
    },
}

impl From<AnalyticsError> for crate::Error {
    fn from(e: AnalyticsError) -> Self {
        use AnalyticsError as A;
        match &e {
            A::LengthMismatch { what, .. } => crate::Error::invalid_argument(*what, e.to_string()),
            A::BadCode { .. } => crate::Error::invalid_argument("event", e.to_string()),
            A::UnknownStep(_) => crate::Error::invalid_argument("steps", e.to_string()),
            A::BadArgument { field, .. } => crate::Error::invalid_argument(*field, e.to_string()),
            A::TimeOutOfRange { .. } => crate::Error::OutOfRange {
                field: "time".into(),
                reason: e.to_string(),
            },
            A::UnknownUser(id) => crate::Error::NotFound {
                what: "user",
                id: id.clone(),
            },
            A::Overflow { field } => crate::Error::OutOfRange {
                field: (*field).into(),
                reason: e.to_string(),
            },
        }
    }
}

/// Events as columns: `user[i]` did `names[event[i]]` at `time[i]` (ms, UTC). Rows may come in
/// any order; ties in time keep their row order.
#[derive(Debug, Clone, Copy)]
pub struct EventTable<'a> {
    /// User ids.
    pub user: &'a [u64],
    /// Times, ms since the epoch (UTC).
    pub time: &'a [i64],
    /// Event name codes into `names`.
    pub event: &'a [u32],
    /// The dictionary of event names.
    pub names: &'a [String],
}

impl EventTable<'_> {
    pub(crate) fn check(&self, what: &'static str) -> Result<(), AnalyticsError> {
        let n = self.user.len();
        for len in [self.time.len(), self.event.len()] {
            if len != n {
                return Err(AnalyticsError::LengthMismatch { what, a: n, b: len });
            }
        }
        check_codes(self.event, self.names.len())?;
        check_times(self.time)
    }

    /// The code of a name; an error naming it when the data never has it.
    pub(crate) fn code(&self, name: &str) -> Result<u32, AnalyticsError> {
        let code = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| AnalyticsError::UnknownStep(name.to_owned()))? as u32;
        if !self.event.contains(&code) {
            return Err(AnalyticsError::UnknownStep(name.to_owned()));
        }
        Ok(code)
    }

    /// Row indexes grouped by user, each group sorted by (time, row): `(user, rows)`.
    pub(crate) fn by_user(&self) -> Vec<(u64, Vec<usize>)> {
        group_rows(self.user, self.time)
    }
}

/// Every code names one of `names` names.
pub(crate) fn check_codes(codes: &[u32], names: usize) -> Result<(), AnalyticsError> {
    match codes.iter().position(|&c| c as usize >= names) {
        Some(row) => Err(AnalyticsError::BadCode {
            row,
            code: codes[row],
            names,
        }),
        None => Ok(()),
    }
}

pub(crate) fn check_times(time: &[i64]) -> Result<(), AnalyticsError> {
    let max = crate::lifecycle::MAX_ABS_MS;
    match time.iter().position(|t| !(-max..=max).contains(t)) {
        Some(row) => Err(AnalyticsError::TimeOutOfRange {
            row,
            time_ms: time[row],
        }),
        None => Ok(()),
    }
}

/// Row indexes grouped by user (users ascending), each group sorted by (time, row).
pub(crate) fn group_rows(user: &[u64], time: &[i64]) -> Vec<(u64, Vec<usize>)> {
    let mut idx: Vec<usize> = (0..user.len()).collect();
    idx.sort_unstable_by_key(|&i| (user[i], time[i], i));
    let mut out: Vec<(u64, Vec<usize>)> = Vec::new();
    for i in idx {
        match out.last_mut() {
            Some((u, rows)) if *u == user[i] => rows.push(i),
            _ => out.push((user[i], vec![i])),
        }
    }
    out
}

/// The most periods an analysis spans (a daily series of 270 years).
pub(crate) const MAX_PERIODS: i64 = 100_000;

pub(crate) fn check_span(first: i64, last: i64) -> Result<(), AnalyticsError> {
    if last - first + 1 > MAX_PERIODS {
        return Err(AnalyticsError::BadArgument {
            field: "period",
            reason: format!(
                "the data spans {} periods; at most {MAX_PERIODS} are supported: use a longer period",
                last - first + 1
            ),
        });
    }
    Ok(())
}

pub(crate) fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

#[cfg(test)]
mod tests;
