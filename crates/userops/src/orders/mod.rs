//! Orders as the engine counts them, so that every module counts the same ones.
//!
//! An order is identified by its source program and its order id: an order id is unique per
//! source program (across that program's platforms; a platform whose ids could collide with
//! another's prefixes them). Intake rules, checked before an event changes anything:
//!
//! - **One order, one event.** An `order` event whose order id the program already has under
//!   another idempotency key is refused with [`Error::DuplicateOrder`] (naming the first key):
//!   two pipelines delivering the same order count it once, in the profile, the models, the
//!   analyses and loyalty alike. The same event under the same key is the usual idempotent
//!   replay. An order is never updated in place; a correction is a refund (and a new order).
//! - **A refund names an order that exists**: an order of the refund's source program, ingested
//!   before the refund, of the same person (after merges). Otherwise [`Error::InvalidEvent`]
//!   at `order_id` (unknown order) or `user` (someone else's order).
//! - **Refunds never exceed what was paid**, per order and per line: the refunds of an order
//!   add up to at most its `amount`; a line gives back at most the units bought (`qty`) and at
//!   most its value (`price × qty`: the money of returned units is their `amount`, or
//!   `qty × price` when the line names none). Anything more is [`Error::OutOfRange`] naming the
//!   field (`amount`, `lines[i].qty`, `lines[i].amount`); a line the order does not have is
//!   [`Error::InvalidEvent`] at `lines[i].sku` or `lines[i].line`.
//!
//! The book keeps, per order, the first key, the person, the amount paid, each line's sku
//! (as a fingerprint), units and price, and what was refunded; an erasure forgets the
//! person's orders. Journals written before these rules replay as they were accepted (see
//! [`Engine::replay`](crate::Engine::replay)): the book then keeps the first of two events
//! with one order id and records refunds as given. A book started from a snapshot of a build
//! before it ([`Engine::upgrade_snapshot`](crate::Engine::upgrade_snapshot), only when an
//! erasure redacted the journal) is *partial*: it does not know the orders before that
//! snapshot, and accepts a refund of an order it does not know unchecked, as before.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::event::{EventBody, OrderLine, RefundLine};
use crate::ids::OneId;
use crate::person::{EraseStep, MergeStep, PersonState, Persons, SplitStep};
use crate::util::fingerprint;

/// One line as the book keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Line {
    /// Fingerprint of the sku ([`fingerprint`]): enough to find the line a refund names.
    #[serde(rename = "s")]
    sku: u64,
    #[serde(rename = "q")]
    qty: u32,
    #[serde(rename = "p", with = "rust_decimal::serde::str")]
    price: Decimal,
}

impl Line {
    /// `price × qty`. Accepted prices are at most 10¹² and `qty` fits `u32`, so the product
    /// fits a `Decimal`; a journal of an older build may hold more, which then saturates
    /// (only in what a refund is measured against).
    fn value(&self) -> Decimal {
        self.price
            .checked_mul(Decimal::from(self.qty))
            .unwrap_or(Decimal::MAX)
    }
}

/// What has been refunded of an order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Refunded {
    /// Money refunded (the refunds' `amount`s).
    #[serde(rename = "m", with = "rust_decimal::serde::str")]
    money: Decimal,
    /// How many refunds of the order were accepted.
    #[serde(rename = "n")]
    count: u32,
    /// Per line (empty until a refund names a line): units returned and money refunded.
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    lines: Vec<LineRefunded>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LineRefunded {
    #[serde(rename = "q")]
    qty: u32,
    #[serde(rename = "m", with = "rust_decimal::serde::str")]
    money: Decimal,
}

/// One order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Order {
    /// The idempotency key of the event that brought it.
    #[serde(rename = "k")]
    key: Box<str>,
    /// The person at ingest (mapped to the surviving OneID when compared: merges need no
    /// rewrite).
    #[serde(rename = "o")]
    owner: OneId,
    /// The amount paid.
    #[serde(rename = "a", with = "rust_decimal::serde::str")]
    amount: Decimal,
    #[serde(rename = "l", default, skip_serializing_if = "Vec::is_empty")]
    lines: Vec<Line>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    refunded: Option<Box<Refunded>>,
}

