//! The models' commands and outputs, and the compact log of the events they need.
//!
//! The engine keeps, per accepted event (hook in `Engine::apply_event`): orders (user, time,
//! amount, channel, region, lines), activities and behaviours (user, time, type, category,
//! channel) and community messages (user, time, replied-to user). Users are stored as the OneID
//! at ingest time and mapped to their surviving OneID at query time, so merges need no rewrite.
//! Refunds are not subtracted: every model here reads gross orders. Times are converted to the
//! business time zone's wall clock before the models see them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{BgNbdParams, Freq, HighValueRule, Monetary, Segment, Split};
use crate::error::Error;
use crate::event::{CommunityAction, Event, EventBody};
use crate::ids::OneId;
use crate::tags::Value as TagValue;

/// One order as the models need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OrderRecord {
    pub(super) user: u64,
    pub(super) time: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub(super) amount: Decimal,
    pub(super) channel: String,
    pub(super) region: String,
    /// (category, unit price, quantity).
    pub(super) lines: Vec<(String, Decimal, u32)>,
}

/// One activity or behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BehaviourRecord {
    pub(super) user: u64,
    pub(super) time: i64,
    /// `activity` or `behavior`.
    pub(super) source: String,
    /// The activity or behaviour type.
    pub(super) kind: String,
    pub(super) category: String,
    pub(super) channel: String,
}

/// One community message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    pub(super) user: u64,
    pub(super) time: i64,
    pub(super) reply_to: Option<u64>,
}

/// What the models keep from ingested events (serialized with the engine state).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ModelsLog {
    pub(super) orders: Vec<OrderRecord>,
    pub(super) behaviours: Vec<BehaviourRecord>,
    pub(super) messages: Vec<MessageRecord>,
}

impl ModelsLog {
    /// Record what the models need from an accepted event. Never fails.
    pub(crate) fn on_event(&mut self, event: &Event, user: Option<OneId>, reply_to: Option<OneId>) {
        let Some(user) = user.map(|o| o.0) else {
            return;
        };
        let time = event.time.timestamp();
        match &event.body {
            EventBody::Order {
                amount,
                channel,
                region,
                lines,
                ..
            } => self.orders.push(OrderRecord {
                user,
                time,
                amount: *amount,
                channel: channel.clone(),
                region: region.clone(),
                lines: lines
                    .iter()
                    .map(|l| (l.category.clone(), l.price, l.qty))
                    .collect(),
            }),
            EventBody::Activity { activity, .. } => self.behaviours.push(BehaviourRecord {
                user,
                time,
                source: "activity".into(),
                kind: activity.clone(),
                category: String::new(),
                channel: event.source.platform.clone(),
            }),
            EventBody::Behavior {
                behavior,
                category,
                channel,
                ..
            } => self.behaviours.push(BehaviourRecord {
                user,
                time,
                source: "behavior".into(),
                kind: behavior.clone(),
                category: category.clone(),
                channel: channel.clone(),
            }),
            EventBody::Community {
                action: CommunityAction::Message,
                ..
            } => self.messages.push(MessageRecord {
                user,
                time,
                reply_to: reply_to.map(|o| o.0),
            }),
            _ => {}
        }
    }
}

