//! Snapshots of the engine's state, stored in chunks.
//!
//! A snapshot is one row of `snapshot` (sequence number, length, chunk count, checksum over
//! the whole state) and its bytes cut into rows of `snapshot_chunk` (`seq`, `idx` from 0,
//! `bytes`). One blob per snapshot stops working once the state passes SQLite's length limit
//! (`SQLITE_LIMIT_LENGTH`, 1,000,000,000 bytes by default; a 200k-user store with 8M events
//! passes it); chunks are at most [`MAX_CHUNK`] bytes and at most half the connection's limit,
//! so any state fits whatever limit SQLite was built with.
//!
//! Writing serializes the state once into a chunk-sized buffer, one row per full buffer.
//! Reading streams the chunks through SQLite's incremental blob I/O into the engine's snapshot
//! reader (recovery, `check`), or compares them with a fresh serialization as both go
//! (`check`'s replay): the state's bytes are never held whole in memory beside the engine.

use std::io::{Read, Write};

use rusqlite::blob::Blob;
use rusqlite::limits::Limit;
use rusqlite::{params, Connection, OptionalExtension};
use userops::Engine;

use crate::journal::{SnapshotSum, Tee};
use crate::StoreError;

/// The largest chunk written (64 MiB): small enough that SQLite never holds much of a state at
/// once, large enough that a 1 GB state is a handful of rows.
pub(crate) const MAX_CHUNK: u64 = 64 << 20;

/// A stored snapshot's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub seq: i64,
    pub len: u64,
    pub chunks: u64,
    pub checksum: i64,
}

