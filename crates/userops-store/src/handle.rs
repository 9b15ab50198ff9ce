//! One handle over an in-memory engine or a durable store, for the Python and C bindings: they
//! hold an [`EngineHandle`] and need not know which. Every call takes `&self`: a handle is
//! shared by the threads of the host (no lock of the binding's own around it).

use std::path::Path;

use userops::shared::{Concurrency, ReadView, SharedEngine};
use userops::{Engine, Error};

use crate::{Durability, Store, StoreOptions};

/// An in-memory [`SharedEngine`] or a durable [`Store`], behind the same calls.
#[expect(
    clippy::large_enum_variant,
    reason = "a handle is made once per engine and lives as long: boxing the store would save nothing"
)]
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineHandle {
    /// State in memory only.
    Memory(SharedEngine),
    /// State journaled to a SQLite file.
    Durable(Store),
}

impl Default for EngineHandle {
    /// An empty in-memory engine, [`Concurrency::Lock`].
    fn default() -> Self {
        EngineHandle::Memory(SharedEngine::with_concurrency(
            Engine::default(),
            Concurrency::Lock,
        ))
    }
}

impl EngineHandle {
    /// An empty in-memory engine shared as `concurrency` says (`"lock"` or `"replicas"`, see
    /// [`Concurrency`]).
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `concurrency` for anything but `"lock"` or `"replicas"`.
    pub fn memory(concurrency: &str) -> Result<EngineHandle, Error> {
        Ok(EngineHandle::Memory(SharedEngine::with_concurrency(
            Engine::default(),
            concurrency.parse()?,
        )))
    }

    /// Open a durable store; `durability` is `"every"` (each command committed before the call
    /// returns) or `"group"` (group commit of 1,000 commands or 10 ms, see
    /// [`Durability::group`]). [`Concurrency::Lock`].
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `durability` (or `concurrency`) for an unknown name; then as
    /// [`Store::open`], the store's errors as `storage` or `corrupt`.
    pub fn open(path: impl AsRef<Path>, durability: &str) -> Result<EngineHandle, Error> {
        EngineHandle::open_with(path, durability, "lock")
    }

    /// [`EngineHandle::open`] with the concurrency (`"lock"` or `"replicas"`, see
    /// [`StoreOptions::concurrency`]).
    ///
    /// # Errors
    ///
    /// As [`EngineHandle::open`].
    pub fn open_with(
        path: impl AsRef<Path>,
        durability: &str,
        concurrency: &str,
    ) -> Result<EngineHandle, Error> {
        let durability: Durability = durability.parse()?;
        let concurrency: Concurrency = concurrency.parse()?;
        Ok(EngineHandle::Durable(
            StoreOptions::new()
                .durability(durability)
                .concurrency(concurrency)
                .open(path)?,
        ))
    }

    /// The shared engine (the store's, when durable).
    pub fn shared(&self) -> &SharedEngine {
        match self {
            EngineHandle::Memory(e) => e,
            EngineHandle::Durable(s) => s.shared(),
        }
    }

    /// The engine as of the newest published write, to read (a short read: let go of it soon).
    pub fn engine(&self) -> ReadView<'_> {
        self.shared().read()
    }

    /// The in-memory engine for direct mutation, when it is one copy no other thread can be
    /// using ([`Concurrency::Lock`]); an error for replicas (their copies change only by
    /// commands) and for a durable store (its changes must go through its journal).
    ///
    /// # Errors
    ///
    /// `invalid_argument` with replicas and for a durable store.
    pub fn engine_mut(&mut self) -> Result<&mut Engine, Error> {
        match self {
            EngineHandle::Memory(e) => e.get_mut().ok_or_else(|| {
                Error::invalid_argument(
                    "",
                    "this call bypasses the replicas and is not available with concurrency \"replicas\"",
                )
            }),
            EngineHandle::Durable(_) => Err(Error::invalid_argument(
                "",
                "this call bypasses the journal and is not available on a durable engine",
            )),
        }
    }

    /// [`Engine::execute`] with a typed command (no JSON in between), journaled when durable.
    ///
    /// # Errors
    ///
    /// As [`SharedEngine::execute`] in memory, [`Store::execute`] when durable.
    pub fn execute(&self, command: userops::Command) -> Result<userops::Output, Error> {
        match self {
            EngineHandle::Memory(e) => e.execute(command),
            EngineHandle::Durable(s) => Ok(s.execute(command)?),
        }
    }

    /// [`Engine::call_json`], journaled when durable.
    ///
    /// # Errors
    ///
    /// As [`Engine::call_json`], and [`Store::execute`] when durable.
    pub fn call_json(&self, method: &str, args_json: &str) -> Result<String, Error> {
        match self {
            EngineHandle::Memory(e) => e.call_json(method, args_json),
            EngineHandle::Durable(s) => Ok(s.call_json(method, args_json)?),
        }
    }

    /// [`Engine::ingest_json`] with the receipt as JSON, journaled when durable.
    ///
    /// # Errors
    ///
    /// As [`Engine::ingest_json`], and [`Store::execute`] when durable.
    pub fn ingest_json(&self, event_json: &str) -> Result<String, Error> {
        let event = userops::Event::from_json(event_json)?;
        let receipt = match self.execute(userops::Command::ingest(event))? {
            userops::Output::Receipt(r) => r,
            other => return Err(Error::Internal(format!("ingest returned {other:?}"))),
        };
        serde_json::to_string(&receipt).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Ingest a batch of events as one command (one journal record, one transaction when
    /// durable); see [`Engine::ingest_batch`].
    ///
    /// # Errors
    ///
    /// As [`Engine::ingest_batch`], and [`Store::execute`] when durable.
    pub fn ingest_batch(
        &self,
        events: Vec<userops::Event>,
        on_error: userops::OnError,
    ) -> Result<userops::BatchReceipts, Error> {
        let command =
            userops::Command::Core(userops::CoreCommand::IngestBatch { events, on_error });
        match self.execute(command)? {
            userops::Output::Batch(b) => Ok(b),
            other => Err(Error::Internal(format!("ingest_batch returned {other:?}"))),
        }
    }

    /// Commit what group commit still holds (a no-op in memory).
    ///
    /// # Errors
    ///
    /// As [`Store::flush`] when durable; never in memory.
    pub fn flush(&self) -> Result<(), Error> {
        match self {
            EngineHandle::Memory(_) => Ok(()),
            EngineHandle::Durable(s) => Ok(s.flush()?),
        }
    }
}
