//! The analyses: a per-person timeline of ingested events, the analysis commands and their answers.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::attribution::{attribute, AttributionModel, AttributionReport, Conversions};
use super::cohort::{cohort_retention, CohortTable};
use super::community::{community_stats, CommunityEvents, CommunityTable};
use super::funnel::{funnel_levels, steps_of, FunnelReport};
use super::metrics::{data_warnings, gmv_tree, MetricNode, Warning, WarningMethod};
use super::paths::{micro_conversions, paths, MicroConversion, PathReport};
use super::repurchase::{repurchase, OrderLines, OrderTable, RepurchaseReport};
use super::{AnalyticsError, EventTable};
use crate::config::Period;
use crate::error::Error;
use crate::event::{CommunityAction, Event, EventBody, TouchOutcome, UserRef};
use crate::ids::OneId;
use crate::lifecycle::PeriodClock;

/// One event of a person's journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JourneyStep {
    /// When it happened (UTC).
    pub time: DateTime<Utc>,
    /// The event kind (`touch`, `activity`, `coupon`, `order`, ...).
    pub kind: String,
    /// The step name used by funnels and paths: the activity or behaviour type, `order`,
    /// `register`, `refund`, `touch_<outcome>`, `coupon_<action>`, `community_<action>`.
    pub name: String,
    /// Channel or touchpoint, where the event has one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub channel: String,
    /// Order id, content, coupon, community or category, by kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Amount of an order or refund.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub amount: Option<Decimal>,
    /// Products of an order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skus: Vec<String>,
}

fn wire<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl JourneyStep {
    fn of(event: &Event) -> Option<JourneyStep> {
        let mut s = JourneyStep {
            time: event.time,
            kind: event.kind_name().to_owned(),
            name: String::new(),
            channel: String::new(),
            detail: String::new(),
            amount: None,
            skus: Vec::new(),
        };
        match &event.body {
            EventBody::Identify { .. } => return None,
            EventBody::Register { .. } => s.name = "register".into(),
            EventBody::Activity { activity, .. } => s.name = activity.clone(),
            EventBody::Behavior {
                behavior,
                category,
                channel,
                ..
            } => {
                s.name = behavior.clone();
                s.channel = channel.clone();
                s.detail = category.clone();
            }
            EventBody::Order {
                order_id,
                amount,
                channel,
                lines,
                ..
            } => {
                s.name = "order".into();
                s.channel = channel.clone();
                s.detail = order_id.clone();
                s.amount = Some(*amount);
                s.skus = lines.iter().map(|l| l.sku.clone()).collect();
            }
            EventBody::Refund {
                order_id, amount, ..
            } => {
                s.name = "refund".into();
                s.detail = order_id.clone();
                s.amount = Some(*amount);
            }
            EventBody::Community {
                community, action, ..
            } => {
                s.name = format!("community_{}", wire(action));
                s.detail = community.clone();
            }
            EventBody::Touch {
                channel,
                content,
                outcome,
                ..
            } => {
                s.name = format!("touch_{}", wire(outcome));
                s.channel = channel.clone();
                s.detail = content.clone();
            }
            EventBody::Coupon {
                coupon_id, action, ..
            } => {
                s.name = format!("coupon_{}", wire(action));
                s.detail = coupon_id.clone();
            }
        }
        Some(s)
    }
}

/// Strings that repeat across steps (kinds, step names, channels, SKUs), each stored once and
/// named by its position.
#[derive(Debug, Clone, Default)]
pub(super) struct Names {
    names: Vec<Box<str>>,
    index: std::collections::HashMap<Box<str>, u32>,
}

impl Names {
    pub(super) fn code(&mut self, name: &str) -> u32 {
        if let Some(c) = self.index.get(name) {
            return *c;
        }
        let c = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), c);
        c
    }

    pub(super) fn get(&self, code: u32) -> &str {
        self.names.get(code as usize).map_or("", |n| n)
    }

    pub(super) fn len(&self) -> usize {
        self.names.len()
    }
}

impl PartialEq for Names {
    fn eq(&self, other: &Names) -> bool {
        self.names == other.names
    }
}

impl Serialize for Names {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Names, D::Error> {
        let names: Vec<Box<str>> = Vec::deserialize(d)?;
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i as u32))
            .collect();
        Ok(Names { names, index })
    }
}

