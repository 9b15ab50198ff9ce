//! Loyalty (SPEC §6): programs in the org tree, a points ledger that never loses a point, growth
//! value, tier ladders, benefits and tasks.
//!
//! - [`program`]: a program's definition ([`ProgramSpec`]) and place in the org tree.
//! - [`ledger`]: double-entry accounts, immutable transfers, FIFO expiry buckets, pending
//!   two-phase earns, refunds, expiry runs, conversions, merges ([`Ledger`]).
//! - [`tiers`]: growth rules, ladders, per-member growth and tier history.
//! - [`benefits`], [`tasks`]: what members claim and complete.
//! - [`orders`]: points earned on ingested orders ([`EarnRules`]), posted after the return
//!   window, given back on refunds (whole, by amount, or by line).
//! - points and tier per program are columns of the tag index (`points("brand-a") >= 1000`,
//!   `tier("brand-a") = "gold"` in audience expressions), kept current after every write
//!   ([`points_column`], [`tier_column`]).
//!
//! The engine commands (`create_program`, `earn`, `spend`, ...) are [`LoyaltyCommand`].
//!
//! ```
//! use userops::Engine;
//! let mut e = Engine::default();
//! e.call_json("create_program", r#"{"program": {"id": "brand-a"}}"#)?;
//! e.call_json("earn", r#"{"user": {"kind": "member_no", "value": "M1"}, "program": "brand-a",
//!     "points": 100, "key": "order-1", "time": "2026-03-01T10:00:00Z"}"#)?;
//! e.call_json("spend", r#"{"user": {"kind": "member_no", "value": "M1"}, "program": "brand-a",
//!     "points": 30, "key": "redeem-1", "time": "2026-03-02T10:00:00Z"}"#)?;
//! let balance = e.call_json("balance", r#"{"user": {"kind": "member_no", "value": "M1"}, "program": "brand-a"}"#)?;
//! assert_eq!(balance, "70");
//! # Ok::<(), userops::Error>(())
//! ```

pub mod benefits;
pub(crate) mod commands;
pub(crate) mod index;
pub mod ledger;
pub mod orders;
mod person;
pub mod program;
#[cfg(test)]
mod sim;
pub mod tasks;
#[cfg(test)]
mod tests;
pub mod tiers;

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::OneId;

pub use crate::error::loyalty::LoyaltyError;
pub use commands::{
    BenefitView, ClaimResult, ExpiryReport, GrowthResult, LoyaltyCommand, LoyaltyOutput,
    ProgramCreated, StatementRow, TaskResult, TierView,
};
pub use index::{points_column, tier_column};
pub use ledger::{
    AccountId, AccountKind, BookId, Clawback, EarnLine, Entry, Ledger, LineRefunded, MergeReport,
    Points, Posting, Rate, TransferKind,
};
pub use orders::{DueReport, EarnRules};
pub use program::{ExpiryPolicy, OrgLevel, ProgramSpec};
pub use tiers::{Evaluation, GrowthRules, Member, TierBasis, TierLadder, TierLevel, TierWindow};

/// One program: its definition, its books in the ledger, its members' growth and tiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Program {
    /// Its definition, as created (a program is never redefined).
    pub spec: ProgramSpec,
    /// Its books in the ledger.
    pub book: BookId,
    /// Members with growth, spend, tiers, claims or task completions.
    pub members: BTreeMap<OneId, Member>,
}

/// A keyed write outside the ledger, kept for idempotent replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Keyed {
    Growth(GrowthResult),
    Claim(ClaimResult),
    Task(TaskResult),
}

/// The loyalty module's state (one field of the engine's state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Loyalty {
    programs: Vec<Program>,
    by_id: BTreeMap<String, u32>,
    ledger: Ledger,
    /// Idempotency keys of growth, claim and task writes: key → (content print, result).
    keys: BTreeMap<String, (u64, Keyed)>,
    /// The latest time any write carried: the default time of a write that names none.
    clock: Option<DateTime<Utc>>,
    /// Pending order earns by the end of their return window: what `post_due` posts.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    due: std::collections::BTreeSet<(DateTime<Utc>, String)>,
    /// What merges moved, for a split to give back (see `person.rs`).
    #[serde(default, skip_serializing_if = "crate::person::Stash::is_empty")]
    merged: crate::person::Stash<person::LoyaltyMoved>,
}

