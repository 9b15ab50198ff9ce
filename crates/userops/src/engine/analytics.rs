//! The analyses' door: every analytics command only reads, over the per-person timelines.

use super::Engine;
use crate::analytics::{AnalyticsCommand, AnalyticsReads};
use crate::command::Output;
use crate::error::Error;

impl Engine {
    pub(crate) fn execute_analytics(&mut self, c: AnalyticsCommand) -> Result<Output, Error> {
        self.query_analytics(c)
    }

    /// Every analytics command changes nothing: all run on a shared engine ([`Engine::query`]).
    pub(crate) fn query_analytics(&self, c: AnalyticsCommand) -> Result<Output, Error> {
        let reads = AnalyticsReads {
            period: self.config.period(),
            tz_offset: self.config.business_tz().local_minus_utc(),
            segments: &|segments, by_tag, audiences| {
                self.breakdown_segments(segments, by_tag, audiences)
            },
            lookup: &|user| self.lookup(user),
        };
        self.state.analytics.query(c, reads).map(Output::Analytics)
    }
}
