//! Merges: the history of every merge, manual merges by an operator, the audit log, and the
//! [`MergeReport`] the engine hands to the modules that own member state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::IdentityGraph;
use crate::error::Error;
use crate::ids::{Identifier, OneId};

/// What caused a merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MergeCause {
    /// A record linked identifiers of two persons.
    Record,
    /// An operator merged two persons by hand.
    Manual,
}

/// One merge, as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeRecord {
    /// The person that kept its OneID (the older one).
    pub survivor: OneId,
    /// The person absorbed into it.
    pub absorbed: OneId,
    /// What linked them: a shared identifier, or an operator.
    pub cause: MergeCause,
    /// The record id that linked them (for a manual merge, its evidence id `manual:N`).
    pub record: String,
}

/// One operator action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// `"merge"`, `"split"` or `"set_identity_rules"`.
    pub action: String,
    /// Who did it (the operator's free text).
    pub actor: String,
    /// Why (free text from the operator).
    pub reason: String,
    /// What was done (persons, evidence), as JSON.
    pub detail: serde_json::Value,
}

/// Everything a merge moved. The identity graph fills the identifiers and evidence; the engine's
/// merge flow then has each module holding per-person state add its section under `modules`
/// (one entry per absorbed person).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeReport {
    /// The person that remains.
    pub survivor: OneId,
    /// The persons merged into it.
    pub absorbed: Vec<OneId>,
    /// Identifiers that moved to the survivor.
    pub identifiers_moved: Vec<Identifier>,
    /// The evidence (record ids) that joined them.
    pub evidence: Vec<String>,
    /// Per module: what its state merge did (filled by the engine's merge flow).
    pub modules: BTreeMap<String, serde_json::Value>,
}

fn required(field: &str, v: &str) -> Result<(), Error> {
    if v.trim().is_empty() {
        Err(Error::invalid_argument(
            field,
            "required (operator actions are audited)",
        ))
    } else {
        Ok(())
    }
}

impl IdentityGraph {
    /// Every merge that involved `oneid` (as survivor or absorbed), or all merges for `None`.
    pub fn merge_history(&self, oneid: Option<OneId>) -> Vec<MergeRecord> {
        self.history
            .iter()
            .filter(|m| oneid.is_none_or(|o| m.survivor == o.0 || m.absorbed == o.0))
            .map(|m| self.merge_record(m))
            .collect()
    }

    pub(crate) fn merge_record(&self, m: &super::Merge) -> MergeRecord {
        MergeRecord {
            survivor: OneId(m.survivor),
            absorbed: OneId(m.absorbed),
            cause: m.cause,
            record: self.records.id(m.record).to_owned(),
        }
    }

    /// Merge two persons by hand. The link is evidence like any other (id `manual:N`), so a
    /// later [`split`](IdentityGraph::split) can undo it. Caps still hold: a merge that would
    /// break one is refused with an error naming the kind.
    ///
    /// # Errors
    ///
    /// Nothing changes on an error. `invalid_argument`: a blank `actor` or `reason`, two OneIDs
    /// already of one person, or a merge that would break a cap (at `b`, naming the kind).
    /// `not_found`: a OneID never handed out.
    pub fn merge(
        &mut self,
        a: OneId,
        b: OneId,
        actor: &str,
        reason: &str,
        ts: i64,
    ) -> Result<MergeReport, Error> {
        required("actor", actor)?;
        required("reason", reason)?;
        let not_found = |o: OneId| Error::NotFound {
            what: "oneid",
            id: o.to_string(),
        };
        let ca = self.canonical(a).ok_or_else(|| not_found(a))?;
        let cb = self.canonical(b).ok_or_else(|| not_found(b))?;
        if ca == cb {
            return Err(Error::invalid_argument(
                "b",
                format!("{a} and {b} are already one person ({ca})"),
            ));
        }
        let ra = self.root(ca).ok_or_else(|| not_found(a))?;
        let rb = self.root(cb).ok_or_else(|| not_found(b))?;
        if let Some((kind, cap)) = self.breach(self.counts_of(ra), self.counts_of(rb)) {
            return Err(Error::invalid_argument(
                "b",
                format!("merging {ca} and {cb} would give one person more than {cap} {kind}"),
            ));
        }
        // From here on nothing fails.
        let evidence = format!("manual:{}", self.audit.len() + 1);
        let rec = self.add_record(
            &evidence,
            "operator",
            ts,
            Some((actor.to_owned(), reason.to_owned())),
        );
        let from = if ca < cb { rb } else { ra };
        let identifiers_moved = self
            .uf
            .members(from)
            .into_iter()
            .map(|n| self.ident(n))
            .collect();
        // The evidence joins the persons' founding nodes, not their union-find roots: roots
        // are not part of the serialized graph (a restored graph may pick others), and the
        // edge must be the same however the graph was rebuilt for replay to give the same bytes.
        let (na, nb) = (self.origin[ca.0 as usize], self.origin[cb.0 as usize]);
        let (_, survivor, absorbed) = self.join(ra, rb, rec);
        self.add_edge(na, nb, rec);
        let report = MergeReport {
            survivor,
            absorbed: vec![absorbed],
            identifiers_moved,
            evidence: vec![evidence.clone()],
            modules: BTreeMap::new(),
        };
        self.push_audit(
            "merge",
            actor,
            reason,
            serde_json::json!({"survivor": survivor, "absorbed": absorbed, "evidence": evidence}),
        );
        Ok(report)
    }

    pub(crate) fn push_audit(
        &mut self,
        action: &str,
        actor: &str,
        reason: &str,
        detail: serde_json::Value,
    ) {
        self.audit.push(AuditEntry {
            seq: self.audit.len() as u64 + 1,
            action: action.to_owned(),
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            detail,
        });
    }
}
