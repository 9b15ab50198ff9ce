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

mod cart;
mod choose;
mod effect;
mod gate;
mod index;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ledger::Ledger;
use super::promotion::{Action, CouponKind, Promotion};
use super::CampaignError;
use crate::ids::OneId;

pub(crate) use choose::Search;
pub(crate) use effect::allocate;
#[cfg(test)]
pub(crate) use effect::percent_of;
pub use index::PromoIndex;

use choose::{choose, solo, Alternatives, Solo};
use effect::{simulate, Outcome, Work};
use gate::{gate, Candidate, GateRow, NO_LINE};

/// The currency every amount is in. A cart line in another currency is rejected.
pub const CURRENCY: &str = "CNY";

/// The most lines a cart may have (line sets are fixed-size bitsets).
pub const MAX_LINES: usize = 256;

/// One cart line. Wire: `{"sku", "category", "price", "qty"}` (`price` a decimal string).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartLine {
    /// The product's sku (not blank; promotions select lines by it).
    pub sku: String,
    /// Its category, which promotions may also select lines by (default: empty).
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
    /// The lines (at most [`MAX_LINES`]); a line is named by its position here.
    pub lines: Vec<CartLine>,
    /// Sales channel.
    #[serde(default)]
    pub channel: String,
    /// Region (default empty: then a promotion that lists regions does not apply).
    #[serde(default)]
    pub region: String,
    /// Store (default empty: then a promotion that lists stores does not apply).
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
    /// The promotion's id.
    pub id: Arc<str>,
    /// Why it did not apply.
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
        /// How many: 1, or one per full threshold when the promotion says `every`; at most its
        /// per-order limit.
        count: u64,
        /// With the order (a gift) or after it (a rebate) ([`Timing`]).
        timing: Timing,
    },
    /// `count` coupons of a template.
    Coupon {
        /// The coupon template id.
        template: String,
        /// The coupon's kind (consumption, gift or service).
        kind: CouponKind,
        /// How many.
        count: u64,
        /// With the order (a gift) or after it (a rebate) ([`Timing`]).
        timing: Timing,
    },
    /// Points, posted to a loyalty program's ledger when the order is committed.
    Points {
        /// How many.
        points: i64,
        /// The loyalty program (none: the only one).
        #[serde(skip_serializing_if = "Option::is_none")]
        program: Option<String>,
        /// With the order (a gift) or after it (a rebate) ([`Timing`]).
        timing: Timing,
    },
    /// Goods handed out: `qty` units of `sku`.
    Goods {
        /// The sku given.
        sku: String,
        /// Units: the reward's quantity times the number of times it is granted.
        qty: u64,
        /// With the order (a gift) or after it (a rebate) ([`Timing`]).
        timing: Timing,
    },
    /// Points earned on `on_amount` are multiplied (the loyalty module computes them).
    PointsMultiplier {
        /// The multiplier (≥ 2).
        factor: u32,
        /// The amount the multiplier applies to.
        #[serde(with = "rust_decimal::serde::str")]
        on_amount: Decimal,
        /// Always after the order ([`Timing::AfterOrder`]).
        timing: Timing,
    },
    /// The customer may add `sku` at `price` (满换 when the sku is not in the cart yet).
    ExchangeOffer {
        /// The sku offered.
        sku: String,
        /// Special price.
        #[serde(with = "rust_decimal::serde::str")]
        price: Decimal,
        /// Always with the order ([`Timing::WithOrder`]).
        timing: Timing,
    },
}

/// One line's share of a discount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineShare {
    /// Index into the cart's lines.
    pub line: usize,
    /// The line's share of the promotion's discount.
    #[serde(with = "rust_decimal::serde::str")]
    pub discount: Decimal,
}

/// A promotion that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// The promotion's id.
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
    /// The rewards it hands out, with the order or after it.
    pub rewards: Vec<Grant>,
}

/// A quoted line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuoteLine {
    /// The line's sku.
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
    /// The cart's lines with their discounts, in cart order.
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

/// Evaluate `cart` for `customer` against `promos` (sorted by priority, then id).
///
/// # Errors
///
/// A cart that fails [`Cart::validate`]: [`CampaignError::Invalid`] (`invalid_argument`) for a
/// blank sku, a qty below 1, a negative price or another currency; [`CampaignError::OutOfRange`]
/// (`out_of_range`) for too many lines, a price with more than 2 decimal places, or a line value
/// or subtotal above [`MAX_AMOUNT`](crate::money::MAX_AMOUNT).
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
///
/// # Errors
///
/// As [`evaluate`]; [`CampaignError::Internal`] when `index` was built for another list.
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