fn io_err(e: std::io::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// The chunk size for this connection: [`MAX_CHUNK`], or half the length limit if that is less
/// (a row holds the chunk and a few integers, and must fit the limit too).
fn chunk_size(conn: &Connection) -> rusqlite::Result<u64> {
    let limit = conn.limit(Limit::SQLITE_LIMIT_LENGTH)?;
    Ok((u64::try_from(limit).unwrap_or(0) / 2).clamp(1, MAX_CHUNK))
}

/// Write a snapshot of `engine` at `seq` (replacing one at the same `seq`), in one
/// serialization pass: the bytes fill a chunk-sized buffer, each full buffer is one row, and
/// the header (length, chunk count, checksum) goes in last. Returns the length.
pub(crate) fn write(conn: &Connection, seq: i64, engine: &Engine) -> rusqlite::Result<u64> {
    let chunk = usize::try_from(chunk_size(conn)?).unwrap_or(1 << 20);
    delete(conn, "seq = ?1", seq)?;
    let mut sum = SnapshotSum::new(seq);
    let mut sink = ChunkSink {
        conn,
        seq,
        chunk,
        buf: Vec::with_capacity(chunk),
        rows: 0,
        failed: None,
        steps: None,
    };
    let written = engine.write_snapshot(Tee {
        inner: &mut sink,
        sum: &mut sum,
    });
    if let Some(e) = sink.failed.take() {
        return Err(e);
    }
    written.map_err(io_err)?;
    sink.flush_chunk()?;
    conn.prepare_cached(
        "INSERT INTO snapshot (seq, len, chunks, checksum) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![seq, sum.len as i64, sink.rows, sum.checksum()])?;
    Ok(sum.len)
}

/// The chunk size of a snapshot written beside a live journal ([`write_in_steps`]): one
/// transaction of this size holds SQLite's write lock for a few milliseconds.
pub(crate) const STEP_CHUNK: usize = 1 << 20;

/// Write a snapshot of `engine` at `seq` beside a journal that goes on being written: on a
/// connection of its own, one transaction per chunk of `chunk` bytes (so the journal's
/// writer never waits for more than one), then the header, the pruning to the two newest and
/// the audit row in a last transaction, if `wanted` still says yes there (an erasure or a
/// newer snapshot since `seq` says no: the chunks are deleted instead). `abort` set stops it
/// between chunks, also deleting them. The length, or `None` when not kept.
pub(crate) fn write_in_steps(
    conn: &Connection,
    seq: i64,
    engine: &Engine,
    chunk: usize,
    abort: &std::sync::atomic::AtomicBool,
    wanted: impl Fn(&Connection) -> rusqlite::Result<bool>,
    audit: impl Fn(&Connection, u64) -> rusqlite::Result<()>,
) -> rusqlite::Result<Option<u64>> {
    let discard = |conn: &Connection| -> rusqlite::Result<Option<u64>> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let done = conn
            .execute("DELETE FROM snapshot_chunk WHERE seq = ?1 AND seq NOT IN (SELECT seq FROM snapshot)", [seq])
            .and_then(|_| conn.execute_batch("COMMIT"));
        if done.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        done.map(|()| None)
    };
    if !wanted(conn)? {
        return Ok(None);
    }
    let mut sum = SnapshotSum::new(seq);
    let mut sink = ChunkSink {
        conn,
        seq,
        chunk: chunk.max(1),
        buf: Vec::with_capacity(chunk.max(1)),
        rows: 0,
        failed: None,
        steps: Some(Steps {
            abort,
            wanted: &wanted,
            stopped: false,
        }),
    };
    let written = engine.write_snapshot(Tee {
        inner: &mut sink,
        sum: &mut sum,
    });
    let flushed = match (sink.failed.take(), written) {
        (Some(e), _) => Err(e),
        (None, Err(e)) => Err(io_err(e)),
        (None, Ok(())) => sink.flush_chunk(),
    };
    if let Err(e) = flushed {
        let _ = conn.execute_batch("ROLLBACK");
        discard(conn)?;
        let stopped = sink.steps.as_ref().is_some_and(|s| s.stopped);
        return match stopped || abort.load(std::sync::atomic::Ordering::SeqCst) {
            true => Ok(None),
            false => Err(e),
        };
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let last = (|| -> rusqlite::Result<bool> {
        if !wanted(conn)? {
            return Ok(false);
        }
        conn.prepare_cached(
            "INSERT INTO snapshot (seq, len, chunks, checksum) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![seq, sum.len as i64, sink.rows, sum.checksum()])?;
        keep_newest(conn, 2)?;
        audit(conn, sum.len)?;
        Ok(true)
    })();
    match last {
        Ok(true) => {
            conn.execute_batch("COMMIT")?;
            Ok(Some(sum.len))
        }
        Ok(false) => {
            conn.execute_batch("ROLLBACK")?;
            discard(conn)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            discard(conn)?;
            Err(e)
        }
    }
}

/// Collects a snapshot's bytes into chunk rows.
struct ChunkSink<'c> {
    conn: &'c Connection,
    seq: i64,
    chunk: usize,
    buf: Vec<u8>,
    rows: i64,
    /// The SQLite error behind a failed write (an `io::Error` would lose its kind).
    failed: Option<rusqlite::Error>,
    /// Written beside a live journal ([`write_in_steps`]): each chunk in a transaction of its
    /// own.
    steps: Option<Steps<'c>>,
}

/// How a snapshot written beside a live journal stops.
struct Steps<'c> {
    /// Set: stop before the next chunk (the store is closing).
    abort: &'c std::sync::atomic::AtomicBool,
    /// Whether the snapshot is still wanted (no erasure, no newer snapshot since its `seq`).
    wanted: &'c dyn Fn(&Connection) -> rusqlite::Result<bool>,
    /// The writing stopped because of `abort` or `wanted`: not an error.
    stopped: bool,
}

impl ChunkSink<'_> {
    /// Store the buffer as the next chunk (a snapshot has at least one, even if empty).
    fn flush_chunk(&mut self) -> rusqlite::Result<()> {
        if self.buf.is_empty() && self.rows > 0 {
            return Ok(());
        }
        if let Some(steps) = &mut self.steps {
            let stop = |why: &str| rusqlite::Error::ToSqlConversionFailure(why.into());
            if steps.abort.load(std::sync::atomic::Ordering::SeqCst) {
                steps.stopped = true;
                return Err(stop("snapshot abandoned"));
            }
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
            // Asked inside the chunk's own transaction: an erasure commits (and folds the WAL)
            // either before it, and then no chunk of a state still holding the erased person
            // is written after it, or after it, and then deletes this chunk with the others.
            match (steps.wanted)(self.conn) {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    steps.stopped = true;
                    return Err(stop("snapshot no longer wanted"));
                }
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
        }
        let inserted = self
            .conn
            .prepare_cached("INSERT INTO snapshot_chunk (seq, idx, bytes) VALUES (?1, ?2, ?3)")
            .and_then(|mut q| q.execute(params![self.seq, self.rows, &self.buf]));
        if self.steps.is_some() {
            match inserted {
                Ok(_) => self.conn.execute_batch("COMMIT")?,
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(e);
                }
            }
        } else {
            inserted?;
        }
        self.rows += 1;
        self.buf.clear();
        Ok(())
    }
}

