//! Programs: a points currency with its rules, placed in the org tree (group → brand → dealer →
//! store). A program's definition is what `create_program` receives.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::benefits::BenefitSpec;
use super::ledger::{Clawback, Points, Rate};
use super::orders::EarnRules;
use super::tasks::TaskSpec;
use super::tiers::{GrowthRules, TierLadder};
use super::LoyaltyError;

/// A level of the org tree, highest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OrgLevel {
    /// The group (集团).
    Group,
    /// A brand (品牌).
    #[default]
    Brand,
    /// A dealer (经销商).
    Dealer,
    /// A store (门店).
    Store,
}

/// When earned points expire, unless an earn names a date.
///
/// Month and year ends are in the business time zone: points earned in March with
/// `end_of_month` expire at the first instant of April.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ExpiryPolicy {
    /// Points never expire.
    #[default]
    Never,
    /// `days` days after the earn.
    RollingDays {
        /// Days (> 0).
        days: u32,
    },
    /// At the end of the month, `months` − 1 months after the earn's month (1 = this month).
    EndOfMonth {
        /// Months (≥ 1).
        #[serde(default = "one")]
        months: u32,
    },
    /// At the end of the year, `years` − 1 years after the earn's year (1 = this year).
    EndOfYear {
        /// Years (≥ 1).
        #[serde(default = "one")]
        years: u32,
    },
}

fn one() -> u32 {
    1
}

impl ExpiryPolicy {
    /// The expiry of points earned at `time`.
    pub fn expires(&self, time: DateTime<Utc>, tz: FixedOffset) -> Option<DateTime<Utc>> {
        let local = time.with_timezone(&tz).date_naive();
        let first_of = |y: i32, m: u32| {
            NaiveDate::from_ymd_opt(y, m, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .and_then(|d| tz.from_local_datetime(&d).single())
                .map(|d| d.with_timezone(&Utc))
        };
        match *self {
            ExpiryPolicy::Never => None,
            ExpiryPolicy::RollingDays { days } => {
                time.checked_add_signed(Duration::days(i64::from(days)))
            }
            ExpiryPolicy::EndOfMonth { months } => {
                let idx =
                    i64::from(local.year()) * 12 + i64::from(local.month0()) + i64::from(months);
                first_of(
                    i32::try_from(idx.div_euclid(12)).ok()?,
                    (idx.rem_euclid(12) + 1) as u32,
                )
            }
            ExpiryPolicy::EndOfYear { years } => {
                first_of(local.year().checked_add(i32::try_from(years).ok()?)?, 1)
            }
        }
    }

    fn validate(&self) -> Result<(), LoyaltyError> {
        let bad = match *self {
            ExpiryPolicy::RollingDays { days } => days == 0 || days > 100 * 366,
            ExpiryPolicy::EndOfMonth { months } => months == 0 || months > 1200,
            ExpiryPolicy::EndOfYear { years } => years == 0 || years > 100,
            ExpiryPolicy::Never => false,
        };
        if bad {
            return Err(LoyaltyError::InvalidProgram {
                field: "expiry".into(),
                reason: "the period must be at least 1 and at most 100 years".into(),
            });
        }
        Ok(())
    }
}

/// The definition of a program (the argument of `create_program`).
///
/// ```
/// use userops::loyalty::ProgramSpec;
/// let spec: ProgramSpec = serde_json::from_str(r#"{"id": "brand-a", "level": "brand",
///     "expiry": {"kind": "end_of_year", "years": 2}, "overdraft": 0}"#).unwrap();
/// assert_eq!(spec.id, "brand-a");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    /// Unique id.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Level in the org tree.
    #[serde(default)]
    pub level: OrgLevel,
    /// The parent program (a strictly higher level), if any.
    #[serde(default)]
    pub parent: Option<String>,
    /// The name of the points currency.
    #[serde(default = "points_name")]
    pub currency: String,
    /// How far below zero a member may spend (0: never).
    #[serde(default)]
    pub overdraft: Points,
    /// Default expiry of earned points.
    #[serde(default)]
    pub expiry: ExpiryPolicy,
    /// What a refund does with points of the refunded earn that the member already spent:
    /// `"balance"` (the default) takes them from the member's other points as far as they go
    /// and forgives the rest, so the balance never goes below zero; `"debt"` lets the rest
    /// become a negative balance, repaid by later earns — only for a program that allows it;
    /// `"none"` forgives them all.
    #[serde(default)]
    pub clawback: Clawback,
    /// Conversion rates to other programs, by destination program id.
    #[serde(default)]
    pub conversions: BTreeMap<String, Rate>,
    /// On a OneID merge, convert the absorbed member's points into this program (which must be
    /// in `conversions`); by default they move unconverted.
    #[serde(default)]
    pub merge_into: Option<String>,
    /// Growth value rules.
    #[serde(default)]
    pub growth: GrowthRules,
    /// The tier ladder (none: the program has no tiers).
    #[serde(default)]
    pub tiers: Option<TierLadder>,
    /// Benefits per tier.
    #[serde(default)]
    pub benefits: Vec<BenefitSpec>,
    /// Tasks members complete for points (none: the program has no tasks).
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
    /// Points earned automatically on ingested orders (none: only explicit earns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earn: Option<EarnRules>,
}

