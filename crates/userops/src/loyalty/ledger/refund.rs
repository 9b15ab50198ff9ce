//! Refunds: reversing what an order earned, in full, by a share of its money, or by lines.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::keys::{OpKind, Posting, Print};
use super::transfer::{EarnLine, Resolution, TransferKind};
use super::{clamp, AccountId, Clawback, Ledger, Points};
use crate::event::RefundLine;
use crate::loyalty::LoyaltyError;

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
    /// The whole order: whatever its earns have not given back yet.
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

impl Ledger {
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
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. `invalid_argument`: an empty key. `ledger_duplicate_key`: the
    /// key already wrote other content. `not_pending`: no earn of the order is left to refund (an
    /// unknown order, or one refunded whole already).
    pub fn refund(
        &mut self,
        order: &str,
        key: &str,
        time: DateTime<Utc>,
    ) -> Result<Posting, LoyaltyError> {
        self.refund_share(order, None, key, time, Share::All)
    }

    /// Refund `money` of an order (a partial refund). Each earn tied to the order that records
    /// its order amount (see [`Earn::money`](super::Earn::money)) gives back the points of the refunded
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
    ///
    /// # Errors
    ///
    /// As [`Ledger::refund`]; also `invalid_amount` for `money` not above 0, and `not_pending` when
    /// no earn of the order records its amount.
    pub fn refund_amount(
        &mut self,
        order: &str,
        key: &str,
        time: DateTime<Utc>,
        money: Decimal,
    ) -> Result<Posting, LoyaltyError> {
        self.refund_share(order, None, key, time, Share::Money(money))
    }

    /// Refund named lines of an order: each earn tied to the order that records its lines (see
    /// [`Earn::lines`](super::Earn::lines)) gives back what those lines earned. A line's refunded share is
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
    ///
    /// # Errors
    ///
    /// As [`Ledger::refund`]; also `invalid_amount` ([`LoyaltyError::InvalidRefund`]) for no line
    /// named, a malformed or unknown line, a qty above the units left or an amount above the money
    /// left, and `not_pending` when no earn of the order records its lines.
    pub fn refund_lines(
        &mut self,
        order: &str,
        key: &str,
        time: DateTime<Utc>,
        lines: &[RefundLine],
    ) -> Result<Posting, LoyaltyError> {
        self.refund_share(order, None, key, time, Share::Lines(lines))
    }

    /// Every check of [`Ledger::refund_lines`], changing nothing.
    ///
    /// # Errors
    ///
    /// As [`Ledger::refund_lines`].
    pub fn check_refund_lines(
        &self,
        order: &str,
        key: &str,
        lines: &[RefundLine],
    ) -> Result<(), LoyaltyError> {
        self.check_lines(order, None, key, lines)
    }

    fn check_lines(
        &self,
        order: &str,
        only: Option<&[String]>,
        key: &str,
        lines: &[RefundLine],
    ) -> Result<(), LoyaltyError> {
        let share = Share::Lines(lines);
        if self
            .replay(key, Self::refund_print(order, share))?
            .is_none()
        {
            self.plan_refund(order, only, share)?;
        }
        Ok(())
    }

    /// [`Ledger::refund_amount`] limited to the earns written under `earn_keys`: an order id
    /// is unique per source program only, so the engine's refund events name the earns of
    /// their own order (the source program's and its parents' `order:<program>:<id>`).
    ///
    /// # Errors
    ///
    /// As [`Ledger::refund_amount`], counting only the earns written under `earn_keys`.
    pub fn refund_amount_of(
        &mut self,
        order: &str,
        earn_keys: &[String],
        key: &str,
        time: DateTime<Utc>,
        money: Decimal,
    ) -> Result<Posting, LoyaltyError> {
        self.refund_share(order, Some(earn_keys), key, time, Share::Money(money))
    }

    /// [`Ledger::refund_lines`] limited to the earns written under `earn_keys` (see
    /// [`Ledger::refund_amount_of`]).
    ///
    /// # Errors
    ///
    /// As [`Ledger::refund_lines`], counting only the earns written under `earn_keys`.
    pub fn refund_lines_of(
        &mut self,
        order: &str,
        earn_keys: &[String],
        key: &str,
        time: DateTime<Utc>,
        lines: &[RefundLine],
    ) -> Result<Posting, LoyaltyError> {
        self.refund_share(order, Some(earn_keys), key, time, Share::Lines(lines))
    }

