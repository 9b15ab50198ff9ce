//! The dense user index: every [`OneId`] the engine has seen gets a `u32` on first sight, used by
//! bitmaps and arrays (ARCHITECTURE: users are dense `u32` inside the engine).
//!
//! Indexes are never reused. A person absorbed by a merge keeps its index but leaves the set of
//! live users, so that "every user" (the universe of `NOT`) holds live persons only.

use roaring::RoaringBitmap;
use serde::{Deserialize, Serialize};

use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, Persons, SplitStep};

/// OneID ↔ dense `u32`, plus the set of live users.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "Wire", into = "Wire")]
pub struct UserIndex {
    by_dense: Vec<OneId>,
    /// Sharded: a million members' table would otherwise double in one insert.
    to_dense: crate::sharded::ShardedMap<OneId, u32>,
    live: RoaringBitmap,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    oneids: Vec<OneId>,
    retired: Vec<u32>,
}

impl From<Wire> for UserIndex {
    fn from(w: Wire) -> Self {
        let mut u = UserIndex::default();
        for o in w.oneids {
            u.dense_or_insert(o);
        }
        for r in w.retired {
            u.live.remove(r);
        }
        u
    }
}

impl From<UserIndex> for Wire {
    fn from(u: UserIndex) -> Self {
        let all = RoaringBitmap::from_iter(0..u.by_dense.len() as u32);
        Wire {
            retired: (all - &u.live).iter().collect(),
            oneids: u.by_dense,
        }
    }
}

impl PartialEq for UserIndex {
    fn eq(&self, o: &Self) -> bool {
        self.by_dense == o.by_dense && self.live == o.live
    }
}

impl UserIndex {
    /// The dense index of `oneid`, assigning the next one on first sight.
    pub fn dense_or_insert(&mut self, oneid: OneId) -> u32 {
        if let Some(d) = self.to_dense.get(&oneid) {
            return *d;
        }
        let d = u32::try_from(self.by_dense.len())
            .expect("fewer than 2^32 persons: the dense index is u32 by design");
        self.by_dense.push(oneid);
        self.to_dense.insert(oneid, d);
        self.live.insert(d);
        d
    }

    /// The dense index of a OneID seen before.
    pub fn dense(&self, oneid: OneId) -> Option<u32> {
        self.to_dense.get(&oneid).copied()
    }

    /// The dense index of `oneid` when it is a live user (not absorbed by a merge, not
    /// erased).
    pub fn live_dense(&self, oneid: OneId) -> Option<u32> {
        self.dense(oneid).filter(|d| self.live.contains(*d))
    }

    /// The OneID of a dense index.
    pub fn oneid(&self, dense: u32) -> Option<OneId> {
        self.by_dense.get(dense as usize).copied()
    }

    /// Live users (not absorbed by a merge).
    pub fn live(&self) -> &RoaringBitmap {
        &self.live
    }

    /// Mark a user as absorbed: it stays mapped but is no longer live.
    pub fn retire(&mut self, dense: u32) {
        self.live.remove(dense);
    }

    /// Number of users ever seen.
    pub fn len(&self) -> usize {
        self.by_dense.len()
    }

    /// Whether no user was ever seen.
    pub fn is_empty(&self) -> bool {
        self.by_dense.is_empty()
    }

    /// OneIDs of a bitmap of dense indexes, in dense order.
    pub fn oneids(&self, set: &RoaringBitmap) -> Vec<OneId> {
        set.iter().filter_map(|d| self.oneid(d)).collect()
    }
}

/// The dense index's side of the person contract: who is live.
impl crate::person::PersonState for UserIndex {
    const MODULE: &'static str = "users";
    type Reads<'r> = ();

    /// The survivor is numbered (if new); the absorbed person leaves the live users.
    fn merge(&mut self, (): (), step: &MergeStep) -> Option<serde_json::Value> {
        self.dense_or_insert(step.survivor);
        if let Some(d) = self.dense(step.absorbed) {
            self.retire(d);
        }
        None
    }

    /// Every part is live again: under its old index, or a new one for a new OneID.
    fn split(&mut self, (): (), step: &SplitStep<'_>) -> Option<serde_json::Value> {
        for &p in step.parts {
            let d = self.dense_or_insert(p);
            self.live.insert(d);
        }
        None
    }

    /// The tombstone leaves the live users: no audience or table returns it again.
    fn erase(&mut self, (): (), step: &EraseStep<'_>) {
        for &o in step.oneids {
            if let Some(d) = self.dense(o) {
                self.retire(d);
            }
        }
    }

    /// Exactly the live, not erased persons are live users.
    fn check_invariants(&self, (): (), persons: &Persons<'_>) -> Vec<String> {
        let mut bad = Vec::new();
        if self.to_dense.len() != self.by_dense.len() {
            bad.push("users: the index maps fewer OneIDs than it numbered".to_owned());
        }
        for (d, o) in self.by_dense.iter().enumerate() {
            let (live, should) = (self.live.contains(d as u32), persons.is_live(*o));
            if live != should {
                bad.push(format!(
                    "users: {o} (index {d}) is {} but {} a live person",
                    if live { "live" } else { "retired" },
                    if should { "is" } else { "is not" }
                ));
            }
        }
        bad
    }

    fn holdings(&self, (): (), _: &Persons<'_>, person: OneId) -> serde_json::Value {
        serde_json::json!(self.dense(person).map(|d| self.live.contains(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_dense_indexes_and_serde() {
        let mut u = UserIndex::default();
        assert_eq!(u.dense_or_insert(OneId(42)), 0);
        assert_eq!(u.dense_or_insert(OneId(7)), 1);
        assert_eq!(u.dense_or_insert(OneId(42)), 0);
        u.retire(1);
        assert_eq!(u.live().len(), 1);
        let back: UserIndex = serde_json::from_str(&serde_json::to_string(&u).unwrap()).unwrap();
        assert_eq!(back, u);
        assert_eq!(back.dense(OneId(7)), Some(1));
        assert_eq!(back.oneid(0), Some(OneId(42)));
    }
}
