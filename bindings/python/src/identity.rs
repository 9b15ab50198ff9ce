//! `NativeIdentityGraph.resolve_table`: identifier rows straight from an Arrow table into
//! [`IdentityGraph::resolve_batch_with_progress`], the text borrowed from the Arrow buffers (no
//! copy).

use std::sync::Arc;

use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, UInt64Array};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use userops::identity::{BatchColumns, TextColumn};

use crate::columns::{self, run, Fail, PyProgress};
use crate::tables::{table_out, ChunkText, StringColumn, Table, TableError};
use crate::NativeIdentityGraph;

/// A text column of the table read in place from its Arrow chunks: no `&str` per cell is
/// built (at 10M rows four such vectors would be 640 MB), and nulls are checked once per chunk.
pub(crate) struct ArrowText<'a> {
    /// First row of each chunk, ascending (the first is 0), and `rows` after the last.
    starts: Vec<usize>,
    chunks: Vec<ChunkText<'a>>,
    /// Per 4,096 rows: the chunk holding the first of them. A text is asked for about ten
    /// times per row; a binary search over hundreds of chunks each time cost more than the
    /// `&str` vectors this replaces.
    dir: Vec<u32>,
    rows: usize,
}

/// Rows per entry of [`ArrowText::dir`] (a power of two).
const DIR_ROWS: usize = 4096;

impl<'a> ArrowText<'a> {
    /// `optional`: nulls read as `""`; otherwise a null is an error naming its row.
    pub(crate) fn new(
        cols: &'a [(usize, StringColumn)],
        optional: bool,
    ) -> Result<Self, TableError> {
        let mut starts = Vec::with_capacity(cols.len());
        let mut chunks = Vec::with_capacity(cols.len());
        let mut rows = 0;
        for (len, col) in cols {
            if *len == 0 {
                continue;
            }
            starts.push(rows);
            chunks.push(col.text(optional)?);
            rows += len;
        }
        starts.push(rows);
        let dir = (0..rows.div_ceil(DIR_ROWS))
            .map(|b| (starts.partition_point(|&s| s <= b * DIR_ROWS) - 1) as u32)
            .collect();
        Ok(ArrowText {
            starts,
            chunks,
            dir,
            rows,
        })
    }
}

/// Column `name` of every chunk as text (integers formatted), with each chunk's length: what
/// [`ArrowText::new`] reads.
pub(crate) fn text_chunks(
    chunks: &[crate::tables::Chunk],
    name: &str,
) -> Result<Vec<(usize, StringColumn)>, TableError> {
    chunks
        .iter()
        .map(|c| Ok((c.len(), c.string_like(name)?)))
        .collect()
}

/// A column of `n` empty texts (no `source` column).
pub(crate) struct Blank(pub(crate) usize);

impl TextColumn for Blank {
    fn len(&self) -> usize {
        self.0
    }

    fn text(&self, _: usize) -> &str {
        ""
    }
}

impl TextColumn for ArrowText<'_> {
    fn len(&self) -> usize {
        self.rows
    }

    fn text(&self, row: usize) -> &str {
        let mut c = self.dir[row / DIR_ROWS] as usize;
        while self.starts[c + 1] <= row {
            c += 1;
        }
        self.chunks[c].get(row - self.starts[c])
    }
}

#[pymethods]
impl NativeIdentityGraph {
    /// Resolve identifier rows of a table (columns `record_id`, `kind`, `value`, and optional
    /// `source` and `ts`, named by the arguments): a table of `oneid` (null when rejected) and
    /// `reject_reason` (null when accepted), one row per input row. The table is one batch,
    /// resolved without the GIL; as its records are linked, `progress(done, total)` hears of
    /// the rows done and Ctrl-C is honoured (the records linked before it stay in the graph).
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per keyword argument of the Python method"
    )]
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
            let read = |name: &str| text_chunks(&chunks, name);
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
            let record = ArrowText::new(&r, false)?;
            let kinds = ArrowText::new(&k, false)?;
            let values = ArrowText::new(&v, false)?;
            let sources: &dyn TextColumn = match &s {
                Some(s) => &ArrowText::new(s, true)?,
                None => &Blank(n),
            };
            let mut graph = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let cols = BatchColumns {
                record_id: &record,
                kind: &kinds,
                value: &values,
                source: sources,
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