/// Every order the engine has accepted, by source program and order id (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderBook {
    programs: BTreeMap<String, BTreeMap<String, Order>>,
    /// The book does not know every order: it was started from a snapshot of a build before
    /// it ([`Engine::upgrade_snapshot`](crate::Engine::upgrade_snapshot)). A refund of an
    /// order it does not know is then accepted unchecked, as it was before the book.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    partial: bool,
}

/// A refund that passed [`OrderBook::check_refund`]: what the book will record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefundPlan {
    program: String,
    order_id: String,
    /// What the order will have had refunded; `None` for an order the book does not know
    /// (only when it is partial).
    after: Option<Refunded>,
}

/// What the book says about one person's orders (for reconciliation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderTotals {
    /// Orders accepted (each order id once).
    pub orders: u64,
    /// Sum of the amounts paid.
    #[serde(with = "rust_decimal::serde::str")]
    pub gmv: Decimal,
    /// Refund events.
    pub refunds: u64,
    /// Sum of the refunded amounts.
    #[serde(with = "rust_decimal::serde::str")]
    pub refunded: Decimal,
}

impl OrderBook {
    /// Orders known, over every program.
    pub fn len(&self) -> usize {
        self.programs.values().map(BTreeMap::len).sum()
    }

    /// No order known.
    pub fn is_empty(&self) -> bool {
        self.programs.values().all(BTreeMap::is_empty)
    }

    /// Mark the book as not knowing the orders accepted so far (see `partial`).
    pub(crate) fn mark_partial(&mut self) {
        self.partial = true;
    }

    /// Whether the book may not know every order (started from an older snapshot).
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    fn get(&self, program: &str, order_id: &str) -> Option<&Order> {
        self.programs.get(program)?.get(order_id)
    }

    /// Whether order `order_id` of `program` may predate the book: the book is partial and
    /// does not know it (modules keyed an order differently before the book).
    pub(crate) fn predates_book(&self, program: &str, order_id: &str) -> bool {
        self.partial && self.get(program, order_id).is_none()
    }

    /// The totals of the orders whose owner `canonical` maps to `person`.
    pub fn totals(&self, person: OneId, canonical: impl Fn(OneId) -> OneId) -> OrderTotals {
        let mut t = OrderTotals::default();
        for o in self.programs.values().flat_map(BTreeMap::values) {
            if canonical(o.owner) != person {
                continue;
            }
            t.orders += 1;
            t.gmv = t.gmv.checked_add(o.amount).unwrap_or(Decimal::MAX);
            if let Some(r) = &o.refunded {
                t.refunds += u64::from(r.count);
                t.refunded = t.refunded.checked_add(r.money).unwrap_or(Decimal::MAX);
            }
        }
        t
    }

