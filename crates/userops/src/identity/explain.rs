//! `explain(a, b)`: the shortest chain of evidence joining two identifiers, or why there is none.

use petgraph::algo::astar;
use petgraph::visit::{
    Data, EdgeRef, GraphBase, GraphRef, IntoEdgeReferences, IntoEdges, IntoNeighbors, Visitable,
};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

use super::{ConflictReason, EdgesOf, IdentityGraph};
use crate::ids::{Identifier, OneId};

/// One link of an evidence chain: `from` and `to` were seen together in `record`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// One end.
    pub from: Identifier,
    /// The other end.
    pub to: Identifier,
    /// The record that linked them (`manual:N` for a manual merge).
    pub record: String,
    /// The record's source (`operator` for a manual merge).
    pub source: String,
    /// When, in milliseconds since the Unix epoch.
    pub ts: i64,
    /// For a manual merge: the operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// The answer of [`IdentityGraph::explain`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Explanation {
    /// Whether the two identifiers are one person.
    pub joined: bool,
    /// The person of `a`, if known.
    pub oneid_a: Option<OneId>,
    /// The person of `b`, if known.
    pub oneid_b: Option<OneId>,
    /// The shortest chain of evidence from `a` to `b` (empty unless joined).
    pub chain: Vec<Step>,
    /// Why they are not joined (blocked, capped, junk, unknown, no evidence).
    pub reasons: Vec<String>,
}

impl IdentityGraph {
    /// The shortest evidence chain joining `a` and `b` (fewest records, over active evidence),
    /// or the reasons they are apart.
    pub fn explain(&self, a: &Identifier, b: &Identifier) -> Explanation {
        let mut out = Explanation::default();
        let na = self.node(a);
        let nb = self.node(b);
        out.oneid_a = na.map(|n| self.person_of(n));
        out.oneid_b = nb.map(|n| self.person_of(n));
        for (id, n) in [(a, na), (b, nb)] {
            if let Some(why) = self.rules.blocked(id) {
                out.reasons.push(why);
            } else if n.is_none() {
                out.reasons.push(format!("{id} has never been seen"));
            }
            if let Some(n) = n {
                if self.junk[n as usize] {
                    out.reasons.push(format!(
                        "{id} is junk: it appeared with {} other persons",
                        self.seen[n as usize]
                    ));
                }
                if !self.rules.links(id.kind()) {
                    out.reasons
                        .push(format!("{} identifiers do not link (rules)", id.kind()));
                }
            }
        }
        let (Some(na), Some(nb)) = (na, nb) else {
            return out;
        };
        if self.uf.find(na) == self.uf.find(nb) {
            out.joined = true;
            out.chain = self.chain(na, nb);
            return out;
        }
        let persons = [out.oneid_a, out.oneid_b];
        for c in &self.conflicts {
            let touches = c.identifier == *a
                || c.identifier == *b
                || persons.contains(&self.canonical(c.kept))
                || persons.contains(&self.canonical(c.other));
            if touches {
                let why = match &c.reason {
                    ConflictReason::Cap { kind, cap } => {
                        format!("the person may hold at most {cap} {kind}")
                    }
                    ConflictReason::Junk { seen, threshold } => {
                        format!("junk: seen with {seen} persons (threshold {threshold})")
                    }
                };
                out.reasons.push(format!(
                    "record {} tried to link {} (person {}) to person {}: refused, {why}",
                    c.record, c.identifier, c.other, c.kept
                ));
            }
        }
        if out.reasons.is_empty() {
            out.reasons
                .push("no record links them, directly or through other identifiers".into());
        }
        out
    }

    /// The shortest chain of active evidence from node `from` to node `to` (one person):
    /// petgraph's A* over [`Evidence`] with unit costs and no estimate, which is a
    /// breadth-first search. Between two nodes of the path the newest evidence is named.
    fn chain(&self, from: u32, to: u32) -> Vec<Step> {
        let view = Evidence(self);
        let Some((_, path)) = astar(view, from, |n| n == to, |_| 1u32, |_| 0) else {
            return Vec::new(); // unreachable: same person means a path of evidence exists
        };
        path.windows(2)
            .filter_map(|hop| {
                let (prev, cur) = (hop[0], hop[1]);
                let (e, _) = self.edges_of(prev).find(|&(_, m)| m == cur)?;
                let rec = self.edges[e as usize].record;
                Some(Step {
                    from: self.ident(prev),
                    to: self.ident(cur),
                    record: self.records.id(rec).to_owned(),
                    source: self.sources[self.records.source(rec) as usize].clone(),
                    ts: self.records.ts(rec),
                    actor: self.records.manual(rec).map(|(a, _)| a.clone()),
                })
            })
            .collect()
    }
}

/// The active evidence of a graph as petgraph sees a graph, read in place: nodes are node
/// numbers, edges are evidence edges (undirected: each is walked from both ends). Nothing is
/// copied, so a search costs only the part of the graph it visits.
#[derive(Clone, Copy)]
struct Evidence<'g>(&'g IdentityGraph);

/// One evidence edge seen from one end.
#[derive(Clone, Copy)]
struct Hop {
    from: u32,
    to: u32,
    edge: u32,
}

impl EdgeRef for Hop {
    type NodeId = u32;
    type EdgeId = u32;
    /// The edge number.
    type Weight = u32;
    fn source(&self) -> u32 {
        self.from
    }
    fn target(&self) -> u32 {
        self.to
    }
    fn weight(&self) -> &u32 {
        &self.edge
    }
    fn id(&self) -> u32 {
        self.edge
    }
}

impl GraphBase for Evidence<'_> {
    type NodeId = u32;
    type EdgeId = u32;
}

impl GraphRef for Evidence<'_> {}

impl Data for Evidence<'_> {
    type NodeWeight = ();
    type EdgeWeight = u32;
}

impl Visitable for Evidence<'_> {
    // A set, not a per-node bitmap: a search stays within one person of a large graph.
    type Map = FxHashSet<u32>;
    fn visit_map(&self) -> Self::Map {
        FxHashSet::default()
    }
    fn reset_map(&self, map: &mut Self::Map) {
        map.clear();
    }
}

/// A node's active edges as [`Hop`]s.
#[derive(Clone)]
struct Hops<'g> {
    from: u32,
    edges: EdgesOf<'g>,
}

impl Iterator for Hops<'_> {
    type Item = Hop;
    fn next(&mut self) -> Option<Hop> {
        let (edge, to) = self.edges.next()?;
        Some(Hop {
            from: self.from,
            to,
            edge,
        })
    }
}

impl<'g> IntoNeighbors for Evidence<'g> {
    type Neighbors = std::iter::Map<EdgesOf<'g>, fn((u32, u32)) -> u32>;
    fn neighbors(self, n: u32) -> Self::Neighbors {
        self.0.edges_of(n).map(|(_, m)| m)
    }
}

impl<'g> IntoEdgeReferences for Evidence<'g> {
    type EdgeRef = Hop;
    type EdgeReferences = Box<dyn Iterator<Item = Hop> + 'g>;
    /// Every active edge once, from its `a` end.
    fn edge_references(self) -> Self::EdgeReferences {
        Box::new(
            self.0
                .edges
                .iter()
                .zip(0u32..)
                .filter(|(e, _)| e.active)
                .map(|(e, edge)| Hop {
                    from: e.a,
                    to: e.b,
                    edge,
                }),
        )
    }
}

impl<'g> IntoEdges for Evidence<'g> {
    type Edges = Hops<'g>;
    fn edges(self, from: u32) -> Hops<'g> {
        Hops {
            from,
            edges: self.0.edges_of(from),
        }
    }
}
