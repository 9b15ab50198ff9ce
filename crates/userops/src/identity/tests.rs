use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::ids::IdKind;

fn id(k: IdKind, v: &str) -> Identifier {
    Identifier::new(k, v).unwrap()
}

fn rec(rid: &str, ids: Vec<Identifier>) -> Record {
    Record {
        id: rid.into(),
        source: "app".into(),
        ts: 0,
        ids,
    }
}

/// [`IdentityGraph::resolve_batch`] forced onto `threads` threads.
fn on_threads(g: &mut IdentityGraph, cols: &BatchColumns<'_>, threads: usize) -> BatchResult {
    let mut hook = crate::NoProgress;
    let mut meter = crate::progress::Meter::new(&mut hook, cols.record_id.len() as u64);
    g.resolve_batch_threads(cols, threads, &mut meter, crate::progress::CHUNK)
        .expect("NoProgress never stops")
}

/// A text column of one's own: every cell a span of one string.
struct Spans {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Spans {
    fn of(cells: &[String]) -> Spans {
        let mut s = Spans {
            text: String::new(),
            spans: Vec::new(),
        };
        for c in cells {
            s.text.push('|');
            s.spans.push((s.text.len(), s.text.len() + c.len()));
            s.text.push_str(c);
        }
        s
    }
}

impl TextColumn for Spans {
    fn len(&self) -> usize {
        self.spans.len()
    }
    fn text(&self, row: usize) -> &str {
        let (a, b) = self.spans[row];
        &self.text[a..b]
    }
}

fn phone(n: u32) -> Identifier {
    id(IdKind::Phone, &format!("1380013{n:04}"))
}

fn uncapped() -> IdentityRules {
    IdentityRules {
        caps: BTreeMap::new(),
        junk_threshold: None,
        block_patterns: Vec::new(),
        ..IdentityRules::default()
    }
}

#[test]
fn spec_example_three_records_one_person() {
    let mut g = IdentityGraph::default();
    let p = id(IdKind::Phone, "13800138000");
    let d = id(IdKind::DeviceId, "d1");
    let e = id(IdKind::Email, "b@x.com");
    let o = id(IdKind::OpenId, "o1");
    let a = g.link(&rec("A", vec![p.clone(), d.clone()]));
    let b = g.link(&rec("B", vec![e.clone(), d.clone()]));
    let c = g.link(&rec("C", vec![e.clone(), o.clone()]));
    assert!(a.created && !b.created && !c.created);
    assert_eq!(a.oneid, c.oneid);
    assert_eq!(g.person_count(), 1);
    let held = g.identifiers(a.oneid.unwrap()).unwrap();
    for x in [&p, &e, &o, &d] {
        assert!(held.contains(x), "{x} missing from {held:?}");
    }
    let why = g.explain(&p, &o);
    assert!(why.joined);
    let records: Vec<&str> = why.chain.iter().map(|s| s.record.as_str()).collect();
    assert_eq!(records, vec!["A", "B", "C"]);
    assert_eq!(why.chain[0].from, p);
    assert_eq!(why.chain[2].to, o);
}

#[test]
fn oldest_survives_and_absorbed_map_to_it() {
    let mut g = IdentityGraph::default();
    let p1 = g.link(&rec("r1", vec![phone(1)])).oneid.unwrap();
    let p2 = g
        .link(&rec("r2", vec![id(IdKind::Email, "a@x.com")]))
        .oneid
        .unwrap();
    let out = g.link(&rec("r3", vec![id(IdKind::Email, "a@x.com"), phone(1)]));
    assert_eq!(out.oneid, Some(p1));
    assert_eq!(out.absorbed, vec![p2]);
    assert_eq!(g.canonical(p2), Some(p1));
    assert_eq!(g.canonical(OneId(999)), None);
    assert_eq!(g.canonical(OneId(0)), None);
    let h = g.merge_history(Some(p2));
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].survivor, h[0].absorbed), (p1, p2));
    assert_eq!(h[0].record, "r3");
    let json = serde_json::to_string(&g).unwrap();
    let back: IdentityGraph = serde_json::from_str(&json).unwrap();
    assert_eq!(back, g);
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
}

