//! One handle over an in-memory engine or a durable store, for the Python and C bindings: they
//! hold an [`EngineHandle`] and need not know which.

use std::path::Path;

use userops::{Engine, Error};

use crate::{Durability, Store, StoreOptions};

/// An in-memory [`Engine`] or a durable [`Store`], behind the same calls.
// A handle is made once per engine and lives as long: boxing would save nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineHandle {
    /// State in memory only.
    Memory(Engine),
    /// State journaled to a SQLite file.
    Durable(Store),
}

impl Default for EngineHandle {
    fn default() -> Self {
        EngineHandle::Memory(Engine::default())
    }
}

impl EngineHandle {
    /// Open a durable store; `durability` is `"every"` (each command committed before the call
    /// returns) or `"group"` (group commit of 1,000 commands or 10 ms, see
    /// [`Durability::group`]).
    pub fn open(path: impl AsRef<Path>, durability: &str) -> Result<EngineHandle, Error> {
        let durability = match durability {
            "every" => Durability::EveryCommand,
            "group" => Durability::group(),
            other => {
                return Err(Error::invalid_argument(
                    "durability",
                    format!("{other:?} is not \"every\" or \"group\""),
                ))
            }
        };
        Ok(EngineHandle::Durable(
            StoreOptions::new().durability(durability).open(path)?,
        ))
    }

    /// The engine (read-only).
    pub fn engine(&self) -> &Engine {
        match self {
            EngineHandle::Memory(e) => e,
            EngineHandle::Durable(s) => s.engine(),
        }
    }

    /// The in-memory engine for direct mutation, or an error for a durable store, whose
    /// changes must go through its journal.
    pub fn engine_mut(&mut self) -> Result<&mut Engine, Error> {
        match self {
            EngineHandle::Memory(e) => Ok(e),
            EngineHandle::Durable(_) => Err(Error::invalid_argument(
                "",
                "this call bypasses the journal and is not available on a durable engine",
            )),
        }
    }

    /// [`Engine::execute`] with a typed command (no JSON in between), journaled when durable.
    pub fn execute(&mut self, command: userops::Command) -> Result<userops::Output, Error> {
        match self {
            EngineHandle::Memory(e) => e.execute(command),
            EngineHandle::Durable(s) => Ok(s.execute(command)?),
        }
    }

    /// [`Engine::call_json`], journaled when durable.
    pub fn call_json(&mut self, method: &str, args_json: &str) -> Result<String, Error> {
        match self {
            EngineHandle::Memory(e) => e.call_json(method, args_json),
            EngineHandle::Durable(s) => Ok(s.call_json(method, args_json)?),
        }
    }

    /// [`Engine::ingest_json`] with the receipt as JSON, journaled when durable.
    pub fn ingest_json(&mut self, event_json: &str) -> Result<String, Error> {
        let receipt = match self {
            EngineHandle::Memory(e) => e.ingest_json(event_json)?,
            EngineHandle::Durable(s) => s.ingest(userops::Event::from_json(event_json)?)?,
        };
        serde_json::to_string(&receipt).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Commit pending commands (a no-op in memory).
    /// Ingest a batch of events as one command (one journal record, one transaction when
    /// durable); see [`Engine::ingest_batch`].
    pub fn ingest_batch(
        &mut self,
        events: Vec<userops::Event>,
        on_error: userops::OnError,
    ) -> Result<userops::BatchReceipts, Error> {
        match self {
            EngineHandle::Memory(e) => e.ingest_batch(events, on_error),
            EngineHandle::Durable(s) => {
                let command =
                    userops::Command::Core(userops::CoreCommand::IngestBatch { events, on_error });
                match s.execute(command)? {
                    userops::Output::Batch(b) => Ok(b),
                    other => Err(Error::Internal(format!("ingest_batch returned {other:?}"))),
                }
            }
        }
    }

    /// Commit what group commit still holds (a no-op in memory).
    pub fn flush(&mut self) -> Result<(), Error> {
        match self {
            EngineHandle::Memory(_) => Ok(()),
            EngineHandle::Durable(s) => Ok(s.flush()?),
        }
    }
}
