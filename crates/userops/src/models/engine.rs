//! The models as engine commands, fed by a compact log of the events they need.
//!
//! The engine keeps, per accepted event (hook in `Engine::apply_event`): orders (user, time,
//! amount, channel, region, lines), activities and behaviours (user, time, type, category,
//! channel) and community messages (user, time, replied-to user). Users are stored as the OneID
//! at ingest time and mapped to their surviving OneID at query time, so merges need no rewrite.
//! Refunds are not subtracted: every model here reads gross orders. Times are converted to the
//! business time zone's wall clock before the models see them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{
    activity_scores, high_value_features, lookback_start, preferences, rfm, summary_data,
    ActivityLevels, BgNbdFit, BgNbdParams, Freq, HighValueInput, HighValueRule, Monetary,
    RiskBands, Segment, Split,
};
use crate::command::Output;
use crate::error::Error;
use crate::event::{CommunityAction, Event, EventBody};
use crate::ids::OneId;
use crate::Engine;

/// One order as the models need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OrderRecord {
    pub(super) user: u64,
    time: i64,
    #[serde(with = "rust_decimal::serde::str")]
    amount: Decimal,
    channel: String,
    region: String,
    /// (category, unit price, quantity).
    lines: Vec<(String, Decimal, u32)>,
}

/// One activity or behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BehaviourRecord {
    pub(super) user: u64,
    time: i64,
    /// `activity` or `behavior`.
    source: String,
    /// The activity or behaviour type.
    kind: String,
    category: String,
    channel: String,
}

