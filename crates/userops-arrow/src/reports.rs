//! The report tables: the models' per-user answers (RFM, churn, preferences, activity,
//! high-value screening, cross tables), the analyses' lists (micro-conversions, data warnings,
//! community stats) and the campaigns' counts (coupons, channel effectiveness).
//!
//! Every column of these tables is nullable and a float that is not finite is null: the
//! Python package has always returned them so (it built them from the JSON output, where any
//! field may be null and a NaN is written as null), and its callers test for nulls, not NaN.
//! Counts are `int64` (what pandas and polars sum without a cast), OneIDs `uint64` as in
//! every other table, money `decimal128(38, 10)`.

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType};
use userops::analytics::{CommunityTable, MicroConversion, Warning};
use userops::campaigns::{CouponCounts, EffectivenessRow};
use userops::models::{
    ActivityRow, ChurnRisk, CrossRow, HighValueRow, PreferenceRow, RfmRow, SupervisedChurn,
};

use crate::{bools, counts, decimals, floats, strings, u64s, OutputTable};

use DataType::{Boolean, Float64, Int64, UInt64, Utf8};

/// Money: 38 digits, 10 of them after the point (a currency has at most 4).
const MONEY: DataType = DataType::Decimal128(38, 10);

/// [`OutputTable::Rfm`]'s columns.
pub(crate) const RFM: &[(&str, DataType)] = &[
    ("oneid", UInt64),
    ("recency", Int64),
    ("frequency", Int64),
    ("monetary", Float64),
    ("r_score", Int64),
    ("f_score", Int64),
    ("m_score", Int64),
    ("segment", Utf8),
];

/// [`OutputTable::ChurnRisk`]'s columns (`T` as lifetimes names it).
pub(crate) const CHURN_RISK: &[(&str, DataType)] = &[
    ("oneid", UInt64),
    ("frequency", Float64),
    ("recency", Float64),
    ("T", Float64),
    ("p_alive", Float64),
    ("risk", Utf8),
];

/// [`OutputTable::ChurnModel`]'s columns: the score and band, then each of
/// [`userops::models::CHURN_FEATURES`] and its contribution, in that order.
pub(crate) const CHURN_MODEL: &[(&str, DataType)] = &[
    ("oneid", UInt64),
    ("score", Float64),
    ("risk", Utf8),
    ("recency", Float64),
    ("frequency", Float64),
    ("tenure", Float64),
    ("trend", Float64),
    ("activity_score", Float64),
    ("contribution_recency", Float64),
    ("contribution_frequency", Float64),
    ("contribution_tenure", Float64),
    ("contribution_trend", Float64),
    ("contribution_activity_score", Float64),
];

/// [`OutputTable::Preferences`]'s columns.
pub(crate) const PREFERENCES: &[(&str, DataType)] = &[
    ("oneid", UInt64),
    ("value", Utf8),
    ("weight", Float64),
    ("share", Float64),
    ("rank", Int64),
];

/// [`OutputTable::CrossTable`]'s columns.
pub(crate) const CROSS_TABLE: &[(&str, DataType)] =
    &[("row", Utf8), ("col", Utf8), ("amount", Float64)];

/// [`OutputTable::Activity`]'s columns.
pub(crate) const ACTIVITY: &[(&str, DataType)] =
    &[("oneid", UInt64), ("score", Float64), ("level", Utf8)];

/// [`OutputTable::HighValueUsers`]'s columns.
pub(crate) const HIGH_VALUE_USERS: &[(&str, DataType)] = &[
    ("oneid", UInt64),
    ("orders", Int64),
    ("amount", Float64),
    ("order_interval_days", Float64),
    ("messages", Int64),
    ("message_interval_days", Float64),
    ("influence", Int64),
    ("high_value", Boolean),
];

/// [`OutputTable::MicroConversions`]'s columns.
pub(crate) const MICRO_CONVERSIONS: &[(&str, DataType)] = &[
    ("event", Utf8),
    ("users", Int64),
    ("reach", Float64),
    ("converted_after", Int64),
    ("rate", Float64),
    ("rate_without", Float64),
];

/// [`OutputTable::DataWarnings`]'s columns.
pub(crate) const DATA_WARNINGS: &[(&str, DataType)] = &[
    ("index", Int64),
    ("label", Utf8),
    ("value", Float64),
    ("expected", Float64),
    ("low", Float64),
    ("high", Float64),
];

