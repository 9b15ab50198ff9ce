//! Evaluation of an audience [`Expr`] on the bitmap index.
//!
//! Semantics (two-valued, like a boolean mask over rows): a comparison on a user without a value
//! is false; `NOT e` is every live user not matched by `e`; `x != v` matches users that have a
//! value other than `v`. The result only holds live users.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use roaring::RoaringBitmap;

use super::column::{Bound, Column, ValueType};
use super::expr::{CmpOp, Expr, ExprError, Lit, Literal, Name};

/// Saved audiences as an expression reads them: borrowed where they are kept, so evaluating
/// one expression costs nothing per saved audience (a map built per evaluation made saving N
/// audiences quadratic).
pub(crate) trait Audiences {
    /// The members of a saved audience.
    fn members(&self, name: &str) -> Option<&RoaringBitmap>;
    /// Every saved audience's name (for "did you mean" on an unknown one).
    fn names(&self) -> Box<dyn Iterator<Item = &str> + '_>;
}

impl Audiences for BTreeMap<String, RoaringBitmap> {
    fn members(&self, name: &str) -> Option<&RoaringBitmap> {
        self.get(name)
    }
    fn names(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        Box::new(self.keys().map(String::as_str))
    }
}

/// What an expression is evaluated against.
pub(crate) struct Ctx<'a> {
    pub(crate) columns: &'a BTreeMap<String, Column>,
    pub(crate) audiences: &'a dyn Audiences,
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