/// A [`JourneyStep`] as the engine keeps it: one per event for the life of the pool, so the
/// repeating strings are codes into [`Names`] (about 80 bytes a step instead of ~300 with five
/// strings and a list of strings on the heap).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Step {
    #[serde(rename = "t")]
    pub(super) time: DateTime<Utc>,
    #[serde(rename = "k")]
    pub(super) kind: u32,
    #[serde(rename = "n")]
    pub(super) name: u32,
    #[serde(rename = "c")]
    pub(super) channel: u32,
    #[serde(rename = "d", default, skip_serializing_if = "str::is_empty")]
    pub(super) detail: Box<str>,
    #[serde(
        rename = "a",
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub(super) amount: Option<Decimal>,
    #[serde(rename = "s", default, skip_serializing_if = "<[u32]>::is_empty")]
    pub(super) skus: Box<[u32]>,
    /// The OneID the step was recorded under, when a merge moved it into another person's
    /// timeline (0: the timeline's own person): a split gives it back to that OneID's part.
    /// OneIDs are numbered below 2^32 (one per identifier at most, and identifiers are `u32`).
    #[serde(rename = "o", default, skip_serializing_if = "is_zero")]
    pub(super) origin: u32,
}

fn is_zero(o: &u32) -> bool {
    *o == 0
}

/// A stored step with its strings looked up: what the analysis commands read.
pub(crate) struct StepRef<'a> {
    pub(crate) time: DateTime<Utc>,
    pub(crate) kind: &'a str,
    pub(crate) name: &'a str,
    pub(crate) channel: &'a str,
    pub(crate) detail: &'a str,
    pub(crate) amount: Option<Decimal>,
    skus: &'a [u32],
    names: &'a Names,
}

impl<'a> StepRef<'a> {
    /// The products of an order.
    fn sku_names(&self) -> impl Iterator<Item = &'a str> + 'a {
        let names = self.names;
        self.skus.iter().map(move |c| names.get(*c))
    }

    fn to_step(&self) -> JourneyStep {
        JourneyStep {
            time: self.time,
            kind: self.kind.to_owned(),
            name: self.name.to_owned(),
            channel: self.channel.to_owned(),
            detail: self.detail.to_owned(),
            amount: self.amount,
            skus: self.sku_names().map(str::to_owned).collect(),
        }
    }
}

/// Where an event kind goes among a person's steps at the same instant: the journey's order
/// (SPEC §8: channel → touchpoint → viewed → coupons → purchase), registration first.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "register" => 0,
        "touch" => 1,
        "activity" => 2,
        "behavior" => 3,
        "community" => 4,
        "coupon" => 5,
        "order" => 6,
        "refund" => 7,
        _ => 8,
    }
}

/// The order of a person's steps: by time; at the same instant by kind ([`kind_rank`]), then
/// name, detail (order id, content, coupon, ...), channel, amount and products. It depends on
/// the steps alone, never on the order they were ingested in, so every analysis that reads
/// steps in order (funnels, paths, first touch, first order) gives one answer.
pub(super) fn step_order(names: &Names, a: &Step, b: &Step) -> std::cmp::Ordering {
    fn text<'a>(names: &'a Names, s: &'a Step) -> (u8, &'a str, &'a str, &'a str) {
        (
            kind_rank(names.get(s.kind)),
            names.get(s.name),
            &s.detail,
            names.get(s.channel),
        )
    }
    let money = |s: &Step| s.amount.map(|d| (d, d.scale()));
    a.time
        .cmp(&b.time)
        .then_with(|| text(names, a).cmp(&text(names, b)))
        .then_with(|| money(a).cmp(&money(b)))
        .then_with(|| {
            let skus = |s: &Step| s.skus.iter().map(|c| names.get(*c)).collect::<Vec<_>>();
            skus(a).cmp(&skus(b))
        })
}

/// The analytics state: every person's timeline, in [`step_order`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct AnalyticsState {
    #[serde(default)]
    pub(super) names: Names,
    pub(super) timelines: BTreeMap<OneId, Vec<Step>>,
}

