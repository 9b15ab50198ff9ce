//! Loyalty's side of the person contract ([`PersonState`]): points, debt and pending earns move
//! in the ledger (kept balanced: every move is a transfer), member records (growth, spend,
//! tier, claims, tasks) fold into the survivor's; a split gives both back.

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use super::ledger::MergeUndo;
use super::tiers::{fold_member, unfold_member, Member};
use super::Loyalty;
use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, PersonState, Persons, SplitStep};

/// What a merge moved, kept until a split gives it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct LoyaltyMoved {
    /// The ledger's record of the points, debt and pending earns moved.
    #[serde(default, skip_serializing_if = "is_default")]
    ledger: MergeUndo,
    /// Per program id: the survivor's member record before (`None`: not a member) and the
    /// absorbed person's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    members: Vec<(String, Option<Member>, Member)>,
    /// When the merge happened (its tier changes are dated then).
    #[serde(with = "crate::event::rfc3339")]
    time: DateTime<Utc>,
}

fn is_default(u: &MergeUndo) -> bool {
    *u == MergeUndo::default()
}

impl LoyaltyMoved {
    pub(super) fn new(
        ledger: MergeUndo,
        members: Vec<(String, Option<Member>, Member)>,
        time: DateTime<Utc>,
    ) -> LoyaltyMoved {
        LoyaltyMoved {
            ledger,
            members,
            time,
        }
    }
}

impl PersonState for Loyalty {
    const MODULE: &'static str = "loyalty";
    type Reads<'r> = FixedOffset;

    /// Never fails: a survivor's balance that cannot take the absorbed person's points (an
    /// overflow) leaves the absorbed accounts as they are (no point is lost) and says so.
    fn merge(&mut self, _: FixedOffset, step: &MergeStep) -> Option<serde_json::Value> {
        match self.merge_recorded(step.survivor, step.absorbed, step.time) {
            Ok((report, moved)) => {
                if !is_default(&moved.ledger) || !moved.members.is_empty() {
                    self.merged.put(step, moved);
                }
                serde_json::to_value(report).ok()
            }
            Err(e) => Some(serde_json::json!({"absorbed": step.absorbed, "error": e.to_string()})),
        }
    }

    fn split(&mut self, _: FixedOffset, step: &SplitStep<'_>) -> Option<serde_json::Value> {
        let mut kept = serde_json::Map::new();
        for u in self.merged.take_undone(step) {
            let moved = u.data;
            let back = self.ledger.split_back(&moved.ledger, u.target, step.time);
            for (program, k) in back.kept {
                kept.insert(
                    format!("{program} ({})", u.absorbed),
                    serde_json::to_value(k).unwrap_or_default(),
                );
            }
            for (program, before, gone) in moved.members {
                let Some(p) = self
                    .by_id
                    .get(&program)
                    .map(|&i| &mut self.programs[i as usize])
                else {
                    continue;
                };
                if let Some(h) = p.members.get_mut(&u.holder) {
                    let mut merged = before.clone().unwrap_or_default();
                    fold_member(&mut merged, &gone, moved.time);
                    if *h == merged {
                        match before {
                            Some(b) => *h = b,
                            None => {
                                p.members.remove(&u.holder);
                            }
                        }
                    } else {
                        unfold_member(h, &gone);
                        kept.insert(
                            format!("{program} tier ({})", u.absorbed),
                            serde_json::json!(
                                "the survivor's member record changed since the merge: its tier stays as it is"
                            ),
                        );
                    }
                }
                match p.members.get_mut(&u.target) {
                    Some(t) => fold_member(t, &gone, step.time),
                    None => {
                        p.members.insert(u.target, gone);
                    }
                }
            }
        }
        self.tick(step.time);
        (!kept.is_empty()).then_some(serde_json::Value::Object(kept))
    }

    /// Accounts and member records re-keyed to the pseudonym, keys and free text replaced.
    fn erase(&mut self, _: FixedOffset, step: &EraseStep<'_>) {
        self.pseudonymize_member(step.oneids, step.pseudonym);
        self.merged.forget(step);
    }

    fn check_invariants(&self, _: FixedOffset, persons: &Persons<'_>) -> Vec<String> {
        let mut bad = Vec::new();
        if let Err(e) = self.ledger.check_invariants() {
            bad.push(format!("loyalty ledger: {e}"));
        }
        // A member record belongs to a live person or a pseudonym; an absorbed person keeps
        // one only where a merge could not take its points (an overflow), so that it still
        // has an account of its own.
        let unmerged = |o: OneId| {
            self.programs
                .iter()
                .any(|p| self.ledger.member_account(p.book, o).is_some())
        };
        let allowed = |o: OneId| {
            persons.is_live_or_pseudonym(o) || (unmerged(o) && !persons.erased.contains(&o))
        };
        for p in &self.programs {
            if let Some(o) = p.members.keys().find(|o| !allowed(**o)) {
                bad.push(format!(
                    "loyalty: program {:?} holds a member record of {o}, which is not a live person",
                    p.spec.id
                ));
            }
        }
        bad.extend(self.merged.check(Self::MODULE, persons));
        bad
    }

    /// Per program: balance, pending points, debt, the live points by expiry and the member
    /// record; an account holding nothing counts as none. (How points are cut into buckets of
    /// one expiry is the ledger's bookkeeping, not what the person holds.)
    fn holdings(&self, _: FixedOffset, _: &Persons<'_>, person: OneId) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for p in &self.programs {
            let account = self.ledger.member_account(p.book, person).map(|a| {
                let acc = &self.ledger.accounts()[a.0 as usize];
                let mut buckets: std::collections::BTreeMap<Option<DateTime<Utc>>, i64> =
                    std::collections::BTreeMap::new();
                for b in self.ledger.live_buckets(p.book, person) {
                    *buckets.entry(b.expires).or_default() += b.remaining();
                }
                let buckets: Vec<(Option<DateTime<Utc>>, i64)> = buckets.into_iter().collect();
                (
                    acc.points(),
                    self.ledger.pending(p.book, person),
                    acc.debt,
                    buckets,
                )
            });
            let account =
                account.filter(|(b, pe, d, bu)| *b != 0 || *pe != 0 || *d != 0 || !bu.is_empty());
            let member = p.members.get(&person);
            if account.is_some() || member.is_some() {
                out.insert(
                    p.spec.id.clone(),
                    serde_json::json!({"account": account, "member": member}),
                );
            }
        }
        if out.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::Object(out)
        }
    }
}
