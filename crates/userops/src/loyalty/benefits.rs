//! Benefits (权益) granted per tier: privileges, coupon bundles, points multipliers and free
//! services, claimable within a limit per period.

use chrono::{DateTime, Datelike, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::tiers::TierLadder;
use super::LoyaltyError;

/// What a benefit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BenefitKind {
    /// A standing privilege (priority service, lounge access, ...).
    Privilege,
    /// A bundle of coupons handed out on claim.
    CouponBundle,
    /// Earns multiplied points (applied by `earn(..., apply_multiplier=True)`).
    PointsMultiplier,
    /// A free service (car wash, maintenance check, ...).
    FreeService,
}

/// The period a claim limit counts over (business time zone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LimitPeriod {
    /// Over the membership's whole life: the limit never resets.
    #[default]
    Lifetime,
    /// Per calendar year.
    Year,
    /// Per calendar month.
    Month,
    /// Per day.
    Day,
}

impl LimitPeriod {
    /// Whether two instants fall in the same period.
    pub fn same(self, a: DateTime<Utc>, b: DateTime<Utc>, tz: FixedOffset) -> bool {
        let (a, b) = (a.with_timezone(&tz), b.with_timezone(&tz));
        match self {
            LimitPeriod::Lifetime => true,
            LimitPeriod::Year => a.year() == b.year(),
            LimitPeriod::Month => (a.year(), a.month()) == (b.year(), b.month()),
            LimitPeriod::Day => a.date_naive() == b.date_naive(),
        }
    }
}

/// A benefit of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenefitSpec {
    /// Unique id within the program.
    pub id: String,
    /// What it is.
    pub kind: BenefitKind,
    /// Tier names it is granted to (empty: every member, with or without a tier).
    #[serde(default)]
    pub tiers: Vec<String>,
    /// Most claims per period (none: unlimited). Multipliers are not claimed.
    #[serde(default)]
    pub limit: Option<u32>,
    /// The period of `limit`.
    #[serde(default)]
    pub per: LimitPeriod,
    /// For a points multiplier: the factor (> 1 typically).
    #[serde(default)]
    pub multiplier: Option<Decimal>,
    /// For a coupon bundle: the coupon template ids handed out.
    #[serde(default)]
    pub coupons: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
}

impl BenefitSpec {
    pub(crate) fn validate(
        &self,
        i: usize,
        ladder: Option<&TierLadder>,
    ) -> Result<(), LoyaltyError> {
        let bad = |field: &str, reason: &str| {
            Err(LoyaltyError::InvalidProgram {
                field: format!("benefits[{i}].{field}"),
                reason: reason.into(),
            })
        };
        if self.id.is_empty() {
            return bad("id", "must not be empty");
        }
        for t in &self.tiers {
            if ladder.and_then(|l| l.level(t)).is_none() {
                return bad("tiers", "names a tier the ladder does not have");
            }
        }
        match (self.kind, self.multiplier) {
            (BenefitKind::PointsMultiplier, Some(m))
                if m > Decimal::ZERO && m <= Decimal::from(100) => {}
            (BenefitKind::PointsMultiplier, _) => {
                return bad("multiplier", "a multiplier between 0 and 100 is required")
            }
            (_, Some(_)) => return bad("multiplier", "only a points_multiplier has one"),
            _ => {}
        }
        if self.kind == BenefitKind::CouponBundle && self.coupons.is_empty() {
            return bad("coupons", "a coupon bundle lists its coupons");
        }
        Ok(())
    }

    /// Whether a member at `tier` holds this benefit.
    pub fn applies_to(&self, tier: Option<&str>) -> bool {
        self.tiers.is_empty() || tier.is_some_and(|t| self.tiers.iter().any(|x| x == t))
    }
}