/// The models' commands (read-only, except that with `tag` they write a model tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelsCommand {
    /// RFM per user with orders in the window. Output: rows of [`RfmRow`].
    Rfm {
        /// As of when (RFC 3339).
        #[serde(with = "crate::event::rfc3339")]
        as_of: DateTime<Utc>,
        /// Window in days (default: all orders up to `as_of`).
        #[serde(default)]
        window_days: Option<u32>,
        /// `sum` (default) or `mean`.
        #[serde(default)]
        monetary: Monetary,
        /// `mean` (default) or `median`.
        #[serde(default)]
        split: Split,
        /// Write the answer as this enum model tag (model `rfm`): the segment. Users without an
        /// answer lose their value. The command then changes state.
        #[serde(default)]
        tag: Option<String>,
    },
    /// BG/NBD fitted on the orders up to `as_of`, P(alive) and a risk band per user.
    /// Output: [`ChurnRisk`].
    ChurnRisk {
        /// Observation end (RFC 3339).
        #[serde(with = "crate::event::rfc3339")]
        as_of: DateTime<Utc>,
        /// Period: `D` (default), `W` or `M`.
        #[serde(default)]
        freq: Freq,
        /// Churn probability (1 − P(alive)) below this is low risk (default 0.3).
        #[serde(default = "default_low")]
        low_below: f64,
        /// From this on, high risk (default 0.7).
        #[serde(default = "default_high")]
        high_from: f64,
        /// Write the answer as this enum model tag (model `churn_risk`): the risk band `low`/`mid`/`high`. Users without an
        /// answer lose their value. The command then changes state.
        #[serde(default)]
        tag: Option<String>,
    },
    /// Preference shares per user over one dimension, in the lookback window
    /// `(as_of − lookback_months, as_of]` (calendar months, business time zone): weight(user,
    /// value) is the user's spend on order lines with that value for `category`, `price_band`
    /// and `channel` (the same amounts as the user's share of [`ModelsCommand::CrossTable`]),
    /// and a count of events for `activity_type`, `function` and `touchpoint`; share = weight /
    /// the user's total. Rank 1 is the largest share; equal weights rank by value text
    /// (ascending). An order without lines spends on no value. Output: rows of
    /// [`PreferenceRow`], by user then rank.
    PreferenceShares {
        /// As of when (RFC 3339).
        #[serde(with = "crate::event::rfc3339")]
        as_of: DateTime<Utc>,
        /// What to share out: see [`Dimension`].
        dimension: Dimension,
        /// Lookback in calendar months (default 3).
        #[serde(default = "default_lookback")]
        lookback_months: u32,
        /// Keep the top k per user.
        #[serde(default)]
        top_k: Option<u32>,
        /// Price band upper bounds for `price_band` (ascending decimal strings).
        #[serde(default)]
        price_bands: Vec<Decimal>,
        /// Write the answer as this enum model tag (model `preference`): the top-k values (all of them with no `top_k`). Users without an
        /// answer lose their value. The command then changes state.
        #[serde(default)]
        tag: Option<String>,
    },
    /// Cross table in the lookback window: order lines (amounts = price × qty) for
    /// `region`/`category`/`channel`/`price_band`; location × activity for `region` with
    /// `activity_type` or `function` (counts of activity / behaviour events by the region of
    /// the user's latest order up to `as_of`, at any time before the window too; of orders at
    /// the same latest instant, the region that sorts first). A user without an order with a
    /// region up to `as_of` is in the row (or column) `"(unknown)"`: a login of a user who never
    /// ordered counts as `{"row": "(unknown)", "col": "login"}`. Output: rows of [`CrossRow`]
    /// sorted by (row, col).
    CrossTable {
        /// As of when (RFC 3339).
        #[serde(with = "crate::event::rfc3339")]
        as_of: DateTime<Utc>,
        /// Rows: `region`, `category`, `channel` or `price_band`.
        rows: Dimension,
        /// Columns: as rows.
        cols: Dimension,
        /// Lookback in calendar months (default 3).
        #[serde(default = "default_lookback")]
        lookback_months: u32,
        /// Price band upper bounds.
        #[serde(default)]
        price_bands: Vec<Decimal>,
    },
    /// Decayed activity score and level per user. Output: rows of [`ActivityRow`].
    ActivityScores {
        /// As of when (RFC 3339).
        #[serde(with = "crate::event::rfc3339")]
        as_of: DateTime<Utc>,
        /// Half-life in days (default 30).
        #[serde(default = "default_half_life")]
        half_life_days: f64,
        /// Weight per event: keyed by activity or behaviour type (`login`, `review`), or by
        /// event kind (`activity`, `behavior`, `order`) for every event of the kind without a
        /// weight of its own type; others weigh 1. Only activities, behaviours and orders
        /// count: a key naming another event kind (`touch`, `register`, ...) is refused.
        #[serde(default)]
        weights: BTreeMap<String, f64>,
        /// Levels as (name, lower bound), in any order: a score gets the level with the highest
        /// bound it reaches, and `dormant` below every bound. Default high ≥ 10, medium ≥ 3,
        /// low ≥ 0.5, else dormant.
        #[serde(default)]
        levels: Option<Vec<(String, f64)>>,
        /// Write the answer as this enum model tag (model `activity`): the level. Users without an
        /// answer lose their value. The command then changes state.
        #[serde(default)]
        tag: Option<String>,
    },
    /// Supervised churn: features per user at `as_of − window_days` labelled "churned" when the
    /// user has no order, activity or behaviour in the `window_days` that follow; a logistic
    /// regression fitted on them (AUC on a seeded holdout); every user scored from their
    /// features at `as_of`. Features ([`CHURN_FEATURES`]): recency (days since the last event),
    /// frequency (orders in the window), tenure (days since the first event), trend (events in
    /// the window's second half minus its first half) and the activity score (half-life 30 days,
    /// every event weighing 1). Output: [`SupervisedChurn`].
    ChurnModel {
        /// As of when (RFC 3339).
        #[serde(with = "crate::event::rfc3339")]
        as_of: DateTime<Utc>,
        /// Window and label period in days (default 30).
        #[serde(default = "default_window")]
        window_days: u32,
        /// Holdout fraction (default 0.3).
        #[serde(default = "default_holdout")]
        holdout: f64,
        /// Holdout seed.
        #[serde(default)]
        seed: u64,
        /// Score below this is low risk (default 0.3).
        #[serde(default = "default_low")]
        low_below: f64,
        /// From this on, high risk (default 0.7).
        #[serde(default = "default_high")]
        high_from: f64,
        /// Write the answer as this enum model tag (model `churn_model`): the risk band `low`/`mid`/`high`. Users without an
        /// answer lose their value. The command then changes state.
        #[serde(default)]
        tag: Option<String>,
    },
    /// High-value screening. Output: rows of [`HighValueRow`].
    HighValueUsers {
        /// As of when (RFC 3339).
        #[serde(with = "crate::event::rfc3339")]
        as_of: DateTime<Utc>,
        /// Window in days (default: everything up to `as_of`).
        #[serde(default)]
        window_days: Option<u32>,
        /// The thresholds ([`HighValueRule`]); a criterion left out is not applied.
        #[serde(default)]
        rule: HighValueRule,
    },
}

