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
use super::promotion::{key_hash, Action, Budget, CouponKind, Promotion, Reward, StackMode};
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
        serialize_not_applied(s, &self.id, &self.reason)
    }
}

/// The wire shape of one promotion that did not apply: `{"id", "code", "reason"}`.
fn serialize_not_applied<S: serde::Serializer>(
    s: S,
    id: &str,
    reason: &Reason,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("NotApplied", 3)?;
    st.serialize_field("id", id)?;
    st.serialize_field("code", reason.code())?;
    st.serialize_field("reason", &reason.to_string())?;
    st.end()
}

/// Every promotion of the book that did not apply, with its reason, in priority order.
///
/// A quote explains every promotion that did not apply, which on a large book is nearly all
/// of them, so the list is stored compactly: each entry is the promotion's position in the
/// book's id table (shared by every quote of the same book, not copied) and its reason, and
/// a [`Reason::Stacking`] entry names the chosen promotion through that table too. Cloning one
/// shared id per entry cost about a quarter of an evaluation. Reading an entry
/// ([`get`](Self::get), [`iter`](Self::iter)) materializes a [`NotApplied`].
///
/// Serializes as the list `[{"id", "code", "reason"}, ...]`.
#[derive(Clone, Default)]
pub struct NotAppliedList {
    /// The book's promotion ids, in evaluation order (shared).
    ids: Arc<[Arc<str>]>,
    /// Position in `ids` of the chosen alternative's first promotion (what a stacking reason
    /// names).
    chosen: Option<u32>,
    entries: Vec<Entry>,
}

/// One entry of a [`NotAppliedList`].
#[derive(Debug, Clone)]
struct Entry {
    /// Position in the id table.
    promo: u32,
    /// The reason; `None` for [`Reason::Stacking`] (another alternative, `chosen`, won),
    /// so that no entry holds a copy of the chosen id.
    reason: Option<Reason>,
}

impl NotAppliedList {
    /// How many promotions did not apply.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when every promotion applied.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `i`-th entry (in priority order).
    pub fn get(&self, i: usize) -> Option<NotApplied> {
        self.entries.get(i).map(|e| self.materialize(e))
    }

    /// The entries, in priority order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = NotApplied> + '_ {
        self.entries.iter().map(|e| self.materialize(e))
    }

    /// Why the promotion `id` did not apply (`None`: it applied, or is not in the book).
    pub fn reason_of(&self, id: &str) -> Option<Reason> {
        self.iter().find(|n| &*n.id == id).map(|n| n.reason)
    }

    fn id(&self, promo: u32) -> &Arc<str> {
        &self.ids[promo as usize]
    }

    /// The reason a stacking entry stands for.
    fn stacking(&self) -> Reason {
        Reason::Stacking(
            self.chosen
                .map_or_else(|| Arc::from(""), |k| self.id(k).clone()),
        )
    }

    fn materialize(&self, e: &Entry) -> NotApplied {
        NotApplied {
            id: self.id(e.promo).clone(),
            reason: e.reason.clone().unwrap_or_else(|| self.stacking()),
        }
    }
}

impl PartialEq for NotAppliedList {
    fn eq(&self, o: &Self) -> bool {
        // By content: the id tables of two books may differ in promotions that are not listed.
        self.len() == o.len() && self.iter().eq(o.iter())
    }
}

impl Eq for NotAppliedList {}

impl std::fmt::Debug for NotAppliedList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for NotAppliedList {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        /// One entry, serialized without materializing it.
        struct Item<'a>(&'a str, &'a Reason);
        impl Serialize for Item<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_not_applied(s, self.0, self.1)
            }
        }
        let stacking = self.stacking();
        let mut seq = s.serialize_seq(Some(self.entries.len()))?;
        for e in &self.entries {
            seq.serialize_element(&Item(
                self.id(e.promo),
                e.reason.as_ref().unwrap_or(&stacking),
            ))?;
        }
        seq.end()
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
    pub not_applied: NotAppliedList,
    /// Over what `commit` reads (customer, time, subtotal, applied promotions with their
    /// discounts, budget use and rewards): the engine's `commit` refuses a quote that no
    /// longer matches it (see [`QuoteRef::expected_checksum`](super::QuoteRef::expected_checksum)).
    pub checksum: String,
}

