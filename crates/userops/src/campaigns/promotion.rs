//! The promotion model (seed 002: trigger conditions + execution mode + reward form + limits).
//!
//! A [`Promotion`] is what an operator configures: [`Conditions`] (when and on which lines it
//! applies), an [`Action`] (满增 / 满减 / 满返 / 满换 / percentage off / fixed price / points
//! multiplier), the [`Reward`]s it hands out, a [`Budget`], [`Limits`] and a [`Stacking`] rule.
//! [`Promotion::validate`] is the one place where the model's invariants are checked; the
//! evaluator relies on them.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::CampaignError;

/// Decimal strings on the wire (never floats), optional.
pub(crate) mod dec_opt {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write as a decimal string, or null.
    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&d.to_string()),
            None => s.serialize_none(),
        }
    }

    /// Read a decimal string (numbers are refused: money never travels as a float), or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            s.trim()
                .parse::<Decimal>()
                .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a decimal: {e}")))
        })
        .transpose()
    }
}

/// Shared ids: a quote names every promotion, and cloning an `Arc` costs no allocation.
pub(crate) mod arc_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Write as a string.
    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    /// Read a string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

/// Optional shared strings.
pub(crate) mod arc_str_opt {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Write as a string, or null.
    pub fn serialize<S: Serializer>(v: &Option<Arc<str>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(v),
            None => s.serialize_none(),
        }
    }

    /// Read a string, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Arc<str>>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.map(Arc::from))
    }
}

/// Optional RFC 3339 timestamps.
pub(crate) mod time_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Write as RFC 3339 in UTC, or null.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => crate::event::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Read RFC 3339 with a zone, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| crate::event::rfc3339::parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// A configured promotion. Wire shape: `{"id", "name", "conditions": {...}, "action": {"type":
/// ...}, "stacking": {...}, "budget": {...}, "limits": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promotion {
    /// Unique id.
    #[serde(with = "arc_str")]
    pub id: std::sync::Arc<str>,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// When and on which lines it applies.
    #[serde(default)]
    pub conditions: Conditions,
    /// What it does.
    pub action: Action,
    /// How it combines with other promotions.
    #[serde(default)]
    pub stacking: Stacking,
    /// The money or count it may spend in total; `None` = unbounded.
    #[serde(default)]
    pub budget: Option<Budget>,
    /// Uses per user, per order and in total.
    #[serde(default)]
    pub limits: Limits,
    /// Hashes of the sku / category lists, built on first use (not state: derived).
    #[serde(skip)]
    compiled: std::sync::OnceLock<Compiled>,
}

impl PartialEq for Promotion {
    fn eq(&self, o: &Self) -> bool {
        // `compiled` is derived from the other fields.
        self.id == o.id
            && self.name == o.name
            && self.conditions == o.conditions
            && self.action == o.action
            && self.stacking == o.stacking
            && self.budget == o.budget
            && self.limits == o.limits
    }
}

/// What evaluation reads of a promotion, precomputed once: the exclusion lists as hashes (in
/// the sets' order, so that matching a cart compares integers and checks the string only on a
/// hit), and every amount in integer cents, so that the hot loop does no `Decimal` work.
/// Validation bounds every amount to two decimal places, so the cents are exact.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compiled {
    pub(super) exclude_skus: Vec<u64>,
    pub(super) exclude_categories: Vec<u64>,
    /// The action's spend threshold.
    pub(super) threshold: i64,
    /// `conditions.min_amount`.
    pub(super) min_amount: Option<i64>,
    /// Bit `d` set for weekday `d` (1 = Monday); 0 = any day.
    pub(super) weekdays: u8,
    /// A money budget.
    pub(super) budget_money: Option<i64>,
    /// Single-step amount off.
    pub(super) off: Option<i64>,
    /// Tiers (threshold, off).
    pub(super) tiers: Vec<(i64, i64)>,
    /// Cap on the discount.
    pub(super) max_off: Option<i64>,
    /// Fixed price or exchange price.
    pub(super) price: i64,
    /// Percent off as the exact fraction `num / den` of the eligible amount (`None`: too
    /// fine-grained for integers; the evaluator then uses `Decimal`).
    pub(super) percent: Option<(i128, i128)>,
    /// Red packet amount.
    pub(super) cash: i64,
}

