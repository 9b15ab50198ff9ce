//! The campaigns module's door: its commands on the engine, and the flows they start across
//! modules — a quote commit (budgets and limits, coupons, then points in loyalty), a cancel
//! (points refunded, coupons withdrawn), an automation run (points posted, tags written and
//! their rules refreshed). Campaigns decides each as a plan (`campaigns/commit.rs`,
//! `campaigns/effects.rs`) from read-only views of the others; this file applies it.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{Engine, State};
use crate::campaigns::commit::{CommitPlan, PointsEarn};
use crate::campaigns::effects::{PlanEffects, AUTOMATION_TAG_DESCRIPTION};
use crate::campaigns::reads::Reads;
use crate::campaigns::{
    AutomationContext, Campaigns, CampaignsCommand, CampaignsOutput, Cart, CommitReceipt,
    CustomerContext, PlanRow, QuoteRef,
};
use crate::command::Output;
use crate::error::Error;
use crate::event::UserRef;
use crate::ids::OneId;
use crate::loyalty::LoyaltyCommand;
use crate::tags::{TagsCommand, Value, ValueType};

impl State {
    /// The campaigns state, with read-only views of the modules it consults.
    fn campaigns_with_reads(&mut self, tz: chrono::FixedOffset) -> (&mut Campaigns, Reads<'_>) {
        let State {
            campaigns,
            identity,
            privacy,
            users,
            tags,
            profiles,
            loyalty,
            ..
        } = self;
        let reads = Reads {
            identity,
            privacy,
            users,
            tags,
            profiles,
            loyalty,
            tz,
        };
        (campaigns, reads)
    }

    /// Read-only views of the modules campaigns consults.
    fn campaigns_reads(&self, tz: chrono::FixedOffset) -> Reads<'_> {
        Reads {
            identity: &self.identity,
            privacy: &self.privacy,
            users: &self.users,
            tags: &self.tags,
            profiles: &self.profiles,
            loyalty: &self.loyalty,
            tz,
        }
    }
}

impl Engine {
    /// `run_automation` in chunks of about `chunk_users` users, for runs whose plan is too
    /// big to hold: each chunk's rows are applied (points posted, tags written; coupons and
    /// touch records are made by the run) and then handed to `sink`, so memory holds one
    /// chunk of the plan. Re-running at the same `now` plans nothing again (every firing is
    /// de-duplicated). Returns the number of rows. Tests only: it changes state outside a
    /// journaled command; services run automation chunked through the shared engine
    /// (`apply_automation_plan` commands).
    #[cfg(test)]
    pub(crate) fn run_automation_chunked(
        &mut self,
        now: DateTime<Utc>,
        chunk_users: usize,
        mut sink: impl FnMut(Vec<PlanRow>),
    ) -> usize {
        let tz = self.config.business_tz();
        let mut run = {
            let State { campaigns, .. } = &self.state;
            campaigns.start_automation(now, &self.state.campaigns_reads(tz), chunk_users)
        };
        let (mut rows, mut written) = (0, Vec::new());
        loop {
            let (campaigns, reads) = self.state.campaigns_with_reads(tz);
            let Some(chunk) = campaigns.next_automation_chunk(&mut run, &reads) else {
                break;
            };
            let chunk = self.apply_rows(chunk, now, &mut written);
            rows += chunk.len();
            sink(chunk);
        }
        if !written.is_empty() {
            self.refresh_rules(&written, now);
        }
        rows
    }

