//! `userops export events`: the store's event history as Parquet files that DuckDB, polars,
//! pandas and Spark read without userops.
//!
//! **What is exported** is what the journal holds ([`userops_store::history`]): every event
//! accepted since the store was created (the journal is never compacted; snapshots only
//! shorten recovery), minus every record an erasure redacted. An erased person's events are
//! therefore not in the export, nor is anything else those records held. Events of
//! `ingest_batch` records are exported as journaled, with their position in `batch_index`:
//! the journal does not keep the engine's verdict on each, so a refused or already-seen event
//! of such a batch is exported too (the summary counts them apart). The OneID an identifier
//! resolves to is not exported: it changes with merges and splits, and the journal does not
//! hold it; `user_oneid` is set only where the event itself named a OneID.
//!
//! **Layout**: `DIR/events-00000.parquet`, `events-00001.parquet`, ... (each at most
//! `rows_per_file` rows, in row groups of at most `row_group_rows`), in journal order, and
//! `DIR/_userops_export.json` describing the export (the journal range read, counts, the
//! amount scale). Spark skips files starting with `_`; DuckDB reads `DIR/*.parquet`.
//!
//! **Columns** ([`schema`]): `seq` (journal sequence number), `batch_index`, `key` (the
//! idempotency key), `kind`, `time` (UTC, milliseconds), `platform`, `program`, `user_kind`,
//! `user_value` (the identifier as journaled: hashed when the store hashes identifiers),
//! `user_oneid`, `channel`, `order_id`, `amount` (Decimal128 with the currency's minor-unit
//! digits as its scale: exact, never a float) and `attributes` (what else the event says, as
//! a JSON object; null when nothing). Low-cardinality strings are dictionary-encoded.
//!
//! **Memory stays flat**: the journal is read through one cursor, rows are buffered
//! [`BATCH_ROWS`] at a time and the Parquet writer holds at most one row group.
//!
//! **Never half-written**: files are written under hidden `.partial` names and renamed once
//! the whole journal was read; an earlier export in `DIR` is replaced only then. A directory
//! holding anything else is refused and left untouched.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    Decimal128Builder, Int64Builder, StringBuilder, StringDictionaryBuilder,
    TimestampMillisecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use userops::event::EventBody;
use userops::{Decimal, UserRef};
use userops_store::history::{EventLog, History, JournalEvent};
use userops_store::StoreError;

/// Rows buffered in Arrow builders before they go to the Parquet writer.
pub const BATCH_ROWS: usize = 16_384;

/// The precision of the `amount` column: 18 digits fit Parquet's INT64 decimal, and an
/// accepted amount is at most 10¹² currency units with at most 2 decimals (15 digits).
const AMOUNT_PRECISION: u8 = 18;

/// The file describing an export; its name starts with `_` so Spark skips it.
pub const MANIFEST: &str = "_userops_export.json";

/// What to export and how to cut it.
#[derive(Debug, Clone)]
pub struct Options {
    /// The store's SQLite file.
    pub db: PathBuf,
    /// The output directory (created if missing; an earlier export there is replaced).
    pub out: PathBuf,
    /// Rows per Parquet file (at least 1).
    pub rows_per_file: usize,
    /// Rows per row group (at least 1): bounds what the writer holds in memory.
    pub row_group_rows: usize,
}

/// Why an export failed. Nothing of an earlier export in the directory was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The store cannot be read: missing, not a store, corrupt, a schema this build does not
    /// read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The output directory cannot take the export.
    #[error("{dir}: {reason}")]
    OutDir {
        /// The directory, as given.
        dir: String,
        /// Why it cannot (it holds files other than an earlier export, it is a file, ...).
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        source: std::io::Error,
    },
    /// An amount that the `amount` column cannot hold exactly (only a journal written before
    /// today's money rules can have one).
    #[error(
        "journal record {seq}: amount {amount} does not fit DECIMAL({AMOUNT_PRECISION}, {scale})"
    )]
    Amount {
        /// The journal record.
        seq: i64,
        /// The amount.
        amount: String,
        /// The column's scale.
        scale: u32,
    },
    /// The Parquet writer failed.
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    /// Building a column failed.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    /// What was read from the journal.
    pub history: History,
    /// The Parquet files, in order.
    pub files: Vec<PathBuf>,
    /// Their total size in bytes.
    pub bytes: u64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = &self.history;
        match h.range {
            Some((first, last)) => writeln!(
                f,
                "exported {} events from journal records {first}..={last} ({} records) \
                 to {} file(s), {} bytes",
                h.events(),
                h.records,
                self.files.len(),
                self.bytes
            )?,
            None => writeln!(f, "the journal is empty: exported 0 events")?,
        }
        writeln!(
            f,
            "{} record(s) redacted by erasure: what they held is not exported",
            h.redacted
        )?;
        if h.batches > 0 {
            writeln!(
                f,
                "{} event(s) of {} ingest_batch record(s) exported as journaled (column \
                 batch_index): the journal does not say which of them the engine refused or \
                 had already seen",
                h.batch_events, h.batches
            )?;
        }
        if let Some((seq, reason)) = &h.torn {
            writeln!(
                f,
                "warning: last journal record {seq} is torn ({reason}) and was skipped"
            )?;
        }
        write!(f, "amounts: DECIMAL({AMOUNT_PRECISION}, {})", h.minor_units)
    }
}