impl Quote {
    /// The checksum of the quote's committable fields (what [`Quote::checksum`] holds).
    pub fn expected_checksum(&self) -> String {
        let mut sum = super::ledger::QuoteSum::new(self.user, Some(self.time), Some(self.subtotal));
        for a in &self.applied {
            sum.applied(&a.id, a.discount, Some(a.budget_use));
            for g in &a.rewards {
                match g {
                    Grant::Coupon {
                        template, count, ..
                    } => sum.coupon(template, *count),
                    Grant::Points {
                        points, program, ..
                    } => sum.points(*points, program.as_deref()),
                    _ => sum.other(),
                }
            }
        }
        sum.finish()
    }
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
    fn intersects(&self, o: &LineSet) -> bool {
        self.0.iter().zip(o.0).any(|(a, b)| a & b != 0)
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
    /// The cart's time as (seconds, nanoseconds) since the epoch.
    time: (i64, u32),
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
    /// Check the cart: at least one sku per line, qty ≥ 1, prices ≥ 0 in cents, line values
    /// and the subtotal at most [`MAX_AMOUNT`](crate::money::MAX_AMOUNT) (else `OutOfRange`
    /// naming the line), one currency.
    pub fn validate(&self) -> Result<(), CampaignError> {
        let mut subtotal = Decimal::ZERO;
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
            if l.price.scale() > 2 || l.price > crate::money::MAX_AMOUNT {
                // Checked only here: the field name is formatted for the error alone.
                money_bound(&format!("lines[{i}].price"), l.price, 2)?;
            }
            // Bounded amounts: the line value and the subtotal stay within `MAX_AMOUNT`, so
            // the evaluator's cents (i64) never saturate.
            let value =
                crate::money::line_value(l.price, Decimal::from(l.qty)).map_err(|reason| {
                    CampaignError::OutOfRange {
                        field: format!("lines[{i}]"),
                        reason,
                    }
                })?;
            subtotal += value;
            if subtotal > crate::money::MAX_AMOUNT {
                return Err(CampaignError::OutOfRange {
                    field: "lines".into(),
                    reason: format!(
                        "the subtotal reaches {subtotal} at line {i}, above the largest amount \
                         accepted, {}",
                        crate::money::MAX_AMOUNT
                    ),
                });
            }
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

    /// Check every line price against the currency's `minor_units` (0 to 2; [`Cart::validate`]
    /// checks 2): `OutOfRange` naming `lines[i].price`.
    pub fn check_minor_units(&self, minor_units: u32) -> Result<(), CampaignError> {
        for (i, l) in self.lines.iter().enumerate() {
            money_bound(&format!("lines[{i}].price"), l.price, minor_units)?;
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
            time: (self.time.timestamp(), self.time.timestamp_subsec_nanos()),
            hour: local.hour(),
            weekday: local.weekday().number_from_monday(),
        })
    }
}

/// [`crate::money::check`] as a campaigns error.
fn money_bound(field: &str, v: Decimal, minor_units: u32) -> Result<(), CampaignError> {
    crate::money::check(field, v, minor_units).map_err(|e| CampaignError::OutOfRange {
        field: field.to_owned(),
        reason: match e {
            crate::Error::OutOfRange { reason, .. } => reason,
            other => other.to_string(),
        },
    })
}

/// A promotion that passed the gates.
struct Candidate {
    /// Index into the promotion list.
    promo: usize,
    lines: LineSet,
    /// For 满换, the add-on's line ([`NO_LINE`]: none).
    add_on: usize,
    /// Money budget left, in cents (`None`: no money budget).
    left: Option<i64>,
}

/// No cart line.
const NO_LINE: usize = usize::MAX;

impl Candidate {
    /// The lines it reads and may discount: its lines, and for 满换 the add-on's line (which
    /// is discounted even when the conditions leave it out).
    fn reach(&self) -> LineSet {
        let mut r = self.lines;
        if self.add_on != NO_LINE {
            r.insert(self.add_on);
        }
        r
    }
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

/// Key hash → the keys with that hash, each with the promotions listing it (in order).
type KeyMap = std::collections::HashMap<
    u64,
    Vec<(Box<str>, Vec<u32>)>,
    std::hash::BuildHasherDefault<KeyHasher>,
>;

/// Add promotion `i` under `key`.
fn key_entry(map: &mut KeyMap, key: &str, i: u32) {
    let keys = map.entry(key_hash(key)).or_default();
    match keys.iter_mut().find(|(k, _)| **k == *key) {
        Some((_, ps)) => ps.push(i),
        None => keys.push((key.into(), vec![i])),
    }
}

/// The promotions indexed for evaluation (derived from the promotion list, rebuilt when it
/// changes): sku and category → the promotions listing it, and each promotion's stacking group
/// as a small integer. With it, matching a cart's lines touches only the promotions that name
/// one of its skus or categories.
#[derive(Debug, Default)]
pub struct PromoIndex {
    by_sku: KeyMap,
    by_category: KeyMap,
    /// The promotions' ids, in evaluation order (every quote's [`NotAppliedList`] shares it).
    ids: Arc<[Arc<str>]>,
    /// What the gate reads of each promotion, packed.
    rows: Vec<GateRow>,
    /// Stacking group per promotion (`u32::MAX`: exclusive).
    group: Vec<u32>,
    groups: usize,
    /// How many promotions the index was built for.
    len: usize,
    /// How evaluation searches the stacking alternatives (tests compare the two).
    pub(crate) search: Search,
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
                key_entry(&mut ix.by_sku, s, i);
            }
            for c in &p.conditions.categories {
                key_entry(&mut ix.by_category, c, i);
            }
            let g = match p.stacking.mode {
                StackMode::Exclusive => u32::MAX,
                _ => {
                    let n = names.len() as u32;
                    *names.entry(p.stacking.group.as_str()).or_insert(n)
                }
            };
            ix.group.push(g);
            ix.rows.push(GateRow::of(p));
        }
        ix.groups = names.len();
        ix.ids = promos.iter().map(|p| p.id.clone()).collect();
        ix
    }

    /// Lines of the cart each promotion's include lists select, sparse: promotion `i`'s
    /// lines are `m.sets[m.slot[i] - 1]` (`slot` 0: none). Only the promotions that list a
    /// sku or category of the cart are touched.
    fn matched(&self, c: &Prepared<'_>) -> Matched {
        let mut m = Matched {
            slot: vec![0; self.len],
            sets: Vec::new(),
        };
        for (map, keys) in [
            (&self.by_sku, &c.by_sku),
            (&self.by_category, &c.by_category),
        ] {
            for (h, k, lines) in keys {
                let Some(named) = map.get(h) else { continue };
                let Some((_, promos)) = named.iter().find(|(name, _)| **name == **k) else {
                    continue;
                };
                for &p in promos {
                    let Some(slot) = m.slot.get_mut(p as usize) else {
                        continue;
                    };
                    match *slot {
                        0 => {
                            m.sets.push(*lines);
                            *slot = m.sets.len() as u32;
                        }
                        k => m.sets[k as usize - 1].union(lines),
                    }
                }
            }
        }
        m
    }
}

