//! The points ledger: double-entry accounts, immutable transfers, expiry buckets.
//!
//! Modeled on TigerBeetle's guarantees:
//! - every transfer debits one account and credits another by the same positive amount, so the
//!   sum of all balances is always zero (each program's system accounts — issuance, redemption,
//!   expiry, conversion — carry the other side);
//! - transfers are never changed or deleted: a refund is a reversal, a pending transfer is
//!   resolved by a second (post or void) transfer;
//! - every write carries an idempotency key: a replay returns the first result and changes
//!   nothing, a key reused for other content is an error;
//! - a member balance never goes below zero unless the program allows overdraft (or a refund
//!   claws spent points back into debt, by policy).
//!
//! A member's posted balance is `Σ bucket remaining − debt`. Buckets hold earned points with an
//! expiry; spending consumes the earliest-expiring bucket first. Every bucket satisfies
//! `earned = spent + expired + reversed + moved + remaining`. [`Ledger::check_invariants`] is the
//! one place that asserts all of this; the property tests call it after every operation.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::LoyaltyError;
use crate::event::RefundLine;
use crate::ids::OneId;

/// An amount of points.
pub type Points = i64;

/// The dense index of an account in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountId(pub u32);

/// The dense index of a program's books in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BookId(pub u32);

/// What an account is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccountKind {
    /// A member's points: the user reference is a OneID only (never personal data), so that
    /// erasure can pseudonymize postings by replacing it.
    Member(OneId),
    /// Where earned points come from.
    Issuance,
    /// Where spent points go.
    Redemption,
    /// Where expired points go.
    Expiry,
    /// The program's side of conversions to and from other programs.
    Conversion,
}

/// What a member owes when a refund claws back points already spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Clawback {
    /// Spent points of a refunded earn are forgiven.
    None,
    /// Taken from the member's other points as far as they go; the rest is forgiven.
    Balance,
    /// Taken from the member's other points; the rest becomes debt (a negative balance),
    /// repaid first by later earns.
    #[default]
    Debt,
}

/// The kind of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TransferKind {
    /// Issuance → member, posted at once.
    Earn,
    /// Issuance → member, pending until posted or voided.
    PendingEarn,
    /// Completes a pending earn.
    Post,
    /// Cancels a pending earn.
    Void,
    /// Member → redemption.
    Spend,
    /// Member → expiry.
    Expire,
    /// Member → issuance: the unspent part of a refunded earn.
    Reversal,
    /// Member → issuance: spent points of a refunded earn taken back by policy.
    Clawback,
    /// Member → conversion (source program).
    ConvertOut,
    /// Conversion → member (destination program).
    ConvertIn,
    /// Absorbed member → surviving member on a OneID merge.
    Merge,
}

/// One immutable transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// 1-based, dense, in order of writing.
    pub id: u64,
    /// The operation that wrote it (index into the operation log).
    pub op: u32,
    /// The account debited.
    pub debit: AccountId,
    /// The account credited.
    pub credit: AccountId,
    /// The amount, always > 0.
    pub amount: Points,
    /// What the transfer is.
    pub kind: TransferKind,
    /// When.
    pub time: DateTime<Utc>,
    /// For `post`/`void`: the pending transfer; for reversals: the earn transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked: Option<u64>,
    /// For earns: when the points expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
}

/// A lot of earned points with one expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The member account holding it.
    pub account: AccountId,
    /// Points put in.
    pub earned: Points,
    /// Points consumed by spends (and by settling debt).
    pub spent: Points,
    /// Points that expired.
    pub expired: Points,
    /// Points reversed by a refund.
    pub reversed: Points,
    /// Points moved out by a merge (to `moved_to`, or converted into another program).
    pub moved: Points,
    /// When the points expire (`None`: never).
    pub expires: Option<DateTime<Utc>>,
    /// The transfer that filled it.
    pub source: u64,
    /// Where a merge moved the rest of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<u32>,
}

impl Bucket {
    /// What is left: `earned − spent − expired − reversed − moved`.
    pub fn remaining(&self) -> Points {
        self.earned - self.spent - self.expired - self.reversed - self.moved
    }
}

/// An account: TigerBeetle-style posted and pending debits and credits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The program's books it belongs to.
    pub book: BookId,
    /// What it is.
    pub kind: AccountKind,
    /// Σ posted debits. Counters are `i128` (as TigerBeetle's are `u128`) so that the running
    /// sums of system accounts never overflow; member balances are kept within `i64`.
    pub debits_posted: i128,
    /// Σ posted credits.
    pub credits_posted: i128,
    /// Σ pending debits.
    pub debits_pending: i128,
    /// Σ pending credits.
    pub credits_pending: i128,
    /// Points owed (members only).
    pub debt: Points,
    /// Live bucket indexes, earliest expiry first (never-expiring last), then oldest first.
    pub live: Vec<u32>,
    /// Pending earns credited here and not yet resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_pending: Vec<u64>,
    /// Set when a merge absorbed this account: pending transfers now go there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<AccountId>,
}

impl Account {
    fn new(book: BookId, kind: AccountKind) -> Account {
        Account {
            book,
            kind,
            debits_posted: 0,
            credits_posted: 0,
            debits_pending: 0,
            credits_pending: 0,
            debt: 0,
            live: Vec::new(),
            open_pending: Vec::new(),
            merged_into: None,
        }
    }

    /// Posted balance, credit-normal: `credits − debits`. System accounts go negative.
    pub fn balance(&self) -> i128 {
        self.credits_posted - self.debits_posted
    }

    /// The balance of a member account, which every write keeps within `i64`.
    pub fn points(&self) -> Points {
        clamp(self.balance())
    }
}

/// A program's books: its system accounts and balance policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Book {
    /// The program id.
    pub program: String,
    /// How far below zero a member may spend.
    pub overdraft: Points,
    /// What a refund does with spent points.
    pub clawback: Clawback,
    /// Issuance account.
    pub issuance: AccountId,
    /// Redemption account.
    pub redemption: AccountId,
    /// Expiry account.
    pub expiry: AccountId,
    /// Conversion account.
    pub conversion: AccountId,
}

/// The kind of a keyed operation (part of its fingerprint: one key, one kind of write).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpKind {
    /// An earn (posted or pending).
    Earn,
    /// A spend.
    Spend,
    /// A refund.
    Refund,
    /// A conversion.
    Convert,
    /// Posting a pending earn.
    Post,
    /// Voiding a pending earn.
    Void,
    /// An expiry run.
    Expire,
    /// A merge.
    Merge,
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
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: String,
}

impl Op {
    /// Whether the key is an idempotency key of its own (post/void reuse the earn's key).
    fn keyed(&self) -> bool {
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

fn note(reason: &str, actor: &str) -> Option<Box<Note>> {
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

/// How a pending transfer was resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Resolution {
    /// Posted by the given transfer (filling the given bucket, if any).
    Posted {
        /// The post transfer.
        by: u64,
        /// The bucket it filled.
        bucket: Option<u32>,
    },
    /// Voided by the given transfer.
    Voided {
        /// The void transfer.
        by: u64,
    },
    /// Moved to another account by a merge: the pending transfer that replaced it.
    Moved {
        /// The replacing pending transfer.
        to: u64,
    },
}

/// What [`Ledger::merge_accounts`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeReport {
    /// Per program: points moved from the absorbed member to the survivor.
    pub moved: BTreeMap<String, Points>,
    /// Per (source program → destination program): source points converted.
    pub converted_out: BTreeMap<String, Points>,
    /// Per destination program: points credited by conversion.
    pub converted_in: BTreeMap<String, Points>,
    /// Buckets moved.
    pub buckets: u64,
    /// Pending earns moved.
    pub pending: u64,
    /// Transfers written.
    pub transfers: Vec<u64>,
}

/// A conversion rate: `from` source points make `to` destination points.
///
/// Rounding: only whole lots of `from` points convert; the remainder stays in the source
/// account. Points are never created by rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    /// Source points per lot (> 0).
    pub from: Points,
    /// Destination points per lot (> 0).
    pub to: Points,
}

/// What every member write names: who, in which program, how many points, under which
/// idempotency key, why, by whom and when. A spend is exactly this; an earn adds where the
/// points go ([`Earn`]).
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The member.
    pub user: OneId,
    /// The program's books.
    pub book: BookId,
    /// Points (> 0).
    pub points: Points,
    /// Idempotency key.
    pub key: &'a str,
    /// Reason.
    pub reason: &'a str,
    /// Actor.
    pub actor: &'a str,
    /// Posting time.
    pub time: DateTime<Utc>,
}

impl Entry<'_> {
    /// The fingerprint of the fields every write shares, in the order stored prints used.
    fn print(&self, kind: OpKind) -> Print {
        Print::new(kind)
            .u64(self.user.0)
            .u64(u64::from(self.book.0))
            .u64(self.points as u64)
            .str(self.reason)
    }
}

/// A spend request: an [`Entry`] and nothing more.
pub type Spend<'a> = Entry<'a>;

/// An earn request: an [`Entry`] plus the expiry and state of the points and what a refund
/// measures them against.
#[derive(Debug, Clone)]
pub struct Earn<'a> {
    /// Who, where, how many, key, reason, actor, time.
    pub entry: Entry<'a>,
    /// Expiry (must be after `time`).
    pub expires: Option<DateTime<Utc>>,
    /// Hold as pending.
    pub pending: bool,
    /// The order the earn is tied to (default: its key).
    pub order: Option<&'a str>,
    /// The money of the order the points were earned on: a later
    /// [`Ledger::refund_amount`] of part of it reverses the same share of the points.
    pub money: Option<Decimal>,
    /// The order's lines with the points each earned (summing to `points`): a later
    /// [`Ledger::refund_lines`] reverses what the refunded lines earned.
    pub lines: &'a [EarnLine],
}

