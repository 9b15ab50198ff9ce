//! Erasure: a member's accounts carry a pseudonym instead of the erased OneID.

use std::collections::BTreeMap;

use super::{AccountKind, Ledger};
use crate::ids::OneId;

impl Ledger {
    /// Erasure (SPEC §9): re-key every account of member `user` to `pseudonym` and strip from
    /// the writes on those accounts whatever could name the person: free text (reason, actor)
    /// cleared, idempotency and order keys replaced by `erased:<pseudonym>:<op>` (a pending
    /// earn's post or void keeps sharing the earn's new key), content fingerprints zeroed, the
    /// SKUs of order lines cleared. Transfers, amounts, times and buckets are untouched, so
    /// every balance and invariant holds as before. Returns the keys replaced (old → new).
    /// Expiry runs and merges carry no key or text and are left as they are. The old keys no
    /// longer replay: a write sent again with one after the erasure is a new write (and must
    /// name a live person to succeed).
    pub fn pseudonymize_account(
        &mut self,
        user: OneId,
        pseudonym: OneId,
    ) -> BTreeMap<Box<str>, Box<str>> {
        let mine: std::collections::BTreeSet<u32> = (0..self.accounts.len() as u32)
            .filter(|&a| self.accounts[a as usize].kind == AccountKind::Member(user))
            .collect();
        if mine.is_empty() {
            return BTreeMap::new();
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
            if let Some(lines) = self.lines.get_mut(&op) {
                for l in lines.iter_mut() {
                    l.sku.clear();
                }
            }
        }
        self.rebuild_index();
        renamed
    }
}
