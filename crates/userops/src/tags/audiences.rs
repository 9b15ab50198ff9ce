//! Saved audiences (save, refresh, combine, delete), what the read commands answer, exports,
//! and the segments analyses break down by.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;

use super::column::Column;
use super::rules::Reads;
use super::TagInfo;
use super::{check_name, expr, unknown_tag, wall_clock, Dirty, Expr, TagState};
use super::{AudienceInfo, AudienceResult, Export, ExportRow, SavedAudience, SetOp, SizePoint};
use crate::error::Error;
use crate::ids::{Identifier, OneId};

fn info(a: &SavedAudience) -> AudienceInfo {
    AudienceInfo {
        name: a.name.clone(),
        expression: a.expression.clone(),
        size: a.members.len(),
        history: a.history.clone(),
    }
}

impl TagState {
    fn saved(&self, name: &str) -> Result<&SavedAudience, Error> {
        self.audiences.get(name).ok_or(Error::NotFound {
            what: "audience",
            id: name.to_owned(),
        })
    }

    /// Evaluate an expression at `now` (read-only).
    pub(crate) fn audience_at(
        &self,
        r: Reads<'_>,
        expression: &str,
        now: DateTime<Utc>,
    ) -> Result<AudienceResult, Error> {
        let (e, members) = self.evaluate(r, expression, now)?;
        Ok(AudienceResult {
            expression: e.to_string(),
            size: members.len(),
            oneids: r.users.oneids(&members),
            now,
        })
    }

    fn save(
        &mut self,
        r: Reads<'_>,
        name: &str,
        e: &Expr,
        members: RoaringBitmap,
        now: DateTime<Utc>,
    ) -> AudienceInfo {
        let size = members.len();
        let a = self
            .audiences
            .entry(name.to_owned())
            .or_insert_with(|| SavedAudience {
                name: name.to_owned(),
                expression: String::new(),
                members: RoaringBitmap::new(),
                history: Vec::new(),
            });
        a.expression = e.to_string();
        a.members = members;
        a.history.push(SizePoint { at: now, size });
        let info = info(a);
        // Rules reading this audience follow its new members.
        self.refresh_rules(r, &[format!("@{name}")], &Dirty::All, now);
        info
    }

    /// Evaluate and save (or re-define) an audience.
    pub(crate) fn save_audience(
        &mut self,
        r: Reads<'_>,
        name: &str,
        expression: &str,
        now: DateTime<Utc>,
    ) -> Result<AudienceInfo, Error> {
        check_name(name)?;
        let (e, members) = self.evaluate(r, expression, now)?;
        Ok(self.save(r, name, &e, members, now))
    }

    /// Re-evaluate a saved audience, appending to its size history.
    pub(crate) fn refresh_audience(
        &mut self,
        r: Reads<'_>,
        name: &str,
        now: DateTime<Utc>,
    ) -> Result<AudienceInfo, Error> {
        let expression = self.saved(name)?.expression.clone();
        let (e, members) = self.evaluate(r, &expression, now)?;
        Ok(self.save(r, name, &e, members, now))
    }

    /// Save the union, intersection or difference of saved audiences as an audience.
    pub(crate) fn combine_audiences(
        &mut self,
        r: Reads<'_>,
        name: &str,
        op: SetOp,
        audiences: &[String],
        now: DateTime<Utc>,
    ) -> Result<AudienceInfo, Error> {
        check_name(name)?;
        if audiences.len() < 2 {
            return Err(Error::invalid_argument(
                "audiences",
                "combine at least two audiences",
            ));
        }
        let refs: Vec<String> = audiences
            .iter()
            .map(|a| format!("in_audience({})", expr::Literal::Str(a.clone())))
            .collect();
        let text = match op {
            SetOp::Union => refs.join(" OR "),
            SetOp::Intersection => refs.join(" AND "),
            SetOp::Difference => {
                format!("{} AND NOT ({})", refs[0], refs[1..].join(" OR "))
            }
        };
        let (e, members) = self.evaluate(r, &text, now)?;
        Ok(self.save(r, name, &e, members, now))
    }

    /// Delete a saved audience that no rule tag or other saved audience uses, nor the
    /// automation rule `rule` (the campaigns module's answer to who selects users by it).
    /// `check: false` (a journal's replay) deletes without asking.
    pub(crate) fn delete_audience(
        &mut self,
        name: &str,
        rule: Option<String>,
        check: bool,
    ) -> Result<AudienceInfo, Error> {
        let info = info(self.saved(name)?);
        if check {
            // A rule reads the saved audience at every run: deleting it would leave a
            // rule that silently never fires.
            if let Some(rule) = rule {
                return Err(Error::invalid_argument(
                    "name",
                    format!(
                        "automation rule {rule:?} selects users by {name:?}: replace \
                         the rule first"
                    ),
                ));
            }
            let users = self.audience_users(name);
            if !users.is_empty() {
                return Err(Error::invalid_argument(
                    "name",
                    format!(
                        "audience {name:?} is used by {}: it cannot be deleted while \
                         they use it (delete those saved audiences first; rule tags \
                         are permanent)",
                        users.join(", ")
                    ),
                ));
            }
        }
        self.audiences.remove(name);
        Ok(info)
    }

