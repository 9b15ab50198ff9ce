//! The batch path: identifier rows in columns (the shape of an Arrow table) to one OneID per row.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use super::dedupe::{by_bucket, first_seen, FirstSeen};
use super::graph::Seen;
use super::intern::{hash_value, with_kind, with_kind_wide};
use super::{person_of, FxMap, IdentityGraph, LinkOutcome, NONE};
use crate::error::Error;
use crate::ids::{normalize_into, IdKind, Identifier, OneId};
use crate::progress::{Interrupted, Meter, NoProgress, Progress, CHUNK};

/// A column of text cells read by row number: what [`BatchColumns`] is made of.
///
/// Slices, arrays and vectors of anything that is `AsRef<str>` are columns. Implement it over
/// your own storage (Arrow buffers, spans into a file you have mapped) to hand the batch path
/// text without first building a `&str` per cell: at 10M rows, four such vectors are 640 MB.
///
/// ```
/// use userops::identity::TextColumn;
/// /// Every cell of a CSV column, found by the start of its row and its field number.
/// struct Field<'a> { text: &'a str, rows: Vec<usize>, field: usize }
/// impl TextColumn for Field<'_> {
///     fn len(&self) -> usize { self.rows.len() }
///     fn text(&self, row: usize) -> &str {
///         let line = self.text[self.rows[row]..].lines().next().unwrap_or("");
///         line.split(',').nth(self.field).unwrap_or("")
///     }
/// }
/// let csv = "r1,phone\nr2,email\n";
/// let kinds = Field { text: csv, rows: vec![0, 9], field: 1 };
/// assert_eq!(kinds.text(1), "email");
/// assert_eq!(["a", "b"].text(0), "a");
/// ```
pub trait TextColumn: Sync {
    /// Rows in the column.
    fn len(&self) -> usize;
    /// The text of row `row`, for `row < len()`.
    fn text(&self, row: usize) -> &str;
    /// No rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<S: AsRef<str> + Sync> TextColumn for [S] {
    fn len(&self) -> usize {
        <[S]>::len(self)
    }
    fn text(&self, row: usize) -> &str {
        self[row].as_ref()
    }
}

impl<S: AsRef<str> + Sync, const N: usize> TextColumn for [S; N] {
    fn len(&self) -> usize {
        N
    }
    fn text(&self, row: usize) -> &str {
        self[row].as_ref()
    }
}

impl<S: AsRef<str> + Sync> TextColumn for Vec<S> {
    fn len(&self) -> usize {
        <[S]>::len(self)
    }
    fn text(&self, row: usize) -> &str {
        self[row].as_ref()
    }
}

/// Identifier rows as columns of equal length: row `i` says "record `record_id[i]` (from
/// `source[i]`, at `ts[i]` ms since the epoch) holds identifier `kind[i]` = `value[i]`".
/// Text columns are any [`TextColumn`]: `&vec`, `&["a", "b"]`, or your own.
#[derive(Clone, Copy)]
pub struct BatchColumns<'a> {
    /// Record ids: rows with the same id are one record.
    pub record_id: &'a dyn TextColumn,
    /// Identifier kinds (`phone`, `email`, ...).
    pub kind: &'a dyn TextColumn,
    /// Raw identifier values (normalized here).
    pub value: &'a dyn TextColumn,
    /// Each record's source (the platform or system it came from), kept as evidence.
    pub source: &'a dyn TextColumn,
    /// Times in milliseconds since the Unix epoch.
    pub ts: &'a [i64],
}