#[test]
fn cap_refuses_link_and_reports_both_sides() {
    let mut g = IdentityGraph::default();
    let tablet = id(IdKind::DeviceId, "store-tablet");
    let a = g
        .link(&rec("r1", vec![phone(1), tablet.clone()]))
        .oneid
        .unwrap();
    let out = g.link(&rec("r2", vec![phone(2), tablet.clone()]));
    // Phone has priority over device: phone 2 cannot join the tablet's person (one phone per
    // person), so it founds its own and the tablet's person is refused.
    assert_eq!(out.conflicts.len(), 1);
    let c = &out.conflicts[0];
    assert_eq!(c.identifier, tablet);
    assert_eq!(c.other, a);
    assert_eq!(
        c.reason,
        ConflictReason::Cap {
            kind: IdKind::Phone,
            cap: 1
        }
    );
    let b = g.resolve(&phone(2)).unwrap();
    assert_ne!(a, b, "the record still stands alone");
    assert_eq!(c.kept, b);
    assert_eq!(out.oneid, Some(b));
    assert!(out.created);
    assert_eq!(g.resolve(&tablet), Some(a));
    assert_eq!(g.conflicts().len(), 1);
    let why = g.explain(&phone(1), &phone(2));
    assert!(!why.joined);
    assert!(
        why.reasons.iter().any(|r| r.contains("at most 1 phone")),
        "{why:?}"
    );
}

#[test]
fn blocklist_and_junk_threshold() {
    let rules = IdentityRules {
        junk_threshold: Some(2),
        caps: [(IdKind::Phone, 1)].into_iter().collect(),
        blocklist: [id(IdKind::Phone, "13800000000")].into_iter().collect(),
        ..IdentityRules::default()
    };
    let mut g = IdentityGraph::with_rules(rules);
    let out = g.link(&rec("r0", vec![id(IdKind::Phone, "13800000000"), phone(9)]));
    assert_eq!(out.blocked.len(), 1);
    assert_eq!(g.resolve(&id(IdKind::Phone, "13800000000")), None);
    let zero = id(IdKind::DeviceId, "00000000-0000-0000-0000-000000000000");
    assert!(g.link(&rec("z", vec![zero])).oneid.is_none());
    let tablet = id(IdKind::DeviceId, "tab");
    for i in 0..4 {
        g.link(&rec(&format!("r{}", i + 1), vec![phone(i), tablet.clone()]));
    }
    // Phones 1, 2, 3 each stayed apart from the tablet's person: after the third it is junk.
    let junk: Vec<_> = g
        .conflicts()
        .iter()
        .filter(|c| matches!(c.reason, ConflictReason::Junk { .. }))
        .collect();
    assert_eq!(junk.len(), 1);
    assert_eq!(junk[0].identifier, tablet);
    let before = g.conflicts().len();
    let out = g.link(&rec("r9", vec![phone(7), tablet.clone()]));
    assert!(
        out.conflicts.is_empty(),
        "junk no longer links, so nothing to refuse"
    );
    assert_eq!(g.conflicts().len(), before);
    assert_ne!(g.resolve(&phone(7)), g.resolve(&tablet));
    assert!(g
        .explain(&phone(7), &tablet)
        .reasons
        .iter()
        .any(|r| r.contains("junk")));
}

#[test]
fn openid_cap_is_per_source() {
    let mut g = IdentityGraph::default();
    let mk = |src: &str, rid: &str, ids| Record {
        id: rid.into(),
        source: src.into(),
        ts: 0,
        ids,
    };
    g.link(&mk("mp-a", "1", vec![phone(1), id(IdKind::OpenId, "oa")]));
    let b = g.link(&mk("mp-b", "2", vec![phone(1), id(IdKind::OpenId, "ob")]));
    assert!(b.conflicts.is_empty(), "one openid per app");
    let c = g.link(&mk("mp-a", "3", vec![phone(1), id(IdKind::OpenId, "oa2")]));
    assert_eq!(c.conflicts.len(), 1, "second openid of the same app");
}

