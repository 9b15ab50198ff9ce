//! Committing and cancelling a quote. Campaigns decides everything before anything changes —
//! the checksum, the rewards the quote's promotions grant, that the customer is live, that the
//! coupon stock and the loyalty ledger can take them — and returns a plan; the engine applies
//! it (engine/campaigns.rs): budgets and limits, coupons, then points through loyalty.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::ledger::{self, CommitReceipt, Granted, QuoteRef};
use super::reads::Reads;
use super::{coupons, Action, Campaigns, Reward};
use crate::error::Error;
use crate::ids::OneId;

/// A points earn campaigns asks loyalty to post: a quote's rebate or an automation rule's
/// `grant_points`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PointsEarn {
    pub(crate) user: OneId,
    pub(crate) program: String,
    pub(crate) points: i64,
    /// The earn's idempotency key.
    pub(crate) key: String,
    pub(crate) reason: String,
    pub(crate) expires: Option<DateTime<Utc>>,
    /// The loyalty order it is posted under (a cancel refunds that order).
    pub(crate) order: Option<String>,
    pub(crate) actor: &'static str,
}

/// What committing a quote does, decided before anything changes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CommitPlan {
    /// The key was committed before: the ledger answers (the same quote gives its receipt
    /// again, another quote is `DuplicateKey`) and nothing is granted again.
    Again,
    /// A new commit: consume budgets and limits, then grant what the quote rewards (`None`:
    /// nothing, or no customer to grant it to).
    New(Option<QuoteGrant>),
}

/// What a new commit grants its customer, checked to succeed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct QuoteGrant {
    pub(crate) user: OneId,
    /// Coupons to issue: (template, count), in the quote's order.
    pub(crate) coupons: Vec<(String, u64)>,
    /// Points to post, in the quote's order, under the order `promotion:<key>`.
    pub(crate) earns: Vec<PointsEarn>,
    pub(crate) time: DateTime<Utc>,
}

/// What cancelling a commit does, decided before anything changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct CancelPlan {
    /// The loyalty refund that reverses the commit's points.
    pub(crate) refund: Option<PointsRefund>,
    /// The commit's coupons: the unused ones are withdrawn.
    pub(crate) coupons: Vec<String>,
}

/// A refund of a loyalty order, whole.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PointsRefund {
    pub(crate) order_key: String,
    pub(crate) key: String,
    pub(crate) time: Option<DateTime<Utc>>,
}

/// The coupons (template, count) and points earns (program, points, key) of a quote.
type QuoteRewards = (Vec<(String, u64)>, Vec<(String, i64, String)>);

impl Campaigns {
    /// Plan the commit of `quote` under `key`: everything is checked here, so that applying
    /// the plan does not fail (a replayed key plans nothing: [`CommitPlan::Again`]).
    pub(crate) fn plan_commit(
        &self,
        key: &str,
        quote: &QuoteRef,
        time: Option<DateTime<Utc>>,
        replaying: bool,
        r: &Reads<'_>,
    ) -> Result<CommitPlan, Error> {
        if self.ledger.commitment(key).is_some() {
            return Ok(CommitPlan::Again);
        }
        if !replaying {
            // A journal of an older build holds quotes without checksums (`Engine::replay`).
            check_quote(quote)?;
        }
        let time = time.or(quote.time);
        let (coupons, earns) = self.quote_rewards(key, quote, r)?;
        let user = quote
            .user
            .filter(|_| !coupons.is_empty() || !earns.is_empty());
        let Some(user) = user else {
            return Ok(CommitPlan::New(None));
        };
        let Some(time) = time else {
            return Err(Error::invalid_argument(
                "time",
                "rewards are granted at a time: give `time` (or a quote with its cart time)",
            ));
        };
        let order = format!("promotion:{key}");
        let earns = earns
            .into_iter()
            .map(|(program, points, ekey)| PointsEarn {
                user,
                expires: r
                    .loyalty
                    .program(&program)
                    .and_then(|p| p.spec.expiry.expires(time, r.tz)),
                program,
                points,
                key: ekey,
                reason: format!("promotion rebate ({key})"),
                order: Some(order.clone()),
                actor: "campaigns",
            })
            .collect();
        let grant = QuoteGrant {
            user,
            coupons,
            earns,
            time,
        };
        self.check_grant(&grant, r)?;
        Ok(CommitPlan::New(Some(grant)))
    }

    /// Issue a new commit's coupons (the first step of granting; the engine posts the points
    /// next, then [`Campaigns::record_grant`]).
    pub(crate) fn issue_granted_coupons(&mut self, g: &QuoteGrant) -> Result<Vec<String>, Error> {
        let mut ids = Vec::new();
        for (t, n) in &g.coupons {
            let users = vec![g.user; usize::try_from(*n).unwrap_or(0)];
            ids.extend(
                self.coupons
                    .issue(t, &users, g.time, coupons::CouponState::Issued)
                    .map_err(|e| Error::Internal(format!("coupon issue checked before: {e}")))?,
            );
        }
        Ok(ids)
    }

