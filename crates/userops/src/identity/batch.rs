//! The batch path: identifier rows in columns (the shape of an Arrow table) to one OneID per row.

use serde::{Deserialize, Serialize};

use super::{FxMap, IdentityGraph, NONE};
use crate::error::Error;
use crate::ids::{IdKind, Identifier, OneId};

/// Identifier rows as columns of equal length: row `i` says "record `record_id[i]` (from
/// `source[i]`, at `ts[i]` ms since the epoch) holds identifier `kind[i]` = `value[i]`".
#[derive(Debug, Clone, Copy)]
pub struct BatchColumns<'a, S: AsRef<str>> {
    /// Record ids: rows with the same id are one record.
    pub record_id: &'a [S],
    /// Identifier kinds (`phone`, `email`, ...).
    pub kind: &'a [S],
    /// Raw identifier values (normalized here).
    pub value: &'a [S],
    /// Sources.
    pub source: &'a [S],
    /// Times in milliseconds since the Unix epoch.
    pub ts: &'a [i64],
}

/// A row that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedRow {
    /// The row number (0-based).
    pub row: usize,
    /// Why it was rejected.
    pub reason: String,
}

/// The answer of [`IdentityGraph::resolve_batch`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchResult {
    /// Per row: the OneID its identifier belongs to after the whole batch; `None` for a
    /// rejected row.
    pub oneids: Vec<Option<OneId>>,
    /// Rejected rows, in row order.
    pub rejected: Vec<RejectedRow>,
    /// Links refused by the rules during the batch.
    pub conflicts: usize,
}

impl IdentityGraph {
    /// Resolve a batch of identifier rows. Rows are grouped into records by record id; records
    /// are linked in the order of their first row, each with the source and time of that row —
    /// exactly as if [`IdentityGraph::link`] had been called record by record. Bad rows (empty
    /// or invalid values, unknown kinds, blocklisted values, empty record ids) are rejected with
    /// their row number and reason; the rest are processed.
    ///
    /// Errors (changing nothing) only when the columns differ in length.
    ///
    /// ```
    /// use userops::identity::{BatchColumns, IdentityGraph};
    /// let mut g = IdentityGraph::default();
    /// let out = g.resolve_batch(&BatchColumns {
    ///     record_id: &["r1", "r1", "r2", "r2"],
    ///     kind: &["phone", "device_id", "email", "device_id"],
    ///     value: &["13800138000", "d1", "a@x.com", "d1"],
    ///     source: &["app"; 4],
    ///     ts: &[0; 4],
    /// }).unwrap();
    /// assert!(out.rejected.is_empty());
    /// assert!(out.oneids.iter().all(|o| *o == out.oneids[0]));
    /// ```
    pub fn resolve_batch<S: AsRef<str>>(
        &mut self,
        cols: &BatchColumns<'_, S>,
    ) -> Result<BatchResult, Error> {
        let n = cols.record_id.len();
        for (name, len) in [
            ("kind", cols.kind.len()),
            ("value", cols.value.len()),
            ("source", cols.source.len()),
            ("ts", cols.ts.len()),
        ] {
            if len != n {
                return Err(Error::invalid_argument(
                    name,
                    format!("column has {len} rows, record_id has {n}"),
                ));
            }
        }
        let conflicts_before = self.conflicts.len();
        let mut rejected = Vec::new();
        // Kinds repeat on every row: parse each distinct name once.
        let mut kinds: FxMap<&str, Result<IdKind, String>> = FxMap::default();
        let mut row_kind: Vec<Option<IdKind>> = Vec::with_capacity(n);
        // Group rows by record in first-appearance order (a counting sort on record index).
        let mut rec_of: FxMap<&str, u32> = FxMap::default();
        let mut row_rec: Vec<u32> = Vec::with_capacity(n);
        let mut first_row: Vec<u32> = Vec::new();
        for i in 0..n {
            let rid = cols.record_id[i].as_ref();
            let k = cols.kind[i].as_ref();
            let kind = kinds
                .entry(k)
                .or_insert_with(|| {
                    k.parse::<IdKind>()
                        .map_err(|_| format!("unknown identifier kind {k:?}"))
                })
                .clone();
            if rid.trim().is_empty() {
                rejected.push(RejectedRow {
                    row: i,
                    reason: "empty record id".into(),
                });
                row_kind.push(None);
                row_rec.push(NONE);
                continue;
            }
            match kind {
                Ok(kind) => row_kind.push(Some(kind)),
                Err(reason) => {
                    rejected.push(RejectedRow { row: i, reason });
                    row_kind.push(None);
                    row_rec.push(NONE);
                    continue;
                }
            }
            let next = first_row.len() as u32;
            let r = *rec_of.entry(rid).or_insert(next);
            if r == next {
                first_row.push(i as u32);
            }
            row_rec.push(r);
        }
        drop(rec_of);
        let mut start = vec![0u32; first_row.len() + 1];
        for &r in &row_rec {
            if r != NONE {
                start[r as usize + 1] += 1;
            }
        }
        for r in 0..first_row.len() {
            start[r + 1] += start[r];
        }
        let mut fill = start.clone();
        let mut order = vec![0u32; start[first_row.len()] as usize];
        for (i, &r) in row_rec.iter().enumerate() {
            if r != NONE {
                order[fill[r as usize] as usize] = i as u32;
                fill[r as usize] += 1;
            }
        }
        drop(fill);
        let mut row_node = vec![NONE; n];
        let mut ids: Vec<Identifier> = Vec::new();
        let mut id_rows: Vec<u32> = Vec::new();
        let mut nodes: Vec<u32> = Vec::new();
        for (r, &first) in first_row.iter().enumerate() {
            ids.clear();
            id_rows.clear();
            for &i in &order[start[r] as usize..start[r + 1] as usize] {
                let iu = i as usize;
                let kind = row_kind[iu]
                    .take()
                    .expect("kind parsed for every grouped row");
                match Identifier::new(kind, cols.value[iu].as_ref()) {
                    Ok(id) => match self.rules.blocked(&id) {
                        Some(why) => rejected.push(RejectedRow {
                            row: iu,
                            reason: why,
                        }),
                        None => {
                            ids.push(id);
                            id_rows.push(i);
                        }
                    },
                    Err(e) => rejected.push(RejectedRow {
                        row: iu,
                        reason: e.to_string(),
                    }),
                }
            }
            if ids.is_empty() {
                continue;
            }
            let f = first as usize;
            nodes.clear();
            self.link_parts(
                cols.record_id[f].as_ref(),
                cols.source[f].as_ref(),
                cols.ts[f],
                &ids,
                None,
                Some(&mut nodes),
            );
            for (&row, &node) in id_rows.iter().zip(&nodes) {
                row_node[row as usize] = node;
            }
        }
        rejected.sort_by_key(|r| r.row);
        let oneids = row_node
            .iter()
            .map(|&node| (node != NONE).then(|| self.person_of(node)))
            .collect();
        Ok(BatchResult {
            oneids,
            rejected,
            conflicts: self.conflicts.len() - conflicts_before,
        })
    }
}