/// What [`Loyalty::merge_accounts`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoyaltyMergeReport {
    /// The ledger side: points and buckets moved or converted.
    pub ledger: MergeReport,
    /// Programs in which the absorbed member's growth, tier and claims were folded in.
    pub members: Vec<String>,
}

/// A person's standing in one program (the profile's loyalty aggregates).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Points balance (posted).
    pub points: ledger::Points,
    /// Points earned but not yet posted.
    pub pending: ledger::Points,
    /// Current tier name, for a tiered program where the member holds one.
    pub tier: Option<String>,
}

impl Loyalty {
    /// A person's standing in every program where they hold an account or a membership,
    /// by program id. Read from the ledger and the members at call time, so it is current
    /// after every earn, spend, expiry, merge and tier change.
    pub fn standing(&self, user: OneId) -> BTreeMap<String, Standing> {
        self.programs
            .iter()
            .filter_map(|p| {
                let member = p.members.get(&user);
                let account = self.ledger.member_account(p.book, user);
                if member.is_none() && account.is_none() {
                    return None;
                }
                let tier = member.and_then(|m| {
                    let ladder = p.spec.tiers.as_ref()?;
                    ladder
                        .levels
                        .get(usize::from(m.tier?))
                        .map(|l| l.name.clone())
                });
                Some((
                    p.spec.id.clone(),
                    Standing {
                        points: self.ledger.balance(p.book, user),
                        pending: self.ledger.pending(p.book, user),
                        tier,
                    },
                ))
            })
            .collect()
    }

    /// The ledger (read-only).
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// A program by id.
    pub fn program(&self, id: &str) -> Option<&Program> {
        self.by_id.get(id).map(|&i| &self.programs[i as usize])
    }

    /// Every program, in creation order.
    pub fn programs(&self) -> &[Program] {
        &self.programs
    }

    /// A member's tier name in a program (`None`: no ladder, not a member, or below the
    /// first rung).
    pub fn tier_of(&self, program: &Program, user: OneId) -> Option<String> {
        let ladder = program.spec.tiers.as_ref()?;
        let t = program.members.get(&user)?.tier?;
        ladder.levels.get(usize::from(t)).map(|l| l.name.clone())
    }

    /// Create a program. `Ok(false)` when it exists with the same definition (nothing changes);
    /// an error when it exists with another, or the definition is invalid.
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. As [`ProgramSpec::validate`]; `invalid_argument`
    /// ([`LoyaltyError::InvalidProgram`]) for an id that exists with another definition, an
    /// unknown parent or one not at a higher level, or a conversion to a program that does not
    /// exist yet.
    pub fn create_program(&mut self, spec: ProgramSpec) -> Result<bool, LoyaltyError> {
        spec.validate()?;
        if let Some(p) = self.program(&spec.id) {
            if p.spec == spec {
                return Ok(false);
            }
            return Err(LoyaltyError::InvalidProgram {
                field: "id".into(),
                reason: format!("program {:?} exists with another definition", spec.id),
            });
        }
        if let Some(parent) = &spec.parent {
            let pp = self
                .program(parent)
                .ok_or_else(|| LoyaltyError::InvalidProgram {
                    field: "parent".into(),
                    reason: format!("no program {parent:?}"),
                })?;
            if pp.spec.level >= spec.level {
                return Err(LoyaltyError::InvalidProgram {
                    field: "parent".into(),
                    reason: "a parent sits at a higher level of the org tree".into(),
                });
            }
        }
        for dst in spec.conversions.keys() {
            if self.program(dst).is_none() {
                return Err(LoyaltyError::InvalidProgram {
                    field: format!("conversions.{dst}"),
                    reason: "no such program (create the destination first)".into(),
                });
            }
        }
        let book = self
            .ledger
            .open_book(&spec.id, spec.overdraft, spec.clawback);
        self.by_id
            .insert(spec.id.clone(), self.programs.len() as u32);
        self.programs.push(Program {
            spec,
            book,
            members: Default::default(),
        });
        Ok(true)
    }