    /// Record what a commit granted (for its cancel) on the commit and its receipt.
    pub(crate) fn record_grant(
        &mut self,
        key: &str,
        g: &QuoteGrant,
        coupons: Vec<String>,
        receipt: &mut CommitReceipt,
    ) {
        let mut granted = Granted {
            time: Some(g.time),
            coupons,
            ..Granted::default()
        };
        for e in &g.earns {
            granted.points = granted.points.saturating_add(e.points);
            granted.points_order.clone_from(&e.order);
        }
        receipt.coupons = granted.coupons.clone();
        receipt.points = granted.points;
        self.ledger.set_granted(key, granted);
    }

    /// Plan the cancel of the commit `key` (its points refunded, its unused coupons
    /// withdrawn); a commit cancelled before plans nothing.
    pub(crate) fn plan_cancel(
        &self,
        key: &str,
        time: Option<DateTime<Utc>>,
    ) -> Result<CancelPlan, Error> {
        let c = self.ledger.commitment(key).ok_or_else(|| Error::NotFound {
            what: "commit",
            id: key.to_owned(),
        })?;
        if c.cancelled {
            return Ok(CancelPlan::default());
        }
        let g = &c.granted;
        Ok(CancelPlan {
            refund: g
                .points_order
                .as_ref()
                .filter(|_| g.points > 0)
                .map(|order| PointsRefund {
                    order_key: order.clone(),
                    key: format!("{order}:cancel"),
                    time: time.or(g.time),
                }),
            coupons: g.coupons.clone(),
        })
    }

    /// Finish a cancel once its points are refunded: withdraw the coupons, give back budgets
    /// and limits (`owner`: the person a OneID names now). A second cancel changes nothing.
    pub(crate) fn finish_cancel(
        &mut self,
        key: &str,
        plan: &CancelPlan,
        owner: impl Fn(OneId) -> OneId,
    ) -> Result<CommitReceipt, Error> {
        self.coupons.revoke(&plan.coupons);
        Ok(self.ledger.cancel_owned(key, owner)?)
    }

    /// The coupons (template, count) and points earns (program, points, key) the quote's
    /// applied rewards grant, each checked against what its promotion gives.
    fn quote_rewards(
        &self,
        key: &str,
        quote: &QuoteRef,
        r: &Reads<'_>,
    ) -> Result<QuoteRewards, Error> {
        let mut coupons: Vec<(String, u64)> = Vec::new();
        let mut earns: Vec<(String, i64, String)> = Vec::new();
        for (i, a) in quote.applied.iter().enumerate() {
            if a.rewards.is_empty() {
                continue;
            }
            let field = format!("quote.applied[{i}].rewards");
            let p = self
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
            for rw in &a.rewards {
                let n = match (rw, reward) {
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
                match rw {
                    ledger::RewardRef::Coupon { template, .. } => {
                        coupons.push((template.clone(), n));
                    }
                    ledger::RewardRef::Points { points, program } => {
                        let prog = r.points_program(program.as_deref(), &field)?;
                        earns.push((prog, *points, format!("promotion:{key}:{}", a.id)));
                    }
                    _ => {}
                }
            }
        }
        Ok((coupons, earns))
    }

    /// Check that the grant's customer is live and can be granted its coupons and earns.
    fn check_grant(&self, g: &QuoteGrant, r: &Reads<'_>) -> Result<(), Error> {
        let u = g.user;
        if !r.is_live(u) {
            return Err(Error::invalid_argument(
                "quote.user",
                format!("{u} is not a live person"),
            ));
        }
        let mut per_template: BTreeMap<&str, u64> = BTreeMap::new();
        for (t, n) in &g.coupons {
            *per_template.entry(t).or_default() += n;
        }
        for (t, n) in per_template {
            self.coupons.check_issue(t, n)?;
        }
        let lo = r.loyalty;
        for e in &g.earns {
            let p = lo.program(&e.program).ok_or_else(|| Error::NotFound {
                what: "loyalty program",
                id: e.program.clone(),
            })?;
            lo.ledger().check_earn(&crate::loyalty::ledger::Earn {
                entry: crate::loyalty::ledger::Entry {
                    user: u,
                    book: p.book,
                    points: e.points,
                    key: &e.key,
                    reason: &e.reason,
                    actor: e.actor,
                    time: g.time,
                },
                expires: e.expires,
                pending: false,
                order: e.order.as_deref(),
                money: None,
                lines: &[],
            })?;
        }
        Ok(())
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
