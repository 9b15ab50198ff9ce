//! Preference model: the share of a customer's behaviours per value of one dimension
//! (category, price band, channel/touchpoint, activity type, function) in a lookback window,
//! top-k preferences, and cross tables.
//!
//! Definitions:
//! - The window holds rows with `as_of − lookback < time ≤ as_of`, where `as_of − lookback` is
//!   `as_of` moved back by `lookback_months` calendar months (day clamped to the month's end, as
//!   `chrono::NaiveDateTime::checked_sub_months`); without times every row counts.
//! - weight(c, v) = Σ row weights (1 each by default) of customer c with value v in the window;
//!   share(c, v) = weight(c, v) / Σ_v weight(c, v).
//! - rank 1 is the largest share; equal shares are ordered by value key (ascending), so ranks
//!   are unique and reproducible.

use chrono::{DateTime, Months};
use serde::{Deserialize, Serialize};

use super::{check_amounts, ModelError};

/// Preference shares in long form, sorted by (customer, rank); parallel columns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Preferences {
    /// Customer keys.
    pub customer: Vec<u64>,
    /// Value keys (category, channel, ... as dense keys).
    pub value: Vec<u64>,
    /// Summed weight.
    pub weight: Vec<f64>,
    /// Share of the customer's total weight.
    pub share: Vec<f64>,
    /// 1 = largest share.
    pub rank: Vec<u32>,
}

/// The window start for `as_of` and a lookback in calendar months (exclusive bound).
///
/// # Errors
///
/// [`ModelError::InvalidInput`] when `as_of` or the start is outside chrono's date range.
pub fn lookback_start(as_of: i64, months: u32) -> Result<i64, ModelError> {
    let t = DateTime::from_timestamp(as_of, 0)
        .ok_or_else(|| ModelError::invalid("as_of", "out of range"))?
        .naive_utc();
    t.checked_sub_months(Months::new(months))
        .map(|s| s.and_utc().timestamp())
        .ok_or_else(|| ModelError::invalid("lookback_months", "reaches before year -262144"))
}

/// Compute preference shares (see the module docs). `times` and `as_of` go together: both or
/// neither. `top_k` keeps ranks ≤ k.
///
/// # Errors
///
/// [`ModelError::InvalidInput`]: columns of different lengths, a weight that is not a finite
/// number ≥ 0, or a window outside the date range (see [`lookback_start`]).
pub fn preferences(
    customers: &[u64],
    values: &[u64],
    weights: Option<&[f64]>,
    window: Option<(&[i64], i64, u32)>,
    top_k: Option<u32>,
) -> Result<Preferences, ModelError> {
    let n = customers.len();
    if values.len() != n
        || weights.is_some_and(|w| w.len() != n)
        || window.is_some_and(|(t, _, _)| t.len() != n)
    {
        return Err(ModelError::invalid(
            "values",
            "columns must have equal length",
        ));
    }
    if let Some(w) = weights {
        check_amounts("weights", w)?;
    }
    let bounds = match window {
        Some((_, as_of, months)) => Some((lookback_start(as_of, months)?, as_of)),
        None => None,
    };
    let mut rows: Vec<(u64, u64, f64)> = (0..n)
        .filter(|&i| match (bounds, window) {
            (Some((lo, hi)), Some((t, _, _))) => t[i] > lo && t[i] <= hi,
            _ => true,
        })
        .map(|i| (customers[i], values[i], weights.map_or(1.0, |w| w[i])))
        .collect();
    // Weights of one (customer, value) smallest first: sums do not depend on the row order.
    rows.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)).then(a.2.total_cmp(&b.2)));
    let mut out = Preferences::default();
    let mut i = 0;
    while i < rows.len() {
        let c = rows[i].0;
        let mut per: Vec<(u64, f64)> = Vec::new();
        while i < rows.len() && rows[i].0 == c {
            match per.last_mut() {
                Some(last) if last.0 == rows[i].1 => last.1 += rows[i].2,
                _ => per.push((rows[i].1, rows[i].2)),
            }
            i += 1;
        }
        let total: f64 = per.iter().map(|p| p.1).sum();
        per.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        for (r, (v, w)) in per.into_iter().enumerate() {
            let rank = r as u32 + 1;
            if top_k.is_some_and(|k| rank > k) {
                break;
            }
            out.customer.push(c);
            out.value.push(v);
            out.weight.push(w);
            out.share.push(if total > 0.0 { w / total } else { 0.0 });
            out.rank.push(rank);
        }
    }
    Ok(out)
}

