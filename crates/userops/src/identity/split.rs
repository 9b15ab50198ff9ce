//! Split (unmerge) by an operator: remove named evidence and recompute the persons it held.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{IdentityGraph, NONE};
use crate::error::Error;
use crate::ids::{Identifier, OneId};

/// One person after a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPart {
    /// Its OneID: the oldest OneID founded by one of its identifiers, or a new one.
    pub oneid: OneId,
    /// Whether the OneID is new.
    pub created: bool,
    /// Its identifiers, in the order first seen.
    pub identifiers: Vec<Identifier>,
}

/// What a split did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SplitReport {
    /// The person(s) split, as they were.
    pub split: Vec<OneId>,
    /// The persons they became (one part when the remaining evidence still joins them all).
    pub parts: Vec<SplitPart>,
    /// Evidence edges removed.
    pub edges_removed: usize,
    /// What could not be split back, per module: each module gives the parts back what the
    /// merges moved and names here what it could not (filled by the engine's split flow).
    pub not_split_back: BTreeMap<String, serde_json::Value>,
    /// Per person split, its parts' OneIDs (what the engine's split flow works through).
    #[serde(skip)]
    pub(crate) groups: Vec<(OneId, Vec<OneId>)>,
}

impl IdentityGraph {
    /// Remove every evidence edge of the named records (record ids, or `manual:N` for a manual
    /// merge) and recompute the persons they joined.
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. `invalid_argument`: a blank `actor` or `reason`, or no
    /// evidence named. `not_found`: no evidence edge has any of the named record ids.
    pub fn split(
        &mut self,
        evidence: &[String],
        actor: &str,
        reason: &str,
    ) -> Result<SplitReport, Error> {
        for (f, v) in [("actor", actor), ("reason", reason)] {
            if v.trim().is_empty() {
                return Err(Error::invalid_argument(
                    f,
                    "required (operator actions are audited)",
                ));
            }
        }
        if evidence.is_empty() {
            return Err(Error::invalid_argument(
                "evidence",
                "name at least one record id",
            ));
        }
        let hit = self.evidence_edges(evidence);
        if hit.is_empty() {
            return Err(Error::NotFound {
                what: "evidence",
                id: evidence.join(","),
            });
        }
        // From here on nothing fails.
        let mut roots: Vec<u32> = hit
            .iter()
            .map(|&e| self.uf.find(self.edges[e as usize].a))
            .collect();
        roots.sort_unstable();
        roots.dedup();
        for &e in &hit {
            self.edges[e as usize].active = false;
        }
        let mut report = SplitReport {
            edges_removed: hit.len(),
            ..SplitReport::default()
        };
        for root in roots {
            let old = OneId(self.oneid_of[root as usize]);
            report.split.push(old);
            let parts = self.recompute(root, old);
            report
                .groups
                .push((old, parts.iter().map(|p| p.oneid).collect()));
            report.parts.extend(parts);
        }
        report.not_split_back.insert(
            "identity".into(),
            serde_json::json!("the merge history keeps the merges; the split is in the audit log"),
        );
        self.push_audit(
            "split",
            actor,
            reason,
            serde_json::json!({
                "evidence": evidence,
                "split": report.split,
                "parts": report.parts.iter().map(|p| p.oneid).collect::<Vec<_>>(),
            }),
        );
        Ok(report)
    }

    /// The active evidence edges of the named records.
    fn evidence_edges(&self, evidence: &[String]) -> Vec<u32> {
        let names: BTreeSet<&str> = evidence.iter().map(String::as_str).collect();
        (0..self.edges.len() as u32)
            .filter(|&e| {
                let edge = &self.edges[e as usize];
                edge.active && names.contains(self.records.id(edge.record))
            })
            .collect()
    }

    /// The persons the named records' active evidence joins now, with the record naming each
    /// (what a split of that evidence would split). Changes nothing.
    pub(crate) fn evidence_persons(&self, evidence: &[String]) -> Vec<(String, OneId)> {
        let mut out: Vec<(String, OneId)> = self
            .evidence_edges(evidence)
            .into_iter()
            .map(|e| {
                let edge = &self.edges[e as usize];
                (
                    self.records.id(edge.record).to_owned(),
                    self.person_of(edge.a),
                )
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Rebuild the person at `root` (OneID `old`) from its active edges.
    fn recompute(&mut self, root: u32, old: OneId) -> Vec<SplitPart> {
        let mut members = self.uf.members(root);
        members.sort_unstable();
        self.counts[old.0 as usize].clear();
        for &n in &members {
            self.oneid_of[n as usize] = 0;
        }
        self.uf.reset(&members);
        for &n in &members {
            let nbrs: Vec<u32> = self.edges_of(n).map(|(_, m)| m).collect();
            for m in nbrs {
                let (rn, rm) = (self.uf.find_mut(n), self.uf.find_mut(m));
                if rn != rm {
                    self.uf.union_roots(rn, rm);
                }
            }
        }
        let mut parts: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for &n in &members {
            parts.entry(self.uf.find(n)).or_default().push(n);
        }
        // Parts in the order of their first identifier, so numbering is deterministic.
        let mut parts: Vec<(u32, Vec<u32>)> = parts.into_iter().collect();
        parts.sort_by_key(|(_, m)| m[0]);
        // Founders are read before any OneID is reassigned: a reassignment changes `canonical`.
        let founders: Vec<Vec<u64>> = parts
            .iter()
            .map(|(_, nodes)| {
                let mut f: Vec<u64> = nodes
                    .iter()
                    .map(|&n| self.founded[n as usize])
                    .filter(|&o| o != 0 && self.canonical(OneId(o)) == Some(old))
                    .collect();
                f.sort_unstable();
                f
            })
            .collect();
        let mut out = Vec::new();
        for ((proot, nodes), founders) in parts.into_iter().zip(founders) {
            let (oneid, created) = match founders.first() {
                Some(&o) => (o, false),
                None => {
                    let o = self.root_of.len() as u64;
                    self.root_of.push(NONE);
                    self.absorbed_into.push(0);
                    self.origin.push(nodes[0]);
                    self.counts.push(super::Counts::new());
                    self.founded[nodes[0] as usize] = o;
                    (o, true)
                }
            };
            for &f in founders.iter().skip(1) {
                self.absorbed_into[f as usize] = oneid;
                self.root_of[f as usize] = NONE;
            }
            self.absorbed_into[oneid as usize] = 0;
            self.root_of[oneid as usize] = proot;
            self.oneid_of[proot as usize] = oneid;
            let mut counts = super::Counts::new();
            for &n in &nodes {
                super::add_counts(&mut counts, self.node_cap(n).as_slice());
            }
            self.counts[oneid as usize] = counts;
            out.push(SplitPart {
                oneid: OneId(oneid),
                created,
                identifiers: nodes.iter().map(|&n| self.ident(n)).collect(),
            });
        }
        out
    }
}