    /// An automation run at `now` planned on this state without changing it: one
    /// `apply_automation_plan` command per chunk of about `chunk_users` users that has
    /// firings, each to be executed (journaled) in turn, possibly on a newer state. This is
    /// how [`crate::shared::SharedEngine::run_automation`] keeps the writer free while a run
    /// is planned.
    pub fn plan_automation(
        &self,
        now: DateTime<Utc>,
        chunk_users: usize,
    ) -> impl Iterator<Item = crate::Command> + '_ {
        let reads = self.state.campaigns_reads(self.config.business_tz());
        let mut run = self
            .state
            .campaigns
            .start_automation(now, &reads, chunk_users);
        std::iter::from_fn(move || loop {
            let firings = self
                .state
                .campaigns
                .plan_automation_chunk(&mut run, &reads)?;
            if !firings.is_empty() {
                return Some(crate::Command::Campaigns(
                    CampaignsCommand::ApplyAutomationPlan { now, firings },
                ));
            }
        })
    }

    /// What the promotion engine knows about a customer: tiers from the loyalty programs,
    /// the saved audiences (tags module) they belong to, and whether this is a first order.
    pub fn customer_context(&self, user: Option<OneId>) -> CustomerContext {
        let reads = self.state.campaigns_reads(self.config.business_tz());
        self.state.campaigns.customer_context(user, &reads)
    }

    fn known_user(&self, user: &UserRef, field: &str) -> Result<OneId, Error> {
        self.lookup(user)
            .map_err(|e| Error::invalid_argument(field, e.to_string()))?
            .ok_or_else(|| Error::NotFound {
                what: "user",
                id: format!("{user:?}"),
            })
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
            CampaignsCommand::AddPromotion { promotion } => {
                let (campaigns, reads) = self.state.campaigns_with_reads(tz);
                campaigns.add_promotion_checked(promotion, &reads)?
            }
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
                self.state.campaigns.add_template(template)?
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
                    let reads = self.state.campaigns_reads(tz);
                    ids.extend(reads.audience_members(a).ok_or_else(|| Error::NotFound {
                        what: "audience",
                        id: a.clone(),
                    })?);
                }
                self.state.campaigns.issue_coupons(&template, ids, time)?
            }
            CampaignsCommand::ClaimCoupon {
                template,
                user,
                time,
            } => {
                let u = self.known_user(&user, "user")?;
                self.state.campaigns.claim_coupon(&template, u, time)?
            }
            CampaignsCommand::UseCoupon {
                coupon_id,
                user,
                cart,
            } => {
                let u = self.known_user(&user, "user")?;
                if !self.replaying {
                    self.check_cart_minor_units(&cart)?;
                }
                let State {
                    campaigns,
                    identity,
                    ..
                } = &mut self.state;
                campaigns.use_coupon(&coupon_id, u, &cart, identity)?
            }
            CampaignsCommand::ReturnCoupon { coupon_id, time } => {
                self.state.campaigns.return_coupon(coupon_id, time)?
            }
            CampaignsCommand::ExpireCoupons { now } => self.state.campaigns.expire_coupons(now),
            CampaignsCommand::AddRule { rule } => {
                let (campaigns, reads) = self.state.campaigns_with_reads(tz);
                campaigns.add_rule_checked(rule, &reads)?;
                CampaignsOutput::Ok { ok: true }
            }
            CampaignsCommand::RunAutomation { now } => {
                let (campaigns, reads) = self.state.campaigns_with_reads(tz);
                let plan = campaigns.run_automation(now, tz, &reads);
                CampaignsOutput::Plan(self.apply_plan(plan, now))
            }
            CampaignsCommand::ApplyAutomationPlan { now, firings } => {
                let (campaigns, reads) = self.state.campaigns_with_reads(tz);
                let plan = campaigns.apply_automation_plan(now, firings, &reads);
                CampaignsOutput::Plan(self.apply_plan(plan, now))
            }
            CampaignsCommand::RecordOutcomes { rows } => {
                self.state.campaigns.record_outcomes(&rows)?
            }
        };
        Ok(Output::Campaigns(out))
    }

    /// The campaigns commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_campaigns(&self, c: CampaignsCommand) -> Result<Output, Error> {
        let tz = self.config.business_tz();
        let out = match c {
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
            other => self.state.campaigns.query(other)?,
        };
        Ok(Output::Campaigns(out))
    }

    /// Commit a quote: campaigns plans it (everything checked before anything changes; a
    /// replayed key grants nothing again), then budgets and limits, the coupons, the points.
    fn commit_quote(
        &mut self,
        key: &str,
        quote: &QuoteRef,
        time: Option<DateTime<Utc>>,
    ) -> Result<CommitReceipt, Error> {
        let tz = self.config.business_tz();
        let (campaigns, reads) = self.state.campaigns_with_reads(tz);
        let plan = campaigns.plan_commit(key, quote, time, self.replaying, &reads)?;
        // The same quote again is a replay; another is `DuplicateKey`. A new commit can still
        // be refused here (budgets, limits), before anything changed.
        let mut receipt = campaigns.commit(key, quote)?;
        let CommitPlan::New(Some(grant)) = plan else {
            return Ok(receipt);
        };
        // Checked by the plan: from here on nothing fails.
        let coupons = campaigns.issue_granted_coupons(&grant)?;
        for earn in &grant.earns {
            self.post_earn(earn, grant.time)
                .map_err(|e| Error::Internal(format!("earn checked before: {e}")))?;
        }
        self.state
            .campaigns
            .record_grant(key, &grant, coupons, &mut receipt);
        Ok(receipt)
    }

    /// Cancel a commit: reverse its points (loyalty refund of its order), withdraw its unused
    /// coupons, give back budgets and limits. A second cancel changes nothing.
    fn cancel_commit(
        &mut self,
        key: &str,
        time: Option<DateTime<Utc>>,
    ) -> Result<CommitReceipt, Error> {
        let plan = self.state.campaigns.plan_cancel(key, time)?;
        if let Some(r) = &plan.refund {
            // The refund checks everything before it changes anything.
            self.execute_loyalty(LoyaltyCommand::Refund {
                order_key: r.order_key.clone(),
                key: r.key.clone(),
                time: r.time,
            })?;
        }
        let State {
            campaigns,
            identity,
            ..
        } = &mut self.state;
        campaigns.finish_cancel(key, &plan, |o| identity.canonical(o).unwrap_or(o))
    }

    /// Post an earn campaigns asked for, at `time`.
    fn post_earn(&mut self, e: &PointsEarn, time: DateTime<Utc>) -> Result<Output, Error> {
        self.execute_loyalty(LoyaltyCommand::Earn {
            user: UserRef::OneId(e.user),
            program: e.program.clone(),
            points: e.points,
            key: e.key.clone(),
            reason: e.reason.clone(),
            expires: e.expires,
            pending: false,
            order: e.order.clone(),
            apply_multiplier: false,
            actor: e.actor.into(),
            time: Some(time),
        })
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
        let fx = PlanEffects::of(plan);
        let mut failed_earns = BTreeSet::new();
        for (row, earn) in &fx.earns {
            if self.post_earn(earn, now).is_err() {
                failed_earns.insert(*row);
            }
        }
        let mut failed_tags = BTreeSet::new();
        for (tag, users) in &fx.tags {
            if self.state.tags.def(tag).is_none() {
                let define = TagsCommand::DefineTag {
                    name: tag.clone(),
                    value_type: ValueType::Bool,
                    rule: None,
                    model: None,
                    description: AUTOMATION_TAG_DESCRIPTION.into(),
                    now,
                };
                if self.execute_tags(define).is_err() {
                    failed_tags.insert(tag.clone());
                    continue;
                }
            }
            for u in users {
                let d = self.state.users.dense_or_insert(*u);
                self.state
                    .tags
                    .write(tag, ValueType::Bool, d, &[Value::Bool(true)]);
            }
            if !written.contains(tag) {
                written.push(tag.clone());
            }
        }
        self.state
            .campaigns
            .finish_plan(fx, &failed_earns, &failed_tags)
    }
}