#[test]
fn non_linking_kinds_stand_alone() {
    let rules = IdentityRules {
        non_linking_kinds: [IdKind::MemberNo].into_iter().collect(),
        ..IdentityRules::default()
    };
    let mut g = IdentityGraph::with_rules(rules);
    let m = id(IdKind::MemberNo, "M1");
    g.link(&rec("r", vec![phone(1), m.clone()]));
    assert_ne!(g.resolve(&phone(1)), g.resolve(&m));
    assert!(g.resolve(&m).is_some());
}

#[test]
fn manual_merge_and_split_are_audited_and_reversible() {
    let mut g = IdentityGraph::default();
    let a = g.link(&rec("r1", vec![phone(1)])).oneid.unwrap();
    let b = g
        .link(&rec("r2", vec![id(IdKind::Email, "b@x.com")]))
        .oneid
        .unwrap();
    assert!(g.merge(a, b, "", "why", 0).is_err());
    assert!(g.merge(a, OneId(77), "ops", "why", 0).is_err());
    let before = serde_json::to_string(&g).unwrap();
    let c = g.link(&rec("r3", vec![phone(3)])).oneid.unwrap();
    assert!(
        g.merge(a, c, "ops", "x", 0).is_err(),
        "two phones break the cap"
    );
    let _ = before;
    let report = g
        .merge(b, a, "alice", "same customer per call centre", 5)
        .unwrap();
    assert_eq!(report.survivor, a);
    assert_eq!(report.absorbed, vec![b]);
    assert_eq!(report.identifiers_moved, vec![id(IdKind::Email, "b@x.com")]);
    assert_eq!(g.canonical(b), Some(a));
    let why = g.explain(&phone(1), &id(IdKind::Email, "b@x.com"));
    assert_eq!(why.chain.len(), 1);
    assert_eq!(why.chain[0].actor.as_deref(), Some("alice"));
    let ev = why.chain[0].record.clone();
    assert!(g.split(std::slice::from_ref(&ev), "bob", "").is_err());
    assert!(g.split(&["nope".into()], "bob", "wrong").is_err());
    let s = g.split(&[ev], "bob", "wrong merge").unwrap();
    assert_eq!(s.split, vec![a]);
    let got: Vec<OneId> = s.parts.iter().map(|p| p.oneid).collect();
    assert_eq!(got, vec![a, b], "split gives the old numbers back");
    assert_eq!(g.canonical(b), Some(b));
    assert_eq!(g.resolve(&id(IdKind::Email, "b@x.com")), Some(b));
    let actions: Vec<&str> = g.audit().iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, vec!["merge", "split"]);
}

