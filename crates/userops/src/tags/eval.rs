//! Evaluation of an audience [`Expr`] on the bitmap index.
//!
//! Semantics (two-valued, like a boolean mask over rows): a comparison on a user without a value
//! is false; `NOT e` is every live user not matched by `e`; `x != v` matches users that have a
//! value other than `v`. The result only holds live users.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use roaring::RoaringBitmap;

use super::column::{Bound, Column, ValueType};
use super::expr::{CmpOp, Expr, ExprError, Lit, Literal, Name};

/// What an expression is evaluated against.
pub(crate) struct Ctx<'a> {
    pub(crate) columns: &'a BTreeMap<String, Column>,
    pub(crate) audiences: &'a BTreeMap<String, RoaringBitmap>,
    pub(crate) universe: &'a RoaringBitmap,
    /// Users ever numbered (`0..users`): columns hold no other indexes.
    pub(crate) users: u64,
    pub(crate) now: DateTime<Utc>,
    pub(crate) tz: FixedOffset,
}

/// A literal resolved against the type of the column it is compared with.
#[derive(Debug, Clone)]
enum Typed {
    Num(f64),
    Date(DateTime<Utc>),
    Text(String),
    Bool(bool),
}

impl Typed {
    fn bound(&self) -> Bound<'_> {
        match self {
            Typed::Num(x) => Bound::Num(*x),
            Typed::Date(t) => Bound::Date(*t),
            Typed::Text(s) => Bound::Text(s),
            Typed::Bool(b) => Bound::Bool(*b),
        }
    }
}

