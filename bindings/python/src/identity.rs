//! `NativeIdentityGraph.resolve_table`: identifier rows straight from an Arrow table into
//! [`IdentityGraph::resolve_batch_with_progress`], the text borrowed from the Arrow buffers (no
//! copy).

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, UInt64Array};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use userops::identity::BatchColumns;

use crate::columns::{self, run, Fail, PyProgress};
use crate::tables::{table_out, StringColumn, Table, TableError};
use crate::NativeIdentityGraph;

/// Texts of a column, borrowed; `None` rows when `optional` and the value is null.
fn texts(cols: &[(usize, StringColumn)], optional: bool) -> Result<Vec<&str>, TableError> {
    let mut out = Vec::with_capacity(cols.iter().map(|(len, _)| len).sum());
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
    /// `reject_reason` (null when accepted), one row per input row. The table is one batch,
    /// resolved without the GIL; as its records are linked, `progress(done, total)` hears of
    /// the rows done and Ctrl-C is honoured (the records linked before it stay in the graph).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (table, record_id="record_id", kind="kind", value="value", source="source", ts="ts", progress=None))]
    fn resolve_table(
        &self,
        py: Python<'_>,
        table: PyTable,
        record_id: &str,
        kind: &str,
        value: &str,
        source: &str,
        ts: &str,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<PyTable> {
        let t = Table::from_py(table);
        let (r, k, v, s, times) = run(py, || {
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
            Ok((r, k, v, s, times))
        })?;
        let n = times.len();
        let mut hook = PyProgress::new(progress);
        let out = run(py, || {
            let record = texts(&r, false)?;
            let kinds = texts(&k, false)?;
            let values = texts(&v, false)?;
            let sources = match &s {
                Some(s) => texts(s, true)?,
                None => vec![""; n],
            };
            let mut graph = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let cols = BatchColumns {
                record_id: &record,
                kind: &kinds,
                value: &values,
                source: &sources,
                ts: &times,
            };
            Ok(graph.resolve_batch_with_progress(&cols, &mut hook)?)
        });
        // A stop raises what stopped it (the records linked before it stay in the graph).
        let out = hook.finish(out)?.ok_or_else(|| {
            Fail::Core(userops::Error::Internal(
                "the batch stopped without a reason".into(),
            ))
            .into_py(py)
        })?;
        // Straight into Arrow buffers: a column of n optional values as a Vec would cost
        // 16-24 bytes a row before the copy into Arrow.
        let oneids: UInt64Array = out.oneids.iter().map(|o| o.map(|o| o.0)).collect();
        let text: usize = out.rejected.iter().map(|r| r.reason.len()).sum();
        let mut reasons = StringBuilder::with_capacity(n, text);
        let mut next = 0;
        for rej in &out.rejected {
            // Rows come sorted, each once.
            if rej.row >= next && rej.row < n {
                reasons.append_nulls(rej.row - next);
                reasons.append_value(&rej.reason);
                next = rej.row + 1;
            }
        }
        reasons.append_nulls(n - next);
        let batch = columns::batch(vec![
            ("oneid".into(), Arc::new(oneids) as ArrayRef),
            ("reject_reason".into(), Arc::new(reasons.finish())),
        ])
        .map_err(|e| Fail::Core(e).into_py(py))?;
        table_out(batch)
    }
}
