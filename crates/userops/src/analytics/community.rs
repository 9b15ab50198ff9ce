//! Community statistics per period: joins, members, active members, activity rate,
//! conversions, GMV and leavers.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{check_codes, check_times, group_rows, AnalyticsError, OrderTable};
use crate::event::CommunityAction;
use crate::lifecycle::PeriodClock;

/// Community events as columns: `user[i]` did `action[i]` in community `names[community[i]]`.
#[derive(Debug, Clone, Copy)]
pub struct CommunityEvents<'a> {
    /// User ids.
    pub user: &'a [u64],
    /// Times, ms UTC.
    pub time: &'a [i64],
    /// Community codes into `names`.
    pub community: &'a [u32],
    /// Community names.
    pub names: &'a [String],
    /// What happened.
    pub action: &'a [CommunityAction],
}

/// One community in one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityRow {
    /// The community's name, as in the input.
    pub community: String,
    /// The period label.
    pub period: String,
    /// Joins in the period.
    pub joins: u64,
    /// Leaves in the period.
    pub leavers: u64,
    /// Members at the end of the period: everyone who joined up to the period's end and had
    /// not left by then (a member who joins and leaves within the period is not counted).
    pub members: u64,
    /// Members who posted in the period.
    pub active_members: u64,
    /// `active_members / members` (`None` with no members).
    pub activity_rate: Option<f64>,
    /// Orders placed in the period by members while members (a member's two orders count
    /// two; an order of a member of two communities counts in both).
    pub conversions: u64,
    /// Amount of those orders.
    #[serde(with = "rust_decimal::serde::str")]
    pub gmv: Decimal,
}

/// Every community, every period from its first event to the last event of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommunityTable {
    /// Rows by community name, then period.
    pub rows: Vec<CommunityRow>,
}

#[derive(Default)]
struct Acc {
    joins: u64,
    leavers: u64,
    diff: i64,
    active: BTreeSet<u64>,
    conversions: u64,
    gmv: Decimal,
}

