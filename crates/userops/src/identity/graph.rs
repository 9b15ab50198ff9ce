//! Linking one record into the graph: the one code path both the incremental and the batch
//! resolution take.

use super::{
    add_counts, hash_ident, Cap, Conflict, ConflictReason, IdentityGraph, LinkOutcome, Record,
    Scratch, NONE,
};
use crate::ids::{IdKind, Identifier, OneId};

/// Nodes already in a huge record.
pub(crate) type Seen = std::collections::HashSet<u32, rustc_hash::FxBuildHasher>;

/// Identifiers that moved from an absorbed person to the survivor during one link.
pub(crate) type Moved = Vec<(OneId, OneId, Vec<Identifier>)>;

impl IdentityGraph {
    /// Link the identifiers of one record: each joins the person of the record's anchor (its
    /// highest-priority identifier) unless a rule refuses it.
    ///
    /// ```
    /// use userops::identity::{IdentityGraph, Record};
    /// use userops::{Identifier, IdKind};
    /// let mut g = IdentityGraph::default();
    /// let rec = |id: &str, ids: Vec<Identifier>| Record { id: id.into(), source: "app".into(), ts: 0, ids };
    /// let phone = Identifier::new(IdKind::Phone, "13800138000").unwrap();
    /// let dev = Identifier::new(IdKind::DeviceId, "d1").unwrap();
    /// let out = g.link(&rec("r1", vec![phone.clone(), dev.clone()]));
    /// assert!(out.created);
    /// assert_eq!(g.resolve(&dev), out.oneid);
    /// ```
    pub fn link(&mut self, record: &Record) -> LinkOutcome {
        self.link_parts(
            &record.id,
            &record.source,
            record.ts,
            &record.ids,
            None,
            None,
        )
    }

    /// [`IdentityGraph::link`] over borrowed parts; `moved` collects, per merge, the identifiers
    /// the absorbed person brought (for merge reports); `nodes_out` receives the node of each
    /// identifier (`NONE` when blocked), for the batch path's per-row answer.
    pub(crate) fn link_parts(
        &mut self,
        record_id: &str,
        source: &str,
        ts: i64,
        ids: &[Identifier],
        moved: Option<&mut Moved>,
        mut nodes_out: Option<&mut Vec<u32>>,
    ) -> LinkOutcome {
        let mut out = LinkOutcome::default();
        let rec = self.add_record(record_id, source, ts, None);
        let src = self.records.source(rec);
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.nodes.clear();
        let mut big: Option<Seen> = (ids.len() > 32).then(Default::default);
        for id in ids {
            let k = self.kinds.intern(id.kind(), &self.rules);
            if self.kinds.props(k).blockable {
                if let Some(why) = self.rules.blocked(id) {
                    out.blocked.push(why);
                    if let Some(v) = nodes_out.as_deref_mut() {
                        v.push(NONE);
                    }
                    continue;
                }
            }
            let h = hash_ident(k, id.value());
            let (n, new) = match self.nodes.find(k, id.value(), h) {
                Some(n) => (n, false),
                None => (self.add_node(k, id.value(), h, src), true),
            };
            if let Some(v) = nodes_out.as_deref_mut() {
                v.push(n);
            }
            self.push_node(&mut scratch.nodes, &mut big, n, new);
        }
        self.link_nodes(rec, &mut scratch, moved, &mut out);
        self.scratch = scratch;
        out
    }

    /// Add node `n` of the record being linked to `nodes`, unless already there.
    pub(crate) fn push_node(
        &self,
        nodes: &mut Vec<(u32, bool, bool)>,
        big: &mut Option<Seen>,
        n: u32,
        new: bool,
    ) {
        // A linear scan for the usual handful of identifiers; a set for huge records.
        let dup = match big {
            Some(set) => !set.insert(n),
            None => nodes.iter().any(|(m, _, _)| *m == n),
        };
        if !dup {
            let links = self.kinds.props(self.nodes.kind_ix(n)).links && !self.junk[n as usize];
            nodes.push((n, new, links));
        }
    }

