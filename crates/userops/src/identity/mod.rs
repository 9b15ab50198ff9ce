//! OneID: which identifiers belong to one person (SPEC §3).
//!
//! Identifiers seen together in one record are linked by an evidence edge (which record, from
//! which source, when); the connected components of accepted links are persons. Links obey
//! [`IdentityRules`]: kinds that do not link, per-kind caps per person, a blocklist and a junk
//! threshold. A link that would break a cap is refused and kept as a [`Conflict`]; the refused
//! identifier keeps (or gets) a person of its own.
//!
//! Within a record, identifiers link in the rules' kind priority order: the first one is the
//! anchor and every other one tries to join the anchor's person, so that when a cap refuses a
//! link, the higher-priority identifiers are the ones that stay together.
//!
//! **Stable OneIDs.** OneIDs are handed out in order, so the smallest is the oldest person. The
//! survivor of a merge is the oldest person; the absorbed OneIDs keep resolving to it through
//! [`IdentityGraph::canonical`] and every merge is kept in [`IdentityGraph::merge_history`].
//! A split gives each part the oldest OneID that was founded (first seen) by an identifier of
//! that part, so that merge-then-split gives the old numbers back; a part with none gets a new one.
//!
//! **Where the rules live.** In the graph itself (they are part of the engine's state and its
//! snapshot): an engine changes them with the `set_identity_rules` command (journaled and
//! audited, applying to links from then on); a standalone graph takes them in
//! [`IdentityGraph::with_rules`].
//!
//! **Merges and member state.** Identity moves identifiers and evidence and reports them in a
//! [`MergeReport`]; the engine's one merge flow then has every module holding per-person state
//! fold the absorbed person's into the survivor's, each adding its section to the report. A
//! split runs the one split flow the same way: each part gets back what the merges moved.
//!
//! The batch path ([`IdentityGraph::resolve_batch`]) groups rows by record id in the order of
//! their first row and links the records in that order: it is exactly the incremental path
//! ([`IdentityGraph::link`]) record by record.

mod batch;
mod commands;
mod dedupe;
mod explain;
mod graph;
mod intern;
mod merge;
mod person;
mod repr;
mod rules;
mod split;
mod unionfind;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::ids::{IdKind, Identifier, OneId};

pub use batch::{BatchColumns, BatchResult, RejectedRow, RowIdentifier, TextColumn};
pub use commands::{GraphCall, IdentityCommand, IdentityOutput};
pub use explain::{Explanation, Step};
pub use merge::{AuditEntry, MergeCause, MergeRecord, MergeReport};
pub use rules::{BlockPattern, IdentityRules};
pub use split::{SplitPart, SplitReport};

use intern::{hash_ident, Interner, Kinds, Records};
use unionfind::UnionFind;

const NONE: u32 = u32::MAX;

/// One record handed to [`IdentityGraph::link`]: identifiers seen together, and where from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// The record's id (an event key, an order number, a CRM row id).
    pub id: String,
    /// The source (system, app or program) the record came from.
    #[serde(default)]
    pub source: String,
    /// When it was seen, milliseconds since the Unix epoch.
    #[serde(default)]
    pub ts: i64,
    /// The identifiers, already normalized.
    pub ids: Vec<Identifier>,
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConflictReason {
    /// Joining would give the person more identifiers of `kind` than `cap`.
    Cap {
        /// The capped kind.
        kind: IdKind,
        /// The most identifiers of `kind` a person may have.
        cap: u32,
    },
    /// The identifier appeared with more persons than the junk threshold and stopped linking.
    Junk {
        /// Other persons it appeared with.
        seen: u32,
        /// The junk threshold: the most persons an identifier may appear with and still link.
        threshold: u32,
    },
}

/// A link the rules refused, with both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The record that asked for the link.
    pub record: String,
    /// The identifier that was refused (or found to be junk).
    pub identifier: Identifier,
    /// The person the record's anchor belongs to (the side that was kept).
    pub kept: OneId,
    /// The person the refused identifier belongs to (the other side).
    pub other: OneId,
    /// Which rule refused the link.
    pub reason: ConflictReason,
}

/// The result of linking one record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LinkOutcome {
    /// The person the record's anchor (highest-priority identifier) belongs to now; `None` when
    /// every identifier was blocklisted.
    pub oneid: Option<OneId>,
    /// Persons merged into `oneid` by this record, in the order they were absorbed.
    pub absorbed: Vec<OneId>,
    /// Whether the anchor's person was created by this record.
    pub created: bool,
    /// Links the rules refused.
    pub conflicts: Vec<Conflict>,
    /// Identifiers skipped as junk (blocklist), with the reason.
    pub blocked: Vec<String>,
}

