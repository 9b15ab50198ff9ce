//! The identity module's door: its commands on the engine, and the operator merge and split
//! flows they start (the per-person modules follow in `engine/person.rs`).

use crate::command::Output;
use crate::error::Error;
use crate::identity::{IdentityCommand, IdentityOutput};

use super::Engine;

impl Engine {
    pub(crate) fn execute_identity(&mut self, c: IdentityCommand) -> Result<Output, Error> {
        let out = match c {
            q @ (IdentityCommand::IdentityRules {}
            | IdentityCommand::Explain { .. }
            | IdentityCommand::Conflicts { .. }
            | IdentityCommand::Canonical { .. }
            | IdentityCommand::Identifiers { .. }
            | IdentityCommand::MergeHistory { .. }
            | IdentityCommand::IdentityAudit {}) => return self.query_identity(q),
            IdentityCommand::SetIdentityRules {
                rules,
                actor,
                reason,
            } => self
                .state
                .identity
                .set_rules_audited(rules, &actor, &reason)?,
            IdentityCommand::Merge {
                a,
                b,
                actor,
                reason,
                time,
            } => {
                let g = &self.state.identity;
                let (pa, pb) = (g.person_named(&a, "a")?, g.person_named(&b, "b")?);
                // Checks first: tombstones and the points balances here, the caps and "already
                // one person" in the graph's merge, which changes nothing when it refuses.
                self.check_merge(pa, pb)?;
                let time = time.unwrap_or(chrono::DateTime::UNIX_EPOCH);
                let mut report =
                    self.state
                        .identity
                        .merge(pa, pb, &actor, &reason, time.timestamp_millis())?;
                self.merge_persons(&mut report, time);
                IdentityOutput::Merge(report)
            }
            IdentityCommand::Split {
                evidence,
                actor,
                reason,
                time,
            } => {
                let privacy = &self.state.privacy;
                self.state
                    .identity
                    .check_split(&evidence, |o| privacy.is_erased(o))?;
                let time = time.unwrap_or(chrono::DateTime::UNIX_EPOCH);
                let mut report = self.state.identity.split(&evidence, &actor, &reason)?;
                self.split_persons(&mut report, time);
                IdentityOutput::Split(report)
            }
        };
        Ok(Output::Identity(out))
    }

    /// The identity commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_identity(&self, c: IdentityCommand) -> Result<Output, Error> {
        self.state.identity.query(c).map(Output::Identity)
    }
}