/// One community message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MessageRecord {
    pub(super) user: u64,
    time: i64,
    reply_to: Option<u64>,
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

    fn as_of(&self) -> DateTime<Utc> {
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

fn money(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(f64::NAN)
}

fn band_label(i: usize, bounds: &[Decimal]) -> String {
    match (i.checked_sub(1).and_then(|j| bounds.get(j)), bounds.get(i)) {
        (None, Some(hi)) => format!("<{hi}"),
        (Some(lo), Some(hi)) => format!("{lo}-{hi}"),
        (Some(lo), None) => format!(">={lo}"),
        (None, None) => "all".into(),
    }
}

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

    fn wall(&self, t: i64) -> i64 {
        t + i64::from(self.config.business_tz().local_minus_utc())
    }

    fn live(&self, user: u64) -> u64 {
        self.state
            .identity
            .canonical(OneId(user))
            .map_or(user, |o| o.0)
    }

    /// Execute a models command; with `tag`, write the answer as a model tag.
    pub(crate) fn execute_models(&mut self, c: ModelsCommand) -> Result<Output, Error> {
        let tag = c.tag().map(str::to_owned);
        let as_of = c.as_of();
        let out = self.models_query(c)?;
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
        self.models_query(c).map(Output::Models)
    }

    /// Write a model's per-user answer as an enum model tag (replacing the previous answer).
    fn write_models_tag(
        &mut self,
        tag: &str,
        out: &ModelsOutput,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let name = |v: &dyn erased::Named| v.wire_name();
        let text = crate::tags::Value::Text;
        // One enum value per user, from (user, value) pairs.
        let single = |pairs: &mut dyn Iterator<Item = (OneId, String)>| {
            pairs.map(|(o, v)| (o, vec![text(v)])).collect::<Vec<_>>()
        };
        let (model, mut rows): (&str, Vec<(OneId, Vec<crate::tags::Value>)>) = match out {
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
                let mut by: BTreeMap<OneId, Vec<crate::tags::Value>> = BTreeMap::new();
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
        };
        // Answers are per surviving person; persons erased since are left out.
        rows.retain(|(o, v)| {
            self.state.identity.canonical(*o) == Some(*o)
                && v.iter().all(|x| x != &text(String::new()))
        });
        self.write_model_values(model, tag, crate::tags::ValueType::Enum, &rows, true, now)
    }

    fn models_query(&self, c: ModelsCommand) -> Result<ModelsOutput, Error> {
        match c {
            ModelsCommand::Rfm {
                as_of,
                window_days,
                monetary,
                split,
                ..
            } => self.query_rfm(as_of, window_days, monetary, split),
            ModelsCommand::ChurnRisk {
                as_of,
                freq,
                low_below,
                high_from,
                ..
            } => self.query_churn_risk(as_of, freq, low_below, high_from),
            ModelsCommand::PreferenceShares {
                as_of,
                dimension,
                lookback_months,
                top_k,
                price_bands,
                ..
            } => {
                self.query_preference_shares(as_of, dimension, lookback_months, top_k, price_bands)
            }
            ModelsCommand::CrossTable {
                as_of,
                rows,
                cols,
                lookback_months,
                price_bands,
            } => self.query_cross_table(as_of, rows, cols, lookback_months, price_bands),
            ModelsCommand::ActivityScores {
                as_of,
                half_life_days,
                weights,
                levels,
                ..
            } => self.query_activity_scores(as_of, half_life_days, weights, levels),
            ModelsCommand::ChurnModel {
                as_of,
                window_days,
                holdout,
                seed,
                low_below,
                high_from,
                ..
            } => self.query_churn_model(as_of, window_days, holdout, seed, low_below, high_from),
            ModelsCommand::HighValueUsers {
                as_of,
                window_days,
                rule,
            } => self.query_high_value_users(as_of, window_days, rule),
        }
    }

    /// RFM scores and segments of every buyer, from the orders in order.
    fn query_rfm(
        &self,
        as_of: DateTime<Utc>,
        window_days: Option<u32>,
        monetary: Monetary,
        split: Split,
    ) -> Result<ModelsOutput, Error> {
        let orders = self.orders_in_order();
        let users: Vec<u64> = orders.iter().map(|o| self.live(o.user)).collect();
        let times: Vec<i64> = orders.iter().map(|o| self.wall(o.time)).collect();
        let amounts: Vec<f64> = orders.iter().map(|o| money(o.amount)).collect();
        let mut spec = super::RfmSpec::as_of(self.wall(as_of.timestamp()))
            .monetary(monetary)
            .split(split);
        if let Some(d) = window_days {
            spec = spec.window_days(d);
        }
        let r = rfm(&users, &times, &amounts, &spec)?;
        Ok(ModelsOutput::Rfm(
            (0..r.customer.len())
                .map(|i| RfmRow {
                    oneid: OneId(r.customer[i]),
                    recency: r.recency[i],
                    frequency: r.frequency[i],
                    monetary: r.monetary[i],
                    r_score: r.r_score[i],
                    f_score: r.f_score[i],
                    m_score: r.m_score[i],
                    segment: r.segment[i],
                })
                .collect(),
        ))
    }

    /// BG/NBD churn risk of every buyer with history before `as_of`.
    fn query_churn_risk(
        &self,
        as_of: DateTime<Utc>,
        freq: Freq,
        low_below: f64,
        high_from: f64,
    ) -> Result<ModelsOutput, Error> {
        let log = &self.state.models;
        let bands = RiskBands::new(low_below, high_from)?;
        let end = self.wall(as_of.timestamp());
        let (users, times): (Vec<u64>, Vec<i64>) = log
            .orders
            .iter()
            .map(|o| (self.live(o.user), self.wall(o.time)))
            .filter(|&(_, t)| t <= end)
            .unzip();
        let s = summary_data(&users, &times, None, Some(end), freq)?;
        // Customers who bought in the observation end's own period have T = 0 and carry
        // no information about dropout; BG/NBD needs T > 0.
        let keep: Vec<usize> = (0..s.len()).filter(|&i| s.t[i] > 0.0).collect();
        let pick = |v: &[f64]| keep.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let (f, r, t) = (pick(&s.frequency), pick(&s.recency), pick(&s.t));
        // Fitted on the buyers sorted by (frequency, recency, T): the likelihood is
        // summed in an order that depends on the data alone, not on OneID numbers.
        let mut by_value: Vec<usize> = (0..f.len()).collect();
        by_value.sort_by(|&a, &b| {
            (f[a].total_cmp(&f[b]))
                .then(r[a].total_cmp(&r[b]))
                .then(t[a].total_cmp(&t[b]))
        });
        let sorted = |v: &[f64]| by_value.iter().map(|&i| v[i]).collect::<Vec<f64>>();
        let fit = BgNbdFit::fit(&sorted(&f), &sorted(&r), &sorted(&t), None)?;
        let users = keep
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let p = fit.params.p_alive(f[k], r[k], t[k]);
                ChurnRow {
                    oneid: OneId(s.customer[i]),
                    frequency: f[k],
                    recency: r[k],
                    t: t[k],
                    p_alive: p,
                    risk: bands.band(1.0 - p),
                }
            })
            .collect();
        Ok(ModelsOutput::ChurnRisk(ChurnRisk {
            params: fit.params,
            log_likelihood: fit.log_likelihood,
            users,
        }))
    }

    /// Each person's top values of a dimension by share of spend.
    fn query_preference_shares(
        &self,
        as_of: DateTime<Utc>,
        dimension: Dimension,
        lookback_months: u32,
        top_k: Option<u32>,
        price_bands: Vec<Decimal>,
    ) -> Result<ModelsOutput, Error> {
        check_bands(&price_bands)?;
        let at = self.wall(as_of.timestamp());
        let lo = lookback_start(at, lookback_months)?;
        let weights = self.dimension_weights(dimension, &price_bands, lo, at)?;
        // Value keys in text order: equal weights then rank by value text.
        let labels: Vec<&str> = weights
            .keys()
            .map(|k| k.1.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let key = |l: &str| labels.partition_point(|x| *x < l) as u64;
        let (mut c, mut v, mut w) = (vec![], vec![], vec![]);
        for ((user, label), weight) in &weights {
            c.push(*user);
            v.push(key(label));
            w.push(money(*weight));
        }
        let p = preferences(&c, &v, Some(&w), None, top_k)?;
        Ok(ModelsOutput::Preferences(
            (0..p.customer.len())
                .map(|i| PreferenceRow {
                    oneid: OneId(p.customer[i]),
                    value: labels[p.value[i] as usize].to_owned(),
                    weight: p.weight[i],
                    share: p.share[i],
                    rank: p.rank[i],
                })
                .collect(),
        ))
    }

    /// Spend (or, with a behaviour dimension, activity counts) by two dimensions.
    fn query_cross_table(
        &self,
        as_of: DateTime<Utc>,
        rows: Dimension,
        cols: Dimension,
        lookback_months: u32,
        price_bands: Vec<Decimal>,
    ) -> Result<ModelsOutput, Error> {
        let log = &self.state.models;
        check_bands(&price_bands)?;
        let at = self.wall(as_of.timestamp());
        let lo = lookback_start(at, lookback_months)?;
        let behaviour = |d: Dimension| matches!(d, Dimension::ActivityType | Dimension::Function);
        if behaviour(rows) || behaviour(cols) {
            return self.location_cross(rows, cols, lo, at);
        }
        let mut cells: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        for o in &log.orders {
            let t = self.wall(o.time);
            if t <= lo || t > at {
                continue;
            }
            for (cat, price, qty) in &o.lines {
                let row = line_label(rows, "rows", o, cat, *price, &price_bands)?;
                let col = line_label(cols, "cols", o, cat, *price, &price_bands)?;
                let cell = cells.entry((row, col)).or_default();
                *cell = cell.saturating_add(line_amount(*price, *qty));
            }
        }
        Ok(ModelsOutput::Cross(
            cells
                .into_iter()
                .map(|((row, col), amount)| CrossRow {
                    row,
                    col,
                    amount: money(amount),
                })
                .collect(),
        ))
    }

    /// Decayed activity scores of every person, and their levels.
    fn query_activity_scores(
        &self,
        as_of: DateTime<Utc>,
        half_life_days: f64,
        weights: BTreeMap<String, f64>,
        levels: Option<Vec<(String, f64)>>,
    ) -> Result<ModelsOutput, Error> {
        let log = &self.state.models;
        let levels = match levels {
            Some(l) => ActivityLevels::new(l, "dormant")?,
            None => ActivityLevels::default(),
        };
        if let Some((k, w)) = weights.iter().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
            return Err(Error::invalid_argument(
                format!("weights.{k}"),
                format!("{w} is not a weight ≥ 0"),
            ));
        }
        if let Some(k) = weights
            .keys()
            .find(|k| Event::KINDS.contains(&k.as_str()) && !SCORED_KINDS.contains(&k.as_str()))
        {
            return Err(Error::invalid_argument(
                format!("weights.{k}"),
                format!(
                    "{k} events do not count toward the activity score (only {})",
                    SCORED_KINDS.join(", ")
                ),
            ));
        }
        // The event's own type first, then its kind.
        let weight = |ty: Option<&str>, kind: &str| {
            ty.and_then(|t| weights.get(t))
                .or_else(|| weights.get(kind))
                .copied()
                .unwrap_or(1.0)
        };
        let (mut c, mut t, mut w) = (vec![], vec![], vec![]);
        for b in &log.behaviours {
            c.push(self.live(b.user));
            t.push(self.wall(b.time));
            w.push(weight(Some(&b.kind), &b.source));
        }
        for o in &log.orders {
            c.push(self.live(o.user));
            t.push(self.wall(o.time));
            w.push(weight(None, "order"));
        }
        let s = activity_scores(
            &c,
            &t,
            Some(&w),
            self.wall(as_of.timestamp()),
            half_life_days,
        )?;
        Ok(ModelsOutput::Activity(
            s.customer
                .iter()
                .zip(&s.score)
                .map(|(&u, &score)| ActivityRow {
                    oneid: OneId(u),
                    score,
                    level: levels.level(score).to_owned(),
                })
                .collect(),
        ))
    }

    /// The supervised churn model fitted on the window before `as_of`, scoring the window after.
    fn query_churn_model(
        &self,
        as_of: DateTime<Utc>,
        window_days: u32,
        holdout: f64,
        seed: u64,
        low_below: f64,
        high_from: f64,
    ) -> Result<ModelsOutput, Error> {
        let bands = RiskBands::new(low_below, high_from)?;
        if window_days == 0 {
            return Err(Error::invalid_argument("window_days", "must be ≥ 1"));
        }
        let at = self.wall(as_of.timestamp());
        let w = i64::from(window_days) * 86_400;
        let events = self.event_times();
        let mut train = churn_features(&events, at - w, w);
        // Rows sorted by their values, so that the fit and the seeded holdout depend on
        // the data alone, not on OneID numbers (which follow the ingest order).
        train.sort_by(|a, b| {
            a.1.iter()
                .zip(&b.1)
                .fold(std::cmp::Ordering::Equal, |o, (x, y)| {
                    o.then(x.total_cmp(y))
                })
                .then(a.2.cmp(&b.2))
        });
        let names: Vec<String> = CHURN_FEATURES.iter().map(|s| (*s).to_owned()).collect();
        let cols: Vec<Vec<f64>> = (0..CHURN_FEATURES.len())
            .map(|j| train.iter().map(|(_, f, _)| f[j]).collect())
            .collect();
        let labels: Vec<bool> = train.iter().map(|(_, _, churned)| *churned).collect();
        let refs: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
        let model = super::fit_churn_model(&names, &refs, &labels, holdout, seed)?;
        let users = churn_features(&events, at, w)
            .into_iter()
            .map(|(u, f, _)| {
                let score = model.model.predict(&f);
                SupervisedChurnRow {
                    oneid: OneId(u),
                    contributions: model.model.contributions(&f),
                    features: f.to_vec(),
                    score,
                    risk: bands.band(score),
                }
            })
            .collect();
        Ok(ModelsOutput::SupervisedChurn(SupervisedChurn {
            model,
            users,
        }))
    }

    /// The high-value features of every person and whether the rule passes.
    fn query_high_value_users(
        &self,
        as_of: DateTime<Utc>,
        window_days: Option<u32>,
        rule: HighValueRule,
    ) -> Result<ModelsOutput, Error> {
        let log = &self.state.models;
        let orders = self.orders_in_order();
        let oc: Vec<u64> = orders.iter().map(|o| self.live(o.user)).collect();
        let ot: Vec<i64> = orders.iter().map(|o| self.wall(o.time)).collect();
        let oa: Vec<f64> = orders.iter().map(|o| money(o.amount)).collect();
        let mc: Vec<u64> = log.messages.iter().map(|m| self.live(m.user)).collect();
        let mt: Vec<i64> = log.messages.iter().map(|m| self.wall(m.time)).collect();
        let rt: Vec<Option<u64>> = log
            .messages
            .iter()
            .map(|m| m.reply_to.map(|r| self.live(r)))
            .collect();
        let input = HighValueInput {
            order_customers: &oc,
            order_times: &ot,
            order_amounts: &oa,
            message_customers: &mc,
            message_times: &mt,
            reply_to: &rt,
        };
        let f = high_value_features(&input, self.wall(as_of.timestamp()), window_days)?;
        Ok(ModelsOutput::HighValue(
            f.into_iter()
                .map(|features| HighValueRow {
                    oneid: OneId(features.customer),
                    high_value: rule.passes(&features),
                    features,
                })
                .collect(),
        ))
    }

    /// Location × activity (or function): activity events (counts) in `(lo, at]` by the
    /// location of the user doing them — the region of the user's latest order up to `at`
    /// (`"(unknown)"` without one) — and the activity type or function.
    fn location_cross(
        &self,
        rows: Dimension,
        cols: Dimension,
        lo: i64,
        at: i64,
    ) -> Result<ModelsOutput, Error> {
        let (kind, flip) = match (rows, cols) {
            (Dimension::Region, k @ (Dimension::ActivityType | Dimension::Function)) => (k, false),
            (k @ (Dimension::ActivityType | Dimension::Function), Dimension::Region) => (k, true),
            _ => {
                return Err(Error::invalid_argument(
                    "cols",
                    "activity type and function cross with region only (location × activity)",
                ))
            }
        };
        let log = &self.state.models;
        // The latest order up to `at` gives each user's location; of orders at the same
        // latest instant, the region that sorts first (not the one ingested last).
        let mut location: BTreeMap<u64, (i64, &str)> = BTreeMap::new();
        for o in &log.orders {
            let t = self.wall(o.time);
            if t > at || o.region.is_empty() {
                continue;
            }
            let e = location.entry(self.live(o.user)).or_insert((t, &o.region));
            if t > e.0 || (t == e.0 && o.region.as_str() < e.1) {
                *e = (t, &o.region);
            }
        }
        let source = if kind == Dimension::ActivityType {
            "activity"
        } else {
            "behavior"
        };
        let mut cells: BTreeMap<(String, String), f64> = BTreeMap::new();
        for b in &log.behaviours {
            let t = self.wall(b.time);
            if b.source != source || t <= lo || t > at {
                continue;
            }
            let place = location
                .get(&self.live(b.user))
                .map_or("(unknown)", |l| l.1)
                .to_owned();
            let key = if flip {
                (b.kind.clone(), place)
            } else {
                (place, b.kind.clone())
            };
            *cells.entry(key).or_default() += 1.0;
        }
        Ok(ModelsOutput::Cross(
            cells
                .into_iter()
                .map(|((row, col), amount)| CrossRow { row, col, amount })
                .collect(),
        ))
    }

    /// Each user's weight per value of `dimension` over the events in `(lo, at]` (wall
    /// seconds): spend on order lines for the order-line dimensions, event counts for the
    /// others. Summed in decimals, so no weight depends on the order events came in.
    fn dimension_weights(
        &self,
        dimension: Dimension,
        price_bands: &[Decimal],
        lo: i64,
        at: i64,
    ) -> Result<BTreeMap<(u64, String), Decimal>, Error> {
        let log = &self.state.models;
        let inside = |t: i64| t > lo && t <= at;
        let mut weights: BTreeMap<(u64, String), Decimal> = BTreeMap::new();
        match dimension {
            Dimension::Category | Dimension::PriceBand | Dimension::Channel => {
                for o in log.orders.iter().filter(|o| inside(self.wall(o.time))) {
                    let user = self.live(o.user);
                    for (cat, price, qty) in &o.lines {
                        let label =
                            line_label(dimension, "dimension", o, cat, *price, price_bands)?;
                        let w = weights.entry((user, label)).or_default();
                        *w = w.saturating_add(line_amount(*price, *qty));
                    }
                }
            }
            Dimension::ActivityType | Dimension::Function | Dimension::Touchpoint => {
                for b in log.behaviours.iter().filter(|b| inside(self.wall(b.time))) {
                    let label = match dimension {
                        Dimension::ActivityType if b.source == "activity" => &b.kind,
                        Dimension::Function if b.source == "behavior" => &b.kind,
                        Dimension::Touchpoint
                            if b.source == "behavior" && !b.channel.is_empty() =>
                        {
                            &b.channel
                        }
                        _ => continue,
                    };
                    let w = weights
                        .entry((self.live(b.user), label.clone()))
                        .or_default();
                    *w += Decimal::ONE;
                }
            }
            Dimension::Region => {
                return Err(Error::invalid_argument(
                    "dimension",
                    "region is a cross-table dimension, not a preference",
                ))
            }
        }
        Ok(weights)
    }

    /// The orders with the earliest first (then the smallest amount): models that sum amounts
    /// in floating point read them in this order, so a sum does not depend on the order the
    /// orders were ingested in.
    fn orders_in_order(&self) -> Vec<&OrderRecord> {
        let mut v: Vec<&OrderRecord> = self.state.models.orders.iter().collect();
        v.sort_by(|a, b| a.time.cmp(&b.time).then(a.amount.cmp(&b.amount)));
        v
    }
}

