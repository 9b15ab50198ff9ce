//! Compact storage for the graph's strings: identifier kinds as small indexes, each identifier
//! value stored once in one byte arena with a hash table of node numbers over it, and record ids
//! in another arena. At 10M rows this is what keeps the graph within the memory of a plain
//! igraph graph: no `String` (24 bytes plus a heap block) per identifier or record.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHasher};

use super::dedupe::by_bucket;
use super::{FxMap, IdentityRules, NONE};
use crate::ids::{IdKind, Identifier};

/// What the rules say about one kind, looked up by kind index on every link.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KindProps {
    /// Links to other identifiers (not in `non_linking_kinds`).
    pub(super) links: bool,
    /// Per-person cap.
    pub(super) cap: Option<u32>,
    /// Counted per source.
    pub(super) scoped: bool,
    /// Position in the priority order.
    pub(super) rank: usize,
    /// Some blocklist entry or pattern could apply: only then is the (costly) check run.
    pub(super) blockable: bool,
}

/// The kinds seen so far, as indexes (built-in kinds first, in [`IdKind::BUILT_IN`] order).
#[derive(Debug, Clone)]
pub(crate) struct Kinds {
    list: Vec<IdKind>,
    custom: FxMap<String, u16>,
    props: Vec<KindProps>,
}

impl Kinds {
    pub(crate) fn new(rules: &IdentityRules) -> Kinds {
        let mut k = Kinds {
            list: IdKind::BUILT_IN.to_vec(),
            custom: FxMap::default(),
            props: Vec::new(),
        };
        k.set_rules(rules);
        k
    }

    fn props_of(kind: &IdKind, rules: &IdentityRules) -> KindProps {
        KindProps {
            links: rules.links(kind),
            cap: rules.cap(kind),
            scoped: rules.per_source_caps.contains(kind),
            rank: rules.rank(kind),
            blockable: rules.blocklist.iter().any(|b| b.kind() == kind)
                || rules
                    .block_patterns
                    .iter()
                    .any(|p| p.kind.as_ref().is_none_or(|k| k == kind)),
        }
    }

    pub(crate) fn set_rules(&mut self, rules: &IdentityRules) {
        self.props = self
            .list
            .iter()
            .map(|k| Kinds::props_of(k, rules))
            .collect();
    }

    /// The index of a kind already seen.
    pub(crate) fn index(&self, kind: &IdKind) -> Option<u16> {
        Some(match kind {
            IdKind::Phone => 0,
            IdKind::Email => 1,
            IdKind::DeviceId => 2,
            IdKind::OpenId => 3,
            IdKind::UnionId => 4,
            IdKind::MemberNo => 5,
            IdKind::PlatformUserId => 6,
            IdKind::Custom(name) => return self.custom.get(name.as_str()).copied(),
        })
    }

    /// The index of a kind, adding it if new.
    pub(crate) fn intern(&mut self, kind: &IdKind, rules: &IdentityRules) -> u16 {
        if let Some(i) = self.index(kind) {
            return i;
        }
        let i = u16::try_from(self.list.len()).expect("fewer than 65,536 identifier kinds");
        if let IdKind::Custom(name) = kind {
            self.custom.insert(name.clone(), i);
        }
        self.list.push(kind.clone());
        self.props.push(Kinds::props_of(kind, rules));
        i
    }

    pub(crate) fn kind(&self, i: u16) -> &IdKind {
        &self.list[i as usize]
    }

    pub(crate) fn props(&self, i: u16) -> KindProps {
        self.props[i as usize]
    }
}

/// Hash of a normalized value alone (the batch path hashes values on another thread, before
/// kinds have their indexes).
pub(crate) fn hash_value(value: &str) -> u64 {
    let mut h: FxHasher = FxBuildHasher.build_hasher();
    h.write(value.as_bytes());
    h.finish()
}

/// The value hash combined with the kind index, folded to the 32 bits the table keeps next to
/// each node so that growing it never reads the arena.
#[inline]
pub(crate) fn with_kind(kind: u16, value_hash: u64) -> u32 {
    (with_kind_wide(kind, value_hash) >> 32) as u32
}