/// The Arrow schema of the exported files, for amounts with `scale` decimals.
pub fn schema(scale: u32) -> SchemaRef {
    let dict = || DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let scale = i8::try_from(scale).unwrap_or(i8::MAX);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::Int64, false),
        Field::new("batch_index", DataType::UInt32, true),
        Field::new("key", DataType::Utf8, false),
        Field::new("kind", dict(), false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            false,
        ),
        Field::new("platform", dict(), false),
        Field::new("program", dict(), false),
        Field::new("user_kind", dict(), true),
        Field::new("user_value", DataType::Utf8, true),
        Field::new("user_oneid", DataType::UInt64, true),
        Field::new("channel", dict(), true),
        Field::new("order_id", DataType::Utf8, true),
        Field::new(
            "amount",
            DataType::Decimal128(AMOUNT_PRECISION, scale),
            true,
        ),
        Field::new("attributes", DataType::Utf8, true),
    ]))
}

/// Export the store's events (see the module docs).
///
/// # Errors
///
/// [`ExportError::OutDir`] when `out` is a file or a non-empty directory that is not an
/// earlier export; [`ExportError::Store`] when the store cannot be read (missing, not a store,
/// a corrupt record); [`ExportError::Amount`] for an amount the column cannot hold;
/// [`ExportError::Io`], [`ExportError::Parquet`] when writing fails. On error the files of
/// this run are removed and an earlier export in `out` is left as it was.
pub fn export_events(opts: &Options) -> Result<Summary, ExportError> {
    let earlier = earlier_export(&opts.out)?;
    let log = EventLog::open(&opts.db)?;
    std::fs::create_dir_all(&opts.out).map_err(io(&opts.out))?;
    let mut writer = Writer::new(opts, log.config().currency_minor_units());
    let read = log.for_each(|e| writer.push(e));
    let history = match read.and_then(|h| writer.finish().map(|()| h)) {
        Ok(h) => h,
        Err(e) => {
            writer.discard();
            return Err(e);
        }
    };
    // The whole journal was read: only now does the earlier export go.
    for old in earlier {
        std::fs::remove_file(&old).map_err(io(&old))?;
    }
    let mut files = Vec::new();
    let mut bytes = 0;
    for (partial, done) in &writer.files {
        std::fs::rename(partial, done).map_err(io(partial))?;
        bytes += std::fs::metadata(done).map_err(io(done))?.len();
        files.push(done.clone());
    }
    let summary = Summary {
        history,
        files,
        bytes,
    };
    write_manifest(opts, &summary)?;
    Ok(summary)
}

/// The file name of the `n`th Parquet file.
fn file_name(n: usize) -> String {
    format!("events-{n:05}.parquet")
}