/// Cents of an amount validated to at most two decimal places; saturates far beyond
/// any real amount.
pub(crate) fn cents_of(d: Decimal) -> i64 {
    use rust_decimal::prelude::ToPrimitive;
    (d * Decimal::ONE_HUNDRED)
        .trunc()
        .to_i64()
        .unwrap_or(if d.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        })
}

/// The hash the evaluator matches skus and categories by.
pub(crate) fn key_hash(s: &str) -> u64 {
    crate::util::fingerprint(s.as_bytes())
}

impl Promotion {
    pub(crate) fn compiled(&self) -> &Compiled {
        self.compiled.get_or_init(|| {
            let h = |set: &BTreeSet<String>| set.iter().map(|s| key_hash(s)).collect();
            let k = &self.conditions;
            let mut c = Compiled {
                exclude_skus: h(&k.exclude_skus),
                exclude_categories: h(&k.exclude_categories),
                threshold: cents_of(self.action.threshold()),
                min_amount: k.min_amount.map(cents_of),
                weekdays: k
                    .weekdays
                    .iter()
                    .filter(|d| (1..=7).contains(*d))
                    .fold(0, |m, d| m | (1 << d)),
                budget_money: match &self.budget {
                    Some(Budget::Money { amount }) => Some(cents_of(*amount)),
                    _ => None,
                },
                ..Compiled::default()
            };
            match &self.action {
                Action::ThresholdDiscount {
                    off,
                    tiers,
                    max_off,
                    ..
                } => {
                    c.off = off.map(cents_of);
                    c.tiers = tiers
                        .iter()
                        .map(|t| (cents_of(t.threshold), cents_of(t.off)))
                        .collect();
                    c.max_off = max_off.map(cents_of);
                }
                Action::PercentOff { percent, max_off } => {
                    c.max_off = max_off.map(cents_of);
                    let scale = percent.scale();
                    c.percent = (scale <= 20)
                        .then(|| 10i128.checked_pow(scale))
                        .flatten()
                        .map(|p| (percent.mantissa(), 100 * p));
                }
                Action::FixedPrice { price } | Action::ThresholdExchange { price, .. } => {
                    c.price = cents_of(*price);
                }
                Action::ThresholdGift { reward, .. } | Action::ThresholdRebate { reward, .. } => {
                    if let Reward::RedPacket { amount } = reward {
                        c.cash = cents_of(*amount);
                    }
                }
                Action::PointsMultiplier { .. } => {}
            }
            c
        })
    }
}

/// Trigger conditions. Empty lists mean "any". Include lists select lines; exclude lists remove
/// lines from that selection; the cart-level lists (region, channel, ...) must contain the cart's
/// value when non-empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Only these skus count.
    #[serde(default)]
    pub skus: BTreeSet<String>,
    /// These skus never count.
    #[serde(default)]
    pub exclude_skus: BTreeSet<String>,
    /// Only these categories count.
    #[serde(default)]
    pub categories: BTreeSet<String>,
    /// These categories never count.
    #[serde(default)]
    pub exclude_categories: BTreeSet<String>,
    /// The eligible lines must add up to at least this amount.
    #[serde(default, with = "dec_opt")]
    pub min_amount: Option<Decimal>,
    /// The eligible lines must add up to at least this many units.
    #[serde(default)]
    pub min_qty: Option<u64>,
    /// Valid from (inclusive).
    #[serde(default, with = "time_opt")]
    pub start: Option<DateTime<Utc>>,
    /// Valid until (exclusive).
    #[serde(default, with = "time_opt")]
    pub end: Option<DateTime<Utc>>,
    /// Recurring daily hours `[from, to)` in the business time zone (0–24; `[22, 2]` wraps past
    /// midnight).
    #[serde(default)]
    pub hours: Option<[u32; 2]>,
    /// Days of the week (1 = Monday … 7 = Sunday) in the business time zone.
    #[serde(default)]
    pub weekdays: BTreeSet<u32>,
    /// Regions (matched against the cart's `region`; empty: any).
    #[serde(default)]
    pub regions: BTreeSet<String>,
    /// Sales channels.
    #[serde(default)]
    pub channels: BTreeSet<String>,
    /// Stores (matched against the cart's `store`; empty: any).
    #[serde(default)]
    pub stores: BTreeSet<String>,
    /// The customer must be in one of these audiences.
    #[serde(default)]
    pub audiences: BTreeSet<String>,
    /// The customer must hold one of these member tiers (in `tier_program`, or in any loyalty
    /// program when none is named).
    #[serde(default)]
    pub tiers: BTreeSet<String>,
    /// The loyalty program `tiers` refer to (default: any program).
    #[serde(default)]
    pub tier_program: Option<String>,
    /// `Some(true)`: only a customer's first order; `Some(false)`: only repeat orders.
    #[serde(default)]
    pub first_order: Option<bool>,
}

