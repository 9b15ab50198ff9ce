//! Points earned on ingested orders.
//!
//! A program with [`EarnRules`] earns points automatically when an `order` event arrives for a
//! member from the program or a program below it in the org tree. The earn is keyed by the
//! program, the order's source program and the order id (`order:<program>:<order_id>` when
//! the order's own program earns, `order:["<program>","<source>","<order_id>"]` in a program
//! above it: order ids are unique per source program, so two programs below one parent may
//! both have an order "O1", and each earns there), so an order ingested again earns nothing
//! more. An order whose points would not fit a member's balance is refused at intake
//! ([`Error::OutOfRange`](crate::Error::OutOfRange) at `amount`), never earned in part or
//! left out. With a return window the points stay pending until `post_due(now)` posts them
//! once the window has closed; a `refund` event gives back the refunded share of the points —
//! what its named `lines` earned (see [`Ledger::refund_lines`](super::Ledger::refund_lines);
//! each earn records its points per line, [`EarnRules::line_points`]), or without lines the
//! `amount`'s share (see [`Ledger::refund_amount`](super::Ledger::refund_amount)) — releasing
//! pending points or reversing posted ones.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ledger::{Earn, EarnLine, Entry, Points};
use super::{Loyalty, LoyaltyError};
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
        self.earned(amount, lines, multiplier).filter(|&p| p > 0)
    }

    /// As [`EarnRules::points`], but 0 when they round to nothing: `None` only when they do
    /// not fit [`Points`].
    fn earned(&self, amount: Decimal, lines: &[OrderLine], multiplier: Decimal) -> Option<Points> {
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
        raw.floor().to_i64()
    }

    /// Share an order's `points` out over its `lines`, by the weight each line has in
    /// [`EarnRules::points`] (`price × qty`, times its category multiplier): line `i` gets
    /// `floor(points × W≤i / W) − floor(points × W<i / W)` for the cumulative weights, so the
    /// lines add up to exactly `points` and each gets its share rounded down or up by less
    /// than one point. Lines of no weight at all share by units. No lines: empty.
    ///
    /// ```
    /// use userops::loyalty::EarnRules;
    /// use userops::event::OrderLine;
    /// let r: EarnRules = serde_json::from_str(r#"{"points_per_unit": "1", "categories": {"shoes": "2"}}"#).unwrap();
    /// let line = |sku: &str, category: &str, price: &str, qty| OrderLine {
    ///     sku: sku.into(), category: category.into(), price: price.parse().unwrap(), qty };
    /// let lines = [line("a", "shoes", "100", 1), line("b", "socks", "50", 2)];
    /// let p = r.points("200".parse().unwrap(), &lines, userops::Decimal::ONE).unwrap();
    /// assert_eq!(p, 300);
    /// let shares: Vec<i64> = r.line_points(p, &lines).iter().map(|l| l.points).collect();
    /// assert_eq!(shares, [200, 100]);
    /// ```
    pub fn line_points(&self, points: Points, lines: &[OrderLine]) -> Vec<EarnLine> {
        let weight = |l: &OrderLine| -> Decimal {
            let v = l
                .price
                .checked_mul(Decimal::from(l.qty))
                .unwrap_or(Decimal::MAX);
            let m = self
                .categories
                .get(&l.category)
                .copied()
                .unwrap_or(Decimal::ONE);
            v.checked_mul(m).unwrap_or(Decimal::MAX)
        };
        let mut weights: Vec<Decimal> = lines.iter().map(weight).collect();
        let sum = |w: &[Decimal]| {
            w.iter()
                .try_fold(Decimal::ZERO, |a, &x| a.checked_add(x))
                .unwrap_or(Decimal::MAX)
        };
        let mut total = sum(&weights);
        if total <= Decimal::ZERO {
            weights = lines.iter().map(|l| Decimal::from(l.qty)).collect();
            total = sum(&weights);
        }
        let p = Decimal::from(points);
        let share = |cum: Decimal| -> Points {
            if cum >= total {
                return points;
            }
            p.checked_mul(cum)
                .and_then(|x| x.checked_div(total))
                .or_else(|| cum.checked_div(total).and_then(|r| p.checked_mul(r)))
                .and_then(|x| x.floor().to_i64())
                .unwrap_or(0)
                .clamp(0, points)
        };
        let (mut cum, mut given) = (Decimal::ZERO, 0);
        lines
            .iter()
            .zip(&weights)
            .enumerate()
            .map(|(i, (l, w))| {
                cum = cum.checked_add(*w).unwrap_or(Decimal::MAX);
                // The last line takes what is left, so the shares add up exactly.
                let upto = if i + 1 == lines.len() {
                    points
                } else {
                    share(cum).max(given)
                };
                let mine = upto - given;
                given = upto;
                EarnLine {
                    sku: l.sku.clone(),
                    qty: l.qty,
                    value: l
                        .price
                        .checked_mul(Decimal::from(l.qty))
                        .unwrap_or(Decimal::MAX),
                    points: mine,
                }
            })
            .collect()
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

impl Loyalty {
    /// The source program and every program above it in the org tree: where an order of
    /// `program` earns.
    fn source_path(&self, program: &str) -> Vec<u32> {
        let mut path = Vec::new();
        let mut at = self.by_id.get(program).copied();
        while let Some(i) = at {
            if path.contains(&i) {
                break;
            }
            path.push(i);
            at = self.programs[i as usize]
                .spec
                .parent
                .as_ref()
                .and_then(|p| self.by_id.get(p).copied());
        }
        path
    }

    /// The keys of the earns an order of `source` may have written ([`order_earn_key`] for
    /// its program and those above it): a refund event gives back those only, as order ids
    /// are unique per source program, not across programs. `legacy`: the order may predate
    /// the order book (see [`crate::orders`]), when earns in the programs above the source
    /// were keyed `order:<program>:<id>`, so those keys are tried too.
    fn order_earn_keys(
        &self,
        source: &crate::event::Source,
        order_id: &str,
        legacy: bool,
    ) -> Vec<String> {
        let mut keys = Vec::new();
        for i in self.source_path(&source.program) {
            let earner = &self.programs[i as usize].spec.id;
            keys.push(order_earn_key(earner, &source.program, order_id));
            if legacy && *earner != source.program {
                keys.push(order_earn_key(earner, earner, order_id));
            }
        }
        keys
    }
}

/// The ledger key of the earn that an order `order_id` of program `source` writes in program
/// `earner` (the source or a program above it): `order:<earner>:<order_id>` when the source
/// earns itself, `order:["<earner>","<source>","<order_id>"]` (JSON quoting keeps the parts
/// apart) for a program above it, where orders of several programs below it meet and an order
/// id alone is not unique.
pub(crate) fn order_earn_key(earner: &str, source: &str, order_id: &str) -> String {
    if earner == source {
        format!("order:{earner}:{order_id}")
    } else {
        format!("order:{}", serde_json::json!([earner, source, order_id]))
    }
}

impl Loyalty {
    /// Earn on an `order` event of `user`, give back on a `refund` event. Never fails: an
    /// earn the ledger would refuse (an overflowing balance, an order id already earned on
    /// with other content) or a refund with nothing to give back is left out. `legacy`: the
    /// refunded order may predate the order book (see `order_earn_keys`).
    pub(crate) fn on_order_event(
        &mut self,
        event: &Event,
        user: OneId,
        legacy: bool,
        tz: FixedOffset,
    ) {
        match &event.body {
            EventBody::Order {
                order_id,
                amount,
                lines,
                ..
            } => self.earn_on_order(event, user, order_id, *amount, lines, tz),
            EventBody::Refund {
                order_id,
                amount,
                lines,
                ..
            } => {
                let key = format!("refund:{}", event.key);
                let time = event.time;
                let earns = self.order_earn_keys(&event.source, order_id, legacy);
                let lo = &mut *self;
                // Named lines decide the points; otherwise (or when the order's earns recorded
                // no lines: earned before lines were kept) the amount's share does.
                let by_lines = match lines.is_empty() {
                    true => None,
                    false => Some(
                        lo.ledger
                            .refund_lines_of(order_id, &earns, &key, time, lines),
                    ),
                };
                let done = match by_lines {
                    Some(Ok(_)) => true,
                    Some(Err(LoyaltyError::NotPending { .. })) | None => {
                        *amount > Decimal::ZERO
                            && lo
                                .ledger
                                .refund_amount_of(order_id, &earns, &key, time, *amount)
                                .is_ok()
                    }
                    Some(Err(_)) => false,
                };
                if done {
                    lo.tick(time);
                }
            }
            _ => {}
        }
    }

    /// The check phase of `order` and `refund` events. An order whose points would not fit a
    /// member's balance ([`Points`]) in a program it earns in is refused
    /// ([`Error::OutOfRange`](crate::Error::OutOfRange) at `amount`): it is never earned in part or left out (a journal of an older build may
    /// hold such an order: replay leaves its earn out, as that build did). A refund naming
    /// lines the ledger can tell are wrong for an order it has earned on (no such line, more
    /// units or money than are left) is refused, naming `lines[i].…`. An order loyalty never
    /// earned on passes (the event may serve other modules). `user`: the event's person, when
    /// already known; `legacy` as for [`Loyalty::on_order_event`].
    pub(crate) fn check_order_event(
        &self,
        event: &Event,
        user: Option<OneId>,
        legacy: bool,
        cx: super::commands::Context,
    ) -> Result<(), crate::Error> {
        if let EventBody::Order {
            order_id,
            amount,
            lines,
            ..
        } = &event.body
        {
            if !cx.replaying {
                self.check_order(event, user, order_id, *amount, lines, cx.tz)?;
            }
        }
        if let EventBody::Refund {
            order_id, lines, ..
        } = &event.body
        {
            if lines.is_empty() {
                return Ok(());
            }
            let key = format!("refund:{}", event.key);
            let earns = self.order_earn_keys(&event.source, order_id, legacy);
            let ledger = &self.ledger;
            if let Err(LoyaltyError::InvalidRefund { field, reason }) =
                ledger.check_refund_lines_of(order_id, &earns, &key, lines)
            {
                return Err(crate::Error::invalid_event(field, reason));
            }
        }
        Ok(())
    }

    /// The earns an order makes for `user` (`None`: a person not known yet): per program of
    /// its source's path whose rules apply, the program's index and the points (`None`: they do
    /// not fit [`Points`]; 0: they round to nothing).
    fn order_points(
        &self,
        event: &Event,
        user: Option<OneId>,
        amount: Decimal,
        lines: &[OrderLine],
    ) -> Vec<(u32, Option<Points>)> {
        let lo = self;
        let mut out = Vec::new();
        for i in lo.source_path(&event.source.program) {
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
                let tier = user.and_then(|u| p.members.get(&u)).and_then(|m| m.tier);
                p.spec
                    .multiplier(super::commands::tier_name(p, tier).as_deref())
            } else {
                Decimal::ONE
            };
            out.push((i, rules.earned(amount, lines, multiplier)));
        }
        out
    }

    /// The ledger request of an order's earn of `points` (split over `shares`) in program `i`,
    /// keyed `key`.
    fn order_earn<'a>(
        &self,
        i: u32,
        event: &'a Event,
        user: OneId,
        (order_id, amount): (&'a str, Decimal),
        (points, shares, key): (Points, &'a [EarnLine], &'a str),
        tz: FixedOffset,
    ) -> Earn<'a> {
        let p = &self.programs[i as usize];
        let pending = p.spec.earn.as_ref().is_some_and(|r| r.return_days > 0);
        Earn {
            pending,
            order: Some(order_id),
            money: (amount > Decimal::ZERO).then_some(amount),
            lines: shares,
            ..Earn::new(
                Entry {
                    user,
                    book: p.book,
                    points,
                    key,
                    reason: "order",
                    actor: &event.source.platform,
                    time: event.time,
                },
                p.spec.expiry.expires(event.time, tz),
            )
        }
    }

    /// Refuse an order whose points would not fit a member's balance in a program it earns in
    /// (see [`Loyalty::check_order_event`]).
    fn check_order(
        &self,
        event: &Event,
        user: Option<OneId>,
        order_id: &str,
        amount: Decimal,
        lines: &[OrderLine],
        tz: FixedOffset,
    ) -> Result<(), crate::Error> {
        let lo = self;
        for (i, points) in self.order_points(event, user, amount, lines) {
            let p = &lo.programs[i as usize];
            let too_many = |what: String| crate::Error::OutOfRange {
                field: "amount".into(),
                reason: format!(
                    "{what} in program {:?}, above the most a member's balance holds ({}): the \
                     program's earn rate is too high for this amount",
                    p.spec.id,
                    Points::MAX
                ),
            };
            let Some(points) = points else {
                return Err(too_many("the order would earn more points".into()));
            };
            let (Some(user), Some(rules)) = (user, p.spec.earn.as_ref()) else {
                continue;
            };
            if points == 0 {
                continue;
            }
            let key = order_earn_key(&p.spec.id, &event.source.program, order_id);
            let shares = rules.line_points(points, lines);
            let req = self.order_earn(
                i,
                event,
                user,
                (order_id, amount),
                (points, &shares, &key),
                tz,
            );
            if let Err(LoyaltyError::InvalidAmount {
                field: "points", ..
            }) = lo.ledger.check_earn(&req)
            {
                return Err(too_many(format!(
                    "the order's {points} points would take the member's balance"
                )));
            }
        }
        Ok(())
    }

    fn earn_on_order(
        &mut self,
        event: &Event,
        user: OneId,
        order_id: &str,
        amount: Decimal,
        lines: &[OrderLine],
        tz: FixedOffset,
    ) {
        for (i, points) in self.order_points(event, Some(user), amount, lines) {
            // Points that do not fit were refused at intake (an older journal may hold them).
            let Some(points) = points.filter(|&p| p > 0) else {
                continue;
            };
            let p = &self.programs[i as usize];
            let Some(rules) = p.spec.earn.as_ref() else {
                continue;
            };
            let due = event.time + Duration::days(i64::from(rules.return_days));
            let key = order_earn_key(&p.spec.id, &event.source.program, order_id);
            let shares = rules.line_points(points, lines);
            let req = self.order_earn(
                i,
                event,
                user,
                (order_id, amount),
                (points, &shares, &key),
                tz,
            );
            let lo = &*self;
            // A replay (the same order again) or a refused earn writes nothing.
            if !matches!(lo.ledger.check_earn(&req), Ok(None)) {
                continue;
            }
            let pending = req.pending;
            let lo = &mut *self;
            if lo.ledger.earn(&req).is_ok() && pending {
                lo.due.insert((due, key.clone()));
            }
        }
        self.tick(event.time);
    }

    /// Post every pending order earn whose return window closed at or before `now`; those
    /// voided by a refund meanwhile are skipped.
    pub(crate) fn post_due(&mut self, now: DateTime<Utc>) -> DueReport {
        let lo = self;
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

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::event::RefundLine;
    use crate::loyalty::ledger::{Entry, Ledger, Spend};
    use crate::loyalty::Clawback;

    /// One refund of a line: `qty` units of line `line`, by units or as money without units.
    #[derive(Debug, Clone)]
    struct Chunk {
        line: usize,
        qty: u32,
        by_money: bool,
        order: u64,
    }

    fn order_lines() -> impl Strategy<Value = Vec<OrderLine>> {
        prop::collection::vec((0u32..20_000, 1u32..5, 0usize..3), 1..5).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (cents, qty, c))| OrderLine {
                    sku: format!("s{}", i % 3),
                    category: ["shoes", "socks", "hats"][c].into(),
                    price: Decimal::new(i64::from(cents), 2),
                    qty,
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        /// Refunding every line in any split (units or money, in any order) gives back exactly
        /// what one refund of the whole order does, never more than a line earned, never
        /// creating points; the ledger's invariants hold after every refund.
        #[test]
        fn refunding_every_line_in_any_split_equals_refunding_the_order(
            lines in order_lines(),
            ppu in prop::sample::select(vec!["1", "0.7", "3"]),
            tier in prop::sample::select(vec!["1", "1.5", "1.25"]),
            pending in any::<bool>(),
            spend_per_mille in 0i64..1000,
            splits in prop::collection::vec((1u32..4, any::<bool>(), any::<u64>()), 20),
        ) {
            let rules: EarnRules = serde_json::from_value(serde_json::json!({
                "points_per_unit": ppu, "categories": {"shoes": "2", "hats": "0.5"}
            })).unwrap();
            let amount: Decimal = lines.iter().map(|l| l.price * Decimal::from(l.qty)).sum();
            let tier: Decimal = tier.parse().unwrap();
            let points = rules.points(amount, &lines, tier);
            prop_assume!(points.is_some());
            let points = points.unwrap();
            let shares = rules.line_points(points, &lines);
            prop_assert_eq!(shares.iter().map(|l| l.points).sum::<Points>(), points);
            let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
            let user = OneId(7);
            let setup = || {
                let mut l = Ledger::new();
                let book = l.open_book("p", 0, Clawback::Debt);
                let entry = Entry { user, book, points, key: "order:p:O", reason: "order",
                    actor: "pos", time: t0 };
                l.earn(&Earn { pending, order: Some("O"), money: Some(amount),
                    lines: &shares, ..Earn::new(entry, None) }).unwrap();
                let spend = points * spend_per_mille / 1000;
                if !pending && spend > 0 {
                    l.spend(&Spend { points: spend, key: "s", ..entry }).unwrap();
                }
                (l, book)
            };
            // The split: each line's units in chunks, each by units or by money, shuffled.
            let mut chunks = Vec::new();
            let mut next = splits.iter().cycle();
            for (i, line) in lines.iter().enumerate() {
                let mut left = line.qty;
                while left > 0 {
                    let &(size, money, order) = next.next().unwrap();
                    let qty = size.min(left);
                    left -= qty;
                    let by_money = money && line.price > Decimal::ZERO;
                    chunks.push(Chunk { line: i, qty, by_money, order });
                }
            }
            chunks.sort_by_key(|c| c.order);
            let (mut a, book) = setup();
            let start = a.balance(book, user);
            let mut given = vec![0; lines.len()];
            for (k, c) in chunks.iter().enumerate() {
                let l = &lines[c.line];
                let r = if c.by_money {
                    RefundLine { sku: None, line: Some(c.line as u32), qty: 0,
                        amount: Some(l.price * Decimal::from(c.qty)) }
                } else {
                    RefundLine { sku: None, line: Some(c.line as u32), qty: c.qty, amount: None }
                };
                let p = match a.refund_lines("O", &format!("r{k}"), t0, &[r]) {
                    Ok(p) => p,
                    // Lines that earned nothing may come back after every point did: the
                    // order then has nothing left to refund.
                    Err(LoyaltyError::NotPending { .. }) => {
                        prop_assert_eq!(a.pending(book, user), 0);
                        prop_assert!(pending || given.iter().sum::<Points>() == points);
                        continue;
                    }
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                };
                a.check_invariants().map_err(TestCaseError::fail)?;
                if !pending {
                    given[c.line] += p.points + p.other;
                }
                prop_assert!(given[c.line] <= shares[c.line].points);
            }
            let (mut b, _) = setup();
            b.refund("O", "whole", t0).unwrap();
            prop_assert_eq!(a.balance(book, user), b.balance(book, user));
            prop_assert_eq!(a.pending(book, user), 0);
            prop_assert_eq!(b.pending(book, user), 0);
            if !pending {
                prop_assert_eq!(given.iter().sum::<Points>(), points);
                prop_assert_eq!(&given, &shares.iter().map(|l| l.points).collect::<Vec<_>>());
                prop_assert_eq!(a.balance(book, user), start - points);
            }
            // Once wholly refunded, nothing is left to refund.
            let more = RefundLine { sku: None, line: Some(0), qty: 1, amount: None };
            prop_assert!(a.refund_lines("O", "again", t0, &[more]).is_err());
        }
    }

    #[test]
    fn line_shares_follow_the_weights_and_add_up() {
        let rules: EarnRules =
            serde_json::from_str(r#"{"points_per_unit": "1", "categories": {"shoes": "2"}}"#)
                .unwrap();
        let line = |sku: &str, category: &str, price: &str, qty| OrderLine {
            sku: sku.into(),
            category: category.into(),
            price: price.parse().unwrap(),
            qty,
        };
        // Weights 200, 50, 30 of 280; 420 points (a 1.5 tier): 300, 75, 45.
        let lines = [
            line("A", "shoes", "100", 1),
            line("B", "socks", "25", 2),
            line("C", "hats", "10", 3),
        ];
        let p = rules
            .points("180".parse().unwrap(), &lines, "1.5".parse().unwrap())
            .unwrap();
        assert_eq!(p, 420);
        let got: Vec<Points> = rules
            .line_points(p, &lines)
            .iter()
            .map(|l| l.points)
            .collect();
        assert_eq!(got, [300, 75, 45]);
        // Thirds: cumulative floors 3, 6, then the rest (the last line takes what is left).
        let thirds = [
            line("a", "", "1", 1),
            line("b", "", "1", 1),
            line("c", "", "1", 1),
        ];
        let got: Vec<Points> = rules
            .line_points(10, &thirds)
            .iter()
            .map(|l| l.points)
            .collect();
        assert_eq!(got, [3, 3, 4]);
        // Free lines share by units.
        let free = [line("a", "", "0", 1), line("b", "", "0", 3)];
        let got: Vec<Points> = rules
            .line_points(8, &free)
            .iter()
            .map(|l| l.points)
            .collect();
        assert_eq!(got, [2, 6]);
    }
}
