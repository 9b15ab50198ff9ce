//! Campaigns (SPEC §7, seed 002): the promotion engine, coupons, automation rules, delivery
//! plans and their monitoring, with the consent check of SPEC §9.
//!
//! * [`promotion`]: the model — conditions, actions, rewards, budgets, limits, stacking.
//! * [`quote`]: `evaluate(cart, customer) -> Quote`, deterministic, to the cent.
//! * [`ledger`]: budgets and limits consumed by `commit` (idempotent by key), given back by
//!   `cancel`.
//! * [`coupons`]: templates and the coupon life cycle.
//! * [`automation`]: rules → delivery plan (frequency caps, quiet hours, de-duplication,
//!   consent).
//! * [`monitoring`]: planned touches, outcomes, conversions, channel effectiveness.
//!
//! ```
//! use userops::Engine;
//! let mut e = Engine::default();
//! e.call_json("add_promotion", r#"{"promotion": {"id": "p300", "action":
//!     {"type": "threshold_discount", "threshold": "300", "off": "50"}}}"#)?;
//! let q = e.call_json("quote", r#"{"cart": {"time": "2026-03-01T10:00:00+08:00",
//!     "lines": [{"sku": "a", "category": "x", "price": "120.00", "qty": 3}]}}"#)?;
//! let q: serde_json::Value = serde_json::from_str(&q).unwrap();
//! assert_eq!((q["subtotal"].as_str(), q["total"].as_str()), (Some("360.00"), Some("310.00")));
//! # Ok::<(), userops::Error>(())
//! ```

pub mod automation;
pub mod coupons;
#[cfg(test)]
mod engine_tests;
pub mod ledger;
pub mod monitoring;
mod person;
pub mod promotion;
pub mod quote;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wired_tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use automation::{AutomationContext, AutomationRun, PlanRow, Rule, RuleAction, Trigger};
pub use coupons::{CouponBenefit, CouponCounts, CouponTemplate, CouponUse};
pub use ledger::{CommitReceipt, Ledger, QuoteRef};
pub use ledger::{Granted, RewardRef};
pub use monitoring::{EffectivenessRow, GroupBy, OutcomeRow};
pub use promotion::{Action, Budget, Conditions, Limits, Promotion, Reward, Stacking};
pub use quote::{evaluate, Cart, CustomerContext, Quote, SelectMode};

use crate::command::Output;
use crate::engine::Engine;
use crate::error::Error;
use crate::event::{Event, EventBody, UserRef};
use crate::ids::OneId;

/// What can go wrong in a campaigns call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CampaignError {
    /// A malformed or contradictory argument.
    #[error("invalid argument at `{field}`: {reason}")]
    Invalid {
        /// Path of the field.
        field: String,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// A number out of range.
    #[error("{field}: {reason}")]
    OutOfRange {
        /// Path of the field.
        field: String,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// Something referenced does not exist.
    #[error("{what} not found: {id}")]
    NotFound {
        /// What was looked for (`"promotion"`, `"coupon"`, `"coupon template"`, ...).
        what: &'static str,
        /// The id that was not found.
        id: String,
    },
    /// A commit key reused for another quote.
    #[error("commit key {0:?} was already used for another quote")]
    DuplicateKey(String),
    /// A budget cannot cover the use.
    #[error("budget of {promotion:?} exhausted: {reason}")]
    BudgetExhausted {
        /// The promotion's id.
        promotion: String,
        /// What the budget lacks, for a person to read; not stable text.
        reason: String,
    },
    /// A usage limit or stock is reached.
    #[error("limit of {promotion:?} reached: {reason}")]
    LimitReached {
        /// The promotion (or coupon template).
        promotion: String,
        /// Which limit and its count, for a person to read; not stable text.
        reason: String,
    },
    /// A coupon cannot be used, claimed or returned in its state.
    #[error("coupon {coupon:?} cannot be used: {reason}")]
    CouponUnusable {
        /// The coupon's instance id.
        coupon: String,
        /// What is wrong, for a person to read; not stable text (match on the variant, or its code).
        reason: String,
    },
    /// A broken invariant.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CampaignError {
    /// An [`CampaignError::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CampaignError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefix the field path with the argument's name.
    fn at(self, arg: &str) -> Self {
        let join = |f: String| {
            if f.is_empty() {
                arg.to_owned()
            } else {
                format!("{arg}.{f}")
            }
        };
        match self {
            CampaignError::Invalid { field, reason } => CampaignError::Invalid {
                field: join(field),
                reason,
            },
            CampaignError::OutOfRange { field, reason } => CampaignError::OutOfRange {
                field: join(field),
                reason,
            },
            e => e,
        }
    }
}

impl From<CampaignError> for Error {
    fn from(e: CampaignError) -> Self {
        match e {
            CampaignError::Invalid { field, reason } => Error::InvalidArgument { field, reason },
            CampaignError::OutOfRange { field, reason } => Error::OutOfRange { field, reason },
            CampaignError::NotFound { what, id } => Error::NotFound { what, id },
            CampaignError::DuplicateKey(key) => Error::DuplicateKey { key },
            CampaignError::BudgetExhausted { promotion, reason } => {
                Error::BudgetExhausted { promotion, reason }
            }
            CampaignError::LimitReached { promotion, reason } => {
                Error::PromotionLimitReached { promotion, reason }
            }
            CampaignError::CouponUnusable { coupon, reason } => {
                Error::CouponUnusable { coupon, reason }
            }
            CampaignError::Internal(m) => Error::Internal(m),
        }
    }
}

/// Everything campaigns keep (part of the engine's state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Campaigns {
    /// Sorted by (priority, id): the evaluation order.
    promotions: Vec<Promotion>,
    ledger: Ledger,
    coupons: coupons::CouponBook,
    automation: automation::Automation,
    monitor: monitoring::Monitor,
    /// What merges moved, for a split to give back (see `person.rs`).
    #[serde(default, skip_serializing_if = "crate::person::Stash::is_empty")]
    merged: crate::person::Stash<person::CampaignsMoved>,
    /// The promotions indexed for evaluation (derived; rebuilt after a change).
    #[serde(skip)]
    index: IndexCache,
}

/// A lazily built [`quote::PromoIndex`]: not state (derived from the promotion list), so it is
/// equal to any other and a clone starts empty.
#[derive(Default)]
struct IndexCache(std::sync::OnceLock<quote::PromoIndex>);

impl Clone for IndexCache {
    fn clone(&self) -> Self {
        IndexCache::default()
    }
}

impl PartialEq for IndexCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexCache")
    }
}