    /// Check an `order` event of `program` under idempotency key `key`: its order id must be
    /// new to the program.
    pub(crate) fn check_order(
        &self,
        program: &str,
        order_id: &str,
        key: &str,
    ) -> Result<(), Error> {
        match self.get(program, order_id) {
            Some(o) if &*o.key != key => Err(Error::DuplicateOrder {
                program: program.to_owned(),
                order_id: order_id.to_owned(),
                first_key: o.key.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Check a `refund` event of `program` by `person` (`None`: an identifier no one has yet)
    /// for `amount` and `lines`; `canonical` maps a stored owner to its surviving OneID.
    /// Returns what to record.
    pub(crate) fn check_refund(
        &self,
        program: &str,
        order_id: &str,
        person: Option<OneId>,
        amount: Decimal,
        lines: &[RefundLine],
        canonical: impl Fn(OneId) -> OneId,
    ) -> Result<RefundPlan, Error> {
        let Some(order) = self.get(program, order_id) else {
            if self.partial {
                // An order from before the book: nothing to check it against.
                return Ok(RefundPlan {
                    program: program.to_owned(),
                    order_id: order_id.to_owned(),
                    after: None,
                });
            }
            return Err(Error::invalid_event(
                "order_id",
                format!(
                    "refund of an unknown order: program {program:?} has no order {order_id:?} \
                     (a refund is ingested after its order)"
                ),
            ));
        };
        let owner = canonical(order.owner);
        if person != Some(owner) {
            return Err(Error::invalid_event(
                "user",
                format!(
                    "order {order_id:?} belongs to OneID {owner}, not to {}",
                    person.map_or("a new person".to_owned(), |p| format!("OneID {p}"))
                ),
            ));
        }
        let mut after = order.refunded.as_deref().cloned().unwrap_or_default();
        let money = after.money.checked_add(amount).unwrap_or(Decimal::MAX);
        if money > order.amount {
            return Err(Error::OutOfRange {
                field: "amount".into(),
                reason: format!(
                    "refunds of order {order_id:?} would total {money}, above the {} paid \
                     ({} refunded before)",
                    order.amount, after.money
                ),
            });
        }
        after.money = money;
        after.count = after.count.saturating_add(1);
        if !lines.is_empty() && after.lines.is_empty() {
            after.lines = vec![LineRefunded::default(); order.lines.len()];
        }
        for (i, l) in lines.iter().enumerate() {
            let ix = line_of(&order.lines, l, i)?;
            let (line, done) = (&order.lines[ix], &mut after.lines[ix]);
            let out = |f: &str, reason: String| Error::OutOfRange {
                field: format!("lines[{i}].{f}"),
                reason,
            };
            let qty = done.qty.saturating_add(l.qty);
            if qty > line.qty {
                return Err(out(
                    "qty",
                    format!(
                        "{} units of line {ix} bought, {} returned before: {} more is too many",
                        line.qty, done.qty, l.qty
                    ),
                ));
            }
            let add = match l.amount {
                Some(a) => a,
                None => line
                    .price
                    .checked_mul(Decimal::from(l.qty))
                    .unwrap_or(Decimal::MAX),
            };
            let money = done.money.checked_add(add).unwrap_or(Decimal::MAX);
            if money > line.value() {
                return Err(out(
                    if l.amount.is_some() { "amount" } else { "qty" },
                    format!(
                        "line {ix} is worth {}, {} refunded before: {add} more is too much",
                        line.value(),
                        done.money
                    ),
                ));
            }
            done.qty = qty;
            done.money = money;
        }
        Ok(RefundPlan {
            program: program.to_owned(),
            order_id: order_id.to_owned(),
            after: Some(after),
        })
    }

    /// Record a refund that passed [`OrderBook::check_refund`].
    pub(crate) fn apply_refund(&mut self, plan: RefundPlan) {
        let Some(after) = plan.after else { return };
        if let Some(o) = self
            .programs
            .get_mut(&plan.program)
            .and_then(|p| p.get_mut(&plan.order_id))
        {
            o.refunded = Some(Box::new(after));
        }
    }

    /// Record an accepted `order` or `refund` event of `program` under `key` for `person`.
    /// Never fails. Live events passed the checks above; events replayed from a journal
    /// written before these rules may not have: a second order with a known id leaves the
    /// first in place, a refund of an unknown order is left out, and a refund beyond what was
    /// paid is recorded as given (money and units saturate).
    pub(crate) fn on_event(
        &mut self,
        program: &str,
        key: &str,
        body: &EventBody,
        person: OneId,
        canonical: impl Fn(OneId) -> OneId,
    ) {
        match body {
            EventBody::Order {
                order_id,
                amount,
                lines,
                ..
            } => {
                let orders = match self.programs.get_mut(program) {
                    Some(p) => p,
                    None => self.programs.entry(program.to_owned()).or_default(),
                };
                if orders.contains_key(order_id) {
                    return;
                }
                orders.insert(
                    order_id.clone(),
                    Order {
                        key: key.into(),
                        owner: person,
                        amount: *amount,
                        lines: lines.iter().map(Line::of).collect(),
                        refunded: None,
                    },
                );
            }
            EventBody::Refund {
                order_id,
                amount,
                lines,
                ..
            } => {
                let plan =
                    self.check_refund(program, order_id, Some(person), *amount, lines, &canonical);
                match plan {
                    Ok(plan) => self.apply_refund(plan),
                    Err(_) => self.record_unchecked(program, order_id, *amount, lines),
                }
            }
            _ => {}
        }
    }

    /// A refund from an older journal that the rules would refuse: recorded as far as it
    /// names something the book has.
    fn record_unchecked(
        &mut self,
        program: &str,
        order_id: &str,
        amount: Decimal,
        lines: &[RefundLine],
    ) {
        let Some(o) = self
            .programs
            .get_mut(program)
            .and_then(|p| p.get_mut(order_id))
        else {
            return;
        };
        let r = o.refunded.get_or_insert_with(Default::default);
        r.money = r.money.checked_add(amount).unwrap_or(Decimal::MAX);
        r.count = r.count.saturating_add(1);
        for (i, l) in lines.iter().enumerate() {
            let Ok(ix) = line_of(&o.lines, l, i) else {
                continue;
            };
            if r.lines.is_empty() {
                r.lines = vec![LineRefunded::default(); o.lines.len()];
            }
            let done = &mut r.lines[ix];
            done.qty = done.qty.saturating_add(l.qty);
            let add = l.amount.unwrap_or_else(|| {
                o.lines[ix]
                    .price
                    .checked_mul(Decimal::from(l.qty))
                    .unwrap_or(Decimal::MAX)
            });
            done.money = done.money.checked_add(add).unwrap_or(Decimal::MAX);
        }
    }

    /// Forget the orders of an erased person (`oneids`: every OneID that was theirs): their
    /// order ids and keys are personal data.
    pub(crate) fn erase(&mut self, oneids: &[OneId]) {
        for orders in self.programs.values_mut() {
            orders.retain(|_, o| !oneids.contains(&o.owner));
        }
        self.programs.retain(|_, orders| !orders.is_empty());
    }
}

impl Line {
    fn of(l: &OrderLine) -> Line {
        Line {
            sku: fingerprint(l.sku.as_bytes()),
            qty: l.qty,
            price: l.price,
        }
    }
}

/// Which line of `lines` a refund line names (`i`: its place in the refund).
fn line_of(lines: &[Line], l: &RefundLine, i: usize) -> Result<usize, Error> {
    l.find(lines.len(), |ix, s| {
        lines[ix].sku == fingerprint(s.as_bytes())
    })
    .map_err(|(f, why)| Error::invalid_event(format!("lines[{i}].{f}"), why))
}

/// The book keeps each order under the OneID that placed it and compares owners through the
/// identity graph's canonical OneID, so a merge or a split needs no rewrite: an absorbed
/// person's orders count for the survivor while they are merged and go back with its OneID
/// when a split separates them. Erasure forgets the orders (their ids and keys are personal).
impl PersonState for OrderBook {
    const MODULE: &'static str = "orders";
    type Reads<'r> = ();

    fn merge(&mut self, (): (), _step: &MergeStep) -> Option<serde_json::Value> {
        None
    }

    fn split(&mut self, (): (), _step: &SplitStep<'_>) -> Option<serde_json::Value> {
        None
    }

    fn erase(&mut self, (): (), step: &EraseStep<'_>) {
        self.erase(step.oneids);
    }

    /// Every order belongs to a known, not erased person. (Refunds within what was paid is
    /// an admission rule, not an invariant: a journal of a build before the book replays
    /// refunds beyond it as they were accepted.)
    fn check_invariants(&self, (): (), persons: &Persons<'_>) -> Vec<String> {
        let mut bad = Vec::new();
        for (program, orders) in &self.programs {
            for (id, o) in orders {
                match persons.identity.canonical(o.owner) {
                    None => bad.push(format!(
                        "orders: order {id:?} of {program:?} belongs to unknown OneID {}",
                        o.owner
                    )),
                    Some(p) if persons.erased.contains(&p) => bad.push(format!(
                        "orders: order {id:?} of {program:?} belongs to erased person {p}"
                    )),
                    Some(_) => {}
                }
            }
        }
        bad
    }

    fn holdings(&self, (): (), persons: &Persons<'_>, person: OneId) -> serde_json::Value {
        let mine: Vec<serde_json::Value> = self
            .programs
            .iter()
            .flat_map(|(program, orders)| orders.iter().map(move |(id, o)| (program, id, o)))
            .filter(|(_, _, o)| persons.identity.canonical(o.owner) == Some(person))
            .map(|(program, id, o)| {
                serde_json::json!({
                    "program": program,
                    "order_id": id,
                    "amount": o.amount.to_string(),
                    "refunded": o.refunded.as_ref().map(|r| r.money.to_string()),
                })
            })
            .collect();
        if mine.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::Array(mine)
        }
    }
}

#[cfg(test)]
mod tests;
