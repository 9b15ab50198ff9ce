//! Points earned on ingested orders.
//!
//! A program with [`EarnRules`] earns points automatically when an `order` event arrives for a
//! member from the program or a program below it in the org tree. The earn is keyed by the
//! program and the order id (`order:<program>:<order_id>`), so an order ingested again under
//! another event key earns nothing more. With a return window the points stay pending until
//! `post_due(now)` posts them once the window has closed; a `refund` event gives back the
//! refunded share of the points (see [`Ledger::refund_amount`](super::Ledger::refund_amount)),
//! releasing pending points or reversing posted ones.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ledger::{Earn, Points};
use super::LoyaltyError;
use crate::engine::Engine;
use crate::event::{Event, EventBody, OrderLine};
use crate::ids::OneId;

/// How a program earns points on orders (the `earn` field of a program definition).
///
/// Points of an order = `floor(amount × points_per_unit × tier multiplier)`, where with
/// category multipliers the amount is weighted by line: each line's share of the amount paid
/// (its `price × qty` over the lines' total) counts `categories[line.category]` times (1 for
/// other categories). Rounding is down, once per order: fractions never create points.
///
/// ```
/// use userops::loyalty::EarnRules;
/// let r: EarnRules = serde_json::from_str(r#"{"points_per_unit": "1",
///     "categories": {"shoes": "2"}, "return_days": 7}"#).unwrap();
/// assert_eq!(r.points("99.90".parse().unwrap(), &[], userops::Decimal::ONE), Some(99));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarnRules {
    /// Points per currency unit paid (≥ 0).
    pub points_per_unit: Decimal,
    /// Multipliers by line category (≥ 0; other categories count once).
    #[serde(default)]
    pub categories: BTreeMap<String, Decimal>,
    /// Days the points stay pending (the return window); 0 posts them at once.
    #[serde(default)]
    pub return_days: u32,
    /// Multiply by the best points multiplier among the member's tier benefits.
    #[serde(default)]
    pub apply_multiplier: bool,
    /// Earn only on orders from these platforms (empty: every platform).
    #[serde(default)]
    pub platforms: Vec<String>,
}

impl EarnRules {
    pub(super) fn validate(&self) -> Result<(), LoyaltyError> {
        let bad = |field: String, reason: &str| LoyaltyError::InvalidProgram {
            field,
            reason: reason.into(),
        };
        if self.points_per_unit < Decimal::ZERO {
            return Err(bad("earn.points_per_unit".into(), "must not be negative"));
        }
        for (c, m) in &self.categories {
            if *m < Decimal::ZERO {
                return Err(bad(format!("earn.categories.{c}"), "must not be negative"));
            }
        }
        if self.return_days > 3660 {
            return Err(bad(
                "earn.return_days".into(),
                "a return window is at most ten years",
            ));
        }
        Ok(())
    }

    /// The points of an order of `amount` with `lines`, at a tier `multiplier`; `None` when
    /// they round to nothing or do not fit.
    pub fn points(
        &self,
        amount: Decimal,
        lines: &[OrderLine],
        multiplier: Decimal,
    ) -> Option<Points> {
        let weighted = if self.categories.is_empty() {
            amount
        } else {
            let (mut total, mut weighted) = (Decimal::ZERO, Decimal::ZERO);
            for l in lines {
                let v = l.price.checked_mul(Decimal::from(l.qty))?;
                let m = self
                    .categories
                    .get(&l.category)
                    .copied()
                    .unwrap_or(Decimal::ONE);
                total = total.checked_add(v)?;
                weighted = weighted.checked_add(v.checked_mul(m)?)?;
            }
            if total > Decimal::ZERO {
                amount.checked_mul(weighted)?.checked_div(total)?
            } else {
                amount
            }
        };
        let raw = weighted
            .checked_mul(self.points_per_unit)?
            .checked_mul(multiplier)?;
        raw.floor().to_i64().filter(|&p| p > 0)
    }

    fn applies_to(&self, platform: &str) -> bool {
        self.platforms.is_empty() || self.platforms.iter().any(|p| p == platform)
    }
}