impl Campaigns {
    /// The evaluation index of the current promotions (built on first use).
    pub fn index(&self) -> &quote::PromoIndex {
        self.index
            .0
            .get_or_init(|| quote::PromoIndex::build(&self.promotions))
    }

    /// Promotions in evaluation order.
    pub fn promotions(&self) -> &[Promotion] {
        &self.promotions
    }

    /// Budgets and limits consumed.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Add a promotion, or replace the one with its id.
    ///
    /// # Errors
    ///
    /// As [`Promotion::validate`]; nothing changes.
    pub fn add_promotion(&mut self, p: Promotion) -> Result<(), CampaignError> {
        p.validate()?;
        self.promotions.retain(|q| q.id != p.id);
        let at = self
            .promotions
            .partition_point(|q| (q.stacking.priority, &*q.id) < (p.stacking.priority, &*p.id));
        self.promotions.insert(at, p);
        self.index = IndexCache::default();
        Ok(())
    }

    /// Evaluate a cart.
    ///
    /// # Errors
    ///
    /// As [`quote::evaluate`].
    pub fn quote(
        &self,
        cart: &Cart,
        customer: &CustomerContext,
        mode: SelectMode,
        tz: chrono::FixedOffset,
    ) -> Result<Quote, CampaignError> {
        quote::evaluate_indexed(
            self.index(),
            &self.promotions,
            &self.ledger,
            cart,
            customer,
            mode,
            tz,
        )
    }

    /// Add or replace an automation rule (its coupon templates must exist). The engine's
    /// `add_rule` also checks the rule against loyalty and tags first.
    ///
    /// # Errors
    ///
    /// As [`Automation::add_rule`](automation::Automation::add_rule).
    pub fn add_rule(&mut self, rule: Rule) -> Result<(), CampaignError> {
        self.automation.add_rule(rule, &self.coupons)
    }

    /// The id of a rule that selects users by the saved audience `name`, if any.
    pub fn rule_using_audience(&self, name: &str) -> Option<&str> {
        self.automation
            .rules()
            .find(|r| match &r.trigger {
                Trigger::Audience { audience }
                | Trigger::Inactive {
                    audience: Some(audience),
                    ..
                } => audience == name,
                _ => false,
            })
            .map(|r| r.id.as_str())
    }

    /// Add a coupon template.
    ///
    /// # Errors
    ///
    /// As [`CouponBook::add_template`](coupons::CouponBook::add_template).
    pub fn add_coupon_template(&mut self, t: CouponTemplate) -> Result<(), CampaignError> {
        self.coupons.add_template(t)
    }

    /// Record an order as automation sees it — what an ingested order event does here (the
    /// bulk path for loaders and benchmarks, which skips the rest of the engine). An order id
    /// seen before for the user changes nothing.
    pub fn record_order(
        &mut self,
        user: OneId,
        order_id: &str,
        time: DateTime<Utc>,
        skus: &[&str],
        categories: &[&str],
        amount: Decimal,
    ) {
        let f = self.automation.facts.entry(user).or_default();
        f.last_active = Some(f.last_active.map_or(time, |l| l.max(time)));
        if f.purchases.iter().all(|p| p.order_id != order_id) {
            f.purchases.push(automation::Purchase {
                order_id: order_id.to_owned(),
                time,
                skus: sorted_distinct(skus.iter().map(|s| (*s).to_owned())),
                categories: sorted_distinct(categories.iter().map(|s| (*s).to_owned())),
                amount,
            });
            self.monitor.on_order(user, time, amount);
        }
    }

    /// Run every automation rule at `now` against `ctx` (audiences, birthdays, consent): the
    /// delivery plan. Touches are recorded for monitoring and coupons issued; applying
    /// `grant_points` / `add_tag` rows is left to the caller (the engine's `run_automation`
    /// posts and writes them).
    pub fn run_automation(
        &mut self,
        now: DateTime<Utc>,
        tz: chrono::FixedOffset,
        ctx: &dyn AutomationContext,
    ) -> Vec<PlanRow> {
        self.automation
            .run(now, tz, ctx, &mut self.coupons, &mut self.monitor)
    }

    /// [`Campaigns::run_automation`] in chunks of about `chunk_users` users: each chunk's plan
    /// rows are handed to `sink` as soon as they are made, so memory holds one chunk of the
    /// plan, not all of it (see [`automation::Automation::start`] for the order). Returns the
    /// number of rows.
    pub fn run_automation_chunked(
        &mut self,
        now: DateTime<Utc>,
        tz: chrono::FixedOffset,
        ctx: &dyn AutomationContext,
        chunk_users: usize,
        mut sink: impl FnMut(Vec<PlanRow>),
    ) -> usize {
        let mut run = self.automation.start(now, tz, ctx, chunk_users);
        let mut rows = 0;
        while let Some(chunk) =
            self.automation
                .next_chunk(&mut run, ctx, &mut self.coupons, &mut self.monitor)
        {
            rows += chunk.len();
            sink(chunk);
        }
        rows
    }

    /// Automation rules, what fired, and what was suppressed.
    pub fn automation(&self) -> &automation::Automation {
        &self.automation
    }

    /// Commit a quote under an idempotency key.
    ///
    /// # Errors
    ///
    /// As [`Ledger::commit`].
    pub fn commit(&mut self, key: &str, quote: &QuoteRef) -> Result<CommitReceipt, CampaignError> {
        let promos = &self.promotions;
        self.ledger
            .commit(key, quote, |id| promos.iter().find(|p| &*p.id == id))
    }

    /// Cancel a commit.
    ///
    /// # Errors
    ///
    /// As [`Ledger::cancel`].
    pub fn cancel(&mut self, key: &str) -> Result<CommitReceipt, CampaignError> {
        self.ledger.cancel(key)
    }