impl AnalyticsState {
    /// Record an accepted event. Never fails.
    pub(crate) fn on_event(&mut self, event: &Event, oneid: Option<OneId>) {
        let Some(person) = oneid else { return };
        if let Some(j) = JourneyStep::of(event) {
            let step = Step {
                time: j.time,
                kind: self.names.code(&j.kind),
                name: self.names.code(&j.name),
                channel: self.names.code(&j.channel),
                detail: j.detail.into(),
                amount: j.amount,
                skus: j.skus.iter().map(|k| self.names.code(k)).collect(),
                origin: 0,
            };
            let line = self.timelines.entry(person).or_default();
            let at = line.partition_point(|s| step_order(&self.names, s, &step).is_le());
            line.insert(at, step);
        }
    }

    /// Put every timeline in [`step_order`] (a snapshot of format 3 kept ingest order).
    pub(crate) fn sort_timelines(&mut self) {
        for line in self.timelines.values_mut() {
            line.sort_by(|a, b| step_order(&self.names, a, b));
        }
    }

    fn view<'a>(&'a self, s: &'a Step) -> StepRef<'a> {
        StepRef {
            time: s.time,
            kind: self.names.get(s.kind),
            name: self.names.get(s.name),
            channel: self.names.get(s.channel),
            detail: &s.detail,
            amount: s.amount,
            skus: &s.skus,
            names: &self.names,
        }
    }

    /// Every person's timeline, by OneID.
    pub(crate) fn lines(
        &self,
    ) -> impl Iterator<Item = (OneId, impl Iterator<Item = StepRef<'_>> + '_)> + '_ {
        self.timelines
            .iter()
            .map(move |(o, line)| (*o, line.iter().map(move |s| self.view(s))))
    }

    /// One person's journey.
    pub(super) fn journey(&self, oneid: OneId) -> Vec<JourneyStep> {
        self.timelines
            .get(&oneid)
            .map(|line| line.iter().map(|s| self.view(s).to_step()).collect())
            .unwrap_or_default()
    }
}

/// Owned columns built from the timelines.
#[derive(Default)]
struct Columns {
    user: Vec<u64>,
    time: Vec<i64>,
    code: Vec<u32>,
    names: Vec<String>,
    index: BTreeMap<String, u32>,
    amount: Vec<Decimal>,
}

impl Columns {
    fn push(&mut self, user: u64, time: i64, name: &str, amount: Decimal) {
        let next = self.names.len() as u32;
        let code = *self.index.entry(name.to_owned()).or_insert(next);
        if code == next {
            self.names.push(name.to_owned());
        }
        self.user.push(user);
        self.time.push(time);
        self.code.push(code);
        self.amount.push(amount);
    }

    fn table(&self) -> EventTable<'_> {
        EventTable {
            user: &self.user,
            time: &self.time,
            event: &self.code,
            names: &self.names,
        }
    }
}

/// Orders as owned columns: one row per order, and the lines' orders and products.
#[derive(Default)]
struct Orders {
    rows: Columns,
    line_order: Vec<usize>,
    sku: Vec<u32>,
    skus: Vec<String>,
}

impl Orders {
    fn table(&self, with_lines: bool) -> OrderTable<'_> {
        OrderTable {
            user: &self.rows.user,
            time: &self.rows.time,
            amount: &self.rows.amount,
            lines: with_lines.then_some(OrderLines {
                order: &self.line_order,
                sku: &self.sku,
                names: &self.skus,
            }),
        }
    }
}

/// An attribution model by name (the command's `model` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelName {
    /// [`AttributionModel::FirstTouch`].
    FirstTouch,
    /// [`AttributionModel::LastTouch`].
    LastTouch,
    /// [`AttributionModel::Linear`].
    Linear,
    /// [`AttributionModel::TimeDecay`] (needs `half_life_hours`).
    TimeDecay,
    /// [`AttributionModel::PositionBased`].
    PositionBased,
}

/// The metrics `data_warnings` can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WatchedMetric {
    /// Sum of order amounts per period.
    Gmv,
    /// Users who ordered per period.
    Buyers,
    /// Events of every kind per period.
    Events,
}