pub(crate) type FxMap<K, V> = HashMap<K, V, rustc_hash::FxBuildHasher>;

/// Metadata of a record (or of a manual merge, which is evidence too), as serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RecordMeta {
    id: String,
    source: u32,
    ts: i64,
    /// For a manual merge: `(actor, reason)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manual: Option<(String, String)>,
}

/// Identifiers of one capped kind (and scope) a person holds. A person holds a handful of
/// capped kinds, so the counts live inline (no heap block per person) up to two kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cap {
    kind: u16,
    scope: u32,
    n: u32,
}

pub(crate) type Counts = SmallVec<[Cap; 2]>;

/// The OneID of `node`'s person, from the two parts of the graph that say it (borrowed apart
/// so that the batch path can answer per row while the identifier table is being indexed).
fn person_of(uf: &UnionFind, oneid_of: &[u64], node: u32) -> OneId {
    OneId(oneid_of[uf.find(node) as usize])
}

fn add_counts(into: &mut Counts, from: &[Cap]) {
    for c in from {
        match into
            .iter_mut()
            .find(|e| e.kind == c.kind && e.scope == c.scope)
        {
            Some(e) => e.n += c.n,
            None => into.push(*c),
        }
    }
}

/// One merge: `(survivor, absorbed, record, cause)`; the record id is read from the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Merge {
    survivor: u64,
    absorbed: u64,
    record: u32,
    cause: MergeCause,
}

/// Buffers reused from one link to the next (no allocation per record).
#[derive(Debug, Clone, Default)]
pub(crate) struct Scratch {
    nodes: Vec<(u32, bool, bool)>,
    linking: Vec<(u32, bool)>,
    persons: Vec<u64>,
}

/// An evidence edge: `a` and `b` were seen together in `record`. Edges of a node are threaded
/// through `next_a` / `next_b` (the adjacency layout petgraph's `Graph` uses), so no per-node
/// vector is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Edge {
    a: u32,
    b: u32,
    record: u32,
    next_a: u32,
    next_b: u32,
    /// False once a split removed it.
    active: bool,
}

/// The active evidence edges at one node, as `(edge, neighbour)`: a walk down the node's edge
/// list (see [`Edge`]). A named type so that the petgraph view in `explain` can name it.
#[derive(Clone)]
pub(crate) struct EdgesOf<'g> {
    edges: &'g [Edge],
    node: u32,
    next: u32,
}

impl Iterator for EdgesOf<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        while self.next != NONE {
            let e = self.next;
            let edge = &self.edges[e as usize];
            let (other, next) = if edge.a == self.node {
                (edge.b, edge.next_a)
            } else {
                (edge.a, edge.next_b)
            };
            self.next = next;
            if edge.active {
                return Some((e, other));
            }
        }
        None
    }
}

/// The identity graph: identifier nodes, evidence edges, persons, and the merge map.
#[derive(Clone)]
pub struct IdentityGraph {
    rules: IdentityRules,
    /// Kind indexes and what the rules say about each kind.
    kinds: Kinds,
    // ---- per node ----
    /// Identifier of each node (kind, value in one arena) and the index from identifier to node.
    nodes: Interner,
    /// Source index for kinds capped per source, `NONE` otherwise.
    scope: Vec<u32>,
    /// Other persons the identifier appeared with (junk check).
    seen: Vec<u32>,
    junk: Vec<bool>,
    /// The OneID this node founded (0 if none): a split gives it back to the node's part.
    founded: Vec<u64>,
    /// Head of the node's evidence edge list.
    first_edge: Vec<u32>,
    uf: UnionFind,
    /// Per root: its OneID.
    oneid_of: Vec<u64>,
    // ---- per OneID (index 0 unused) ----
    root_of: Vec<u32>,
    absorbed_into: Vec<u64>,
    origin: Vec<u32>,
    /// Identifiers held per capped (kind, scope); empty for an absorbed OneID. Per OneID, not
    /// per node: fewer than half the nodes found a person, and each entry is 32 bytes.
    counts: Vec<Counts>,
    // ---- evidence and logs ----
    edges: Vec<Edge>,
    records: Records,
    sources: Vec<String>,
    source_ix: FxMap<String, u32>,
    history: Vec<Merge>,
    conflicts: Vec<Conflict>,
    audit: Vec<AuditEntry>,
    scratch: Scratch,
}

