//! The Arrow form of the engine's output tables, shared by the Python and C bindings: one
//! schema per table (column names, types, nullability) and the builder from the engine's typed
//! output to a [`RecordBatch`] of that schema. A binding only hands the batch over (the C
//! binding through the Arrow C data interface, the Python binding as a pyarrow-compatible
//! table), so both expose the same schema by construction, and their tests check it.
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
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
    UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use userops::campaigns::{CampaignsOutput, PlanRow};
use userops::lifecycle::{LifecycleOutput, StagesOutput};
use userops::loyalty::{LoyaltyOutput, StatementRow};
use userops::Output;

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
}

/// Times are milliseconds since the Unix epoch in UTC, the engine's resolution.
fn time() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

impl OutputTable {
    /// Every table, in declaration order.
    pub const ALL: [OutputTable; 5] = [
        OutputTable::Statement,
        OutputTable::AutomationPlan,
        OutputTable::LifecycleStages,
        OutputTable::AudienceMembers,
        OutputTable::ResolvedOneIds,
    ];

    /// The table's name (snake_case), as the bindings' tests and docs name it.
    pub fn name(self) -> &'static str {
        match self {
            OutputTable::Statement => "statement",
            OutputTable::AutomationPlan => "automation_plan",
            OutputTable::LifecycleStages => "lifecycle_stages",
            OutputTable::AudienceMembers => "audience_members",
            OutputTable::ResolvedOneIds => "resolved_oneids",
        }
    }

    /// The table of that name.
    pub fn from_name(name: &str) -> Option<OutputTable> {
        OutputTable::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The table's schema: a column is nullable exactly where the engine's output has an
    /// optional value. OneIDs and transfer ids are `uint64`, as the engine holds them (ids are
    /// never negative, and one type for every id lets a caller join tables without a cast);
    /// points are `int64` (signed: a spend is negative); times are `timestamp[ms, UTC]`.
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

/// The table an engine output is exported as, built: `None` for an output that is not one of
/// the [`OutputTable`]s.
///
/// # Errors
///
/// As the table's builder.
pub fn output_batch(output: &Output) -> Option<Result<(OutputTable, RecordBatch), ArrowError>> {
    let (table, batch) = match output {
        Output::Loyalty(LoyaltyOutput::Statement(rows)) => {
            (OutputTable::Statement, statement(rows))
        }
        Output::Campaigns(CampaignsOutput::Plan(rows)) => {
            (OutputTable::AutomationPlan, automation_plan(rows))
        }
        Output::Lifecycle(LifecycleOutput::Stages(stages)) => {
            (OutputTable::LifecycleStages, lifecycle_stages(stages))
        }
        _ => return None,
    };
    Some(batch.map(|b| (table, b)))
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(values.map(Some).collect::<StringArray>())
}

fn opt_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
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
        Arc::new(
            rows.iter()
                .map(|r| Some(r.pending))
                .collect::<BooleanArray>(),
        ),
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
    use userops::campaigns::CampaignsCommand;
    use userops::lifecycle::LifecycleCommand;
    use userops::loyalty::LoyaltyCommand;
    use userops::{Command, Engine, OneId, UserRef};

    /// An engine where every engine-made table has rows (a member with points, a period of
    /// activity, consent and an automation rule that fires): the calls the C and Python
    /// bindings' schema tests make too.
    fn engine() -> Engine {
        let calls: Vec<(String, serde_json::Value)> =
            serde_json::from_str(include_str!("../../../tests/fixtures/output_tables.json"))
                .expect("the fixture");
        let mut e = Engine::default();
        for (method, args) in calls {
            e.call_json(&method, &args.to_string())
                .unwrap_or_else(|err| panic!("{method}: {err}"));
        }
        e
    }

    fn table_of(e: &mut Engine, command: Command) -> (OutputTable, RecordBatch) {
        let out = e.execute(command).unwrap();
        output_batch(&out).expect("a table output").unwrap()
    }

    #[test]
    fn every_engine_output_table_has_rows_of_its_schema() {
        let mut e = engine();
        let now = "2026-03-01T10:00:00Z".parse().unwrap();
        let made = [
            table_of(
                &mut e,
                Command::Loyalty(LoyaltyCommand::Statement {
                    user: UserRef::Id(userops::Identifier::parse("member_no", "M1").unwrap()),
                    program: "p".into(),
                }),
            ),
            table_of(
                &mut e,
                Command::Campaigns(CampaignsCommand::RunAutomation { now }),
            ),
            table_of(
                &mut e,
                Command::Lifecycle(LifecycleCommand::LifecycleStages {
                    period: None,
                    churn_after: None,
                    early_activity: None,
                }),
            ),
        ];
        let tables: Vec<OutputTable> = made.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            tables,
            [
                OutputTable::Statement,
                OutputTable::AutomationPlan,
                OutputTable::LifecycleStages
            ]
        );
        for (table, batch) in &made {
            assert_eq!(batch.schema(), table.schema(), "{}", table.name());
            assert_eq!(batch.num_rows(), 1, "{}", table.name());
        }
        let kind = made[0].1.column(2).as_any().downcast_ref::<StringArray>();
        assert_eq!(kind.map(|k| k.value(0)), Some("earn"));
        let user = made[1].1.column(1).as_any().downcast_ref::<UInt64Array>();
        assert_eq!(user.map(|u| u.value(0)), Some(1));
        assert_eq!(
            audience_members(&[1, 2]).unwrap().schema(),
            OutputTable::AudienceMembers.schema()
        );
        let resolved = resolved_oneids(vec![Some(1), None]).unwrap();
        assert_eq!(resolved.schema(), OutputTable::ResolvedOneIds.schema());
        assert_eq!(resolved.column(0).null_count(), 1);
    }

    #[test]
    fn other_outputs_are_no_table() {
        let mut e = engine();
        let out = e
            .execute(Command::Loyalty(LoyaltyCommand::Balance {
                user: UserRef::OneId(OneId(1)),
                program: "p".into(),
            }))
            .unwrap();
        assert!(output_batch(&out).is_none());
    }

    #[test]
    fn a_null_in_a_required_column_is_refused() {
        let err = OutputTable::AudienceMembers
            .batch(vec![Arc::new(UInt64Array::from(vec![Some(1), None]))])
            .unwrap_err();
        assert!(err.to_string().contains("non-nullable"), "{err}");
    }

    #[test]
    fn names_are_distinct_and_found() {
        for t in OutputTable::ALL {
            assert_eq!(OutputTable::from_name(t.name()), Some(t));
        }
        assert_eq!(OutputTable::from_name("nope"), None);
    }
}
