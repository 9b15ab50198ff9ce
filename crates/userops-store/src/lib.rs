//! Durability for [`userops::Engine`]: an embedded SQLite database holding an append-only journal
//! of accepted commands and snapshots of the engine's state.
//!
//! Recovery is the last snapshot plus a replay of the journal after it. A command is journaled
//! in the same SQLite transaction that acknowledges it, so an acknowledged command is never lost;
//! a command the engine refused is never journaled.
//!
//! ```
//! use userops_store::Store;
//! use userops::{Command, Event};
//! let dir = std::env::temp_dir().join(format!("userops-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("pool.db");
//! # let _ = std::fs::remove_file(&path);
//! let event = Event::from_json(r#"{"kind": "register", "key": "r1", "time": "2026-01-01T00:00:00Z",
//!     "source": {"platform": "app", "program": "brand-a"}, "user": {"kind": "member_no", "value": "M1"}}"#).unwrap();
//! {
//!     let mut store = Store::open(&path).unwrap();
//!     store.execute(Command::ingest(event)).unwrap();
//! }
//! let store = Store::open(&path).unwrap();
//! assert_eq!(store.engine().stats().events, 1);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```
#![warn(missing_docs)]

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use userops::{Command, Config, Engine, Output};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine refused the command; nothing was written.
    #[error(transparent)]
    Engine(#[from] userops::Error),
    /// SQLite failed (I/O, a file that is not a database, a locked database, ...).
    #[error("storage: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A journal record that cannot be read back.
    #[error("journal record {seq} is corrupt: {reason}")]
    Corrupt {
        /// Its sequence number.
        seq: i64,
        /// What is wrong.
        reason: String,
    },
    /// The path cannot hold a database (a directory, for instance).
    #[error("cannot open {path}: {reason}")]
    BadPath {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// An engine backed by a SQLite file.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    engine: Engine,
    last_seq: i64,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    method TEXT NOT NULL,
    command TEXT NOT NULL,
    checksum INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshot (
    seq INTEGER PRIMARY KEY,
    state BLOB NOT NULL
);
";

impl Store {
    /// Open (or create) the store at `path` with the default config, recovering its state.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::open_with(path, Config::default())
    }

    /// Open (or create) with a config; an existing store keeps the config it was created with.
    pub fn open_with(path: impl AsRef<Path>, config: Config) -> Result<Store, StoreError> {
        let path = path.as_ref();
        if path.is_dir() {
            return Err(StoreError::BadPath {
                path: path.display().to_string(),
                reason: "is a directory".into(),
            });
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        let snap: Option<(i64, Vec<u8>)> = conn
            .query_row(
                "SELECT seq, state FROM snapshot ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (mut engine, mut last_seq) = match snap {
            Some((seq, bytes)) => (
                Engine::restore(&bytes).map_err(|e| StoreError::Corrupt {
                    seq,
                    reason: format!("snapshot: {e}"),
                })?,
                seq,
            ),
            None => (Engine::new(config), 0),
        };
        {
            let mut stmt = conn.prepare(
                "SELECT seq, command, checksum FROM journal WHERE seq > ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([last_seq], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (seq, text, checksum) = row?;
                if checksum != checksum_of(&text) {
                    return Err(StoreError::Corrupt {
                        seq,
                        reason: "checksum mismatch".into(),
                    });
                }
                let command: Command =
                    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                        seq,
                        reason: e.to_string(),
                    })?;
                engine.execute(command).map_err(|e| StoreError::Corrupt {
                    seq,
                    reason: format!("replay refused: {e}"),
                })?;
                last_seq = seq;
            }
        }
        Ok(Store {
            conn,
            engine,
            last_seq,
        })
    }

    /// The engine (read-only; changes go through [`Store::execute`]).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Execute a command; when it changes state it is durable before this returns.
    pub fn execute(&mut self, command: Command) -> Result<Output, StoreError> {
        if !command.mutates() {
            return Ok(self.engine.execute(command)?);
        }
        let text = serde_json::to_string(&command)
            .map_err(|e| StoreError::Engine(userops::Error::Internal(e.to_string())))?;
        let method = command.method();
        let tx = self.conn.transaction()?;
        let output = self.engine.execute(command)?;
        let seq = self.last_seq + 1;
        tx.execute(
            "INSERT INTO journal (seq, method, command, checksum) VALUES (?1, ?2, ?3, ?4)",
            params![seq, method, text, checksum_of(&text)],
        )?;
        tx.commit()?;
        self.last_seq = seq;
        Ok(output)
    }

    /// Write a snapshot of the current state, so that recovery replays only what follows.
    pub fn snapshot(&mut self) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO snapshot (seq, state) VALUES (?1, ?2)",
            params![self.last_seq, self.engine.snapshot()],
        )?;
        Ok(())
    }

    /// The sequence number of the last journaled command.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }
}

fn checksum_of(text: &str) -> i64 {
    // SQLite integers are signed; the bit pattern is what matters.
    userops::util::fingerprint(text.as_bytes()) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use userops::Event;

    fn event(key: &str, member: &str) -> Command {
        Command::ingest(
            Event::from_json(&format!(
                r#"{{"kind": "register", "key": "{key}", "time": "2026-01-01T00:00:00Z",
                "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "member_no", "value": "{member}"}}}}"#
            ))
            .unwrap(),
        )
    }

    #[test]
    fn recovery_replays_journal_after_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let expected = {
            let mut s = Store::open(&path).unwrap();
            s.execute(event("a", "M1")).unwrap();
            s.snapshot().unwrap();
            s.execute(event("b", "M2")).unwrap();
            assert!(s.execute(event("b", "M3")).is_err(), "reused key refused");
            s.engine().snapshot()
        };
        let s = Store::open(&path).unwrap();
        assert_eq!(s.engine().snapshot(), expected);
        assert_eq!(s.last_seq(), 2);
    }

    #[test]
    fn bad_paths_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::BadPath { .. })
        ));
        let junk = dir.path().join("junk.db");
        std::fs::write(
            &junk,
            b"this is not a sqlite database, just some text padding it out...",
        )
        .unwrap();
        let before = std::fs::read(&junk).unwrap();
        assert!(Store::open(&junk).is_err());
        assert_eq!(std::fs::read(&junk).unwrap(), before, "file untouched");
    }

    #[test]
    fn corrupt_record_is_reported_with_its_seq() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        {
            let mut s = Store::open(&path).unwrap();
            s.execute(event("a", "M1")).unwrap();
            s.execute(event("b", "M2")).unwrap();
        }
        let c = Connection::open(&path).unwrap();
        c.execute(
            "UPDATE journal SET command = replace(command, 'M1', 'M9') WHERE seq = 1",
            [],
        )
        .unwrap();
        drop(c);
        match Store::open(&path) {
            Err(StoreError::Corrupt { seq, .. }) => assert_eq!(seq, 1),
            other => panic!("{other:?}"),
        }
    }
}
