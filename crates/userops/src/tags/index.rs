//! [`TagIndex`]: the bitmap index on its own, for batch paths and benchmarks — columns given as
//! whole arrays (value of user `i` at position `i`), expressions evaluated exactly as the engine
//! evaluates them (same columns, same evaluator).
//!
//! ```
//! use userops::tags::TagIndex;
//! let mut ix = TagIndex::new(4);
//! ix.set_numbers("age", &[Some(45.0), Some(30.0), None, Some(52.0)]).unwrap();
//! ix.set_enums("tier", &[Some("gold"), Some("silver"), Some("gold"), None]).unwrap();
//! let now = chrono::Utc::now();
//! let hits = ix.evaluate(r#"age BETWEEN 40 AND 60 OR tier = "silver""#, now).unwrap();
//! assert_eq!(hits.iter().collect::<Vec<u32>>(), vec![0, 1, 3]);
//! assert!(ix.evaluate("agee > 1", now).is_err());
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;

use super::column::{Bsi, Column, ValueType};
use super::eval::Ctx;
use super::expr::{self, ExprError};
use crate::error::Error;

/// A standalone bitmap index over users `0..n`.
#[derive(Debug, Clone, Default)]
pub struct TagIndex {
    columns: BTreeMap<String, Column>,
    audiences: BTreeMap<String, RoaringBitmap>,
    universe: RoaringBitmap,
    users: u32,
}

impl TagIndex {
    /// An index over users `0..users`, with no columns.
    pub fn new(users: u32) -> TagIndex {
        TagIndex {
            universe: RoaringBitmap::from_sorted_iter(0..users).unwrap_or_default(),
            users,
            ..TagIndex::default()
        }
    }

    fn check_len(&self, name: &str, n: usize) -> Result<(), Error> {
        if n != self.users as usize {
            return Err(Error::invalid_argument(
                name.to_owned(),
                format!("{n} values for {} users", self.users),
            ));
        }
        Ok(())
    }

    /// A bool column.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `name` when `values` does not hold one entry per user; the column is
    /// left as it was.
    pub fn set_bools(&mut self, name: &str, values: &[Option<bool>]) -> Result<(), Error> {
        self.check_len(name, values.len())?;
        let (mut yes, mut no) = (Vec::new(), Vec::new());
        for (u, v) in values.iter().enumerate() {
            match v {
                Some(true) => yes.push(u as u32),
                Some(false) => no.push(u as u32),
                None => {}
            }
        }
        let b = |v: Vec<u32>| RoaringBitmap::from_sorted_iter(v).unwrap_or_default();
        self.columns.insert(
            name.to_owned(),
            Column::Bool {
                yes: b(yes),
                no: b(no),
            },
        );
        Ok(())
    }

    /// An enum column.
    ///
    /// # Errors
    ///
    /// As [`TagIndex::set_bools`].
    pub fn set_enums(&mut self, name: &str, values: &[Option<&str>]) -> Result<(), Error> {
        self.check_len(name, values.len())?;
        let mut by: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for (u, v) in values.iter().enumerate() {
            if let Some(v) = v {
                match by.get_mut(*v) {
                    Some(l) => l.push(u as u32),
                    None => {
                        by.insert((*v).to_owned(), vec![u as u32]);
                    }
                }
            }
        }
        let values = by
            .into_iter()
            .map(|(k, v)| (k, RoaringBitmap::from_sorted_iter(v).unwrap_or_default()))
            .collect();
        self.columns
            .insert(name.to_owned(), Column::Enum { values });
        Ok(())
    }

    /// A number column (NaN and infinities are refused).
    ///
    /// # Errors
    ///
    /// As [`TagIndex::set_bools`]; also `invalid_argument` at `name[i]` for a value that is NaN
    /// or infinite.
    pub fn set_numbers(&mut self, name: &str, values: &[Option<f64>]) -> Result<(), Error> {
        self.check_len(name, values.len())?;
        let mut pairs = Vec::with_capacity(values.len());
        for (u, v) in values.iter().enumerate() {
            if let Some(x) = v {
                if !x.is_finite() {
                    return Err(Error::invalid_argument(
                        format!("{name}[{u}]"),
                        "not a finite number",
                    ));
                }
                pairs.push((u as u32, super::column::number_key(*x)));
            }
        }
        self.columns
            .insert(name.to_owned(), Column::Number(Bsi::build(&pairs)));
        Ok(())
    }

    /// A date column.
    ///
    /// # Errors
    ///
    /// As [`TagIndex::set_bools`].
    pub fn set_dates(&mut self, name: &str, values: &[Option<DateTime<Utc>>]) -> Result<(), Error> {
        self.check_len(name, values.len())?;
        let pairs: Vec<(u32, u64)> = values
            .iter()
            .enumerate()
            .filter_map(|(u, v)| v.map(|t| (u as u32, super::column::date_key(t))))
            .collect();
        self.columns
            .insert(name.to_owned(), Column::Date(Bsi::build(&pairs)));
        Ok(())
    }

    /// Save a set of users under a name, for `in_audience("name")`.
    pub fn save_audience(&mut self, name: &str, members: RoaringBitmap) {
        self.audiences.insert(name.to_owned(), members);
    }

    /// Evaluate an expression; relative dates refer to `now`; dates in strings use UTC.
    ///
    /// # Errors
    ///
    /// An [`ExprError`] (`audience_syntax`) when the expression does not parse or does not fit
    /// the columns and saved audiences it names, with the position of the mistake.
    pub fn evaluate(
        &self,
        expression: &str,
        now: DateTime<Utc>,
    ) -> Result<RoaringBitmap, ExprError> {
        let e = expr::parse(expression)?;
        Ctx {
            columns: &self.columns,
            audiences: &self.audiences,
            universe: &self.universe,
            users: u64::from(self.users),
            now,
            tz: chrono::FixedOffset::east_opt(0).expect("UTC is a valid offset"),
        }
        .eval(&e)
    }

    /// The type of a column.
    pub fn value_type(&self, name: &str) -> Option<ValueType> {
        self.columns.get(name).map(Column::value_type)
    }

    /// Bytes the column's index takes (roaring serialized sizes plus dictionaries).
    pub fn memory(&self, name: &str) -> Option<usize> {
        self.columns.get(name).map(Column::memory)
    }
}
