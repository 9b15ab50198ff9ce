//! Arrow tables in and out of the native module: typed column accessors for native code that
//! reads a table handed over from Python, and the errors such code raises.
//!
//! # How a table gets here
//! The Python side normalizes whatever the caller gave (pyarrow, polars, pandas, duckdb, any
//! object with `__arrow_c_stream__`) with `userops._tables.to_arrow(obj)`, then passes the
//! pyarrow table to a native function taking a [`pyo3_arrow::PyTable`]. The buffers cross through
//! the Arrow C stream interface without a copy. In Rust, wrap it with [`Table::from_py`]:
//!
//! ```ignore
//! #[pymethods]
//! impl NativeEngine {
//!     fn my_function(&self, py: Python<'_>, table: PyTable) -> PyResult<PyTable> {
//!         let table = Table::from_py(table);
//!         table.require(&["user", "amount"])?;              // TableError naming the column
//!         for chunk in table.chunks(10_000) {               // zero-copy slices
//!             let users = chunk.string_like("user")?;       // wrong type: TableError
//!             let amounts = chunk.decimals("amount")?;
//!             for i in 0..chunk.len() {
//!                 let user: &str = users.required(i)?;      // null: TableError with the row
//!                 let amount: Option<Decimal> = amounts.get(i)?; // bad text: TableError with the row
//!             }
//!         }
//!         table_out(batch)                                  // back to Python
//!     }
//! }
//! ```
//!
//! and on the Python side `_tables.from_arrow(native_result, kind)` gives the caller back the
//! kind of table they passed (or the one they asked for with `output=`).
//!
//! # Accessors
//! Every column accessor checks the column's Arrow type once (wrong type or missing column:
//! [`TableError`] naming the column) and then reads rows by index within the chunk. `get(i)`
//! returns `Ok(None)` for a null; `required(i)` turns a null into a [`TableError`] naming the
//! column and the row. Rows in errors are 0-based positions in the whole table (the chunk's
//! [`Chunk::first_row`] is added for you).
//!
//! | accessor | accepts | gives |
//! |---|---|---|
//! | [`Chunk::strings`] | utf8, large utf8, utf8 view, dictionary of those | `&str` |
//! | [`Chunk::string_like`] | the above and any integer column (written in decimal) | `&str` |
//! | [`Chunk::ints`] | any integer; floats holding whole numbers (pandas' missing-int) | `i64` |
//! | [`Chunk::floats`] | any integer or float; NaN reads as null | `f64` |
//! | [`Chunk::bools`] | boolean | `bool` |
//! | [`Chunk::decimals`] | decimal text, decimal128, integers (never floats: money is exact) | `Decimal` |
//! | [`Chunk::timestamps`] | timestamp with a zone; naive timestamps given a zone; RFC 3339 text | `DateTime<Utc>` |
//! | [`Chunk::json_values`] | anything nested (lists, structs) as JSON for the engine | `serde_json::Value` |

use std::fmt;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Decimal128Type, Float64Type, Int64Type, UInt64Type};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyTable;
use rust_decimal::Decimal;

