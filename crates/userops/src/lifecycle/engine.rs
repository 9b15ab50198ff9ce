//! The incremental path: per-person histories kept as events arrive, and the `lifecycle_*`
//! commands answered from them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::period::PeriodClock;
use super::report::{LeverTarget, LifecycleReport, PeriodSummary, Projection, Rates};
use super::stage::{Stage, StageRules};
use super::table::{EarlyActivity, StageTable};
use super::{Lever, LifecycleError};
use crate::event::{Event, EventBody};
use crate::ids::OneId;

/// One person's history as far as the lifecycle is concerned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct History {
    /// Earliest `register` event (ms, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) registered_ms: Option<i64>,
    /// Earliest `activity` event (ms, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) first_activity_ms: Option<i64>,
    /// Period indexes (engine clock) with at least one activity.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(super) active: BTreeSet<i64>,
}

impl History {
    /// Fold another person's history into this one (a merge).
    pub(super) fn absorb(&mut self, h: &History) {
        self.registered_ms = min_opt(self.registered_ms, h.registered_ms);
        self.first_activity_ms = min_opt(self.first_activity_ms, h.first_activity_ms);
        self.active.extend(h.active.iter().copied());
    }
}

/// The lifecycle state held by the engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LifecycleState {
    pub(super) people: BTreeMap<OneId, History>,
    /// What merges moved, for a split to give back (see `person.rs`): the survivor's history
    /// before and the absorbed person's.
    #[serde(default, skip_serializing_if = "crate::person::Stash::is_empty")]
    pub(super) merged: crate::person::Stash<(History, History)>,
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

impl LifecycleState {
    /// Record an accepted event. Never fails: times were validated at intake.
    pub(crate) fn on_event(&mut self, clock: &PeriodClock, event: &Event, oneid: Option<OneId>) {
        let Some(person) = oneid else { return };
        let ms = event.time.timestamp_millis();
        match &event.body {
            EventBody::Register { .. } => {
                let h = self.people.entry(person).or_default();
                h.registered_ms = min_opt(h.registered_ms, Some(ms));
            }
            EventBody::Activity { .. } => {
                if let Some(p) = clock.index(ms) {
                    let h = self.people.entry(person).or_default();
                    h.first_activity_ms = min_opt(h.first_activity_ms, Some(ms));
                    h.active.insert(p);
                }
            }
            _ => {}
        }
    }

    /// The stage table of every person, through period `through` (at least the last period
    /// with data).
    pub(crate) fn stage_table(
        &self,
        clock: PeriodClock,
        rules: StageRules,
        early: EarlyActivity,
        through: Option<i64>,
    ) -> Result<StageTable, LifecycleError> {
        let mut rows: Vec<(u64, i64, Vec<i64>)> = Vec::with_capacity(self.people.len());
        let (mut first, mut last) = (i64::MAX, i64::MIN);
        for (id, h) in &self.people {
            let reg_ms = match (h.registered_ms, h.first_activity_ms) {
                (Some(r), Some(a)) if a < r => match early {
                    EarlyActivity::Error => {
                        return Err(LifecycleError::ActivityBeforeRegistration {
                            row: None,
                            user: id.0,
                            time_ms: a,
                            registered_ms: r,
                        })
                    }
                    _ => a,
                },
                (Some(r), _) => r,
                (None, Some(a)) => a,
                (None, None) => continue,
            };
            let reg = clock.index(reg_ms).ok_or(LifecycleError::TimeOutOfRange {
                row: None,
                time_ms: reg_ms,
            })?;
            first = first.min(reg);
            last = last.max(reg).max(h.active.last().copied().unwrap_or(reg));
            rows.push((id.0, reg, h.active.iter().copied().collect()));
        }
        if rows.is_empty() {
            let p = through.unwrap_or(0);
            return Ok(StageTable::from_histories(
                clock,
                rules,
                p,
                p - 1,
                std::iter::empty(),
            ));
        }
        let last = through.map_or(last, |t| t.max(last));
        if last - first + 1 > 100_000 {
            return Err(LifecycleError::TooManyPeriods(last - first + 1));
        }
        let periods = (last - first + 1) as usize;
        if rows.len().saturating_mul(periods) > super::table::MAX_CELLS {
            return Err(LifecycleError::TableTooLarge {
                users: rows.len(),
                periods,
            });
        }
        Ok(StageTable::from_histories(
            clock,
            rules,
            first,
            last,
            rows.iter().map(|(id, r, a)| (*id, *r, a.as_slice())),
        ))
    }
}

