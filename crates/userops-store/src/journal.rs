//! Journal records: checksums, the redaction marker, and reading the journal back.

use rusqlite::Connection;
use userops::util::Fnv1a;
use userops::{Command, CoreCommand};

use crate::StoreError;

/// The method name of a record whose command was redacted by an erasure. Such a record can
/// only sit before a snapshot that already includes it; replay never reads it.
pub const REDACTED: &str = "redacted";

/// The checksum of a journal record: FNV-1a over its sequence number and command text, so a
/// record moved to another position is caught as well as a changed one.
pub fn checksum(seq: i64, text: &str) -> i64 {
    // SQLite integers are signed; the bit pattern is what matters.
    Fnv1a::new()
        .bytes(&seq.to_le_bytes())
        .bytes(b":")
        .bytes(text.as_bytes())
        .finish() as i64
}

/// The checksum of a snapshot (same construction over the state bytes).
pub fn snapshot_checksum(seq: i64, state: &[u8]) -> i64 {
    Fnv1a::new()
        .bytes(&seq.to_le_bytes())
        .bytes(b"#")
        .bytes(state)
        .finish() as i64
}

/// A writer that only counts and checksums what goes through it (as [`snapshot_checksum`]).
pub(crate) struct SnapshotSum {
    hash: Fnv1a,
    /// Bytes seen.
    pub len: u64,
}

impl SnapshotSum {
    pub fn new(seq: i64) -> SnapshotSum {
        SnapshotSum {
            hash: Fnv1a::new().bytes(&seq.to_le_bytes()).bytes(b"#"),
            len: 0,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.hash.feed(bytes);
        self.len += bytes.len() as u64;
    }

    /// The checksum of what was written.
    pub fn checksum(&self) -> i64 {
        self.hash.finish() as i64
    }
}

impl std::io::Write for SnapshotSum {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes through to `inner` and checksums on the way.
pub(crate) struct Tee<'a, W> {
    pub inner: W,
    pub sum: &'a mut SnapshotSum,
}

impl<W: std::io::Write> std::io::Write for Tee<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sum.feed(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The idempotency key a command carries, if any (today: an ingested event's key).
pub fn idem_key(command: &Command) -> Option<String> {
    match command {
        Command::Core(CoreCommand::Ingest { event }) => Some(event.key.clone()),
        _ => None,
    }
}

/// The method of a serialized command without parsing it: every command set is adjacently
/// tagged with `method` first, so the text starts `{"method":"<name>"`. (`Command::method`
/// serializes the whole command again, which costs more than the journal write.)
pub(crate) fn method_of_text(text: &str) -> Option<String> {
    let rest = text.strip_prefix(r#"{"method":""#)?;
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

/// Whether `needle` occurs in `text` as a whole: not glued to a letter or digit on either side
/// (so `"M1"` is not found in `"M10"`, nor `"oneid":1` in `"oneid":12`).
pub(crate) fn mentions(text: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    text.match_indices(needle).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + needle.len()..].chars().next();
        let first = needle.chars().next();
        let last = needle.chars().next_back();
        // Only a needle edge that is itself a word character can be glued to a neighbour.
        !(glued(first) && glued(before) || glued(last) && glued(after))
    })
}

pub(crate) fn idem_key_of_text(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    if v.get("method")?.as_str()? != "ingest" {
        return None;
    }
    v.get("args")?
        .get("event")?
        .get("key")?
        .as_str()
        .map(str::to_owned)
}

/// One journal record as read back.
pub(crate) struct Raw {
    pub seq: i64,
    pub method: String,
    pub command: String,
    pub checksum: i64,
}

impl Raw {
    /// Decode and verify: the command, or why the record is bad.
    pub fn decode(&self) -> Result<Command, String> {
        if self.checksum != checksum(self.seq, &self.command) {
            return Err("checksum mismatch".into());
        }
        if self.method == REDACTED {
            return Err("redacted by an erasure, but no snapshot covers it".into());
        }
        Command::from_json(&self.command).map_err(|e| format!("unreadable command: {e}"))
    }
}

/// Visit the records after `after`, in order, with a check that sequence numbers follow each
/// other without gaps.
pub(crate) fn for_each_after<E: From<StoreError>>(
    conn: &Connection,
    after: i64,
    mut f: impl FnMut(Raw) -> Result<(), E>,
) -> Result<(), E> {
    let sql = |e: rusqlite::Error| E::from(StoreError::from(e));
    let mut stmt = conn
        .prepare("SELECT seq, method, command, checksum FROM journal WHERE seq > ?1 ORDER BY seq")
        .map_err(sql)?;
    let mut rows = stmt.query([after]).map_err(sql)?;
    let mut expected = after + 1;
    while let Some(r) = rows.next().map_err(sql)? {
        let raw = Raw {
            seq: r.get(0).map_err(sql)?,
            method: r.get(1).map_err(sql)?,
            command: r.get(2).map_err(sql)?,
            checksum: r.get(3).map_err(sql)?,
        };
        if raw.seq != expected {
            return Err(StoreError::Corrupt {
                seq: expected,
                reason: format!("record missing (next record is {})", raw.seq),
            }
            .into());
        }
        expected += 1;
        f(raw)?;
    }
    Ok(())
}

#[cfg(test)]
mod fnv_tests {
    #[test]
    fn streamed_snapshot_sum_is_the_snapshot_checksum() {
        use std::io::Write;
        let mut sum = super::SnapshotSum::new(42);
        sum.write_all(b"{\"format\":2,").unwrap();
        sum.write_all(b"\"state\":{}}").unwrap();
        assert_eq!(sum.len, 23);
        assert_eq!(
            sum.checksum(),
            super::snapshot_checksum(42, b"{\"format\":2,\"state\":{}}")
        );
    }

    #[test]
    fn parts_hash_as_the_joined_bytes() {
        let joined = [&7i64.to_le_bytes()[..], b":", b"{\"method\":\"ingest\"}"].concat();
        assert_eq!(
            super::checksum(7, "{\"method\":\"ingest\"}"),
            userops::util::fingerprint(&joined) as i64
        );
    }

    /// Every stored journal record carries this checksum: its value must not change.
    #[test]
    fn checksum_is_stable() {
        assert_eq!(
            super::checksum(7, "{\"method\":\"ingest\"}"),
            -6_818_100_242_988_842_857
        );
    }
}