/// A problem with a table handed to userops: a missing column, a column of the wrong type, a
/// null where a value is needed, or a value that cannot be read. Raised in Python as
/// `userops.TableError` (a subclass of `InvalidArgument`) with `.column` and `.row`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableError {
    /// The column at fault, when one is.
    pub column: Option<String>,
    /// The first bad row (0-based position in the table), when the fault is in a row.
    pub row: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl TableError {
    /// A problem with the whole table.
    pub fn table(message: impl Into<String>) -> Self {
        TableError {
            column: None,
            row: None,
            message: message.into(),
        }
    }

    /// A required column is absent.
    pub fn missing(column: &str) -> Self {
        TableError {
            column: Some(column.to_owned()),
            row: None,
            message: format!("column `{column}` is missing"),
        }
    }

    /// A column has a type the accessor cannot read.
    pub fn wrong_type(column: &str, found: &DataType, expected: &str) -> Self {
        TableError {
            column: Some(column.to_owned()),
            row: None,
            message: format!("column `{column}` has type {found}; expected {expected}"),
        }
    }

    /// A null where a value is required.
    pub fn null(column: &str, row: usize) -> Self {
        TableError {
            column: Some(column.to_owned()),
            row: Some(row),
            message: format!("column `{column}` is null at row {row}; a value is required"),
        }
    }

    /// A value that cannot be read.
    pub fn bad_value(column: &str, row: usize, reason: impl fmt::Display) -> Self {
        TableError {
            column: Some(column.to_owned()),
            row: Some(row),
            message: format!("column `{column}`, row {row}: {reason}"),
        }
    }

    /// The Python exception (`userops.errors.TableError`).
    pub fn to_py(&self, py: Python<'_>) -> PyErr {
        let build = || -> PyResult<PyErr> {
            let cls = py.import("userops.errors")?.getattr("TableError")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("column", self.column.as_deref())?;
            kwargs.set_item("row", self.row)?;
            Ok(PyErr::from_value(
                cls.call((self.message.as_str(),), Some(&kwargs))?,
            ))
        };
        build().unwrap_or_else(|e| e)
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TableError {}

impl From<TableError> for PyErr {
    fn from(e: TableError) -> PyErr {
        Python::attach(|py| e.to_py(py))
    }
}

/// The Python exception for an engine error, with the table row and column it came from:
/// `userops.errors.from_report` picks the class (`InvalidEvent`, `DuplicateKey`, ...).
pub fn engine_error(
    py: Python<'_>,
    error: &userops::Error,
    row: Option<usize>,
    column: Option<&str>,
) -> PyErr {
    let report = error.to_report();
    let build = || -> PyResult<PyErr> {
        let d = PyDict::new(py);
        d.set_item("code", report.code)?;
        d.set_item("status", report.status)?;
        let message = match row {
            Some(r) => format!("row {r}: {}", report.message),
            None => report.message.clone(),
        };
        d.set_item("message", message)?;
        d.set_item("field", report.field.as_deref())?;
        d.set_item("position", report.position)?;
        d.set_item("row", row)?;
        d.set_item("column", column)?;
        let exc = py
            .import("userops.errors")?
            .getattr("from_report")?
            .call1((d,))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// A table received from Python: a schema and its record batches.
#[derive(Debug, Clone)]
pub struct Table {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

impl Table {
    /// Take over a table received from Python (no copy).
    pub fn from_py(table: PyTable) -> Table {
        let (batches, schema) = table.into_inner();
        Table { schema, batches }
    }

    /// A table of record batches sharing `schema`.
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Table {
        Table { schema, batches }
    }

    /// The record batches, in order.
    pub fn batches(&self) -> &[RecordBatch] {
        &self.batches
    }

    /// The schema every batch has.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Total rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// Whether a column of that name exists.
    pub fn has_column(&self, name: &str) -> bool {
        self.schema.field_with_name(name).is_ok()
    }

    /// A [`TableError`] for the first of `names` that is not a column.
    ///
    /// # Errors
    ///
    /// [`TableError`] naming the first missing column.
    pub fn require(&self, names: &[&str]) -> Result<(), TableError> {
        match names.iter().find(|n| !self.has_column(n)) {
            Some(n) => Err(TableError::missing(n)),
            None => Ok(()),
        }
    }

    /// The table in chunks of at most `max_rows` rows (zero-copy slices), in order.
    pub fn chunks(&self, max_rows: usize) -> Vec<Chunk> {
        let max_rows = max_rows.max(1);
        let mut out = Vec::new();
        let mut first_row = 0;
        for batch in &self.batches {
            let mut offset = 0;
            while offset < batch.num_rows() {
                let len = max_rows.min(batch.num_rows() - offset);
                out.push(Chunk {
                    batch: batch.slice(offset, len),
                    first_row: first_row + offset,
                });
                offset += len;
            }
            first_row += batch.num_rows();
        }
        out
    }
}

/// A run of consecutive rows of a [`Table`].
#[derive(Debug, Clone)]
pub struct Chunk {
    batch: RecordBatch,
    first_row: usize,
}

impl Chunk {
    /// Rows in the chunk.
    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// Whether the chunk has no rows.
    pub fn is_empty(&self) -> bool {
        self.batch.num_rows() == 0
    }

    /// The table row of the chunk's row 0.
    pub fn first_row(&self) -> usize {
        self.first_row
    }

    /// The underlying record batch.
    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    fn array(&self, name: &str) -> Result<ArrayRef, TableError> {
        let array = self
            .batch
            .column_by_name(name)
            .cloned()
            .ok_or_else(|| TableError::missing(name))?;
        // Dictionary columns (pandas categoricals) are read through their values.
        match array.data_type() {
            DataType::Dictionary(_, value) => {
                arrow_cast::cast(&array, value).map_err(|e| TableError {
                    column: Some(name.to_owned()),
                    row: None,
                    message: format!("column `{name}`: cannot decode dictionary: {e}"),
                })
            }
            _ => Ok(array),
        }
    }

    fn column_base(&self, name: &str) -> ColumnBase {
        ColumnBase {
            name: name.to_owned(),
            first_row: self.first_row,
        }
    }

    /// A text column.
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column or one that is not text.
    pub fn strings(&self, name: &str) -> Result<StringColumn, TableError> {
        let array = self.array(name)?;
        match array.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                Ok(StringColumn {
                    base: self.column_base(name),
                    array,
                })
            }
            t => Err(TableError::wrong_type(name, t, "text")),
        }
    }

    /// A text column, or an integer column read as decimal text (ids often arrive as numbers).
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column or one that is neither text nor integers.
    pub fn string_like(&self, name: &str) -> Result<StringColumn, TableError> {
        let array = self.array(name)?;
        if array.data_type().is_integer() {
            let array = arrow_cast::cast(&array, &DataType::Utf8)
                .map_err(|e| TableError::wrong_type(name, array.data_type(), &e.to_string()))?;
            return Ok(StringColumn {
                base: self.column_base(name),
                array,
            });
        }
        self.strings(name)
            .map_err(|_| TableError::wrong_type(name, array.data_type(), "text or integers"))
    }

    /// An integer column.
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column or one that is not numbers.
    pub fn ints(&self, name: &str) -> Result<IntColumn, TableError> {
        let array = self.array(name)?;
        let t = array.data_type().clone();
        let cast = |to: &DataType| {
            arrow_cast::cast(&array, to)
                .map_err(|e| TableError::wrong_type(name, &t, &e.to_string()))
        };
        let values = match &t {
            DataType::UInt64 => IntValues::U64(array.clone()),
            DataType::Null => IntValues::I64(cast(&DataType::Int64)?),
            t if t.is_integer() => IntValues::I64(cast(&DataType::Int64)?),
            DataType::Float16 | DataType::Float32 | DataType::Float64 => {
                IntValues::F64(cast(&DataType::Float64)?)
            }
            t => return Err(TableError::wrong_type(name, t, "integers")),
        };
        Ok(IntColumn {
            base: self.column_base(name),
            values,
        })
    }

    /// A float column (integers are widened). NaN reads as null: pandas writes missing floats
    /// as NaN.
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column or one that is not numbers.
    pub fn floats(&self, name: &str) -> Result<FloatColumn, TableError> {
        let array = self.array(name)?;
        let t = array.data_type();
        let readable = (t.is_integer() || t.is_floating()) || *t == DataType::Null;
        if !readable {
            return Err(TableError::wrong_type(name, t, "numbers"));
        }
        let array = arrow_cast::cast(&array, &DataType::Float64)
            .map_err(|e| TableError::wrong_type(name, t, &e.to_string()))?;
        Ok(FloatColumn {
            base: self.column_base(name),
            array,
        })
    }

    /// A boolean column.
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column or one that is not booleans.
    pub fn bools(&self, name: &str) -> Result<BoolColumn, TableError> {
        let array = self.array(name)?;
        match array.data_type() {
            DataType::Boolean => Ok(BoolColumn {
                base: self.column_base(name),
                array,
            }),
            DataType::Null => Ok(BoolColumn {
                base: self.column_base(name),
                array: arrow_cast::cast(&array, &DataType::Boolean)
                    .map_err(|e| TableError::wrong_type(name, &DataType::Null, &e.to_string()))?,
            }),
            t => Err(TableError::wrong_type(name, t, "booleans")),
        }
    }

    /// A money or other exact-decimal column: decimal text (`"399.00"`), decimal128, or
    /// integers. Floats are refused: they cannot hold money exactly.
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column, floats, or another type that cannot hold money.
    pub fn decimals(&self, name: &str) -> Result<DecimalColumn, TableError> {
        let array = self.array(name)?;
        let values = match array.data_type() {
            DataType::Decimal128(_, scale) => DecimalValues::D128(array.clone(), *scale),
            t if t.is_integer() => DecimalValues::Int(self.ints(name)?),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                DecimalValues::Text(self.strings(name)?)
            }
            t if t.is_floating() => {
                return Err(TableError::wrong_type(
                    name,
                    t,
                    "decimal text or decimal128 (floats cannot hold money exactly: \
                     convert with .astype(str) or to decimal)",
                ))
            }
            t => {
                return Err(TableError::wrong_type(
                    name,
                    t,
                    "decimal text or decimal128",
                ))
            }
        };
        Ok(DecimalColumn {
            base: self.column_base(name),
            values,
        })
    }

    /// A point-in-time column, read as UTC. Timestamps with a zone are exact; naive timestamps
    /// (and naive text) are read in `naive_zone`, and refused when it is `None`; text is
    /// RFC 3339 with a zone (`2026-01-05T10:00:00+08:00`).
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column, naive timestamps without `naive_zone`, or a type that
    /// is not a point in time.
    pub fn timestamps(
        &self,
        name: &str,
        naive_zone: Option<FixedOffset>,
    ) -> Result<TimestampColumn, TableError> {
        let array = self.array(name)?;
        let values = match array.data_type() {
            DataType::Timestamp(unit, tz) => {
                let zone = match (tz, naive_zone) {
                    (Some(_), _) => None,
                    (None, Some(z)) => Some(z),
                    (None, None) => {
                        return Err(TableError {
                            column: Some(name.to_owned()),
                            row: None,
                            message: format!(
                                "column `{name}` holds timestamps without a time zone; give them \
                                 one (pandas: .dt.tz_localize(\"Asia/Shanghai\"), polars: \
                                 .dt.replace_time_zone(...)) or pass naive_time_zone=\"+08:00\""
                            ),
                        })
                    }
                };
                let ints = arrow_cast::cast(&array, &DataType::Int64)
                    .map_err(|e| TableError::wrong_type(name, array.data_type(), &e.to_string()))?;
                TimeValues::Epoch {
                    ints,
                    unit: *unit,
                    zone,
                }
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => {
                TimeValues::Text(self.strings(name)?, naive_zone)
            }
            t => {
                return Err(TableError::wrong_type(
                    name,
                    t,
                    "timestamps with a time zone, or RFC 3339 text",
                ))
            }
        };
        Ok(TimestampColumn {
            base: self.column_base(name),
            values,
        })
    }

    /// Any column, each value converted to JSON the way the engine's wire shape expects:
    /// decimals as text, timestamps as RFC 3339, lists as arrays, structs as objects (null
    /// fields left out), NaN as null.
    ///
    /// # Errors
    ///
    /// [`TableError`] for a missing column or a type with no JSON form (binary, intervals, ...).
    pub fn json_values(&self, name: &str) -> Result<JsonColumn, TableError> {
        let array = self.array(name)?;
        check_json_type(name, array.data_type())?;
        Ok(JsonColumn {
            base: self.column_base(name),
            array,
        })
    }
}

#[derive(Debug, Clone)]
struct ColumnBase {
    name: String,
    first_row: usize,
}

impl ColumnBase {
    fn null(&self, i: usize) -> TableError {
        TableError::null(&self.name, self.first_row + i)
    }

    fn bad(&self, i: usize, reason: impl fmt::Display) -> TableError {
        TableError::bad_value(&self.name, self.first_row + i, reason)
    }
}

macro_rules! required {
    ($t:ty) => {
        /// The value at chunk row `i`; a null is a [`TableError`] naming the column and row.
        ///
        /// # Errors
        ///
        /// [`TableError`] naming the column and row for a null, or as `get`.
        pub fn required(&self, i: usize) -> Result<$t, TableError> {
            self.get(i)?.ok_or_else(|| self.base.null(i))
        }

        /// The column's name.
        pub fn name(&self) -> &str {
            &self.base.name
        }
    };
}

/// A text column; see [`Chunk::strings`].
#[derive(Debug, Clone)]
pub struct StringColumn {
    base: ColumnBase,
    array: ArrayRef,
}

impl StringColumn {
    /// The value at chunk row `i`, `None` for a null.
    ///
    /// # Errors
    ///
    /// [`TableError`] naming the row when the column is not text (not for a column made by
    /// [`Chunk::strings`] or [`Chunk::string_like`], which checked its type).
    pub fn get(&self, i: usize) -> Result<Option<&str>, TableError> {
        let a = &self.array;
        if a.is_null(i) {
            return Ok(None);
        }
        Ok(Some(match a.data_type() {
            DataType::Utf8 => a.as_string::<i32>().value(i),
            DataType::LargeUtf8 => a.as_string::<i64>().value(i),
            DataType::Utf8View => a.as_string_view().value(i),
            t => return Err(self.base.bad(i, format!("unexpected type {t}"))),
        }))
    }

    required!(&str);

    /// The chunk's text read in place, for the core's [`userops::identity::TextColumn`]:
    /// nulls read as `""` when `optional`, and are a [`TableError`] naming the first null row
    /// otherwise.
    ///
    /// # Errors
    ///
    /// [`TableError`] naming the first null row, unless `optional`.
    pub fn text(&self, optional: bool) -> Result<ChunkText<'_>, TableError> {
        let a = &self.array;
        if !optional && a.null_count() > 0 {
            let first = (0..a.len()).find(|&i| a.is_null(i)).unwrap_or(0);
            return Err(self.base.null(first));
        }
        let values = match a.data_type() {
            DataType::Utf8 => TextValues::Utf8(a.as_string::<i32>()),
            DataType::LargeUtf8 => TextValues::Large(a.as_string::<i64>()),
            DataType::Utf8View => TextValues::View(a.as_string_view()),
            t => return Err(self.base.bad(0, format!("unexpected type {t}"))),
        };
        Ok(ChunkText {
            nulls: a.null_count() > 0,
            array: a.as_ref(),
            values,
        })
    }
}

/// The strings of one chunk of a text column; see [`StringColumn::text`].
#[derive(Debug, Clone, Copy)]
pub struct ChunkText<'a> {
    /// Whether any row is null (read as `""`).
    nulls: bool,
    array: &'a dyn Array,
    values: TextValues<'a>,
}

#[derive(Debug, Clone, Copy)]
enum TextValues<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
}

