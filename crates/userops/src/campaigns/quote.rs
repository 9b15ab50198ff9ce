//! The promotion evaluator: `evaluate(cart, customer) -> Quote`.
//!
//! Money is handled in integer cents internally (every input is validated to at most two
//! decimal places), which makes the arithmetic exact and fast; it leaves as decimal strings.
//! Evaluation is a pure function of the promotions, their usage, the cart and the customer:
//! the same inputs always give the same quote, byte for byte.
//!
//! Steps: (1) gate every promotion on the cart-level conditions, limits, budget and its
//! eligible lines, recording a reason for each that fails; (2) form the alternatives allowed by
//! stacking — each exclusive promotion alone, each group's stackable promotions together;
//! (3) simulate the chosen alternative(s), each promotion working on the amounts the previous
//! ones left, and allocating its discount to the lines; (4) pick the alternative (priority or
//! best for the customer).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset, Timelike, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use super::ledger::Ledger;
use super::promotion::{cents, key_hash, Action, Budget, CouponKind, Promotion, Reward, StackMode};
use super::CampaignError;
use crate::ids::OneId;

/// The currency every amount is in. A cart line in another currency is rejected.
pub const CURRENCY: &str = "CNY";

/// The most lines a cart may have (line sets are fixed-size bitsets).
pub const MAX_LINES: usize = 256;

/// One cart line. Wire: `{"sku", "category", "price", "qty"}` (`price` a decimal string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartLine {
    /// The sku.
    pub sku: String,
    /// Its category.
    #[serde(default)]
    pub category: String,
    /// Unit price (≥ 0, at most 2 decimal places).
    #[serde(with = "rust_decimal::serde::str")]
    pub price: Decimal,
    /// Units (≥ 1).
    pub qty: i64,
    /// Currency, when given: must be [`CURRENCY`].
    #[serde(default)]
    pub currency: Option<String>,
}

/// A cart to quote. Wire: `{"lines": [...], "channel", "region", "store", "time"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cart {
    /// The lines.
    pub lines: Vec<CartLine>,
    /// Sales channel.
    #[serde(default)]
    pub channel: String,
    /// Region.
    #[serde(default)]
    pub region: String,
    /// Store.
    #[serde(default)]
    pub store: String,
    /// When the order is placed.
    #[serde(with = "crate::event::rfc3339")]
    pub time: DateTime<Utc>,
    /// Currency, when given: must be [`CURRENCY`].
    #[serde(default)]
    pub currency: Option<String>,
}

/// What the promotion engine knows about the customer.
///
/// The engine fills it from what it holds (first order from ingested orders); tier and
/// audiences come from the loyalty and audience modules once they are wired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerContext {
    /// The customer, when known (needed for per-user limits).
    pub oneid: Option<OneId>,
    /// Member tier matched by conditions that name no program (the engine fills it with the
    /// tier in the first program, in creation order, where the customer holds one).
    pub tier: Option<String>,
    /// Tier per loyalty program (program id → tier name), for conditions naming a program
    /// and for "any program" matching.
    pub program_tiers: std::collections::BTreeMap<String, String>,
    /// Audiences the customer belongs to.
    pub audiences: BTreeSet<String>,
    /// True when the customer has no order yet.
    pub first_order: bool,
}

/// Which stacking alternative wins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SelectMode {
    /// The alternative worth most to the customer (discount + cash); ties by priority.
    #[default]
    BestForCustomer,
    /// The alternative holding the highest-priority applicable promotion.
    Priority,
}

/// Why a promotion did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Before its window.
    NotStarted,
    /// After its window.
    Ended,
    /// Outside its daily hours.
    OutsideHours,
    /// Not on this weekday.
    Weekday,
    /// Cart region not listed.
    Region,
    /// Cart channel not listed.
    Channel,
    /// Cart store not listed.
    Store,
    /// Customer in none of the audiences.
    Audience,
    /// Customer tier not listed.
    Tier,
    /// First orders only.
    FirstOrderOnly,
    /// Repeat orders only.
    RepeatOrderOnly,
    /// A per-user limit needs a known customer.
    NoCustomer,
    /// Per-user limit reached.
    UserLimit(u64),
    /// Total limit reached.
    TotalLimit(u64),
    /// Budget used up (or smaller than this order's use).
    Budget,
    /// No cart line qualifies.
    NoEligibleLines,
    /// Eligible amount below the minimum (need, have), in cents.
    MinAmount(i64, i64),
    /// Eligible quantity below the minimum (need, have).
    MinQty(u64, u64),
    /// Eligible amount below the action's threshold (need, have), in cents.
    Threshold(i64, i64),
    /// The action changes nothing on this cart (e.g. prices already below the fixed price).
    NoEffect,
    /// Another stacking alternative was chosen (its first promotion's id).
    Stacking(Arc<str>),
}

