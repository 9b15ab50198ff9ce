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
mod commands;
pub(crate) mod commit;
pub mod coupons;
pub(crate) mod effects;
#[cfg(test)]
mod engine_tests;
pub mod ledger;
pub mod monitoring;
mod person;
pub mod promotion;
pub mod quote;
pub(crate) mod reads;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod wired_tests;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use automation::{
    AutomationContext, AutomationRun, Firing, PlanRow, Rule, RuleAction, Trigger,
};
pub use coupons::{CouponBenefit, CouponCounts, CouponTemplate, CouponUse};
pub use ledger::{CommitReceipt, Ledger, QuoteRef};
pub use ledger::{Granted, RewardRef};
pub use monitoring::{EffectivenessRow, GroupBy, OutcomeRow};
pub use promotion::{Action, Budget, Conditions, Limits, Promotion, Reward, Stacking};
pub use quote::{evaluate, Cart, CustomerContext, Quote, SelectMode};

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
    pub(crate) fn at(self, arg: &str) -> Self {
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
    /// Output: the delivery plan (list of [`PlanRow`]). On a shared engine (a store, the
    /// bindings) it is planned off the write lock and committed in chunks
    /// ([`crate::shared::SharedEngine::run_automation`]): rows come chunk by chunk.
    RunAutomation {
        /// The run's clock, RFC 3339 with a zone (`Z` or `±hh:mm`), kept in UTC: quiet hours, triggers and frequency caps are
        /// judged at this instant.
        #[serde(with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Apply firings planned on an earlier state (one chunk of a `run_automation` on a shared
    /// engine, see [`crate::shared::SharedEngine::run_automation`]): each is checked again on
    /// the state it is applied to (already fired, consent, frequency caps, coupon stock, the
    /// rule as it is now), then its points posted and tags written as `run_automation` does.
    /// What the journal keeps of a run planned off the write lock. Output: the delivery plan
    /// of these firings (list of [`PlanRow`]).
    ApplyAutomationPlan {
        /// The run's clock, RFC 3339 with a zone (`Z` or `±hh:mm`), kept in UTC.
        #[serde(with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
        /// The firings, in the order they are applied.
        firings: Vec<Firing>,
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
