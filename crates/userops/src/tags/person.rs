//! The tag index's side of the person contract ([`PersonState`]): tag values and saved-audience
//! memberships follow merges and come back on splits; an erased person leaves every column.
//!
//! The index also holds columns other modules feed (attributes, aggregates, points, tiers);
//! they are the engine flow's to rewrite from those modules. Here a merged or erased person's
//! values are cleared from every column, since no dense index but a live person's may hold any.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{TagState, Value};
use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, PersonState, Persons, SplitStep};
use crate::users::UserIndex;

/// What a merge moved, kept until a split gives it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TagsMoved {
    /// The absorbed person's values of every defined tag.
    values: BTreeMap<String, Vec<Value>>,
    /// Tags the survivor had no value of and took from the absorbed person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    taken: Vec<String>,
    /// Saved audiences the absorbed person was in, and whether the survivor was too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    audiences: Vec<(String, bool)>,
}

/// What a merge did to the tags (the `tags` section of a merge report).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct MergeReport {
    /// Tags moved from the absorbed person (the survivor had no value).
    tags_moved: Vec<String>,
    /// Tags both had: the survivor's value was kept (the absorbed one comes back on a split).
    tags_conflicting: Vec<String>,
    /// Saved audiences whose membership moved to the survivor.
    audiences: Vec<String>,
}

impl PersonState for TagState {
    const MODULE: &'static str = "tags";
    type Reads<'r> = &'r UserIndex;

    fn merge(&mut self, users: &UserIndex, step: &MergeStep) -> Option<serde_json::Value> {
        let ad = users.dense(step.absorbed)?;
        let sd = users.dense(step.survivor)?;
        self.note(&[ad, sd].into_iter().collect());
        let mut report = MergeReport {
            tags_moved: Vec::new(),
            tags_conflicting: Vec::new(),
            audiences: Vec::new(),
        };
        let mut moved = TagsMoved {
            values: BTreeMap::new(),
            taken: Vec::new(),
            audiences: Vec::new(),
        };
        for def in &self.defs {
            let Some(col) = self.columns.0.get_mut(&def.name) else {
                continue;
            };
            let theirs = col.get(ad);
            if theirs.is_empty() {
                continue;
            }
            if col.get(sd).is_empty() {
                col.set(sd, &theirs);
                report.tags_moved.push(def.name.clone());
                moved.taken.push(def.name.clone());
            } else {
                report.tags_conflicting.push(def.name.clone());
            }
            moved.values.insert(def.name.clone(), theirs);
        }
        // Every column: only live persons hold values (the derived ones are rewritten for the
        // survivor by the engine's flow).
        for col in self.columns.0.values_mut() {
            col.clear(ad);
        }
        for a in self.audiences.values_mut() {
            if a.members.remove(ad) {
                let had = !a.members.insert(sd);
                report.audiences.push(a.name.clone());
                moved.audiences.push((a.name.clone(), had));
            }
        }
        if !moved.values.is_empty() || !moved.audiences.is_empty() {
            self.merged.put(step, moved);
        }
        serde_json::to_value(report).ok()
    }

    fn split(&mut self, users: &UserIndex, step: &SplitStep<'_>) -> Option<serde_json::Value> {
        let mut kept = Vec::new();
        for u in self.merged.take_undone(step) {
            let (Some(td), Some(hd)) = (users.dense(u.target), users.dense(u.holder)) else {
                continue;
            };
            self.note(&[td, hd].into_iter().collect());
            let TagsMoved {
                values,
                taken,
                audiences,
            } = u.data;
            for name in &taken {
                if let (Some(col), Some(v)) = (self.columns.0.get_mut(name), values.get(name)) {
                    if col.get(hd) == *v {
                        col.clear(hd);
                    } else {
                        kept.push(name.clone());
                    }
                }
            }
            for (name, v) in values {
                if let Some(col) = self.columns.0.get_mut(&name) {
                    if col.get(td).is_empty() {
                        col.set(td, &v);
                    }
                }
            }
            for (name, had) in audiences {
                if let Some(a) = self.audiences.get_mut(&name) {
                    a.members.insert(td);
                    if !had {
                        a.members.remove(hd);
                    }
                }
            }
        }
        kept.sort();
        kept.dedup();
        (!kept.is_empty()).then(|| {
            serde_json::json!({
                "tags_changed_since_merge": kept,
                "note": "the survivor keeps these tags as they are now; the part got its own values back"
            })
        })
    }

    fn erase(&mut self, users: &UserIndex, step: &EraseStep<'_>) {
        for o in step.oneids {
            let Some(d) = users.dense(*o) else { continue };
            self.note(&[d].into_iter().collect());
            for col in self.columns.0.values_mut() {
                col.clear(d);
            }
            for a in self.audiences.values_mut() {
                a.members.remove(d);
            }
        }
        self.merged.forget(step);
    }

    fn check_invariants(&self, users: &UserIndex, persons: &Persons<'_>) -> Vec<String> {
        let mut bad = Vec::new();
        for (name, col) in &self.columns.0 {
            let stray = col.present() - users.live();
            if let Some(d) = stray.iter().next() {
                bad.push(format!(
                    "tags: column {name:?} holds values of {} users that are not live (first: {:?})",
                    stray.len(),
                    users.oneid(d)
                ));
            }
        }
        for a in self.audiences.values() {
            let stray = &a.members - users.live();
            if !stray.is_empty() {
                bad.push(format!(
                    "tags: saved audience {:?} lists {} users that are not live",
                    a.name,
                    stray.len()
                ));
            }
        }
        for d in &self.defs {
            if !self.columns.0.contains_key(&d.name) {
                bad.push(format!("tags: tag {:?} has no column", d.name));
            }
        }
        bad.extend(self.merged.check(Self::MODULE, persons));
        bad
    }

    fn holdings(&self, users: &UserIndex, _: &Persons<'_>, person: OneId) -> serde_json::Value {
        let Some(d) = users.dense(person) else {
            return serde_json::Value::Null;
        };
        let audiences: Vec<&str> = self
            .audiences
            .values()
            .filter(|a| a.members.contains(d))
            .map(|a| a.name.as_str())
            .collect();
        serde_json::json!({"values": self.values_of(d), "audiences": audiences})
    }
}
