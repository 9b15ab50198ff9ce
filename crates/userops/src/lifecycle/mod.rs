//! Lifecycle stages, the active rate and its decomposition (SPEC §5, seed 003).
//!
//! Two ways in, one set of rules ([`StageWalker`]):
//! - **batch**: [`stage_table`] over column slices ([`ActivityTable`], [`Registrations`]) gives
//!   the stage of every user in every period; [`LifecycleReport::from_table`] counts stages,
//!   transitions and the decomposition;
//! - **incremental**: the engine keeps each person's registration and active periods as
//!   `register` and `activity` events arrive, and answers the `lifecycle_*` commands from them.
//!
//! A user is active in a period with at least one activity; registering counts as the
//! registration period's activity (seed 003: "new users = registered and logged in this month").
//! A user with activity but no registration is registered at their first activity.

mod answer;
mod engine;
mod period;
mod person;
mod report;
mod stage;
mod table;

pub(crate) use engine::LifecycleState;
pub use engine::{
    period_tag, LifecycleCommand, LifecycleOutput, ProjectionOutput, SegmentedReport,
    SegmentedSummary, StagesOutput, UserStage,
};
pub use period::{PeriodClock, MAX_ABS_MS};
pub use report::{
    project, required_lever, Decomposition, Lever, LeverTarget, LifecycleReport, PeriodSummary,
    Projection, Rates, Term, Transition,
};
pub use stage::{Group, Stage, StageRules, StageWalker};
pub use table::{
    stage_table, stage_table_with_progress, ActivityTable, EarlyActivity, Registrations,
    StageOptions, StageTable,
};

/// What can go wrong in the lifecycle computations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// Two columns of one table have different lengths.
    #[error("{what}: {users} user ids but {times} times")]
    LengthMismatch {
        /// Which table.
        what: &'static str,
        /// Length of the user column.
        users: usize,
        /// Length of the time column.
        times: usize,
    },
    /// An activity dated before the user's registration (with [`EarlyActivity::Error`]).
    #[error("user {user} has an activity at {time_ms} ms before registering at {registered_ms} ms{}",
        row.map(|r| format!(" (row {r})")).unwrap_or_default())]
    ActivityBeforeRegistration {
        /// The row of the activity table, when the input is a table.
        row: Option<usize>,
        /// The user's id in the input.
        user: u64,
        /// The activity's time (ms, UTC).
        time_ms: i64,
        /// The registration time (ms, UTC).
        registered_ms: i64,
    },
    /// A user registered twice at different times.
    #[error("user {user} has conflicting registration times (row {row})")]
    ConflictingRegistration {
        /// The row of the registrations.
        row: usize,
        /// The user's id in the input.
        user: u64,
    },
    /// A timestamp outside ±10 000 years.
    #[error("time {time_ms} ms is out of range{}", row.map(|r| format!(" (row {r})")).unwrap_or_default())]
    TimeOutOfRange {
        /// The row, where known.
        row: Option<usize>,
        /// The time, in ms since the Unix epoch (UTC).
        time_ms: i64,
    },
    /// The data spans more periods than a stage table holds (100 000).
    #[error("the data spans {0} periods; at most 100000 are supported")]
    TooManyPeriods(i64),
    /// Users × periods beyond what a stage table holds (8 Gi cells).
    #[error("{users} users × {periods} periods is too large a stage table: use a longer period")]
    TableTooLarge {
        /// Distinct users in the input.
        users: usize,
        /// Periods from the first to the last.
        periods: usize,
    },
    /// A churn threshold outside 2..=10000 periods.
    #[error("churn_after must be between 2 and 10000 periods, got {0}")]
    BadThreshold(u32),
    /// A rate outside 0..=1 (or not a number).
    #[error("{field} must be a rate between 0 and 1, got {value}")]
    BadRate {
        /// The argument's name.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A period label that does not parse, or a period outside the data.
    #[error("period {0:?} is not a period of the data (labels look like 2026-03 or 2026-03-02)")]
    UnknownPeriod(String),
    /// A count that would overflow.
    #[error("{0} overflows")]
    Overflow(&'static str),
    /// An invariant that did not hold (a bug).
    #[error("internal: {0}")]
    Internal(String),
    /// The caller's [`Progress`](crate::Progress) hook stopped the computation.
    #[error("stopped by the progress hook")]
    Interrupted,
}

impl From<crate::progress::Interrupted> for LifecycleError {
    fn from(_: crate::progress::Interrupted) -> Self {
        LifecycleError::Interrupted
    }
}

impl From<LifecycleError> for crate::Error {
    fn from(e: LifecycleError) -> Self {
        use LifecycleError as L;
        let field = match &e {
            L::LengthMismatch { what, .. } => *what,
            L::ActivityBeforeRegistration { .. } | L::TimeOutOfRange { .. } => "time",
            L::ConflictingRegistration { .. } => "registered",
            L::TooManyPeriods(_) | L::TableTooLarge { .. } => "period",
            L::BadThreshold(_) => "churn_after",
            L::BadRate { field, .. } => field,
            L::UnknownPeriod(_) => "period",
            L::Overflow(what) => what,
            // The engine's own commands never pass a hook that stops.
            L::Internal(_) | L::Interrupted => return crate::Error::Internal(e.to_string()),
        };
        match e {
            L::TimeOutOfRange { .. }
            | L::Overflow(_)
            | L::TooManyPeriods(_)
            | L::TableTooLarge { .. } => crate::Error::OutOfRange {
                field: field.into(),
                reason: e.to_string(),
            },
            _ => crate::Error::invalid_argument(field, e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests;