    /// Every check of [`Ledger::refund_lines_of`], changing nothing.
    ///
    /// # Errors
    ///
    /// As [`Ledger::refund_lines_of`].
    pub fn check_refund_lines_of(
        &self,
        order: &str,
        earn_keys: &[String],
        key: &str,
        lines: &[RefundLine],
    ) -> Result<(), LoyaltyError> {
        self.check_lines(order, Some(earn_keys), key, lines)
    }

    /// Check a refund of `money` of `order` under `key` against what was paid: for every
    /// earn tied to the order that records its amount, the money refunded with this refund
    /// must not exceed that amount ([`LoyaltyError::InvalidRefund`] at `amount` otherwise).
    /// A replay of the same refund passes. Changes nothing.
    ///
    /// # Errors
    ///
    /// `invalid_argument`: an empty key. `ledger_duplicate_key`: the key already wrote other
    /// content. `invalid_amount` ([`LoyaltyError::InvalidRefund`] at `amount`): the refunds of an
    /// earn's order would total more than its order amount.
    pub fn check_refund_amount(
        &self,
        order: &str,
        key: &str,
        money: Decimal,
    ) -> Result<(), LoyaltyError> {
        if self
            .replay(key, Self::refund_print(order, Share::Money(money)))?
            .is_some()
        {
            return Ok(());
        }
        for e in self.earns_of(order, None) {
            let Some(total) = self.ops[e as usize].money else {
                continue;
            };
            if self.refunded.contains_key(&e) {
                continue;
            }
            let before = self.partial.get(&e).map_or(Decimal::ZERO, |p| p.money);
            let after = before.checked_add(money).unwrap_or(Decimal::MAX);
            if after > total {
                return Err(LoyaltyError::InvalidRefund {
                    field: "amount".into(),
                    reason: format!(
                        "refunds of order {order:?} would total {after}, above the {total} paid \
                         ({before} refunded before)"
                    ),
                });
            }
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
    fn earns_of(&self, order: &str, only: Option<&[String]>) -> Vec<u32> {
        let mut earns: Vec<u32> = self.index.by_order.get(order).cloned().unwrap_or_default();
        // An earn without an explicit order is tied to its own key.
        if let Some(o) = self.index.by_key.get(&self.ops, order) {
            let op = &self.ops[o as usize];
            if op.kind == OpKind::Earn && op.order.is_none() {
                earns.push(o);
                earns.sort_unstable();
            }
        }
        if let Some(keys) = only {
            earns.retain(|&e| keys.iter().any(|k| **k == *self.ops[e as usize].key));
        }
        earns
    }

    /// Which of `earn` lines a refund line names (`i`: its place in the refund).
    fn line_of(earn: &[EarnLine], l: &RefundLine, i: usize) -> Result<usize, LoyaltyError> {
        l.find(earn.len(), |ix, s| earn[ix].sku == s)
            .map_err(|(f, reason)| LoyaltyError::InvalidRefund {
                field: format!("lines[{i}].{f}"),
                reason,
            })
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
    pub(super) fn partial_target(&self, e: u32, money: Decimal, lines: &[LineRefunded]) -> Points {
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
    fn plan_refund(
        &self,
        order: &str,
        only: Option<&[String]>,
        share: Share<'_>,
    ) -> Result<Vec<RefundPlan>, LoyaltyError> {
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
        for e in self.earns_of(order, only) {
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
        only: Option<&[String]>,
        key: &str,
        time: DateTime<Utc>,
        share: Share<'_>,
    ) -> Result<Posting, LoyaltyError> {
        let print = Self::refund_print(order, share);
        if let Some(p) = self.replay(key, print)? {
            return Ok(p);
        }
        let plans = self.plan_refund(order, only, share)?;
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
    #[expect(
        clippy::too_many_arguments,
        reason = "the partial refund, the earn's bucket and account, and the refund's own op, source and time"
    )]
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
}
