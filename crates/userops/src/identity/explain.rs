//! `explain(a, b)`: the shortest chain of evidence joining two identifiers, or why there is none.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{ConflictReason, IdentityGraph, NONE};
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
    /// Its source.
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
    /// The shortest evidence chain joining `a` and `b` (breadth-first over active evidence),
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

    fn chain(&self, from: u32, to: u32) -> Vec<Step> {
        // Visited set as a map, not a per-node vector: a chain stays within one person.
        let mut pred: super::FxMap<u32, u32> = super::FxMap::default();
        pred.insert(from, NONE);
        let mut queue = VecDeque::from([from]);
        while let Some(n) = queue.pop_front() {
            if n == to {
                break;
            }
            for (e, m) in self.edges_of(n) {
                if let std::collections::hash_map::Entry::Vacant(v) = pred.entry(m) {
                    v.insert(e);
                    queue.push_back(m);
                }
            }
        }
        let mut steps = Vec::new();
        let mut cur = to;
        while cur != from {
            let Some(&e) = pred.get(&cur) else {
                return Vec::new(); // unreachable: same component means a path exists
            };
            let edge = &self.edges[e as usize];
            let prev = if edge.a == cur { edge.b } else { edge.a };
            let rec = edge.record;
            steps.push(Step {
                from: self.ident(prev),
                to: self.ident(cur),
                record: self.records.id(rec).to_owned(),
                source: self.sources[self.records.source(rec) as usize].clone(),
                ts: self.records.ts(rec),
                actor: self.records.manual(rec).map(|(a, _)| a.clone()),
            });
            cur = prev;
        }
        steps.reverse();
        steps
    }
}