/// The analysis commands over the engine's timelines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", content = "args", rename_all = "snake_case")]
#[non_exhaustive]
pub enum AnalyticsCommand {
    /// An ordered funnel of step names within `window_seconds` (default 7 days) of the first
    /// step, inclusive (`t_k − t_0 ≤ window_seconds`: a purchase exactly 7 days after the view
    /// converts). A person's steps at the same instant come in one fixed order whatever the
    /// ingest order: register, touch, activity, behaviour, community, coupon, order, refund,
    /// then by name (a click and an order at the same second: click first). Output:
    /// [`FunnelReport`].
    Funnel {
        /// Step names (see [`JourneyStep::name`]).
        steps: Vec<String>,
        /// The conversion window in seconds.
        #[serde(default)]
        window_seconds: Option<i64>,
        /// Named segments (lists of OneIDs) to break the funnel down by.
        #[serde(default)]
        segments: Option<BTreeMap<String, Vec<OneId>>>,
        /// Break down by every value of this enum or bool tag (segments named `tag=value`).
        #[serde(default)]
        by_tag: Option<String>,
        /// Break down by named audience expressions (name → expression).
        #[serde(default)]
        audiences: Option<BTreeMap<String, String>>,
    },
    /// Cohort retention by first-activity period (the engine's period unless `period` is
    /// given), over `activity` events. Output: [`CohortTable`].
    CohortRetention {
        /// Day, week or month.
        #[serde(default)]
        period: Option<Period>,
    },
    /// Orders attributed to the same person's touches before them (at most `lookback_days`
    /// earlier; a touch at the order's own instant counts). Each `touch` event whose outcome
    /// is in `outcomes` is one touch: a delivery recorded as `sent`, then `opened`, is two
    /// touches unless `outcomes` keeps one of them. An order's value is split in its own
    /// units (cents for `99.00`), rounded half to even, the last touch taking the remainder:
    /// 100.00 over three touches, linear, is 33.33 + 33.33 + 33.34. Output:
    /// [`AttributionReport`].
    Attribution {
        /// How a conversion's credit is shared among its touches ([`ModelName`]).
        model: ModelName,
        /// For `time_decay`.
        #[serde(default)]
        half_life_hours: Option<f64>,
        /// Touches up to this many days before an order count (default 30).
        #[serde(default)]
        lookback_days: Option<f64>,
        /// Touch outcomes that count as touches (default: all of them: sent, delivered,
        /// opened, clicked, converted). At least one.
        #[serde(default)]
        outcomes: Option<Vec<TouchOutcome>>,
    },
    /// One person's full journey, in time order. Output: `{oneid, steps}`.
    Journey {
        /// The person: an identifier of theirs or their OneID.
        user: UserRef,
    },
    /// Repurchase per period and top products, one row per order (two orders at the same
    /// instant are two; of those, the smaller order id is the earlier). Output:
    /// [`RepurchaseReport`].
    Repurchase {
        /// Day, week or month (default: the engine's period).
        #[serde(default)]
        period: Option<Period>,
        /// How many products (default 10).
        #[serde(default)]
        top: Option<usize>,
        /// Products with fewer buyers are left out (default 1).
        #[serde(default)]
        min_buyers: Option<u64>,
    },
    /// Paths between two step names. Output: [`PathReport`].
    Paths {
        /// Start step.
        from: String,
        /// End step.
        to: String,
        /// Steps kept per list (default 10).
        #[serde(default)]
        top: Option<usize>,
    },
    /// Every other step as a micro-conversion towards `conversion` (default `order`).
    MicroConversions {
        /// The conversion step.
        #[serde(default)]
        conversion: Option<String>,
    },
    /// GMV = first-order GMV + repurchase GMV per period, as [`repurchase`] defines them.
    MetricTree {
        /// Day, week or month (default: the engine's period).
        #[serde(default)]
        period: Option<Period>,
    },
    /// Periods where a metric left its expected band.
    DataWarnings {
        /// The metric watched ([`WatchedMetric`]).
        metric: WatchedMetric,
        /// How the expected band is computed.
        method: WarningMethod,
        /// Day, week or month (default: day).
        #[serde(default)]
        period: Option<Period>,
    },
    /// Community statistics per period (default: week), rows by community name then period:
    /// `members` is the count at the period's end, `conversions` the orders members placed
    /// while members (see [`CommunityRow`](super::CommunityRow)).
    CommunityStats {
        /// Day, week or month.
        #[serde(default)]
        period: Option<Period>,
    },
}

/// One period's metric tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodTree {
    /// The period's label (e.g. `2026-03` for a month).
    pub period: String,
    /// The period's metric tree.
    pub tree: MetricNode,
}

/// A person's journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journey {
    /// The person's OneID.
    pub oneid: OneId,
    /// Their events in time order.
    pub steps: Vec<JourneyStep>,
}

