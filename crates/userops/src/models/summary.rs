//! Per-customer transaction summary with the definitions of the Python `lifetimes` package
//! (`lifetimes.utils.summary_data_from_transaction_data`), so that every column can be checked
//! against it.
//!
//! Definitions (all times are wall-clock times in the business time zone, given as seconds since
//! 1970-01-01T00:00 of that wall clock):
//! - Each transaction falls in a **period**: a calendar day (`D`), a Monday–Sunday week (`W`,
//!   pandas' `W-SUN`) or a calendar month (`M`). Transactions of one customer in one period count
//!   as one purchase whose value is the sum of their amounts.
//! - Transactions in periods after the observation end's period are ignored; the observation end
//!   defaults to the latest transaction.
//! - `frequency` = number of periods with a purchase, minus one (repeat purchases only).
//! - `recency` = last purchase period − first purchase period, in periods (0 without repeats).
//! - `T` = observation end period − first purchase period, in periods.
//! - `monetary_value` = mean value of the repeat purchase periods (first period excluded),
//!   0 without repeats.
//!
//! With `W`, differences are whole weeks, as `lifetimes` computes them; with `M`, whole calendar
//! months (`lifetimes` divides by numpy's 30.436875-day month on old pandas and fails on pandas ≥ 2,
//! so there is nothing to match there).

use serde::{Deserialize, Serialize};

use super::{check_amounts, ModelError};

/// The period that transactions are grouped into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Freq {
    /// Calendar day.
    #[default]
    #[serde(rename = "D", alias = "d", alias = "day")]
    Day,
    /// Monday-to-Sunday week.
    #[serde(rename = "W", alias = "w", alias = "week")]
    Week,
    /// Calendar month.
    #[serde(rename = "M", alias = "m", alias = "month")]
    Month,
}

impl Freq {
    /// The index of the period holding wall-clock second `t` (periods counted from 1970).
    pub fn period_of(self, t: i64) -> i64 {
        let day = t.div_euclid(86_400);
        match self {
            Freq::Day => day,
            // 1970-01-01 was a Thursday: day -3 is the Monday that starts week 0.
            Freq::Week => (day + 3).div_euclid(7),
            Freq::Month => {
                let (y, m, _) = civil_from_days(day);
                y * 12 + (m - 1)
            }
        }
    }

