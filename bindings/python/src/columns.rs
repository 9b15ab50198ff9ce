//! The core's column-oriented functions (lifecycle, analytics, models, identity, tags) fed
//! straight from Arrow, and their results handed back as Arrow.
//!
//! A table arrives through the Arrow PyCapsule interface as a [`Table`] (no copy). The readers
//! here turn named columns into the plain slices the core takes:
//!
//! | reader | reads | gives |
//! |---|---|---|
//! | [`Keys::encode`] | integer or text ids, in one or more tables | dense `u64` codes, sorted like the ids |
//! | [`utc_millis`] | timestamps with a zone, RFC 3339 text | `i64` ms since the epoch (UTC) |
//! | [`wall_seconds`] | timestamps (their own zone's wall clock), dates, ISO text | `i64` wall-clock seconds |
//! | [`floats`] | numbers | `&[f64]` (borrowed from the Arrow buffer when it is one float64 chunk without nulls) |
//! | [`labels`] | text (or integers) | `u32` codes and their names |
//! | [`decimals`] | decimal text, decimal128, integers | `Decimal` |
//!
//! Every reader refuses a missing column, a column of the wrong type and a null with a
//! [`TableError`] naming the column (and the first bad row). Results go back as a
//! [`RecordBatch`] built from typed arrays ([`rows_batch`] for small JSON-shaped reports).
//!
//! [`run`] does the work without the GIL and turns a panic into an `internal` error.

use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::temporal_conversions::as_datetime_with_timezone;
use arrow_array::timezone::Tz;
use arrow_array::types::{
    Float64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use pyo3::prelude::*;
use rust_decimal::Decimal;
use userops::Error;

use crate::tables::{engine_error, Table, TableError};

/// Why a table function failed: the table (column and row) or the core (typed error).
#[derive(Debug)]
pub enum Fail {
    /// A column is missing, of the wrong type, or holds a bad value or a null.
    Table(TableError),
    /// The core refused the input (or an argument).
    Core(Error),
}

impl From<TableError> for Fail {
    fn from(e: TableError) -> Self {
        Fail::Table(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Core(e)
    }
}

impl Fail {
    /// The Python exception: `TableError`, or the class of the core's error code.
    pub fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Fail::Table(e) => e.to_py(py),
            Fail::Core(e) => engine_error(py, &e, None, None),
        }
    }
}

/// An `invalid_argument` error about a call argument.
pub fn bad_arg(field: &str, reason: impl Into<String>) -> Fail {
    Fail::Core(Error::invalid_argument(field, reason))
}

/// Run `f` without the GIL; a panic becomes an `internal` error rather than a Python crash.
///
/// # Errors
///
/// Whatever `f` fails with, as the Python exception of its error; a panic in `f` as
/// `userops.InternalError`.
pub fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Fail> + Send) -> PyResult<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(Fail::Core(Error::Internal(
                "panic inside a table function".into(),
            )))
        })
    })
    .map_err(|e| e.into_py(py))
}

/// The core's [`userops::Progress`] for a long table function: reports go to the Python
/// callback `f(done, total)` (if any), taking the GIL only for that; Ctrl-C is checked at each
/// report. An exception there (`KeyboardInterrupt` included) stops the computation, and
/// [`PyProgress::finish`] raises it instead of the core's result.
pub struct PyProgress {
    callback: Option<Py<PyAny>>,
    error: Option<PyErr>,
}

impl PyProgress {
    /// Report to `callback` (and check for Ctrl-C either way).
    pub fn new(callback: Option<Py<PyAny>>) -> Self {
        PyProgress {
            callback,
            error: None,
        }
    }

    /// The exception that stopped the work, else `result`.
    ///
    /// # Errors
    ///
    /// The exception the progress callback raised (or Ctrl-C), when one stopped the work; else
    /// `result`'s own.
    pub fn finish<T>(self, result: PyResult<T>) -> PyResult<T> {
        match self.error {
            Some(e) => Err(e),
            None => result,
        }
    }
}

