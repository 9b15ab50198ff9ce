//! [`Engine`]: the one façade that routes commands to the domain modules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::command::{
    BatchReceipts, BatchResult, Command, CoreCommand, OnError, Output, Receipt, Resolved, Stats,
};
use crate::config::Config;
use crate::error::Error;
use crate::event::{Event, EventBody, UserRef};
use crate::identity::{IdentityGraph, MergeReport};
use crate::ids::{Identifier, OneId};
use crate::receipts::Lookup;

mod analytics;
mod campaigns;
mod identity;
mod lifecycle;
mod loyalty;
mod models;
mod orders;
mod person;
mod privacy;
mod profile;
mod snapshot;
mod tags;

pub use snapshot::{SNAPSHOT_FORMAT, SNAPSHOT_FORMAT_JSON, SNAPSHOT_FORMAT_UPGRADABLE};

/// The unified user pool: every person, their identifiers and everything known about them.
///
/// All changes go through [`Engine::execute`]; the typed methods ([`Engine::ingest`], ...) are
/// wrappers over it. A call that returns an error has changed nothing.
///
/// ```
/// use userops::{Engine, Event};
/// let mut engine = Engine::default();
/// let event = Event::from_json(r#"{"kind": "identify", "key": "k1",
///     "time": "2026-01-05T10:00:00+08:00", "source": {"platform": "jd", "program": "brand-a"},
///     "ids": [{"kind": "phone", "value": "13800138000"}, {"kind": "device_id", "value": "a9f3"}]}"#).unwrap();
/// let first = engine.ingest(event.clone()).unwrap();
/// let again = engine.ingest(event).unwrap();
/// assert!(!first.duplicate && again.duplicate);
/// assert_eq!(first.oneid, again.oneid);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub(crate) config: Config,
    pub(crate) state: State,
    /// Set while [`Engine::replay`] runs a journaled command: admission rules newer than the
    /// journal are not applied again (not state: never serialized).
    pub(crate) replaying: bool,
}

/// Everything the engine knows. Serialized whole for snapshots; every map is ordered so that the
/// same history always gives the same bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) seq: u64,
    /// Idempotency key → content fingerprint and first receipt, compact.
    pub(crate) receipts: crate::receipts::Receipts,
    pub(crate) events_by_kind: BTreeMap<String, u64>,
    pub(crate) identity: IdentityGraph,
    // ---- module state: one field each (keep a blank line between modules) ----
    /// Every accepted order and what was refunded of it.
    #[serde(default)]
    pub(crate) orders: crate::orders::OrderBook,

    /// Dense user indexes, profiles, and the tag index with saved audiences.
    pub(crate) users: crate::users::UserIndex,
    pub(crate) profiles: crate::profile::Profiles,
    pub(crate) tags: crate::tags::TagState,
    pub(crate) loyalty: crate::loyalty::Loyalty,
    #[serde(default)]
    pub(crate) lifecycle: crate::lifecycle::LifecycleState,

    #[serde(default)]
    pub(crate) analytics: crate::analytics::AnalyticsState,
    pub(crate) models: crate::models::ModelsLog,
    pub(crate) campaigns: crate::campaigns::Campaigns,
    pub(crate) privacy: crate::privacy::PrivacyState,
}