/// The cart lines matched per promotion (see [`PromoIndex::matched`]).
struct Matched {
    slot: Vec<u32>,
    sets: Vec<LineSet>,
}

impl Matched {
    fn get(&self, i: usize) -> LineSet {
        match self.slot[i] {
            0 => LineSet::default(),
            k => self.sets[k as usize - 1],
        }
    }
}

/// What the gate reads of a promotion, packed into one small row (48 bytes), so that the pass
/// over every promotion of the book reads one row each instead of walking the full
/// `Promotion` (several cache lines apart). Conditions that need more (cart-level lists, exclusions,
/// limits and budgets) are flagged, and only then is the promotion itself read.
#[derive(Debug, Clone, Copy)]
struct GateRow {
    /// Start of the window as (seconds, nanoseconds) since the epoch (`i64::MIN`: none).
    start: (i64, u32),
    /// End of the window, exclusive (`i64::MAX`: none).
    end: (i64, u32),
    /// Daily hours `[from, to)` (when [`GateRow::HOURS`] is set).
    hours: [u32; 2],
    /// Bit `d` set for weekday `d` (1 = Monday); 0 = any day.
    weekdays: u8,
    flags: u16,
}

impl GateRow {
    const HOURS: u16 = 1;
    /// Regions, channels, stores, audiences, tiers or first order: read the promotion.
    const CART_LEVEL: u16 = 1 << 1;
    /// Include lists (skus or categories): the eligible lines are the matched ones.
    const INCLUDES: u16 = 1 << 2;
    const EXCLUDES: u16 = 1 << 3;
    /// Limits or a budget: read the ledger.
    const LEDGER: u16 = 1 << 4;
    /// A 满换 action (its add-on's line is looked up).
    const EXCHANGE: u16 = 1 << 5;

    fn of(p: &Promotion) -> GateRow {
        let k = &p.conditions;
        let at = |t: &DateTime<Utc>| (t.timestamp(), t.timestamp_subsec_nanos());
        let flag = |on: bool, f: u16| if on { f } else { 0 };
        GateRow {
            start: k.start.as_ref().map_or((i64::MIN, 0), at),
            end: k.end.as_ref().map_or((i64::MAX, u32::MAX), at),
            hours: k.hours.unwrap_or_default(),
            // Also warms the per-promotion precomputation outside the hot path.
            weekdays: p.compiled().weekdays,
            flags: flag(k.hours.is_some(), Self::HOURS)
                | flag(
                    !k.regions.is_empty()
                        || !k.channels.is_empty()
                        || !k.stores.is_empty()
                        || !k.audiences.is_empty()
                        || !k.tiers.is_empty()
                        || k.first_order.is_some(),
                    Self::CART_LEVEL,
                )
                | flag(
                    !k.skus.is_empty() || !k.categories.is_empty(),
                    Self::INCLUDES,
                )
                | flag(
                    !k.exclude_skus.is_empty() || !k.exclude_categories.is_empty(),
                    Self::EXCLUDES,
                )
                | flag(
                    p.limits.total.is_some() || p.limits.per_user.is_some() || p.budget.is_some(),
                    Self::LEDGER,
                )
                | flag(
                    matches!(p.action, Action::ThresholdExchange { .. }),
                    Self::EXCHANGE,
                ),
        }
    }
}

