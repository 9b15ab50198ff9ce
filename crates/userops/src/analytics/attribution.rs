//! Attribution of conversions to the touches before them.

use std::collections::BTreeMap;

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{check_times, group_rows, AnalyticsError, EventTable};

/// How a conversion's credit is shared among the touches before it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "model")]
#[non_exhaustive]
pub enum AttributionModel {
    /// All credit to the first touch.
    FirstTouch,
    /// All credit to the last touch.
    LastTouch,
    /// Equal shares.
    Linear,
    /// Weights halving every `half_life_hours` before the conversion.
    TimeDecay {
        /// The half-life in hours (> 0).
        half_life_hours: f64,
    },
    /// 40% first, 40% last, 20% shared by the touches between (one touch: 100%; two: 50/50).
    PositionBased,
}

impl AttributionModel {
    /// The weights of `n` touches at `ages_ms` before the conversion (oldest first); they sum
    /// to 1.
    fn weights(&self, ages_ms: &[i64]) -> Vec<f64> {
        let n = ages_ms.len();
        let mut w = vec![0.0; n];
        match *self {
            AttributionModel::FirstTouch => w[0] = 1.0,
            AttributionModel::LastTouch => w[n - 1] = 1.0,
            AttributionModel::Linear => w.iter_mut().for_each(|x| *x = 1.0 / n as f64),
            AttributionModel::TimeDecay { half_life_hours } => {
                let h = half_life_hours * 3_600_000.0;
                for (x, &a) in w.iter_mut().zip(ages_ms) {
                    *x = (-(a as f64) / h).exp2();
                }
                let s: f64 = w.iter().sum();
                w.iter_mut().for_each(|x| *x /= s);
            }
            AttributionModel::PositionBased => match n {
                1 => w[0] = 1.0,
                2 => {
                    w[0] = 0.5;
                    w[1] = 0.5;
                }
                _ => {
                    let mid = 0.2 / (n - 2) as f64;
                    w.iter_mut().for_each(|x| *x = mid);
                    w[0] = 0.4;
                    w[n - 1] = 0.4;
                }
            },
        }
        w
    }
}

/// Conversions as columns: `user[i]` converted at `time[i]` for `value[i]` (money; 0 when no
/// value column is given).
#[derive(Debug, Clone, Copy)]
pub struct Conversions<'a> {
    /// User ids.
    pub user: &'a [u64],
    /// Times, ms UTC.
    pub time: &'a [i64],
    /// Values (money), or `None`.
    pub value: Option<&'a [Decimal]>,
}

/// The credit of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelCredit {
    /// The channel's name (a touch event's name).
    pub channel: String,
    /// Conversions credited (fractional; the shares of one conversion sum to 1).
    pub conversions: f64,
    /// Value credited, split in the conversion value's own units (cents for `99.00`), the
    /// last touch taking the remainder: the shares of one conversion sum to it exactly.
    #[serde(with = "rust_decimal::serde::str")]
    pub value: Decimal,
    /// Touches of this channel that received credit.
    pub touches: u64,
}

/// The result of [`attribute`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionReport {
    /// How each conversion's credit was shared among its touches.
    pub model: AttributionModel,
    /// Conversions in the input.
    pub conversions: u64,
    /// Conversions with at least one touch in the lookback window.
    pub attributed: u64,
    /// Value of the conversions with no touch.
    #[serde(with = "rust_decimal::serde::str")]
    pub unattributed_value: Decimal,
    /// Per channel, by credited conversions descending.
    pub channels: Vec<ChannelCredit>,
}

