//! The identity graph's side of the person contract ([`PersonState`]). The graph itself decides
//! merges (a record's links, an operator's `merge`) and splits (`split`), before the engine's
//! flows run; here it only forgets an erased person's identifiers and checks its invariants.

use super::IdentityGraph;
use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, PersonState, Persons, SplitStep};
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

    /// Every identifier of the person becomes a tombstone that names no one, and the records
    /// of the person's events lose their ids (event keys).
    fn erase(&mut self, receipts: &Receipts, step: &EraseStep<'_>) {
        self.forget_identifiers(step.person);
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
