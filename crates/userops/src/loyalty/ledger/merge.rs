//! Merging a member's accounts into a survivor's, and giving back what moved when the merge is
//! split.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::buckets::Bucket;
use super::convert::Rate;
use super::keys::OpKind;
use super::transfer::{Resolution, TransferKind};
use super::{clamp, overflow, Account, AccountId, AccountKind, BookId, Ledger, Points};
use crate::ids::OneId;
use crate::loyalty::LoyaltyError;

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

/// What a merge moved, for [`Ledger::split_back`] (kept by the loyalty module until a split
/// gives it back).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(in crate::loyalty) struct MergeUndo {
    /// The last transfer the merge wrote: a later transfer on an account means it changed since.
    last: u64,
    books: Vec<BookUndo>,
}

/// What a merge moved in one program.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct BookUndo {
    /// The absorbed member's account.
    from: AccountId,
    /// The survivor's account.
    to: AccountId,
    /// Whether the merge opened `to`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    created: bool,
    /// The buckets made in `to` for what moved unconverted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    buckets: Vec<u32>,
    /// What was converted into another program.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    converted: Vec<ConvertUndo>,
    /// Debt moved to `to`.
    #[serde(default, skip_serializing_if = "is_zero")]
    debt: Points,
    /// What settling `to`'s debt took from its buckets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    settled: Vec<(u32, Points)>,
    /// The pending earns re-opened on `to`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pending: Vec<u64>,
}

fn is_zero(p: &Points) -> bool {
    *p == 0
}

/// One bucket's points converted into the survivor's account of another program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ConvertUndo {
    /// The survivor's account credited.
    account: AccountId,
    /// Whether the merge opened it.
    created: bool,
    /// The bucket filled (none when it all repaid debt).
    bucket: Option<u32>,
    /// Source points converted.
    points: Points,
    /// Destination points credited.
    out: Points,
    /// Of those, what repaid the survivor's debt.
    repaid: Points,
    rate: Rate,
    expires: Option<DateTime<Utc>>,
}

/// What [`Ledger::split_back`] did, per program id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(in crate::loyalty) struct SplitBack {
    /// Points given back to the part.
    pub(in crate::loyalty) points: BTreeMap<String, Points>,
    /// What could not go back.
    pub(in crate::loyalty) kept: BTreeMap<String, KeptBack>,
}

/// What a split could not give back in one program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(in crate::loyalty) struct KeptBack {
    /// Points that moved and were spent, expired or refunded since (or lost to rounding when
    /// converted back).
    pub(in crate::loyalty) points: Points,
    /// Pending points that moved and were posted or voided since.
    pub(in crate::loyalty) pending: Points,
    /// Debt that moved and was settled from the survivor's points since.
    pub(in crate::loyalty) debt: Points,
}

impl Ledger {
    /// Move everything `absorbed` holds to `survivor` (a OneID merge). Buckets keep their expiry
    /// dates. Where `convert` maps a program to another (with a rate), the absorbed member's
    /// points there are converted bucket by bucket (whole lots; each remainder moves unconverted,
    /// keeping its expiry). Pending earns move too. Never fails once `check_merge` passed.
    ///
    /// # Errors
    ///
    /// Nothing changes on an error (the checks of `check_merge`). `not_found`: an unknown book in
    /// `convert`. `invalid_amount`: a conversion within one program or without positive lot sizes,
    /// or a balance of the survivor that would overflow.
    pub fn merge_accounts(
        &mut self,
        survivor: OneId,
        absorbed: OneId,
        convert: &BTreeMap<BookId, (BookId, Rate)>,
        time: DateTime<Utc>,
    ) -> Result<MergeReport, LoyaltyError> {
        self.merge_recorded(survivor, absorbed, convert, time)
            .map(|(r, _)| r)
    }