/// The outputs of the analysis commands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum AnalyticsOutput {
    /// What `funnel` returns.
    Funnel(FunnelReport),
    /// What `cohort_retention` returns.
    Cohorts(CohortTable),
    /// What `attribution` returns.
    Attribution(AttributionReport),
    /// What `journey` returns.
    Journey(Journey),
    /// What `repurchase` returns.
    Repurchase(RepurchaseReport),
    /// What `paths` returns.
    Paths(PathReport),
    /// What `micro_conversions` returns.
    Micro(Vec<MicroConversion>),
    /// What `metric_tree` returns.
    Trees(Vec<PeriodTree>),
    /// What `data_warnings` returns.
    Warnings(Vec<Warning>),
    /// What `community_stats` returns.
    Community(CommunityTable),
}

/// A funnel's segments resolved to persons: explicit lists, a tag's values or audiences (the
/// tag index answers; see `Engine::breakdown_segments`).
pub(crate) type SegmentsOf<'a> = &'a dyn Fn(
    Option<BTreeMap<String, Vec<OneId>>>,
    Option<&str>,
    Option<&BTreeMap<String, String>>,
) -> Result<Option<BTreeMap<String, Vec<OneId>>>, Error>;

/// What the analyses read besides the timelines.
#[derive(Clone, Copy)]
pub(crate) struct AnalyticsReads<'a> {
    /// The default reporting period.
    pub(crate) period: Period,
    /// The business time zone's offset from UTC, in seconds.
    pub(crate) tz_offset: i32,
    /// Resolves breakdown segments (the tag index's).
    pub(crate) segments: SegmentsOf<'a>,
    /// Resolves a user reference to its person (the identity graph's).
    pub(crate) lookup: &'a dyn Fn(&UserRef) -> Result<Option<OneId>, Error>,
}

impl AnalyticsState {
    /// Answer an analytics command (every one only reads).
    ///
    /// # Errors
    ///
    /// `invalid_argument` for parameters the analysis cannot take (unknown step, a too-large
    /// window, ...); `not_found` for a journey of an unknown user.
    pub(crate) fn query(
        &self,
        c: AnalyticsCommand,
        reads: AnalyticsReads<'_>,
    ) -> Result<AnalyticsOutput, Error> {
        Query { state: self, reads }.analytics_query(c)
    }
}

/// One analysis: the timelines and their reads.
struct Query<'a> {
    state: &'a AnalyticsState,
    reads: AnalyticsReads<'a>,
}