/// [`OutputTable::CommunityStats`]'s columns.
pub(crate) const COMMUNITY_STATS: &[(&str, DataType)] = &[
    ("community", Utf8),
    ("period", Utf8),
    ("joins", Int64),
    ("leavers", Int64),
    ("members", Int64),
    ("active_members", Int64),
    ("activity_rate", Float64),
    ("conversions", Int64),
    ("gmv", MONEY),
];

/// [`OutputTable::CouponCounts`]'s columns.
pub(crate) const COUPON_COUNTS: &[(&str, DataType)] = &[
    ("template", Utf8),
    ("issued", Int64),
    ("claimed", Int64),
    ("used", Int64),
    ("expired", Int64),
    ("returned", Int64),
];

/// [`OutputTable::ChannelEffectiveness`]'s columns.
pub(crate) const CHANNEL_EFFECTIVENESS: &[(&str, DataType)] = &[
    ("key", Utf8),
    ("planned", Int64),
    ("sent", Int64),
    ("delivered", Int64),
    ("opened", Int64),
    ("clicked", Int64),
    ("converted", Int64),
    ("revenue", MONEY),
    ("conversion_rate", Float64),
];

/// [`OutputTable::Rfm`] of the RFM rows.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn rfm(rows: &[RfmRow]) -> Result<RecordBatch, ArrowError> {
    OutputTable::Rfm.batch(vec![
        u64s(rows.iter().map(|r| r.oneid.0)),
        counts(rows.iter().map(|r| r.recency))?,
        counts(rows.iter().map(|r| r.frequency))?,
        floats(rows.iter().map(|r| Some(r.monetary))),
        counts(rows.iter().map(|r| r.r_score))?,
        counts(rows.iter().map(|r| r.f_score))?,
        counts(rows.iter().map(|r| r.m_score))?,
        strings(rows.iter().map(|r| r.segment.name())),
    ])
}

/// [`OutputTable::ChurnRisk`] of the BG/NBD churn view's users (the fit is in
/// [`crate::output_rest`]).
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn churn_risk(churn: &ChurnRisk) -> Result<RecordBatch, ArrowError> {
    let rows = &churn.users;
    OutputTable::ChurnRisk.batch(vec![
        u64s(rows.iter().map(|r| r.oneid.0)),
        floats(rows.iter().map(|r| Some(r.frequency))),
        floats(rows.iter().map(|r| Some(r.recency))),
        floats(rows.iter().map(|r| Some(r.t))),
        floats(rows.iter().map(|r| Some(r.p_alive))),
        strings(rows.iter().map(|r| r.risk.name())),
    ])
}

/// [`OutputTable::ChurnModel`] of the supervised churn model's users (the model is in
/// [`crate::output_rest`]): a feature or contribution the row lacks is null.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn churn_model(churn: &SupervisedChurn) -> Result<RecordBatch, ArrowError> {
    let rows = &churn.users;
    let features = userops::models::CHURN_FEATURES.len();
    let mut columns: Vec<ArrayRef> = vec![
        u64s(rows.iter().map(|r| r.oneid.0)),
        floats(rows.iter().map(|r| Some(r.score))),
        strings(rows.iter().map(|r| r.risk.name())),
    ];
    for i in 0..features {
        columns.push(floats(rows.iter().map(|r| r.features.get(i).copied())));
    }
    for i in 0..features {
        columns.push(floats(rows.iter().map(|r| r.contributions.get(i).copied())));
    }
    OutputTable::ChurnModel.batch(columns)
}

/// [`OutputTable::Preferences`] of the preference shares.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn preferences(rows: &[PreferenceRow]) -> Result<RecordBatch, ArrowError> {
    OutputTable::Preferences.batch(vec![
        u64s(rows.iter().map(|r| r.oneid.0)),
        strings(rows.iter().map(|r| r.value.as_str())),
        floats(rows.iter().map(|r| Some(r.weight))),
        floats(rows.iter().map(|r| Some(r.share))),
        counts(rows.iter().map(|r| r.rank))?,
    ])
}

/// [`OutputTable::CrossTable`] of a cross table's cells.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn cross_table(rows: &[CrossRow]) -> Result<RecordBatch, ArrowError> {
    OutputTable::CrossTable.batch(vec![
        strings(rows.iter().map(|r| r.row.as_str())),
        strings(rows.iter().map(|r| r.col.as_str())),
        floats(rows.iter().map(|r| Some(r.amount))),
    ])
}

/// [`OutputTable::Activity`] of the activity scores.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn activity(rows: &[ActivityRow]) -> Result<RecordBatch, ArrowError> {
    OutputTable::Activity.batch(vec![
        u64s(rows.iter().map(|r| r.oneid.0)),
        floats(rows.iter().map(|r| Some(r.score))),
        strings(rows.iter().map(|r| r.level.as_str())),
    ])
}