/// Cart-level conditions, eligible lines, then limits and budget (the ledger is read only for
/// promotions that get that far): the promotion's eligible lines and money budget left, or
/// `None` with the reason written to `reason`. `row` is [`GateRow::of`] `p`; `p` is read only
/// where a flag says so.
#[inline(always)]
fn gate(
    p: &Promotion,
    row: &GateRow,
    matched: &LineSet,
    c: &Prepared<'_>,
    customer: &CustomerContext,
    ledger: &Ledger,
    reason: &mut Option<Reason>,
) -> Option<(LineSet, Option<i64>)> {
    match gate_or_reason(p, row, matched, c, customer, ledger) {
        Ok(v) => Some(v),
        Err(r) => {
            *reason = Some(r);
            None
        }
    }
}

#[inline(always)]
fn gate_or_reason(
    p: &Promotion,
    row: &GateRow,
    matched: &LineSet,
    c: &Prepared<'_>,
    customer: &CustomerContext,
    ledger: &Ledger,
) -> Result<(LineSet, Option<i64>), Reason> {
    if c.time < row.start {
        return Err(Reason::NotStarted);
    }
    if c.time >= row.end {
        return Err(Reason::Ended);
    }
    if row.flags & GateRow::HOURS != 0 {
        let [from, to] = row.hours;
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
    if row.weekdays != 0 && row.weekdays & (1 << c.weekday) == 0 {
        return Err(Reason::Weekday);
    }
    if row.flags & GateRow::CART_LEVEL != 0 {
        cart_level(p, c, customer)?;
    }
    let mut lines = if row.flags & GateRow::INCLUDES != 0 {
        *matched
    } else {
        c.all
    };
    if row.flags & GateRow::EXCLUDES != 0 {
        let (k, h) = (&p.conditions, p.compiled());
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
    }
    if lines.is_empty() {
        return Err(Reason::NoEligibleLines);
    }
    if row.flags & GateRow::LEDGER == 0 {
        return Ok((lines, None));
    }
    limits(p, lines, customer, ledger)
}

/// The cart-level lists (region, channel, store) and the customer conditions.
fn cart_level(p: &Promotion, c: &Prepared<'_>, customer: &CustomerContext) -> Result<(), Reason> {
    let k = &p.conditions;
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
        Some(true) if !customer.first_order => Err(Reason::FirstOrderOnly),
        Some(false) if customer.first_order => Err(Reason::RepeatOrderOnly),
        _ => Ok(()),
    }
}

/// Limits and budget, for a promotion with eligible `lines`.
fn limits(
    p: &Promotion,
    lines: LineSet,
    customer: &CustomerContext,
    ledger: &Ledger,
) -> Result<(LineSet, Option<i64>), Reason> {
    let h = p.compiled();
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
    /// The most this promotion can discount on these lines once other promotions lowered
    /// their amounts (its discount, except for tiers whose `off` does not grow with the
    /// threshold). Bounds what a stacking alternative can be worth.
    bound: i64,
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
        &mut Alloc::default(),
    );
    out
}

/// The remainders [`allocate_into`] ranks, reused across calls.
#[derive(Default)]
struct Alloc {
    /// General case: (remainder, position in `out`).
    rem: Vec<(i128, usize)>,
    /// Fast case: remainder and position packed into one integer (see [`allocate_small`]).
    keys: Vec<u64>,
}