#[test]
fn batch_rejects_bad_rows_and_processes_the_rest() {
    let mut g = IdentityGraph::default();
    let cols = BatchColumns {
        record_id: &["r1", "r1", "r1", "r2", "", "r2", "r3"],
        kind: &[
            "phone",
            "email",
            "Fax!",
            "email",
            "phone",
            "device_id",
            "phone",
        ],
        value: &[
            "13800138000",
            "not-mail",
            "1",
            "a@x.com",
            "13800138000",
            "  ",
            "13800000000",
        ],
        source: &["s"; 7],
        ts: &[0; 7],
    };
    let out = g.resolve_batch(&cols).unwrap();
    let rows: Vec<usize> = out.rejected.iter().map(|r| r.row).collect();
    assert_eq!(rows, vec![1, 2, 4, 5]);
    assert!(out.rejected[1].reason.contains("unknown identifier kind"));
    assert!(out.rejected[3].reason.contains("empty"));
    assert!(out.oneids[0].is_some() && out.oneids[1].is_none());
    assert_eq!(out.oneids.len(), 7);
    // Before any linking the batch already knows which rows link, as which identifier.
    use RowIdentifier::{Links, Outside, Rejected};
    let keys = IdentityGraph::default().batch_identifiers(&cols).unwrap();
    assert_eq!(
        keys,
        vec![
            Links(id(IdKind::Phone, "13800138000")),
            Rejected,
            Outside,
            Links(id(IdKind::Email, "a@x.com")),
            Outside,
            Rejected,
            Links(id(IdKind::Phone, "13800000000")),
        ]
    );
    let before = serde_json::to_string(&g).unwrap();
    assert!(g
        .resolve_batch(&BatchColumns {
            record_id: &["r1"],
            kind: &["phone", "phone"],
            value: &["1"],
            source: &["s"],
            ts: &[0],
        })
        .is_err());
    assert_eq!(serde_json::to_string(&g).unwrap(), before);
}

#[test]
fn corrupt_snapshot_is_an_error_not_a_panic() {
    let mut g = IdentityGraph::default();
    g.link(&rec("r1", vec![phone(1), id(IdKind::DeviceId, "d")]));
    let mut v: serde_json::Value = serde_json::to_value(&g).unwrap();
    v["edges"][0][0] = 99.into();
    assert!(serde_json::from_value::<IdentityGraph>(v.clone()).is_err());
    let mut cyclic = serde_json::to_value(&g).unwrap();
    cyclic["absorbed_into"] = serde_json::json!([0, 1]);
    assert!(serde_json::from_value::<IdentityGraph>(cyclic).is_err());
    v["edges"] = serde_json::json!([]);
    v["person"] = serde_json::json!([1]);
    assert!(serde_json::from_value::<IdentityGraph>(v).is_err());
}

// ---------------------------------------------------------------- property tests

/// Random records over small pools so that identifiers collide.
fn records(max_records: usize) -> impl Strategy<Value = Vec<Vec<(u8, u8)>>> {
    prop::collection::vec(
        prop::collection::vec((0u8..4, 0u8..12), 1..4),
        0..max_records,
    )
}

fn ident(kind: u8, v: u8) -> Identifier {
    match kind {
        0 => phone(u32::from(v)),
        1 => id(IdKind::Email, &format!("u{v}@x.com")),
        2 => id(IdKind::DeviceId, &format!("dev{v}")),
        _ => id(IdKind::UnionId, &format!("un{v}")),
    }
}

/// Naive breadth-first search: every identifier reachable from `start` in `adj`, with its
/// distance in edges.
fn bfs_distances(
    adj: &BTreeMap<Identifier, BTreeSet<Identifier>>,
    start: &Identifier,
) -> BTreeMap<Identifier, usize> {
    let mut dist = BTreeMap::from([(start.clone(), 0usize)]);
    let mut q = VecDeque::from([start.clone()]);
    while let Some(x) = q.pop_front() {
        let d = dist[&x];
        for y in adj.get(&x).into_iter().flatten() {
            if !dist.contains_key(y) {
                dist.insert(y.clone(), d + 1);
                q.push_back(y.clone());
            }
        }
    }
    dist
}

fn partition(g: &IdentityGraph) -> BTreeSet<BTreeSet<Identifier>> {
    (1..g.root_of.len() as u64)
        .filter_map(|o| g.identifiers(OneId(o)))
        .map(|ids| ids.into_iter().collect())
        .collect()
}