impl std::fmt::Debug for BatchColumns<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchColumns")
            .field("rows", &self.record_id.len())
            .finish_non_exhaustive()
    }
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
    ///
    /// # Errors
    ///
    /// `invalid_argument`, changing nothing, when a column's length differs from `record_id`'s
    /// (naming the column) or the batch has 2^32 - 1 rows or more. Bad rows are no error: they
    /// are in [`BatchResult::rejected`].
    pub fn resolve_batch(&mut self, cols: &BatchColumns<'_>) -> Result<BatchResult, Error> {
        match self.resolve_batch_with_progress(cols, &mut NoProgress)? {
            Some(out) => Ok(out),
            None => Err(Error::Internal("a batch without a hook was stopped".into())),
        }
    }

    /// [`IdentityGraph::resolve_batch`], telling `progress` how many rows are linked (of all
    /// rows) every 65,536 rows or so, and stopping when it says so. Reports start once the
    /// rows are parsed and numbered (the first pass, about a third of the time), and end with
    /// `(rows, rows)`.
    ///
    /// `Ok(None)` when the hook stopped the batch: the records linked before the stop stay
    /// linked, exactly as if [`IdentityGraph::link`] had been called for each of them, and the
    /// rest are not.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// use userops::identity::{BatchColumns, IdentityGraph};
    /// let cols = BatchColumns {
    ///     record_id: &["r1", "r2"],
    ///     kind: &["phone", "phone"],
    ///     value: &["13800138000", "13900139000"],
    ///     source: &["app"; 2],
    ///     ts: &[0; 2],
    /// };
    /// let mut seen = Vec::new();
    /// let mut hook = |done: u64, total: u64| {
    ///     seen.push((done, total));
    ///     ControlFlow::Continue(())
    /// };
    /// let mut g = IdentityGraph::default();
    /// let out = g.resolve_batch_with_progress(&cols, &mut hook).unwrap().expect("not stopped");
    /// assert_eq!(out.oneids.len(), 2);
    /// assert_eq!(seen.last(), Some(&(2, 2)));
    ///
    /// let mut stop = |_: u64, _: u64| ControlFlow::Break(());
    /// let mut h = IdentityGraph::default();
    /// assert_eq!(h.resolve_batch_with_progress(&cols, &mut stop).unwrap(), None);
    /// assert_eq!(h.person_count(), 0);
    /// ```
    ///
    /// # Errors
    ///
    /// As [`IdentityGraph::resolve_batch`]; a stop by the hook is `Ok(None)`, not an error.
    pub fn resolve_batch_with_progress(
        &mut self,
        cols: &BatchColumns<'_>,
        progress: &mut dyn Progress,
    ) -> Result<Option<BatchResult>, Error> {
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
        if u32::try_from(n).map_or(true, |n| n == NONE) {
            return Err(Error::invalid_argument(
                "record_id",
                format!("{n} rows: a batch holds fewer than 2^32 - 1 rows"),
            ));
        }
        let threads = if n >= PARALLEL_ROWS {
            std::thread::available_parallelism().map_or(1, |t| t.get().min(8))
        } else {
            1
        };
        let mut meter = Meter::new(progress, n as u64);
        Ok(self
            .resolve_batch_threads(cols, threads, &mut meter, CHUNK)
            .ok())
    }

    /// [`IdentityGraph::resolve_batch`] on `threads` threads (columns checked). Before the
    /// linking, two rounds of independent work over the rows, each on two threads when there
    /// are: (1) parsing kinds beside normalizing + hashing the values, in parts of the rows
    /// that whichever thread is free takes; (2) numbering the
    /// record ids beside numbering the identifiers, both in order of first appearance
    /// ([`first_seen`]). The linking that follows is sequential, in record order, so the answer
    /// never depends on the threads. `meter` hears of the rows linked every `every` rows.
    pub(crate) fn resolve_batch_threads(
        &mut self,
        cols: &BatchColumns<'_>,
        threads: usize,
        meter: &mut Meter<'_>,
        every: usize,
    ) -> Result<BatchResult, Interrupted> {
        let n = cols.record_id.len();
        // Normalizing costs about three times parsing the kinds: one thread parses the kinds
        // while the others normalize parts of the rows, and it takes parts too once done.
        let (kinds, norm) = if threads > 1 {
            let size = n.div_ceil(threads * NORM_PARTS_PER_THREAD).max(1);
            let parts = n.div_ceil(size);
            let next = AtomicUsize::new(0);
            let normalize = || {
                let mut done = Vec::new();
                loop {
                    let p = next.fetch_add(1, Ordering::Relaxed);
                    if p >= parts {
                        return done;
                    }
                    done.push(Normalized::run(cols, p * size..((p + 1) * size).min(n)));
                }
            };
            std::thread::scope(|s| {
                let handles: Vec<_> = (1..threads).map(|_| s.spawn(normalize)).collect();
                let kinds = RowKinds::run(cols);
                let mut norm = normalize();
                norm.extend(handles.into_iter().flat_map(join));
                norm.sort_unstable_by_key(|p| p.rows.start);
                (kinds, norm)
            })
        } else {
            (RowKinds::run(cols), vec![Normalized::run(cols, 0..n)])
        };
        let values = Values::new(cols, norm);
        let kind_ix: Vec<u16> = kinds
            .kinds
            .iter()
            .map(|k| self.kinds.intern(k, &self.rules))
            .collect();
        let records = || {
            first_seen(
                n,
                |i| kinds.rec_hash[i],
                |i| (kinds.row_kind[i] != OUT).then(|| (0, cols.record_id.text(i).as_bytes())),
            )
        };
        let kind_of = |i: usize| kind_ix[kinds.row_kind[i] as usize];
        let idents = || {
            first_seen(
                n,
                |i| {
                    if kinds.row_kind[i] == OUT {
                        0
                    } else {
                        with_kind_wide(kind_of(i), values.hash(i))
                    }
                },
                |i| {
                    if kinds.row_kind[i] == OUT {
                        return None;
                    }
                    values.get(i).map(|v| (kind_of(i), v.as_bytes()))
                },
            )
        };
        let (records, idents) = if threads > 1 {
            std::thread::scope(|s| {
                let h = s.spawn(idents);
                let r = records();
                (r, join(h))
            })
        } else {
            (records(), idents())
        };
        self.link_groups(
            &values, kinds, &kind_ix, records, idents, meter, every, threads,
        )
    }

    /// The sequential half of [`IdentityGraph::resolve_batch`]: link the records in order.
    /// A stop comes between two records, after the nodes made so far are indexed, so the
    /// graph is what linking those records one by one would have made.
    #[expect(
        clippy::too_many_arguments,
        reason = "the batch's prepared columns, row kinds and first-seen maps are built by the parallel half and handed over once"
    )]
    fn link_groups(
        &mut self,
        values: &Values<'_, '_>,
        kinds: RowKinds,
        kind_ix: &[u16],
        records: FirstSeen,
        idents: FirstSeen,
        meter: &mut Meter<'_>,
        every: usize,
        threads: usize,
    ) -> Result<BatchResult, Interrupted> {
        let cols = values.cols;
        let n = cols.record_id.len();
        let conflicts_before = self.conflicts.len();
        let RowKinds {
            mut rejected,
            kinds,
            row_kind,
            rec_hash,
        } = kinds;
        drop(rec_hash);
        let FirstSeen {
            ids: row_rec,
            firsts: first_row,
        } = records;
        // Records in the order of their first row, rows of a record in row order (a counting
        // sort on record index).
        let records = first_row.len();
        let (start, order) = by_bucket(records, || {
            row_rec
                .iter()
                .enumerate()
                .filter(|&(_, &r)| r != NONE)
                .map(|(i, &r)| (r as usize, i as u32))
        });
        drop(row_rec);
        self.reserve(idents.firsts.len(), records);
        let errors: FxMap<u32, &'static str> = values
            .norm
            .iter()
            .flat_map(|p| p.errors.iter().copied())
            .collect();
        // Per identifier of the batch: its node once a row of it has been linked. Identifiers
        // the graph knew before the batch are looked up once each; nodes made by the batch are
        // indexed at its end.
        let mut ident_node = vec![NONE; idents.firsts.len()];
        let known_before = self.nodes.len() > 0;
        let mut row_node = vec![NONE; n];
        let mut usable: Vec<(u32, u16, u32, &str)> = Vec::new();
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut out = LinkOutcome::default();
        let mut next_report = 0usize;
        let mut stopped = Ok(());
        for (r, &first) in first_row.iter().enumerate() {
            let linked = start[r] as usize;
            if linked >= next_report {
                next_report = linked + every.max(1);
                stopped = meter.at(linked as u64);
                if stopped.is_err() {
                    break;
                }
            }
            usable.clear();
            for &i in &order[start[r] as usize..start[r + 1] as usize] {
                let iu = i as usize;
                let k = kind_ix[row_kind[iu] as usize];
                let Some(value) = values.get(iu) else {
                    let kind = &kinds[row_kind[iu] as usize];
                    let raw = cols.value.text(iu);
                    let reason = errors.get(&i).copied().unwrap_or("invalid value");
                    rejected.push(RejectedRow {
                        row: iu,
                        reason: format!("invalid {kind} {raw:?}: {reason}"),
                    });
                    continue;
                };
                if self.kinds.props(k).blockable {
                    if let Some(why) = self.rules.blocked_parts(self.kinds.kind(k), value) {
                        rejected.push(RejectedRow {
                            row: iu,
                            reason: why,
                        });
                        continue;
                    }
                }
                usable.push((i, k, with_kind(k, values.hash(iu)), value));
            }
            if usable.is_empty() {
                continue;
            }
            let f = first as usize;
            let rec = self.add_record(
                cols.record_id.text(f),
                cols.source.text(f),
                cols.ts[f],
                None,
            );
            let src = self.records.source(rec);
            scratch.nodes.clear();
            let mut big: Option<Seen> = (usable.len() > 32).then(Default::default);
            for &(i, k, h, value) in &usable {
                let ident = idents.ids[i as usize] as usize;
                let (node, new) = match ident_node[ident] {
                    NONE => {
                        let found = if known_before {
                            self.nodes.find_indexed(k, value, h)
                        } else {
                            None
                        };
                        let made = found.is_none();
                        let node = found.unwrap_or_else(|| self.add_batch_node(k, value, h, src));
                        ident_node[ident] = node;
                        (node, made)
                    }
                    node => (node, false),
                };
                row_node[i as usize] = node;
                self.push_node(&mut scratch.nodes, &mut big, node, new);
            }
            self.link_nodes(rec, &mut scratch, None, &mut out);
            // The batch answers per row, not per record: drop the outcome's details.
            out.absorbed.clear();
            out.conflicts.clear();
        }
        // Stopped or not, the graph is left whole: the batch's nodes indexed, its scratch back.
        let oneids = self.index_and_answer(&row_node, threads, stopped.is_ok());
        self.scratch = scratch;
        stopped?;
        meter.finish()?;
        rejected.sort_by_key(|r| r.row);
        Ok(BatchResult {
            oneids,
            rejected,
            conflicts: self.conflicts.len() - conflicts_before,
        })
    }

    /// Index the batch's nodes and, when the batch `finished` (was not stopped), answer each row's person.
    /// Indexing touches only the identifier table and the per-row answer only the persons,
    /// so with a second thread they are made side by side.
    fn index_and_answer(
        &mut self,
        row_node: &[u32],
        threads: usize,
        finished: bool,
    ) -> Vec<Option<OneId>> {
        let (nodes, uf, oneid_of) = (&mut self.nodes, &self.uf, &self.oneid_of);
        let answer = || -> Vec<Option<OneId>> {
            row_node
                .iter()
                .map(|&node| (node != NONE).then(|| person_of(uf, oneid_of, node)))
                .collect()
        };
        if threads > 1 && finished {
            std::thread::scope(|s| {
                let h = s.spawn(answer);
                nodes.index_pending();
                join(h)
            })
        } else {
            nodes.index_pending();
            if finished {
                answer()
            } else {
                Vec::new()
            }
        }
    }
}