impl<'a> ChunkText<'a> {
    /// The text of chunk row `i` (`""` for a null).
    pub fn get(&self, i: usize) -> &'a str {
        if self.nulls && self.array.is_null(i) {
            return "";
        }
        match self.values {
            TextValues::Utf8(a) => a.value(i),
            TextValues::Large(a) => a.value(i),
            TextValues::View(a) => a.value(i),
        }
    }
}

#[derive(Debug, Clone)]
enum IntValues {
    I64(ArrayRef),
    U64(ArrayRef),
    F64(ArrayRef),
}

/// An integer column; see [`Chunk::ints`].
#[derive(Debug, Clone)]
pub struct IntColumn {
    base: ColumnBase,
    values: IntValues,
}

impl IntColumn {
    /// The value at chunk row `i`, `None` for a null (or NaN in a float column).
    ///
    /// # Errors
    ///
    /// [`TableError`] naming the row for a value that is not a whole number in the `i64` range.
    pub fn get(&self, i: usize) -> Result<Option<i64>, TableError> {
        match &self.values {
            IntValues::I64(a) => {
                Ok((!a.is_null(i)).then(|| a.as_primitive::<Int64Type>().value(i)))
            }
            IntValues::U64(a) => {
                if a.is_null(i) {
                    return Ok(None);
                }
                let v = a.as_primitive::<UInt64Type>().value(i);
                i64::try_from(v).map(Some).map_err(|_| {
                    self.base
                        .bad(i, format!("{v} does not fit in a signed 64-bit integer"))
                })
            }
            IntValues::F64(a) => {
                if a.is_null(i) {
                    return Ok(None);
                }
                let v = a.as_primitive::<Float64Type>().value(i);
                if v.is_nan() {
                    Ok(None)
                } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
                    // Exact: every whole float below 2^53 is an integer without rounding.
                    Ok(Some(v as i64))
                } else {
                    Err(self.base.bad(i, format!("{v} is not a whole number")))
                }
            }
        }
    }

    required!(i64);
}

