//! Snapshots: the whole engine state as bytes, for the store.
//!
//! Format 6 is [`MAGIC`], the format number (4 bytes, little-endian), then one zstd frame
//! holding the config and the state encoded as MessagePack. The frame carries zstd's content
//! checksum, so a damaged snapshot is refused on read rather than restored wrong. Formats 3 to 5
//! were one JSON document, `{"format":N,"config":...,"state":...}`; a snapshot is told apart by
//! its first bytes (JSON starts with `{`). Format 5 holds the same state as format 6, only as
//! JSON: it is read as it is, and [`Engine::write_snapshot_json`] still writes it (for people
//! and tools, and to compare with one byte for byte).
//!
//! Why MessagePack: the state's serde shape uses untagged and internally tagged enums,
//! `flatten`, `skip_serializing_if`, custom `with` modules and `serde_json::Value`, which only
//! a self-describing format reads back, and structs must be maps (field names) for `flatten`,
//! `default` and skipped fields to work. `rmp-serde` is such a format, and it is written and
//! read through the same serde code paths as JSON ("human readable" is kept on, so every type
//! takes the same form as in JSON: dates, decimals and identifiers as strings). The field
//! names it repeats cost little after zstd. The measured sizes and times against JSON and JSON
//! compressed with zstd are in `benches/README.md` ("Binary snapshots").

use std::io::{BufReader, BufWriter, Read, Write};

use serde::{Deserialize, Serialize};

use super::{Engine, State};
use crate::config::Config;
use crate::error::Error;
use crate::ids::OneId;

/// 2: receipts compact (`crate::receipts`); 3: journey steps compact (analytics); 4: a
/// person's journey steps at the same instant in a fixed order (analytics); 5: the order book
/// (`crate::orders`) and canonical receipt fingerprints; 6: the same state as 5, encoded as
/// MessagePack compressed by zstd (with its checksum) instead of JSON text, behind a magic
/// and this number. Format 5 is read as it is; an older snapshot is refused by
/// [`Engine::restore`], and the store then replays its journal instead (or, when an erasure
/// redacted part of the journal, reads a format-3 or 4 snapshot with
/// [`Engine::upgrade_snapshot`]).
pub const SNAPSHOT_FORMAT: u32 = 6;

/// The format of a snapshot as JSON text ([`Engine::write_snapshot_json`]): the last JSON
/// format, whose state is the same as [`SNAPSHOT_FORMAT`]'s, so it is read as it is. A change
/// to the state's serialized form must raise [`SNAPSHOT_FORMAT`] and stop reading this one
/// as it is.
pub const SNAPSHOT_FORMAT_JSON: u32 = 5;

/// The oldest snapshot format [`Engine::upgrade_snapshot`] reads.
pub const SNAPSHOT_FORMAT_UPGRADABLE: u32 = 3;

/// The first bytes of a binary snapshot: not `{` (JSON) and not ASCII, so text tools and a
/// transfer that mangles bytes are noticed, then "UOS" (userops snapshot).
const MAGIC: [u8; 4] = *b"\x89UOS";

/// Magic and format number.
const HEADER_LEN: usize = MAGIC.len() + 4;

/// zstd's level: 1 writes the demo state at several hundred MB/s with a ratio close to level
/// 3's (figures in `benches/README.md`); a snapshot is written often and read once.
const ZSTD_LEVEL: i32 = 1;

/// Buffers between the serializer's many small writes (or reads) and zstd, which works per
/// call.
const BUF: usize = 1 << 16;

/// A JSON snapshot, as read back.
#[derive(Deserialize)]
struct Snapshot {
    format: u32,
    config: Config,
    state: State,
}

/// What [`Engine::write_snapshot_json`] writes: the same fields, borrowed (a snapshot must not
/// need a second copy of the state in memory).
#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: u32,
    config: &'a Config,
    state: &'a State,
}

