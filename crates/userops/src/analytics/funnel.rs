//! Ordered funnels within a conversion window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ratio, AnalyticsError, EventTable};

/// One step of a funnel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    /// The step's event name.
    pub step: String,
    /// Users who reached this step (in order, within the window).
    pub users: u64,
    /// `users / users of the previous step` (`None` for the first step or an empty previous).
    pub from_previous: Option<f64>,
    /// `users / users of the first step`.
    pub from_first: Option<f64>,
    /// Users of the previous step who did not reach this one (0 for the first step).
    pub drop_off: u64,
}

/// A funnel, overall and per segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelReport {
    /// The steps, in order.
    pub steps: Vec<FunnelStep>,
    /// Per segment value, when a breakdown was asked for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub segments: BTreeMap<String, Vec<FunnelStep>>,
}

/// The furthest step (1-based; 0 = never did the first step) each user reached: steps in order,
/// each after the previous (ties in time count in row order), all within `window_ms` of the
/// first step, inclusive (`t_k − t_0 ≤ window_ms`). Users ascending.
///
/// Keeps, for each level, the latest start that reached it: a later start leaves more of the
/// window for the steps still to come, so it dominates (the windowFunnel algorithm).
///
/// # Errors
///
/// [`AnalyticsError::LengthMismatch`], [`AnalyticsError::BadCode`] or
/// [`AnalyticsError::TimeOutOfRange`] for an event table that does not check;
/// [`AnalyticsError::BadArgument`] for no step or a negative window;
/// [`AnalyticsError::UnknownStep`] for a step no event of the data has.
pub fn funnel_levels(
    table: EventTable<'_>,
    steps: &[&str],
    window_ms: i64,
) -> Result<Vec<(u64, usize)>, AnalyticsError> {
    table.check("events")?;
    if steps.is_empty() {
        return Err(AnalyticsError::BadArgument {
            field: "steps",
            reason: "a funnel needs at least one step".into(),
        });
    }
    if window_ms < 0 {
        return Err(AnalyticsError::BadArgument {
            field: "window",
            reason: format!("the conversion window must be ≥ 0, got {window_ms} ms"),
        });
    }
    let codes: Vec<u32> = steps
        .iter()
        .map(|s| table.code(s))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    let mut start: Vec<Option<i64>> = vec![None; steps.len()];
    for (user, rows) in table.by_user() {
        start.iter_mut().for_each(|s| *s = None);
        let mut best = 0;
        for &i in &rows {
            let (t, e) = (table.time[i], table.event[i]);
            // Highest level first, so one event never serves two consecutive steps.
            for k in (0..codes.len()).rev() {
                if codes[k] != e {
                    continue;
                }
                if k == 0 {
                    start[0] = Some(t);
                } else if let Some(s) = start[k - 1] {
                    if t - s <= window_ms {
                        start[k] = Some(start[k].map_or(s, |x| x.max(s)));
                    }
                }
                if start[k].is_some() {
                    best = best.max(k + 1);
                }
            }
        }
        out.push((user, best));
    }
    Ok(out)
}

pub(crate) fn steps_of(names: &[&str], levels: impl Iterator<Item = usize>) -> Vec<FunnelStep> {
    let mut reached = vec![0u64; names.len()];
    for l in levels {
        for r in reached.iter_mut().take(l) {
            *r += 1;
        }
    }
    names
        .iter()
        .enumerate()
        .map(|(k, name)| FunnelStep {
            step: (*name).to_owned(),
            users: reached[k],
            from_previous: if k == 0 {
                None
            } else {
                ratio(reached[k], reached[k - 1])
            },
            from_first: ratio(reached[k], reached[0]),
            drop_off: if k == 0 {
                0
            } else {
                reached[k - 1] - reached[k]
            },
        })
        .collect()
}

/// A funnel over an event table. `segment_of(user)` puts each user in a segment (a tag value)
/// for the breakdown; `None` for no breakdown. The window is inclusive: a step exactly
/// `window_ms` after the first still counts.
///
/// ```
/// use userops::analytics::{funnel, EventTable};
/// let names = ["view".to_string(), "cart".to_string(), "pay".to_string()];
/// let t = EventTable { user: &[1, 1, 1, 2, 2], time: &[0, 10, 20, 0, 5],
///     event: &[0, 1, 2, 0, 2], names: &names };
/// let none = None::<fn(u64) -> Option<String>>;
/// let f = funnel(t, &["view", "cart", "pay"], 60_000, none).unwrap();
/// assert_eq!(f.steps.iter().map(|s| s.users).collect::<Vec<_>>(), [2, 1, 1]);
/// // User 1 pays 20 ms after viewing: inside a 20 ms window, not a 19 ms one.
/// let users = |w| funnel(t, &["view", "cart", "pay"], w, none).unwrap().steps[2].users;
/// assert_eq!((users(20), users(19)), (1, 0));
/// ```
///
/// # Errors
///
/// As [`funnel_levels`].
pub fn funnel<F>(
    table: EventTable<'_>,
    steps: &[&str],
    window_ms: i64,
    segment_of: Option<F>,
) -> Result<FunnelReport, AnalyticsError>
where
    F: Fn(u64) -> Option<String>,
{
    let levels = funnel_levels(table, steps, window_ms)?;
    let mut segments = BTreeMap::new();
    if let Some(seg) = segment_of {
        let mut by: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for &(u, l) in &levels {
            if let Some(s) = seg(u) {
                by.entry(s).or_default().push(l);
            }
        }
        for (s, ls) in by {
            segments.insert(s, steps_of(steps, ls.into_iter()));
        }
    }
    Ok(FunnelReport {
        steps: steps_of(steps, levels.iter().map(|l| l.1)),
        segments,
    })
}
