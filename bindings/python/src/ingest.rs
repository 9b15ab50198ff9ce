//! `NativeEngine.ingest_table`: events from an Arrow table, one row per event, in chunks.
//!
//! Each row becomes the same JSON object `ingest` takes (SPEC §2) and goes through
//! [`userops::Event::from_map`] and [`userops::Engine::ingest_batch`], so a row is accepted or
//! refused exactly as the same event sent alone would be. The Python wrapper
//! (`userops/_ingest.py`) documents the column conventions.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Int64Builder, ListBuilder, StringBuilder, UInt64Builder,
};
use arrow_array::ArrayRef;
use arrow_schema::DataType;
use chrono::FixedOffset;
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use serde::Deserialize;
use serde_json::{Map, Value};
use userops::{BatchResult, Error, Event, OnError, Receipt};

use crate::tables::{
    batch_of, engine_error, parse_offset, table_out, Chunk, IntColumn, JsonColumn, StringColumn,
    Table, TableError, TimestampColumn,
};
use crate::NativeEngine;

/// Identifier kinds read from columns of the same name when `id_columns` is not given.
const DEFAULT_ID_KINDS: [&str; 6] = [
    "phone",
    "email",
    "device_id",
    "openid",
    "unionid",
    "member_no",
];

/// Envelope fields: read by name, never passed through as body fields.
const ENVELOPE: [&str; 8] = [
    "kind",
    "key",
    "time",
    "platform",
    "program",
    "user_kind",
    "user_value",
    "oneid",
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Errors {
    #[default]
    Raise,
    Skip,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Field name → column name, for columns not named after their field.
    #[serde(default)]
    columns: BTreeMap<String, String>,
    /// Field name → value used where the column is absent or null.
    #[serde(default)]
    values: BTreeMap<String, Value>,
    /// Identifier kind → column, read into `ids` (identify) or as the user (other kinds).
    #[serde(default)]
    id_columns: Option<BTreeMap<String, String>>,
    /// Columns to leave out.
    #[serde(default)]
    exclude: BTreeSet<String>,
    #[serde(default)]
    errors: Errors,
    #[serde(default = "default_chunk_size")]
    chunk_size: usize,
    #[serde(default)]
    naive_time_zone: Option<String>,
}

/// Event fields that are money (decimal strings on the wire), and the money fields of the
/// line structs in an event's `lines` (order lines: `price`; refund lines: `amount`).
const MONEY_FIELDS: [&str; 1] = ["amount"];
const LINE_MONEY_FIELDS: [&str; 2] = ["price", "amount"];

/// What money a column read as `field` would carry as floats: `"amounts"` or
/// `"lines[].price"`, or `None` when it holds no money as floats.
fn money_as_floats(field: &str, t: &DataType) -> Option<String> {
    match t {
        t if t.is_floating() && MONEY_FIELDS.contains(&field) => Some(format!("{field}s")),
        DataType::List(item) | DataType::LargeList(item) if field == "lines" => {
            match item.data_type() {
                DataType::Struct(parts) => parts
                    .iter()
                    .find(|p| {
                        LINE_MONEY_FIELDS.contains(&p.name().as_str())
                            && p.data_type().is_floating()
                    })
                    .map(|p| format!("lines[].{}", p.name())),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Rows whose converted events the check pass keeps for the ingest pass (about 50 MB).
const KEEP_CHECKED_ROWS: usize = 100_000;

fn default_chunk_size() -> usize {
    10_000
}

/// How one row failed before reaching the engine, or why the engine refused it.
#[derive(Debug)]
enum RowError {
    Table(TableError),
    Engine {
        row: usize,
        column: Option<String>,
        error: Error,
    },
}

impl RowError {
    fn to_py(&self, py: Python<'_>) -> PyErr {
        match self {
            RowError::Table(e) => e.to_py(py),
            RowError::Engine { row, column, error } => {
                engine_error(py, error, Some(*row), column.as_deref())
            }
        }
    }
}

impl From<TableError> for RowError {
    fn from(e: TableError) -> Self {
        RowError::Table(e)
    }
}

/// Where a string field comes from: a column (with the constant filling its nulls) or a constant.
struct Text {
    column: Option<StringColumn>,
    constant: Option<String>,
}

impl Text {
    fn get(&self, i: usize) -> Result<Option<String>, TableError> {
        if let Some(c) = &self.column {
            if let Some(v) = c.get(i)? {
                return Ok(Some(v.to_owned()));
            }
        }
        Ok(self.constant.clone())
    }

    fn required(&self, i: usize, name: &str, first_row: usize) -> Result<String, TableError> {
        self.get(i)?.ok_or_else(|| match &self.column {
            Some(c) => TableError::null(c.name(), first_row + i),
            None => TableError::missing(name),
        })
    }

    fn column_name(&self) -> Option<String> {
        self.column.as_ref().map(|c| c.name().to_owned())
    }
}

/// The reading plan: which column feeds which field. Built once per table.
struct Plan {
    options: Options,
    naive_zone: Option<FixedOffset>,
    /// (field, column) of body fields.
    body: Vec<(String, String)>,
    /// (kind, column) of identifier columns.
    ids: Vec<(String, String)>,
    /// Body fields that would carry money as floats: field → (column, why a row with a value
    /// there is refused).
    float_money: BTreeMap<String, (String, String)>,
}

impl Plan {
    fn new(table: &Table, options: Options) -> Result<Plan, TableError> {
        if options.chunk_size == 0 {
            return Err(TableError::table("chunk_size must be at least 1"));
        }
        let naive_zone = match &options.naive_time_zone {
            None => None,
            Some(z) => Some(parse_offset(z).ok_or_else(|| {
                TableError::table(format!(
                    "naive_time_zone {z:?} is not a UTC offset such as \"+08:00\" or \"UTC\""
                ))
            })?),
        };
        for (field, column) in &options.columns {
            if !table.has_column(column) {
                return Err(TableError {
                    column: Some(column.clone()),
                    row: None,
                    message: format!("column `{column}` (given for field `{field}`) is missing"),
                });
            }
        }
        let col = |field: &str| {
            options
                .columns
                .get(field)
                .cloned()
                .unwrap_or_else(|| field.to_owned())
        };
        for field in ["kind", "key", "time"] {
            let constant = field == "kind" && options.values.contains_key(field);
            if !constant && !table.has_column(&col(field)) {
                return Err(TableError::missing(&col(field)));
            }
        }
        let envelope: BTreeSet<String> = ENVELOPE.iter().map(|f| col(f)).collect();
        let ids: Vec<(String, String)> = match &options.id_columns {
            Some(m) => {
                for c in m.values() {
                    if !table.has_column(c) {
                        return Err(TableError::missing(c));
                    }
                }
                m.iter().map(|(k, c)| (k.clone(), c.clone())).collect()
            }
            None => DEFAULT_ID_KINDS
                .iter()
                .filter(|k| {
                    table.has_column(k)
                        && !envelope.contains(**k)
                        && !options.columns.values().any(|c| c == *k)
                })
                .map(|k| (k.to_string(), k.to_string()))
                .collect(),
        };
        let field_of: BTreeMap<&String, &String> =
            options.columns.iter().map(|(f, c)| (c, f)).collect();
        let body = table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name())
            .filter(|c| {
                !envelope.contains(*c)
                    && !ids.iter().any(|(_, ic)| ic == *c)
                    && !options.exclude.contains(*c)
            })
            .map(|c| {
                let field = field_of
                    .get(c)
                    .map(|f| (*f).clone())
                    .unwrap_or_else(|| c.clone());
                (field, c.clone())
            })
            .collect();
        let body: Vec<(String, String)> = body;
        let mut float_money = BTreeMap::new();
        for (field, column) in &body {
            if let Some(f) = table.schema().fields().iter().find(|f| f.name() == column) {
                if let Some(what) = money_as_floats(field, f.data_type()) {
                    let why = format!(
                        "column `{column}` holds {what} as floats ({}): money is exact and a \
                         float is not (19.99 is stored as 19.989999…), so it is never read as \
                         one; give decimal text (\"19.99\", e.g. \
                         df[\"{column}\"].map(\"{{:.2f}}\".format)) or a decimal column \
                         (pyarrow.decimal128(18, 2), Python Decimal values)",
                        f.data_type()
                    );
                    float_money.insert(field.clone(), (column.clone(), why));
                }
            }
        }
        if let Some((field, column)) = body
            .iter()
            .find(|(f, _)| ENVELOPE.contains(&f.as_str()) || f == "source")
        {
            return Err(TableError {
                column: Some(column.clone()),
                row: None,
                message: format!(
                    "column `{column}` would be read as field `{field}`, which is read from \
                     column `{}`; rename or exclude one of them",
                    col(field)
                ),
            });
        }
        Ok(Plan {
            options,
            naive_zone,
            body,
            ids,
            float_money,
        })
    }

    fn column(&self, field: &str) -> String {
        self.options
            .columns
            .get(field)
            .cloned()
            .unwrap_or_else(|| field.to_owned())
    }

    fn constant(&self, field: &str) -> Result<Option<String>, TableError> {
        match self.options.values.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(TableError::table(format!(
                "values[{field:?}] must be text, got {other}"
            ))),
        }
    }

    fn text(&self, chunk: &Chunk, field: &str) -> Result<Text, TableError> {
        let name = self.column(field);
        let column = if chunk.batch().column_by_name(&name).is_some() {
            Some(chunk.string_like(&name)?)
        } else {
            None
        };
        Ok(Text {
            column,
            constant: self.constant(field)?,
        })
    }

    fn optional<T>(
        &self,
        chunk: &Chunk,
        field: &str,
        read: impl Fn(&Chunk, &str) -> Result<T, TableError>,
    ) -> Result<Option<T>, TableError> {
        let name = self.column(field);
        if chunk.batch().column_by_name(&name).is_some() {
            read(chunk, &name).map(Some)
        } else {
            Ok(None)
        }
    }

    fn columns(&self, chunk: &Chunk) -> Result<ChunkColumns, TableError> {
        Ok(ChunkColumns {
            kind: self.text(chunk, "kind")?,
            key: chunk.string_like(&self.column("key"))?,
            time: chunk.timestamps(&self.column("time"), self.naive_zone)?,
            platform: self.text(chunk, "platform")?,
            program: self.text(chunk, "program")?,
            user_kind: self.text(chunk, "user_kind")?,
            user_value: self.text(chunk, "user_value")?,
            oneid: self.optional(chunk, "oneid", |c, n| c.ints(n))?,
            ids: self
                .ids
                .iter()
                .map(|(k, c)| Ok((k.clone(), chunk.string_like(c)?)))
                .collect::<Result<_, TableError>>()?,
            body: self
                .body
                .iter()
                .map(|(f, c)| Ok((f.clone(), chunk.json_values(c)?)))
                .collect::<Result<_, TableError>>()?,
        })
    }

    /// The row's event (and where its user and identifiers came from), or why it cannot be
    /// one. `i` is the row within the chunk.
    fn event(
        &self,
        cols: &ChunkColumns,
        chunk: &Chunk,
        i: usize,
    ) -> Result<(Event, Sources), RowError> {
        let row = chunk.first_row() + i;
        let kind = cols
            .kind
            .required(i, &self.column("kind"), chunk.first_row())?;
        let key = cols.key.required(i)?;
        let time = cols.time.required(i)?;
        let platform = cols
            .platform
            .required(i, &self.column("platform"), chunk.first_row())?;
        let program = cols
            .program
            .required(i, &self.column("program"), chunk.first_row())?;
        let mut map = Map::new();
        map.insert("kind".into(), Value::from(kind.clone()));
        map.insert("key".into(), Value::from(key));
        map.insert(
            "time".into(),
            Value::from(time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        );
        map.insert(
            "source".into(),
            serde_json::json!({"platform": platform, "program": program}),
        );
        // Body fields first, so that a constant never overrides a column's value.
        for (field, col) in &cols.body {
            if let Some(v) = col.get(i)? {
                if let Some((column, why)) = self.float_money.get(field) {
                    // The engine would refuse the float too, but not say which column or what
                    // to do about it.
                    return Err(RowError::Engine {
                        row,
                        column: Some(column.clone()),
                        error: Error::invalid_event(field.clone(), why.clone()),
                    });
                }
                map.insert(field.clone(), v);
            }
        }
        for (field, v) in &self.options.values {
            if !ENVELOPE.contains(&field.as_str()) && !v.is_null() && !map.contains_key(field) {
                map.insert(field.clone(), v.clone());
            }
        }
        // Where each `ids[n]` entry (identify) or the user came from, to name the column.
        let mut id_sources: Vec<String> = Vec::new();
        let mut user_source: Option<String> = None;
        let explicit_user = match (cols.user_kind.get(i)?, cols.user_value.get(i)?) {
            (Some(k), Some(v)) => Some((k, v)),
            (None, Some(_)) => {
                return Err(TableError::bad_value(
                    &self.column("user_kind"),
                    row,
                    "user_value is set but user_kind is not (give a column or values={\"user_kind\": ...})",
                )
                .into())
            }
            _ => None,
        };
        let mut id_values: Vec<(String, String, String)> = Vec::new();
        for (k, c) in &cols.ids {
            if let Some(v) = c.get(i)? {
                id_values.push((k.clone(), v.to_owned(), c.name().to_owned()));
            }
        }
        if kind == "identify" {
            let mut ids = match map.remove("ids") {
                Some(Value::Array(a)) => a,
                Some(other) => vec![other],
                None => Vec::new(),
            };
            let ids_column = self
                .body
                .iter()
                .find(|(f, _)| f == "ids")
                .map(|(_, c)| c.clone())
                .unwrap_or_else(|| "ids".into());
            id_sources.extend(std::iter::repeat_n(ids_column, ids.len()));
            if let Some((k, v)) = explicit_user {
                ids.push(serde_json::json!({"kind": k, "value": v}));
                id_sources.push(
                    cols.user_value
                        .column_name()
                        .unwrap_or_else(|| self.column("user_value")),
                );
            }
            for (k, v, c) in id_values {
                ids.push(serde_json::json!({"kind": k, "value": v}));
                id_sources.push(c);
            }
            map.insert("ids".into(), Value::Array(ids));
        } else if !map.contains_key("user") {
            let oneid = match &cols.oneid {
                Some(c) => c.get(i)?,
                None => None,
            };
            let user = if let Some(n) = oneid {
                user_source = cols.oneid.as_ref().map(|c| c.name().to_owned());
                Some(serde_json::json!({ "oneid": n }))
            } else if let Some((k, v)) = explicit_user {
                user_source = Some(
                    cols.user_value
                        .column_name()
                        .unwrap_or_else(|| self.column("user_value")),
                );
                Some(serde_json::json!({"kind": k, "value": v}))
            } else if let Some((k, v, c)) = id_values.into_iter().next() {
                user_source = Some(c);
                Some(serde_json::json!({"kind": k, "value": v}))
            } else {
                None
            };
            if let Some(u) = user {
                map.insert("user".into(), u);
            }
        }
        let sources = Sources {
            ids: id_sources,
            user: user_source,
        };
        match Event::from_map(map) {
            Ok(event) => Ok((event, sources)),
            Err(error) => {
                let column = self.column_of(&error, &sources, cols);
                let error = match (&error, &column) {
                    (Error::InvalidEvent { field, reason }, Some(c))
                        if reason.starts_with("unknown field") =>
                    {
                        Error::invalid_event(
                            field.clone(),
                            format!("{reason} (a column this kind of event does not take: leave it out with exclude=[{c:?}])"),
                        )
                    }
                    _ => error,
                };
                Err(RowError::Engine { row, column, error })
            }
        }
    }

    /// The table column behind an event field named in an error.
    fn column_of(&self, error: &Error, sources: &Sources, cols: &ChunkColumns) -> Option<String> {
        let field = error.field()?;
        let head = field.split(['.', '[']).next().unwrap_or("");
        match head {
            "" => None,
            "kind" => Some(
                cols.kind
                    .column_name()
                    .unwrap_or_else(|| self.column("kind")),
            ),
            "key" | "time" => Some(self.column(head)),
            "source" => {
                let f = if field.ends_with("program") {
                    "program"
                } else {
                    "platform"
                };
                Some(self.column(f))
            }
            "user" => Some(
                sources
                    .user
                    .clone()
                    .unwrap_or_else(|| self.column("user_value")),
            ),
            "ids" => {
                let n: Option<usize> = field
                    .strip_prefix("ids[")
                    .and_then(|r| r.split(']').next())
                    .and_then(|n| n.parse().ok());
                n.and_then(|n| sources.ids.get(n).cloned())
                    .or_else(|| Some("ids".into()))
            }
            other => self
                .body
                .iter()
                .find(|(f, _)| f == other)
                .map(|(_, c)| c.clone())
                .or_else(|| Some(other.to_owned())),
        }
    }

    /// Convert one chunk: per row, its event or why not.
    fn convert(&self, chunk: &Chunk) -> Result<Vec<RowResult>, TableError> {
        let cols = self.columns(chunk)?;
        Ok((0..chunk.len())
            .map(|i| self.event(&cols, chunk, i))
            .collect())
    }
}

/// One converted row: its event and where its parts came from, or why it is not an event.
type RowResult = Result<(Event, Sources), RowError>;

/// The columns a row's user and each of its `ids` entries came from, to name them in errors.
#[derive(Debug, Default)]
struct Sources {
    ids: Vec<String>,
    user: Option<String>,
}

struct ChunkColumns {
    kind: Text,
    key: StringColumn,
    time: TimestampColumn,
    platform: Text,
    program: Text,
    user_kind: Text,
    user_value: Text,
    oneid: Option<IntColumn>,
    ids: Vec<(String, StringColumn)>,
    body: Vec<(String, JsonColumn)>,
}

/// One output row of the receipts table.
enum Outcome {
    Accepted(Receipt),
    Rejected {
        code: &'static str,
        column: Option<String>,
        message: String,
    },
}

struct Receipts {
    row: Int64Builder,
    key: StringBuilder,
    kind: StringBuilder,
    seq: UInt64Builder,
    oneid: UInt64Builder,
    absorbed: ListBuilder<UInt64Builder>,
    duplicate: BooleanBuilder,
    error_code: StringBuilder,
    error_column: StringBuilder,
    error: StringBuilder,
}

impl Receipts {
    fn new() -> Self {
        Receipts {
            row: Int64Builder::new(),
            key: StringBuilder::new(),
            kind: StringBuilder::new(),
            seq: UInt64Builder::new(),
            oneid: UInt64Builder::new(),
            absorbed: ListBuilder::new(UInt64Builder::new()),
            duplicate: BooleanBuilder::new(),
            error_code: StringBuilder::new(),
            error_column: StringBuilder::new(),
            error: StringBuilder::new(),
        }
    }

    fn push(&mut self, row: usize, key: Option<&str>, kind: Option<&str>, outcome: Outcome) {
        self.row.append_value(row as i64);
        match outcome {
            Outcome::Accepted(r) => {
                self.key.append_value(&r.key);
                self.kind.append_value(&r.kind);
                self.seq.append_value(r.seq);
                self.oneid.append_option(r.oneid.map(|o| o.0));
                self.absorbed
                    .append_value(r.absorbed.iter().map(|o| Some(o.0)));
                self.duplicate.append_value(r.duplicate);
                self.error_code.append_null();
                self.error_column.append_null();
                self.error.append_null();
            }
            Outcome::Rejected {
                code,
                column,
                message,
            } => {
                self.key.append_option(key);
                self.kind.append_option(kind);
                self.seq.append_null();
                self.oneid.append_null();
                self.absorbed.append_null();
                self.duplicate.append_null();
                self.error_code.append_value(code);
                self.error_column.append_option(column);
                self.error.append_value(message);
            }
        }
    }

    fn finish(mut self) -> PyResult<arrow_array::RecordBatch> {
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("row", Arc::new(self.row.finish())),
            ("key", Arc::new(self.key.finish())),
            ("kind", Arc::new(self.kind.finish())),
            ("seq", Arc::new(self.seq.finish())),
            ("oneid", Arc::new(self.oneid.finish())),
            ("absorbed", Arc::new(self.absorbed.finish())),
            ("duplicate", Arc::new(self.duplicate.finish())),
            ("error_code", Arc::new(self.error_code.finish())),
            ("error_column", Arc::new(self.error_column.finish())),
            ("error", Arc::new(self.error.finish())),
        ];
        batch_of(cols)
    }
}

fn rejected(e: &RowError) -> Outcome {
    match e {
        RowError::Table(t) => Outcome::Rejected {
            code: "invalid_argument",
            column: t.column.clone(),
            message: t.message.clone(),
        },
        RowError::Engine { column, error, .. } => Outcome::Rejected {
            code: error.code().name(),
            column: column.clone(),
            message: error.to_string(),
        },
    }
}

/// Run `f` without the GIL, turning a panic into an internal error.
fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, RowError> + Send,
) -> PyResult<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
            Err(RowError::Engine {
                row: 0,
                column: None,
                error: Error::Internal("panic inside the engine".into()),
            })
        })
    })
    .map_err(|e| e.to_py(py))
}

