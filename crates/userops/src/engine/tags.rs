//! The tags module's door: its commands, its typed wrappers on [`Engine`], and the flows that
//! reach other modules (numbering persons in the user index, resolving identifiers, the
//! automation rules a saved audience may not be deleted under). The rules live in
//! [`crate::tags`]; here the arguments are gathered and the effects applied in order.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use roaring::RoaringBitmap;

use super::{Engine, State};
use crate::error::Error;
use crate::event::UserRef;
use crate::ids::{Identifier, OneId};
use crate::tags::{
    wall_clock, AudienceResult, Dirty, IndexWrite, Reads, TagColumnInput, TagDef, TagsCommand,
    TagsOutput, Value, ValueType, Written,
};

impl Engine {
    /// The tags module's read view of the engine.
    pub(crate) fn tag_reads(&self) -> Reads<'_> {
        Reads {
            users: &self.state.users,
            tz: self.config.business_tz(),
        }
    }

    /// The tag definitions, in definition order.
    pub fn tag_defs(&self) -> &[TagDef] {
        self.state.tags.defs()
    }

    /// One person's values of every defined tag, by tag (a multi-valued tag gives one entry
    /// per value). Empty for an unknown or absorbed person.
    pub fn tags_of(&self, oneid: OneId) -> Vec<(String, Value)> {
        match self.state.users.live_dense(oneid) {
            Some(d) => self
                .state
                .tags
                .values_of(d)
                .into_iter()
                .flat_map(|(k, vs)| vs.into_iter().map(move |v| (k.clone(), v)))
                .collect(),
            None => Vec::new(),
        }
    }

    /// The persons whose tag values ([`Engine::tags_of`]) the last command executed may have
    /// changed (every person it wrote, whether the value moved or not, merged-away and erased
    /// ones included), ascending by dense index; `None` when it defined a tag, so that every
    /// person's may have. The durable store rewrites those persons' rows of its `tags` table
    /// after each command instead of the whole table.
    pub fn tags_changed(&self) -> Option<Vec<OneId>> {
        let users = &self.state.users;
        let changed = self.state.tags.changed_users()?;
        Some(changed.iter().filter_map(|d| users.oneid(d)).collect())
    }

    /// Every live person's values of every defined tag, by person (dense order) then tag: what
    /// the durable store materializes as its `tags` table.
    pub fn tag_rows(&self) -> Vec<(OneId, String, Value)> {
        let users = &self.state.users;
        users
            .live()
            .iter()
            .filter_map(|d| users.oneid(d))
            .flat_map(|o| self.tags_of(o).into_iter().map(move |(k, v)| (o, k, v)))
            .collect()
    }

    /// Evaluate an audience expression (read-only).
    ///
    /// ```
    /// use userops::{Engine, tags::TagsCommand};
    /// let mut e = Engine::default();
    /// e.call_json("set_tags", r#"{"kind": "member_no", "users": ["M1", "M2"],
    ///     "tags": [{"name": "age", "type": "number", "values": [45, 30]}]}"#)?;
    /// let a = e.audience("age BETWEEN 40 AND 60")?;
    /// assert_eq!(a.size, 1);
    /// assert!(e.audience("agee > 3").is_err());
    /// # Ok::<(), userops::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `audience_syntax` when the expression does not parse or does not fit what it names (an
    /// unknown tag, attribute or saved audience, a value of another type); the error carries the
    /// position of the mistake.
    pub fn audience(&self, expression: &str) -> Result<AudienceResult, Error> {
        self.audience_at(expression, wall_clock())
    }

    /// [`Engine::audience`] with relative dates referring to `now`.
    ///
    /// # Errors
    ///
    /// As [`Engine::audience`].
    pub fn audience_at(
        &self,
        expression: &str,
        now: DateTime<Utc>,
    ) -> Result<AudienceResult, Error> {
        self.state
            .tags
            .audience_at(self.tag_reads(), expression, now)
    }

    /// Segments to break an analysis down by, as OneID lists: the explicit `segments`, plus
    /// one segment per value of the enum or bool tag `by_tag` (named `tag=value`), plus one
    /// per named audience expression in `audiences`. Expressions are evaluated at the latest
    /// time the index has seen. `None` when nothing was asked.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `segments` for a segment name given twice (explicit, `tag=value` or
    /// an audience's), at `by_tag` for a name that is no tag or attribute, or one that is neither
    /// enum nor bool; `audience_syntax` for an expression in `audiences` (as [`Engine::audience`]).
    pub fn breakdown_segments(
        &self,
        segments: Option<BTreeMap<String, Vec<OneId>>>,
        by_tag: Option<&str>,
        audiences: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<BTreeMap<String, Vec<OneId>>>, Error> {
        self.state
            .tags
            .breakdown_segments(self.tag_reads(), segments, by_tag, audiences)
    }

    /// Write a model tag (tests only: modules write through `write_model_values`): defines it
    /// as a model tag of `value_type` if needed, then sets each listed user's value (`None`
    /// removes it).
    ///
    /// # Errors
    ///
    /// As [`Engine::write_model_values`].
    #[cfg(test)]
    pub(crate) fn write_model_tag(
        &mut self,
        model: &str,
        tag: &str,
        value_type: ValueType,
        rows: &[(OneId, Option<Value>)],
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let rows: Vec<(OneId, Vec<Value>)> = rows
            .iter()
            .map(|(o, v)| (*o, v.iter().cloned().collect()))
            .collect();
        self.write_model_values(model, tag, value_type, &rows, false, now)
    }

    /// Write a model tag with any number of values per user (a multi-valued enum, e.g. the
    /// top-k preferences). With `replace`, the model's answer is the whole truth: users not
    /// listed lose their value. Users that are no longer live (merged, erased) are refused.
    ///
    /// # Errors
    ///
    /// `invalid_argument`, and nothing changes: at `tag` for a tag name that is not one (letters,
    /// digits and `_`, not starting with a digit, not a keyword); at `tag` when the tag exists and
    /// is not a model tag of `value_type`, or is an attribute; at `rows[i]` for a OneID that is not
    /// live (unknown, merged or erased) or is listed twice, a value of another type, or several
    /// values for a tag that is not an enum.
    pub(crate) fn write_model_values(
        &mut self,
        model: &str,
        tag: &str,
        value_type: ValueType,
        rows: &[(OneId, Vec<Value>)],
        replace: bool,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let tz = self.config.business_tz();
        let State {
            identity,
            users,
            tags,
            ..
        } = &mut self.state;
        tags.check_model_values(tag, value_type, rows, |o| identity.canonical(o) == Some(o))?;
        // From here on nothing fails.
        let dense: Vec<(u32, Vec<Value>)> = rows
            .iter()
            .map(|(o, v)| (users.dense_or_insert(*o), v.clone()))
            .collect();
        let r = Reads { users, tz };
        tags.write_model_values(r, model, (tag, value_type), dense, replace, now);
        Ok(())
    }

    /// The one place other modules' flows write the tag index through: each [`IndexWrite`] (an
    /// attribute or aggregate, a program's points or tier, a tag an automation rule sets) is
    /// written for a person that has a place in the index ([`Engine::index_place`]). Rules are
    /// the caller's to recompute: [`Engine::write_index`] and [`Engine::write_index_changed`]
    /// do. Never fails.
    pub(crate) fn write_to_index(&mut self, writes: Vec<IndexWrite>) -> Written {
        let State {
            identity,
            users,
            tags,
            ..
        } = &mut self.state;
        tags.write_values(
            |o| match users.dense(o) {
                Some(d) if users.live().contains(d) => Some(d),
                // Merged away or erased: its values went with it.
                Some(_) => None,
                // A person known to another module before the index (a member that only
                // loyalty has met) gets its place; an erasure pseudonym, never a person, none.
                None if identity.canonical(o) == Some(o) => Some(users.dense_or_insert(o)),
                None => None,
            },
            writes,
        )
    }

    /// [`Engine::write_to_index`], then the rules reading any column written recomputed for
    /// every user written, at `now`. Never fails.
    pub(crate) fn write_index(&mut self, writes: Vec<IndexWrite>, now: DateTime<Utc>) {
        let mut columns: Vec<String> = writes.iter().map(|w| w.column.clone()).collect();
        columns.dedup();
        let written = self.write_to_index(writes);
        self.refresh_rules_for(&columns, &Dirty::Users(written.users), now);
    }

    /// [`Engine::write_to_index`], then the rules reading a column whose values changed
    /// recomputed for the users whose values changed, at `now`: for writers that re-read many
    /// values that mostly stay as they were (loyalty re-reads every tiered member after a tier
    /// evaluation). Never fails.
    pub(crate) fn write_index_changed(&mut self, writes: Vec<IndexWrite>, now: DateTime<Utc>) {
        let written = self.write_to_index(writes);
        if written.changed.is_empty() {
            return;
        }
        let users = written
            .changed
            .values()
            .fold(RoaringBitmap::new(), |a, b| a | b);
        let columns: Vec<String> = written.changed.into_keys().collect();
        self.refresh_rules_for(&columns, &Dirty::Users(users), now);
    }

    /// Recompute the rule tags that read any of `changed`, for every user (see
    /// [`crate::tags::TagState::refresh_rules`]). Returns the rule tags recomputed.
    pub(crate) fn refresh_rules(&mut self, changed: &[String], now: DateTime<Utc>) -> Vec<String> {
        self.refresh_rules_for(changed, &Dirty::All, now)
    }

    /// [`Engine::refresh_rules`] for the users of `users` only.
    pub(crate) fn refresh_rules_for(
        &mut self,
        changed: &[String],
        users: &Dirty,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let tz = self.config.business_tz();
        let State {
            users: index, tags, ..
        } = &mut self.state;
        tags.refresh_rules(Reads { users: index, tz }, changed, users, now)
    }

    pub(crate) fn execute_tags(&mut self, c: TagsCommand) -> Result<TagsOutput, Error> {
        let tz = self.config.business_tz();
        let State { users, tags, .. } = &mut self.state;
        let r = Reads { users, tz };
        match c {
            TagsCommand::DefineTag {
                name,
                value_type,
                rule,
                model,
                description,
                now,
            } => tags
                .define_tag(r, name, value_type, rule, model, description, now)
                .map(TagsOutput::Def),
            TagsCommand::SetTag {
                user,
                tag,
                value,
                now,
            } => self.set_tag(user, tag, value, now),
            TagsCommand::SetTags {
                kind,
                users,
                tags,
                now,
            } => self.set_tags(&kind, &users, &tags, now),
            TagsCommand::RefreshTags { now } => {
                let rules = tags.refresh_rules(r, &["*".to_owned()], &Dirty::All, now);
                Ok(TagsOutput::Counts {
                    rows: 0,
                    created: 0,
                    tags: vec![],
                    rules,
                })
            }
            q @ (TagsCommand::Tags {}
            | TagsCommand::Audience { .. }
            | TagsCommand::Audiences {}
            | TagsCommand::AudienceMembers { .. }
            | TagsCommand::ExportAudience { .. }
            | TagsCommand::ExportOneids { .. }) => self.query_tags(q),
            TagsCommand::SaveAudience {
                name,
                expression,
                now,
            } => tags
                .save_audience(r, &name, &expression, now)
                .map(TagsOutput::Info),
            TagsCommand::RefreshAudience { name, now } => {
                tags.refresh_audience(r, &name, now).map(TagsOutput::Info)
            }
            TagsCommand::CombineAudiences {
                name,
                op,
                audiences,
                now,
            } => tags
                .combine_audiences(r, &name, op, &audiences, now)
                .map(TagsOutput::Info),
            TagsCommand::DeleteAudience { name } => {
                // A journal of an older build may hold such a delete (see `Engine::replay`).
                let check = !self.replaying;
                let rule = check
                    .then(|| self.state.campaigns.rule_using_audience(&name))
                    .flatten()
                    .map(str::to_owned);
                self.state
                    .tags
                    .delete_audience(&name, rule, check)
                    .map(TagsOutput::Info)
            }
        }
    }

    /// Set one tag of one person (created when new).
    fn set_tag(
        &mut self,
        user: UserRef,
        tag: String,
        value: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<TagsOutput, Error> {
        let tz = self.config.business_tz();
        let checked = self.state.tags.check_set_tag(&tag, &value, tz)?;
        if let UserRef::Id(id) = &user {
            if !self.config.accepts_kind(id.kind()) {
                return Err(Error::invalid_argument(
                    "user",
                    "custom identifier kind not registered in the config",
                ));
            }
        }
        self.check_user(&user)
            .map_err(|e| Error::invalid_argument("user", e.to_string()))?;
        // From here on nothing fails.
        let oneid = self.ensure_user(&user, "set_tag", "operator");
        let State { users, tags, .. } = &mut self.state;
        let d = users.dense_or_insert(oneid);
        tags.set_tag(Reads { users, tz }, tag, checked, d, now);
        Ok(TagsOutput::User { oneid })
    }

    /// A wide table of tags: row `i` for the person whose identifier of `kind` is `users[i]`.
    fn set_tags(
        &mut self,
        kind: &str,
        users: &[String],
        tags: &[TagColumnInput],
        now: DateTime<Utc>,
    ) -> Result<TagsOutput, Error> {
        let tz = self.config.business_tz();
        let k: crate::ids::IdKind = kind.parse().map_err(|e: crate::ids::InvalidIdentifier| {
            Error::invalid_argument("kind", e.reason)
        })?;
        if !self.config.accepts_kind(&k) {
            return Err(Error::invalid_argument(
                "kind",
                "custom identifier kind not registered in the config",
            ));
        }
        // Check everything first.
        let ids: Vec<Identifier> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let id = Identifier::new(k.clone(), u)
                    .map_err(|e| Error::invalid_argument(format!("users[{i}]"), e.to_string()))?;
                match self.state.identity.blocked(&id) {
                    Some(why) => Err(Error::invalid_argument(format!("users[{i}]"), why)),
                    None => Ok(id),
                }
            })
            .collect::<Result<_, _>>()?;
        let typed = self.state.tags.check_columns(tags, users.len(), tz)?;
        // From here on nothing fails.
        let before = self.state.identity.person_count();
        let dense: Vec<u32> = ids
            .iter()
            .map(|id| {
                let o = self.ensure_user(&UserRef::Id(id.clone()), "set_tags", "operator");
                self.state.users.dense_or_insert(o)
            })
            .collect();
        let created = self.state.identity.person_count().saturating_sub(before) as u64;
        let State {
            users: index,
            tags: tag_state,
            ..
        } = &mut self.state;
        let (names, rules) = tag_state.set_columns(Reads { users: index, tz }, &dense, typed, now);
        Ok(TagsOutput::Counts {
            rows: users.len() as u64,
            created,
            tags: names,
            rules,
        })
    }

    /// The tags commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_tags(&self, c: TagsCommand) -> Result<TagsOutput, Error> {
        let (tags, r) = (&self.state.tags, self.tag_reads());
        let identifiers = |o| self.state.identity.identifiers(o);
        match c {
            TagsCommand::Tags {} => Ok(TagsOutput::Tags(tags.tag_infos(r))),
            TagsCommand::Audience { expression, now } => {
                Ok(TagsOutput::Audience(self.audience_at(&expression, now)?))
            }
            TagsCommand::Audiences {} => Ok(TagsOutput::Infos(tags.audience_infos())),
            TagsCommand::AudienceMembers { name } => tags
                .saved_members_answer(r, &name)
                .map(TagsOutput::Audience),
            TagsCommand::ExportAudience { name, kind } => tags
                .export_audience(r, identifiers, &name, kind.as_deref())
                .map(TagsOutput::Export),
            TagsCommand::ExportOneids { oneids, kind } => {
                crate::tags::export(identifiers, &oneids, Some(&kind)).map(TagsOutput::Export)
            }
            other => Err(Error::not_a_query(&other)),
        }
    }
}
