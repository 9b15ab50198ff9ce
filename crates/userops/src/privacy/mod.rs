//! Privacy (SPEC §9): consent per channel and purpose, salted hashing of identifiers at intake,
//! erasure of a person, and an append-only audit log of operator actions.
//!
//! - **Consent** is recorded per person, channel and purpose (`set_consent`); anything that
//!   touches a user asks [`Engine::has_consent`](crate::Engine::has_consent) first. No record
//!   means no consent.
//! - **Hashing** is a [`Config`](crate::Config) option
//!   ([`ConfigBuilder::hash_identifiers`](crate::ConfigBuilder::hash_identifiers)); see
//!   [`Engine::prepare`](crate::Engine::prepare) for where it happens.
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

/// Refuse an empty (or blank) `v` at `field`: consent statements and operator actions name
/// their channel, purpose and actor.
pub(crate) fn non_empty(field: &str, v: &str) -> Result<(), Error> {
    if v.trim().is_empty() {
        Err(Error::invalid_argument(field, "must not be empty"))
    } else {
        Ok(())
    }
}

impl PrivacyState {
    /// Whether the live person `oneid` consented to contact on `channel` for `purpose`.
    pub(crate) fn granted(&self, oneid: OneId, channel: &str, purpose: &str) -> bool {
        self.record(oneid, channel, purpose)
            .is_some_and(|r| r.granted)
    }

    /// `set_consent`: the arguments are checked, then `target` (the engine's lookup of the
    /// person, refused at `user`); only then is the statement recorded and audited.
    pub(crate) fn set_consent(
        &mut self,
        target: Result<OneId, Error>,
        channel: String,
        purpose: String,
        granted: bool,
        actor: &str,
        time: DateTime<Utc>,
    ) -> Result<PrivacyOutput, Error> {
        non_empty("channel", &channel)?;
        non_empty("purpose", &purpose)?;
        non_empty("actor", actor)?;
        let oneid = target.map_err(|e| Error::invalid_argument("user", e.to_string()))?;
        // Checks done; nothing fails from here.
        self.consents
            .entry(oneid)
            .or_default()
            .entry(channel.clone())
            .or_default()
            .insert(purpose.clone(), ConsentRecord { granted, time });
        self.audit_push(
            actor,
            "set_consent",
            format!("oneid:{oneid}/{channel}/{purpose}"),
            time,
        );
        Ok(PrivacyOutput::Consent(ConsentState {
            oneid,
            channel,
            purpose,
            granted,
            time: Some(time),
        }))
    }

    /// Audit an erasure of `target` (done by the engine's erase flow; `erased` is `None` when
    /// the person had been erased before): identifiers and consents removed, and the persons
    /// erased with it.
    pub(crate) fn audit_erasure(
        &mut self,
        target: OneId,
        erased: Option<(u64, u64, Vec<OneId>)>,
        actor: &str,
        time: DateTime<Utc>,
    ) -> PrivacyOutput {
        let already_erased = erased.is_none();
        let (identifiers, consents, with) = erased.unwrap_or_default();
        let mut detail = format!("oneid:{target}");
        for o in &with {
            detail.push_str(&format!(" oneid:{o}"));
        }
        self.audit_push(actor, "erase", detail, time);
        PrivacyOutput::Erased(Erasure {
            oneid: target,
            identifiers_removed: identifiers,
            consents_removed: consents,
            already_erased,
            also_erased: with,
        })
    }

    /// The privacy commands that change nothing; `target` names the person a `consent` query
    /// is about (the engine's lookup, refused at `user`).
    pub(crate) fn query(
        &self,
        c: PrivacyCommand,
        target: impl FnOnce(&UserRef) -> Result<OneId, Error>,
    ) -> Result<PrivacyOutput, Error> {
        Ok(match c {
            PrivacyCommand::Consent {
                user,
                channel,
                purpose,
            } => {
                let oneid =
                    target(&user).map_err(|e| Error::invalid_argument("user", e.to_string()))?;
                let rec = self.record(oneid, &channel, &purpose);
                PrivacyOutput::Consent(ConsentState {
                    oneid,
                    granted: rec.is_some_and(|r| r.granted),
                    time: rec.map(|r| r.time),
                    channel,
                    purpose,
                })
            }
            PrivacyCommand::AuditLog {} => PrivacyOutput::AuditLog(self.audit.clone()),
            other => return Err(Error::not_a_query(&other)),
        })
    }
}

pub use intake::hash_identifiers_in;

#[cfg(test)]
mod tests;