/// What the batch path makes of one row before any linking (see
/// [`IdentityGraph::batch_identifiers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowIdentifier {
    /// The row is in no record: its record id is empty or its kind unknown.
    Outside,
    /// The row is in its record but links nothing: its value is invalid or blocklisted.
    Rejected,
    /// The row would link this identifier (kind and normalized value) into its record.
    Links(Identifier),
}

impl IdentityGraph {
    /// The identifier each row of `cols` would bring to its record under this graph's rules,
    /// without linking anything: the parsing, normalization and blocklist checks of
    /// [`IdentityGraph::resolve_batch`], row by row. Two rows that would share a node of the
    /// graph get equal identifiers, so a caller can cut a batch into independent parts (the
    /// connected components of records and identifiers) and resolve each part alone.
    ///
    /// ```
    /// use userops::identity::{BatchColumns, IdentityGraph, RowIdentifier};
    /// use userops::{IdKind, Identifier};
    /// let g = IdentityGraph::default();
    /// let rows = g.batch_identifiers(&BatchColumns {
    ///     record_id: &["r1", "r1", "", "r2"],
    ///     kind: &["phone", "email", "phone", "device_id"],
    ///     value: &["+86 138 0013 8000", "not-an-email", "13800138000", "00000000-0000-0000-0000-000000000000"],
    ///     source: &[""; 4],
    ///     ts: &[0; 4],
    /// }).unwrap();
    /// let phone = Identifier::new(IdKind::Phone, "13800138000").unwrap();
    /// assert_eq!(rows[0], RowIdentifier::Links(phone));
    /// assert_eq!(rows[1], RowIdentifier::Rejected);
    /// assert_eq!(rows[2], RowIdentifier::Outside);
    /// assert_eq!(rows[3], RowIdentifier::Rejected, "the all-zero advertising id is blocklisted");
    /// ```
    ///
    /// # Errors
    ///
    /// `invalid_argument` when the `kind` or `value` column's length differs from `record_id`'s.
    pub fn batch_identifiers(&self, cols: &BatchColumns<'_>) -> Result<Vec<RowIdentifier>, Error> {
        let n = cols.record_id.len();
        for (name, len) in [("kind", cols.kind.len()), ("value", cols.value.len())] {
            if len != n {
                return Err(Error::invalid_argument(
                    name,
                    format!("column has {len} rows, record_id has {n}"),
                ));
            }
        }
        let kinds = RowKinds::run(cols);
        let values = Values::new(cols, vec![Normalized::run(cols, 0..n)]);
        Ok((0..n)
            .map(|i| {
                if kinds.row_kind[i] == OUT {
                    return RowIdentifier::Outside;
                }
                let kind = &kinds.kinds[kinds.row_kind[i] as usize];
                match values.get(i) {
                    Some(v) if self.rules.blocked_parts(kind, v).is_none() => RowIdentifier::Links(
                        Identifier::from_normalized(kind.clone(), v.to_owned()),
                    ),
                    _ => RowIdentifier::Rejected,
                }
            })
            .collect())
    }
}

