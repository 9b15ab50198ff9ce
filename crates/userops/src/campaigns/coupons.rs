//! Coupons: templates, issue, claim, use (once, in window, on eligible lines), expire, return.
//!
//! States: `issued` (pushed to a user) → `claimed` (the user took it) → `used` → back to
//! `claimed` on a refund's return (or `expired` when its window has closed); `issued` and
//! `claimed` coupons become `expired` after their window. A coupon is used at most once at a
//! time: `use` from `used` is refused.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::promotion::{cents, dec_opt, time_opt, CouponKind};
use super::quote::{allocate, Cart, LineShare};
use super::CampaignError;
use crate::ids::OneId;

/// What a coupon gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum CouponBenefit {
    /// Money off the eligible lines.
    AmountOff {
        /// Amount (> 0).
        #[serde(with = "rust_decimal::serde::str")]
        off: Decimal,
    },
    /// Percent off the eligible lines.
    PercentOff {
        /// In (0, 100].
        #[serde(with = "rust_decimal::serde::str")]
        percent: Decimal,
        /// The most the discount can be (`None`: no cap).
        #[serde(default, with = "dec_opt")]
        max_off: Option<Decimal>,
    },
    /// One unit of `sku` free (a gift coupon).
    Item {
        /// The sku given free; the cart must hold it.
        sku: String,
    },
    /// A service (no money effect): installation, cleaning, ….
    Service {
        /// Service name.
        service: String,
    },
}

/// A coupon template. Wire: `{"id", "name", "kind", "benefit": {...}, "skus", "categories",
/// "min_amount", "valid_from", "valid_to", "valid_days", "stock"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponTemplate {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Consumption, gift or service.
    pub kind: CouponKind,
    /// What it gives.
    pub benefit: CouponBenefit,
    /// Eligible skus (empty = any).
    #[serde(default)]
    pub skus: BTreeSet<String>,
    /// Eligible categories (empty = any).
    #[serde(default)]
    pub categories: BTreeSet<String>,
    /// Minimum eligible amount.
    #[serde(default, with = "dec_opt")]
    pub min_amount: Option<Decimal>,
    /// Window start.
    #[serde(default, with = "time_opt")]
    pub valid_from: Option<DateTime<Utc>>,
    /// Window end (exclusive).
    #[serde(default, with = "time_opt")]
    pub valid_to: Option<DateTime<Utc>>,
    /// Valid this many days after issue (the earlier end wins).
    #[serde(default)]
    pub valid_days: Option<u32>,
    /// How many coupons may exist in total.
    #[serde(default)]
    pub stock: Option<u64>,
}

/// A coupon's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CouponState {
    /// Pushed to a user.
    Issued,
    /// Taken by the user.
    Claimed,
    /// Used on an order.
    Used,
    /// Past its window.
    Expired,
}

/// One coupon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    /// `template#n`.
    pub id: String,
    /// Template id.
    pub template: String,
    /// The person it was issued to; only they can use it.
    pub user: OneId,
    /// Where it is in its life: issued, claimed, used or expired.
    pub state: CouponState,
    /// Window start.
    #[serde(with = "crate::event::rfc3339")]
    pub valid_from: DateTime<Utc>,
    /// Window end (exclusive), if any.
    #[serde(with = "time_opt")]
    pub valid_to: Option<DateTime<Utc>>,
    /// Times returned after a use.
    pub returned: u32,
}

/// What `use_coupon` returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CouponUse {
    /// The coupon's instance id.
    pub coupon_id: String,
    /// The discount it gives on the cart.
    #[serde(with = "rust_decimal::serde::str")]
    pub discount: Decimal,
    /// Per line.
    pub lines: Vec<LineShare>,
    /// A service granted, if any.
    pub service: Option<String>,
}

/// Counts per state for one template.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CouponCounts {
    /// The template id.
    pub template: String,
    /// Issued, not claimed.
    pub issued: u64,
    /// Claimed, not used.
    pub claimed: u64,
    /// Used (and not returned).
    pub used: u64,
    /// Expired before use.
    pub expired: u64,
    /// Returns after refunds.
    pub returned: u64,
}

/// Every template and coupon.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CouponBook {
    templates: BTreeMap<String, CouponTemplate>,
    coupons: BTreeMap<String, Coupon>,
    created: BTreeMap<String, u64>,
}

fn unusable(id: &str, reason: impl Into<String>) -> CampaignError {
    CampaignError::CouponUnusable {
        coupon: id.to_owned(),
        reason: reason.into(),
    }
}