/// A float column; see [`Chunk::floats`].
#[derive(Debug, Clone)]
pub struct FloatColumn {
    base: ColumnBase,
    array: ArrayRef,
}

impl FloatColumn {
    /// The value at chunk row `i`, `None` for a null or NaN.
    ///
    /// # Errors
    ///
    /// None: the type was checked when the column was made; the `Result` keeps every column's
    /// `get` alike.
    pub fn get(&self, i: usize) -> Result<Option<f64>, TableError> {
        if self.array.is_null(i) {
            return Ok(None);
        }
        let v = self.array.as_primitive::<Float64Type>().value(i);
        Ok((!v.is_nan()).then_some(v))
    }

    required!(f64);
}

/// A boolean column; see [`Chunk::bools`].
#[derive(Debug, Clone)]
pub struct BoolColumn {
    base: ColumnBase,
    array: ArrayRef,
}

impl BoolColumn {
    /// The value at chunk row `i`, `None` for a null.
    ///
    /// # Errors
    ///
    /// None: the type was checked when the column was made; the `Result` keeps every column's
    /// `get` alike.
    pub fn get(&self, i: usize) -> Result<Option<bool>, TableError> {
        Ok((!self.array.is_null(i)).then(|| self.array.as_boolean().value(i)))
    }

    required!(bool);
}

