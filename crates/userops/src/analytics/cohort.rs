//! Cohort retention by first-activity period.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{check_times, AnalyticsError};
use crate::lifecycle::PeriodClock;

/// One cohort: the users whose first activity fell in `cohort`, and how many of them were active
/// 0, 1, 2, ... periods later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortRow {
    /// The cohort's period label.
    pub cohort: String,
    /// Users in the cohort.
    pub users: u64,
    /// `retained[k]`: users of the cohort active `k` periods after it (`retained[0] == users`).
    pub retained: Vec<u64>,
    /// `retained[k] / users`.
    pub rates: Vec<f64>,
}

/// A cohort retention table, oldest cohort first. Each row runs to the last period of the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortTable {
    /// One row per cohort, oldest first.
    pub cohorts: Vec<CohortRow>,
}

/// Cohort retention of an activity table (`user[i]` active at `time[i]`, ms UTC).
///
/// ```
/// use userops::analytics::cohort_retention;
/// use userops::lifecycle::PeriodClock;
/// use userops::Period;
/// let day = 86_400_000;
/// let c = cohort_retention(&[1, 1, 2], &[0, 40 * day, 0], PeriodClock::new(Period::Month, 0)).unwrap();
/// assert_eq!(c.cohorts[0].retained, [2, 1]);
/// ```
///
/// # Errors
///
/// [`AnalyticsError::LengthMismatch`] for columns of different lengths;
/// [`AnalyticsError::TimeOutOfRange`] for a time outside ±10 000 years;
/// [`AnalyticsError::BadArgument`] when the data spans more periods than supported.
pub fn cohort_retention(
    user: &[u64],
    time: &[i64],
    clock: PeriodClock,
) -> Result<CohortTable, AnalyticsError> {
    if user.len() != time.len() {
        return Err(AnalyticsError::LengthMismatch {
            what: "activity",
            a: user.len(),
            b: time.len(),
        });
    }
    check_times(time)?;
    // (user, period) pairs, deduplicated.
    let mut pairs: Vec<(u64, i64)> = user
        .iter()
        .zip(time)
        .map(|(&u, &t)| (u, clock.index(t).unwrap_or(0)))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let Some(last) = pairs.iter().map(|p| p.1).max() else {
        return Ok(CohortTable {
            cohorts: Vec::new(),
        });
    };
    let first = pairs.iter().map(|p| p.1).min().unwrap_or(last);
    super::check_span(first, last)?;
    let mut rows: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    let mut i = 0;
    while i < pairs.len() {
        let u = pairs[i].0;
        let first = pairs[i].1;
        let row = rows
            .entry(first)
            .or_insert_with(|| vec![0; (last - first + 1) as usize]);
        while i < pairs.len() && pairs[i].0 == u {
            row[(pairs[i].1 - first) as usize] += 1;
            i += 1;
        }
    }
    Ok(CohortTable {
        cohorts: rows
            .into_iter()
            .map(|(p, retained)| {
                let users = retained[0];
                CohortRow {
                    cohort: clock.label(p),
                    users,
                    rates: retained.iter().map(|&r| r as f64 / users as f64).collect(),
                    retained,
                }
            })
            .collect(),
    })
}
