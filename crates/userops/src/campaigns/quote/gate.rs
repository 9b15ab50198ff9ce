//! Step 1: every promotion gated on the cart-level conditions, limits, budget and its eligible
//! lines; a promotion that fails gets a [`Reason`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::cart::{select, LineSet, Prepared};
use super::{to_cents, CustomerContext, Reason};
use crate::campaigns::ledger::Ledger;
use crate::campaigns::promotion::{Action, Budget, Promotion};

/// A promotion that passed the gates.
pub(super) struct Candidate {
    /// Index into the promotion list.
    pub(super) promo: usize,
    pub(super) lines: LineSet,
    /// For 满换, the add-on's line ([`NO_LINE`]: none).
    pub(super) add_on: usize,
    /// Money budget left, in cents (`None`: no money budget).
    pub(super) left: Option<i64>,
}

/// No cart line.
pub(super) const NO_LINE: usize = usize::MAX;

impl Candidate {
    /// The lines it reads and may discount: its lines, and for 满换 the add-on's line (which
    /// is discounted even when the conditions leave it out).
    pub(super) fn reach(&self) -> LineSet {
        let mut r = self.lines;
        if self.add_on != NO_LINE {
            r.insert(self.add_on);
        }
        r
    }
}

fn listed(set: &BTreeSet<String>, v: &str) -> bool {
    set.is_empty() || set.contains(v)
}

/// The customer's tier in the condition's program (or in any program) is listed.
fn tier_matches(k: &crate::campaigns::promotion::Conditions, customer: &CustomerContext) -> bool {
    match &k.tier_program {
        Some(p) => customer
            .program_tiers
            .get(p)
            .is_some_and(|t| k.tiers.contains(t)),
        None => {
            customer.tier.as_ref().is_some_and(|t| k.tiers.contains(t))
                || customer.program_tiers.values().any(|t| k.tiers.contains(t))
        }
    }
}

/// What the gate reads of a promotion, packed into one small row (48 bytes), so that the pass
/// over every promotion of the book reads one row each instead of walking the full
/// `Promotion` (several cache lines apart). Conditions that need more (cart-level lists, exclusions,
/// limits and budgets) are flagged, and only then is the promotion itself read.
#[derive(Debug, Clone, Copy)]
pub(super) struct GateRow {
    /// Start of the window as (seconds, nanoseconds) since the epoch (`i64::MIN`: none).
    start: (i64, u32),
    /// End of the window, exclusive (`i64::MAX`: none).
    end: (i64, u32),
    /// Daily hours `[from, to)` (when [`GateRow::HOURS`] is set).
    hours: [u32; 2],
    /// Bit `d` set for weekday `d` (1 = Monday); 0 = any day.
    weekdays: u8,
    pub(super) flags: u16,
}

impl GateRow {
    const HOURS: u16 = 1;

    /// Regions, channels, stores, audiences, tiers or first order: read the promotion.
    const CART_LEVEL: u16 = 1 << 1;

    /// Include lists (skus or categories): the eligible lines are the matched ones.
    const INCLUDES: u16 = 1 << 2;

    const EXCLUDES: u16 = 1 << 3;

    /// Limits or a budget: read the ledger.
    const LEDGER: u16 = 1 << 4;

    /// A 满换 action (its add-on's line is looked up).
    pub(super) const EXCHANGE: u16 = 1 << 5;

    pub(super) fn of(p: &Promotion) -> GateRow {
        let k = &p.conditions;
        let at = |t: &DateTime<Utc>| (t.timestamp(), t.timestamp_subsec_nanos());
        let flag = |on: bool, f: u16| if on { f } else { 0 };
        GateRow {
            start: k.start.as_ref().map_or((i64::MIN, 0), at),
            end: k.end.as_ref().map_or((i64::MAX, u32::MAX), at),
            hours: k.hours.unwrap_or_default(),
            // Also warms the per-promotion precomputation outside the hot path.
            weekdays: p.compiled().weekdays,
            flags: flag(k.hours.is_some(), Self::HOURS)
                | flag(
                    !k.regions.is_empty()
                        || !k.channels.is_empty()
                        || !k.stores.is_empty()
                        || !k.audiences.is_empty()
                        || !k.tiers.is_empty()
                        || k.first_order.is_some(),
                    Self::CART_LEVEL,
                )
                | flag(
                    !k.skus.is_empty() || !k.categories.is_empty(),
                    Self::INCLUDES,
                )
                | flag(
                    !k.exclude_skus.is_empty() || !k.exclude_categories.is_empty(),
                    Self::EXCLUDES,
                )
                | flag(
                    p.limits.total.is_some() || p.limits.per_user.is_some() || p.budget.is_some(),
                    Self::LEDGER,
                )
                | flag(
                    matches!(p.action, Action::ThresholdExchange { .. }),
                    Self::EXCHANGE,
                ),
        }
    }
}

