//! Steps 2 and 4: the alternatives stacking allows, and the one chosen (by priority or best for
//! the customer).

use super::cart::{LineSet, Prepared};
use super::effect::{effect, simulate, Detail, Outcome, Scratch, Work};
use super::gate::Candidate;
use super::{PromoIndex, Reason, SelectMode};
use crate::campaigns::promotion::Promotion;

/// A candidate evaluated alone on the cart (every other promotion left out).
#[derive(Clone, Copy)]
pub(super) struct Solo {
    /// Its value (discount + cash); `None` when it does not apply on its own (the reason
    /// went to its not-applied entry).
    value: Option<i64>,
    /// It does not apply alone only because its budget is too small.
    budget: bool,
    /// Bounds on its discount and cash when it follows other members of its group, which
    /// only lower the amounts it works on (zero when it cannot apply, except for a budget
    /// refusal, which a smaller amount may pass).
    discount_bound: i64,
    cash_bound: i64,
}

/// Evaluate a candidate alone; when it does not apply, its reason goes to `reason`.
#[inline(always)]
pub(super) fn solo(
    p: &Promotion,
    cand: &Candidate,
    c: &Prepared<'_>,
    s: &mut Scratch,
    reason: &mut Option<Reason>,
) -> Solo {
    match effect(p, c, &cand.lines, &c.amounts, Detail::Value, s) {
        Ok(e) => {
            let use_ = e.discount + e.cash;
            let budget = cand.left.is_some_and(|left| use_ > left);
            if budget {
                *reason = Some(Reason::Budget);
            }
            Solo {
                value: (!budget).then_some(use_),
                budget,
                discount_bound: e.bound,
                cash_bound: e.cash,
            }
        }
        Err(r) => {
            *reason = Some(r);
            Solo {
                value: None,
                budget: false,
                discount_bound: 0,
                cash_bound: 0,
            }
        }
    }
}

/// The stacking alternatives: each exclusive candidate alone, each group's candidates
/// together (in priority order), ordered by the priority of their first member. Flat:
/// alternative `k` is `members[start[k]..start[k + 1]]` (indices into the candidates).
pub(super) struct Alternatives {
    start: Vec<u32>,
    members: Vec<u32>,
}

impl Alternatives {
    pub(super) fn build(index: &PromoIndex, cands: &[Candidate]) -> Alternatives {
        let mut alt_of: Vec<u32> = Vec::with_capacity(cands.len());
        let mut sizes: Vec<u32> = Vec::new();
        let mut alt_of_group: Vec<u32> = vec![u32::MAX; index.groups];
        for cand in cands {
            let g = index.group[cand.promo];
            let k = if g == u32::MAX {
                sizes.push(0);
                sizes.len() - 1
            } else {
                let slot = &mut alt_of_group[g as usize];
                if *slot == u32::MAX {
                    *slot = sizes.len() as u32;
                    sizes.push(0);
                }
                *slot as usize
            };
            sizes[k] += 1;
            alt_of.push(k as u32);
        }
        let mut start = Vec::with_capacity(sizes.len() + 1);
        let mut at = 0u32;
        start.push(0);
        for n in &sizes {
            at += n;
            start.push(at);
        }
        // Fill in candidate order, so each group keeps its priority order.
        let mut fill: Vec<u32> = start[..sizes.len()].to_vec();
        let mut members = vec![0u32; cands.len()];
        for (ci, &k) in alt_of.iter().enumerate() {
            members[fill[k as usize] as usize] = ci as u32;
            fill[k as usize] += 1;
        }
        Alternatives { start, members }
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }

    pub(super) fn get(&self, k: usize) -> &[u32] {
        &self.members[self.start[k] as usize..self.start[k + 1] as usize]
    }
}

/// How the stacking alternative is searched for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Search {
    /// Branch and bound: alternatives that cannot win are not simulated.
    #[default]
    Bounded,
    /// Simulate every alternative (the reference the bounded search is tested against).
    #[cfg(test)]
    Exhaustive,
}

/// Which alternative wins. Best for the customer: the highest value (discount + cash) among
/// the alternatives where something applies, ties to the earlier one. Priority: the first
/// alternative where something applies.
///
/// The bounded search rests on two facts (the exhaustive search checks them in the tests):
/// a member applies after others only on amounts they lowered, and every action's value is
/// monotone in the amounts, so its value alone bounds its value in the group; and the first
/// member that applies alone also applies in its group (everything before it failed and left
/// the amounts untouched), so an alternative applies something exactly when one of its
/// members applies alone.
#[expect(
    clippy::too_many_arguments,
    reason = "the promotion index, the cart and the search's scratch space, each borrowed separately"
)]
pub(super) fn choose(
    promos: &[Promotion],
    cands: &[Candidate],
    solos: &[Solo],
    alts: &Alternatives,
    c: &Prepared<'_>,
    mode: SelectMode,
    search: Search,
    work: &mut Work,
) -> Option<usize> {
    let mut sink = Outcome {
        applied: Vec::new(),
        failed: Vec::new(),
    };
    #[cfg(test)]
    if search == Search::Exhaustive {
        let mut best: Option<(i64, usize)> = None;
        for k in 0..alts.len() {
            let (v, n) = simulate(promos, cands, alts.get(k), c, false, work, &mut sink);
            let better = match best {
                None => n > 0,
                Some((b, _)) => mode == SelectMode::BestForCustomer && v > b,
            };
            if better {
                best = Some((v, k));
            }
            if mode == SelectMode::Priority && best.is_some() {
                break;
            }
        }
        return best.map(|(_, k)| k);
    }
    let _ = search;
    let viable = |k: usize| {
        alts.get(k)
            .iter()
            .any(|&m| solos[m as usize].value.is_some())
    };
    if mode == SelectMode::Priority {
        return (0..alts.len()).find(|&k| viable(k));
    }
    // Alternatives of one member are worth exactly their member's value alone.
    let mut best: Option<(i64, usize)> = None;
    let mut groups: Vec<(i64, usize)> = Vec::new();
    for k in 0..alts.len() {
        let members = alts.get(k);
        if let [m] = members {
            if let Some(v) = solos[*m as usize].value {
                if best.is_none_or(|(b, _)| v > b) {
                    best = Some((v, k));
                }
            }
            continue;
        }
        if !viable(k) {
            continue;
        }
        // Bound: every member's bound, the discounts together at most the amount of the
        // lines they reach.
        let (mut discount, mut cash, mut reach) = (0i64, 0i64, LineSet::default());
        for &m in members {
            let s = &solos[m as usize];
            if s.value.is_some() || s.budget {
                discount = discount.saturating_add(s.discount_bound);
                cash = cash.saturating_add(s.cash_bound);
                reach.union(&cands[m as usize].reach());
            }
        }
        let within: i64 = reach.iter().map(|i| c.amounts[i]).sum();
        groups.push((discount.min(within).saturating_add(cash), k));
    }
    // Most promising first; stop once the bound falls below the best value found.
    groups.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (bound, k) in groups {
        if let Some((b, bk)) = best {
            if bound < b {
                break;
            }
            if bound == b && k > bk {
                continue;
            }
        }
        let (v, _) = simulate(promos, cands, alts.get(k), c, false, work, &mut sink);
        if best.is_none_or(|(b, bk)| v > b || (v == b && k < bk)) {
            best = Some((v, k));
        }
    }
    best.map(|(_, k)| k)
}