impl<'a> Ctx<'a> {
    fn column(&self, n: &Name) -> Result<&'a Column, ExprError> {
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
        if let Some(f) = super::expr::PROGRAM_COLUMNS
            .iter()
            .find(|f| n.name.starts_with(&format!("{f}(")))
        {
            // The columns of a program are created with it: none means no such program.
            let prefix = format!("{f}(");
            return Err(ExprError::unknown(
                n.pos,
                "loyalty program in",
                &n.name,
                self.columns
                    .keys()
                    .filter(|k| k.starts_with(&prefix))
                    .map(String::as_str),
            ));
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

    /// Every field `e` names exists: checked up front, since evaluation may skip a branch
    /// (an AND whose other side is empty) and an unknown name must be an error all the same.
    fn check_names(&self, e: &Expr) -> Result<(), ExprError> {
        match e {
            Expr::And(terms) | Expr::Or(terms) => {
                terms.iter().try_for_each(|t| self.check_names(t))
            }
            Expr::Not(a) => self.check_names(a),
            Expr::Compare { field, .. }
            | Expr::Between { field, .. }
            | Expr::In { field, .. }
            | Expr::Exists(field)
            | Expr::Truthy(field) => self.column(field).map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Evaluate `e` to the set of live users it matches.
    pub(crate) fn eval(&self, e: &Expr) -> Result<RoaringBitmap, ExprError> {
        self.check_names(e)?;
        let mut out = self.eval_in(e, None)?.into_owned();
        // Users are numbered densely from 0; when every one of them is live no column can
        // hold a user outside the universe, and this pass over the whole result is skipped.
        if self.universe.len() != self.users {
            out &= self.universe;
        }
        Ok(out)
    }

    /// Evaluate `e` for the users of `within` only (live users): the members among them.
    /// This is how a rule tag is recomputed for the users whose inputs changed.
    pub(crate) fn eval_for(
        &self,
        e: &Expr,
        within: &RoaringBitmap,
    ) -> Result<RoaringBitmap, ExprError> {
        self.check_names(e)?;
        let w = within & self.universe;
        Ok(restrict(self.eval_in(e, Some(&w))?, Some(&w)))
    }

    /// The operands of a chain of ORs (`or`) or of ANDs, with parenthesized chains of the
    /// same kind opened up (their depth is bounded by the parser's nesting limit).
    fn flatten<'e>(e: &'e Expr, or: bool, out: &mut Vec<&'e Expr>) {
        match e {
            Expr::Or(terms) if or => terms.iter().for_each(|t| Self::flatten(t, or, out)),
            Expr::And(terms) if !or => terms.iter().for_each(|t| Self::flatten(t, or, out)),
            other => out.push(other),
        }
    }

    /// How much work a conjunct costs, cheapest first: 0 lends a stored bitmap (bool/enum
    /// equality, truthy, a saved audience); 1 a union of stored bitmaps (IN); 2 OR and
    /// nested terms (recursing with the candidates); 3 number/date comparisons, which walk
    /// every slice of the bit-sliced index and so go last, over the fewest candidates.
    fn cost(&self, e: &Expr) -> u8 {
        let lends = |n: &Name| {
            self.columns
                .get(&n.name)
                .is_some_and(Column::lends_equality)
        };
        match e {
            Expr::Truthy(_) | Expr::InAudience(_) => 0,
            Expr::Compare {
                field,
                op: CmpOp::Eq,
                ..
            } if lends(field) => 0,
            Expr::In { field, .. } if lends(field) => 1,
            Expr::Compare { .. } | Expr::Between { .. } | Expr::Exists(_) => 3,
            _ => 2,
        }
    }

    /// Evaluate `e`. The answer is exact within `within` (the universe when `None`); outside it
    /// it may hold extra users (a lent bitmap is not trimmed). Passing the candidates an AND has
    /// narrowed down to keeps range walks and unions small.
    fn eval_in(
        &self,
        e: &Expr,
        within: Option<&RoaringBitmap>,
    ) -> Result<Cow<'a, RoaringBitmap>, ExprError> {
        Ok(match e {
            Expr::And(..) => self.eval_and(e, within)?,
            Expr::Or(..) => {
                // All disjuncts at once, then one trim: unions of the (often lent, dense)
                // operands are word-wise, where trimming each first and merging the sparse
                // results costs a pass over every value per operand.
                let mut terms = Vec::new();
                Self::flatten(e, true, &mut terms);
                let parts = terms
                    .into_iter()
                    .map(|t| self.eval_in(t, within))
                    .collect::<Result<Vec<_>, _>>()?;
                Cow::Owned(union_within(&parts, within))
            }
            Expr::Not(a) => {
                let base = within.unwrap_or(self.universe);
                Cow::Owned(base - &*self.eval_in(a, Some(base))?)
            }
            Expr::Exists(n) => self.column(n)?.present_within(within),
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
                col.compare(std::cmp::Ordering::Equal, true, Bound::Bool(true), within)
            }
            Expr::InAudience(n) => {
                Cow::Borrowed(self.audiences.members(&n.name).ok_or_else(|| {
                    ExprError::unknown(n.pos, "audience", &n.name, self.audiences.names())
                })?)
            }
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
                    CmpOp::Eq => col.compare(Equal, true, v.bound(), within),
                    CmpOp::Ne => {
                        let mut p = restrict(col.present_within(within), within);
                        p -= &*col.compare(Equal, true, v.bound(), Some(&p));
                        Cow::Owned(p)
                    }
                    CmpOp::Lt => col.compare(Less, false, v.bound(), within),
                    CmpOp::Le => col.compare(Less, true, v.bound(), within),
                    CmpOp::Gt => col.compare(Greater, false, v.bound(), within),
                    CmpOp::Ge => col.compare(Greater, true, v.bound(), within),
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
                Cow::Owned(col.between(l.bound(), h.bound(), within))
            }
            Expr::In { field, values } => {
                let col = self.column(field)?;
                let t = col.value_type();
                let mut hits = Vec::with_capacity(values.len());
                for v in values {
                    hits.push(col.compare(
                        std::cmp::Ordering::Equal,
                        true,
                        self.typed(field, t, v)?.bound(),
                        within,
                    ));
                }
                Cow::Owned(union_within(&hits, within))
            }
        })
    }

    /// A conjunction, `e` being an `AND` (see [`Self::flatten`]).
    fn eval_and(
        &self,
        e: &Expr,
        within: Option<&RoaringBitmap>,
    ) -> Result<Cow<'a, RoaringBitmap>, ExprError> {
        // Conjuncts cheapest first; lent bitmaps intersect smallest first; every other
        // term is evaluated only for the candidates left, and a negated term is
        // subtracted (`a AND NOT b` is `a - b`: no complement is built).
        let mut terms = Vec::new();
        Self::flatten(e, false, &mut terms);
        let split = |t: &'_ Expr| -> (bool, u8) {
            match t {
                Expr::Not(inner) => (true, self.cost(inner)),
                other => (false, self.cost(other)),
            }
        };
        let mut lent = Vec::new();
        let mut rest = Vec::new();
        for t in terms {
            match split(t) {
                (false, 0) => lent.push(self.eval_in(t, within)?),
                (neg, c) => rest.push((c, neg, t)),
            }
        }
        lent.sort_by_key(|b| b.len());
        let mut it = lent.into_iter();
        let mut acc = match (it.next(), within) {
            (Some(first), w) => restrict(first, w),
            (None, Some(w)) => w.clone(),
            (None, None) => self.universe.clone(),
        };
        for b in it {
            acc &= &*b;
        }
        rest.sort_by_key(|(c, neg, _)| (*c, !*neg));
        for (_, neg, t) in rest {
            if acc.is_empty() {
                break;
            }
            let inner = match (neg, t) {
                (true, Expr::Not(inner)) => inner,
                _ => t,
            };
            let b = self.eval_in(inner, Some(&acc))?;
            if neg {
                acc -= &*b;
            } else {
                acc &= &*b;
            }
        }
        Ok(Cow::Owned(acc))
    }
}

/// The union of `parts`, trimmed to `within`.
fn union_within(parts: &[Cow<'_, RoaringBitmap>], within: Option<&RoaringBitmap>) -> RoaringBitmap {
    let mut out = roaring::MultiOps::union(parts.iter().map(|p| &**p));
    if let Some(w) = within {
        out &= w;
    }
    out
}

/// `b` trimmed to `within` (owned).
fn restrict(b: Cow<'_, RoaringBitmap>, within: Option<&RoaringBitmap>) -> RoaringBitmap {
    match (b, within) {
        (Cow::Borrowed(b), Some(w)) => b & w,
        (Cow::Borrowed(b), None) => b.clone(),
        (Cow::Owned(mut b), Some(w)) => {
            b &= w;
            b
        }
        (Cow::Owned(b), None) => b,
    }
}