/// The kind of the tombstones [`IdentityGraph::erase`] leaves in place of erased identifiers.
const ERASED_KIND: &str = "erased";

/// How the ids of an erased person's records begin (`erased:<pseudonym>:<n>`).
pub(crate) const ERASED_RECORD: &str = "erased:";

fn is_erased_kind(kind: &IdKind) -> bool {
    matches!(kind, IdKind::Custom(k) if k == ERASED_KIND)
}

impl Default for IdentityGraph {
    fn default() -> Self {
        IdentityGraph::with_rules(IdentityRules::default())
    }
}

impl std::fmt::Debug for IdentityGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityGraph")
            .field("identifiers", &self.identifier_count())
            .field("persons", &self.person_count())
            .field("edges", &self.edges.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for IdentityGraph {
    fn eq(&self, other: &Self) -> bool {
        repr::Repr::from(self) == repr::Repr::from(other)
    }
}

impl IdentityGraph {
    /// An empty graph under `rules`.
    pub fn with_rules(rules: IdentityRules) -> IdentityGraph {
        IdentityGraph {
            kinds: Kinds::new(&rules),
            rules,
            nodes: Interner::default(),
            scope: Vec::new(),
            seen: Vec::new(),
            junk: Vec::new(),
            founded: Vec::new(),
            first_edge: Vec::new(),
            uf: UnionFind::default(),
            oneid_of: Vec::new(),
            // OneID 0 is never handed out: slot 0 keeps the numbering 1-based.
            root_of: vec![NONE],
            absorbed_into: vec![0],
            origin: vec![NONE],
            counts: vec![Counts::new()],
            edges: Vec::new(),
            records: Records::default(),
            sources: Vec::new(),
            source_ix: FxMap::default(),
            history: Vec::new(),
            conflicts: Vec::new(),
            audit: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &IdentityRules {
        &self.rules
    }

    /// Replace the rules. They apply to links from now on; existing persons are kept as they
    /// are (a person over a new, lower cap stays whole; split it to enforce the cap).
    ///
    /// # Errors
    ///
    /// As [`IdentityRules::validate`]; the rules in force stay.
    pub fn set_rules(&mut self, rules: IdentityRules) -> Result<(), crate::Error> {
        rules.validate()?;
        self.kinds.set_rules(&rules);
        self.rules = rules;
        self.recount();
        Ok(())
    }

    /// The person owning `id`, if known.
    pub fn resolve(&self, id: &Identifier) -> Option<OneId> {
        self.node(id).map(|n| self.person_of(n))
    }

    /// The live person a OneID stands for now (itself, or the survivor it was merged into);
    /// `None` for a number never handed out.
    pub fn canonical(&self, oneid: OneId) -> Option<OneId> {
        let mut cur = usize::try_from(oneid.0).ok()?;
        if cur == 0 || cur >= self.root_of.len() {
            return None;
        }
        while self.absorbed_into[cur] != 0 {
            cur = self.absorbed_into[cur] as usize;
        }
        Some(OneId(cur as u64))
    }

    /// The identifiers of a live person, in the order they were first seen.
    pub fn identifiers(&self, oneid: OneId) -> Option<Vec<Identifier>> {
        let root = self.root(oneid)?;
        let mut m = self.uf.members(root);
        m.sort_unstable();
        Some(
            m.into_iter()
                .filter(|&n| !self.erased(n))
                .map(|n| self.ident(n))
                .collect(),
        )
    }

    /// Every live person with its identifiers (erased ones left out), by OneID.
    pub fn persons(&self) -> impl Iterator<Item = (OneId, Vec<Identifier>)> + '_ {
        (1..self.root_of.len() as u64).filter_map(move |i| {
            let o = OneId(i);
            self.identifiers(o).map(|ids| (o, ids))
        })
    }

    /// Forget every identifier of a live person (erasure, SPEC §9). Each identifier's node stays,
    /// renamed to a tombstone that names no one (kind `erased`), so that the evidence graph, the
    /// merge history and what other modules hold under the OneID stay consistent without
    /// personal data; conflicts that named the identifiers are rewritten the same way. Returns
    /// the identifiers removed.
    pub(crate) fn forget_identifiers(&mut self, oneid: OneId) -> Vec<Identifier> {
        let Some(root) = self.root(oneid) else {
            return Vec::new();
        };
        let mut removed = Vec::new();
        let tomb_kind = self
            .kinds
            .intern(&IdKind::Custom(ERASED_KIND.into()), &self.rules);
        for n in self.uf.members(root) {
            if self.erased(n) {
                continue;
            }
            let old = self.ident(n);
            self.nodes.rename(n, tomb_kind, &format!("erased-{n}"));
            let tomb = self.ident(n);
            for c in &mut self.conflicts {
                if c.identifier == old {
                    c.identifier = tomb.clone();
                }
            }
            removed.push(old);
        }
        removed
    }

    /// Erasure: the records `theirs` names (the erased person's events: their ids are the
    /// host's event keys, which may carry personal data) get the id `erased:<pseudonym>:<n>`,
    /// in the conflicts that name them too. Merge evidence (`manual:N`) keeps its id.
    pub(crate) fn rename_records(&mut self, theirs: impl Fn(&str) -> bool, pseudonym: OneId) {
        let renamed = self.records.rename(|r, id| {
            (!id.starts_with("manual:") && theirs(id))
                .then(|| format!("{ERASED_RECORD}{}:{r}", pseudonym.0))
        });
        if renamed.is_empty() {
            return;
        }
        let map: std::collections::HashMap<&str, &str> = renamed
            .iter()
            .map(|(o, n)| (o.as_str(), n.as_str()))
            .collect();
        for c in &mut self.conflicts {
            if let Some(n) = map.get(c.record.as_str()) {
                c.record = (*n).to_owned();
            }
        }
    }

    /// Number of merges so far (the length of the merge history).
    pub(crate) fn merge_count(&self) -> usize {
        self.history.len()
    }

    /// How many OneIDs were handed out: they run densely from 1 to this number, and none is
    /// ever dropped (absorbed and erased persons keep theirs).
    pub fn oneids_issued(&self) -> u64 {
        self.root_of.len().saturating_sub(1) as u64
    }

    /// Number of live persons.
    pub fn person_count(&self) -> usize {
        self.root_of.iter().skip(1).filter(|r| **r != NONE).count()
    }

    /// Number of known identifiers (erased ones not counted).
    pub fn identifier_count(&self) -> usize {
        (0..self.nodes.len() as u32)
            .filter(|&n| !self.erased(n))
            .count()
    }

    /// Links refused by the rules, oldest first.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Operator actions (manual merges and splits, rule changes), oldest first.
    pub fn audit(&self) -> &[AuditEntry] {
        &self.audit
    }

    /// Whether `id` may be used at all (not blocklisted): the reason when it may not.
    pub fn blocked(&self, id: &Identifier) -> Option<String> {
        self.rules.blocked(id)
    }

    // ---- internals shared by the submodules ----

    /// The node of an identifier, if known.
    fn node(&self, id: &Identifier) -> Option<u32> {
        let k = self.kinds.index(id.kind())?;
        self.nodes.find(k, id.value(), hash_ident(k, id.value()))
    }

    /// The identifier of a node.
    fn ident(&self, n: u32) -> Identifier {
        intern::ident(&self.kinds, &self.nodes, n)
    }

    fn kind_of(&self, n: u32) -> &IdKind {
        self.kinds.kind(self.nodes.kind_ix(n))
    }

    fn erased(&self, n: u32) -> bool {
        is_erased_kind(self.kind_of(n))
    }

    fn root(&self, oneid: OneId) -> Option<u32> {
        let i = usize::try_from(oneid.0).ok()?;
        match self.root_of.get(i) {
            Some(&r) if r != NONE && i != 0 => Some(r),
            _ => None,
        }
    }

    fn person_of(&self, node: u32) -> OneId {
        person_of(&self.uf, &self.oneid_of, node)
    }

    fn source_index(&mut self, source: &str) -> u32 {
        if let Some(&i) = self.source_ix.get(source) {
            return i;
        }
        let i = self.sources.len() as u32;
        self.sources.push(source.to_owned());
        self.source_ix.insert(source.to_owned(), i);
        i
    }

    fn add_record(
        &mut self,
        id: &str,
        source: &str,
        ts: i64,
        manual: Option<(String, String)>,
    ) -> u32 {
        let source = self.source_index(source);
        self.records.push(id, source, ts, manual)
    }

    /// A new node for an identifier not yet known (the caller looked it up).
    fn add_node(&mut self, kind: u16, value: &str, hash: u32, source: u32) -> u32 {
        let n = self.nodes.push(kind, value, hash);
        self.grow_node(n, kind, source)
    }

    /// [`IdentityGraph::add_node`] for the batch path, which indexes its nodes at its end.
    fn add_batch_node(&mut self, kind: u16, value: &str, hash: u32, source: u32) -> u32 {
        let n = self.nodes.push_unindexed(kind, value, hash);
        self.grow_node(n, kind, source)
    }

    /// The per-node state of new node `n`.
    fn grow_node(&mut self, n: u32, kind: u16, source: u32) -> u32 {
        let pushed = self.uf.push();
        debug_assert_eq!(n, pushed, "nodes and union-find grow together");
        let scope = if self.kinds.props(kind).scoped {
            source
        } else {
            NONE
        };
        self.scope.push(scope);
        self.seen.push(0);
        self.junk.push(false);
        self.founded.push(0);
        self.first_edge.push(NONE);
        self.oneid_of.push(0);
        n
    }

    /// Room for `nodes` more identifiers and `records` more records (the batch path knows).
    fn reserve(&mut self, nodes: usize, records: usize) {
        self.nodes.reserve(nodes);
        for v in [&mut self.scope, &mut self.seen, &mut self.first_edge] {
            v.reserve(nodes);
        }
        self.junk.reserve(nodes);
        self.founded.reserve(nodes);
        self.oneid_of.reserve(nodes);
        self.uf.reserve(nodes);
        self.records.reserve(records);
        self.edges.reserve(records);
    }

    /// Found a person on a singleton node.
    fn new_person(&mut self, node: u32) -> OneId {
        let id = self.root_of.len() as u64;
        self.root_of.push(node);
        self.absorbed_into.push(0);
        self.origin.push(node);
        self.counts.push(self.node_cap(node).into_iter().collect());
        self.founded[node as usize] = id;
        self.oneid_of[node as usize] = id;
        OneId(id)
    }

    /// What a single node counts against the caps.
    fn node_cap(&self, node: u32) -> Option<Cap> {
        let kind = self.nodes.kind_ix(node);
        self.kinds.props(kind).cap.map(|_| Cap {
            kind,
            scope: self.scope[node as usize],
            n: 1,
        })
    }

    /// Join the persons of roots `a` and `b`: the oldest OneID survives. Returns
    /// `(new root, survivor, absorbed)`.
    fn join(&mut self, a: u32, b: u32, record: u32) -> (u32, OneId, OneId) {
        let (oa, ob) = (self.oneid_of[a as usize], self.oneid_of[b as usize]);
        let (survivor, absorbed) = (oa.min(ob), oa.max(ob));
        let moved = std::mem::take(&mut self.counts[absorbed as usize]);
        add_counts(&mut self.counts[survivor as usize], &moved);
        let root = self.uf.union_roots(a, b);
        self.oneid_of[a as usize] = 0;
        self.oneid_of[b as usize] = 0;
        self.oneid_of[root as usize] = survivor;
        self.root_of[survivor as usize] = root;
        self.root_of[absorbed as usize] = NONE;
        self.absorbed_into[absorbed as usize] = survivor;
        self.history.push(Merge {
            survivor,
            absorbed,
            record,
            cause: if self.records.manual(record).is_some() {
                MergeCause::Manual
            } else {
                MergeCause::Record
            },
        });
        (root, OneId(survivor), OneId(absorbed))
    }

    fn add_edge(&mut self, a: u32, b: u32, record: u32) {
        let e = self.edges.len() as u32;
        self.edges.push(Edge {
            a,
            b,
            record,
            next_a: self.first_edge[a as usize],
            next_b: self.first_edge[b as usize],
            active: true,
        });
        self.first_edge[a as usize] = e;
        self.first_edge[b as usize] = e;
    }

    /// Active evidence edges at `node`: `(edge, neighbour)`, newest first.
    fn edges_of(&self, node: u32) -> EdgesOf<'_> {
        EdgesOf {
            edges: &self.edges,
            node,
            next: self.first_edge[node as usize],
        }
    }

    /// Rebuild every person's cap counts (after a rule change).
    fn recount(&mut self) {
        self.counts.clear();
        self.counts.resize(self.root_of.len(), Counts::new());
        for n in 0..self.uf.len() as u32 {
            if let Some(c) = self.node_cap(n) {
                let oneid = self.person_of(n).0 as usize;
                add_counts(&mut self.counts[oneid], &[c]);
            }
        }
    }

    /// The cap counts of the person whose root is `root`.
    pub(crate) fn counts_of(&self, root: u32) -> &Counts {
        &self.counts[self.oneid_of[root as usize] as usize]
    }
}

#[cfg(test)]
mod tests;
