//! Privacy (SPEC §9): consent per channel and purpose, salted hashing of identifiers at intake,
//! erasure of a person, and an append-only audit log of operator actions.
//!
//! - **Consent** is recorded per person, channel and purpose (`set_consent`); anything that
//!   touches a user asks [`Engine::has_consent`] first. No record means no consent.
//! - **Hashing** is a [`Config`](crate::Config) option
//!   ([`ConfigBuilder::hash_identifiers`](crate::ConfigBuilder::hash_identifiers)); see
//!   [`Engine::prepare`] for where it happens.
//! - **Erasure** (`erase`) runs the engine's one erase flow: every module holding per-person
//!   state removes what it holds about the person (the person contract, `person.rs`); the
//!   OneID stays as an empty tombstone that no audience, table, model, tag or automation run
//!   returns, and that cannot be merged or split. Where a ledger must stay balanced the data is
//!   re-keyed to a fresh pseudonym ([`PSEUDONYM_BASE`]) instead: the points ledger keeps the
//!   person's postings (amounts, times, accounts) with free text cleared and keys replaced
//!   ([`Loyalty::pseudonymize_member`](crate::loyalty::Loyalty::pseudonymize_member)), campaigns
//!   keep coupons, commits and touches for their counts. The durable store also redacts the
//!   erased person's earlier journal records and replaces the snapshots (see `userops-store`).
//! - **Merges** keep, per channel and purpose, the latest statement of any merged person (a
//!   withdrawal wins a tie); a split gives each part its own statements back.
//! - **Audit**: every operator action (`set_consent`, `erase`) appends an [`AuditEntry`]
//!   (actor, action, target, time). No command edits or removes entries; `audit_log` reads them.
//!
//! Commands carry their `time` and `actor` as arguments rather than reading the clock, so that
//! replaying the journal gives the same state byte for byte.
//!
//! ```
//! use userops::{Engine, Event};
//! let mut engine = Engine::default();
//! engine.ingest(Event::from_json(r#"{"kind": "register", "key": "r1", "time": "2026-01-01T00:00:00Z",
//!     "source": {"platform": "app", "program": "b"}, "user": {"kind": "phone", "value": "13800138000"}}"#)?)?;
//! engine.call_json("set_consent", r#"{"user": {"oneid": 1}, "channel": "sms", "purpose": "marketing",
//!     "granted": true, "actor": "crm-sync", "time": "2026-01-02T00:00:00Z"}"#)?;
//! assert!(engine.has_consent(userops::OneId(1), "sms", "marketing"));
//! assert!(!engine.has_consent(userops::OneId(1), "push", "marketing"));
//! engine.call_json("erase", r#"{"oneid": 1, "actor": "dpo", "time": "2026-01-03T00:00:00Z"}"#)?;
//! assert!(!engine.has_consent(userops::OneId(1), "sms", "marketing"));
//! assert_eq!(engine.stats().identifiers, 0);
//! assert_eq!(engine.privacy().audit().len(), 2);
//! # Ok::<(), userops::Error>(())
//! ```

mod intake;
mod person;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::command::Output;
use crate::engine::Engine;
use crate::error::Error;
use crate::event::{rfc3339, UserRef};
use crate::ids::OneId;

pub use crate::ids::{is_pseudonym, PSEUDONYM_BASE};

/// The privacy module's commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PrivacyCommand {
    /// Record that a person gave (or withdrew) consent to be contacted on `channel` for
    /// `purpose`. The person must exist. Audited. Output: [`ConsentState`].
    SetConsent {
        /// The person (an identifier or a OneID).
        user: UserRef,
        /// The channel (sms, push, email, wechat, ...).
        channel: String,
        /// The purpose (marketing, service, survey, ...).
        purpose: String,
        /// Given (`true`) or withdrawn (`false`).
        granted: bool,
        /// Who made the change (an operator or a system).
        actor: String,
        /// When (RFC 3339 with a zone).
        #[serde(with = "rfc3339")]
        time: DateTime<Utc>,
    },
    /// A person's consent for one channel and purpose (no record: not granted).
    /// Output: [`ConsentState`].
    Consent {
        /// The person: an identifier of theirs or their OneID.
        user: UserRef,
        /// The channel, e.g. `"sms"`.
        channel: String,
        /// The purpose, e.g. `"marketing"`.
        purpose: String,
    },
    /// Erase a person: identifiers and consent removed, the OneID kept as a tombstone.
    /// Erasing an erased person changes nothing but the audit log. Output: [`Erasure`].
    Erase {
        /// The person (any OneID that was merged into it names it too).
        oneid: OneId,
        /// Who asked for it.
        actor: String,
        /// When (RFC 3339 with a zone).
        #[serde(with = "rfc3339")]
        time: DateTime<Utc>,
    },
    /// The audit log, oldest first. Output: a list of [`AuditEntry`].
    AuditLog {},
}