/// [`OutputTable::HighValueUsers`] of the screened users.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn high_value_users(rows: &[HighValueRow]) -> Result<RecordBatch, ArrowError> {
    OutputTable::HighValueUsers.batch(vec![
        u64s(rows.iter().map(|r| r.oneid.0)),
        counts(rows.iter().map(|r| r.features.orders))?,
        floats(rows.iter().map(|r| Some(r.features.amount))),
        floats(rows.iter().map(|r| r.features.order_interval_days)),
        counts(rows.iter().map(|r| r.features.messages))?,
        floats(rows.iter().map(|r| r.features.message_interval_days)),
        counts(rows.iter().map(|r| r.features.influence))?,
        bools(rows.iter().map(|r| r.high_value)),
    ])
}

/// [`OutputTable::MicroConversions`] of the micro-conversions.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn micro_conversions(rows: &[MicroConversion]) -> Result<RecordBatch, ArrowError> {
    OutputTable::MicroConversions.batch(vec![
        strings(rows.iter().map(|r| r.event.as_str())),
        counts(rows.iter().map(|r| r.users))?,
        floats(rows.iter().map(|r| Some(r.reach))),
        counts(rows.iter().map(|r| r.converted_after))?,
        floats(rows.iter().map(|r| r.rate)),
        floats(rows.iter().map(|r| r.rate_without)),
    ])
}

/// [`OutputTable::DataWarnings`] of the points outside their band.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn data_warnings(rows: &[Warning]) -> Result<RecordBatch, ArrowError> {
    OutputTable::DataWarnings.batch(vec![
        counts(rows.iter().map(|r| r.index))?,
        strings(rows.iter().map(|r| r.label.as_str())),
        floats(rows.iter().map(|r| Some(r.value))),
        floats(rows.iter().map(|r| Some(r.expected))),
        floats(rows.iter().map(|r| Some(r.low))),
        floats(rows.iter().map(|r| Some(r.high))),
    ])
}

/// [`OutputTable::CommunityStats`] of the community table's rows.
///
/// # Errors
///
/// A GMV too large for `decimal128(38, 10)`; otherwise only for a builder that disagrees with
/// the schema (a bug).
pub fn community_stats(table: &CommunityTable) -> Result<RecordBatch, ArrowError> {
    let rows = &table.rows;
    OutputTable::CommunityStats.batch(vec![
        strings(rows.iter().map(|r| r.community.as_str())),
        strings(rows.iter().map(|r| r.period.as_str())),
        counts(rows.iter().map(|r| r.joins))?,
        counts(rows.iter().map(|r| r.leavers))?,
        counts(rows.iter().map(|r| r.members))?,
        counts(rows.iter().map(|r| r.active_members))?,
        floats(rows.iter().map(|r| r.activity_rate)),
        counts(rows.iter().map(|r| r.conversions))?,
        decimals(rows.iter().map(|r| r.gmv))?,
    ])
}

/// [`OutputTable::CouponCounts`] of the per-template coupon counts.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn coupon_counts(rows: &[CouponCounts]) -> Result<RecordBatch, ArrowError> {
    OutputTable::CouponCounts.batch(vec![
        strings(rows.iter().map(|r| r.template.as_str())),
        counts(rows.iter().map(|r| r.issued))?,
        counts(rows.iter().map(|r| r.claimed))?,
        counts(rows.iter().map(|r| r.used))?,
        counts(rows.iter().map(|r| r.expired))?,
        counts(rows.iter().map(|r| r.returned))?,
    ])
}

/// [`OutputTable::ChannelEffectiveness`] of the effectiveness report's rows.
///
/// # Errors
///
/// A revenue too large for `decimal128(38, 10)`; otherwise only for a builder that disagrees
/// with the schema (a bug).
pub fn channel_effectiveness(rows: &[EffectivenessRow]) -> Result<RecordBatch, ArrowError> {
    OutputTable::ChannelEffectiveness.batch(vec![
        strings(rows.iter().map(|r| r.key.as_str())),
        counts(rows.iter().map(|r| r.planned))?,
        counts(rows.iter().map(|r| r.sent))?,
        counts(rows.iter().map(|r| r.delivered))?,
        counts(rows.iter().map(|r| r.opened))?,
        counts(rows.iter().map(|r| r.clicked))?,
        counts(rows.iter().map(|r| r.converted))?,
        decimals(rows.iter().map(|r| r.revenue))?,
        floats(rows.iter().map(|r| Some(r.conversion_rate))),
    ])
}
