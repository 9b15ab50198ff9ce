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
//! | `audit`      | `seq`, `actor`, `action`, `target`, `time` — operator commands (journaled); triggers refuse any `UPDATE` or `DELETE` |
//! | `store_audit`| `seq`, `time` (wall clock, UTC), `actor`, `action`, `target`, `detail` — the store's own actions (`open`, `truncate_torn_tail`, `migrate`, `snapshot`, `redact`, `rebuild_tables`); append-only by triggers too |
//! | `postings`   | `id` (transfer id), `program`, `kind` (`earn`, `spend`, `post`, ...), `debit_account`, `debit_kind`, `debit_oneid`, `credit_account`, `credit_kind`, `credit_oneid`, `amount`, `time`, `expires`, `linked`, `key`, `reason`, `actor` |
//! | `tags`       | `oneid`, `tag`, `value` (INTEGER 0/1 for bool tags, REAL for numbers, TEXT for enums and RFC 3339 dates) |
//!
//! `postings` holds one row per ledger transfer: `*_kind` is `member`, `issuance`,
//! `redemption`, `expiry` or `conversion`, `*_oneid` the member's OneID (NULL for a program's
//! system accounts); `key`, `reason` and `actor` come from the write that made the transfer.
//! Every transfer debits one account and credits another by `amount`, so per program the
//! credits and debits of all accounts balance. After an erasure the person's rows carry the
//! erasure pseudonym (a OneID at or above `2^62`) and no key, reason or actor that named them.
//! An operator can read a member's balance as
//! `SELECT sum(CASE WHEN credit_oneid = ?1 THEN amount ELSE -amount END) FROM postings
//! WHERE program = ?2 AND (credit_oneid = ?1 OR debit_oneid = ?1) AND kind NOT IN
//! ('pending_earn', 'void')`.
//!
//! # Adding a module's tables (postings, tags, ...)
//!
//! Implement [`Projection`] for the module (its `schema` creates its tables; `apply` looks at
//! the command just executed and its output and rewrites the affected rows from the engine's
//! state; `rebuild` rewrites everything) and add one line after the `// ---- module
//! projections` marker in [`default_projections`]. For example the ledger's projection keys
//! `postings` on the transfers written since the last command; the tags projection rewrites
//! the `tags` rows of the persons a command touched (or all of them after a bulk command).

use rusqlite::{params, Connection};
use std::collections::BTreeSet;
use userops::privacy::{PrivacyCommand, PrivacyOutput};

use userops::{Command, CoreCommand, Engine, EventBody, OneId, Output};

/// A projection's name and the statements that create its tables.
#[derive(Debug)]
pub struct Tables {
    /// A short name, for reports.
    pub name: &'static str,
    /// `CREATE TABLE IF NOT EXISTS ...` statements.
    pub schema: &'static str,
}

