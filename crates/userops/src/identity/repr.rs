//! The serialized form of the graph: what cannot be recomputed, in node / OneID order (so the
//! same history always gives the same bytes). Indexes, union-find, cap counts and adjacency are
//! rebuilt on load.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{
    hash_ident, AuditEntry, Conflict, FxMap, IdentityGraph, IdentityRules, Merge, MergeRecord,
    RecordMeta, UnionFind, NONE,
};
use crate::ids::Identifier;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Repr {
    rules: IdentityRules,
    ids: Vec<Identifier>,
    scope: Vec<u32>,
    seen: Vec<u32>,
    junk: Vec<u32>,
    founded: Vec<u64>,
    /// Per node: the OneID of its person.
    person: Vec<u64>,
    /// Per OneID (slot 0 unused).
    absorbed_into: Vec<u64>,
    origin: Vec<u32>,
    /// `(a, b, record, active)`.
    edges: Vec<(u32, u32, u32, bool)>,
    records: Vec<RecordMeta>,
    sources: Vec<String>,
    history: Vec<MergeRecord>,
    conflicts: Vec<Conflict>,
    audit: Vec<AuditEntry>,
}

impl From<&IdentityGraph> for Repr {
    fn from(g: &IdentityGraph) -> Repr {
        Repr {
            rules: g.rules.clone(),
            ids: (0..g.nodes.len() as u32).map(|n| g.ident(n)).collect(),
            scope: g.scope.clone(),
            seen: g.seen.clone(),
            junk: (0..g.junk.len() as u32)
                .filter(|&n| g.junk[n as usize])
                .collect(),
            founded: g.founded.clone(),
            person: (0..g.nodes.len() as u32)
                .map(|n| g.person_of(n).0)
                .collect(),
            absorbed_into: g.absorbed_into.clone(),
            origin: g.origin.clone(),
            edges: g
                .edges
                .iter()
                .map(|e| (e.a, e.b, e.record, e.active))
                .collect(),
            records: (0..g.records.len() as u32)
                .map(|r| RecordMeta {
                    id: g.records.id(r).to_owned(),
                    source: g.records.source(r),
                    ts: g.records.ts(r),
                    manual: g.records.manual(r).cloned(),
                })
                .collect(),
            sources: g.sources.clone(),
            history: g.history.iter().map(|m| g.merge_record(m)).collect(),
            conflicts: g.conflicts.clone(),
            audit: g.audit.clone(),
        }
    }
}

impl TryFrom<Repr> for IdentityGraph {
    type Error = String;

    fn try_from(r: Repr) -> Result<IdentityGraph, String> {
        let n = r.ids.len();
        let persons = r.absorbed_into.len();
        if [r.scope.len(), r.seen.len(), r.founded.len(), r.person.len()]
            .iter()
            .any(|&l| l != n)
            || r.origin.len() != persons
            || persons == 0
        {
            return Err("identity graph: per-node or per-person columns differ in length".into());
        }
        let in_range = |o: u64| o >= 1 && (o as usize) < persons;
        if r.person.iter().any(|&o| !in_range(o))
            // A survivor is always older (smaller) than what it absorbed: no cycles.
            || r.absorbed_into
                .iter()
                .enumerate()
                .skip(1)
                .any(|(i, &o)| o != 0 && o >= i as u64)
            || r.edges.iter().any(|&(a, b, rec, _)| {
                a as usize >= n || b as usize >= n || rec as usize >= r.records.len()
            })
            || r.junk.iter().any(|&j| j as usize >= n)
            || r.records
                .iter()
                .any(|m| m.source as usize >= r.sources.len())
        {
            return Err("identity graph: a reference is out of range".into());
        }
        r.rules.validate().map_err(|e| e.to_string())?;
        let mut g = IdentityGraph::with_rules(r.rules);
        g.root_of = vec![NONE; persons];
        g.absorbed_into = r.absorbed_into;
        g.origin = r.origin;
        g.uf = UnionFind::default();
        g.nodes.reserve(n);
        for id in &r.ids {
            let k = g.kinds.intern(id.kind(), &g.rules);
            let h = hash_ident(k, id.value());
            if g.nodes.find(k, id.value(), h).is_some() {
                return Err(format!("identity graph: identifier {id} listed twice"));
            }
            g.nodes.push(k, id.value(), h);
            g.uf.push();
        }
        g.scope = r.scope;
        g.seen = r.seen;
        g.founded = r.founded;
        g.junk = vec![false; n];
        for j in r.junk {
            g.junk[j as usize] = true;
        }
        g.first_edge = vec![NONE; n];
        g.oneid_of = vec![0; n];
        for (node, &p) in r.person.iter().enumerate() {
            let node = node as u32;
            match g.root_of[p as usize] {
                NONE => g.root_of[p as usize] = node,
                first => {
                    let (ra, rb) = (g.uf.find_mut(first), g.uf.find_mut(node));
                    let root = g.uf.union_roots(ra, rb);
                    g.root_of[p as usize] = root;
                }
            }
        }
        for p in 1..persons {
            let root = g.root_of[p];
            if root != NONE {
                if g.absorbed_into[p] != 0 {
                    return Err(format!(
                        "identity graph: person {p} is both live and absorbed"
                    ));
                }
                g.oneid_of[root as usize] = p as u64;
            }
        }
        g.records.reserve(r.records.len());
        // History names records by id: the first record of each id (ids of records that merged
        // are the same string whichever record of that id did it).
        let mut rec_of: FxMap<&str, u32> = FxMap::default();
        for m in &r.records {
            let i = g.records.push(&m.id, m.source, m.ts, m.manual.clone());
            rec_of.entry(m.id.as_str()).or_insert(i);
        }
        g.history = Vec::with_capacity(r.history.len());
        for m in &r.history {
            let Some(&record) = rec_of.get(m.record.as_str()) else {
                return Err(format!(
                    "identity graph: merge history names unknown record {:?}",
                    m.record
                ));
            };
            g.history.push(Merge {
                survivor: m.survivor.0,
                absorbed: m.absorbed.0,
                record,
                cause: m.cause,
            });
        }
        drop(rec_of);
        g.sources = r.sources;
        for (i, s) in g.sources.iter().enumerate() {
            g.source_ix.insert(s.clone(), i as u32);
        }
        g.edges = Vec::with_capacity(r.edges.len());
        for (a, b, rec, active) in r.edges {
            g.add_edge(a, b, rec);
            if let Some(e) = g.edges.last_mut() {
                e.active = active;
            }
        }
        g.conflicts = r.conflicts;
        g.audit = r.audit;
        g.recount();
        Ok(g)
    }
}

impl Serialize for IdentityGraph {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Repr::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for IdentityGraph {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = Repr::deserialize(d)?;
        IdentityGraph::try_from(r).map_err(serde::de::Error::custom)
    }
}
