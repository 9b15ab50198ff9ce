//! Step 3: what a promotion does to the amounts the previous ones left ([`effect`]), its
//! discount allocated to the lines, and an alternative simulated promotion by promotion.

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

use super::cart::{LineSet, Prepared};
use super::gate::Candidate;
use super::{money, to_cents, Applied, Grant, LineShare, Reason, Timing};
use crate::campaigns::promotion::{Action, Compiled, Promotion, Reward};

/// The effect of one promotion on the current amounts (its per-line shares are written to a
/// scratch buffer the caller owns).
pub(super) struct Effect {
    pub(super) discount: i64,
    /// The most this promotion can discount on these lines once other promotions lowered
    /// their amounts (its discount, except for tiers whose `off` does not grow with the
    /// threshold). Bounds what a stacking alternative can be worth.
    pub(super) bound: i64,
    pub(super) cash: i64,
    rewards: Vec<Grant>,
}

/// How much of an effect to compute. Scoring alternatives needs only the value (and, for all
/// but the last member of a group, the per-line shares the next member works on); the full
/// output (rewards, ids) is built once, for the chosen alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Detail {
    Value,
    Shares,
    Full,
}

/// Split `total` cents over `lines` in proportion to `weights[line]`: floors first, then the
/// remaining cents one each to the lines with the largest remainders (ties: lower line index).
/// Requires `total ≤ Σ weights`, so no line gets more than its weight.
pub(crate) fn allocate(total: i64, lines: &[usize], weights: &[i64]) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    allocate_into(
        total,
        lines.iter().copied(),
        weights,
        &mut out,
        &mut Alloc::default(),
    );
    out
}

/// The remainders [`allocate_into`] ranks, reused across calls.
#[derive(Default)]
struct Alloc {
    /// General case: (remainder, position in `out`).
    rem: Vec<(i128, usize)>,
    /// Fast case: remainder and position packed into one integer (see [`allocate_small`]).
    keys: Vec<u64>,
}