#[derive(Debug, Clone)]
enum DecimalValues {
    Text(StringColumn),
    D128(ArrayRef, i8),
    Int(IntColumn),
}

/// An exact-decimal column; see [`Chunk::decimals`].
#[derive(Debug, Clone)]
pub struct DecimalColumn {
    base: ColumnBase,
    values: DecimalValues,
}

impl DecimalColumn {
    /// The value at chunk row `i`, `None` for a null; unreadable text is a [`TableError`].
    ///
    /// # Errors
    ///
    /// [`TableError`] naming the row for unreadable text or a decimal beyond 28 digits.
    pub fn get(&self, i: usize) -> Result<Option<Decimal>, TableError> {
        match &self.values {
            DecimalValues::Text(s) => match s.get(i)? {
                None => Ok(None),
                Some(text) => text.trim().parse::<Decimal>().map(Some).map_err(|e| {
                    self.base
                        .bad(i, format!("{text:?} is not a decimal number: {e}"))
                }),
            },
            DecimalValues::Int(c) => Ok(c.get(i)?.map(Decimal::from)),
            DecimalValues::D128(a, scale) => {
                if a.is_null(i) {
                    return Ok(None);
                }
                let v = a.as_primitive::<Decimal128Type>().value(i);
                decimal_from_i128(v, *scale)
                    .map(Some)
                    .ok_or_else(|| self.base.bad(i, "decimal out of range (at most 28 digits)"))
            }
        }
    }

    required!(Decimal);
}

fn decimal_from_i128(mantissa: i128, scale: i8) -> Option<Decimal> {
    if scale >= 0 {
        Decimal::try_from_i128_with_scale(mantissa, u32::try_from(scale).ok()?).ok()
    } else {
        let factor = 10i128.checked_pow(u32::from(scale.unsigned_abs()))?;
        Decimal::try_from_i128_with_scale(mantissa.checked_mul(factor)?, 0).ok()
    }
}

#[derive(Debug, Clone)]
enum TimeValues {
    /// Epoch values in `unit`; `zone` is the zone of naive values (None: already UTC).
    Epoch {
        ints: ArrayRef,
        unit: TimeUnit,
        zone: Option<FixedOffset>,
    },
    Text(StringColumn, Option<FixedOffset>),
}