impl userops::Progress for PyProgress {
    fn report(&mut self, done: u64, total: u64) -> std::ops::ControlFlow<()> {
        Python::attach(|py| {
            let reported = match &self.callback {
                Some(f) => f.call1(py, (done, total)).map(|_| ()),
                None => Ok(()),
            };
            match reported.and_then(|()| py.check_signals()) {
                Ok(()) => std::ops::ControlFlow::Continue(()),
                Err(e) => {
                    self.error = Some(e);
                    std::ops::ControlFlow::Break(())
                }
            }
        })
    }
}

/// The type of column `name` (dictionary columns: their values' type).
///
/// # Errors
///
/// [`TableError`] when the table has no column `name`.
pub fn value_type(table: &Table, name: &str) -> Result<DataType, TableError> {
    let field = table
        .schema()
        .field_with_name(name)
        .map_err(|_| TableError::missing(name))?;
    Ok(match field.data_type() {
        DataType::Dictionary(_, v) => v.as_ref().clone(),
        t => t.clone(),
    })
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// Chunk size for readers: whole record batches (the slices are only for progress).
const WHOLE: usize = usize::MAX;

/// Ids (customers, users, values) as dense codes `0..n`, numbered in the sorted order of the
/// distinct ids, so a core function that sorts by code sorts by id. Integer ids stay integers
/// on the way back (`Int64`, or `UInt64` when a column is unsigned; floats holding whole
/// numbers count as integers); anything else is text.
#[derive(Debug, Clone)]
pub struct Keys {
    values: KeyValues,
}

#[derive(Debug, Clone)]
enum KeyValues {
    Signed(Vec<i64>),
    Unsigned(Vec<u64>),
    Text(Vec<String>),
}

impl Keys {
    /// Encode the id column `name` of each `(table, name)` (one code space across them); a null
    /// id is a [`TableError`] naming the column and row.
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column, a column that is neither text nor integers, or a null
    /// id (naming the column and row).
    pub fn encode(columns: &[(&Table, &str)]) -> Result<(Keys, Vec<Vec<u64>>), TableError> {
        let mut ints = true;
        let mut unsigned = false;
        for (t, name) in columns {
            let ty = value_type(t, name)?;
            if ty.is_integer() {
                unsigned |= ty == DataType::UInt64;
            } else if ty.is_floating() {
                // pandas turns an integer id column with a missing value into floats: read
                // whole numbers as ids, so the missing one is reported as a null at its row.
            } else if is_text(&ty) {
                ints = false;
            } else {
                return Err(TableError::wrong_type(name, &ty, "integer or text ids"));
            }
        }
        if ints && unsigned {
            dense_keys(columns, unsigned_ids, KeyValues::Unsigned)
        } else if ints {
            dense_keys(columns, signed_ids, KeyValues::Signed)
        } else {
            text_keys(columns)
        }
    }

    /// How many distinct ids.
    pub fn len(&self) -> usize {
        match &self.values {
            KeyValues::Signed(v) => v.len(),
            KeyValues::Unsigned(v) => v.len(),
            KeyValues::Text(v) => v.len(),
        }
    }

    /// Whether there are no ids.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ids of `codes`, as an Arrow array of the ids' type.
    pub fn decode(&self, codes: impl Iterator<Item = u64>) -> ArrayRef {
        let at = |c: u64| usize::try_from(c).expect("codes come from this key space");
        match &self.values {
            KeyValues::Signed(v) => {
                Arc::new(codes.map(|c| v[at(c)]).collect::<Int64Array>()) as ArrayRef
            }
            KeyValues::Unsigned(v) => Arc::new(codes.map(|c| v[at(c)]).collect::<UInt64Array>()),
            KeyValues::Text(v) => Arc::new(
                codes
                    .map(|c| Some(v[at(c)].as_str()))
                    .collect::<StringArray>(),
            ),
        }
    }
}

/// Integer keys: each column read by `read`, then coded densely in sorted order.
fn dense_keys<T: Ord + Copy + Into<i128>>(
    columns: &[(&Table, &str)],
    read: fn(&Table, &str) -> Result<Vec<T>, TableError>,
    values: fn(Vec<T>) -> KeyValues,
) -> Result<(Keys, Vec<Vec<u64>>), TableError> {
    let cols = columns
        .iter()
        .map(|(t, n)| read(t, n))
        .collect::<Result<Vec<_>, _>>()?;
    let (distinct, codes) = dense(cols);
    Ok((
        Keys {
            values: values(distinct),
        },
        codes,
    ))
}

fn dense<T: Ord + Copy + Into<i128>>(cols: Vec<Vec<T>>) -> (Vec<T>, Vec<Vec<u64>>) {
    // Ids within a span a few times the row count (the usual case: database keys) are coded
    // through a rank table indexed by `id - min`, one pass, instead of a sort of every id and a
    // binary search per row.
    let rows: usize = cols.iter().map(Vec::len).sum();
    let (min, max) = match (cols.iter().flatten().min(), cols.iter().flatten().max()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => return (Vec::new(), cols.iter().map(|_| Vec::new()).collect()),
    };
    let span = max.into() - min.into();
    if span < 4 * rows as i128 + 1024 && rows < (u32::MAX / 8) as usize {
        let at = |v: T| (v.into() - min.into()) as usize;
        let mut rank = vec![u32::MAX; span as usize + 1];
        for c in &cols {
            for &v in c {
                rank[at(v)] = 0;
            }
        }
        let mut distinct = Vec::new();
        for (i, r) in rank.iter_mut().enumerate() {
            if *r == 0 {
                *r = distinct.len() as u32;
                distinct.push(i);
            }
        }
        let values: Vec<T> = cols
            .iter()
            .flatten()
            .copied()
            .fold(vec![None; distinct.len()], |mut out, v| {
                out[rank[at(v)] as usize] = Some(v);
                out
            })
            .into_iter()
            .flatten()
            .collect();
        let codes = cols
            .iter()
            .map(|c| c.iter().map(|&v| u64::from(rank[at(v)])).collect())
            .collect();
        return (values, codes);
    }
    let mut distinct: Vec<T> = cols.iter().flatten().copied().collect();
    distinct.sort_unstable();
    distinct.dedup();
    let codes = cols
        .iter()
        .map(|c| {
            c.iter()
                .map(|v| distinct.binary_search(v).map_or(0, |i| i as u64))
                .collect()
        })
        .collect();
    (distinct, codes)
}

fn signed_ids(t: &Table, name: &str) -> Result<Vec<i64>, TableError> {
    let mut out = Vec::with_capacity(t.num_rows());
    for chunk in t.chunks(WHOLE) {
        let col = chunk.ints(name)?;
        for i in 0..chunk.len() {
            out.push(col.required(i)?);
        }
    }
    Ok(out)
}

fn unsigned_ids(t: &Table, name: &str) -> Result<Vec<u64>, TableError> {
    let mut out = Vec::with_capacity(t.num_rows());
    for chunk in t.chunks(WHOLE) {
        let array = chunk
            .batch()
            .column_by_name(name)
            .ok_or_else(|| TableError::missing(name))?;
        if array.data_type() == &DataType::UInt64 {
            let a = array.as_primitive::<UInt64Type>();
            for i in 0..chunk.len() {
                if a.is_null(i) {
                    return Err(TableError::null(name, chunk.first_row() + i));
                }
                out.push(a.value(i));
            }
        } else {
            let col = chunk.ints(name)?;
            for i in 0..chunk.len() {
                let v = col.required(i)?;
                out.push(u64::try_from(v).map_err(|_| {
                    TableError::bad_value(name, chunk.first_row() + i, "a negative id")
                })?);
            }
        }
    }
    Ok(out)
}

fn text_keys(columns: &[(&Table, &str)]) -> Result<(Keys, Vec<Vec<u64>>), TableError> {
    let mut seen: HashMap<Box<str>, u64> = HashMap::new();
    let mut first: Vec<Vec<u64>> = Vec::with_capacity(columns.len());
    for (t, name) in columns {
        let mut codes = Vec::with_capacity(t.num_rows());
        for chunk in t.chunks(WHOLE) {
            let col = chunk.string_like(name)?;
            for i in 0..chunk.len() {
                let s = col.required(i)?;
                let next = seen.len() as u64;
                let code = match seen.get(s) {
                    Some(&c) => c,
                    None => {
                        seen.insert(s.into(), next);
                        next
                    }
                };
                codes.push(code);
            }
        }
        first.push(codes);
    }
    // Renumber first-seen codes in sorted id order.
    let mut distinct: Vec<(Box<str>, u64)> = seen.into_iter().collect();
    distinct.sort_unstable();
    let mut rank = vec![0u64; distinct.len()];
    for (r, (_, c)) in distinct.iter().enumerate() {
        rank[*c as usize] = r as u64;
    }
    for codes in &mut first {
        for c in codes.iter_mut() {
            *c = rank[*c as usize];
        }
    }
    let values = distinct.into_iter().map(|(s, _)| s.into_string()).collect();
    Ok((
        Keys {
            values: KeyValues::Text(values),
        },
        first,
    ))
}

/// A column of names (events, channels, segments) as `u32` codes in first-seen order, and the
/// names. Integer columns are read as their decimal text.
///
/// # Errors
///
/// [`TableError`] for a missing column, one that is neither text nor integers, a null (naming
/// the row), or more names than `u32` numbers.
pub fn labels(t: &Table, name: &str) -> Result<(Vec<u32>, Vec<String>), TableError> {
    let mut seen: HashMap<Box<str>, u32> = HashMap::new();
    let mut names = Vec::new();
    let mut codes = Vec::with_capacity(t.num_rows());
    for chunk in t.chunks(WHOLE) {
        let col = chunk.string_like(name)?;
        for i in 0..chunk.len() {
            let s = col.required(i)?;
            let code = match seen.get(s) {
                Some(&c) => c,
                None => {
                    let c = u32::try_from(names.len()).map_err(|_| {
                        TableError::bad_value(name, chunk.first_row() + i, "too many names")
                    })?;
                    seen.insert(s.into(), c);
                    names.push(s.to_owned());
                    c
                }
            };
            codes.push(code);
        }
    }
    Ok((codes, names))
}

fn per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// Raw epoch values of a timestamp column (one entry per row; a null is a [`TableError`]).
fn epoch_values(t: &Table, name: &str) -> Result<Vec<i64>, TableError> {
    let mut out = Vec::with_capacity(t.num_rows());
    for chunk in t.chunks(WHOLE) {
        let array = chunk
            .batch()
            .column_by_name(name)
            .ok_or_else(|| TableError::missing(name))?;
        let array: ArrayRef = match array.data_type() {
            DataType::Dictionary(_, v) => arrow_cast::cast(array, v)
                .map_err(|e| TableError::wrong_type(name, array.data_type(), &e.to_string()))?,
            _ => array.clone(),
        };
        if let Some(i) = (0..array.len()).find(|&i| array.is_null(i)) {
            return Err(TableError::null(name, chunk.first_row() + i));
        }
        macro_rules! values {
            ($t:ty) => {
                out.extend_from_slice(array.as_primitive::<$t>().values())
            };
        }
        match array.data_type() {
            DataType::Timestamp(TimeUnit::Second, _) => values!(TimestampSecondType),
            DataType::Timestamp(TimeUnit::Millisecond, _) => values!(TimestampMillisecondType),
            DataType::Timestamp(TimeUnit::Microsecond, _) => values!(TimestampMicrosecondType),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => values!(TimestampNanosecondType),
            t => return Err(TableError::wrong_type(name, t, "timestamps")),
        }
    }
    Ok(out)
}

/// Points in time as milliseconds since the epoch (UTC): timestamps with a zone, or RFC 3339
/// text with an offset. Naive timestamps and dates are refused: which day or month an event
/// falls in depends on the zone.
///
/// # Errors
///
/// [`TableError`] for a missing column, naive timestamps, dates, text without an offset, or a null
/// (naming the row).
pub fn utc_millis(t: &Table, name: &str) -> Result<Vec<i64>, TableError> {
    match value_type(t, name)? {
        DataType::Timestamp(unit, Some(_)) => {
            let per = per_second(unit);
            Ok(epoch_values(t, name)?
                .into_iter()
                .map(|v| {
                    if per >= 1_000 {
                        v.div_euclid(per / 1_000)
                    } else {
                        v.saturating_mul(1_000)
                    }
                })
                .collect())
        }
        DataType::Timestamp(_, None) => Err(TableError {
            column: Some(name.to_owned()),
            row: None,
            message: format!(
                "column `{name}` holds timestamps without a time zone; localize them first \
                 (pandas: .dt.tz_localize(\"Asia/Shanghai\"), polars: .dt.replace_time_zone(...))"
            ),
        }),
        ty if is_text(&ty) => {
            let mut out = Vec::with_capacity(t.num_rows());
            for chunk in t.chunks(WHOLE) {
                let col = chunk.timestamps(name, None)?;
                for i in 0..chunk.len() {
                    out.push(col.required(i)?.timestamp_millis());
                }
            }
            Ok(out)
        }
        ty => Err(TableError::wrong_type(
            name,
            &ty,
            "timestamps with a time zone (dates have none), or RFC 3339 text",
        )),
    }
}

/// Points in time as wall-clock seconds since 1970-01-01 00:00 (the models count calendar
/// days and months): naive timestamps as they are, timestamps with a zone in that zone's wall
/// clock, dates at midnight, ISO text (`2024-01-05`, `2024-01-05 10:00:00`, with or without an
/// offset, read in its own offset).
///
/// # Errors
///
/// [`TableError`] for a missing column, a type that is not a point in time, unreadable text or a
/// null (naming the row).
pub fn wall_seconds(t: &Table, name: &str) -> Result<Vec<i64>, TableError> {
    match value_type(t, name)? {
        DataType::Timestamp(unit, zone) => {
            let per = per_second(unit);
            let raw = epoch_values(t, name)?;
            let Some(zone) = zone else {
                return Ok(raw.into_iter().map(|v| v.div_euclid(per)).collect());
            };
            let tz: Tz = zone.parse().map_err(|e: arrow_schema::ArrowError| {
                TableError::wrong_type(
                    name,
                    &DataType::Timestamp(unit, Some(zone.clone())),
                    &e.to_string(),
                )
            })?;
            raw.into_iter()
                .enumerate()
                .map(|(row, v)| {
                    let local = match unit {
                        TimeUnit::Second => as_datetime_with_timezone::<TimestampSecondType>(v, tz),
                        TimeUnit::Millisecond => {
                            as_datetime_with_timezone::<TimestampMillisecondType>(v, tz)
                        }
                        TimeUnit::Microsecond => {
                            as_datetime_with_timezone::<TimestampMicrosecondType>(v, tz)
                        }
                        TimeUnit::Nanosecond => {
                            as_datetime_with_timezone::<TimestampNanosecondType>(v, tz)
                        }
                    };
                    local
                        .map(|d| d.naive_local().and_utc().timestamp())
                        .ok_or_else(|| TableError::bad_value(name, row, "timestamp out of range"))
                })
                .collect()
        }
        DataType::Date32 | DataType::Date64 => {
            let mut out = Vec::with_capacity(t.num_rows());
            for chunk in t.chunks(WHOLE) {
                let a = chunk
                    .batch()
                    .column_by_name(name)
                    .ok_or_else(|| TableError::missing(name))?;
                let secs = arrow_cast::cast(a, &DataType::Timestamp(TimeUnit::Second, None))
                    .map_err(|e| TableError::wrong_type(name, a.data_type(), &e.to_string()))?;
                let secs = secs.as_primitive::<TimestampSecondType>();
                for i in 0..secs.len() {
                    if secs.is_null(i) {
                        return Err(TableError::null(name, chunk.first_row() + i));
                    }
                    out.push(secs.value(i));
                }
            }
            Ok(out)
        }
        ty if is_text(&ty) => {
            let mut out = Vec::with_capacity(t.num_rows());
            for chunk in t.chunks(WHOLE) {
                let col = chunk.strings(name)?;
                for i in 0..chunk.len() {
                    let s = col.required(i)?;
                    out.push(iso_wall_seconds(s).ok_or_else(|| {
                        TableError::bad_value(
                            name,
                            chunk.first_row() + i,
                            format!("{s:?} is not an ISO date or timestamp"),
                        )
                    })?);
                }
            }
            Ok(out)
        }
        ty => Err(TableError::wrong_type(
            name,
            &ty,
            "timestamps, dates or ISO text",
        )),
    }
}

fn iso_wall_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.naive_local().and_utc().timestamp());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(n.and_utc().timestamp());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc().timestamp())
}

