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
pub mod promotion;
pub mod quote;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use automation::{AutomationContext, PlanRow, Rule, RuleAction, Trigger};
pub use coupons::{CouponBenefit, CouponCounts, CouponTemplate, CouponUse};
pub use ledger::{CommitReceipt, Ledger, QuoteRef};
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
        /// Why.
        reason: String,
    },
    /// A number out of range.
    #[error("{field}: {reason}")]
    OutOfRange {
        /// Path of the field.
        field: String,
        /// Why.
        reason: String,
    },
    /// Something referenced does not exist.
    #[error("{what} not found: {id}")]
    NotFound {
        /// What.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A commit key reused for another quote.
    #[error("commit key {0:?} was already used for another quote")]
    DuplicateKey(String),
    /// A budget cannot cover the use.
    #[error("budget of {promotion:?} exhausted: {reason}")]
    BudgetExhausted {
        /// The promotion.
        promotion: String,
        /// Details.
        reason: String,
    },
    /// A usage limit or stock is reached.
    #[error("limit of {promotion:?} reached: {reason}")]
    LimitReached {
        /// The promotion (or coupon template).
        promotion: String,
        /// Details.
        reason: String,
    },
    /// A coupon cannot be used, claimed or returned in its state.
    #[error("coupon {coupon:?} cannot be used: {reason}")]
    CouponUnusable {
        /// The coupon.
        coupon: String,
        /// Why.
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
    /// Minimal consent store: user → channel → purposes granted.
    // ---- wire: privacy consent (branch `store`) replaces this store behind `consents` ----
    consent: BTreeMap<OneId, BTreeMap<String, BTreeSet<String>>>,
}

impl Campaigns {
    /// Promotions in evaluation order.
    pub fn promotions(&self) -> &[Promotion] {
        &self.promotions
    }

    /// Budgets and limits consumed.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Add a promotion, or replace the one with its id.
    pub fn add_promotion(&mut self, p: Promotion) -> Result<(), CampaignError> {
        p.validate()?;
        self.promotions.retain(|q| q.id != p.id);
        let at = self
            .promotions
            .partition_point(|q| (q.stacking.priority, &*q.id) < (p.stacking.priority, &*p.id));
        self.promotions.insert(at, p);
        Ok(())
    }

    /// Evaluate a cart.
    pub fn quote(
        &self,
        cart: &Cart,
        customer: &CustomerContext,
        mode: SelectMode,
        tz: chrono::FixedOffset,
    ) -> Result<Quote, CampaignError> {
        evaluate(&self.promotions, &self.ledger, cart, customer, mode, tz)
    }

    /// Commit a quote under an idempotency key.
    pub fn commit(&mut self, key: &str, quote: &QuoteRef) -> Result<CommitReceipt, CampaignError> {
        let promos = &self.promotions;
        self.ledger
            .commit(key, quote, |id| promos.iter().find(|p| &*p.id == id))
    }

    /// Cancel a commit.
    pub fn cancel(&mut self, key: &str) -> Result<CommitReceipt, CampaignError> {
        self.ledger.cancel(key)
    }

    fn consents(&self, user: OneId, channel: &str, purpose: &str) -> bool {
        self.consent
            .get(&user)
            .and_then(|c| c.get(channel))
            .is_some_and(|p| p.contains(purpose))
    }

    /// React to an ingested event (called once its checks passed; never fails).
    pub(crate) fn on_event(&mut self, event: &Event, oneid: Option<OneId>, absorbed: &[OneId]) {
        if let Some(into) = oneid {
            for &from in absorbed {
                self.merge_user(from, into);
            }
        }
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
                        skus: lines.iter().map(|l| l.sku.clone()).collect(),
                        categories: lines.iter().map(|l| l.category.clone()).collect(),
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

    fn merge_user(&mut self, from: OneId, into: OneId) {
        if let Some(f) = self.automation.facts.remove(&from) {
            let g = self.automation.facts.entry(into).or_default();
            for p in f.purchases {
                if !g.purchases.iter().any(|q| q.order_id == p.order_id) {
                    g.purchases.push(p);
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
        self.monitor.merge_user(from, into);
        // Consent is per person: a merged person keeps only what both records granted,
        // so a merge never widens consent.
        if let Some(c) = self.consent.remove(&from) {
            let mine = self.consent.remove(&into).unwrap_or_default();
            let both: BTreeMap<String, BTreeSet<String>> = mine
                .into_iter()
                .filter_map(|(ch, ps)| {
                    let keep: BTreeSet<String> = c
                        .get(&ch)
                        .map_or_else(BTreeSet::new, |q| ps.intersection(q).cloned().collect());
                    (!keep.is_empty()).then_some((ch, keep))
                })
                .collect();
            if !both.is_empty() {
                self.consent.insert(into, both);
            }
        }
    }
}

/// The engine's answers to automation's questions.
struct EngineContext<'a> {
    campaigns: &'a Campaigns,
}

impl AutomationContext for EngineContext<'_> {
    fn audience_members(&self, _audience: &str) -> Option<Vec<OneId>> {
        // ---- wire: audiences (branch `tags`): members of a saved audience ----
        None
    }

    fn in_audience(&self, _user: OneId, _audience: &str) -> bool {
        // ---- wire: audiences (branch `tags`): membership test ----
        false
    }

    fn birthday(&self, _user: OneId) -> Option<(u32, u32)> {
        // ---- wire: profile birthday (branch `tags` / profiles) ----
        None
    }

    fn consents(&self, user: OneId, channel: &str, purpose: &str) -> bool {
        // ---- wire: privacy consent (branch `store`) ----
        self.campaigns.consents(user, channel, purpose)
    }
}

/// The campaigns command set: method names are the Python method names.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CampaignsCommand {
    /// Add or replace a promotion. Output: `{"ok": true}`.
    AddPromotion {
        /// The promotion.
        promotion: Promotion,
    },
    /// Evaluate a cart. Output: [`Quote`].
    Quote {
        /// The cart.
        cart: Cart,
        /// The customer, if known.
        #[serde(default)]
        user: Option<UserRef>,
        /// Stacking choice (default best for the customer).
        #[serde(default)]
        mode: SelectMode,
    },
    /// Consume budgets and limits for a quote. Output: [`CommitReceipt`].
    Commit {
        /// The quote (as returned by `quote`).
        quote: QuoteRef,
        /// Idempotency key (typically the order id).
        key: String,
    },
    /// Give back a commit's budgets and limits. Output: [`CommitReceipt`].
    Cancel {
        /// The commit's key.
        key: String,
    },
    /// A promotion's usage. Output: `{"id", "money", "orders", "budget_left"}`.
    PromotionUsage {
        /// The promotion.
        id: String,
    },
    /// Add a coupon template. Output: `{"ok": true}`.
    AddCouponTemplate {
        /// The template.
        template: CouponTemplate,
    },
    /// Issue coupons to users. Output: the coupon ids.
    IssueCoupons {
        /// Template id.
        template: String,
        /// The users.
        #[serde(default)]
        users: Vec<UserRef>,
        /// Or an audience.
        #[serde(default)]
        audience: Option<String>,
        /// When.
        #[serde(with = "crate::event::rfc3339")]
        time: DateTime<Utc>,
    },
    /// Claim a coupon. Output: `{"coupon_id"}`.
    ClaimCoupon {
        /// Template id.
        template: String,
        /// The user.
        user: UserRef,
        /// When.
        #[serde(with = "crate::event::rfc3339")]
        time: DateTime<Utc>,
    },
    /// Use a coupon on a cart. Output: [`CouponUse`].
    UseCoupon {
        /// Coupon id.
        coupon_id: String,
        /// The user.
        user: UserRef,
        /// The cart (its `time` is the time of use).
        cart: Cart,
    },
    /// Return a used coupon after a refund. Output: `{"coupon_id", "state"}`.
    ReturnCoupon {
        /// Coupon id.
        coupon_id: String,
        /// When.
        #[serde(with = "crate::event::rfc3339")]
        time: DateTime<Utc>,
    },
    /// Expire coupons past their window. Output: the expired ids.
    ExpireCoupons {
        /// Now.
        #[serde(with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Counts per state per template. Output: list of [`CouponCounts`].
    CouponCounts {
        /// One template only.
        #[serde(default)]
        template: Option<String>,
    },
    /// Add or replace an automation rule. Output: `{"ok": true}`.
    AddRule {
        /// The rule.
        rule: Rule,
    },
    /// Run automation. Output: the delivery plan (list of [`PlanRow`]).
    RunAutomation {
        /// Now.
        #[serde(with = "crate::event::rfc3339")]
        now: DateTime<Utc>,
    },
    /// Record touch outcomes. Output: `{"recorded": n}`.
    RecordOutcomes {
        /// The rows.
        rows: Vec<OutcomeRow>,
    },
    /// Channel effectiveness. Output: list of [`EffectivenessRow`].
    ChannelEffectiveness {
        /// Grouping.
        #[serde(default)]
        by: GroupBy,
    },
    /// Grant or withdraw consent for touches on a channel for a purpose. Output: `{"ok": true}`.
    SetTouchConsent {
        /// The user.
        user: UserRef,
        /// Channel.
        channel: String,
        /// Purpose.
        #[serde(default = "marketing")]
        purpose: String,
        /// Granted or withdrawn.
        granted: bool,
    },
}

fn two_places(mut d: Decimal) -> Decimal {
    d.rescale(2);
    d
}

fn marketing() -> String {
    "marketing".into()
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
    /// The promotion.
    pub id: String,
    /// Money consumed.
    #[serde(with = "rust_decimal::serde::str")]
    pub money: Decimal,
    /// Orders.
    pub orders: u64,
    /// Money left (money budgets) or uses left (count budgets); `None` = unbounded.
    pub budget_left: Option<String>,
}

/// What campaigns commands return.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum CampaignsOutput {
    /// A quote.
    Quote(Quote),
    /// A commit or cancel.
    Commit(CommitReceipt),
    /// Usage.
    Usage(UsageReport),
    /// Acknowledgement.
    Ok {
        /// Always true.
        ok: bool,
    },
    /// Coupon ids.
    Ids(Vec<String>),
    /// A coupon and its state.
    Coupon {
        /// Id.
        coupon_id: String,
        /// State, when relevant.
        #[serde(skip_serializing_if = "Option::is_none")]
        state: Option<coupons::CouponState>,
    },
    /// A coupon use.
    CouponUse(CouponUse),
    /// Counts.
    Counts(Vec<CouponCounts>),
    /// A delivery plan.
    Plan(Vec<PlanRow>),
    /// Outcomes recorded.
    Recorded {
        /// Rows.
        recorded: usize,
    },
    /// Effectiveness.
    Report(Vec<EffectivenessRow>),
}

impl From<CampaignsCommand> for crate::command::Command {
    fn from(c: CampaignsCommand) -> Self {
        crate::command::Command::Campaigns(c)
    }
}

impl Engine {
    fn known_user(&self, user: &UserRef, field: &str) -> Result<OneId, Error> {
        self.lookup(user)
            .map_err(|e| Error::invalid_argument(field, e.to_string()))?
            .ok_or_else(|| Error::NotFound {
                what: "user",
                id: format!("{user:?}"),
            })
    }

    /// What the promotion engine knows about a customer.
    pub fn customer_context(&self, user: Option<OneId>) -> CustomerContext {
        let c = &self.state.campaigns;
        CustomerContext {
            oneid: user,
            // ---- wire: loyalty tier (branch `loyalty`) ----
            tier: None,
            // ---- wire: audiences the customer belongs to (branch `tags`) ----
            audiences: BTreeSet::new(),
            first_order: user.is_none_or(|u| {
                c.automation
                    .facts
                    .get(&u)
                    .is_none_or(|f| f.purchases.is_empty())
            }),
        }
    }

    /// Execute one campaigns command.
    pub(crate) fn execute_campaigns(&mut self, c: CampaignsCommand) -> Result<Output, Error> {
        let tz = self.config.business_tz();
        let out =
            match c {
                CampaignsCommand::AddPromotion { promotion } => {
                    self.state
                        .campaigns
                        .add_promotion(promotion)
                        .map_err(|e| e.at("promotion"))?;
                    CampaignsOutput::Ok { ok: true }
                }
                CampaignsCommand::Quote { cart, user, mode } => {
                    let oneid = match &user {
                        Some(u) => self
                            .lookup(u)
                            .map_err(|e| Error::invalid_argument("user", e.to_string()))?,
                        None => None,
                    };
                    let ctx = self.customer_context(oneid);
                    CampaignsOutput::Quote(
                        self.state
                            .campaigns
                            .quote(&cart, &ctx, mode, tz)
                            .map_err(|e| e.at("cart"))?,
                    )
                }
                CampaignsCommand::Commit { quote, key } => {
                    CampaignsOutput::Commit(self.state.campaigns.commit(&key, &quote)?)
                }
                CampaignsCommand::Cancel { key } => {
                    CampaignsOutput::Commit(self.state.campaigns.cancel(&key)?)
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
                } => {
                    let mut ids = Vec::with_capacity(users.len());
                    for (i, u) in users.iter().enumerate() {
                        ids.push(self.known_user(u, &format!("users[{i}]"))?);
                    }
                    if let Some(a) = &audience {
                        let ctx = EngineContext {
                            campaigns: &self.state.campaigns,
                        };
                        ids.extend(ctx.audience_members(a).ok_or_else(|| Error::NotFound {
                            what: "audience",
                            id: a.clone(),
                        })?);
                    }
                    ids.sort_unstable();
                    ids.dedup();
                    CampaignsOutput::Ids(self.state.campaigns.coupons.issue(
                        &template,
                        &ids,
                        time,
                        coupons::CouponState::Issued,
                    )?)
                }
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
                } => {
                    let u = self.known_user(&user, "user")?;
                    CampaignsOutput::CouponUse(
                        self.state
                            .campaigns
                            .coupons
                            .use_on(&coupon_id, u, &cart)
                            .map_err(|e| e.at("cart"))?,
                    )
                }
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
                CampaignsCommand::CouponCounts { template } => CampaignsOutput::Counts(
                    self.state.campaigns.coupons.counts(template.as_deref())?,
                ),
                CampaignsCommand::AddRule { rule } => {
                    let c = &mut self.state.campaigns;
                    c.automation
                        .add_rule(rule, &c.coupons)
                        .map_err(|e| e.at("rule"))?;
                    CampaignsOutput::Ok { ok: true }
                }
                CampaignsCommand::RunAutomation { now } => {
                    let mut c = std::mem::take(&mut self.state.campaigns);
                    let plan = {
                        let mut automation = std::mem::take(&mut c.automation);
                        let mut coupons = std::mem::take(&mut c.coupons);
                        let mut monitor = std::mem::take(&mut c.monitor);
                        let plan = automation.run(
                            now,
                            tz,
                            &EngineContext { campaigns: &c },
                            &mut coupons,
                            &mut monitor,
                        );
                        c.automation = automation;
                        c.coupons = coupons;
                        c.monitor = monitor;
                        plan
                    };
                    self.state.campaigns = c;
                    CampaignsOutput::Plan(plan)
                }
                CampaignsCommand::RecordOutcomes { rows } => CampaignsOutput::Recorded {
                    recorded: self
                        .state
                        .campaigns
                        .monitor
                        .record(&rows)
                        .map_err(|e| e.at("rows"))?,
                },
                CampaignsCommand::ChannelEffectiveness { by } => {
                    CampaignsOutput::Report(self.state.campaigns.monitor.effectiveness(by))
                }
                CampaignsCommand::SetTouchConsent {
                    user,
                    channel,
                    purpose,
                    granted,
                } => {
                    let u = self.known_user(&user, "user")?;
                    if channel.trim().is_empty() || purpose.trim().is_empty() {
                        return Err(Error::invalid_argument(
                            "channel",
                            "channel and purpose must not be empty",
                        ));
                    }
                    let store = &mut self.state.campaigns.consent;
                    if granted {
                        store
                            .entry(u)
                            .or_default()
                            .entry(channel)
                            .or_default()
                            .insert(purpose);
                    } else if let Some(chs) = store.get_mut(&u) {
                        if let Some(ps) = chs.get_mut(&channel) {
                            ps.remove(&purpose);
                            if ps.is_empty() {
                                chs.remove(&channel);
                            }
                        }
                        if chs.is_empty() {
                            store.remove(&u);
                        }
                    }
                    CampaignsOutput::Ok { ok: true }
                }
            };
        Ok(Output::Campaigns(out))
    }
}
