//! The loyalty module's door: its commands, its reaction to `order` and `refund` events, and
//! the one flow that leaves the module after every loyalty write — points and tier as columns
//! of the tag index ([`crate::loyalty::points_column`]), and the rule tags reading them.
//!
//! Loyalty does not own persons: the door resolves the member a command names before the
//! command runs and lends it a way to create them once every check passed.

use chrono::{DateTime, Utc};

use super::{ensure_user_in, Engine, State};
use crate::command::Output;
use crate::error::Error;
use crate::event::{Event, EventBody, UserRef};
use crate::ids::OneId;
use crate::loyalty::commands::{Context, Named};
use crate::loyalty::index::{self, named_user, Touch};
use crate::loyalty::{Loyalty, LoyaltyCommand, LoyaltyOutput};

impl Engine {
    /// The loyalty module's state (read-only): programs, ledger, members.
    pub fn loyalty(&self) -> &Loyalty {
        &self.state.loyalty
    }

    /// Execute a loyalty command.
    pub(crate) fn execute_loyalty(&mut self, c: LoyaltyCommand) -> Result<Output, Error> {
        if !c.mutates() {
            return self.query_loyalty(c).map(Output::Loyalty);
        }
        let user = named_user(&c).cloned();
        let known = user.as_ref().map_or(Ok(None), |u| self.loyalty_user(u));
        // A new identifier is resolved again after the write, which creates the person.
        let before = user.as_ref().and_then(|u| self.lookup(u).ok().flatten());
        let touch = self.state.loyalty.touch_for(&c, before);
        let created = match &c {
            LoyaltyCommand::CreateProgram { program } => Some(program.id.clone()),
            _ => None,
        };
        let cx = self.loyalty_context();
        let State {
            loyalty, identity, ..
        } = &mut self.state;
        let mut create = |u: &UserRef| ensure_user_in(identity, u, "loyalty", "operator");
        let out = loyalty.execute(
            c,
            cx,
            &mut Named {
                known,
                create: &mut create,
            },
        )?;
        if let Some(id) = created {
            self.loyalty_columns(&id);
        }
        let now = self.state.loyalty.now(None);
        self.loyalty_reindex(touch, user.as_ref(), now);
        Ok(Output::Loyalty(out))
    }

    /// The loyalty commands that change nothing, on a shared engine ([`Engine::query`]).
    pub(crate) fn query_loyalty(&self, c: LoyaltyCommand) -> Result<LoyaltyOutput, Error> {
        let known = named_user(&c).map_or(Ok(None), |u| self.loyalty_user(u));
        self.state
            .loyalty
            .query(c, self.config.business_tz(), known)
    }

    /// The person behind a reference a loyalty command names, if known (errors for a OneID
    /// that never existed, reported at `user`).
    fn loyalty_user(&self, user: &UserRef) -> Result<Option<OneId>, Error> {
        self.check_user(user)
            .and_then(|()| self.lookup(user))
            .map_err(|e| Error::invalid_argument("user", e.to_string()))
    }

    fn loyalty_context(&self) -> Context {
        Context {
            tz: self.config.business_tz(),
            minor_units: self.config.currency_minor_units(),
            replaying: self.replaying,
        }
    }

    /// The check phase of `order` and `refund` events for loyalty (see
    /// [`Loyalty::check_order_event`]). `user`: the event's person, when already known.
    pub(crate) fn loyalty_check_event(
        &self,
        event: &Event,
        user: Option<OneId>,
    ) -> Result<(), Error> {
        let legacy = self.refund_predates_book(event);
        self.state
            .loyalty
            .check_order_event(event, user, legacy, self.loyalty_context())
    }

    /// An order earns points, a refund gives them back ([`Loyalty::on_order_event`]); then the
    /// index follows. Never fails.
    pub(crate) fn loyalty_on_event(&mut self, event: &Event, oneid: Option<OneId>) {
        let Some(user) = oneid else { return };
        if !matches!(
            event.body,
            EventBody::Order { .. } | EventBody::Refund { .. }
        ) {
            return;
        }
        let touch = self.state.loyalty.touch(&[user]);
        let legacy = self.refund_predates_book(event);
        let tz = self.config.business_tz();
        self.state.loyalty.on_order_event(event, user, legacy, tz);
        self.loyalty_reindex(touch, None, event.time);
    }

    /// [`Touch`] for a write naming `users` directly (merges, splits).
    pub(crate) fn loyalty_touch_users(&self, users: &[OneId]) -> Touch {
        self.state.loyalty.touch(users)
    }

    /// After a loyalty write: write the points and tier of every member it touched
    /// ([`Loyalty::index_writes`]) into the tag index, and recompute the rule tags reading a
    /// column that changed, for the users whose value changed. `user`: the member a command
    /// named, resolved after the write (a command may create the person). Never fails.
    pub(crate) fn loyalty_reindex(&mut self, t: Touch, user: Option<&UserRef>, now: DateTime<Utc>) {
        let named = user.and_then(|u| self.lookup(u).ok().flatten());
        let writes = self.state.loyalty.index_writes(t, named);
        self.write_index_changed(writes, now);
    }

    /// Create the index columns of a new program ([`index::columns`]).
    pub(crate) fn loyalty_columns(&mut self, program: &str) {
        for (column, kind) in index::columns(program) {
            self.state.tags.ensure_column(&column, kind);
        }
    }
}