impl<'a> Earn<'a> {
    /// A posted earn of `entry` expiring at `expires`, tied to its own key, with no order
    /// money or lines.
    pub fn new(entry: Entry<'a>, expires: Option<DateTime<Utc>>) -> Earn<'a> {
        Earn {
            entry,
            expires,
            pending: false,
            order: None,
            money: None,
            lines: &[],
        }
    }
}

/// One line of an order as an earn recorded it: what a line refund is measured against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarnLine {
    /// Stock-keeping unit.
    pub sku: String,
    /// Units bought (≥ 1).
    pub qty: u32,
    /// Money of the line (`price × qty`, ≥ 0).
    pub value: Decimal,
    /// The earn's points allotted to this line (≥ 0).
    pub points: Points,
}

/// FNV-1a as a `Hasher`: the indexes hash short keys on the hot path, where SipHash's
/// flooding resistance buys nothing (keys come from the host, and a bad spread costs only time).
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        // One multiply per word rather than per byte.
        self.0 = (self.0 ^ v).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fnv>>;

/// Idempotency keys → op index, stored by a 64-bit hash of the key: the op log already holds
/// every key, so the index keeps no second copy (one allocation less per posting, and a table of
/// 16-byte entries that rehashes cheaply), and a miss — every new write — touches no string.
/// A key whose hash collides with an earlier key's goes to `spill`.
#[derive(Debug, Clone, Default, PartialEq)]
struct KeyIndex {
    by_hash: FastMap<u64, u32>,
    spill: BTreeMap<Box<str>, u32>,
}