/// The answer of a scoped thread, its panic passed on.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// Below this many rows a batch is not worth a thread.
const PARALLEL_ROWS: usize = 50_000;
/// Parts of the rows normalized per thread: enough that the thread which also parses the
/// kinds catches up on the others (a part of 10M rows on 2 threads is 312,500 rows).
const NORM_PARTS_PER_THREAD: usize = 16;
/// Span marks: the value is the raw one trimmed (the common case: nothing stored), or invalid.
const RAW: u64 = u64::MAX;
const ERR: u64 = u64::MAX - 1;

/// `RowKinds::row_kind` of a row outside every record (empty record id or unknown kind).
const OUT: u16 = u16::MAX;

/// Kinds parsed, and the rows that cannot be used whatever their value.
struct RowKinds {
    rejected: Vec<RejectedRow>,
    /// Distinct kinds of the batch.
    kinds: Vec<IdKind>,
    /// Per row: index into `kinds`, or [`OUT`].
    row_kind: Vec<u16>,
    /// Per row: hash of the record id (0 for a row that is out). Numbering the records asks
    /// for it twice per row; reading the text and hashing it again would cost more than
    /// keeping it.
    rec_hash: Vec<u64>,
}

impl RowKinds {
    fn run(cols: &BatchColumns<'_>) -> RowKinds {
        let n = cols.record_id.len();
        let mut g = RowKinds {
            rejected: Vec::new(),
            kinds: Vec::new(),
            row_kind: Vec::with_capacity(n),
            rec_hash: Vec::with_capacity(n),
        };
        // Kinds repeat on every row: parse each distinct name once.
        let mut kind_of: FxMap<&str, Result<u16, String>> = FxMap::default();
        for i in 0..n {
            let k = cols.kind.text(i);
            let kind = match kind_of.get(k) {
                Some(r) => r.clone(),
                None => {
                    let r = match k.parse::<IdKind>() {
                        // One short of u16::MAX: that one marks rows that are out.
                        Ok(kind) => match u16::try_from(g.kinds.len()).ok().filter(|&i| i < OUT) {
                            Some(ix) => {
                                g.kinds.push(kind);
                                Ok(ix)
                            }
                            None => Err("too many distinct identifier kinds".to_owned()),
                        },
                        Err(_) => Err(format!("unknown identifier kind {k:?}")),
                    };
                    kind_of.insert(k, r.clone());
                    r
                }
            };
            let record = cols.record_id.text(i);
            if record.trim().is_empty() {
                g.rejected.push(RejectedRow {
                    row: i,
                    reason: "empty record id".into(),
                });
                g.row_kind.push(OUT);
                g.rec_hash.push(0);
                continue;
            }
            match kind {
                Ok(kind) => {
                    g.row_kind.push(kind);
                    g.rec_hash.push(hash_value(record));
                }
                Err(reason) => {
                    g.rejected.push(RejectedRow { row: i, reason });
                    g.row_kind.push(OUT);
                    g.rec_hash.push(0);
                }
            }
        }
        g
    }
}

