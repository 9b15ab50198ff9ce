//! Delivery monitoring: every planned touch, its outcomes, and the conversions attributed to it.
//!
//! A touch's funnel is monotone: a later stage implies the earlier ones (a click was opened and
//! delivered and sent), so a report counts a touch at every stage up to the furthest one
//! recorded. An order by the touched user within the rule's attribution window after the touch
//! converts the user's latest unconverted touch (last touch wins).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::promotion::time_opt;
use super::CampaignError;
use crate::event::TouchOutcome;
use crate::ids::OneId;

/// The default attribution window.
pub const DEFAULT_ATTRIBUTION_DAYS: u32 = 7;

/// One planned touch and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchRecord {
    /// Id (also in the plan row).
    pub id: u64,
    /// The person touched.
    pub user: OneId,
    /// Channel (shared with the run's other touches).
    #[serde(with = "super::promotion::arc_str")]
    pub channel: Arc<str>,
    /// Content id.
    #[serde(with = "super::promotion::arc_str")]
    pub content: Arc<str>,
    /// The rule that planned it.
    #[serde(with = "super::promotion::arc_str")]
    pub rule: Arc<str>,
    /// The audience the rule targeted, if any.
    #[serde(with = "super::promotion::arc_str_opt")]
    pub audience: Option<Arc<str>>,
    /// When it was planned.
    #[serde(with = "crate::event::rfc3339")]
    pub planned_at: DateTime<Utc>,
    /// Outcome times.
    #[serde(with = "time_opt")]
    pub sent_at: Option<DateTime<Utc>>,
    /// First reported delivery (`None`: not reported).
    #[serde(with = "time_opt")]
    pub delivered_at: Option<DateTime<Utc>>,
    /// First reported open (`None`: not reported).
    #[serde(with = "time_opt")]
    pub opened_at: Option<DateTime<Utc>>,
    /// First reported click (`None`: not reported).
    #[serde(with = "time_opt")]
    pub clicked_at: Option<DateTime<Utc>>,
    /// First reported conversion (`None`: not reported).
    #[serde(with = "time_opt")]
    pub converted_at: Option<DateTime<Utc>>,
    /// Revenue of the attributed order.
    #[serde(with = "rust_decimal::serde::str")]
    pub revenue: Decimal,
    /// Attribution window in days.
    pub attribution_days: u32,
}

impl TouchRecord {
    fn stage(&self) -> usize {
        [
            self.converted_at,
            self.clicked_at,
            self.opened_at,
            self.delivered_at,
            self.sent_at,
        ]
        .iter()
        .position(Option::is_some)
        .map_or(0, |p| 5 - p)
    }

    fn slot(&mut self, o: TouchOutcome) -> &mut Option<DateTime<Utc>> {
        match o {
            TouchOutcome::Sent => &mut self.sent_at,
            TouchOutcome::Delivered => &mut self.delivered_at,
            TouchOutcome::Opened => &mut self.opened_at,
            TouchOutcome::Clicked => &mut self.clicked_at,
            _ => &mut self.converted_at,
        }
    }
}

/// One outcome row for `record_outcomes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeRow {
    /// The touch id from the plan.
    pub touch_id: u64,
    /// sent, delivered, opened, clicked or converted.
    pub outcome: TouchOutcome,
    /// When it happened, RFC 3339 with a zone (`Z` or `±hh:mm`), kept in UTC; not before the touch was planned.
    #[serde(with = "crate::event::rfc3339")]
    pub time: DateTime<Utc>,
    /// For `converted`: the order's amount.
    #[serde(default, with = "super::promotion::dec_opt")]
    pub amount: Option<Decimal>,
}

/// How to group the effectiveness report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupBy {
    /// Per channel.
    #[default]
    Channel,
    /// Per rule.
    Rule,
    /// Per targeted audience (`""` for rules without one).
    Audience,
}

/// One row of the channel-effectiveness report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EffectivenessRow {
    /// The channel, rule or audience.
    pub key: String,
    /// Touches planned.
    pub planned: u64,
    /// Reached "sent" (or later).
    pub sent: u64,
    /// Reached "delivered" (or later).
    pub delivered: u64,
    /// Reached "opened" (or later).
    pub opened: u64,
    /// Reached "clicked" (or later).
    pub clicked: u64,
    /// Reached "converted".
    pub converted: u64,
    /// Attributed revenue.
    #[serde(with = "rust_decimal::serde::str")]
    pub revenue: Decimal,
    /// converted / planned (0 when nothing was planned).
    pub conversion_rate: f64,
}