    /// React to an ingested event (called once its checks passed; never fails).
    pub(crate) fn on_event(&mut self, event: &Event, oneid: Option<OneId>) {
        let Some(user) = oneid else { return };
        let t = event.time;
        let touch_active = |f: &mut automation::UserFacts| {
            f.last_active = Some(f.last_active.map_or(t, |l| l.max(t)));
        };
        match &event.body {
            EventBody::Order {
                order_id,
                amount,
                lines,
                ..
            } => {
                let f = self.automation.facts.entry(user).or_default();
                touch_active(f);
                if !f.purchases.iter().any(|p| &p.order_id == order_id) {
                    f.purchases.push(automation::Purchase {
                        order_id: order_id.clone(),
                        time: t,
                        skus: sorted_distinct(lines.iter().map(|l| l.sku.clone())),
                        categories: sorted_distinct(lines.iter().map(|l| l.category.clone())),
                        amount: *amount,
                    });
                    self.monitor.on_order(user, t, *amount);
                }
            }
            EventBody::Register { .. } => {
                let f = self.automation.facts.entry(user).or_default();
                touch_active(f);
                f.registered_at = Some(f.registered_at.map_or(t, |r| r.min(t)));
            }
            EventBody::Activity { .. }
            | EventBody::Behavior { .. }
            | EventBody::Community { .. } => {
                touch_active(self.automation.facts.entry(user).or_default());
            }
            EventBody::Touch {
                channel,
                content,
                rule,
                outcome,
                ..
            } => self
                .monitor
                .on_touch_event(user, channel, content, rule.as_deref(), *outcome, t),
            _ => {}
        }
    }
}

/// The profile attribute birthday rules read.
pub const BIRTHDAY_ATTRIBUTE: &str = "birthday";

/// (month, day) of a birthday attribute: a date (in the business time zone) or a
/// `YYYY-MM-DD` / `MM-DD` string.
fn month_day(v: &crate::profile::AttrValue, tz: chrono::FixedOffset) -> Option<(u32, u32)> {
    use chrono::Datelike;
    match v {
        crate::profile::AttrValue::Date(t) => {
            let d = t.with_timezone(&tz).date_naive();
            Some((d.month(), d.day()))
        }
        crate::profile::AttrValue::String(s) => {
            let s = s.trim();
            let md = if s.len() == 10 { s.get(5..)? } else { s };
            let (m, d) = md.split_once('-')?;
            let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
            // Any leap year accepts every real (month, day).
            chrono::NaiveDate::from_ymd_opt(2024, m, d).map(|_| (m, d))
        }
        _ => None,
    }
}

fn sorted_distinct(v: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = v.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The engine's answers to automation's questions: saved audiences from the tags module,
/// birthdays from the profile attribute, consent from the privacy module.
struct EngineContext<'a> {
    engine: &'a Engine,
}

impl AutomationContext for EngineContext<'_> {
    fn audience_members(&self, audience: &str) -> Option<Vec<OneId>> {
        let s = &self.engine.state;
        let a = s.tags.audience_members(audience)?;
        let mut v = s.users.oneids(&(a & s.users.live()));
        v.retain(|o| !s.privacy.is_erased(*o));
        v.sort_unstable();
        Some(v)
    }

    fn in_audience(&self, user: OneId, audience: &str) -> bool {
        let s = &self.engine.state;
        let (Some(a), Some(d)) = (s.tags.audience_members(audience), s.users.dense(user)) else {
            return false;
        };
        a.contains(d) && s.users.live().contains(d)
    }

    fn birthday(&self, user: OneId) -> Option<(u32, u32)> {
        month_day(
            self.engine
                .state
                .profiles
                .attribute(user, BIRTHDAY_ATTRIBUTE)?,
            self.engine.config.business_tz(),
        )
    }

    fn birthday_users(&self, month: u32, day: u32) -> Option<Vec<OneId>> {
        let s = &self.engine.state;
        let tz = self.engine.config.business_tz();
        Some(
            s.profiles
                .with_attribute(BIRTHDAY_ATTRIBUTE)
                .filter(|(o, v)| {
                    !s.privacy.is_erased(*o)
                        && s.identity.canonical(*o) == Some(*o)
                        && month_day(v, tz) == Some((month, day))
                })
                .map(|(o, _)| o)
                .collect(),
        )
    }

    fn consents(&self, user: OneId, channel: &str, purpose: &str) -> bool {
        self.engine.has_consent(user, channel, purpose)
    }
}