impl ModelsCommand {
    /// The model tag the command writes, if any.
    pub fn tag(&self) -> Option<&str> {
        match self {
            ModelsCommand::Rfm { tag, .. }
            | ModelsCommand::ChurnRisk { tag, .. }
            | ModelsCommand::PreferenceShares { tag, .. }
            | ModelsCommand::ActivityScores { tag, .. }
            | ModelsCommand::ChurnModel { tag, .. } => tag.as_deref(),
            _ => None,
        }
    }

    /// Whether the command changes state (writing a model tag does).
    pub fn mutates(&self) -> bool {
        self.tag().is_some()
    }

    pub(crate) fn as_of(&self) -> DateTime<Utc> {
        match self {
            ModelsCommand::Rfm { as_of, .. }
            | ModelsCommand::ChurnRisk { as_of, .. }
            | ModelsCommand::PreferenceShares { as_of, .. }
            | ModelsCommand::CrossTable { as_of, .. }
            | ModelsCommand::ActivityScores { as_of, .. }
            | ModelsCommand::ChurnModel { as_of, .. }
            | ModelsCommand::HighValueUsers { as_of, .. } => *as_of,
        }
    }
}

mod erased {
    /// The wire name of a unit enum value (segment, risk band).
    pub trait Named {
        fn wire_name(&self) -> String;
    }

    impl<T: serde::Serialize> Named for T {
        fn wire_name(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        }
    }
}

fn default_low() -> f64 {
    0.3
}
fn default_high() -> f64 {
    0.7
}
fn default_lookback() -> u32 {
    3
}
fn default_half_life() -> f64 {
    30.0
}
fn default_window() -> u32 {
    30
}
fn default_holdout() -> f64 {
    0.3
}

/// The supervised churn model's feature names, in column order.
pub const CHURN_FEATURES: [&str; 5] = ["recency", "frequency", "tenure", "trend", "activity_score"];

/// The supervised churn model and its scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisedChurn {
    /// The fitted model with its holdout AUC.
    pub model: super::ChurnModel,
    /// Per user at `as_of`.
    pub users: Vec<SupervisedChurnRow>,
}

/// One user's supervised churn score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SupervisedChurnRow {
    /// The user's OneID (what a merged person did counts under the survivor).
    pub oneid: OneId,
    /// Feature values, in [`CHURN_FEATURES`] order.
    pub features: Vec<f64>,
    /// P(churn).
    pub score: f64,
    /// Band (model tag value).
    pub risk: super::RiskBand,
    /// Coefficient × value per feature: what drives the score (log-odds scale).
    pub contributions: Vec<f64>,
}

/// A dimension for preferences and cross tables, each with one basis: the order-line
/// dimensions weigh spend (Σ price × qty of the lines), the others count events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Dimension {
    /// Order-line category; spend.
    Category,
    /// Order-line price band (by unit price); spend.
    PriceBand,
    /// The order's sales channel, for each of its lines; spend.
    Channel,
    /// Activity type: counts of `activity` events.
    ActivityType,
    /// Function used: counts of `behavior` events by type.
    Function,
    /// Touchpoint: counts of `behavior` events by their channel / touchpoint (those that name
    /// one).
    Touchpoint,
    /// The order's region (cross tables only); spend.
    Region,
}

/// One RFM row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmRow {
    /// The user's OneID (what a merged person did counts under the survivor).
    pub oneid: OneId,
    /// Days since the last order.
    pub recency: i64,
    /// Orders in the window.
    pub frequency: u64,
    /// Sum or mean.
    pub monetary: f64,
    /// Score 1–5.
    pub r_score: u8,
    /// Score 1–5.
    pub f_score: u8,
    /// Score 1–5.
    pub m_score: u8,
    /// The segment (model tag value).
    pub segment: Segment,
}