/// What `post_due` returns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueReport {
    /// Keys of the pending order earns posted.
    pub posted: Vec<String>,
    /// Points posted.
    pub points: i128,
    /// Keys that were due but no longer pending (voided by a refund, or already resolved).
    pub skipped: Vec<String>,
}

impl Engine {
    /// Earn on an `order` event, give back on a `refund` event. Never fails: an earn the ledger
    /// would refuse (an overflowing balance, an order id already earned on with other content)
    /// or a refund with nothing to give back is left out.
    pub(crate) fn loyalty_on_event(&mut self, event: &Event, oneid: Option<OneId>) {
        let Some(user) = oneid else { return };
        match &event.body {
            EventBody::Order {
                order_id,
                amount,
                lines,
                ..
            } => self.earn_on_order(event, user, order_id, *amount, lines),
            EventBody::Refund {
                order_id, amount, ..
            } if *amount > Decimal::ZERO => {
                let key = format!("refund:{}", event.key);
                let time = event.time;
                let lo = &mut self.state.loyalty;
                if lo
                    .ledger
                    .refund_amount(order_id, &key, time, *amount)
                    .is_ok()
                {
                    lo.tick(time);
                }
            }
            _ => {}
        }
    }

    fn earn_on_order(
        &mut self,
        event: &Event,
        user: OneId,
        order_id: &str,
        amount: Decimal,
        lines: &[OrderLine],
    ) {
        let tz = self.config.business_tz();
        let time = event.time;
        let lo = &mut self.state.loyalty;
        // The source program and every program above it in the org tree.
        let mut path = Vec::new();
        let mut at = lo.by_id.get(&event.source.program).copied();
        while let Some(i) = at {
            if path.contains(&i) {
                break;
            }
            path.push(i);
            at = lo.programs[i as usize]
                .spec
                .parent
                .as_ref()
                .and_then(|p| lo.by_id.get(p).copied());
        }
        for i in path {
            let p = &lo.programs[i as usize];
            let Some(rules) = p
                .spec
                .earn
                .as_ref()
                .filter(|r| r.applies_to(&event.source.platform))
            else {
                continue;
            };
            let multiplier = if rules.apply_multiplier {
                let tier = p.members.get(&user).and_then(|m| m.tier);
                p.spec
                    .multiplier(super::commands::tier_name(p, tier).as_deref())
            } else {
                Decimal::ONE
            };
            let Some(points) = rules.points(amount, lines, multiplier) else {
                continue;
            };
            let pending = rules.return_days > 0;
            let due = time + Duration::days(i64::from(rules.return_days));
            let key = format!("order:{}:{order_id}", p.spec.id);
            let req = Earn {
                user,
                book: p.book,
                points,
                key: &key,
                reason: "order",
                actor: &event.source.platform,
                time,
                expires: p.spec.expiry.expires(time, tz),
                pending,
                order: Some(order_id),
            };
            let money = (amount > Decimal::ZERO).then_some(amount);
            // A replay (the same order again) or a refused earn writes nothing.
            if !matches!(lo.ledger.check_earn_on_order(&req, money), Ok(None)) {
                continue;
            }
            if lo.ledger.earn_on_order(&req, money).is_ok() && pending {
                lo.due.insert((due, key));
            }
        }
        lo.tick(time);
    }

    /// Post every pending order earn whose return window closed at or before `now`; those
    /// voided by a refund meanwhile are skipped.
    pub(crate) fn loyalty_post_due(&mut self, now: DateTime<Utc>) -> DueReport {
        let lo = &mut self.state.loyalty;
        let mut report = DueReport::default();
        let due: Vec<(DateTime<Utc>, String)> = lo
            .due
            .iter()
            .take_while(|(t, _)| *t <= now)
            .cloned()
            .collect();
        for d in &due {
            lo.due.remove(d);
        }
        for (_, key) in due {
            match lo.ledger.resolve(&key, true, now) {
                Ok(p) if !p.duplicate => {
                    report.points += i128::from(p.points);
                    report.posted.push(key);
                }
                _ => report.skipped.push(key),
            }
        }
        lo.tick(now);
        report
    }
}