impl Reason {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::NotStarted => "not_started",
            Reason::Ended => "ended",
            Reason::OutsideHours => "outside_hours",
            Reason::Weekday => "weekday",
            Reason::Region => "region",
            Reason::Channel => "channel",
            Reason::Store => "store",
            Reason::Audience => "audience",
            Reason::Tier => "tier",
            Reason::FirstOrderOnly => "first_order_only",
            Reason::RepeatOrderOnly => "repeat_order_only",
            Reason::NoCustomer => "no_customer",
            Reason::UserLimit(_) => "user_limit",
            Reason::TotalLimit(_) => "total_limit",
            Reason::Budget => "budget",
            Reason::NoEligibleLines => "no_eligible_lines",
            Reason::MinAmount(..) => "min_amount",
            Reason::MinQty(..) => "min_qty",
            Reason::Threshold(..) => "threshold",
            Reason::NoEffect => "no_effect",
            Reason::Stacking(_) => "stacking",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::NotStarted => write!(f, "the promotion has not started"),
            Reason::Ended => write!(f, "the promotion has ended"),
            Reason::OutsideHours => write!(f, "outside the promotion's hours"),
            Reason::Weekday => write!(f, "not on one of the promotion's weekdays"),
            Reason::Region => write!(f, "the cart's region is not eligible"),
            Reason::Channel => write!(f, "the cart's channel is not eligible"),
            Reason::Store => write!(f, "the cart's store is not eligible"),
            Reason::Audience => write!(f, "the customer is in none of the audiences"),
            Reason::Tier => write!(f, "the customer's tier is not eligible"),
            Reason::FirstOrderOnly => write!(f, "first orders only"),
            Reason::RepeatOrderOnly => write!(f, "repeat orders only"),
            Reason::NoCustomer => write!(f, "a per-user limit needs a known customer"),
            Reason::UserLimit(n) => write!(f, "the customer already used it {n} time(s)"),
            Reason::TotalLimit(n) => write!(f, "used {n} time(s) in total: the limit"),
            Reason::Budget => write!(f, "the budget is used up"),
            Reason::NoEligibleLines => write!(f, "no cart line is eligible"),
            Reason::MinAmount(need, have) => write!(
                f,
                "eligible amount {} is below the minimum {}",
                money(*have),
                money(*need)
            ),
            Reason::MinQty(need, have) => {
                write!(f, "eligible quantity {have} is below the minimum {need}")
            }
            Reason::Threshold(need, have) => write!(
                f,
                "eligible amount {} is below the threshold {}",
                money(*have),
                money(*need)
            ),
            Reason::NoEffect => write!(f, "it would change nothing on this cart"),
            Reason::Stacking(by) => {
                write!(f, "does not stack with {by:?}, which was chosen")
            }
        }
    }
}

/// A promotion that did not apply, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotApplied {
    /// The promotion.
    pub id: Arc<str>,
    /// Why.
    pub reason: Reason,
}

impl Serialize for NotApplied {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("NotApplied", 3)?;
        st.serialize_field("id", &*self.id)?;
        st.serialize_field("code", self.reason.code())?;
        st.serialize_field("reason", &self.reason.to_string())?;
        st.end()
    }
}

/// When a reward is handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timing {
    /// With the order (gifts, exchange offers).
    WithOrder,
    /// After the order is fulfilled (rebates, points).
    AfterOrder,
}

/// A reward a quote hands out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Grant {
    /// Cash `amount` × `count`.
    RedPacket {
        /// Per unit.
        #[serde(with = "rust_decimal::serde::str")]
        amount: Decimal,
        /// Units.
        count: u64,
        /// When.
        timing: Timing,
    },
    /// `count` coupons of a template.
    Coupon {
        /// Template.
        template: String,
        /// Kind.
        kind: CouponKind,
        /// How many.
        count: u64,
        /// When.
        timing: Timing,
    },
    /// Points.
    Points {
        /// How many.
        points: i64,
        /// The loyalty program (none: the only one).
        #[serde(skip_serializing_if = "Option::is_none")]
        program: Option<String>,
        /// When.
        timing: Timing,
    },
    /// Goods.
    Goods {
        /// Sku.
        sku: String,
        /// Units.
        qty: u64,
        /// When.
        timing: Timing,
    },
    /// Points earned on `on_amount` are multiplied (the loyalty module computes them).
    PointsMultiplier {
        /// Factor.
        factor: u32,
        /// The amount the multiplier applies to.
        #[serde(with = "rust_decimal::serde::str")]
        on_amount: Decimal,
        /// When.
        timing: Timing,
    },
    /// The customer may add `sku` at `price` (满换 when the sku is not in the cart yet).
    ExchangeOffer {
        /// Sku.
        sku: String,
        /// Special price.
        #[serde(with = "rust_decimal::serde::str")]
        price: Decimal,
        /// When.
        timing: Timing,
    },
}

/// One line's share of a discount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineShare {
    /// Index into the cart's lines.
    pub line: usize,
    /// The share.
    #[serde(with = "rust_decimal::serde::str")]
    pub discount: Decimal,
}