#[pymethods]
impl NativeEngine {
    /// Ingest events from an Arrow table (see `userops/_ingest.py`); returns the receipts table.
    /// `progress(done_rows, total_rows)` is called after each chunk; Ctrl-C is checked between
    /// chunks.
    #[pyo3(signature = (table, options_json, progress=None))]
    fn ingest_table(
        &self,
        py: Python<'_>,
        table: PyTable,
        options_json: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyTable> {
        let options: Options = serde_json::from_str(options_json).map_err(|e| {
            engine_error(py, &Error::invalid_argument("", e.to_string()), None, None)
        })?;
        let table = Table::from_py(table);
        let plan = Plan::new(&table, options).map_err(|e| e.to_py(py))?;
        let chunks = table.chunks(plan.options.chunk_size);
        let total = table.num_rows();
        let mode = plan.options.errors;
        // Converted chunks kept from the check pass, so that the ingest pass need not convert
        // them again; bounded so that a huge table does not sit in memory twice.
        let mut checked: Vec<Option<Vec<RowResult>>> = chunks.iter().map(|_| None).collect();
        if mode == Errors::Raise {
            // Check every row before the first is ingested: a bad value changes nothing.
            let mut kept_rows = 0;
            for (chunk, slot) in chunks.iter().zip(checked.iter_mut()) {
                let converted = detached(py, || {
                    let mut good: Vec<RowResult> = Vec::with_capacity(chunk.len());
                    for r in plan.convert(chunk)? {
                        good.push(Ok(r?)); // the first bad row stops the check
                    }
                    Ok(good)
                })?;
                if kept_rows + chunk.len() <= KEEP_CHECKED_ROWS {
                    kept_rows += chunk.len();
                    *slot = Some(converted);
                }
                py.check_signals()?;
            }
        }
        let mut receipts = Receipts::new();
        let mut done = 0;
        for (chunk, slot) in chunks.iter().zip(checked.iter_mut()) {
            let kept = slot.take();
            let on_error = match mode {
                Errors::Raise => OnError::Stop,
                Errors::Skip => OnError::Skip,
            };
            let stop = detached(py, || {
                let converted = match kept {
                    Some(c) => c,
                    None => plan.convert(chunk)?,
                };
                let cols = plan.columns(chunk)?;
                let mut rows = Vec::new();
                let mut events = Vec::new();
                let mut sources = Vec::new();
                let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(converted.len());
                for (i, r) in converted.into_iter().enumerate() {
                    match r {
                        Ok((e, src)) => {
                            rows.push(i);
                            events.push(e);
                            sources.push(src);
                            outcomes.push(None);
                        }
                        Err(e) if mode == Errors::Raise => return Err(e),
                        Err(e) => outcomes.push(Some(rejected(&e))),
                    }
                }
                let out = {
                    self.inner
                        .ingest_batch(events, on_error)
                        .map_err(|error| RowError::Engine {
                            row: chunk.first_row(),
                            column: None,
                            error,
                        })?
                };
                for ((i, result), src) in rows.iter().zip(out.results).zip(&sources) {
                    outcomes[*i] = Some(match result {
                        BatchResult::Accepted(r) => Outcome::Accepted(r),
                        BatchResult::Rejected(error) => {
                            let row = chunk.first_row() + i;
                            // A refusal without a field is about the event as a whole: for
                            // a reused key, the key column.
                            let column = match error.field() {
                                Some(_) => plan.column_of(&error, src, &cols),
                                None => Some(plan.column("key")),
                            };
                            if mode == Errors::Raise {
                                return Err(RowError::Engine { row, column, error });
                            }
                            Outcome::Rejected {
                                code: error.code().name(),
                                column,
                                message: error.to_string(),
                            }
                        }
                        // `BatchResult` is `#[non_exhaustive]`.
                        _ => Outcome::Rejected {
                            code: "internal",
                            column: None,
                            message: "unknown batch result".into(),
                        },
                    });
                }
                for (i, outcome) in outcomes.into_iter().enumerate() {
                    let key = cols.key.get(i).ok().flatten();
                    let kind = cols.kind.get(i).ok().flatten();
                    receipts.push(
                        chunk.first_row() + i,
                        key,
                        kind.as_deref(),
                        outcome.unwrap_or(Outcome::Rejected {
                            code: "internal",
                            column: None,
                            message: "row without a result".into(),
                        }),
                    );
                }
                Ok(())
            });
            stop?;
            done += chunk.len();
            if let Some(cb) = &progress {
                cb.call1(py, (done, total))?;
            }
            py.check_signals()?;
        }
        table_out(receipts.finish()?)
    }
}