/// Whether `name` is one of ours: a Parquet file, its partial form, or the manifest.
fn is_export_file(name: &str) -> bool {
    let name = name
        .strip_prefix('.')
        .map_or(name, |n| n.strip_suffix(".partial").unwrap_or("not ours"));
    name == MANIFEST
        || name
            .strip_prefix("events-")
            .and_then(|n| n.strip_suffix(".parquet"))
            .is_some_and(|n| n.len() >= 5 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The files of an earlier export in `dir` (to replace), or why `dir` cannot take one.
fn earlier_export(dir: &Path) -> Result<Vec<PathBuf>, ExportError> {
    let refuse = |reason: String| ExportError::OutDir {
        dir: dir.display().to_string(),
        reason,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if dir.exists() && !dir.is_dir() => {
            return Err(refuse(format!("is not a directory ({e})")))
        }
        Err(e) => return Err(io(dir)(e)),
    };
    let mut ours = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let is_file = entry.file_type().map_err(io(dir))?.is_file();
        match name.to_str() {
            Some(n) if is_file && is_export_file(n) => ours.push(entry.path()),
            _ => {
                return Err(refuse(format!(
                    "holds {:?}, which is not part of an earlier export: give an empty or new \
                     directory",
                    name
                )))
            }
        }
    }
    Ok(ours)
}

fn write_manifest(opts: &Options, s: &Summary) -> Result<(), ExportError> {
    let h = &s.history;
    let manifest = serde_json::json!({
        "format": 1,
        "exported_by": concat!("userops ", env!("CARGO_PKG_VERSION")),
        "store": opts.db.display().to_string(),
        "journal": {
            "first_seq": h.range.map(|r| r.0),
            "last_seq": h.range.map(|r| r.1),
            "records": h.records,
            "redacted_records": h.redacted,
            "ingest_records": h.ingested,
            "ingest_batch_records": h.batches,
            "ingest_batch_events": h.batch_events,
            "torn_last_record": h.torn.as_ref().map(|t| t.0),
        },
        "events": h.events(),
        "amount": {"precision": AMOUNT_PRECISION, "scale": h.minor_units},
        "files": s.files.iter().filter_map(|f| f.file_name()?.to_str().map(str::to_owned)).collect::<Vec<_>>(),
    });
    let path = opts.out.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| ExportError::Io {
        path: path.display().to_string(),
        source: e.into(),
    })?;
    std::fs::write(&path, text + "\n").map_err(io(&path))
}

/// Arrow builders for one batch of rows.
struct Columns {
    seq: Int64Builder,
    batch_index: UInt32Builder,
    key: StringBuilder,
    kind: StringDictionaryBuilder<Int32Type>,
    time: TimestampMillisecondBuilder,
    platform: StringDictionaryBuilder<Int32Type>,
    program: StringDictionaryBuilder<Int32Type>,
    user_kind: StringDictionaryBuilder<Int32Type>,
    user_value: StringBuilder,
    user_oneid: UInt64Builder,
    channel: StringDictionaryBuilder<Int32Type>,
    order_id: StringBuilder,
    amount: Decimal128Builder,
    attributes: StringBuilder,
    rows: usize,
}

impl Columns {
    fn new() -> Columns {
        Columns {
            seq: Int64Builder::new(),
            batch_index: UInt32Builder::new(),
            key: StringBuilder::new(),
            kind: StringDictionaryBuilder::new(),
            time: TimestampMillisecondBuilder::new(),
            platform: StringDictionaryBuilder::new(),
            program: StringDictionaryBuilder::new(),
            user_kind: StringDictionaryBuilder::new(),
            user_value: StringBuilder::new(),
            user_oneid: UInt64Builder::new(),
            channel: StringDictionaryBuilder::new(),
            order_id: StringBuilder::new(),
            amount: Decimal128Builder::new(),
            attributes: StringBuilder::new(),
            rows: 0,
        }
    }

    /// Append one event. `scale` is the amount column's.
    fn push(&mut self, e: JournalEvent, scale: u32) -> Result<(), ExportError> {
        let JournalEvent {
            seq,
            batch_index,
            event,
        } = e;
        let amount = match &event.body {
            EventBody::Order { amount, .. } | EventBody::Refund { amount, .. } => Some(
                minor_units(*amount, scale).ok_or_else(|| ExportError::Amount {
                    seq,
                    amount: amount.to_string(),
                    scale,
                })?,
            ),
            _ => None,
        };
        // The rest of the event, as the wire has it, minus what has a column of its own.
        let mut rest = match serde_json::to_value(&event) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
            _ => None,
        };
        let channel = text(rest.remove("channel"));
        let order_id = text(rest.remove("order_id"));
        for k in ["kind", "key", "time", "source", "user", "amount"] {
            rest.remove(k);
        }
        // Fields the wire leaves empty when a channel did not give them.
        rest.retain(|_, v| match v {
            serde_json::Value::Null => false,
            serde_json::Value::String(s) => !s.is_empty(),
            serde_json::Value::Array(a) => !a.is_empty(),
            _ => true,
        });

