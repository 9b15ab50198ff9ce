//! Repurchase rate (new vs old buyers, per period), the products bought again most, and the
//! first-order / repurchase split of GMV.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{check_times, group_rows, ratio, AnalyticsError};
use crate::lifecycle::PeriodClock;

/// Purchases as columns: `user[i]` paid `amount[i]` at `time[i]`; rows with the same user and
/// time are lines of one order. `sku` (codes into `skus`) is optional.
#[derive(Debug, Clone, Copy)]
pub struct OrderTable<'a> {
    /// User ids.
    pub user: &'a [u64],
    /// Times, ms UTC.
    pub time: &'a [i64],
    /// Amounts (money) per row.
    pub amount: &'a [Decimal],
    /// Product codes per row and their names.
    pub sku: Option<(&'a [u32], &'a [String])>,
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
    /// Buyers with at least two orders in the period, / buyers.
    pub rate: Option<f64>,
    /// The same among new buyers.
    pub new_rate: Option<f64>,
    /// The same among old buyers.
    pub old_rate: Option<f64>,
    /// Sum of amounts.
    #[serde(with = "rust_decimal::serde::str")]
    pub gmv: Decimal,
    /// Amount of first-ever orders.
    #[serde(with = "rust_decimal::serde::str")]
    pub first_order_gmv: Decimal,
    /// Amount of every later order.
    #[serde(with = "rust_decimal::serde::str")]
    pub repurchase_gmv: Decimal,
}

/// A product's repurchase: buyers who bought it in at least two orders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRepurchase {
    /// The product.
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
pub fn repurchase(
    orders: OrderTable<'_>,
    clock: PeriodClock,
    top: usize,
    min_buyers: u64,
) -> Result<RepurchaseReport, AnalyticsError> {
    let n = orders.user.len();
    for len in [orders.time.len(), orders.amount.len()] {
        if len != n {
            return Err(AnalyticsError::LengthMismatch {
                what: "orders",
                a: n,
                b: len,
            });
        }
    }
    if let Some((codes, names)) = orders.sku {
        if codes.len() != n {
            return Err(AnalyticsError::LengthMismatch {
                what: "orders",
                a: n,
                b: codes.len(),
            });
        }
        if let Some((row, &code)) = codes
            .iter()
            .enumerate()
            .find(|(_, &c)| c as usize >= names.len())
        {
            return Err(AnalyticsError::BadCode {
                row,
                code,
                names: names.len(),
            });
        }
    }
    check_times(orders.time)?;
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
    let mut acc: BTreeMap<i64, Acc> = BTreeMap::new();
    let mut sku_buyers: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (_, rows) in group_rows(orders.user, orders.time) {
        // Orders of this user: runs of equal time.
        let first_time = orders.time[rows[0]];
        let first_period = clock.index(first_time).unwrap_or(0);
        let mut per_period: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
        let mut sku_orders: BTreeMap<u32, BTreeSet<i64>> = BTreeMap::new();
        for &r in &rows {
            let t = orders.time[r];
            let p = clock.index(t).unwrap_or(0);
            per_period.entry(p).or_default().insert(t);
            let a = acc.entry(p).or_default();
            let add = |x: Decimal| {
                x.checked_add(orders.amount[r])
                    .ok_or(AnalyticsError::Overflow { field: "amount" })
            };
            a.gmv = add(a.gmv)?;
            if t == first_time {
                a.first = add(a.first)?;
            } else {
                a.again = add(a.again)?;
            }
            if let Some((codes, _)) = orders.sku {
                sku_orders.entry(codes[r]).or_default().insert(t);
            }
        }
        for (p, times) in per_period {
            let a = acc.entry(p).or_default();
            let again = times.len() >= 2;
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
        for (sku, times) in sku_orders {
            let e = sku_buyers.entry(sku).or_default();
            e.0 += 1;
            e.1 += u64::from(times.len() >= 2);
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
    let mut products: Vec<ProductRepurchase> = match orders.sku {
        None => Vec::new(),
        Some((_, names)) => sku_buyers
            .into_iter()
            .filter(|(_, (b, _))| *b >= min_buyers.max(1))
            .map(|(s, (b, r))| ProductRepurchase {
                sku: names[s as usize].clone(),
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
