//! The operation log and its idempotency keys: every write is an [`Op`] with a key and a
//! fingerprint of its content, so a replay returns the first result.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::transfer::Entry;
use super::{AccountId, Ledger, Points};
use crate::loyalty::LoyaltyError;
use crate::util::Fnv1a;

/// The kind of a keyed operation (part of its fingerprint: one key, one kind of write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpKind {
    /// An earn (posted or pending).
    Earn,
    /// A spend (earliest-expiring points first).
    Spend,
    /// A refund of an order: whole, by an amount of money or by lines.
    Refund,
    /// A conversion of points from one program into another.
    Convert,
    /// Posting a pending earn.
    Post,
    /// Voiding a pending earn.
    Void,
    /// An expiry run.
    Expire,
    /// A OneID merge: the absorbed member's accounts moved to the survivor (no key).
    Merge,
    /// A split (what a merge moved, going back).
    Split,
}

/// One write: its key, what it did and the result it returned (replayed on a duplicate key).
/// Kept compact: the ledger holds one per write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// The idempotency key (for post/void: the pending earn's key; empty for expiry runs and
    /// merges).
    pub key: Box<str>,
    /// What kind of write.
    pub kind: OpKind,
    /// Whether an earn was pending.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    /// Fingerprint of the request content.
    pub print: u64,
    /// The first transfer written (transfers of one op are contiguous).
    pub first: u64,
    /// How many transfers.
    pub count: u32,
    /// The bucket an earn filled (for post/void: the earn op).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<u32>,
    /// Points moved for the member (see [`Posting::points`]).
    pub points: Points,
    /// See [`Posting::other`].
    #[serde(default)]
    pub other: Points,
    /// The member's balance right after the write.
    #[serde(default)]
    pub balance: Points,
    /// For an earn: the explicit order it is tied to (none: its own key). For a refund: the
    /// order refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Box<str>>,
    /// Reason and actor, when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<Box<Note>>,
    /// For an earn: the money of the order it was earned on, which partial refunds are measured
    /// against. For a partial refund: the money refunded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub money: Option<Decimal>,
}

/// Free text of a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Why, as given (may be empty when `actor` is not: an op with neither has no note).
    pub reason: String,
    /// Who, as given (may be empty when `reason` is not).
    pub actor: String,
}

impl Op {
    /// Whether the key is an idempotency key of its own (post/void reuse the earn's key).
    pub(super) fn keyed(&self) -> bool {
        !self.key.is_empty() && !matches!(self.kind, OpKind::Post | OpKind::Void)
    }

    /// The reason given, or "".
    pub fn reason(&self) -> &str {
        self.note.as_ref().map_or("", |n| n.reason.as_str())
    }

    /// The actor given, or "".
    pub fn actor(&self) -> &str {
        self.note.as_ref().map_or("", |n| n.actor.as_str())
    }

    /// The result this write returned.
    pub fn posting(&self) -> Posting {
        Posting {
            key: self.key.to_string(),
            transfers: (self.first..self.first + u64::from(self.count)).collect(),
            points: self.points,
            other: self.other,
            balance: self.balance,
            pending: self.pending,
            duplicate: false,
        }
    }
}

pub(super) fn note(reason: &str, actor: &str) -> Option<Box<Note>> {
    if reason.is_empty() && actor.is_empty() {
        None
    } else {
        Some(Box::new(Note {
            reason: reason.to_owned(),
            actor: actor.to_owned(),
        }))
    }
}

/// The result of a ledger write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// The idempotency key.
    pub key: String,
    /// Ids of the transfers written.
    pub transfers: Vec<u64>,
    /// Points moved for the member (for a conversion: source points used).
    pub points: Points,
    /// For a conversion: destination points credited; for a refund: points clawed back.
    #[serde(default)]
    pub other: Points,
    /// The member's posted balance right after the write.
    pub balance: Points,
    /// Whether the points are pending.
    #[serde(default)]
    pub pending: bool,
    /// True when the key had been seen: nothing changed this time.
    #[serde(default)]
    pub duplicate: bool,
}

/// Idempotency keys → op index, stored by a 64-bit hash of the key: the op log already holds
/// every key, so the index keeps no second copy (one allocation less per posting, and tables of
/// 16-byte entries), and a miss — every new write — touches no string. The tables are sharded
/// (see [`crate::sharded`]) so that none moves millions of entries in one write.
/// A key whose hash collides with an earlier key's goes to `spill`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct KeyIndex {
    by_hash: crate::sharded::ShardedMap<u64, u32>,
    spill: BTreeMap<Box<str>, u32>,
}

