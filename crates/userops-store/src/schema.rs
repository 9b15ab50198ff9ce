//! The database file: what it must look like before the store touches it, its schema, and
//! migrations between schema versions.
//!
//! Every check that can refuse a file runs before anything is written to it, on a read-only
//! connection, so a refused file is left byte for byte as it was.

use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::StoreError;

/// The schema version this build writes. Version 1 was the walking skeleton's journal (no
/// idempotency keys, checksums over the command text only, no materialized tables); version 2
/// kept each snapshot in one blob, which SQLite refuses past its length limit (1 GB).
pub const SCHEMA_VERSION: i64 = 3;

/// `PRAGMA application_id` of a userops store ("USOP"): tells our files from other SQLite files.
pub const APPLICATION_ID: i64 = 0x5553_4F50;

/// The journal, the snapshots (in chunks: see `snapshot.rs`) and the store's own metadata. The
/// materialized tables are created by the projections (see `project.rs`).
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY,
    method TEXT NOT NULL,
    idem_key TEXT,
    command TEXT NOT NULL,
    checksum INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_idem_key ON journal(idem_key) WHERE idem_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS snapshot (
    seq INTEGER PRIMARY KEY,
    len INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    checksum INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshot_chunk (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (seq, idx)
);
";

/// v2 → v3: each snapshot's single blob becomes its chunk 0 (a v2 blob is under SQLite's
/// limit by construction, so it fits one chunk whatever the limit).
const SNAPSHOT_CHUNKS_V3: &str = "
CREATE TABLE snapshot_chunk (
    id INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    UNIQUE (seq, idx)
);
INSERT INTO snapshot_chunk (seq, idx, bytes) SELECT seq, 0, CAST(state AS BLOB) FROM snapshot ORDER BY seq;
CREATE TABLE snapshot_v3 (
    seq INTEGER PRIMARY KEY,
    len INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    checksum INTEGER NOT NULL
);
INSERT INTO snapshot_v3 (seq, len, chunks, checksum)
    SELECT seq, length(CAST(state AS BLOB)), 1, checksum FROM snapshot;
DROP TABLE snapshot;
ALTER TABLE snapshot_v3 RENAME TO snapshot;
";

/// The store's own audit log: what the store did (opened and recovered, truncated a torn
/// record, migrated, snapshotted, redacted for an erasure, rewrote its tables), with the wall
/// clock time. Operator commands are in `audit` (they are journaled and replayed); these are
/// not commands, so they live beside it. Append-only: triggers refuse `UPDATE` and `DELETE`.
pub(crate) const STORE_AUDIT: &str = "
CREATE TABLE IF NOT EXISTS store_audit (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS store_audit_no_update BEFORE UPDATE ON store_audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS store_audit_no_delete BEFORE DELETE ON store_audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
";

/// Append one row to `store_audit`. The actor is the store itself, with its process id.
pub(crate) fn store_audit(
    conn: &Connection,
    action: &str,
    target: &str,
    detail: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO store_audit (time, actor, action, target, detail)
         VALUES (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), ?1, ?2, ?3, ?4)",
    )?
    .execute(rusqlite::params![
        format!("userops-store (pid {})", std::process::id()),
        action,
        target,
        detail
    ])?;
    Ok(())
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What the pre-flight found.
pub(crate) struct Preflight {
    /// The schema version found (0 for a new file).
    pub version: i64,
}

fn bad_path(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::BadPath {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Refuse, without writing anything, a path that cannot be (or is not) a userops store.
pub(crate) fn preflight(path: &Path, writable: bool) -> Result<Preflight, StoreError> {
    // SQLite reads both as "no file": the journal would live in memory or a temporary file
    // and every acknowledged command would be lost at close.
    if path.as_os_str().is_empty() || path.as_os_str() == ":memory:" {
        return Err(bad_path(
            path,
            "names no file: give the path of the SQLite file to keep the engine in",
        ));
    }
    if path.is_dir() {
        return Err(bad_path(path, "is a directory"));
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(bad_path(path, e.to_string())),
    };
    let Some(meta) = meta else {
        if !writable {
            return Err(bad_path(path, "no such file"));
        }
        return Ok(Preflight { version: 0 });
    };
    if !meta.is_file() {
        return Err(bad_path(path, "is not a regular file"));
    }
    // Permission bits rather than a trial open: a process running as root could open a
    // read-only file for writing, and the owner asked for it not to be written.
    if writable && meta.permissions().readonly() {
        return Err(StoreError::ReadOnly {
            path: path.display().to_string(),
        });
    }
    if meta.len() == 0 {
        return Ok(Preflight { version: 0 });
    }
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| bad_path(path, e.to_string()))?;
    if n < 16 || &head != SQLITE_MAGIC {
        return Err(StoreError::NotAStore {
            path: path.display().to_string(),
            reason: "not a SQLite database".into(),
        });
    }
    let ro = open_for_reading(path)?;
    let app: i64 = ro.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let user_version: i64 = ro.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tables: Vec<String> = ro
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let has_journal = tables.iter().any(|t| t == "journal");
    let version = match (app, user_version) {
        (APPLICATION_ID, v) => v,
        // The skeleton wrote no application id and no version.
        (0, 0) if has_journal => 1,
        (0, 0) if tables.is_empty() => 0,
        _ => {
            return Err(StoreError::NotAStore {
                path: path.display().to_string(),
                reason: format!(
                    "a SQLite database of another application (application_id {app:#x}, \
                     tables: {})",
                    tables.join(", ")
                ),
            })
        }
    };
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(Preflight { version })
}

/// A connection for inspecting a file. Read-only when possible. A database left by a crash
/// can need recovery a read-only connection cannot do (a hot rollback journal from a store
/// killed while it was being created, or a WAL index to rebuild: `SQLITE_READONLY_*`); then a
/// read-write connection that never checkpoints on close. Its only writes are SQLite's own
/// crash recovery (rolling back the interrupted transaction), never the store's.
pub(crate) fn open_for_reading(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let ro = Connection::open_with_flags(path, flags)?;
    let probe: rusqlite::Result<i64> =
        ro.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0));
    match probe {
        Ok(_) => Ok(ro),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ReadOnly => {
            drop(ro);
            let rw = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            rw.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )?;
            rw.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(rw)
        }
        Err(e) => Err(e.into()),
    }
}

