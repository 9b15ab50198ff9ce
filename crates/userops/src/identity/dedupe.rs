//! Numbering the distinct keys of a column in order of first appearance, for the batch path.
//!
//! Why not a hash map: at 10M rows a map of record ids (or identifiers) is far larger than the
//! cache, so every row pays several cache and TLB misses, and a plain two-map program spends
//! most of its time on this alone (`benches/examples/identity_floor.rs`; figures in
//! benches/README.md, "OneID"). Here the rows are
//! first scattered into partitions by the top bits of their hash — a streaming pass, with each
//! key's bytes copied next to its hash while the column is read in order — and each partition
//! is then deduplicated with a small table that stays in the cache. Numbering by first
//! appearance comes from a bitmap of first rows and its rank, which is small enough to stay
//! cached too. The answer is exactly what a map filled in row order would give.

use super::NONE;

/// Bytes of a key kept inline next to its hash (a phone number fits); a longer key is compared
/// through `key` again when the inline part matches.
const INLINE: usize = 13;

/// A key of one row: a small tag (kept apart from the bytes, e.g. an identifier kind) and bytes.
pub(crate) type Key<'a> = (u16, &'a [u8]);

/// One row's key, scattered into its partition: 24 bytes.
#[derive(Clone, Copy)]
struct Entry {
    /// Bits 16..48 of the key's hash (the top bits chose the partition).
    hash: u32,
    row: u32,
    tag: u16,
    len: u8,
    bytes: [u8; INLINE],
}

/// The distinct keys of a column, numbered in order of first appearance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FirstSeen {
    /// Per row: the number of its key, or `NONE` for a row without a key.
    pub(super) ids: Vec<u32>,
    /// Per key number: the first row holding it.
    pub(super) firsts: Vec<u32>,
}

/// Number the keys of rows `0..n`: `key(row)` is the row's key (`None` for a row left out),
/// `hash(row)` its hash (any 64-bit hash of the key: equal keys must hash equal; it is asked
/// twice per row). Rows with equal tag and bytes get the same number; numbers follow the first
/// row of each key.
pub(crate) fn first_seen<'a>(
    n: usize,
    hash: impl Fn(usize) -> u64,
    key: impl Fn(usize) -> Option<Key<'a>>,
) -> FirstSeen {
    assert!(
        u32::try_from(n).is_ok_and(|n| n != NONE),
        "fewer than 2^32 - 1 rows"
    );
    // At most 512 partitions: the scatter writes to one place per partition at a time, and
    // many more overrun the TLB, many fewer make partitions too large (figures: benches/README.md,
    // "OneID"). A partition of ≈ 20k rows
    // at 10M still keeps its table (2 × 4 bytes a row) and entries in a 1 MB L2.
    let bits = (usize::BITS - (n >> 12).leading_zeros()).min(9);
    let part = |h: u64| {
        if bits == 0 {
            0
        } else {
            (h >> (64 - bits)) as usize
        }
    };
    let parts = 1usize << bits;

    // Pass 1: partition sizes. Pass 2: scatter (rows keep their order inside a partition).
    let mut start = vec![0u32; parts + 1];
    for row in 0..n {
        start[part(hash(row)) + 1] += 1;
    }
    for p in 0..parts {
        start[p + 1] += start[p];
    }
    let mut fill = start.clone();
    let blank = Entry {
        hash: 0,
        row: NONE,
        tag: 0,
        len: 0,
        bytes: [0; INLINE],
    };
    let mut entries = vec![blank; n];
    for row in 0..n {
        let Some((tag, bytes)) = key(row) else {
            continue;
        };
        let h = hash(row);
        let mut e = Entry {
            hash: (h >> 16) as u32,
            row: row as u32,
            tag,
            len: bytes.len().min(u8::MAX as usize) as u8,
            bytes: [0; INLINE],
        };
        let l = bytes.len().min(INLINE);
        e.bytes[..l].copy_from_slice(&bytes[..l]);
        let p = part(h);
        entries[fill[p] as usize] = e;
        fill[p] += 1;
    }

    // Per partition: an open-addressing table of entry indexes; a key's first entry is the one
    // in the table. Meanwhile `ids[row]` holds the first row of the row's key.
    let same = |a: &Entry, b: &Entry| {
        a.hash == b.hash
            && a.tag == b.tag
            && a.len == b.len
            && a.bytes == b.bytes
            && (usize::from(a.len) < INLINE
                || key(a.row as usize).map(|k| k.1) == key(b.row as usize).map(|k| k.1))
    };
    let mut ids = vec![NONE; n];
    let mut is_first = vec![0u64; n.div_ceil(64)];
    let mut table: Vec<u32> = Vec::new();
    for p in 0..parts {
        let (lo, hi) = (start[p] as usize, fill[p] as usize);
        let cap = ((hi - lo) * 2).next_power_of_two().max(16);
        table.clear();
        table.resize(cap, NONE);
        let mask = cap - 1;
        for i in lo..hi {
            let e = &entries[i];
            let mut pos = e.hash as usize & mask;
            let first = loop {
                let t = table[pos];
                if t == NONE {
                    table[pos] = i as u32;
                    is_first[e.row as usize / 64] |= 1 << (e.row % 64);
                    break e.row;
                }
                let o = &entries[t as usize];
                if same(o, e) {
                    break o.row;
                }
                pos = (pos + 1) & mask;
            };
            ids[e.row as usize] = first;
        }
    }
    drop(table);
    drop(entries);

    // A key's number is the rank of its first row among all first rows: one pass in row order,
    // over a bitmap small enough to stay cached.
    let mut before = Vec::with_capacity(is_first.len());
    let mut total = 0u32;
    for w in &is_first {
        before.push(total);
        total += w.count_ones();
    }
    let mut firsts = Vec::with_capacity(total as usize);
    for (row, id) in ids.iter_mut().enumerate() {
        let first = *id;
        if first == NONE {
            continue;
        }
        let w = first as usize / 64;
        *id = before[w] + (is_first[w] & ((1u64 << (first % 64)) - 1)).count_ones();
        if first == row as u32 {
            firsts.push(first);
        }
    }
    FirstSeen { ids, firsts }
}