        self.seq.append_value(seq);
        self.batch_index.append_option(batch_index);
        self.key.append_value(&event.key);
        self.kind.append_value(event.kind_name());
        self.time.append_value(event.time.timestamp_millis());
        self.platform.append_value(&event.source.platform);
        self.program.append_value(&event.source.program);
        match event.user() {
            Some(UserRef::Id(id)) => {
                self.user_kind.append_value(id.kind().as_str());
                self.user_value.append_value(id.value());
                self.user_oneid.append_null();
            }
            Some(UserRef::OneId(o)) => {
                self.user_kind.append_null();
                self.user_value.append_null();
                self.user_oneid.append_value(o.0);
            }
            // `identify` names no single user (its identifiers are in `attributes`), and an
            // event kind this build does not know would name one elsewhere.
            _ => {
                self.user_kind.append_null();
                self.user_value.append_null();
                self.user_oneid.append_null();
            }
        }
        self.channel.append_option(channel);
        self.order_id.append_option(order_id);
        self.amount.append_option(amount);
        if rest.is_empty() {
            self.attributes.append_null();
        } else {
            self.attributes
                .append_value(serde_json::Value::Object(rest).to_string());
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows so far as a batch of `schema`; the builders start empty again.
    fn finish(&mut self, schema: &SchemaRef, scale: u32) -> Result<RecordBatch, ExportError> {
        let precision_scale = i8::try_from(scale).unwrap_or(i8::MAX);
        let amount = self
            .amount
            .finish()
            .with_precision_and_scale(AMOUNT_PRECISION, precision_scale)?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.batch_index.finish()),
            Arc::new(self.key.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.time.finish().with_timezone("UTC")),
            Arc::new(self.platform.finish()),
            Arc::new(self.program.finish()),
            Arc::new(self.user_kind.finish()),
            Arc::new(self.user_value.finish()),
            Arc::new(self.user_oneid.finish()),
            Arc::new(self.channel.finish()),
            Arc::new(self.order_id.finish()),
            Arc::new(amount),
            Arc::new(self.attributes.finish()),
        ];
        self.rows = 0;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }
}

/// `amount` in minor units of `scale` decimals, exactly, if it fits the column.
fn minor_units(amount: Decimal, scale: u32) -> Option<i128> {
    let d = amount.normalize();
    let up = scale.checked_sub(d.scale())?;
    let v = d.mantissa().checked_mul(10i128.checked_pow(up)?)?;
    (v.unsigned_abs() < 10u128.pow(u32::from(AMOUNT_PRECISION))).then_some(v)
}

/// Rows to Parquet files under partial names, rolling over to a new file every
/// `rows_per_file` rows.
struct Writer {
    dir: PathBuf,
    rows_per_file: usize,
    props: WriterProperties,
    schema: SchemaRef,
    scale: u32,
    columns: Columns,
    current: Option<ArrowWriter<File>>,
    file_rows: usize,
    /// (partial name, final name) of every file started.
    files: Vec<(PathBuf, PathBuf)>,
}

impl Writer {
    fn new(opts: &Options, scale: u32) -> Writer {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(opts.row_group_rows.max(1))
            .set_created_by(concat!("userops ", env!("CARGO_PKG_VERSION")).to_owned())
            .build();
        Writer {
            dir: opts.out.clone(),
            rows_per_file: opts.rows_per_file.max(1),
            props,
            schema: schema(scale),
            scale,
            columns: Columns::new(),
            current: None,
            file_rows: 0,
            files: Vec::new(),
        }
    }

