//! Activity score: an exponentially decayed, weighted count of behaviours, and its level tag.
//!
//! score(c) = Σ wᵢ · 2^(−(as_of − tᵢ) / half_life) over the customer's behaviours with
//! tᵢ ≤ as_of (times in seconds, half-life in days × 86 400). A behaviour now counts wᵢ, one
//! half-life ago wᵢ/2. The level is the first of the (name, threshold) levels, highest threshold
//! first, whose threshold the score reaches; below all of them, the fallback level.

use serde::{Deserialize, Serialize};

use super::{check_amounts, ModelError};

/// Scores per customer, sorted by customer key.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ActivityScores {
    /// Customer keys.
    pub customer: Vec<u64>,
    /// Decayed weighted counts.
    pub score: Vec<f64>,
}

/// Compute activity scores (see the module docs).
///
/// # Errors
///
/// [`ModelError::InvalidInput`]: columns of different lengths, a half-life that is not a number
/// above 0, or a weight that is not a finite number ≥ 0.
pub fn activity_scores(
    customers: &[u64],
    times: &[i64],
    weights: Option<&[f64]>,
    as_of: i64,
    half_life_days: f64,
) -> Result<ActivityScores, ModelError> {
    if times.len() != customers.len() || weights.is_some_and(|w| w.len() != customers.len()) {
        return Err(ModelError::invalid(
            "times",
            "columns must have equal length",
        ));
    }
    if !(half_life_days.is_finite() && half_life_days > 0.0) {
        return Err(ModelError::invalid("half_life_days", "a number > 0"));
    }
    if let Some(w) = weights {
        check_amounts("weights", w)?;
    }
    let hl = half_life_days * 86_400.0;
    let mut rows: Vec<(u64, f64)> = (0..customers.len())
        .filter(|&i| times[i] <= as_of)
        .map(|i| {
            let age = (as_of - times[i]) as f64;
            (
                customers[i],
                weights.map_or(1.0, |w| w[i]) * (-age / hl).exp2(),
            )
        })
        .collect();
    // Each customer's terms smallest first: the sum does not depend on the row order.
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut out = ActivityScores::default();
    for (c, s) in rows {
        if out.customer.last() == Some(&c) {
            *out.score.last_mut().expect("parallel with customer") += s;
        } else {
            out.customer.push(c);
            out.score.push(s);
        }
    }
    Ok(out)
}

/// Activity levels: thresholds, highest first, and the level below them all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityLevels {
    levels: Vec<(String, f64)>,
    fallback: String,
}

impl Default for ActivityLevels {
    /// `high` ≥ 10, `medium` ≥ 3, `low` ≥ 0.5, else `dormant`.
    fn default() -> Self {
        ActivityLevels {
            levels: vec![
                ("high".into(), 10.0),
                ("medium".into(), 3.0),
                ("low".into(), 0.5),
            ],
            fallback: "dormant".into(),
        }
    }
}

impl ActivityLevels {
    /// Levels from (name, threshold) pairs in any order, and the fallback name.
    ///
    /// # Errors
    ///
    /// [`ModelError::InvalidInput`] at `levels` for a blank name or a threshold that is not finite.
    pub fn new(mut levels: Vec<(String, f64)>, fallback: &str) -> Result<Self, ModelError> {
        if let Some((n, _)) = levels
            .iter()
            .find(|(n, t)| n.trim().is_empty() || !t.is_finite())
        {
            return Err(ModelError::invalid(
                "levels",
                format!("level {n:?}: a name and a finite threshold"),
            ));
        }
        levels.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ActivityLevels {
            levels,
            fallback: fallback.to_owned(),
        })
    }

    /// The level of a score.
    pub fn level(&self, score: f64) -> &str {
        self.levels
            .iter()
            .find(|(_, t)| score >= *t)
            .map_or(self.fallback.as_str(), |(n, _)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_by_half_life() {
        let day = 86_400;
        let s = activity_scores(
            &[1, 1, 2, 2],
            &[100 * day, 70 * day, 100 * day, 101 * day],
            Some(&[2.0, 2.0, 1.0, 5.0]),
            100 * day,
            30.0,
        )
        .unwrap();
        assert_eq!(s.customer, vec![1, 2]);
        assert!((s.score[0] - 3.0).abs() < 1e-12); // 2 + 2·½
        assert!((s.score[1] - 1.0).abs() < 1e-12); // the future row is ignored
        assert!(activity_scores(&[1], &[0], None, 0, 0.0).is_err());
        let l = ActivityLevels::default();
        assert_eq!(l.level(12.0), "high");
        assert_eq!(l.level(3.0), "medium");
        assert_eq!(l.level(0.1), "dormant");
        let l = ActivityLevels::new(vec![("a".into(), 1.0), ("b".into(), 5.0)], "z").unwrap();
        assert_eq!(l.level(6.0), "b");
    }
}