/// A materialized view of (part of) the engine's state.
pub trait Projection: Send + Sync + std::fmt::Debug {
    /// Its name and tables.
    fn tables(&self) -> &'static Tables;
    /// A short name, for reports.
    fn name(&self) -> &'static str {
        self.tables().name
    }
    /// `CREATE TABLE IF NOT EXISTS ...` statements.
    fn schema(&self) -> &'static str {
        self.tables().schema
    }
    /// Bring the rows up to date after `command` was executed with `output` (in the journal's
    /// transaction; an error aborts it).
    ///
    /// # Errors
    ///
    /// The SQLite error, which aborts the journal's transaction.
    fn apply(
        &self,
        conn: &Connection,
        engine: &Engine,
        command: &Command,
        output: &Output,
    ) -> rusqlite::Result<()>;
    /// Rewrite every row from the engine's state.
    ///
    /// # Errors
    ///
    /// The SQLite error.
    fn rebuild(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<()>;
    /// Differences between the rows and the engine's state (for `userops check`).
    ///
    /// # Errors
    ///
    /// The SQLite error; differences are no error, they are the answer.
    fn verify(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<Vec<String>>;
}

/// The projections every store keeps.
pub fn default_projections() -> Vec<Box<dyn Projection>> {
    vec![
        Box::new(IdentityProjection),
        Box::new(AuditProjection),
        // ---- module projections: one line each ----
        Box::new(PostingsProjection),
        Box::new(TagsProjection),
    ]
}

/// `identities`, `persons` and `consent`.
#[derive(Debug)]
pub struct IdentityProjection;

impl IdentityProjection {
    /// Remove a person's identifier and consent rows.
    fn clear_person(conn: &Connection, oneid: OneId) -> rusqlite::Result<()> {
        conn.prepare_cached("DELETE FROM identities WHERE oneid = ?1")?
            .execute([oneid.0 as i64])?;
        conn.prepare_cached("DELETE FROM consent WHERE oneid = ?1")?
            .execute([oneid.0 as i64])?;
        Ok(())
    }

    /// The `persons` row of a person absorbed into `survivor`.
    fn write_absorbed(conn: &Connection, absorbed: OneId, survivor: OneId) -> rusqlite::Result<()> {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO persons (oneid, identifiers, erased, merged_into) VALUES (?1, 0, 0, ?2)",
        )?
        .execute(params![absorbed.0 as i64, survivor.0 as i64])?;
        Ok(())
    }

    fn write_person(conn: &Connection, engine: &Engine, oneid: OneId) -> rusqlite::Result<()> {
        IdentityProjection::clear_person(conn, oneid)?;
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

impl IdentityProjection {
    /// Write the persons a command created (a user it named by a new identifier): OneIDs are
    /// handed out densely, so they are the ones above the largest with a row.
    fn new_persons(conn: &Connection, engine: &Engine) -> rusqlite::Result<()> {
        let last: i64 = conn
            .prepare_cached("SELECT coalesce(max(oneid), 0) FROM persons")?
            .query_row([], |r| r.get(0))?;
        for n in (last as u64 + 1)..=engine.identity().oneids_issued() {
            match engine.identity().canonical(OneId(n)) {
                Some(c) if c != OneId(n) => IdentityProjection::write_absorbed(conn, OneId(n), c)?,
                _ => IdentityProjection::write_person(conn, engine, OneId(n))?,
            }
        }
        Ok(())
    }

    /// The rows an accepted event changes.
    fn on_event(
        conn: &Connection,
        engine: &Engine,
        event: &userops::Event,
        r: &userops::Receipt,
    ) -> rusqlite::Result<()> {
        let Some(oneid) = r.oneid.filter(|_| !r.duplicate) else {
            return Ok(());
        };
        let identify = match &event.body {
            EventBody::Identify { ids } => Some(ids),
            _ => None,
        };
        // An event about a known user adds no identifier and merges no one: its person's rows
        // are already right. Only a person it created needs writing. (Most events are of this
        // kind; rewriting the person for each was most of the store's per-event cost.)
        if identify.is_none() && r.absorbed.is_empty() {
            let known = conn
                .prepare_cached("SELECT 1 FROM persons WHERE oneid = ?1 AND merged_into IS NULL")?
                .exists([oneid.0 as i64])?;
            if known {
                return Ok(());
            }
        }
        for a in &r.absorbed {
            IdentityProjection::clear_person(conn, *a)?;
            IdentityProjection::write_absorbed(conn, *a, oneid)?;
        }
        IdentityProjection::write_person(conn, engine, oneid)?;
        // A link the identity rules refused (a cap) leaves an identifier with a person of its
        // own: every person the record's identifiers now belong to is rewritten.
        if let Some(ids) = identify {
            let others: BTreeSet<OneId> = ids
                .iter()
                .filter_map(|i| engine.identity().resolve(i))
                .filter(|o| *o != oneid)
                .collect();
            for o in others {
                IdentityProjection::write_person(conn, engine, o)?;
            }
        }
        Ok(())
    }
}

const IDENTITIES_TABLES: Tables = Tables {
    name: "identities",
    schema: "CREATE TABLE IF NOT EXISTS identities (
             kind TEXT NOT NULL, value TEXT NOT NULL, oneid INTEGER NOT NULL,
             PRIMARY KEY (kind, value));
         CREATE INDEX IF NOT EXISTS identities_oneid ON identities(oneid);
         CREATE TABLE IF NOT EXISTS persons (
             oneid INTEGER PRIMARY KEY, identifiers INTEGER NOT NULL,
             erased INTEGER NOT NULL DEFAULT 0, merged_into INTEGER);
         CREATE TABLE IF NOT EXISTS consent (
             oneid INTEGER NOT NULL, channel TEXT NOT NULL, purpose TEXT NOT NULL,
             granted INTEGER NOT NULL, time TEXT NOT NULL,
             PRIMARY KEY (oneid, channel, purpose));",
};

impl Projection for IdentityProjection {
    fn tables(&self) -> &'static Tables {
        &IDENTITIES_TABLES
    }

    fn apply(
        &self,
        conn: &Connection,
        engine: &Engine,
        command: &Command,
        output: &Output,
    ) -> rusqlite::Result<()> {
        match (command, output) {
            (Command::Core(CoreCommand::Ingest { event }), Output::Receipt(r)) => {
                IdentityProjection::on_event(conn, engine, event, r)
            }
            (Command::Core(CoreCommand::IngestBatch { events, .. }), Output::Batch(b)) => {
                // `results[i]` is the outcome of `events[i]`.
                for (event, result) in events.iter().zip(&b.results) {
                    if let userops::BatchResult::Accepted(r) = result {
                        IdentityProjection::on_event(conn, engine, event, r)?;
                    }
                }
                Ok(())
            }
            (
                Command::Privacy(PrivacyCommand::SetConsent { .. }),
                Output::Privacy(PrivacyOutput::Consent(c)),
            ) => IdentityProjection::write_person(conn, engine, c.oneid),
            (_, Output::Privacy(PrivacyOutput::Erased(e))) => {
                for o in e.persons() {
                    IdentityProjection::write_person(conn, engine, o)?;
                }
                Ok(())
            }
            // An operator's merge, split or rule change moves identifiers between persons
            // (rare, and it may touch many): the tables are rewritten.
            (Command::Identity(c), _) if c.mutates() => self.rebuild(conn, engine),
            // Any other command naming a user by an identifier (an earn, an attribute, a tag
            // table) creates the person when the identifier is new.
            (c, _) if c.mutates() => IdentityProjection::new_persons(conn, engine),
            _ => Ok(()),
        }
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
                IdentityProjection::write_absorbed(conn, OneId(n), c)?;
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

const AUDIT_TABLES: Tables = Tables {
    name: "audit",
    schema: "CREATE TABLE IF NOT EXISTS audit (
             seq INTEGER PRIMARY KEY, actor TEXT NOT NULL, action TEXT NOT NULL,
             target TEXT NOT NULL, time TEXT NOT NULL);
         CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
             BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
         CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
             BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
};

impl Projection for AuditProjection {
    fn tables(&self) -> &'static Tables {
        &AUDIT_TABLES
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

/// `postings`: one row per ledger transfer.
#[derive(Debug)]
pub struct PostingsProjection;

fn account_cols(
    engine: &Engine,
    a: userops::loyalty::AccountId,
) -> (i64, &'static str, Option<i64>) {
    use userops::loyalty::AccountKind as K;
    let kind = engine
        .loyalty()
        .ledger()
        .accounts()
        .get(a.0 as usize)
        .map(|acc| acc.kind);
    let (name, oneid) = match kind {
        Some(K::Member(o)) => ("member", Some(o.0 as i64)),
        Some(K::Issuance) => ("issuance", None),
        Some(K::Redemption) => ("redemption", None),
        Some(K::Expiry) => ("expiry", None),
        Some(K::Conversion) => ("conversion", None),
        _ => ("unknown", None),
    };
    (i64::from(a.0), name, oneid)
}

impl PostingsProjection {
    /// Write (insert or replace) the rows of transfers `from..=to` (1-based ids).
    fn write(
        conn: &Connection,
        engine: &Engine,
        ids: impl Iterator<Item = u64>,
    ) -> rusqlite::Result<()> {
        let ledger = engine.loyalty().ledger();
        let mut ins = conn.prepare_cached(
            "INSERT OR REPLACE INTO postings (id, program, kind, debit_account, debit_kind, debit_oneid,
                 credit_account, credit_kind, credit_oneid, amount, time, expires, linked, key, reason, actor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        for id in ids {
            let Some(t) = ledger.transfers().get(id as usize - 1) else {
                continue;
            };
            let program = ledger
                .accounts()
                .get(t.debit.0 as usize)
                .and_then(|a| ledger.book(a.book))
                .map(|b| b.program.clone())
                .unwrap_or_default();
            let kind = serde_json::to_value(t.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let (da, dk, do_) = account_cols(engine, t.debit);
            let (ca, ck, co) = account_cols(engine, t.credit);
            let op = ledger.ops().get(t.op as usize);
            ins.execute(params![
                t.id as i64,
                program,
                kind,
                da,
                dk,
                do_,
                ca,
                ck,
                co,
                t.amount,
                t.time.to_rfc3339(),
                t.expires.map(|e| e.to_rfc3339()),
                t.linked.map(|l| l as i64),
                op.map(|o| o.key.to_string()),
                op.map(|o| o.reason().to_owned()),
                op.map(|o| o.actor().to_owned()),
            ])?;
        }
        Ok(())
    }

    fn append_missing(conn: &Connection, engine: &Engine) -> rusqlite::Result<()> {
        let have: i64 = conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM postings")?
            .query_row([], |r| r.get(0))?;
        let n = engine.loyalty().ledger().transfers().len() as u64;
        if (have as u64) < n {
            PostingsProjection::write(conn, engine, have as u64 + 1..=n)?;
        }
        Ok(())
    }
}

const POSTINGS_TABLES: Tables = Tables {
    name: "postings",
    schema: "CREATE TABLE IF NOT EXISTS postings (
             id INTEGER PRIMARY KEY, program TEXT NOT NULL, kind TEXT NOT NULL,
             debit_account INTEGER NOT NULL, debit_kind TEXT NOT NULL, debit_oneid INTEGER,
             credit_account INTEGER NOT NULL, credit_kind TEXT NOT NULL, credit_oneid INTEGER,
             amount INTEGER NOT NULL, time TEXT NOT NULL, expires TEXT, linked INTEGER,
             key TEXT, reason TEXT, actor TEXT);
         CREATE INDEX IF NOT EXISTS postings_debit_oneid ON postings(debit_oneid) WHERE debit_oneid IS NOT NULL;
         CREATE INDEX IF NOT EXISTS postings_credit_oneid ON postings(credit_oneid) WHERE credit_oneid IS NOT NULL;",
};

impl Projection for PostingsProjection {
    fn tables(&self) -> &'static Tables {
        &POSTINGS_TABLES
    }

    fn apply(
        &self,
        conn: &Connection,
        engine: &Engine,
        _command: &Command,
        output: &Output,
    ) -> rusqlite::Result<()> {
        // Transfers are append-only, except that an erasure re-keys the person's.
        if let Output::Privacy(PrivacyOutput::Erased(e)) = output {
            if !e.already_erased {
                let oneids = e.persons().flat_map(|p| engine.oneids_of(p));
                let mut ids = BTreeSet::new();
                let mut q = conn.prepare_cached(
                    "SELECT id FROM postings WHERE debit_oneid = ?1 OR credit_oneid = ?1",
                )?;
                for o in oneids {
                    for id in q.query_map([o.0 as i64], |r| r.get::<_, i64>(0))? {
                        ids.insert(id? as u64);
                    }
                }
                PostingsProjection::write(conn, engine, ids.into_iter())?;
            }
        }
        PostingsProjection::append_missing(conn, engine)
    }

    fn rebuild(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM postings", [])?;
        PostingsProjection::append_missing(conn, engine)
    }

    fn verify(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<Vec<String>> {
        let ledger = engine.loyalty().ledger();
        let mut bad = Vec::new();
        let n: i64 = conn.query_row("SELECT count(*) FROM postings", [], |r| r.get(0))?;
        if n as usize != ledger.transfers().len() {
            bad.push(format!(
                "postings: {n} rows, the ledger has {} transfers",
                ledger.transfers().len()
            ));
        }
        let mut stmt = conn.prepare(
            "SELECT id, debit_account, debit_oneid, credit_account, credit_oneid, amount, key FROM postings ORDER BY id",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let got: (i64, Option<i64>, i64, Option<i64>, i64, Option<String>) = (
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            );
            let want = ledger
                .transfers()
                .get((id as usize).wrapping_sub(1))
                .map(|t| {
                    let (da, _, d) = account_cols(engine, t.debit);
                    let (ca, _, c) = account_cols(engine, t.credit);
                    let key = ledger.ops().get(t.op as usize).map(|o| o.key.to_string());
                    (da, d, ca, c, t.amount, key)
                });
            if want.as_ref() != Some(&got) {
                bad.push(format!(
                    "postings: row {id} is {got:?}, the ledger says {want:?}"
                ));
                if bad.len() > 20 {
                    break;
                }
            }
        }
        Ok(bad)
    }
}

/// `tags`: every defined tag's values per live person.
#[derive(Debug)]
pub struct TagsProjection;

fn tag_value(v: &userops::tags::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    use userops::tags::Value as V;
    match v {
        V::Bool(b) => S::Integer(i64::from(*b)),
        V::Text(t) => S::Text(t.clone()),
        V::Number(x) => S::Real(*x),
        V::Date(d) => S::Text(d.to_rfc3339()),
        // A value type added later: its JSON form.
        other => S::Text(serde_json::to_string(other).unwrap_or_default()),
    }
}

impl TagsProjection {
    fn insert(
        conn: &Connection,
        rows: impl IntoIterator<Item = (OneId, String, userops::tags::Value)>,
    ) -> rusqlite::Result<()> {
        let mut ins =
            conn.prepare_cached("INSERT INTO tags (oneid, tag, value) VALUES (?1, ?2, ?3)")?;
        for (o, tag, v) in rows {
            ins.execute(params![o.0 as i64, tag, tag_value(&v)])?;
        }
        Ok(())
    }

    fn write_person(conn: &Connection, engine: &Engine, oneid: OneId) -> rusqlite::Result<()> {
        conn.prepare_cached("DELETE FROM tags WHERE oneid = ?1")?
            .execute([oneid.0 as i64])?;
        let rows = engine
            .tags_of(oneid)
            .into_iter()
            .map(|(t, v)| (oneid, t, v));
        TagsProjection::insert(conn, rows)
    }

    /// Whether `n` persons are most of the engine's: rewriting them one by one would cost more
    /// than rewriting the table.
    fn most_of(engine: &Engine, n: usize) -> bool {
        n > 1024 && n * 2 > engine.identity().person_count()
    }
}

const TAGS_TABLES: Tables = Tables {
    name: "tags",
    schema: "CREATE TABLE IF NOT EXISTS tags (oneid INTEGER NOT NULL, tag TEXT NOT NULL, value);
         CREATE INDEX IF NOT EXISTS tags_oneid ON tags(oneid);
         CREATE INDEX IF NOT EXISTS tags_tag ON tags(tag, value);",
};

impl Projection for TagsProjection {
    fn tables(&self) -> &'static Tables {
        &TAGS_TABLES
    }

    fn apply(
        &self,
        conn: &Connection,
        engine: &Engine,
        command: &Command,
        _output: &Output,
    ) -> rusqlite::Result<()> {
        // No tag defined: no rows, none to change (defining one rewrites the table).
        if !command.mutates() || engine.tag_defs().is_empty() {
            return Ok(());
        }
        // The engine knows whose tag values the command wrote (events, merges, erasures, rule
        // tags recomputed, operators' and models' values): only those rows are rewritten, so
        // a write costs the persons it touched, not the size of the table.
        match engine.tags_changed() {
            Some(persons) if !TagsProjection::most_of(engine, persons.len()) => {
                for o in persons {
                    TagsProjection::write_person(conn, engine, o)?;
                }
                Ok(())
            }
            // A tag defined, or most persons changed: the table in one pass.
            _ => self.rebuild(conn, engine),
        }
    }

    fn rebuild(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<()> {
        conn.execute("DELETE FROM tags", [])?;
        TagsProjection::insert(conn, engine.tag_rows())
    }

    fn verify(&self, conn: &Connection, engine: &Engine) -> rusqlite::Result<Vec<String>> {
        let mut got: Vec<(i64, String, String)> = conn
            .prepare("SELECT oneid, tag, quote(value) FROM tags")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        got.sort();
        let quote = |v: &userops::tags::Value| match tag_value(v) {
            rusqlite::types::Value::Integer(i) => i.to_string(),
            rusqlite::types::Value::Real(x) => format!("{x:?}"),
            rusqlite::types::Value::Text(t) => format!("'{}'", t.replace('\'', "''")),
            _ => String::new(),
        };
        let mut want: Vec<(i64, String, String)> = engine
            .tag_rows()
            .iter()
            .map(|(o, t, v)| (o.0 as i64, t.clone(), quote(v)))
            .collect();
        want.sort();
        if got == want {
            return Ok(Vec::new());
        }
        let first = got
            .iter()
            .zip(&want)
            .find(|(g, w)| g != w)
            .map(|(g, w)| format!("; first difference: {g:?} vs {w:?}"))
            .unwrap_or_default();
        Ok(vec![format!(
            "tags: {} rows, the engine has {} values{first}",
            got.len(),
            want.len()
        )])
    }
}