/// A number column as `f64`: borrowed from the Arrow buffer when the column is one float64
/// chunk without nulls (the common case: no copy at all), else converted. A null (or NaN, which
/// pandas writes for missing) is a [`TableError`] naming the row.
///
/// # Errors
///
/// [`TableError`] for a missing column, one that is not numbers, or a null or NaN (naming the row).
pub fn floats<'a>(t: &'a Table, name: &str) -> Result<Cow<'a, [f64]>, TableError> {
    if let [batch] = t.batches() {
        let array = batch
            .column_by_name(name)
            .ok_or_else(|| TableError::missing(name))?;
        if array.data_type() == &DataType::Float64 && array.null_count() == 0 {
            let values: &'a [f64] = array.as_primitive::<Float64Type>().values();
            if let Some(i) = values.iter().position(|v| v.is_nan()) {
                return Err(TableError::null(name, i));
            }
            return Ok(Cow::Borrowed(values));
        }
    }
    let mut out = Vec::with_capacity(t.num_rows());
    for chunk in t.chunks(WHOLE) {
        let col = chunk.floats(name)?;
        for i in 0..chunk.len() {
            out.push(col.required(i)?);
        }
    }
    Ok(Cow::Owned(out))
}

/// A yes/no column: booleans, or integers 0 and 1.
///
/// # Errors
///
/// [`TableError`] for a missing column, one that is neither booleans nor integers, a value other
/// than 0 or 1, or a null (naming the row).
pub fn flags(t: &Table, name: &str) -> Result<Vec<bool>, TableError> {
    let ty = value_type(t, name)?;
    let mut out = Vec::with_capacity(t.num_rows());
    for chunk in t.chunks(WHOLE) {
        if ty == DataType::Boolean {
            let col = chunk.bools(name)?;
            for i in 0..chunk.len() {
                out.push(col.required(i)?);
            }
        } else {
            let col = chunk
                .ints(name)
                .map_err(|_| TableError::wrong_type(name, &ty, "booleans or 0/1"))?;
            for i in 0..chunk.len() {
                out.push(match col.required(i)? {
                    0 => false,
                    1 => true,
                    v => {
                        return Err(TableError::bad_value(
                            name,
                            chunk.first_row() + i,
                            format!("{v} is not 0 or 1"),
                        ))
                    }
                });
            }
        }
    }
    Ok(out)
}

