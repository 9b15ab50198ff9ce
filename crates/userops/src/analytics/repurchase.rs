//! Repurchase rate (new vs old buyers, per period), the products bought again most, and the
//! first-order / repurchase split of GMV.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{check_codes, check_times, group_rows, ratio, AnalyticsError};
use crate::lifecycle::PeriodClock;

/// Orders as columns, one row per order: `user[i]` paid `amount[i]` at `time[i]`. Two rows
/// are two orders even at the same instant; of a user's orders at one instant, the earlier row
/// is the earlier order.
#[derive(Debug, Clone, Copy)]
pub struct OrderTable<'a> {
    /// User ids.
    pub user: &'a [u64],
    /// Times, ms UTC.
    pub time: &'a [i64],
    /// Amounts (money) per order.
    pub amount: &'a [Decimal],
    /// What the orders bought, when products are counted.
    pub lines: Option<OrderLines<'a>>,
}

/// Order lines as columns: line `j` of order row `order[j]` is the product `names[sku[j]]`.
/// An order without lines bought no product (it still counts as an order).
#[derive(Debug, Clone, Copy)]
pub struct OrderLines<'a> {
    /// The row of each line's order in the [`OrderTable`].
    pub order: &'a [usize],
    /// Product codes into `names`.
    pub sku: &'a [u32],
    /// The product names.
    pub names: &'a [String],
}

/// One period of the repurchase report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepurchaseRow {
    /// The period label.
    pub period: String,
    /// Users who ordered in the period.
    pub buyers: u64,
    /// Buyers whose first order ever is in this period.
    pub new_buyers: u64,
    /// Buyers who had ordered before.
    pub old_buyers: u64,
    /// Buyers with at least two orders in the period (two orders at the same instant count
    /// as two), / buyers.
    pub rate: Option<f64>,
    /// The same among new buyers.
    pub new_rate: Option<f64>,
    /// The same among old buyers.
    pub old_rate: Option<f64>,
    /// Sum of amounts.
    #[serde(with = "rust_decimal::serde::str")]
    pub gmv: Decimal,
    /// Amount of the buyers' first orders ever that fall in this period (one order per buyer).
    #[serde(with = "rust_decimal::serde::str")]
    pub first_order_gmv: Decimal,
    /// Amount of every other order of the period.
    #[serde(with = "rust_decimal::serde::str")]
    pub repurchase_gmv: Decimal,
}

/// A product's repurchase: buyers who bought it in at least two orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRepurchase {
    /// The product's sku.
    pub sku: String,
    /// Users who bought it.
    pub buyers: u64,
    /// Users who bought it in two or more orders.
    pub repeat_buyers: u64,
    /// `repeat_buyers / buyers`.
    pub rate: f64,
}

/// The result of [`repurchase`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepurchaseReport {
    /// Per period with orders, oldest first.
    pub periods: Vec<RepurchaseRow>,
    /// Products by repurchase rate (then buyers) descending, at most `top`.
    pub products: Vec<ProductRepurchase>,
}

