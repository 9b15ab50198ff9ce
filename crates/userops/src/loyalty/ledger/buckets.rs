//! Expiry buckets: where earned points live until spent, expired, reversed or moved, spent
//! earliest expiry first.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{expiry_rank, AccountId, Ledger, Points};

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

impl Ledger {
    /// Put points into a member account: repay debt first, the rest into a new bucket.
    /// Returns the bucket filled, if any. The caller checked the credit cannot overflow.
    pub(super) fn fill(
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
    pub(super) fn front(&self, a: AccountId) -> Option<DateTime<Utc>> {
        self.accounts[a.0 as usize]
            .live
            .first()
            .and_then(|&b| self.buckets[b as usize].expires)
    }

    /// Keep the expiry index in step after an account's live buckets changed.
    pub(super) fn refront(&mut self, a: AccountId, old: Option<DateTime<Utc>>) {
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
    pub(super) fn insert_live(&mut self, account: AccountId, b: u32) {
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
    pub(super) fn take_fifo(&mut self, account: AccountId, points: Points) -> Points {
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

    pub(super) fn live_points(&self, account: AccountId) -> Points {
        let acc = &self.accounts[account.0 as usize];
        acc.points() + acc.debt
    }
}