/// The BG/NBD churn view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnRisk {
    /// Fitted parameters.
    pub params: BgNbdParams,
    /// Σ ln L.
    pub log_likelihood: f64,
    /// Per user.
    pub users: Vec<ChurnRow>,
}

/// One user's churn risk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChurnRow {
    /// The user's OneID (what a merged person did counts under the survivor).
    pub oneid: OneId,
    /// Repeat purchase periods.
    pub frequency: f64,
    /// Age at last purchase.
    pub recency: f64,
    /// Age at `as_of`.
    #[serde(rename = "T")]
    pub t: f64,
    /// P(alive).
    pub p_alive: f64,
    /// Band of 1 − P(alive) (model tag value).
    pub risk: super::RiskBand,
}

/// One preference share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferenceRow {
    /// The user's OneID (what a merged person did counts under the survivor).
    pub oneid: OneId,
    /// The category, channel, type, or price band label.
    pub value: String,
    /// Summed weight.
    pub weight: f64,
    /// Share of the user's total.
    pub share: f64,
    /// 1 = top preference.
    pub rank: u32,
}

/// One cross-table cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossRow {
    /// Row label.
    pub row: String,
    /// Column label.
    pub col: String,
    /// Summed line amount.
    pub amount: f64,
}

/// One activity score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityRow {
    /// The user's OneID (what a merged person did counts under the survivor).
    pub oneid: OneId,
    /// Decayed weighted count.
    pub score: f64,
    /// Level (model tag value).
    pub level: String,
}

/// One screened user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HighValueRow {
    /// The user's OneID (what a merged person did counts under the survivor).
    pub oneid: OneId,
    /// What the criteria are checked against: orders, amount, messages, replies and their
    /// intervals in the window.
    #[serde(flatten)]
    pub features: super::HighValueFeatures,
    /// Whether every criterion holds.
    pub high_value: bool,
}

/// What the models' commands return.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum ModelsOutput {
    /// From `rfm`.
    Rfm(Vec<RfmRow>),
    /// From `churn_risk`.
    ChurnRisk(ChurnRisk),
    /// From `preference_shares`.
    Preferences(Vec<PreferenceRow>),
    /// From `cross_table`.
    Cross(Vec<CrossRow>),
    /// From `activity_scores`.
    Activity(Vec<ActivityRow>),
    /// From `high_value_users`.
    HighValue(Vec<HighValueRow>),
    /// From `churn_model`.
    SupervisedChurn(SupervisedChurn),
}

pub(super) fn money(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

pub(super) fn band_label(i: usize, bounds: &[Decimal]) -> String {
    match (i.checked_sub(1).and_then(|j| bounds.get(j)), bounds.get(i)) {
        (None, Some(hi)) => format!("<{hi}"),
        (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
        (Some(lo), None) => format!(">={lo}"),
        (None, None) => "all".into(),
    }
}

/// Per user, the values of a model tag.
pub(crate) type TagRows = Vec<(OneId, Vec<TagValue>)>;

impl ModelsOutput {
    /// The model's per-user answer as enum tag values (model name, one row per user), for
    /// writing as a model tag.
    ///
    /// # Errors
    ///
    /// `invalid_argument` at `tag` for an output with no per-user answer.
    pub(crate) fn tag_rows(&self) -> Result<(&'static str, TagRows), Error> {
        let name = |v: &dyn erased::Named| v.wire_name();
        let text = TagValue::Text;
        // One enum value per user, from (user, value) pairs.
        let single = |pairs: &mut dyn Iterator<Item = (OneId, String)>| {
            pairs.map(|(o, v)| (o, vec![text(v)])).collect::<Vec<_>>()
        };
        Ok(match self {
            ModelsOutput::Rfm(r) => (
                "rfm",
                single(&mut r.iter().map(|x| (x.oneid, name(&x.segment)))),
            ),
            ModelsOutput::ChurnRisk(c) => (
                "churn_risk",
                single(&mut c.users.iter().map(|x| (x.oneid, name(&x.risk)))),
            ),
            ModelsOutput::SupervisedChurn(c) => (
                "churn_model",
                single(&mut c.users.iter().map(|x| (x.oneid, name(&x.risk)))),
            ),
            ModelsOutput::Activity(a) => (
                "activity",
                single(&mut a.iter().map(|x| (x.oneid, x.level.clone()))),
            ),
            ModelsOutput::Preferences(p) => {
                let mut by: BTreeMap<OneId, Vec<TagValue>> = BTreeMap::new();
                for x in p.iter().filter(|x| !x.value.is_empty()) {
                    by.entry(x.oneid).or_default().push(text(x.value.clone()));
                }
                ("preference", by.into_iter().collect())
            }
            other => {
                return Err(Error::invalid_argument(
                    "tag",
                    format!("this model has no per-user tag to write ({other:?})"),
                ))
            }
        })
    }
}
