//! The closed set of commands the engine understands (ARCHITECTURE: one surface, three doors).
//!
//! A command is a method name plus named arguments. Rust callers build [`Command`] values (or use
//! the typed wrappers on [`Engine`](crate::Engine)); Python methods and the C ABI send the method
//! name and the arguments as JSON, and [`Command::from_call`] turns them into the same value. The
//! store journals commands and replays them.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;
use crate::event::{Event, UserRef};
use crate::ids::OneId;

/// A call to the engine. On the wire: `{"method": "ingest", "args": {"event": {...}}}`.
///
/// Each domain module owns one command set (an enum adjacently tagged by `method`); this enum
/// has one variant per set. Method names are unique across sets, so a name alone finds its set.
#[expect(
    clippy::large_enum_variant,
    reason = "a command is moved once into `execute` and dropped: boxing would add an allocation per event"
)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Command {
    /// Intake and engine-wide queries.
    Core(CoreCommand),
    // ---- module command sets: one variant each (keep a blank line between sets) ----
    /// OneID rules, operator merge and split, explanations.
    Identity(crate::identity::IdentityCommand),
    /// Profiles: attributes and the 360° view.
    Profile(crate::profile::ProfileCommand),
    /// Tags, audiences and exports.
    Tags(crate::tags::TagsCommand),
    /// Loyalty: points ledger, tiers, growth value, benefits, tasks.
    Loyalty(crate::loyalty::LoyaltyCommand),
    /// Lifecycle stages, active rate, decomposition, projection.
    Lifecycle(crate::lifecycle::LifecycleCommand),

    /// Funnel, cohorts, attribution, journey and the other analyses.
    Analytics(crate::analytics::AnalyticsCommand),
    /// User models: RFM, churn risk, preferences, activity, high value.
    Models(crate::models::ModelsCommand),
    /// Promotions, coupons, automation, monitoring.
    Campaigns(crate::campaigns::CampaignsCommand),
    /// Consent, erasure, audit (SPEC §9).
    Privacy(crate::privacy::PrivacyCommand),
}

/// Intake and engine-wide queries.
#[expect(
    clippy::large_enum_variant,
    reason = "a command is moved once into `execute` and dropped: boxing would add an allocation per event"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CoreCommand {
    /// Ingest one event. Output: [`Receipt`].
    Ingest {
        /// The event to ingest.
        event: Event,
    },
    /// Ingest a batch of events in order, each exactly as [`CoreCommand::Ingest`] would (same
    /// checks, same receipts). Output: [`BatchReceipts`]. The store journals a batch as one
    /// command, so a chunk of a table is one transaction.
    IngestBatch {
        /// The events, in the order they are applied.
        events: Vec<Event>,
        /// What a refused event does to the rest of the batch.
        #[serde(default)]
        on_error: OnError,
    },
    /// Resolve a user reference to its OneID without creating anything. Output: [`Resolved`].
    Resolve {
        /// An identifier or a OneID.
        user: UserRef,
    },
    /// Counts of what the engine holds. Output: [`Stats`].
    Stats {},
}

impl From<CoreCommand> for Command {
    fn from(c: CoreCommand) -> Self {
        Command::Core(c)
    }
}

/// Try one command set: `Ok(None)` when it has no such method.
fn parse_in<T: DeserializeOwned>(call: &str, method: &str) -> Result<Option<T>, Error> {
    let mut de = serde_json::Deserializer::from_str(call);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(c) => Ok(Some(c)),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if matches!(path.as_str(), "." | "method") && inner.starts_with("unknown variant") {
                return Ok(None);
            }
            let field = path.strip_prefix("args.").unwrap_or(&path).to_owned();
            let field = if field == "." || field == "args" {
                String::new()
            } else {
                field
            };
            Err(match field.split('.').next() {
                Some("event") if method == "ingest" => Error::invalid_event(
                    field
                        .strip_prefix("event")
                        .unwrap_or("")
                        .trim_start_matches('.'),
                    inner,
                ),
                _ => Error::invalid_argument(field, inner),
            })
        }
    }
}

/// Parse a call of one command set outside the engine (e.g. a standalone identity graph):
/// `Ok(None)` when the set has no such method.
pub(crate) fn parse_call<T: DeserializeOwned>(
    method: &str,
    args_json: &str,
) -> Result<Option<T>, Error> {
    let args: serde_json::Value = serde_json::from_str(args_json)
        .map_err(|e| Error::invalid_argument("", format!("arguments are not JSON: {e}")))?;
    if !args.is_object() {
        return Err(Error::invalid_argument(
            "",
            "arguments must be a JSON object of named arguments",
        ));
    }
    let call = format!(
        r#"{{"method":{},"args":{}}}"#,
        serde_json::Value::from(method),
        args
    );
    parse_in(&call, method)
}

impl Command {
    /// An `ingest` command.
    pub fn ingest(event: Event) -> Command {
        Command::Core(CoreCommand::Ingest { event })
    }