    fn push(&mut self, e: JournalEvent) -> Result<(), ExportError> {
        self.columns.push(e, self.scale)?;
        if self.columns.rows >= BATCH_ROWS.min(self.rows_per_file - self.file_rows) {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        if self.columns.rows == 0 {
            return Ok(());
        }
        let schema = self.schema.clone();
        let batch = self.columns.finish(&schema, self.scale)?;
        if self.current.is_none() {
            let done = self.dir.join(file_name(self.files.len()));
            let partial = self
                .dir
                .join(format!(".{}.partial", file_name(self.files.len())));
            let file = File::create(&partial).map_err(io(&partial))?;
            self.files.push((partial, done));
            self.current = Some(ArrowWriter::try_new(
                file,
                schema.clone(),
                Some(self.props.clone()),
            )?);
            self.file_rows = 0;
        }
        let writer = self.current.as_mut().expect("opened just above");
        writer.write(&batch)?;
        self.file_rows += batch.num_rows();
        if self.file_rows >= self.rows_per_file {
            self.close()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), ExportError> {
        if let Some(w) = self.current.take() {
            w.close()?;
        }
        Ok(())
    }

    /// Flush and close; an empty journal still gets one (empty) file, so that readers see
    /// the schema.
    fn finish(&mut self) -> Result<(), ExportError> {
        self.flush()?;
        if self.files.is_empty() {
            let schema = self.schema.clone();
            let done = self.dir.join(file_name(0));
            let partial = self.dir.join(format!(".{}.partial", file_name(0)));
            let file = File::create(&partial).map_err(io(&partial))?;
            self.files.push((partial, done));
            ArrowWriter::try_new(file, schema, Some(self.props.clone()))?.close()?;
        }
        self.close()
    }

    /// Remove what this run wrote (after an error).
    fn discard(&mut self) {
        self.current = None;
        for (partial, _) in &self.files {
            let _ = std::fs::remove_file(partial);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use arrow_array::cast::AsArray;
    use arrow_array::types::{Decimal128Type, Int64Type};
    use arrow_array::Array;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use userops::{Command, CoreCommand, Event, OnError};
    use userops_store::Store;

    use super::*;

    fn order(key: &str, member: &str, amount: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"kind": "order", "key": "{key}", "time": "2026-01-02T03:04:05.678+08:00",
            "source": {{"platform": "jd", "program": "brand-a"}},
            "user": {{"kind": "member_no", "value": "{member}"}}, "order_id": "o-{key}",
            "amount": "{amount}", "channel": "online", "region": "east",
            "lines": [{{"sku": "s1", "price": "{amount}", "qty": 1}}]}}"#
        ))
        .unwrap()
    }