    /// Tag definitions with their live users and index memory.
    pub(crate) fn tag_infos(&self, r: Reads<'_>) -> Vec<TagInfo> {
        self.defs
            .iter()
            .map(|d| {
                let col = self.columns.0.get(&d.name);
                TagInfo {
                    def: d.clone(),
                    users: col
                        .map(|c| (c.present() & r.users.live()).len())
                        .unwrap_or(0),
                    memory_bytes: col.map(|c| c.memory() as u64).unwrap_or(0),
                }
            })
            .collect()
    }

    /// Saved audiences without their members.
    pub(crate) fn audience_infos(&self) -> Vec<AudienceInfo> {
        self.audiences.values().map(info).collect()
    }

    /// The live members of a saved audience as of its last evaluation.
    pub(crate) fn saved_members_answer(
        &self,
        r: Reads<'_>,
        name: &str,
    ) -> Result<AudienceResult, Error> {
        let a = self.saved(name)?;
        let live = &a.members & r.users.live();
        Ok(AudienceResult {
            expression: a.expression.clone(),
            size: live.len(),
            oneids: r.users.oneids(&live),
            now: a.history.last().map(|h| h.at).unwrap_or_default(),
        })
    }

    /// Export a saved audience's live members (see [`export`]).
    pub(crate) fn export_audience(
        &self,
        r: Reads<'_>,
        identifiers: impl Fn(OneId) -> Option<Vec<Identifier>>,
        name: &str,
        kind: Option<&str>,
    ) -> Result<Export, Error> {
        let a = self.saved(name)?;
        let oneids = r.users.oneids(&(&a.members & r.users.live()));
        export(identifiers, &oneids, kind)
    }

    /// Segments to break an analysis down by (see `Engine::breakdown_segments`).
    pub(crate) fn breakdown_segments(
        &self,
        r: Reads<'_>,
        segments: Option<BTreeMap<String, Vec<OneId>>>,
        by_tag: Option<&str>,
        audiences: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<BTreeMap<String, Vec<OneId>>>, Error> {
        if segments.is_none() && by_tag.is_none() && audiences.is_none() {
            return Ok(None);
        }
        let now = self.clock.unwrap_or_else(wall_clock);
        let mut out = segments.unwrap_or_default();
        let mut add = |name: String, members: &RoaringBitmap| -> Result<(), Error> {
            if out.contains_key(&name) {
                return Err(Error::invalid_argument(
                    "segments",
                    format!("segment {name:?} given twice"),
                ));
            }
            let live = members & r.users.live();
            out.insert(name, r.users.oneids(&live));
            Ok(())
        };
        if let Some(tag) = by_tag {
            for (name, members) in self.tag_segments(tag)? {
                add(name, members)?;
            }
        }
        for (name, e) in audiences.into_iter().flatten() {
            let (_, members) = self.evaluate(r, e, now)?;
            add(name.clone(), &members)?;
        }
        Ok(Some(out))
    }

    /// One segment per value of the enum or bool column `tag` (named `tag=value`).
    fn tag_segments(&self, tag: &str) -> Result<Vec<(String, &RoaringBitmap)>, Error> {
        let col =
            self.columns.0.get(tag).ok_or_else(|| {
                unknown_tag("by_tag", tag, self.columns.0.keys().map(String::as_str))
            })?;
        match col {
            Column::Enum { values } => Ok(values
                .iter()
                .map(|(v, b)| (format!("{tag}={v}"), b))
                .collect()),
            Column::Bool { yes, no } => Ok(vec![
                (format!("{tag}=true"), yes),
                (format!("{tag}=false"), no),
            ]),
            _ => Err(Error::invalid_argument(
                "by_tag",
                format!(
                    "{tag:?} is a {} tag: group by an enum or bool tag, or give `audiences`",
                    col.value_type().name()
                ),
            )),
        }
    }
}

/// Identifiers of one kind for a list of OneIDs (or the OneIDs themselves when `kind` is
/// none), each person's identifiers read through `identifiers` (the identity graph's);
/// persons without an identifier of the kind are listed in `missing`.
pub(crate) fn export(
    identifiers: impl Fn(OneId) -> Option<Vec<Identifier>>,
    oneids: &[OneId],
    kind: Option<&str>,
) -> Result<Export, Error> {
    let Some(kind) = kind else {
        return Ok(Export {
            kind: None,
            rows: oneids
                .iter()
                .map(|o| ExportRow {
                    oneid: *o,
                    value: o.to_string(),
                })
                .collect(),
            missing: vec![],
        });
    };
    let k: crate::ids::IdKind = kind
        .parse()
        .map_err(|e: crate::ids::InvalidIdentifier| Error::invalid_argument("kind", e.reason))?;
    let (mut rows, mut missing) = (Vec::new(), Vec::new());
    for o in oneids {
        let ids: Vec<Identifier> = identifiers(*o)
            .map(|s| s.into_iter().filter(|i| *i.kind() == k).collect())
            .unwrap_or_default();
        if ids.is_empty() {
            missing.push(*o);
        }
        rows.extend(ids.into_iter().map(|i| ExportRow {
            oneid: *o,
            value: i.value().to_owned(),
        }));
    }
    Ok(Export {
        kind: Some(kind.to_owned()),
        rows,
        missing,
    })
}
