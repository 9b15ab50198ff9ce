//! Engine methods whose output is a table, handed back as Arrow built in Rust instead of row
//! dicts in Python: `NativeEngine.call_output_table` for the tables `userops_arrow` declares
//! (the points statement, the automation plan: the same schemas the C ABI exports), and
//! `NativeEngine.call_table` for the other lists of rows (RFM rows, ...) read from the JSON
//! output by column specs.

use std::panic::{catch_unwind, AssertUnwindSafe};

use arrow_schema::{DataType, TimeUnit};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyTable;
use userops::{Command, Error};
use userops_arrow::OutputTable;

use crate::columns::{rows_batch_at, Col, Fail};
use crate::tables::{engine_error, table_out};
use crate::NativeEngine;

#[pymethods]
impl NativeEngine {
    /// Execute `method` with JSON `args` and return its output as the table `userops_arrow`
    /// builds for it, with the table's name (`"statement"`, `"automation_plan"`, ...).
    fn call_output_table(
        &self,
        py: Python<'_>,
        method: &str,
        args_json: &str,
    ) -> PyResult<(String, PyTable)> {
        let built = py
            .detach(|| {
                catch_unwind(AssertUnwindSafe(|| -> Result<_, Error> {
                    let output = self.inner.execute(Command::from_call(method, args_json)?)?;
                    userops_arrow::output_batch(&output)
                        .ok_or_else(|| Error::Internal(format!("{method} returns no table")))?
                        .map_err(|e| Error::Internal(e.to_string()))
                }))
                .unwrap_or_else(|_| Err(Error::Internal("panic inside the engine".into())))
            })
            .map_err(|e| engine_error(py, &e, None, None))?;
        let (table, batch) = built;
        Ok((table.name().to_owned(), table_out(batch)?))
    }

    /// Execute `method` with JSON `args` and return the rows found at `path` in its output
    /// (object keys; empty for an output that is itself a list) as a table of `columns`
    /// (`(name, type, pointer)` with types `str`, `i64`, `u64`, `f64`, `bool`, `dec`, `time`,
    /// `json`; each row's value is read at the JSON `pointer`, e.g. `/features/0`), and the
    /// rest of the output as JSON (the rows replaced by `null`).
    fn call_table(
        &self,
        py: Python<'_>,
        method: &str,
        args_json: &str,
        path: Vec<String>,
        columns: Vec<(String, String, String)>,
    ) -> PyResult<(PyTable, String)> {
        let cols = columns
            .iter()
            .map(|(n, t, p)| {
                Col::parse(t)
                    .map(|c| (n.as_str(), c, Some(p.as_str())))
                    .ok_or_else(|| {
                        Fail::Core(Error::invalid_argument(
                            "columns",
                            format!("unknown column type {t:?}"),
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.into_py(py))?;
        let (ok, out) = self.call(py, method, args_json);
        if !ok {
            let report: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
            let exc = py
                .import("userops.errors")?
                .getattr("from_report")?
                .call1((pythonize(py, &report)?,))?;
            return Err(PyErr::from_value(exc));
        }
        let (batch, rest) = py
            .detach(|| -> Result<_, Error> {
                let mut root: serde_json::Value =
                    serde_json::from_str(&out).map_err(|e| Error::Internal(e.to_string()))?;
                let pointer: String = path.iter().map(|k| format!("/{k}")).collect();
                let rows = root
                    .pointer_mut(&pointer)
                    .map(serde_json::Value::take)
                    .ok_or_else(|| Error::Internal(format!("output has no `{pointer}`")))?;
                let rows = rows
                    .as_array()
                    .ok_or_else(|| Error::Internal(format!("{method} did not return rows")))?;
                Ok((rows_batch_at(&cols, rows)?, root.to_string()))
            })
            .map_err(|e| engine_error(py, &e, None, None))?;
        Ok((table_out(batch)?, rest))
    }
}

/// An error report as a Python dict for `userops.errors.from_report`.
fn pythonize<'py>(
    py: Python<'py>,
    report: &serde_json::Value,
) -> PyResult<Bound<'py, pyo3::types::PyDict>> {
    let d = pyo3::types::PyDict::new(py);
    for (k, v) in report.as_object().into_iter().flatten() {
        match v {
            serde_json::Value::String(s) => d.set_item(k, s)?,
            serde_json::Value::Number(n) => d.set_item(k, n.as_i64())?,
            serde_json::Value::Bool(b) => d.set_item(k, b)?,
            _ => d.set_item(k, py.None())?,
        }
    }
    Ok(d)
}

/// An output table's columns as `(name, type, nullable)`, the type spelled as pyarrow prints
/// it (`"uint64"`, `"string"`, `"timestamp[ms, tz=UTC]"`), for the package's column lists
/// (`userops.PLAN_COLUMNS`) without importing pyarrow.
fn columns(table: OutputTable) -> Vec<(String, String, bool)> {
    table
        .schema()
        .fields()
        .iter()
        .map(|f| {
            (
                f.name().clone(),
                pyarrow_name(f.data_type()),
                f.is_nullable(),
            )
        })
        .collect()
}

fn pyarrow_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 => "string".to_owned(),
        DataType::Boolean => "bool".to_owned(),
        DataType::Float64 => "double".to_owned(),
        DataType::Timestamp(unit, tz) => {
            let unit = match unit {
                TimeUnit::Second => "s",
                TimeUnit::Millisecond => "ms",
                TimeUnit::Microsecond => "us",
                TimeUnit::Nanosecond => "ns",
            };
            match tz {
                Some(tz) => format!("timestamp[{unit}, tz={tz}]"),
                None => format!("timestamp[{unit}]"),
            }
        }
        other => other.to_string().to_lowercase(),
    }
}

/// An output table with no rows: its schema, as an Arrow table.
#[pyfunction]
fn empty_output_table(name: &str) -> PyResult<PyTable> {
    let table = OutputTable::from_name(name).ok_or_else(|| {
        pyo3::exceptions::PyKeyError::new_err(format!("no output table {name:?}"))
    })?;
    PyTable::try_new(vec![], table.schema())
}

/// Register `output_columns` (every output table's columns by table name) and
/// `empty_output_table`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let tables = PyDict::new(m.py());
    for table in OutputTable::ALL {
        tables.set_item(table.name(), columns(table))?;
    }
    m.add("output_columns", tables)?;
    m.add_function(wrap_pyfunction!(empty_output_table, m)?)
}
