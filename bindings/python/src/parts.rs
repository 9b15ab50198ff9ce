//! Native entry points for callers that hold a table in parts (Spark executors, see
//! `userops.spark`): the per-row identifiers the batch path would link
//! ([`IdentityGraph::batch_identifiers`]), RFM scores against a scale computed over all the
//! parts ([`RfmScale`]) and churn risk bands ([`RiskBands`]). They only convert and delegate.
//!
//! [`IdentityGraph::batch_identifiers`]: userops::identity::IdentityGraph::batch_identifiers

use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder};
use arrow_array::{ArrayRef, Int64Array, StringArray};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use userops::identity::{BatchColumns, RowIdentifier};
use userops::models::{RfmScale, RiskBands};
use userops::Error;

use crate::columns::{self, run, Fail};
use crate::identity::{text_chunks, ArrowText, Blank};
use crate::tables::{table_out, Table};
use crate::NativeIdentityGraph;

#[pymethods]
impl NativeIdentityGraph {
    /// What resolving the identifier rows of `table` would make of each row under this
    /// graph's rules, without linking: `in_record` (false for an empty record id or an unknown
    /// kind) and `identifier` (`kind:value` normalized, null for a row that links nothing).
    #[pyo3(signature = (table, record_id="record_id", kind="kind", value="value"))]
    fn identifier_keys(
        &self,
        py: Python<'_>,
        table: PyTable,
        record_id: &str,
        kind: &str,
        value: &str,
    ) -> PyResult<PyTable> {
        let t = Table::from_py(table);
        let batch = run(py, || {
            t.require(&[record_id, kind, value])?;
            let chunks = t.chunks(usize::MAX);
            let read = |name: &str| text_chunks(&chunks, name);
            let (r, k, v) = (read(record_id)?, read(kind)?, read(value)?);
            let (record, kinds, values) = (
                ArrowText::new(&r, false)?,
                ArrowText::new(&k, false)?,
                ArrowText::new(&v, false)?,
            );
            let n = t.num_rows();
            let graph = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let rows = graph.batch_identifiers(&BatchColumns {
                record_id: &record,
                kind: &kinds,
                value: &values,
                source: &Blank(n),
                ts: &vec![0; n],
            })?;
            let mut inside = BooleanBuilder::with_capacity(n);
            let mut ids = StringBuilder::with_capacity(n, 24 * n);
            for row in &rows {
                inside.append_value(!matches!(row, RowIdentifier::Outside));
                match row {
                    RowIdentifier::Links(id) => ids.append_value(id.to_string()),
                    _ => ids.append_null(),
                }
            }
            Ok(columns::batch(vec![
                ("in_record".into(), Arc::new(inside.finish()) as ArrayRef),
                ("identifier".into(), Arc::new(ids.finish())),
            ])?)
        })?;
        table_out(batch)
    }
}

/// RFM scores and segments of the customers of `table` (columns `recency`, `frequency`,
/// `monetary`) against `scale_json` (`{"cuts": [[t2..t5] x 3], "centres": [r, f, m]}`, see
/// `userops::models::RfmScale`): a table of `r_score`, `f_score`, `m_score`, `segment`.
#[pyfunction]
#[pyo3(signature = (table, scale_json, recency="recency", frequency="frequency", monetary="monetary"))]
fn rfm_score(
    py: Python<'_>,
    table: PyTable,
    scale_json: &str,
    recency: &str,
    frequency: &str,
    monetary: &str,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let batch = run(py, || {
        let scale: RfmScale = serde_json::from_str(scale_json)
            .map_err(|e| Fail::Core(Error::invalid_argument("scale", e.to_string())))?;
        let (r, f, m) = (
            columns::floats(&t, recency)?,
            columns::floats(&t, frequency)?,
            columns::floats(&t, monetary)?,
        );
        let n = r.len();
        let (mut rs, mut fs, mut ms) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let mut segments = Vec::with_capacity(n);
        for k in 0..n {
            let (a, b, c, s) = scale.score(r[k], f[k], m[k]);
            rs.push(i64::from(a));
            fs.push(i64::from(b));
            ms.push(i64::from(c));
            segments.push(Some(s.name()));
        }
        Ok(columns::batch(vec![
            ("r_score".into(), Arc::new(Int64Array::from(rs)) as ArrayRef),
            ("f_score".into(), Arc::new(Int64Array::from(fs))),
            ("m_score".into(), Arc::new(Int64Array::from(ms))),
            (
                "segment".into(),
                Arc::new(segments.into_iter().collect::<StringArray>()),
            ),
        ])?)
    })?;
    table_out(batch)
}

/// Churn risk bands of P(alive) (column `p_alive`): `risk` of the churn probability
/// `1 − p_alive` under [`RiskBands`] (`low` below `low_below`, `high` from `high_from`).
#[pyfunction]
#[pyo3(signature = (table, low_below, high_from, p_alive="p_alive"))]
fn churn_bands(
    py: Python<'_>,
    table: PyTable,
    low_below: f64,
    high_from: f64,
    p_alive: &str,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let batch = run(py, || {
        let bands = RiskBands::new(low_below, high_from).map_err(|e| Fail::Core(e.into()))?;
        let p = columns::floats(&t, p_alive)?;
        let risk: StringArray = p
            .iter()
            .map(|&p| Some(bands.band(1.0 - p).name()))
            .collect();
        Ok(columns::batch(vec![(
            "risk".into(),
            Arc::new(risk) as ArrayRef,
        )])?)
    })?;
    table_out(batch)
}

/// Register the module-level functions.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rfm_score, m)?)?;
    m.add_function(wrap_pyfunction!(churn_bands, m)?)?;
    Ok(())
}
