//! The identity command sets: [`IdentityCommand`] on the engine, [`GraphCall`] on a standalone
//! [`IdentityGraph`] (the Python `IdentityGraph` class).

use serde::{Deserialize, Serialize};

use super::{
    AuditEntry, Conflict, Explanation, IdentityGraph, IdentityRules, LinkOutcome, MergeRecord,
    MergeReport, SplitReport,
};
use crate::error::Error;
use crate::event::UserRef;
use crate::ids::{Identifier, OneId};

/// Identity commands on the engine (OneID rules, operator merge / split, explanations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum IdentityCommand {
    /// Replace the identity rules (applies to links from now on). Output: the rules.
    SetIdentityRules {
        /// The new rules.
        rules: IdentityRules,
        /// Who does it (free text), recorded in the identity audit.
        actor: String,
        /// Why (free text), recorded in the identity audit.
        reason: String,
    },
    /// The identity rules in force. Output: the rules.
    IdentityRules {},
    /// Why two identifiers are (or are not) one person. Output: [`Explanation`].
    Explain {
        /// One identifier.
        a: Identifier,
        /// The other identifier.
        b: Identifier,
    },
    /// Merge two persons by hand. Output: [`MergeReport`].
    Merge {
        /// One person (a OneID or an identifier of theirs).
        a: UserRef,
        /// The other person (a OneID or an identifier of theirs).
        b: UserRef,
        /// Who does it (free text), recorded in the identity audit.
        actor: String,
        /// Why (free text), recorded in the identity audit.
        reason: String,
        /// When (RFC 3339): dates the member-state transfers (points keep their own expiry).
        /// Left out, the merge is dated when the command is prepared (the wall clock, as every
        /// `now` default; the journal keeps that time). A journal record written before merges
        /// were dated has none and replays at the Unix epoch, as it did then.
        #[serde(default, with = "crate::event::rfc3339_opt")]
        time: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Remove evidence (record ids, or `manual:N`) and recompute the persons. Output:
    /// [`SplitReport`].
    Split {
        /// The records whose evidence to remove.
        evidence: Vec<String>,
        /// Who does it (free text), recorded in the identity audit.
        actor: String,
        /// Why (free text), recorded in the identity audit.
        reason: String,
        /// When (RFC 3339): dates the member-state transfers back to the parts. Left out, as
        /// for [`IdentityCommand::Merge`]; a journal record written before splits were dated
        /// has none and replays at the Unix epoch.
        #[serde(default, with = "crate::event::rfc3339_opt")]
        time: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Links refused by the rules (all, or those involving one person). Output: list.
    Conflicts {
        /// Only conflicts whose sides are now this person.
        #[serde(default)]
        oneid: Option<OneId>,
    },
    /// The live OneID an old OneID stands for. Output: `{"oneid": N | null}`.
    Canonical {
        /// Any OneID ever handed out.
        oneid: OneId,
    },
    /// A person's identifiers. Output: list of identifiers.
    Identifiers {
        /// The person: an identifier of theirs or their OneID.
        user: UserRef,
    },
    /// Merges, all or of one person. Output: list of [`MergeRecord`].
    MergeHistory {
        /// Only merges where this OneID survived or was absorbed.
        #[serde(default)]
        oneid: Option<OneId>,
    },
    /// Operator actions on identity (merge, split, rule changes). Output: list.
    IdentityAudit {},
}

impl IdentityCommand {
    /// The command with a `merge` or `split` that names no time dated now (the wall clock):
    /// what [`Engine::prepare`](crate::Engine::prepare) journals. Other commands unchanged.
    pub(crate) fn dated(self) -> IdentityCommand {
        let now = || Some(crate::tags::wall_clock());
        match self {
            IdentityCommand::Merge {
                a,
                b,
                actor,
                reason,
                time: None,
            } => IdentityCommand::Merge {
                a,
                b,
                actor,
                reason,
                time: now(),
            },
            IdentityCommand::Split {
                evidence,
                actor,
                reason,
                time: None,
            } => IdentityCommand::Split {
                evidence,
                actor,
                reason,
                time: now(),
            },
            other => other,
        }
    }

    /// Whether the command changes state.
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            IdentityCommand::SetIdentityRules { .. }
                | IdentityCommand::Merge { .. }
                | IdentityCommand::Split { .. }
        )
    }
}

