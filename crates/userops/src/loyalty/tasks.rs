//! Tasks (任务): completing one grants points and/or growth value, once or up to a cap.

use serde::{Deserialize, Serialize};

use super::ledger::Points;
use super::LoyaltyError;

/// The kind of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskKind {
    /// Take part in an activity.
    Activity,
    /// Make a purchase.
    Purchase,
    /// Answer a survey.
    Survey,
    /// Complete the profile.
    ProfileCompletion,
}

/// A task of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Unique id within the program.
    pub id: String,
    /// What it is.
    pub kind: TaskKind,
    /// Points granted per completion (expiring by the program's policy).
    #[serde(default)]
    pub points: Points,
    /// Growth value granted per completion.
    #[serde(default)]
    pub growth: i64,
    /// Most completions per member (1: once).
    #[serde(default = "once")]
    pub max_completions: u32,
}

fn once() -> u32 {
    1
}

impl TaskSpec {
    pub(crate) fn validate(&self, i: usize) -> Result<(), LoyaltyError> {
        let bad = |field: &str, reason: &str| {
            Err(LoyaltyError::InvalidProgram {
                field: format!("tasks[{i}].{field}"),
                reason: reason.into(),
            })
        };
        if self.id.is_empty() {
            return bad("id", "must not be empty");
        }
        if self.points < 0 || self.growth < 0 || (self.points == 0 && self.growth == 0) {
            return bad(
                "points",
                "a task grants positive points and/or growth value",
            );
        }
        if self.max_completions == 0 {
            return bad("max_completions", "must be at least 1");
        }
        Ok(())
    }
}
