//! The Arrow form of the engine's output tables, shared by the Python and C bindings: one
//! schema per table (column names, types, nullability) and the builder from the engine's typed
//! output to a [`RecordBatch`] of that schema. A binding only hands the batch over (the C
//! binding through the Arrow C data interface, the Python binding as a pyarrow-compatible
//! table), so both expose the same schema by construction, and their tests check it.
//! [`command_table`] says which table a command returns before it runs, [`output_rest`] what
//! else its output holds (a model's fit).
//!
//! ```
//! use userops::loyalty::{LoyaltyCommand, LoyaltyOutput};
//! use userops::{Command, Engine, Output};
//! use userops_arrow::OutputTable;
//!
//! let mut engine = Engine::default();
//! engine.call_json("create_program", r#"{"program": {"id": "p"}}"#)?;
//! engine.call_json("earn", r#"{"user": {"kind": "member_no", "value": "M1"}, "program": "p",
//!     "points": 100, "key": "k1", "time": "2026-03-01T10:00:00Z"}"#)?;
//! let out = engine.execute(Command::Loyalty(LoyaltyCommand::Statement {
//!     user: userops::UserRef::OneId(userops::OneId(1)),
//!     program: "p".into(),
//! }))?;
//! let (table, batch) = userops_arrow::output_batch(&out).expect("a table").expect("built");
//! assert_eq!(table, OutputTable::Statement);
//! assert_eq!(batch.schema(), table.schema());
//! assert_eq!(batch.num_rows(), 1);
//! # Ok::<(), userops::Error>(())
//! ```

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use rust_decimal::Decimal;
use userops::analytics::AnalyticsOutput;
use userops::campaigns::{CampaignsOutput, PlanRow};
use userops::lifecycle::{LifecycleCommand, LifecycleOutput, StagesOutput};
use userops::loyalty::{LoyaltyCommand, LoyaltyOutput, StatementRow};
use userops::models::ModelsOutput;
use userops::{Command, Output};

mod reports;

pub use reports::{
    activity, channel_effectiveness, churn_model, churn_risk, community_stats, coupon_counts,
    cross_table, data_warnings, high_value_users, micro_conversions, preferences, rfm,
};

/// A table the bindings export as Arrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputTable {
    /// A member's postings in one program, oldest first ([`statement`]).
    Statement,
    /// The delivery plan of an automation run, one row per planned action ([`automation_plan`]).
    AutomationPlan,
    /// The lifecycle stage of every registered person in one period ([`lifecycle_stages`]).
    LifecycleStages,
    /// An audience's members, ascending ([`audience_members`]).
    AudienceMembers,
    /// Identifiers resolved to OneIDs, one row per input row ([`resolved_oneids`]).
    ResolvedOneIds,
    /// RFM of every user with an order in the window ([`rfm`]).
    Rfm,
    /// BG/NBD churn risk per buyer ([`churn_risk`]).
    ChurnRisk,
    /// Supervised churn scores per user, with their features and contributions
    /// ([`churn_model`]).
    ChurnModel,
    /// Each user's preference shares along one dimension ([`preferences`]).
    Preferences,
    /// Order-line amounts (or event counts) per label pair ([`cross_table`]).
    CrossTable,
    /// Each user's activity score and level ([`activity`]).
    Activity,
    /// High-value screening: each user's features and verdict ([`high_value_users`]).
    HighValueUsers,
    /// Every step as a micro-conversion towards a conversion ([`micro_conversions`]).
    MicroConversions,
    /// Periods where a metric left its band ([`data_warnings`]).
    DataWarnings,
    /// Per community and period: joins, members, activity, conversions ([`community_stats`]).
    CommunityStats,
    /// Coupon counts per state, one row per template ([`coupon_counts`]).
    CouponCounts,
    /// Touch outcomes per channel, rule or audience ([`channel_effectiveness`]).
    ChannelEffectiveness,
}

/// Times are milliseconds since the Unix epoch in UTC, the engine's resolution.
fn time() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

