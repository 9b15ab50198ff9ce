//! RFM value model: recency, frequency and monetary value per customer in a window as of a
//! date, quantile scores 1–5, and the eight classic segments.
//!
//! Definitions (times are wall-clock seconds in the business time zone):
//! - The window holds the orders with `as_of − window_days·86400 < time ≤ as_of` (all orders up
//!   to `as_of` without a window). Only customers with an order in the window are scored.
//! - `recency` = calendar day of `as_of` − calendar day of the customer's last order (whole days).
//! - `frequency` = number of orders; `monetary` = their sum (or mean, [`Monetary::Mean`]).
//! - **Quantile score** (1–5) of a value among the n scored customers:
//!   `1 + floor(5 · (k − 1) / n)`, where k is the value's rank with ties sharing the lowest rank
//!   (pandas `rank(method="min")`), ranking worse values first: for F and M larger is better,
//!   for R smaller is better. Tied customers always get the same score.
//! - **High/low**: F is high when frequency > the centre, M when monetary > the centre, R when
//!   recency < the centre (more recent than typical); the centre is the mean or the median
//!   (average of the two middle values for even n) over the scored customers.
//! - **Segment** from (R, F, M) high/low, see [`Segment`].

use serde::{Deserialize, Serialize};

use super::{check_amounts, ModelError};
use crate::progress::{Meter, NoProgress, Progress, CHUNK};

/// How monetary value aggregates a customer's orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Monetary {
    /// Sum of order amounts (default).
    #[default]
    Sum,
    /// Mean order amount.
    Mean,
}

/// The centre that splits high from low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Split {
    /// The mean over scored customers (default).
    #[default]
    Mean,
    /// The median over scored customers.
    Median,
}

/// The eight classic RFM segments (R, F, M each high ↑ or low ↓).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Segment {
    /// 重要价值: R↑ F↑ M↑.
    ImportantValue,
    /// 重要发展: R↑ F↓ M↑.
    ImportantDevelop,
    /// 重要保持: R↓ F↑ M↑.
    ImportantKeep,
    /// 重要挽留: R↓ F↓ M↑.
    ImportantWinBack,
    /// 一般价值: R↑ F↑ M↓.
    GeneralValue,
    /// 一般发展: R↑ F↓ M↓.
    GeneralDevelop,
    /// 一般保持: R↓ F↑ M↓.
    GeneralKeep,
    /// 一般挽留: R↓ F↓ M↓.
    GeneralWinBack,
}

impl Segment {
    /// The segment of a high/low triple.
    pub fn of(r_high: bool, f_high: bool, m_high: bool) -> Segment {
        match (m_high, r_high, f_high) {
            (true, true, true) => Segment::ImportantValue,
            (true, true, false) => Segment::ImportantDevelop,
            (true, false, true) => Segment::ImportantKeep,
            (true, false, false) => Segment::ImportantWinBack,
            (false, true, true) => Segment::GeneralValue,
            (false, true, false) => Segment::GeneralDevelop,
            (false, false, true) => Segment::GeneralKeep,
            (false, false, false) => Segment::GeneralWinBack,
        }
    }

    /// The tag value (`"important_value"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Segment::ImportantValue => "important_value",
            Segment::ImportantDevelop => "important_develop",
            Segment::ImportantKeep => "important_keep",
            Segment::ImportantWinBack => "important_win_back",
            Segment::GeneralValue => "general_value",
            Segment::GeneralDevelop => "general_develop",
            Segment::GeneralKeep => "general_keep",
            Segment::GeneralWinBack => "general_win_back",
        }
    }
}

/// RFM settings, built with [`RfmSpec::as_of`] and the setters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RfmSpec {
    /// The date the model is computed as of (wall-clock seconds).
    pub as_of: i64,
    /// Window length in days (`None`: every order up to `as_of`).
    pub window_days: Option<u32>,
    /// Sum or mean.
    pub monetary: Monetary,
    /// Mean or median split.
    pub split: Split,
}

impl RfmSpec {
    /// All orders up to `as_of`, monetary = sum, split at the mean.
    pub fn as_of(as_of: i64) -> RfmSpec {
        RfmSpec {
            as_of,
            window_days: None,
            monetary: Monetary::Sum,
            split: Split::Mean,
        }
    }

    /// Only orders in the last `days` days.
    pub fn window_days(mut self, days: u32) -> Self {
        self.window_days = Some(days);
        self
    }

    /// Sum or mean.
    pub fn monetary(mut self, m: Monetary) -> Self {
        self.monetary = m;
        self
    }