/// One step of a tiered threshold discount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Spend at least this much…
    #[serde(with = "rust_decimal::serde::str")]
    pub threshold: Decimal,
    /// …to get this much off.
    #[serde(with = "rust_decimal::serde::str")]
    pub off: Decimal,
}

/// The execution mode: what the promotion does to the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Action {
    /// 满减: spend `threshold`, get `off` off; or tiered (`tiers`, the highest tier reached
    /// applies); or with `every`, `off` for every full `threshold` ("every 300 off 50").
    ThresholdDiscount {
        /// Single-step threshold (with `off`).
        #[serde(default, with = "dec_opt")]
        threshold: Option<Decimal>,
        /// Single-step amount off (with `threshold`).
        #[serde(default, with = "dec_opt")]
        off: Option<Decimal>,
        /// Tiers, thresholds strictly increasing (instead of `threshold`/`off`).
        #[serde(default)]
        tiers: Vec<Tier>,
        /// Repeat for every full threshold (single-step only).
        #[serde(default)]
        every: bool,
        /// Cap on the discount.
        #[serde(default, with = "dec_opt")]
        max_off: Option<Decimal>,
    },
    /// Percentage off the eligible lines.
    PercentOff {
        /// Percent, in (0, 100].
        #[serde(with = "rust_decimal::serde::str")]
        percent: Decimal,
        /// Cap on the discount.
        #[serde(default, with = "dec_opt")]
        max_off: Option<Decimal>,
    },
    /// Every eligible unit sells at `price` (units already cheaper are left alone).
    FixedPrice {
        /// The unit price.
        #[serde(with = "rust_decimal::serde::str")]
        price: Decimal,
    },
    /// 满增: spend `threshold`, receive `reward` with the order (goods, coupon, red packet, …).
    ThresholdGift {
        /// The money to spend to qualify.
        #[serde(with = "rust_decimal::serde::str")]
        threshold: Decimal,
        /// The gift, handed out with the order.
        reward: Reward,
        /// One gift per full threshold.
        #[serde(default)]
        every: bool,
    },
    /// 满返: spend `threshold`, receive `reward` after the order (coupon, points, red packet).
    ThresholdRebate {
        /// The money to spend to qualify.
        #[serde(with = "rust_decimal::serde::str")]
        threshold: Decimal,
        /// The rebate, handed out after the order.
        reward: Reward,
        /// One rebate per full threshold.
        #[serde(default)]
        every: bool,
    },
    /// 满换: spend `threshold` on the other eligible lines, buy one unit of `sku` at `price`.
    /// When the sku is in the cart the special price is applied; otherwise it is offered.
    ThresholdExchange {
        /// The threshold (measured without the add-on's own line).
        #[serde(with = "rust_decimal::serde::str")]
        threshold: Decimal,
        /// The add-on sku.
        sku: String,
        /// Its special price.
        #[serde(with = "rust_decimal::serde::str")]
        price: Decimal,
    },
    /// 翻倍: points earned on the eligible amount are multiplied by `factor`.
    PointsMultiplier {
        /// The multiplier (≥ 2).
        factor: u32,
        /// Optional spend threshold.
        #[serde(default, with = "dec_opt")]
        threshold: Option<Decimal>,
    },
}