/// A promotion that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The promotion.
    #[serde(serialize_with = "super::promotion::arc_str::serialize")]
    pub id: Arc<str>,
    /// Its discount on this order.
    #[serde(with = "rust_decimal::serde::str")]
    pub discount: Decimal,
    /// What it consumes of a money budget: discount plus cash handed out.
    #[serde(with = "rust_decimal::serde::str")]
    pub budget_use: Decimal,
    /// The discount per line (sums to `discount`).
    pub lines: Vec<LineShare>,
    /// The rewards.
    pub rewards: Vec<Grant>,
}

/// A quoted line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuoteLine {
    /// Sku.
    pub sku: String,
    /// price × qty.
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
    /// Discount allocated to it.
    #[serde(with = "rust_decimal::serde::str")]
    pub discount: Decimal,
    /// amount − discount (never negative).
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
}

/// The result of evaluating a cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    /// The customer, when known.
    pub user: Option<OneId>,
    /// The stacking choice that was made.
    pub mode: SelectMode,
    /// The cart's time (a commit grants the quote's rewards at it).
    #[serde(with = "crate::event::rfc3339")]
    pub time: DateTime<Utc>,
    /// Sum of the lines.
    #[serde(with = "rust_decimal::serde::str")]
    pub subtotal: Decimal,
    /// Sum of the discounts.
    #[serde(with = "rust_decimal::serde::str")]
    pub discount: Decimal,
    /// subtotal − discount (≥ 0).
    #[serde(with = "rust_decimal::serde::str")]
    pub total: Decimal,
    /// The lines.
    pub lines: Vec<QuoteLine>,
    /// Applied promotions, in application order.
    pub applied: Vec<Applied>,
    /// Every other promotion, with its reason, in priority order.
    pub not_applied: Vec<NotApplied>,
}

fn money(c: i64) -> Decimal {
    Decimal::new(c, 2)
}

/// Decimal (validated to ≤ 2 places) → cents; saturates far beyond any real amount.
fn to_cents(d: Decimal) -> i64 {
    super::promotion::cents_of(d)
}

/// A set of cart lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct LineSet([u64; MAX_LINES / 64]);

impl LineSet {
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
    fn union(&mut self, o: &LineSet) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a |= b;
        }
    }
    fn minus(&mut self, o: &LineSet) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a &= !b;
        }
    }
    fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
    fn iter(&self) -> impl Iterator<Item = usize> + Clone + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            let mut b = *bits;
            std::iter::from_fn(move || {
                if b == 0 {
                    return None;
                }
                let t = b.trailing_zeros() as usize;
                b &= b - 1;
                Some(w * 64 + t)
            })
        })
    }
}

/// The cart prepared for evaluation: amounts in cents, lines indexed by sku and category.
struct Prepared<'c> {
    cart: &'c Cart,
    amounts: Vec<i64>,
    /// Unit prices in cents.
    unit: Vec<i64>,
    all: LineSet,
    by_sku: KeyIndex<'c>,
    by_category: KeyIndex<'c>,
    hour: u32,
    weekday: u32,
}

/// Cart keys (skus or categories) → lines, sorted by (hash, key).
type KeyIndex<'c> = Vec<(u64, &'c str, LineSet)>;

fn index<'c>(keys: impl Iterator<Item = &'c str>) -> KeyIndex<'c> {
    let mut v: KeyIndex<'c> = Vec::new();
    for (i, k) in keys.enumerate() {
        let h = key_hash(k);
        match v.binary_search_by(|(xh, x, _)| (*xh, *x).cmp(&(h, k))) {
            Ok(p) => v[p].2.insert(i),
            Err(p) => {
                let mut s = LineSet::default();
                s.insert(i);
                v.insert(p, (h, k, s));
            }
        }
    }
    v
}

/// Lines whose key is in `set` (`hashes` are its members' hashes, in the set's order).
fn select(index: &KeyIndex<'_>, set: &BTreeSet<String>, hashes: &[u64]) -> LineSet {
    let mut out = LineSet::default();
    for (k, &h) in set.iter().zip(hashes) {
        let mut p = index.partition_point(|(xh, _, _)| *xh < h);
        while let Some((xh, x, lines)) = index.get(p) {
            if *xh != h {
                break;
            }
            if *x == k.as_str() {
                out.union(lines);
            }
            p += 1;
        }
    }
    out
}