/// [`allocate`] into reused buffers (`out` is cleared first).
fn allocate_into(
    total: i64,
    lines: impl Iterator<Item = usize> + Clone,
    weights: &[i64],
    out: &mut Vec<(usize, i64)>,
    buf: &mut Alloc,
) {
    out.clear();
    if total <= 0 {
        return;
    }
    // The usual case: at most 256 lines, weights ≥ 0 whose sum is below √i64::MAX.
    let (mut sum, mut n, mut negative) = (0i64, 0usize, false);
    for i in lines.clone() {
        let w = weights[i];
        negative |= w < 0;
        sum = sum.saturating_add(w);
        n += 1;
    }
    if !negative && sum > 0 && sum <= 3_037_000_499 && n <= 256 {
        allocate_small(total, sum, lines, weights, out, &mut buf.keys);
        return;
    }
    let rem = &mut buf.rem;
    rem.clear();
    let sum: i128 = lines.clone().map(|i| i128::from(weights[i])).sum();
    if total <= 0 || sum <= 0 {
        return;
    }
    // total ≤ sum and every weight ≤ sum, so below √i64::MAX the products fit in i64 and the
    // divisions stay 64-bit (128-bit division is a slow library call).
    let small = i64::try_from(sum).ok().filter(|s| *s <= 3_037_000_499);
    let mut given: i64 = 0;
    for i in lines {
        let (q, r) = match small {
            Some(s) => {
                let exact = total * weights[i];
                (exact / s, i128::from(exact % s))
            }
            None => {
                let exact = i128::from(total) * i128::from(weights[i]);
                // Quotient ≤ weight (total ≤ sum), so it fits in i64.
                (
                    i64::try_from(exact / sum).unwrap_or(weights[i]),
                    exact % sum,
                )
            }
        };
        given += q;
        rem.push((r, out.len()));
        out.push((i, q));
    }
    // The remaining cents go one each to the lines with the largest remainders (ties: the
    // lower line). Σ remainders = left × sum with every remainder < sum, so more than `left`
    // remainders are non-zero and the `left` largest are all positive.
    let left = usize::try_from(total - given).unwrap_or(0).min(rem.len());
    if left > 0 {
        let by_remainder = |a: &(i128, usize), b: &(i128, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if left < rem.len() {
            rem.select_nth_unstable_by(left - 1, by_remainder);
        }
        for &(_, k) in &rem[..left] {
            out[k].1 += 1;
        }
    }
    out.retain(|(_, q)| *q > 0);
}

/// [`allocate_into`] for non-negative weights summing to `sum` ≤ √i64::MAX over at most 256
/// lines, with no integer division per line (a 64-bit division takes tens of cycles, and this
/// runs for every member of every simulated alternative): every product `total × weight` ≤ sum² fits in i64, its quotient by `sum` is estimated in
/// floating point, which is within one of the exact quotient (quotients are below 2³², far
/// inside f64's 53 bits), and corrected to the exact quotient and remainder. Remainders are
/// below `sum` < 2³², so a remainder and the line's position pack into one `u64` key,
/// `remainder << 8 | (255 − position)`, whose order is the ranking: larger remainder first,
/// ties to the lower position.
fn allocate_small(
    total: i64,
    sum: i64,
    lines: impl Iterator<Item = usize>,
    weights: &[i64],
    out: &mut Vec<(usize, i64)>,
    keys: &mut Vec<u64>,
) {
    keys.clear();
    let inv = 1.0 / sum as f64;
    let mut given: i64 = 0;
    for i in lines {
        // total ≤ sum and weight ≤ sum.
        let exact = total * weights[i];
        let mut q = (exact as f64 * inv) as i64;
        let mut r = exact - q * sum;
        if r < 0 {
            q -= 1;
            r += sum;
        } else if r >= sum {
            q += 1;
            r -= sum;
        }
        debug_assert!((0..sum).contains(&r) && q * sum + r == exact);
        given += q;
        keys.push(((r as u64) << 8) | (255 - out.len() as u64));
        out.push((i, q));
    }
    // As in the general case, the `left` largest remainders are all positive.
    let left = usize::try_from(total - given).unwrap_or(0).min(keys.len());
    if left > 0 {
        if left < keys.len() {
            keys.select_nth_unstable_by(left - 1, |a, b| b.cmp(a));
        }
        for &k in &keys[..left] {
            out[255 - (k & 255) as usize].1 += 1;
        }
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
        // 64-bit when it fits (the usual case); 128-bit division is a slow library call.
        let small = i64::try_from(num)
            .ok()
            .zip(i64::try_from(den).ok())
            .and_then(|(n, d)| {
                let twice = eligible.checked_mul(n)?.checked_mul(2)?;
                Some((twice.checked_add(d)?) / d.checked_mul(2)?)
            });
        small.or_else(|| {
            let twice = i128::from(eligible).checked_mul(num)?.checked_mul(2)?;
            i64::try_from((twice + den) / (2 * den)).ok()
        })
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
    alloc: Alloc,
}

/// Apply one promotion to the current amounts (not yet committed to them); its per-line
/// shares go to `s.shares`.
#[inline(always)]
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
        bound: 0,
        cash: 0,
        rewards: Vec::new(),
    };
    let mut rewarded = false;
    let split = |d: i64, s: &mut Scratch| {
        if detail != Detail::Value {
            allocate_into(d, lines.iter(), amounts, &mut s.shares, &mut s.alloc);
        }
    };
    match &p.action {
        Action::ThresholdDiscount { every, .. } => {
            let (mut d, mut most) = match h.off {
                Some(off) => {
                    let d = off.saturating_mul(
                        i64::try_from(times(*every, eligible, threshold, per_order))
                            .unwrap_or(i64::MAX),
                    );
                    (d, d)
                }
                None => {
                    // The highest tier reached; a lower amount may reach only a lower tier,
                    // whose `off` is not necessarily smaller: the bound is the largest `off`
                    // of the tiers reached.
                    let (mut hit, mut most) = (0, 0);
                    for &(_, off) in h.tiers.iter().take_while(|(t, _)| *t <= eligible) {
                        hit = off;
                        most = most.max(off);
                    }
                    (hit, most)
                }
            };
            if let Some(m) = h.max_off {
                d = d.min(m);
                most = most.min(m);
            }
            e.discount = d.min(eligible);
            e.bound = most.min(eligible);
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
    e.bound = e.bound.max(e.discount);
    Ok(e)
}

/// Buffers for simulating alternatives, reused across them (no allocation per alternative).
#[derive(Default)]
struct Work {
    /// The line amounts as the alternative's members leave them.
    amounts: Vec<i64>,
    /// Per member: the lines the members after it read.
    later: Vec<LineSet>,
    scratch: Scratch,
}

/// The chosen alternative applied, with the output built.
struct Outcome {
    applied: Vec<Applied>,
    /// Members that did not apply after the ones before them, and why.
    failed: Vec<(usize, Reason)>,
}

/// Apply an alternative's members in order, each on the amounts the previous ones left
/// (`work.amounts` holds the result). With `full`, build the output; otherwise only score it:
/// (Σ discount + cash, number applied).
fn simulate(
    promos: &[Promotion],
    cands: &[Candidate],
    members: &[u32],
    c: &Prepared<'_>,
    full: bool,
    work: &mut Work,
    out: &mut Outcome,
) -> (i64, usize) {
    work.amounts.clear();
    work.amounts.extend_from_slice(&c.amounts);
    if !full {
        // A member's per-line shares are needed only where a later member reads the lines.
        work.later.clear();
        let mut reach = LineSet::default();
        for &m in members.iter().rev() {
            work.later.push(reach);
            reach.union(&cands[m as usize].reach());
        }
        work.later.reverse();
    }
    let (mut benefit, mut count) = (0, 0);
    for (j, &m) in members.iter().enumerate() {
        let cand = &cands[m as usize];
        let p = &promos[cand.promo];
        let detail = if full {
            Detail::Full
        } else if work.later[j].intersects(&cand.reach()) {
            Detail::Shares
        } else {
            Detail::Value
        };
        let e = match effect(p, c, &cand.lines, &work.amounts, detail, &mut work.scratch) {
            Ok(e) => e,
            Err(r) => {
                if full {
                    out.failed.push((cand.promo, r));
                }
                continue;
            }
        };
        let use_ = e.discount + e.cash;
        if cand.left.is_some_and(|left| use_ > left) {
            if full {
                out.failed.push((cand.promo, Reason::Budget));
            }
            continue;
        }
        if detail != Detail::Value {
            for &(i, d) in &work.scratch.shares {
                work.amounts[i] -= d;
            }
        }
        benefit += use_;
        count += 1;
        if full {
            out.applied.push(Applied {
                id: p.id.clone(),
                discount: money(e.discount),
                budget_use: money(use_),
                lines: work
                    .scratch
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
    (benefit, count)
}

/// A candidate evaluated alone on the cart (every other promotion left out).
#[derive(Clone, Copy)]
struct Solo {
    /// Its value (discount + cash); `None` when it does not apply on its own (the reason
    /// went to its not-applied entry).
    value: Option<i64>,
    /// It does not apply alone only because its budget is too small.
    budget: bool,
    /// Bounds on its discount and cash when it follows other members of its group, which
    /// only lower the amounts it works on (zero when it cannot apply, except for a budget
    /// refusal, which a smaller amount may pass).
    discount_bound: i64,
    cash_bound: i64,
}

/// Evaluate a candidate alone; when it does not apply, its reason goes to `reason`.
#[inline(always)]
fn solo(
    p: &Promotion,
    cand: &Candidate,
    c: &Prepared<'_>,
    s: &mut Scratch,
    reason: &mut Option<Reason>,
) -> Solo {
    match effect(p, c, &cand.lines, &c.amounts, Detail::Value, s) {
        Ok(e) => {
            let use_ = e.discount + e.cash;
            let budget = cand.left.is_some_and(|left| use_ > left);
            if budget {
                *reason = Some(Reason::Budget);
            }
            Solo {
                value: (!budget).then_some(use_),
                budget,
                discount_bound: e.bound,
                cash_bound: e.cash,
            }
        }
        Err(r) => {
            *reason = Some(r);
            Solo {
                value: None,
                budget: false,
                discount_bound: 0,
                cash_bound: 0,
            }
        }
    }
}

/// The stacking alternatives: each exclusive candidate alone, each group's candidates
/// together (in priority order), ordered by the priority of their first member. Flat:
/// alternative `k` is `members[start[k]..start[k + 1]]` (indices into the candidates).
struct Alternatives {
    start: Vec<u32>,
    members: Vec<u32>,
}

impl Alternatives {
    fn build(index: &PromoIndex, cands: &[Candidate]) -> Alternatives {
        let mut alt_of: Vec<u32> = Vec::with_capacity(cands.len());
        let mut sizes: Vec<u32> = Vec::new();
        let mut alt_of_group: Vec<u32> = vec![u32::MAX; index.groups];
        for cand in cands {
            let g = index.group[cand.promo];
            let k = if g == u32::MAX {
                sizes.push(0);
                sizes.len() - 1
            } else {
                let slot = &mut alt_of_group[g as usize];
                if *slot == u32::MAX {
                    *slot = sizes.len() as u32;
                    sizes.push(0);
                }
                *slot as usize
            };
            sizes[k] += 1;
            alt_of.push(k as u32);
        }
        let mut start = Vec::with_capacity(sizes.len() + 1);
        let mut at = 0u32;
        start.push(0);
        for n in &sizes {
            at += n;
            start.push(at);
        }
        // Fill in candidate order, so each group keeps its priority order.
        let mut fill: Vec<u32> = start[..sizes.len()].to_vec();
        let mut members = vec![0u32; cands.len()];
        for (ci, &k) in alt_of.iter().enumerate() {
            members[fill[k as usize] as usize] = ci as u32;
            fill[k as usize] += 1;
        }
        Alternatives { start, members }
    }

    fn len(&self) -> usize {
        self.start.len() - 1
    }

    fn get(&self, k: usize) -> &[u32] {
        &self.members[self.start[k] as usize..self.start[k + 1] as usize]
    }
}

/// How the stacking alternative is searched for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Search {
    /// Branch and bound: alternatives that cannot win are not simulated.
    #[default]
    Bounded,
    /// Simulate every alternative (the reference the bounded search is tested against).
    #[cfg(test)]
    Exhaustive,
}

/// Which alternative wins. Best for the customer: the highest value (discount + cash) among
/// the alternatives where something applies, ties to the earlier one. Priority: the first
/// alternative where something applies.
///
/// The bounded search rests on two facts (the exhaustive search checks them in the tests):
/// a member applies after others only on amounts they lowered, and every action's value is
/// monotone in the amounts, so its value alone bounds its value in the group; and the first
/// member that applies alone also applies in its group (everything before it failed and left
/// the amounts untouched), so an alternative applies something exactly when one of its
/// members applies alone.
#[allow(clippy::too_many_arguments)]
fn choose(
    promos: &[Promotion],
    cands: &[Candidate],
    solos: &[Solo],
    alts: &Alternatives,
    c: &Prepared<'_>,
    mode: SelectMode,
    search: Search,
    work: &mut Work,
) -> Option<usize> {
    let mut sink = Outcome {
        applied: Vec::new(),
        failed: Vec::new(),
    };
    #[cfg(test)]
    if search == Search::Exhaustive {
        let mut best: Option<(i64, usize)> = None;
        for k in 0..alts.len() {
            let (v, n) = simulate(promos, cands, alts.get(k), c, false, work, &mut sink);
            let better = match best {
                None => n > 0,
                Some((b, _)) => mode == SelectMode::BestForCustomer && v > b,
            };
            if better {
                best = Some((v, k));
            }
            if mode == SelectMode::Priority && best.is_some() {
                break;
            }
        }
        return best.map(|(_, k)| k);
    }
    let _ = search;
    let viable = |k: usize| {
        alts.get(k)
            .iter()
            .any(|&m| solos[m as usize].value.is_some())
    };
    if mode == SelectMode::Priority {
        return (0..alts.len()).find(|&k| viable(k));
    }
    // Alternatives of one member are worth exactly their member's value alone.
    let mut best: Option<(i64, usize)> = None;
    let mut groups: Vec<(i64, usize)> = Vec::new();
    for k in 0..alts.len() {
        let members = alts.get(k);
        if let [m] = members {
            if let Some(v) = solos[*m as usize].value {
                if best.is_none_or(|(b, _)| v > b) {
                    best = Some((v, k));
                }
            }
            continue;
        }
        if !viable(k) {
            continue;
        }
        // Bound: every member's bound, the discounts together at most the amount of the
        // lines they reach.
        let (mut discount, mut cash, mut reach) = (0i64, 0i64, LineSet::default());
        for &m in members {
            let s = &solos[m as usize];
            if s.value.is_some() || s.budget {
                discount = discount.saturating_add(s.discount_bound);
                cash = cash.saturating_add(s.cash_bound);
                reach.union(&cands[m as usize].reach());
            }
        }
        let within: i64 = reach.iter().map(|i| c.amounts[i]).sum();
        groups.push((discount.min(within).saturating_add(cash), k));
    }
    // Most promising first; stop once the bound falls below the best value found.
    groups.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (bound, k) in groups {
        if let Some((b, bk)) = best {
            if bound < b {
                break;
            }
            if bound == b && k > bk {
                continue;
            }
        }
        let (v, _) = simulate(promos, cands, alts.get(k), c, false, work, &mut sink);
        if best.is_none_or(|(b, bk)| v > b || (v == b && k < bk)) {
            best = Some((v, k));
        }
    }
    best.map(|(_, k)| k)
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
///
/// Why a promotion did not apply: in the chosen alternative, why it failed after the members
/// before it; elsewhere, why it does not apply on its own, or else that another alternative
/// was chosen (so the reasons do not depend on which alternatives the search simulated).
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
    let matched = index.matched(&c);
    // One entry per promotion, in order (entry `i` is promotion `i` until the applied ones
    // are dropped at the end). The gate writes the reason of a promotion that fails it, the
    // solo evaluation that of a candidate that does not apply alone; a candidate that applies
    // alone keeps `None` ("stacking") unless it is in the chosen alternative.
    let mut entries: Vec<Entry> = (0..promos.len() as u32)
        .map(|promo| Entry {
            promo,
            reason: None,
        })
        .collect();
    let mut cands: Vec<Candidate> = Vec::new();
    for (i, ((p, row), e)) in promos.iter().zip(&index.rows).zip(&mut entries).enumerate() {
        let m = &matched.get(i);
        // The reason is written straight into the entry: returning it to be moved there
        // reloaded it across a store-forwarding stall, once per promotion.
        if let Some((lines, left)) = gate(p, row, m, &c, customer, ledger, &mut e.reason) {
            let mut add_on = NO_LINE;
            if row.flags & GateRow::EXCHANGE != 0 {
                if let Action::ThresholdExchange { sku, .. } = &p.action {
                    if let Some(i) = cart.lines.iter().position(|l| &l.sku == sku) {
                        add_on = i;
                    }
                }
            }
            cands.push(Candidate {
                promo: i,
                lines,
                add_on,
                left,
            });
        }
    }
    let mut work = Work::default();
    let solos: Vec<Solo> = cands
        .iter()
        .map(|cand| {
            let reason = &mut entries[cand.promo].reason;
            solo(&promos[cand.promo], cand, &c, &mut work.scratch, reason)
        })
        .collect();
    let alts = Alternatives::build(index, &cands);
    let best = choose(
        promos,
        &cands,
        &solos,
        &alts,
        &c,
        mode,
        index.search,
        &mut work,
    );
    let mut out = Outcome {
        applied: Vec::new(),
        failed: Vec::new(),
    };
    // Outside the chosen alternative, a candidate's entry holds its reason alone, else
    // `None`: "stacking". Inside it: applied (dropped below) unless it failed after the
    // members before it.
    const APPLIED: u32 = u32::MAX;
    let chosen = match best {
        Some(k) => {
            // Scoring skipped the output: build it for the chosen alternative only.
            simulate(promos, &cands, alts.get(k), &c, true, &mut work, &mut out);
            for &m in alts.get(k) {
                entries[cands[m as usize].promo].promo = APPLIED;
            }
            Some(cands[alts.get(k)[0] as usize].promo as u32)
        }
        None => None,
    };
    let amounts = if best.is_some() {
        &work.amounts
    } else {
        &c.amounts
    };
    for (i, r) in out.failed {
        entries[i] = Entry {
            promo: i as u32,
            reason: Some(r),
        };
    }
    entries.retain(|e| e.promo != APPLIED);
    let applied = out.applied;
    let subtotal: i64 = c.amounts.iter().sum();
    let total: i64 = amounts.iter().sum();
    let lines = cart
        .lines
        .iter()
        .zip(c.amounts.iter().zip(amounts))
        .map(|(l, (&a, &left))| QuoteLine {
            sku: l.sku.clone(),
            amount: money(a),
            discount: money(a - left),
            total: money(left),
        })
        .collect();
    let not_applied = NotAppliedList {
        ids: index.ids.clone(),
        chosen,
        entries,
    };
    let mut quote = Quote {
        user: customer.oneid,
        mode,
        time: cart.time,
        subtotal: money(subtotal),
        discount: money(subtotal - total),
        total: money(total),
        lines,
        applied,
        not_applied,
        checksum: String::new(),
    };
    quote.checksum = quote.expected_checksum();
    Ok(quote)
}