    /// Parse `"D"`, `"W"` or `"M"` (also `day`, `week`, `month`).
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidInput`] at `freq` for any other text.
    pub fn parse(s: &str) -> Result<Freq, ModelError> {
        match s.trim() {
            "D" | "d" | "day" => Ok(Freq::Day),
            "W" | "w" | "week" => Ok(Freq::Week),
            "M" | "m" | "month" => Ok(Freq::Month),
            other => Err(ModelError::invalid(
                "freq",
                format!("{other:?} is not a period: use \"D\", \"W\" or \"M\""),
            )),
        }
    }
}

/// Year, month (1–12), day (1–31) of a day count since 1970-01-01 (proleptic Gregorian;
/// H. Hinnant's algorithm, exact for every i64 day in range).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The summary, one row per customer, sorted by customer key. Columns are parallel vectors.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// The customer keys, ascending.
    pub customer: Vec<u64>,
    /// Repeat purchase periods.
    pub frequency: Vec<f64>,
    /// Age at the last purchase, in periods.
    pub recency: Vec<f64>,
    /// Age at the observation end, in periods.
    #[serde(rename = "T")]
    pub t: Vec<f64>,
    /// Mean value of the repeat purchase periods (0 without repeats).
    pub monetary_value: Vec<f64>,
}

impl Summary {
    /// Number of customers.
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    /// Whether there are no customers.
    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }
}

/// One purchase period of one customer: (customer, period, summed amount).
fn purchase_periods(
    customers: &[u64],
    times: &[i64],
    amounts: Option<&[f64]>,
    freq: Freq,
    last_period: i64,
) -> Vec<(u64, i64, f64)> {
    let mut rows: Vec<(u64, i64, f64)> = customers
        .iter()
        .zip(times)
        .enumerate()
        .filter_map(|(i, (&c, &t))| {
            let p = freq.period_of(t);
            (p <= last_period).then(|| (c, p, amounts.map_or(0.0, |a| a[i])))
        })
        .collect();
    // Stable: a period's amounts add up in table order, so a customer's sums do not depend on
    // where the other customers' rows are (a caller summing one group of customers at a time,
    // Spark, finds the same bits).
    rows.sort_by_key(|r| (r.0, r.1));
    let mut out: Vec<(u64, i64, f64)> = Vec::with_capacity(rows.len());
    for (c, p, a) in rows {
        match out.last_mut() {
            Some(last) if last.0 == c && last.1 == p => last.2 += a,
            _ => out.push((c, p, a)),
        }
    }
    out
}

fn check_columns(
    customers: &[u64],
    times: &[i64],
    amounts: Option<&[f64]>,
) -> Result<(), ModelError> {
    if customers.len() != times.len() {
        return Err(ModelError::invalid(
            "times",
            format!(
                "{} times for {} customers: columns must have equal length",
                times.len(),
                customers.len()
            ),
        ));
    }
    if let Some(a) = amounts {
        if a.len() != customers.len() {
            return Err(ModelError::invalid(
                "amounts",
                format!("{} amounts for {} customers", a.len(), customers.len()),
            ));
        }
        check_amounts("amounts", a)?;
    }
    Ok(())
}

/// Summarize transactions per customer (see the module docs for the exact definitions).
///
/// `times` are wall-clock seconds since 1970-01-01T00:00; `amounts` are optional (monetary
/// value is then 0). Errors on columns of unequal length, a NaN or negative amount.
///
/// ```
/// use userops::models::{summary_data, Freq};
/// let day = 86_400;
/// let s = summary_data(&[1, 1, 1, 2], &[0, 2 * day, 31 * day, 4 * day],
///     Some(&[1.0, 2.0, 3.0, 4.0]), Some(60 * day), Freq::Day).unwrap();
/// assert_eq!(s.frequency, vec![2.0, 0.0]);
/// assert_eq!(s.recency, vec![31.0, 0.0]);
/// assert_eq!(s.t, vec![60.0, 56.0]);
/// assert_eq!(s.monetary_value, vec![2.5, 0.0]);
/// ```
///
/// # Errors
///
/// [`ModelError::InvalidInput`]: columns of different lengths, or an amount that is not a
/// finite number ≥ 0.
pub fn summary_data(
    customers: &[u64],
    times: &[i64],
    amounts: Option<&[f64]>,
    observation_end: Option<i64>,
    freq: Freq,
) -> Result<Summary, ModelError> {
    check_columns(customers, times, amounts)?;
    let Some(end) = observation_end.or_else(|| times.iter().copied().max()) else {
        return Ok(Summary::default());
    };
    let end_period = freq.period_of(end);
    let periods = purchase_periods(customers, times, amounts, freq, end_period);
    let mut s = Summary::default();
    let mut i = 0;
    while i < periods.len() {
        let c = periods[i].0;
        let first = periods[i].1;
        let mut j = i + 1;
        let mut repeat_sum = 0.0;
        while j < periods.len() && periods[j].0 == c {
            repeat_sum += periods[j].2;
            j += 1;
        }
        let repeats = (j - i - 1) as f64;
        s.customer.push(c);
        s.frequency.push(repeats);
        s.recency.push((periods[j - 1].1 - first) as f64);
        s.t.push((end_period - first) as f64);
        s.monetary_value.push(if repeats > 0.0 {
            repeat_sum / repeats
        } else {
            0.0
        });
        i = j;
    }
    Ok(s)
}

/// A calibration summary plus what happened in the holdout that follows it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CalibrationHoldout {
    /// The summary over the calibration period (customers whose first purchase is in it).
    pub calibration: Summary,
    /// Distinct purchase periods in the holdout, per calibration customer.
    pub frequency_holdout: Vec<f64>,
    /// Mean amount of the holdout transactions (0 without any).
    pub monetary_value_holdout: Vec<f64>,
    /// Holdout length in periods (the same for every customer).
    pub duration_holdout: f64,
}

