//! The `lifecycle_*` commands answered from the per-person histories, and the model tags
//! `write_lifecycle_tags` asks the tag index to hold.

use std::collections::{BTreeMap, BTreeSet};

use super::engine::{
    period_tag, LifecycleCommand, LifecycleOutput, LifecycleState, ProjectionOutput,
    SegmentedReport, SegmentedSummary, StagesOutput, UserStage,
};
use super::period::PeriodClock;
use super::report::{project, required_lever, LifecycleReport, Rates};
use super::stage::{Stage, StageRules};
use super::table::{EarlyActivity, StageTable};
use super::LifecycleError;
use crate::error::Error;
use crate::ids::OneId;
use crate::tags::Value;

/// Segments as OneID lists by name (the tags module's breakdown of a report).
pub(crate) type Segments = Option<BTreeMap<String, Vec<OneId>>>;

/// What a report command asks to be broken down by, taken out of the command: explicit
/// segments, an enum or bool tag, named audience expressions (the engine turns these into
/// [`Segments`] through the tag index).
#[derive(Default)]
pub(crate) struct Breakdown {
    /// Explicit segments.
    pub(crate) segments: Segments,
    /// One segment per value of this tag.
    pub(crate) by_tag: Option<String>,
    /// One segment per named expression.
    pub(crate) audiences: Option<BTreeMap<String, String>>,
}

/// The model tags of `write_lifecycle_tags`: the tag names and each person's stage.
pub(crate) struct StageTags {
    /// `lifecycle_stage`, and the per-period tag when asked.
    pub(crate) tags: Vec<String>,
    /// One row per person: the stage's name.
    pub(crate) rows: Vec<(OneId, Vec<Value>)>,
}

impl LifecycleCommand {
    /// The breakdown a report command asks for, taken out of it (`None` for the other
    /// commands).
    pub(crate) fn take_breakdown(&mut self) -> Option<Breakdown> {
        match self {
            LifecycleCommand::LifecycleReport {
                segments,
                by_tag,
                audiences,
                ..
            }
            | LifecycleCommand::ActiveRateDecomposition {
                segments,
                by_tag,
                audiences,
                ..
            } => Some(Breakdown {
                segments: segments.take(),
                by_tag: by_tag.take(),
                audiences: audiences.take(),
            }),
            _ => None,
        }
    }
}

impl StagesOutput {
    /// The model tags `write_lifecycle_tags` writes from this stage list: `lifecycle_stage`,
    /// and with `per_period` the period's own tag (`stage_2026_03`).
    pub(crate) fn stage_tags(&self, per_period: bool) -> StageTags {
        let mut tags = vec!["lifecycle_stage".to_owned()];
        if per_period {
            tags.push(period_tag(&self.period));
        }
        let rows = self
            .users
            .iter()
            .map(|u| (u.oneid, vec![Value::Text(u.stage.name().to_owned())]))
            .collect();
        StageTags { tags, rows }
    }
}

fn rules(churn_after: Option<u32>) -> Result<StageRules, LifecycleError> {
    churn_after.map_or(Ok(StageRules::default()), StageRules::new)
}

fn segment_reports(
    table: &StageTable,
    segments: Segments,
) -> Result<BTreeMap<String, LifecycleReport>, LifecycleError> {
    let mut out = BTreeMap::new();
    for (name, ids) in segments.unwrap_or_default() {
        let set: BTreeSet<u64> = ids.iter().map(|o| o.0).collect();
        let users = table.users();
        out.insert(
            name,
            LifecycleReport::from_table_where(table, |u| set.contains(&users[u]))?,
        );
    }
    Ok(out)
}

/// The index of `period` in the report, or the last one.
fn pick_period(report: &LifecycleReport, period: Option<&str>) -> Result<usize, LifecycleError> {
    match period {
        None => report
            .periods
            .len()
            .checked_sub(1)
            .ok_or_else(|| LifecycleError::UnknownPeriod("(no data yet)".into())),
        Some(l) => report
            .periods
            .iter()
            .position(|p| p.period == l)
            .ok_or_else(|| LifecycleError::UnknownPeriod(l.to_owned())),
    }
}