/// Every OneID's cap counts are those of its members (none for an absorbed OneID).
fn counts_agree(g: &IdentityGraph) -> Result<(), TestCaseError> {
    prop_assert_eq!(g.counts.len(), g.root_of.len());
    for o in 1..g.root_of.len() as u64 {
        let mut want: BTreeMap<(u16, u32), u32> = BTreeMap::new();
        if let Some(root) = g.root(OneId(o)) {
            for n in g.uf.members(root) {
                if let Some(c) = g.node_cap(n) {
                    *want.entry((c.kind, c.scope)).or_default() += c.n;
                }
            }
        }
        let have: BTreeMap<(u16, u32), u32> = g.counts[o as usize]
            .iter()
            .filter(|c| c.n > 0)
            .map(|c| ((c.kind, c.scope), c.n))
            .collect();
        prop_assert_eq!(have, want, "cap counts of OneID {}", o);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn batch_equals_incremental(recs in records(40), bad in prop::collection::vec(any::<bool>(), 0..40)) {
        let mut rows: (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        let mut expect_rows = Vec::new();
        for (r, ids) in recs.iter().enumerate() {
            for &(k, v) in ids {
                let i = ident(k, v);
                rows.0.push(format!("rec{r}"));
                rows.1.push(i.kind().to_string());
                // Raw forms half the time, so that normalization is exercised too.
                rows.2.push(match (k, v % 2) {
                    (0, 1) => format!("1380013{v:04}"),
                    (1, 1) => format!(" U{v}@X.com"),
                    (_, 1) => format!(" {} ", i.value()),
                    _ => i.value().to_owned(),
                });
                expect_rows.push(Some(i));
                if bad.get(rows.0.len()).copied().unwrap_or(false) {
                    rows.0.push(format!("rec{r}"));
                    rows.1.push("phone".into());
                    rows.2.push("not a phone".into());
                    expect_rows.push(None);
                }
            }
        }
        let n = rows.0.len();
        let source = vec!["s".to_string(); n];
        let mut batch = IdentityGraph::default();
        let out = batch.resolve_batch(&BatchColumns {
            record_id: &rows.0, kind: &rows.1, value: &rows.2, source: &source, ts: &vec![0; n],
        }).unwrap();
        // The threaded path (used from 50,000 rows on) on the same rows, with uneven chunks.
        let mut threaded = IdentityGraph::default();
        let out3 = on_threads(&mut threaded, &BatchColumns {
            record_id: &rows.0, kind: &rows.1, value: &rows.2, source: &source, ts: &vec![0; n],
        }, 4);
        prop_assert_eq!(&out3, &out);
        prop_assert!(threaded == batch);
        // The same rows from a column of the caller's own (spans into one text), threaded.
        let spans = [&rows.0, &rows.1, &rows.2].map(|c| Spans::of(c));
        let mut own = IdentityGraph::default();
        let out_own = on_threads(&mut own, &BatchColumns {
            record_id: &spans[0], kind: &spans[1], value: &spans[2], source: &["s"].repeat(n), ts: &vec![0; n],
        }, 2);
        prop_assert_eq!(&out_own, &out);
        prop_assert!(own == batch);
        let mut inc = IdentityGraph::default();
        for (r, ids) in recs.iter().enumerate() {
            let ids: Vec<Identifier> = ids.iter().map(|&(k, v)| ident(k, v)).collect();
            inc.link(&Record { id: format!("rec{r}"), source: "s".into(), ts: 0, ids });
        }
        for (row, want) in expect_rows.iter().enumerate() {
            let got = out.oneids[row];
            match want {
                Some(i) => prop_assert_eq!(got, inc.resolve(i)),
                None => prop_assert!(got.is_none() && out.rejected.iter().any(|r| r.row == row)),
            }
        }
        prop_assert!(batch == inc, "same graph, same bytes");
        // Before any linking, the batch says which rows link and as which identifier: the
        // normalized ones the records were linked with, the bad rows rejected.
        let keys = IdentityGraph::default().batch_identifiers(&BatchColumns {
            record_id: &rows.0, kind: &rows.1, value: &rows.2, source: &source, ts: &vec![0; n],
        }).unwrap();
        for (row, want) in expect_rows.iter().enumerate() {
            match want {
                Some(i) => prop_assert_eq!(&keys[row], &RowIdentifier::Links(i.clone())),
                None => prop_assert_eq!(&keys[row], &RowIdentifier::Rejected),
            }
        }
    }

    /// A batch into a graph that already holds links, with the rows of its records interleaved
    /// (a record's rows need not be adjacent), then more links: the same graph as linking it all
    /// record by record, and every identifier found by lookups after the batch.
    #[test]
    fn batch_into_a_populated_graph_with_interleaved_rows(
        recs in records(40),
        cut in 0usize..40,
        after in records(8),
    ) {
        let cut = cut.min(recs.len());
        let to_record = |r: usize, ids: &[(u8, u8)]| Record {
            id: format!("rec{r}"),
            source: "s".into(),
            ts: 0,
            ids: ids.iter().map(|&(k, v)| ident(k, v)).collect(),
        };
        let mut inc = IdentityGraph::default();
        let mut batch = IdentityGraph::default();
        for (r, ids) in recs[..cut].iter().enumerate() {
            inc.link(&to_record(r, ids));
            batch.link(&to_record(r, ids));
        }
        // Round robin: every record's first identifier, then every second one, ...
        let mut rows: (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        let mut row_ident = Vec::new();
        for j in 0..4 {
            for (r, ids) in recs.iter().enumerate().skip(cut) {
                if let Some(&(k, v)) = ids.get(j) {
                    let i = ident(k, v);
                    rows.0.push(format!("rec{r}"));
                    rows.1.push(i.kind().to_string());
                    rows.2.push(i.value().to_owned());
                    row_ident.push(i);
                }
            }
        }
        for (r, ids) in recs.iter().enumerate().skip(cut) {
            inc.link(&to_record(r, ids));
        }
        let n = rows.0.len();
        let source = vec!["s".to_string(); n];
        let cols = BatchColumns {
            record_id: &rows.0, kind: &rows.1, value: &rows.2, source: &source, ts: &vec![0; n],
        };
        let mut threaded = batch.clone();
        let out = batch.resolve_batch(&cols).unwrap();
        prop_assert_eq!(&on_threads(&mut threaded, &cols, 2), &out);
        prop_assert!(threaded == batch);
        prop_assert!(out.rejected.is_empty());
        for (row, i) in row_ident.iter().enumerate() {
            prop_assert_eq!(out.oneids[row], inc.resolve(i));
            prop_assert_eq!(batch.resolve(i), inc.resolve(i));
        }
        prop_assert!(batch == inc, "same graph, same bytes");
        for (r, ids) in after.iter().enumerate() {
            let rec = to_record(100 + r, ids);
            prop_assert_eq!(batch.link(&rec), inc.link(&rec));
        }
        prop_assert!(batch == inc);
        counts_agree(&batch)?;
    }

    /// A batch stopped by its progress hook between two records leaves the graph exactly as
    /// linking the records before the stop one by one would, its new nodes all indexed.
    #[test]
    fn a_stopped_batch_keeps_the_records_before_the_stop(
        recs in records(30),
        stop_at in 0usize..34,
        threads in 1usize..3,
        after in records(6),
    ) {
        let to_record = |r: usize, ids: &[(u8, u8)]| Record {
            id: format!("rec{r}"),
            source: "s".into(),
            ts: 0,
            ids: ids.iter().map(|&(k, v)| ident(k, v)).collect(),
        };
        let mut rows: (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        for (r, ids) in recs.iter().enumerate() {
            for &(k, v) in ids {
                let i = ident(k, v);
                rows.0.push(format!("rec{r}"));
                rows.1.push(i.kind().to_string());
                rows.2.push(i.value().to_owned());
            }
        }
        let n = rows.0.len();
        let source = vec!["s".to_string(); n];
        let cols = BatchColumns {
            record_id: &rows.0, kind: &rows.1, value: &rows.2, source: &source, ts: &vec![0; n],
        };
        let mut calls = 0usize;
        let mut seen = Vec::new();
        let mut hook = |done: u64, total: u64| {
            calls += 1;
            seen.push((done, total));
            if calls > stop_at {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        };
        let mut batch = IdentityGraph::default();
        let mut meter = crate::progress::Meter::new(&mut hook, n as u64);
        let out = batch.resolve_batch_threads(&cols, threads, &mut meter, 1);
        // One report before each record, then one at the end.
        prop_assert_eq!(out.is_ok(), stop_at > recs.len());
        prop_assert_eq!(seen.len(), (stop_at + 1).min(recs.len() + 1));
        prop_assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0) && seen.iter().all(|s| s.1 == n as u64));
        let mut inc = IdentityGraph::default();
        for (r, ids) in recs.iter().enumerate().take(stop_at) {
            inc.link(&to_record(r, ids));
        }
        prop_assert!(batch == inc, "the records before the stop, linked one by one");
        for (r, ids) in recs.iter().chain(&after).enumerate() {
            let rec = to_record(r, ids);
            prop_assert_eq!(batch.link(&rec), inc.link(&rec));
        }
        prop_assert!(batch == inc);
        counts_agree(&batch)?;
    }

    #[test]
    fn components_equal_naive_bfs(recs in records(40)) {
        let mut g = IdentityGraph::with_rules(uncapped());
        let mut adj: BTreeMap<Identifier, BTreeSet<Identifier>> = BTreeMap::new();
        for (r, ids) in recs.iter().enumerate() {
            let ids: Vec<Identifier> = ids.iter().map(|&(k, v)| ident(k, v)).collect();
            for a in &ids {
                let e = adj.entry(a.clone()).or_default();
                for b in &ids {
                    if a != b { e.insert(b.clone()); }
                }
            }
            g.link(&rec(&format!("r{r}"), ids));
        }
        let mut naive = BTreeSet::new();
        let mut seen = BTreeSet::new();
        for start in adj.keys() {
            if seen.contains(start) { continue; }
            let comp: BTreeSet<Identifier> = bfs_distances(&adj, start).into_keys().collect();
            seen.extend(comp.iter().cloned());
            naive.insert(comp);
        }
        prop_assert_eq!(partition(&g), naive);
    }

    #[test]
    fn explain_gives_a_shortest_chain_of_real_evidence(
        recs in records(40),
        pairs in prop::collection::vec(((0u8..4, 0u8..12), (0u8..4, 0u8..12)), 1..12),
        capped in any::<bool>(),
    ) {
        // Default rules refuse links (some pairs are apart); without caps, persons are large
        // and joined by many paths of different lengths.
        let mut g = IdentityGraph::with_rules(if capped { IdentityRules::default() } else { uncapped() });
        for (r, ids) in recs.iter().enumerate() {
            g.link(&rec(&format!("r{r}"), ids.iter().map(|&(k, v)| ident(k, v)).collect()));
        }
        // The active evidence, read straight from the edge list (not through the search).
        let mut adj: BTreeMap<Identifier, BTreeSet<Identifier>> = BTreeMap::new();
        let mut evidence = BTreeSet::new();
        for e in g.edges.iter().filter(|e| e.active) {
            let (a, b) = (g.ident(e.a), g.ident(e.b));
            let record = g.records.id(e.record).to_owned();
            adj.entry(a.clone()).or_default().insert(b.clone());
            adj.entry(b.clone()).or_default().insert(a.clone());
            evidence.insert((a.clone(), b.clone(), record.clone()));
            evidence.insert((b, a, record));
        }
        for ((ka, va), (kb, vb)) in pairs {
            let (a, b) = (ident(ka, va), ident(kb, vb));
            let why = g.explain(&a, &b);
            let joined = matches!((g.resolve(&a), g.resolve(&b)), (Some(x), Some(y)) if x == y);
            prop_assert_eq!(why.joined, joined);
            if !joined {
                prop_assert!(why.chain.is_empty());
                prop_assert!(!why.reasons.is_empty(), "apart without a reason: {} {}", a, b);
                continue;
            }
            let dist = bfs_distances(&adj, &a);
            prop_assert_eq!(Some(&why.chain.len()), dist.get(&b), "{} to {}", a, b);
            let mut at = a.clone();
            for step in &why.chain {
                prop_assert_eq!(&step.from, &at);
                let hop = (step.from.clone(), step.to.clone(), step.record.clone());
                prop_assert!(evidence.contains(&hop), "not evidence: {:?}", hop);
                at = step.to.clone();
            }
            prop_assert_eq!(at, b);
        }
    }

    #[test]
    fn caps_are_never_exceeded(recs in records(60), merges in prop::collection::vec((1u64..30, 1u64..30), 0..5)) {
        let mut g = IdentityGraph::default();
        for (r, ids) in recs.iter().enumerate() {
            g.link(&rec(&format!("r{r}"), ids.iter().map(|&(k, v)| ident(k, v)).collect()));
        }
        let mut evidence = Vec::new();
        for (a, b) in merges {
            if let Ok(m) = g.merge(OneId(a), OneId(b), "ops", "test", 0) {
                evidence.push(m.evidence);
            }
        }
        counts_agree(&g)?;
        if let Some(e) = evidence.first() {
            g.split(e, "ops", "undo").unwrap();
            counts_agree(&g)?;
        }
        // A graph read back counts its persons again.
        let back: IdentityGraph = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        counts_agree(&back)?;
        for o in 1..g.root_of.len() as u64 {
            let Some(root) = g.root(OneId(o)) else { continue };
            let mut per: BTreeMap<(IdKind, u32), u32> = BTreeMap::new();
            for n in g.uf.members(root) {
                *per.entry((g.kind_of(n).clone(), g.scope[n as usize])).or_default() += 1;
            }
            for ((kind, _), c) in per {
                if let Some(cap) = g.rules().cap(&kind) {
                    prop_assert!(c <= cap, "person {} holds {} {}", o, c, kind);
                }
            }
        }
    }

    #[test]
    fn merge_then_split_restores_components(recs in records(30), pick in (0usize..100, 0usize..100)) {
        let mut g = IdentityGraph::with_rules(uncapped());
        for (r, ids) in recs.iter().enumerate() {
            g.link(&rec(&format!("r{r}"), ids.iter().map(|&(k, v)| ident(k, v)).collect()));
        }
        let live: Vec<OneId> = (1..g.root_of.len() as u64).map(OneId).filter(|o| g.root(*o).is_some()).collect();
        prop_assume!(live.len() >= 2);
        let (a, b) = (live[pick.0 % live.len()], live[pick.1 % live.len()]);
        prop_assume!(a != b);
        let before = partition(&g);
        let owners: BTreeMap<Identifier, Option<OneId>> =
            (0..g.nodes.len() as u32).map(|n| g.ident(n)).map(|i| (i.clone(), g.resolve(&i))).collect();
        let report = g.merge(a, b, "ops", "test", 0).unwrap();
        prop_assert_eq!(partition(&g).len(), before.len() - 1);
        g.split(&report.evidence, "ops", "undo").unwrap();
        prop_assert_eq!(partition(&g), before);
        for (i, o) in owners {
            prop_assert_eq!(g.resolve(&i), o, "OneIDs come back too");
        }
    }
}

#[test]
fn huge_record_dedupes_and_links() {
    let mut g = IdentityGraph::with_rules(uncapped());
    let mut ids: Vec<Identifier> = (0..100)
        .map(|i| id(IdKind::DeviceId, &format!("d{i}")))
        .collect();
    ids.extend(ids.clone());
    let out = g.link(&rec("big", ids));
    assert_eq!(g.identifier_count(), 100);
    assert_eq!(g.identifiers(out.oneid.unwrap()).unwrap().len(), 100);
}