/// Bring the schema to [`SCHEMA_VERSION`] in one transaction. Returns whether anything was
/// migrated (the materialized tables are then rebuilt).
pub(crate) fn migrate(conn: &mut Connection, from: i64) -> Result<bool, StoreError> {
    if from == SCHEMA_VERSION {
        // Nothing to write: opening a current store must not touch it before recovery has
        // checked it.
        return Ok(false);
    }
    let tx = conn.transaction()?;
    if from == 1 {
        // v1 → v2: idempotency keys, checksums over (seq, command), checksummed snapshots.
        // Each v1 record is verified with the v1 checksum before it is rewritten: a migration
        // must not launder a corrupt record into a valid-looking one.
        tx.execute_batch(
            "ALTER TABLE journal ADD COLUMN idem_key TEXT;
             ALTER TABLE snapshot ADD COLUMN checksum INTEGER NOT NULL DEFAULT 0;",
        )?;
        let rows: Vec<(i64, String, i64)> = tx
            .prepare("SELECT seq, command, checksum FROM journal ORDER BY seq")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (seq, text, old) in rows {
            if old != userops::util::fingerprint(text.as_bytes()) as i64 {
                return Err(StoreError::Corrupt {
                    seq,
                    reason: "checksum mismatch (found while migrating from schema 1)".into(),
                });
            }
            let key = crate::journal::idem_key_of_text(&text);
            tx.execute(
                "UPDATE journal SET idem_key = ?2, checksum = ?3 WHERE seq = ?1",
                rusqlite::params![seq, key, crate::journal::checksum(seq, &text)],
            )?;
        }
        let snaps: Vec<(i64, Vec<u8>)> = tx
            .prepare("SELECT seq, state FROM snapshot")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (seq, state) in snaps {
            tx.execute(
                "UPDATE snapshot SET checksum = ?2 WHERE seq = ?1",
                rusqlite::params![seq, crate::journal::snapshot_checksum(seq, &state)],
            )?;
        }
    }
    if (1..=2).contains(&from) {
        tx.execute_batch(SNAPSHOT_CHUNKS_V3)?;
    }
    tx.execute_batch(SCHEMA)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    let created: Option<String> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'created_schema'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if created.is_none() {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('created_schema', ?1)",
            [if from == 0 { SCHEMA_VERSION } else { from }.to_string()],
        )?;
    }
    tx.commit()?;
    Ok(from != SCHEMA_VERSION)
}

/// The config the store was created with, recorded on first open (`meta.config`).
pub(crate) fn creation_config(
    conn: &Connection,
    offered: &userops::Config,
) -> Result<userops::Config, StoreError> {
    let stored: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'config'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match stored {
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            seq: 0,
            reason: format!("stored config: {e}"),
        }),
        None => {
            let text = serde_json::to_string(offered)
                .map_err(|e| StoreError::Engine(userops::Error::Internal(e.to_string())))?;
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('config', ?1)",
                [text],
            )?;
            Ok(offered.clone())
        }
    }
}

/// The stored creation config, read-only (for `check`); the default when none was stored.
pub(crate) fn stored_config(conn: &Connection) -> Result<userops::Config, StoreError> {
    let stored: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'config'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match stored {
        Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
            seq: 0,
            reason: format!("stored config: {e}"),
        }),
        None => Ok(userops::Config::default()),
    }
}