impl PrivacyCommand {
    /// Whether the command changes state.
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            PrivacyCommand::SetConsent { .. } | PrivacyCommand::Erase { .. }
        )
    }
}

/// One consent decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// Given or withdrawn.
    pub granted: bool,
    /// When it was recorded.
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
}

/// What `set_consent` and `consent` return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentState {
    /// The person's OneID.
    pub oneid: OneId,
    /// The channel, e.g. `"sms"`.
    pub channel: String,
    /// The purpose, e.g. `"marketing"`.
    pub purpose: String,
    /// Whether contact is allowed.
    pub granted: bool,
    /// When the decision was recorded, if ever.
    pub time: Option<DateTime<Utc>>,
}

/// What `erase` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Erasure {
    /// The tombstone OneID.
    pub oneid: OneId,
    /// Identifiers removed.
    pub identifiers_removed: u64,
    /// Consent records removed.
    pub consents_removed: u64,
    /// True when the person had been erased before (nothing but the audit log changed).
    pub already_erased: bool,
    /// Persons erased with this one: each existed only through its events (an identifier they
    /// claimed that a cap or the junk threshold kept apart, with no event or evidence of its
    /// own). Their identifiers are counted in `identifiers_removed`.
    #[serde(default)]
    pub also_erased: Vec<OneId>,
}

impl Erasure {
    /// The person erased and those erased with it.
    pub fn persons(&self) -> impl Iterator<Item = OneId> + '_ {
        std::iter::once(self.oneid).chain(self.also_erased.iter().copied())
    }
}

/// One operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// Who did it (the operator's free text).
    pub actor: String,
    /// The method (`set_consent`, `erase`).
    pub action: String,
    /// What it concerned, e.g. `oneid:42` or `oneid:42/sms/marketing`.
    pub target: String,
    /// When, as the command gave it (UTC).
    #[serde(with = "rfc3339")]
    pub time: DateTime<Utc>,
}

/// The privacy module's outputs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum PrivacyOutput {
    /// From `set_consent` and `consent`.
    Consent(ConsentState),
    /// From `erase`.
    Erased(Erasure),
    /// From `audit_log`.
    AuditLog(Vec<AuditEntry>),
}

/// One person's consent statements: channel → purpose → decision.
pub(crate) type Statements = BTreeMap<String, BTreeMap<String, ConsentRecord>>;

/// The privacy module's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PrivacyState {
    /// Person → channel → purpose → decision. Keyed by the live (canonical) OneID; merges move
    /// the absorbed person's records over.
    consents: BTreeMap<OneId, Statements>,
    /// Erased persons (tombstones).
    erased: BTreeSet<OneId>,
    /// The operator actions, oldest first; entries are only appended.
    audit: Vec<AuditEntry>,
    /// What merges moved, for a split to give back (see `person.rs`): the survivor's
    /// statements before and the absorbed person's.
    #[serde(default, skip_serializing_if = "crate::person::Stash::is_empty")]
    merged: crate::person::Stash<(Statements, Statements)>,
}

impl PrivacyState {
    /// The audit log, oldest first.
    pub fn audit(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// Whether a person was erased.
    pub fn is_erased(&self, oneid: OneId) -> bool {
        self.erased.contains(&oneid)
    }

    /// Erased persons.
    pub fn erased(&self) -> impl Iterator<Item = OneId> + '_ {
        self.erased.iter().copied()
    }

    /// Every consent record: (person, channel, purpose, decision).
    pub fn consents(&self) -> impl Iterator<Item = (OneId, &str, &str, &ConsentRecord)> {
        self.consents.iter().flat_map(|(o, chans)| {
            chans.iter().flat_map(move |(c, purposes)| {
                purposes
                    .iter()
                    .map(move |(p, r)| (*o, c.as_str(), p.as_str(), r))
            })
        })
    }

