//! The models' door: the event hooks, the commands, and writing a model's answer as a tag.

use chrono::{DateTime, Utc};

use super::Engine;
use crate::command::Output;
use crate::error::Error;
use crate::event::{Event, EventBody};
use crate::ids::OneId;
use crate::models::{ModelsCommand, ModelsOutput, ModelsReads};

impl Engine {
    /// The check phase of an event, for what the models read: the user a message replies to
    /// must be one the event could name as its own user (a known OneID, or an identifier of an
    /// accepted kind that is not blocklisted).
    pub(crate) fn models_check_event(&self, event: &Event) -> Result<(), Error> {
        if let EventBody::Community {
            reply_to: Some(r), ..
        } = &event.body
        {
            self.check_user(r)
                .map_err(|e| Error::invalid_event("reply_to", e.to_string()))?;
        }
        Ok(())
    }

    /// The event hook: keep what the models need. The user a message replies to is created if
    /// new (SPEC §2: a referenced user is created if new), so a reply counts the same whether
    /// it arrives before or after the replied-to user's own first event.
    pub(crate) fn models_on_event(&mut self, event: &Event, oneid: Option<OneId>) {
        let reply_to = match &event.body {
            EventBody::Community {
                reply_to: Some(r), ..
            } => Some(self.resolve_or_create(r, event)),
            _ => None,
        };
        self.state.models.on_event(event, oneid, reply_to);
    }

    fn models_reads(&self) -> ModelsReads<'_> {
        ModelsReads {
            identity: &self.state.identity,
            tz: self.config.business_tz(),
        }
    }

    /// Execute a models command; with `tag`, write the answer as a model tag.
    pub(crate) fn execute_models(&mut self, c: ModelsCommand) -> Result<Output, Error> {
        let tag = c.tag().map(str::to_owned);
        let as_of = c.as_of();
        let out = self.state.models.query(c, self.models_reads())?;
        if let Some(tag) = tag {
            self.write_models_tag(&tag, &out, as_of)?;
        }
        Ok(Output::Models(out))
    }

    /// The models commands that change nothing (no `tag` to write), on a shared engine
    /// ([`Engine::query`]).
    pub(crate) fn query_models(&self, c: ModelsCommand) -> Result<Output, Error> {
        if c.mutates() {
            return Err(Error::not_a_query(&c));
        }
        self.state
            .models
            .query(c, self.models_reads())
            .map(Output::Models)
    }

    /// Write a model's per-user answer as an enum model tag (replacing the previous answer).
    fn write_models_tag(
        &mut self,
        tag: &str,
        out: &ModelsOutput,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let (model, mut rows) = out.tag_rows()?;
        // Answers are per surviving person; persons erased since are left out.
        let empty = crate::tags::Value::Text(String::new());
        rows.retain(|(o, v)| {
            self.state.identity.canonical(*o) == Some(*o) && v.iter().all(|x| x != &empty)
        });
        self.write_model_values(model, tag, crate::tags::ValueType::Enum, &rows, true, now)
    }
}