impl CouponTemplate {
    fn validate(&self) -> Result<(), CampaignError> {
        if self.id.trim().is_empty() || self.id.contains('#') {
            return Err(CampaignError::invalid(
                "id",
                "must be non-empty, without '#'",
            ));
        }
        match &self.benefit {
            CouponBenefit::AmountOff { off } => {
                if *off <= Decimal::ZERO {
                    return Err(CampaignError::invalid("benefit.off", "must be > 0"));
                }
                cents("benefit.off", *off)?;
            }
            CouponBenefit::PercentOff { percent, .. }
                if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED =>
            {
                return Err(CampaignError::invalid(
                    "benefit.percent",
                    "must be in (0, 100]",
                ));
            }
            CouponBenefit::Item { sku } if sku.trim().is_empty() => {
                return Err(CampaignError::invalid("benefit.sku", "must not be empty"))
            }
            CouponBenefit::PercentOff {
                max_off: Some(m), ..
            } => cents("benefit.max_off", *m)?,
            _ => {}
        }
        if let (Some(f), Some(t)) = (self.valid_from, self.valid_to) {
            if f >= t {
                return Err(CampaignError::invalid(
                    "valid_to",
                    "window ends before it starts",
                ));
            }
        }
        if self.valid_days == Some(0) {
            return Err(CampaignError::invalid("valid_days", "must be ≥ 1"));
        }
        if let Some(m) = self.min_amount {
            if m < Decimal::ZERO {
                return Err(CampaignError::invalid("min_amount", "must be ≥ 0"));
            }
            cents("min_amount", m)?;
        }
        Ok(())
    }
}

impl CouponBook {
    /// Add (or replace, while none was created from it) a template.
    ///
    /// # Errors
    ///
    /// [`CampaignError::Invalid`] naming the field, and nothing changes: a blank id or one with
    /// `#`, an amount off not above 0, a percent outside (0, 100], a blank item sku, a validity
    /// window that ends before it starts, `valid_days` of 0, a negative `min_amount`, an amount
    /// with more than 2 decimal places, or replacing a template that already has coupons.
    /// [`CampaignError::OutOfRange`] for an amount above
    /// [`MAX_AMOUNT`](crate::money::MAX_AMOUNT).
    pub fn add_template(&mut self, t: CouponTemplate) -> Result<(), CampaignError> {
        t.validate()?;
        if self.created.get(&t.id).is_some_and(|n| *n > 0) && self.templates.get(&t.id) != Some(&t)
        {
            return Err(CampaignError::invalid(
                "id",
                format!(
                    "template {:?} already has coupons; add a new template",
                    t.id
                ),
            ));
        }
        self.templates.insert(t.id.clone(), t);
        Ok(())
    }

    /// The template with this id, if any.
    pub fn template(&self, id: &str) -> Option<&CouponTemplate> {
        self.templates.get(id)
    }

    /// The coupon with this instance id, if any.
    pub fn coupon(&self, id: &str) -> Option<&Coupon> {
        self.coupons.get(id)
    }

    fn template_or_404(&self, id: &str) -> Result<&CouponTemplate, CampaignError> {
        self.templates
            .get(id)
            .ok_or_else(|| CampaignError::NotFound {
                what: "coupon template",
                id: id.to_owned(),
            })
    }

    /// Whether `n` coupons of `template` can be issued (it exists and has the stock).
    ///
    /// # Errors
    ///
    /// [`CampaignError::NotFound`] for an unknown template; [`CampaignError::LimitReached`] when
    /// its stock cannot cover `n` more.
    pub fn check_issue(&self, template: &str, n: u64) -> Result<(), CampaignError> {
        let t = self.template_or_404(template)?;
        let made = self.created.get(template).copied().unwrap_or(0);
        if t.stock.is_some_and(|s| made.saturating_add(n) > s) {
            return Err(CampaignError::LimitReached {
                promotion: template.to_owned(),
                reason: format!(
                    "stock: {} left, {n} requested",
                    t.stock.unwrap_or(0).saturating_sub(made)
                ),
            });
        }
        Ok(())
    }