impl OutputTable {
    /// Every table, in declaration order.
    pub const ALL: [OutputTable; 17] = [
        OutputTable::Statement,
        OutputTable::AutomationPlan,
        OutputTable::LifecycleStages,
        OutputTable::AudienceMembers,
        OutputTable::ResolvedOneIds,
        OutputTable::Rfm,
        OutputTable::ChurnRisk,
        OutputTable::ChurnModel,
        OutputTable::Preferences,
        OutputTable::CrossTable,
        OutputTable::Activity,
        OutputTable::HighValueUsers,
        OutputTable::MicroConversions,
        OutputTable::DataWarnings,
        OutputTable::CommunityStats,
        OutputTable::CouponCounts,
        OutputTable::ChannelEffectiveness,
    ];

    /// The table's name (snake_case), as the bindings' tests and docs name it.
    pub fn name(self) -> &'static str {
        match self {
            OutputTable::Statement => "statement",
            OutputTable::AutomationPlan => "automation_plan",
            OutputTable::LifecycleStages => "lifecycle_stages",
            OutputTable::AudienceMembers => "audience_members",
            OutputTable::ResolvedOneIds => "resolved_oneids",
            OutputTable::Rfm => "rfm",
            OutputTable::ChurnRisk => "churn_risk",
            OutputTable::ChurnModel => "churn_model",
            OutputTable::Preferences => "preferences",
            OutputTable::CrossTable => "cross_table",
            OutputTable::Activity => "activity",
            OutputTable::HighValueUsers => "high_value_users",
            OutputTable::MicroConversions => "micro_conversions",
            OutputTable::DataWarnings => "data_warnings",
            OutputTable::CommunityStats => "community_stats",
            OutputTable::CouponCounts => "coupon_counts",
            OutputTable::ChannelEffectiveness => "channel_effectiveness",
        }
    }

    /// The table of that name.
    pub fn from_name(name: &str) -> Option<OutputTable> {
        OutputTable::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The table's schema. In the engine tables (statement, automation plan, lifecycle
    /// stages, audience members, resolved OneIDs) a column is nullable exactly where the
    /// engine's output has an optional value; in the report tables (RFM and the other models,
    /// the analyses' and campaigns' reports) every column is nullable, as the Python package
    /// has always returned them. OneIDs and transfer ids are `uint64`, as the engine holds
    /// them (ids are never negative, and one type for every id lets a caller join tables
    /// without a cast); points and counts are `int64` (signed: a spend is negative); times are
    /// `timestamp[ms, UTC]`; money is `decimal128(38, 10)`.
    pub fn schema(self) -> SchemaRef {
        use DataType::{Boolean, Int64, UInt64, Utf8};
        let f =
            |name: &str, data_type: DataType, nullable: bool| Field::new(name, data_type, nullable);
        let fields = match self {
            OutputTable::Statement => vec![
                f("id", UInt64, false),
                f("time", time(), false),
                f("kind", Utf8, false),
                f("key", Utf8, false),
                f("amount", Int64, false),
                f("balance", Int64, false),
                f("pending", Boolean, false),
                f("counterparty", Utf8, false),
                f("expires", time(), true),
                f("reason", Utf8, false),
                f("actor", Utf8, false),
            ],
            OutputTable::AutomationPlan => vec![
                f("touch_id", UInt64, true),
                f("user", UInt64, false),
                f("action", Utf8, false),
                f("channel", Utf8, true),
                f("content", Utf8, true),
                f("coupon_id", Utf8, true),
                f("points", Int64, true),
                f("program", Utf8, true),
                f("key", Utf8, true),
                f("tag", Utf8, true),
                f("rule", Utf8, false),
                f("reason", Utf8, false),
            ],
            OutputTable::LifecycleStages => vec![
                f("oneid", UInt64, false),
                f("period", Utf8, false),
                f("stage", Utf8, false),
            ],
            OutputTable::AudienceMembers => vec![f("oneid", UInt64, false)],
            OutputTable::ResolvedOneIds => vec![f("oneid", UInt64, true)],
            OutputTable::Rfm => report(reports::RFM),
            OutputTable::ChurnRisk => report(reports::CHURN_RISK),
            OutputTable::ChurnModel => report(reports::CHURN_MODEL),
            OutputTable::Preferences => report(reports::PREFERENCES),
            OutputTable::CrossTable => report(reports::CROSS_TABLE),
            OutputTable::Activity => report(reports::ACTIVITY),
            OutputTable::HighValueUsers => report(reports::HIGH_VALUE_USERS),
            OutputTable::MicroConversions => report(reports::MICRO_CONVERSIONS),
            OutputTable::DataWarnings => report(reports::DATA_WARNINGS),
            OutputTable::CommunityStats => report(reports::COMMUNITY_STATS),
            OutputTable::CouponCounts => report(reports::COUPON_COUNTS),
            OutputTable::ChannelEffectiveness => report(reports::CHANNEL_EFFECTIVENESS),
        };
        Arc::new(Schema::new(fields))
    }

    /// A batch of this table from its columns, in schema order. Checked against the schema
    /// (count, types, and no null in a column that is not nullable): a builder that disagrees
    /// with the schema is an error, never a different table.
    fn batch(self, columns: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
        RecordBatch::try_new(self.schema(), columns)
    }
}

