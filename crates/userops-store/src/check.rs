//! `userops check`: verify a store without changing it.

use std::fmt;
use std::path::Path;

use userops::Engine;

use crate::journal::{self, REDACTED};
use crate::{project, schema, snapshot, StoreError};

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CheckReport {
    /// The store file's path, as given.
    pub path: String,
    /// Its schema version.
    pub schema_version: i64,
    /// Journal records.
    pub records: u64,
    /// Records redacted by erasures.
    pub redacted: u64,
    /// Snapshots, by sequence number.
    pub snapshots: Vec<i64>,
    /// Where the verifying replay started (0: the empty engine; otherwise a snapshot).
    pub replay_base: i64,
    /// Snapshots the replay reproduced byte for byte.
    pub snapshots_reproduced: u64,
    /// Events, persons and identifiers in the replayed state.
    pub events: u64,
    /// Live persons.
    pub persons: u64,
    /// Known identifiers.
    pub identifiers: u64,
    /// Findings that recovery would repair (a torn last record).
    pub warnings: Vec<String>,
    /// Findings that make the store unusable or wrong.
    pub problems: Vec<String>,
}

impl CheckReport {
    /// No problems (warnings allowed).
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "store      {}", self.path)?;
        writeln!(f, "schema     version {}", self.schema_version)?;
        writeln!(
            f,
            "journal    {} records ({} redacted by erasure)",
            self.records, self.redacted
        )?;
        writeln!(f, "snapshots  {:?}", self.snapshots)?;
        writeln!(
            f,
            "replay     from {} ; {} snapshot(s) reproduced byte for byte",
            if self.replay_base == 0 {
                "the empty engine".to_owned()
            } else {
                format!("snapshot {}", self.replay_base)
            },
            self.snapshots_reproduced
        )?;
        writeln!(
            f,
            "state      {} events, {} persons, {} identifiers",
            self.events, self.persons, self.identifiers
        )?;
        for w in &self.warnings {
            writeln!(f, "warning    {w}")?;
        }
        for p in &self.problems {
            writeln!(f, "PROBLEM    {p}")?;
        }
        write!(f, "result     {}", if self.ok() { "OK" } else { "FAILED" })
    }
}

/// Verify the store at `path` read-only: every journal record's checksum and sequence, every
/// snapshot's checksum, a replay that must reproduce the snapshots byte for byte, the engine's
/// invariants on the replayed state, and the materialized tables. Errors only when the file
/// cannot be read as a store at all; everything else is in the report.
///
/// # Errors
///
/// [`StoreError::BadPath`] for a path that is missing, a directory or not a regular file;
/// [`StoreError::NotAStore`] for a file that is not a store; [`StoreError::NewerSchema`] for
/// one written by a newer build; [`StoreError::Sqlite`] when the database cannot be read.
/// Problems found inside a readable store are in the report.
pub fn check(path: impl AsRef<Path>) -> Result<CheckReport, StoreError> {
    let path = path.as_ref();
    let found = schema::preflight(path, false)?;
    let mut report = CheckReport {
        path: path.display().to_string(),
        schema_version: found.version,
        ..CheckReport::default()
    };
    if found.version < schema::SCHEMA_VERSION {
        report.problems.push(format!(
            "schema version {} predates {}; open the store once with this build to migrate it",
            found.version,
            schema::SCHEMA_VERSION
        ));
        return Ok(report);
    }
    let conn = schema::open_for_reading(path)?;
    let max: i64 = conn.query_row("SELECT coalesce(max(seq), 0) FROM journal", [], |r| {
        r.get(0)
    })?;

    // 1. The journal on its own.
    let (last_redacted, torn) = check_journal(&conn, max, &mut report);

    // 2. The snapshots on their own, one at a time (each can be over a gigabyte). One in an
    //    older format is harmless once a newer snapshot supersedes it (recovery reads the
    //    newest); the newest in an older format is replaced by opening the store.
    let (snaps, old_format) = check_snapshots(&conn, max, &mut report)?;
    if !report.ok() {
        return Ok(report);
    }

    // 3. Replay, from the empty engine when the whole journal is readable, else from the first
    //    snapshot taken after the last redaction.
    let (mut engine, base) = if last_redacted == 0 {
        (Engine::new(schema::stored_config(&conn)?), 0)
    } else {
        match snaps.iter().find(|h| h.seq >= last_redacted) {
            // As recovery reads it: an older format this build still reads is upgraded.
            Some(h) => match snapshot::restore_upgrading(&conn, h)? {
                snapshot::Restored::Engine(e, _) => (*e, h.seq),
                snapshot::Restored::OldFormat(f) => {
                    report.problems.push(format!(
                        "snapshot {}: format {f} cannot be read and the journal before it is \
                         redacted",
                        h.seq
                    ));
                    return Ok(report);
                }
            },
            None => {
                report.problems.push(format!(
                    "record {last_redacted} is redacted but no snapshot covers it"
                ));
                return Ok(report);
            }
        }
    };
    report.replay_base = base;
    let mut next_snap = snaps.iter().filter(|h| h.seq > base).peekable();
    let replay = journal::for_each_after::<StoreError>(&conn, base, |raw| {
        if Some(raw.seq) == torn {
            return Ok(());
        }
        let command = raw.decode().map_err(|reason| StoreError::Corrupt {
            seq: raw.seq,
            reason,
        })?;
        engine.replay(command).map_err(|e| StoreError::Corrupt {
            seq: raw.seq,
            reason: format!("replay refused: {e}"),
        })?;
        while let Some(h) = next_snap.peek() {
            if h.seq > raw.seq {
                break;
            }
            // A snapshot in an older format cannot match the bytes of this build's state.
            if h.seq == raw.seq && !old_format.contains(&h.seq) {
                if snapshot::matches(&conn, h, &engine)? {
                    report.snapshots_reproduced += 1;
                } else {
                    report.problems.push(format!(
                        "snapshot {} differs from the replayed state",
                        h.seq
                    ));
                }
            }
            next_snap.next();
        }
        Ok(())
    });
    if let Err(e) = replay {
        report.problems.push(e.to_string());
        return Ok(report);
    }
    if base > 0 {
        report.snapshots_reproduced += 1; // the base restored and checksummed
    }
    let stats = engine.stats();
    report.events = stats.events;
    report.persons = stats.persons;
    report.identifiers = stats.identifiers;

    // 4. Invariants and the materialized tables.
    if let Err(bad) = engine.check_invariants() {
        report
            .problems
            .extend(bad.into_iter().map(|b| format!("invariant: {b}")));
    }
    if torn.is_none() {
        for p in project::default_projections() {
            match p.verify(&conn, &engine) {
                Ok(bad) => report
                    .problems
                    .extend(bad.into_iter().map(|b| format!("table {b}"))),
                Err(e) => report.problems.push(format!("table {}: {e}", p.name())),
            }
        }
    }
    Ok(report)
}

