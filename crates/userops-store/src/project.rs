//! Materialized tables: the engine's state laid out as plain SQL tables, for operators with the
//! `sqlite3` shell. They are written in the same transaction as the journal record that changed
//! them, so they always agree with the durable state; they are never read back by the store.
//!
//! Tables (all keyed by OneID; an absorbed OneID's rows move to its survivor):
//!
//! | table        | columns                                                          |
//! |--------------|------------------------------------------------------------------|
//! | `identities` | `kind`, `value` (normalized, or `sha256:` when hashed), `oneid`  |
//! | `persons`    | `oneid`, `identifiers` (count), `erased` (0/1), `merged_into`    |
//! | `consent`    | `oneid`, `channel`, `purpose`, `granted` (0/1), `time`           |
//! | `audit`      | `seq`, `actor`, `action`, `target`, `time` — triggers refuse any `UPDATE` or `DELETE` |
//!
//! # Adding a module's tables (postings, tags, ...)
//!
//! Implement [`Projection`] for the module (its `schema` creates its tables; `apply` looks at
//! the command just executed and its output and rewrites the affected rows from the engine's
//! state; `rebuild` rewrites everything) and add one line after the `// ---- module
//! projections` marker in [`default_projections`]. For example the ledger's projection keys
//! `postings(id, oneid, account, points, time, ...)` on the posting ids in its output; the tags
//! module rewrites the `tags(oneid, tag)` rows of the persons in its output.

use rusqlite::{params, Connection};
use std::collections::BTreeSet;
use userops::privacy::{PrivacyCommand, PrivacyOutput};

use userops::{Command, CoreCommand, Engine, EventBody, OneId, Output};

/// A materialized view of (part of) the engine's state.
pub trait Projection: Send + Sync + std::fmt::Debug {
    /// A short name, for reports.
    fn name(&self) -> &'static str;
    /// `CREATE TABLE IF NOT EXISTS ...` statements.
    fn schema(&self) -> &'static str;
    /// Bring the rows up to date after `command` was executed with `output` (in the journal's
    /// transaction; an error aborts it).
    fn apply(
        &self,
        conn: &Connection,
        engine: &Engine,
        command: &Command,
        output: &Output,
    ) -> rusqlite::Result<()>;
    /// Rewrite every row from the engine's state.
    fn rebuild(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<()>;
    /// Differences between the rows and the engine's state (for `userops check`).
    fn verify(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<Vec<String>>;
}

/// The projections every store keeps.
pub fn default_projections() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(IdentityProjection),
        Box::new(AuditProjection),
        // ---- module projections: one line each ----
    ]
}

/// `identities`, `persons` and `consent`.
#[derive(Debug)]
pub struct IdentityProjection;

impl IdentityProjection {
    fn write_person(conn: &Connection, engine: &Engine, oneid: OneId) -> rusqlite::Result<()> {
        conn.prepare_cached("DELETE FROM identities WHERE oneid = ?1")?
            .execute([oneid.0 as i64])?;
        conn.prepare_cached("DELETE FROM consent WHERE oneid = ?1")?
            .execute([oneid.0 as i64])?;
        let ids = engine.identity().identifiers(oneid).unwrap_or_default();
        let mut ins = conn.prepare_cached(
            "INSERT OR REPLACE INTO identities (kind, value, oneid) VALUES (?1, ?2, ?3)",
        )?;
        for id in &ids {
            ins.execute(params![id.kind().as_str(), id.value(), oneid.0 as i64])?;
        }
        conn.prepare_cached(
            "INSERT OR REPLACE INTO persons (oneid, identifiers, erased, merged_into) VALUES (?1, ?2, ?3, NULL)",
        )?
        .execute(params![
            oneid.0 as i64,
            ids.len() as i64,
            engine.privacy().is_erased(oneid)
        ])?;
        let mut ins = conn.prepare_cached(
            "INSERT INTO consent (oneid, channel, purpose, granted, time) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for (channel, purpose, rec) in engine.privacy().consents_of(oneid) {
            ins.execute(params![
                oneid.0 as i64,
                channel,
                purpose,
                rec.granted,
                rec.time.to_rfc3339()
            ])?;
        }
        Ok(())
    }
}