/// The kind of a coupon (seed 002: consumption, gift, service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CouponKind {
    /// Money off a later purchase.
    Consumption,
    /// A free item.
    Gift,
    /// A service (installation, cleaning, …).
    Service,
}

/// A reward form (seed 002: red packet, coupon, points, goods).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Reward {
    /// Cash (a red packet) of `amount`.
    RedPacket {
        /// The amount (> 0).
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
    },
    /// A coupon from a template.
    Coupon {
        /// The coupon template id.
        template: String,
        /// Its kind (default: consumption).
        #[serde(default = "consumption")]
        kind: CouponKind,
    },
    /// Points (> 0), posted to a loyalty program's ledger when the order is committed.
    Points {
        /// How many.
        points: i64,
        /// The loyalty program (default: the only one, when exactly one exists).
        #[serde(default)]
        program: Option<String>,
    },
    /// Goods handed out with or after the order (as the action says).
    Goods {
        /// The sku given.
        sku: String,
        /// How many (≥ 1).
        #[serde(default = "one")]
        qty: u32,
    },
}

fn consumption() -> CouponKind {
    CouponKind::Consumption
}

fn one() -> u32 {
    1
}

/// Exclusive or stackable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StackMode {
    /// Applies alone: never combined with any other promotion.
    Exclusive,
    /// Combines with the other stackable promotions of the same group.
    #[default]
    Stackable,
}

/// How a promotion combines with others.
///
/// Promotions stack within their group; an exclusive promotion and each group are alternatives.
/// In priority mode the alternative holding the highest-priority applicable promotion wins; in
/// best-for-customer mode the alternative worth most to the customer wins. Lower `priority`
/// numbers come first (ties by id); within a group, promotions apply in that order, each on the
/// amounts left by the previous ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stacking {
    /// Exclusive or stackable.
    #[serde(default)]
    pub mode: StackMode,
    /// The stacking group (stackable only).
    #[serde(default)]
    pub group: String,
    /// Lower first.
    #[serde(default)]
    pub priority: i64,
}

/// What a promotion may spend in total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Budget {
    /// Money: discounts plus red packets handed out.
    Money {
        /// The total (≥ 0).
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
    },
    /// Number of orders it may apply to.
    Count {
        /// The total (≥ 0).
        count: i64,
    },
}

/// Usage limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Orders per customer.
    #[serde(default)]
    pub per_user: Option<u64>,
    /// Repetitions within one order (for `every` actions).
    #[serde(default)]
    pub per_order: Option<u64>,
    /// Orders in total.
    #[serde(default)]
    pub total: Option<u64>,
}

fn bad(field: &str, reason: impl Into<String>) -> CampaignError {
    CampaignError::invalid(field, reason)
}

fn positive(field: &str, v: Decimal) -> Result<(), CampaignError> {
    if v <= Decimal::ZERO {
        return Err(bad(field, format!("must be > 0, got {v}")));
    }
    cents(field, v)
}

fn non_negative(field: &str, v: Decimal) -> Result<(), CampaignError> {
    if v < Decimal::ZERO {
        return Err(bad(field, format!("must be ≥ 0, got {v}")));
    }
    cents(field, v)
}

/// Money has at most two decimal places (cents) and is at most
/// [`MAX_AMOUNT`](crate::money::MAX_AMOUNT).
pub(crate) fn cents(field: &str, v: Decimal) -> Result<(), CampaignError> {
    // The scale is at most 2 for almost every amount: normalize only the rest.
    if v.scale() > 2 && v.normalize().scale() > 2 {
        return Err(bad(field, format!("{v} has more than 2 decimal places")));
    }
    if v > crate::money::MAX_AMOUNT {
        return Err(CampaignError::OutOfRange {
            field: field.to_owned(),
            reason: format!(
                "{v} is above the largest amount accepted, {}",
                crate::money::MAX_AMOUNT
            ),
        });
    }
    Ok(())
}