/// Community statistics per period of `clock` (use a day or week clock for the operator's
/// daily / weekly view). A message from someone with no recorded join counts as their join.
/// `members` is the count at the period's end; `active_members` those who posted in it, who
/// may have left by its end (so `activity_rate` can exceed 1).
///
/// ```
/// use rust_decimal::Decimal;
/// use userops::analytics::{community_stats, CommunityEvents, OrderTable};
/// use userops::event::CommunityAction::{Join, Leave, Message};
/// use userops::lifecycle::PeriodClock;
/// use userops::Period;
/// let day = 86_400_000;
/// let g = ["tea-lovers".to_string()];
/// // Day 0: users 1 and 2 join, 2 posts and leaves; user 1 orders twice.
/// let events = CommunityEvents { user: &[1, 2, 2, 2], time: &[0, 0, 10, 20],
///     community: &[0; 4], names: &g, action: &[Join, Join, Message, Leave] };
/// let amount = [Decimal::new(30, 0), Decimal::new(20, 0)];
/// let orders = OrderTable { user: &[1, 1], time: &[100, day - 1], amount: &amount, lines: None };
/// let t = community_stats(events, orders, PeriodClock::new(Period::Day, 0)).unwrap();
/// let r = &t.rows[0];
/// assert_eq!((r.joins, r.leavers, r.members, r.active_members), (2, 1, 1, 1));
/// assert_eq!((r.conversions, r.gmv), (2, Decimal::new(50, 0)));
/// ```
///
/// # Errors
///
/// [`AnalyticsError::LengthMismatch`], [`AnalyticsError::BadCode`] or
/// [`AnalyticsError::TimeOutOfRange`] for event or order tables that do not check;
/// [`AnalyticsError::Overflow`] when an amount sum overflows; [`AnalyticsError::BadArgument`]
/// for an order line naming no order row, or data spanning more periods than supported.
pub fn community_stats(
    events: CommunityEvents<'_>,
    orders: OrderTable<'_>,
    clock: PeriodClock,
) -> Result<CommunityTable, AnalyticsError> {
    let n = events.user.len();
    for len in [
        events.time.len(),
        events.community.len(),
        events.action.len(),
    ] {
        if len != n {
            return Err(AnalyticsError::LengthMismatch {
                what: "community",
                a: n,
                b: len,
            });
        }
    }
    check_codes(events.community, events.names.len())?;
    orders.check()?;
    check_times(events.time)?;
    let p = |t: i64| clock.index(t).unwrap_or(0);
    let mut acc: BTreeMap<(u32, i64), Acc> = BTreeMap::new();
    // Membership intervals per user: (community, join ms, leave ms or MAX).
    let mut intervals: BTreeMap<u64, Vec<(u32, i64, i64)>> = BTreeMap::new();
    for (user, rows) in group_rows(events.user, events.time) {
        let mut open: BTreeMap<u32, i64> = BTreeMap::new();
        for r in rows {
            let (c, t) = (events.community[r], events.time[r]);
            let join = |acc: &mut BTreeMap<(u32, i64), Acc>, open: &mut BTreeMap<u32, i64>| {
                open.insert(c, t);
                let a = acc.entry((c, p(t))).or_default();
                a.joins += 1;
                a.diff += 1;
            };
            match events.action[r] {
                CommunityAction::Join => {
                    if !open.contains_key(&c) {
                        join(&mut acc, &mut open);
                    }
                }
                CommunityAction::Message => {
                    if !open.contains_key(&c) {
                        join(&mut acc, &mut open);
                    }
                    acc.entry((c, p(t))).or_default().active.insert(user);
                }
                CommunityAction::Leave => {
                    if let Some(since) = open.remove(&c) {
                        intervals.entry(user).or_default().push((c, since, t));
                        let a = acc.entry((c, p(t))).or_default();
                        a.leavers += 1;
                        a.diff -= 1;
                    }
                }
            }
        }
        for (c, since) in open {
            intervals
                .entry(user)
                .or_default()
                .push((c, since, i64::MAX));
        }
    }
    for i in 0..orders.user.len() {
        let (u, t) = (orders.user[i], orders.time[i]);
        for &(c, from, to) in intervals.get(&u).map(Vec::as_slice).unwrap_or(&[]) {
            if from <= t && t < to {
                let a = acc.entry((c, p(t))).or_default();
                a.conversions += 1;
                a.gmv = a
                    .gmv
                    .checked_add(orders.amount[i])
                    .ok_or(AnalyticsError::Overflow { field: "amount" })?;
            }
        }
    }
    let last = events
        .time
        .iter()
        .chain(orders.time)
        .map(|&t| p(t))
        .max()
        .unwrap_or(0);
    if let Some(first) = acc.keys().map(|k| k.1).min() {
        super::check_span(first, last)?;
    }
    let mut rows = Vec::new();
    // By community name, not by code (codes follow the order communities were first seen).
    let mut communities: Vec<u32> = acc
        .keys()
        .map(|k| k.0)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    communities
        .sort_by(|a, b| (&events.names[*a as usize], a).cmp(&(&events.names[*b as usize], b)));
    for c in communities {
        let first = acc
            .range((c, i64::MIN)..=(c, i64::MAX))
            .next()
            .map_or(last, |(k, _)| k.1);
        let mut members: i64 = 0;
        for q in first..=last {
            let a = acc.remove(&(c, q)).unwrap_or_default();
            members += a.diff;
            let m = members.max(0) as u64;
            rows.push(CommunityRow {
                community: events.names[c as usize].clone(),
                period: clock.label(q),
                joins: a.joins,
                leavers: a.leavers,
                members: m,
                active_members: a.active.len() as u64,
                activity_rate: (m > 0).then(|| a.active.len() as f64 / m as f64),
                conversions: a.conversions,
                gmv: a.gmv,
            });
        }
    }
    Ok(CommunityTable { rows })
}
