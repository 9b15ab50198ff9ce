//! OneID: which identifiers belong to one person.
//!
//! Identifiers seen together in one record are linked; the connected components are persons.
//! The survivor of a merge is the oldest person (the smallest OneID, since OneIDs are handed out
//! in order); absorbed OneIDs keep resolving to it through [`IdentityGraph::canonical`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{Identifier, OneId};

/// The result of linking one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkOutcome {
    /// The person the record's identifiers now belong to.
    pub oneid: OneId,
    /// Persons merged into it by this record, oldest first.
    pub absorbed: Vec<OneId>,
    /// Whether a new person was created.
    pub created: bool,
}

/// The identity graph: identifiers, persons and the merge map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityGraph {
    /// Identifier → owning person. A `Vec` of pairs on the wire because JSON keys are strings.
    #[serde(with = "pairs")]
    owner: BTreeMap<Identifier, OneId>,
    /// Person → its identifiers.
    persons: BTreeMap<OneId, BTreeSet<Identifier>>,
    /// Absorbed person → the person it was merged into (possibly absorbed itself later).
    absorbed: BTreeMap<OneId, OneId>,
    next: u64,
}

impl IdentityGraph {
    /// The person owning `id`, if known.
    pub fn resolve(&self, id: &Identifier) -> Option<OneId> {
        self.owner.get(id).copied()
    }

    /// The live person a OneID stands for now (itself, or the survivor it was merged into).
    pub fn canonical(&self, oneid: OneId) -> Option<OneId> {
        let mut cur = oneid;
        while let Some(next) = self.absorbed.get(&cur) {
            cur = *next;
        }
        self.persons.contains_key(&cur).then_some(cur)
    }

    /// The identifiers of a live person.
    pub fn identifiers(&self, oneid: OneId) -> Option<&BTreeSet<Identifier>> {
        self.persons.get(&oneid)
    }

    /// Number of live persons.
    pub fn person_count(&self) -> usize {
        self.persons.len()
    }

    /// Number of known identifiers.
    pub fn identifier_count(&self) -> usize {
        self.owner.len()
    }

    /// Link the identifiers of one record: they and every person they touch become one.
    ///
    /// # Panics
    /// Never for a non-empty `ids`; an empty record is rejected by event validation.
    pub fn link(&mut self, ids: &[Identifier]) -> LinkOutcome {
        let touched: BTreeSet<OneId> = ids.iter().filter_map(|i| self.resolve(i)).collect();
        let (oneid, created) = match touched.first() {
            Some(oldest) => (*oldest, false),
            None => (self.new_person(), true),
        };
        let absorbed: Vec<OneId> = touched.iter().skip(1).copied().collect();
        for other in &absorbed {
            let moved = self.persons.remove(other).unwrap_or_default();
            for id in &moved {
                self.owner.insert(id.clone(), oneid);
            }
            self.persons.entry(oneid).or_default().extend(moved);
            self.absorbed.insert(*other, oneid);
        }
        for id in ids {
            self.owner.insert(id.clone(), oneid);
            self.persons.entry(oneid).or_default().insert(id.clone());
        }
        LinkOutcome {
            oneid,
            absorbed,
            created,
        }
    }

    /// Live persons and their identifiers, in OneID order.
    pub fn persons(&self) -> impl Iterator<Item = (OneId, &BTreeSet<Identifier>)> {
        self.persons.iter().map(|(o, ids)| (*o, ids))
    }

    /// Forget every identifier of a live person (erasure, SPEC §9). The person stays as an
    /// empty tombstone so that what other modules hold under its OneID stays attributable (and
    /// balanced) without naming anyone. Returns the identifiers removed.
    pub(crate) fn erase(&mut self, oneid: OneId) -> Vec<Identifier> {
        let removed: Vec<Identifier> = match self.persons.get_mut(&oneid) {
            Some(ids) => std::mem::take(ids).into_iter().collect(),
            None => Vec::new(),
        };
        for id in &removed {
            self.owner.remove(id);
        }
        removed
    }

    fn new_person(&mut self) -> OneId {
        self.next += 1;
        let id = OneId(self.next);
        self.persons.insert(id, BTreeSet::new());
        id
    }
}

mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use crate::ids::{Identifier, OneId};

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<Identifier, OneId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Identifier, OneId>, D::Error> {
        let v: Vec<(Identifier, OneId)> = Vec::deserialize(d)?;
        Ok(v.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::IdKind;

    fn id(k: IdKind, v: &str) -> Identifier {
        Identifier::new(k, v).unwrap()
    }

    #[test]
    fn spec_example_three_records_one_person() {
        let mut g = IdentityGraph::default();
        let a = g.link(&[id(IdKind::Phone, "13800138000"), id(IdKind::DeviceId, "d1")]);
        let b = g.link(&[id(IdKind::Email, "b@x.com"), id(IdKind::DeviceId, "d1")]);
        let c = g.link(&[id(IdKind::Email, "b@x.com"), id(IdKind::OpenId, "o1")]);
        assert!(a.created && !b.created && !c.created);
        assert_eq!(a.oneid, c.oneid);
        assert_eq!(g.person_count(), 1);
        assert_eq!(g.identifiers(a.oneid).unwrap().len(), 4);
    }

    #[test]
    fn oldest_survives_and_absorbed_map_to_it() {
        let mut g = IdentityGraph::default();
        let p1 = g.link(&[id(IdKind::Phone, "13800138000")]).oneid;
        let p2 = g.link(&[id(IdKind::Email, "a@x.com")]).oneid;
        let out = g.link(&[
            id(IdKind::Email, "a@x.com"),
            id(IdKind::Phone, "13800138000"),
        ]);
        assert_eq!(out.oneid, p1);
        assert_eq!(out.absorbed, vec![p2]);
        assert_eq!(g.canonical(p2), Some(p1));
        assert_eq!(g.canonical(OneId(999)), None);
        let json = serde_json::to_string(&g).unwrap();
        let back: IdentityGraph = serde_json::from_str(&json).unwrap();
        assert_eq!(back, g);
    }
}