    /// [`Ledger::merge_accounts`], also returning the record of what moved that
    /// [`Ledger::split_back`] undoes.
    pub(in crate::loyalty) fn merge_recorded(
        &mut self,
        survivor: OneId,
        absorbed: OneId,
        convert: &BTreeMap<BookId, (BookId, Rate)>,
        time: DateTime<Utc>,
    ) -> Result<(MergeReport, MergeUndo), LoyaltyError> {
        self.check_merge(survivor, absorbed, convert)?;
        let mut report = MergeReport::default();
        let mut undo = MergeUndo::default();
        if survivor == absorbed {
            return Ok((report, undo));
        }
        let from: Vec<(BookId, AccountId)> = (0..self.books.len() as u32)
            .filter_map(|b| {
                self.member_account(BookId(b), absorbed)
                    .map(|a| (BookId(b), a))
            })
            .collect();
        if from.is_empty() {
            return Ok((report, undo));
        }
        let o = {
            let op = self.new_op_keyed("", OpKind::Merge, 0);
            let i = self.ops.len() as u32;
            self.ops.push(op);
            i
        };
        for (book, src) in from {
            let moved =
                self.merge_book(o, book, src, survivor, absorbed, convert, time, &mut report);
            undo.books.push(moved);
        }
        let p = self.finish_op(o, None);
        report.transfers = p.transfers;
        undo.last = self.transfers.len() as u64;
        Ok((report, undo))
    }