    fn register(key: &str, member: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"kind": "register", "key": "{key}", "time": "2026-01-01T00:00:00Z",
            "source": {{"platform": "app", "program": "brand-a"}},
            "user": {{"kind": "member_no", "value": "{member}"}}}}"#
        ))
        .unwrap()
    }

    fn opts(db: &Path, out: &Path) -> Options {
        Options {
            db: db.to_owned(),
            out: out.to_owned(),
            rows_per_file: 1 << 20,
            row_group_rows: 1 << 17,
        }
    }

    /// Every row of every exported file, read back with the parquet crate's own reader.
    struct Rows {
        kind: Vec<String>,
        key: Vec<String>,
        user_value: Vec<Option<String>>,
        amount: Vec<Option<i128>>,
        seq: Vec<i64>,
        batch_index: Vec<Option<u32>>,
        text: String,
        amount_type: DataType,
    }

    fn read_back(files: &[PathBuf]) -> Rows {
        let mut rows = Rows {
            kind: vec![],
            key: vec![],
            user_value: vec![],
            amount: vec![],
            seq: vec![],
            batch_index: vec![],
            text: String::new(),
            amount_type: DataType::Null,
        };
        for f in files {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for batch in reader {
                let b = batch.unwrap();
                let col = |n: &str| b.column_by_name(n).unwrap().clone();
                let kind = arrow_array::cast::as_dictionary_array::<Int32Type>(&col("kind"))
                    .downcast_dict::<arrow_array::StringArray>()
                    .unwrap()
                    .into_iter()
                    .map(|v| v.unwrap().to_owned())
                    .collect::<Vec<_>>();
                rows.kind.extend(kind);
                rows.key.extend(
                    col("key")
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.unwrap().to_owned()),
                );
                rows.user_value.extend(
                    col("user_value")
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.map(str::to_owned)),
                );
                let amount = col("amount");
                rows.amount_type = amount.data_type().clone();
                rows.amount
                    .extend(amount.as_primitive::<Decimal128Type>().iter());
                rows.seq
                    .extend(col("seq").as_primitive::<Int64Type>().values().iter());
                rows.batch_index.extend(
                    col("batch_index")
                        .as_primitive::<arrow_array::types::UInt32Type>()
                        .iter(),
                );
                for c in b.columns() {
                    rows.text.push_str(&format!("{c:?}"));
                }
            }
        }
        rows
    }

    #[test]
    fn exports_counts_and_sums_and_nothing_of_an_erased_person() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut sent_sum = 0i128; // cents of the orders of the person who stays
        {
            let s = Store::options().snapshot_every(3).open(&db).unwrap();
            let erased = s
                .ingest(register("r-gone", "M-gone"))
                .unwrap()
                .oneid
                .unwrap();
            s.ingest(order("o-gone", "M-gone", "77.70")).unwrap();
            s.ingest(register("r-stay", "M-stay")).unwrap();
            for (i, a) in ["10.05", "0.10", "123456.00", "9"].iter().enumerate() {
                s.ingest(order(&format!("o{i}"), "M-stay", a)).unwrap();
                sent_sum += minor_units(a.parse().unwrap(), 2).unwrap();
            }
            s.execute(
                Command::from_call(
                    "erase",
                    &format!(
                        r#"{{"oneid": {}, "actor": "dpo", "time": "2026-01-03T00:00:00Z"}}"#,
                        erased.0
                    ),
                )
                .unwrap(),
            )
            .unwrap();
            // After the erasure: a batch record, journaled as sent.
            s.execute(Command::Core(CoreCommand::IngestBatch {
                events: vec![register("b0", "M-batch"), order("b1", "M-batch", "1.00")],
                on_error: OnError::Skip,
            }))
            .unwrap();
            sent_sum += 100;
        }
        let out = dir.path().join("out");
        let summary = export_events(&opts(&db, &out)).unwrap();
        let h = &summary.history;
        assert_eq!(h.redacted, 2, "the erased person's two events");
        assert_eq!((h.ingested, h.batches, h.batch_events), (5, 1, 2));
        assert_eq!(h.range, Some((1, h.records as i64)));
        assert!(
            summary.to_string().contains("2 record(s) redacted"),
            "{summary}"
        );

        let rows = read_back(&summary.files);
        assert_eq!(rows.kind.len() as u64, h.events());
        let mut by_kind = BTreeMap::new();
        for k in &rows.kind {
            *by_kind.entry(k.as_str()).or_insert(0) += 1;
        }
        assert_eq!(by_kind, BTreeMap::from([("order", 5), ("register", 2)]));
        assert_eq!(rows.amount.iter().flatten().sum::<i128>(), sent_sum);
        assert_eq!(rows.amount_type, DataType::Decimal128(18, 2));
        assert!(rows.seq.windows(2).all(|w| w[0] <= w[1]), "journal order");
        assert_eq!(
            rows.batch_index
                .iter()
                .filter_map(|b| *b)
                .collect::<Vec<_>>(),
            vec![0, 1]
        );
        // Nothing of the erased person anywhere: identifiers, keys, order ids, attributes.
        assert!(rows.user_value.contains(&Some("M-stay".to_owned())));
        assert!(rows.text.contains("M-stay"), "the check below sees values");
        assert!(!rows.text.contains("gone"), "{}", rows.text);
        assert!(rows.key.iter().all(|k| !k.contains("gone")));

        let manifest: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(manifest["events"], 7);
        assert_eq!(manifest["journal"]["redacted_records"], 2);
    }

    #[test]
    fn time_is_utc_millis_and_attributes_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        Store::open(&db)
            .unwrap()
            .ingest(order("k", "M1", "5.5"))
            .unwrap();
        let summary = export_events(&opts(&db, &dir.path().join("out"))).unwrap();
        let file = File::open(&summary.files[0]).unwrap();
        let b = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let time = b.column_by_name("time").unwrap();
        assert_eq!(
            time.data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        let ms = time
            .as_primitive::<arrow_array::types::TimestampMillisecondType>()
            .value(0);
        // 2026-01-02T03:04:05.678+08:00 is 2026-01-01T19:04:05.678Z.
        assert_eq!(ms, 1_767_294_245_678);
        let attrs = b
            .column_by_name("attributes")
            .unwrap()
            .as_string::<i32>()
            .value(0);
        let attrs: serde_json::Value = serde_json::from_str(attrs).unwrap();
        assert_eq!(attrs["region"], "east");
        assert_eq!(attrs["lines"][0]["sku"], "s1");
        assert!(attrs.get("store").is_none(), "empty fields are left out");
        assert!(attrs.get("amount").is_none() && attrs.get("channel").is_none());
        let amount = b.column_by_name("amount").unwrap();
        assert_eq!(amount.as_primitive::<Decimal128Type>().value(0), 550);
        assert!(matches!(
            b.column_by_name("platform").unwrap().data_type(),
            DataType::Dictionary(..)
        ));
    }

    #[test]
    fn rolls_over_files_and_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        {
            let s = Store::open(&db).unwrap();
            s.ingest_batch(
                (0..25).map(|i| register(&format!("r{i}"), &format!("M{i}"))),
                10,
            )
            .unwrap();
        }
        let mut o = opts(&db, &dir.path().join("out"));
        o.rows_per_file = 10;
        o.row_group_rows = 4;
        let summary = export_events(&o).unwrap();
        assert_eq!(summary.files.len(), 3);
        let mut total = 0;
        for f in &summary.files {
            let b = ParquetRecordBatchReaderBuilder::try_new(File::open(f).unwrap()).unwrap();
            let groups = b.metadata().row_groups();
            assert!(groups.iter().all(|g| g.num_rows() <= 4));
            total += b.metadata().file_metadata().num_rows();
        }
        assert_eq!(total, 25);
        assert_eq!(read_back(&summary.files).key.len(), 25);
    }

    #[test]
    fn refuses_a_foreign_directory_and_replaces_an_earlier_export() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        Store::open(&db)
            .unwrap()
            .ingest(register("r", "M1"))
            .unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        let err = export_events(&opts(&db, &out)).unwrap_err();
        assert!(matches!(err, ExportError::OutDir { .. }), "{err}");
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            1,
            "left untouched"
        );
        std::fs::remove_file(out.join("notes.txt")).unwrap();

        // An earlier export of more files is replaced whole.
        let mut many = opts(&db, &out);
        many.rows_per_file = 1;
        Store::open(&db)
            .unwrap()
            .ingest(register("r2", "M2"))
            .unwrap();
        assert_eq!(export_events(&many).unwrap().files.len(), 2);
        let again = export_events(&opts(&db, &out)).unwrap();
        assert_eq!(again.files.len(), 1);
        let mut names: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec![MANIFEST, "events-00000.parquet"]);

        // A file in place of the directory.
        let err = export_events(&opts(&db, &out.join(MANIFEST))).unwrap_err();
        assert!(matches!(err, ExportError::OutDir { .. }), "{err}");
    }

    #[test]
    fn missing_or_corrupt_store_is_a_typed_error_and_keeps_the_earlier_export() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let err = export_events(&opts(&dir.path().join("none.db"), &out)).unwrap_err();
        assert!(
            matches!(err, ExportError::Store(StoreError::BadPath { .. })),
            "{err}"
        );
        assert!(!out.exists(), "nothing created for a missing store");

        let db = dir.path().join("s.db");
        {
            let s = Store::open(&db).unwrap();
            for i in 0..3 {
                s.ingest(register(&format!("r{i}"), &format!("M{i}")))
                    .unwrap();
            }
        }
        let first = export_events(&opts(&db, &out)).unwrap();
        assert_eq!(first.history.events(), 3);
        // A bad last record is a torn write (recovery removes it): skipped and reported.
        assert!(corrupt(&db, 3));
        let torn = export_events(&opts(&db, &out)).unwrap();
        assert_eq!(torn.history.events(), 2);
        assert_eq!(torn.history.torn.as_ref().map(|t| t.0), Some(3));
        assert!(torn.to_string().contains("record 3 is torn"), "{torn}");
        let before = std::fs::read(&first.files[0]).unwrap();
        assert!(corrupt(&db, 2), "record 2 was changed");
        let err = export_events(&opts(&db, &out)).unwrap_err();
        assert!(
            matches!(err, ExportError::Store(StoreError::Corrupt { seq: 2, .. })),
            "{err}"
        );
        assert_eq!(std::fs::read(&first.files[0]).unwrap(), before);
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            2,
            "no partial files"
        );
    }

    /// Change journal record `seq`'s text behind the store's back (its checksum must catch it).
    fn corrupt(db: &Path, seq: i64) -> bool {
        let c = rusqlite::Connection::open(db).unwrap();
        c.execute(
            "UPDATE journal SET command = replace(command, 'M', 'N') WHERE seq = ?1",
            [seq],
        )
        .unwrap()
            == 1
    }
}
