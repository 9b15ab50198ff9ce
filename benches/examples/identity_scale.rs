//! OneID at scale: identifier rows from a CSV (`record_id,kind,value,source,ts`, as written by
//! `benches/compare/identity_data.py`) to one OneID per row, then incremental link latency.
//!
//! ```text
//! cargo run --release -p userops-benches --example identity_scale -- ROWS.csv [none|default] [LATENCY_LINKS] [OUT]
//! ```
//! `none` turns every rule off (caps, junk, blocklist) so that persons are plain connected
//! components, as networkx / igraph compute them; `default` uses the default rules. `OUT`, when
//! given, receives one OneID per row (for checking against igraph). Prints one JSON line.
use std::io::Write;
use std::time::Instant;

use userops::identity::{BatchColumns, IdentityGraph, IdentityRules, Record, TextColumn};
use userops::{IdKind, Identifier};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let path = args
        .get(1)
        .expect("usage: identity_scale ROWS.csv [none|default] [LATENCY_LINKS] [OUT]");
    let rules = match args.get(2).map(String::as_str) {
        Some("none") => IdentityRules {
            caps: Default::default(),
            junk_threshold: None,
            block_patterns: Vec::new(),
            ..IdentityRules::default()
        },
        _ => IdentityRules::default(),
    };
    let links: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);

    let t0 = Instant::now();
    let file = std::fs::File::open(path).expect("open the CSV");
    // SAFETY: the file is only read, and nothing else writes it while the benchmark runs.
    let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.expect("map the CSV");
    let rows = Rows::parse(&map);
    let (rid, kind, value, source) = (rows.field(0), rows.field(1), rows.field(2), rows.field(3));
    let read_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let mut g = IdentityGraph::with_rules(rules);
    let out = g
        .resolve_batch(&BatchColumns {
            record_id: &rid,
            kind: &kind,
            value: &value,
            source: &source,
            ts: &rows.ts,
        })
        .expect("columns have equal length");
    let resolve_s = t1.elapsed().as_secs_f64();

    if let Some(path) = args.get(4) {
        let mut w = std::io::BufWriter::new(std::fs::File::create(path).expect("create OUT"));
        for o in &out.oneids {
            writeln!(w, "{}", o.map_or(0, |o| o.0)).expect("write OUT");
        }
    }

    // Incremental: half new persons (two new identifiers), half a new email joining a known
    // phone from the data.
    let mut lat = Vec::with_capacity(links);
    let known: Vec<&str> = (0..rows.len())
        .filter(|&i| kind.text(i) == "phone")
        .map(|i| value.text(i))
        .take(links)
        .collect();
    for i in 0..links {
        let ids = if i.is_multiple_of(2) || known.is_empty() {
            vec![
                Identifier::new(IdKind::Phone, &format!("15{:09}", i)).expect("valid phone"),
                Identifier::new(IdKind::DeviceId, &format!("new-dev-{i}")).expect("valid device"),
            ]
        } else {
            vec![
                Identifier::new(IdKind::Email, &format!("late{i}@ex.com")).expect("valid email"),
                Identifier::new(IdKind::Phone, known[i % known.len()]).expect("valid phone"),
            ]
        };
        let rec = Record {
            id: format!("inc{i}"),
            source: "app".into(),
            ts: 0,
            ids,
        };
        let t = Instant::now();
        let o = g.link(&rec);
        lat.push(t.elapsed().as_nanos() as u64);
        std::hint::black_box(o);
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{{\"rows\": {}, \"read_split_s\": {:.3}, \"resolve_s\": {:.3}, \"persons\": {}, \"identifiers\": {}, \"rejected\": {}, \"conflicts\": {}, \"links\": {}, \"link_p50_ns\": {}, \"link_p99_ns\": {}, \"link_p999_ns\": {}}}",
        rows.len(),
        read_s,
        resolve_s,
        g.person_count(),
        g.identifier_count(),
        out.rejected.len(),
        out.conflicts,
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(0.999),
    );
}

/// The CSV's data rows, without a `&str` per cell: each row is the offset of its line and the
/// ends of its first four fields within the line (8 bytes a row for four text columns, where
/// four `Vec<&str>` take 64), and its parsed `ts`. Parsed on two threads, one half of the
/// file each.
struct Rows<'a> {
    text: &'a str,
    line: Vec<u32>,
    ends: Vec<[u8; 4]>,
    ts: Vec<i64>,
}

