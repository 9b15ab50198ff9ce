//! The loyalty command set and how the module executes it (the engine's door is
//! `engine/loyalty.rs`).

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ledger::{AccountKind, Earn, Entry, Points, Posting, Spend, TransferKind};
use super::program::ProgramSpec;
use super::tiers::{day_of, Evaluation, MemberExtras, TierReason};
use super::{Keyed, Loyalty, LoyaltyError, Program};
use crate::error::Error;
use crate::event::UserRef;
use crate::ids::OneId;
use crate::util::fingerprint;

fn one() -> u32 {
    1
}

/// Loyalty commands. The variant names are the Python method names, the fields their keyword
/// arguments. Every write that names no `time` happens at the latest time the module has seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoyaltyCommand {
    /// Create a program. Creating it again with the same definition is a no-op. Output:
    /// [`ProgramCreated`].
    CreateProgram {
        /// The program's definition: id, expiry policy, tier ladder, benefits, tasks, conversion
        /// rates ([`ProgramSpec`]).
        program: ProgramSpec,
    },
    /// Earn points. Output: [`Posting`].
    Earn {
        /// The member (an unknown identifier creates the person).
        user: UserRef,
        /// The program id.
        program: String,
        /// Points (> 0).
        points: Points,
        /// Idempotency key (also the order key refunds find it by, unless `order` is given).
        key: String,
        /// Free text, shown on the statement (default: empty).
        #[serde(default)]
        reason: String,
        /// Expiry (default: the program's policy).
        #[serde(default)]
        expires: Option<DateTime<Utc>>,
        /// Hold the points as pending until `post` (or `void`).
        #[serde(default)]
        pending: bool,
        /// The order this earn belongs to (default: `key`).
        #[serde(default)]
        order: Option<String>,
        /// Multiply by the best points multiplier of the member's tier (rounded down).
        #[serde(default)]
        apply_multiplier: bool,
        /// Who made the write: free text, shown on the statement (default: empty).
        #[serde(default)]
        actor: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Spend points, earliest-expiring first. Output: [`Posting`].
    Spend {
        /// The member (must be known: an unknown identifier is `unknown_account`).
        user: UserRef,
        /// The program id.
        program: String,
        /// Points (> 0).
        points: Points,
        /// Idempotency key.
        key: String,
        /// Free text, shown on the statement (default: empty).
        #[serde(default)]
        reason: String,
        /// Who made the write: free text, shown on the statement (default: empty).
        #[serde(default)]
        actor: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Post a pending earn (by the earn's key). Output: [`Posting`].
    Post {
        /// The pending earn's key.
        key: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Void a pending earn (by the earn's key). Output: [`Posting`].
    Void {
        /// The pending earn's key.
        key: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Reverse every earn tied to an order (pending ones are voided; spent points are clawed
    /// back by the program's policy). Output: [`Posting`] (`points` reversed, `other` clawed).
    Refund {
        /// The order (an earn's key, or its `order`).
        order_key: String,
        /// Idempotency key of the refund.
        key: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Expire every bucket due at `now`. Output: [`ExpiryReport`].
    Expire {
        /// The run's time.
        now: DateTime<Utc>,
    },
    /// Post every pending order earn whose return window closed by `now` (those voided by a
    /// refund meanwhile are skipped). Output: [`DueReport`](super::DueReport).
    PostDue {
        /// The run's time.
        now: DateTime<Utc>,
    },
    /// Refund `amount` of an order's money: each earn that records the order amount gives
    /// back the refunded share of its points (see `Ledger::refund_amount` for the rounding).
    /// Output: [`Posting`] (`points` reversed, `other` clawed).
    RefundAmount {
        /// The order (an earn's key, or its `order`).
        order_key: String,
        /// Idempotency key of the refund.
        key: String,
        /// Money refunded (> 0).
        amount: Decimal,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Refund named lines of an order: each earn that records the order's lines gives back
    /// what those lines earned (see `Ledger::refund_lines`: by units or money, never more than
    /// a line earned). Output: [`Posting`] (`points` reversed, `other` clawed).
    RefundLines {
        /// The order (an earn's key, or its `order`).
        order_key: String,
        /// Idempotency key of the refund.
        key: String,
        /// The lines: `{"sku": ..., "qty": n}`, `{"line": i, "amount": "9.90"}`, ...
        lines: Vec<crate::event::RefundLine>,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Convert points between programs at the source program's rate. Output: [`Posting`]
    /// (`points` used, `other` credited).
    Convert {
        /// The member (must be known: an unknown identifier is `unknown_account`).
        user: UserRef,
        /// Source program.
        src: String,
        /// Destination program.
        dst: String,
        /// Source points offered (whole lots convert; the remainder stays).
        points: Points,
        /// Idempotency key.
        key: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// A member's posted balance. Output: an integer.
    Balance {
        /// The member (an unknown identifier has a balance of 0).
        user: UserRef,
        /// The program id.
        program: String,
    },
    /// A member's postings. Output: a list of [`StatementRow`].
    Statement {
        /// The member (an unknown identifier has an empty statement).
        user: UserRef,
        /// The program id.
        program: String,
    },
    /// A member's tier. Output: [`TierView`].
    Tier {
        /// The member (an unknown identifier has no tier).
        user: UserRef,
        /// The program id.
        program: String,
        /// The time the window ends (default: the module's clock).
        #[serde(default)]
        now: Option<DateTime<Utc>>,
    },
    /// Evaluate every ladder at `now`: downgrades after grace periods. Output: [`Evaluation`].
    EvaluateTiers {
        /// The evaluation time.
        now: DateTime<Utc>,
    },
    /// Record a behaviour's growth value (weight × count, capped per day). Output:
    /// [`GrowthResult`].
    AddGrowth {
        /// The member (an unknown identifier creates the person).
        user: UserRef,
        /// The program id.
        program: String,
        /// The behaviour type (a key of the program's growth weights).
        behaviour: String,
        /// Idempotency key.
        key: String,
        /// How many times the behaviour happened (≥ 1; default 1): the value is weight × count,
        /// then the daily cap.
        #[serde(default = "one")]
        count: u32,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Record money spent (for spend-based ladders). Output: [`GrowthResult`].
    RecordSpend {
        /// The member (an unknown identifier creates the person).
        user: UserRef,
        /// The program id.
        program: String,
        /// Money (> 0).
        amount: Decimal,
        /// Idempotency key.
        key: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// The benefits of a program and what the member may claim. Output: a list of
    /// [`BenefitView`].
    Benefits {
        /// The member (an unknown identifier has no tier and no claims).
        user: UserRef,
        /// The program id.
        program: String,
        /// Claim periods are counted at this time (default: the module's clock).
        #[serde(default)]
        now: Option<DateTime<Utc>>,
    },
    /// Claim a benefit. Output: [`ClaimResult`].
    ClaimBenefit {
        /// The member (an unknown identifier creates the person).
        user: UserRef,
        /// The program id.
        program: String,
        /// The benefit id.
        benefit: String,
        /// Idempotency key.
        key: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
    /// Complete a task: points and/or growth value, within its completion cap. Output:
    /// [`TaskResult`].
    CompleteTask {
        /// The member (an unknown identifier creates the person).
        user: UserRef,
        /// The program id.
        program: String,
        /// The task id.
        task: String,
        /// Idempotency key.
        key: String,
        /// When it happens (RFC 3339 with an offset). Default: the module's clock, the latest
        /// time any loyalty write carried (1970-01-01 before the first).
        #[serde(default)]
        time: Option<DateTime<Utc>>,
    },
}

impl LoyaltyCommand {
    /// Whether the command can change state.
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            LoyaltyCommand::Balance { .. }
                | LoyaltyCommand::Statement { .. }
                | LoyaltyCommand::Tier { .. }
                | LoyaltyCommand::Benefits { .. }
        )
    }
}

/// What `create_program` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramCreated {
    /// The program id.
    pub program: String,
    /// True when it existed with the same definition: nothing changed.
    pub duplicate: bool,
}

/// What `expire` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryReport {
    /// Points expired (all members together).
    pub points: i128,
    /// Transfers written (one per member account).
    pub transfers: Vec<u64>,
}

/// One row of a statement, from the member's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRow {
    /// Transfer id.
    pub id: u64,
    /// The transfer's time: the `time` of the write that made it.
    pub time: DateTime<Utc>,
    /// What the transfer did: earn, spend, expire, refund, ... ([`TransferKind`]).
    pub kind: TransferKind,
    /// The idempotency key of the write (for post/void: the pending earn's key).
    pub key: String,
    /// Points in (+) or out (−) of the member's account.
    pub amount: Points,
    /// Posted balance after this row (pending rows do not change it).
    pub balance: Points,
    /// Whether the row is pending (or resolves a pending row).
    pub pending: bool,
    /// The other side: `issuance`, `redemption`, `expiry`, `conversion` or `member:<oneid>`.
    pub counterparty: String,
    /// Expiry of earned points.
    pub expires: Option<DateTime<Utc>>,
    /// Free text of the write: the command's `reason`, or the engine's for its own writes
    /// (`order`, `task:<id>`, `promotion rebate (<key>)`); empty when none was given.
    pub reason: String,
    /// Free text of the write: the command's `actor`, or the engine's for its own writes (an
    /// order's source platform, `campaigns`, `automation`); empty when none was given.
    pub actor: String,
}

/// A tier change, with level names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierChangeView {
    /// When the change took effect: the write, merge (upgrade) or evaluation (downgrade) that
    /// made it.
    pub time: DateTime<Utc>,
    /// The tier before (`None`: no tier).
    pub from: Option<String>,
    /// The tier after (`None`: no tier).
    pub to: Option<String>,
    /// An upgrade (a threshold reached, or a merge) or a downgrade (below the tier past the
    /// grace period).
    pub reason: TierReason,
}

/// What `tier` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierView {
    /// The program id, as asked.
    pub program: String,
    /// Current tier (`None`: no tier yet, or the program has no ladder).
    pub tier: Option<String>,
    /// The ladder's metric (growth or spend) in the current window.
    pub metric: Decimal,
    /// Lifetime growth value.
    pub growth_total: i64,
    /// Lifetime spend.
    pub spend_total: Decimal,
    /// The next tier up.
    pub next: Option<String>,
    /// Metric still needed for it.
    pub to_next: Option<Decimal>,
    /// When a pending downgrade is due (set by an evaluation below the tier).
    pub downgrade_due: Option<DateTime<Utc>>,
    /// Tier history.
    pub history: Vec<TierChangeView>,
}

/// What `add_growth` and `record_spend` return.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrowthResult {
    /// Idempotency key.
    pub key: String,
    /// The member's OneID (new when the identifier was unknown).
    pub oneid: OneId,
    /// Growth value granted (after daily caps).
    pub growth: i64,
    /// Money recorded.
    pub spend: Decimal,
    /// Tier after.
    pub tier: Option<String>,
    /// Whether this write upgraded the member.
    pub upgraded: bool,
    /// True on a replay.
    pub duplicate: bool,
}

/// What `claim_benefit` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimResult {
    /// Idempotency key.
    pub key: String,
    /// The benefit id.
    pub benefit: String,
    /// Coupons handed out.
    pub coupons: Vec<String>,
    /// Claims left in the period (`None`: unlimited).
    pub remaining: Option<u32>,
    /// True on a replay.
    pub duplicate: bool,
}

/// What `benefits` lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenefitView {
    /// The benefit id, from the program's definition.
    pub id: String,
    /// What it gives: a privilege, a coupon bundle, a points multiplier or a free service.
    pub kind: super::benefits::BenefitKind,
    /// Whether the member's tier grants it.
    pub granted: bool,
    /// Claims in the current period.
    pub claimed: u32,
    /// Claims left (`None`: unlimited).
    pub remaining: Option<u32>,
    /// Multiplier, for a points multiplier.
    pub multiplier: Option<Decimal>,
    /// Coupons, for a bundle.
    pub coupons: Vec<String>,
    /// Free text.
    pub description: String,
}

/// What `complete_task` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Idempotency key.
    pub key: String,
    /// The task id.
    pub task: String,
    /// Completions so far.
    pub completions: u32,
    /// Points granted.
    pub points: Points,
    /// Growth value granted.
    pub growth: i64,
    /// Tier after.
    pub tier: Option<String>,
    /// True on a replay.
    pub duplicate: bool,
}

/// Outputs of the loyalty commands (serialized as the inner value).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum LoyaltyOutput {
    /// What `create_program` returns.
    Program(ProgramCreated),
    /// Ledger writes.
    Posting(Posting),
    /// What `balance` returns: the posted balance (pending points not counted).
    Points(Points),
    /// What `expire` returns.
    Expiry(ExpiryReport),
    /// What `statement` returns: one row per transfer touching the member's account.
    Statement(Vec<StatementRow>),
    /// What `tier` returns.
    Tier(TierView),
    /// What `evaluate_tiers` returns: how many members it upgraded, downgraded or left in grace.
    Evaluation(Evaluation),
    /// `add_growth`, `record_spend`.
    Growth(GrowthResult),
    /// What `benefits` returns: every benefit of the program.
    Benefits(Vec<BenefitView>),
    /// What `claim_benefit` returns.
    Claim(ClaimResult),
    /// What `complete_task` returns.
    Task(TaskResult),
    /// What `post_due` returns: the pending order earns it posted or skipped.
    Due(super::DueReport),
}

pub(super) fn tier_name(p: &Program, t: Option<u16>) -> Option<String> {
    let ladder = p.spec.tiers.as_ref()?;
    ladder.levels.get(usize::from(t?)).map(|l| l.name.clone())
}

impl Keyed {
    /// The command output of a keyed result (marked `duplicate` on a replay).
    fn output(self, duplicate: bool) -> LoyaltyOutput {
        match self {
            Keyed::Growth(g) => LoyaltyOutput::Growth(GrowthResult { duplicate, ..g }),
            Keyed::Claim(c) => LoyaltyOutput::Claim(ClaimResult { duplicate, ..c }),
            Keyed::Task(t) => LoyaltyOutput::Task(TaskResult { duplicate, ..t }),
        }
    }
}

fn print_of(c: &LoyaltyCommand) -> Result<u64, Error> {
    Ok(fingerprint(
        &serde_json::to_vec(c).map_err(|e| Error::Internal(e.to_string()))?,
    ))
}

/// What a loyalty command reads from outside the module.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    /// The business time zone: days, periods and expiry dates are counted in it.
    pub(crate) tz: FixedOffset,
    /// The currency's minor-unit digits: money amounts have at most these decimals.
    pub(crate) minor_units: u32,
    /// A journal is being replayed: admission rules newer than the journal are not applied
    /// again (see `Engine::replay`).
    pub(crate) replaying: bool,
}

