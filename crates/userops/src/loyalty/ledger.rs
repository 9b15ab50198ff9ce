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
use serde::{Deserialize, Serialize};

use super::LoyaltyError;
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

/// An earn request.
#[derive(Debug, Clone)]
pub struct Earn<'a> {
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
    /// Expiry (must be after `time`).
    pub expires: Option<DateTime<Utc>>,
    /// Hold as pending.
    pub pending: bool,
    /// The order the earn is tied to (default: its key).
    pub order: Option<&'a str>,
}

/// A spend request.
#[derive(Debug, Clone)]
pub struct Spend<'a> {
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
    /// Time.
    pub time: DateTime<Utc>,
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

#[derive(Debug, Clone, Default, PartialEq)]
struct Index {
    by_key: FastMap<String, u32>,
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
    #[serde(skip)]
    index: Index,
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
                index.by_key.insert(op.key.to_string(), i as u32);
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
            return Err(LoyaltyError::InvalidAmount {
                field: "key",
                reason: "an idempotency key must not be empty".into(),
            });
        }
        match self.index.by_key.get(key) {
            None => Ok(None),
            Some(&i) => {
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
            self.index.by_key.insert(op.key.to_string(), i);
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

    fn new_op(&self, key: &str, kind: OpKind, print: u64) -> Op {
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
        }
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
        // Equal expiries keep insertion order (oldest first): insert after them.
        let pos = live.partition_point(|&x| expiry_rank(self.buckets[x as usize].expires) <= rank);
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
        let issuance = self.books[r.book.0 as usize].issuance;
        // Checks done: from here on nothing fails.
        let account = self.account_or_new(r.book, r.user);
        Ok(self.earn_tail(r, print, issuance, account))
    }

    fn earn_print(r: &Earn<'_>) -> u64 {
        Print::new(OpKind::Earn)
            .u64(r.user.0)
            .u64(u64::from(r.book.0))
            .u64(r.points as u64)
            .str(r.reason)
            .time(r.expires)
            .u64(u64::from(r.pending))
            .str(r.order.unwrap_or(r.key))
            .0
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
        match self.replay(r.key, print) {
            Ok(Some(p)) => return Err(Ok(p)),
            Ok(None) => {}
            Err(e) => return Err(Err(e)),
        }
        self.check_earn_rest(r).map_err(Err)?;
        Ok(print)
    }

    fn check_earn_rest(&self, r: &Earn<'_>) -> Result<(), LoyaltyError> {
        positive("points", r.points)?;
        let issuance = self.book_checked(r.book)?.issuance;
        if let Some(e) = r.expires {
            if e <= r.time {
                return Err(LoyaltyError::ExpiryInPast {
                    expires: e,
                    time: r.time,
                });
            }
        }
        let existing = self.member_account(r.book, r.user);
        if !self.can_credit(existing, r.points) || !self.can_debit(issuance, r.points) {
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
        let mut op = self.new_op(r.key, OpKind::Earn, print);
        op.order = r.order.map(Box::from);
        op.note = note(r.reason, r.actor);
        op.points = r.points;
        op.pending = r.pending;
        let o = self.push_op(op);
        let kind = if r.pending {
            TransferKind::PendingEarn
        } else {
            TransferKind::Earn
        };
        let t = self.transfer(
            o, issuance, account, r.points, kind, r.time, None, r.expires,
        );
        if !r.pending {
            self.ops[o as usize].bucket = self.fill(account, r.points, r.expires, t);
        }
        self.finish_op(o, Some(account))
    }

    /// Spend points, earliest-expiring bucket first. Beyond the balance only within the
    /// program's overdraft (the shortfall becomes debt).
    pub fn spend(&mut self, r: &Spend<'_>) -> Result<Posting, LoyaltyError> {
        let print = Print::new(OpKind::Spend)
            .u64(r.user.0)
            .u64(u64::from(r.book.0))
            .u64(r.points as u64)
            .str(r.reason)
            .0;
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
        let mut op = self.new_op(r.key, OpKind::Spend, print);
        op.note = note(r.reason, r.actor);
        op.points = r.points;
        let o = self.push_op(op);
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
        let &o = self
            .index
            .by_key
            .get(key)
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
        let mut op = self.new_op(key, kind, 0);
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

    /// Points of the bucket chain `b` (following merges): (remaining, expired).
    fn chain(&self, mut b: u32) -> (Points, Points, Vec<u32>) {
        let (mut rem, mut exp, mut ids) = (0, 0, Vec::new());
        loop {
            let bucket = &self.buckets[b as usize];
            rem += bucket.remaining();
            exp += bucket.expired;
            ids.push(b);
            match bucket.moved_to {
                Some(n) => b = n,
                None => break,
            }
        }
        (rem, exp, ids)
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
        let print = Print::new(OpKind::Refund).str(order).0;
        if let Some(p) = self.replay(key, print)? {
            return Ok(p);
        }
        let mut earns: Vec<u32> = self.index.by_order.get(order).cloned().unwrap_or_default();
        // An earn without an explicit order is tied to its own key.
        if let Some(&o) = self.index.by_key.get(order) {
            let op = &self.ops[o as usize];
            if op.kind == OpKind::Earn && op.order.is_none() {
                earns.push(o);
                earns.sort_unstable();
            }
        }
        // Plan: (earn op, pending transfer to void | posted bucket chain, earned amount).
        struct Plan {
            earn: u32,
            source: u64,
            void: Option<u64>,
            bucket: Option<u32>,
            account: AccountId,
            amount: Points,
        }
        let mut plans = Vec::new();
        for &e in &earns {
            let op = &self.ops[e as usize];
            if self.refunded.contains_key(&e) {
                continue;
            }
            let t = self.transfers[(op.first - 1) as usize].clone();
            if op.pending {
                let mut pt = op.first;
                while let Some(Resolution::Moved { to }) = self.resolved.get(&pt) {
                    pt = *to;
                }
                let ptr = &self.transfers[(pt - 1) as usize];
                match self.resolved.get(&pt) {
                    None => plans.push(Plan {
                        earn: e,
                        source: t.id,
                        void: Some(pt),
                        bucket: None,
                        account: ptr.credit,
                        amount: t.amount,
                    }),
                    Some(Resolution::Posted { bucket, .. }) => plans.push(Plan {
                        earn: e,
                        source: t.id,
                        void: None,
                        bucket: *bucket,
                        account: ptr.credit,
                        amount: t.amount,
                    }),
                    _ => {}
                }
            } else {
                plans.push(Plan {
                    earn: e,
                    source: t.id,
                    void: None,
                    bucket: op.bucket,
                    account: t.credit,
                    amount: t.amount,
                });
            }
        }
        if plans.is_empty() {
            return Err(LoyaltyError::NotPending {
                key: order.to_owned(),
                state: "no earn to refund for this order (unknown or already refunded)",
            });
        }
        // Every amount below is bounded by points already in the accounts: no overflow.
        let mut op = self.new_op(key, OpKind::Refund, print);
        op.order = None;
        let o = self.push_op(op);
        // Recorded after push so that `by_order` does not list the refund as an earn.
        self.ops[o as usize].order = Some(order.into());
        let mut reversed_total = 0;
        let mut clawed_total = 0;
        let mut last_account = None;
        for p in plans {
            self.refunded.insert(p.earn, o);
            let account = self.follow(p.account).unwrap_or(p.account);
            last_account = Some(account);
            let book = self.accounts[account.0 as usize].book;
            let (issuance, clawback) = {
                let b = &self.books[book.0 as usize];
                (b.issuance, b.clawback)
            };
            if let Some(pt) = p.void {
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
                self.resolved.insert(pt, Resolution::Voided { by });
                continue;
            }
            let (rem, expired, ids) = p.bucket.map_or((0, 0, Vec::new()), |b| self.chain(b));
            if rem > 0 {
                for &b in &ids {
                    let bucket = &mut self.buckets[b as usize];
                    let r = bucket.remaining();
                    bucket.reversed += r;
                    if r > 0 {
                        let acc = bucket.account;
                        let old = self.front(acc);
                        self.accounts[acc.0 as usize].live.retain(|&x| x != b);
                        self.refront(acc, old);
                    }
                }
                self.transfer(
                    o,
                    account,
                    issuance,
                    rem,
                    TransferKind::Reversal,
                    time,
                    Some(p.source),
                    None,
                );
                reversed_total += rem;
            }
            let owed = p.amount - rem - expired;
            if owed > 0 && clawback != Clawback::None {
                let taken = self.take_fifo(account, owed);
                // Debt is capped so that the balance stays within i64; the rest is forgiven.
                let floor = i128::from(self.accounts[account.0 as usize].points())
                    + i128::from(Points::MAX);
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
                        Some(p.source),
                        None,
                    );
                    clawed_total += taken + debt;
                }
            }
        }
        self.ops[o as usize].points = reversed_total;
        self.ops[o as usize].other = clawed_total;
        Ok(self.finish_op(o, last_account))
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
                let new = self.new_op("", OpKind::Expire, 0);
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
        let mut op = self.new_op(key, OpKind::Convert, print);
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
            let op = self.new_op("", OpKind::Merge, 0);
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