    /// Link the record `rec` whose distinct nodes are in `scratch.nodes` as
    /// `(node, new?, links?)`, in record order.
    pub(crate) fn link_nodes(
        &mut self,
        rec: u32,
        scratch: &mut Scratch,
        mut moved: Option<&mut Moved>,
        out: &mut LinkOutcome,
    ) {
        let nodes = &scratch.nodes;
        if nodes.is_empty() {
            return;
        }
        // Identifiers that do not link stand alone: a new one founds its own person.
        for &(n, new, links) in nodes {
            if new && !links {
                self.new_person(n);
            }
        }
        let linking = &mut scratch.linking;
        linking.clear();
        linking.extend(
            nodes
                .iter()
                .filter(|(_, _, l)| *l)
                .map(|(n, new, _)| (*n, *new)),
        );
        // The anchor is the highest-priority identifier; the others follow in priority order
        // (stable: equal ranks keep record order).
        match linking.len() {
            0 | 1 => {}
            // The usual record: two identifiers.
            2 => {
                if self.rank_of(linking[1].0) < self.rank_of(linking[0].0) {
                    linking.swap(0, 1);
                }
            }
            _ => linking.sort_by_key(|(n, _)| self.rank_of(*n)),
        }
        let anchor = match linking.first() {
            Some(&(n, new)) => {
                if new {
                    // A new anchor joins the first known person (in priority order) that can
                    // take it, rather than founding a person that would at once be absorbed.
                    let single = self.node_cap(n);
                    let host = linking[1..]
                        .iter()
                        .filter(|(_, new)| !*new)
                        .map(|(x, _)| self.uf.find(*x))
                        .find(|&r| self.breach(self.counts_of(r), single.as_slice()).is_none());
                    match host {
                        Some(r) => {
                            self.attach(r, n);
                        }
                        None => {
                            self.new_person(n);
                            out.created = true;
                        }
                    }
                }
                n
            }
            None => {
                let n = nodes
                    .iter()
                    .map(|(n, _, _)| *n)
                    .min_by_key(|n| self.rank_of(*n))
                    .expect("nodes is not empty");
                out.created = nodes.iter().any(|(m, new, _)| *m == n && *new);
                out.oneid = Some(self.person_of(n));
                return;
            }
        };
        let mut ra = self.uf.find_mut(anchor);
        for &(x, new) in linking.iter().skip(1) {
            if new {
                let single = self.node_cap(x);
                match self.breach(self.counts_of(ra), single.as_slice()) {
                    None => {
                        ra = self.attach(ra, x);
                        self.add_edge(anchor, x, rec);
                    }
                    Some((kind, cap)) => {
                        let other = self.new_person(x);
                        self.refuse(rec, x, ra, other, ConflictReason::Cap { kind, cap }, out);
                    }
                }
                continue;
            }
            let rx = self.uf.find_mut(x);
            if rx == ra {
                self.add_edge(anchor, x, rec);
                continue;
            }
            if let Some((kind, cap)) = self.breach(self.counts_of(ra), self.counts_of(rx)) {
                let other = OneId(self.oneid_of[rx as usize]);
                self.refuse(rec, x, ra, other, ConflictReason::Cap { kind, cap }, out);
                continue;
            }
            if let Some(m) = moved.as_deref_mut() {
                let (oa, ox) = (self.oneid_of[ra as usize], self.oneid_of[rx as usize]);
                let from = if oa < ox { rx } else { ra };
                let ids = self
                    .uf
                    .members(from)
                    .into_iter()
                    .map(|n| self.ident(n))
                    .collect();
                m.push((OneId(oa.min(ox)), OneId(oa.max(ox)), ids));
            }
            let (root, _, absorbed) = self.join(ra, rx, rec);
            ra = root;
            out.absorbed.push(absorbed);
            self.add_edge(anchor, x, rec);
        }
        let oneid = OneId(self.oneid_of[ra as usize]);
        out.oneid = Some(oneid);
        let absorbed = out.absorbed.len();
        self.count_junk(scratch, rec, oneid, absorbed, out);
    }

    fn rank_of(&self, n: u32) -> usize {
        self.kinds.props(self.nodes.kind_ix(n)).rank
    }

    /// The first cap that a person with counts `a` would break by taking identifiers `b`.
    pub(crate) fn breach(&self, a: &[Cap], b: &[Cap]) -> Option<(IdKind, u32)> {
        for c in b {
            let Some(cap) = self.kinds.props(c.kind).cap else {
                continue;
            };
            let have = a
                .iter()
                .find(|e| e.kind == c.kind && e.scope == c.scope)
                .map_or(0, |e| e.n);
            if have.saturating_add(c.n) > cap {
                return Some((self.kinds.kind(c.kind).clone(), cap));
            }
        }
        None
    }

    /// Put the new singleton node `x` into the person of root `ra`; returns the new root.
    fn attach(&mut self, ra: u32, x: u32) -> u32 {
        let single = self.node_cap(x);
        let oneid = self.oneid_of[ra as usize];
        add_counts(&mut self.counts[oneid as usize], single.as_slice());
        let root = self.uf.union_roots(ra, x);
        self.oneid_of[ra as usize] = 0;
        self.oneid_of[root as usize] = oneid;
        self.root_of[oneid as usize] = root;
        root
    }

    fn refuse(
        &mut self,
        rec: u32,
        x: u32,
        ra: u32,
        other: OneId,
        reason: ConflictReason,
        out: &mut LinkOutcome,
    ) {
        let c = Conflict {
            record: self.records.id(rec).to_owned(),
            identifier: self.ident(x),
            kept: OneId(self.oneid_of[ra as usize]),
            other,
            reason,
        };
        self.conflicts.push(c.clone());
        out.conflicts.push(c);
    }

    /// Each linking identifier has now appeared with the record's other persons (those that
    /// stayed apart plus those it absorbed); past the threshold it is junk and stops linking.
    fn count_junk(
        &mut self,
        scratch: &mut Scratch,
        rec: u32,
        kept: OneId,
        absorbed: usize,
        out: &mut LinkOutcome,
    ) {
        let Some(threshold) = self.rules.junk_threshold else {
            return;
        };
        let linking = &scratch.linking;
        let persons = &mut scratch.persons;
        persons.clear();
        persons.extend(linking.iter().map(|(n, _)| self.person_of(*n).0));
        persons.sort_unstable();
        persons.dedup();
        let apart = persons.len().saturating_sub(1);
        let add = u32::try_from(apart + absorbed).unwrap_or(u32::MAX);
        if add == 0 {
            return;
        }
        for &(n, _) in linking {
            let s = self.seen[n as usize].saturating_add(add);
            self.seen[n as usize] = s;
            if s > threshold && !self.junk[n as usize] {
                self.junk[n as usize] = true;
                let c = Conflict {
                    record: self.records.id(rec).to_owned(),
                    identifier: self.ident(n),
                    kept,
                    other: self.person_of(n),
                    reason: ConflictReason::Junk { seen: s, threshold },
                };
                self.conflicts.push(c.clone());
                out.conflicts.push(c);
            }
        }
    }
}