/// The member a command names, as the engine resolved it before the command ran (loyalty
/// does not own persons: it is told who they are and asks for a new one).
pub(crate) struct Named<'a> {
    /// The person behind the reference: `Ok(None)` for an identifier no one has yet; an error
    /// for a reference that can name no one, which the command reports where it checks its
    /// user (so errors keep their order).
    pub(crate) known: Result<Option<OneId>, Error>,
    /// Gives the person for an identifier no one has yet, creating them. Called only after
    /// every check of the command passed: a refused command creates no one.
    pub(crate) create: &'a mut dyn FnMut(&UserRef) -> OneId,
}

impl Named<'_> {
    fn known(&self) -> Result<Option<OneId>, Error> {
        self.known.clone()
    }

    /// The person behind `user`, creating them when `known` is `None`.
    fn or_new(&mut self, user: &UserRef, known: Option<OneId>) -> OneId {
        match known {
            Some(o) => o,
            None => (self.create)(user),
        }
    }
}

impl Loyalty {
    fn keyed_replay(&self, key: &str, print: u64) -> Result<Option<Keyed>, Error> {
        if key.is_empty() {
            return Err(LoyaltyError::InvalidArgument {
                field: "key",
                reason: "an idempotency key must not be empty".into(),
            }
            .into());
        }
        match self.keys.get(key) {
            None => Ok(None),
            Some((p, k)) if *p == print => Ok(Some(k.clone())),
            Some(_) => Err(LoyaltyError::DuplicateKey {
                key: key.to_owned(),
            }
            .into()),
        }
    }