/// The body of a binary snapshot (its format number is in the header).
#[derive(Deserialize)]
struct Body {
    config: Config,
    state: State,
}

/// [`Body`], borrowed.
#[derive(Serialize)]
struct BodyRef<'a> {
    config: &'a Config,
    state: &'a State,
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::invalid_argument("snapshot", e.to_string())
}

impl Engine {
    /// The whole state as bytes ([`SNAPSHOT_FORMAT`]), for the store's snapshots. The same
    /// state always gives the same bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_snapshot(&mut bytes)
            .expect("writing to a Vec cannot fail and the state serializes");
        bytes
    }

    /// Write the same bytes as [`Engine::snapshot`] to `w`, without holding them in memory (the
    /// store streams a large state into its database this way).
    ///
    /// # Errors
    ///
    /// The writer's I/O errors; the state cannot fail to serialize.
    pub fn write_snapshot(&self, mut w: impl Write) -> std::io::Result<()> {
        w.write_all(&MAGIC)?;
        w.write_all(&SNAPSHOT_FORMAT.to_le_bytes())?;
        let mut z = zstd::stream::write::Encoder::new(w, ZSTD_LEVEL)?;
        z.include_checksum(true)?;
        let mut buffered = BufWriter::with_capacity(BUF, z);
        self.write_body(&mut buffered)?;
        buffered
            .into_inner()
            .map_err(|e| e.into_error())?
            .finish()?
            .flush()
    }

    /// The state encoded as MessagePack, before compression.
    fn write_body(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut ser = rmp_serde::Serializer::new(w)
            .with_struct_map()
            .with_human_readable();
        BodyRef {
            config: &self.config,
            state: &self.state,
        }
        .serialize(&mut ser)
        .map_err(std::io::Error::other)
    }

    /// Write the state as a JSON snapshot of format [`SNAPSHOT_FORMAT_JSON`] to `w`, which
    /// [`Engine::restore`] and [`Engine::read_snapshot`] read back: the readable form, for
    /// people and tools (several times the size of [`Engine::write_snapshot`]'s).
    ///
    /// # Errors
    ///
    /// The writer's I/O errors; the state cannot fail to serialize.
    pub fn write_snapshot_json(&self, w: impl Write) -> std::io::Result<()> {
        serde_json::to_writer(
            w,
            &SnapshotRef {
                format: SNAPSHOT_FORMAT_JSON,
                config: &self.config,
                state: &self.state,
            },
        )
        .map_err(std::io::Error::other)
    }

    /// The format number of snapshot bytes (at their start, binary or JSON), without reading
    /// the rest; `None` if they do not look like a snapshot.
    ///
    /// ```
    /// let engine = userops::Engine::default();
    /// assert_eq!(userops::Engine::snapshot_format(&engine.snapshot()), Some(userops::SNAPSHOT_FORMAT));
    /// let mut json = Vec::new();
    /// engine.write_snapshot_json(&mut json).unwrap();
    /// assert_eq!(userops::Engine::snapshot_format(&json), Some(userops::SNAPSHOT_FORMAT_JSON));
    /// assert_eq!(userops::Engine::snapshot_format(b"hello"), None);
    /// ```
    pub fn snapshot_format(bytes: &[u8]) -> Option<u32> {
        if let Some(rest) = bytes.strip_prefix(&MAGIC) {
            return Some(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?));
        }
        let rest = bytes.strip_prefix(br#"{"format":"#)?;
        let end = rest.iter().position(|b| !b.is_ascii_digit())?;
        std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
    }

    /// Rebuild an engine from [`Engine::snapshot`] bytes (or a JSON snapshot of format
    /// [`SNAPSHOT_FORMAT_JSON`]).
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `snapshot` for bytes that are not a snapshot (damaged, cut short
    /// or followed by anything), or of a format this build does not read as it is
    /// ([`Engine::upgrade_snapshot`] reads older ones).
    pub fn restore(bytes: &[u8]) -> Result<Engine, Error> {
        Engine::read_snapshot(bytes)
    }

    /// Rebuild an engine from [`Engine::snapshot`] bytes (or a JSON snapshot of format
    /// [`SNAPSHOT_FORMAT_JSON`]) read from `r` to its end, decoded as they come: a large state
    /// is never held as bytes and as an engine at once (the store recovers a snapshot of
    /// gigabytes this way). The checksum of a binary snapshot is verified before the engine is
    /// returned; anything after the snapshot (but whitespace after JSON) is an error.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `snapshot` for bytes that are not a snapshot (damaged, cut short,
    /// or followed by anything), or are of a format this build does not read as it is.
    ///
    /// ```
    /// let engine = userops::Engine::default();
    /// let bytes = engine.snapshot();
    /// let back = userops::Engine::read_snapshot(&bytes[..]).unwrap();
    /// assert_eq!(back.snapshot(), bytes);
    /// let trailing = [&bytes[..], b" x"].concat();
    /// assert!(userops::Engine::read_snapshot(&trailing[..]).is_err());
    /// ```
    pub fn read_snapshot(r: impl Read) -> Result<Engine, Error> {
        match read_any(r)? {
            Read6::Binary(engine) => Ok(engine),
            Read6::Json(s) if s.format == SNAPSHOT_FORMAT_JSON => Ok(Engine::from_parts(s)),
            Read6::Json(s) => Err(unsupported(s.format)),
        }
    }

    /// Rebuild an engine from snapshot bytes of an older format this build still reads
    /// ([`SNAPSHOT_FORMAT_UPGRADABLE`] and later), read from `r` to its end: the store's way
    /// out when an erasure redacted part of the journal, which then cannot replace the
    /// snapshot. What the newer format adds is missing from such a snapshot, and the engine
    /// says so rather than guess: the order book does not know the orders before it (refunds
    /// of orders it does not know are then accepted unchecked, as they were; see
    /// [`crate::orders`]), and receipts keep the fingerprint of each event as it was given
    /// (a resend of exactly that event is still recognized). The journey steps of a format-3
    /// snapshot are put in the fixed order format 4 keeps them in, and every tombstone is
    /// erased again by today's erase flow (older builds left some of its data behind). A
    /// snapshot that [`Engine::read_snapshot`] reads is read as with it.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `snapshot` for bytes that are not a snapshot (damaged, cut short,
    /// or followed by anything), or are of a format older than [`SNAPSHOT_FORMAT_UPGRADABLE`]
    /// or newer than this build's.
    pub fn upgrade_snapshot(r: impl Read) -> Result<Engine, Error> {
        let mut s = match read_any(r)? {
            Read6::Binary(engine) => return Ok(engine),
            Read6::Json(s) => s,
        };
        if s.format == SNAPSHOT_FORMAT_JSON {
            return Ok(Engine::from_parts(s));
        }
        if !(SNAPSHOT_FORMAT_UPGRADABLE..SNAPSHOT_FORMAT_JSON).contains(&s.format) {
            return Err(unsupported(s.format));
        }
        if s.format < 4 {
            // Format 4 keeps a person's steps at one instant in a fixed order: sorting
            // gives what it would hold (steps in that order are equal only when identical).
            s.state.analytics.sort_timelines();
        }
        s.state.orders.mark_partial();
        let mut engine = Engine::from_parts(s);
        // Erasures by a build before the one erase flow left data of the tombstone in
        // several modules: erasing each tombstone again with today's flow removes it.
        let tombstones: Vec<OneId> = engine.state.privacy.erased_set().iter().copied().collect();
        for t in tombstones {
            engine.erase_person(t);
        }
        Ok(engine)
    }

    /// Whether the snapshot read from `r` holds exactly this engine's state, compared as both
    /// stream (neither is held whole in memory): the store's `check` compares a replayed
    /// engine with its stored snapshots this way. A binary snapshot is compared after
    /// decompression, so one that another zstd version compressed differently still matches;
    /// a JSON one ([`SNAPSHOT_FORMAT_JSON`]) byte for byte with
    /// [`Engine::write_snapshot_json`]. A snapshot of another format does not match.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `snapshot` for binary bytes that do not decompress (damaged or cut
    /// short); the reader's I/O errors likewise.
    pub fn snapshot_matches(&self, r: impl Read) -> Result<bool, Error> {
        let mut r = BufReader::with_capacity(BUF, r);
        // Long enough for the format number of JSON too.
        let mut head = Vec::with_capacity(32);
        (&mut r).take(32).read_to_end(&mut head).map_err(bad)?;
        match Engine::snapshot_format(&head) {
            Some(SNAPSHOT_FORMAT) if head.starts_with(&MAGIC) => {
                let body = BufReader::with_capacity(BUF, (&head[HEADER_LEN..]).chain(r));
                let mut z = zstd::stream::read::Decoder::with_buffer(body)
                    .map_err(bad)?
                    .single_frame();
                let mut cmp = SameAs::new(&mut z);
                self.write_body(&mut cmp).map_err(bad)?;
                let same = cmp.same && at_end(&mut z)?;
                Ok(same && at_end(z.finish())?)
            }
            Some(SNAPSHOT_FORMAT_JSON) if head.starts_with(b"{") => {
                let mut stored = (&head[..]).chain(r);
                let mut cmp = SameAs::new(&mut stored);
                self.write_snapshot_json(&mut cmp).map_err(bad)?;
                Ok(cmp.same && at_end(&mut stored)?)
            }
            _ => Ok(false),
        }
    }

    fn from_parts(s: Snapshot) -> Engine {
        Engine {
            config: s.config,
            state: s.state,
            replaying: false,
        }
    }
}

