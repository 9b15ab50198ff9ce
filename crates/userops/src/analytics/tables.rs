//! The batch path over JSON columns: the C ABI's (and any JSON caller's) door to the table
//! functions, without an engine.
//!
//! `method` is one of `lifecycle`, `active_rate_decomposition`, `funnel`, `cohort_retention`,
//! `attribution`; the arguments are the Python functions' keyword arguments with the columns
//! inline. Times are integers (ms since the epoch, UTC) or RFC 3339 strings *with* a zone: a
//! time without a zone is refused, since the period it falls in depends on it.
//!
//! ```
//! let out = userops::analytics::table_call_json("lifecycle", r#"{
//!     "user": [1, 1], "time": ["2026-01-31T23:59:59+08:00", "2026-02-01T00:00:00+08:00"]}"#).unwrap();
//! assert_eq!(out, r#"{"rows":[[1,"2026-01","new"],[1,"2026-02","last_period_new"]]}"#);
//! assert!(userops::analytics::table_call_json("lifecycle",
//!     r#"{"user": [1], "time": ["2026-01-31T23:59:59"]}"#).is_err());
//! ```

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::{attribute, cohort_retention, funnel, AttributionModel, Conversions, EventTable};
use crate::config::Period;
use crate::error::Error;
use crate::lifecycle::{
    stage_table, ActivityTable, EarlyActivity, LifecycleReport, PeriodClock, Registrations,
    StageOptions, StageRules,
};

/// A time on the wire: ms since the epoch (UTC) or RFC 3339 with a zone.
#[derive(Debug, Clone, Copy)]
struct Ms(i64);

impl<'de> Deserialize<'de> for Ms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(ms) => Ok(Ms(ms)),
            Raw::Text(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| Ms(t.timestamp_millis()))
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "{s:?} is not an RFC 3339 time with a zone ({e}); a time without a zone is ambiguous"
                    ))
                }),
        }
    }
}

fn ms(v: &[Ms]) -> Vec<i64> {
    v.iter().map(|m| m.0).collect()
}

fn tz_clock(period: Option<Period>, utc_offset_seconds: Option<i32>) -> Result<PeriodClock, Error> {
    let off = utc_offset_seconds.unwrap_or(8 * 3600);
    if !(-12 * 3600..=14 * 3600).contains(&off) {
        return Err(Error::invalid_argument(
            "utc_offset_seconds",
            "between -12:00 and +14:00",
        ));
    }
    Ok(PeriodClock::new(period.unwrap_or_default(), off))
}