/// A report table's fields: every column nullable (see [`OutputTable::schema`]).
fn report(columns: &[(&str, DataType)]) -> Vec<Field> {
    columns
        .iter()
        .map(|(name, data_type)| Field::new(*name, data_type.clone(), true))
        .collect()
}

/// The table an engine output is exported as, built: `None` for an output that is not one of
/// the [`OutputTable`]s.
///
/// # Errors
///
/// As the table's builder.
pub fn output_batch(output: &Output) -> Option<Result<(OutputTable, RecordBatch), ArrowError>> {
    use AnalyticsOutput as A;
    use CampaignsOutput as C;
    use ModelsOutput as M;
    let (table, batch) = match output {
        Output::Loyalty(LoyaltyOutput::Statement(rows)) => {
            (OutputTable::Statement, statement(rows))
        }
        Output::Campaigns(C::Plan(rows)) => (OutputTable::AutomationPlan, automation_plan(rows)),
        Output::Lifecycle(LifecycleOutput::Stages(stages)) => {
            (OutputTable::LifecycleStages, lifecycle_stages(stages))
        }
        Output::Models(M::Rfm(rows)) => (OutputTable::Rfm, rfm(rows)),
        Output::Models(M::ChurnRisk(churn)) => (OutputTable::ChurnRisk, churn_risk(churn)),
        Output::Models(M::SupervisedChurn(churn)) => (OutputTable::ChurnModel, churn_model(churn)),
        Output::Models(M::Preferences(rows)) => (OutputTable::Preferences, preferences(rows)),
        Output::Models(M::Cross(rows)) => (OutputTable::CrossTable, cross_table(rows)),
        Output::Models(M::Activity(rows)) => (OutputTable::Activity, activity(rows)),
        Output::Models(M::HighValue(rows)) => (OutputTable::HighValueUsers, high_value_users(rows)),
        Output::Analytics(A::Micro(rows)) => {
            (OutputTable::MicroConversions, micro_conversions(rows))
        }
        Output::Analytics(A::Warnings(rows)) => (OutputTable::DataWarnings, data_warnings(rows)),
        Output::Analytics(A::Community(table)) => {
            (OutputTable::CommunityStats, community_stats(table))
        }
        Output::Campaigns(C::Counts(rows)) => (OutputTable::CouponCounts, coupon_counts(rows)),
        Output::Campaigns(C::Report(rows)) => (
            OutputTable::ChannelEffectiveness,
            channel_effectiveness(rows),
        ),
        _ => return None,
    };
    Some(batch.map(|b| (table, b)))
}

/// The table a command's output is exported as, known before the command runs: `None` for a
/// command whose output is not a table. A binding refuses such a command before running it,
/// so that a refused call changes nothing.
pub fn command_table(command: &Command) -> Option<OutputTable> {
    use userops::analytics::AnalyticsCommand as A;
    use userops::campaigns::CampaignsCommand as C;
    use userops::models::ModelsCommand as M;
    Some(match command {
        Command::Loyalty(LoyaltyCommand::Statement { .. }) => OutputTable::Statement,
        Command::Campaigns(C::RunAutomation { .. } | C::ApplyAutomationPlan { .. }) => {
            OutputTable::AutomationPlan
        }
        Command::Lifecycle(LifecycleCommand::LifecycleStages { .. }) => {
            OutputTable::LifecycleStages
        }
        Command::Models(M::Rfm { .. }) => OutputTable::Rfm,
        Command::Models(M::ChurnRisk { .. }) => OutputTable::ChurnRisk,
        Command::Models(M::ChurnModel { .. }) => OutputTable::ChurnModel,
        Command::Models(M::PreferenceShares { .. }) => OutputTable::Preferences,
        Command::Models(M::CrossTable { .. }) => OutputTable::CrossTable,
        Command::Models(M::ActivityScores { .. }) => OutputTable::Activity,
        Command::Models(M::HighValueUsers { .. }) => OutputTable::HighValueUsers,
        Command::Analytics(A::MicroConversions { .. }) => OutputTable::MicroConversions,
        Command::Analytics(A::DataWarnings { .. }) => OutputTable::DataWarnings,
        Command::Analytics(A::CommunityStats { .. }) => OutputTable::CommunityStats,
        Command::Campaigns(C::CouponCounts { .. }) => OutputTable::CouponCounts,
        Command::Campaigns(C::ChannelEffectiveness { .. }) => OutputTable::ChannelEffectiveness,
        _ => return None,
    })
}