/// The normalized values of a batch, in the parts the threads made (in row order, each of
/// `chunk` rows but the last).
struct Values<'c, 'a> {
    cols: &'c BatchColumns<'a>,
    norm: Vec<Normalized>,
    /// Rows per part (the last may have fewer).
    chunk: usize,
}

impl<'c, 'a> Values<'c, 'a> {
    fn new(cols: &'c BatchColumns<'a>, norm: Vec<Normalized>) -> Self {
        let chunk = norm.first().map_or(1, |p| p.rows.len().max(1));
        Values { cols, norm, chunk }
    }

    fn part(&self, i: usize) -> (&Normalized, usize) {
        let p = &self.norm[i / self.chunk];
        (p, i - p.rows.start)
    }

    /// Row `i`'s normalized value, `None` if invalid.
    fn get(&self, i: usize) -> Option<&str> {
        let (p, j) = self.part(i);
        match p.span[j] {
            ERR => None,
            RAW => Some(self.cols.value.text(i).trim()),
            s => {
                let start = (s >> 16) as usize;
                Some(&p.arena[start..start + (s & 0xffff) as usize])
            }
        }
    }

    /// Hash of row `i`'s normalized value (kind not included).
    fn hash(&self, i: usize) -> u64 {
        let (p, j) = self.part(i);
        p.hash[j]
    }
}