    /// Build a command from a method name and its arguments as a JSON object.
    ///
    /// # Errors
    ///
    /// `invalid_argument` when `args_json` is not JSON or not an object, or does not fit the
    /// method's arguments (the field's path named); `unknown_method` for a method no command
    /// set has.
    ///
    /// ```
    /// use userops::{Command, CoreCommand};
    /// let c = Command::from_call("resolve", r#"{"user": {"kind": "member_no", "value": "M1"}}"#).unwrap();
    /// assert!(matches!(c, Command::Core(CoreCommand::Resolve { .. })));
    /// assert!(Command::from_call("fly", "{}").is_err());
    /// ```
    pub fn from_call(method: &str, args_json: &str) -> Result<Command, Error> {
        let args: serde_json::Value = serde_json::from_str(args_json)
            .map_err(|e| Error::invalid_argument("", format!("arguments are not JSON: {e}")))?;
        if !args.is_object() {
            return Err(Error::invalid_argument(
                "",
                "arguments must be a JSON object of named arguments",
            ));
        }
        // Written out as text with the method first: serde then reads the tag before the
        // arguments and deserializes them in place, which keeps the path of a bad field (a
        // `Value` map would sort "args" first and make serde buffer them, losing the path).
        let call = format!(
            r#"{{"method":{},"args":{}}}"#,
            serde_json::Value::from(method),
            args
        );
        Command::from_call_text(&call, method)
    }

    /// Decode a command from its own serialized form (`serde_json::to_string(&command)`), as
    /// the durable store's journal holds it: one pass over the text. [`Command::from_call`]
    /// (and the generic `Deserialize`) rebuild the call from a parsed tree first, which costs
    /// two more parses; replaying millions of records makes the difference.
    ///
    /// # Errors
    ///
    /// As [`Command::from_call`]; `invalid_argument` for text that is not a command at all.
    ///
    /// ```
    /// use userops::Command;
    /// let c = Command::from_call("resolve", r#"{"user": {"oneid": 1}}"#)?;
    /// let text = serde_json::to_string(&c).unwrap();
    /// assert_eq!(Command::from_json(&text)?, c);
    /// # Ok::<(), userops::Error>(())
    /// ```
    pub fn from_json(text: &str) -> Result<Command, Error> {
        // Every command set is adjacently tagged with `method` first, so serialized text starts
        // `{"method":"<name>"`; anything else takes the general path.
        let method = text
            .strip_prefix(r#"{"method":""#)
            .and_then(|rest| rest.find('"').map(|end| &rest[..end]))
            .filter(|m| !m.contains('\\'));
        match method {
            Some(m) => Command::from_call_text(text, m),
            None => serde_json::from_str(text)
                .map_err(|e| Error::invalid_argument("", format!("not a command: {e}"))),
        }
    }

    /// `call` is `{"method": <method>, "args": {...}}`, method first.
    fn from_call_text(call: &str, method: &str) -> Result<Command, Error> {
        if let Some(c) = parse_in::<CoreCommand>(call, method)? {
            return Ok(Command::Core(c));
        }
        // ---- module command sets: one `if let` each, in the order of the enum ----
        if let Some(c) = parse_in::<crate::identity::IdentityCommand>(call, method)? {
            return Ok(Command::Identity(c));
        }
        if let Some(c) = parse_in::<crate::profile::ProfileCommand>(call, method)? {
            return Ok(Command::Profile(c));
        }
        if let Some(c) = parse_in::<crate::tags::TagsCommand>(call, method)? {
            return Ok(Command::Tags(c));
        }
        if let Some(c) = parse_in::<crate::loyalty::LoyaltyCommand>(call, method)? {
            return Ok(Command::Loyalty(c));
        }
        if let Some(c) = parse_in::<crate::lifecycle::LifecycleCommand>(call, method)? {
            return Ok(Command::Lifecycle(c));
        }

        if let Some(c) = parse_in::<crate::analytics::AnalyticsCommand>(call, method)? {
            return Ok(Command::Analytics(c));
        }
        if let Some(c) = parse_in::<crate::models::ModelsCommand>(call, method)? {
            return Ok(Command::Models(c));
        }
        if let Some(c) = parse_in::<crate::campaigns::CampaignsCommand>(call, method)? {
            return Ok(Command::Campaigns(c));
        }
        if let Some(c) = parse_in::<crate::privacy::PrivacyCommand>(call, method)? {
            return Ok(Command::Privacy(c));
        }

        Err(Error::UnknownMethod(method.to_owned()))
    }

    /// The method name of this command.
    pub fn method(&self) -> String {
        // Every set is adjacently tagged by "method", so the name is what serde writes there.
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("method").and_then(|m| m.as_str().map(str::to_owned)))
            .unwrap_or_default()
    }