/// The outputs of identity commands (serialized untagged, as Python receives them).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum IdentityOutput {
    /// The rules in force: what `set_identity_rules` and `identity_rules` return (engine), or
    /// `set_rules` and `rules` ([`GraphCall`]).
    Rules(IdentityRules),
    /// What `explain` returns.
    Explanation(Explanation),
    /// A merge report.
    Merge(MergeReport),
    /// A split report.
    Split(SplitReport),
    /// What `conflicts` returns.
    Conflicts(Vec<Conflict>),
    /// `{"oneid": ...}`.
    Canonical {
        /// The live OneID, or `None` for a number never handed out.
        oneid: Option<OneId>,
    },
    /// What `identifiers` returns: the person's identifiers.
    Identifiers(Vec<Identifier>),
    /// Merge history.
    History(Vec<MergeRecord>),
    /// Audit entries.
    Audit(Vec<AuditEntry>),
    /// A link outcome (standalone graph).
    Link(LinkOutcome),
    /// A batch result (standalone graph).
    Batch(super::BatchResult),
}

fn not_found(what: &'static str, id: impl ToString) -> Error {
    Error::NotFound {
        what,
        id: id.to_string(),
    }
}

/// The live OneID of a user reference, creating nothing.
fn person(g: &IdentityGraph, user: &UserRef, field: &str) -> Result<OneId, Error> {
    match user {
        UserRef::OneId(o) => g.canonical(*o).ok_or_else(|| not_found("oneid", o)),
        UserRef::Id(id) => g
            .resolve(id)
            .ok_or_else(|| Error::invalid_argument(field, format!("{id} is not known"))),
    }
}

fn conflicts_of(g: &IdentityGraph, oneid: Option<OneId>) -> Vec<Conflict> {
    g.conflicts()
        .iter()
        .filter(|c| {
            oneid.is_none_or(|o| g.canonical(c.kept) == Some(o) || g.canonical(c.other) == Some(o))
        })
        .cloned()
        .collect()
}

impl IdentityGraph {
    /// The live OneID a user reference names, creating nothing: `not_found` for a OneID never
    /// handed out, `invalid_argument` at `field` for an identifier no person has.
    pub(crate) fn person_named(&self, user: &UserRef, field: &str) -> Result<OneId, Error> {
        person(self, user, field)
    }

    /// `set_identity_rules`: replace the rules and audit who did it and why (both required).
    pub(crate) fn set_rules_audited(
        &mut self,
        rules: IdentityRules,
        actor: &str,
        reason: &str,
    ) -> Result<IdentityOutput, Error> {
        for (f, v) in [("actor", actor), ("reason", reason)] {
            if v.trim().is_empty() {
                return Err(Error::invalid_argument(
                    f,
                    "required (rule changes are audited)",
                ));
            }
        }
        self.set_rules(rules.clone())?;
        self.push_audit(
            "set_identity_rules",
            actor,
            reason,
            serde_json::to_value(&rules).unwrap_or_default(),
        );
        Ok(IdentityOutput::Rules(rules))
    }

    /// Refuse a split whose evidence joins an erased person (`is_erased`, the privacy
    /// module's view): a tombstone cannot be split.
    pub(crate) fn check_split(
        &self,
        evidence: &[String],
        is_erased: impl Fn(OneId) -> bool,
    ) -> Result<(), Error> {
        for (record, o) in self.evidence_persons(evidence) {
            if is_erased(o) {
                return Err(Error::invalid_argument(
                    "evidence",
                    format!("{record:?} joins erased person {o}: a tombstone cannot be split"),
                ));
            }
        }
        Ok(())
    }

    /// The identity commands that change nothing.
    pub(crate) fn query(&self, c: IdentityCommand) -> Result<IdentityOutput, Error> {
        Ok(match c {
            IdentityCommand::IdentityRules {} => IdentityOutput::Rules(self.rules().clone()),
            IdentityCommand::Explain { a, b } => IdentityOutput::Explanation(self.explain(&a, &b)),
            IdentityCommand::Conflicts { oneid } => {
                IdentityOutput::Conflicts(conflicts_of(self, oneid))
            }
            IdentityCommand::Canonical { oneid } => IdentityOutput::Canonical {
                oneid: self.canonical(oneid),
            },
            IdentityCommand::Identifiers { user } => {
                let p = person(self, &user, "user")?;
                IdentityOutput::Identifiers(self.identifiers(p).unwrap_or_default())
            }
            IdentityCommand::MergeHistory { oneid } => {
                IdentityOutput::History(self.merge_history(oneid))
            }
            IdentityCommand::IdentityAudit {} => IdentityOutput::Audit(self.audit().to_vec()),
            other => return Err(Error::not_a_query(&other)),
        })
    }
}

