//! The event history as the journal holds it, read without opening the store for writing
//! (`userops export events`).
//!
//! What the journal holds, and so what this gives:
//!
//! - **Every accepted event since the store was created.** The store never compacts its
//!   journal: snapshots only shorten recovery, the records before them stay. An `ingest`
//!   record is one accepted event (a refused event or a replayed idempotency key is not
//!   journaled). An `ingest_batch` record holds the events as they were sent; the journal
//!   does not keep the engine's verdict on each, so a batch's events are given as journaled
//!   with their position in the batch ([`JournalEvent::batch_index`]), and [`History`] counts
//!   them apart. (`Store::ingest_batch` journals one `ingest` record per accepted event; only
//!   an `ingest_batch` command sent through `execute` or the bindings writes batch records.)
//! - **Nothing of an erased person.** An erasure replaces every earlier record that names
//!   the person (an identifier's value or a OneID, anywhere in the record) by a redaction
//!   marker; such records are skipped and counted ([`History::redacted`]). A batch record that
//!   named the person is redacted whole, so the other events it held are gone as well.
//! - **One point in time.** The whole read is one SQLite read transaction, so a writer that
//!   goes on (or an erasure that lands meanwhile) is not seen half-way; a copy taken before an
//!   erasure is not reached by it.
//!
//! Each record's checksum and sequence are verified as recovery does: a bad record is
//! [`StoreError::Corrupt`], except a bad last record, which recovery would remove as a torn
//! write: it is skipped and reported ([`History::torn`]).

use std::path::Path;

use userops::{Command, CoreCommand, Event};

use crate::journal::{self, REDACTED};
use crate::{schema, StoreError};

/// One event read from the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEvent {
    /// The journal record's sequence number.
    pub seq: i64,
    /// The event's position in an `ingest_batch` record; `None` for an `ingest` record.
    pub batch_index: Option<u32>,
    /// The event as journaled (identifiers hashed when the store hashes them).
    pub event: Event,
}

/// What [`EventLog::for_each`] read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct History {
    /// The first and last journal sequence numbers read (`None`: an empty journal).
    pub range: Option<(i64, i64)>,
    /// Journal records read, of every method.
    pub records: u64,
    /// Records an erasure replaced by its marker (their events are not given).
    pub redacted: u64,
    /// Events of `ingest` records.
    pub ingested: u64,
    /// `ingest_batch` records, and the events they hold (given as journaled).
    pub batches: u64,
    /// Events of `ingest_batch` records.
    pub batch_events: u64,
    /// A bad last record skipped as a torn write (its sequence number and what is wrong).
    pub torn: Option<(i64, String)>,
    /// The currency's minor-unit digits in the store's config (the scale of its amounts).
    pub minor_units: u32,
}

impl History {
    /// Events given to the callback of [`EventLog::for_each`].
    pub fn events(&self) -> u64 {
        self.ingested + self.batch_events
    }
}

/// A store's journal opened read-only for its events: [`EventLog::open`], then
/// [`EventLog::for_each`]. It holds one SQLite read transaction from open to the end of the
/// read, so everything it gives comes from one state of the file.
pub struct EventLog {
    conn: rusqlite::Connection,
    config: userops::Config,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").finish_non_exhaustive()
    }
}

impl EventLog {
    /// Open the store at `path` for reading its events; nothing is written to it.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadPath`] for a missing path, a directory or not a regular file;
    /// [`StoreError::NotAStore`] for a file that is not a store; [`StoreError::NewerSchema`] /
    /// [`StoreError::OldSchema`] for a schema this build does not read without migrating;
    /// [`StoreError::Corrupt`] for an unreadable stored config; [`StoreError::Sqlite`] when the
    /// file cannot be read.
    pub fn open(path: impl AsRef<Path>) -> Result<EventLog, StoreError> {
        let path = path.as_ref();
        let found = schema::preflight(path, false)?;
        if found.version < schema::SCHEMA_VERSION {
            return Err(StoreError::OldSchema {
                found: found.version,
                current: schema::SCHEMA_VERSION,
            });
        }
        let conn = schema::open_for_reading(path)?;
        conn.execute_batch("BEGIN")?;
        let config = schema::stored_config(&conn)?;
        Ok(EventLog { conn, config })
    }

    /// The config the store was created with (its amounts have at most
    /// [`userops::Config::currency_minor_units`] decimals).
    pub fn config(&self) -> &userops::Config {
        &self.config
    }

    /// Call `f` with each event the journal holds, in journal order (see the module docs for
    /// what it holds). Memory stays flat: the journal is read through one cursor, one record
    /// at a time.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] for a record that fails its checksum or does not decode (other
    /// than a torn last one) or a gap in the sequence; [`StoreError::Sqlite`] when the file
    /// cannot be read; and whatever `f` returns (reading stops at its first error).
    pub fn for_each<E: From<StoreError>>(
        self,
        mut f: impl FnMut(JournalEvent) -> Result<(), E>,
    ) -> Result<History, E> {
        let conn = self.conn;
        let max: i64 = conn
            .query_row("SELECT coalesce(max(seq), 0) FROM journal", [], |r| {
                r.get(0)
            })
            .map_err(StoreError::from)?;
        let mut history = History {
            minor_units: self.config.currency_minor_units(),
            ..History::default()
        };
        journal::for_each_after(&conn, 0, |raw| {
            let seq = raw.seq;
            history.records += 1;
            history.range = Some((history.range.map_or(seq, |r| r.0), seq));
            let bad = |reason: String| -> Result<(), E> {
                Err(StoreError::Corrupt { seq, reason }.into())
            };
            if raw.method != "ingest" && raw.method != "ingest_batch" {
                // Nothing else carries events: checked, not decoded.
                if raw.checksum == journal::checksum(seq, &raw.command) {
                    history.redacted += u64::from(raw.method == REDACTED);
                } else if seq == max && raw.method != REDACTED {
                    history.torn = Some((seq, "checksum mismatch".into()));
                } else {
                    return bad("checksum mismatch".into());
                }
                return Ok(());
            }
            let events = match raw.decode() {
                Ok(Command::Core(CoreCommand::Ingest { event })) => {
                    history.ingested += 1;
                    vec![(None, event)]
                }
                Ok(Command::Core(CoreCommand::IngestBatch { events, .. })) => {
                    history.batches += 1;
                    history.batch_events += events.len() as u64;
                    events
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| (u32::try_from(i).ok(), e))
                        .collect()
                }
                Ok(_) => return bad(format!("method {:?} holds another command", raw.method)),
                // As recovery: a bad last record is a torn write, which it removes.
                Err(reason) if seq == max => {
                    history.torn = Some((seq, reason));
                    return Ok(());
                }
                Err(reason) => return bad(reason),
            };
            for (batch_index, event) in events {
                f(JournalEvent {
                    seq,
                    batch_index,
                    event,
                })?;
            }
            Ok(())
        })?;
        conn.execute_batch("COMMIT").map_err(StoreError::from)?;
        Ok(history)
    }
}