    /// One person's consent records: (channel, purpose, decision).
    pub fn consents_of(&self, oneid: OneId) -> impl Iterator<Item = (&str, &str, &ConsentRecord)> {
        self.consents.get(&oneid).into_iter().flat_map(|chans| {
            chans.iter().flat_map(|(c, purposes)| {
                purposes
                    .iter()
                    .map(move |(p, r)| (c.as_str(), p.as_str(), r))
            })
        })
    }

    fn record(&self, oneid: OneId, channel: &str, purpose: &str) -> Option<&ConsentRecord> {
        self.consents.get(&oneid)?.get(channel)?.get(purpose)
    }

    /// Erased persons.
    pub(crate) fn erased_set(&self) -> &BTreeSet<OneId> {
        &self.erased
    }

    /// The pseudonym the next erasure re-keys ledger data to (see [`PSEUDONYM_BASE`]).
    pub(crate) fn next_pseudonym(&self) -> OneId {
        OneId(PSEUDONYM_BASE + self.erased.len() as u64)
    }

    /// Append an operator action to the audit log (for any module's operator commands).
    pub(crate) fn audit_push(
        &mut self,
        actor: &str,
        action: &str,
        target: String,
        time: DateTime<Utc>,
    ) {
        let seq = self.audit.len() as u64 + 1;
        self.audit.push(AuditEntry {
            seq,
            actor: actor.to_owned(),
            action: action.to_owned(),
            target,
            time,
        });
    }
}

fn non_empty(field: &str, v: &str) -> Result<(), Error> {
    if v.trim().is_empty() {
        Err(Error::invalid_argument(field, "must not be empty"))
    } else {
        Ok(())
    }
}

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
            .and_then(|o| self.state.privacy.record(o, channel, purpose))
            .is_some_and(|r| r.granted)
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
                non_empty("channel", &channel)?;
                non_empty("purpose", &purpose)?;
                non_empty("actor", &actor)?;
                let oneid = self
                    .privacy_target(&user)
                    .map_err(|e| Error::invalid_argument("user", e.to_string()))?;
                // Checks done; nothing fails from here.
                let p = &mut self.state.privacy;
                p.consents
                    .entry(oneid)
                    .or_default()
                    .entry(channel.clone())
                    .or_default()
                    .insert(purpose.clone(), ConsentRecord { granted, time });
                p.audit_push(
                    &actor,
                    "set_consent",
                    format!("oneid:{oneid}/{channel}/{purpose}"),
                    time,
                );
                PrivacyOutput::Consent(ConsentState {
                    oneid,
                    channel,
                    purpose,
                    granted,
                    time: Some(time),
                })
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
                let already_erased = self.state.privacy.erased.contains(&target);
                let e = if already_erased {
                    Default::default()
                } else {
                    self.erase_person(target)
                };
                let mut detail = format!("oneid:{target}");
                for o in &e.with {
                    detail.push_str(&format!(" oneid:{o}"));
                }
                self.state.privacy.audit_push(&actor, "erase", detail, time);
                PrivacyOutput::Erased(Erasure {
                    oneid: target,
                    identifiers_removed: e.identifiers,
                    consents_removed: e.consents,
                    already_erased,
                    also_erased: e.with,
                })
            }
        };
        Ok(Output::Privacy(out))
    }
    /// The privacy commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_privacy(&self, c: PrivacyCommand) -> Result<Output, Error> {
        let out = match c {
            PrivacyCommand::Consent {
                user,
                channel,
                purpose,
            } => {
                let oneid = self
                    .privacy_target(&user)
                    .map_err(|e| Error::invalid_argument("user", e.to_string()))?;
                let rec = self.state.privacy.record(oneid, &channel, &purpose);
                PrivacyOutput::Consent(ConsentState {
                    oneid,
                    granted: rec.is_some_and(|r| r.granted),
                    time: rec.map(|r| r.time),
                    channel,
                    purpose,
                })
            }
            PrivacyCommand::AuditLog {} => {
                PrivacyOutput::AuditLog(self.state.privacy.audit.clone())
            }
            other => return Err(Error::not_a_query(&other)),
        };
        Ok(Output::Privacy(out))
    }
}

pub use intake::hash_identifiers_in;

#[cfg(test)]
mod tests;
