//! The profile module's door: its commands, the 360° view, and the flows that carry profile
//! changes into the tag index (attribute and aggregate columns) and recompute the rules
//! reading them. The rules of attributes live in [`crate::profile`].

use chrono::{DateTime, Utc};

use super::{Engine, State};
use crate::error::Error;
use crate::event::{Event, UserRef};
use crate::ids::OneId;
use crate::profile::{ProfileCommand, ProfileOutput, ProfileView};

impl Engine {
    /// The 360° view of a person.
    ///
    /// # Errors
    ///
    /// `not_found` for a OneID that never existed. (A merged OneID gives its survivor's view.)
    pub fn profile(&self, oneid: OneId) -> Result<ProfileView, Error> {
        let s = &self.state;
        let o = s.identity.canonical(oneid).ok_or(Error::NotFound {
            what: "oneid",
            id: oneid.to_string(),
        })?;
        let tags = match s.users.dense(o) {
            Some(d) => s.tags.values_of(d),
            None => Default::default(),
        };
        let identifiers = s.identity.identifiers(o);
        Ok(s.profiles.view(o, identifiers, tags, s.loyalty.standing(o)))
    }

    /// Rewrite person `oneid`'s index column of attribute `name` from its profile (rules are
    /// the caller's to recompute).
    pub(crate) fn index_attribute(&mut self, oneid: OneId, name: &str) {
        if let Some(w) = self.state.profiles.attribute_write(oneid, name) {
            self.write_to_index(vec![w]);
        }
    }

    /// Rewrite person `oneid`'s aggregate columns from its profile (rules are the caller's to
    /// recompute).
    pub(crate) fn index_aggregates(&mut self, oneid: OneId) {
        let writes = self.state.profiles.aggregate_writes(oneid);
        self.write_to_index(writes);
    }

    /// Update aggregates from an accepted event (called by `apply_event` once checks passed).
    pub(crate) fn profile_on_event(&mut self, event: &Event, oneid: Option<OneId>) {
        let Some(oneid) = oneid else { return };
        // Every person an event names has a place in the index, indexed values or not.
        self.state.users.dense_or_insert(oneid);
        if let Some(writes) = self.state.profiles.on_event(event, oneid) {
            self.write_index(writes, event.time);
        }
    }

    pub(crate) fn execute_profile(&mut self, c: ProfileCommand) -> Result<ProfileOutput, Error> {
        match c {
            ProfileCommand::DefineAttribute {
                name,
                attr_type,
                merge,
            } => {
                let State { profiles, tags, .. } = &mut self.state;
                let (def, t) = profiles.define_attribute(tags, name, attr_type, merge)?;
                tags.ensure_column(&def.name, t);
                Ok(ProfileOutput::Def(def))
            }
            ProfileCommand::SetAttribute {
                user,
                name,
                value,
                source,
                at,
            } => self.set_attribute(user, &name, value, source, at),
            q @ ProfileCommand::Profile { .. } => self.query_profile(q),
        }
    }

    /// Observe one attribute value of a person (created when new), then index it.
    fn set_attribute(
        &mut self,
        user: UserRef,
        name: &str,
        value: serde_json::Value,
        source: String,
        at: DateTime<Utc>,
    ) -> Result<ProfileOutput, Error> {
        let tz = self.config.business_tz();
        let set = self
            .state
            .profiles
            .check_set(&self.state.tags, name, value, tz)?;
        self.check_user(&user)
            .map_err(|e| Error::invalid_argument("user", e.to_string()))?;
        if let UserRef::Id(id) = &user {
            if !self.config.accepts_kind(id.kind()) {
                return Err(Error::invalid_argument(
                    "user",
                    "custom identifier kind not registered in the config",
                ));
            }
        }
        let known = self.lookup(&user)?;
        let next = self
            .state
            .profiles
            .next_observation(known, &set, at, source)?;
        // From here on nothing fails.
        let oneid = self.ensure_user(&user, "set_attribute", "operator");
        let (new_column, write) = self.state.profiles.set_attribute(oneid, set, next);
        if let Some(t) = new_column {
            self.state.tags.ensure_column(name, t);
        }
        self.write_index(vec![write], at);
        Ok(ProfileOutput::View(Box::new(self.profile(oneid)?)))
    }

    /// The profile commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_profile(&self, c: ProfileCommand) -> Result<ProfileOutput, Error> {
        match c {
            ProfileCommand::Profile { user } => {
                let o = self.lookup(&user)?.ok_or(Error::NotFound {
                    what: "user",
                    id: format!("{user:?}"),
                })?;
                Ok(ProfileOutput::View(Box::new(self.profile(o)?)))
            }
            other => Err(Error::not_a_query(&other)),
        }
    }

    /// The index columns of attributes and aggregates hold exactly what the live persons'
    /// profiles say (for `Engine::check_invariants`).
    pub(crate) fn check_profile_columns(&self) -> Vec<String> {
        let s = &self.state;
        s.profiles.check_columns(&s.tags, &s.users)
    }
}
