//! Paths between two events (what comes next, what came before, where users drop) and
//! micro-conversions (small steps and how they relate to the conversion).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ratio, AnalyticsError, EventTable};

/// An event name and how often it occurs in a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCount {
    /// The event name, or `(end)` / `(start)`.
    pub step: String,
    /// How many times.
    pub count: u64,
}

/// The result of [`paths`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathReport {
    /// The start event.
    pub from: String,
    /// The end event.
    pub to: String,
    /// Users who did `from`.
    pub users: u64,
    /// Of those, users who did `to` after their first `from`.
    pub converted: u64,
    /// Users who did `from` and never `to` after it.
    pub dropped: u64,
    /// The events right after each `from` (`(end)` when nothing followed), most frequent first.
    pub next_after_from: Vec<StepCount>,
    /// The events right before each `to` (`(start)` when nothing preceded).
    pub previous_before_to: Vec<StepCount>,
    /// For dropped users, their last event (where they dropped).
    pub drop_points: Vec<StepCount>,
}

fn top(map: BTreeMap<String, u64>, n: usize) -> Vec<StepCount> {
    let mut v: Vec<StepCount> = map
        .into_iter()
        .map(|(step, count)| StepCount { step, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.step.cmp(&b.step)));
    v.truncate(n);
    v
}

/// Paths from `from` to `to`, keeping the `n` most frequent steps in each list.
///
/// # Errors
///
/// [`AnalyticsError::LengthMismatch`], [`AnalyticsError::BadCode`] or
/// [`AnalyticsError::TimeOutOfRange`] for an event table that does not check;
/// [`AnalyticsError::UnknownStep`] for a `from` or `to` no event of the data has.
pub fn paths(
    table: EventTable<'_>,
    from: &str,
    to: &str,
    n: usize,
) -> Result<PathReport, AnalyticsError> {
    table.check("events")?;
    let (f, t) = (table.code(from)?, table.code(to)?);
    let name = |r: usize| table.names[table.event[r] as usize].clone();
    let (mut next, mut prev, mut drops) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let (mut users, mut converted) = (0u64, 0u64);
    for (_, rows) in table.by_user() {
        for (k, &r) in rows.iter().enumerate() {
            if table.event[r] == f {
                let nx = rows
                    .get(k + 1)
                    .map_or_else(|| "(end)".to_owned(), |&x| name(x));
                *next.entry(nx).or_insert(0) += 1;
            }
            if table.event[r] == t {
                let pv = k
                    .checked_sub(1)
                    .map_or_else(|| "(start)".to_owned(), |j| name(rows[j]));
                *prev.entry(pv).or_insert(0) += 1;
            }
        }
        if let Some(start) = rows.iter().position(|&r| table.event[r] == f) {
            users += 1;
            if rows[start + 1..].iter().any(|&r| table.event[r] == t) {
                converted += 1;
            } else if let Some(&last) = rows.last() {
                *drops.entry(name(last)).or_insert(0) += 1;
            }
        }
    }
    Ok(PathReport {
        from: from.to_owned(),
        to: to.to_owned(),
        users,
        converted,
        dropped: users - converted,
        next_after_from: top(next, n),
        previous_before_to: top(prev, n),
        drop_points: top(drops, n),
    })
}

/// One micro-conversion: a small step and the conversion rate of the users who took it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicroConversion {
    /// The event name.
    pub event: String,
    /// Users who did it.
    pub users: u64,
    /// `users / all users`.
    pub reach: f64,
    /// Users who converted after first doing it.
    pub converted_after: u64,
    /// `converted_after / users`.
    pub rate: Option<f64>,
    /// Conversion rate of the users who never did it.
    pub rate_without: Option<f64>,
}

/// Every event other than `conversion` as a micro-conversion, by users descending.
///
/// # Errors
///
/// As [`paths`], for `conversion`.
pub fn micro_conversions(
    table: EventTable<'_>,
    conversion: &str,
) -> Result<Vec<MicroConversion>, AnalyticsError> {
    table.check("events")?;
    let c = table.code(conversion)?;
    let names = table.names.len();
    let mut did = vec![0u64; names];
    let mut conv_after = vec![0u64; names];
    let mut conv_without = vec![0u64; names];
    let mut all = 0u64;
    for (_, rows) in table.by_user() {
        all += 1;
        let last_conv = rows.iter().rposition(|&r| table.event[r] == c);
        let mut first = vec![usize::MAX; names];
        for (k, &r) in rows.iter().enumerate() {
            let e = table.event[r] as usize;
            first[e] = first[e].min(k);
        }
        for e in 0..names {
            if first[e] == usize::MAX {
                continue;
            }
            did[e] += 1;
            if last_conv.is_some_and(|l| l > first[e]) {
                conv_after[e] += 1;
            }
        }
        for e in 0..names {
            if first[e] == usize::MAX && last_conv.is_some() {
                conv_without[e] += 1;
            }
        }
    }
    let mut out: Vec<MicroConversion> = (0..names)
        .filter(|&e| e as u32 != c && did[e] > 0)
        .map(|e| MicroConversion {
            event: table.names[e].clone(),
            users: did[e],
            reach: did[e] as f64 / all.max(1) as f64,
            converted_after: conv_after[e],
            rate: ratio(conv_after[e], did[e]),
            rate_without: ratio(conv_without[e], all - did[e]),
        })
        .collect();
    out.sort_by(|a, b| b.users.cmp(&a.users).then(a.event.cmp(&b.event)));
    Ok(out)
}