/// Normalized values and their hashes for a range of rows.
struct Normalized {
    rows: std::ops::Range<usize>,
    /// Per row: `start << 16 | len` in `arena`, or [`RAW`] / [`ERR`].
    span: Vec<u64>,
    /// Per row: hash of the normalized value (kind not included yet).
    hash: Vec<u64>,
    arena: String,
    /// Rows whose value is invalid, and why.
    errors: Vec<(u32, &'static str)>,
}

impl Normalized {
    fn run(cols: &BatchColumns<'_>, rows: std::ops::Range<usize>) -> Normalized {
        let mut p = Normalized {
            span: Vec::with_capacity(rows.len()),
            hash: Vec::with_capacity(rows.len()),
            rows: rows.clone(),
            arena: String::new(),
            errors: Vec::new(),
        };
        let mut buf = String::new();
        // Normalization depends on the kind only through phone / email / anything else; rows
        // whose kind is unknown are rejected by the grouping pass whatever this says.
        let (phone, email) = (IdKind::Phone, IdKind::Email);
        let other = IdKind::DeviceId;
        for i in rows {
            let kind = match cols.kind.text(i) {
                "phone" => &phone,
                "email" => &email,
                _ => &other,
            };
            let raw = cols.value.text(i);
            match normalize_into(kind, raw, &mut buf) {
                Ok(()) => {
                    p.hash.push(hash_value(&buf));
                    if buf == raw.trim() {
                        p.span.push(RAW);
                    } else {
                        let start = p.arena.len() as u64;
                        p.arena.push_str(&buf);
                        p.span.push(start << 16 | buf.len() as u64);
                    }
                }
                Err(reason) => {
                    p.hash.push(0);
                    p.span.push(ERR);
                    p.errors.push((i as u32, reason));
                }
            }
        }
        p
    }
}