    /// Record growth value and spend for a member at `time` (no daily caps, no idempotency:
    /// the bulk path for loaders and benchmarks), upgrading at once. Totals saturate.
    ///
    /// # Errors
    ///
    /// `not_found` for an unknown program; `invalid_amount` for negative growth or spend.
    pub fn record_growth(
        &mut self,
        program: &str,
        user: OneId,
        growth: i64,
        spend: rust_decimal::Decimal,
        time: DateTime<Utc>,
        tz: FixedOffset,
    ) -> Result<(), LoyaltyError> {
        let pi = self.program_ix(program)?;
        if growth < 0 || spend < rust_decimal::Decimal::ZERO {
            return Err(LoyaltyError::InvalidAmount {
                field: "growth",
                reason: "growth and spend must not be negative".into(),
            });
        }
        let as_of = self.now_at_least(time);
        let p = &mut self.programs[pi];
        let m = p.members.entry(user).or_default();
        m.growth_total = m.growth_total.saturating_add(growth);
        m.spend_total = m.spend_total.saturating_add(spend);
        m.record_day(tiers::day_of(time, tz), growth, spend);
        if let Some(l) = &p.spec.tiers {
            m.upgrade(l, as_of, tz);
        }
        self.tick(time);
        Ok(())
    }

    fn program_checked(&self, id: &str) -> Result<&Program, LoyaltyError> {
        Ok(&self.programs[self.program_ix(id)?])
    }

    fn program_ix(&self, id: &str) -> Result<usize, LoyaltyError> {
        self.by_id
            .get(id)
            .map(|&i| i as usize)
            .ok_or_else(|| LoyaltyError::UnknownProgram(id.to_owned()))
    }

    /// `time`, or the module's clock (the latest time any write carried; 1970-01-01 before
    /// the first): the time of a write that names none.
    pub(crate) fn now(&self, time: Option<DateTime<Utc>>) -> DateTime<Utc> {
        time.or(self.clock).unwrap_or_default()
    }

    /// `t`, or the clock when it is later: the "now" an upgrade is judged at (a write dated
    /// in the past is judged on the window as it stands, not as it stood then).
    fn now_at_least(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.clock.map_or(t, |c| c.max(t))
    }

    fn tick(&mut self, t: DateTime<Utc>) {
        if self.clock.is_none_or_before(t) {
            self.clock = Some(t);
        }
    }

    /// Move everything the absorbed person holds to the survivor on a OneID merge: every bucket
    /// keeps its expiry date; where a program's definition says `merge_into`, the points are
    /// converted bucket by bucket at that program's rate (whole lots; remainders move
    /// unconverted). Pending earns move too. Growth days, totals, claims and task completions
    /// are added to the survivor's; the survivor keeps the higher tier (upgrade at once, never
    /// a downgrade on merge). An error changes nothing.
    ///
    /// # Errors
    ///
    /// As [`Ledger::merge_accounts`](ledger::Ledger::merge_accounts); `not_found` when a
    /// program's `merge_into` names no program. Nothing changes.
    pub fn merge_accounts(
        &mut self,
        survivor: OneId,
        absorbed: OneId,
        time: DateTime<Utc>,
    ) -> Result<LoyaltyMergeReport, LoyaltyError> {
        self.merge_recorded(survivor, absorbed, time)
            .map(|(r, _)| r)
    }

    /// The conversions a merge applies: program books with `merge_into` → (destination, rate).
    fn merge_conversions(
        &self,
    ) -> Result<BTreeMap<ledger::BookId, (ledger::BookId, ledger::Rate)>, LoyaltyError> {
        let mut convert = BTreeMap::new();
        for p in &self.programs {
            if let Some(dst) = &p.spec.merge_into {
                let d = self.program_ix(dst)?;
                let rate = p.spec.conversions[dst];
                convert.insert(p.book, (self.programs[d].book, rate));
            }
        }
        Ok(convert)
    }

    /// Whether `absorbed` can merge into `survivor` (no survivor balance would overflow).
    /// Changes nothing.
    pub(crate) fn check_merge(&self, survivor: OneId, absorbed: OneId) -> Result<(), LoyaltyError> {
        let convert = self.merge_conversions()?;
        self.ledger.check_merge(survivor, absorbed, &convert)
    }

