//! `NativeIdentityGraph.resolve_table`: identifier rows straight from an Arrow table into
//! [`IdentityGraph::resolve_batch`], the text borrowed from the Arrow buffers (no copy).

use std::collections::HashMap;
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

/// The rows of each chunk: whole records (rows sharing a record id, in first-appearance order)
/// until a chunk holds at least `chunk_rows` rows, so no record is split between two batches.
fn record_chunks(record: &[&str], chunk_rows: usize) -> Vec<Vec<usize>> {
    let mut of_record: HashMap<&str, usize> = HashMap::new();
    let mut rows_of: Vec<Vec<usize>> = Vec::new();
    for (i, r) in record.iter().enumerate() {
        let next = rows_of.len();
        let at = *of_record.entry(r).or_insert(next);
        if at == next {
            rows_of.push(Vec::new());
        }
        rows_of[at].push(i);
    }
    let mut chunks: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for rows in rows_of {
        current.extend(rows);
        if current.len() >= chunk_rows.max(1) {
            chunks.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// The values of `rows` (borrowed, no copy of the text).
fn pick_rows<'a>(rows: &[usize], col: &[&'a str]) -> Vec<&'a str> {
    rows.iter().map(|&i| col[i]).collect()
}

#[pymethods]
impl NativeIdentityGraph {
    /// Resolve identifier rows of a table (columns `record_id`, `kind`, `value`, and optional
    /// `source` and `ts`, named by the arguments): a table of `oneid` (null when rejected) and
    /// `reject_reason` (null when accepted), one row per input row. Tables over `chunk_rows`
    /// rows go in batches of whole records without the GIL; between batches `progress(done,
    /// total)` is called and Ctrl-C is honoured (the batches before it stay linked). OneIDs are
    /// those after the whole table (a later batch may merge persons of an earlier one).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (table, record_id="record_id", kind="kind", value="value", source="source", ts="ts", chunk_rows=100_000, progress=None))]
    fn resolve_table(
        &self,
        py: Python<'_>,
        table: PyTable,
        record_id: &str,
        kind: &str,
        value: &str,
        source: &str,
        ts: &str,
        chunk_rows: usize,
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
        let (record, kinds, values, sources, plan) = run(py, || {
            let record = texts(&r, false)?;
            let kinds = texts(&k, false)?;
            let values = texts(&v, false)?;
            let sources = match &s {
                Some(s) => texts(s, true)?,
                None => vec![""; n],
            };
            let plan = if n > chunk_rows {
                record_chunks(&record, chunk_rows)
            } else {
                vec![(0..n).collect()]
            };
            Ok((record, kinds, values, sources, plan))
        })?;
        let mut oneids: Vec<Option<u64>> = vec![None; n];
        let mut reasons: Vec<Option<String>> = vec![None; n];
        let mut done = 0;
        for rows in &plan {
            run(py, || {
                let whole = rows.len() == n;
                let (rec_c, kind_c, val_c, src_c) = if whole {
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new())
                } else {
                    (
                        pick_rows(rows, &record),
                        pick_rows(rows, &kinds),
                        pick_rows(rows, &values),
                        pick_rows(rows, &sources),
                    )
                };
                let ts_c: Vec<i64> = if whole {
                    Vec::new()
                } else {
                    rows.iter().map(|&i| times[i]).collect()
                };
                let mut graph = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                let out = if whole {
                    graph.resolve_batch(&BatchColumns {
                        record_id: &record,
                        kind: &kinds,
                        value: &values,
                        source: &sources,
                        ts: &times,
                    })?
                } else {
                    graph.resolve_batch(&BatchColumns {
                        record_id: &rec_c,
                        kind: &kind_c,
                        value: &val_c,
                        source: &src_c,
                        ts: &ts_c,
                    })?
                };
                drop(graph);
                for (j, o) in out.oneids.iter().enumerate() {
                    oneids[rows[j]] = o.map(|o| o.0);
                }
                for rej in &out.rejected {
                    if let Some(&row) = rows.get(rej.row) {
                        reasons[row] = Some(rej.reason.clone());
                    }
                }
                Ok(())
            })?;
            done += rows.len();
            if plan.len() > 1 {
                if let Some(cb) = &progress {
                    cb.call1(py, (done, n))?;
                }
                py.check_signals()?;
            }
        }
        if plan.len() > 1 {
            // A later batch may have merged persons of an earlier one: report the live OneID.
            let graph = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            for o in oneids.iter_mut().flatten() {
                if let Some(live) = graph.canonical(userops::OneId(*o)) {
                    *o = live.0;
                }
            }
        }
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
