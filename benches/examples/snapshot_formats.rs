//! Snapshot size and speed: the binary format (`Engine::write_snapshot`) against the JSON text
//! of format 5 (`Engine::write_snapshot_json`), plain and compressed with zstd, on the state
//! of a store (figures in benches/README.md, "Binary snapshots").
//!
//! `cargo run --release -p userops-benches --example snapshot_formats -- STORE.db`
//!
//! The store is copied to a temporary directory first: opening it may rewrite its snapshot.

use std::io::Write;
use std::time::Instant;

use userops::Engine;

/// Counts what is written to it.
#[derive(Default)]
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let src = std::env::args()
        .nth(1)
        .ok_or("usage: snapshot_formats STORE.db")?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("store.db");
    std::fs::copy(&src, &db)?;
    let t = Instant::now();
    let store = userops_store::Store::open(&db)?;
    println!(
        "open: {:.2} s ({:?})",
        t.elapsed().as_secs_f64(),
        store.warnings()
    );
    drop(store);
    // Again, now that its newest snapshot is in the current format.
    let t = Instant::now();
    let store = userops_store::Store::open(&db)?;
    println!(
        "open again: {:.2} s ({:?})",
        t.elapsed().as_secs_f64(),
        store.warnings()
    );
    let engine = store.engine().clone();
    drop(store);
    let events = engine.stats().events;
    println!("events: {events}");
    let report = |what: &str, bytes: u64, write_s: f64| {
        println!(
            "{what:<28} {:>10.1} MB {:>7.1} B/event  write {:>6.2} s",
            mb(bytes),
            bytes as f64 / events as f64,
            write_s
        );
    };

    let t = Instant::now();
    let mut json = Count::default();
    engine.write_snapshot_json(&mut json)?;
    report("JSON (format 5)", json.0, t.elapsed().as_secs_f64());

    for level in [1, 3] {
        let t = Instant::now();
        let mut z = zstd::stream::write::Encoder::new(Count::default(), level)?;
        z.include_checksum(true)?;
        let mut buffered = std::io::BufWriter::with_capacity(1 << 16, z);
        engine.write_snapshot_json(&mut buffered)?;
        let out = buffered
            .into_inner()
            .map_err(|e| e.into_error())?
            .finish()?;
        report(
            &format!("JSON + zstd {level}"),
            out.0,
            t.elapsed().as_secs_f64(),
        );
    }

    let t = Instant::now();
    let mut bin = Count::default();
    engine.write_snapshot(&mut bin)?;
    report("binary (format 6)", bin.0, t.elapsed().as_secs_f64());

    if std::env::args().any(|a| a == "--levels") {
        levels(&engine)?;
    }
    if std::env::args().any(|a| a == "--sections") {
        sections(&engine)?;
    }

    // Reading: each from bytes in memory, as the store's chunks stream them.
    let mut text = Vec::new();
    engine.write_snapshot_json(&mut text)?;
    let bytes = engine.snapshot();
    drop(engine);
    let t = Instant::now();
    let a = Engine::read_snapshot(&text[..])?;
    println!("read JSON: {:.2} s", t.elapsed().as_secs_f64());
    let zjson = zstd::stream::encode_all(&text[..], 1)?;
    drop(text);
    let t = Instant::now();
    let c = Engine::read_snapshot(zstd::stream::read::Decoder::new(&zjson[..])?)?;
    println!("read JSON + zstd 1: {:.2} s", t.elapsed().as_secs_f64());
    drop((c, zjson));
    let t = Instant::now();
    let b = Engine::read_snapshot(&bytes[..])?;
    println!("read binary: {:.2} s", t.elapsed().as_secs_f64());
    assert!(a.snapshot_matches(&bytes[..])?, "the two reads differ");
    drop((a, b));
    Ok(())
}

/// The binary format's MessagePack recompressed at other zstd settings (size, time).
fn levels(engine: &Engine) -> Result<(), Box<dyn std::error::Error>> {
    let raw = zstd::stream::decode_all(&engine.snapshot()[8..])?;
    println!(
        "MessagePack before compression: {:.1} MB",
        mb(raw.len() as u64)
    );
    for (level, long) in [
        (1, false),
        (1, true),
        (3, false),
        (3, true),
        (6, true),
        (9, true),
        (12, true),
    ] {
        let t = Instant::now();
        let mut z = zstd::stream::write::Encoder::new(Count::default(), level)?;
        z.include_checksum(true)?;
        z.long_distance_matching(long)?;
        if long {
            z.window_log(27)?;
        }
        z.write_all(&raw)?;
        let out = z.finish()?;
        println!(
            "  zstd {level:>2} long={long:<5} {:>8.1} MB  {:.2} s",
            mb(out.0),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Each part of the state: JSON and MessagePack sizes, each compressed at level 1.
fn sections(engine: &Engine) -> Result<(), Box<dyn std::error::Error>> {
    let mut text = Vec::new();
    engine.write_snapshot_json(&mut text)?;
    let v: serde_json::Value = serde_json::from_slice(&text)?;
    drop(text);
    let Some(state) = v["state"].as_object() else {
        return Err("no state".into());
    };
    for (name, part) in state {
        let json = serde_json::to_vec(part)?;
        let zj = zstd::stream::encode_all(&json[..], 1)?;
        println!(
            "  {name:<16} JSON {:>8.1} MB  zstd {:>7.1} MB",
            mb(json.len() as u64),
            mb(zj.len() as u64)
        );
        if let Some(obj) = part.as_object() {
            for (k, sub) in obj {
                let j = serde_json::to_vec(sub)?;
                if j.len() > 1_000_000 {
                    let z = zstd::stream::encode_all(&j[..], 1)?;
                    println!(
                        "      {k:<20} JSON {:>8.1} MB  zstd {:>7.1} MB",
                        mb(j.len() as u64),
                        mb(z.len() as u64)
                    );
                }
            }
        }
    }
    Ok(())
}