    /// Withdraw coupons that were never used (a cancelled order's rebate): issued or claimed
    /// ones become expired. The ids withdrawn.
    pub(crate) fn revoke(&mut self, ids: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(c) = self.coupons.get_mut(id) {
                if matches!(c.state, CouponState::Issued | CouponState::Claimed) {
                    c.state = CouponState::Expired;
                    out.push(id.clone());
                }
            }
        }
        out
    }

    /// Create coupons of `template` for `users` at `now` in `state`. All or nothing.
    ///
    /// # Errors
    ///
    /// As [`CouponBook::check_issue`]; nothing is created then.
    pub fn issue(
        &mut self,
        template: &str,
        users: &[OneId],
        now: DateTime<Utc>,
        state: CouponState,
    ) -> Result<Vec<String>, CampaignError> {
        self.check_issue(template, users.len() as u64)?;
        let t = self.template_or_404(template)?;
        let made = self.created.get(template).copied().unwrap_or(0);
        let n = users.len() as u64;
        let from = t.valid_from.map_or(now, |f| f.max(now));
        let by_days = t.valid_days.map(|d| now + Duration::days(i64::from(d)));
        let to = match (t.valid_to, by_days) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut ids = Vec::with_capacity(users.len());
        for (k, &user) in users.iter().enumerate() {
            let id = format!("{template}#{}", made + k as u64 + 1);
            self.coupons.insert(
                id.clone(),
                Coupon {
                    id: id.clone(),
                    template: template.to_owned(),
                    user,
                    state,
                    valid_from: from,
                    valid_to: to,
                    returned: 0,
                },
            );
            ids.push(id);
        }
        self.created.insert(template.to_owned(), made + n);
        Ok(ids)
    }

    /// The user claims a coupon of `template`: an issued one they hold, else a new one from stock.
    ///
    /// # Errors
    ///
    /// As [`CouponBook::check_issue`] (an unknown template, or no stock for a new coupon).
    pub fn claim(
        &mut self,
        template: &str,
        user: OneId,
        now: DateTime<Utc>,
    ) -> Result<String, CampaignError> {
        self.template_or_404(template)?;
        let held = self
            .coupons
            .values()
            .find(|c| {
                c.template == template
                    && c.user == user
                    && c.state == CouponState::Issued
                    && c.valid_to.is_none_or(|t| now < t)
            })
            .map(|c| c.id.clone());
        match held {
            Some(id) => {
                if let Some(c) = self.coupons.get_mut(&id) {
                    c.state = CouponState::Claimed;
                }
                Ok(id)
            }
            None => {
                let mut ids = self.issue(template, &[user], now, CouponState::Claimed)?;
                ids.pop()
                    .ok_or_else(|| CampaignError::Internal("issue of one made none".into()))
            }
        }
    }

    /// Erasure: coupons held by any of `oneids` are held by `pseudonym` (stock and counts stay).
    pub(crate) fn pseudonymize(&mut self, oneids: &[OneId], pseudonym: OneId) {
        for c in self.coupons.values_mut() {
            if oneids.contains(&c.user) {
                c.user = pseudonym;
            }
        }
    }

    /// Every coupon's holder, for the invariant checks.
    pub(crate) fn holders(&self) -> impl Iterator<Item = (&str, OneId)> {
        self.coupons.values().map(|c| (c.id.as_str(), c.user))
    }

    /// Every coupon, by id.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Coupon> {
        self.coupons.values()
    }

    /// Use a coupon on a cart (its `time` is the time of use). Once; in window; eligible lines.
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. A cart that fails [`Cart::validate`];
    /// [`CampaignError::NotFound`] for an unknown coupon; [`CampaignError::CouponUnusable`] for a
    /// coupon of another user, one used or expired, outside its window, or a cart without an
    /// eligible line or below the coupon's minimum amount.
    pub fn use_on(
        &mut self,
        coupon_id: &str,
        user: OneId,
        cart: &Cart,
    ) -> Result<CouponUse, CampaignError> {
        cart.validate()?;
        let c = self
            .coupons
            .get(coupon_id)
            .ok_or_else(|| CampaignError::NotFound {
                what: "coupon",
                id: coupon_id.to_owned(),
            })?;
        let t = self.template_or_404(&c.template)?;
        if c.user != user {
            return Err(unusable(coupon_id, "belongs to another user"));
        }
        match c.state {
            CouponState::Issued | CouponState::Claimed => {}
            CouponState::Used => return Err(unusable(coupon_id, "already used")),
            CouponState::Expired => return Err(unusable(coupon_id, "expired")),
        }
        if cart.time < c.valid_from {
            return Err(unusable(coupon_id, "not valid yet"));
        }
        if c.valid_to.is_some_and(|to| cart.time >= to) {
            return Err(unusable(coupon_id, "its window has closed"));
        }
        let weights: Vec<i64> = cart
            .lines
            .iter()
            .map(|l| {
                (l.price * Decimal::from(l.qty) * Decimal::ONE_HUNDRED)
                    .to_i64()
                    .unwrap_or(i64::MAX)
            })
            .collect();
        let eligible: Vec<usize> = cart
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                (t.skus.is_empty() && t.categories.is_empty())
                    || t.skus.contains(&l.sku)
                    || t.categories.contains(&l.category)
            })
            .map(|(i, _)| i)
            .collect();
        let amount: i64 = eligible.iter().map(|&i| weights[i]).sum();
        let min = t.min_amount.map_or(0, |m| {
            (m * Decimal::ONE_HUNDRED).to_i64().unwrap_or(i64::MAX)
        });
        let needs_lines = !matches!(t.benefit, CouponBenefit::Service { .. });
        if needs_lines && eligible.is_empty() {
            return Err(unusable(coupon_id, "no eligible line in the cart"));
        }
        if amount < min {
            return Err(unusable(
                coupon_id,
                format!(
                    "eligible amount {} is below the minimum {}",
                    Decimal::new(amount, 2),
                    Decimal::new(min, 2)
                ),
            ));
        }
        let mut service = None;
        let shares = match &t.benefit {
            CouponBenefit::AmountOff { off } => {
                let d = (*off * Decimal::ONE_HUNDRED)
                    .to_i64()
                    .unwrap_or(i64::MAX)
                    .min(amount);
                allocate(d, &eligible, &weights)
            }
            CouponBenefit::PercentOff { percent, max_off } => {
                let mut d = (Decimal::from(amount) * *percent / Decimal::ONE_HUNDRED)
                    .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
                    .to_i64()
                    .unwrap_or(amount);
                if let Some(m) = max_off {
                    d = d.min((*m * Decimal::ONE_HUNDRED).to_i64().unwrap_or(i64::MAX));
                }
                allocate(d.min(amount), &eligible, &weights)
            }
            CouponBenefit::Item { sku } => {
                let i = eligible
                    .iter()
                    .copied()
                    .find(|&i| &cart.lines[i].sku == sku)
                    .ok_or_else(|| unusable(coupon_id, format!("{sku:?} is not in the cart")))?;
                let unit = (cart.lines[i].price * Decimal::ONE_HUNDRED)
                    .to_i64()
                    .unwrap_or(0);
                vec![(i, unit)]
            }
            CouponBenefit::Service { service: s } => {
                service = Some(s.clone());
                Vec::new()
            }
        };
        let discount: i64 = shares.iter().map(|(_, d)| d).sum();
        // Checks passed.
        if let Some(c) = self.coupons.get_mut(coupon_id) {
            c.state = CouponState::Used;
        }
        Ok(CouponUse {
            coupon_id: coupon_id.to_owned(),
            discount: Decimal::new(discount, 2),
            lines: shares
                .into_iter()
                .map(|(line, d)| LineShare {
                    line,
                    discount: Decimal::new(d, 2),
                })
                .collect(),
            service,
        })
    }

    /// Return a used coupon after a refund: usable again if its window is open, else expired.
    ///
    /// # Errors
    ///
    /// [`CampaignError::NotFound`] for an unknown coupon; [`CampaignError::CouponUnusable`] for a
    /// coupon that is not used.
    pub fn give_back(
        &mut self,
        coupon_id: &str,
        now: DateTime<Utc>,
    ) -> Result<CouponState, CampaignError> {
        let c = self
            .coupons
            .get_mut(coupon_id)
            .ok_or_else(|| CampaignError::NotFound {
                what: "coupon",
                id: coupon_id.to_owned(),
            })?;
        if c.state != CouponState::Used {
            return Err(unusable(coupon_id, "only a used coupon can be returned"));
        }
        c.returned += 1;
        c.state = if c.valid_to.is_some_and(|t| now >= t) {
            CouponState::Expired
        } else {
            CouponState::Claimed
        };
        Ok(c.state)
    }

    /// Expire every issued or claimed coupon whose window closed by `now`; the ids.
    pub fn expire(&mut self, now: DateTime<Utc>) -> Vec<String> {
        let mut out = Vec::new();
        for c in self.coupons.values_mut() {
            if matches!(c.state, CouponState::Issued | CouponState::Claimed)
                && c.valid_to.is_some_and(|t| now >= t)
            {
                c.state = CouponState::Expired;
                out.push(c.id.clone());
            }
        }
        out
    }

    /// Counts per state, per template (one template when given).
    ///
    /// # Errors
    ///
    /// [`CampaignError::NotFound`] for an unknown `template`.
    pub fn counts(&self, template: Option<&str>) -> Result<Vec<CouponCounts>, CampaignError> {
        if let Some(t) = template {
            self.template_or_404(t)?;
        }
        let mut by: BTreeMap<&str, CouponCounts> = BTreeMap::new();
        for id in self.templates.keys() {
            if template.is_none_or(|t| t == id) {
                by.insert(
                    id,
                    CouponCounts {
                        template: id.clone(),
                        ..CouponCounts::default()
                    },
                );
            }
        }
        for c in self.coupons.values() {
            if let Some(n) = by.get_mut(c.template.as_str()) {
                match c.state {
                    CouponState::Issued => n.issued += 1,
                    CouponState::Claimed => n.claimed += 1,
                    CouponState::Used => n.used += 1,
                    CouponState::Expired => n.expired += 1,
                }
                n.returned += u64::from(c.returned);
            }
        }
        Ok(by.into_values().collect())
    }
}