impl Write for ChunkSink<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = self.chunk - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.chunk {
            if let Err(e) = self.flush_chunk() {
                let io = std::io::Error::other(e.to_string());
                self.failed = Some(e);
                return Err(io);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Delete the snapshots matching `filter` (over `seq`, one parameter), chunks included.
fn delete(conn: &Connection, filter: &str, arg: i64) -> rusqlite::Result<()> {
    conn.execute(&format!("DELETE FROM snapshot_chunk WHERE {filter}"), [arg])?;
    conn.execute(&format!("DELETE FROM snapshot WHERE {filter}"), [arg])?;
    Ok(())
}

/// Keep only the `keep` newest snapshots.
pub(crate) fn keep_newest(conn: &Connection, keep: i64) -> rusqlite::Result<()> {
    let oldest_kept: Option<i64> = conn
        .query_row(
            "SELECT seq FROM snapshot ORDER BY seq DESC LIMIT 1 OFFSET ?1",
            [keep - 1],
            |r| r.get(0),
        )
        .optional()?;
    match oldest_kept {
        Some(seq) => delete(conn, "seq < ?1", seq),
        None => Ok(()),
    }
}

/// Delete every snapshot.
pub(crate) fn delete_all(conn: &Connection) -> rusqlite::Result<()> {
    delete(conn, "?1 = ?1", 0)
}

/// The stored snapshots' headers, oldest first.
pub(crate) fn headers(conn: &Connection) -> rusqlite::Result<Vec<Header>> {
    conn.prepare("SELECT seq, len, chunks, checksum FROM snapshot ORDER BY seq")?
        .query_map([], |r| {
            Ok(Header {
                seq: r.get(0)?,
                len: r.get::<_, i64>(1)?.max(0) as u64,
                chunks: r.get::<_, i64>(2)?.max(0) as u64,
                checksum: r.get(3)?,
            })
        })?
        .collect()
}

/// The newest snapshot's header.
pub(crate) fn newest(conn: &Connection) -> rusqlite::Result<Option<Header>> {
    Ok(headers(conn)?.pop())
}

fn corrupt(seq: i64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        seq,
        reason: reason.into(),
    }
}

/// The chunks of snapshot `h`, in order, after checking that they are all there and add up
/// to its length.
fn chunk_rows(conn: &Connection, h: &Header) -> Result<Vec<i64>, StoreError> {
    let found: Vec<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT id, idx, length(bytes) FROM snapshot_chunk WHERE seq = ?1 ORDER BY idx",
        )?
        .query_map([h.seq], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut total = 0u64;
    for (want, (_, idx, len)) in found.iter().enumerate() {
        if *idx != want as i64 {
            return Err(corrupt(h.seq, format!("snapshot chunk {want} is missing")));
        }
        total += (*len).max(0) as u64;
    }
    if found.len() as u64 != h.chunks || total != h.len {
        return Err(corrupt(
            h.seq,
            format!(
                "snapshot has {} chunk(s) of {total} bytes, its header says {} of {}",
                found.len(),
                h.chunks,
                h.len
            ),
        ));
    }
    Ok(found.into_iter().map(|(id, _, _)| id).collect())
}

/// What a stored snapshot holds.
pub(crate) enum Restored {
    /// The engine it was taken of, and the snapshot's format: [`userops::SNAPSHOT_FORMAT`], or
    /// an older one read as it is ([`userops::SNAPSHOT_FORMAT_JSON`], or an upgraded one).
    Engine(Box<Engine>, u32),
    /// A snapshot in an older format than this build reads (its number).
    OldFormat(u32),
}

/// Rebuild the engine of snapshot `h`, decoding the chunks as they stream (the state is never
/// held as bytes and as an engine at once), and verify the checksum over every byte: a
/// mismatch is reported as such, even when the damaged bytes also fail to decode.
pub(crate) fn restore(conn: &Connection, h: &Header) -> Result<Restored, StoreError> {
    restore_as(conn, h, false)
}

/// [`restore`], except that a snapshot of an older format this build can still read
/// ([`userops::SNAPSHOT_FORMAT_UPGRADABLE`]) is read with [`Engine::upgrade_snapshot`]: for a
/// journal an erasure redacted, which cannot replace it.
pub(crate) fn restore_upgrading(conn: &Connection, h: &Header) -> Result<Restored, StoreError> {
    restore_as(conn, h, true)
}

fn restore_as(conn: &Connection, h: &Header, upgrade: bool) -> Result<Restored, StoreError> {
    let rows = chunk_rows(conn, h)?;
    let unreadable = |e: std::io::Error| corrupt(h.seq, format!("snapshot unreadable: {e}"));
    let mut stream = Hashed {
        inner: Chunks::new(conn, rows),
        sum: SnapshotSum::new(h.seq),
    };
    // The format number is at the start; an older one is not parsed at all. Format 5 (JSON)
    // holds the same state as the current format and is read as it is.
    let mut head = Vec::with_capacity(32);
    (&mut stream)
        .take(32)
        .read_to_end(&mut head)
        .map_err(unreadable)?;
    let format = Engine::snapshot_format(&head);
    let old = format.filter(|f| *f < userops::SNAPSHOT_FORMAT_JSON);
    let parsed = match old {
        Some(f) if upgrade && f >= userops::SNAPSHOT_FORMAT_UPGRADABLE => {
            Engine::upgrade_snapshot((&head[..]).chain(&mut stream))
                .map(|e| Restored::Engine(Box::new(e), f))
        }
        Some(f) => Ok(Restored::OldFormat(f)),
        None => Engine::read_snapshot((&head[..]).chain(&mut stream))
            .map(|e| Restored::Engine(Box::new(e), format.unwrap_or(userops::SNAPSHOT_FORMAT))),
    };
    std::io::copy(&mut stream, &mut std::io::sink()).map_err(unreadable)?;
    if (stream.sum.len, stream.sum.checksum()) != (h.len, h.checksum) {
        return Err(corrupt(h.seq, "snapshot checksum mismatch"));
    }
    parsed.map_err(|e| corrupt(h.seq, format!("snapshot: {e}")))
}

/// A reader that checksums what passes through it (as `snapshot_checksum`).
struct Hashed<R> {
    inner: R,
    sum: SnapshotSum,
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        std::io::Write::write_all(&mut self.sum, &buf[..n])?;
        Ok(n)
    }
}

