//! What the engine remembers of every accepted event for idempotency, kept small: it grows by
//! one entry per event for the life of the pool (10M events are 10M entries).
//!
//! An entry is keyed by a 128-bit digest of the idempotency key (the first half of its SHA-256:
//! a collision needs ~2^64 keys even when they are chosen on purpose) and holds the content
//! fingerprint, the sequence number, the person, and the event kind as a code: 48 bytes in the
//! map instead of a full [`Receipt`] and two copies of the key (~300 bytes with the heap
//! blocks). The few receipts that absorbed persons keep that list in a side map. The full
//! receipt is rebuilt on demand: the caller has the key, the kind code names the kind.

use std::collections::BTreeMap;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::command::Receipt;
use crate::ids::OneId;

/// Event kinds as they appear in receipts; the code is the index (so the order is stored).
const KINDS: &[&str] = crate::Event::KINDS;

/// A key's digest: the first 128 bits of its SHA-256.
fn digest(key: &str) -> u128 {
    let h = Sha256::digest(key.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    u128::from_be_bytes(b)
}

/// One accepted event, compact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// Content fingerprint (a replayed key with other content is refused).
    print: u64,
    seq: u64,
    /// The person, 0 for none (OneIDs start at 1).
    oneid: u64,
    /// Index into [`KINDS`], or `u8::MAX` with the name in `other_kinds`.
    kind: u8,
}

/// Idempotency keys → the first receipt, compact (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Receipts {
    seen: BTreeMap<u128, Seen>,
    /// Persons absorbed by the event, for the few events that merged persons.
    absorbed: BTreeMap<u128, Vec<OneId>>,
    /// Kind names not in [`KINDS`] (an event kind added later), by digest.
    other_kinds: BTreeMap<u128, String>,
}

/// What a lookup finds.
pub(crate) enum Lookup {
    /// The key was never accepted.
    New,
    /// Accepted with the same content fingerprint: its first receipt.
    Same(Receipt),
    /// Accepted with other content.
    Conflict,
}

impl Receipts {
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    /// The receipt first given for `key`, if it was accepted.
    pub(crate) fn get(&self, key: &str) -> Option<Receipt> {
        let d = digest(key);
        self.seen.get(&d).map(|s| self.rebuild(key, d, s))
    }

    /// Look `key` up for an event whose content fingerprint is `print`. A receipt restored
    /// from a snapshot of a build before canonical fingerprints holds the print of the event
    /// as it was given: `as_given` computes that print of this event (only when `print` does
    /// not match), so an exact resend of such an event is still the same event.
    pub(crate) fn check(&self, key: &str, print: u64, as_given: impl FnOnce() -> u64) -> Lookup {
        let d = digest(key);
        match self.seen.get(&d) {
            None => Lookup::New,
            Some(s) if s.print == print || s.print == as_given() => {
                Lookup::Same(self.rebuild(key, d, s))
            }
            Some(_) => Lookup::Conflict,
        }
    }

    /// Remember an accepted event's receipt and its content fingerprint.
    pub(crate) fn insert(&mut self, receipt: &Receipt, print: u64) {
        let d = digest(&receipt.key);
        let kind = match KINDS.iter().position(|k| *k == receipt.kind) {
            Some(i) => i as u8,
            None => {
                self.other_kinds.insert(d, receipt.kind.clone());
                u8::MAX
            }
        };
        self.seen.insert(
            d,
            Seen {
                print,
                seq: receipt.seq,
                oneid: receipt.oneid.map_or(0, |o| o.0),
                kind,
            },
        );
        if !receipt.absorbed.is_empty() {
            self.absorbed.insert(d, receipt.absorbed.clone());
        }
    }