impl Reward {
    pub(crate) fn validate(&self, field: &str) -> Result<(), CampaignError> {
        match self {
            Reward::RedPacket { amount } => positive(&format!("{field}.amount"), *amount),
            Reward::Coupon { template, .. } if template.trim().is_empty() => {
                Err(bad(&format!("{field}.template"), "must not be empty"))
            }
            Reward::Points { points, .. } if *points <= 0 => Err(bad(
                &format!("{field}.points"),
                format!("must be > 0, got {points}"),
            )),
            Reward::Goods { sku, .. } if sku.trim().is_empty() => {
                Err(bad(&format!("{field}.sku"), "must not be empty"))
            }
            Reward::Goods { qty: 0, .. } => Err(bad(&format!("{field}.qty"), "must be ≥ 1")),
            _ => Ok(()),
        }
    }
}

impl Conditions {
    /// Reject contradictions: a sku or category both included and excluded, an empty time
    /// window, hours or weekdays out of range, a negative threshold.
    ///
    /// # Errors
    ///
    /// [`CampaignError::Invalid`] naming the condition; [`CampaignError::OutOfRange`] for a
    /// `min_amount` above [`MAX_AMOUNT`](crate::money::MAX_AMOUNT).
    pub fn validate(&self) -> Result<(), CampaignError> {
        if let Some(s) = self.skus.intersection(&self.exclude_skus).next() {
            return Err(bad(
                "conditions.exclude_skus",
                format!("sku {s:?} is both included and excluded"),
            ));
        }
        if let Some(c) = self
            .categories
            .intersection(&self.exclude_categories)
            .next()
        {
            return Err(bad(
                "conditions.exclude_categories",
                format!("category {c:?} is both included and excluded"),
            ));
        }
        if let (Some(s), Some(e)) = (self.start, self.end) {
            if s >= e {
                return Err(bad(
                    "conditions.end",
                    format!("window ends ({e}) before it starts ({s})"),
                ));
            }
        }
        if let Some([from, to]) = self.hours {
            if from > 24 || to > 24 || from == to {
                return Err(bad(
                    "conditions.hours",
                    format!("[{from}, {to}] is not a window of hours within 0–24"),
                ));
            }
        }
        if let Some(d) = self.weekdays.iter().find(|d| !(1..=7).contains(*d)) {
            return Err(bad(
                "conditions.weekdays",
                format!("{d} is not a weekday (1 = Monday … 7 = Sunday)"),
            ));
        }
        if let Some(m) = self.min_amount {
            non_negative("conditions.min_amount", m)?;
        }
        if self.tier_program.is_some() && self.tiers.is_empty() {
            return Err(bad(
                "conditions.tier_program",
                "names a program for tiers, but no tier is listed",
            ));
        }
        Ok(())
    }
}

impl Action {
    /// The spend threshold the action needs on the eligible lines (zero when none).
    pub fn threshold(&self) -> Decimal {
        match self {
            Action::ThresholdDiscount {
                threshold, tiers, ..
            } => threshold
                .or_else(|| tiers.first().map(|t| t.threshold))
                .unwrap_or(Decimal::ZERO),
            Action::ThresholdGift { threshold, .. }
            | Action::ThresholdRebate { threshold, .. }
            | Action::ThresholdExchange { threshold, .. } => *threshold,
            Action::PointsMultiplier { threshold, .. } => threshold.unwrap_or(Decimal::ZERO),
            Action::PercentOff { .. } | Action::FixedPrice { .. } => Decimal::ZERO,
        }
    }

