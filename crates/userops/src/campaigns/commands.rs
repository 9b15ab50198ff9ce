//! The campaigns commands that touch no other module once their users are resolved: the
//! engine's door (engine/campaigns.rs) resolves user references and calls these.

use chrono::{DateTime, Utc};

use super::reads::Reads;
use super::{
    coupons, two_places, Action, Budget, Campaigns, CampaignsCommand, CampaignsOutput, Cart,
    CouponTemplate, OutcomeRow, Promotion, Reward, UsageReport,
};
use crate::error::Error;
use crate::identity::IdentityGraph;
use crate::ids::OneId;

impl Campaigns {
    /// `add_promotion`: a points reward must name a known program.
    pub(crate) fn add_promotion_checked(
        &mut self,
        promotion: Promotion,
        r: &Reads<'_>,
    ) -> Result<CampaignsOutput, Error> {
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
            r.points_program(Some(&p), "promotion.action.reward.program")?;
        }
        self.add_promotion(promotion)
            .map_err(|e| e.at("promotion"))?;
        Ok(CampaignsOutput::Ok { ok: true })
    }

    /// `add_coupon_template`.
    pub(crate) fn add_template(&mut self, t: CouponTemplate) -> Result<CampaignsOutput, Error> {
        self.coupons.add_template(t).map_err(|e| e.at("template"))?;
        Ok(CampaignsOutput::Ok { ok: true })
    }

    /// `issue_coupons` to the persons `users` (each once).
    pub(crate) fn issue_coupons(
        &mut self,
        template: &str,
        mut users: Vec<OneId>,
        time: DateTime<Utc>,
    ) -> Result<CampaignsOutput, Error> {
        users.sort_unstable();
        users.dedup();
        Ok(CampaignsOutput::Ids(self.coupons.issue(
            template,
            &users,
            time,
            coupons::CouponState::Issued,
        )?))
    }

    /// `claim_coupon` for the person `user`.
    pub(crate) fn claim_coupon(
        &mut self,
        template: &str,
        user: OneId,
        time: DateTime<Utc>,
    ) -> Result<CampaignsOutput, Error> {
        Ok(CampaignsOutput::Coupon {
            coupon_id: self.coupons.claim(template, user, time)?,
            state: Some(coupons::CouponState::Claimed),
        })
    }

    /// `use_coupon` on a cart, for its holder or the person it was merged into (`identity`
    /// says which person a OneID names now).
    pub(crate) fn use_coupon(
        &mut self,
        coupon_id: &str,
        user: OneId,
        cart: &Cart,
        identity: &IdentityGraph,
    ) -> Result<CampaignsOutput, Error> {
        // A coupon belongs to the person its holder's OneID names now: after a
        // merge the survivor uses the absorbed person's coupons.
        let holder = self
            .coupons
            .coupon(coupon_id)
            .map(|c| c.user)
            .filter(|h| identity.canonical(*h) == Some(user))
            .unwrap_or(user);
        Ok(CampaignsOutput::CouponUse(
            self.coupons
                .use_on(coupon_id, holder, cart)
                .map_err(|e| e.at("cart"))?,
        ))
    }

    /// `return_coupon`.
    pub(crate) fn return_coupon(
        &mut self,
        coupon_id: String,
        time: DateTime<Utc>,
    ) -> Result<CampaignsOutput, Error> {
        let state = self.coupons.give_back(&coupon_id, time)?;
        Ok(CampaignsOutput::Coupon {
            coupon_id,
            state: Some(state),
        })
    }

    /// `expire_coupons`.
    pub(crate) fn expire_coupons(&mut self, now: DateTime<Utc>) -> CampaignsOutput {
        CampaignsOutput::Ids(self.coupons.expire(now))
    }

    /// `record_outcomes`.
    pub(crate) fn record_outcomes(
        &mut self,
        rows: &[OutcomeRow],
    ) -> Result<CampaignsOutput, Error> {
        Ok(CampaignsOutput::Recorded {
            recorded: self.monitor.record(rows).map_err(|e| e.at("rows"))?,
        })
    }

    /// The campaigns reads that need no other module: `promotion_usage`, `coupon_counts`,
    /// `channel_effectiveness`.
    pub(crate) fn query(&self, c: CampaignsCommand) -> Result<CampaignsOutput, Error> {
        Ok(match c {
            CampaignsCommand::PromotionUsage { id } => {
                let p = self
                    .promotions
                    .iter()
                    .find(|p| *p.id == *id)
                    .ok_or_else(|| Error::NotFound {
                        what: "promotion",
                        id: id.clone(),
                    })?;
                let u = self.ledger.usage(&id).cloned().unwrap_or_default();
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
            CampaignsCommand::CouponCounts { template } => {
                CampaignsOutput::Counts(self.coupons.counts(template.as_deref())?)
            }
            CampaignsCommand::ChannelEffectiveness { by } => {
                CampaignsOutput::Report(self.monitor.effectiveness(by))
            }
            other => return Err(Error::not_a_query(&other)),
        })
    }

    /// Start a chunked automation run at `now` (see [`super::automation::Automation::start`]).
    pub(crate) fn start_automation(
        &self,
        now: DateTime<Utc>,
        r: &Reads<'_>,
        chunk_users: usize,
    ) -> super::AutomationRun {
        self.automation.start(now, r.tz, r, chunk_users)
    }

    /// The firings of the next chunk of a run, changing nothing (`None` when the run is done;
    /// see [`super::automation::Automation::plan_chunk`]).
    pub(crate) fn plan_automation_chunk(
        &self,
        run: &mut super::AutomationRun,
        r: &Reads<'_>,
    ) -> Option<Vec<super::Firing>> {
        self.automation.plan_chunk(run, r)
    }

    /// Apply planned firings (see [`super::automation::Automation::fire_planned`]): coupons
    /// are issued and touches recorded here; points and tags are the caller's.
    pub(crate) fn apply_automation_plan(
        &mut self,
        now: DateTime<Utc>,
        firings: Vec<super::Firing>,
        r: &Reads<'_>,
    ) -> Vec<super::PlanRow> {
        self.automation
            .fire_planned(now, r.tz, firings, r, &mut self.coupons, &mut self.monitor)
    }

    /// The next chunk of a run's plan (`None` when the run is done): coupons are issued and
    /// touches recorded here; points and tags are the caller's (see `effects.rs`).
    #[cfg(test)]
    pub(crate) fn next_automation_chunk(
        &mut self,
        run: &mut super::AutomationRun,
        r: &Reads<'_>,
    ) -> Option<Vec<super::PlanRow>> {
        self.automation
            .next_chunk(run, r, &mut self.coupons, &mut self.monitor)
    }
}