/// The campaigns command set: method names are the Python method names.
#[expect(
    clippy::large_enum_variant,
    reason = "a command is moved once into `execute` and dropped: boxing would add an allocation per event"
)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CampaignsCommand {
    /// Add or replace a promotion. Output: `{"ok": true}`.
    AddPromotion {
        /// The promotion; one with the same id is replaced.
        promotion: Promotion,
    },
    /// Evaluate a cart. Output: [`Quote`].
    Quote {
        /// The cart; its `time` is when the promotions are judged (windows, weekdays, hours).
        cart: Cart,
        /// The customer, if known.
        #[serde(default)]
        user: Option<UserRef>,
        /// Stacking choice (default best for the customer).
        #[serde(default)]
        mode: SelectMode,
    },
    /// Consume budgets and limits for a quote, and grant its coupon and points rewards
    /// (满返 rebates, gifts) to the quote's customer. Output: [`CommitReceipt`].
    Commit {
        /// The quote (as returned by `quote`).
        quote: QuoteRef,
        /// Idempotency key (typically the order id).
        key: String,
        /// When the rewards are granted (default: the quote's cart time).
        #[serde(default, with = "promotion::time_opt")]
        time: Option<DateTime<Utc>>,
    },
    /// Give back a commit's budgets and limits; reverse its points and withdraw its unused
    /// coupons. Output: [`CommitReceipt`].
    Cancel {
        /// The commit's key.
        key: String,
        /// When (default: the time the rewards were granted).
        #[serde(default, with = "promotion::time_opt")]
        time: Option<DateTime<Utc>>,
    },
    /// A promotion's usage. Output: `{"id", "money", "orders", "budget_left"}`.
    PromotionUsage {
        /// The promotion's id.
        id: String,
    },
    /// Add a coupon template. Output: `{"ok": true}`.
    AddCouponTemplate {
        /// The template; its id must be new.
        template: CouponTemplate,
    },
    /// Issue coupons to users. Output: the coupon ids.
    IssueCoupons {
        /// Template id.
        template: String,
        /// The users to issue to (with `audience`: these and the audience's members).
        #[serde(default)]
        users: Vec<UserRef>,
        /// Or an audience.
        #[serde(default)]
        audience: Option<String>,
        /// The issue time, RFC 3339 with a zone (`Z` or `±hh:mm`), kept in UTC: a coupon is valid
        /// from it, or from the template's start if that is later.
        #[serde(with = "crate::event::rfc3339")]
        time: DateTime<Utc>,
    },
    /// Claim a coupon. Output: `{"coupon_id"}`.
    ClaimCoupon {
        /// Template id.
        template: String,
        /// The user claiming: an identifier or a known OneID.
        user: UserRef,
        /// The claim time, RFC 3339 with a zone (`Z` or `±hh:mm`), kept in UTC.
        #[serde(with = "crate::event::rfc3339")]
        time: DateTime<Utc>,
    },
    /// Use a coupon on a cart. Output: [`CouponUse`].
    UseCoupon {
        /// Coupon id.
        coupon_id: String,
        /// The user using it: must be the coupon's owner.
        user: UserRef,
        /// The cart (its `time` is the time of use).
        cart: Cart,
    },
    /// Return a used coupon after a refund. Output: `{"coupon_id", "state"}`.
    ReturnCoupon {
        /// Coupon id.
        coupon_id: String,
        /// The return time, RFC 3339 with a zone (`Z` or `±hh:mm`), kept in UTC.
        #[serde(with = "crate::event::rfc3339")]
        time: DateTime<Utc>,
    },
    /// Expire coupons past their window. Output: the expired ids.
    ExpireCoupons {
        /// The current time, RFC 3339 with a zone (`Z` or `±hh:mm`), kept in UTC: issued and claimed coupons whose window ends at or
        /// before it expire.
        #[serde(with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Counts per state per template. Output: list of [`CouponCounts`].
    CouponCounts {
        /// One template only.
        #[serde(default)]
        template: Option<String>,
    },
    /// Add or replace an automation rule. An audience trigger must name a saved audience
    /// (`NotFound` otherwise: an expression such as `orders >= 3` is not evaluated here; save it
    /// with `save_audience` and name it). Output: `{"ok": true}`.
    AddRule {
        /// The rule; one with the same id is replaced.
        rule: Rule,
    },
    /// Run automation. Rules go in id order (by id text), each over its users in OneID
    /// order: when rules `a-vip` and `b-welcome` both touch a user on a channel capped at one
    /// touch a week, `a-vip`'s touch goes and `b-welcome`'s is suppressed (`frequency_cap`).
    /// Output: the delivery plan (list of [`PlanRow`]).
    RunAutomation {
        /// The run's clock, RFC 3339 with a zone (`Z` or `±hh:mm`), kept in UTC: quiet hours, triggers and frequency caps are
        /// judged at this instant.
        #[serde(with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Record touch outcomes. Output: `{"recorded": n}`.
    RecordOutcomes {
        /// The outcomes; all are checked before any is applied, and the first report of a
        /// stage wins.
        rows: Vec<OutcomeRow>,
    },
    /// Channel effectiveness. Output: list of [`EffectivenessRow`].
    ChannelEffectiveness {
        /// What the rows are grouped by (default: channel).
        #[serde(default)]
        by: GroupBy,
    },
}

fn two_places(mut d: Decimal) -> Decimal {
    d.rescale(2);
    d
}

impl CampaignsCommand {
    /// Whether the command can change state.
    pub fn mutates(&self) -> bool {
        !matches!(
            self,
            CampaignsCommand::Quote { .. }
                | CampaignsCommand::PromotionUsage { .. }
                | CampaignsCommand::CouponCounts { .. }
                | CampaignsCommand::ChannelEffectiveness { .. }
        )
    }
}

/// A promotion's usage, as `promotion_usage` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    /// The promotion's id.
    pub id: String,
    /// Money consumed.
    #[serde(with = "rust_decimal::serde::str")]
    pub money: Decimal,
    /// Orders committed with it and not cancelled.
    pub orders: u64,
    /// Money left (money budgets) or uses left (count budgets); `None` = unbounded.
    pub budget_left: Option<String>,
}

/// What campaigns commands return.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum CampaignsOutput {
    /// What `quote` returns.
    Quote(Quote),
    /// A commit or cancel.
    Commit(CommitReceipt),
    /// A promotion's usage.
    Usage(UsageReport),
    /// A change made, with nothing else to return: `{"ok": true}`.
    Ok {
        /// Always true.
        ok: bool,
    },
    /// Coupon ids.
    Ids(Vec<String>),
    /// A coupon and its state.
    Coupon {
        /// The coupon's instance id.
        coupon_id: String,
        /// State, when relevant.
        #[serde(skip_serializing_if = "Option::is_none")]
        state: Option<coupons::CouponState>,
    },
    /// A coupon use.
    CouponUse(CouponUse),
    /// Coupon counts per state, one row per template.
    Counts(Vec<CouponCounts>),
    /// A delivery plan.
    Plan(Vec<PlanRow>),
    /// Outcomes recorded.
    Recorded {
        /// How many outcome rows were applied.
        recorded: usize,
    },
    /// Channel effectiveness, one row per group.
    Report(Vec<EffectivenessRow>),
}

impl From<CampaignsCommand> for crate::command::Command {
    fn from(c: CampaignsCommand) -> Self {
        crate::command::Command::Campaigns(c)
    }
}

/// What a quote's rewards grant: coupons (template, count) and points earns (program, points,
/// key).
type QuoteRewards = (Vec<(String, u64)>, Vec<(String, i64, String)>);

impl Engine {
    /// `run_automation` in chunks of about `chunk_users` users, for runs whose plan is too
    /// big to hold: each chunk's rows are applied (points posted, tags written; coupons and
    /// touch records are made by the run) and then handed to `sink`, so memory holds one
    /// chunk of the plan. Re-running at the same `now` plans nothing again (every firing is
    /// de-duplicated). Returns the number of rows.
    pub fn run_automation_chunked(
        &mut self,
        now: DateTime<Utc>,
        chunk_users: usize,
        mut sink: impl FnMut(Vec<PlanRow>),
    ) -> usize {
        let tz = self.config.business_tz();
        let c = &mut self.state.campaigns;
        let mut automation = std::mem::take(&mut c.automation);
        let mut coupons = std::mem::take(&mut c.coupons);
        let mut monitor = std::mem::take(&mut c.monitor);
        let mut run = automation.start(now, tz, &EngineContext { engine: self }, chunk_users);
        let (mut rows, mut written) = (0, Vec::new());
        loop {
            let chunk = automation.next_chunk(
                &mut run,
                &EngineContext { engine: self },
                &mut coupons,
                &mut monitor,
            );
            let Some(chunk) = chunk else { break };
            // Points and tags are applied through the engine, which owns the other modules;
            // the campaigns state is put back for that and taken again for the next chunk.
            let c = &mut self.state.campaigns;
            c.automation = automation;
            c.coupons = coupons;
            c.monitor = monitor;
            let chunk = self.apply_rows(chunk, now, &mut written);
            rows += chunk.len();
            sink(chunk);
            let c = &mut self.state.campaigns;
            automation = std::mem::take(&mut c.automation);
            coupons = std::mem::take(&mut c.coupons);
            monitor = std::mem::take(&mut c.monitor);
        }
        let c = &mut self.state.campaigns;
        c.automation = automation;
        c.coupons = coupons;
        c.monitor = monitor;
        if !written.is_empty() {
            self.refresh_rules(&written, now);
        }
        rows
    }

