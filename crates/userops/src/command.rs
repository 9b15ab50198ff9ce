//! The closed set of commands the engine understands (ARCHITECTURE: one surface, three doors).
//!
//! A command is a method name plus named arguments. Rust callers build [`Command`] values (or use
//! the typed wrappers on [`Engine`](crate::Engine)); Python methods and the C ABI send the method
//! name and the arguments as JSON, and [`Command::from_call`] turns them into the same value. The
//! store journals commands and replays them.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::{Event, UserRef};
use crate::ids::OneId;

/// A call to the engine. On the wire: `{"method": "ingest", "args": {"event": {...}}}`.
// A command is built, moved once into `execute` and dropped: boxing the event would add an
// allocation per event and save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Ingest one event. Output: [`Receipt`].
    Ingest {
        /// The event.
        event: Event,
    },
    /// Resolve a user reference to its OneID without creating anything. Output: [`Resolved`].
    Resolve {
        /// An identifier or a OneID.
        user: UserRef,
    },
    /// Counts of what the engine holds. Output: [`Stats`].
    Stats {},
}

impl Command {
    /// Build a command from a method name and its arguments as a JSON object.
    ///
    /// ```
    /// use userops::Command;
    /// let c = Command::from_call("resolve", r#"{"user": {"kind": "member_no", "value": "M1"}}"#).unwrap();
    /// assert!(matches!(c, Command::Resolve { .. }));
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
        let mut de = serde_json::Deserializer::from_str(&call);
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            if matches!(path.as_str(), "." | "method") && inner.starts_with("unknown variant") {
                return Error::UnknownMethod(method.to_owned());
            }
            let field = path.strip_prefix("args.").unwrap_or(&path).to_owned();
            match field.split('.').next() {
                Some("event") => Error::invalid_event(
                    field.strip_prefix("event.").unwrap_or("").to_owned(),
                    inner,
                ),
                _ => {
                    Error::invalid_argument(if field == "." { String::new() } else { field }, inner)
                }
            }
        })
    }

    /// The method name of this command.
    pub fn method(&self) -> &'static str {
        match self {
            Command::Ingest { .. } => "ingest",
            Command::Resolve { .. } => "resolve",
            Command::Stats {} => "stats",
        }
    }

    /// Whether executing this command can change the engine's state (and so must be journaled).
    pub fn mutates(&self) -> bool {
        !matches!(self, Command::Resolve { .. } | Command::Stats {})
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
    /// From `resolve`.
    Resolved(Resolved),
    /// From `stats`.
    Stats(Stats),
}