/// Attribute each conversion to the user's touches in the `lookback_ms` before it (a touch at
/// the conversion's own time counts). A conversion's value is split in its own units (cents
/// for `100.00`), each share rounded half to even, the last touch in time order taking the
/// remainder, so the shares add up to the value exactly.
///
/// ```
/// use rust_decimal::Decimal;
/// use userops::analytics::{attribute, AttributionModel, Conversions, EventTable};
/// let ch = ["sms".to_string(), "push".to_string(), "app".to_string()];
/// let touches = EventTable { user: &[1, 1], time: &[0, 10], event: &[0, 1], names: &ch };
/// let conv = Conversions { user: &[1], time: &[20], value: None };
/// let r = attribute(touches, conv, AttributionModel::Linear, 1_000).unwrap();
/// assert_eq!(r.channels.iter().map(|c| c.conversions).collect::<Vec<_>>(), [0.5, 0.5]);
/// // 100.00 over three touches: 33.33 + 33.33 + 33.34, the last (app) taking the remainder.
/// let touches = EventTable { user: &[1, 1, 1], time: &[0, 5, 10], event: &[0, 1, 2], names: &ch };
/// let value = [Decimal::new(10000, 2)];
/// let conv = Conversions { user: &[1], time: &[20], value: Some(&value) };
/// let r = attribute(touches, conv, AttributionModel::Linear, 1_000).unwrap();
/// let by: Vec<(&str, String)> =
///     r.channels.iter().map(|c| (c.channel.as_str(), c.value.to_string())).collect();
/// assert_eq!(by, [("app", "33.34".to_string()), ("push", "33.33".into()), ("sms", "33.33".into())]);
/// ```
///
/// # Errors
///
/// [`AnalyticsError::LengthMismatch`], [`AnalyticsError::BadCode`] or
/// [`AnalyticsError::TimeOutOfRange`] for touches or conversions that do not check (columns of
/// different lengths, a code outside `names`, a time outside ±10 000 years);
/// [`AnalyticsError::BadArgument`] for a negative lookback or a half-life not above 0.
pub fn attribute(
    touches: EventTable<'_>,
    conversions: Conversions<'_>,
    model: AttributionModel,
    lookback_ms: i64,
) -> Result<AttributionReport, AnalyticsError> {
    touches.check("touches")?;
    let n = conversions.user.len();
    if conversions.time.len() != n {
        return Err(AnalyticsError::LengthMismatch {
            what: "conversions",
            a: n,
            b: conversions.time.len(),
        });
    }
    if let Some(v) = conversions.value {
        if v.len() != n {
            return Err(AnalyticsError::LengthMismatch {
                what: "conversions",
                a: n,
                b: v.len(),
            });
        }
    }
    check_times(conversions.time)?;
    if lookback_ms < 0 {
        return Err(AnalyticsError::BadArgument {
            field: "lookback",
            reason: "the lookback window must be ≥ 0".into(),
        });
    }
    if let AttributionModel::TimeDecay { half_life_hours } = model {
        if !(half_life_hours.is_finite() && half_life_hours > 0.0) {
            return Err(AnalyticsError::BadArgument {
                field: "half_life_hours",
                reason: format!("the half-life must be > 0 hours, got {half_life_hours}"),
            });
        }
    }
    let by_user: BTreeMap<u64, Vec<usize>> =
        group_rows(touches.user, touches.time).into_iter().collect();
    let mut conv = vec![0.0f64; touches.names.len()];
    let mut value = vec![Decimal::ZERO; touches.names.len()];
    let mut credited = vec![0u64; touches.names.len()];
    let mut attributed = 0;
    let mut unattributed_value = Decimal::ZERO;
    for i in 0..n {
        let (u, t) = (conversions.user[i], conversions.time[i]);
        let v = conversions.value.map_or(Decimal::ZERO, |v| v[i]);
        let rows = by_user.get(&u).map(Vec::as_slice).unwrap_or(&[]);
        let lo = rows.partition_point(|&r| touches.time[r] < t.saturating_sub(lookback_ms));
        let hi = rows.partition_point(|&r| touches.time[r] <= t);
        let eligible = &rows[lo..hi.max(lo)];
        if eligible.is_empty() {
            unattributed_value += v;
            continue;
        }
        attributed += 1;
        let ages: Vec<i64> = eligible.iter().map(|&r| t - touches.time[r]).collect();
        let w = model.weights(&ages);
        let mut given = Decimal::ZERO;
        for (k, (&r, &wk)) in eligible.iter().zip(&w).enumerate() {
            let ch = touches.event[r] as usize;
            conv[ch] += wk;
            if wk > 0.0 {
                credited[ch] += 1;
            }
            // The last share takes the remainder, so a conversion's value is split exactly.
            let share = if k + 1 == eligible.len() {
                v - given
            } else {
                (v * Decimal::from_f64(wk).unwrap_or(Decimal::ZERO)).round_dp(v.scale())
            };
            given += share;
            value[ch] += share;
        }
    }
    let mut channels: Vec<ChannelCredit> = touches
        .names
        .iter()
        .enumerate()
        .filter(|(c, _)| credited[*c] > 0)
        .map(|(c, name)| ChannelCredit {
            channel: name.clone(),
            conversions: conv[c],
            value: value[c],
            touches: credited[c],
        })
        .collect();
    channels.sort_by(|a, b| {
        b.conversions
            .total_cmp(&a.conversions)
            .then(a.channel.cmp(&b.channel))
    });
    Ok(AttributionReport {
        model,
        conversions: n as u64,
        attributed,
        unattributed_value,
        channels,
    })
}
