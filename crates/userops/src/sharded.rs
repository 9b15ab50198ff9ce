//! A hash map that never moves many entries in one insert.
//!
//! A hash table doubles when it fills, and the insert that fills it moves every entry. At a
//! million members that one insert took 150 ms on the ledger's idempotency keys (1.8M
//! entries, each of the two online copies paying it), and the write that made it held every
//! other write as long. Split by the key's hash into [`SHARDS`] tables that double each on its
//! own, the longest insert moves a sixty-fourth of the entries; lookups pay one more hash of
//! the key (Fx: a multiply) and nothing else.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use rustc_hash::FxBuildHasher;

/// Tables per map. Their resizes are spread over the inserts (each table reaches its limit at
/// its own time), so with 64 the longest insert stays within a few milliseconds up to tens
/// of millions of entries.
pub(crate) const SHARDS: usize = 64;

/// A map from `K` to `V` in [`SHARDS`] Fx hash tables. For keys the caller chose (ids,
/// hashes of keys): Fx resists no flooding.
#[derive(Debug, Clone)]
pub(crate) struct ShardedMap<K, V> {
    shards: Box<[HashMap<K, V, FxBuildHasher>]>,
}

impl<K, V> Default for ShardedMap<K, V> {
    fn default() -> Self {
        ShardedMap {
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
        }
    }
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    /// The table of `key`. From bits 32–37 of its hash: hashbrown finds a bucket from the low
    /// bits and tags it with the top seven, which must keep varying inside one table.
    /// (`Borrow` promises a borrowed key hashes as the key.)
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        ((FxBuildHasher.hash_one(key) >> 32) as usize) % SHARDS
    }

    /// The value of `key`.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(key)].get(key)
    }

    /// Remove `key`; the value it had.
    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let s = self.shard(key);
        self.shards[s].remove(key)
    }

    /// The entry of `key`, to insert or update.
    pub(crate) fn entry(&mut self, key: K) -> std::collections::hash_map::Entry<'_, K, V> {
        let s = self.shard(&key);
        self.shards[s].entry(key)
    }

    /// Set `key` to `value`; the value it had.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let s = self.shard(&key);
        self.shards[s].insert(key, value)
    }

    /// Entries.
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(HashMap::len).sum()
    }
}

impl<K: Hash + Eq, V: PartialEq> PartialEq for ShardedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        // A key's table depends on the key alone: equal maps have equal tables.
        self.shards == other.shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_one_map() {
        let mut m = ShardedMap::default();
        let mut reference = std::collections::BTreeMap::new();
        for i in 0..20_000u64 {
            let k = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (i % 7);
            assert_eq!(m.insert(k, i), reference.insert(k, i));
        }
        *m.entry(5).or_insert(0) += 1;
        *reference.entry(5).or_insert(0) += 1;
        assert_eq!(m.len(), reference.len());
        for (k, v) in &reference {
            assert_eq!(m.get(k), Some(v));
        }
        assert_eq!(m.get(&u64::MAX), reference.get(&u64::MAX));
        assert_eq!(m.remove(&5), reference.remove(&5));
        assert_eq!(m.get(&5), None);
        let mut by_name: ShardedMap<String, u32> = ShardedMap::default();
        by_name.insert("order-1".to_owned(), 1);
        assert_eq!(by_name.get("order-1"), Some(&1));
        let copy = m.clone();
        assert!(copy == m);
        assert_eq!(m.insert(u64::MAX - 1, 7), None);
        assert!(copy != m);
    }

    /// The point of the shards: no insert moves more than a small part of the entries.
    #[test]
    fn no_table_holds_much_more_than_its_share() {
        let mut m = ShardedMap::default();
        let n = 200_000u64;
        for i in 0..n {
            m.insert(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), ());
        }
        for k in 0..n {
            m.insert(k, ());
        }
        let share = m.len() / SHARDS;
        for s in m.shards.iter() {
            assert!(
                s.len() < share * 3 / 2,
                "{} entries, share {share}",
                s.len()
            );
        }
    }
}
