//! Reading the snapshots a store holds, for the store's tests (unit and integration): a
//! snapshot is compressed, so a scan of the files alone cannot see a plain value in it.
#![allow(dead_code, reason = "each test crate uses part of it")]

use std::path::Path;

/// The bytes of every snapshot in `snapshot_chunk`, chunks joined, by sequence number: the
/// stored ones and one a crash cut short (chunks without a header row).
pub fn chunks_by_seq(db: &Path) -> Vec<(i64, Vec<u8>)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut rows = c
        .prepare("SELECT seq, bytes FROM snapshot_chunk ORDER BY seq, idx")
        .unwrap();
    let mut by_seq: Vec<(i64, Vec<u8>)> = Vec::new();
    for row in rows
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .unwrap()
    {
        let (seq, bytes) = row.unwrap();
        match by_seq.last_mut() {
            Some((s, all)) if *s == seq => all.extend(bytes),
            _ => by_seq.push((seq, bytes)),
        }
    }
    by_seq
}

/// The stored snapshots (those with a header row): (seq, bytes), oldest first.
pub fn stored(db: &Path) -> Vec<(i64, Vec<u8>)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let seqs: Vec<i64> = c
        .prepare("SELECT seq FROM snapshot ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    chunks_by_seq(db)
        .into_iter()
        .filter(|(seq, _)| seqs.contains(seq))
        .collect()
}

/// Every snapshot's contents, each decompressed as far as it goes (one cut short by a crash
/// still holds what it got to); JSON snapshots of older formats as they are.
pub fn contents(db: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, bytes) in chunks_by_seq(db) {
        if bytes.starts_with(b"{") {
            out.extend(bytes);
        } else if let Some(body) = bytes.get(8..) {
            if let Ok(mut z) = zstd::stream::read::Decoder::new(body) {
                // What decompressed before an error stays in `out`.
                let _ = std::io::Read::read_to_end(&mut z, &mut out);
            }
        }
    }
    out
}