    /// The plumbing every keyed write outside the ledger shares: a faithful repeat of the key
    /// returns the first result marked `duplicate`; otherwise `write` runs (every check before
    /// its first change), its result is kept under the key and the clock advances to its time.
    fn keyed_write(
        &mut self,
        key: &str,
        print: u64,
        write: impl FnOnce(&mut Self) -> Result<(Keyed, DateTime<Utc>), Error>,
    ) -> Result<LoyaltyOutput, Error> {
        if let Some(k) = self.keyed_replay(key, print)? {
            return Ok(k.output(true));
        }
        let (k, time) = write(self)?;
        self.keys.insert(key.to_owned(), (print, k.clone()));
        self.tick(time);
        Ok(k.output(false))
    }

    /// A ledger write at `time`; the clock advances when it succeeds.
    fn ledger_write(
        &mut self,
        time: DateTime<Utc>,
        write: impl FnOnce(&mut super::Ledger) -> Result<Posting, LoyaltyError>,
    ) -> Result<LoyaltyOutput, Error> {
        let out = write(&mut self.ledger)?;
        self.tick(time);
        Ok(LoyaltyOutput::Posting(out))
    }

    /// Execute a loyalty command that may change state; `named`: the member it names, if any.
    /// A refused command changes nothing (and creates no one).
    pub(crate) fn execute(
        &mut self,
        c: LoyaltyCommand,
        cx: Context,
        named: &mut Named<'_>,
    ) -> Result<LoyaltyOutput, Error> {
        let tz = cx.tz;
        let print = print_of(&c)?;
        match c {
            LoyaltyCommand::CreateProgram { program } => {
                let id = program.id.clone();
                let created = self.create_program(program)?;
                Ok(LoyaltyOutput::Program(ProgramCreated {
                    program: id,
                    duplicate: !created,
                }))
            }
            LoyaltyCommand::Earn {
                user,
                program,
                points,
                key,
                reason,
                expires,
                pending,
                order,
                apply_multiplier,
                actor,
                time,
            } => self.earn_points(
                user,
                program,
                points,
                key,
                reason,
                expires,
                pending,
                order,
                apply_multiplier,
                actor,
                time,
                tz,
                named,
            ),
            LoyaltyCommand::Spend {
                user,
                program,
                points,
                key,
                reason,
                actor,
                time,
            } => self.spend_points(user, program, points, key, reason, actor, time, named),
            LoyaltyCommand::Post { key, time } => self.resolve_pending(&key, true, time),
            LoyaltyCommand::Void { key, time } => self.resolve_pending(&key, false, time),
            LoyaltyCommand::Refund {
                order_key,
                key,
                time,
            } => {
                let time = self.now(time);
                self.ledger_write(time, |l| l.refund(&order_key, &key, time))
            }
            LoyaltyCommand::PostDue { now } => Ok(LoyaltyOutput::Due(self.post_due(now))),
            LoyaltyCommand::RefundAmount {
                order_key,
                key,
                amount,
                time,
            } => {
                let time = self.now(time);
                if !cx.replaying {
                    // Not above what was paid (a journal of an older build may predate this
                    // rule: see `Engine::replay`).
                    crate::money::check("amount", amount, cx.minor_units)?;
                    self.ledger.check_refund_amount(&order_key, &key, amount)?;
                }
                self.ledger_write(time, |l| l.refund_amount(&order_key, &key, time, amount))
            }
            LoyaltyCommand::RefundLines {
                order_key,
                key,
                lines,
                time,
            } => {
                let time = self.now(time);
                self.ledger_write(time, |l| l.refund_lines(&order_key, &key, time, &lines))
            }
            LoyaltyCommand::Expire { now } => {
                let (points, transfers) = self.ledger.expire(now);
                self.tick(now);
                Ok(LoyaltyOutput::Expiry(ExpiryReport { points, transfers }))
            }
            LoyaltyCommand::Convert {
                user,
                src,
                dst,
                points,
                key,
                time,
            } => self.convert_points(user, src, dst, points, key, time, tz, named),
            q @ (LoyaltyCommand::Balance { .. }
            | LoyaltyCommand::Statement { .. }
            | LoyaltyCommand::Tier { .. }
            | LoyaltyCommand::Benefits { .. }) => self.query(q, tz, named.known()),
            LoyaltyCommand::EvaluateTiers { now } => {
                Ok(LoyaltyOutput::Evaluation(self.evaluate_tiers(now, tz)))
            }
            LoyaltyCommand::AddGrowth {
                user,
                program,
                behaviour,
                key,
                count,
                time,
            } => self.keyed_write(&key, print, |this| {
                this.add_growth(user, program, behaviour, &key, count, time, tz, named)
            }),
            LoyaltyCommand::RecordSpend {
                user,
                program,
                amount,
                key,
                time,
            } => self.keyed_write(&key, print, |this| {
                this.record_spend(user, program, amount, &key, time, cx, named)
            }),
            LoyaltyCommand::ClaimBenefit {
                user,
                program,
                benefit,
                key,
                time,
            } => self.keyed_write(&key, print, |this| {
                this.claim_benefit(user, program, benefit, &key, time, tz, named)
            }),
            LoyaltyCommand::CompleteTask {
                user,
                program,
                task,
                key,
                time,
            } => self.keyed_write(&key, print, |this| {
                this.complete_task(user, program, task, &key, time, tz, named)
            }),
        }
    }