/// [`allocate`] into reused buffers (`out` is cleared first).
fn allocate_into(
    total: i64,
    lines: impl Iterator<Item = usize> + Clone,
    weights: &[i64],
    out: &mut Vec<(usize, i64)>,
    buf: &mut Alloc,
) {
    out.clear();
    if total <= 0 {
        return;
    }
    // The usual case: at most 256 lines, weights ≥ 0 whose sum is below √i64::MAX.
    let (mut sum, mut n, mut negative) = (0i64, 0usize, false);
    for i in lines.clone() {
        let w = weights[i];
        negative |= w < 0;
        sum = sum.saturating_add(w);
        n += 1;
    }
    if !negative && sum > 0 && sum <= 3_037_000_499 && n <= 256 {
        allocate_small(total, sum, lines, weights, out, &mut buf.keys);
        return;
    }
    let rem = &mut buf.rem;
    rem.clear();
    let sum: i128 = lines.clone().map(|i| i128::from(weights[i])).sum();
    if total <= 0 || sum <= 0 {
        return;
    }
    // total ≤ sum and every weight ≤ sum, so below √i64::MAX the products fit in i64 and the
    // divisions stay 64-bit (128-bit division is a slow library call).
    let small = i64::try_from(sum).ok().filter(|s| *s <= 3_037_000_499);
    let mut given: i64 = 0;
    for i in lines {
        let (q, r) = match small {
            Some(s) => {
                let exact = total * weights[i];
                (exact / s, i128::from(exact % s))
            }
            None => {
                let exact = i128::from(total) * i128::from(weights[i]);
                // Quotient ≤ weight (total ≤ sum), so it fits in i64.
                (
                    i64::try_from(exact / sum).unwrap_or(weights[i]),
                    exact % sum,
                )
            }
        };
        given += q;
        rem.push((r, out.len()));
        out.push((i, q));
    }
    // The remaining cents go one each to the lines with the largest remainders (ties: the
    // lower line). Σ remainders = left × sum with every remainder < sum, so more than `left`
    // remainders are non-zero and the `left` largest are all positive.
    let left = usize::try_from(total - given).unwrap_or(0).min(rem.len());
    if left > 0 {
        let by_remainder = |a: &(i128, usize), b: &(i128, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if left < rem.len() {
            rem.select_nth_unstable_by(left - 1, by_remainder);
        }
        for &(_, k) in &rem[..left] {
            out[k].1 += 1;
        }
    }
    out.retain(|(_, q)| *q > 0);
}

/// [`allocate_into`] for non-negative weights summing to `sum` ≤ √i64::MAX over at most 256
/// lines, with no integer division per line (a 64-bit division takes tens of cycles, and this
/// runs for every member of every simulated alternative): every product `total × weight` ≤ sum² fits in i64, its quotient by `sum` is estimated in
/// floating point, which is within one of the exact quotient (quotients are below 2³², far
/// inside f64's 53 bits), and corrected to the exact quotient and remainder. Remainders are
/// below `sum` < 2³², so a remainder and the line's position pack into one `u64` key,
/// `remainder << 8 | (255 − position)`, whose order is the ranking: larger remainder first,
/// ties to the lower position.
fn allocate_small(
    total: i64,
    sum: i64,
    lines: impl Iterator<Item = usize>,
    weights: &[i64],
    out: &mut Vec<(usize, i64)>,
    keys: &mut Vec<u64>,
) {
    keys.clear();
    let inv = 1.0 / sum as f64;
    let mut given: i64 = 0;
    for i in lines {
        // total ≤ sum and weight ≤ sum.
        let exact = total * weights[i];
        let mut q = (exact as f64 * inv) as i64;
        let mut r = exact - q * sum;
        if r < 0 {
            q -= 1;
            r += sum;
        } else if r >= sum {
            q += 1;
            r -= sum;
        }
        debug_assert!((0..sum).contains(&r) && q * sum + r == exact);
        given += q;
        keys.push(((r as u64) << 8) | (255 - out.len() as u64));
        out.push((i, q));
    }
    // As in the general case, the `left` largest remainders are all positive.
    let left = usize::try_from(total - given).unwrap_or(0).min(keys.len());
    if left > 0 {
        if left < keys.len() {
            keys.select_nth_unstable_by(left - 1, |a, b| b.cmp(a));
        }
        for &k in &keys[..left] {
            out[255 - (k & 255) as usize].1 += 1;
        }
    }
    out.retain(|(_, q)| *q > 0);
}

fn times(every: bool, eligible: i64, threshold: i64, per_order: Option<u64>) -> u64 {
    let n = if every && threshold > 0 {
        u64::try_from(eligible / threshold).unwrap_or(0)
    } else {
        1
    };
    per_order.map_or(n, |m| n.min(m))
}

fn grant(reward: &Reward, count: u64, timing: Timing) -> Result<(Grant, i64), Reason> {
    Ok(match reward {
        Reward::RedPacket { amount } => {
            let cash = to_cents(*amount)
                .checked_mul(i64::try_from(count).map_err(|_| Reason::NoEffect)?)
                .ok_or(Reason::NoEffect)?;
            (
                Grant::RedPacket {
                    amount: *amount,
                    count,
                    timing,
                },
                cash,
            )
        }
        Reward::Coupon { template, kind } => (
            Grant::Coupon {
                template: template.clone(),
                kind: *kind,
                count,
                timing,
            },
            0,
        ),
        Reward::Points { points, program } => (
            Grant::Points {
                program: program.clone(),
                points: i64::try_from(count)
                    .ok()
                    .and_then(|c| points.checked_mul(c))
                    .ok_or(Reason::NoEffect)?,
                timing,
            },
            0,
        ),
        Reward::Goods { sku, qty } => (
            Grant::Goods {
                sku: sku.clone(),
                qty: u64::from(*qty).saturating_mul(count),
                timing,
            },
            0,
        ),
    })
}

/// Percent of `eligible` cents, rounded half away from zero, exactly.
pub(crate) fn percent_of(eligible: i64, percent: &Decimal, frac: Option<(i128, i128)>) -> i64 {
    let int = frac.and_then(|(num, den)| {
        // 64-bit when it fits (the usual case); 128-bit division is a slow library call.
        let small = i64::try_from(num)
            .ok()
            .zip(i64::try_from(den).ok())
            .and_then(|(n, d)| {
                let twice = eligible.checked_mul(n)?.checked_mul(2)?;
                Some((twice.checked_add(d)?) / d.checked_mul(2)?)
            });
        small.or_else(|| {
            let twice = i128::from(eligible).checked_mul(num)?.checked_mul(2)?;
            i64::try_from((twice + den) / (2 * den)).ok()
        })
    });
    int.unwrap_or_else(|| {
        (Decimal::from(eligible) * *percent / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
            .to_i64()
            .unwrap_or(eligible)
    })
}

/// Scratch buffers reused across the promotions of one evaluation.
#[derive(Default)]
pub(super) struct Scratch {
    shares: Vec<(usize, i64)>,
    alloc: Alloc,
}

/// Apply one promotion to the current amounts (not yet committed to them); its per-line
/// shares go to `s.shares`.
#[inline(always)]
pub(super) fn effect(
    p: &Promotion,
    c: &Prepared<'_>,
    lines: &LineSet,
    amounts: &[i64],
    detail: Detail,
    s: &mut Scratch,
) -> Result<Effect, Reason> {
    let h = p.compiled();
    s.shares.clear();
    let (lines, exchange_line, eligible) = counted_lines(p, h, c, lines, amounts)?;
    let threshold = h.threshold;
    let per_order = p.limits.per_order;
    let mut e = Effect {
        discount: 0,
        bound: 0,
        cash: 0,
        rewards: Vec::new(),
    };
    let mut rewarded = false;
    let split = |d: i64, s: &mut Scratch| {
        if detail != Detail::Value {
            allocate_into(d, lines.iter(), amounts, &mut s.shares, &mut s.alloc);
        }
    };
    match &p.action {
        Action::ThresholdDiscount { every, .. } => {
            let (d, most) = threshold_off(h, *every, eligible, threshold, per_order);
            e.discount = d.min(eligible);
            e.bound = most.min(eligible);
            split(e.discount, s);
        }
        Action::PercentOff { percent, .. } => {
            let mut d = percent_of(eligible, percent, h.percent);
            if let Some(m) = h.max_off {
                d = d.min(m);
            }
            e.discount = d.min(eligible);
            split(e.discount, s);
        }
        Action::FixedPrice { .. } => {
            let target = h.price;
            for i in lines.iter() {
                let unit = c.unit[i];
                let d = (unit - target)
                    .max(0)
                    .saturating_mul(c.cart.lines[i].qty)
                    .min(amounts[i]);
                if d > 0 {
                    if detail != Detail::Value {
                        s.shares.push((i, d));
                    }
                    e.discount += d;
                }
            }
        }
        Action::ThresholdGift { reward, every, .. }
        | Action::ThresholdRebate { reward, every, .. } => {
            let timing = if matches!(p.action, Action::ThresholdGift { .. }) {
                Timing::WithOrder
            } else {
                Timing::AfterOrder
            };
            let n = times(*every, eligible, threshold, per_order);
            if detail == Detail::Full {
                let (g, cash) = grant(reward, n, timing)?;
                e.cash = cash;
                e.rewards.push(g);
            } else {
                e.cash = reward_cash(h, reward, n)?;
            }
            rewarded = true;
        }
        Action::ThresholdExchange { sku, price, .. } => match exchange_line {
            Some(i) => {
                let d = (c.unit[i] - h.price).max(0).min(amounts[i]);
                if d > 0 {
                    if detail != Detail::Value {
                        s.shares.push((i, d));
                    }
                    e.discount = d;
                }
            }
            None => {
                rewarded = true;
                if detail == Detail::Full {
                    e.rewards.push(Grant::ExchangeOffer {
                        sku: sku.clone(),
                        price: *price,
                        timing: Timing::WithOrder,
                    });
                }
            }
        },
        Action::PointsMultiplier { factor, .. } => {
            rewarded = true;
            if detail == Detail::Full {
                e.rewards.push(Grant::PointsMultiplier {
                    factor: *factor,
                    on_amount: money(eligible),
                    timing: Timing::AfterOrder,
                });
            }
        }
    }
    if e.discount == 0 && !rewarded {
        return Err(Reason::NoEffect);
    }
    e.bound = e.bound.max(e.discount);
    Ok(e)
}

/// The lines a promotion's conditions count (a 满换 add-on's own line left out) and what
/// they come to, once they reach its minimums and threshold; the add-on's line, if in the cart.
fn counted_lines(
    p: &Promotion,
    h: &Compiled,
    c: &Prepared<'_>,
    lines: &LineSet,
    amounts: &[i64],
) -> Result<(LineSet, Option<usize>, i64), Reason> {
    let mut lines = *lines;
    let mut exchange_line = None;
    if let Action::ThresholdExchange { sku, .. } = &p.action {
        // The add-on does not count toward its own threshold.
        exchange_line = c
            .cart
            .lines
            .iter()
            .position(|l| &l.sku == sku)
            .filter(|&i| amounts[i] > 0);
        if let Some(i) = exchange_line {
            lines.remove(i);
        }
    }
    let eligible: i64 = lines.iter().map(|i| amounts[i]).sum();
    let k = &p.conditions;
    if let Some(need) = h.min_amount {
        if eligible < need {
            return Err(Reason::MinAmount(need, eligible));
        }
    }
    if let Some(need) = k.min_qty {
        let have: u64 = lines
            .iter()
            .map(|i| u64::try_from(c.cart.lines[i].qty).unwrap_or(0))
            .sum();
        if have < need {
            return Err(Reason::MinQty(need, have));
        }
    }
    let threshold = h.threshold;
    if eligible < threshold || (threshold == 0 && eligible == 0 && exchange_line.is_none()) {
        return Err(Reason::Threshold(threshold, eligible));
    }
    Ok((lines, exchange_line, eligible))
}

/// A threshold discount's amount, and the most it can be on lower amounts (its bound), both
/// capped by `max_off`.
fn threshold_off(
    h: &Compiled,
    every: bool,
    eligible: i64,
    threshold: i64,
    per_order: Option<u64>,
) -> (i64, i64) {
    let (mut d, mut most) = match h.off {
        Some(off) => {
            let d = off.saturating_mul(
                i64::try_from(times(every, eligible, threshold, per_order)).unwrap_or(i64::MAX),
            );
            (d, d)
        }
        None => {
            // The highest tier reached; a lower amount may reach only a lower tier,
            // whose `off` is not necessarily smaller: the bound is the largest `off`
            // of the tiers reached.
            let (mut hit, mut most) = (0, 0);
            for &(_, off) in h.tiers.iter().take_while(|(t, _)| *t <= eligible) {
                hit = off;
                most = most.max(off);
            }
            (hit, most)
        }
    };
    if let Some(m) = h.max_off {
        d = d.min(m);
        most = most.min(m);
    }
    (d, most)
}

/// The cash a gift or rebate of `n` rewards is worth when only the value is wanted (with the
/// overflow checks the full output makes).
fn reward_cash(h: &Compiled, reward: &Reward, n: u64) -> Result<i64, Reason> {
    let cash = match reward {
        Reward::RedPacket { .. } => i64::try_from(n)
            .ok()
            .and_then(|n| h.cash.checked_mul(n))
            .ok_or(Reason::NoEffect)?,
        Reward::Points { points, .. } => {
            // The same overflow check as the full output makes.
            i64::try_from(n)
                .ok()
                .and_then(|n| points.checked_mul(n))
                .ok_or(Reason::NoEffect)?;
            0
        }
        _ => 0,
    };
    Ok(cash)
}

/// Buffers for simulating alternatives, reused across them (no allocation per alternative).
#[derive(Default)]
pub(super) struct Work {
    /// The line amounts as the alternative's members leave them.
    pub(super) amounts: Vec<i64>,
    /// Per member: the lines the members after it read.
    later: Vec<LineSet>,
    pub(super) scratch: Scratch,
}

/// The chosen alternative applied, with the output built.
pub(super) struct Outcome {
    pub(super) applied: Vec<Applied>,
    /// Members that did not apply after the ones before them, and why.
    pub(super) failed: Vec<(usize, Reason)>,
}

/// Apply an alternative's members in order, each on the amounts the previous ones left
/// (`work.amounts` holds the result). With `full`, build the output; otherwise only score it:
/// (Σ discount + cash, number applied).
pub(super) fn simulate(
    promos: &[Promotion],
    cands: &[Candidate],
    members: &[u32],
    c: &Prepared<'_>,
    full: bool,
    work: &mut Work,
    out: &mut Outcome,
) -> (i64, usize) {
    work.amounts.clear();
    work.amounts.extend_from_slice(&c.amounts);
    if !full {
        // A member's per-line shares are needed only where a later member reads the lines.
        work.later.clear();
        let mut reach = LineSet::default();
        for &m in members.iter().rev() {
            work.later.push(reach);
            reach.union(&cands[m as usize].reach());
        }
        work.later.reverse();
    }
    let (mut benefit, mut count) = (0, 0);
    for (j, &m) in members.iter().enumerate() {
        let cand = &cands[m as usize];
        let p = &promos[cand.promo];
        let detail = if full {
            Detail::Full
        } else if work.later[j].intersects(&cand.reach()) {
            Detail::Shares
        } else {
            Detail::Value
        };
        let e = match effect(p, c, &cand.lines, &work.amounts, detail, &mut work.scratch) {
            Ok(e) => e,
            Err(r) => {
                if full {
                    out.failed.push((cand.promo, r));
                }
                continue;
            }
        };
        let use_ = e.discount + e.cash;
        if cand.left.is_some_and(|left| use_ > left) {
            if full {
                out.failed.push((cand.promo, Reason::Budget));
            }
            continue;
        }
        if detail != Detail::Value {
            for &(i, d) in &work.scratch.shares {
                work.amounts[i] -= d;
            }
        }
        benefit += use_;
        count += 1;
        if full {
            out.applied.push(Applied {
                id: p.id.clone(),
                discount: money(e.discount),
                budget_use: money(use_),
                lines: work
                    .scratch
                    .shares
                    .iter()
                    .map(|&(line, d)| LineShare {
                        line,
                        discount: money(d),
                    })
                    .collect(),
                rewards: e.rewards,
            });
        }
    }
    (benefit, count)
}
