//! The order book's door: the check and record phases of `order` and `refund` events
//! ([`crate::orders`]), and what other modules' order flows read of the book.

use super::Engine;
use crate::error::Error;
use crate::event::{Event, EventBody};
use crate::ids::OneId;

impl Engine {
    /// The check phase of `order` and `refund` events (see [`crate::orders`]). `person`: the
    /// event's user, when already known.
    pub(crate) fn orders_check_event(
        &self,
        event: &Event,
        person: Option<OneId>,
    ) -> Result<(), Error> {
        let program = &event.source.program;
        let book = &self.state.orders;
        match &event.body {
            EventBody::Order { order_id, .. } => book.check_order(program, order_id, &event.key),
            EventBody::Refund {
                order_id,
                amount,
                lines,
                ..
            } => book
                .check_refund(program, order_id, person, *amount, lines, |o| {
                    self.state.identity.canonical(o).unwrap_or(o)
                })
                .map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Whether the order a `refund` event names may predate the order book (see
    /// [`OrderBook::predates_book`](crate::orders::OrderBook::predates_book)); false for
    /// any other event.
    pub(crate) fn refund_predates_book(&self, event: &Event) -> bool {
        match &event.body {
            EventBody::Refund { order_id, .. } => self
                .state
                .orders
                .predates_book(&event.source.program, order_id),
            _ => false,
        }
    }

    /// Record an accepted order or refund (must not fail).
    pub(crate) fn orders_on_event(&mut self, event: &Event, person: Option<OneId>) {
        let Some(person) = person else { return };
        if !matches!(
            event.body,
            EventBody::Order { .. } | EventBody::Refund { .. }
        ) {
            return;
        }
        let identity = &self.state.identity;
        self.state.orders.on_event(
            &event.source.program,
            &event.key,
            &event.body,
            person,
            |o| identity.canonical(o).unwrap_or(o),
        );
    }
}