fn unsupported(format: u32) -> Error {
    bad(format!(
        "format {format} is not supported (expected {SNAPSHOT_FORMAT})"
    ))
}

/// What [`read_any`] found.
enum Read6 {
    /// A binary snapshot of this build's format.
    Binary(Engine),
    /// A JSON snapshot, of any format (the caller decides).
    Json(Snapshot),
}

/// Read a binary snapshot of this build's format, or a JSON one of any format, to the end of
/// `r`.
fn read_any(r: impl Read) -> Result<Read6, Error> {
    let mut r = BufReader::with_capacity(BUF, r);
    let mut head = Vec::with_capacity(HEADER_LEN);
    (&mut r)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(bad)?;
    if !head.starts_with(&MAGIC) {
        let mut de = serde_json::Deserializer::from_reader((&head[..]).chain(r));
        let s: Snapshot = Deserialize::deserialize(&mut de).map_err(bad)?;
        de.end().map_err(bad)?;
        return Ok(Read6::Json(s));
    }
    match Engine::snapshot_format(&head) {
        Some(SNAPSHOT_FORMAT) => {}
        Some(f) => return Err(unsupported(f)),
        None => return Err(bad("cut short in its header")),
    }
    let mut z = zstd::stream::read::Decoder::with_buffer(r)
        .map_err(bad)?
        .single_frame();
    let mut body = BufReader::with_capacity(BUF, &mut z);
    let mut de = rmp_serde::Deserializer::new(&mut body).with_human_readable();
    let b: Body = Deserialize::deserialize(&mut de).map_err(bad)?;
    // Reading the frame to its end verifies its checksum: a damaged snapshot whose damage
    // still decoded is refused here, before anything is returned.
    if !at_end(&mut body)? {
        return Err(bad("bytes after the state"));
    }
    drop(body);
    if !at_end(z.finish())? {
        return Err(bad("bytes after the compressed state"));
    }
    Ok(Read6::Binary(Engine {
        config: b.config,
        state: b.state,
        replaying: false,
    }))
}

