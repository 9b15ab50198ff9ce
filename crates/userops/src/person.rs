//! One person means one person in every module: the contract every module holding per-person
//! state implements ([`PersonState`]), the steps the engine's one merge, one split and one erase
//! flow hand it (`engine/person.rs`), and [`Stash`], where a module keeps what a merge moved so
//! that a split can give it back.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::OneId;

/// Per-person state of one module, and what it does when persons merge, split or are erased.
///
/// The engine has exactly one flow for each (`Engine::merge_persons`, `Engine::split_person`,
/// `Engine::erase_person` in `engine/person.rs`); each runs its checks first, then calls every
/// implementation in turn. Those flows destructure the engine's state field by field without a
/// `..`, so a module added to the state does not compile until a flow hands it to its
/// implementation of this trait. A module works on its own state only; what it needs from
/// another module it gets read-only through [`PersonState::Reads`].
///
/// # The semantics, module by module
///
/// **identity** — A merge joins the evidence graphs; the older OneID survives and the absorbed
/// one resolves to it. A split removes the named evidence and recomputes the persons: each part
/// gets the oldest OneID founded by one of its identifiers (merge-then-split gives the old
/// numbers back), a part with none gets a new OneID. Erasure renames every identifier to a
/// tombstone that names no one; the OneID stays as an empty tombstone. Merging or splitting a
/// tombstone is refused.
///
/// **users** (the dense index) — A merge retires the absorbed person's index (it leaves every
/// audience, `NOT` included). A split makes each part live again under its old index (a new
/// OneID gets a new one). Erasure retires the tombstone's index: no audience, tag, table or
/// automation run returns it again.
///
/// **profile** — A merge combines attributes by their strategy (latest, earliest, max, min, sum,
/// union, source priority) and adds the aggregates (orders, GMV, refunds, touches, coupon
/// steps; first and last order by min and max). A split gives the part back the attributes and
/// aggregates it had; the survivor's counts and sums lose what the part brought, and each
/// attribute or first/last order the merge changed goes back to the survivor's own value
/// unless it changed again since. Erasure removes the profile.
///
/// **tags** — A merge moves each tag value of the absorbed person the survivor does not hold
/// (where both hold one, the survivor's stays and the report lists the tag as conflicting) and
/// its saved-audience memberships. A split gives the part its values and memberships back and
/// takes from the survivor the values it only got from the merge (unless changed since). Rule
/// tags are recomputed for both. Erasure clears every value and membership.
///
/// **loyalty** — A merge moves every points bucket keeping its expiry (converted at the
/// program's rate where its definition says `merge_into`), moves debt and pending earns, and
/// folds growth, spend, days, claims and task completions into the survivor, which keeps the
/// higher tier. A split moves back, bucket by bucket with their expiries, the points that moved
/// as far as the survivor still holds them (converted points are converted back), the debt
/// that moved, and the pending earns that are still pending; the part's member record comes
/// back as it was, and the survivor's goes back to what it was when nothing changed since
/// (otherwise the part's growth and spend are taken out of it). What cannot go back — points
/// spent or expired since the merge, pending earns resolved since — is named per program in
/// `not_split_back`. Erasure re-keys the person's accounts and member records to a pseudonym:
/// postings keep their amounts and times (balances still sum to zero), keys and free text are
/// replaced.
///
/// **lifecycle** — A merge keeps the earliest registration and first activity and the union of
/// active periods. A split gives the part its own history back; the survivor keeps its own plus
/// the periods first active after the merge. Erasure removes the history.
///
/// **analytics** (journeys) — A merge moves the absorbed person's steps into the survivor's
/// timeline; each step remembers the OneID it was recorded under, so a split gives every step
/// back to the part that OneID belongs to now (steps recorded after the merge stay with the
/// survivor). Erasure removes the steps, and every step name, channel or SKU only they used.
///
/// **models** — The models' event log keeps the OneID each record was made under and reads it
/// through the identity graph, so merges and splits need no change there. Erasure removes the
/// person's records (no RFM, churn, preference, activity or high-value row names them again).
///
/// **campaigns** — A merge re-keys the absorbed person's coupons (the survivor can use them),
/// committed quotes (per-customer promotion limits count them for the survivor) and planned
/// touches (frequency caps count them), and merges the automation facts (purchases united by
/// order id, earliest registration, latest activity); automation firings of the absorbed OneID
/// count for the survivor, so a rule does not fire twice for one order. A split gives back the
/// coupons, commitments, touches and facts that moved. Erasure removes the automation facts and
/// re-keys coupons, commitments and touches to the pseudonym (budgets, coupon stock and channel
/// effectiveness keep their counts), replacing commit keys.
///
/// **orders** — The order book keeps each order under the OneID that placed it and compares
/// owners through the identity graph, so merges and splits change nothing in it: a refund by
/// the survivor finds the absorbed person's order, and a split gives the order back with its
/// OneID. Erasure forgets the person's orders (ids, keys and lines).
///
/// **privacy** — A merge keeps, for each channel and purpose, the latest statement of any of
/// the persons; on a tie, a withdrawal wins. A split gives each part its own statements back
/// (the survivor's keep any statement made after the merge). Erasure removes the statements and
/// marks the OneID as a tombstone.
pub(crate) trait PersonState {
    /// The module's name in merge and split reports.
    const MODULE: &'static str;

