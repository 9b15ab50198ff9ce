//! Consent's side of the person contract ([`PersonState`]): statements follow merges by the
//! rule "the latest statement wins, a withdrawal wins a tie", each part gets its own back on a
//! split, and an erased person keeps none.

use super::{ConsentRecord, PrivacyState, Statements};
use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, PersonState, Persons, SplitStep};

/// Whether `theirs` replaces `mine` in a merge: later, or as late and a withdrawal.
fn wins(theirs: &ConsentRecord, mine: Option<&ConsentRecord>) -> bool {
    mine.is_none_or(|m| {
        theirs.time > m.time || (theirs.time == m.time && !theirs.granted && m.granted)
    })
}

/// Fold `from` into `into` by the merge rule; the number of statements taken.
fn fold(into: &mut Statements, from: &Statements) -> usize {
    let mut taken = 0;
    for (channel, purposes) in from {
        let mine = into.entry(channel.clone()).or_default();
        for (purpose, rec) in purposes {
            if wins(rec, mine.get(purpose)) {
                mine.insert(purpose.clone(), rec.clone());
                taken += 1;
            }
        }
    }
    taken
}

fn get<'a>(s: &'a Statements, channel: &str, purpose: &str) -> Option<&'a ConsentRecord> {
    s.get(channel)?.get(purpose)
}

impl PersonState for PrivacyState {
    const MODULE: &'static str = "privacy";
    type Reads<'r> = ();

    fn merge(&mut self, (): (), step: &MergeStep) -> Option<serde_json::Value> {
        let theirs = self.consents.remove(&step.absorbed)?;
        let ours = self.consents.entry(step.survivor).or_default();
        let before = ours.clone();
        let taken = fold(ours, &theirs);
        let report = serde_json::json!({
            "absorbed": step.absorbed,
            "consent_statements": theirs.values().map(|p| p.len()).sum::<usize>(),
            "taken": taken,
        });
        self.merged.put(step, (before, theirs));
        Some(report)
    }

    /// Each part gets its own statements back; the survivor's statements the merge replaced
    /// come back unless a statement was made since.
    fn split(&mut self, (): (), step: &SplitStep<'_>) -> Option<serde_json::Value> {
        for u in self.merged.take_undone(step) {
            let (before, moved) = u.data;
            if let Some(h) = self.consents.get_mut(&u.holder) {
                let mut merged = before.clone();
                fold(&mut merged, &moved);
                for (channel, purposes) in &merged {
                    for (purpose, m) in purposes {
                        let Some(chan) = h.get_mut(channel) else {
                            continue;
                        };
                        if chan.get(purpose) != Some(m) {
                            continue; // restated since the merge
                        }
                        match get(&before, channel, purpose) {
                            Some(b) => {
                                chan.insert(purpose.clone(), b.clone());
                            }
                            None => {
                                chan.remove(purpose);
                            }
                        }
                    }
                }
                h.retain(|_, p| !p.is_empty());
                if h.is_empty() {
                    self.consents.remove(&u.holder);
                }
            }
            if !moved.is_empty() {
                fold(self.consents.entry(u.target).or_default(), &moved);
            }
        }
        None
    }

    fn erase(&mut self, (): (), step: &EraseStep<'_>) {
        for o in step.oneids {
            self.consents.remove(o);
        }
        self.merged.forget(step);
        self.erased.insert(step.person);
    }

    /// Consent only for live persons; the audit log numbered 1..=n.
    fn check_invariants(&self, (): (), persons: &Persons<'_>) -> Vec<String> {
        let mut bad: Vec<String> = self
            .consents
            .iter()
            .filter(|(o, s)| !persons.is_live(**o) || s.values().any(|p| p.is_empty()))
            .map(|(o, _)| format!("privacy: consent held by {o}, which is not a live person"))
            .collect();
        if let Some((i, a)) = self
            .audit
            .iter()
            .enumerate()
            .find(|(i, a)| a.seq != *i as u64 + 1)
        {
            bad.push(format!(
                "privacy: audit entry {} out of order at {}",
                a.seq,
                i + 1
            ));
        }
        bad.extend(self.merged.check(Self::MODULE, persons));
        bad
    }

    fn holdings(&self, (): (), _: &Persons<'_>, person: OneId) -> serde_json::Value {
        serde_json::json!({"consent": self.consents.get(&person), "erased": self.erased.contains(&person)})
    }
}
