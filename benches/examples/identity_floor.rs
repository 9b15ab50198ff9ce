//! A baseline for OneID's end-to-end figure: the plainest resolver one would write for the
//! benchmark's CSV — read it, split the fields, give each record id and each (kind, value) a
//! number through a hash map filled row by row, and join each record's identifiers in a plain
//! union-find. No normalization, no rules, no evidence, no OneIDs, no per-row answer.
//!
//! ```text
//! cargo run --release -p userops-benches --example identity_floor -- ROWS.csv
//! ```
//! Prints one JSON line: rows, distinct records, distinct identifiers, components, and the wall
//! time of each step. `benches/compare/identity_run.sh` runs it under `/usr/bin/time` next to
//! userops, igraph and networkx. At 10M rows its two maps are far larger than the cache and
//! cost ≈ 0.7 µs per row in misses: the reason userops' batch path numbers keys by partition
//! instead (`crates/userops/src/identity/dedupe.rs`), and does more in less time.
use std::time::Instant;

use rustc_hash::FxHashMap;

fn find(parent: &mut [u32], mut n: u32) -> u32 {
    while parent[n as usize] != n {
        let gp = parent[parent[n as usize] as usize];
        parent[n as usize] = gp;
        n = gp;
    }
    n
}

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: identity_floor ROWS.csv");
    let t0 = Instant::now();
    let text = std::fs::read(&path).expect("read the CSV");
    let read_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let lines = text.iter().filter(|&&b| b == b'\n').count();
    let mut records: FxHashMap<&[u8], u32> =
        FxHashMap::with_capacity_and_hasher(lines / 2, Default::default());
    let mut idents: FxHashMap<(&[u8], &[u8]), u32> =
        FxHashMap::with_capacity_and_hasher(lines, Default::default());
    // Per record, its first identifier (u32::MAX before one is seen).
    let mut anchor: Vec<u32> = Vec::with_capacity(lines / 2);
    let mut parent: Vec<u32> = Vec::with_capacity(lines);
    let mut rows = 0usize;
    let mut unions = 0usize;
    for line in text.split(|&b| b == b'\n').skip(1) {
        if line.is_empty() {
            continue;
        }
        let mut f = line.split(|&b| b == b',');
        let (Some(rid), Some(kind), Some(value)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        rows += 1;
        let next = records.len() as u32;
        let r = *records.entry(rid).or_insert(next);
        if r == next {
            anchor.push(u32::MAX);
        }
        let next = idents.len() as u32;
        let n = *idents.entry((kind, value)).or_insert(next);
        if n == next {
            parent.push(n);
        }
        let a = anchor[r as usize];
        if a == u32::MAX {
            anchor[r as usize] = n;
        } else {
            let (ra, rn) = (find(&mut parent, a), find(&mut parent, n));
            if ra != rn {
                parent[ra.max(rn) as usize] = ra.min(rn);
                unions += 1;
            }
        }
    }
    let resolve_s = t1.elapsed().as_secs_f64();
    println!(
        "{{\"tool\": \"hashmap-baseline\", \"rows\": {rows}, \"records\": {}, \"identifiers\": {}, \"components\": {}, \"read_s\": {read_s:.3}, \"resolve_s\": {resolve_s:.3}}}",
        records.len(),
        idents.len(),
        idents.len() - unions,
    );
}
