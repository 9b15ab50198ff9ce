//! The lifecycle module's door: its commands, the breakdown of its reports by the tag index,
//! and the flow that writes the stage tags through the tag index. The stage rules and reports
//! live in [`crate::lifecycle`].

use super::Engine;
use crate::command::Output;
use crate::error::Error;
use crate::lifecycle::{LifecycleCommand, LifecycleOutput, PeriodClock, StagesOutput};
use crate::tags::ValueType;

impl Engine {
    /// Every registered person's stage in `period` (a label; default the last period with
    /// data), with the default rules. The lifecycle model tags are written from this.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `period` for a label that is not a period of the data;
    /// `out_of_range` at `period` when the users × periods table would be too large.
    pub fn lifecycle_stages(&self, period: Option<&str>) -> Result<StagesOutput, Error> {
        match self.execute_lifecycle_query(LifecycleCommand::LifecycleStages {
            period: period.map(str::to_owned),
            churn_after: None,
            early_activity: None,
        })? {
            LifecycleOutput::Stages(s) => Ok(s),
            other => Err(Error::Internal(format!(
                "lifecycle_stages returned {other:?}"
            ))),
        }
    }

    pub(crate) fn execute_lifecycle(&mut self, c: LifecycleCommand) -> Result<Output, Error> {
        let LifecycleCommand::WriteLifecycleTags {
            per_period, now, ..
        } = c
        else {
            return self.execute_lifecycle_query(c).map(Output::Lifecycle);
        };
        let out = match self.execute_lifecycle_query(c)? {
            LifecycleOutput::Stages(s) => s,
            other => {
                return Err(Error::Internal(format!(
                    "lifecycle_stages returned {other:?}"
                )))
            }
        };
        let mut stage_tags = out.stage_tags(per_period);
        // Persons no longer live (merged away, erased) are left out.
        let identity = &self.state.identity;
        stage_tags
            .rows
            .retain(|(o, _)| identity.canonical(*o) == Some(*o));
        let rows = &stage_tags.rows;
        // Every tag is checked before the first is written: a refused command changes nothing.
        for tag in &stage_tags.tags {
            let live = |o| identity.canonical(o) == Some(o);
            self.state
                .tags
                .check_model_values(tag, ValueType::Enum, rows, live)?;
        }
        for tag in &stage_tags.tags {
            self.write_model_values("lifecycle", tag, ValueType::Enum, rows, true, now)?;
        }
        Ok(Output::Lifecycle(LifecycleOutput::Stages(out)))
    }

    /// The lifecycle commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_lifecycle(&self, c: LifecycleCommand) -> Result<Output, Error> {
        if c.mutates() {
            return Err(Error::not_a_query(&c));
        }
        self.execute_lifecycle_query(c).map(Output::Lifecycle)
    }

    /// Answer a command from the lifecycle state, its report broken down by the segments the
    /// tag index makes of what the command asks.
    fn execute_lifecycle_query(&self, mut c: LifecycleCommand) -> Result<LifecycleOutput, Error> {
        let segments = match c.take_breakdown() {
            Some(b) => {
                self.breakdown_segments(b.segments, b.by_tag.as_deref(), b.audiences.as_ref())?
            }
            None => None,
        };
        let clock = PeriodClock::of(&self.config);
        self.state.lifecycle.answer(clock, c, segments)
    }
}