impl Projection for IdentityProjection {
    fn name(&self) -> &'static str {
        "identities"
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE IF NOT EXISTS identities (
             kind TEXT NOT NULL, value TEXT NOT NULL, oneid INTEGER NOT NULL,
             PRIMARY KEY (kind, value));
         CREATE INDEX IF NOT EXISTS identities_oneid ON identities(oneid);
         CREATE TABLE IF NOT EXISTS persons (
             oneid INTEGER PRIMARY KEY, identifiers INTEGER NOT NULL,
             erased INTEGER NOT NULL DEFAULT 0, merged_into INTEGER);
         CREATE TABLE IF NOT EXISTS consent (
             oneid INTEGER NOT NULL, channel TEXT NOT NULL, purpose TEXT NOT NULL,
             granted INTEGER NOT NULL, time TEXT NOT NULL,
             PRIMARY KEY (oneid, channel, purpose));"
    }

    fn apply(
        &self,
        conn: &Connection,
        engine: &Engine,
        command: &Command,
        output: &Output,
    ) -> rusqlite::Result<()> {
        let (oneid, absorbed) = match output {
            Output::Receipt(r) if !r.duplicate => match r.oneid {
                Some(o) => (o, r.absorbed.as_slice()),
                None => return Ok(()),
            },
            Output::Privacy(PrivacyOutput::Consent(c))
                if matches!(command, Command::Privacy(PrivacyCommand::SetConsent { .. })) =>
            {
                (c.oneid, &[][..])
            }
            Output::Privacy(PrivacyOutput::Erased(e)) => (e.oneid, &[][..]),
            _ => return Ok(()),
        };
        for a in absorbed {
            conn.prepare_cached("DELETE FROM identities WHERE oneid = ?1")?
                .execute([a.0 as i64])?;
            conn.prepare_cached("DELETE FROM consent WHERE oneid = ?1")?
                .execute([a.0 as i64])?;
            conn.prepare_cached(
                "INSERT OR REPLACE INTO persons (oneid, identifiers, erased, merged_into) VALUES (?1, 0, 0, ?2)",
            )?
            .execute(params![a.0 as i64, oneid.0 as i64])?;
        }
        IdentityProjection::write_person(conn, engine, oneid)?;
        // A link the identity rules refused (a cap) leaves an identifier with a person of its
        // own: every person the record's identifiers now belong to is rewritten.
        if let Command::Core(CoreCommand::Ingest { event }) = command {
            if let EventBody::Identify { ids } = &event.body {
                let others: BTreeSet<OneId> = ids
                    .iter()
                    .filter_map(|i| engine.identity().resolve(i))
                    .filter(|o| *o != oneid)
                    .collect();
                for o in others {
                    IdentityProjection::write_person(conn, engine, o)?;
                }
            }
        }
        Ok(())
    }

    fn rebuild(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<()> {
        conn.execute_batch("DELETE FROM identities; DELETE FROM persons; DELETE FROM consent;")?;
        let live: Vec<OneId> = engine.identity().persons().map(|(o, _)| o).collect();
        for o in live {
            IdentityProjection::write_person(conn, engine, o)?;
        }
        // Absorbed persons. OneIDs are handed out densely from 1 and never dropped (erased
        // persons stay as tombstones), so every number up to the last resolves.
        let mut n = 1u64;
        while let Some(c) = engine.identity().canonical(OneId(n)) {
            if c != OneId(n) {
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO persons (oneid, identifiers, erased, merged_into) VALUES (?1, 0, 0, ?2)",
                )?
                .execute(params![n as i64, c.0 as i64])?;
            }
            n += 1;
        }
        Ok(())
    }

    fn verify(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<Vec<String>> {
        let mut bad = Vec::new();
        let n: i64 = conn.query_row("SELECT count(*) FROM identities", [], |r| r.get(0))?;
        if n as usize != engine.identity().identifier_count() {
            bad.push(format!(
                "identities: {n} rows, the engine knows {} identifiers",
                engine.identity().identifier_count()
            ));
        }
        let mut stmt = conn.prepare("SELECT kind, value, oneid FROM identities")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (kind, value, oneid): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let owner = userops::Identifier::parse(&kind, &value)
                .ok()
                .and_then(|id| engine.identity().resolve(&id));
            if owner != Some(OneId(oneid as u64)) {
                bad.push(format!(
                    "identities: {kind}:{value} → {oneid}, engine says {owner:?}"
                ));
                if bad.len() > 20 {
                    break;
                }
            }
        }
        let n: i64 = conn.query_row("SELECT count(*) FROM consent", [], |r| r.get(0))?;
        if n as usize != engine.privacy().consents().count() {
            bad.push(format!(
                "consent: {n} rows, the engine holds {}",
                engine.privacy().consents().count()
            ));
        }
        Ok(bad)
    }
}

/// `audit`: append-only, enforced by triggers.
#[derive(Debug)]
pub struct AuditProjection;

impl AuditProjection {
    fn append_missing(conn: &Connection, engine: &Engine) -> rusqlite::Result<()> {
        let have: i64 =
            conn.query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))?;
        let mut ins = conn.prepare_cached(
            "INSERT INTO audit (seq, actor, action, target, time) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for a in engine.privacy().audit().iter().skip(have.max(0) as usize) {
            ins.execute(params![
                a.seq as i64,
                a.actor,
                a.action,
                a.target,
                a.time.to_rfc3339()
            ])?;
        }
        Ok(())
    }
}

impl Projection for AuditProjection {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn schema(&self) -> &'static str {
        "CREATE TABLE IF NOT EXISTS audit (
             seq INTEGER PRIMARY KEY, actor TEXT NOT NULL, action TEXT NOT NULL,
             target TEXT NOT NULL, time TEXT NOT NULL);
         CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
             BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
         CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
             BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    }

    fn apply(
        &self,
        conn: &Connection,
        engine: &Engine,
        command: &Command,
        _output: &Output,
    ) -> rusqlite::Result<()> {
        if matches!(command, Command::Privacy(_)) && command.mutates() {
            AuditProjection::append_missing(conn, engine)?;
        }
        Ok(())
    }

    fn rebuild(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<()> {
        AuditProjection::append_missing(conn, engine)
    }

    fn verify(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<Vec<String>> {
        let n: i64 = conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
        let want = engine.privacy().audit().len();
        Ok(if n as usize == want {
            Vec::new()
        } else {
            vec![format!("audit: {n} rows, the engine's log has {want}")]
        })
    }
}
