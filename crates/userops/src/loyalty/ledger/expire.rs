//! The expiry run: buckets past their expiry go to the program's expiry account.

use chrono::{DateTime, Utc};

use super::keys::OpKind;
use super::transfer::TransferKind;
use super::{clamp, AccountId, Ledger};

impl Ledger {
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
}
