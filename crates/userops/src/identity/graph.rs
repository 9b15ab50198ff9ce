//! Linking one record into the graph: the one code path both the incremental and the batch
//! resolution take.

use super::{Conflict, ConflictReason, IdentityGraph, LinkOutcome, Record};
use crate::ids::{IdKind, Identifier, OneId};

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
        mut moved: Option<&mut Moved>,
        mut nodes_out: Option<&mut Vec<u32>>,
    ) -> LinkOutcome {
        let mut out = LinkOutcome::default();
        let rec = self.add_record(record_id, source, ts, None);
        let src = self.records[rec as usize].source;
        // (node, new?, links?) in record order, duplicates and junk values dropped.
        let mut nodes: Vec<(u32, bool, bool)> = Vec::with_capacity(ids.len());
        let mut big: Option<std::collections::HashSet<u32, super::FxBuild>> =
            (ids.len() > 32).then(Default::default);
        for id in ids {
            if let Some(why) = self.rules.blocked(id) {
                out.blocked.push(why);
                if let Some(v) = nodes_out.as_deref_mut() {
                    v.push(super::NONE);
                }
                continue;
            }
            let (n, new) = match self.index.get(id) {
                Some(&n) => (n, false),
                None => (self.add_node(id.clone(), src), true),
            };
            if let Some(v) = nodes_out.as_deref_mut() {
                v.push(n);
            }
            // A linear scan for the usual handful of identifiers; a set for huge records.
            let dup = match &mut big {
                Some(set) => !set.insert(n),
                None => nodes.iter().any(|(m, _, _)| *m == n),
            };
            if dup {
                continue;
            }
            let links = self.rules.links(id.kind()) && !self.junk[n as usize];
            nodes.push((n, new, links));
        }
        if nodes.is_empty() {
            return out;
        }
        // Identifiers that do not link stand alone: a new one founds its own person.
        for &(n, new, links) in &nodes {
            if new && !links {
                self.new_person(n);
            }
        }
        let mut linking: Vec<(u32, bool)> = nodes
            .iter()
            .filter(|(_, _, l)| *l)
            .map(|(n, new, _)| (*n, *new))
            .collect();
        // The anchor is the highest-priority identifier; the others follow in priority order
        // (stable: equal ranks keep record order).
        linking.sort_by_key(|(n, _)| self.rank_of(*n));
        let anchor = match linking.first() {
            Some(&(n, new)) => {
                if new {
                    // A new anchor joins the first known person (in priority order) that can
                    // take it, rather than founding a person that would at once be absorbed.
                    let single = self.node_counts(n);
                    let host = linking[1..]
                        .iter()
                        .filter(|(_, new)| !*new)
                        .map(|(x, _)| self.uf.find(*x))
                        .find(|&r| self.breach(&self.counts[r as usize], &single).is_none());
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
                return out;
            }
        };
        let mut ra = self.uf.find_mut(anchor);
        for &(x, new) in linking.iter().skip(1) {
            if new {
                let single = self.node_counts(x);
                match self.breach(&self.counts[ra as usize], &single) {
                    None => {
                        ra = self.attach(ra, x);
                        self.add_edge(anchor, x, rec);
                    }
                    Some((kind, cap)) => {
                        let other = self.new_person(x);
                        self.refuse(
                            rec,
                            x,
                            ra,
                            other,
                            ConflictReason::Cap { kind, cap },
                            &mut out,
                        );
                    }
                }
                continue;
            }
            let rx = self.uf.find_mut(x);
            if rx == ra {
                self.add_edge(anchor, x, rec);
                continue;
            }
            if let Some((kind, cap)) =
                self.breach(&self.counts[ra as usize], &self.counts[rx as usize])
            {
                let other = OneId(self.oneid_of[rx as usize]);
                self.refuse(
                    rec,
                    x,
                    ra,
                    other,
                    ConflictReason::Cap { kind, cap },
                    &mut out,
                );
                continue;
            }
            if let Some(m) = moved.as_deref_mut() {
                let (oa, ox) = (self.oneid_of[ra as usize], self.oneid_of[rx as usize]);
                let from = if oa < ox { rx } else { ra };
                let ids = self
                    .uf
                    .members(from)
                    .into_iter()
                    .map(|n| self.ids[n as usize].clone())
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
        self.count_junk(&linking, rec, oneid, out.absorbed.len(), &mut out);
        out
    }

    fn rank_of(&self, n: u32) -> usize {
        self.rules.rank(self.ids[n as usize].kind())
    }

    /// The first cap that a person with counts `a` would break by taking identifiers `b`.
    pub(crate) fn breach(
        &self,
        a: &[(IdKind, u32, u32)],
        b: &[(IdKind, u32, u32)],
    ) -> Option<(IdKind, u32)> {
        for (kind, scope, n) in b {
            let Some(cap) = self.rules.cap(kind) else {
                continue;
            };
            let have = a
                .iter()
                .find(|(k, s, _)| k == kind && s == scope)
                .map_or(0, |e| e.2);
            if have + n > cap {
                return Some((kind.clone(), cap));
            }
        }
        None
    }

    /// Put the new singleton node `x` into the person of root `ra`; returns the new root.
    fn attach(&mut self, ra: u32, x: u32) -> u32 {
        let single = self.node_counts(x);
        let oneid = self.oneid_of[ra as usize];
        let mut counts = std::mem::take(&mut self.counts[ra as usize]);
        for (kind, scope, n) in single {
            match counts
                .iter_mut()
                .find(|(k, s, _)| *k == kind && *s == scope)
            {
                Some(e) => e.2 += n,
                None => counts.push((kind, scope, n)),
            }
        }
        let root = self.uf.union_roots(ra, x);
        self.oneid_of[ra as usize] = 0;
        self.oneid_of[root as usize] = oneid;
        self.counts[root as usize] = counts;
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
            record: self.records[rec as usize].id.clone(),
            identifier: self.ids[x as usize].clone(),
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
        linking: &[(u32, bool)],
        rec: u32,
        kept: OneId,
        absorbed: usize,
        out: &mut LinkOutcome,
    ) {
        let Some(threshold) = self.rules.junk_threshold else {
            return;
        };
        let mut persons: Vec<OneId> = linking.iter().map(|(n, _)| self.person_of(*n)).collect();
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
                    record: self.records[rec as usize].id.clone(),
                    identifier: self.ids[n as usize].clone(),
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