impl Cart {
    /// Check the cart: at least one sku per line, qty ≥ 1, prices ≥ 0 in cents, one currency.
    pub fn validate(&self) -> Result<(), CampaignError> {
        if self.lines.len() > MAX_LINES {
            return Err(CampaignError::OutOfRange {
                field: "lines".into(),
                reason: format!("{} lines; at most {MAX_LINES}", self.lines.len()),
            });
        }
        if let Some(c) = &self.currency {
            if c != CURRENCY {
                return Err(CampaignError::invalid(
                    "currency",
                    format!("unknown currency {c:?} (amounts are in {CURRENCY})"),
                ));
            }
        }
        for (i, l) in self.lines.iter().enumerate() {
            if l.sku.trim().is_empty() {
                return Err(CampaignError::invalid(
                    format!("lines[{i}].sku"),
                    "must not be empty",
                ));
            }
            if l.qty < 1 {
                return Err(CampaignError::invalid(
                    format!("lines[{i}].qty"),
                    format!("must be ≥ 1, got {}", l.qty),
                ));
            }
            if l.price < Decimal::ZERO {
                return Err(CampaignError::invalid(
                    format!("lines[{i}].price"),
                    format!("must be ≥ 0, got {}", l.price),
                ));
            }
            cents(&format!("lines[{i}].price"), l.price)?;
            if let Some(c) = &l.currency {
                if c != CURRENCY {
                    return Err(CampaignError::invalid(
                        format!("lines[{i}].currency"),
                        format!("unknown currency {c:?} (amounts are in {CURRENCY})"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn prepare(&self, tz: FixedOffset) -> Result<Prepared<'_>, CampaignError> {
        self.validate()?;
        let mut amounts = Vec::with_capacity(self.lines.len());
        let mut unit = Vec::with_capacity(self.lines.len());
        let mut all = LineSet::default();
        let mut subtotal: i64 = 0;
        for (i, l) in self.lines.iter().enumerate() {
            let u = to_cents(l.price);
            unit.push(u);
            let a = u
                .checked_mul(l.qty)
                .and_then(|a| {
                    subtotal = subtotal.checked_add(a)?;
                    Some(a)
                })
                .ok_or_else(|| CampaignError::OutOfRange {
                    field: format!("lines[{i}]"),
                    reason: "amount overflows".into(),
                })?;
            amounts.push(a);
            all.insert(i);
        }
        let local = self.time.with_timezone(&tz);
        Ok(Prepared {
            cart: self,
            amounts,
            unit,
            all,
            by_sku: index(self.lines.iter().map(|l| l.sku.as_str())),
            by_category: index(self.lines.iter().map(|l| l.category.as_str())),
            hour: local.hour(),
            weekday: local.weekday().number_from_monday(),
        })
    }
}

/// A promotion that passed the gates.
struct Candidate {
    /// Index into the promotion list.
    promo: usize,
    lines: LineSet,
    /// Money budget left, in cents (`None`: no money budget).
    left: Option<i64>,
}

fn listed(set: &BTreeSet<String>, v: &str) -> bool {
    set.is_empty() || set.contains(v)
}

/// The customer's tier in the condition's program (or in any program) is listed.
fn tier_matches(k: &super::promotion::Conditions, customer: &CustomerContext) -> bool {
    match &k.tier_program {
        Some(p) => customer
            .program_tiers
            .get(p)
            .is_some_and(|t| k.tiers.contains(t)),
        None => {
            customer.tier.as_ref().is_some_and(|t| k.tiers.contains(t))
                || customer.program_tiers.values().any(|t| k.tiers.contains(t))
        }
    }
}

/// Identity hashing for keys that already are hashes ([`key_hash`]).
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type KeyMap =
    std::collections::HashMap<u64, Vec<(u32, Box<str>)>, std::hash::BuildHasherDefault<KeyHasher>>;

/// The promotions indexed for evaluation (derived from the promotion list, rebuilt when it
/// changes): sku and category → the promotions listing it, and each promotion's stacking group
/// as a small integer. With it, matching a cart's lines touches only the promotions that name
/// one of its skus or categories.
#[derive(Debug, Default)]
pub struct PromoIndex {
    by_sku: KeyMap,
    by_category: KeyMap,
    /// Stacking group per promotion (`u32::MAX`: exclusive).
    group: Vec<u32>,
    groups: usize,
    /// How many promotions the index was built for.
    len: usize,
}

impl PromoIndex {
    /// Index `promos` (in evaluation order).
    pub fn build(promos: &[Promotion]) -> PromoIndex {
        let mut ix = PromoIndex {
            len: promos.len(),
            ..PromoIndex::default()
        };
        let mut names: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
        for (i, p) in promos.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for s in &p.conditions.skus {
                ix.by_sku
                    .entry(key_hash(s))
                    .or_default()
                    .push((i, s.as_str().into()));
            }
            for c in &p.conditions.categories {
                ix.by_category
                    .entry(key_hash(c))
                    .or_default()
                    .push((i, c.as_str().into()));
            }
            let g = match p.stacking.mode {
                StackMode::Exclusive => u32::MAX,
                _ => {
                    let n = names.len() as u32;
                    *names.entry(p.stacking.group.as_str()).or_insert(n)
                }
            };
            ix.group.push(g);
            // Warm the per-promotion precomputation outside the hot path.
            p.compiled();
        }
        ix.groups = names.len();
        ix
    }

    /// Lines of the cart each promotion's include lists select (only promotions that list a
    /// sku or category of the cart are touched).
    fn matched(&self, c: &Prepared<'_>, out: &mut [LineSet]) {
        for (map, keys) in [
            (&self.by_sku, &c.by_sku),
            (&self.by_category, &c.by_category),
        ] {
            for (h, k, lines) in keys {
                if let Some(v) = map.get(h) {
                    for (p, name) in v {
                        if **name == **k {
                            if let Some(m) = out.get_mut(*p as usize) {
                                m.union(lines);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Cart-level conditions, eligible lines, then limits and budget (the ledger is read only for
/// promotions that get that far).
fn gate(
    p: &Promotion,
    matched: &LineSet,
    c: &Prepared<'_>,
    customer: &CustomerContext,
    ledger: &Ledger,
) -> Result<(LineSet, Option<i64>), Reason> {
    let k = &p.conditions;
    let h = p.compiled();
    let t = c.cart.time;
    if k.start.is_some_and(|s| t < s) {
        return Err(Reason::NotStarted);
    }
    if k.end.is_some_and(|e| t >= e) {
        return Err(Reason::Ended);
    }
    if let Some([from, to]) = k.hours {
        let h = c.hour;
        let inside = if from < to {
            from <= h && h < to
        } else {
            h >= from || h < to
        };
        if !inside {
            return Err(Reason::OutsideHours);
        }
    }
    if h.weekdays != 0 && h.weekdays & (1 << c.weekday) == 0 {
        return Err(Reason::Weekday);
    }
    if !listed(&k.regions, &c.cart.region) {
        return Err(Reason::Region);
    }
    if !listed(&k.channels, &c.cart.channel) {
        return Err(Reason::Channel);
    }
    if !listed(&k.stores, &c.cart.store) {
        return Err(Reason::Store);
    }
    if !k.audiences.is_empty() && k.audiences.is_disjoint(&customer.audiences) {
        return Err(Reason::Audience);
    }
    if !k.tiers.is_empty() && !tier_matches(k, customer) {
        return Err(Reason::Tier);
    }
    match k.first_order {
        Some(true) if !customer.first_order => return Err(Reason::FirstOrderOnly),
        Some(false) if customer.first_order => return Err(Reason::RepeatOrderOnly),
        _ => {}
    }
    let mut lines = if k.skus.is_empty() && k.categories.is_empty() {
        c.all
    } else {
        *matched
    };
    if !k.exclude_skus.is_empty() {
        lines.minus(&select(&c.by_sku, &k.exclude_skus, &h.exclude_skus));
    }
    if !k.exclude_categories.is_empty() {
        lines.minus(&select(
            &c.by_category,
            &k.exclude_categories,
            &h.exclude_categories,
        ));
    }
    if lines.is_empty() {
        return Err(Reason::NoEligibleLines);
    }
    if p.limits.total.is_none() && p.limits.per_user.is_none() && p.budget.is_none() {
        return Ok((lines, None));
    }
    let usage = ledger.usage(&p.id);
    if let Some(total) = p.limits.total {
        if usage.is_some_and(|u| u.orders >= total) {
            return Err(Reason::TotalLimit(total));
        }
    }
    if let Some(per_user) = p.limits.per_user {
        let Some(user) = customer.oneid else {
            return Err(Reason::NoCustomer);
        };
        if usage.is_some_and(|u| u.by_user.get(&user).is_some_and(|n| *n >= per_user)) {
            return Err(Reason::UserLimit(per_user));
        }
    }
    let mut left = None;
    match &p.budget {
        Some(Budget::Money { .. }) => {
            let used = usage.map_or(0, |u| to_cents(u.money));
            let l = h.budget_money.unwrap_or(0).saturating_sub(used);
            if l <= 0 {
                return Err(Reason::Budget);
            }
            left = Some(l);
        }
        Some(Budget::Count { count }) => {
            let used = usage.map_or(0, |u| u.orders);
            if u64::try_from(*count).unwrap_or(0) <= used {
                return Err(Reason::Budget);
            }
        }
        None => {}
    }
    Ok((lines, left))
}

/// The effect of one promotion on the current amounts (its per-line shares are written to a
/// scratch buffer the caller owns).
struct Effect {
    discount: i64,
    cash: i64,
    rewards: Vec<Grant>,
}

/// How much of an effect to compute. Scoring alternatives needs only the value (and, for all
/// but the last member of a group, the per-line shares the next member works on); the full
/// output (rewards, ids) is built once, for the chosen alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    Value,
    Shares,
    Full,
}

/// Split `total` cents over `lines` in proportion to `weights[line]`: floors first, then the
/// remaining cents one each to the lines with the largest remainders (ties: lower line index).
/// Requires `total ≤ Σ weights`, so no line gets more than its weight.
pub(crate) fn allocate(total: i64, lines: &[usize], weights: &[i64]) -> Vec<(usize, i64)> {
    let mut out = Vec::new();
    allocate_into(
        total,
        lines.iter().copied(),
        weights,
        &mut out,
        &mut Vec::new(),
    );
    out
}

/// [`allocate`] into reused buffers (`out` and the remainders `rem` are cleared first).
fn allocate_into(
    total: i64,
    lines: impl Iterator<Item = usize> + Clone,
    weights: &[i64],
    out: &mut Vec<(usize, i64)>,
    rem: &mut Vec<i128>,
) {
    out.clear();
    rem.clear();
    let sum: i128 = lines.clone().map(|i| i128::from(weights[i])).sum();
    if total <= 0 || sum <= 0 {
        return;
    }
    let mut given: i64 = 0;
    for i in lines {
        let exact = i128::from(total) * i128::from(weights[i]);
        // Quotient ≤ weight (total ≤ sum), so it fits in i64.
        let q = i64::try_from(exact / sum).unwrap_or(weights[i]);
        given += q;
        out.push((i, q));
        rem.push(exact % sum);
    }
    let mut left = total - given;
    // Fewer cents are left than lines have a non-zero remainder; picking the largest
    // remainder each time (the first, i.e. lowest line, on ties) needs no sort.
    while left > 0 {
        let mut best: Option<usize> = None;
        for (k, r) in rem.iter().enumerate() {
            if *r > 0 && best.is_none_or(|b| *r > rem[b]) {
                best = Some(k);
            }
        }
        let Some(k) = best else { break };
        out[k].1 += 1;
        rem[k] = 0;
        left -= 1;
    }
    out.retain(|(_, q)| *q > 0);
}

fn times(every: bool, eligible: i64, threshold: i64, per_order: Option<u64>) -> u64 {
    let n = if every && threshold > 0 {
        u64::try_from(eligible / threshold).unwrap_or(0)
    } else {
        1
    };
    per_order.map_or(n, |m| n.min(m))
}

fn grant(reward: &Reward, count: u64, timing: Timing) -> Result<(Grant, i64), Reason> {
    Ok(match reward {
        Reward::RedPacket { amount } => {
            let cash = to_cents(*amount)
                .checked_mul(i64::try_from(count).map_err(|_| Reason::NoEffect)?)
                .ok_or(Reason::NoEffect)?;
            (
                Grant::RedPacket {
                    amount: *amount,
                    count,
                    timing,
                },
                cash,
            )
        }
        Reward::Coupon { template, kind } => (
            Grant::Coupon {
                template: template.clone(),
                kind: *kind,
                count,
                timing,
            },
            0,
        ),
        Reward::Points { points, program } => (
            Grant::Points {
                program: program.clone(),
                points: i64::try_from(count)
                    .ok()
                    .and_then(|c| points.checked_mul(c))
                    .ok_or(Reason::NoEffect)?,
                timing,
            },
            0,
        ),
        Reward::Goods { sku, qty } => (
            Grant::Goods {
                sku: sku.clone(),
                qty: u64::from(*qty).saturating_mul(count),
                timing,
            },
            0,
        ),
    })
}

/// Percent of `eligible` cents, rounded half away from zero, exactly.
pub(crate) fn percent_of(eligible: i64, percent: &Decimal, frac: Option<(i128, i128)>) -> i64 {
    let int = frac.and_then(|(num, den)| {
        let twice = i128::from(eligible).checked_mul(num)?.checked_mul(2)?;
        i64::try_from((twice + den) / (2 * den)).ok()
    });
    int.unwrap_or_else(|| {
        (Decimal::from(eligible) * *percent / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
            .to_i64()
            .unwrap_or(eligible)
    })
}

/// Scratch buffers reused across the promotions of one evaluation.
#[derive(Default)]
struct Scratch {
    shares: Vec<(usize, i64)>,
    rem: Vec<i128>,
}

/// Apply one promotion to the current amounts (not yet committed to them); its per-line
/// shares go to `s.shares`.
fn effect(
    p: &Promotion,
    c: &Prepared<'_>,
    lines: &LineSet,
    amounts: &[i64],
    detail: Detail,
    s: &mut Scratch,
) -> Result<Effect, Reason> {
    let h = p.compiled();
    s.shares.clear();
    let mut lines = *lines;
    let mut exchange_line = None;
    if let Action::ThresholdExchange { sku, .. } = &p.action {
        // The add-on does not count toward its own threshold.
        exchange_line = c
            .cart
            .lines
            .iter()
            .position(|l| &l.sku == sku)
            .filter(|&i| amounts[i] > 0);
        if let Some(i) = exchange_line {
            lines.remove(i);
        }
    }
    let eligible: i64 = lines.iter().map(|i| amounts[i]).sum();
    let k = &p.conditions;
    if let Some(need) = h.min_amount {
        if eligible < need {
            return Err(Reason::MinAmount(need, eligible));
        }
    }
    if let Some(need) = k.min_qty {
        let have: u64 = lines
            .iter()
            .map(|i| u64::try_from(c.cart.lines[i].qty).unwrap_or(0))
            .sum();
        if have < need {
            return Err(Reason::MinQty(need, have));
        }
    }
    let threshold = h.threshold;
    if eligible < threshold || (threshold == 0 && eligible == 0 && exchange_line.is_none()) {
        return Err(Reason::Threshold(threshold, eligible));
    }
    let per_order = p.limits.per_order;
    let mut e = Effect {
        discount: 0,
        cash: 0,
        rewards: Vec::new(),
    };
    let mut rewarded = false;
    let split = |d: i64, s: &mut Scratch| {
        if detail != Detail::Value {
            allocate_into(d, lines.iter(), amounts, &mut s.shares, &mut s.rem);
        }
    };
    match &p.action {
        Action::ThresholdDiscount { every, .. } => {
            let mut d = match h.off {
                Some(off) => off.saturating_mul(
                    i64::try_from(times(*every, eligible, threshold, per_order))
                        .unwrap_or(i64::MAX),
                ),
                None => h
                    .tiers
                    .iter()
                    .rev()
                    .find(|(t, _)| *t <= eligible)
                    .map_or(0, |(_, off)| *off),
            };
            if let Some(m) = h.max_off {
                d = d.min(m);
            }
            e.discount = d.min(eligible);
            split(e.discount, s);
        }
        Action::PercentOff { percent, .. } => {
            let mut d = percent_of(eligible, percent, h.percent);
            if let Some(m) = h.max_off {
                d = d.min(m);
            }
            e.discount = d.min(eligible);
            split(e.discount, s);
        }
        Action::FixedPrice { .. } => {
            let target = h.price;
            for i in lines.iter() {
                let unit = c.unit[i];
                let d = (unit - target)
                    .max(0)
                    .saturating_mul(c.cart.lines[i].qty)
                    .min(amounts[i]);
                if d > 0 {
                    if detail != Detail::Value {
                        s.shares.push((i, d));
                    }
                    e.discount += d;
                }
            }
        }
        Action::ThresholdGift { reward, every, .. }
        | Action::ThresholdRebate { reward, every, .. } => {
            let timing = if matches!(p.action, Action::ThresholdGift { .. }) {
                Timing::WithOrder
            } else {
                Timing::AfterOrder
            };
            let n = times(*every, eligible, threshold, per_order);
            if detail == Detail::Full {
                let (g, cash) = grant(reward, n, timing)?;
                e.cash = cash;
                e.rewards.push(g);
            } else {
                e.cash = match reward {
                    Reward::RedPacket { .. } => i64::try_from(n)
                        .ok()
                        .and_then(|n| h.cash.checked_mul(n))
                        .ok_or(Reason::NoEffect)?,
                    Reward::Points { points, .. } => {
                        // The same overflow check as the full output makes.
                        i64::try_from(n)
                            .ok()
                            .and_then(|n| points.checked_mul(n))
                            .ok_or(Reason::NoEffect)?;
                        0
                    }
                    _ => 0,
                };
            }
            rewarded = true;
        }
        Action::ThresholdExchange { sku, price, .. } => match exchange_line {
            Some(i) => {
                let d = (c.unit[i] - h.price).max(0).min(amounts[i]);
                if d > 0 {
                    if detail != Detail::Value {
                        s.shares.push((i, d));
                    }
                    e.discount = d;
                }
            }
            None => {
                rewarded = true;
                if detail == Detail::Full {
                    e.rewards.push(Grant::ExchangeOffer {
                        sku: sku.clone(),
                        price: *price,
                        timing: Timing::WithOrder,
                    });
                }
            }
        },
        Action::PointsMultiplier { factor, .. } => {
            rewarded = true;
            if detail == Detail::Full {
                e.rewards.push(Grant::PointsMultiplier {
                    factor: *factor,
                    on_amount: money(eligible),
                    timing: Timing::AfterOrder,
                });
            }
        }
    }
    if e.discount == 0 && !rewarded {
        return Err(Reason::NoEffect);
    }
    Ok(e)
}

/// The outcome of simulating one stacking alternative.
struct Simulated {
    applied: Vec<Applied>,
    applied_count: usize,
    failed: Vec<(usize, Reason)>,
    amounts: Vec<i64>,
    benefit: i64,
}

/// Apply an alternative's members in order, each on the amounts the previous ones left.
/// With `full`, build the output; otherwise only score it.
fn simulate(
    promos: &[Promotion],
    members: &[&Candidate],
    c: &Prepared<'_>,
    full: bool,
    scratch: &mut Scratch,
) -> Simulated {
    let mut s = Simulated {
        applied: Vec::new(),
        applied_count: 0,
        failed: Vec::new(),
        amounts: c.amounts.clone(),
        benefit: 0,
    };
    for (j, cand) in members.iter().enumerate() {
        let p = &promos[cand.promo];
        let detail = if full {
            Detail::Full
        } else if j + 1 < members.len() {
            Detail::Shares
        } else {
            Detail::Value
        };
        let e = match effect(p, c, &cand.lines, &s.amounts, detail, scratch) {
            Ok(e) => e,
            Err(r) => {
                s.failed.push((cand.promo, r));
                continue;
            }
        };
        let use_ = e.discount + e.cash;
        if cand.left.is_some_and(|left| use_ > left) {
            s.failed.push((cand.promo, Reason::Budget));
            continue;
        }
        for &(i, d) in &scratch.shares {
            s.amounts[i] -= d;
        }
        s.benefit += use_;
        s.applied_count += 1;
        if full {
            s.applied.push(Applied {
                id: p.id.clone(),
                discount: money(e.discount),
                budget_use: money(use_),
                lines: scratch
                    .shares
                    .iter()
                    .map(|&(line, d)| LineShare {
                        line,
                        discount: money(d),
                    })
                    .collect(),
                rewards: e.rewards,
            });
        }
    }
    s
}

/// Evaluate `cart` for `customer` against `promos` (sorted by priority, then id).
pub fn evaluate(
    promos: &[Promotion],
    ledger: &Ledger,
    cart: &Cart,
    customer: &CustomerContext,
    mode: SelectMode,
    tz: FixedOffset,
) -> Result<Quote, CampaignError> {
    evaluate_indexed(
        &PromoIndex::build(promos),
        promos,
        ledger,
        cart,
        customer,
        mode,
        tz,
    )
}

/// [`evaluate`] with the promotions' index built beforehand (`Campaigns` keeps it).
pub fn evaluate_indexed(
    index: &PromoIndex,
    promos: &[Promotion],
    ledger: &Ledger,
    cart: &Cart,
    customer: &CustomerContext,
    mode: SelectMode,
    tz: FixedOffset,
) -> Result<Quote, CampaignError> {
    if index.len != promos.len() {
        return Err(CampaignError::Internal(
            "the promotion index was built for another list".into(),
        ));
    }
    let c = cart.prepare(tz)?;
    let mut matched = vec![LineSet::default(); promos.len()];
    index.matched(&c, &mut matched);
    let mut reasons: Vec<Option<Reason>> = vec![None; promos.len()];
    let mut cands: Vec<Candidate> = Vec::new();
    for (i, p) in promos.iter().enumerate() {
        match gate(p, &matched[i], &c, customer, ledger) {
            Ok((lines, left)) => cands.push(Candidate {
                promo: i,
                lines,
                left,
            }),
            Err(r) => reasons[i] = Some(r),
        }
    }
    // Alternatives, in the priority order of their first member: each exclusive promotion
    // alone, each group's promotions together.
    let mut alts: Vec<Vec<&Candidate>> = Vec::new();
    let mut alt_of_group: Vec<usize> = vec![usize::MAX; index.groups];
    for cand in &cands {
        let g = index.group[cand.promo];
        if g == u32::MAX {
            alts.push(vec![cand]);
            continue;
        }
        let slot = &mut alt_of_group[g as usize];
        if *slot == usize::MAX {
            *slot = alts.len();
            alts.push(Vec::new());
        }
        alts[*slot].push(cand);
    }
    let mut scratch = Scratch::default();
    let mut sims: Vec<Option<Simulated>> = Vec::with_capacity(alts.len());
    let mut best: Option<usize> = None;
    for (k, members) in alts.iter().enumerate() {
        let sim = simulate(promos, members, &c, false, &mut scratch);
        let better = match best.and_then(|b| sims[b].as_ref()) {
            None => sim.applied_count > 0,
            Some(b) => mode == SelectMode::BestForCustomer && sim.benefit > b.benefit,
        };
        if better {
            best = Some(k);
        }
        sims.push(Some(sim));
        if mode == SelectMode::Priority && best.is_some() {
            break;
        }
    }
    let mut amounts = c.amounts.clone();
    let mut applied = Vec::new();
    let chosen: Arc<str> =
        best.map_or_else(|| Arc::from(""), |k| promos[alts[k][0].promo].id.clone());
    for (k, members) in alts.iter().enumerate() {
        let sim = sims.get_mut(k).and_then(Option::take);
        if let Some(sim) = &sim {
            for (i, r) in &sim.failed {
                reasons[*i] = Some(r.clone());
            }
        }
        if Some(k) == best {
            // Scoring skipped the output: build it for the chosen alternative only.
            let sim = simulate(promos, members, &c, true, &mut scratch);
            amounts = sim.amounts;
            applied = sim.applied;
            continue;
        }
        for m in members {
            if reasons[m.promo].is_none() {
                reasons[m.promo] = Some(Reason::Stacking(chosen.clone()));
            }
        }
    }
    let subtotal: i64 = c.amounts.iter().sum();
    let total: i64 = amounts.iter().sum();
    let lines = cart
        .lines
        .iter()
        .zip(c.amounts.iter().zip(&amounts))
        .map(|(l, (&a, &left))| QuoteLine {
            sku: l.sku.clone(),
            amount: money(a),
            discount: money(a - left),
            total: money(left),
        })
        .collect();
    let not_applied = reasons
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.map(|reason| NotApplied {
                id: promos[i].id.clone(),
                reason,
            })
        })
        .collect();
    Ok(Quote {
        user: customer.oneid,
        mode,
        time: cart.time,
        subtotal: money(subtotal),
        discount: money(subtotal - total),
        total: money(total),
        lines,
        applied,
        not_applied,
    })
}