impl Engine {
    /// A new, empty engine.
    pub fn new(config: Config) -> Engine {
        Engine {
            config,
            state: State::default(),
            replaying: false,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The identity graph (read-only).
    pub fn identity(&self) -> &IdentityGraph {
        &self.state.identity
    }

    /// Execute one command.
    ///
    /// # Errors
    ///
    /// The command's refusal, with its [`ErrorCode`](crate::ErrorCode) and, for bad input, the
    /// path of the field; a refused command changes nothing. `unknown_method`, `invalid_argument`,
    /// `invalid_event`, `invalid_identifier`: malformed input. `not_found`: a OneID, program,
    /// promotion, audience, ... that does not exist (or a person who was erased). `duplicate_key`,
    /// `duplicate_order`: an idempotency key reused for other content, an order id ingested under
    /// another key. `out_of_range`: an amount, count or time outside its bounds. Then each module's
    /// own: loyalty (`insufficient_points` ... `not_eligible`), `audience_syntax`, `not_converged`,
    /// campaigns (`budget_exhausted`, `promotion_limit_reached`, `coupon_unusable`). `internal`: a
    /// bug. Each command's documentation says which it raises.
    pub fn execute(&mut self, command: Command) -> Result<Output, Error> {
        let command = self.prepare(command)?;
        self.execute_prepared(command)
    }

    /// Execute a command that already went through [`Engine::prepare`] (the store's journal
    /// holds prepared commands: its replay skips the second pass over every identifier).
    /// Same as [`Engine::execute`] when identifier hashing is off.
    ///
    /// # Errors
    ///
    /// As [`Engine::execute`].
    pub fn execute_prepared(&mut self, command: Command) -> Result<Output, Error> {
        self.state.tags.start_command();
        match command {
            Command::Core(CoreCommand::Ingest { event }) => {
                self.apply_event(event).map(Output::Receipt)
            }
            Command::Core(CoreCommand::IngestBatch { events, on_error }) => {
                Ok(Output::Batch(self.apply_batch(events, on_error)))
            }
            Command::Core(CoreCommand::Resolve { user }) => Ok(Output::Resolved(Resolved {
                oneid: self.lookup(&user)?,
            })),
            Command::Core(CoreCommand::Stats {}) => Ok(Output::Stats(self.stats())),
            // ---- module command sets: one arm each, delegating to `Engine::execute_<module>`
            //      defined in the module's own file ----
            Command::Identity(c) => self.execute_identity(c),
            Command::Profile(c) => self.execute_profile(c).map(Output::Profile),
            Command::Tags(c) => self.execute_tags(c).map(Output::Tags),
            Command::Loyalty(c) => self.execute_loyalty(c),
            Command::Lifecycle(c) => self.execute_lifecycle(c),

            Command::Analytics(c) => self.execute_analytics(c),
            Command::Models(c) => self.execute_models(c),
            Command::Campaigns(c) => self.execute_campaigns(c),
            Command::Privacy(c) => self.execute_privacy(c),
        }
    }

    /// Execute a command read back from a journal (the store's recovery and `check`): as
    /// [`Engine::execute_prepared`], except that the admission rules of intake that a journal
    /// written by an older build may predate — money bounds and precision, the event time
    /// window, order-id uniqueness and refund bounds ([`crate::orders`]), order earns that fit
    /// a balance, quote checksums, the saved audiences that rule tags and automation rules
    /// depend on — are not applied again. A journaled command was accepted
    /// when it was written; replay re-applies it, it does not judge it again. Commands accepted
    /// by this build pass those rules, so replaying them gives the same state either way.
    ///
    /// # Errors
    ///
    /// As [`Engine::execute_prepared`], except for the admission rules above, which are not
    /// checked again.
    pub fn replay(&mut self, command: Command) -> Result<Output, Error> {
        self.replaying = true;
        let out = self.execute_prepared(command);
        self.replaying = false;
        out
    }

    /// Execute a command that changes nothing ([`Command::mutates`] is false) through a shared
    /// reference: the read path of a [`SharedEngine`](crate::shared::SharedEngine), where
    /// many threads read one engine at once. Same output as [`Engine::execute`]; a command
    /// that changes state is refused (`invalid_argument`, field `method`) and changes nothing.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `method` for a command that changes state; otherwise as
    /// [`Engine::execute`] for the command.
    ///
    /// ```
    /// use userops::{Command, Engine};
    /// let engine = Engine::default();
    /// let stats = engine.query(Command::from_call("stats", "{}")?)?;
    /// assert!(matches!(stats, userops::Output::Stats(s) if s.events == 0));
    /// let write = Command::from_call("create_program", r#"{"program": {"id": "p"}}"#)?;
    /// assert_eq!(engine.query(write).unwrap_err().field(), Some("method"));
    /// # Ok::<(), userops::Error>(())
    /// ```
    pub fn query(&self, command: Command) -> Result<Output, Error> {
        if command.mutates() {
            return Err(Error::not_a_query(&command));
        }
        match self.prepare(command)? {
            Command::Core(CoreCommand::Resolve { user }) => Ok(Output::Resolved(Resolved {
                oneid: self.lookup(&user)?,
            })),
            Command::Core(CoreCommand::Stats {}) => Ok(Output::Stats(self.stats())),
            Command::Core(other) => Err(Error::not_a_query(&other)),
            // ---- module command sets: one arm each, delegating to `Engine::query_<module>`
            //      defined in the module's own file ----
            Command::Identity(c) => self.query_identity(c),
            Command::Profile(c) => self.query_profile(c).map(Output::Profile),
            Command::Tags(c) => self.query_tags(c).map(Output::Tags),
            Command::Loyalty(c) => self.query_loyalty(c).map(Output::Loyalty),
            Command::Lifecycle(c) => self.query_lifecycle(c),

            Command::Analytics(c) => self.query_analytics(c),
            Command::Models(c) => self.query_models(c),
            Command::Campaigns(c) => self.query_campaigns(c),
            Command::Privacy(c) => self.query_privacy(c),
        }
    }

    /// The command as it is executed and journaled: with identifier hashing on
    /// ([`ConfigBuilder::hash_identifiers`](crate::ConfigBuilder::hash_identifiers)) every
    /// identifier replaced by its salted hash, otherwise unchanged. Idempotent. The store calls
    /// this before writing a command to its journal, so plain identifiers never reach the disk.
    /// An operator `merge` or `split` that names no time is dated here, when the command is
    /// made (the wall clock), so that the journal holds the time it replays with.
    ///
    /// # Errors
    ///
    /// `internal` only (a command that cannot be serialized to have its identifiers hashed).
    pub fn prepare(&self, command: Command) -> Result<Command, Error> {
        let command = match command {
            Command::Identity(c) => Command::Identity(c.dated()),
            other => other,
        };
        match self.config.identifier_salt() {
            Some(salt) => crate::privacy::hash_identifiers_in(command, salt),
            None => Ok(command),
        }
    }

    /// The receipt of an accepted event, by idempotency key (rebuilt from the compact record
    /// the engine keeps for idempotency).
    pub fn receipt(&self, key: &str) -> Option<Receipt> {
        self.state.receipts.get(key)
    }

    /// Check the invariants that tie the state together (used by the store's `check` and the
    /// crash tests): every accepted event has one receipt with a distinct sequence number, the
    /// per-kind counts add up, every identifier belongs to exactly the person that lists it, and
    /// each module's own invariants. Returns every violation found.
    ///
    /// # Errors
    ///
    /// Every violation found, one sentence each.
    pub fn check_invariants(&self) -> Result<(), Vec<String>> {
        let mut bad = Vec::new();
        let s = &self.state;
        if s.receipts.len() as u64 != s.seq {
            bad.push(format!(
                "{} receipts for {} accepted events",
                s.receipts.len(),
                s.seq
            ));
        }
        let by_kind: u64 = s.events_by_kind.values().sum();
        if by_kind != s.seq {
            bad.push(format!(
                "per-kind counts add up to {by_kind}, not {}",
                s.seq
            ));
        }
        let mut seqs: Vec<u64> = s.receipts.seqs().collect();
        seqs.sort_unstable();
        if seqs.iter().enumerate().any(|(i, q)| *q != i as u64 + 1) {
            bad.push("receipt sequence numbers are not 1..=n without gaps or repeats".into());
        }
        // Every module holding per-person state checks its own (engine/person.rs).
        self.check_person_modules(&mut bad);
        if bad.is_empty() {
            Ok(())
        } else {
            Err(bad)
        }
    }

    /// Execute a call given as a method name and JSON arguments; the output as JSON.
    /// This is the path the Python and C bindings take.
    ///
    /// # Errors
    ///
    /// `unknown_method` for a method the engine does not have; `invalid_argument` when
    /// `args_json` is not a JSON object or does not fit the method's arguments (the field named);
    /// then as [`Engine::execute`].
    pub fn call_json(&mut self, method: &str, args_json: &str) -> Result<String, Error> {
        let command = Command::from_call(method, args_json)?;
        let output = self.execute(command)?;
        serde_json::to_string(&output).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Ingest one event. A replayed idempotency key returns the first receipt marked
    /// `duplicate` and changes nothing; a key reused for other content is an error.
    ///
    /// # Errors
    ///
    /// Nothing changes when the event is refused:
    /// - `invalid_event`: a malformed event; or at `user` (`ids[i]` for `identify`) an identifier
    ///   of a kind the config does not accept, a OneID that does not exist or was erased, or an
    ///   identifier on the identity rules' blocklist; a refund of an order that does not exist
    ///   or is someone else's, or of a line the order does not have ([`crate::orders`]).
    /// - `duplicate_key`: the key was already used for different content (the same content
    ///   returns the first receipt, marked `duplicate`).
    /// - `duplicate_order`: the source program already has the order id under another key.
    /// - `out_of_range`: money above the bounds or with more decimals than the currency has, a
    ///   time outside [1970, 2100), refunds above what was paid, points that do not fit a balance
    ///   (the field named).
    pub fn ingest(&mut self, event: Event) -> Result<Receipt, Error> {
        match self.execute(Command::ingest(event))? {
            Output::Receipt(r) => Ok(r),
            other => Err(Error::Internal(format!("ingest returned {other:?}"))),
        }
    }

    /// Ingest events in order, each through the same path as [`Engine::ingest`]: every event
    /// is all-or-nothing on its own. With [`OnError::Stop`] the batch stops at the first refused
    /// event (the events before it stay ingested); with [`OnError::Skip`] a refused event is
    /// reported and the next one is tried.
    ///
    /// # Errors
    ///
    /// `internal` only: a refused event is reported in its [`BatchResult`], with the error
    /// [`Engine::ingest`] would give, not as the batch's error.
    ///
    /// ```
    /// use userops::{BatchResult, Engine, Event, OnError};
    /// let ev = |key: &str, member: &str| Event::from_json(&format!(r#"{{"kind": "register",
    ///     "key": "{key}", "time": "2026-01-01T00:00:00Z", "source": {{"platform": "app",
    ///     "program": "brand-a"}}, "user": {{"kind": "member_no", "value": "{member}"}}}}"#)).unwrap();
    /// let mut engine = Engine::default();
    /// engine.ingest(ev("r1", "M1"))?;
    /// // "r1" again with other content is refused; the other two events go in.
    /// let out = engine.ingest_batch(vec![ev("r2", "M2"), ev("r1", "M9"), ev("r3", "M3")], OnError::Skip)?;
    /// assert_eq!(out.accepted(), 2);
    /// assert!(matches!(out.results[1], BatchResult::Rejected(userops::Error::DuplicateKey { .. })));
    /// assert_eq!(engine.stats().events, 3);
    /// # Ok::<(), userops::Error>(())
    /// ```
    pub fn ingest_batch(
        &mut self,
        events: Vec<Event>,
        on_error: OnError,
    ) -> Result<BatchReceipts, Error> {
        match self.execute(Command::Core(CoreCommand::IngestBatch { events, on_error }))? {
            Output::Batch(b) => Ok(b),
            other => Err(Error::Internal(format!("ingest_batch returned {other:?}"))),
        }
    }

    /// Parse an event from JSON and ingest it: the path of the bindings' `ingest_json`.
    ///
    /// # Errors
    ///
    /// `invalid_event` when the text is not an event (the field named); then as [`Engine::ingest`].
    pub fn ingest_json(&mut self, event_json: &str) -> Result<Receipt, Error> {
        self.ingest(Event::from_json(event_json)?)
    }

    /// Resolve a user reference to a live OneID, creating nothing. `Ok(None)` for an unknown
    /// identifier; an error for a OneID that never existed.
    ///
    /// # Errors
    ///
    /// `not_found` for a OneID that never existed or was erased; `invalid_identifier` for an
    /// identifier of a kind the config does not accept.
    pub fn lookup(&self, user: &UserRef) -> Result<Option<OneId>, Error> {
        match user {
            UserRef::Id(id) => {
                self.check_kind(id)?;
                // With hashing on, state holds hashed identifiers; a plain one is hashed first.
                match self.config.identifier_salt() {
                    Some(salt) if !id.is_hashed() => {
                        Ok(self.state.identity.resolve(&id.hashed(salt)))
                    }
                    _ => Ok(self.state.identity.resolve(id)),
                }
            }
            UserRef::OneId(o) => match self.state.identity.canonical(*o) {
                Some(c) if self.state.privacy.is_erased(c) => Err(Error::NotFound {
                    what: "oneid",
                    id: format!("{o} (erased)"),
                }),
                Some(c) => Ok(Some(c)),
                None => Err(Error::NotFound {
                    what: "oneid",
                    id: o.to_string(),
                }),
            },
        }
    }

    /// Counts of what the engine holds.
    pub fn stats(&self) -> Stats {
        Stats {
            events: self.state.seq,
            events_by_kind: self.state.events_by_kind.clone(),
            persons: self.state.identity.person_count() as u64,
            identifiers: self.state.identity.identifier_count() as u64,
        }
    }

    fn check_kind(&self, id: &Identifier) -> Result<(), Error> {
        if self.config.accepts_kind(id.kind()) {
            Ok(())
        } else {
            Err(Error::InvalidIdentifier(crate::ids::InvalidIdentifier {
                kind: id.kind().to_string(),
                value: id.value().to_owned(),
                reason: "custom identifier kind not registered in the config".into(),
            }))
        }
    }

    /// Every check that can fail runs before the first change, so an error leaves no trace.
    fn apply_event(&mut self, event: Event) -> Result<Receipt, Error> {
        event.validate()?;
        let print = event.fingerprint();
        match self
            .state
            .receipts
            .check(&event.key, print, || event.fingerprint_as_given())
        {
            Lookup::New => {}
            Lookup::Same(receipt) => {
                return Ok(Receipt {
                    duplicate: true,
                    ..receipt
                })
            }
            Lookup::Conflict => return Err(Error::DuplicateKey { key: event.key }),
        }
        // The person the event names, when already known.
        let mut known = None;
        match &event.body {
            EventBody::Identify { ids } => {
                for (i, id) in ids.iter().enumerate() {
                    self.check_kind(id)
                        .map_err(|e| Error::invalid_event(format!("ids[{i}]"), e.to_string()))?;
                }
            }
            _ => {
                if let Some(user) = event.user() {
                    known = self
                        .lookup(user)
                        .map_err(|e| Error::invalid_event("user", e.to_string()))?;
                    if let UserRef::Id(id) = user {
                        if let Some(why) = self.state.identity.blocked(id) {
                            return Err(Error::invalid_event("user", why));
                        }
                    }
                }
            }
        }
        if !self.replaying {
            // Admission rules a journal of an older build may predate (see `Engine::replay`).
            event.check_bounds(self.config.currency_minor_units())?;
            self.orders_check_event(&event, known)?;
        }
        self.loyalty_check_event(&event, known)?;
        self.models_check_event(&event)?;
        // From here on nothing fails.
        let (oneid, absorbed) = match &event.body {
            EventBody::Identify { ids } => {
                let mut moved = Vec::new();
                let out = self.state.identity.link_parts(
                    &event.key,
                    &record_source(&event),
                    event.time.timestamp_millis(),
                    ids,
                    Some(&mut moved),
                    None,
                );
                if let Some(survivor) = out.oneid.filter(|_| !out.absorbed.is_empty()) {
                    let mut report = MergeReport {
                        survivor,
                        absorbed: out.absorbed.clone(),
                        identifiers_moved: moved.into_iter().flat_map(|(_, _, ids)| ids).collect(),
                        evidence: vec![event.key.clone()],
                        modules: BTreeMap::new(),
                    };
                    self.merge_persons(&mut report, event.time);
                }
                (out.oneid, out.absorbed)
            }
            _ => (
                event.user().map(|u| self.resolve_or_create(u, &event)),
                Vec::new(),
            ),
        };
        self.profile_on_event(&event, oneid);
        // ---- module event hooks: one call each (they must not fail) ----
        self.orders_on_event(&event, oneid);

        self.loyalty_on_event(&event, oneid);

        self.state.lifecycle.on_event(
            &crate::lifecycle::PeriodClock::of(&self.config),
            &event,
            oneid,
        );

        self.state.analytics.on_event(&event, oneid);

        self.models_on_event(&event, oneid);
        self.state.campaigns.on_event(&event, oneid);

        self.state.seq += 1;
        let receipt = Receipt {
            key: event.key.clone(),
            kind: event.kind_name().to_owned(),
            seq: self.state.seq,
            oneid,
            absorbed,
            duplicate: false,
        };
        *self
            .state
            .events_by_kind
            .entry(receipt.kind.clone())
            .or_default() += 1;
        self.state.receipts.insert(&receipt, print);
        Ok(receipt)
    }

    fn apply_batch(&mut self, events: Vec<Event>, on_error: OnError) -> BatchReceipts {
        let mut results = Vec::with_capacity(events.len());
        for event in events {
            match self.apply_event(event) {
                Ok(receipt) => results.push(BatchResult::Accepted(receipt)),
                Err(e) => {
                    results.push(BatchResult::Rejected(e));
                    if on_error == OnError::Stop {
                        break;
                    }
                }
            }
        }
        BatchReceipts { results }
    }

    pub(crate) fn resolve_or_create(&mut self, user: &UserRef, event: &Event) -> OneId {
        match user {
            UserRef::Id(id) => self
                .state
                .identity
                .link_parts(
                    &event.key,
                    &record_source(event),
                    event.time.timestamp_millis(),
                    std::slice::from_ref(id),
                    None,
                    None,
                )
                .oneid
                .expect("a blocklisted identifier was refused by apply_event's checks"),
            UserRef::OneId(o) => self
                .state
                .identity
                .canonical(*o)
                .expect("checked by apply_event before any change"),
        }
    }
}

impl Engine {
    /// Check that a user reference given by an operator (a tag table, an attribute) can name a
    /// person: a known OneID, or an identifier of an accepted kind that is not blocklisted.
    pub(crate) fn check_user(&self, user: &UserRef) -> Result<(), Error> {
        self.lookup(user)?;
        if let UserRef::Id(id) = user {
            if let Some(why) = self.state.identity.blocked(id) {
                return Err(Error::invalid_argument("user", why));
            }
        }
        Ok(())
    }

    /// The person a user reference names, creating one for a new identifier; the evidence is
    /// recorded under `record` from `source`. Call [`Engine::check_user`] first.
    pub(crate) fn ensure_user(&mut self, user: &UserRef, record: &str, source: &str) -> OneId {
        ensure_user_in(&mut self.state.identity, user, record, source)
    }
}

/// [`Engine::ensure_user`] on the identity graph alone, for a flow that holds other parts of
/// the state at the same time.
pub(crate) fn ensure_user_in(
    identity: &mut IdentityGraph,
    user: &UserRef,
    record: &str,
    source: &str,
) -> OneId {
    match user {
        UserRef::Id(id) => identity
            .link_parts(record, source, 0, std::slice::from_ref(id), None, None)
            .oneid
            .expect("check_user refused blocklisted identifiers before any change"),
        UserRef::OneId(o) => identity
            .canonical(*o)
            .expect("check_user refused unknown OneIDs before any change"),
    }
}

impl Error {
    /// A command that changes state, given where only reads are taken ([`Engine::query`]).
    pub(crate) fn not_a_query(command: &impl Serialize) -> Error {
        let method = serde_json::to_value(command)
            .ok()
            .and_then(|v| v.get("method").and_then(|m| m.as_str().map(str::to_owned)))
            .unwrap_or_default();
        Error::invalid_argument(
            "method",
            format!("{method} changes state: it is not a read (use execute)"),
        )
    }
}

/// The source an event's identity evidence is recorded under: `platform/program`.
fn record_source(event: &Event) -> String {
    format!("{}/{}", event.source.platform, event.source.program)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(json: &str) -> Event {
        Event::from_json(json).unwrap()
    }

    const IDENTIFY: &str = r#"{"kind": "identify", "key": "k1", "time": "2026-01-05T10:00:00+08:00",
        "source": {"platform": "jd", "program": "brand-a"},
        "ids": [{"kind": "phone", "value": "13800138000"}, {"kind": "device_id", "value": "a9f3"}]}"#;

    #[test]
    fn replay_is_a_no_op_and_reuse_is_an_error() {
        let mut e = Engine::default();
        let r1 = e.ingest(ev(IDENTIFY)).unwrap();
        let before = e.snapshot();
        let r2 = e.ingest(ev(IDENTIFY)).unwrap();
        assert!(r2.duplicate);
        assert_eq!(r1.seq, r2.seq);
        assert_eq!(before, e.snapshot());
        let other = IDENTIFY.replace("a9f3", "zzzz");
        assert_eq!(
            e.ingest(ev(&other)).unwrap_err(),
            Error::DuplicateKey { key: "k1".into() }
        );
        assert_eq!(before, e.snapshot());
    }

    #[test]
    fn errors_change_nothing() {
        let mut e = Engine::default();
        e.ingest(ev(IDENTIFY)).unwrap();
        let before = e.snapshot();
        let bad = r#"{"kind": "activity", "key": "k2", "time": "2026-01-05T10:00:00Z",
            "source": {"platform": "app", "program": "p"}, "user": {"oneid": 77}, "type": "login"}"#;
        let err = e.ingest(ev(bad)).unwrap_err();
        assert_eq!(err.field(), Some("user"));
        let custom = r#"{"kind": "activity", "key": "k3", "time": "2026-01-05T10:00:00Z",
            "source": {"platform": "app", "program": "p"}, "user": {"kind": "card", "value": "C1"}, "type": "login"}"#;
        assert!(e.ingest(ev(custom)).is_err());
        assert!(e
            .call_json("ingest", r#"{"event": {"kind": "nope"}}"#)
            .is_err());
        assert_eq!(before, e.snapshot());
    }

    #[test]
    fn call_json_round_trip_and_snapshot_restore() {
        let mut e = Engine::default();
        let out = e
            .call_json("ingest", &format!(r#"{{"event": {IDENTIFY}}}"#))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["oneid"], 1);
        assert_eq!(v["duplicate"], false);
        let r = e
            .call_json(
                "resolve",
                r#"{"user": {"kind": "phone", "value": "+86 138 0013 8000"}}"#,
            )
            .unwrap();
        assert_eq!(r, r#"{"oneid":1}"#);
        assert!(matches!(
            e.call_json("fly", "{}"),
            Err(Error::UnknownMethod(_))
        ));
        let back = Engine::restore(&e.snapshot()).unwrap();
        assert_eq!(back.snapshot(), e.snapshot());
        assert!(Engine::restore(b"garbage").is_err());
    }

    fn register(key: &str, member: &str) -> Event {
        ev(&format!(
            r#"{{"kind": "register", "key": "{key}", "time": "2026-01-01T00:00:00Z",
            "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "member_no", "value": "{member}"}}}}"#
        ))
    }

    #[test]
    fn batch_matches_one_by_one() {
        let events: Vec<Event> = (0..50)
            .map(|i| register(&format!("r{}", i % 40), &format!("M{}", i % 40)))
            .chain([ev(IDENTIFY)])
            .collect();
        let mut one = Engine::default();
        let receipts: Vec<Receipt> = events
            .iter()
            .map(|e| one.ingest(e.clone()).unwrap())
            .collect();
        let mut batch = Engine::default();
        let out = batch.ingest_batch(events, OnError::Stop).unwrap();
        let got: Vec<Receipt> = out
            .results
            .into_iter()
            .map(|r| match r {
                BatchResult::Accepted(r) => r,
                BatchResult::Rejected(e) => panic!("{e}"),
            })
            .collect();
        assert_eq!(got, receipts);
        assert_eq!(one.snapshot(), batch.snapshot());
    }

    #[test]
    fn batch_stop_and_skip() {
        let bad = ev(
            r#"{"kind": "activity", "key": "x", "time": "2026-01-05T10:00:00Z",
            "source": {"platform": "app", "program": "p"}, "user": {"oneid": 77}, "type": "login"}"#,
        );
        let events = vec![register("a", "M1"), bad, register("b", "M2")];
        let mut stop = Engine::default();
        let out = stop.ingest_batch(events.clone(), OnError::Stop).unwrap();
        assert_eq!(out.results.len(), 2);
        assert!(matches!(out.results[1], BatchResult::Rejected(_)));
        assert_eq!(stop.stats().events, 1);
        let mut skip = Engine::default();
        let out = skip.ingest_batch(events, OnError::Skip).unwrap();
        assert_eq!(out.results.len(), 3);
        assert_eq!(out.accepted(), 2);
        assert_eq!(skip.stats().events, 2);
        match &out.results[1] {
            BatchResult::Rejected(e) => assert_eq!(e.field(), Some("user")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn batch_over_json() {
        let mut e = Engine::default();
        let out = e
            .call_json(
                "ingest_batch",
                &format!(r#"{{"events": [{IDENTIFY}, {IDENTIFY}], "on_error": "skip"}}"#),
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["results"][0]["accepted"]["oneid"], 1);
        assert_eq!(v["results"][1]["accepted"]["duplicate"], true);
        let other = IDENTIFY.replace("a9f3", "zzzz");
        let out = e
            .call_json("ingest_batch", &format!(r#"{{"events": [{other}]}}"#))
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["results"][0]["rejected"]["code"], "duplicate_key");
        assert!(Command::from_call("ingest_batch", r#"{"events": [{"kind": "nope"}]}"#).is_err());
    }
}