    fn known_user(&self, user: &UserRef, field: &str) -> Result<OneId, Error> {
        self.lookup(user)
            .map_err(|e| Error::invalid_argument(field, e.to_string()))?
            .ok_or_else(|| Error::NotFound {
                what: "user",
                id: format!("{user:?}"),
            })
    }

    /// What the promotion engine knows about a customer: tiers from the loyalty programs,
    /// the saved audiences (tags module) they belong to, and whether this is a first order.
    pub fn customer_context(&self, user: Option<OneId>) -> CustomerContext {
        let s = &self.state;
        let mut ctx = CustomerContext {
            oneid: user,
            first_order: true,
            ..CustomerContext::default()
        };
        let Some(u) = user else { return ctx };
        ctx.first_order = s
            .campaigns
            .automation
            .facts
            .get(&u)
            .is_none_or(|f| f.purchases.is_empty());
        for p in s.loyalty.programs() {
            if let Some(t) = s.loyalty.tier_of(p, u) {
                ctx.tier.get_or_insert_with(|| t.clone());
                ctx.program_tiers.insert(p.spec.id.clone(), t);
            }
        }
        if let Some(d) = s.users.dense(u).filter(|d| s.users.live().contains(*d)) {
            ctx.audiences = s.tags.audiences_holding(d).map(str::to_owned).collect();
        }
        ctx
    }

    /// The loyalty program a points reward or action goes to: the one named, else the only
    /// program there is.
    fn points_program(&self, named: Option<&str>, field: &str) -> Result<String, Error> {
        let lo = &self.state.loyalty;
        match named {
            Some(p) => lo
                .program(p)
                .map(|p| p.spec.id.clone())
                .ok_or_else(|| Error::NotFound {
                    what: "loyalty program",
                    id: p.to_owned(),
                }),
            None => match lo.programs() {
                [only] => Ok(only.spec.id.clone()),
                ps => Err(Error::invalid_argument(
                    field,
                    format!(
                        "points need a loyalty program: name one ({} programs exist)",
                        ps.len()
                    ),
                )),
            },
        }
    }

    /// Check a rule against the other modules and fill in what it leaves to defaults (the
    /// loyalty program of `grant_points`).
    fn resolve_rule(&self, mut rule: Rule) -> Result<Rule, Error> {
        // A rule selects users by the name of a saved audience, never by an expression: a
        // name that is not saved (such as `orders >= 3`) would make a rule that never fires.
        if let Trigger::Audience { audience }
        | Trigger::Inactive {
            audience: Some(audience),
            ..
        } = &rule.trigger
        {
            if !self.state.tags.has_audience(audience) {
                return Err(Error::NotFound {
                    what: "saved audience",
                    id: format!(
                        "{audience:?} (a rule names a saved audience: save an expression with \
                         save_audience first)"
                    ),
                });
            }
        }
        for (i, a) in rule.actions.iter_mut().enumerate() {
            match a {
                RuleAction::GrantPoints { program, .. } => {
                    let p = self.points_program(
                        program.as_deref(),
                        &format!("rule.actions[{i}].program"),
                    )?;
                    *program = Some(p);
                }
                RuleAction::AddTag { tag } => {
                    let field = format!("rule.actions[{i}].tag");
                    match self.state.tags.def(tag) {
                        Some(d)
                            if d.value_type != crate::tags::ValueType::Bool
                                || matches!(d.kind, crate::tags::TagKind::Rule { .. }) =>
                        {
                            return Err(Error::invalid_argument(
                                field,
                                format!("{tag:?} is not a bool tag a rule can set"),
                            ))
                        }
                        Some(_) => {}
                        None if self.state.tags.has_column(tag) => {
                            return Err(Error::invalid_argument(
                                field,
                                format!("{tag:?} is a profile attribute"),
                            ))
                        }
                        None => crate::tags::check_name(tag)
                            .map_err(|e| Error::invalid_argument(field, e.to_string()))?,
                    }
                }
                _ => {}
            }
        }
        Ok(rule)
    }

    /// Post the plan's `grant_points` rows to the loyalty ledger and write its `add_tag` rows
    /// to the tag index. A row that cannot be applied is dropped from the plan and counted as
    /// suppressed (`points_failed`, `tag_failed`); the rest go ahead.
    fn apply_plan(&mut self, plan: Vec<PlanRow>, now: DateTime<Utc>) -> Vec<PlanRow> {
        let mut written = Vec::new();
        let plan = self.apply_rows(plan, now, &mut written);
        if !written.is_empty() {
            self.refresh_rules(&written, now);
        }
        plan
    }

    /// [`Engine::apply_plan`] without refreshing the tag rules: the tags written are added
    /// to `written` (a chunked run refreshes once, at its end).
    fn apply_rows(
        &mut self,
        plan: Vec<PlanRow>,
        now: DateTime<Utc>,
        written: &mut Vec<String>,
    ) -> Vec<PlanRow> {
        let mut keep = Vec::with_capacity(plan.len());
        let mut tags: BTreeMap<String, Vec<OneId>> = BTreeMap::new();
        for row in plan {
            match row.action {
                "grant_points" => {
                    let (Some(points), Some(program), Some(key)) =
                        (row.points, row.program.clone(), row.key.clone())
                    else {
                        continue;
                    };
                    let earn = crate::loyalty::LoyaltyCommand::Earn {
                        user: UserRef::OneId(row.user),
                        program,
                        points,
                        key,
                        reason: format!("automation rule {}", row.rule),
                        expires: None,
                        pending: false,
                        order: None,
                        apply_multiplier: false,
                        actor: "automation".into(),
                        time: Some(now),
                    };
                    match self.execute_loyalty(earn) {
                        Ok(_) => keep.push(row),
                        Err(_) => self
                            .state
                            .campaigns
                            .automation
                            .suppress(&row.rule, "points_failed"),
                    }
                }
                "add_tag" => {
                    if let Some(t) = &row.tag {
                        tags.entry(t.clone()).or_default().push(row.user);
                    }
                    keep.push(row);
                }
                _ => keep.push(row),
            }
        }
        if tags.is_empty() {
            return keep;
        }
        let mut failed: BTreeSet<String> = BTreeSet::new();
        for (tag, users) in tags {
            if self.state.tags.def(&tag).is_none() {
                let define = crate::tags::TagsCommand::DefineTag {
                    name: tag.clone(),
                    value_type: crate::tags::ValueType::Bool,
                    rule: None,
                    model: None,
                    description: "set by automation rules".into(),
                    now,
                };
                if self.execute_tags(define).is_err() {
                    failed.insert(tag);
                    continue;
                }
            }
            let t = crate::tags::ValueType::Bool;
            for u in users {
                let d = self.state.users.dense_or_insert(u);
                self.state
                    .tags
                    .write(&tag, t, d, &[crate::tags::Value::Bool(true)]);
            }
            if !written.contains(&tag) {
                written.push(tag);
            }
        }
        if failed.is_empty() {
            return keep;
        }
        let (bad, ok): (Vec<PlanRow>, Vec<PlanRow>) = keep.into_iter().partition(|r| {
            r.action == "add_tag" && r.tag.as_ref().is_some_and(|t| failed.contains(t))
        });
        for r in bad {
            self.state
                .campaigns
                .automation
                .suppress(&r.rule, "tag_failed");
        }
        ok
    }