/// Calls on a standalone [`IdentityGraph`] (the Python `IdentityGraph` class), by method name
/// with JSON arguments, through [`IdentityGraph::call_json`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GraphCall {
    /// Link one record. Output: [`LinkOutcome`].
    Link {
        /// The record id.
        id: String,
        /// The record's source (platform or system), kept as evidence (default empty).
        #[serde(default)]
        source: String,
        /// When, in ms since the Unix epoch.
        #[serde(default)]
        ts: i64,
        /// The identifiers seen together.
        ids: Vec<Identifier>,
    },
    /// The person of an identifier. Output: `{"oneid": N | null}`.
    Resolve {
        /// The identifier to look up; an unknown one gives `null`, it is not created.
        id: Identifier,
    },
    /// See [`IdentityCommand::Explain`].
    Explain {
        /// One identifier.
        a: Identifier,
        /// The other identifier.
        b: Identifier,
    },
    /// See [`IdentityCommand::Merge`].
    Merge {
        /// One person.
        a: UserRef,
        /// The other person.
        b: UserRef,
        /// Who does it (free text), recorded in the identity audit.
        actor: String,
        /// Why (free text), recorded in the identity audit.
        reason: String,
    },
    /// See [`IdentityCommand::Split`].
    Split {
        /// Record ids.
        evidence: Vec<String>,
        /// Who does it (free text), recorded in the identity audit.
        actor: String,
        /// Why (free text), recorded in the identity audit.
        reason: String,
    },
    /// See [`IdentityCommand::Conflicts`].
    Conflicts {
        /// Only conflicts whose sides are now this person (`None`: all).
        #[serde(default)]
        oneid: Option<OneId>,
    },
    /// See [`IdentityCommand::Canonical`].
    Canonical {
        /// Any OneID.
        oneid: OneId,
    },
    /// See [`IdentityCommand::Identifiers`].
    Identifiers {
        /// The person: an identifier of theirs or their OneID.
        user: UserRef,
    },
    /// See [`IdentityCommand::MergeHistory`].
    MergeHistory {
        /// Only merges where this OneID survived or was absorbed (`None`: all).
        #[serde(default)]
        oneid: Option<OneId>,
    },
    /// Operator actions.
    Audit {},
    /// Replace the rules. Output: the rules.
    SetRules {
        /// The new rules (checked by [`IdentityRules::validate`]; the old ones stay on an error).
        rules: IdentityRules,
    },
    /// The rules. Output: the rules.
    Rules {},
}

impl IdentityGraph {
    /// Execute a [`GraphCall`] given as a method name and JSON arguments; the output as JSON.
    ///
    /// # Errors
    ///
    /// `unknown_method` for a method [`GraphCall`] does not have; `invalid_argument` for arguments
    /// that are not JSON or do not fit the method (the field's path named); then as
    /// [`IdentityGraph::call`].
    pub fn call_json(&mut self, method: &str, args_json: &str) -> Result<String, Error> {
        let call = crate::command::parse_call::<GraphCall>(method, args_json)?
            .ok_or_else(|| Error::UnknownMethod(method.to_owned()))?;
        let out = self.call(call)?;
        serde_json::to_string(&out).map_err(|e| Error::Internal(e.to_string()))
    }