    /// What the module reads from other modules (never writes).
    type Reads<'r>: Copy;

    /// Fold `step.absorbed` into `step.survivor`. Never fails (the flow checked first). Returns
    /// what moved, for the merge report (`None`: nothing to say).
    fn merge(&mut self, reads: Self::Reads<'_>, step: &MergeStep) -> Option<serde_json::Value>;

    /// Give the parts of `step.old` back what merges moved into it. Never fails. Returns what
    /// could not be given back, for the split report's `not_split_back` (`None`: nothing).
    fn split(&mut self, reads: Self::Reads<'_>, step: &SplitStep<'_>) -> Option<serde_json::Value>;

    /// Remove (or pseudonymize, where a ledger must stay balanced) everything held about the
    /// person. Never fails.
    fn erase(&mut self, reads: Self::Reads<'_>, step: &EraseStep<'_>);

    /// Every broken invariant of the module's state, described (empty when all hold).
    fn check_invariants(&self, reads: Self::Reads<'_>, persons: &Persons<'_>) -> Vec<String>;

    /// What the module holds about the live person `person`, as JSON that is equal exactly
    /// when the held state is (what a merge followed by a split must give back; also a
    /// subject-access report). `Null` when it holds nothing.
    fn holdings(
        &self,
        reads: Self::Reads<'_>,
        persons: &Persons<'_>,
        person: OneId,
    ) -> serde_json::Value;
}

/// One absorbed person folded into a survivor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MergeStep {
    /// The person that remains.
    pub(crate) survivor: OneId,
    /// The person folded into it.
    pub(crate) absorbed: OneId,
    /// The merge's number in the identity graph's history (orders the stashes).
    pub(crate) seq: u64,
    /// When (dates ledger transfers and tier changes).
    pub(crate) time: DateTime<Utc>,
}

/// One person split into parts (the identity graph split it before the flow runs).
#[derive(Clone, Copy)]
pub(crate) struct SplitStep<'a> {
    /// The person split; one part keeps its OneID.
    pub(crate) old: OneId,
    /// The parts' OneIDs.
    pub(crate) parts: &'a [OneId],
    /// Every OneID that names one of the parts now (itself, or merged into it) → that part.
    pub(crate) members: &'a BTreeMap<OneId, OneId>,
    /// When (dates ledger transfers).
    pub(crate) time: DateTime<Utc>,
}

impl SplitStep<'_> {
    /// The part an old OneID belongs to now, if it is one of this split's parts.
    pub(crate) fn part_of(&self, oneid: OneId) -> Option<OneId> {
        self.members.get(&oneid).copied()
    }
}

/// One person erased.
#[derive(Clone, Copy)]
pub(crate) struct EraseStep<'a> {
    /// The tombstone OneID.
    pub(crate) person: OneId,
    /// Every OneID that names the person (itself and those merged into it).
    pub(crate) oneids: &'a [OneId],
    /// What data that must stay (ledger postings) is re-keyed to.
    pub(crate) pseudonym: OneId,
}

impl EraseStep<'_> {
    /// Whether `oneid` names the erased person.
    pub(crate) fn names(&self, oneid: OneId) -> bool {
        self.oneids.binary_search(&oneid).is_ok()
    }
}

/// The one thing the contract reads of the identity graph: which person a OneID belongs to now
/// (`None`: never issued). A trait, so that the contract does not depend on the identity module,
/// which implements it.
pub(crate) trait Canonical {
    /// The surviving OneID of `oneid`'s person.
    fn canonical(&self, oneid: OneId) -> Option<OneId>;
}