/// Cart-level conditions, eligible lines, then limits and budget (the ledger is read only for
/// promotions that get that far): the promotion's eligible lines and money budget left, or
/// `None` with the reason written to `reason`. `row` is [`GateRow::of`] `p`; `p` is read only
/// where a flag says so.
#[inline(always)]
pub(super) fn gate(
    p: &Promotion,
    row: &GateRow,
    matched: &LineSet,
    c: &Prepared<'_>,
    customer: &CustomerContext,
    ledger: &Ledger,
    reason: &mut Option<Reason>,
) -> Option<(LineSet, Option<i64>)> {
    match gate_or_reason(p, row, matched, c, customer, ledger) {
        Ok(v) => Some(v),
        Err(r) => {
            *reason = Some(r);
            None
        }
    }
}

#[inline(always)]
fn gate_or_reason(
    p: &Promotion,
    row: &GateRow,
    matched: &LineSet,
    c: &Prepared<'_>,
    customer: &CustomerContext,
    ledger: &Ledger,
) -> Result<(LineSet, Option<i64>), Reason> {
    if c.time < row.start {
        return Err(Reason::NotStarted);
    }
    if c.time >= row.end {
        return Err(Reason::Ended);
    }
    if row.flags & GateRow::HOURS != 0 {
        let [from, to] = row.hours;
        let h = c.hour;
        let inside = if from < to {
            from <= h && h < to
        } else {
            h >= from || h < to
        };
        if !inside {
            return Err(Reason::OutsideHours);
        }
    }
    if row.weekdays != 0 && row.weekdays & (1 << c.weekday) == 0 {
        return Err(Reason::Weekday);
    }
    if row.flags & GateRow::CART_LEVEL != 0 {
        cart_level(p, c, customer)?;
    }
    let mut lines = if row.flags & GateRow::INCLUDES != 0 {
        *matched
    } else {
        c.all
    };
    if row.flags & GateRow::EXCLUDES != 0 {
        let (k, h) = (&p.conditions, p.compiled());
        if !k.exclude_skus.is_empty() {
            lines.minus(&select(&c.by_sku, &k.exclude_skus, &h.exclude_skus));
        }
        if !k.exclude_categories.is_empty() {
            lines.minus(&select(
                &c.by_category,
                &k.exclude_categories,
                &h.exclude_categories,
            ));
        }
    }
    if lines.is_empty() {
        return Err(Reason::NoEligibleLines);
    }
    if row.flags & GateRow::LEDGER == 0 {
        return Ok((lines, None));
    }
    limits(p, lines, customer, ledger)
}

/// The cart-level lists (region, channel, store) and the customer conditions.
fn cart_level(p: &Promotion, c: &Prepared<'_>, customer: &CustomerContext) -> Result<(), Reason> {
    let k = &p.conditions;
    if !listed(&k.regions, &c.cart.region) {
        return Err(Reason::Region);
    }
    if !listed(&k.channels, &c.cart.channel) {
        return Err(Reason::Channel);
    }
    if !listed(&k.stores, &c.cart.store) {
        return Err(Reason::Store);
    }
    if !k.audiences.is_empty() && k.audiences.is_disjoint(&customer.audiences) {
        return Err(Reason::Audience);
    }
    if !k.tiers.is_empty() && !tier_matches(k, customer) {
        return Err(Reason::Tier);
    }
    match k.first_order {
        Some(true) if !customer.first_order => Err(Reason::FirstOrderOnly),
        Some(false) if customer.first_order => Err(Reason::RepeatOrderOnly),
        _ => Ok(()),
    }
}

/// Limits and budget, for a promotion with eligible `lines`.
fn limits(
    p: &Promotion,
    lines: LineSet,
    customer: &CustomerContext,
    ledger: &Ledger,
) -> Result<(LineSet, Option<i64>), Reason> {
    let h = p.compiled();
    let usage = ledger.usage(&p.id);
    if let Some(total) = p.limits.total {
        if usage.is_some_and(|u| u.orders >= total) {
            return Err(Reason::TotalLimit(total));
        }
    }
    if let Some(per_user) = p.limits.per_user {
        let Some(user) = customer.oneid else {
            return Err(Reason::NoCustomer);
        };
        if usage.is_some_and(|u| u.by_user.get(&user).is_some_and(|n| *n >= per_user)) {
            return Err(Reason::UserLimit(per_user));
        }
    }
    let mut left = None;
    match &p.budget {
        Some(Budget::Money { .. }) => {
            let used = usage.map_or(0, |u| to_cents(u.money));
            let l = h.budget_money.unwrap_or(0).saturating_sub(used);
            if l <= 0 {
                return Err(Reason::Budget);
            }
            left = Some(l);
        }
        Some(Budget::Count { count }) => {
            let used = usage.map_or(0, |u| u.orders);
            if u64::try_from(*count).unwrap_or(0) <= used {
                return Err(Reason::Budget);
            }
        }
        None => {}
    }
    Ok((lines, left))
}
