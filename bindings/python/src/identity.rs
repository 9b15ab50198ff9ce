//! `NativeIdentityGraph.resolve_table`: identifier rows straight from an Arrow table into
//! [`IdentityGraph::resolve_batch`], the text borrowed from the Arrow buffers (no copy).

use std::sync::Arc;

use arrow_array::{ArrayRef, StringArray, UInt64Array};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use userops::identity::BatchColumns;

use crate::columns::{self, run, Fail};
use crate::tables::{table_out, StringColumn, Table, TableError};
use crate::NativeIdentityGraph;

/// Texts of a column, borrowed; `None` rows when `optional` and the value is null.
fn texts(cols: &[(usize, StringColumn)], optional: bool) -> Result<Vec<&str>, TableError> {
    let mut out = Vec::new();
    for (len, col) in cols {
        for i in 0..*len {
            out.push(if optional {
                col.get(i)?.unwrap_or("")
            } else {
                col.required(i)?
            });
        }
    }
    Ok(out)
}

#[pymethods]
impl NativeIdentityGraph {
    /// Resolve identifier rows of a table (columns `record_id`, `kind`, `value`, and optional
    /// `source` and `ts`, named by the arguments): a table of `oneid` (null when rejected) and
    /// `reject_reason` (null when accepted), one row per input row.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (table, record_id="record_id", kind="kind", value="value", source="source", ts="ts"))]
    fn resolve_table(
        &self,
        py: Python<'_>,
        table: PyTable,
        record_id: &str,
        kind: &str,
        value: &str,
        source: &str,
        ts: &str,
    ) -> PyResult<PyTable> {
        let t = Table::from_py(table);
        let (oneids, reasons) = run(py, || {
            t.require(&[record_id, kind, value])?;
            let chunks = t.chunks(usize::MAX);
            let read = |name: &str| -> Result<Vec<(usize, StringColumn)>, TableError> {
                chunks
                    .iter()
                    .map(|c| Ok((c.len(), c.string_like(name)?)))
                    .collect()
            };
            let (r, k, v) = (read(record_id)?, read(kind)?, read(value)?);
            let s = if t.has_column(source) {
                Some(read(source)?)
            } else {
                None
            };
            let times = if !t.has_column(ts) {
                vec![0; t.num_rows()]
            } else {
                match columns::value_type(&t, ts)? {
                    arrow_schema::DataType::Timestamp(..) | arrow_schema::DataType::Utf8 => {
                        columns::utc_millis(&t, ts)?
                    }
                    _ => {
                        let mut out = Vec::with_capacity(t.num_rows());
                        for c in &chunks {
                            let col = c.ints(ts)?;
                            for i in 0..c.len() {
                                out.push(col.get(i)?.unwrap_or(0));
                            }
                        }
                        out
                    }
                }
            };
            let record = texts(&r, false)?;
            let kinds = texts(&k, false)?;
            let values = texts(&v, false)?;
            let sources = match &s {
                Some(s) => texts(s, true)?,
                None => vec![""; times.len()],
            };
            let mut graph = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let out = graph.resolve_batch(&BatchColumns {
                record_id: &record,
                kind: &kinds,
                value: &values,
                source: &sources,
                ts: &times,
            })?;
            let mut reasons: Vec<Option<String>> = vec![None; out.oneids.len()];
            for rej in &out.rejected {
                if let Some(slot) = reasons.get_mut(rej.row) {
                    *slot = Some(rej.reason.clone());
                }
            }
            let oneids: Vec<Option<u64>> = out.oneids.iter().map(|o| o.map(|o| o.0)).collect();
            Ok((oneids, reasons))
        })?;
        let batch = columns::batch(vec![
            (
                "oneid".into(),
                Arc::new(UInt64Array::from(oneids)) as ArrayRef,
            ),
            ("reject_reason".into(), Arc::new(StringArray::from(reasons))),
        ])
        .map_err(|e| Fail::Core(e).into_py(py))?;
        table_out(batch)
    }
}
