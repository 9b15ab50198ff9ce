//! The models' event log's side of the person contract ([`PersonState`]). Each record keeps the
//! OneID it was made under and the models read it through the identity graph, so merges and
//! splits need no change; erasure removes the person's records.

use super::commands::ModelsLog;
use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, PersonState, Persons, SplitStep};

impl PersonState for ModelsLog {
    const MODULE: &'static str = "models";
    type Reads<'r> = ();

    /// Records are read through `canonical`: the absorbed person's count for the survivor.
    fn merge(&mut self, (): (), _: &MergeStep) -> Option<serde_json::Value> {
        None
    }

    /// Records made under a OneID follow it to its part.
    fn split(&mut self, (): (), _: &SplitStep<'_>) -> Option<serde_json::Value> {
        None
    }

    fn erase(&mut self, (): (), step: &EraseStep<'_>) {
        let gone = |u: u64| step.names(OneId(u));
        self.orders.retain(|r| !gone(r.user));
        self.behaviours.retain(|r| !gone(r.user));
        self.messages.retain(|r| !gone(r.user));
    }

    /// Every record names a OneID of a live person.
    fn check_invariants(&self, (): (), persons: &Persons<'_>) -> Vec<String> {
        let users = self
            .orders
            .iter()
            .map(|r| r.user)
            .chain(self.behaviours.iter().map(|r| r.user))
            .chain(self.messages.iter().map(|r| r.user));
        let mut bad: Vec<u64> = users
            .filter(|u| {
                !persons
                    .identity
                    .canonical(OneId(*u))
                    .is_some_and(|c| persons.is_live(c))
            })
            .collect();
        bad.sort_unstable();
        bad.dedup();
        bad.into_iter()
            .take(5)
            .map(|u| format!("models: records of {u}, which names no live person"))
            .collect()
    }

    /// The records that count for the person, in log order.
    fn holdings(&self, (): (), persons: &Persons<'_>, person: OneId) -> serde_json::Value {
        let mine = |u: u64| persons.identity.canonical(OneId(u)) == Some(person);
        serde_json::json!({
            "orders": self.orders.iter().filter(|r| mine(r.user)).collect::<Vec<_>>(),
            "behaviours": self.behaviours.iter().filter(|r| mine(r.user)).collect::<Vec<_>>(),
            "messages": self.messages.iter().filter(|r| mine(r.user)).collect::<Vec<_>>(),
        })
    }
}
