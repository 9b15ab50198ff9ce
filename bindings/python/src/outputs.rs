//! `NativeEngine.call_table`: an engine method whose output is a list of rows (a points
//! statement, an automation plan, RFM rows, ...) handed back as an Arrow table, built in Rust
//! from the typed output instead of row dicts in Python.

use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use userops::Error;

use crate::columns::{rows_batch_at, Col, Fail};
use crate::tables::{engine_error, table_out};
use crate::NativeEngine;

#[pymethods]
impl NativeEngine {
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
