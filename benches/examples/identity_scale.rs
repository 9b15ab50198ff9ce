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

use userops::identity::{BatchColumns, IdentityGraph, IdentityRules, Record};
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
    let text = std::fs::read_to_string(path).expect("read the CSV");
    // Columns sized once (growing five vectors of 10M entries by doubling costs ~0.3 s here,
    // mostly in page faults), fields split on bytes.
    let rows = text.bytes().filter(|&b| b == b'\n').count();
    let (mut rid, mut kind, mut value, mut source, mut ts) = (
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
        Vec::with_capacity(rows),
    );
    for line in text.split_terminator('\n').skip(1) {
        let mut f = line.split(',');
        let mut next = || f.next().unwrap_or("");
        rid.push(next());
        kind.push(next());
        value.push(next());
        source.push(next());
        ts.push(next().trim_end().parse::<i64>().unwrap_or(0));
    }
    let read_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let mut g = IdentityGraph::with_rules(rules);
    let out = g
        .resolve_batch(&BatchColumns {
            record_id: &rid,
            kind: &kind,
            value: &value,
            source: &source,
            ts: &ts,
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
    let known: Vec<&str> = value
        .iter()
        .zip(&kind)
        .filter(|(_, k)| **k == "phone")
        .map(|(v, _)| *v)
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
        rid.len(),
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
