//! The lifecycle's side of the person contract ([`PersonState`]): registration, first activity
//! and active periods follow merges and come back on splits.

use super::engine::{History, LifecycleState};
use crate::ids::OneId;
use crate::person::{unmerge, EraseStep, MergeStep, PersonState, Persons, SplitStep};

impl PersonState for LifecycleState {
    const MODULE: &'static str = "lifecycle";
    type Reads<'r> = ();

    /// The earliest registration and first activity, the union of active periods.
    fn merge(&mut self, (): (), step: &MergeStep) -> Option<serde_json::Value> {
        let gone = self.people.remove(&step.absorbed)?;
        let s = self.people.entry(step.survivor).or_default();
        let before = s.clone();
        s.absorb(&gone);
        let report = serde_json::json!({
            "absorbed": step.absorbed,
            "active_periods": gone.active.len(),
        });
        self.merged.put(step, (before, gone));
        Some(report)
    }

    /// The part gets its history back; the survivor keeps its own and the periods first
    /// active after the merge.
    fn split(&mut self, (): (), step: &SplitStep<'_>) -> Option<serde_json::Value> {
        for u in self.merged.take_undone(step) {
            let (before, moved) = u.data;
            if let Some(h) = self.people.get_mut(&u.holder) {
                let mut merged = before.clone();
                merged.absorb(&moved);
                h.registered_ms =
                    unmerge(h.registered_ms, before.registered_ms, &merged.registered_ms);
                h.first_activity_ms = unmerge(
                    h.first_activity_ms,
                    before.first_activity_ms,
                    &merged.first_activity_ms,
                );
                let since: Vec<i64> = h.active.difference(&merged.active).copied().collect();
                h.active = before.active;
                h.active.extend(since);
                if *h == History::default() {
                    self.people.remove(&u.holder);
                }
            }
            match self.people.get_mut(&u.target) {
                Some(t) => t.absorb(&moved),
                None => {
                    if moved != History::default() {
                        self.people.insert(u.target, moved);
                    }
                }
            }
        }
        None
    }

    fn erase(&mut self, (): (), step: &EraseStep<'_>) {
        for o in step.oneids {
            self.people.remove(o);
        }
        self.merged.forget(step);
    }

    fn check_invariants(&self, (): (), persons: &Persons<'_>) -> Vec<String> {
        let mut bad: Vec<String> = self
            .people
            .keys()
            .filter(|o| !persons.is_live(**o))
            .map(|o| format!("lifecycle: history held for {o}, which is not a live person"))
            .collect();
        bad.extend(self.merged.check(Self::MODULE, persons));
        bad
    }

    fn holdings(&self, (): (), _: &Persons<'_>, person: OneId) -> serde_json::Value {
        serde_json::to_value(self.people.get(&person)).unwrap_or_default()
    }
}