/// A point-in-time column; see [`Chunk::timestamps`].
#[derive(Debug, Clone)]
pub struct TimestampColumn {
    base: ColumnBase,
    values: TimeValues,
}

impl TimestampColumn {
    /// The value at chunk row `i` in UTC, `None` for a null.
    ///
    /// # Errors
    ///
    /// [`TableError`] naming the row for unreadable text or a time out of range.
    pub fn get(&self, i: usize) -> Result<Option<DateTime<Utc>>, TableError> {
        match &self.values {
            TimeValues::Epoch { ints, unit, zone } => {
                if ints.is_null(i) {
                    return Ok(None);
                }
                let v = ints.as_primitive::<Int64Type>().value(i);
                let naive = epoch_to_naive(v, *unit)
                    .ok_or_else(|| self.base.bad(i, "timestamp out of range"))?;
                match zone {
                    None => Ok(Some(naive.and_utc())),
                    Some(z) => local_to_utc(z, &naive)
                        .map(Some)
                        .ok_or_else(|| self.base.bad(i, "timestamp out of range")),
                }
            }
            TimeValues::Text(s, zone) => {
                let Some(text) = s.get(i)? else {
                    return Ok(None);
                };
                match userops::event::rfc3339::parse(text) {
                    Ok(t) => Ok(Some(t)),
                    Err(reason) => {
                        if let Some(z) = zone {
                            for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                                if let Ok(naive) = NaiveDateTime::parse_from_str(text.trim(), fmt) {
                                    if let Some(t) = local_to_utc(z, &naive) {
                                        return Ok(Some(t));
                                    }
                                }
                            }
                        }
                        Err(self.base.bad(i, reason))
                    }
                }
            }
        }
    }

    required!(DateTime<Utc>);
}

fn epoch_to_naive(v: i64, unit: TimeUnit) -> Option<NaiveDateTime> {
    let t = match unit {
        TimeUnit::Second => DateTime::from_timestamp(v, 0),
        TimeUnit::Millisecond => DateTime::from_timestamp_millis(v),
        TimeUnit::Microsecond => DateTime::from_timestamp_micros(v),
        TimeUnit::Nanosecond => Some(DateTime::from_timestamp_nanos(v)),
    };
    t.map(|t| t.naive_utc())
}

