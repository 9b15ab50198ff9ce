//! The privacy module's door: consent and audit commands, the consent read other modules ask,
//! and the erase command (its flow over every per-person module is `Engine::erase_person`, in
//! `engine/person.rs`).

use crate::command::Output;
use crate::error::Error;
use crate::event::UserRef;
use crate::ids::OneId;
use crate::privacy::{non_empty, PrivacyCommand, PrivacyState};

use super::Engine;

impl Engine {
    /// The privacy module's state (consent, erased persons, audit log).
    pub fn privacy(&self) -> &PrivacyState {
        &self.state.privacy
    }

    /// Whether `oneid` (or the person it was merged into) consented to contact on `channel`
    /// for `purpose`. Unknown and erased persons never have.
    pub fn has_consent(&self, oneid: OneId, channel: &str, purpose: &str) -> bool {
        self.state
            .identity
            .canonical(oneid)
            .is_some_and(|o| self.state.privacy.granted(o, channel, purpose))
    }

    /// Every OneID that names the live person `person`: itself and each OneID merged into it,
    /// ascending. Empty for a OneID that is not a live person.
    pub fn oneids_of(&self, person: OneId) -> Vec<OneId> {
        let g = &self.state.identity;
        if g.canonical(person) != Some(person) {
            return Vec::new();
        }
        // OneIDs are handed out densely from 1, so the first unknown number ends the scan.
        (1..)
            .map(OneId)
            .map_while(|o| g.canonical(o).map(|c| (o, c)))
            .filter(|(_, c)| *c == person)
            .map(|(o, _)| o)
            .collect()
    }

    /// The live, non-erased person a reference names (an error otherwise).
    fn privacy_target(&self, user: &UserRef) -> Result<OneId, Error> {
        let oneid = self.lookup(user)?.ok_or_else(|| Error::NotFound {
            what: "user",
            id: match user {
                UserRef::Id(id) => id.to_string(),
                UserRef::OneId(o) => o.to_string(),
            },
        })?;
        Ok(oneid)
    }

    pub(crate) fn execute_privacy(&mut self, c: PrivacyCommand) -> Result<Output, Error> {
        let out = match c {
            PrivacyCommand::SetConsent {
                user,
                channel,
                purpose,
                granted,
                actor,
                time,
            } => {
                let target = self.privacy_target(&user);
                self.state
                    .privacy
                    .set_consent(target, channel, purpose, granted, &actor, time)?
            }
            q @ (PrivacyCommand::Consent { .. } | PrivacyCommand::AuditLog {}) => {
                return self.query_privacy(q)
            }
            PrivacyCommand::Erase { oneid, actor, time } => {
                non_empty("actor", &actor)?;
                let target = self
                    .state
                    .identity
                    .canonical(oneid)
                    .ok_or(Error::NotFound {
                        what: "oneid",
                        id: oneid.to_string(),
                    })?;
                // Checks done; nothing fails from here.
                let erased = if self.state.privacy.is_erased(target) {
                    None
                } else {
                    let e = self.erase_person(target);
                    Some((e.identifiers, e.consents, e.with))
                };
                self.state
                    .privacy
                    .audit_erasure(target, erased, &actor, time)
            }
        };
        Ok(Output::Privacy(out))
    }

    /// The privacy commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_privacy(&self, c: PrivacyCommand) -> Result<Output, Error> {
        self.state
            .privacy
            .query(c, |user| self.privacy_target(user))
            .map(Output::Privacy)
    }
}