fn names(col: &[String]) -> (Vec<u32>, Vec<String>) {
    let mut index = std::collections::BTreeMap::new();
    let mut names = Vec::new();
    let codes = col
        .iter()
        .map(|n| {
            *index.entry(n.clone()).or_insert_with(|| {
                names.push(n.clone());
                (names.len() - 1) as u32
            })
        })
        .collect();
    (codes, names)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Regs {
    user: Vec<u64>,
    time: Vec<Ms>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LifecycleArgs {
    user: Vec<u64>,
    time: Vec<Ms>,
    #[serde(default)]
    registered: Option<Regs>,
    #[serde(default)]
    period: Option<Period>,
    #[serde(default)]
    utc_offset_seconds: Option<i32>,
    #[serde(default)]
    churn_after: Option<u32>,
    #[serde(default)]
    early_activity: Option<EarlyActivity>,
}

impl LifecycleArgs {
    fn table(&self) -> Result<crate::lifecycle::StageTable, Error> {
        let clock = tz_clock(self.period, self.utc_offset_seconds)?;
        let rules = self
            .churn_after
            .map_or(Ok(StageRules::default()), StageRules::new)?;
        let time = ms(&self.time);
        let reg = self
            .registered
            .as_ref()
            .map(|r| (r.user.clone(), ms(&r.time)));
        Ok(stage_table(
            ActivityTable {
                user: &self.user,
                time: &time,
            },
            reg.as_ref()
                .map(|(u, t)| Registrations { user: u, time: t }),
            StageOptions::new(clock)
                .rules(rules)
                .early_activity(self.early_activity.unwrap_or_default()),
        )?)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunnelArgs {
    user: Vec<u64>,
    time: Vec<Ms>,
    event: Vec<String>,
    steps: Vec<String>,
    #[serde(default)]
    window_seconds: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CohortArgs {
    user: Vec<u64>,
    time: Vec<Ms>,
    #[serde(default)]
    period: Option<Period>,
    #[serde(default)]
    utc_offset_seconds: Option<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TouchCols {
    user: Vec<u64>,
    time: Vec<Ms>,
    channel: Vec<String>,
}

/// Money as a decimal string.
#[derive(Deserialize)]
#[serde(transparent)]
struct Money(#[serde(with = "rust_decimal::serde::str")] Decimal);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConvCols {
    user: Vec<u64>,
    time: Vec<Ms>,
    #[serde(default)]
    value: Option<Vec<Money>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttributionArgs {
    touches: TouchCols,
    conversions: ConvCols,
    model: super::commands::ModelName,
    #[serde(default)]
    half_life_hours: Option<f64>,
    #[serde(default)]
    lookback_days: Option<f64>,
}

fn parse<T: DeserializeOwned>(args: &str) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_str(args);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        Error::invalid_argument(
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Internal(e.to_string()))
}

/// Run a table function on JSON columns; the result as JSON (see the module docs).
///
/// # Errors
///
/// `unknown_method` for a method no table function has; `invalid_argument` for arguments that
/// are not JSON or do not fit the method (the field's path named); then the analysis's own
/// refusal, converted to its [`Error`] (bad columns, bad arguments, a fit that did not
/// converge, ...).
pub fn table_call_json(method: &str, args_json: &str) -> Result<String, Error> {
    match method {
        "lifecycle" => {
            let a: LifecycleArgs = parse(args_json)?;
            let t = a.table()?;
            let rows: Vec<(u64, String, &str)> = t
                .rows()
                .map(|(u, p, s)| (u, t.clock().label(p), s.name()))
                .collect();
            json(&serde_json::json!({ "rows": rows }))
        }
        "active_rate_decomposition" => {
            let a: LifecycleArgs = parse(args_json)?;
            json(&LifecycleReport::from_table(&a.table()?)?)
        }
        "funnel" => {
            let a: FunnelArgs = parse(args_json)?;
            let (codes, names) = names(&a.event);
            let time = ms(&a.time);
            let steps: Vec<&str> = a.steps.iter().map(String::as_str).collect();
            let window = a
                .window_seconds
                .unwrap_or(7 * 86_400)
                .checked_mul(1000)
                .ok_or_else(|| Error::invalid_argument("window_seconds", "too large"))?;
            let t = EventTable {
                user: &a.user,
                time: &time,
                event: &codes,
                names: &names,
            };
            json(&funnel(
                t,
                &steps,
                window,
                None::<fn(u64) -> Option<String>>,
            )?)
        }
        "cohort_retention" => {
            let a: CohortArgs = parse(args_json)?;
            let clock = tz_clock(a.period, a.utc_offset_seconds)?;
            json(&cohort_retention(&a.user, &ms(&a.time), clock)?)
        }
        "attribution" => {
            let a: AttributionArgs = parse(args_json)?;
            use super::commands::ModelName as M;
            let model = match a.model {
                M::FirstTouch => AttributionModel::FirstTouch,
                M::LastTouch => AttributionModel::LastTouch,
                M::Linear => AttributionModel::Linear,
                M::PositionBased => AttributionModel::PositionBased,
                M::TimeDecay => AttributionModel::TimeDecay {
                    half_life_hours: a.half_life_hours.ok_or_else(|| {
                        Error::invalid_argument("half_life_hours", "time_decay needs a half-life")
                    })?,
                },
            };
            let days = a.lookback_days.unwrap_or(30.0);
            if !(days.is_finite() && (0.0..=36_500.0).contains(&days)) {
                return Err(Error::invalid_argument(
                    "lookback_days",
                    "between 0 and 36500 days",
                ));
            }
            let (codes, names) = names(&a.touches.channel);
            let (tt, ct) = (ms(&a.touches.time), ms(&a.conversions.time));
            let values: Option<Vec<Decimal>> = a
                .conversions
                .value
                .map(|v| v.into_iter().map(|m| m.0).collect());
            json(&attribute(
                EventTable {
                    user: &a.touches.user,
                    time: &tt,
                    event: &codes,
                    names: &names,
                },
                Conversions {
                    user: &a.conversions.user,
                    time: &ct,
                    value: values.as_deref(),
                },
                model,
                (days * 86_400_000.0) as i64,
            )?)
        }
        other => Err(Error::UnknownMethod(other.to_owned())),
    }
}