impl Query<'_> {
    fn clock_for(&self, period: Option<Period>) -> PeriodClock {
        PeriodClock::new(period.unwrap_or(self.reads.period), self.reads.tz_offset)
    }

    fn columns(&self, keep: impl Fn(&StepRef<'_>) -> bool) -> Columns {
        let mut c = Columns::default();
        for (id, line) in self.state.lines() {
            for s in line.filter(|s| keep(s)) {
                c.push(
                    id.0,
                    s.time.timestamp_millis(),
                    s.name,
                    s.amount.unwrap_or_default(),
                );
            }
        }
        c
    }

    /// One row per order (each person's in timeline order: of two orders at the same instant,
    /// the smaller order id first) and the products of their lines.
    fn orders(&self) -> Orders {
        let mut o = Orders::default();
        let mut index = BTreeMap::new();
        for (id, line) in self.state.lines() {
            for s in line.filter(|s| s.kind == "order") {
                let row = o.rows.user.len();
                o.rows.push(
                    id.0,
                    s.time.timestamp_millis(),
                    "order",
                    s.amount.unwrap_or_default(),
                );
                for name in s.sku_names() {
                    let next = o.skus.len() as u32;
                    let code = *index.entry(name.to_owned()).or_insert(next);
                    if code == next {
                        o.skus.push(name.to_owned());
                    }
                    o.line_order.push(row);
                    o.sku.push(code);
                }
            }
        }
        o
    }

    /// The funnel of `steps` within the window, overall and per segment.
    fn funnel_report(
        &self,
        steps: Vec<String>,
        window_seconds: Option<i64>,
        segments: Option<BTreeMap<String, Vec<OneId>>>,
        by_tag: Option<String>,
        audiences: Option<BTreeMap<String, String>>,
    ) -> Result<AnalyticsOutput, Error> {
        let segments = (self.reads.segments)(segments, by_tag.as_deref(), audiences.as_ref())?;
        let window = window_seconds.unwrap_or(7 * 86_400);
        let window_ms = window
            .checked_mul(1000)
            .ok_or_else(|| Error::invalid_argument("window_seconds", "too large"))?;
        let cols = self.columns(|_| true);
        let names: Vec<&str> = steps.iter().map(String::as_str).collect();
        let levels = funnel_levels(cols.table(), &names, window_ms)?;
        let mut report = FunnelReport {
            steps: steps_of(&names, levels.iter().map(|l| l.1)),
            segments: BTreeMap::new(),
        };
        for (seg, ids) in segments.unwrap_or_default() {
            let ids: std::collections::BTreeSet<u64> = ids.iter().map(|o| o.0).collect();
            let ls = levels.iter().filter(|l| ids.contains(&l.0)).map(|l| l.1);
            report.segments.insert(seg, steps_of(&names, ls));
        }
        Ok(AnalyticsOutput::Funnel(report))
    }

    /// Orders' value attributed to the touches before them, by channel.
    fn attribution_report(
        &self,
        model: ModelName,
        half_life_hours: Option<f64>,
        lookback_days: Option<f64>,
        outcomes: Option<Vec<TouchOutcome>>,
    ) -> Result<AnalyticsOutput, Error> {
        let model = match model {
            ModelName::FirstTouch => AttributionModel::FirstTouch,
            ModelName::LastTouch => AttributionModel::LastTouch,
            ModelName::Linear => AttributionModel::Linear,
            ModelName::PositionBased => AttributionModel::PositionBased,
            ModelName::TimeDecay => AttributionModel::TimeDecay {
                half_life_hours: half_life_hours.ok_or_else(|| {
                    Error::invalid_argument("half_life_hours", "time_decay needs a half-life")
                })?,
            },
        };
        let days = lookback_days.unwrap_or(30.0);
        if !(days.is_finite() && (0.0..=36_500.0).contains(&days)) {
            return Err(Error::invalid_argument(
                "lookback_days",
                "between 0 and 36500 days",
            ));
        }
        use TouchOutcome as T;
        let outcomes: Vec<String> = outcomes
            .unwrap_or_else(|| vec![T::Sent, T::Delivered, T::Opened, T::Clicked, T::Converted])
            .iter()
            .map(|o| format!("touch_{}", wire(o)))
            .collect();
        if outcomes.is_empty() {
            return Err(Error::invalid_argument(
                "outcomes",
                "name at least one touch outcome (or leave it out for all of them)",
            ));
        }
        // Touches keyed by channel rather than step name.
        let mut touches = Columns::default();
        for (id, line) in self.state.lines() {
            for s in line.filter(|s| outcomes.iter().any(|o| o == s.name)) {
                touches.push(id.0, s.time.timestamp_millis(), s.channel, Decimal::ZERO);
            }
        }
        let orders = self.columns(|s| s.kind == "order");
        Ok(AnalyticsOutput::Attribution(attribute(
            touches.table(),
            Conversions {
                user: &orders.user,
                time: &orders.time,
                value: Some(&orders.amount),
            },
            model,
            (days * 86_400_000.0) as i64,
        )?))
    }

    /// Anomalies in a metric's series, every period of the range counted (empty ones as 0).
    fn data_warnings_report(
        &self,
        metric: WatchedMetric,
        method: WarningMethod,
        period: Option<Period>,
    ) -> Result<AnalyticsOutput, Error> {
        let clock = self.clock_for(Some(period.unwrap_or(Period::Day)));
        let keep = |s: &StepRef<'_>| metric == WatchedMetric::Events || s.kind == "order";
        let cols = self.columns(keep);
        // Summed exactly (money in decimals), so the value does not depend on the
        // order the rows come in.
        let mut by: BTreeMap<i64, (Decimal, std::collections::BTreeSet<u64>)> = BTreeMap::new();
        for i in 0..cols.user.len() {
            let p = clock.index(cols.time[i]).unwrap_or(0);
            let e = by.entry(p).or_default();
            e.0 = e.0.saturating_add(match metric {
                WatchedMetric::Gmv => cols.amount[i],
                _ => Decimal::ONE,
            });
            e.1.insert(cols.user[i]);
        }
        // Every period in the range, empty ones as 0: a silent day is a data event too.
        if let (Some(&a), Some(&b)) = (by.keys().next(), by.keys().last()) {
            super::check_span(a, b)?;
        }
        let series: Vec<(String, f64)> = match (by.keys().next(), by.keys().last()) {
            (Some(&a), Some(&b)) => (a..=b)
                .map(|p| {
                    let v = by.get(&p).map_or(0.0, |e| match metric {
                        WatchedMetric::Buyers => e.1.len() as f64,
                        _ => e.0.try_into().unwrap_or(f64::MAX),
                    });
                    (clock.label(p), v)
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(AnalyticsOutput::Warnings(data_warnings(&series, method)?))
    }

    /// Community joins, messages and leaves per community and period, with the members' orders.
    fn community_report(&self, period: Option<Period>) -> Result<AnalyticsOutput, Error> {
        let clock = self.clock_for(Some(period.unwrap_or(Period::Week)));
        let (mut user, mut time, mut comm, mut action) = (vec![], vec![], vec![], vec![]);
        let (mut names, mut index) = (Vec::new(), BTreeMap::new());
        for (id, line) in self.state.lines() {
            for s in line.filter(|s| s.kind == "community") {
                let a = match s.name {
                    "community_join" => CommunityAction::Join,
                    "community_message" => CommunityAction::Message,
                    "community_leave" => CommunityAction::Leave,
                    _ => continue,
                };
                let next = names.len() as u32;
                let code = *index.entry(s.detail.to_owned()).or_insert(next);
                if code == next {
                    names.push(s.detail.to_owned());
                }
                user.push(id.0);
                time.push(s.time.timestamp_millis());
                comm.push(code);
                action.push(a);
            }
        }
        let orders = self.orders();
        Ok(AnalyticsOutput::Community(community_stats(
            CommunityEvents {
                user: &user,
                time: &time,
                community: &comm,
                names: &names,
                action: &action,
            },
            orders.table(false),
            clock,
        )?))
    }

    fn analytics_query(&self, c: AnalyticsCommand) -> Result<AnalyticsOutput, Error> {
        Ok(match c {
            AnalyticsCommand::Funnel {
                steps,
                window_seconds,
                segments,
                by_tag,
                audiences,
            } => self.funnel_report(steps, window_seconds, segments, by_tag, audiences)?,
            AnalyticsCommand::CohortRetention { period } => {
                let cols = self.columns(|s| s.kind == "activity");
                AnalyticsOutput::Cohorts(cohort_retention(
                    &cols.user,
                    &cols.time,
                    self.clock_for(period),
                )?)
            }
            AnalyticsCommand::Attribution {
                model,
                half_life_hours,
                lookback_days,
                outcomes,
            } => self.attribution_report(model, half_life_hours, lookback_days, outcomes)?,
            AnalyticsCommand::Journey { user } => {
                let oneid = (self.reads.lookup)(&user)?
                    .ok_or_else(|| AnalyticsError::UnknownUser(format!("{user:?}")))?;
                AnalyticsOutput::Journey(Journey {
                    oneid,
                    steps: self.state.journey(oneid),
                })
            }
            AnalyticsCommand::Repurchase {
                period,
                top,
                min_buyers,
            } => {
                let orders = self.orders();
                AnalyticsOutput::Repurchase(repurchase(
                    orders.table(true),
                    self.clock_for(period),
                    top.unwrap_or(10),
                    min_buyers.unwrap_or(1),
                )?)
            }
            AnalyticsCommand::Paths { from, to, top } => {
                let cols = self.columns(|_| true);
                AnalyticsOutput::Paths(paths(cols.table(), &from, &to, top.unwrap_or(10))?)
            }
            AnalyticsCommand::MicroConversions { conversion } => {
                let cols = self.columns(|_| true);
                AnalyticsOutput::Micro(micro_conversions(
                    cols.table(),
                    conversion.as_deref().unwrap_or("order"),
                )?)
            }
            AnalyticsCommand::MetricTree { period } => {
                let orders = self.orders();
                let r = repurchase(orders.table(false), self.clock_for(period), 0, 1)?;
                AnalyticsOutput::Trees(
                    gmv_tree(&r)
                        .into_iter()
                        .map(|(period, tree)| PeriodTree { period, tree })
                        .collect(),
                )
            }
            AnalyticsCommand::DataWarnings {
                metric,
                method,
                period,
            } => self.data_warnings_report(metric, method, period)?,
            AnalyticsCommand::CommunityStats { period } => self.community_report(period)?,
        })
    }
}
