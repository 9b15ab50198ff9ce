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

mod buckets;
mod convert;
mod expire;
mod invariants;
mod keys;
mod merge;
mod pseudonymize;
mod refund;
mod transfer;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::LoyaltyError;
use crate::ids::OneId;

pub use buckets::Bucket;
pub use convert::Rate;
pub use keys::{Note, Op, OpKind, Posting};
pub use merge::MergeReport;
pub(in crate::loyalty) use merge::MergeUndo;
pub use refund::{LineRefunded, PartialRefund};
pub use transfer::{Earn, EarnLine, Entry, Resolution, Spend, Transfer, TransferKind};

use crate::sharded::ShardedMap;
use keys::KeyIndex;

/// An amount of points.
pub type Points = i64;

/// The dense index of an account in the ledger.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
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

/// What a refund does with points of the refunded earn that the member already used.
///
/// The default is [`Clawback::Balance`]: a balance never goes below zero (SPEC §6) unless the
/// program allows it — by `overdraft` for spends, by [`Clawback::Debt`] for refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Clawback {
    /// Spent points of a refunded earn are forgiven.
    None,
    /// Taken from the member's other points as far as they go; the rest is forgiven, so the
    /// balance stays ≥ 0 (the default).
    #[default]
    Balance,
    /// Taken from the member's other points; the rest becomes debt (a negative balance),
    /// repaid first by later earns. Only where the program says so (`"clawback": "debt"`).
    Debt,
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

#[derive(Debug, Clone, Default, PartialEq)]
struct Index {
    by_key: KeyIndex,
    members: ShardedMap<(BookId, OneId), AccountId>,
    /// Explicit order keys → earns (an earn without one is found by its own key).
    by_order: ShardedMap<String, Vec<u32>>,
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
}