/// The lifecycle's commands (held data: the engine's `register` and `activity` events).
/// Registering counts as a qualifying activity of its own period, so every new user is active
/// in the period they register in (the decomposition's `new(m)` term).
///
/// Common arguments: `churn_after` (periods, default 2), `early_activity` (what an activity
/// dated before its person's registration means: `"register_at_first_activity"`, the default,
/// counts the person as registered at their first activity, so one early activity never makes
/// a command fail for the whole pool; `"error"` refuses the command instead), `through` (a
/// period label: extend the table to it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LifecycleCommand {
    /// Stages, transitions, active rate and decomposition of every period. Output:
    /// [`LifecycleReport`] (with one report per segment when `segments` is given).
    LifecycleReport {
        /// Churn threshold in periods.
        #[serde(default)]
        churn_after: Option<u32>,
        /// Policy for activity before registration.
        #[serde(default)]
        early_activity: Option<EarlyActivity>,
        /// Extend through this period.
        #[serde(default)]
        through: Option<String>,
        /// Named segments (lists of OneIDs) to break the report down by.
        #[serde(default)]
        segments: Option<BTreeMap<String, Vec<OneId>>>,
        /// Break down by every value of this enum or bool tag (segments named `tag=value`).
        #[serde(default)]
        by_tag: Option<String>,
        /// Break down by named audience expressions (name → expression).
        #[serde(default)]
        audiences: Option<BTreeMap<String, String>>,
    },
    /// One period's active rate and decomposition (default: the last period). Output:
    /// [`PeriodSummary`] plus `segments`.
    ActiveRateDecomposition {
        /// The period label (default: the last one).
        #[serde(default)]
        period: Option<String>,
        /// Churn threshold in periods.
        #[serde(default)]
        churn_after: Option<u32>,
        /// Policy for activity before registration.
        #[serde(default)]
        early_activity: Option<EarlyActivity>,
        /// Named segments (lists of OneIDs) to break the decomposition down by.
        #[serde(default)]
        segments: Option<BTreeMap<String, Vec<OneId>>>,
        /// Break down by every value of this enum or bool tag (segments named `tag=value`).
        #[serde(default)]
        by_tag: Option<String>,
        /// Break down by named audience expressions (name → expression).
        #[serde(default)]
        audiences: Option<BTreeMap<String, String>>,
    },
    /// Next period's active rate from a period's groups and rates (observed by default); with
    /// `target` and `lever`, the value the lever must reach. Output: [`ProjectionOutput`].
    ProjectActiveRate {
        /// The base period (default: the last one).
        #[serde(default)]
        period: Option<String>,
        /// The rates to assume (default: those observed in the base period).
        #[serde(default)]
        rates: Option<Rates>,
        /// New users next period (default: the base period's new users).
        #[serde(default)]
        new_users: Option<u64>,
        /// A target active rate.
        #[serde(default)]
        target: Option<f64>,
        /// The lever to solve for (with `target`).
        #[serde(default)]
        lever: Option<Lever>,
        /// Churn threshold in periods.
        #[serde(default)]
        churn_after: Option<u32>,
        /// Policy for activity before registration.
        #[serde(default)]
        early_activity: Option<EarlyActivity>,
    },
    /// Every registered person's stage in one period (default: the last period with data).
    /// Output: [`StagesOutput`]. This is what the lifecycle model tags are written from.
    LifecycleStages {
        /// The period label.
        #[serde(default)]
        period: Option<String>,
        /// Churn threshold in periods.
        #[serde(default)]
        churn_after: Option<u32>,
        /// Policy for activity before registration.
        #[serde(default)]
        early_activity: Option<EarlyActivity>,
    },
    /// Write the stages as model tags (model `lifecycle`), so audiences can select them: the
    /// enum tag `lifecycle_stage` holds every registered person's stage in `period` (default:
    /// the last period with data; persons without a stage lose the value), and with
    /// `per_period` also `stage_YYYY_MM` (`stage_YYYY_MM_DD`, the first day, for week and day
    /// periods) for that period. Output: [`StagesOutput`] (what was written).
    WriteLifecycleTags {
        /// The period label.
        #[serde(default)]
        period: Option<String>,
        /// Churn threshold in periods.
        #[serde(default)]
        churn_after: Option<u32>,
        /// Policy for activity before registration.
        #[serde(default)]
        early_activity: Option<EarlyActivity>,
        /// Also write the per-period tag.
        #[serde(default)]
        per_period: bool,
        /// The time rule tags reading these are recomputed at.
        #[serde(default = "crate::tags::wall_clock", with = "crate::event::rfc3339")]
        now: chrono::DateTime<chrono::Utc>,
    },
}

impl LifecycleCommand {
    /// Whether the command changes state (only writing tags does).
    pub fn mutates(&self) -> bool {
        matches!(self, LifecycleCommand::WriteLifecycleTags { .. })
    }
}

/// The name of the per-period stage tag: `stage_` and the label with `-` as `_`.
pub fn period_tag(label: &str) -> String {
    format!("stage_{}", label.replace('-', "_"))
}

/// A person's stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserStage {
    /// The person's OneID.
    pub oneid: OneId,
    /// Their lifecycle stage in the period ([`Stage`]).
    pub stage: Stage,
}

/// What `lifecycle_stages` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagesOutput {
    /// The period the stages are for: `"2026-03"` for a month, its Monday `"2026-03-02"` for
    /// a week, the date for a day.
    pub period: String,
    /// Every person registered by the end of it, by OneID.
    pub users: Vec<UserStage>,
}

/// What `project_active_rate` returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectionOutput {
    /// The base period.
    pub period: String,
    /// The projected next period.
    pub projection: Projection,
    /// The lever's required value, when a target was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lever: Option<LeverTarget>,
}

/// A period summary with its breakdown by segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentedSummary {
    /// All users.
    #[serde(flatten)]
    pub summary: PeriodSummary,
    /// Per segment.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub segments: BTreeMap<String, PeriodSummary>,
}

/// A report with its breakdown by segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentedReport {
    /// All users.
    #[serde(flatten)]
    pub report: LifecycleReport,
    /// Per segment.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub segments: BTreeMap<String, LifecycleReport>,
}

/// The outputs of the lifecycle commands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum LifecycleOutput {
    /// From `lifecycle_report`.
    Report(SegmentedReport),
    /// From `active_rate_decomposition`.
    Summary(Box<SegmentedSummary>),
    /// From `project_active_rate`.
    Projection(ProjectionOutput),
    /// From `lifecycle_stages`.
    Stages(StagesOutput),
}
