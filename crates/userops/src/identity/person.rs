//! The identity graph's side of the person contract ([`PersonState`]). The graph itself decides
//! merges (a record's links, an operator's `merge`) and splits (`split`), before the engine's
//! flows run; here it only forgets an erased person's identifiers and checks its invariants.

use super::{IdentityGraph, ERASED_RECORD};
use crate::ids::OneId;
use crate::person::{Canonical, EraseStep, MergeStep, PersonState, Persons, SplitStep};
use crate::receipts::Receipts;

impl PersonState for IdentityGraph {
    const MODULE: &'static str = "identity";
    /// The engine's idempotency receipts: which events were the erased person's.
    type Reads<'r> = &'r Receipts;

    /// The graph joined the persons before the flow ran; the report already lists the
    /// identifiers and evidence that moved.
    fn merge(&mut self, _: &Receipts, _: &MergeStep) -> Option<serde_json::Value> {
        None
    }

    /// The graph split the persons before the flow ran.
    fn split(&mut self, _: &Receipts, _: &SplitStep<'_>) -> Option<serde_json::Value> {
        None
    }

    /// Every identifier of the person becomes a tombstone that names no one, the records of
    /// the person's events lose their ids (event keys), and the conflicts that name the person
    /// on either side are dropped (a conflict lists both OneIDs: the tombstone would be listed
    /// again).
    fn erase(&mut self, receipts: &Receipts, step: &EraseStep<'_>) {
        self.forget_identifiers(step.person);
        self.conflicts
            .retain(|c| !step.names(c.kept) && !step.names(c.other));
        self.rename_records(
            |key| {
                receipts
                    .get(key)
                    .and_then(|r| r.oneid)
                    .is_some_and(|o| step.names(o))
            },
            step.pseudonym,
        );
    }

    /// Every identifier belongs to exactly the person that lists it; erased persons hold none.
    fn check_invariants(&self, _: &Receipts, persons: &Persons<'_>) -> Vec<String> {
        let mut bad = Vec::new();
        let mut listed = 0usize;
        for (oneid, ids) in self.persons() {
            listed += ids.len();
            for id in &ids {
                if self.resolve(id) != Some(oneid) {
                    bad.push(format!(
                        "identity: {id} is listed under {oneid} but resolves elsewhere"
                    ));
                }
            }
            if persons.erased.contains(&oneid) && !ids.is_empty() {
                bad.push(format!(
                    "identity: erased person {oneid} still has identifiers"
                ));
            }
        }
        if listed != self.identifier_count() {
            bad.push(format!(
                "identity: {listed} identifiers listed under persons, {} known",
                self.identifier_count()
            ));
        }
        for c in &self.conflicts {
            for o in [c.kept, c.other] {
                if self
                    .canonical(o)
                    .is_some_and(|o| persons.erased.contains(&o))
                {
                    bad.push(format!(
                        "identity: a conflict of record {} names erased person {o}",
                        c.record
                    ));
                }
            }
        }
        for o in persons.erased {
            if self.canonical(*o) != Some(*o) {
                bad.push(format!(
                    "identity: erased person {o} is not a live tombstone"
                ));
            }
        }
        bad
    }

    fn holdings(&self, _: &Receipts, _: &Persons<'_>, person: OneId) -> serde_json::Value {
        serde_json::json!(self.identifiers(person))
    }
}

impl IdentityGraph {
    /// The persons on the other side of the conflicts raised by the records of the persons
    /// `names` accepts: each holds an identifier one of their events claimed that a rule (a
    /// cap, the junk threshold) kept apart, and may exist only through that claim (an erasure
    /// erases it too when nothing else evidences it). Sorted, live OneIDs.
    pub fn claimed_by(&self, names: impl Fn(OneId) -> bool) -> Vec<OneId> {
        let mut out: Vec<OneId> = self
            .conflicts
            .iter()
            .filter(|c| names(c.kept) && !names(c.other))
            .filter_map(|c| self.canonical(c.other))
            .filter(|o| !names(*o))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether the graph holds evidence of `person` besides the records of erased persons: an
    /// edge between its identifiers laid by a live record (an event of a person not erased,
    /// an operator merge), or a conflict that names it.
    pub(crate) fn has_own_evidence(&self, person: OneId) -> bool {
        let Some(root) = self.root(person) else {
            return false;
        };
        let live = |rec: u32| !self.records.id(rec).starts_with(ERASED_RECORD);
        self.uf.members(root).into_iter().any(|n| {
            self.edges_of(n)
                .any(|(e, _)| live(self.edges[e as usize].record))
        }) || self.conflicts.iter().any(|c| {
            [c.kept, c.other]
                .iter()
                .any(|o| self.canonical(*o) == Some(person))
        })
    }
}

impl Canonical for IdentityGraph {
    fn canonical(&self, oneid: OneId) -> Option<OneId> {
        IdentityGraph::canonical(self, oneid)
    }
}