    /// Commit a quote: budgets and limits (campaigns ledger), then its coupon and points
    /// rewards for the quote's customer. Everything is checked before anything changes; a
    /// replayed key grants nothing again.
    fn commit_quote(
        &mut self,
        key: &str,
        quote: &QuoteRef,
        time: Option<DateTime<Utc>>,
    ) -> Result<CommitReceipt, Error> {
        if self.state.campaigns.ledger.commitment(key).is_some() {
            // The same quote again is a replay; another is `DuplicateKey`.
            return Ok(self.state.campaigns.commit(key, quote)?);
        }
        if !self.replaying {
            // A journal of an older build holds quotes without checksums (`Engine::replay`).
            check_quote(quote)?;
        }
        let time = time.or(quote.time);
        let tz = self.config.business_tz();
        let (coupons, earns) = self.quote_rewards(key, quote)?;
        let user = quote
            .user
            .filter(|_| !coupons.is_empty() || !earns.is_empty());
        let time =
            match (user, time) {
                (Some(_), None) => return Err(Error::invalid_argument(
                    "time",
                    "rewards are granted at a time: give `time` (or a quote with its cart time)",
                )),
                (_, t) => t.unwrap_or_default(),
            };
        let order = format!("promotion:{key}");
        if let Some(u) = user {
            self.check_quote_grants(u, key, &coupons, &earns, &order, time, tz)?;
        }
        let mut receipt = self.state.campaigns.commit(key, quote)?;
        // Checked above: from here on nothing fails.
        let Some(u) = user else { return Ok(receipt) };
        let granted = self.grant_quote_rewards(u, key, coupons, earns, &order, time, tz)?;
        receipt.coupons = granted.coupons.clone();
        receipt.points = granted.points;
        self.state.campaigns.ledger.set_granted(key, granted);
        Ok(receipt)
    }

    /// The coupons (template, count) and points earns (program, points, key) the quote's
    /// applied rewards grant, each checked against what its promotion gives.
    fn quote_rewards(&self, key: &str, quote: &QuoteRef) -> Result<QuoteRewards, Error> {
        let mut coupons: Vec<(String, u64)> = Vec::new();
        let mut earns: Vec<(String, i64, String)> = Vec::new();
        for (i, a) in quote.applied.iter().enumerate() {
            if a.rewards.is_empty() {
                continue;
            }
            let field = format!("quote.applied[{i}].rewards");
            let p = self
                .state
                .campaigns
                .promotions
                .iter()
                .find(|p| *p.id == *a.id)
                .ok_or_else(|| Error::NotFound {
                    what: "promotion",
                    id: a.id.clone(),
                })?;
            let (reward, most) = match &p.action {
                Action::ThresholdGift {
                    reward,
                    every,
                    threshold,
                }
                | Action::ThresholdRebate {
                    reward,
                    every,
                    threshold,
                } => {
                    // How many rewards the order can earn: one, or one per full threshold of
                    // the quote's subtotal.
                    let most = if *every && *threshold > Decimal::ZERO {
                        quote
                            .subtotal
                            .and_then(|s| (s / *threshold).floor().to_u64())
                            .unwrap_or(0)
                    } else {
                        1
                    };
                    (
                        Some(reward),
                        p.limits.per_order.map_or(most, |m| most.min(m)),
                    )
                }
                _ => (None, 0),
            };
            for r in &a.rewards {
                let n = match (r, reward) {
                    (ledger::RewardRef::Other, _) => continue,
                    (
                        ledger::RewardRef::Coupon { template, count },
                        Some(Reward::Coupon { template: t, .. }),
                    ) if t == template => *count,
                    (
                        ledger::RewardRef::Points { points, program },
                        Some(Reward::Points {
                            points: each,
                            program: q,
                        }),
                    ) if program == q && *each > 0 && *points > 0 && points % each == 0 => {
                        u64::try_from(points / each).unwrap_or(0)
                    }
                    _ => {
                        return Err(Error::invalid_argument(
                            field,
                            format!("does not match the reward of promotion {:?}", a.id),
                        ))
                    }
                };
                if n == 0 || n > most {
                    return Err(Error::invalid_argument(
                        field,
                        format!("{n} rewards exceed what promotion {:?} gives", a.id),
                    ));
                }
                match r {
                    ledger::RewardRef::Coupon { template, .. } => {
                        coupons.push((template.clone(), n));
                    }
                    ledger::RewardRef::Points { points, program } => {
                        let prog = self.points_program(program.as_deref(), &field)?;
                        earns.push((prog, *points, format!("promotion:{key}:{}", a.id)));
                    }
                    _ => {}
                }
            }
        }
        Ok((coupons, earns))
    }

    /// Check that the quote's customer is live and can be granted its coupons and earns.
    #[allow(clippy::too_many_arguments, reason = "the parts of one commit")]
    fn check_quote_grants(
        &self,
        u: OneId,
        key: &str,
        coupons: &[(String, u64)],
        earns: &[(String, i64, String)],
        order: &str,
        time: DateTime<Utc>,
        tz: chrono::FixedOffset,
    ) -> Result<(), Error> {
        let live = self.state.identity.canonical(u);
        if live != Some(u) || self.state.privacy.is_erased(u) {
            return Err(Error::invalid_argument(
                "quote.user",
                format!("{u} is not a live person"),
            ));
        }
        let mut per_template: BTreeMap<&str, u64> = BTreeMap::new();
        for (t, n) in coupons {
            *per_template.entry(t).or_default() += n;
        }
        for (t, n) in per_template {
            self.state.campaigns.coupons.check_issue(t, n)?;
        }
        let lo = &self.state.loyalty;
        for (prog, points, ekey) in earns {
            let p = lo.program(prog).ok_or_else(|| Error::NotFound {
                what: "loyalty program",
                id: prog.clone(),
            })?;
            let reason = format!("promotion rebate ({key})");
            lo.ledger().check_earn(&crate::loyalty::ledger::Earn {
                entry: crate::loyalty::ledger::Entry {
                    user: u,
                    book: p.book,
                    points: *points,
                    key: ekey,
                    reason: &reason,
                    actor: "campaigns",
                    time,
                },
                expires: p.spec.expiry.expires(time, tz),
                pending: false,
                order: Some(order),
                money: None,
                lines: &[],
            })?;
        }
        Ok(())
    }

