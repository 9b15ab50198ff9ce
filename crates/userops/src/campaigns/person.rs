//! Campaigns' side of the person contract ([`PersonState`]).
//!
//! - Coupons and committed quotes keep the OneID they were issued or committed for, and count
//!   for the person that OneID names now: after a merge the survivor uses the absorbed
//!   person's coupons and a once-per-customer promotion counts both persons' orders; a split
//!   gives them back by itself. Per-customer promotion counts move with the merge and are
//!   recounted from the commits on a split.
//! - Planned touches move to the survivor (frequency caps count them) and back on a split.
//! - Automation facts (purchases, registration, last activity) merge; firings of the absorbed
//!   OneID count for the survivor, so a rule does not fire twice for one order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::automation::UserFacts;
use super::Campaigns;
use crate::ids::OneId;
use crate::person::{unmerge, EraseStep, MergeStep, PersonState, Persons, SplitStep};

/// What a merge moved, kept until a split gives it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CampaignsMoved {
    /// The survivor's automation facts before (`None`: it had none) and the absorbed person's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    facts: Option<(Option<UserFacts>, UserFacts)>,
    /// Planned touches moved to the survivor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    touches: Vec<u64>,
}

/// Fold `f` into `g`: purchases united by order id (in time order), the earliest
/// registration, the latest activity.
fn fold(g: &mut UserFacts, f: &UserFacts) {
    for p in &f.purchases {
        if !g.purchases.iter().any(|q| q.order_id == p.order_id) {
            g.purchases.push(p.clone());
        }
    }
    g.purchases
        .sort_by(|a, b| a.time.cmp(&b.time).then(a.order_id.cmp(&b.order_id)));
    g.registered_at = match (g.registered_at, f.registered_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    g.last_active = g.last_active.max(f.last_active);
}

impl PersonState for Campaigns {
    const MODULE: &'static str = "campaigns";
    type Reads<'r> = ();

    fn merge(&mut self, (): (), step: &MergeStep) -> Option<serde_json::Value> {
        let (s, a) = (step.survivor, step.absorbed);
        let facts = self.automation.facts.remove(&a).map(|gone| {
            let before = self.automation.facts.get(&s).cloned();
            fold(self.automation.facts.entry(s).or_default(), &gone);
            (before, gone)
        });
        let touches = self.monitor.merge_user(a, s);
        self.ledger.merge_user(a, s);
        let mut aliases = self.automation.aliases.remove(&a).unwrap_or_default();
        aliases.push(a);
        let mine = self.automation.aliases.entry(s).or_default();
        mine.extend(aliases);
        mine.sort_unstable();
        let report = serde_json::json!({
            "absorbed": a,
            "purchases": facts.as_ref().map_or(0, |(_, f)| f.purchases.len()),
            "touches": touches.len(),
        });
        if facts.is_some() || !touches.is_empty() {
            self.merged.put(step, CampaignsMoved { facts, touches });
        }
        Some(report)
    }

    fn split(&mut self, (): (), step: &SplitStep<'_>) -> Option<serde_json::Value> {
        for u in self.merged.take_undone(step) {
            let CampaignsMoved { facts, touches } = u.data;
            if let Some((before, moved)) = facts {
                if let Some(h) = self.automation.facts.get_mut(&u.holder) {
                    let mut merged = before.clone().unwrap_or_default();
                    fold(&mut merged, &moved);
                    let b = before.unwrap_or_default();
                    h.purchases.retain(|p| {
                        b.purchases.iter().any(|q| q.order_id == p.order_id)
                            || !moved.purchases.iter().any(|q| q.order_id == p.order_id)
                    });
                    h.registered_at =
                        unmerge(h.registered_at, b.registered_at, &merged.registered_at);
                    h.last_active = unmerge(h.last_active, b.last_active, &merged.last_active);
                    if *h == UserFacts::default() {
                        self.automation.facts.remove(&u.holder);
                    }
                }
                match self.automation.facts.get_mut(&u.target) {
                    Some(t) => fold(t, &moved),
                    None => {
                        self.automation.facts.insert(u.target, moved);
                    }
                }
            }
            self.monitor.give_back(&touches, u.holder, u.target);
        }
        // Aliases: each part keeps the OneIDs that name it now.
        let mut all = self
            .automation
            .aliases
            .remove(&step.old)
            .unwrap_or_default();
        all.push(step.old);
        for &p in step.parts {
            all.extend(self.automation.aliases.remove(&p).unwrap_or_default());
        }
        all.sort_unstable();
        all.dedup();
        let mut by_part: BTreeMap<OneId, Vec<OneId>> = BTreeMap::new();
        for o in all {
            if let Some(p) = step.part_of(o).filter(|p| *p != o) {
                by_part.entry(p).or_default().push(o);
            }
        }
        self.automation.aliases.extend(by_part);
        self.ledger
            .recount_users(step.parts, |o| step.part_of(o).unwrap_or(o));
        None
    }

    fn erase(&mut self, (): (), step: &EraseStep<'_>) {
        for o in step.oneids {
            self.automation.facts.remove(o);
            self.automation.aliases.remove(o);
            let moved = self.monitor.merge_user(*o, step.pseudonym);
            debug_assert!(moved.iter().all(|id| self.monitor.touch(*id).is_some()));
        }
        self.coupons.pseudonymize(step.oneids, step.pseudonym);
        self.ledger.pseudonymize(step.oneids, step.pseudonym);
        self.merged.forget(step);
    }

    fn check_invariants(&self, (): (), persons: &Persons<'_>) -> Vec<String> {
        let g = persons.identity;
        let ok = |o: OneId| persons.is_live_or_pseudonym(o);
        let owner = |o: OneId| g.canonical(o).unwrap_or(o);
        let mut bad: Vec<String> = self
            .automation
            .facts
            .keys()
            .filter(|o| !persons.is_live(**o))
            .map(|o| {
                format!("campaigns: automation facts held for {o}, which is not a live person")
            })
            .collect();
        for (o, aliases) in &self.automation.aliases {
            if !persons.is_live(*o) || aliases.iter().any(|a| g.canonical(*a) != Some(*o)) {
                bad.push(format!("campaigns: firing aliases of {o} do not name it"));
            }
        }
        if let Some((id, h)) = self.coupons.holders().find(|(_, h)| !ok(owner(*h))) {
            bad.push(format!(
                "campaigns: coupon {id} is held by {h}, who names no live person"
            ));
        }
        bad.extend(self.monitor.check_users(ok));
        bad.extend(self.ledger.check_users(owner));
        bad.extend(self.merged.check(Self::MODULE, persons));
        bad
    }

    /// Automation facts and firing aliases, the coupons and commits that count for the person
    /// (with their state), per-customer promotion counts, planned touches.
    fn holdings(&self, (): (), persons: &Persons<'_>, person: OneId) -> serde_json::Value {
        let g = persons.identity;
        let mine = |o: OneId| g.canonical(o) == Some(person);
        let coupons: Vec<(String, OneId, String)> = self
            .coupons
            .all()
            .filter(|c| mine(c.user))
            .map(|c| (c.id.clone(), c.user, format!("{:?}", c.state)))
            .collect();
        serde_json::json!({
            "facts": self.automation.facts.get(&person),
            "aliases": self.automation.aliases.get(&person),
            "coupons": coupons,
            "commits": self.ledger.commits_of(mine),
            "promotion_counts": self.ledger.counts_of(person),
            "touches": self.monitor.touches_of(person),
        })
    }
}