/// One text column of [`Rows`].
struct Field<'r, 'a> {
    rows: &'r Rows<'a>,
    field: usize,
}

impl TextColumn for Field<'_, '_> {
    fn len(&self) -> usize {
        self.rows.line.len()
    }
    fn text(&self, row: usize) -> &str {
        let line = self.rows.line[row] as usize;
        let ends = self.rows.ends[row];
        let from = if self.field == 0 {
            0
        } else {
            ends[self.field - 1] as usize + 1
        };
        // SAFETY: `parse` checked the text is UTF-8, and the bounds are a line start, a comma
        // or a line end, all ASCII, inside the text.
        unsafe {
            self.rows
                .text
                .get_unchecked(line + from..line + ends[self.field] as usize)
        }
    }
}

impl<'a> Rows<'a> {
    fn len(&self) -> usize {
        self.line.len()
    }

    fn field(&self, field: usize) -> Field<'_, 'a> {
        Field { rows: self, field }
    }

    fn parse(bytes: &'a [u8]) -> Rows<'a> {
        assert!(
            bytes.len() < u32::MAX as usize,
            "the harness reads files under 4 GiB"
        );
        // Data starts after the header; the halves meet at a line end.
        let body = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |i| i + 1);
        let mid = body + (bytes.len() - body) / 2;
        let mid = memchr::memchr(b'\n', &bytes[mid..]).map_or(bytes.len(), |i| mid + i + 1);
        let halves = [body..mid, mid..bytes.len()];
        // Count the lines of each half, then fill both halves of the columns in place.
        let counts: Vec<usize> = std::thread::scope(|s| {
            let h: Vec<_> = halves
                .iter()
                .map(|r| {
                    let part = &bytes[r.clone()];
                    s.spawn(move || {
                        std::str::from_utf8(part).expect("the CSV is UTF-8");
                        memchr::memchr_iter(b'\n', part).count()
                            + usize::from(!part.is_empty() && !part.ends_with(b"\n"))
                    })
                })
                .collect();
            h.into_iter()
                .map(|h| h.join().expect("count lines"))
                .collect()
        });
        let n = counts.iter().sum();
        let mut line = vec![0u32; n];
        let mut ends = vec![[0u8; 4]; n];
        let mut ts = vec![0i64; n];
        std::thread::scope(|s| {
            let (l0, l1) = line.split_at_mut(counts[0]);
            let (e0, e1) = ends.split_at_mut(counts[0]);
            let (t0, t1) = ts.split_at_mut(counts[0]);
            for (r, (l, (e, t))) in halves.iter().zip([(l0, (e0, t0)), (l1, (e1, t1))]) {
                let r = r.clone();
                s.spawn(move || fill(bytes, r, l, e, t));
            }
        });
        Rows {
            // SAFETY: both halves were checked to be UTF-8 above and meet at a line end.
            text: unsafe { std::str::from_utf8_unchecked(bytes) },
            line,
            ends,
            ts,
        }
    }
}

/// Split the lines of `bytes[range]` into `line` / `ends` / `ts`, one entry per line.
fn fill(
    bytes: &[u8],
    range: std::ops::Range<usize>,
    line: &mut [u32],
    ends: &mut [[u8; 4]],
    ts: &mut [i64],
) {
    let mut at = range.start;
    for row in 0..line.len() {
        let end = memchr::memchr(b'\n', &bytes[at..range.end]).map_or(range.end, |i| at + i);
        let l = &bytes[at..end];
        assert!(l.len() < 256, "a line of over 255 bytes at byte {at}");
        let mut e = [l.len() as u8; 4];
        let mut commas = memchr::memchr_iter(b',', l);
        for slot in &mut e {
            match commas.next() {
                Some(c) => *slot = c as u8,
                None => break,
            }
        }
        let rest = &l[(e[3] as usize + 1).min(l.len())..];
        ts[row] = std::str::from_utf8(rest)
            .ok()
            .and_then(|t| t.trim_end().parse().ok())
            .unwrap_or(0);
        line[row] = at as u32;
        ends[row] = e;
        at = end + 1;
    }
}