/// Whether `r` has nothing left (reading it to its end, which makes zstd check its frame).
fn at_end(mut r: impl Read) -> Result<bool, Error> {
    let mut rest = [0u8; 1];
    Ok(r.read(&mut rest).map_err(bad)? == 0)
}

/// A writer that compares what it is given with what it reads from a stream.
struct SameAs<R> {
    stored: R,
    buf: Vec<u8>,
    same: bool,
}

impl<R: Read> SameAs<R> {
    fn new(stored: R) -> SameAs<R> {
        SameAs {
            stored,
            buf: Vec::new(),
            same: true,
        }
    }
}

impl<R: Read> Write for SameAs<R> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.same {
            self.buf.resize(data.len(), 0);
            match self.stored.read_exact(&mut self.buf) {
                Ok(()) => self.same = self.buf[..] == *data,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => self.same = false,
                Err(e) => return Err(e),
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::{Command, ErrorCode};

    fn run(e: &mut Engine, method: &str, args: Value) {
        let command = Command::from_call(method, &args.to_string())
            .unwrap_or_else(|err| panic!("{method}: {err}"));
        e.execute(command)
            .unwrap_or_else(|err| panic!("{method}: {err}"));
    }

    fn member(i: u32) -> Value {
        json!({"kind": "member_no", "value": format!("M{i}")})
    }

    /// Members, orders with lines, a refund, points, a promotion, a tag, an audience, consent
    /// and a merge: state in most modules, with untagged and flattened serde shapes.
    fn seeded() -> Engine {
        let mut e = Engine::default();
        let src = json!({"platform": "app", "program": "brand-a"});
        run(
            &mut e,
            "create_program",
            json!({"program": {"id": "brand-a"}}),
        );
        run(
            &mut e,
            "add_promotion",
            json!({"promotion": {"id": "p100", "action":
                {"type": "threshold_discount", "threshold": "100", "off": "10"}}}),
        );
        run(
            &mut e,
            "define_tag",
            json!({"name": "vip", "type": "bool", "now": "2026-01-01T00:00:00Z"}),
        );
        for i in 1..=6 {
            run(
                &mut e,
                "ingest",
                json!({"event": {"kind": "register", "key": format!("r{i}"),
                    "time": "2026-01-01T00:00:00Z", "source": src, "user": member(i)}}),
            );
            run(
                &mut e,
                "ingest",
                json!({"event": {"kind": "order", "key": format!("o{i}"),
                    "time": "2026-01-10T10:00:00Z", "source": src, "user": member(i),
                    "order_id": format!("O{i}"), "amount": "120.00",
                    "lines": [{"sku": "s1", "category": "tea", "price": "60.00", "qty": 2}]}}),
            );
            run(
                &mut e,
                "earn",
                json!({"user": member(i), "program": "brand-a", "points": 100 * i,
                       "key": format!("e{i}"), "time": "2026-01-02T00:00:00Z"}),
            );
        }
        run(
            &mut e,
            "ingest",
            json!({"event": {"kind": "refund", "key": "f1", "time": "2026-01-11T10:00:00Z",
                "source": src, "user": member(1), "order_id": "O1", "amount": "60.00"}}),
        );
        run(
            &mut e,
            "set_tag",
            json!({"user": member(1), "tag": "vip", "value": true, "now": "2026-01-05T00:00:00Z"}),
        );
        run(
            &mut e,
            "save_audience",
            json!({"name": "vips", "expression": "vip", "now": "2026-01-05T00:00:00Z"}),
        );
        run(
            &mut e,
            "set_consent",
            json!({"user": member(2), "channel": "sms", "purpose": "marketing",
                   "granted": true, "actor": "ops", "time": "2026-01-05T00:00:00Z"}),
        );
        run(
            &mut e,
            "ingest",
            json!({"event": {"kind": "identify", "key": "id1", "time": "2026-01-06T00:00:00Z",
                "source": {"platform": "jd", "program": "brand-a"},
                "ids": [member(3), member(4), {"kind": "phone", "value": "13800138000"}]}}),
        );
        e
    }

    fn json_of(e: &Engine) -> Vec<u8> {
        let mut out = Vec::new();
        e.write_snapshot_json(&mut out).unwrap();
        out
    }

    #[test]
    fn a_binary_snapshot_gives_back_the_same_state() {
        let e = seeded();
        let bytes = e.snapshot();
        assert_eq!(Engine::snapshot_format(&bytes), Some(SNAPSHOT_FORMAT));
        let back = Engine::read_snapshot(&bytes[..]).unwrap();
        assert!(
            back.state == e.state,
            "the state differs after a round trip"
        );
        assert_eq!(json_of(&back), json_of(&e));
        assert_eq!(back.snapshot(), bytes);
        assert!(e.snapshot_matches(&bytes[..]).unwrap());
        assert!(!Engine::default().snapshot_matches(&bytes[..]).unwrap());
        // The point of the format: much smaller than the JSON text.
        assert!(bytes.len() * 3 < json_of(&e).len(), "{} bytes", bytes.len());
    }

    #[test]
    fn the_same_state_gives_the_same_bytes() {
        let a = seeded().snapshot();
        let b = seeded().snapshot();
        assert_eq!(a, b);
        let mut streamed = Vec::new();
        seeded().write_snapshot(&mut streamed).unwrap();
        assert_eq!(streamed, a);
        let restored = Engine::restore(&a).unwrap();
        assert_eq!(restored.snapshot(), a);
    }

    #[test]
    fn a_json_snapshot_of_format_5_reads_as_it_is() {
        let e = seeded();
        let json = json_of(&e);
        assert!(json.starts_with(br#"{"format":5,"#));
        assert_eq!(Engine::snapshot_format(&json), Some(SNAPSHOT_FORMAT_JSON));
        for back in [
            Engine::restore(&json).unwrap(),
            Engine::read_snapshot(&json[..]).unwrap(),
            Engine::upgrade_snapshot(&json[..]).unwrap(),
        ] {
            assert!(back.state == e.state);
            assert_eq!(back.snapshot(), e.snapshot());
        }
        assert!(e.snapshot_matches(&json[..]).unwrap());
        let mut other = json.clone();
        let at = other.len() - 2;
        other.insert(at, b' ');
        assert!(!e.snapshot_matches(&other[..]).unwrap());
        // An older JSON format is refused by restore (the store replays its journal).
        let old = String::from_utf8(json)
            .unwrap()
            .replacen(r#"{"format":5"#, r#"{"format":4"#, 1);
        let err = Engine::restore(old.as_bytes()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
    }

    #[test]
    fn damaged_or_cut_short_bytes_are_a_typed_error() {
        let bytes = seeded().snapshot();
        let refused = |b: &[u8]| {
            for read in [
                Engine::restore(b),
                Engine::read_snapshot(b),
                Engine::upgrade_snapshot(b),
            ] {
                let Err(err) = read else {
                    panic!("{} damaged bytes were read as a state", b.len())
                };
                assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
                assert_eq!(err.field(), Some("snapshot"));
            }
        };
        // Every byte of the compressed body flipped in turn (a sample of positions), every
        // length cut short, and bytes after the end.
        for at in (HEADER_LEN..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x55;
            refused(&bad);
        }
        for len in (0..bytes.len()).step_by(5) {
            refused(&bytes[..len]);
        }
        refused(&[&bytes[..], b"x"].concat());
        // Another binary format number.
        let mut newer = bytes.clone();
        newer[MAGIC.len()..HEADER_LEN].copy_from_slice(&(SNAPSHOT_FORMAT + 1).to_le_bytes());
        refused(&newer);
        assert_eq!(Engine::snapshot_format(&newer), Some(SNAPSHOT_FORMAT + 1));
        // A damaged snapshot never matches, and says so without a panic.
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!matches!(seeded().snapshot_matches(&bad[..]), Ok(true)));
    }
}