/// All 64 bits of which [`with_kind`] keeps the top 32 (the batch path partitions on them).
#[inline]
pub(crate) fn with_kind_wide(kind: u16, value_hash: u64) -> u64 {
    (value_hash ^ u64::from(kind)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Hash of an identifier (kind index and normalized value).
pub(crate) fn hash_ident(kind: u16, value: &str) -> u32 {
    with_kind(kind, hash_value(value))
}

/// The full-width hash the table probes with, rebuilt from the stored 32 bits.
#[inline]
fn wide(h: u32) -> u64 {
    u64::from(h).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(h)
}

/// Identifier nodes: per node its kind index and value (a span of the arena), and the index
/// from identifier to node.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    arena: String,
    /// Per node: `start << 16 | len` in the arena (a value is at most 256 bytes).
    span: Vec<u64>,
    kind: Vec<u16>,
    table: HashTable<(u32, u32)>,
    /// Nodes pushed by the batch path and not yet in `table`, with their hashes: the batch
    /// finds its own nodes without the table, and indexes them all at its end.
    unindexed: Vec<(u32, u32)>,
}

impl Interner {
    pub(crate) fn len(&self) -> usize {
        self.span.len()
    }

    pub(crate) fn reserve(&mut self, nodes: usize) {
        self.span.reserve(nodes);
        self.kind.reserve(nodes);
        self.table.reserve(nodes, |&(_, h)| wide(h));
    }

    pub(crate) fn value(&self, n: u32) -> &str {
        let s = self.span[n as usize];
        let start = (s >> 16) as usize;
        &self.arena[start..start + (s & 0xffff) as usize]
    }

    pub(crate) fn kind_ix(&self, n: u32) -> u16 {
        self.kind[n as usize]
    }

    /// The node of an identifier, given its hash from [`hash_ident`].
    pub(crate) fn find(&self, kind: u16, value: &str, hash: u32) -> Option<u32> {
        debug_assert!(
            self.unindexed.is_empty(),
            "a lookup while a batch's nodes are not indexed"
        );
        self.find_indexed(kind, value, hash)
    }

    /// [`Interner::find`] among the indexed nodes only: during a batch, the nodes it made
    /// itself are known to it without the table.
    pub(crate) fn find_indexed(&self, kind: u16, value: &str, hash: u32) -> Option<u32> {
        self.table
            .find(wide(hash), |&(n, h)| {
                h == hash && self.kind[n as usize] == kind && self.value(n) == value
            })
            .map(|&(n, _)| n)
    }

    /// Add a new identifier (the caller checked it is absent) as node `len()`.
    pub(crate) fn push(&mut self, kind: u16, value: &str, hash: u32) -> u32 {
        let n = self.append(kind, value);
        self.table
            .insert_unique(wide(hash), (n, hash), |&(_, h)| wide(h));
        n
    }

    /// [`Interner::push`] without the table: [`Interner::index_pending`] must run before the
    /// next lookup.
    pub(crate) fn push_unindexed(&mut self, kind: u16, value: &str, hash: u32) -> u32 {
        let n = self.append(kind, value);
        self.unindexed.push((n, hash));
        n
    }

    /// Node `len()` for an identifier, outside the table.
    fn append(&mut self, kind: u16, value: &str) -> u32 {
        let n = u32::try_from(self.span.len())
            .ok()
            .filter(|&n| n != NONE)
            .expect("fewer than 2^32 - 1 identifiers");
        let span = self.store(value);
        self.span.push(span);
        self.kind.push(kind);
        n
    }

    /// Put the nodes pushed unindexed into the table. Inserted one by one in node order, each
    /// lands at a random place of a table far larger than the cache; inserted in the order of
    /// their place in the table (the probe starts at the low bits of the hash), neighbours
    /// follow each other. The order changes only the speed: every node is found either way.
    pub(crate) fn index_pending(&mut self) {
        let pending = std::mem::take(&mut self.unindexed);
        self.table.reserve(pending.len(), |&(_, h)| wide(h));
        // The table's buckets: a power of two, of which 7/8 are usable.
        let buckets = (self.table.capacity() / 7 * 8).next_power_of_two().max(1) as u64;
        // A counting sort on the top 12 bits of the place is enough: each slice then covers
        // a few thousand neighbouring buckets.
        let shift = buckets.trailing_zeros().saturating_sub(12);
        let slice = |h: u32| ((wide(h) & (buckets - 1)) >> shift) as usize;
        let (_, sorted) = by_bucket((buckets >> shift) as usize, || {
            pending.iter().map(|&(n, h)| (slice(h), (n, h)))
        });
        drop(pending);
        for (n, h) in sorted {
            self.table.insert_unique(wide(h), (n, h), |&(_, h)| wide(h));
        }
    }

    fn store(&mut self, value: &str) -> u64 {
        debug_assert!(
            value.len() <= 0xffff,
            "normalized values are at most 256 bytes"
        );
        let start = self.arena.len() as u64;
        self.arena.push_str(value);
        start << 16 | value.len() as u64
    }

    /// Give node `n` another identifier (erasure): the old one stops resolving.
    pub(crate) fn rename(&mut self, n: u32, kind: u16, value: &str) {
        let old = hash_ident(self.kind[n as usize], self.value(n));
        if let Ok(e) = self.table.find_entry(wide(old), |&(m, _)| m == n) {
            e.remove();
        }
        self.span[n as usize] = self.store(value);
        self.kind[n as usize] = kind;
        let h = hash_ident(kind, value);
        self.table.insert_unique(wide(h), (n, h), |&(_, h)| wide(h));
    }
}

/// Record metadata in columns: ids in one arena, source index, time; manual merges (rare)
/// keep `(actor, reason)` on the side.
#[derive(Debug, Clone, Default)]
pub(crate) struct Records {
    ids: String,
    ends: Vec<u64>,
    source: Vec<u32>,
    ts: Vec<i64>,
    manual: FxMap<u32, (String, String)>,
}

impl Records {
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(crate) fn reserve(&mut self, records: usize) {
        self.ends.reserve(records);
        self.source.reserve(records);
        self.ts.reserve(records);
    }

    pub(crate) fn push(
        &mut self,
        id: &str,
        source: u32,
        ts: i64,
        manual: Option<(String, String)>,
    ) -> u32 {
        let r = u32::try_from(self.ends.len()).expect("fewer than 2^32 records");
        self.ids.push_str(id);
        self.ends.push(self.ids.len() as u64);
        self.source.push(source);
        self.ts.push(ts);
        if let Some(m) = manual {
            self.manual.insert(r, m);
        }
        r
    }

    pub(crate) fn id(&self, r: u32) -> &str {
        let r = r as usize;
        let start = if r == 0 { 0 } else { self.ends[r - 1] as usize };
        &self.ids[start..self.ends[r] as usize]
    }

    pub(crate) fn source(&self, r: u32) -> u32 {
        self.source[r as usize]
    }

    pub(crate) fn ts(&self, r: u32) -> i64 {
        self.ts[r as usize]
    }

    pub(crate) fn manual(&self, r: u32) -> Option<&(String, String)> {
        self.manual.get(&r)
    }

    /// Give the records `rename` returns a new id for that id (the arena is rebuilt once).
    /// The renamed records, as (old id, new id).
    pub(crate) fn rename(
        &mut self,
        mut rename: impl FnMut(u32, &str) -> Option<String>,
    ) -> Vec<(String, String)> {
        let renamed: Vec<(u32, String, String)> = (0..self.len() as u32)
            .filter_map(|r| {
                let old = self.id(r);
                rename(r, old).map(|new| (r, old.to_owned(), new))
            })
            .collect();
        if renamed.is_empty() {
            return Vec::new();
        }
        let mut ids = String::with_capacity(self.ids.len());
        let mut ends = Vec::with_capacity(self.ends.len());
        let mut next = renamed.iter().peekable();
        for r in 0..self.len() as u32 {
            match next.peek() {
                Some((n, _, new)) if *n == r => {
                    ids.push_str(new);
                    next.next();
                }
                _ => ids.push_str(self.id(r)),
            }
            ends.push(ids.len() as u64);
        }
        self.ids = ids;
        self.ends = ends;
        renamed.into_iter().map(|(_, o, n)| (o, n)).collect()
    }
}

/// An identifier rebuilt from its stored parts.
pub(crate) fn ident(kinds: &Kinds, nodes: &Interner, n: u32) -> Identifier {
    Identifier::from_normalized(
        kinds.kind(nodes.kind_ix(n)).clone(),
        nodes.value(n).to_owned(),
    )
}