    /// Mean or median split.
    pub fn split(mut self, s: Split) -> Self {
        self.split = s;
        self
    }
}

/// RFM per customer, sorted by customer key; parallel columns.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Rfm {
    /// Customer keys, ascending.
    pub customer: Vec<u64>,
    /// Days since the last order.
    pub recency: Vec<i64>,
    /// Orders in the window.
    pub frequency: Vec<u64>,
    /// Sum (or mean) of order amounts.
    pub monetary: Vec<f64>,
    /// Quantile scores 1–5.
    pub r_score: Vec<u8>,
    /// Quantile scores 1–5.
    pub f_score: Vec<u8>,
    /// Quantile scores 1–5.
    pub m_score: Vec<u8>,
    /// The segment per customer (what the `rfm` model tag holds).
    pub segment: Vec<Segment>,
}

/// Quantile scores 1–5 (see the module docs); `better_is_larger` orients the ranking.
pub fn quantile_scores(values: &[f64], better_is_larger: bool) -> Vec<u8> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    let key = |i: usize| {
        if better_is_larger {
            values[i]
        } else {
            -values[i]
        }
    };
    order.sort_by(|&a, &b| key(a).total_cmp(&key(b)));
    let mut scores = vec![0u8; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && key(order[j + 1]) == key(order[i]) {
            j += 1;
        }
        // rank(method="min") − 1 = i for the whole tie group.
        let s = 1 + (5 * i) / n;
        for &k in &order[i..=j] {
            scores[k] = s as u8;
        }
        i = j + 1;
    }
    scores
}

fn centre(values: &[f64], split: Split) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    match split {
        // The correctly rounded sum, so the centre does not depend on the customers' order and
        // a caller that sums exactly over parts of the customers (Spark) finds the same bits.
        Split::Mean => fsum::FSum::with_all(values).value() / values.len() as f64,
        Split::Median => {
            let mut v = values.to_vec();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        }
    }
}

/// What scoring a customer needs from all the others: per measure (recency, frequency,
/// monetary) the four cut points of the quantile scores and the centre of high/low.
///
/// A value's score `1 + floor(5·(k−1)/n)` (module docs) is `1 + #{s ∈ 2..=5 : the value is
/// strictly better than cut t_s}`, where t_s is the value at 0-based position
/// `ceil((s−1)·n/5) − 1` of the customers ranked worse first ([`RfmScale::cut_positions`]).
/// So the scores of n customers need only these four order statistics per measure, which a
/// caller holding the customers in parts (Spark executors) can find without gathering them.
///
/// ```
/// use userops::models::{RfmScale, Segment, Split};
/// // Five customers: recency in days, orders, amount.
/// let scale = RfmScale::of(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 4.0, 3.0, 2.0, 1.0],
///                          &[50.0, 40.0, 30.0, 20.0, 10.0], Split::Mean);
/// assert_eq!(RfmScale::cut_positions(5), [0, 1, 2, 3]);
/// assert_eq!(scale.cuts[0], [5.0, 4.0, 3.0, 2.0], "recency: larger is worse");
/// assert_eq!(scale.score(1.0, 5.0, 50.0), (5, 5, 5, Segment::ImportantValue));
/// assert_eq!(scale.score(3.0, 3.0, 30.0), (3, 3, 3, Segment::GeneralWinBack));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RfmScale {
    /// Per measure (recency, frequency, monetary): t_2, t_3, t_4, t_5.
    pub cuts: [[f64; 4]; 3],
    /// Per measure: the centre (mean or median over the scored customers).
    pub centres: [f64; 3],
}

impl RfmScale {
    /// The 0-based positions, in worse-first order, of the cut points t_2..t_5 among `n`
    /// customers: `ceil((s−1)·n/5) − 1` (0 for `n = 0`).
    pub fn cut_positions(n: u64) -> [u64; 4] {
        [1u64, 2, 3, 4].map(|s| (s * n).div_ceil(5).saturating_sub(1))
    }

    /// The scale of the customers whose values these are (parallel slices).
    pub fn of(recency: &[f64], frequency: &[f64], monetary: &[f64], split: Split) -> RfmScale {
        let cuts = |values: &[f64], better_is_larger: bool| -> [f64; 4] {
            let mut v = values.to_vec();
            if better_is_larger {
                v.sort_by(f64::total_cmp);
            } else {
                v.sort_by(|a, b| b.total_cmp(a));
            }
            RfmScale::cut_positions(v.len() as u64)
                .map(|p| v.get(p as usize).copied().unwrap_or(0.0))
        };
        RfmScale {
            cuts: [
                cuts(recency, false),
                cuts(frequency, true),
                cuts(monetary, true),
            ],
            centres: [
                centre(recency, split),
                centre(frequency, split),
                centre(monetary, split),
            ],
        }
    }