/// Pass 1, the journal on its own: every record decodes and every redacted one has its
/// checksum. Returns the last redacted record (0: none) and the torn last record, if any.
fn check_journal(
    conn: &rusqlite::Connection,
    max: i64,
    report: &mut CheckReport,
) -> (i64, Option<i64>) {
    let mut last_redacted = 0;
    let mut torn = None;
    let scan = journal::for_each_after::<StoreError>(conn, 0, |raw| {
        report.records += 1;
        if raw.method == REDACTED {
            if raw.checksum != journal::checksum(raw.seq, &raw.command) {
                report
                    .problems
                    .push(format!("record {}: checksum mismatch", raw.seq));
            }
            report.redacted += 1;
            last_redacted = raw.seq;
        } else if let Err(reason) = raw.decode() {
            if raw.seq == max {
                torn = Some(raw.seq);
                report.warnings.push(format!(
                    "record {} (the last) is torn: {reason}; opening the store removes it",
                    raw.seq
                ));
            } else {
                report
                    .problems
                    .push(format!("record {}: {reason}", raw.seq));
            }
        }
        Ok(())
    });
    if let Err(e) = scan {
        report.problems.push(e.to_string());
    }
    (last_redacted, torn)
}

/// Pass 2, the snapshots on their own. Returns their headers and the ones in an older format.
fn check_snapshots(
    conn: &rusqlite::Connection,
    max: i64,
    report: &mut CheckReport,
) -> Result<(Vec<snapshot::Header>, std::collections::BTreeSet<i64>), StoreError> {
    let snaps = snapshot::headers(conn)?;
    let newest = snaps.iter().map(|h| h.seq).max().unwrap_or(0);
    let mut old_format = std::collections::BTreeSet::new();
    for h in &snaps {
        report.snapshots.push(h.seq);
        match snapshot::restore(conn, h) {
            Err(StoreError::Corrupt { reason, .. }) => {
                report
                    .problems
                    .push(format!("snapshot {}: {reason}", h.seq));
            }
            Err(e) => return Err(e),
            Ok(snapshot::Restored::OldFormat(f)) => {
                old_format.insert(h.seq);
                let what = format!(
                    "snapshot {}: format {f} is older than {}",
                    h.seq,
                    userops::SNAPSHOT_FORMAT
                );
                if h.seq == newest {
                    report
                        .problems
                        .push(format!("{what}; open the store once to replace it"));
                } else {
                    report
                        .warnings
                        .push(format!("{what}, superseded by snapshot {newest}"));
                }
            }
            Ok(snapshot::Restored::Engine(..)) => {}
        }
        if h.seq > max {
            report.problems.push(format!(
                "snapshot {} is ahead of the journal (ends at {max})",
                h.seq
            ));
        }
    }
    Ok((snaps, old_format))
}