    /// Merge the absorbed member's account `src` in one program into the survivor's: its
    /// buckets (converted where the program converts), debt and pending earns.
    #[allow(clippy::too_many_arguments, reason = "the parts of one merge")]
    fn merge_book(
        &mut self,
        o: u32,
        book: BookId,
        src: AccountId,
        survivor: OneId,
        absorbed: OneId,
        convert: &BTreeMap<BookId, (BookId, Rate)>,
        time: DateTime<Utc>,
        report: &mut MergeReport,
    ) -> BookUndo {
        let created = self.member_account(book, survivor).is_none();
        let dst = self.account_or_new(book, survivor);
        let mut moved = BookUndo {
            from: src,
            to: dst,
            created,
            ..BookUndo::default()
        };
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
                let undo = self.merge_convert(
                    o, book, src, survivor, lots_pts, conv, &bucket, time, report, &program,
                );
                moved.converted.push(undo);
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
                moved.buckets.push(nb);
                moved_total += rest;
            }
            report.buckets += 1;
        }
        let debt = std::mem::take(&mut self.accounts[src.0 as usize].debt);
        self.accounts[dst.0 as usize].debt += debt;
        moved.debt = debt;
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
            let before: Vec<(u32, Points)> = self.accounts[dst.0 as usize]
                .live
                .iter()
                .map(|&b| (b, self.buckets[b as usize].remaining()))
                .collect();
            let taken = self.take_fifo(dst, owed);
            self.accounts[dst.0 as usize].debt -= taken;
            moved.settled = before
                .into_iter()
                .filter_map(|(b, r)| {
                    let took = r - self.buckets[b as usize].remaining();
                    (took > 0).then_some((b, took))
                })
                .collect();
        }
        moved.pending = self.merge_pending(o, src, dst, time, report);
        self.accounts[src.0 as usize].merged_into = Some(dst);
        self.index.members.remove(&(book, absorbed));
        moved
    }

    /// Convert whole lots of a merged bucket into the survivor's account of the
    /// destination program.
    #[allow(clippy::too_many_arguments, reason = "the parts of one merge")]
    fn merge_convert(
        &mut self,
        o: u32,
        book: BookId,
        src: AccountId,
        survivor: OneId,
        lots_pts: Points,
        conv: Option<(BookId, Rate)>,
        bucket: &Bucket,
        time: DateTime<Utc>,
        report: &mut MergeReport,
        program: &str,
    ) -> ConvertUndo {
        let (db, rate) = conv.expect("lots only with a conversion");
        let out = lots_pts / rate.from * rate.to;
        let (sconv, dconv) = (
            self.books[book.0 as usize].conversion,
            self.books[db.0 as usize].conversion,
        );
        let dcreated = self.member_account(db, survivor).is_none();
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
        let debt_before = self.accounts[dacc.0 as usize].debt;
        let filled = self.fill(dacc, out, bucket.expires, t);
        let undo = ConvertUndo {
            account: dacc,
            created: dcreated,
            bucket: filled,
            points: lots_pts,
            out,
            repaid: debt_before - self.accounts[dacc.0 as usize].debt,
            rate,
            expires: bucket.expires,
        };
        let dprog = self.books[db.0 as usize].program.clone();
        *report
            .converted_out
            .entry(format!("{program}->{dprog}"))
            .or_default() += lots_pts;
        *report.converted_in.entry(dprog).or_default() += out;
        undo
    }

    /// Pending earns: void on the absorbed account, re-open on the survivor. Returns the
    /// re-opened transfers.
    fn merge_pending(
        &mut self,
        o: u32,
        src: AccountId,
        dst: AccountId,
        time: DateTime<Utc>,
        report: &mut MergeReport,
    ) -> Vec<u64> {
        let mut moved = Vec::new();
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
            moved.push(to);
            report.pending += 1;
        }
        moved
    }

    /// Every check of a merge, before any change: no balance of the survivor may overflow.
    pub(crate) fn check_merge(
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

    /// A split of `target` (now a person of its own) from the person a merge had folded it
    /// into: what that merge moved comes back, per program. When nothing touched the
    /// survivor's accounts since, exactly: buckets with their expiries, converted points
    /// converted back, pending earns, debt (and the survivor's points the merge settled it
    /// with). Otherwise as far as the survivor still holds it; the rest is in
    /// [`SplitBack::kept`]. Never fails: every amount is bounded by points in the accounts.
    pub(in crate::loyalty) fn split_back(
        &mut self,
        undo: &MergeUndo,
        target: OneId,
        time: DateTime<Utc>,
    ) -> SplitBack {
        let mut out = SplitBack::default();
        if undo.books.is_empty() {
            return out;
        }
        let o = {
            let op = self.new_op_keyed("", OpKind::Split, 0);
            self.push_op(op)
        };
        let since = usize::try_from(undo.last)
            .unwrap_or(usize::MAX)
            .min(self.transfers.len());
        for bu in &undo.books {
            self.split_book(o, bu, since, target, time, &mut out);
        }
        self.finish_op(o, None);
        out
    }

    /// Give back what a merge moved in one program to the part's account, as far as it is
    /// still there; what is not goes to `out.kept`.
    fn split_book(
        &mut self,
        o: u32,
        bu: &BookUndo,
        since: usize,
        target: OneId,
        time: DateTime<Utc>,
        out: &mut SplitBack,
    ) {
        let book = self.accounts[bu.from.0 as usize].book;
        let program = self.books[book.0 as usize].program.clone();
        let Some(cur) = self.follow(bu.to) else {
            return;
        };
        let touched = |l: &Ledger, a: AccountId| {
            l.transfers[since..]
                .iter()
                .any(|t| t.debit == a || t.credit == a)
        };
        let unchanged = cur == bu.to
            && !touched(self, cur)
            && bu
                .converted
                .iter()
                .all(|c| self.follow(c.account) == Some(c.account) && !touched(self, c.account));
        let tacc = self.part_account(book, target, bu.from);
        let mut kept = KeptBack::default();
        let mut back: Points = 0;
        // The merge settled the survivor's debt from its points: undo that first.
        if unchanged {
            for &(b, amt) in &bu.settled {
                let was_empty = self.buckets[b as usize].remaining() == 0;
                self.buckets[b as usize].spent -= amt;
                if was_empty {
                    self.insert_live(cur, b);
                }
                self.accounts[cur.0 as usize].debt += amt;
            }
        }
        kept.pending = self.split_pending(o, bu, cur, tacc, time);
        for &nb in &bu.buckets {
            let end = self.chain_end(nb);
            let r = if self.buckets[end as usize].account == cur {
                self.buckets[end as usize].remaining()
            } else {
                0
            };
            kept.points += self.buckets[nb as usize].earned - r;
            if r > 0 {
                self.move_bucket(end, r, cur, tacc);
                back += r;
            }
        }
        for cv in &bu.converted {
            if let Some(back_pts) = self.split_converted(o, cv, book, tacc, unchanged, time) {
                kept.points += cv.points - back_pts;
                back += back_pts;
            }
        }
        let d = if unchanged {
            bu.debt
        } else {
            bu.debt.min(self.accounts[cur.0 as usize].debt)
        };
        self.accounts[cur.0 as usize].debt -= d;
        self.accounts[tacc.0 as usize].debt += d;
        kept.debt = bu.debt - d;
        // The part may now hold both debt and points: settle the debt from the points.
        let owed = self.accounts[tacc.0 as usize].debt;
        if owed > 0 {
            let taken = self.take_fifo(tacc, owed);
            self.accounts[tacc.0 as usize].debt -= taken;
        }
        // One transfer brings the balances in line with the buckets and debts moved.
        let acc = &self.accounts[tacc.0 as usize];
        let live: i128 = acc
            .live
            .iter()
            .map(|&b| i128::from(self.buckets[b as usize].remaining()))
            .sum();
        let diff = clamp(live - i128::from(acc.debt) - acc.balance());
        if diff > 0 {
            self.transfer(o, cur, tacc, diff, TransferKind::Split, time, None, None);
        } else if diff < 0 {
            self.transfer(o, tacc, cur, -diff, TransferKind::Split, time, None, None);
        }
        if bu.from != tacc && self.accounts[bu.from.0 as usize].merged_into.is_some() {
            self.accounts[bu.from.0 as usize].merged_into = Some(tacc);
        }
        // An account the merge opened and the split emptied goes with the part's.
        let to = &self.accounts[bu.to.0 as usize];
        if unchanged
            && bu.created
            && to.balance() == 0
            && to.credits_pending == 0
            && to.debt == 0
            && to.live.is_empty()
        {
            if let AccountKind::Member(s) = to.kind {
                self.index.members.remove(&(book, s));
            }
            self.accounts[bu.to.0 as usize].merged_into = Some(tacc);
        }
        if back > 0 {
            out.points.insert(program.clone(), back);
        }
        if kept != KeptBack::default() {
            out.kept.insert(program, kept);
        }
    }

    /// Re-open on the part the pending earns the merge moved that are still open on the
    /// survivor `cur`; returns the pending points that cannot go back.
    fn split_pending(
        &mut self,
        o: u32,
        bu: &BookUndo,
        cur: AccountId,
        tacc: AccountId,
        time: DateTime<Utc>,
    ) -> Points {
        let mut kept: Points = 0;
        for &pt in &bu.pending {
            let mut p = pt;
            while let Some(Resolution::Moved { to }) = self.resolved.get(&p) {
                p = *to;
            }
            let tr = self.transfers[(p - 1) as usize].clone();
            if tr.credit == cur && self.accounts[cur.0 as usize].open_pending.contains(&p) {
                self.transfer(
                    o,
                    tr.debit,
                    tr.credit,
                    tr.amount,
                    TransferKind::Void,
                    time,
                    Some(p),
                    None,
                );
                let to = self.transfer(
                    o,
                    tr.debit,
                    tacc,
                    tr.amount,
                    TransferKind::PendingEarn,
                    time,
                    None,
                    tr.expires,
                );
                self.resolved.insert(p, Resolution::Moved { to });
            } else {
                kept += tr.amount;
            }
        }
        kept
    }

    /// Convert back to the part what is left of one converted lot; returns the source points
    /// given back (`None`: the converted-into account is gone).
    fn split_converted(
        &mut self,
        o: u32,
        cv: &ConvertUndo,
        book: BookId,
        tacc: AccountId,
        unchanged: bool,
        time: DateTime<Utc>,
    ) -> Option<Points> {
        let dcur = self.follow(cv.account)?;
        let dbook = self.accounts[dcur.0 as usize].book;
        let db = cv.bucket.map(|b| self.chain_end(b));
        let r = db
            .filter(|b| self.buckets[*b as usize].account == dcur)
            .map_or(0, |b| self.buckets[b as usize].remaining());
        // Exactly when the converted lot is whole; else whole lots of what is left.
        let exact = unchanged && r == cv.out - cv.repaid;
        let (out_pts, back_pts, from_bucket) = if exact {
            (cv.out, cv.points, r)
        } else {
            let lots = r / cv.rate.to;
            (lots * cv.rate.to, lots * cv.rate.from, lots * cv.rate.to)
        };
        if exact {
            self.accounts[dcur.0 as usize].debt += cv.repaid;
        }
        if let (Some(b), true) = (db, from_bucket > 0) {
            let old = self.front(dcur);
            self.buckets[b as usize].moved += from_bucket;
            if self.buckets[b as usize].remaining() == 0 {
                self.accounts[dcur.0 as usize].live.retain(|&x| x != b);
            }
            self.refront(dcur, old);
        }
        if out_pts > 0 {
            let (sconv, dconv) = (
                self.books[book.0 as usize].conversion,
                self.books[dbook.0 as usize].conversion,
            );
            self.transfer(
                o,
                dcur,
                dconv,
                out_pts,
                TransferKind::ConvertOut,
                time,
                None,
                None,
            );
            let t = self.transfer(
                o,
                sconv,
                tacc,
                back_pts,
                TransferKind::ConvertIn,
                time,
                None,
                cv.expires,
            );
            self.fill(tacc, back_pts, cv.expires, t);
        }
        Some(back_pts)
    }

    /// The account a split gives a part's points back to in `book`: the part's own, revived if
    /// a merge had absorbed it (`from` first), else a new one.
    fn part_account(&mut self, book: BookId, target: OneId, from: AccountId) -> AccountId {
        if let Some(a) = self.member_account(book, target) {
            return a;
        }
        let mine = |a: &Account| {
            a.book == book && a.kind == AccountKind::Member(target) && a.merged_into.is_some()
        };
        let revive = if mine(&self.accounts[from.0 as usize]) {
            Some(from)
        } else {
            (0..self.accounts.len() as u32)
                .rev()
                .map(AccountId)
                .find(|a| mine(&self.accounts[a.0 as usize]))
        };
        match revive {
            Some(a) => {
                self.accounts[a.0 as usize].merged_into = None;
                self.index.members.insert((book, target), a);
                a
            }
            None => self.account_or_new(book, target),
        }
    }

    /// Where the rest of a bucket is now (a merge or split moved it along `moved_to`).
    fn chain_end(&self, mut b: u32) -> u32 {
        while let Some(n) = self.buckets[b as usize].moved_to {
            b = n;
        }
        b
    }

    /// Move `r` points of bucket `b` (of `from`) to a new bucket of `to` with its expiry.
    fn move_bucket(&mut self, b: u32, r: Points, from: AccountId, to: AccountId) {
        let old = self.front(from);
        self.buckets[b as usize].moved += r;
        if self.buckets[b as usize].remaining() == 0 {
            self.accounts[from.0 as usize].live.retain(|&x| x != b);
        }
        self.refront(from, old);
        let nb = self.buckets.len() as u32;
        let expires = self.buckets[b as usize].expires;
        self.buckets.push(Bucket {
            account: to,
            earned: r,
            spent: 0,
            expired: 0,
            reversed: 0,
            moved: 0,
            expires,
            source: self.transfers.len() as u64 + 1,
            moved_to: None,
        });
        self.buckets[b as usize].moved_to = Some(nb);
        self.insert_live(to, nb);
    }
}
