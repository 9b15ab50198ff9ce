//! `NativeEngine.set_tags_table`: a wide table of tag values straight from Arrow into the
//! engine's `set_tags` command (typed, not JSON text); each tag's type comes from its column's
//! Arrow type.

use arrow_schema::DataType;
use chrono::{FixedOffset, SecondsFormat, Utc};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use serde_json::Value;
use userops::tags::{TagColumnInput, TagsCommand, ValueType};
use userops::{Command, Error};

use crate::columns::{self, bad_arg, run, Fail};
use crate::tables::{Table, TableError};
use crate::NativeEngine;

/// The tag type a column holds: booleans → bool, numbers → number, text (or categoricals) →
/// enum, dates and timestamps → date.
fn tag_type(name: &str, t: &DataType) -> Result<ValueType, TableError> {
    Ok(match t {
        DataType::Boolean => ValueType::Bool,
        t if t.is_numeric() => ValueType::Number,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ValueType::Enum,
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => ValueType::Date,
        t => {
            return Err(TableError::wrong_type(
                name,
                t,
                "booleans, numbers, text, dates or timestamps",
            ))
        }
    })
}

/// The `set_tags` command for `table`: `user` names the identifier column (of `kind`), every
/// other column is a tag. Nulls remove a value; timestamps without a zone are UTC.
fn command(t: &Table, user: &str, kind: &str, now: Option<&str>) -> Result<Command, Fail> {
    let now = match now {
        Some(text) => userops::event::rfc3339::parse(text).map_err(|e| bad_arg("now", e))?,
        None => Utc::now(),
    };
    t.require(&[user])?;
    let chunks = t.chunks(usize::MAX);
    let mut users = Vec::with_capacity(t.num_rows());
    for c in &chunks {
        let col = c.string_like(user)?;
        for i in 0..c.len() {
            users.push(col.required(i)?.to_owned());
        }
    }
    let utc = FixedOffset::east_opt(0).expect("0 is a valid offset");
    let mut tags = Vec::new();
    for field in t.schema().fields() {
        let name = field.name();
        if name == user {
            continue;
        }
        let ty = tag_type(name, &columns::value_type(t, name)?)?;
        let mut values = Vec::with_capacity(t.num_rows());
        for c in &chunks {
            match (ty, columns::value_type(t, name)?) {
                (ValueType::Date, DataType::Timestamp(..)) => {
                    let col = c.timestamps(name, Some(utc))?;
                    for i in 0..c.len() {
                        values.push(col.get(i)?.map_or(Value::Null, |d| {
                            Value::from(d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                        }));
                    }
                }
                (ValueType::Number, DataType::Decimal128(..)) => {
                    let col = c.decimals(name)?;
                    for i in 0..c.len() {
                        values.push(col.get(i)?.map_or(Value::Null, |d| {
                            serde_json::Number::from_f64(
                                d.to_string().parse::<f64>().unwrap_or(f64::NAN),
                            )
                            .map_or(Value::Null, Value::Number)
                        }));
                    }
                }
                _ => {
                    let col = c.json_values(name)?;
                    for i in 0..c.len() {
                        values.push(col.get(i)?.unwrap_or(Value::Null));
                    }
                }
            }
        }
        tags.push(TagColumnInput {
            name: name.clone(),
            value_type: Some(ty),
            values,
        });
    }
    Ok(Command::Tags(TagsCommand::SetTags {
        kind: kind.to_owned(),
        users,
        tags,
        now,
    }))
}

#[pymethods]
impl NativeEngine {
    /// Set tags from a wide table (see `userops.Engine.set_tags`); the reply holds the counts.
    #[pyo3(signature = (table, user, kind, now=None))]
    fn set_tags_table(
        &self,
        py: Python<'_>,
        table: PyTable,
        user: &str,
        kind: &str,
        now: Option<&str>,
    ) -> PyResult<(bool, String)> {
        let t = Table::from_py(table);
        let command = run(py, || command(&t, user, kind, now))?;
        Ok(self.with_handle(py, move |h| {
            let out = h.execute(command)?;
            serde_json::to_string(&out).map_err(|e| Error::Internal(e.to_string()))
        }))
    }
}

#[pymethods]
impl NativeEngine {
    /// Evaluate an audience (`args_json` as for `call("audience", ...)`). Returns `(True,
    /// result JSON without the members, members)` with the members' OneIDs as native-endian
    /// u64 bytes, which Python reads into an `array('Q')` in one copy: tens of thousands of
    /// members as JSON numbers cost more to parse than the evaluation itself. `(False, error
    /// report JSON, b"")` on failure.
    fn audience_members(
        &self,
        py: Python<'_>,
        args_json: &str,
    ) -> (bool, String, Py<pyo3::types::PyBytes>) {
        let args = args_json.to_owned();
        let mut members = Vec::new();
        let (ok, text) = self.with_handle(py, |h| {
            let command = Command::from_call("audience", &args)?;
            match h.execute(command)? {
                userops::Output::Tags(userops::tags::TagsOutput::Audience(mut r)) => {
                    members = std::mem::take(&mut r.oneids)
                        .into_iter()
                        .flat_map(|o| o.0.to_ne_bytes())
                        .collect();
                    serde_json::to_string(&r).map_err(|e| Error::Internal(e.to_string()))
                }
                _ => Err(Error::Internal(
                    "audience answered with another output".into(),
                )),
            }
        });
        (ok, text, pyo3::types::PyBytes::new(py, &members).unbind())
    }
}