    fn validate(&self) -> Result<(), CampaignError> {
        match self {
            Action::ThresholdDiscount {
                threshold,
                off,
                tiers,
                every,
                max_off,
            } => {
                match (threshold, off, tiers.is_empty()) {
                    (Some(t), Some(o), true) => {
                        positive("action.threshold", *t)?;
                        positive("action.off", *o)?;
                        if !every && o > t {
                            return Err(bad(
                                "action.off",
                                format!("{o} off exceeds the threshold {t}"),
                            ));
                        }
                    }
                    (None, None, false) => {
                        if *every {
                            return Err(bad("action.every", "`every` needs a single step"));
                        }
                        for (i, t) in tiers.iter().enumerate() {
                            positive(&format!("action.tiers[{i}].threshold"), t.threshold)?;
                            positive(&format!("action.tiers[{i}].off"), t.off)?;
                            if i > 0 && t.threshold <= tiers[i - 1].threshold {
                                return Err(bad(
                                    &format!("action.tiers[{i}].threshold"),
                                    "tier thresholds must increase strictly",
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(bad(
                            "action",
                            "threshold_discount needs either `threshold` and `off`, or `tiers`",
                        ))
                    }
                }
                if let Some(m) = max_off {
                    positive("action.max_off", *m)?;
                }
                Ok(())
            }
            Action::PercentOff { percent, max_off } => {
                if *percent <= Decimal::ZERO || *percent > Decimal::ONE_HUNDRED {
                    return Err(bad(
                        "action.percent",
                        format!("must be in (0, 100], got {percent}"),
                    ));
                }
                if let Some(m) = max_off {
                    positive("action.max_off", *m)?;
                }
                Ok(())
            }
            Action::FixedPrice { price } => non_negative("action.price", *price),
            Action::ThresholdGift {
                threshold, reward, ..
            }
            | Action::ThresholdRebate {
                threshold, reward, ..
            } => {
                non_negative("action.threshold", *threshold)?;
                reward.validate("action.reward")
            }
            Action::ThresholdExchange {
                threshold,
                sku,
                price,
            } => {
                non_negative("action.threshold", *threshold)?;
                non_negative("action.price", *price)?;
                if sku.trim().is_empty() {
                    return Err(bad("action.sku", "must not be empty"));
                }
                Ok(())
            }
            Action::PointsMultiplier { factor, threshold } => {
                if *factor < 2 {
                    return Err(bad("action.factor", format!("must be ≥ 2, got {factor}")));
                }
                if let Some(t) = threshold {
                    non_negative("action.threshold", *t)?;
                }
                Ok(())
            }
        }
    }
}

impl Promotion {
    /// Check every invariant the evaluator relies on. The one place they are asserted.
    ///
    /// # Errors
    ///
    /// [`CampaignError::Invalid`] naming the field: a blank id, an exclusive promotion with a
    /// group, a limit of 0, a negative budget, conditions that fail [`Conditions::validate`],
    /// an action whose amounts are out of their range or have more than 2 decimal places;
    /// [`CampaignError::OutOfRange`] for an amount above [`MAX_AMOUNT`](crate::money::MAX_AMOUNT).
    pub fn validate(&self) -> Result<(), CampaignError> {
        if self.id.trim().is_empty() {
            return Err(bad("id", "must not be empty"));
        }
        self.conditions.validate()?;
        self.action.validate()?;
        match &self.budget {
            Some(Budget::Money { amount }) => non_negative("budget.amount", *amount)?,
            Some(Budget::Count { count }) if *count < 0 => {
                return Err(bad("budget.count", format!("must be ≥ 0, got {count}")))
            }
            _ => {}
        }
        if self.stacking.mode == StackMode::Exclusive && !self.stacking.group.is_empty() {
            return Err(bad(
                "stacking.group",
                "an exclusive promotion stacks with nothing: it has no group",
            ));
        }
        for (name, v) in [
            ("limits.per_user", self.limits.per_user),
            ("limits.per_order", self.limits.per_order),
            ("limits.total", self.limits.total),
        ] {
            if v == Some(0) {
                return Err(bad(name, "must be ≥ 1 (remove the promotion instead)"));
            }
        }
        Ok(())
    }
}