impl KeyIndex {
    fn hash(key: &str) -> u64 {
        // Fx's high bits are weak for short keys and the table uses them for its tags: mix.
        let mut z = std::hash::BuildHasher::hash_one(&rustc_hash::FxBuildHasher, key.as_bytes());
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(super) fn get(&self, ops: &[Op], key: &str) -> Option<u32> {
        let &i = self.by_hash.get(&Self::hash(key))?;
        if &*ops[i as usize].key == key {
            Some(i)
        } else {
            self.spill.get(key).copied()
        }
    }

    pub(super) fn insert(&mut self, ops: &[Op], key: &str, i: u32) {
        match self.by_hash.entry(Self::hash(key)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                if &*ops[*o.get() as usize].key == key {
                    *o.into_mut() = i;
                } else {
                    self.spill.insert(key.into(), i);
                }
            }
        }
    }
}

/// A stable fingerprint ([`Fnv1a`]) of a request's content, fed field by field. Ops store it:
/// the fields and their order must not change.
pub(super) struct Print(pub(super) u64);

impl Print {
    pub(super) fn new(kind: OpKind) -> Print {
        Print(Fnv1a::new().finish()).u64(kind as u64)
    }

    pub(super) fn bytes(self, b: &[u8]) -> Print {
        Print(Fnv1a::resume(self.0).bytes(b).finish())
    }

    pub(super) fn u64(self, v: u64) -> Print {
        self.bytes(&v.to_le_bytes())
    }

    pub(super) fn str(self, s: &str) -> Print {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }

    pub(super) fn time(self, t: Option<DateTime<Utc>>) -> Print {
        match t {
            None => self.u64(u64::MAX),
            Some(t) => self
                .u64(t.timestamp() as u64)
                .u64(u64::from(t.timestamp_subsec_nanos())),
        }
    }
}

impl Ledger {
    /// A previous op with this key: `Ok(Some(result))` on a faithful replay.
    pub(super) fn replay(&self, key: &str, print: u64) -> Result<Option<Posting>, LoyaltyError> {
        if key.is_empty() {
            return Err(LoyaltyError::InvalidArgument {
                field: "key",
                reason: "an idempotency key must not be empty".into(),
            });
        }
        match self.index.by_key.get(&self.ops, key) {
            None => Ok(None),
            Some(i) => {
                let op = &self.ops[i as usize];
                if op.print == print {
                    Ok(Some(Posting {
                        duplicate: true,
                        ..op.posting()
                    }))
                } else {
                    Err(LoyaltyError::DuplicateKey {
                        key: key.to_owned(),
                    })
                }
            }
        }
    }

    pub(super) fn push_op(&mut self, op: Op) -> u32 {
        let i = self.ops.len() as u32;
        if op.keyed() {
            self.index.by_key.insert(&self.ops, &op.key, i);
        }
        if let (OpKind::Earn, Some(order)) = (op.kind, &op.order) {
            self.index
                .by_order
                .entry(order.to_string())
                .or_default()
                .push(i);
        }
        self.ops.push(op);
        i
    }

    pub(super) fn new_op_keyed(&self, key: &str, kind: OpKind, print: u64) -> Op {
        Op {
            key: key.into(),
            kind,
            pending: false,
            print,
            first: self.transfers.len() as u64 + 1,
            count: 0,
            bucket: None,
            points: 0,
            other: 0,
            balance: 0,
            order: None,
            note: None,
            money: None,
        }
    }

    /// The op of a member write: its key, free text and points from the entry.
    pub(super) fn new_op(&self, e: &Entry<'_>, kind: OpKind, print: u64) -> Op {
        let mut op = self.new_op_keyed(e.key, kind, print);
        op.note = note(e.reason, e.actor);
        op.points = e.points;
        op
    }

    pub(super) fn finish_op(&mut self, op: u32, account: Option<AccountId>) -> Posting {
        let first = self.ops[op as usize].first;
        let last = self.transfers.len() as u64;
        let balance = account.map_or(0, |a| self.accounts[a.0 as usize].points());
        let o = &mut self.ops[op as usize];
        o.count = (last + 1 - first) as u32;
        o.balance = balance;
        o.posting()
    }
}

#[cfg(test)]
mod print_tests {
    /// Ops store their request's print: its construction must keep giving these bits
    /// (computed outside Rust from FNV-1a's definition).
    #[test]
    fn a_print_is_stable() {
        let p = super::Print::new(super::OpKind::Convert)
            .u64(7)
            .u64(2)
            .str("gift");
        assert_eq!(p.0, 0x81cf_d25a_2320_cd19);
    }
}
