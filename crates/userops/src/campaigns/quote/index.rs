//! The promotions indexed by the skus and categories they name ([`PromoIndex`]), so matching a
//! cart touches only the promotions that name one of its lines.

use std::sync::Arc;

use super::cart::{LineSet, Prepared};
use super::gate::GateRow;
use super::Search;
use crate::campaigns::promotion::{key_hash, Promotion, StackMode};

/// Identity hashing for keys that already are hashes ([`key_hash`]).
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Key hash → the keys with that hash, each with the promotions listing it (in order).
type KeyMap = std::collections::HashMap<
    u64,
    Vec<(Box<str>, Vec<u32>)>,
    std::hash::BuildHasherDefault<KeyHasher>,
>;

/// Add promotion `i` under `key`.
fn key_entry(map: &mut KeyMap, key: &str, i: u32) {
    let keys = map.entry(key_hash(key)).or_default();
    match keys.iter_mut().find(|(k, _)| **k == *key) {
        Some((_, ps)) => ps.push(i),
        None => keys.push((key.into(), vec![i])),
    }
}

/// The promotions indexed for evaluation (derived from the promotion list, rebuilt when it
/// changes): sku and category → the promotions listing it, and each promotion's stacking group
/// as a small integer. With it, matching a cart's lines touches only the promotions that name
/// one of its skus or categories.
#[derive(Debug, Default)]
pub struct PromoIndex {
    by_sku: KeyMap,
    by_category: KeyMap,
    /// The promotions' ids, in evaluation order (every quote's [`NotAppliedList`] shares it).
    pub(super) ids: Arc<[Arc<str>]>,
    /// What the gate reads of each promotion, packed.
    pub(super) rows: Vec<GateRow>,
    /// Stacking group per promotion (`u32::MAX`: exclusive).
    pub(super) group: Vec<u32>,
    pub(super) groups: usize,
    /// How many promotions the index was built for.
    pub(super) len: usize,
    /// How evaluation searches the stacking alternatives (tests compare the two).
    pub(in crate::campaigns) search: Search,
}

impl PromoIndex {
    /// Index `promos` (in evaluation order).
    pub fn build(promos: &[Promotion]) -> PromoIndex {
        let mut ix = PromoIndex {
            len: promos.len(),
            ..PromoIndex::default()
        };
        let mut names: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        for (i, p) in promos.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for s in &p.conditions.skus {
                key_entry(&mut ix.by_sku, s, i);
            }
            for c in &p.conditions.categories {
                key_entry(&mut ix.by_category, c, i);
            }
            let g = match p.stacking.mode {
                StackMode::Exclusive => u32::MAX,
                _ => {
                    let n = names.len() as u32;
                    *names.entry(p.stacking.group.as_str()).or_insert(n)
                }
            };
            ix.group.push(g);
            ix.rows.push(GateRow::of(p));
        }
        ix.groups = names.len();
        ix.ids = promos.iter().map(|p| p.id.clone()).collect();
        ix
    }

    /// Lines of the cart each promotion's include lists select, sparse: promotion `i`'s
    /// lines are `m.sets[m.slot[i] - 1]` (`slot` 0: none). Only the promotions that list a
    /// sku or category of the cart are touched.
    pub(super) fn matched(&self, c: &Prepared<'_>) -> Matched {
        let mut m = Matched {
            slot: vec![0; self.len],
            sets: Vec::new(),
        };
        for (map, keys) in [
            (&self.by_sku, &c.by_sku),
            (&self.by_category, &c.by_category),
        ] {
            for (h, k, lines) in keys {
                let Some(named) = map.get(h) else { continue };
                let Some((_, promos)) = named.iter().find(|(name, _)| **name == **k) else {
                    continue;
                };
                for &p in promos {
                    let Some(slot) = m.slot.get_mut(p as usize) else {
                        continue;
                    };
                    match *slot {
                        0 => {
                            m.sets.push(*lines);
                            *slot = m.sets.len() as u32;
                        }
                        k => m.sets[k as usize - 1].union(lines),
                    }
                }
            }
        }
        m
    }
}

/// The cart lines matched per promotion (see [`PromoIndex::matched`]).
pub(super) struct Matched {
    slot: Vec<u32>,
    sets: Vec<LineSet>,
}

impl Matched {
    pub(super) fn get(&self, i: usize) -> LineSet {
        match self.slot[i] {
            0 => LineSet::default(),
            k => self.sets[k as usize - 1],
        }
    }
}