/// An exact-decimal column (money): decimal text, decimal128 or integers; floats refused.
///
/// # Errors
///
/// [`TableError`] for a missing column, floats, unreadable text, or a null (naming the row).
pub fn decimals(t: &Table, name: &str) -> Result<Vec<Decimal>, TableError> {
    let mut out = Vec::with_capacity(t.num_rows());
    for chunk in t.chunks(WHOLE) {
        let col = chunk.decimals(name)?;
        for i in 0..chunk.len() {
            out.push(col.required(i)?);
        }
    }
    Ok(out)
}

/// Which values an output column holds (see [`rows_batch`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// Text (`utf8` out).
    Str,
    /// Signed integers.
    I64,
    /// 64-bit floats.
    F64,
    /// Money: decimal text in, `decimal128(38, 10)` out.
    Dec,
}

impl Col {
    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Col::Str => DataType::Utf8,
            Col::I64 => DataType::Int64,
            Col::F64 => DataType::Float64,
            Col::Dec => DataType::Decimal128(38, 10),
        }
    }
}

/// A record batch from the JSON-shaped rows of the table functions' small reports (funnel,
/// cohorts, attribution, lifecycle report): column `name` of type `col` reads each row's field
/// `name`; absent or null fields are null. The engine's output tables are built from its typed
/// outputs instead (`userops_arrow`).
///
/// # Errors
///
/// `internal` when a row's value does not have its column's shape (a bug: the reports have
/// fixed shapes).
pub fn rows_batch(
    fields: &[(&str, Col)],
    rows: &[serde_json::Value],
) -> Result<RecordBatch, Error> {
    use serde_json::Value;
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for &(name, col) in fields {
        let array: ArrayRef = match col {
            Col::Str => Arc::new(StringArray::from(read_cells(rows, name, |v| {
                Some(match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            })?)),
            Col::I64 => Arc::new(Int64Array::from(read_cells(rows, name, Value::as_i64)?)),
            Col::F64 => Arc::new(Float64Array::from(read_cells(rows, name, Value::as_f64)?)),
            Col::Dec => Arc::new(
                Decimal128Array::from(read_cells(rows, name, |v| {
                    let mut d: Decimal = match v {
                        Value::String(s) => s.parse().ok()?,
                        Value::Number(n) => n.to_string().parse().ok()?,
                        _ => return None,
                    };
                    d.rescale(10);
                    Some(d.mantissa())
                })?)
                .with_precision_and_scale(38, 10)
                .map_err(|e| Error::Internal(e.to_string()))?,
            ),
        };
        arrays.push(array);
    }
    let schema = Schema::new(
        fields
            .iter()
            .map(|&(n, c)| Field::new(n, c.data_type(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(Arc::new(schema), arrays).map_err(|e| Error::Internal(e.to_string()))
}

/// Each row's value of the field `name`, read by `read`; absent and null are `None`, a value
/// `read` refuses is an `internal` error (fixed shapes).
fn read_cells<T>(
    rows: &[serde_json::Value],
    name: &str,
    read: impl Fn(&serde_json::Value) -> Option<T>,
) -> Result<Vec<Option<T>>, Error> {
    rows.iter()
        .map(|r| match r.get(name).filter(|v| !v.is_null()) {
            None => Ok(None),
            Some(v) => read(v).map(Some).ok_or_else(|| {
                Error::Internal(format!(
                    "output field `{name}` holds {v}, not the expected type"
                ))
            }),
        })
        .collect()
}

/// A record batch from named arrays (all the same length).
///
/// # Errors
///
/// `internal` when the arrays differ in length.
pub fn batch(columns: Vec<(String, ArrayRef)>) -> Result<RecordBatch, Error> {
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .map_err(|e| Error::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::Int64Type;
    use arrow_array::{Float64Array, TimestampSecondArray};

    fn table(cols: Vec<(&str, ArrayRef)>) -> Table {
        let b = batch(cols.into_iter().map(|(n, a)| (n.to_owned(), a)).collect()).unwrap();
        Table::from_batches(b.schema(), vec![b])
    }

    #[test]
    fn keys_sorted_across_tables_and_decoded() {
        let a = table(vec![(
            "u",
            Arc::new(StringArray::from(vec!["b", "a", "b"])) as ArrayRef,
        )]);
        let b = table(vec![("u", Arc::new(Int64Array::from(vec![7])) as ArrayRef)]);
        let (keys, codes) = Keys::encode(&[(&a, "u"), (&b, "u")]).unwrap();
        assert_eq!(codes, vec![vec![2, 1, 2], vec![0]]);
        let back = keys.decode([0u64, 2].into_iter());
        assert_eq!(back.as_string::<i32>().value(0), "7");
        let (k, c) = Keys::encode(&[(&b, "u")]).unwrap();
        assert_eq!((k.len(), c), (1, vec![vec![0]]));
        let nulls = table(vec![(
            "u",
            Arc::new(Int64Array::from(vec![Some(1), None])) as ArrayRef,
        )]);
        let e = Keys::encode(&[(&nulls, "u")]).unwrap_err();
        assert_eq!((e.column.as_deref(), e.row), (Some("u"), Some(1)));
    }

    #[test]
    fn dense_codes_by_rank_table_and_by_sort_agree() {
        fn reference(cols: &[Vec<i64>]) -> (Vec<i64>, Vec<Vec<u64>>) {
            let mut d: Vec<i64> = cols.iter().flatten().copied().collect();
            d.sort_unstable();
            d.dedup();
            let codes = cols
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|v| d.binary_search(v).unwrap() as u64)
                        .collect()
                })
                .collect();
            (d, codes)
        }
        let cases: Vec<Vec<Vec<i64>>> = vec![
            vec![vec![5, -3, 5, 7], vec![7, 0]],        // dense: rank table
            vec![vec![1 << 50, -(1 << 50), 3], vec![]], // sparse: sort
            vec![vec![], vec![]],
            vec![vec![i64::MAX, i64::MIN]],
        ];
        for cols in cases {
            assert_eq!(dense(cols.clone()), reference(&cols), "{cols:?}");
        }
        let u: Vec<Vec<u64>> = vec![vec![u64::MAX, 0, u64::MAX - 1]];
        assert_eq!(dense(u).1, vec![vec![2, 0, 1]]);
    }

    #[test]
    fn floats_borrow_one_clean_chunk() {
        let t = table(vec![(
            "x",
            Arc::new(Float64Array::from(vec![1.0, 2.5])) as ArrayRef,
        )]);
        assert!(matches!(floats(&t, "x").unwrap(), Cow::Borrowed(_)));
        let n = table(vec![(
            "x",
            Arc::new(Float64Array::from(vec![1.0, f64::NAN])) as ArrayRef,
        )]);
        assert_eq!(floats(&n, "x").unwrap_err().row, Some(1));
    }

    #[test]
    fn times_utc_and_wall_clock() {
        let t = table(vec![(
            "t",
            Arc::new(TimestampSecondArray::from(vec![0i64]).with_timezone("Asia/Shanghai"))
                as ArrayRef,
        )]);
        assert_eq!(utc_millis(&t, "t").unwrap(), vec![0]);
        assert_eq!(wall_seconds(&t, "t").unwrap(), vec![8 * 3600]);
        let naive = table(vec![(
            "t",
            Arc::new(TimestampSecondArray::from(vec![5i64])) as ArrayRef,
        )]);
        assert!(utc_millis(&naive, "t").is_err());
        assert_eq!(wall_seconds(&naive, "t").unwrap(), vec![5]);
        assert_eq!(iso_wall_seconds("1970-01-02"), Some(86_400));
        assert_eq!(iso_wall_seconds("1970-01-01T01:00:00+08:00"), Some(3600));
    }

    #[test]
    fn rows_batch_types() {
        let rows = vec![
            serde_json::json!({"a": "x", "n": 3, "d": "1.50", "f": 0.5}),
            serde_json::json!({"a": null}),
        ];
        let b = rows_batch(
            &[
                ("a", Col::Str),
                ("n", Col::I64),
                ("d", Col::Dec),
                ("f", Col::F64),
            ],
            &rows,
        )
        .unwrap();
        assert_eq!(b.num_rows(), 2);
        assert!(b.column(0).is_null(1));
        assert_eq!(b.column(1).as_primitive::<Int64Type>().value(0), 3);
        let bad = rows_batch(&[("a", Col::I64)], &rows).unwrap_err();
        assert!(bad.to_string().contains("`a`"));
    }
}
