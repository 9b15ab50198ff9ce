//! Engine methods whose output is a table, handed back as Arrow built in Rust instead of row
//! dicts in Python: `NativeEngine.call_output_table` for every table `userops_arrow` declares
//! (the points statement, the automation plan, RFM, churn, ...: the same schemas the C ABI
//! exports), built from the engine's typed output.

use std::panic::{catch_unwind, AssertUnwindSafe};

use arrow_schema::{DataType, TimeUnit};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_arrow::PyTable;
use userops::{Command, Error};
use userops_arrow::OutputTable;

use crate::tables::{engine_error, table_out};
use crate::NativeEngine;

#[pymethods]
impl NativeEngine {
    /// Execute `method` with JSON `args` and return its output as the table `userops_arrow`
    /// builds for it: `(name, table, rest_json)` with the table's name (`"statement"`, `"rfm"`,
    /// ...) and the rest of the output as JSON, its rows replaced by `null` (`"null"` for an
    /// output that is only rows; the fit of `churn_risk`, the model of `churn_model`).
    fn call_output_table(
        &self,
        py: Python<'_>,
        method: &str,
        args_json: &str,
    ) -> PyResult<(String, PyTable, String)> {
        let (table, batch, rest) = py
            .detach(|| {
                catch_unwind(AssertUnwindSafe(|| -> Result<_, Error> {
                    let command = Command::from_call(method, args_json)?;
                    // Known before running: a method without a table must not run and fail.
                    let no_table = || Error::Internal(format!("{method} returns no table"));
                    let expected = userops_arrow::command_table(&command).ok_or_else(no_table)?;
                    let output = self.inner.execute(command)?;
                    let (table, batch) = userops_arrow::output_batch(&output)
                        .filter(|b| b.as_ref().map_or(true, |(t, _)| *t == expected))
                        .ok_or_else(no_table)?
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    let rest = userops_arrow::output_rest(&output)
                        .map_err(|e| Error::Internal(e.to_string()))?;
                    Ok((table, batch, rest.to_string()))
                }))
                .unwrap_or_else(|_| Err(Error::Internal("panic inside the engine".into())))
            })
            .map_err(|e| engine_error(py, &e, None, None))?;
        Ok((table.name().to_owned(), table_out(batch)?, rest))
    }
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
