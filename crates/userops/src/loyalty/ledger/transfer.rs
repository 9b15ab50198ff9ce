//! Transfers and the member writes made of them: earn, spend, and resolving a pending earn.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::keys::{OpKind, Posting, Print};
use super::{overflow, positive, AccountId, AccountKind, BookId, Ledger, Points};
use crate::ids::OneId;
use crate::loyalty::LoyaltyError;

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
    /// Between the parts of a OneID split: what a merge moved, going back.
    Split,
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
    /// The time of the write that made it (for an expiry run, the run's `now`).
    pub time: DateTime<Utc>,
    /// For `post`/`void`: the pending transfer; for reversals: the earn transfer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked: Option<u64>,
    /// For earns: when the points expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
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

/// What every member write names: who, in which program, how many points, under which
/// idempotency key, why, by whom and when. A spend is exactly this; an earn adds where the
/// points go ([`Earn`]).
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The member's OneID (a spend needs their account in `book`; an earn opens it).
    pub user: OneId,
    /// The program's books.
    pub book: BookId,
    /// Points (> 0).
    pub points: Points,
    /// Idempotency key.
    pub key: &'a str,
    /// Why: free text kept in the op's note; part of the write's fingerprint.
    pub reason: &'a str,
    /// Who: free text kept in the op's note; not part of the fingerprint.
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

impl Ledger {
    /// Write a transfer; amounts were checked by the caller (no overflow possible).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the transfer record"
    )]
    pub(super) fn transfer(
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
    pub(super) fn can_credit(&self, a: Option<AccountId>, amount: Points) -> bool {
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

    pub(super) fn can_debit(&self, a: AccountId, amount: Points) -> bool {
        let acc = &self.accounts[a.0 as usize];
        !matches!(acc.kind, AccountKind::Member(_))
            || acc.balance() - i128::from(amount) >= -i128::from(Points::MAX)
    }

    /// Earn points (posted at once, or pending). See [`Earn`].
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. `invalid_argument`: an empty key. `ledger_duplicate_key`: the
    /// key already wrote other content (a faithful replay is no error: it returns the first result
    /// marked `duplicate`). `invalid_amount`: points not above 0, an order amount not above 0,
    /// lines with no units or a negative value or points, lines whose points do not sum to the
    /// earn's, or a balance that would overflow. `not_found`: an unknown book. `expiry_in_past`:
    /// `expires` not after the earn's time.
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
    ///
    /// # Errors
    ///
    /// As [`Ledger::earn`].
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
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. `invalid_argument`: an empty key. `ledger_duplicate_key`: the
    /// key already wrote other content. `invalid_amount`: points not above 0, or a balance that
    /// would overflow. `not_found`: an unknown book. `unknown_account`: the member has no account
    /// in the program. `insufficient_points`: the balance plus the program's overdraft is short.
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
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. `not_pending`: the key is unknown, is not a pending earn's, or
    /// was resolved the other way already. `invalid_amount`: posting would overflow the
    /// member's balance.
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
}