fn local_to_utc(zone: &FixedOffset, naive: &NaiveDateTime) -> Option<DateTime<Utc>> {
    zone.from_local_datetime(naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// Parse a fixed UTC offset: `"UTC"`, `"Z"`, `"+08:00"`, `"-0530"`, `"+8"`.
pub fn parse_offset(text: &str) -> Option<FixedOffset> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match t.as_bytes().first()? {
        b'+' => (1, &t[1..]),
        b'-' => (-1, &t[1..]),
        _ => return None,
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=23).contains(&h) || !(0..=59).contains(&m) {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Any column as JSON values; see [`Chunk::json_values`].
#[derive(Debug, Clone)]
pub struct JsonColumn {
    base: ColumnBase,
    array: ArrayRef,
}

impl JsonColumn {
    /// The value at chunk row `i`, `None` for a null or NaN.
    ///
    /// # Errors
    ///
    /// [`TableError`] naming the row for a value with no JSON form.
    pub fn get(&self, i: usize) -> Result<Option<serde_json::Value>, TableError> {
        match json_value(self.array.as_ref(), i) {
            Ok(serde_json::Value::Null) => Ok(None),
            Ok(v) => Ok(Some(v)),
            Err(reason) => Err(self.base.bad(i, reason)),
        }
    }

    required!(serde_json::Value);
}

fn check_json_type(name: &str, t: &DataType) -> Result<(), TableError> {
    use DataType::*;
    match t {
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
        | Float16 | Float32 | Float64 | Utf8 | LargeUtf8 | Utf8View | Decimal128(..)
        | Timestamp(..) | Date32 | Date64 => Ok(()),
        Dictionary(_, v) => check_json_type(name, v),
        List(f) | LargeList(f) | ListView(f) | LargeListView(f) | FixedSizeList(f, _) => {
            check_json_type(name, f.data_type())
        }
        Struct(fields) => fields
            .iter()
            .try_for_each(|f| check_json_type(name, f.data_type())),
        other => Err(TableError::wrong_type(
            name,
            other,
            "text, numbers, booleans, decimals, timestamps, lists or structs",
        )),
    }
}

fn json_value(a: &dyn Array, i: usize) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    if a.is_null(i) {
        return Ok(Value::Null);
    }
    macro_rules! prim {
        ($t:ty) => {
            Value::from(a.as_primitive::<$t>().value(i))
        };
    }
    use arrow_array::types::*;
    Ok(match a.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::Float16 => float_json(f64::from(a.as_primitive::<Float16Type>().value(i))),
        DataType::Float32 => float_json(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => float_json(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::from(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Value::from(a.as_string::<i64>().value(i)),
        DataType::Utf8View => Value::from(a.as_string_view().value(i)),
        DataType::Decimal128(_, scale) => {
            let v = a.as_primitive::<Decimal128Type>().value(i);
            let d =
                decimal_from_i128(v, *scale).ok_or("decimal out of range (at most 28 digits)")?;
            Value::from(d.to_string())
        }
        DataType::Timestamp(unit, tz) => {
            let single =
                arrow_cast::cast(&a.slice(i, 1), &DataType::Int64).map_err(|e| e.to_string())?;
            let v = single.as_primitive::<Int64Type>().value(0);
            let naive = epoch_to_naive(v, *unit).ok_or("timestamp out of range")?;
            match tz {
                Some(_) => Value::from(
                    naive
                        .and_utc()
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                ),
                None => return Err("a timestamp without a time zone; give it a zone".to_owned()),
            }
        }
        DataType::Date32 => {
            let d = a.as_primitive::<Date32Type>().value(i);
            let date = NaiveDate::from_num_days_from_ce_opt(
                d.checked_add(719_163).ok_or("date out of range")?,
            )
            .ok_or("date out of range")?;
            Value::from(date.to_string())
        }
        DataType::Date64 => {
            let ms = a.as_primitive::<Date64Type>().value(i);
            let t = DateTime::from_timestamp_millis(ms).ok_or("date out of range")?;
            Value::from(t.date_naive().to_string())
        }
        DataType::Dictionary(_, value) => {
            let single = arrow_cast::cast(&a.slice(i, 1), value).map_err(|e| e.to_string())?;
            return json_value(single.as_ref(), 0);
        }
        DataType::List(_) => list_json(a.as_list::<i32>().value(i).as_ref())?,
        DataType::LargeList(_) => list_json(a.as_list::<i64>().value(i).as_ref())?,
        DataType::FixedSizeList(..) => list_json(a.as_fixed_size_list().value(i).as_ref())?,
        DataType::ListView(_) | DataType::LargeListView(_) => {
            let list = arrow_cast::cast(
                &a.slice(i, 1),
                &DataType::LargeList(match a.data_type() {
                    DataType::ListView(f) | DataType::LargeListView(f) => f.clone(),
                    _ => unreachable!("matched above"),
                }),
            )
            .map_err(|e| e.to_string())?;
            list_json(list.as_list::<i64>().value(0).as_ref())?
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            let mut map = serde_json::Map::new();
            for (f, col) in fields.iter().zip(s.columns()) {
                let v = json_value(col.as_ref(), i)?;
                if !v.is_null() {
                    map.insert(f.name().clone(), v);
                }
            }
            Value::Object(map)
        }
        other => return Err(format!("values of type {other} cannot be read")),
    })
}

fn float_json(v: f64) -> serde_json::Value {
    // NaN is pandas' missing value. Infinities are not numbers JSON can carry: they go as text
    // ("inf", "-inf"), which the core refuses by name where a number is expected, instead of
    // vanishing as missing values.
    match serde_json::Number::from_f64(v) {
        Some(n) => serde_json::Value::Number(n),
        None if v.is_nan() => serde_json::Value::Null,
        None => serde_json::Value::from(if v > 0.0 { "inf" } else { "-inf" }),
    }
}

fn list_json(values: &dyn Array) -> Result<serde_json::Value, String> {
    (0..values.len())
        .map(|j| json_value(values, j))
        .collect::<Result<Vec<_>, _>>()
        .map(serde_json::Value::Array)
}

/// Hand one record batch back to Python as an Arrow table (an object with
/// `__arrow_c_stream__`; the Python side turns it into the caller's kind with
/// `userops._tables.from_arrow`).
///
/// # Errors
///
/// A Python `ValueError` when the batch cannot make a table (never for a well-formed batch).
pub fn table_out(batch: RecordBatch) -> PyResult<PyTable> {
    let schema = batch.schema();
    PyTable::try_new(vec![batch], schema)
}

/// Build a record batch from named columns (all the same length).
///
/// # Errors
///
/// A Python `ValueError` when the columns differ in length.
pub fn batch_of(columns: Vec<(&str, ArrayRef)>) -> PyResult<RecordBatch> {
    let fields: Vec<arrow_schema::Field> = columns
        .iter()
        .map(|(n, a)| arrow_schema::Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(arrow_schema::Schema::new(fields));
    RecordBatch::try_new(schema, columns.into_iter().map(|(_, a)| a).collect())
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// Register the module's Python-visible functions (none yet: tables are used by other natives).
///
/// # Errors
///
/// None in practice: a Python exception only if the module cannot be changed.
pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{
        Decimal128Array, Float64Array, Int32Array, StringArray, TimestampMillisecondArray,
        UInt64Array,
    };

    fn chunk(cols: Vec<(&str, ArrayRef)>, first_row: usize) -> Chunk {
        Chunk {
            batch: batch_of(cols).unwrap(),
            first_row,
        }
    }

    #[test]
    fn strings_and_nulls_name_column_and_row() {
        let c = chunk(
            vec![(
                "k",
                Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef,
            )],
            10,
        );
        let col = c.strings("k").unwrap();
        assert_eq!(col.required(0).unwrap(), "a");
        let e = col.required(1).unwrap_err();
        assert_eq!((e.column.as_deref(), e.row), (Some("k"), Some(11)));
        assert_eq!(c.strings("nope").unwrap_err(), TableError::missing("nope"));
        assert!(c.ints("k").is_err());
    }

    #[test]
    fn ints_from_unsigned_and_whole_floats() {
        let c = chunk(
            vec![
                (
                    "u",
                    Arc::new(UInt64Array::from(vec![1, u64::MAX])) as ArrayRef,
                ),
                (
                    "f",
                    Arc::new(Float64Array::from(vec![2.0, 2.5])) as ArrayRef,
                ),
                (
                    "i",
                    Arc::new(Int32Array::from(vec![Some(3), None])) as ArrayRef,
                ),
            ],
            0,
        );
        let u = c.ints("u").unwrap();
        assert_eq!(u.get(0).unwrap(), Some(1));
        assert_eq!(u.get(1).unwrap_err().row, Some(1));
        let f = c.ints("f").unwrap();
        assert_eq!(f.get(0).unwrap(), Some(2));
        assert!(f.get(1).is_err());
        assert_eq!(c.ints("i").unwrap().get(1).unwrap(), None);
        assert_eq!(c.string_like("i").unwrap().get(0).unwrap(), Some("3"));
    }

    #[test]
    fn decimals_exact_and_floats_refused() {
        let d128 = Decimal128Array::from(vec![39900i128, -5])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let c = chunk(
            vec![
                ("d", Arc::new(d128) as ArrayRef),
                (
                    "s",
                    Arc::new(StringArray::from(vec!["399.00", "x"])) as ArrayRef,
                ),
                (
                    "f",
                    Arc::new(Float64Array::from(vec![1.0, 2.0])) as ArrayRef,
                ),
            ],
            0,
        );
        assert_eq!(
            c.decimals("d")
                .unwrap()
                .get(0)
                .unwrap()
                .unwrap()
                .to_string(),
            "399.00"
        );
        assert_eq!(
            c.decimals("d")
                .unwrap()
                .get(1)
                .unwrap()
                .unwrap()
                .to_string(),
            "-0.05"
        );
        let s = c.decimals("s").unwrap();
        assert_eq!(s.required(0).unwrap().to_string(), "399.00");
        assert_eq!(s.get(1).unwrap_err().row, Some(1));
        assert!(c.decimals("f").unwrap_err().message.contains("money"));
    }

    #[test]
    fn timestamps_with_zones() {
        let utc = TimestampMillisecondArray::from(vec![0i64]).with_timezone("Asia/Shanghai");
        let naive = TimestampMillisecondArray::from(vec![0i64]);
        let c = chunk(
            vec![
                ("z", Arc::new(utc) as ArrayRef),
                ("n", Arc::new(naive) as ArrayRef),
                (
                    "s",
                    Arc::new(StringArray::from(vec!["2026-01-05T10:00:00+08:00"])) as ArrayRef,
                ),
            ],
            0,
        );
        assert_eq!(
            c.timestamps("z", None)
                .unwrap()
                .required(0)
                .unwrap()
                .timestamp(),
            0
        );
        assert!(c.timestamps("n", None).is_err());
        let eight = parse_offset("+08:00").unwrap();
        let t = c.timestamps("n", Some(eight)).unwrap().required(0).unwrap();
        assert_eq!(t.timestamp(), -8 * 3600);
        let s = c.timestamps("s", None).unwrap().required(0).unwrap();
        assert_eq!(s.to_rfc3339(), "2026-01-05T02:00:00+00:00");
        assert_eq!(
            parse_offset("-0530").unwrap().local_minus_utc(),
            -(5 * 3600 + 30 * 60)
        );
        assert!(parse_offset("Asia/Shanghai").is_none());
    }

    #[test]
    fn chunks_are_slices_with_global_rows() {
        let a = Arc::new(Int32Array::from((0..25).collect::<Vec<_>>())) as ArrayRef;
        let b = batch_of(vec![("x", a)]).unwrap();
        let t = Table {
            schema: b.schema(),
            batches: vec![b.clone(), b],
        };
        let chunks = t.chunks(10);
        let firsts: Vec<usize> = chunks.iter().map(Chunk::first_row).collect();
        assert_eq!(firsts, vec![0, 10, 20, 25, 35, 45]);
        assert_eq!(chunks.iter().map(Chunk::len).sum::<usize>(), 50);
        assert_eq!(chunks[4].ints("x").unwrap().get(0).unwrap(), Some(10));
    }
}