/// What an output holds besides the rows of its table, as the JSON the engine returns for it
/// with those rows replaced by `null`: the fit of `churn_risk` (`{"params", "log_likelihood",
/// "users": null}`), the model of `churn_model` (`{"model", "users": null}`), `{"period",
/// "users": null}` for `lifecycle_stages`, `{"rows": null}` for `community_stats`, and `null`
/// for every other output (those that are only rows; the rest of an output that is not a
/// table, where [`output_batch`] gives `None`, is meaningless).
///
/// # Errors
///
/// A value that JSON cannot hold (a bug: the engine's outputs serialize).
pub fn output_rest(output: &Output) -> Result<serde_json::Value, serde_json::Error> {
    use serde_json::Value;
    // Each rest is built without the rows (never serialized only to be dropped), naming every
    // field, so that a field added to the output does not compile until it is placed here.
    let (mut rest, rows) = match output {
        Output::Models(ModelsOutput::ChurnRisk(c)) => {
            let rest = userops::models::ChurnRisk {
                params: c.params,
                log_likelihood: c.log_likelihood,
                users: Vec::new(),
            };
            (serde_json::to_value(rest)?, "users")
        }
        Output::Models(ModelsOutput::SupervisedChurn(c)) => {
            let rest = userops::models::SupervisedChurn {
                model: c.model.clone(),
                users: Vec::new(),
            };
            (serde_json::to_value(rest)?, "users")
        }
        Output::Lifecycle(LifecycleOutput::Stages(s)) => {
            let rest = StagesOutput {
                period: s.period.clone(),
                users: Vec::new(),
            };
            (serde_json::to_value(rest)?, "users")
        }
        Output::Analytics(AnalyticsOutput::Community(_)) => {
            let rest = userops::analytics::CommunityTable { rows: Vec::new() };
            (serde_json::to_value(rest)?, "rows")
        }
        _ => return Ok(Value::Null),
    };
    if let Some(fields) = rest.as_object_mut() {
        fields.insert(rows.to_owned(), Value::Null);
    }
    Ok(rest)
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(values.map(Some).collect::<StringArray>())
}

fn opt_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn bools(values: impl Iterator<Item = bool>) -> ArrayRef {
    Arc::new(values.map(Some).collect::<BooleanArray>())
}

fn u64s(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(UInt64Array::from_iter_values(values))
}

/// Counts, scores and positions as `int64`; one that does not fit is an error, never a
/// wrapped value.
fn counts<T>(values: impl Iterator<Item = T>) -> Result<ArrayRef, ArrowError>
where
    T: TryInto<i64> + Copy + std::fmt::Display,
{
    let values = values
        .map(|v| {
            v.try_into().map_err(|_| {
                ArrowError::InvalidArgumentError(format!("{v} does not fit an int64 column"))
            })
        })
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(Arc::new(Int64Array::from(values)))
}

/// Floats, with a value that is not finite as null (see the report tables' module docs).
fn floats(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    Arc::new(
        values
            .map(|v| v.filter(|f| f.is_finite()))
            .collect::<Float64Array>(),
    )
}

/// Money as `decimal128(38, 10)`: rounded to 10 places (a currency has at most 4); an amount
/// with more than 28 digits before the point is an error.
fn decimals(values: impl Iterator<Item = Decimal>) -> Result<ArrayRef, ArrowError> {
    const SCALE: u32 = 10;
    let units = values
        .map(|d| {
            let d = d.round_dp(SCALE);
            SCALE
                .checked_sub(d.scale())
                .and_then(|places| 10i128.checked_pow(places))
                .and_then(|factor| d.mantissa().checked_mul(factor))
                .filter(|m| m.unsigned_abs() < 10u128.pow(38))
                .ok_or_else(|| {
                    ArrowError::InvalidArgumentError(format!(
                        "{d} does not fit a decimal128(38, 10) column"
                    ))
                })
        })
        .collect::<Result<Vec<i128>, _>>()?;
    Ok(Arc::new(
        Decimal128Array::from(units).with_precision_and_scale(38, 10)?,
    ))
}