    /// Earn points: the program's expiry and, when asked, the member's tier multiplier applied.
    #[allow(
        clippy::too_many_arguments,
        reason = "one parameter per field of the command"
    )]
    fn earn_points(
        &mut self,
        user: UserRef,
        program: String,
        points: Points,
        key: String,
        reason: String,
        expires: Option<DateTime<Utc>>,
        pending: bool,
        order: Option<String>,
        apply_multiplier: bool,
        actor: String,
        time: Option<DateTime<Utc>>,
        tz: FixedOffset,
        named: &mut Named<'_>,
    ) -> Result<LoyaltyOutput, Error> {
        if order.as_deref() == Some("") {
            // Refunds find earns by order: an empty one would tie unrelated earns.
            return Err(LoyaltyError::InvalidArgument {
                field: "order",
                reason: "an order id must not be empty (leave it out to use the key)".into(),
            }
            .into());
        }
        let known = named.known()?;
        let lo = &*self;
        let p = lo.program_checked(&program)?;
        let time = lo.now(time);
        let expires = expires.or_else(|| p.spec.expiry.expires(time, tz));
        let mut points = points;
        if apply_multiplier {
            let tier = known.and_then(|u| p.members.get(&u)).and_then(|m| m.tier);
            let m = p.spec.multiplier(tier_name(p, tier).as_deref());
            points = Decimal::from(points)
                .checked_mul(m)
                .and_then(|x| x.floor().to_i64())
                .ok_or(LoyaltyError::InvalidAmount {
                    field: "points",
                    reason: "the multiplied amount overflows".into(),
                })?;
        }
        let mut req = Earn {
            entry: Entry {
                user: known.unwrap_or(OneId(u64::MAX)),
                book: p.book,
                points,
                key: &key,
                reason: &reason,
                actor: &actor,
                time,
            },
            expires,
            pending,
            order: order.as_deref(),
            money: None,
            lines: &[],
        };
        if known.is_none() {
            // A new person has no account: these checks are the real ones.
            self.ledger.check_earn(&req)?;
        }
        req.entry.user = named.or_new(&user, known);
        self.ledger_write(time, |l| l.earn(&req))
    }

    /// Spend a known member's points.
    #[allow(
        clippy::too_many_arguments,
        reason = "one parameter per field of the command"
    )]
    fn spend_points(
        &mut self,
        user: UserRef,
        program: String,
        points: Points,
        key: String,
        reason: String,
        actor: String,
        time: Option<DateTime<Utc>>,
        named: &Named<'_>,
    ) -> Result<LoyaltyOutput, Error> {
        let lo = &*self;
        let p = lo.program_checked(&program)?;
        let u = named.known()?.ok_or_else(|| LoyaltyError::UnknownAccount {
            program: program.clone(),
            user: serde_json::to_string(&user).unwrap_or_default(),
        })?;
        let time = lo.now(time);
        let req = Spend {
            user: u,
            book: p.book,
            points,
            key: &key,
            reason: &reason,
            actor: &actor,
            time,
        };
        self.ledger_write(time, |l| l.spend(&req))
    }

    /// Convert a known member's points into another program at the source program's rate.
    #[allow(
        clippy::too_many_arguments,
        reason = "one parameter per field of the command"
    )]
    fn convert_points(
        &mut self,
        user: UserRef,
        src: String,
        dst: String,
        points: Points,
        key: String,
        time: Option<DateTime<Utc>>,
        tz: FixedOffset,
        named: &Named<'_>,
    ) -> Result<LoyaltyOutput, Error> {
        let lo = &*self;
        let (s, d) = (lo.program_ix(&src)?, lo.program_ix(&dst)?);
        let (sp, dp) = (&lo.programs[s], &lo.programs[d]);
        let rate = *sp.spec.conversions.get(&dst).ok_or_else(|| {
            Error::invalid_argument(
                "dst",
                format!("program {src:?} has no conversion rate to {dst:?}"),
            )
        })?;
        let u = named.known()?.ok_or_else(|| LoyaltyError::UnknownAccount {
            program: src.clone(),
            user: serde_json::to_string(&user).unwrap_or_default(),
        })?;
        let time = lo.now(time);
        let dst_expires = dp.spec.expiry.expires(time, tz);
        let (sb, db) = (sp.book, dp.book);
        let out = self
            .ledger
            .convert(u, sb, db, points, rate, &key, time, dst_expires)?;
        self.tick(time);
        Ok(LoyaltyOutput::Posting(out))
    }

    /// Add growth value for a behaviour the program weighs (inside [`Loyalty::keyed_write`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "one parameter per field of the command, then what it reads from outside"
    )]
    fn add_growth(
        &mut self,
        user: UserRef,
        program: String,
        behaviour: String,
        key: &str,
        count: u32,
        time: Option<DateTime<Utc>>,
        tz: FixedOffset,
        named: &mut Named<'_>,
    ) -> Result<(Keyed, DateTime<Utc>), Error> {
        let known = named.known()?;
        let lo = &*self;
        let pi = lo.program_ix(&program)?;
        let p = &lo.programs[pi];
        let weight = *p.spec.growth.weights.get(&behaviour).ok_or_else(|| {
            Error::invalid_argument(
                "behaviour",
                format!("program {program:?} gives no growth value for {behaviour:?}"),
            )
        })?;
        if count == 0 {
            return Err(LoyaltyError::InvalidAmount {
                field: "count",
                reason: "must be at least 1".into(),
            }
            .into());
        }
        let raw = weight
            .checked_mul(i64::from(count))
            .ok_or(LoyaltyError::InvalidAmount {
                field: "count",
                reason: "growth value overflows".into(),
            })?;
        let time = lo.now(time);
        self.check_growth(pi, known, raw, Decimal::ZERO)?;
        let u = named.or_new(&user, known);
        let g = self.grant_growth(pi, u, key, Some((&behaviour, raw)), Decimal::ZERO, time, tz);
        Ok((Keyed::Growth(g), time))
    }

    /// Record money spent, for growth by spend (inside [`Loyalty::keyed_write`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "one parameter per field of the command, then what it reads from outside"
    )]
    fn record_spend(
        &mut self,
        user: UserRef,
        program: String,
        amount: Decimal,
        key: &str,
        time: Option<DateTime<Utc>>,
        cx: Context,
        named: &mut Named<'_>,
    ) -> Result<(Keyed, DateTime<Utc>), Error> {
        let known = named.known()?;
        let lo = &*self;
        let pi = lo.program_ix(&program)?;
        if amount <= Decimal::ZERO {
            return Err(LoyaltyError::InvalidAmount {
                field: "amount",
                reason: format!("{amount} is not a positive amount of money"),
            }
            .into());
        }
        if !cx.replaying {
            crate::money::check("amount", amount, cx.minor_units)?;
        }
        let time = lo.now(time);
        self.check_growth(pi, known, 0, amount)?;
        let u = named.or_new(&user, known);
        let g = self.grant_growth(pi, u, key, None, amount, time, cx.tz);
        Ok((Keyed::Growth(g), time))
    }

    /// Claim a benefit of the member's tier within its limit (inside [`Loyalty::keyed_write`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "one parameter per field of the command, then what it reads from outside"
    )]
    fn claim_benefit(
        &mut self,
        user: UserRef,
        program: String,
        benefit: String,
        key: &str,
        time: Option<DateTime<Utc>>,
        tz: FixedOffset,
        named: &mut Named<'_>,
    ) -> Result<(Keyed, DateTime<Utc>), Error> {
        let lo = &*self;
        let pi = lo.program_ix(&program)?;
        let p = &lo.programs[pi];
        let b = p
            .spec
            .benefits
            .iter()
            .find(|b| b.id == benefit)
            .ok_or_else(|| Error::NotFound {
                what: "benefit",
                id: benefit.clone(),
            })?;
        let time = lo.now(time);
        let u = named.known()?;
        let m = u.and_then(|u| p.members.get(&u));
        let tier = m.and_then(|m| tier_name(p, m.tier));
        if b.kind == super::benefits::BenefitKind::PointsMultiplier {
            return Err(LoyaltyError::NotEligible {
                what: "benefit",
                id: benefit,
                reason: "a points multiplier applies to earns; it is not claimed".into(),
            }
            .into());
        }
        if !b.applies_to(tier.as_deref()) {
            return Err(LoyaltyError::NotEligible {
                what: "benefit",
                id: benefit,
                reason: format!("not granted to tier {:?}", tier.unwrap_or_default()),
            }
            .into());
        }
        let claimed = claims_in_period(&m.and_then(|m| m.extras.clone()), &b.id, b.per, time, tz);
        if let Some(limit) = b.limit {
            if claimed >= limit {
                return Err(LoyaltyError::LimitReached {
                    what: "benefit",
                    id: benefit,
                    limit,
                }
                .into());
            }
        }
        let result = ClaimResult {
            key: key.to_owned(),
            benefit: b.id.clone(),
            coupons: b.coupons.clone(),
            remaining: b.limit.map(|l| l - claimed - 1),
            duplicate: false,
        };
        let u = named.or_new(&user, u);
        let m = self.programs[pi].members.entry(u).or_default();
        m.extras
            .get_or_insert_with(Default::default)
            .claims
            .entry(benefit)
            .or_default()
            .push(time);
        Ok((Keyed::Claim(result), time))
    }

    /// Complete a task: its points and growth, within its completions (inside
    /// [`Loyalty::keyed_write`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "one parameter per field of the command, then what it reads from outside"
    )]
    fn complete_task(
        &mut self,
        user: UserRef,
        program: String,
        task: String,
        key: &str,
        time: Option<DateTime<Utc>>,
        tz: FixedOffset,
        named: &mut Named<'_>,
    ) -> Result<(Keyed, DateTime<Utc>), Error> {
        let known = named.known()?;
        let lo = &*self;
        let pi = lo.program_ix(&program)?;
        let p = &lo.programs[pi];
        let t = p
            .spec
            .tasks
            .iter()
            .find(|t| t.id == task)
            .cloned()
            .ok_or_else(|| Error::NotFound {
                what: "task",
                id: task.clone(),
            })?;
        let time = lo.now(time);
        let done = known
            .and_then(|u| p.members.get(&u))
            .and_then(|m| m.extras.as_ref())
            .and_then(|x| x.tasks.get(&task).copied())
            .unwrap_or(0);
        if done >= t.max_completions {
            return Err(LoyaltyError::LimitReached {
                what: "task",
                id: task,
                limit: t.max_completions,
            }
            .into());
        }
        self.check_growth(pi, known, t.growth, Decimal::ZERO)?;
        let book = p.book;
        let expires = p.spec.expiry.expires(time, tz);
        let reason = format!("task:{task}");
        let mut req = Earn {
            entry: Entry {
                user: known.unwrap_or(OneId(u64::MAX)),
                book,
                points: t.points,
                key,
                reason: &reason,
                actor: "",
                time,
            },
            expires,
            pending: false,
            order: None,
            money: None,
            lines: &[],
        };
        if t.points > 0 {
            if let Some(k) = known {
                req.entry.user = k;
            }
            if self.ledger.check_earn(&req)?.is_some() {
                // The key already wrote this very earn outside a task: not a task replay.
                return Err(LoyaltyError::DuplicateKey {
                    key: key.to_owned(),
                }
                .into());
            }
        }
        // Checks done: nothing below fails.
        let u = named.or_new(&user, known);
        if t.points > 0 {
            req.entry.user = u;
            self.ledger.earn(&req)?;
        }
        let g = if t.growth > 0 {
            self.grant_growth(pi, u, key, Some(("", t.growth)), Decimal::ZERO, time, tz)
                .growth
        } else {
            0
        };
        let p = &mut self.programs[pi];
        let m = p.members.entry(u).or_default();
        let c = m
            .extras
            .get_or_insert_with(Default::default)
            .tasks
            .entry(task.clone())
            .or_default();
        *c += 1;
        let completions = *c;
        let tier = tier_name(p, p.members.get(&u).and_then(|m| m.tier));
        let result = TaskResult {
            key: key.to_owned(),
            task,
            completions,
            points: t.points,
            growth: g,
            tier,
            duplicate: false,
        };
        Ok((Keyed::Task(result), time))
    }

    /// The loyalty commands that change nothing. `known`: the member the command names, as
    /// [`Named::known`].
    pub(crate) fn query(
        &self,
        c: LoyaltyCommand,
        tz: FixedOffset,
        known: Result<Option<OneId>, Error>,
    ) -> Result<LoyaltyOutput, Error> {
        match c {
            LoyaltyCommand::Balance { user: _, program } => {
                let lo = self;
                let p = lo.program_checked(&program)?;
                let u = known?;
                Ok(LoyaltyOutput::Points(
                    u.map_or(0, |u| lo.ledger.balance(p.book, u)),
                ))
            }
            LoyaltyCommand::Statement { user: _, program } => {
                let lo = self;
                let p = lo.program_checked(&program)?;
                let Some(u) = known? else {
                    return Ok(LoyaltyOutput::Statement(Vec::new()));
                };
                Ok(LoyaltyOutput::Statement(self.statement_rows(p, u)))
            }
            LoyaltyCommand::Tier {
                user: _,
                program,
                now,
            } => {
                let lo = self;
                let p = lo.program_checked(&program)?;
                let now = lo.now(now);
                let u = known?;
                let m = u
                    .and_then(|u| p.members.get(&u))
                    .cloned()
                    .unwrap_or_default();
                let (metric, next, to_next) = match &p.spec.tiers {
                    None => (Decimal::ZERO, None, None),
                    Some(l) => {
                        let metric = m.metric(l, now, tz);
                        let n = m.tier.map_or(0, |t| usize::from(t) + 1);
                        let next = l.levels.get(n);
                        (
                            metric,
                            next.map(|x| x.name.clone()),
                            next.map(|x| (x.threshold - metric).max(Decimal::ZERO)),
                        )
                    }
                };
                Ok(LoyaltyOutput::Tier(TierView {
                    program: program.clone(),
                    tier: tier_name(p, m.tier),
                    metric,
                    growth_total: m.growth_total,
                    spend_total: m.spend_total,
                    next,
                    to_next,
                    downgrade_due: m.downgrade_due,
                    history: m
                        .history
                        .iter()
                        .map(|h| TierChangeView {
                            time: h.time,
                            from: tier_name(p, h.from),
                            to: tier_name(p, h.to),
                            reason: h.reason,
                        })
                        .collect(),
                }))
            }
            LoyaltyCommand::Benefits {
                user: _,
                program,
                now,
            } => {
                let lo = self;
                let p = lo.program_checked(&program)?;
                let now = lo.now(now);
                let m = known?
                    .and_then(|u| p.members.get(&u))
                    .cloned()
                    .unwrap_or_default();
                let tier = tier_name(p, m.tier);
                let views = p
                    .spec
                    .benefits
                    .iter()
                    .map(|b| {
                        let claimed = claims_in_period(&m.extras, &b.id, b.per, now, tz);
                        BenefitView {
                            id: b.id.clone(),
                            kind: b.kind,
                            granted: b.applies_to(tier.as_deref()),
                            claimed,
                            remaining: b.limit.map(|l| l.saturating_sub(claimed)),
                            multiplier: b.multiplier,
                            coupons: b.coupons.clone(),
                            description: b.description.clone(),
                        }
                    })
                    .collect();
                Ok(LoyaltyOutput::Benefits(views))
            }
            other => Err(Error::not_a_query(&other)),
        }
    }

    fn resolve_pending(
        &mut self,
        key: &str,
        post: bool,
        time: Option<DateTime<Utc>>,
    ) -> Result<LoyaltyOutput, Error> {
        let time = self.now(time);
        self.ledger_write(time, |l| l.resolve(key, post, time))
    }

    /// Growth and spend totals of the member must not overflow.
    fn check_growth(
        &self,
        pi: usize,
        known: Option<OneId>,
        growth: i64,
        spend: Decimal,
    ) -> Result<(), Error> {
        let m = known.and_then(|u| self.programs[pi].members.get(&u));
        let (g, s) = m.map_or((0, Decimal::ZERO), |m| (m.growth_total, m.spend_total));
        if g.checked_add(growth).is_none() || s.checked_add(spend).is_none() {
            return Err(LoyaltyError::InvalidAmount {
                field: "amount",
                reason: "the member's lifetime total would overflow".into(),
            }
            .into());
        }
        Ok(())
    }

    /// Record growth (after the behaviour's daily cap) and spend, upgrading at once.
    #[allow(
        clippy::too_many_arguments,
        reason = "the member, the write and its time, as the callers have them"
    )]
    fn grant_growth(
        &mut self,
        pi: usize,
        u: OneId,
        key: &str,
        growth: Option<(&str, i64)>,
        spend: Decimal,
        time: DateTime<Utc>,
        tz: FixedOffset,
    ) -> GrowthResult {
        // An upgrade is judged on the metric as it stands now: a write dated before the
        // module's clock (a late upload) must not upgrade on a window that has moved on.
        let as_of = self.now_at_least(time);
        let p = &mut self.programs[pi];
        let day = day_of(time, tz);
        let m = p.members.entry(u).or_default();
        let granted = match growth {
            None => 0,
            Some((behaviour, raw)) => {
                let g = m.capped(&p.spec.growth, behaviour, raw, day);
                if p.spec.growth.daily_caps.contains_key(behaviour) {
                    let x = m.extras.get_or_insert_with(Box::<MemberExtras>::default);
                    let e = x.caps.entry(behaviour.to_owned()).or_insert((day, 0));
                    if e.0 != day {
                        *e = (day, 0);
                    }
                    e.1 += g;
                }
                g
            }
        };
        m.record(day, granted, spend);
        let upgraded = match &p.spec.tiers {
            Some(l) => m.upgrade(l, as_of, tz),
            None => false,
        };
        let tier = m.tier;
        GrowthResult {
            key: key.to_owned(),
            oneid: u,
            growth: granted,
            spend,
            tier: tier_name(p, tier),
            upgraded,
            duplicate: false,
        }
    }

    fn statement_rows(&self, p: &Program, u: OneId) -> Vec<StatementRow> {
        let ledger = &self.ledger;
        let accounts = ledger.accounts();
        let mut balance: Points = 0;
        let mut rows = Vec::new();
        for (t, dir) in ledger.statement(p.book, u) {
            let (sign, other) = match dir {
                1 => (1, t.debit),
                -1 => (-1, t.credit),
                _ => (0, t.debit),
            };
            let pending = matches!(
                t.kind,
                TransferKind::PendingEarn | TransferKind::Void | TransferKind::Post
            );
            if !matches!(t.kind, TransferKind::PendingEarn | TransferKind::Void) {
                balance = balance.saturating_add(sign * t.amount);
            }
            let op = &ledger.ops()[t.op as usize];
            let counterparty = match accounts[other.0 as usize].kind {
                AccountKind::Member(o) => format!("member:{o}"),
                AccountKind::Issuance => "issuance".into(),
                AccountKind::Redemption => "redemption".into(),
                AccountKind::Expiry => "expiry".into(),
                AccountKind::Conversion => "conversion".into(),
            };
            rows.push(StatementRow {
                id: t.id,
                time: t.time,
                kind: t.kind,
                key: op.key.to_string(),
                // A move between the member's own accounts (a merge) changes no balance.
                amount: sign * t.amount,
                balance,
                pending,
                counterparty,
                expires: t.expires,
                reason: op.reason().to_owned(),
                actor: op.actor().to_owned(),
            });
        }
        rows
    }
}

fn claims_in_period(
    extras: &Option<Box<MemberExtras>>,
    id: &str,
    per: super::benefits::LimitPeriod,
    now: DateTime<Utc>,
    tz: chrono::FixedOffset,
) -> u32 {
    extras
        .as_ref()
        .and_then(|x| x.claims.get(id))
        .map_or(0, |c| {
            c.iter().filter(|t| per.same(**t, now, tz)).count() as u32
        })
}