/// Price band bounds must ascend strictly: each band is `[previous bound, bound)`.
fn check_bands(bounds: &[Decimal]) -> Result<(), Error> {
    match bounds.windows(2).position(|w| w[0] >= w[1]) {
        Some(i) => Err(Error::invalid_argument(
            format!("price_bands[{}]", i + 1),
            format!(
                "{} does not exceed the bound before it ({}): bounds ascend",
                bounds[i + 1],
                bounds[i]
            ),
        )),
        None => Ok(()),
    }
}

/// The event kinds the activity score counts.
const SCORED_KINDS: [&str; 3] = ["activity", "behavior", "order"];

/// An order line's amount (price × qty).
fn line_amount(price: Decimal, qty: u32) -> Decimal {
    price.saturating_mul(Decimal::from(qty))
}

/// The label of an order line along an order-line dimension; an error naming `field` for
/// another dimension.
fn line_label(
    d: Dimension,
    field: &str,
    o: &OrderRecord,
    category: &str,
    price: Decimal,
    bands: &[Decimal],
) -> Result<String, Error> {
    Ok(match d {
        Dimension::Region => o.region.clone(),
        Dimension::Category => category.to_owned(),
        Dimension::Channel => o.channel.clone(),
        Dimension::PriceBand => band_label(
            bands.iter().position(|b| price < *b).unwrap_or(bands.len()),
            bands,
        ),
        other => {
            return Err(Error::invalid_argument(
                field,
                format!("{other:?} is not an order-line dimension"),
            ))
        }
    })
}