fn points_name() -> String {
    "points".to_owned()
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> LoyaltyError {
    LoyaltyError::InvalidProgram {
        field: field.into(),
        reason: reason.into(),
    }
}

impl ProgramSpec {
    /// Check the definition on its own (references to other programs are checked on creation).
    ///
    /// # Errors
    ///
    /// `invalid_argument` ([`LoyaltyError::InvalidProgram`]) naming the field that breaks a rule
    /// of the definition (an id of 1 to 128 characters, a non-negative overdraft, a valid expiry
    /// policy, positive conversion lots, ...).
    pub fn validate(&self) -> Result<(), LoyaltyError> {
        if self.id.trim().is_empty() || self.id.len() > 128 {
            return Err(invalid("id", "a program id is 1 to 128 characters"));
        }
        if self.overdraft < 0 {
            return Err(invalid("overdraft", "must not be negative"));
        }
        self.expiry.validate()?;
        for (dst, r) in &self.conversions {
            if r.from <= 0 || r.to <= 0 {
                return Err(invalid(
                    format!("conversions.{dst}"),
                    "a rate is two positive lot sizes",
                ));
            }
            if *dst == self.id {
                return Err(invalid(
                    format!("conversions.{dst}"),
                    "a program cannot convert into itself",
                ));
            }
        }
        if let Some(m) = &self.merge_into {
            if !self.conversions.contains_key(m) {
                return Err(invalid(
                    "merge_into",
                    "needs a conversion rate to that program",
                ));
            }
        }
        self.growth.validate()?;
        if let Some(e) = &self.earn {
            e.validate()?;
        }
        if let Some(t) = &self.tiers {
            t.validate()?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, b) in self.benefits.iter().enumerate() {
            b.validate(i, self.tiers.as_ref())?;
            if !seen.insert(b.id.clone()) {
                return Err(invalid(format!("benefits[{i}].id"), "duplicate benefit id"));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.tasks.iter().enumerate() {
            t.validate(i)?;
            if !seen.insert(t.id.clone()) {
                return Err(invalid(format!("tasks[{i}].id"), "duplicate task id"));
            }
        }
        Ok(())
    }

    /// The best points multiplier the given tier's benefits grant (1 without one).
    pub fn multiplier(&self, tier: Option<&str>) -> Decimal {
        self.benefits
            .iter()
            .filter(|b| b.applies_to(tier))
            .filter_map(|b| b.multiplier)
            .max()
            .unwrap_or(Decimal::ONE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn expiry_policies_in_business_time() {
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        // 2026-03-31T20:00Z is already April 1st in +08:00.
        let at = t("2026-03-31T20:00:00Z");
        assert_eq!(
            ExpiryPolicy::EndOfMonth { months: 1 }.expires(at, tz),
            Some(t("2026-04-30T16:00:00Z"))
        );
        assert_eq!(
            ExpiryPolicy::EndOfMonth { months: 10 }.expires(at, tz),
            Some(t("2027-01-31T16:00:00Z"))
        );
        assert_eq!(
            ExpiryPolicy::EndOfYear { years: 2 }.expires(at, tz),
            Some(t("2027-12-31T16:00:00Z"))
        );
        assert_eq!(
            ExpiryPolicy::RollingDays { days: 30 }.expires(at, tz),
            Some(t("2026-04-30T20:00:00Z"))
        );
        assert_eq!(ExpiryPolicy::Never.expires(at, tz), None);
        assert!(ExpiryPolicy::RollingDays { days: 0 }.validate().is_err());
    }
}