/// Who is a person, for the invariant checks.
#[derive(Clone, Copy)]
pub(crate) struct Persons<'a> {
    pub(crate) identity: &'a dyn Canonical,
    pub(crate) erased: &'a BTreeSet<OneId>,
}

impl Persons<'_> {
    /// A live person: its own canonical OneID and not erased.
    pub(crate) fn is_live(&self, oneid: OneId) -> bool {
        self.identity.canonical(oneid) == Some(oneid) && !self.erased.contains(&oneid)
    }

    /// A live person or an erasure pseudonym (ledgers keep an erased person's postings).
    pub(crate) fn is_live_or_pseudonym(&self, oneid: OneId) -> bool {
        crate::ids::is_pseudonym(oneid) || self.is_live(oneid)
    }
}

/// What a module set aside at each merge to give back on a split: per absorbed OneID, the
/// survivor and the module's own record of what moved (typically the absorbed person's state
/// and what the merge changed on the survivor). An entry lives until a split separates the two
/// again or the person is erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stash<T> {
    entries: BTreeMap<OneId, Stashed<T>>,
}

impl<T> Default for Stash<T> {
    fn default() -> Self {
        Stash {
            entries: BTreeMap::new(),
        }
    }
}

/// One stash entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stashed<T> {
    seq: u64,
    survivor: OneId,
    data: T,
}

/// A stash entry a split undoes: `data` goes from `holder` (the part now holding the merged
/// state) back to `target` (the part the absorbed OneID belongs to now).
#[derive(Debug)]
pub(crate) struct Undo<T> {
    pub(crate) absorbed: OneId,
    pub(crate) holder: OneId,
    pub(crate) target: OneId,
    pub(crate) data: T,
}

impl<T> Stash<T> {
    /// Whether nothing is stashed (serde's `skip_serializing_if`).
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Keep `data` for the merge `step`.
    pub(crate) fn put(&mut self, step: &MergeStep, data: T) {
        self.entries.insert(
            step.absorbed,
            Stashed {
                seq: step.seq,
                survivor: step.survivor,
                data,
            },
        );
    }

    /// The entries `step` separates (the absorbed OneID and its survivor now in different parts
    /// of the split person), newest merge first, taken out of the stash. Undone in this order,
    /// nested merges unwind: a person absorbed into one that was then absorbed comes back out
    /// of the middle one after that one came out of the outer.
    pub(crate) fn take_undone(&mut self, step: &SplitStep<'_>) -> Vec<Undo<T>> {
        let mut due: Vec<(u64, OneId, OneId, OneId)> = self
            .entries
            .iter()
            .filter_map(|(&a, e)| {
                let target = step.part_of(a)?;
                let holder = step.part_of(e.survivor)?;
                (target != holder).then_some((e.seq, a, holder, target))
            })
            .collect();
        due.sort_unstable_by_key(|d| std::cmp::Reverse(d.0));
        due.into_iter()
            .filter_map(|(_, absorbed, holder, target)| {
                self.entries.remove(&absorbed).map(|e| Undo {
                    absorbed,
                    holder,
                    target,
                    data: e.data,
                })
            })
            .collect()
    }

    /// Drop every entry of an erased person (their data must not outlive the erasure).
    pub(crate) fn forget(&mut self, step: &EraseStep<'_>) {
        self.entries.retain(|a, _| !step.names(*a));
    }

    /// Every entry still joins two OneIDs of one live person.
    pub(crate) fn check(&self, module: &str, persons: &Persons<'_>) -> Vec<String> {
        let g = persons.identity;
        self.entries
            .iter()
            .filter_map(|(a, e)| {
                let (ca, cs) = (g.canonical(*a), g.canonical(e.survivor));
                let ok = ca != Some(*a) && ca == cs && ca.is_some_and(|c| persons.is_live(c));
                (!ok).then(|| {
                    format!(
                        "{module}: merge stash of {a} (into {}) no longer joins one live person",
                        e.survivor
                    )
                })
            })
            .collect()
    }
}

/// A field after a split, from the field now (`current`), before the merge (`before`) and right
/// after it (`merged`): back to `before` when nothing changed it since the merge, else as it is.
pub(crate) fn unmerge<T: PartialEq>(current: T, before: T, merged: &T) -> T {
    if current == *merged {
        before
    } else {
        current
    }
}