fn times(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(
        values
            .collect::<TimestampMillisecondArray>()
            .with_timezone("UTC"),
    )
}

/// [`OutputTable::Statement`] of a statement's rows.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn statement(rows: &[StatementRow]) -> Result<RecordBatch, ArrowError> {
    // The kind's wire name is its serde name, the one the JSON output carries.
    let kinds = rows
        .iter()
        .map(|r| match serde_json::to_value(r.kind) {
            Ok(serde_json::Value::String(s)) => Ok(s),
            other => Err(ArrowError::InvalidArgumentError(format!(
                "transfer kind {:?} has no name: {other:?}",
                r.kind
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    OutputTable::Statement.batch(vec![
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.id))),
        times(rows.iter().map(|r| Some(r.time.timestamp_millis()))),
        strings(kinds.iter().map(String::as_str)),
        strings(rows.iter().map(|r| r.key.as_str())),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.amount))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.balance))),
        bools(rows.iter().map(|r| r.pending)),
        strings(rows.iter().map(|r| r.counterparty.as_str())),
        times(rows.iter().map(|r| r.expires.map(|t| t.timestamp_millis()))),
        strings(rows.iter().map(|r| r.reason.as_str())),
        strings(rows.iter().map(|r| r.actor.as_str())),
    ])
}

/// [`OutputTable::AutomationPlan`] of an automation run's plan.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn automation_plan(rows: &[PlanRow]) -> Result<RecordBatch, ArrowError> {
    OutputTable::AutomationPlan.batch(vec![
        Arc::new(rows.iter().map(|r| r.touch_id).collect::<UInt64Array>()),
        Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.user.0))),
        strings(rows.iter().map(|r| r.action)),
        opt_strings(rows.iter().map(|r| r.channel.as_deref())),
        opt_strings(rows.iter().map(|r| r.content.as_deref())),
        opt_strings(rows.iter().map(|r| r.coupon_id.as_deref())),
        Arc::new(rows.iter().map(|r| r.points).collect::<Int64Array>()),
        opt_strings(rows.iter().map(|r| r.program.as_deref())),
        opt_strings(rows.iter().map(|r| r.key.as_deref())),
        opt_strings(rows.iter().map(|r| r.tag.as_deref())),
        strings(rows.iter().map(|r| &*r.rule)),
        strings(rows.iter().map(|r| &*r.reason)),
    ])
}

/// [`OutputTable::LifecycleStages`] of one period's stages.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn lifecycle_stages(stages: &StagesOutput) -> Result<RecordBatch, ArrowError> {
    let users = &stages.users;
    OutputTable::LifecycleStages.batch(vec![
        Arc::new(UInt64Array::from_iter_values(
            users.iter().map(|u| u.oneid.0),
        )),
        strings(users.iter().map(|_| stages.period.as_str())),
        strings(users.iter().map(|u| u.stage.name())),
    ])
}

/// [`OutputTable::AudienceMembers`] of an audience's OneIDs.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn audience_members(oneids: &[u64]) -> Result<RecordBatch, ArrowError> {
    OutputTable::AudienceMembers.batch(vec![Arc::new(UInt64Array::from(oneids.to_vec()))])
}

