//! The one place that asserts the ledger's invariants ([`Ledger::check_invariants`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::keys::OpKind;
use super::transfer::{EarnLine, TransferKind};
use super::{expiry_rank, AccountId, AccountKind, Ledger, Points};

impl Ledger {
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
    ///
    /// # Errors
    ///
    /// The first invariant found broken, described. Never expected: every write keeps them.
    pub fn check_invariants(&self) -> Result<(), String> {
        let sums = self.transfer_sums()?;
        self.check_counters(&sums)?;
        self.check_buckets()?;
        let live_sum = self.live_sums()?;
        self.check_partial_refunds()?;
        self.check_earn_lines()?;
        self.check_live_index()?;
        self.check_balances(&live_sum)?;
        Ok(())
    }

    /// Invariant 1, and what every account's counters must be: its transfers' sums (debits and
    /// credits, posted and pending).
    fn transfer_sums(&self) -> Result<Vec<[i128; 4]>, String> {
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
        Ok(sums)
    }

    /// Invariants 2 and 3: the counters match the transfers, and balances sum to zero.
    fn check_counters(&self, sums: &[[i128; 4]]) -> Result<(), String> {
        let mut total: i128 = 0;
        let mut per_book = vec![0i128; self.books.len()];
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
        Ok(())
    }

    /// Invariant 4: every bucket conserved and in range.
    fn check_buckets(&self) -> Result<(), String> {
        for (i, b) in self.buckets.iter().enumerate() {
            let parts = [b.spent, b.expired, b.reversed, b.moved, b.remaining()];
            if b.earned <= 0 || parts.iter().any(|&p| p < 0) {
                return Err(format!("bucket {i} is out of range: {b:?}"));
            }
            if i128::from(b.earned) != parts.iter().map(|&p| i128::from(p)).sum::<i128>() {
                return Err(format!("bucket {i} is not conserved: {b:?}"));
            }
        }
        Ok(())
    }

    /// Every member's live buckets are its own, non-empty and in expiry order; returns what
    /// they hold per account (for invariant 5).
    fn live_sums(&self) -> Result<Vec<i128>, String> {
        let n = self.accounts.len();
        let mut live_sum = vec![0i128; n];
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
        Ok(live_sum)
    }

    /// Invariant 6: partial refunds in range and matching their money and lines.
    fn check_partial_refunds(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// Invariant 7: an earn's recorded lines share out exactly its points.
    fn check_earn_lines(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// The expiry index and the live lists agree with the buckets.
    fn check_live_index(&self) -> Result<(), String> {
        let n = self.accounts.len();
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
        Ok(())
    }

    /// Invariant 5: member balances are their buckets less debt; system accounts hold neither.
    fn check_balances(&self, live_sum: &[i128]) -> Result<(), String> {
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