    /// Execute a [`GraphCall`].
    ///
    /// # Errors
    ///
    /// `merge`, `identifiers`: `not_found` for a OneID never handed out, `invalid_argument` for an
    /// identifier no person has. `merge`, `split`, `set_rules`: as [`IdentityGraph::merge`],
    /// [`IdentityGraph::split`], [`IdentityGraph::set_rules`]. The other calls do not fail.
    pub fn call(&mut self, call: GraphCall) -> Result<IdentityOutput, Error> {
        Ok(match call {
            GraphCall::Link {
                id,
                source,
                ts,
                ids,
            } => IdentityOutput::Link(self.link(&super::Record {
                id,
                source,
                ts,
                ids,
            })),
            GraphCall::Resolve { id } => IdentityOutput::Canonical {
                oneid: self.resolve(&id),
            },
            GraphCall::Explain { a, b } => IdentityOutput::Explanation(self.explain(&a, &b)),
            GraphCall::Merge {
                a,
                b,
                actor,
                reason,
            } => {
                let (pa, pb) = (person(self, &a, "a")?, person(self, &b, "b")?);
                IdentityOutput::Merge(self.merge(pa, pb, &actor, &reason, 0)?)
            }
            GraphCall::Split {
                evidence,
                actor,
                reason,
            } => IdentityOutput::Split(self.split(&evidence, &actor, &reason)?),
            GraphCall::Conflicts { oneid } => IdentityOutput::Conflicts(conflicts_of(self, oneid)),
            GraphCall::Canonical { oneid } => IdentityOutput::Canonical {
                oneid: self.canonical(oneid),
            },
            GraphCall::Identifiers { user } => {
                let p = person(self, &user, "user")?;
                IdentityOutput::Identifiers(self.identifiers(p).unwrap_or_default())
            }
            GraphCall::MergeHistory { oneid } => IdentityOutput::History(self.merge_history(oneid)),
            GraphCall::Audit {} => IdentityOutput::Audit(self.audit().to_vec()),
            GraphCall::SetRules { rules } => {
                self.set_rules(rules.clone())?;
                IdentityOutput::Rules(rules)
            }
            GraphCall::Rules {} => IdentityOutput::Rules(self.rules().clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{Engine, Error};
    use serde_json::{json, Value};

    fn identify(e: &mut Engine, key: &str, ids: Value) -> Value {
        let ev = json!({"kind": "identify", "key": key, "time": "2026-01-05T10:00:00+08:00",
            "source": {"platform": "jd", "program": "brand-a"}, "ids": ids});
        serde_json::from_str(
            &e.call_json("ingest", &json!({ "event": ev }).to_string())
                .unwrap(),
        )
        .unwrap()
    }

    fn call(e: &mut Engine, method: &str, args: Value) -> Result<Value, Error> {
        e.call_json(method, &args.to_string())
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn engine_identity_commands() {
        let mut e = Engine::default();
        let a = identify(
            &mut e,
            "k1",
            json!([{"kind": "phone", "value": "13800138000"},
            {"kind": "device_id", "value": "tab"}]),
        );
        let b = identify(
            &mut e,
            "k2",
            json!([{"kind": "phone", "value": "13900139000"},
            {"kind": "device_id", "value": "tab"}]),
        );
        assert_ne!(a["oneid"], b["oneid"], "phone cap keeps them apart");
        let c = call(&mut e, "conflicts", json!({})).unwrap();
        assert_eq!(c.as_array().unwrap().len(), 1);
        assert_eq!(c[0]["record"], "k2");
        let x = call(
            &mut e,
            "explain",
            json!({"a": {"kind": "phone", "value": "13800138000"},
            "b": {"kind": "device_id", "value": "tab"}}),
        )
        .unwrap();
        assert_eq!(x["joined"], true);
        assert_eq!(x["chain"][0]["source"], "jd/brand-a");
        // Errors change nothing.
        let before = e.snapshot();
        assert!(
            call(
                &mut e,
                "merge",
                json!({"a": {"oneid": 1}, "b": {"oneid": 2},
            "actor": "ops", "reason": "x"})
            )
            .is_err(),
            "two phones"
        );
        assert!(call(
            &mut e,
            "split",
            json!({"evidence": ["nope"], "actor": "a", "reason": "r"})
        )
        .is_err());
        assert!(call(
            &mut e,
            "set_identity_rules",
            json!({"rules": {"caps": {"phone": 0}},
            "actor": "a", "reason": "r"})
        )
        .is_err());
        assert_eq!(before, e.snapshot());
        call(
            &mut e,
            "set_identity_rules",
            json!({"rules": {"caps": {"phone": 2}},
            "actor": "ops", "reason": "family phones"}),
        )
        .unwrap();
        let m = call(
            &mut e,
            "merge",
            json!({"a": {"oneid": 2},
            "b": {"kind": "phone", "value": "13800138000"}, "actor": "ops", "reason": "same"}),
        )
        .unwrap();
        assert_eq!(m["survivor"], 1);
        assert_eq!(m["absorbed"], json!([2]));
        assert_eq!(
            call(&mut e, "canonical", json!({"oneid": 2})).unwrap()["oneid"],
            1
        );
        let ids = call(&mut e, "identifiers", json!({"user": {"oneid": 2}})).unwrap();
        assert_eq!(ids.as_array().unwrap().len(), 3);
        assert_eq!(
            call(&mut e, "merge_history", json!({"oneid": 2})).unwrap()[0]["cause"],
            "manual"
        );
        let s = call(
            &mut e,
            "split",
            json!({"evidence": m["evidence"], "actor": "ops",
            "reason": "undo"}),
        )
        .unwrap();
        assert_eq!(s["parts"].as_array().unwrap().len(), 2);
        let audit = call(&mut e, "identity_audit", json!({})).unwrap();
        let actions: Vec<&str> = audit
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, vec!["set_identity_rules", "merge", "split"]);
        assert!(crate::Command::from_call("merge", "{}")
            .unwrap_err()
            .field()
            .is_some());
        let back = Engine::restore(&e.snapshot()).unwrap();
        assert_eq!(back.snapshot(), e.snapshot());
    }

    #[test]
    fn blocklisted_user_is_rejected_and_merges_report() {
        let mut e = Engine::default();
        call(
            &mut e,
            "set_identity_rules",
            json!({"rules": {"blocklist": [{"kind": "phone",
            "value": "13800000000"}]}, "actor": "ops", "reason": "test number"}),
        )
        .unwrap();
        let ev = json!({"kind": "activity", "key": "a1", "time": "2026-01-05T10:00:00Z",
            "source": {"platform": "app", "program": "p"},
            "user": {"kind": "phone", "value": "13800000000"}, "type": "login"});
        let err = e
            .call_json("ingest", &json!({ "event": ev }).to_string())
            .unwrap_err();
        assert_eq!(err.field(), Some("user"));
        identify(&mut e, "k1", json!([{"kind": "email", "value": "a@x.com"}]));
        identify(
            &mut e,
            "k2",
            json!([{"kind": "phone", "value": "13900139000"}]),
        );
        let r = identify(
            &mut e,
            "k3",
            json!([{"kind": "email", "value": "a@x.com"},
            {"kind": "phone", "value": "13900139000"}]),
        );
        assert_eq!(r["oneid"], 1);
        assert_eq!(r["absorbed"], json!([2]));
        let all = identify(
            &mut e,
            "k4",
            json!([{"kind": "phone", "value": "13800000000"}]),
        );
        assert_eq!(all["oneid"], Value::Null);
    }

    /// Journal records written before operator merges and splits were dated still replay: a
    /// split without `time`, a merge with `"time": null`, both at the Unix epoch as then.
    /// New commands without a time are dated when prepared.
    #[test]
    fn undated_operator_commands_replay_at_the_epoch_and_new_ones_are_dated() {
        use crate::Command;
        let mut e = Engine::default();
        identify(&mut e, "k1", json!([{"kind": "member_no", "value": "M1"}]));
        identify(&mut e, "k2", json!([{"kind": "member_no", "value": "M2"}]));
        call(&mut e, "create_program", json!({"program": {"id": "p"}})).unwrap();
        call(
            &mut e,
            "earn",
            json!({"user": {"oneid": 2}, "program": "p", "points": 5, "key": "e",
                "time": "2026-01-05T00:00:00Z"}),
        )
        .unwrap();
        let old_merge = r#"{"method":"merge","args":{"a":{"oneid":1},"b":{"oneid":2},"actor":"ops","reason":"x","time":null}}"#;
        let old_split =
            r#"{"method":"split","args":{"evidence":["manual:1"],"actor":"ops","reason":"y"}}"#;
        for text in [old_merge, old_split] {
            e.execute_prepared(Command::from_json(text).unwrap())
                .unwrap();
        }
        let epoch = chrono::DateTime::UNIX_EPOCH;
        let times: Vec<_> = e
            .loyalty()
            .ledger()
            .transfers()
            .iter()
            .skip(1)
            .map(|t| t.time)
            .collect();
        assert_eq!(times, vec![epoch, epoch], "the merge and the split back");
        let new = Command::from_call(
            "split",
            r#"{"evidence": ["k1"], "actor": "ops", "reason": "z"}"#,
        )
        .unwrap();
        match e.prepare(new).unwrap() {
            Command::Identity(super::IdentityCommand::Split { time, .. }) => {
                assert!(time.is_some_and(|t| t > epoch))
            }
            other => panic!("{other:?}"),
        }
    }
}