/// A stable counting sort: the values of `items()` (each with its bucket, `< buckets`) in
/// bucket order, and per bucket the start of its run (`starts[buckets]` is the number of
/// items). `items` is called twice, to count and to place.
pub(crate) fn by_bucket<T: Copy + Default, I: Iterator<Item = (usize, T)>>(
    buckets: usize,
    items: impl Fn() -> I,
) -> (Vec<u32>, Vec<T>) {
    let mut starts = vec![0u32; buckets + 1];
    for (b, _) in items() {
        starts[b + 1] += 1;
    }
    for b in 0..buckets {
        starts[b + 1] += starts[b];
    }
    let mut fill = starts[..buckets].to_vec();
    let mut sorted = vec![T::default(); starts[buckets] as usize];
    for (b, v) in items() {
        sorted[fill[b] as usize] = v;
        fill[b] += 1;
    }
    (starts, sorted)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rustc_hash::FxHashMap;

    use super::*;

    /// What a map filled in row order gives.
    fn reference(keys: &[Option<(u16, Vec<u8>)>]) -> FirstSeen {
        let mut map: FxHashMap<&(u16, Vec<u8>), u32> = FxHashMap::default();
        let mut out = FirstSeen::default();
        for (row, k) in keys.iter().enumerate() {
            let id = match k {
                None => NONE,
                Some(k) => *map.entry(k).or_insert_with(|| {
                    out.firsts.push(row as u32);
                    out.firsts.len() as u32 - 1
                }),
            };
            out.ids.push(id);
        }
        out
    }

    fn run(keys: &[Option<(u16, Vec<u8>)>], hash: impl Fn(&[u8], u16) -> u64) -> FirstSeen {
        first_seen(
            keys.len(),
            |i| keys[i].as_ref().map_or(0, |(t, b)| hash(b, *t)),
            |i| keys[i].as_ref().map(|(t, b)| (*t, b.as_slice())),
        )
    }

    fn fx(bytes: &[u8], tag: u16) -> u64 {
        super::super::intern::hash_value(std::str::from_utf8(bytes).unwrap_or(""))
            .wrapping_add(u64::from(tag))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    #[test]
    fn numbers_by_first_appearance() {
        let k = |t: u16, s: &str| Some((t, s.as_bytes().to_vec()));
        let keys = vec![k(0, "b"), k(0, "a"), None, k(0, "b"), k(1, "b"), k(0, "a")];
        let got = run(&keys, fx);
        assert_eq!(got.ids, vec![0, 1, NONE, 0, 2, 1]);
        assert_eq!(got.firsts, vec![0, 1, 4]);
        assert_eq!(got, reference(&keys));
    }

    #[test]
    fn by_bucket_is_a_stable_counting_sort() {
        let items = [(2, 'a'), (0, 'b'), (2, 'c'), (0, 'd'), (1, 'e')];
        let (starts, sorted) = by_bucket(4, || items.iter().copied());
        assert_eq!(starts, vec![0, 2, 3, 5, 5]);
        assert_eq!(sorted, vec!['b', 'd', 'e', 'a', 'c']);
        let (starts, sorted) = by_bucket(3, std::iter::empty::<(usize, u32)>);
        assert_eq!((starts, sorted), (vec![0; 4], vec![]));
    }

    #[test]
    fn large_columns_use_many_partitions() {
        // 300k rows over 3 partition bits' worth of keys, long and short, some left out.
        let keys: Vec<_> = (0..300_000u32)
            .map(|i| {
                (i % 97 != 0).then(|| {
                    let v = (i * 7919) % 120_000;
                    let s = if v % 3 == 0 {
                        format!("a-rather-long-key-{v}-{}", v % 11)
                    } else {
                        format!("k{v}")
                    };
                    ((v % 4) as u16, s.into_bytes())
                })
            })
            .collect();
        assert_eq!(run(&keys, fx), reference(&keys));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        // Few distinct bytes and tags, so keys repeat; keys longer than the inline part; and a
        // hash that collides on purpose (only the length and the first byte), so equality is
        // decided by the bytes.
        #[test]
        fn agrees_with_a_map(
            keys in prop::collection::vec(
                prop::option::weighted(0.9, (0u16..3, prop::collection::vec(0u8..3, 0..24))),
                0..2_000,
            ),
            colliding in any::<bool>(),
        ) {
            let want = reference(&keys);
            let got = if colliding {
                run(&keys, |b, _| (b.len() as u64) << 60 | u64::from(b.first().copied().unwrap_or(0)))
            } else {
                run(&keys, fx)
            };
            prop_assert_eq!(got, want);
        }
    }
}