    /// Whether executing this command can change the engine's state (and so must be journaled).
    pub fn mutates(&self) -> bool {
        match self {
            Command::Core(c) => matches!(
                c,
                CoreCommand::Ingest { .. } | CoreCommand::IngestBatch { .. }
            ),
            // ---- module command sets: one arm each ----
            Command::Identity(c) => c.mutates(),
            Command::Profile(c) => !matches!(c, crate::profile::ProfileCommand::Profile { .. }),
            Command::Tags(c) => {
                use crate::tags::TagsCommand as T;
                !matches!(
                    c,
                    T::Tags {}
                        | T::Audience { .. }
                        | T::Audiences {}
                        | T::AudienceMembers { .. }
                        | T::ExportAudience { .. }
                        | T::ExportOneids { .. }
                )
            }
            Command::Loyalty(c) => c.mutates(),
            Command::Lifecycle(c) => c.mutates(),

            Command::Analytics(_) => false,
            Command::Models(c) => c.mutates(),
            Command::Campaigns(c) => c.mutates(),
            Command::Privacy(c) => c.mutates(),
        }
    }
}

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            method: String,
            #[serde(default)]
            args: Option<serde_json::Value>,
        }
        let raw = Raw::deserialize(d)?;
        let args = raw.args.unwrap_or_else(|| serde_json::json!({}));
        Command::from_call(&raw.method, &args.to_string()).map_err(serde::de::Error::custom)
    }
}

/// What `ingest` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The event's idempotency key.
    pub key: String,
    /// The event's kind.
    pub kind: String,
    /// The sequence number the engine gave the event when it first accepted it.
    pub seq: u64,
    /// The person the event concerns (for `identify`: the person the identifiers now form).
    pub oneid: Option<OneId>,
    /// Persons merged into `oneid` by this event.
    pub absorbed: Vec<OneId>,
    /// True when the key had been seen before: the event changed nothing this time.
    pub duplicate: bool,
}

/// What a refused event does to the rest of a batch ([`CoreCommand::IngestBatch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnError {
    /// Stop at the first refused event: the events before it are ingested, it and the events
    /// after it are not. The last result is then the refusal.
    #[default]
    Stop,
    /// Refuse the bad event and carry on with the next: every event gets a result.
    Skip,
}

/// What `ingest_batch` returns: one result per event processed, in input order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchReceipts {
    /// `results[i]` is the outcome of `events[i]`. With [`OnError::Stop`] the list ends at the
    /// first refusal (shorter than the input); with [`OnError::Skip`] it is as long as the input.
    pub results: Vec<BatchResult>,
}

impl BatchReceipts {
    /// How many events were accepted (duplicates included: they are accepted no-ops).
    pub fn accepted(&self) -> usize {
        self.results
            .iter()
            .filter(|r| matches!(r, BatchResult::Accepted(_)))
            .count()
    }
}

/// The outcome of one event of a batch. On the wire `{"accepted": receipt}` or
/// `{"rejected": error_report}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BatchResult {
    /// Ingested (or a duplicate, which changed nothing): its receipt.
    Accepted(Receipt),
    /// Refused, having changed nothing: why.
    Rejected(#[serde(serialize_with = "serialize_report")] Error),
}

fn serialize_report<S: serde::Serializer>(e: &Error, s: S) -> Result<S::Ok, S::Error> {
    e.to_report().serialize(s)
}

/// What `resolve` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// The person, or `None` when the identifier is unknown.
    pub oneid: Option<OneId>,
}

/// What `stats` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Events accepted (duplicates not counted).
    pub events: u64,
    /// Accepted events per kind.
    pub events_by_kind: std::collections::BTreeMap<String, u64>,
    /// Live persons.
    pub persons: u64,
    /// Known identifiers.
    pub identifiers: u64,
}

/// The result of [`Engine::execute`](crate::Engine::execute): one variant per command family.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Output {
    /// From `ingest`.
    Receipt(Receipt),
    /// From `ingest_batch`.
    Batch(BatchReceipts),
    /// From `resolve`.
    Resolved(Resolved),
    /// From `stats`.
    Stats(Stats),
    // ---- module outputs: one variant each ----
    /// From the identity commands.
    Identity(crate::identity::IdentityOutput),
    /// From the profile commands.
    Profile(crate::profile::ProfileOutput),
    /// From the tags commands.
    Tags(crate::tags::TagsOutput),
    /// From the loyalty commands.
    Loyalty(crate::loyalty::LoyaltyOutput),
    /// From the lifecycle commands.
    Lifecycle(crate::lifecycle::LifecycleOutput),

    /// From the analysis commands.
    Analytics(crate::analytics::AnalyticsOutput),
    /// From the models' commands.
    Models(crate::models::ModelsOutput),
    /// From a campaigns command.
    Campaigns(crate::campaigns::CampaignsOutput),
    /// From the privacy commands.
    Privacy(crate::privacy::PrivacyOutput),
}