    /// Grant the checked coupons and earns of a committed quote to its customer.
    #[allow(clippy::too_many_arguments, reason = "the parts of one commit")]
    fn grant_quote_rewards(
        &mut self,
        u: OneId,
        key: &str,
        coupons: Vec<(String, u64)>,
        earns: Vec<(String, i64, String)>,
        order: &str,
        time: DateTime<Utc>,
        tz: chrono::FixedOffset,
    ) -> Result<ledger::Granted, Error> {
        let mut granted = ledger::Granted {
            time: Some(time),
            ..ledger::Granted::default()
        };
        for (t, n) in coupons {
            let users = vec![u; usize::try_from(n).unwrap_or(0)];
            let ids = self
                .state
                .campaigns
                .coupons
                .issue(&t, &users, time, coupons::CouponState::Issued)
                .map_err(|e| Error::Internal(format!("coupon issue checked before: {e}")))?;
            granted.coupons.extend(ids);
        }
        for (prog, points, ekey) in earns {
            let expires = self
                .state
                .loyalty
                .program(&prog)
                .and_then(|p| p.spec.expiry.expires(time, tz));
            self.execute_loyalty(crate::loyalty::LoyaltyCommand::Earn {
                user: UserRef::OneId(u),
                program: prog,
                points,
                key: ekey,
                reason: format!("promotion rebate ({key})"),
                expires,
                pending: false,
                order: Some(order.to_owned()),
                apply_multiplier: false,
                actor: "campaigns".into(),
                time: Some(time),
            })
            .map_err(|e| Error::Internal(format!("earn checked before: {e}")))?;
            granted.points = granted.points.saturating_add(points);
            granted.points_order = Some(order.to_owned());
        }
        Ok(granted)
    }

    /// Cancel a commit: reverse its points (loyalty refund of its order), withdraw its unused
    /// coupons, give back budgets and limits. A second cancel changes nothing.
    fn cancel_commit(
        &mut self,
        key: &str,
        time: Option<DateTime<Utc>>,
    ) -> Result<CommitReceipt, Error> {
        let c = self
            .state
            .campaigns
            .ledger
            .commitment(key)
            .ok_or_else(|| Error::NotFound {
                what: "commit",
                id: key.to_owned(),
            })?;
        let g = &self.state.identity;
        let owner = |o: OneId| g.canonical(o).unwrap_or(o);
        if c.cancelled {
            return Ok(self.state.campaigns.ledger.cancel_owned(key, owner)?);
        }
        let g = c.granted.clone();
        if let Some(order) = g.points_order.as_ref().filter(|_| g.points > 0) {
            // The refund checks everything before it changes anything.
            self.execute_loyalty(crate::loyalty::LoyaltyCommand::Refund {
                order_key: order.clone(),
                key: format!("{order}:cancel"),
                time: time.or(g.time),
            })?;
        }
        self.state.campaigns.coupons.revoke(&g.coupons);
        let ids = &self.state.identity;
        let owner = |o: OneId| ids.canonical(o).unwrap_or(o);
        Ok(self.state.campaigns.ledger.cancel_owned(key, owner)?)
    }

    /// A cart's prices have at most the currency's minor-unit digits (carts validate 2 on
    /// their own: only a currency with fewer needs a look).
    fn check_cart_minor_units(&self, cart: &Cart) -> Result<(), Error> {
        let minor = self.config.currency_minor_units();
        if minor < crate::money::MAX_MINOR_UNITS {
            cart.check_minor_units(minor).map_err(|e| e.at("cart"))?;
        }
        Ok(())
    }

    /// Execute one campaigns command.
    pub(crate) fn execute_campaigns(&mut self, c: CampaignsCommand) -> Result<Output, Error> {
        let tz = self.config.business_tz();
        let out = match c {
            CampaignsCommand::AddPromotion { promotion } => self.add_promotion(promotion)?,
            q @ (CampaignsCommand::Quote { .. }
            | CampaignsCommand::PromotionUsage { .. }
            | CampaignsCommand::CouponCounts { .. }
            | CampaignsCommand::ChannelEffectiveness { .. }) => return self.query_campaigns(q),
            CampaignsCommand::Commit { quote, key, time } => {
                CampaignsOutput::Commit(self.commit_quote(&key, &quote, time)?)
            }
            CampaignsCommand::Cancel { key, time } => {
                CampaignsOutput::Commit(self.cancel_commit(&key, time)?)
            }
            CampaignsCommand::AddCouponTemplate { template } => {
                self.state
                    .campaigns
                    .coupons
                    .add_template(template)
                    .map_err(|e| e.at("template"))?;
                CampaignsOutput::Ok { ok: true }
            }
            CampaignsCommand::IssueCoupons {
                template,
                users,
                audience,
                time,
            } => self.issue_coupons(template, users, audience, time)?,
            CampaignsCommand::ClaimCoupon {
                template,
                user,
                time,
            } => {
                let u = self.known_user(&user, "user")?;
                CampaignsOutput::Coupon {
                    coupon_id: self.state.campaigns.coupons.claim(&template, u, time)?,
                    state: Some(coupons::CouponState::Claimed),
                }
            }
            CampaignsCommand::UseCoupon {
                coupon_id,
                user,
                cart,
            } => self.use_coupon(coupon_id, user, cart)?,
            CampaignsCommand::ReturnCoupon { coupon_id, time } => {
                let state = self.state.campaigns.coupons.give_back(&coupon_id, time)?;
                CampaignsOutput::Coupon {
                    coupon_id,
                    state: Some(state),
                }
            }
            CampaignsCommand::ExpireCoupons { now } => {
                CampaignsOutput::Ids(self.state.campaigns.coupons.expire(now))
            }
            CampaignsCommand::AddRule { rule } => {
                let rule = self.resolve_rule(rule)?;
                let c = &mut self.state.campaigns;
                c.automation
                    .add_rule(rule, &c.coupons)
                    .map_err(|e| e.at("rule"))?;
                CampaignsOutput::Ok { ok: true }
            }
            CampaignsCommand::RunAutomation { now } => self.run_automation_now(now, tz)?,
            CampaignsCommand::RecordOutcomes { rows } => CampaignsOutput::Recorded {
                recorded: self
                    .state
                    .campaigns
                    .monitor
                    .record(&rows)
                    .map_err(|e| e.at("rows"))?,
            },
        };
        Ok(Output::Campaigns(out))
    }