/// [`OutputTable::ResolvedOneIds`]: one row per input row, null where nothing resolved.
///
/// # Errors
///
/// Only for a builder that disagrees with the schema (a bug).
pub fn resolved_oneids(oneids: Vec<Option<u64>>) -> Result<RecordBatch, ArrowError> {
    OutputTable::ResolvedOneIds.batch(vec![Arc::new(UInt64Array::from(oneids))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Decimal128Type, Float64Type, Int64Type, TimestampMillisecondType, UInt64Type,
    };
    use arrow_array::Array;
    use serde_json::Value;
    use userops::{Engine, OneId, UserRef};

    /// The shared fixture: one state where every table has rows, and the call returning each
    /// (the C and Python bindings' schema tests run it too).
    struct Fixture {
        calls: Vec<(String, Value)>,
        tables: Vec<(String, String, Value)>,
    }

    fn fixture() -> Fixture {
        let v: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/output_tables.json"))
                .expect("the fixture");
        Fixture {
            calls: serde_json::from_value(v["calls"].clone()).expect("calls"),
            tables: serde_json::from_value(v["tables"].clone()).expect("tables"),
        }
    }

    fn engine() -> Engine {
        let mut e = Engine::default();
        for (method, args) in fixture().calls {
            e.call_json(&method, &args.to_string())
                .unwrap_or_else(|err| panic!("{method}: {err}"));
        }
        e
    }

    /// The output of `method`, checked to be of the table [`command_table`] says.
    fn output(e: &mut Engine, method: &str, args: &Value) -> Output {
        let command = Command::from_call(method, &args.to_string()).unwrap();
        let table = command_table(&command);
        let out = e
            .execute(command)
            .unwrap_or_else(|err| panic!("{method}: {err}"));
        let made = output_batch(&out).map(|b| b.unwrap().0);
        assert_eq!(made, table, "{method}: the table known before it ran");
        out
    }

    #[test]
    fn every_engine_output_table_has_rows_of_its_schema() {
        let mut e = engine();
        let mut made = Vec::new();
        for (name, method, args) in fixture().tables {
            let out = output(&mut e, &method, &args);
            let (table, batch) = output_batch(&out).expect("a table output").unwrap();
            assert_eq!(table.name(), name, "{method}");
            assert_eq!(batch.schema(), table.schema(), "{name}");
            assert!(batch.num_rows() >= 1, "{name} has rows");
            made.push(table);
        }
        // Every table but the two made from handles and Arrow input, not by a method.
        let by_method: Vec<OutputTable> = OutputTable::ALL
            .into_iter()
            .filter(|t| ![OutputTable::AudienceMembers, OutputTable::ResolvedOneIds].contains(t))
            .collect();
        made.sort_by_key(|t| t.name());
        let mut expected = by_method;
        expected.sort_by_key(|t| t.name());
        assert_eq!(made, expected);
        assert_eq!(
            audience_members(&[1, 2]).unwrap().schema(),
            OutputTable::AudienceMembers.schema()
        );
        let resolved = resolved_oneids(vec![Some(1), None]).unwrap();
        assert_eq!(resolved.schema(), OutputTable::ResolvedOneIds.schema());
        assert_eq!(resolved.column(0).null_count(), 1);
    }

    /// Where a column's values are in the JSON output's rows: the field of its name, except the
    /// churn model's features and contributions (arrays).
    fn pointer(table: OutputTable, column: usize, name: &str) -> String {
        let features = userops::models::CHURN_FEATURES.len();
        match (table, column.checked_sub(3)) {
            (OutputTable::ChurnModel, Some(i)) if i < features => format!("/features/{i}"),
            (OutputTable::ChurnModel, Some(i)) => format!("/contributions/{}", i - features),
            _ => format!("/{name}"),
        }
    }

    /// A cell as the JSON the engine returns would give it (null for null, numbers by value,
    /// money and times as text).
    fn cell(array: &dyn Array, row: usize) -> Value {
        if array.is_null(row) {
            return Value::Null;
        }
        match array.data_type() {
            DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
            DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
            DataType::Float64 => array.as_primitive::<Float64Type>().value(row).into(),
            DataType::Boolean => array.as_boolean().value(row).into(),
            DataType::Utf8 => array.as_string::<i32>().value(row).into(),
            DataType::Decimal128(_, scale) => {
                let units = array.as_primitive::<Decimal128Type>().value(row);
                let d = Decimal::from_i128_with_scale(units, u32::from(scale.unsigned_abs()));
                d.normalize().to_string().into()
            }
            DataType::Timestamp(..) => {
                let ms = array.as_primitive::<TimestampMillisecondType>().value(row);
                let t = chrono::DateTime::from_timestamp_millis(ms).expect("a time");
                t.timestamp_millis().into()
            }
            other => panic!("no JSON form for {other}"),
        }
    }

    /// The JSON value normalized as [`cell`] gives it.
    fn json_cell(v: Option<&Value>, data_type: &DataType) -> Value {
        match (v, data_type) {
            (None | Some(Value::Null), _) => Value::Null,
            (Some(Value::String(s)), DataType::Decimal128(..)) => {
                let d: Decimal = s.parse().expect("money");
                d.normalize().to_string().into()
            }
            (Some(Value::String(s)), DataType::Timestamp(..)) => {
                let t = chrono::DateTime::parse_from_rfc3339(s).expect("a time");
                t.timestamp_millis().into()
            }
            (Some(v), _) => v.clone(),
        }
    }

    /// Each table holds exactly what the engine's JSON output holds (cell by cell, the value
    /// Python read from JSON before the tables were built from the typed outputs), and
    /// [`output_rest`] is that output with the rows replaced by null.
    #[test]
    fn tables_and_rest_hold_what_the_json_output_holds() {
        let (mut typed, mut json) = (engine(), engine());
        for (name, method, args) in fixture().tables {
            let out = output(&mut typed, &method, &args);
            let (table, batch) = output_batch(&out).unwrap().unwrap();
            let mut whole: Value =
                serde_json::from_str(&json.call_json(&method, &args.to_string()).unwrap()).unwrap();
            let rows_at = match table {
                OutputTable::ChurnRisk | OutputTable::ChurnModel => "/users",
                OutputTable::LifecycleStages => "/users",
                OutputTable::CommunityStats => "/rows",
                _ => "",
            };
            let rows = whole.pointer_mut(rows_at).map(Value::take).unwrap();
            assert_eq!(output_rest(&out).unwrap(), whole, "{name}: the rest");
            let mut rows = rows.as_array().cloned().unwrap();
            if table == OutputTable::LifecycleStages {
                // The period is the output's, a column of every row in the table.
                for row in &mut rows {
                    row["period"] = whole["period"].clone();
                }
            }
            assert_eq!(batch.num_rows(), rows.len(), "{name}");
            for (c, field) in batch.schema().fields().iter().enumerate() {
                let at = pointer(table, c, field.name());
                for (r, row) in rows.iter().enumerate() {
                    assert_eq!(
                        cell(batch.column(c), r),
                        json_cell(row.pointer(&at), field.data_type()),
                        "{name}.{} row {r}",
                        field.name()
                    );
                }
            }
        }
    }

    #[test]
    fn other_outputs_are_no_table() {
        let mut e = engine();
        let balance = Command::Loyalty(LoyaltyCommand::Balance {
            user: UserRef::OneId(OneId(1)),
            program: "p".into(),
        });
        assert_eq!(command_table(&balance), None);
        let out = e.execute(balance).unwrap();
        assert!(output_batch(&out).is_none());
        assert_eq!(output_rest(&out).unwrap(), Value::Null);
    }

    #[test]
    fn a_null_in_a_required_column_is_refused() {
        let err = OutputTable::AudienceMembers
            .batch(vec![Arc::new(UInt64Array::from(vec![Some(1), None]))])
            .unwrap_err();
        assert!(err.to_string().contains("non-nullable"), "{err}");
    }

    #[test]
    fn report_columns_follow_the_engine() {
        let names: Vec<String> = OutputTable::ChurnModel
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let features = userops::models::CHURN_FEATURES;
        let contributions = features.iter().map(|f| format!("contribution_{f}"));
        let expected: Vec<String> = ["oneid", "score", "risk"]
            .into_iter()
            .chain(features)
            .map(str::to_owned)
            .chain(contributions)
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn values_a_column_cannot_hold_are_errors_or_null() {
        let big = counts([u64::MAX].into_iter()).unwrap_err();
        assert!(big.to_string().contains("int64"), "{big}");
        let money = decimals([Decimal::MAX].into_iter()).unwrap_err();
        assert!(money.to_string().contains("decimal128"), "{money}");
        let fine = decimals(["12.345".parse().unwrap()].into_iter()).unwrap();
        assert_eq!(
            fine.as_primitive::<Decimal128Type>().value(0),
            123_450_000_000
        );
        let f = floats([Some(1.5), Some(f64::NAN), Some(f64::INFINITY), None].into_iter());
        assert_eq!(f.null_count(), 3);
    }

    #[test]
    fn names_are_distinct_and_found() {
        for t in OutputTable::ALL {
            assert_eq!(OutputTable::from_name(t.name()), Some(t));
        }
        assert_eq!(OutputTable::from_name("nope"), None);
    }
}