/// Repurchase per period and the top `top` products with the highest repurchase rate among
/// those with at least `min_buyers` buyers.
///
/// Definitions: a buyer's first order is their earliest row (by time, then row); a period's
/// `rate` is the share of its buyers with two or more orders in it; `first_order_gmv` is the
/// amount of the first orders that fall in the period and `repurchase_gmv` that of every other
/// order. A product's repeat buyers bought it in two or more orders.
///
/// ```
/// use rust_decimal::Decimal;
/// use userops::analytics::{repurchase, OrderTable};
/// use userops::lifecycle::PeriodClock;
/// use userops::Period;
/// // User 1 pays 100.00 and 50.00 in two orders at the same instant: two purchases.
/// let amount = [Decimal::new(10000, 2), Decimal::new(5000, 2)];
/// let orders = OrderTable { user: &[1, 1], time: &[0, 0], amount: &amount, lines: None };
/// let r = repurchase(orders, PeriodClock::new(Period::Month, 0), 10, 1).unwrap();
/// assert_eq!(r.periods[0].rate, Some(1.0));
/// assert_eq!(r.periods[0].first_order_gmv, Decimal::new(10000, 2));
/// assert_eq!(r.periods[0].repurchase_gmv, Decimal::new(5000, 2));
/// ```
///
/// # Errors
///
/// [`AnalyticsError::LengthMismatch`], [`AnalyticsError::BadCode`] or
/// [`AnalyticsError::TimeOutOfRange`] for an order table that does not check;
/// [`AnalyticsError::BadArgument`] for an order line naming an order row that does not exist;
/// [`AnalyticsError::Overflow`] when an amount sum overflows.
pub fn repurchase(
    orders: OrderTable<'_>,
    clock: PeriodClock,
    top: usize,
    min_buyers: u64,
) -> Result<RepurchaseReport, AnalyticsError> {
    orders.check()?;
    #[derive(Default)]
    struct Acc {
        buyers: u64,
        new: u64,
        old: u64,
        rep: u64,
        new_rep: u64,
        old_rep: u64,
        gmv: Decimal,
        first: Decimal,
        again: Decimal,
    }
    // The products of each order row.
    let mut products: Vec<Vec<u32>> = Vec::new();
    if let Some(l) = orders.lines {
        products = vec![Vec::new(); orders.user.len()];
        for (&row, &sku) in l.order.iter().zip(l.sku) {
            products[row].push(sku);
        }
    }
    let mut acc: BTreeMap<i64, Acc> = BTreeMap::new();
    let mut sku_buyers: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (_, rows) in group_rows(orders.user, orders.time) {
        let first_period = clock.index(orders.time[rows[0]]).unwrap_or(0);
        let mut per_period: BTreeMap<i64, u64> = BTreeMap::new();
        let mut sku_orders: BTreeMap<u32, u64> = BTreeMap::new();
        for (k, &r) in rows.iter().enumerate() {
            let p = clock.index(orders.time[r]).unwrap_or(0);
            *per_period.entry(p).or_default() += 1;
            let a = acc.entry(p).or_default();
            let add = |x: Decimal| {
                x.checked_add(orders.amount[r])
                    .ok_or(AnalyticsError::Overflow { field: "amount" })
            };
            a.gmv = add(a.gmv)?;
            if k == 0 {
                a.first = add(a.first)?;
            } else {
                a.again = add(a.again)?;
            }
            let mut bought: Vec<u32> = products.get(r).cloned().unwrap_or_default();
            bought.sort_unstable();
            bought.dedup();
            for sku in bought {
                *sku_orders.entry(sku).or_default() += 1;
            }
        }
        for (p, n) in per_period {
            let a = acc.entry(p).or_default();
            let again = n >= 2;
            a.buyers += 1;
            a.rep += u64::from(again);
            if p == first_period {
                a.new += 1;
                a.new_rep += u64::from(again);
            } else {
                a.old += 1;
                a.old_rep += u64::from(again);
            }
        }
        for (sku, n) in sku_orders {
            let e = sku_buyers.entry(sku).or_default();
            e.0 += 1;
            e.1 += u64::from(n >= 2);
        }
    }
    let periods = acc
        .into_iter()
        .map(|(p, a)| RepurchaseRow {
            period: clock.label(p),
            buyers: a.buyers,
            new_buyers: a.new,
            old_buyers: a.old,
            rate: ratio(a.rep, a.buyers),
            new_rate: ratio(a.new_rep, a.new),
            old_rate: ratio(a.old_rep, a.old),
            gmv: a.gmv,
            first_order_gmv: a.first,
            repurchase_gmv: a.again,
        })
        .collect();
    let mut products: Vec<ProductRepurchase> = match orders.lines {
        None => Vec::new(),
        Some(l) => sku_buyers
            .into_iter()
            .filter(|(_, (b, _))| *b >= min_buyers.max(1))
            .map(|(s, (b, r))| ProductRepurchase {
                sku: l.names[s as usize].clone(),
                buyers: b,
                repeat_buyers: r,
                rate: r as f64 / b as f64,
            })
            .collect(),
    };
    products.sort_by(|a, b| {
        b.rate
            .total_cmp(&a.rate)
            .then(b.buyers.cmp(&a.buyers))
            .then(a.sku.cmp(&b.sku))
    });
    products.truncate(top);
    Ok(RepurchaseReport { periods, products })
}

impl OrderTable<'_> {
    /// Equal lengths, codes and rows in range, times in range.
    pub(crate) fn check(&self) -> Result<(), AnalyticsError> {
        let n = self.user.len();
        for len in [self.time.len(), self.amount.len()] {
            if len != n {
                return Err(AnalyticsError::LengthMismatch {
                    what: "orders",
                    a: n,
                    b: len,
                });
            }
        }
        if let Some(l) = self.lines {
            if l.sku.len() != l.order.len() {
                return Err(AnalyticsError::LengthMismatch {
                    what: "order lines",
                    a: l.order.len(),
                    b: l.sku.len(),
                });
            }
            check_codes(l.sku, l.names.len())?;
            if let Some(line) = l.order.iter().position(|&r| r >= n) {
                return Err(AnalyticsError::BadArgument {
                    field: "lines",
                    reason: format!("line {line} names order row {} of {n}", l.order[line]),
                });
            }
        }
        check_times(self.time)
    }
}