    /// Add a promotion; a points reward must name a known program.
    fn add_promotion(&mut self, promotion: Promotion) -> Result<CampaignsOutput, Error> {
        let named = match &promotion.action {
            Action::ThresholdGift { reward, .. } | Action::ThresholdRebate { reward, .. } => {
                match reward {
                    Reward::Points {
                        program: Some(p), ..
                    } => Some(p.clone()),
                    _ => None,
                }
            }
            _ => None,
        };
        if let Some(p) = named {
            self.points_program(Some(&p), "promotion.action.reward.program")?;
        }
        self.state
            .campaigns
            .add_promotion(promotion)
            .map_err(|e| e.at("promotion"))?;
        Ok(CampaignsOutput::Ok { ok: true })
    }

    /// Issue coupons to the named users and an audience's members, each person once.
    fn issue_coupons(
        &mut self,
        template: String,
        users: Vec<UserRef>,
        audience: Option<String>,
        time: DateTime<Utc>,
    ) -> Result<CampaignsOutput, Error> {
        let mut ids = Vec::with_capacity(users.len());
        for (i, u) in users.iter().enumerate() {
            ids.push(self.known_user(u, &format!("users[{i}]"))?);
        }
        if let Some(a) = &audience {
            let ctx = EngineContext { engine: self };
            ids.extend(ctx.audience_members(a).ok_or_else(|| Error::NotFound {
                what: "audience",
                id: a.clone(),
            })?);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(CampaignsOutput::Ids(self.state.campaigns.coupons.issue(
            &template,
            &ids,
            time,
            coupons::CouponState::Issued,
        )?))
    }

    /// Use a coupon on a cart, for its holder (or the person it was merged into).
    fn use_coupon(
        &mut self,
        coupon_id: String,
        user: UserRef,
        cart: Cart,
    ) -> Result<CampaignsOutput, Error> {
        let u = self.known_user(&user, "user")?;
        if !self.replaying {
            self.check_cart_minor_units(&cart)?;
        }
        // A coupon belongs to the person its holder's OneID names now: after a
        // merge the survivor uses the absorbed person's coupons.
        let holder = self
            .state
            .campaigns
            .coupons
            .coupon(&coupon_id)
            .map(|c| c.user)
            .filter(|h| self.state.identity.canonical(*h) == Some(u))
            .unwrap_or(u);
        Ok(CampaignsOutput::CouponUse(
            self.state
                .campaigns
                .coupons
                .use_on(&coupon_id, holder, &cart)
                .map_err(|e| e.at("cart"))?,
        ))
    }

    /// Run the automation rules due at `now` and apply the plan they make.
    fn run_automation_now(
        &mut self,
        now: DateTime<Utc>,
        tz: chrono::FixedOffset,
    ) -> Result<CampaignsOutput, Error> {
        let c = &mut self.state.campaigns;
        let mut automation = std::mem::take(&mut c.automation);
        let mut coupons = std::mem::take(&mut c.coupons);
        let mut monitor = std::mem::take(&mut c.monitor);
        let plan = automation.run(
            now,
            tz,
            &EngineContext { engine: self },
            &mut coupons,
            &mut monitor,
        );
        let c = &mut self.state.campaigns;
        c.automation = automation;
        c.coupons = coupons;
        c.monitor = monitor;
        Ok(CampaignsOutput::Plan(self.apply_plan(plan, now)))
    }

    /// The campaigns commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_campaigns(&self, c: CampaignsCommand) -> Result<Output, Error> {
        let tz = self.config.business_tz();
        let out =
            match c {
                CampaignsCommand::Quote { cart, user, mode } => {
                    let oneid = match &user {
                        Some(u) => self
                            .lookup(u)
                            .map_err(|e| Error::invalid_argument("user", e.to_string()))?,
                        None => None,
                    };
                    self.check_cart_minor_units(&cart)?;
                    let ctx = self.customer_context(oneid);
                    CampaignsOutput::Quote(
                        self.state
                            .campaigns
                            .quote(&cart, &ctx, mode, tz)
                            .map_err(|e| e.at("cart"))?,
                    )
                }
                CampaignsCommand::PromotionUsage { id } => {
                    let c = &self.state.campaigns;
                    let p = c.promotions.iter().find(|p| *p.id == *id).ok_or_else(|| {
                        Error::NotFound {
                            what: "promotion",
                            id: id.clone(),
                        }
                    })?;
                    let u = c.ledger.usage(&id).cloned().unwrap_or_default();
                    let budget_left = match &p.budget {
                        Some(Budget::Money { amount }) => {
                            Some(two_places(*amount - u.money).to_string())
                        }
                        Some(Budget::Count { count }) => {
                            Some((i128::from(*count) - i128::from(u.orders)).to_string())
                        }
                        None => None,
                    };
                    CampaignsOutput::Usage(UsageReport {
                        id,
                        money: two_places(u.money),
                        orders: u.orders,
                        budget_left,
                    })
                }
                CampaignsCommand::CouponCounts { template } => CampaignsOutput::Counts(
                    self.state.campaigns.coupons.counts(template.as_deref())?,
                ),
                CampaignsCommand::ChannelEffectiveness { by } => {
                    CampaignsOutput::Report(self.state.campaigns.monitor.effectiveness(by))
                }
                other => return Err(Error::not_a_query(&other)),
            };
        Ok(Output::Campaigns(out))
    }
}

/// A commit verifies what it commits: the quote must carry the checksum `quote` wrote, and its
/// fields must still match it. Otherwise [`Error::InvalidArgument`] at `quote.checksum`.
fn check_quote(quote: &QuoteRef) -> Result<(), Error> {
    let expected = quote.expected_checksum();
    match &quote.checksum {
        None => Err(Error::invalid_argument(
            "quote.checksum",
            "missing: commit the quote as `quote` returned it",
        )),
        Some(c) if *c != expected => Err(Error::invalid_argument(
            "quote.checksum",
            "the quote was changed after `quote` returned it (its fields no longer match its \
             checksum): quote the cart again and commit that quote unchanged",
        )),
        Some(_) => Ok(()),
    }
}