    /// Scores and segment of one customer.
    pub fn score(&self, recency: f64, frequency: f64, monetary: f64) -> (u8, u8, u8, Segment) {
        let score = |cuts: &[f64; 4], better: &dyn Fn(f64) -> bool| {
            1 + cuts.iter().filter(|&&t| better(t)).count() as u8
        };
        (
            score(&self.cuts[0], &|t| recency < t),
            score(&self.cuts[1], &|t| frequency > t),
            score(&self.cuts[2], &|t| monetary > t),
            Segment::of(
                recency < self.centres[0],
                frequency > self.centres[1],
                monetary > self.centres[2],
            ),
        )
    }
}

/// Compute RFM over orders given as parallel columns (customer, wall-clock time, amount).
///
/// ```
/// use userops::models::{rfm, RfmSpec, Segment};
/// let day = 86_400;
/// let out = rfm(&[1, 1, 2, 3], &[9 * day, 10 * day, day, 10 * day], &[50.0, 50.0, 10.0, 5.0],
///     &RfmSpec::as_of(10 * day)).unwrap();
/// assert_eq!(out.recency, vec![0, 9, 0]);
/// assert_eq!(out.segment[0], Segment::ImportantValue);
/// assert_eq!(out.segment[1], Segment::GeneralWinBack);
/// ```
///
/// # Errors
///
/// [`ModelError::InvalidInput`]: columns of different lengths, or an amount that is not a
/// finite number ≥ 0.
pub fn rfm(
    customers: &[u64],
    times: &[i64],
    amounts: &[f64],
    spec: &RfmSpec,
) -> Result<Rfm, ModelError> {
    rfm_with_progress(customers, times, amounts, spec, &mut NoProgress)
}