/// Every planned touch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Monitor {
    touches: Vec<TouchRecord>,
    by_user: BTreeMap<OneId, Vec<u64>>,
}

impl Monitor {
    /// Record a planned touch; its id.
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the touch record"
    )]
    pub(crate) fn plan(
        &mut self,
        user: OneId,
        channel: &Arc<str>,
        content: &Arc<str>,
        rule: &Arc<str>,
        audience: Option<&Arc<str>>,
        at: DateTime<Utc>,
        attribution_days: u32,
    ) -> u64 {
        let id = self.touches.len() as u64 + 1;
        self.touches.push(TouchRecord {
            id,
            user,
            channel: channel.clone(),
            content: content.clone(),
            rule: rule.clone(),
            audience: audience.cloned(),
            planned_at: at,
            sent_at: None,
            delivered_at: None,
            opened_at: None,
            clicked_at: None,
            converted_at: None,
            revenue: Decimal::ZERO,
            attribution_days,
        });
        self.by_user.entry(user).or_default().push(id);
        id
    }

    /// A touch by id.
    pub fn touch(&self, id: u64) -> Option<&TouchRecord> {
        id.checked_sub(1)
            .and_then(|i| self.touches.get(usize::try_from(i).ok()?))
    }

    /// Every touch.
    pub fn touches(&self) -> &[TouchRecord] {
        &self.touches
    }

    /// Touches to `user` on `channel` planned in `(since, ∞)`.
    pub(crate) fn recent(&self, user: OneId, channel: &str, since: DateTime<Utc>) -> usize {
        self.by_user.get(&user).map_or(0, |ids| {
            ids.iter()
                .rev()
                .filter_map(|&id| self.touch(id))
                .take_while(|t| t.planned_at > since)
                .filter(|t| *t.channel == *channel)
                .count()
        })
    }

    /// Record outcomes; all rows are checked first. The number of rows applied.
    ///
    /// # Errors
    ///
    /// Nothing is recorded on an error. [`CampaignError::NotFound`] for an unknown touch id;
    /// [`CampaignError::Invalid`] at `rows[i]` for an outcome before its planned touch or a
    /// negative amount.
    pub fn record(&mut self, rows: &[OutcomeRow]) -> Result<usize, CampaignError> {
        for (i, r) in rows.iter().enumerate() {
            let t = self
                .touch(r.touch_id)
                .ok_or_else(|| CampaignError::NotFound {
                    what: "touch",
                    id: r.touch_id.to_string(),
                })?;
            if r.time < t.planned_at {
                return Err(CampaignError::invalid(
                    format!("rows[{i}].time"),
                    "an outcome cannot precede its planned touch",
                ));
            }
            if r.amount.is_some_and(|a| a < Decimal::ZERO) {
                return Err(CampaignError::invalid(
                    format!("rows[{i}].amount"),
                    "must be ≥ 0",
                ));
            }
        }
        for r in rows {
            let Some(t) = usize::try_from(r.touch_id - 1)
                .ok()
                .and_then(|i| self.touches.get_mut(i))
            else {
                continue;
            };
            let slot = t.slot(r.outcome);
            // The first report of a stage wins: replays change nothing.
            if slot.is_none() {
                *slot = Some(r.time);
                if r.outcome == TouchOutcome::Converted {
                    t.revenue = r.amount.unwrap_or_default();
                }
            }
        }
        Ok(rows.len())
    }

    /// A `touch` event: set the outcome on the latest matching planned touch.
    pub(crate) fn on_touch_event(
        &mut self,
        user: OneId,
        channel: &str,
        content: &str,
        rule: Option<&str>,
        outcome: TouchOutcome,
        at: DateTime<Utc>,
    ) {
        let Some(ids) = self.by_user.get(&user) else {
            return;
        };
        let found = ids.iter().rev().copied().find(|&id| {
            self.touch(id).is_some_and(|t| {
                *t.channel == *channel
                    && *t.content == *content
                    && rule.is_none_or(|r| *r == *t.rule)
                    && t.planned_at <= at
            })
        });
        if let Some(t) = found.and_then(|id| self.touches.get_mut(usize::try_from(id - 1).ok()?)) {
            let slot = t.slot(outcome);
            if slot.is_none() {
                *slot = Some(at);
            }
        }
    }

    /// An order: convert the user's latest unconverted touch whose window covers it.
    pub(crate) fn on_order(&mut self, user: OneId, at: DateTime<Utc>, amount: Decimal) {
        let Some(ids) = self.by_user.get(&user) else {
            return;
        };
        let found = ids.iter().rev().copied().find(|&id| {
            self.touch(id).is_some_and(|t| {
                t.converted_at.is_none()
                    && t.planned_at <= at
                    && at < t.planned_at + Duration::days(i64::from(t.attribution_days))
            })
        });
        if let Some(t) = found.and_then(|id| self.touches.get_mut(usize::try_from(id - 1).ok()?)) {
            t.converted_at = Some(at);
            t.revenue = amount;
        }
    }

    /// The ids of the touches planned for `user`.
    pub(crate) fn touches_of(&self, user: OneId) -> &[u64] {
        self.by_user.get(&user).map_or(&[], |v| v.as_slice())
    }

    /// Move `from`'s touches to `into` (a OneID merge): frequency caps count them for `into`.
    /// The ids moved.
    pub(crate) fn merge_user(&mut self, from: OneId, into: OneId) -> Vec<u64> {
        let ids = self.by_user.remove(&from).unwrap_or_default();
        self.move_touches(&ids, into);
        ids
    }

    /// Give touches `ids` back from `from` to `to` (a split), those `from` still holds.
    pub(crate) fn give_back(&mut self, ids: &[u64], from: OneId, to: OneId) {
        let mine: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|&id| self.touch(id).is_some_and(|t| t.user == from))
            .collect();
        if let Some(v) = self.by_user.get_mut(&from) {
            v.retain(|id| !mine.contains(id));
            if v.is_empty() {
                self.by_user.remove(&from);
            }
        }
        self.move_touches(&mine, to);
    }

    fn move_touches(&mut self, ids: &[u64], into: OneId) {
        if ids.is_empty() {
            return;
        }
        for &id in ids {
            if let Some(t) = usize::try_from(id - 1)
                .ok()
                .and_then(|i| self.touches.get_mut(i))
            {
                t.user = into;
            }
        }
        let v = self.by_user.entry(into).or_default();
        v.extend_from_slice(ids);
        v.sort_unstable();
        v.dedup();
    }

    /// The users touches are planned for, and whether the per-user index agrees with them.
    pub(crate) fn check_users(&self, ok: impl Fn(OneId) -> bool) -> Vec<String> {
        let mut bad = Vec::new();
        let mut want: BTreeMap<OneId, Vec<u64>> = BTreeMap::new();
        for t in &self.touches {
            want.entry(t.user).or_default().push(t.id);
        }
        if want != self.by_user {
            bad.push("campaigns: the per-user touch index disagrees with the touches".to_owned());
        }
        if let Some(u) = want.keys().find(|u| !ok(**u)) {
            bad.push(format!(
                "campaigns: touches planned for {u}, which is neither a live person nor a pseudonym"
            ));
        }
        bad
    }

    /// Funnel per channel, rule or audience.
    pub fn effectiveness(&self, by: GroupBy) -> Vec<EffectivenessRow> {
        let mut rows: BTreeMap<&str, EffectivenessRow> = BTreeMap::new();
        for t in &self.touches {
            let key = match by {
                GroupBy::Channel => &*t.channel,
                GroupBy::Rule => &*t.rule,
                GroupBy::Audience => t.audience.as_deref().unwrap_or(""),
            };
            let r = rows.entry(key).or_insert_with(|| EffectivenessRow {
                key: key.to_owned(),
                ..EffectivenessRow::default()
            });
            let s = t.stage();
            r.planned += 1;
            r.sent += u64::from(s >= 1);
            r.delivered += u64::from(s >= 2);
            r.opened += u64::from(s >= 3);
            r.clicked += u64::from(s >= 4);
            r.converted += u64::from(s >= 5);
            r.revenue += t.revenue;
        }
        rows.into_values()
            .map(|mut r| {
                r.conversion_rate = if r.planned == 0 {
                    0.0
                } else {
                    r.converted as f64 / r.planned as f64
                };
                r
            })
            .collect()
    }
}