/// A cross table: Σ weight per (a, b) pair (location × category, category × price band, ...),
/// sorted by (a, b).
///
/// # Errors
///
/// [`ModelError::InvalidInput`]: columns of different lengths, or a weight that is not a
/// finite number ≥ 0.
pub fn cross_table(
    a: &[u64],
    b: &[u64],
    weights: Option<&[f64]>,
) -> Result<Vec<(u64, u64, f64)>, ModelError> {
    if a.len() != b.len() || weights.is_some_and(|w| w.len() != a.len()) {
        return Err(ModelError::invalid("b", "columns must have equal length"));
    }
    if let Some(w) = weights {
        check_amounts("weights", w)?;
    }
    // Each cell's weights smallest first: sums do not depend on the row order.
    let mut rows: Vec<(u64, u64, f64)> = (0..a.len())
        .map(|i| (a[i], b[i], weights.map_or(1.0, |w| w[i])))
        .collect();
    rows.sort_unstable_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)).then(x.2.total_cmp(&y.2)));
    let mut m = std::collections::BTreeMap::<(u64, u64), f64>::new();
    for (x, y, w) in rows {
        *m.entry((x, y)).or_default() += w;
    }
    Ok(m.into_iter().map(|((x, y), w)| (x, y, w)).collect())
}

/// The price band of a price: the index of the first upper bound it is below
/// (`bounds` ascending; a price ≥ every bound is in the last band, `bounds.len()`).
pub fn price_band(price: f64, bounds: &[f64]) -> usize {
    bounds
        .iter()
        .position(|&b| price < b)
        .unwrap_or(bounds.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn shares_ranks_and_window() {
        // Customer 1: value 7 twice, value 3 once, value 9 long ago; customer 2: value 3 once.
        let c = [1, 1, 1, 1, 2];
        let v = [7, 3, 7, 9, 3];
        let as_of = 200 * DAY;
        let t = [
            as_of,
            as_of - DAY,
            as_of - 10 * DAY,
            as_of - 120 * DAY,
            as_of,
        ];
        let p = preferences(&c, &v, None, Some((&t, as_of, 3)), None).unwrap();
        assert_eq!(p.customer, vec![1, 1, 2]);
        assert_eq!(p.value, vec![7, 3, 3]);
        assert_eq!(p.rank, vec![1, 2, 1]);
        assert!((p.share[0] - 2.0 / 3.0).abs() < 1e-12);
        let all = preferences(&c, &v, None, None, Some(1)).unwrap();
        assert_eq!(all.value, vec![7, 3]);
        // Equal weights rank by value key.
        let tie = preferences(&[1, 1], &[5, 2], None, None, None).unwrap();
        assert_eq!(tie.value, vec![2, 5]);
        assert!(preferences(&[1], &[1], Some(&[-1.0]), None, None).is_err());
    }

    #[test]
    fn lookback_uses_calendar_months() {
        // 2026-05-31 minus 3 months = 2026-02-28 (clamped).
        let may31 = chrono::NaiveDate::from_ymd_opt(2026, 5, 31)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp();
        assert_eq!(lookback_start(may31, 3).unwrap(), may31 - 92 * DAY);
    }

    #[test]
    fn cross_and_bands() {
        let t = cross_table(&[1, 1, 2], &[5, 5, 5], Some(&[1.0, 2.0, 4.0])).unwrap();
        assert_eq!(t, vec![(1, 5, 3.0), (2, 5, 4.0)]);
        assert_eq!(price_band(5.0, &[10.0, 100.0]), 0);
        assert_eq!(price_band(10.0, &[10.0, 100.0]), 1);
        assert_eq!(price_band(1e6, &[10.0, 100.0]), 2);
    }
}