/// Split transactions at `calibration_end` exactly as `lifetimes`'
/// `calibration_and_holdout_data` does (it splits on timestamps, not periods):
/// - calibration = [`summary_data`] of the transactions with `time ≤ calibration_end`, observed
///   up to `calibration_end`;
/// - holdout = transactions with `calibration_end < time ≤ observation_end`:
///   `frequency_holdout` = distinct periods with a purchase, `monetary_value_holdout` = mean
///   amount of the holdout *transactions* (not of period sums), both 0 without any;
/// - `duration_holdout` = observation end period − calibration end period.
///
/// # Errors
///
/// As [`summary_data`]; also [`ModelError::InvalidInput`] when `observation_end` does not
/// come after `calibration_end`.
pub fn calibration_and_holdout(
    customers: &[u64],
    times: &[i64],
    amounts: Option<&[f64]>,
    calibration_end: i64,
    observation_end: i64,
    freq: Freq,
) -> Result<CalibrationHoldout, ModelError> {
    check_columns(customers, times, amounts)?;
    if observation_end <= calibration_end {
        return Err(ModelError::invalid(
            "observation_end",
            "must come after the calibration end",
        ));
    }
    let cal_rows: Vec<usize> = (0..times.len())
        .filter(|&i| times[i] <= calibration_end)
        .collect();
    let cal_c: Vec<u64> = cal_rows.iter().map(|&i| customers[i]).collect();
    let cal_t: Vec<i64> = cal_rows.iter().map(|&i| times[i]).collect();
    let cal_a: Option<Vec<f64>> = amounts.map(|a| cal_rows.iter().map(|&i| a[i]).collect());
    let calibration = summary_data(
        &cal_c,
        &cal_t,
        cal_a.as_deref(),
        Some(calibration_end),
        freq,
    )?;
    let mut periods: Vec<(usize, i64)> = Vec::new();
    let mut count = vec![0.0; calibration.len()];
    let mut sum = vec![0.0; calibration.len()];
    for i in (0..times.len()).filter(|&i| times[i] > calibration_end && times[i] <= observation_end)
    {
        if let Ok(k) = calibration.customer.binary_search(&customers[i]) {
            periods.push((k, freq.period_of(times[i])));
            count[k] += 1.0;
            sum[k] += amounts.map_or(0.0, |a| a[i]);
        }
    }
    periods.sort_unstable();
    periods.dedup();
    let mut frequency_holdout = vec![0.0; calibration.len()];
    for (k, _) in periods {
        frequency_holdout[k] += 1.0;
    }
    let monetary_value_holdout = count
        .iter()
        .zip(&sum)
        .map(|(&n, &s)| if n > 0.0 { s / n } else { 0.0 })
        .collect();
    Ok(CalibrationHoldout {
        calibration,
        frequency_holdout,
        monetary_value_holdout,
        duration_holdout: (freq.period_of(observation_end) - freq.period_of(calibration_end))
            as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn periods() {
        // 2020-01-01 is day 18262, a Wednesday; its week starts Monday 2019-12-30.
        let wed = 18_262 * DAY;
        assert_eq!(
            Freq::Week.period_of(wed),
            Freq::Week.period_of(wed - 2 * DAY)
        );
        assert_ne!(
            Freq::Week.period_of(wed),
            Freq::Week.period_of(wed - 3 * DAY)
        );
        assert_eq!(Freq::Month.period_of(wed), 2020 * 12);
        assert_eq!(Freq::Month.period_of(wed - 1), 2019 * 12 + 11);
        assert_eq!(Freq::Day.period_of(-1), -1);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(18_262 + 59), (2020, 2, 29));
        assert!(Freq::parse("Q").is_err());
    }

    /// freq "M" against lifetimes' definition computed by hand with chrono (lifetimes itself
    /// fails on freq="M" under pandas 3, so the Python cross-check covers D and W only).
    /// `summary_data_from_transaction_data` does, per customer: sum the amounts per calendar
    /// month (`to_period("M")`); frequency = months with a purchase − 1; recency = last month −
    /// first month; T = the observation end's month − first month; monetary = mean of the
    /// monthly sums after the first month (0 without repeats). Customers first seen after the
    /// end are dropped, and so are transactions after it.
    #[test]
    fn monthly_matches_lifetimes_definition_by_hand() {
        use chrono::{DateTime, Datelike};
        use std::collections::BTreeMap;
        let mut seed = 77u64;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % m
        };
        let start = 1_704_067_200i64; // 2024-01-01T00:00:00 (wall clock)
        let (mut c, mut t, mut a) = (vec![], vec![], vec![]);
        for _ in 0..3000 {
            c.push(next(400));
            // Over 16 months, to the second, so month ends and leap February are crossed.
            t.push(start + next(16 * 31 * DAY as u64) as i64);
            a.push(next(100_000) as f64 / 100.0);
        }
        let end = start + 365 * DAY + 12 * 3600; // 2024-12-31T12:00
        let month = |x: i64| {
            let d = DateTime::from_timestamp(x, 0).unwrap().date_naive();
            i64::from(d.year()) * 12 + i64::from(d.month0())
        };
        // customer → month → summed amount
        let mut by: BTreeMap<u64, BTreeMap<i64, f64>> = BTreeMap::new();
        for i in 0..c.len() {
            if month(t[i]) <= month(end) {
                *by.entry(c[i]).or_default().entry(month(t[i])).or_default() += a[i];
            }
        }
        let s = summary_data(&c, &t, Some(&a), Some(end), Freq::Month).unwrap();
        assert_eq!(s.customer, by.keys().copied().collect::<Vec<u64>>());
        for (i, (_, months)) in by.iter().enumerate() {
            let first = *months.keys().next().unwrap();
            let last = *months.keys().last().unwrap();
            let repeats: Vec<f64> = months.values().skip(1).copied().collect();
            assert_eq!(s.frequency[i], (months.len() - 1) as f64);
            assert_eq!(s.recency[i], (last - first) as f64);
            assert_eq!(s.t[i], (month(end) - first) as f64);
            let m = if repeats.is_empty() {
                0.0
            } else {
                repeats.iter().sum::<f64>() / repeats.len() as f64
            };
            assert!(
                (s.monetary_value[i] - m).abs() <= 1e-9 * m.abs().max(1.0),
                "{i}"
            );
        }
        assert!(s.frequency.iter().any(|f| *f >= 3.0));
    }

    #[test]
    fn weekly_matches_hand_count() {
        // lifetimes on the same data (freq="W", end 2020-03-01): frequency 1, recency 4, T 8.
        let d = |n: i64| (18_262 + n) * DAY; // days after 2020-01-01
        let s = summary_data(
            &[1, 1, 1, 2, 2],
            &[d(0), d(2), d(31), d(4), d(4)],
            Some(&[1.0, 2.0, 3.0, 4.0, 5.0]),
            Some(d(60)),
            Freq::Week,
        )
        .unwrap();
        assert_eq!(s.frequency, vec![1.0, 0.0]);
        assert_eq!(s.recency, vec![4.0, 0.0]);
        assert_eq!(s.t, vec![8.0, 8.0]);
        assert_eq!(s.monetary_value, vec![3.0, 0.0]);
    }

    #[test]
    fn truncation_and_bad_input() {
        let s = summary_data(
            &[1, 1, 2],
            &[0, 10 * DAY, 20 * DAY],
            None,
            Some(5 * DAY),
            Freq::Day,
        )
        .unwrap();
        assert_eq!(s.customer, vec![1]);
        assert_eq!(s.frequency, vec![0.0]);
        assert!(summary_data(&[1], &[0, 1], None, None, Freq::Day).is_err());
        assert!(summary_data(&[1], &[0], Some(&[-1.0]), None, Freq::Day).is_err());
        assert!(summary_data(&[1], &[0], Some(&[f64::NAN]), None, Freq::Day).is_err());
    }

    #[test]
    fn holdout() {
        let h = calibration_and_holdout(
            &[1, 1, 1, 2, 3],
            &[0, 3 * DAY, 12 * DAY, DAY, 11 * DAY],
            Some(&[1.0, 2.0, 6.0, 1.0, 1.0]),
            9 * DAY,
            19 * DAY,
            Freq::Day,
        )
        .unwrap();
        assert_eq!(h.calibration.customer, vec![1, 2]);
        assert_eq!(h.frequency_holdout, vec![1.0, 0.0]);
        assert_eq!(h.monetary_value_holdout, vec![6.0, 0.0]);
        assert_eq!(h.duration_holdout, 10.0);
    }
}