/// (user, wall time, is an order) of every order, activity and behaviour, sorted.
type EventTimes = Vec<(u64, i64, bool)>;

impl Engine {
    fn event_times(&self) -> EventTimes {
        let log = &self.state.models;
        let mut ev: EventTimes = log
            .orders
            .iter()
            .map(|o| (self.live(o.user), self.wall(o.time), true))
            .chain(
                log.behaviours
                    .iter()
                    .map(|b| (self.live(b.user), self.wall(b.time), false)),
            )
            .collect();
        ev.sort_unstable();
        ev
    }
}

/// Features at `at` over a window of `w` seconds for every user with an event at or before
/// `at`, and the label: no event in (at, at + w].
fn churn_features(events: &[(u64, i64, bool)], at: i64, w: i64) -> Vec<(u64, [f64; 5], bool)> {
    let day = 86_400.0;
    let mut out = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let u = events[i].0;
        let j = i + events[i..].partition_point(|e| e.0 == u);
        let mine = &events[i..j];
        i = j;
        let past: Vec<&(u64, i64, bool)> = mine.iter().filter(|e| e.1 <= at).collect();
        let (Some(first), Some(last)) = (past.first(), past.last()) else {
            continue;
        };
        let in_window =
            |lo: i64, hi: i64| past.iter().filter(|e| e.1 > lo && e.1 <= hi).count() as f64;
        let frequency = past.iter().filter(|e| e.2 && e.1 > at - w).count() as f64;
        let trend = in_window(at - w / 2, at) - in_window(at - w, at - w / 2);
        let activity: f64 = past
            .iter()
            .map(|e| (-((at - e.1) as f64) / (30.0 * day)).exp2())
            .sum();
        let churned = !mine.iter().any(|e| e.1 > at && e.1 <= at + w);
        out.push((
            u,
            [
                (at - last.1) as f64 / day,
                frequency,
                (at - first.1) as f64 / day,
                trend,
                activity,
            ],
            churned,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::Engine;

    fn ingest(e: &mut Engine, v: Value) {
        e.ingest_json(&v.to_string()).unwrap();
    }

    fn order(
        e: &mut Engine,
        key: &str,
        user: &str,
        time: &str,
        amount: &str,
        cat: &str,
        channel: &str,
    ) {
        ingest(
            e,
            json!({"kind": "order", "key": key, "time": time,
                "source": {"platform": "app", "program": "brand-a"},
                "user": {"kind": "member_no", "value": user}, "order_id": key, "amount": amount,
                "channel": channel, "region": "shanghai",
                "lines": [{"sku": "s", "category": cat, "price": amount, "qty": 1}]}),
        );
    }

    fn call(e: &mut Engine, method: &str, args: Value) -> Value {
        serde_json::from_str(&e.call_json(method, &args.to_string()).unwrap()).unwrap()
    }

    #[test]
    fn commands_read_the_ingested_events() {
        let mut e = Engine::default();
        order(
            &mut e,
            "o1",
            "A",
            "2026-03-30T10:00:00+08:00",
            "300.00",
            "fruit",
            "app",
        );
        order(
            &mut e,
            "o2",
            "A",
            "2026-03-31T10:00:00+08:00",
            "300.00",
            "wine",
            "app",
        );
        order(
            &mut e,
            "o3",
            "A",
            "2026-03-31T11:00:00+08:00",
            "100.00",
            "fruit",
            "jd",
        );
        order(
            &mut e,
            "o4",
            "B",
            "2026-01-02T10:00:00+08:00",
            "20.00",
            "fruit",
            "jd",
        );
        // 2026-03-31T23:30+08:00 is still March 31 in the business zone (UTC: March 31 15:30).
        let as_of = "2026-03-31T23:30:00+08:00";
        let r = call(&mut e, "rfm", json!({"as_of": as_of}));
        assert_eq!(r[0]["oneid"], 1);
        assert_eq!(r[0]["recency"], 0);
        assert_eq!(r[0]["frequency"], 3);
        assert_eq!(r[0]["monetary"], 700.0);
        assert_eq!(r[0]["segment"], "important_value");
        assert_eq!(r[1]["recency"], 88);
        assert_eq!(r[1]["segment"], "general_win_back");
        let p = call(
            &mut e,
            "preference_shares",
            json!({"as_of": as_of, "dimension": "category"}),
        );
        assert_eq!(p[0]["value"], "fruit");
        assert_eq!(p[0]["share"], 400.0 / 700.0);
        assert_eq!(p.as_array().unwrap().len(), 3); // B's January order is outside 3 months
        let ch = call(
            &mut e,
            "preference_shares",
            json!({"as_of": as_of, "dimension": "channel", "top_k": 1}),
        );
        assert_eq!(ch[0]["value"], "app");
        let x = call(
            &mut e,
            "cross_table",
            json!({"as_of": as_of, "rows": "category", "cols": "price_band",
            "price_bands": ["100", "250"], "lookback_months": 12}),
        );
        // Sorted by (row, col) label text.
        assert_eq!(
            x,
            json!([
            {"row": "fruit", "col": "100-250", "amount": 100.0},
            {"row": "fruit", "col": "<100", "amount": 20.0},
            {"row": "fruit", "col": ">=250", "amount": 300.0},
            {"row": "wine", "col": ">=250", "amount": 300.0}])
        );
        let a = call(
            &mut e,
            "activity_scores",
            json!({"as_of": as_of, "half_life_days": 1000, "levels": [["busy", 2.5]]}),
        );
        assert_eq!(a[0]["level"], "busy"); // 3 orders in the last two days ≈ 3
        assert_eq!(a[1]["level"], "dormant"); // 1 order 88 days ago ≈ 0.94
        let h = call(
            &mut e,
            "high_value_users",
            json!({"as_of": as_of, "rule": {"min_orders": 2}}),
        );
        assert_eq!(h[0]["high_value"], true);
        assert_eq!(h[1]["high_value"], false);
        assert!(e.call_json("rfm", r#"{"as_of": "yesterday"}"#).is_err());
        // The log survives a snapshot.
        let back = Engine::restore(&e.snapshot()).unwrap();
        assert_eq!(back.state.models, e.state.models);
    }

    #[test]
    fn churn_risk_fits_bgnbd_on_engine_orders() {
        let mut e = Engine::default();
        let mut seed = 9u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as f64 / (1u64 << 31) as f64
        };
        // 300 users: each buys on a random day of 2025, then repeats at its own rate until it
        // drops out (a crude BG/NBD story: heterogeneous rates and dropout).
        let mut k = 0;
        for u in 0..300 {
            let rate = 0.03 + 0.15 * next();
            let mut day = (next() * 200.0) as i64;
            loop {
                let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
                    + chrono::Days::new(day as u64);
                k += 1;
                order(
                    &mut e,
                    &format!("o{k}"),
                    &format!("U{u}"),
                    &format!("{date}T12:00:00+08:00"),
                    "10.00",
                    "c",
                    "app",
                );
                if next() < 0.12 {
                    break;
                }
                day += 1 + (-(1.0 - next()).ln() / rate) as i64;
                if day > 364 {
                    break;
                }
            }
        }
        let out = call(
            &mut e,
            "churn_risk",
            json!({"as_of": "2025-12-31T23:00:00+08:00", "low_below": 0.2, "high_from": 0.6,
                   "tag": "churn_band"}),
        );
        audience_matches(&e, "churn_band", &rows_of(&out["users"], "risk"));
        let users = out["users"].as_array().unwrap();
        assert_eq!(users.len(), 300);
        assert!(out["params"]["r"].as_f64().unwrap() > 0.0);
        let bands: Vec<&str> = users.iter().map(|u| u["risk"].as_str().unwrap()).collect();
        assert!(
            bands.contains(&"low") && bands.contains(&"high"),
            "{bands:?}"
        );
        for u in users {
            let p = u["p_alive"].as_f64().unwrap();
            let want = if 1.0 - p < 0.2 {
                "low"
            } else if 1.0 - p >= 0.6 {
                "high"
            } else {
                "mid"
            };
            assert_eq!(u["risk"], want);
        }
        // The supervised model on the same history: fitted at Nov 30 with December as the label
        // period, scoring everyone at Dec 31.
        let sup = call(
            &mut e,
            "churn_model",
            json!({"as_of": "2025-12-31T23:00:00+08:00", "window_days": 31, "holdout": 0.3,
                   "tag": "churn_model_band"}),
        );
        audience_matches(&e, "churn_model_band", &rows_of(&sup["users"], "risk"));
        let users = sup["users"].as_array().unwrap();
        assert_eq!(users.len(), 300);
        let coef = sup["model"]["model"]["coefficients"].as_array().unwrap();
        assert_eq!(coef.len(), 5);
        let u = &users[0];
        let logit: f64 = sup["model"]["model"]["intercept"].as_f64().unwrap()
            + u["contributions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .sum::<f64>();
        assert!((1.0 / (1.0 + (-logit).exp()) - u["score"].as_f64().unwrap()).abs() < 1e-12);
        // Recency drives churn in this story: its coefficient is positive.
        assert!(coef[0].as_f64().unwrap() > 0.0, "{coef:?}");
        // Nothing to fit is a typed error, not garbage.
        let mut empty = Engine::default();
        assert!(empty
            .call_json("churn_risk", r#"{"as_of": "2025-12-31T00:00:00Z"}"#)
            .is_err());
    }

    /// Every user holding `value` in `tag` is exactly the model's rows with that value, and
    /// users without a row hold no value.
    fn audience_matches(e: &Engine, tag: &str, rows: &[(u64, String)]) {
        let mut values: Vec<&String> = rows.iter().map(|r| &r.1).collect();
        values.sort();
        values.dedup();
        for v in &values {
            let mut want: Vec<u64> = rows.iter().filter(|r| &r.1 == *v).map(|r| r.0).collect();
            want.sort();
            want.dedup();
            let got: Vec<u64> = e
                .audience(&format!("{tag} = {v:?}"))
                .unwrap()
                .oneids
                .iter()
                .map(|o| o.0)
                .collect();
            assert_eq!(got, want, "{tag} = {v:?}");
        }
        let tagged = e.audience(&format!("EXISTS {tag}")).unwrap();
        let mut all: Vec<u64> = rows.iter().map(|r| r.0).collect();
        all.sort();
        all.dedup();
        assert_eq!(tagged.oneids.iter().map(|o| o.0).collect::<Vec<_>>(), all);
    }

    fn rows_of(v: &Value, key: &str) -> Vec<(u64, String)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["oneid"].as_u64().unwrap(),
                    r[key].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn model_answers_written_as_tags_audiences_select_them() {
        let mut e = Engine::default();
        let mut k = 0;
        for u in 0..40u32 {
            for j in 0..(1 + u % 5) {
                k += 1;
                let day = 1 + (u * 7 + j * 11) % 28;
                let month = 1 + (u + j) % 3;
                let cat = ["fruit", "wine", "tea"][((u + j) % 3) as usize];
                order(
                    &mut e,
                    &format!("o{k}"),
                    &format!("U{u}"),
                    &format!("2026-{month:02}-{day:02}T12:00:00+08:00"),
                    &format!("{}.00", 10 + (u * 13) % 90),
                    cat,
                    "app",
                );
            }
        }
        let as_of = "2026-03-31T23:00:00+08:00";
        // Read-only without `tag`; with it, the command writes and is journaled.
        let plain: crate::Command =
            crate::Command::from_call("rfm", &json!({"as_of": as_of}).to_string()).unwrap();
        assert!(!plain.mutates());
        let r = call(&mut e, "rfm", json!({"as_of": as_of, "tag": "rfm_segment"}));
        let rows = rows_of(&r, "segment");
        assert!(
            rows.iter()
                .map(|r| &r.1)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                >= 3
        );
        audience_matches(&e, "rfm_segment", &rows);
        // An earlier as-of: fewer users have orders; the others lose their segment.
        let r = call(
            &mut e,
            "rfm",
            json!({"as_of": "2026-01-15T00:00:00+08:00", "tag": "rfm_segment"}),
        );
        let early = rows_of(&r, "segment");
        assert!(early.len() < rows.len());
        audience_matches(&e, "rfm_segment", &early);

        let a = call(
            &mut e,
            "activity_scores",
            json!({"as_of": as_of, "half_life_days": 30, "levels": [["high", 2.0], ["medium", 0.8]],
                   "tag": "activity_level"}),
        );
        audience_matches(&e, "activity_level", &rows_of(&a, "level"));

        let p = call(
            &mut e,
            "preference_shares",
            json!({"as_of": as_of, "dimension": "category", "top_k": 2, "tag": "top_category"}),
        );
        let prefs = rows_of(&p, "value");
        assert!(prefs
            .iter()
            .any(|r| prefs.iter().filter(|x| x.0 == r.0).count() == 2));
        audience_matches(&e, "top_category", &prefs);

        // A rule over model tags follows them.
        e.call_json(
            "define_tag",
            &json!({"name": "save_me", "rule": "activity_level = \"high\" AND top_category EXISTS", "now": as_of}).to_string(),
        )
        .unwrap_err(); // `x EXISTS` is not the syntax: a typed error, nothing defined
        e.call_json(
            "define_tag",
            &json!({"name": "save_me", "rule": "activity_level = \"high\" OR top_category = \"wine\"", "now": as_of}).to_string(),
        )
        .unwrap();
        let both = e
            .audience(r#"activity_level = "high" OR top_category = "wine""#)
            .unwrap();
        assert_eq!(e.audience("save_me").unwrap().oneids, both.oneids);
        // A tag name that is a keyword or an attribute is refused, nothing written.
        assert!(e
            .call_json("rfm", &json!({"as_of": as_of, "tag": "AND"}).to_string())
            .is_err());
        assert!(e
            .call_json("rfm", &json!({"as_of": as_of, "tag": "orders"}).to_string())
            .is_err());
    }

    #[test]
    fn location_by_activity_cross_table() {
        let mut e = Engine::default();
        let src = json!({"platform": "app", "program": "brand-a"});
        let ord = |e: &mut Engine, key: &str, user: &str, time: &str, region: &str| {
            ingest(
                e,
                json!({"kind": "order", "key": key, "time": time, "source": src,
                    "user": {"kind": "member_no", "value": user}, "order_id": key,
                    "amount": "10.00", "region": region}),
            )
        };
        let act = |e: &mut Engine, key: &str, user: &str, time: &str, kind: &str| {
            ingest(
                e,
                json!({"kind": "activity", "key": key, "time": time, "source": src,
                    "user": {"kind": "member_no", "value": user}, "type": kind}),
            )
        };
        ord(&mut e, "o1", "A", "2026-01-05T10:00:00+08:00", "bj");
        ord(&mut e, "o2", "A", "2026-03-05T10:00:00+08:00", "sh"); // A moved: latest is sh
        ord(&mut e, "o3", "B", "2026-02-05T10:00:00+08:00", "bj");
        ord(&mut e, "o4", "B", "2026-04-05T10:00:00+08:00", "gz"); // after as_of: not used
        act(&mut e, "a1", "A", "2026-03-10T10:00:00+08:00", "login");
        act(&mut e, "a2", "A", "2026-03-11T10:00:00+08:00", "login");
        act(&mut e, "a3", "B", "2026-03-12T10:00:00+08:00", "login");
        act(&mut e, "a4", "B", "2026-03-13T10:00:00+08:00", "checkin");
        act(&mut e, "a5", "C", "2026-03-14T10:00:00+08:00", "login");
        act(&mut e, "a6", "C", "2025-10-14T10:00:00+08:00", "login"); // outside 3 months
        let as_of = "2026-03-31T23:00:00+08:00";
        let x = call(
            &mut e,
            "cross_table",
            json!({"as_of": as_of, "rows": "region", "cols": "activity_type"}),
        );
        assert_eq!(
            x,
            json!([
                {"row": "(unknown)", "col": "login", "amount": 1.0},
                {"row": "bj", "col": "checkin", "amount": 1.0},
                {"row": "bj", "col": "login", "amount": 1.0},
                {"row": "sh", "col": "login", "amount": 2.0}])
        );
        let t = call(
            &mut e,
            "cross_table",
            json!({"as_of": as_of, "rows": "activity_type", "cols": "region"}),
        );
        assert_eq!(t.as_array().unwrap().len(), 4);
        assert_eq!(t[0], json!({"row": "checkin", "col": "bj", "amount": 1.0}));
        assert!(e
            .call_json(
                "cross_table",
                &json!({"as_of": as_of, "rows": "category", "cols": "activity_type"}).to_string()
            )
            .is_err());
    }
}