impl KeyIndex {
    fn hash(key: &str) -> u64 {
        let mut h = Fnv::default();
        std::hash::Hasher::write(&mut h, key.as_bytes());
        // FNV's high bits are weak for short keys; the table uses them for its tags.
        let mut z = std::hash::Hasher::finish(&h);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn get(&self, ops: &[Op], key: &str) -> Option<u32> {
        let &i = self.by_hash.get(&Self::hash(key))?;
        if &*ops[i as usize].key == key {
            Some(i)
        } else {
            self.spill.get(key).copied()
        }
    }

    fn insert(&mut self, ops: &[Op], key: &str, i: u32) {
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

#[derive(Debug, Clone, Default, PartialEq)]
struct Index {
    by_key: KeyIndex,
    members: FastMap<(BookId, OneId), AccountId>,
    /// Explicit order keys → earns (an earn without one is found by its own key).
    by_order: FastMap<String, Vec<u32>>,
    /// (earliest live expiry, account) of every account with an expiring live bucket: the
    /// expiry run visits only accounts that have something due.
    fronts: std::collections::BTreeSet<(DateTime<Utc>, AccountId)>,
}

/// The ledger of every program's points. See the module docs for its guarantees.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "LedgerData")]
pub struct Ledger {
    books: Vec<Book>,
    accounts: Vec<Account>,
    transfers: Vec<Transfer>,
    buckets: Vec<Bucket>,
    ops: Vec<Op>,
    resolved: BTreeMap<u64, Resolution>,
    /// Earn op → the refund op that reversed it.
    refunded: BTreeMap<u32, u32>,
    /// Earn op → what partial refunds have taken so far (removed once fully refunded).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    partial: BTreeMap<u32, PartialRefund>,
    /// Earn op → the order lines it recorded with their points (order earns with lines).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    lines: BTreeMap<u32, Box<[EarnLine]>>,
    #[serde(skip)]
    index: Index,
}

/// The partial refunds of one earn so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialRefund {
    /// Money refunded so far (of the earn's order amount).
    pub money: Decimal,
    /// Points taken back so far: pending points released, posted points reversed, clawed back
    /// or forgiven.
    pub points: Points,
    /// Of those, points that had been used (spent, converted or paid against debt) and were
    /// clawed back or forgiven by policy.
    pub used: Points,
    /// What line refunds took of each of the earn's lines so far (empty until the first).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<LineRefunded>,
}

/// What line refunds took of one order line so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineRefunded {
    /// Units returned.
    pub qty: u32,
    /// Money refunded without units (price adjustments, partial compensation).
    pub money: Decimal,
}

impl LineRefunded {
    /// The points of `line` given back once this much of it is refunded: the line's refunded
    /// share is `qty / units bought + money / line value` (at most all of it), and the line
    /// keeps `floor(points × (1 − share))`, so rounding never creates points and refunds of
    /// one line add up to one refund of their total.
    pub fn target(&self, line: &EarnLine) -> Points {
        let (n, q) = (Decimal::from(line.qty), Decimal::from(self.qty));
        if line.value <= Decimal::ZERO || self.money <= Decimal::ZERO {
            return Ledger::refund_target(line.points, n, q);
        }
        // share = (q·V + M·n) / (n·V), exactly when it fits.
        let exact = n.checked_mul(line.value).and_then(|total| {
            let part = q
                .checked_mul(line.value)?
                .checked_add(self.money.checked_mul(n)?)?;
            Some(Ledger::refund_target(line.points, total, part))
        });
        exact.unwrap_or_else(|| {
            let share = (q / n).saturating_add(self.money / line.value);
            Ledger::refund_target(line.points, Decimal::ONE, share)
        })
    }
}

/// What a refund takes back of an order.
#[derive(Debug, Clone, Copy)]
enum Share<'a> {
    /// Everything.
    All,
    /// A share of the order's money.
    Money(Decimal),
    /// Named lines.
    Lines(&'a [RefundLine]),
}

/// What a refund will do to one earn (see `Ledger::plan_refund`).
struct RefundPlan {
    earn: u32,
    /// The earn's transfer (what reversals link to).
    source: u64,
    /// The open pending transfer to release, for a pending earn.
    void: Option<u64>,
    /// The bucket the posted points went to.
    bucket: Option<u32>,
    account: AccountId,
    /// The points the member got (posted) or holds pending.
    amount: Points,
    /// Points given back in total once this refund is done.
    target: Points,
    full: bool,
    before: PartialRefund,
    money: Decimal,
    lines: Vec<LineRefunded>,
}

#[derive(Deserialize)]
struct LedgerData {
    books: Vec<Book>,
    accounts: Vec<Account>,
    transfers: Vec<Transfer>,
    buckets: Vec<Bucket>,
    ops: Vec<Op>,
    resolved: BTreeMap<u64, Resolution>,
    refunded: BTreeMap<u32, u32>,
    #[serde(default)]
    partial: BTreeMap<u32, PartialRefund>,
    #[serde(default)]
    lines: BTreeMap<u32, Box<[EarnLine]>>,
}

impl From<LedgerData> for Ledger {
    fn from(d: LedgerData) -> Ledger {
        let mut l = Ledger {
            books: d.books,
            accounts: d.accounts,
            transfers: d.transfers,
            buckets: d.buckets,
            ops: d.ops,
            resolved: d.resolved,
            refunded: d.refunded,
            partial: d.partial,
            lines: d.lines,
            index: Index::default(),
        };
        l.rebuild_index();
        l
    }
}

/// A stable FNV-1a fingerprint of a request's content, fed field by field.
struct Print(u64);

impl Print {
    fn new(kind: OpKind) -> Print {
        Print(0xcbf2_9ce4_8422_2325).u64(kind as u64)
    }
    fn bytes(mut self, b: &[u8]) -> Print {
        for x in b {
            self.0 ^= u64::from(*x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self
    }
    fn u64(self, v: u64) -> Print {
        self.bytes(&v.to_le_bytes())
    }
    fn str(self, s: &str) -> Print {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }
    fn time(self, t: Option<DateTime<Utc>>) -> Print {
        match t {
            None => self.u64(u64::MAX),
            Some(t) => self
                .u64(t.timestamp() as u64)
                .u64(u64::from(t.timestamp_subsec_nanos())),
        }
    }
}

fn positive(field: &'static str, points: Points) -> Result<(), LoyaltyError> {
    if points <= 0 {
        return Err(LoyaltyError::InvalidAmount {
            field,
            reason: format!("{points} is not a positive number of points"),
        });
    }
    Ok(())
}

fn clamp(v: i128) -> Points {
    v.clamp(i128::from(Points::MIN), i128::from(Points::MAX)) as Points
}

fn overflow(field: &'static str) -> LoyaltyError {
    LoyaltyError::InvalidAmount {
        field,
        reason: "the amount would overflow a balance".into(),
    }
}

/// Expiry order: earliest first, never-expiring last.
fn expiry_rank(e: Option<DateTime<Utc>>) -> (bool, Option<DateTime<Utc>>) {
    (e.is_none(), e)
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    fn rebuild_index(&mut self) {
        let mut index = Index::default();
        for (i, op) in self.ops.iter().enumerate() {
            if op.keyed() {
                index.by_key.insert(&self.ops, &op.key, i as u32);
            }
            if let (OpKind::Earn, Some(order)) = (op.kind, &op.order) {
                index
                    .by_order
                    .entry(order.to_string())
                    .or_default()
                    .push(i as u32);
            }
        }
        for (i, a) in self.accounts.iter().enumerate() {
            if let AccountKind::Member(user) = a.kind {
                if a.merged_into.is_none() {
                    index.members.insert((a.book, user), AccountId(i as u32));
                }
            }
        }
        self.index = index;
        for i in 0..self.accounts.len() as u32 {
            if let Some(f) = self.front(AccountId(i)) {
                self.index.fronts.insert((f, AccountId(i)));
            }
        }
    }

    /// Open the books of a program: its four system accounts.
    pub fn open_book(&mut self, program: &str, overdraft: Points, clawback: Clawback) -> BookId {
        let book = BookId(self.books.len() as u32);
        let mut sys = |kind| {
            self.accounts.push(Account::new(book, kind));
            AccountId(self.accounts.len() as u32 - 1)
        };
        let (issuance, redemption, expiry, conversion) = (
            sys(AccountKind::Issuance),
            sys(AccountKind::Redemption),
            sys(AccountKind::Expiry),
            sys(AccountKind::Conversion),
        );
        self.books.push(Book {
            program: program.to_owned(),
            overdraft: overdraft.max(0),
            clawback,
            issuance,
            redemption,
            expiry,
            conversion,
        });
        book
    }

    /// The books of a program.
    pub fn book(&self, book: BookId) -> Option<&Book> {
        self.books.get(book.0 as usize)
    }

    /// Every account.
    pub fn accounts(&self) -> &[Account] {
        &self.accounts
    }

    /// Every transfer, in order.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// Every bucket ever created.
    pub fn buckets(&self) -> &[Bucket] {
        &self.buckets
    }

    /// The operation log.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// The member account of a user in a program, if it exists.
    pub fn member_account(&self, book: BookId, user: OneId) -> Option<AccountId> {
        self.index.members.get(&(book, user)).copied()
    }

    /// A member's posted balance (0 without an account).
    pub fn balance(&self, book: BookId, user: OneId) -> Points {
        self.member_account(book, user)
            .map_or(0, |a| self.accounts[a.0 as usize].points())
    }

    /// A member's pending (not yet posted) points.
    pub fn pending(&self, book: BookId, user: OneId) -> Points {
        self.member_account(book, user)
            .map_or(0, |a| clamp(self.accounts[a.0 as usize].credits_pending))
    }

    /// A member's live buckets, earliest expiry first.
    pub fn live_buckets(&self, book: BookId, user: OneId) -> Vec<&Bucket> {
        self.member_account(book, user).map_or_else(Vec::new, |a| {
            self.accounts[a.0 as usize]
                .live
                .iter()
                .map(|&b| &self.buckets[b as usize])
                .collect()
        })
    }

    /// The transfers touching a member's account in a program (including accounts merged into
    /// it), in order, each with its direction for the member: `1` in, `-1` out, `0` a move
    /// between the member's own accounts (a merge).
    pub fn statement(&self, book: BookId, user: OneId) -> Vec<(&Transfer, i8)> {
        let Some(me) = self.member_account(book, user) else {
            return Vec::new();
        };
        let mine: std::collections::BTreeSet<AccountId> = (0..self.accounts.len() as u32)
            .map(AccountId)
            .filter(|&a| self.accounts[a.0 as usize].book == book && self.follow(a) == Some(me))
            .collect();
        self.transfers
            .iter()
            .filter_map(
                |t| match (mine.contains(&t.debit), mine.contains(&t.credit)) {
                    (true, true) => Some((t, 0)),
                    (false, true) => Some((t, 1)),
                    (true, false) => Some((t, -1)),
                    (false, false) => None,
                },
            )
            .collect()
    }

    fn follow(&self, mut a: AccountId) -> Option<AccountId> {
        if !matches!(self.accounts[a.0 as usize].kind, AccountKind::Member(_)) {
            return None;
        }
        while let Some(n) = self.accounts[a.0 as usize].merged_into {
            a = n;
        }
        Some(a)
    }

    /// A previous op with this key: `Ok(Some(result))` on a faithful replay.
    fn replay(&self, key: &str, print: u64) -> Result<Option<Posting>, LoyaltyError> {
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

    fn account_or_new(&mut self, book: BookId, user: OneId) -> AccountId {
        if let Some(a) = self.member_account(book, user) {
            return a;
        }
        self.accounts
            .push(Account::new(book, AccountKind::Member(user)));
        let a = AccountId(self.accounts.len() as u32 - 1);
        self.index.members.insert((book, user), a);
        a
    }

    fn book_checked(&self, book: BookId) -> Result<&Book, LoyaltyError> {
        self.books
            .get(book.0 as usize)
            .ok_or_else(|| LoyaltyError::UnknownProgram(format!("#{}", book.0)))
    }

    /// Write a transfer; amounts were checked by the caller (no overflow possible).
    #[allow(clippy::too_many_arguments)]
    fn transfer(
        &mut self,
        op: u32,
        debit: AccountId,
        credit: AccountId,
        amount: Points,
        kind: TransferKind,
        time: DateTime<Utc>,
        linked: Option<u64>,
        expires: Option<DateTime<Utc>>,
    ) -> u64 {
        let id = self.transfers.len() as u64 + 1;
        let pending = kind == TransferKind::PendingEarn;
        let (d, c) = (debit.0 as usize, credit.0 as usize);
        match kind {
            TransferKind::PendingEarn => {
                let amount = i128::from(amount);
                self.accounts[d].debits_pending += amount;
                self.accounts[c].credits_pending += amount;
                self.accounts[c].open_pending.push(id);
            }
            TransferKind::Void => {
                let amount = i128::from(amount);
                self.accounts[d].debits_pending -= amount;
                self.accounts[c].credits_pending -= amount;
                self.accounts[c].open_pending.retain(|&p| Some(p) != linked);
            }
            TransferKind::Post => {
                self.accounts[c].open_pending.retain(|&p| Some(p) != linked);
                let amount = i128::from(amount);
                self.accounts[d].debits_pending -= amount;
                self.accounts[c].credits_pending -= amount;
                self.accounts[d].debits_posted += amount;
                self.accounts[c].credits_posted += amount;
            }
            _ => {
                let amount = i128::from(amount);
                self.accounts[d].debits_posted += amount;
                self.accounts[c].credits_posted += amount;
            }
        }
        debug_assert!(!pending || linked.is_none());
        self.transfers.push(Transfer {
            id,
            op,
            debit,
            credit,
            amount,
            kind,
            time,
            linked,
            expires,
        });
        id
    }

    /// Would crediting `amount` to `a` overflow any of its counters?
    fn can_credit(&self, a: Option<AccountId>, amount: Points) -> bool {
        a.is_none_or(|a| {
            let acc = &self.accounts[a.0 as usize];
            let a = i128::from(amount);
            let member = matches!(acc.kind, AccountKind::Member(_));
            // A member's balance and pending credits stay within i64 (its points API).
            !member
                || (acc.balance() + acc.credits_pending + a <= i128::from(Points::MAX)
                    && acc.balance() + a <= i128::from(Points::MAX))
        })
    }

    fn can_debit(&self, a: AccountId, amount: Points) -> bool {
        let acc = &self.accounts[a.0 as usize];
        !matches!(acc.kind, AccountKind::Member(_))
            || acc.balance() - i128::from(amount) >= -i128::from(Points::MAX)
    }

    fn push_op(&mut self, op: Op) -> u32 {
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

    fn new_op_keyed(&self, key: &str, kind: OpKind, print: u64) -> Op {
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
    fn new_op(&self, e: &Entry<'_>, kind: OpKind, print: u64) -> Op {
        let mut op = self.new_op_keyed(e.key, kind, print);
        op.note = note(e.reason, e.actor);
        op.points = e.points;
        op
    }

    fn finish_op(&mut self, op: u32, account: Option<AccountId>) -> Posting {
        let first = self.ops[op as usize].first;
        let last = self.transfers.len() as u64;
        let balance = account.map_or(0, |a| self.accounts[a.0 as usize].points());
        let o = &mut self.ops[op as usize];
        o.count = (last + 1 - first) as u32;
        o.balance = balance;
        o.posting()
    }

    /// Put points into a member account: repay debt first, the rest into a new bucket.
    /// Returns the bucket filled, if any. The caller checked the credit cannot overflow.
    fn fill(
        &mut self,
        account: AccountId,
        points: Points,
        expires: Option<DateTime<Utc>>,
        source: u64,
    ) -> Option<u32> {
        let acc = &mut self.accounts[account.0 as usize];
        let repay = acc.debt.min(points);
        acc.debt -= repay;
        let rest = points - repay;
        if rest == 0 {
            return None;
        }
        let b = self.buckets.len() as u32;
        self.buckets.push(Bucket {
            account,
            earned: rest,
            spent: 0,
            expired: 0,
            reversed: 0,
            moved: 0,
            expires,
            source,
            moved_to: None,
        });
        self.insert_live(account, b);
        Some(b)
    }

    /// The earliest expiry among an account's live buckets.
    fn front(&self, a: AccountId) -> Option<DateTime<Utc>> {
        self.accounts[a.0 as usize]
            .live
            .first()
            .and_then(|&b| self.buckets[b as usize].expires)
    }

    /// Keep the expiry index in step after an account's live buckets changed.
    fn refront(&mut self, a: AccountId, old: Option<DateTime<Utc>>) {
        let new = self.front(a);
        if new != old {
            if let Some(o) = old {
                self.index.fronts.remove(&(o, a));
            }
            if let Some(n) = new {
                self.index.fronts.insert((n, a));
            }
        }
    }

    /// Put a bucket among an account's live buckets, in expiry order.
    fn insert_live(&mut self, account: AccountId, b: u32) {
        let old = self.front(account);
        let rank = expiry_rank(self.buckets[b as usize].expires);
        let live = &self.accounts[account.0 as usize].live;
        // Equal expiries keep insertion order (oldest first): insert after them. Most earns
        // expire no earlier than the account's latest bucket: append without a search.
        let pos = match live.last() {
            Some(&x) if expiry_rank(self.buckets[x as usize].expires) > rank => {
                live.partition_point(|&x| expiry_rank(self.buckets[x as usize].expires) <= rank)
            }
            _ => live.len(),
        };
        self.accounts[account.0 as usize].live.insert(pos, b);
        self.refront(account, old);
    }

    /// Take up to `points` from the member's buckets, earliest expiry first, as spent.
    /// Returns what was taken.
    fn take_fifo(&mut self, account: AccountId, points: Points) -> Points {
        let mut need = points;
        let mut emptied = 0;
        let old = self.front(account);
        let live = std::mem::take(&mut self.accounts[account.0 as usize].live);
        for &b in &live {
            if need == 0 {
                break;
            }
            let bucket = &mut self.buckets[b as usize];
            let take = bucket.remaining().min(need);
            bucket.spent += take;
            need -= take;
            if bucket.remaining() == 0 {
                emptied += 1;
            }
        }
        let mut live = live;
        // Consumption is from the front, so the emptied buckets are a prefix.
        live.drain(..emptied);
        self.accounts[account.0 as usize].live = live;
        self.refront(account, old);
        points - need
    }

    fn live_points(&self, account: AccountId) -> Points {
        let acc = &self.accounts[account.0 as usize];
        acc.points() + acc.debt
    }

    /// Earn points (posted at once, or pending). See [`Earn`].
    pub fn earn(&mut self, r: &Earn<'_>) -> Result<Posting, LoyaltyError> {
        let print = match self.check_earn_print(r) {
            Ok(print) => print,
            Err(replay) => return replay,
        };
        let issuance = self.books[r.entry.book.0 as usize].issuance;
        // Checks done: from here on nothing fails.
        let account = self.account_or_new(r.entry.book, r.entry.user);
        Ok(self.earn_tail(r, print, issuance, account))
    }

    fn earn_print(r: &Earn<'_>) -> u64 {
        let mut p = r
            .entry
            .print(OpKind::Earn)
            .time(r.expires)
            .u64(u64::from(r.pending))
            .str(r.order.unwrap_or(r.entry.key));
        // Without money or lines the print is what it always was (stored prints stay valid).
        if let Some(m) = r.money {
            p = p.bytes(&m.serialize());
        }
        for l in r.lines {
            p = p
                .str(&l.sku)
                .u64(u64::from(l.qty))
                .bytes(&l.value.serialize())
                .u64(l.points as u64);
        }
        p.0
    }

    /// Every check of an earn, changing nothing: `Ok(Some(first result))` for a faithful
    /// replay, `Ok(None)` when [`Ledger::earn`] will succeed.
    pub fn check_earn(&self, r: &Earn<'_>) -> Result<Option<Posting>, LoyaltyError> {
        match self.check_earn_print(r) {
            Ok(_) => Ok(None),
            Err(Ok(p)) => Ok(Some(p)),
            Err(Err(e)) => Err(e),
        }
    }

    /// The checks of an earn: its fingerprint when it will succeed, `Err(Ok(first result))` on
    /// a faithful replay.
    fn check_earn_print(&self, r: &Earn<'_>) -> Result<u64, Result<Posting, LoyaltyError>> {
        let print = Self::earn_print(r);
        match self.replay(r.entry.key, print) {
            Ok(Some(p)) => return Err(Ok(p)),
            Ok(None) => {}
            Err(e) => return Err(Err(e)),
        }
        self.check_earn_rest(r).map_err(Err)?;
        Ok(print)
    }

    fn check_earn_rest(&self, r: &Earn<'_>) -> Result<(), LoyaltyError> {
        let e = &r.entry;
        positive("points", e.points)?;
        if r.money.is_some_and(|m| m <= Decimal::ZERO) {
            return Err(LoyaltyError::InvalidAmount {
                field: "amount",
                reason: "an order amount must be positive".into(),
            });
        }
        if !r.lines.is_empty() {
            let mut sum: Points = 0;
            for l in r.lines {
                if l.qty == 0 || l.value < Decimal::ZERO || l.points < 0 {
                    return Err(LoyaltyError::InvalidAmount {
                        field: "lines",
                        reason: format!("line {:?}: qty ≥ 1, value and points ≥ 0", l.sku),
                    });
                }
                sum = sum.checked_add(l.points).ok_or_else(|| overflow("lines"))?;
            }
            if sum != e.points {
                return Err(LoyaltyError::InvalidAmount {
                    field: "lines",
                    reason: format!("the lines' points sum to {sum}, not {}", e.points),
                });
            }
        }
        let issuance = self.book_checked(e.book)?.issuance;
        if let Some(x) = r.expires {
            if x <= e.time {
                return Err(LoyaltyError::ExpiryInPast {
                    expires: x,
                    time: e.time,
                });
            }
        }
        let existing = self.member_account(e.book, e.user);
        if !self.can_credit(existing, e.points) || !self.can_debit(issuance, e.points) {
            return Err(overflow("points"));
        }
        Ok(())
    }

    fn earn_tail(
        &mut self,
        r: &Earn<'_>,
        print: u64,
        issuance: AccountId,
        account: AccountId,
    ) -> Posting {
        let e = &r.entry;
        let mut op = self.new_op(e, OpKind::Earn, print);
        op.money = r.money;
        op.order = r.order.map(Box::from);
        op.pending = r.pending;
        let o = self.push_op(op);
        if !r.lines.is_empty() {
            self.lines.insert(o, r.lines.into());
        }
        let kind = if r.pending {
            TransferKind::PendingEarn
        } else {
            TransferKind::Earn
        };
        let t = self.transfer(
            o, issuance, account, e.points, kind, e.time, None, r.expires,
        );
        if !r.pending {
            self.ops[o as usize].bucket = self.fill(account, e.points, r.expires, t);
        }
        self.finish_op(o, Some(account))
    }

    /// Spend points, earliest-expiring bucket first. Beyond the balance only within the
    /// program's overdraft (the shortfall becomes debt).
    pub fn spend(&mut self, r: &Spend<'_>) -> Result<Posting, LoyaltyError> {
        let print = r.print(OpKind::Spend).0;
        if let Some(p) = self.replay(r.key, print)? {
            return Ok(p);
        }
        positive("points", r.points)?;
        let book = self.book_checked(r.book)?;
        let (redemption, overdraft) = (book.redemption, book.overdraft);
        let account =
            self.member_account(r.book, r.user)
                .ok_or_else(|| LoyaltyError::UnknownAccount {
                    program: self.books[r.book.0 as usize].program.clone(),
                    user: format!("OneID {}", r.user),
                })?;
        let balance = self.accounts[account.0 as usize].points();
        let floor = -overdraft;
        if balance
            .checked_sub(r.points)
            .is_none_or(|after| after < floor)
        {
            return Err(LoyaltyError::InsufficientPoints {
                available: balance.saturating_add(overdraft),
                requested: r.points,
            });
        }
        if !self.can_debit(account, r.points) || !self.can_credit(Some(redemption), r.points) {
            return Err(overflow("points"));
        }
        let o = self.push_op(self.new_op(r, OpKind::Spend, print));
        let taken = self.take_fifo(account, r.points);
        self.accounts[account.0 as usize].debt += r.points - taken;
        self.transfer(
            o,
            account,
            redemption,
            r.points,
            TransferKind::Spend,
            r.time,
            None,
            None,
        );
        Ok(self.finish_op(o, Some(account)))
    }

    /// The pending transfer behind an earn key, following merges.
    fn pending_of(&self, key: &str) -> Result<(u32, u64), LoyaltyError> {
        let o = self
            .index
            .by_key
            .get(&self.ops, key)
            .ok_or_else(|| LoyaltyError::NotPending {
                key: key.to_owned(),
                state: "unknown key",
            })?;
        let op = &self.ops[o as usize];
        if op.kind != OpKind::Earn || !op.pending {
            return Err(LoyaltyError::NotPending {
                key: key.to_owned(),
                state: "not a pending earn",
            });
        }
        let mut t = op.first;
        while let Some(Resolution::Moved { to }) = self.resolved.get(&t) {
            t = *to;
        }
        Ok((o, t))
    }

    /// Resolve a pending earn: post it (`post = true`) or void it. Resolving again the same way
    /// returns the first result marked `duplicate`; the other way is an error.
    pub fn resolve(
        &mut self,
        key: &str,
        post: bool,
        time: DateTime<Utc>,
    ) -> Result<Posting, LoyaltyError> {
        let (earn_op, t) = self.pending_of(key)?;
        let pt = self.transfers[(t - 1) as usize].clone();
        match self.resolved.get(&t) {
            Some(Resolution::Posted { by, .. }) | Some(Resolution::Voided { by }) => {
                let same = matches!(
                    (self.resolved.get(&t), post),
                    (Some(Resolution::Posted { .. }), true)
                        | (Some(Resolution::Voided { .. }), false)
                );
                if !same {
                    return Err(LoyaltyError::NotPending {
                        key: key.to_owned(),
                        state: if post {
                            "already voided"
                        } else {
                            "already posted"
                        },
                    });
                }
                let op = &self.ops[self.transfers[(*by - 1) as usize].op as usize];
                return Ok(Posting {
                    duplicate: true,
                    ..op.posting()
                });
            }
            _ => {}
        }
        if post && !self.can_credit(Some(pt.credit), pt.amount) {
            return Err(overflow("points"));
        }
        let kind = if post { OpKind::Post } else { OpKind::Void };
        let mut op = self.new_op_keyed(key, kind, 0);
        op.points = pt.amount;
        op.bucket = Some(earn_op); // unused for post/void; keeps the earn findable from the op
        let o = self.push_op(op);
        let tk = if post {
            TransferKind::Post
        } else {
            TransferKind::Void
        };
        let by = self.transfer(o, pt.debit, pt.credit, pt.amount, tk, time, Some(t), None);
        let res = if post {
            let bucket = self.fill(pt.credit, pt.amount, pt.expires, by);
            Resolution::Posted { by, bucket }
        } else {
            Resolution::Voided { by }
        };
        self.resolved.insert(t, res);
        Ok(self.finish_op(o, Some(pt.credit)))
    }

    /// Points of the bucket chain `b` (following merges): (remaining, expired, reversed, ids).
    fn chain(&self, mut b: u32) -> (Points, Points, Points, Vec<u32>) {
        let (mut rem, mut exp, mut rev, mut ids) = (0, 0, 0, Vec::new());
        loop {
            let bucket = &self.buckets[b as usize];
            rem += bucket.remaining();
            exp += bucket.expired;
            rev += bucket.reversed;
            ids.push(b);
            match bucket.moved_to {
                Some(n) => b = n,
                None => break,
            }
        }
        (rem, exp, rev, ids)
    }

    /// Refund an order: every earn tied to it is reversed (pending earns voided). Spent points
    /// are clawed back by the program's [`Clawback`] policy. A refund of an order with nothing
    /// left to reverse is an error.
    pub fn refund(
        &mut self,
        order: &str,
        key: &str,
        time: DateTime<Utc>,
    ) -> Result<Posting, LoyaltyError> {
        self.refund_share(order, key, time, Share::All)
    }

    /// Refund `money` of an order (a partial refund). Each earn tied to the order that records
    /// its order amount (see [`Earn::money`]) gives back the points of the refunded
    /// share, measured cumulatively: after refunds totalling `R` of an order of `A`, the member
    /// keeps `floor(points × (A − R) / A)`. Rounding favours the books, so remainders never
    /// create points, and partial refunds add up to exactly one refund of their total.
    ///
    /// Pending points are released (the pending earn is re-opened for the rest); posted points
    /// are reversed from the earn's bucket as far as it still holds them; beyond that, points
    /// already used (spent, converted, paid against debt) are clawed back by the program's
    /// [`Clawback`] policy and expired ones are forgiven. Refunds reaching the order amount make
    /// a full refund. Earns without an order amount are left alone; an order without any is an
    /// error (`NotPending`), as is a non-positive amount.
    pub fn refund_amount(
        &mut self,
        order: &str,
        key: &str,
        time: DateTime<Utc>,
        money: Decimal,
    ) -> Result<Posting, LoyaltyError> {
        self.refund_share(order, key, time, Share::Money(money))
    }

    /// Refund named lines of an order: each earn tied to the order that records its lines (see
    /// [`Earn::lines`]) gives back what those lines earned. A line's refunded share is
    /// measured cumulatively over every refund of it: returned units (`qty`) over the units
    /// bought, plus money refunded without units (`amount` with no `qty`: a price adjustment)
    /// over the line's value; the line keeps `floor(points × (1 − share))` (see
    /// [`LineRefunded::target`]), so a line never gives back more than it earned and refunding
    /// every line in any split gives back exactly the order's points. Line refunds and amount
    /// refunds of one order add up, capped at the points earned. Pending points, posted points
    /// and clawback go as in [`Ledger::refund_amount`].
    ///
    /// A line is named by `sku` or by `line` index; an unknown line, a qty above the units left
    /// to refund or an amount above the money left are [`LoyaltyError::InvalidRefund`] (naming
    /// `lines[i].…`), and change nothing.
    pub fn refund_lines(
        &mut self,
        order: &str,
        key: &str,
        time: DateTime<Utc>,
        lines: &[RefundLine],
    ) -> Result<Posting, LoyaltyError> {
        self.refund_share(order, key, time, Share::Lines(lines))
    }

    /// Every check of [`Ledger::refund_lines`], changing nothing.
    pub fn check_refund_lines(
        &self,
        order: &str,
        key: &str,
        lines: &[RefundLine],
    ) -> Result<(), LoyaltyError> {
        let share = Share::Lines(lines);
        if self
            .replay(key, Self::refund_print(order, share))?
            .is_none()
        {
            self.plan_refund(order, share)?;
        }
        Ok(())
    }

    /// The points an earn gives back in total once `refunded` of its order's `total` is
    /// refunded: `points − floor(points × (total − refunded) / total)`.
    fn refund_target(points: Points, total: Decimal, refunded: Decimal) -> Points {
        if refunded >= total {
            return points;
        }
        let left = total - refunded;
        let kept = Decimal::from(points)
            .checked_mul(left)
            .and_then(|x| x.checked_div(total))
            // Too wide to multiply exactly: the ratio first (it can only round the kept part
            // down, which never creates points).
            .or_else(|| left.checked_div(total).map(|r| Decimal::from(points) * r))
            .map_or(0, |k| {
                use rust_decimal::prelude::ToPrimitive;
                k.floor().to_i64().unwrap_or(0)
            });
        points - kept.clamp(0, points)
    }

    fn refund_print(order: &str, share: Share<'_>) -> u64 {
        let print = Print::new(OpKind::Refund).str(order);
        match share {
            // The prints of whole and amount refunds are what they always were.
            Share::All => print.0,
            Share::Money(m) => print.bytes(&m.serialize()).0,
            Share::Lines(lines) => {
                lines
                    .iter()
                    .fold(print.u64(0x4c49_4e45), |p, l| {
                        p.str(l.sku.as_deref().unwrap_or(""))
                            .u64(l.line.map_or(u64::MAX, u64::from))
                            .u64(u64::from(l.qty))
                            .bytes(&l.amount.unwrap_or(Decimal::NEGATIVE_ONE).serialize())
                    })
                    .0
            }
        }
    }

    /// The earns tied to an order, in writing order.
    fn earns_of(&self, order: &str) -> Vec<u32> {
        let mut earns: Vec<u32> = self.index.by_order.get(order).cloned().unwrap_or_default();
        // An earn without an explicit order is tied to its own key.
        if let Some(o) = self.index.by_key.get(&self.ops, order) {
            let op = &self.ops[o as usize];
            if op.kind == OpKind::Earn && op.order.is_none() {
                earns.push(o);
                earns.sort_unstable();
            }
        }
        earns
    }

    /// Which of `earn` lines a refund line names (`i`: its place in the refund).
    fn line_of(earn: &[EarnLine], l: &RefundLine, i: usize) -> Result<usize, LoyaltyError> {
        let bad = |f: &str, reason: String| LoyaltyError::InvalidRefund {
            field: format!("lines[{i}].{f}"),
            reason,
        };
        match (l.line, l.sku.as_deref()) {
            (Some(ix), sku) => {
                let line = earn.get(ix as usize).ok_or_else(|| {
                    bad(
                        "line",
                        format!("the order has {} lines (0-based index)", earn.len()),
                    )
                })?;
                match sku {
                    Some(s) if s != line.sku => Err(bad(
                        "sku",
                        format!("line {ix} is sku {:?}, not {s:?}", line.sku),
                    )),
                    _ => Ok(ix as usize),
                }
            }
            (None, Some(sku)) => {
                let mut found = earn.iter().enumerate().filter(|(_, x)| x.sku == sku);
                match (found.next(), found.next()) {
                    (Some((ix, _)), None) => Ok(ix),
                    (None, _) => Err(bad("sku", format!("no line of the order has sku {sku:?}"))),
                    (Some(_), Some(_)) => Err(bad(
                        "sku",
                        format!("sku {sku:?} is on several lines: name the `line` index"),
                    )),
                }
            }
            (None, None) => Err(bad("sku", "name the line by `sku` or `line`".into())),
        }
    }

    /// What each line has given back once `lines` are refunded on top of `before`.
    fn lines_after(
        earn: &[EarnLine],
        before: &[LineRefunded],
        lines: &[RefundLine],
    ) -> Result<Vec<LineRefunded>, LoyaltyError> {
        let mut after = if before.is_empty() {
            vec![LineRefunded::default(); earn.len()]
        } else {
            before.to_vec()
        };
        for (i, l) in lines.iter().enumerate() {
            let bad = |f: &str, reason: String| LoyaltyError::InvalidRefund {
                field: format!("lines[{i}].{f}"),
                reason,
            };
            l.check().map_err(|(f, why)| bad(f, why))?;
            let ix = Self::line_of(earn, l, i)?;
            let (line, done) = (&earn[ix], &mut after[ix]);
            // Returned units count by units (their amount is the money of those units); an
            // amount without units counts by money.
            if l.qty > 0 {
                let qty = done.qty.saturating_add(l.qty);
                if qty > line.qty {
                    return Err(bad(
                        "qty",
                        format!(
                            "{} units of line {ix} ({:?}) bought, {} returned before: {} more is too many",
                            line.qty, line.sku, done.qty, l.qty
                        ),
                    ));
                }
                done.qty = qty;
            } else {
                let add = l.amount.unwrap_or_default();
                let money = done.money.checked_add(add).unwrap_or(Decimal::MAX);
                if money > line.value {
                    return Err(bad(
                        "amount",
                        format!(
                            "line {ix} ({:?}) is worth {}, {} refunded before: {add} more is too much",
                            line.sku, line.value, done.money
                        ),
                    ));
                }
                done.money = money;
            }
        }
        Ok(after)
    }

    /// The points an earn gives back in total with refunded `money` of its order and `lines`
    /// refunded so far: the two measures add up, capped at what it earned.
    fn partial_target(&self, e: u32, money: Decimal, lines: &[LineRefunded]) -> Points {
        let op = &self.ops[e as usize];
        let by_money = match op.money {
            Some(total) if money > Decimal::ZERO => Self::refund_target(op.points, total, money),
            _ => 0,
        };
        let by_lines: Points = match self.lines.get(&e) {
            Some(earn) => lines
                .iter()
                .zip(earn.iter())
                .map(|(r, l)| r.target(l))
                .fold(0, Points::saturating_add),
            None => 0,
        };
        by_money.saturating_add(by_lines).min(op.points)
    }

    /// Every check of a refund, changing nothing: what it will do per earn.
    fn plan_refund(&self, order: &str, share: Share<'_>) -> Result<Vec<RefundPlan>, LoyaltyError> {
        if let Share::Money(m) = share {
            if m <= Decimal::ZERO {
                return Err(LoyaltyError::InvalidAmount {
                    field: "amount",
                    reason: "a refunded amount must be positive".into(),
                });
            }
        }
        if let Share::Lines(lines) = share {
            if lines.is_empty() {
                return Err(LoyaltyError::InvalidRefund {
                    field: "lines".into(),
                    reason: "name at least one line".into(),
                });
            }
        }
        let mut plans = Vec::new();
        let mut without = 0;
        for e in self.earns_of(order) {
            let op = &self.ops[e as usize];
            if self.refunded.contains_key(&e) {
                continue;
            }
            let before = self.partial.get(&e).cloned().unwrap_or_default();
            let (money, lines) = match share {
                Share::All => (before.money, before.lines.clone()),
                Share::Money(m) => {
                    if op.money.is_none() {
                        without += 1;
                        continue;
                    }
                    let after = before.money.checked_add(m).unwrap_or(Decimal::MAX);
                    (after, before.lines.clone())
                }
                Share::Lines(lines) => {
                    let Some(earn) = self.lines.get(&e) else {
                        without += 1;
                        continue;
                    };
                    (before.money, Self::lines_after(earn, &before.lines, lines)?)
                }
            };
            let target = match share {
                Share::All => op.points,
                _ => self.partial_target(e, money, &lines),
            };
            let t = &self.transfers[(op.first - 1) as usize];
            let mut plan = RefundPlan {
                earn: e,
                source: t.id,
                void: None,
                bucket: op.bucket,
                account: t.credit,
                amount: t.amount,
                target,
                full: target == op.points,
                before,
                money,
                lines,
            };
            if op.pending {
                let mut pt = op.first;
                while let Some(Resolution::Moved { to }) = self.resolved.get(&pt) {
                    pt = *to;
                }
                let ptr = &self.transfers[(pt - 1) as usize];
                plan.account = ptr.credit;
                plan.amount = ptr.amount;
                match self.resolved.get(&pt) {
                    None => plan.void = Some(pt),
                    Some(Resolution::Posted { bucket, .. }) => plan.bucket = *bucket,
                    _ => continue,
                }
            }
            plans.push(plan);
        }
        if plans.is_empty() {
            return Err(LoyaltyError::NotPending {
                key: order.to_owned(),
                state: match share {
                    _ if without == 0 => {
                        "no earn to refund for this order (unknown or already refunded)"
                    }
                    Share::Lines(_) => {
                        "no earn of this order records its lines: refund by amount or whole"
                    }
                    _ => "no earn of this order records the order amount: refund it whole",
                },
            });
        }
        Ok(plans)
    }

    fn refund_share(
        &mut self,
        order: &str,
        key: &str,
        time: DateTime<Utc>,
        share: Share<'_>,
    ) -> Result<Posting, LoyaltyError> {
        let print = Self::refund_print(order, share);
        if let Some(p) = self.replay(key, print)? {
            return Ok(p);
        }
        let plans = self.plan_refund(order, share)?;
        // Checks done. Every amount below is bounded by points already in the accounts: no
        // overflow, nothing fails.
        let mut op = self.new_op_keyed(key, OpKind::Refund, print);
        if let Share::Money(m) = share {
            op.money = Some(m);
        }
        let o = self.push_op(op);
        // Recorded after push so that `by_order` does not list the refund as an earn.
        self.ops[o as usize].order = Some(order.into());
        let mut reversed_total = 0;
        let mut clawed_total = 0;
        let mut last_account = None;
        for p in plans {
            let delta = p.target - p.before.points;
            let mut after = PartialRefund {
                money: p.money,
                points: p.target,
                used: p.before.used,
                lines: p.lines,
            };
            let account = self.follow(p.account).unwrap_or(p.account);
            last_account = Some(account);
            if let Some(pt) = p.void {
                // Release the refunded share of a pending earn: void it, re-open the rest.
                if delta > 0 {
                    let tr = self.transfers[(pt - 1) as usize].clone();
                    let by = self.transfer(
                        o,
                        tr.debit,
                        tr.credit,
                        tr.amount,
                        TransferKind::Void,
                        time,
                        Some(pt),
                        None,
                    );
                    let keep = tr.amount - delta;
                    let res = if keep > 0 {
                        let to = self.transfer(
                            o,
                            tr.debit,
                            tr.credit,
                            keep,
                            TransferKind::PendingEarn,
                            time,
                            None,
                            tr.expires,
                        );
                        Resolution::Moved { to }
                    } else {
                        Resolution::Voided { by }
                    };
                    self.resolved.insert(pt, res);
                }
            } else if delta > 0 {
                let (r, c, used) = self.take_back(
                    &p.before, p.bucket, p.amount, delta, account, o, p.source, time,
                );
                reversed_total += r;
                clawed_total += c;
                after.used += used;
            }
            if p.full {
                self.refunded.insert(p.earn, o);
                self.partial.remove(&p.earn);
            } else {
                self.partial.insert(p.earn, after);
            }
        }
        self.ops[o as usize].points = reversed_total;
        self.ops[o as usize].other = clawed_total;
        Ok(self.finish_op(o, last_account))
    }

    /// Take `delta` posted points of an earn back: first reverse what its bucket chain still
    /// holds, then claw back points already used (by policy), forgiving expired ones. Returns
    /// (reversed, clawed, used points settled).
    #[allow(clippy::too_many_arguments)]
    fn take_back(
        &mut self,
        before: &PartialRefund,
        bucket: Option<u32>,
        posted: Points,
        delta: Points,
        account: AccountId,
        o: u32,
        source: u64,
        time: DateTime<Utc>,
    ) -> (Points, Points, Points) {
        let book = self.accounts[account.0 as usize].book;
        let (issuance, clawback) = {
            let b = &self.books[book.0 as usize];
            (b.issuance, b.clawback)
        };
        let (rem, expired, reversed, ids) = bucket.map_or((0, 0, 0, Vec::new()), |b| self.chain(b));
        let used = posted - rem - expired - reversed;
        let rev = delta.min(rem);
        if rev > 0 {
            let mut need = rev;
            for &b in &ids {
                let bucket = &mut self.buckets[b as usize];
                let take = bucket.remaining().min(need);
                if take == 0 {
                    continue;
                }
                bucket.reversed += take;
                need -= take;
                if bucket.remaining() == 0 {
                    let acc = bucket.account;
                    let old = self.front(acc);
                    self.accounts[acc.0 as usize].live.retain(|&x| x != b);
                    self.refront(acc, old);
                }
                if need == 0 {
                    break;
                }
            }
            self.transfer(
                o,
                account,
                issuance,
                rev,
                TransferKind::Reversal,
                time,
                Some(source),
                None,
            );
        }
        let owed = (delta - rev).min(used - before.used).max(0);
        let mut clawed = 0;
        if owed > 0 && clawback != Clawback::None {
            let taken = self.take_fifo(account, owed);
            // Debt is capped so that the balance stays within i64; the rest is forgiven.
            let floor =
                i128::from(self.accounts[account.0 as usize].points()) + i128::from(Points::MAX);
            let debt = if clawback == Clawback::Debt {
                clamp(i128::from(owed - taken).min(floor).max(0))
            } else {
                0
            };
            self.accounts[account.0 as usize].debt += debt;
            if taken + debt > 0 {
                self.transfer(
                    o,
                    account,
                    issuance,
                    taken + debt,
                    TransferKind::Clawback,
                    time,
                    Some(source),
                    None,
                );
                clawed = taken + debt;
            }
        }
        (rev, clawed, owed)
    }

    /// Expire every bucket whose expiry is at or before `now`. Returns the points expired (all
    /// members together, so wider than one balance) and the transfers written (one per member
    /// account).
    pub fn expire(&mut self, now: DateTime<Utc>) -> (i128, Vec<u64>) {
        let mut total: i128 = 0;
        let mut written = Vec::new();
        let mut op: Option<u32> = None;
        let mut accounts: Vec<AccountId> = self
            .index
            .fronts
            .range(..=(now, AccountId(u32::MAX)))
            .map(|&(_, a)| a)
            .collect();
        accounts.sort_unstable();
        for AccountId(a) in accounts {
            let a = a as usize;
            let old = self.front(AccountId(a as u32));
            let acc = &self.accounts[a];
            let due = acc
                .live
                .iter()
                .take_while(|&&b| self.buckets[b as usize].expires.is_some_and(|e| e <= now))
                .count();
            if due == 0 {
                continue;
            }
            let ids: Vec<u32> = self.accounts[a].live.drain(..due).collect();
            self.refront(AccountId(a as u32), old);
            let mut points = 0;
            for b in ids {
                let bucket = &mut self.buckets[b as usize];
                let r = bucket.remaining();
                bucket.expired += r;
                points += r;
            }
            let book = self.accounts[a].book;
            let expiry = self.books[book.0 as usize].expiry;
            let o = *op.get_or_insert_with(|| {
                let new = self.new_op_keyed("", OpKind::Expire, 0);
                let i = self.ops.len() as u32;
                self.ops.push(new);
                i
            });
            written.push(self.transfer(
                o,
                AccountId(a as u32),
                expiry,
                points,
                TransferKind::Expire,
                now,
                None,
                None,
            ));
            total += i128::from(points);
        }
        if let Some(o) = op {
            self.ops[o as usize].points = clamp(total);
            self.finish_op(o, None);
        }
        (total, written)
    }

    /// Convert points of `src` into `dst` at `rate`: whole lots only, the remainder stays.
    /// Converted points expire by `dst_expires`.
    #[allow(clippy::too_many_arguments)]
    pub fn convert(
        &mut self,
        user: OneId,
        src: BookId,
        dst: BookId,
        points: Points,
        rate: Rate,
        key: &str,
        time: DateTime<Utc>,
        dst_expires: Option<DateTime<Utc>>,
    ) -> Result<Posting, LoyaltyError> {
        let print = Print::new(OpKind::Convert)
            .u64(user.0)
            .u64(u64::from(src.0))
            .u64(u64::from(dst.0))
            .u64(points as u64)
            .0;
        if let Some(p) = self.replay(key, print)? {
            return Ok(p);
        }
        positive("points", points)?;
        if rate.from <= 0 || rate.to <= 0 {
            return Err(LoyaltyError::InvalidAmount {
                field: "rate",
                reason: "a rate needs positive lot sizes".into(),
            });
        }
        let (sb, db) = (
            self.book_checked(src)?.clone(),
            self.book_checked(dst)?.clone(),
        );
        if src == dst {
            return Err(LoyaltyError::InvalidAmount {
                field: "dst",
                reason: "source and destination are the same program".into(),
            });
        }
        let account =
            self.member_account(src, user)
                .ok_or_else(|| LoyaltyError::UnknownAccount {
                    program: sb.program.clone(),
                    user: format!("OneID {user}"),
                })?;
        let lots = points / rate.from;
        let used = lots * rate.from;
        if lots == 0 {
            return Err(LoyaltyError::InvalidAmount {
                field: "points",
                reason: format!(
                    "{points} points make no whole lot of {} at this rate",
                    rate.from
                ),
            });
        }
        let out = lots
            .checked_mul(rate.to)
            .ok_or_else(|| overflow("points"))?;
        let available = self
            .live_points(account)
            .min(self.accounts[account.0 as usize].points());
        if available < used {
            return Err(LoyaltyError::InsufficientPoints {
                available,
                requested: used,
            });
        }
        if let Some(e) = dst_expires {
            if e <= time {
                return Err(LoyaltyError::ExpiryInPast { expires: e, time });
            }
        }
        let dst_acc = self.member_account(dst, user);
        if !self.can_credit(dst_acc, out)
            || !self.can_debit(db.conversion, out)
            || !self.can_credit(Some(sb.conversion), used)
        {
            return Err(overflow("points"));
        }
        let dst_acc = self.account_or_new(dst, user);
        let mut op = self.new_op_keyed(key, OpKind::Convert, print);
        op.points = used;
        op.other = out;
        let o = self.push_op(op);
        self.take_fifo(account, used);
        self.transfer(
            o,
            account,
            sb.conversion,
            used,
            TransferKind::ConvertOut,
            time,
            None,
            None,
        );
        let t = self.transfer(
            o,
            db.conversion,
            dst_acc,
            out,
            TransferKind::ConvertIn,
            time,
            None,
            dst_expires,
        );
        self.fill(dst_acc, out, dst_expires, t);
        Ok(self.finish_op(o, Some(account)))
    }

    /// Move everything `absorbed` holds to `survivor` (a OneID merge). Buckets keep their expiry
    /// dates. Where `convert` maps a program to another (with a rate), the absorbed member's
    /// points there are converted bucket by bucket (whole lots; each remainder moves unconverted,
    /// keeping its expiry). Pending earns move too. Never fails once `check_merge` passed.
    pub fn merge_accounts(
        &mut self,
        survivor: OneId,
        absorbed: OneId,
        convert: &BTreeMap<BookId, (BookId, Rate)>,
        time: DateTime<Utc>,
    ) -> Result<MergeReport, LoyaltyError> {
        self.check_merge(survivor, absorbed, convert)?;
        let mut report = MergeReport::default();
        if survivor == absorbed {
            return Ok(report);
        }
        let from: Vec<(BookId, AccountId)> = (0..self.books.len() as u32)
            .filter_map(|b| {
                self.member_account(BookId(b), absorbed)
                    .map(|a| (BookId(b), a))
            })
            .collect();
        if from.is_empty() {
            return Ok(report);
        }
        let o = {
            let op = self.new_op_keyed("", OpKind::Merge, 0);
            let i = self.ops.len() as u32;
            self.ops.push(op);
            i
        };
        for (book, src) in from {
            let dst = self.account_or_new(book, survivor);
            let program = self.books[book.0 as usize].program.clone();
            let conv = convert.get(&book).copied();
            let old = self.front(src);
            let live = std::mem::take(&mut self.accounts[src.0 as usize].live);
            self.refront(src, old);
            let mut moved_total: Points = 0;
            for b in live {
                let bucket = self.buckets[b as usize].clone();
                let rem = bucket.remaining();
                let (lots_pts, rest) = match conv {
                    Some((_, rate)) => {
                        let lots = rem / rate.from;
                        (lots * rate.from, rem - lots * rate.from)
                    }
                    None => (0, rem),
                };
                self.buckets[b as usize].moved += rem;
                if lots_pts > 0 {
                    let (db, rate) = conv.expect("lots only with a conversion");
                    let out = lots_pts / rate.from * rate.to;
                    let (sconv, dconv) = (
                        self.books[book.0 as usize].conversion,
                        self.books[db.0 as usize].conversion,
                    );
                    let dacc = self.account_or_new(db, survivor);
                    self.transfer(
                        o,
                        src,
                        sconv,
                        lots_pts,
                        TransferKind::ConvertOut,
                        time,
                        None,
                        None,
                    );
                    let t = self.transfer(
                        o,
                        dconv,
                        dacc,
                        out,
                        TransferKind::ConvertIn,
                        time,
                        None,
                        bucket.expires,
                    );
                    self.fill(dacc, out, bucket.expires, t);
                    let dprog = self.books[db.0 as usize].program.clone();
                    *report
                        .converted_out
                        .entry(format!("{program}->{dprog}"))
                        .or_default() += lots_pts;
                    *report.converted_in.entry(dprog).or_default() += out;
                }
                if rest > 0 {
                    let nb = self.buckets.len() as u32;
                    self.buckets.push(Bucket {
                        account: dst,
                        earned: rest,
                        spent: 0,
                        expired: 0,
                        reversed: 0,
                        moved: 0,
                        expires: bucket.expires,
                        source: self.transfers.len() as u64 + 1,
                        moved_to: None,
                    });
                    self.buckets[b as usize].moved_to = Some(nb);
                    self.insert_live(dst, nb);
                    moved_total += rest;
                }
                report.buckets += 1;
            }
            let debt = std::mem::take(&mut self.accounts[src.0 as usize].debt);
            self.accounts[dst.0 as usize].debt += debt;
            let net = moved_total - debt;
            if net > 0 {
                self.transfer(o, src, dst, net, TransferKind::Merge, time, None, None);
            } else if net < 0 {
                self.transfer(o, dst, src, -net, TransferKind::Merge, time, None, None);
            }
            if net != 0 {
                report.moved.insert(program.clone(), net);
            }
            // The survivor may now hold both debt and points: settle the debt from the points.
            let owed = self.accounts[dst.0 as usize].debt;
            if owed > 0 {
                let taken = self.take_fifo(dst, owed);
                self.accounts[dst.0 as usize].debt -= taken;
            }
            // Pending earns: void on the absorbed account, re-open on the survivor.
            let pend = self.accounts[src.0 as usize].open_pending.clone();
            for pt in pend {
                let tr = self.transfers[(pt - 1) as usize].clone();
                self.transfer(
                    o,
                    tr.debit,
                    tr.credit,
                    tr.amount,
                    TransferKind::Void,
                    time,
                    Some(pt),
                    None,
                );
                let to = self.transfer(
                    o,
                    tr.debit,
                    dst,
                    tr.amount,
                    TransferKind::PendingEarn,
                    time,
                    None,
                    tr.expires,
                );
                self.resolved.insert(pt, Resolution::Moved { to });
                report.pending += 1;
            }
            self.accounts[src.0 as usize].merged_into = Some(dst);
            self.index.members.remove(&(book, absorbed));
        }
        let p = self.finish_op(o, None);
        report.transfers = p.transfers;
        Ok(report)
    }

    /// Every check of a merge, before any change: no balance of the survivor may overflow.
    fn check_merge(
        &self,
        survivor: OneId,
        absorbed: OneId,
        convert: &BTreeMap<BookId, (BookId, Rate)>,
    ) -> Result<(), LoyaltyError> {
        for (&src, &(dst, rate)) in convert {
            self.book_checked(src)?;
            self.book_checked(dst)?;
            if src == dst || rate.from <= 0 || rate.to <= 0 {
                return Err(LoyaltyError::InvalidAmount {
                    field: "convert",
                    reason: "a merge conversion needs two programs and positive lot sizes".into(),
                });
            }
        }
        if survivor == absorbed {
            return Ok(());
        }
        // Upper bound of what each survivor account could receive, checked with i128.
        let mut incoming: BTreeMap<BookId, i128> = BTreeMap::new();
        for b in 0..self.books.len() as u32 {
            let book = &BookId(b);
            let Some(a) = self.member_account(*book, absorbed) else {
                continue;
            };
            let acc = &self.accounts[a.0 as usize];
            let held = acc.balance() + i128::from(acc.debt) + acc.credits_pending;
            *incoming.entry(*book).or_default() += held;
            if let Some((dst, rate)) = convert.get(book) {
                let out = held / i128::from(rate.from) * i128::from(rate.to);
                *incoming.entry(*dst).or_default() += out;
            }
        }
        for (book, add) in incoming {
            let have = self.member_account(book, survivor).map_or(0i128, |a| {
                let acc = &self.accounts[a.0 as usize];
                acc.balance().max(0) + acc.credits_pending
            });
            if have + add > i128::from(Points::MAX) {
                return Err(overflow("merge"));
            }
        }
        Ok(())
    }

    /// Erasure (SPEC §9): re-key every account of member `user` to `pseudonym` and strip from
    /// the writes on those accounts whatever could name the person: free text (reason, actor)
    /// cleared, idempotency and order keys replaced by `erased:<pseudonym>:<op>` (a pending
    /// earn's post or void keeps sharing the earn's new key), content fingerprints zeroed.
    /// Transfers, amounts, times and buckets are untouched, so every balance and invariant holds
    /// as before. Returns the number of accounts re-keyed. Expiry runs and merges carry no key
    /// or text and are left as they are. The old keys no longer replay: a write sent again
    /// with one after the erasure is a new write (and must name a live person to succeed).
    pub fn pseudonymize_account(&mut self, user: OneId, pseudonym: OneId) -> usize {
        let mine: std::collections::BTreeSet<u32> = (0..self.accounts.len() as u32)
            .filter(|&a| self.accounts[a as usize].kind == AccountKind::Member(user))
            .collect();
        if mine.is_empty() {
            return 0;
        }
        for &a in &mine {
            self.accounts[a as usize].kind = AccountKind::Member(pseudonym);
        }
        let ops: std::collections::BTreeSet<u32> = self
            .transfers
            .iter()
            .filter(|t| mine.contains(&t.debit.0) || mine.contains(&t.credit.0))
            .map(|t| t.op)
            .collect();
        let mut renamed: BTreeMap<Box<str>, Box<str>> = BTreeMap::new();
        for op in ops {
            let o = &mut self.ops[op as usize];
            if !o.key.is_empty() {
                let new = renamed
                    .entry(o.key.clone())
                    .or_insert_with(|| format!("erased:{}:{op}", pseudonym.0).into())
                    .clone();
                o.key = new;
            }
            if o.order.is_some() {
                o.order = Some(format!("erased:{}:{op}:order", pseudonym.0).into());
            }
            o.note = None;
            o.print = 0;
        }
        self.rebuild_index();
        mine.len()
    }

    /// Check every ledger invariant. `Err` names the first one broken. The property tests call
    /// this after every operation; it is the one place the invariants are written down.
    ///
    /// 1. Every transfer moves a positive amount between two accounts of the same program.
    /// 2. Every account's posted and pending debits and credits equal the sums of its transfers.
    /// 3. The sum of all posted balances is zero, per program and overall.
    /// 4. Every bucket is conserved (`earned = spent + expired + reversed + moved + remaining`)
    ///    and never below zero.
    /// 5. Every member balance is `Σ live bucket remaining − debt`; live buckets are in expiry
    ///    order and non-empty; debt ≥ 0; a balance below zero only as debt.
    /// 6. A partly refunded earn has given back fewer points than it earned (and no more used
    ///    points than it gave back), and is not also fully refunded; what it gave back is what
    ///    its refunded money and lines come to; no line is refunded beyond its units or money.
    /// 7. The lines an earn recorded share out exactly its points.
    pub fn check_invariants(&self) -> Result<(), String> {
        let n = self.accounts.len();
        let mut sums = vec![[0i128; 4]; n]; // debits_posted, credits_posted, debits_pending, credits_pending
        let mut pending_open: BTreeMap<u64, Points> = BTreeMap::new();
        for t in &self.transfers {
            if t.amount <= 0 {
                return Err(format!("transfer {} has amount {}", t.id, t.amount));
            }
            let (d, c) = (t.debit.0 as usize, t.credit.0 as usize);
            if d >= n || c >= n || d == c {
                return Err(format!("transfer {} has bad accounts", t.id));
            }
            if self.accounts[d].book != self.accounts[c].book {
                return Err(format!("transfer {} crosses programs", t.id));
            }
            let a = i128::from(t.amount);
            match t.kind {
                TransferKind::PendingEarn => {
                    sums[d][2] += a;
                    sums[c][3] += a;
                    pending_open.insert(t.id, t.amount);
                }
                TransferKind::Post | TransferKind::Void => {
                    let p = t
                        .linked
                        .ok_or(format!("transfer {} has no pending link", t.id))?;
                    if pending_open.remove(&p) != Some(t.amount) {
                        return Err(format!("transfer {} resolves {p} which is not open", t.id));
                    }
                    sums[d][2] -= a;
                    sums[c][3] -= a;
                    if t.kind == TransferKind::Post {
                        sums[d][0] += a;
                        sums[c][1] += a;
                    }
                }
                _ => {
                    sums[d][0] += a;
                    sums[c][1] += a;
                }
            }
        }
        let mut total: i128 = 0;
        let mut per_book = vec![0i128; self.books.len()];
        let mut live_sum = vec![0i128; n];
        for (i, acc) in self.accounts.iter().enumerate() {
            let got = [
                acc.debits_posted,
                acc.credits_posted,
                acc.debits_pending,
                acc.credits_pending,
            ];
            if got != sums[i] {
                return Err(format!(
                    "account {i}: counters {got:?} but its transfers sum to {:?}",
                    sums[i]
                ));
            }
            total += acc.balance();
            per_book[acc.book.0 as usize] += acc.balance();
        }
        if total != 0 || per_book.iter().any(|&s| s != 0) {
            return Err(format!(
                "balances do not sum to zero: {total} ({per_book:?})"
            ));
        }
        for (i, b) in self.buckets.iter().enumerate() {
            let parts = [b.spent, b.expired, b.reversed, b.moved, b.remaining()];
            if b.earned <= 0 || parts.iter().any(|&p| p < 0) {
                return Err(format!("bucket {i} is out of range: {b:?}"));
            }
            if i128::from(b.earned) != parts.iter().map(|&p| i128::from(p)).sum::<i128>() {
                return Err(format!("bucket {i} is not conserved: {b:?}"));
            }
        }
        for (i, acc) in self.accounts.iter().enumerate() {
            let mut last = None;
            for &b in &acc.live {
                let bucket = self
                    .buckets
                    .get(b as usize)
                    .ok_or(format!("account {i} lists missing bucket {b}"))?;
                if bucket.account.0 as usize != i || bucket.remaining() <= 0 {
                    return Err(format!("account {i}: live bucket {b} is foreign or empty"));
                }
                let rank = expiry_rank(bucket.expires);
                if last.is_some_and(|l| l > rank) {
                    return Err(format!("account {i}: live buckets out of expiry order"));
                }
                last = Some(rank);
                live_sum[i] += i128::from(bucket.remaining());
            }
        }
        for (&e, pr) in &self.partial {
            let op = self
                .ops
                .get(e as usize)
                .ok_or(format!("partial refund of missing op {e}"))?;
            if op.kind != OpKind::Earn
                || self.refunded.contains_key(&e)
                || !(0..op.points).contains(&pr.points)
                || !(0..=pr.points).contains(&pr.used)
            {
                return Err(format!("partial refund of op {e} is out of range: {pr:?}"));
            }
            let earn: &[EarnLine] = self.lines.get(&e).map_or(&[], |l| l);
            let lines_ok = pr.lines.is_empty()
                || (pr.lines.len() == earn.len()
                    && pr
                        .lines
                        .iter()
                        .zip(earn)
                        .all(|(r, l)| r.qty <= l.qty && r.money <= l.value));
            if !lines_ok || pr.points != self.partial_target(e, pr.money, &pr.lines) {
                return Err(format!(
                    "partial refund of op {e} does not match its lines and money: {pr:?}"
                ));
            }
        }
        for (&e, lines) in &self.lines {
            let op = self
                .ops
                .get(e as usize)
                .ok_or(format!("lines of missing op {e}"))?;
            let sum = lines.iter().map(|l| i128::from(l.points)).sum::<i128>();
            if op.kind != OpKind::Earn
                || sum != i128::from(op.points)
                || lines.iter().any(|l| l.points < 0 || l.qty == 0)
            {
                return Err(format!(
                    "the lines of earn op {e} do not add up to its points"
                ));
            }
        }
        let fronts: std::collections::BTreeSet<(DateTime<Utc>, AccountId)> = (0..n as u32)
            .filter_map(|a| self.front(AccountId(a)).map(|f| (f, AccountId(a))))
            .collect();
        if fronts != self.index.fronts {
            return Err("the expiry index is out of step with the live buckets".into());
        }
        for (i, b) in self.buckets.iter().enumerate() {
            let listed = self.accounts[b.account.0 as usize]
                .live
                .contains(&(i as u32));
            if (b.remaining() > 0) != listed {
                return Err(format!(
                    "bucket {i}: live = {listed} but remaining = {}",
                    b.remaining()
                ));
            }
        }
        for (i, acc) in self.accounts.iter().enumerate() {
            match acc.kind {
                AccountKind::Member(_) => {
                    if acc.debt < 0 {
                        return Err(format!("account {i} has negative debt"));
                    }
                    if acc.balance() != live_sum[i] - i128::from(acc.debt)
                        || acc.balance().abs() > i128::from(Points::MAX)
                    {
                        return Err(format!(
                            "account {i}: balance {} but buckets hold {} and debt is {}",
                            acc.balance(),
                            live_sum[i],
                            acc.debt
                        ));
                    }
                    if acc.debt > 0 && live_sum[i] > 0 {
                        return Err(format!("account {i} holds points and debt at once"));
                    }
                    if acc.merged_into.is_some() && (acc.balance() != 0 || acc.credits_pending != 0)
                    {
                        return Err(format!("merged account {i} still holds points"));
                    }
                }
                _ => {
                    if acc.debt != 0 || !acc.live.is_empty() {
                        return Err(format!("system account {i} holds buckets or debt"));
                    }
                }
            }
        }
        Ok(())
    }
}