/// Parse a date written as `YYYY-MM-DD` (midnight in the business time zone) or RFC 3339.
pub(crate) fn parse_date(s: &str, tz: FixedOffset) -> Option<DateTime<Utc>> {
    if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
        return tz
            .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .single()
            .map(|t| t.with_timezone(&Utc));
    }
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Ctx<'_> {
    fn column(&self, n: &Name) -> Result<&Column, ExprError> {
        static EMPTY: std::sync::OnceLock<[Column; 2]> = std::sync::OnceLock::new();
        if let Some(c) = self.columns.get(&n.name) {
            return Ok(c);
        }
        // Aggregate columns exist before the first order reaches them.
        if let Some((_, t)) = super::AGGREGATE_COLUMNS.iter().find(|(a, _)| *a == n.name) {
            let [num, date] = EMPTY
                .get_or_init(|| [Column::new(ValueType::Number), Column::new(ValueType::Date)]);
            return Ok(if *t == ValueType::Date { date } else { num });
        }
        self.columns.get(&n.name).ok_or_else(|| {
            ExprError::unknown(
                n.pos,
                "tag or attribute",
                &n.name,
                self.columns.keys().map(String::as_str),
            )
        })
    }

    fn typed(&self, field: &Name, t: ValueType, lit: &Lit) -> Result<Typed, ExprError> {
        let mismatch = |what: &str| {
            ExprError::new(
                lit.pos,
                format!(
                    "type mismatch: `{}` is {} {} tag, not comparable with {what}",
                    field.name,
                    if t == ValueType::Enum { "an" } else { "a" },
                    t.name()
                ),
            )
        };
        let what = match &lit.value {
            Literal::Number(_) => "a number",
            Literal::Str(_) => "a string",
            Literal::Bool(_) => "a bool",
            Literal::Now(_) => "a date",
        };
        Ok(match (t, &lit.value) {
            (ValueType::Number, Literal::Number(x)) => Typed::Num(*x),
            (ValueType::Enum, Literal::Str(s)) => Typed::Text(s.clone()),
            (ValueType::Bool, Literal::Bool(b)) => Typed::Bool(*b),
            (ValueType::Date, Literal::Now(off)) => Typed::Date(
                chrono::TimeDelta::try_seconds(*off)
                    .and_then(|d| self.now.checked_add_signed(d))
                    .ok_or_else(|| ExprError::new(lit.pos, "date out of range"))?,
            ),
            (ValueType::Date, Literal::Str(s)) => {
                Typed::Date(parse_date(s, self.tz).ok_or_else(|| {
                    ExprError::new(
                        lit.pos,
                        format!("`{s}` is not a date (use \"2026-01-05\", RFC 3339 or now - 30d)"),
                    )
                })?)
            }
            _ => return Err(mismatch(what)),
        })
    }

    fn eq(&self, col: &Column, v: &Typed) -> RoaringBitmap {
        col.compare(std::cmp::Ordering::Equal, true, v.bound())
    }

    /// Evaluate `e` to the set of live users it matches.
    pub(crate) fn eval(&self, e: &Expr) -> Result<RoaringBitmap, ExprError> {
        let mut out = self.eval_inner(e)?;
        // Users are numbered densely from 0; when every one of them is live no column can
        // hold a user outside the universe, and this pass over the whole result is skipped.
        if self.universe.len() != self.users {
            out &= self.universe;
        }
        Ok(out)
    }

    fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
        match e {
            Expr::And(a, b) => {
                Self::conjuncts(a, out);
                Self::conjuncts(b, out);
            }
            other => out.push(other),
        }
    }

    fn eval_inner(&self, e: &Expr) -> Result<RoaringBitmap, ExprError> {
        Ok(match e {
            Expr::And(..) => {
                // A chain of ANDs: intersect the positive terms smallest first, then subtract
                // the negated ones (`a AND NOT b` is `a - b`: no complement of `b` is built).
                let mut terms = Vec::new();
                Self::conjuncts(e, &mut terms);
                let mut pos = Vec::new();
                let mut neg = Vec::new();
                for t in terms {
                    match t {
                        Expr::Not(inner) => neg.push(self.eval_inner(inner)?),
                        other => pos.push(self.eval_inner(other)?),
                    }
                }
                pos.sort_by_key(|b| b.len());
                let mut it = pos.into_iter();
                let mut acc = match it.next() {
                    Some(first) => first,
                    None => self.universe.clone(),
                };
                for b in it {
                    acc &= b;
                }
                for b in neg {
                    acc -= b;
                }
                acc
            }
            Expr::Or(a, b) => {
                let mut l = self.eval_inner(a)?;
                l |= self.eval_inner(b)?;
                l
            }
            Expr::Not(a) => self.universe - self.eval_inner(a)?,
            Expr::Exists(n) => self.column(n)?.present(),
            Expr::Truthy(n) => {
                let col = self.column(n)?;
                if col.value_type() != ValueType::Bool {
                    return Err(ExprError::new(
                        n.pos,
                        format!(
                            "`{}` is a {} tag: compare it (e.g. {} = ...) or test EXISTS {}",
                            n.name,
                            col.value_type().name(),
                            n.name,
                            n.name
                        ),
                    ));
                }
                col.compare(std::cmp::Ordering::Equal, true, Bound::Bool(true))
            }
            Expr::InAudience(n) => self.audiences.get(&n.name).cloned().ok_or_else(|| {
                ExprError::unknown(
                    n.pos,
                    "audience",
                    &n.name,
                    self.audiences.keys().map(String::as_str),
                )
            })?,
            Expr::Compare { field, op, value } => {
                let col = self.column(field)?;
                let t = col.value_type();
                let v = self.typed(field, t, value)?;
                let ordered = matches!(t, ValueType::Number | ValueType::Date);
                if !ordered && !matches!(op, CmpOp::Eq | CmpOp::Ne) {
                    return Err(ExprError::new(
                        field.pos,
                        format!(
                            "`{}` is a {} tag: it supports =, !=, IN and EXISTS, not ordering",
                            field.name,
                            t.name()
                        ),
                    ));
                }
                use std::cmp::Ordering::*;
                match op {
                    CmpOp::Eq => self.eq(col, &v),
                    CmpOp::Ne => col.present() - self.eq(col, &v),
                    CmpOp::Lt => col.compare(Less, false, v.bound()),
                    CmpOp::Le => col.compare(Less, true, v.bound()),
                    CmpOp::Gt => col.compare(Greater, false, v.bound()),
                    CmpOp::Ge => col.compare(Greater, true, v.bound()),
                }
            }
            Expr::Between { field, lo, hi } => {
                let col = self.column(field)?;
                let t = col.value_type();
                if !matches!(t, ValueType::Number | ValueType::Date) {
                    return Err(ExprError::new(
                        field.pos,
                        format!(
                            "`{}` is a {} tag: BETWEEN needs a number or date",
                            field.name,
                            t.name()
                        ),
                    ));
                }
                let (l, h) = (self.typed(field, t, lo)?, self.typed(field, t, hi)?);
                col.between(l.bound(), h.bound())
            }
            Expr::In { field, values } => {
                let col = self.column(field)?;
                let t = col.value_type();
                let mut out = RoaringBitmap::new();
                for v in values {
                    out |= self.eq(col, &self.typed(field, t, v)?);
                }
                out
            }
        })
    }
}