    /// The person of every accepted event that had one, as given then (any order, repeated).
    pub(crate) fn oneids(&self) -> impl Iterator<Item = OneId> + '_ {
        self.seen
            .values()
            .filter(|s| s.oneid != 0)
            .map(|s| OneId(s.oneid))
    }

    /// Every accepted event's sequence number (any order).
    pub(crate) fn seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.seen.values().map(|s| s.seq)
    }

    fn rebuild(&self, key: &str, d: u128, s: &Seen) -> Receipt {
        let kind = match KINDS.get(s.kind as usize) {
            Some(k) => (*k).to_owned(),
            None => self.other_kinds.get(&d).cloned().unwrap_or_default(),
        };
        Receipt {
            key: key.to_owned(),
            kind,
            seq: s.seq,
            oneid: (s.oneid != 0).then_some(OneId(s.oneid)),
            absorbed: self.absorbed.get(&d).cloned().unwrap_or_default(),
            duplicate: false,
        }
    }
}

/// Serialized as a sequence of `[digest_hi, digest_lo, print, seq, oneid, kind]` (kind as a
/// name), in digest order: deterministic, and about a third of the size of full receipts.
impl Serialize for Receipts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.seen.len()))?;
        for (d, e) in &self.seen {
            let kind = match KINDS.get(e.kind as usize) {
                Some(k) => k,
                None => self.other_kinds.get(d).map_or("", String::as_str),
            };
            let absorbed = self.absorbed.get(d).map_or(&[][..], Vec::as_slice);
            seq.serialize_element(&(
                (*d >> 64) as u64,
                *d as u64,
                e.print,
                e.seq,
                e.oneid,
                kind,
                absorbed,
            ))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Receipts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Receipts;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("receipts")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Receipts, A::Error> {
                type Row = (u64, u64, u64, u64, u64, String, Vec<OneId>);
                let mut out = Receipts::default();
                while let Some((hi, lo, print, seq, oneid, kind, absorbed)) =
                    a.next_element::<Row>()?
                {
                    let d = (u128::from(hi) << 64) | u128::from(lo);
                    let code = match KINDS.iter().position(|k| *k == kind) {
                        Some(i) => i as u8,
                        None => {
                            out.other_kinds.insert(d, kind);
                            u8::MAX
                        }
                    };
                    out.seen.insert(
                        d,
                        Seen {
                            print,
                            seq,
                            oneid,
                            kind: code,
                        },
                    );
                    if !absorbed.is_empty() {
                        out.absorbed.insert(d, absorbed);
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(key: &str, kind: &str, seq: u64, absorbed: Vec<OneId>) -> Receipt {
        Receipt {
            key: key.into(),
            kind: kind.into(),
            seq,
            oneid: Some(OneId(seq + 10)),
            absorbed,
            duplicate: false,
        }
    }

    #[test]
    fn rebuilds_the_first_receipt_and_tells_conflicts() {
        let mut r = Receipts::default();
        let a = receipt("k1", "order", 1, vec![]);
        let b = receipt("k2", "identify", 2, vec![OneId(3), OneId(4)]);
        let c = receipt("k3", "some_future_kind", 3, vec![]);
        r.insert(&a, 7);
        r.insert(&b, 8);
        r.insert(&c, 9);
        assert_eq!(r.get("k1"), Some(a.clone()));
        assert_eq!(r.get("k2"), Some(b));
        assert_eq!(r.get("k3"), Some(c));
        assert_eq!(r.get("k4"), None);
        assert!(matches!(r.check("k1", 7, || 0), Lookup::Same(x) if x == a));
        assert!(matches!(r.check("k1", 6, || 0), Lookup::Conflict));
        assert!(matches!(r.check("k1", 6, || 7), Lookup::Same(x) if x == a));
        assert!(matches!(r.check("k9", 6, || 6), Lookup::New));
        let mut seqs: Vec<u64> = r.seqs().collect();
        seqs.sort_unstable();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn serde_round_trip() {
        let mut r = Receipts::default();
        r.insert(&receipt("k1", "order", 1, vec![]), 7);
        r.insert(&receipt("k2", "identify", 2, vec![OneId(5)]), 8);
        r.insert(&receipt("k3", "new_kind", 3, vec![]), 9);
        let text = serde_json::to_string(&r).unwrap();
        let back: Receipts = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}