/// Whether snapshot `h` holds exactly `engine`'s state ([`Engine::snapshot_matches`]), compared
/// as it streams (neither side is held whole in memory).
pub(crate) fn matches(conn: &Connection, h: &Header, engine: &Engine) -> Result<bool, StoreError> {
    let rows = chunk_rows(conn, h)?;
    engine
        .snapshot_matches(Chunks::new(conn, rows))
        .map_err(|e| corrupt(h.seq, format!("snapshot unreadable: {e}")))
}

/// The chunk blobs of one snapshot, one after the other, as one stream.
struct Chunks<'c> {
    conn: &'c Connection,
    rows: std::vec::IntoIter<i64>,
    blob: Option<Blob<'c>>,
}

impl<'c> Chunks<'c> {
    fn new(conn: &'c Connection, rows: Vec<i64>) -> Chunks<'c> {
        Chunks {
            conn,
            rows: rows.into_iter(),
            blob: None,
        }
    }

    /// Move to the next chunk; false after the last.
    fn advance(&mut self) -> std::io::Result<bool> {
        let Some(row) = self.rows.next() else {
            return Ok(false);
        };
        match &mut self.blob {
            Some(b) => b.reopen(row).map_err(std::io::Error::other)?,
            None => {
                self.blob = Some(
                    self.conn
                        .blob_open(rusqlite::MAIN_DB, "snapshot_chunk", "bytes", row, true)
                        .map_err(std::io::Error::other)?,
                )
            }
        }
        Ok(true)
    }
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(b) = &mut self.blob {
                let n = b.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            if !self.advance()? {
                return Ok(0);
            }
        }
    }
}
