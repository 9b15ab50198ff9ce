//! Step 0: the cart validated and prepared for evaluation (amounts in cents, lines indexed by
//! sku and category as [`LineSet`]s).

use std::collections::BTreeSet;

use chrono::{Datelike, FixedOffset, Timelike};
use rust_decimal::Decimal;

use super::{to_cents, Cart, CURRENCY, MAX_LINES};
use crate::campaigns::promotion::key_hash;
use crate::campaigns::CampaignError;

/// A set of cart lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LineSet([u64; MAX_LINES / 64]);

impl LineSet {
    pub(super) fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    pub(super) fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }

    pub(super) fn union(&mut self, o: &LineSet) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a |= b;
        }
    }

    pub(super) fn minus(&mut self, o: &LineSet) {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            *a &= !b;
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub(super) fn intersects(&self, o: &LineSet) -> bool {
        self.0.iter().zip(o.0).any(|(a, b)| a & b != 0)
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = usize> + Clone + '_ {
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
pub(super) struct Prepared<'c> {
    pub(super) cart: &'c Cart,
    pub(super) amounts: Vec<i64>,
    /// Unit prices in cents.
    pub(super) unit: Vec<i64>,
    pub(super) all: LineSet,
    pub(super) by_sku: KeyIndex<'c>,
    pub(super) by_category: KeyIndex<'c>,
    /// The cart's time as (seconds, nanoseconds) since the epoch.
    pub(super) time: (i64, u32),
    pub(super) hour: u32,
    pub(super) weekday: u32,
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
pub(super) fn select(index: &KeyIndex<'_>, set: &BTreeSet<String>, hashes: &[u64]) -> LineSet {
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
    ///
    /// # Errors
    ///
    /// [`CampaignError::Invalid`] for a blank sku, a qty below 1, a negative price or another
    /// currency (of the cart or a line); [`CampaignError::OutOfRange`] for more than [`MAX_LINES`]
    /// lines, a price with more than 2 decimal places, or a line value or the subtotal above
    /// [`MAX_AMOUNT`](crate::money::MAX_AMOUNT). Each names its field (`lines[i].qty`, ...).
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
    ///
    /// # Errors
    ///
    /// [`CampaignError::OutOfRange`] at `lines[i].price` for a price with more decimal places than
    /// `minor_units`, a negative one, or one above [`MAX_AMOUNT`](crate::money::MAX_AMOUNT).
    pub fn check_minor_units(&self, minor_units: u32) -> Result<(), CampaignError> {
        for (i, l) in self.lines.iter().enumerate() {
            money_bound(&format!("lines[{i}].price"), l.price, minor_units)?;
        }
        Ok(())
    }

    pub(super) fn prepare(&self, tz: FixedOffset) -> Result<Prepared<'_>, CampaignError> {
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
