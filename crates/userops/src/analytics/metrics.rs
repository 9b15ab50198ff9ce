//! Metric trees (a metric as the sum of its parts) and data warnings (a metric outside its
//! expected band).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{AnalyticsError, RepurchaseReport};

/// A metric and the parts it is the sum of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricNode {
    /// The metric's name.
    pub name: String,
    /// Its value; a node made by [`MetricNode::sum`] holds the sum of its children's.
    #[serde(with = "rust_decimal::serde::str")]
    pub value: Decimal,
    /// Its parts; empty for a leaf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<MetricNode>,
}

impl MetricNode {
    /// A node without children.
    pub fn leaf(name: impl Into<String>, value: Decimal) -> MetricNode {
        MetricNode {
            name: name.into(),
            value,
            children: Vec::new(),
        }
    }

    /// A node that is the sum of `children` (the value is computed, so the identity holds).
    /// Children whose sum does not fit a `Decimal` give `Decimal::MAX`, which
    /// [`MetricNode::is_consistent`] then reports (amounts the intake accepts never get there).
    pub fn sum(name: impl Into<String>, children: Vec<MetricNode>) -> MetricNode {
        MetricNode {
            name: name.into(),
            value: sum_of(&children).unwrap_or(Decimal::MAX),
            children,
        }
    }

    /// Replace the leaf `name` by a sum of parts (extend the tree); an error when there is no
    /// such leaf or the parts do not add up to its value.
    ///
    /// # Errors
    ///
    /// [`AnalyticsError::BadArgument`] when no metric of the tree is named `name`, it is not a
    /// leaf, or the parts do not add up to its value; [`AnalyticsError::Overflow`] when their
    /// sum overflows. The tree is left as it was.
    pub fn split(&mut self, name: &str, parts: Vec<MetricNode>) -> Result<(), AnalyticsError> {
        let node = self
            .find_mut(name)
            .ok_or_else(|| AnalyticsError::BadArgument {
                field: "name",
                reason: format!("no metric {name:?} in the tree"),
            })?;
        let total = sum_of(&parts).ok_or(AnalyticsError::Overflow { field: "parts" })?;
        if total != node.value || !node.children.is_empty() {
            return Err(AnalyticsError::BadArgument {
                field: "parts",
                reason: format!("{name} is {} but its parts sum to {total}", node.value),
            });
        }
        node.children = parts;
        Ok(())
    }

    fn find_mut(&mut self, name: &str) -> Option<&mut MetricNode> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter_mut().find_map(|c| c.find_mut(name))
    }

    /// Whether every node equals the sum of its children.
    pub fn is_consistent(&self) -> bool {
        self.children.is_empty()
            || (sum_of(&self.children) == Some(self.value)
                && self.children.iter().all(MetricNode::is_consistent))
    }
}

/// The sum of the nodes' values, `None` when it overflows.
fn sum_of(nodes: &[MetricNode]) -> Option<Decimal> {
    nodes
        .iter()
        .try_fold(Decimal::ZERO, |a, c| a.checked_add(c.value))
}

/// GMV = first-order GMV + repurchase GMV, per period of a repurchase report.
pub fn gmv_tree(report: &RepurchaseReport) -> Vec<(String, MetricNode)> {
    report
        .periods
        .iter()
        .map(|p| {
            (
                p.period.clone(),
                MetricNode::sum(
                    "gmv",
                    vec![
                        MetricNode::leaf("first_order_gmv", p.first_order_gmv),
                        MetricNode::leaf("repurchase_gmv", p.repurchase_gmv),
                    ],
                ),
            )
        })
        .collect()
}

/// How the expected band of a metric is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
#[non_exhaustive]
pub enum WarningMethod {
    /// Mean ± k·sd of the previous `window` points.
    Rolling {
        /// Points in the window (≥ 2).
        window: usize,
        /// Width of the band in standard deviations.
        k: f64,
    },
    /// Mean ± k·sd of the points one, two, ... seasons earlier (at least two of them).
    Seasonal {
        /// The season length in points (e.g. 7 for daily data with a weekly cycle).
        season: usize,
        /// Width of the band in standard deviations.
        k: f64,
    },
}

/// A point outside its band.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// The point's position in the series.
    pub index: usize,
    /// The point's label, as the series gave it.
    pub label: String,
    /// The point's value.
    pub value: f64,
    /// The band's centre.
    pub expected: f64,
    /// The band's lower edge.
    pub low: f64,
    /// The band's upper edge.
    pub high: f64,
}

fn mean_sd(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

/// The points of `series` (label, value) outside their expected band.
///
/// ```
/// use userops::analytics::{data_warnings, WarningMethod};
/// let s: Vec<(String, f64)> = [10.0, 11.0, 9.0, 10.0, 30.0].iter().enumerate()
///     .map(|(i, v)| (format!("d{i}"), *v)).collect();
/// let w = data_warnings(&s, WarningMethod::Rolling { window: 4, k: 3.0 }).unwrap();
/// assert_eq!(w.len(), 1);
/// assert_eq!(w[0].label, "d4");
/// ```
///
/// # Errors
///
/// [`AnalyticsError::BadArgument`] for a rolling window below 2 points, a season below 1, a
/// `k` that is not a positive number, or a point that is not finite.
pub fn data_warnings(
    series: &[(String, f64)],
    method: WarningMethod,
) -> Result<Vec<Warning>, AnalyticsError> {
    let bad = |reason: &str| AnalyticsError::BadArgument {
        field: "method",
        reason: reason.into(),
    };
    let k = match method {
        WarningMethod::Rolling { window, k } => {
            if window < 2 {
                return Err(bad("a rolling window needs at least 2 points"));
            }
            k
        }
        WarningMethod::Seasonal { season, k } => {
            if season < 1 {
                return Err(bad("a season is at least 1 point"));
            }
            k
        }
    };
    if !(k.is_finite() && k > 0.0) {
        return Err(bad("k must be a positive number"));
    }
    if let Some(i) = series.iter().position(|(_, v)| !v.is_finite()) {
        return Err(AnalyticsError::BadArgument {
            field: "series",
            reason: format!("point {i} is not a finite number"),
        });
    }
    let mut out = Vec::new();
    for (i, (label, v)) in series.iter().enumerate() {
        let past: Vec<f64> = match method {
            WarningMethod::Rolling { window, .. } => {
                if i < window {
                    continue;
                }
                series[i - window..i].iter().map(|p| p.1).collect()
            }
            WarningMethod::Seasonal { season, .. } => {
                (1..=i / season).map(|c| series[i - c * season].1).collect()
            }
        };
        if past.len() < 2 {
            continue;
        }
        let (m, sd) = mean_sd(&past);
        let (low, high) = (m - k * sd, m + k * sd);
        if *v < low || *v > high {
            out.push(Warning {
                index: i,
                label: label.clone(),
                value: *v,
                expected: m,
                low,
                high,
            });
        }
    }
    Ok(out)
}