    /// [`Loyalty::merge_accounts`], with the record a split gives back from (see `person.rs`).
    fn merge_recorded(
        &mut self,
        survivor: OneId,
        absorbed: OneId,
        time: DateTime<Utc>,
    ) -> Result<(LoyaltyMergeReport, person::LoyaltyMoved), LoyaltyError> {
        let convert = self.merge_conversions()?;
        // Growth and spend totals saturate, so the member merge below cannot fail; the ledger
        // checks everything before its first change.
        let (ledger, undo) = self
            .ledger
            .merge_recorded(survivor, absorbed, &convert, time)?;
        let mut members = Vec::new();
        let mut moved = Vec::new();
        if survivor != absorbed {
            for p in &mut self.programs {
                let Some(gone) = p.members.remove(&absorbed) else {
                    continue;
                };
                members.push(p.spec.id.clone());
                let before = p.members.get(&survivor).cloned();
                tiers::fold_member(p.members.entry(survivor).or_default(), &gone, time);
                moved.push((p.spec.id.clone(), before, gone));
            }
        }
        self.tick(time);
        Ok((
            LoyaltyMergeReport { ledger, members },
            person::LoyaltyMoved::new(undo, moved, time),
        ))
    }

    /// Erasure (SPEC §9): move what the erased person (`oneids`: the tombstone and every OneID
    /// merged into it) holds under `pseudonym`: ledger accounts via
    /// [`Ledger::pseudonymize_account`], per-program member records (growth, tier, claims), and
    /// growth writes, whose idempotency keys are replaced. Never fails.
    pub fn pseudonymize_member(&mut self, oneids: &[OneId], pseudonym: OneId) {
        for &o in oneids {
            let renamed = self.ledger.pseudonymize_account(o, pseudonym);
            // Pending order earns due for posting are named by their (renamed) keys.
            let due: Vec<(DateTime<Utc>, String)> = self
                .due
                .iter()
                .filter(|(_, k)| renamed.contains_key(k.as_str()))
                .cloned()
                .collect();
            for (t, k) in due {
                self.due.remove(&(t, k.clone()));
                if let Some(n) = renamed.get(k.as_str()) {
                    self.due.insert((t, n.to_string()));
                }
            }
            for p in &mut self.programs {
                if let Some(mut m) = p.members.remove(&o) {
                    // Daily growth caps are named by behaviour type; a pseudonym earns nothing.
                    if let Some(x) = m.extras.as_mut() {
                        x.caps.clear();
                    }
                    match p.members.get_mut(&pseudonym) {
                        Some(into) => tiers::fold_member(into, &m, DateTime::UNIX_EPOCH),
                        None => {
                            p.members.insert(pseudonym, m);
                        }
                    }
                }
            }
        }
        let keys: Vec<String> = self
            .keys
            .iter()
            .filter(|(_, (_, k))| matches!(k, Keyed::Growth(g) if oneids.contains(&g.oneid)))
            .map(|(k, _)| k.clone())
            .collect();
        for (i, k) in keys.into_iter().enumerate() {
            if let Some((_, Keyed::Growth(mut g))) = self.keys.remove(&k) {
                let key = format!("erased:{}:growth:{i}", pseudonym.0);
                g.key = key.clone();
                g.oneid = pseudonym;
                self.keys.insert(key, (0, Keyed::Growth(g)));
            }
        }
    }

    /// Check every ledger invariant (see [`Ledger::check_invariants`]).
    ///
    /// # Errors
    ///
    /// As [`Ledger::check_invariants`].
    pub fn check_invariants(&self) -> Result<(), String> {
        self.ledger.check_invariants()
    }

    /// Evaluate every tiered program at `now` (downgrades after grace periods).
    pub fn evaluate_tiers(&mut self, now: DateTime<Utc>, tz: FixedOffset) -> Evaluation {
        let mut out = Evaluation::default();
        for p in &mut self.programs {
            if let Some(ladder) = &p.spec.tiers {
                for m in p.members.values_mut() {
                    m.evaluate(ladder, now, tz, &mut out);
                }
            }
        }
        self.tick(now);
        out
    }
}

trait ClockExt {
    fn is_none_or_before(&self, t: DateTime<Utc>) -> bool;
}

impl ClockExt for Option<DateTime<Utc>> {
    fn is_none_or_before(&self, t: DateTime<Utc>) -> bool {
        self.is_none_or(|c| c < t)
    }
}