impl LifecycleState {
    fn table(
        &self,
        clock: PeriodClock,
        churn_after: Option<u32>,
        early: Option<EarlyActivity>,
        through: Option<&str>,
    ) -> Result<StageTable, LifecycleError> {
        let through = through
            .map(|l| {
                clock
                    .parse_label(l)
                    .ok_or_else(|| LifecycleError::UnknownPeriod(l.to_owned()))
            })
            .transpose()?;
        self.stage_table(
            clock,
            rules(churn_after)?,
            // The pool's data is not the caller's input: one person's early activity must not
            // fail the command for everyone (the table functions keep `Error` as their default).
            early.unwrap_or(EarlyActivity::RegisterAtFirstActivity),
            through,
        )
    }

    /// Answer a lifecycle command that changes nothing (`write_lifecycle_tags` answers as
    /// `lifecycle_stages`), with the breakdown the engine made of the command's
    /// [`Breakdown`].
    pub(crate) fn answer(
        &self,
        clock: PeriodClock,
        c: LifecycleCommand,
        segments: Segments,
    ) -> Result<LifecycleOutput, Error> {
        Ok(match c {
            LifecycleCommand::LifecycleReport {
                churn_after,
                early_activity,
                through,
                ..
            } => {
                let table = self.table(clock, churn_after, early_activity, through.as_deref())?;
                LifecycleOutput::Report(SegmentedReport {
                    report: LifecycleReport::from_table(&table)?,
                    segments: segment_reports(&table, segments)?,
                })
            }
            LifecycleCommand::ActiveRateDecomposition {
                period,
                churn_after,
                early_activity,
                ..
            } => {
                let table = self.table(clock, churn_after, early_activity, period.as_deref())?;
                let report = LifecycleReport::from_table(&table)?;
                let i = pick_period(&report, period.as_deref())?;
                let segments = segment_reports(&table, segments)?
                    .into_iter()
                    .filter_map(|(k, r)| r.periods.into_iter().nth(i).map(|p| (k, p)))
                    .collect();
                let summary =
                    report.periods.into_iter().nth(i).ok_or_else(|| {
                        Error::Internal("picked period is inside the report".into())
                    })?;
                LifecycleOutput::Summary(Box::new(SegmentedSummary { summary, segments }))
            }
            LifecycleCommand::ProjectActiveRate {
                period,
                rates,
                new_users,
                target,
                lever,
                churn_after,
                early_activity,
            } => {
                let table = self.table(clock, churn_after, early_activity, period.as_deref())?;
                let report = LifecycleReport::from_table(&table)?;
                let now = &report.periods[pick_period(&report, period.as_deref())?];
                let rates = match (rates, &now.decomposition) {
                    (Some(r), _) => r,
                    (None, Some(d)) => Rates::observed(d),
                    (None, None) => {
                        return Err(Error::invalid_argument(
                            "rates",
                            "the first period has no observed rates: give `rates`",
                        ))
                    }
                };
                let new_users = new_users.unwrap_or_else(|| now.count(Stage::New));
                let projection = project(now, rates, new_users)?;
                let lever = match (target, lever) {
                    (Some(t), Some(l)) => Some(required_lever(now, rates, new_users, t, l)?),
                    (None, None) => None,
                    _ => {
                        return Err(Error::invalid_argument(
                            "lever",
                            "`target` and `lever` go together",
                        ))
                    }
                };
                LifecycleOutput::Projection(ProjectionOutput {
                    period: now.period.clone(),
                    projection,
                    lever,
                })
            }
            LifecycleCommand::LifecycleStages {
                period,
                churn_after,
                early_activity,
            }
            | LifecycleCommand::WriteLifecycleTags {
                period,
                churn_after,
                early_activity,
                ..
            } => LifecycleOutput::Stages(self.stages(
                clock,
                period.as_deref(),
                churn_after,
                early_activity,
            )?),
        })
    }

    /// Every registered person's stage in `period` (default: the last period with data).
    fn stages(
        &self,
        clock: PeriodClock,
        period: Option<&str>,
        churn_after: Option<u32>,
        early_activity: Option<EarlyActivity>,
    ) -> Result<StagesOutput, Error> {
        let table = self.table(clock, churn_after, early_activity, period)?;
        let clock = table.clock();
        let p = match period {
            Some(l) => clock
                .parse_label(l)
                .ok_or_else(|| LifecycleError::UnknownPeriod(l.to_owned()))?,
            None => table.first_period() + table.period_count() as i64 - 1,
        };
        let users = table
            .users()
            .iter()
            .enumerate()
            .filter_map(|(u, &id)| {
                table.stage(u, p).map(|stage| UserStage {
                    oneid: OneId(id),
                    stage,
                })
            })
            .collect();
        Ok(StagesOutput {
            period: clock.label(p),
            users,
        })
    }
}