/// [`rfm`], reporting to `progress` (see [`crate::progress`]) in orders aggregated (`total` is
/// the number of orders; the scoring after the last report is one sort per score). Stops with
/// [`ModelError::Interrupted`] when the hook says so.
///
/// # Errors
///
/// As [`rfm`]; [`ModelError::Interrupted`] when the hook stops it.
pub fn rfm_with_progress(
    customers: &[u64],
    times: &[i64],
    amounts: &[f64],
    spec: &RfmSpec,
    progress: &mut dyn Progress,
) -> Result<Rfm, ModelError> {
    let mut meter = Meter::new(progress, customers.len() as u64);
    if customers.len() != times.len() || customers.len() != amounts.len() {
        return Err(ModelError::invalid(
            "times",
            "customers, times and amounts must have equal length",
        ));
    }
    check_amounts("amounts", amounts)?;
    let start = spec
        .window_days
        .map(|d| spec.as_of.saturating_sub(i64::from(d) * 86_400));
    let inside = |t: i64| t <= spec.as_of && start.is_none_or(|s| t > s);
    // Per customer: (last order time, orders, amount sum). Dense keys (the common case: the
    // bindings pass 0..k) aggregate into arrays in one pass; sparse keys go through a sort.
    let max_key = customers.iter().copied().max().unwrap_or(0);
    let mut agg: Vec<(u64, i64, u64, f64)> = Vec::new();
    if max_key < 4 * customers.len() as u64 + 1024 {
        let k = max_key as usize + 1;
        let (mut last, mut n, mut sum) = (vec![i64::MIN; k], vec![0u64; k], vec![0.0; k]);
        for start in (0..customers.len()).step_by(CHUNK) {
            let end = (start + CHUNK).min(customers.len());
            for i in (start..end).filter(|&i| inside(times[i])) {
                let c = customers[i] as usize;
                last[c] = last[c].max(times[i]);
                n[c] += 1;
                sum[c] += amounts[i];
            }
            meter.at(end as u64)?;
        }
        agg.extend(
            (0..k)
                .filter(|&c| n[c] > 0)
                .map(|c| (c as u64, last[c], n[c], sum[c])),
        );
    } else {
        let mut rows: Vec<(u64, i64, f64)> = Vec::new();
        for start in (0..customers.len()).step_by(CHUNK) {
            let end = (start + CHUNK).min(customers.len());
            rows.extend(
                (start..end)
                    .filter(|&i| inside(times[i]))
                    .map(|i| (customers[i], times[i], amounts[i])),
            );
            meter.at(end as u64)?;
        }
        // Stable: a customer's amounts add up in table order, as on the dense path.
        rows.sort_by_key(|r| r.0);
        for (c, t, a) in rows {
            match agg.last_mut() {
                Some(g) if g.0 == c => {
                    g.1 = g.1.max(t);
                    g.2 += 1;
                    g.3 += a;
                }
                _ => agg.push((c, t, 1, a)),
            }
        }
    }
    let as_of_day = spec.as_of.div_euclid(86_400);
    let mut out = Rfm::default();
    for (c, last, n, sum) in agg {
        out.customer.push(c);
        out.recency.push(as_of_day - last.div_euclid(86_400));
        out.frequency.push(n);
        out.monetary.push(match spec.monetary {
            Monetary::Sum => sum,
            Monetary::Mean => sum / n as f64,
        });
    }
    let r: Vec<f64> = out.recency.iter().map(|&v| v as f64).collect();
    let f: Vec<f64> = out.frequency.iter().map(|&v| v as f64).collect();
    let scale = RfmScale::of(&r, &f, &out.monetary, spec.split);
    for k in 0..out.customer.len() {
        let (rs, fs, ms, segment) = scale.score(r[k], f[k], out.monetary[k]);
        out.r_score.push(rs);
        out.f_score.push(fs);
        out.m_score.push(ms);
        out.segment.push(segment);
    }
    meter.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn quantile_scores_with_ties() {
        // rank(min): [1, 2, 2, 4, 5, 6, 7, 8, 9, 10] → 1 + floor(5(k−1)/10)
        let v = [1.0, 2.0, 2.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(
            quantile_scores(&v, true),
            vec![1, 1, 1, 2, 3, 3, 4, 4, 5, 5]
        );
        assert_eq!(
            quantile_scores(&v, false),
            vec![5, 4, 4, 4, 3, 3, 2, 2, 1, 1]
        );
        assert_eq!(quantile_scores(&[3.0; 4], true), vec![1; 4]);
        assert!(quantile_scores(&[], true).is_empty());
    }

    /// Eight hand-made customers, one per segment. Centres (mean): recency 12.5 days,
    /// frequency 2.5 orders, monetary 310.
    #[test]
    fn the_eight_segments_on_hand_made_data() {
        let as_of = 100 * DAY;
        let mut c = vec![];
        let mut t = vec![];
        let mut a = vec![];
        // (customer, days before as_of of the last order, orders, amount per order)
        let people = [
            (1, 0, 4, 200.0),  // R↑ F↑ M↑ (800)
            (2, 0, 1, 500.0),  // R↑ F↓ M↑ (500)
            (3, 25, 4, 150.0), // R↓ F↑ M↑ (600)
            (4, 25, 1, 400.0), // R↓ F↓ M↑ (400)
            (5, 0, 4, 10.0),   // R↑ F↑ M↓ (40)
            (6, 0, 1, 50.0),   // R↑ F↓ M↓ (50)
            (7, 25, 4, 10.0),  // R↓ F↑ M↓ (40)
            (8, 25, 1, 50.0),  // R↓ F↓ M↓ (50)
        ];
        for (id, ago, n, amt) in people {
            for k in 0..n {
                c.push(id);
                t.push(as_of - (ago + k) * DAY);
                a.push(amt);
            }
        }
        let out = rfm(&c, &t, &a, &RfmSpec::as_of(as_of)).unwrap();
        use Segment::*;
        assert_eq!(
            out.segment,
            vec![
                ImportantValue,
                ImportantDevelop,
                ImportantKeep,
                ImportantWinBack,
                GeneralValue,
                GeneralDevelop,
                GeneralKeep,
                GeneralWinBack
            ]
        );
        assert_eq!(out.frequency, vec![4, 1, 4, 1, 4, 1, 4, 1]);
        // Four tied at 0 days share rank 5 of 8: 1 + floor(5·4/8) = 3.
        assert_eq!(out.r_score, vec![3, 3, 1, 1, 3, 3, 1, 1]);
        // A 10-day window keeps only the recent orders: customer 3, 4, 7, 8 drop out.
        let w = rfm(&c, &t, &a, &RfmSpec::as_of(as_of).window_days(10)).unwrap();
        assert_eq!(w.customer, vec![1, 2, 5, 6]);
        let m = rfm(&c, &t, &a, &RfmSpec::as_of(as_of).monetary(Monetary::Mean)).unwrap();
        assert_eq!(m.monetary[0], 200.0);
        let med = rfm(&c, &t, &a, &RfmSpec::as_of(as_of).split(Split::Median)).unwrap();
        assert_eq!(med.segment.len(), 8);
    }

    #[test]
    fn sparse_and_dense_keys_agree() {
        let t = [5 * DAY, 2 * DAY, 3 * DAY, 9 * DAY];
        let a = [1.0, 2.0, 3.0, 4.0];
        let dense = rfm(&[0, 1, 0, 2], &t, &a, &RfmSpec::as_of(10 * DAY)).unwrap();
        let big = 1u64 << 60;
        let sparse = rfm(
            &[big, big + 1, big, big + 2],
            &t,
            &a,
            &RfmSpec::as_of(10 * DAY),
        )
        .unwrap();
        assert_eq!(sparse.customer, vec![big, big + 1, big + 2]);
        assert_eq!(
            (dense.recency, dense.frequency, dense.monetary),
            (sparse.recency, sparse.frequency, sparse.monetary)
        );
        assert_eq!(dense.segment, sparse.segment);
    }

    proptest::proptest! {
        /// The cut points give the scores of the rank definition, ties and all.
        #[test]
        fn scale_scores_equal_rank_scores(
            v in proptest::collection::vec((0u8..12, 1u8..6, 0u16..400), 0..60),
            median in proptest::bool::ANY,
        ) {
            let r: Vec<f64> = v.iter().map(|x| f64::from(x.0)).collect();
            let f: Vec<f64> = v.iter().map(|x| f64::from(x.1)).collect();
            let m: Vec<f64> = v.iter().map(|x| f64::from(x.2) / 8.0).collect();
            let split = if median { Split::Median } else { Split::Mean };
            let scale = RfmScale::of(&r, &f, &m, split);
            let (rs, fs, ms) = (quantile_scores(&r, false), quantile_scores(&f, true), quantile_scores(&m, true));
            for k in 0..v.len() {
                let (a, b, c, _) = scale.score(r[k], f[k], m[k]);
                proptest::prop_assert_eq!((a, b, c), (rs[k], fs[k], ms[k]));
            }
        }
    }

    #[test]
    fn mean_centre_is_the_correctly_rounded_sum() {
        // Left to right, 0.1 ten times sums to 0.9999999999999999.
        let v = [0.1; 10];
        assert_eq!(centre(&v, Split::Mean), 0.1);
        let mut rev = vec![1e16, 1.0, -1e16, 3.0];
        let forward = centre(&rev, Split::Mean);
        rev.reverse();
        assert_eq!(centre(&rev, Split::Mean), forward);
        assert_eq!(forward, 1.0);
    }

    #[test]
    fn bad_input() {
        assert!(rfm(&[1], &[0], &[-1.0], &RfmSpec::as_of(0)).is_err());
        assert!(rfm(&[1], &[0], &[f64::NAN], &RfmSpec::as_of(0)).is_err());
        assert!(rfm(&[1, 2], &[0], &[1.0], &RfmSpec::as_of(0)).is_err());
    }

    #[test]
    fn progress_reaches_the_order_count_and_stops_when_asked() {
        use std::ops::ControlFlow;
        for spread in [1u64, 1 << 40] {
            let n = 200_000usize;
            let c: Vec<u64> = (0..n as u64).map(|i| (i % 5_000) * spread).collect();
            let t: Vec<i64> = (0..n as i64).map(|i| (i % 90) * DAY).collect();
            let a: Vec<f64> = (0..n).map(|i| (i % 13) as f64).collect();
            let spec = RfmSpec::as_of(100 * DAY);
            let plain = rfm(&c, &t, &a, &spec).unwrap();
            let mut seen = Vec::new();
            let mut hook = |d: u64, total: u64| {
                seen.push((d, total));
                ControlFlow::Continue(())
            };
            assert_eq!(
                rfm_with_progress(&c, &t, &a, &spec, &mut hook).unwrap(),
                plain
            );
            assert!(seen.len() >= 3);
            assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0));
            assert_eq!(seen.last(), Some(&(n as u64, n as u64)));
            let mut stop = |_: u64, _: u64| ControlFlow::Break(());
            assert_eq!(
                rfm_with_progress(&c, &t, &a, &spec, &mut stop),
                Err(ModelError::Interrupted)
            );
        }
    }
}
