//! Table functions for `userops.lifecycle`, `userops.funnel`, ... : a table comes in through the
//! Arrow PyCapsule interface, its columns are read straight from the Arrow buffers
//! ([`crate::columns`]), the core's pure functions run without the GIL, and the result goes
//! back as an Arrow table. Bad columns raise `userops.TableError` (column and row); bad
//! arguments and refusals by the core raise the typed exception of their error code.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Int32Array, StringArray};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use serde_json::{json, Value};
use userops::analytics::{self, AttributionModel, Conversions, EventTable};
use userops::lifecycle::{
    stage_table_with_progress, ActivityTable, EarlyActivity, LifecycleReport, PeriodClock,
    Registrations, Stage, StageOptions, StageRules, StageTable,
};
use userops::{Error, Period};

use crate::columns::{self, bad_arg, run, Col, Fail, Keys, PyProgress};
use crate::tables::{table_out, Table};

fn period(p: &str) -> Result<Period, Fail> {
    match p {
        "day" => Ok(Period::Day),
        "week" => Ok(Period::Week),
        "month" => Ok(Period::Month),
        _ => Err(bad_arg(
            "period",
            format!("{p:?} is not day, week or month"),
        )),
    }
}

fn clock(period_name: &str, utc_offset_seconds: i32) -> Result<PeriodClock, Fail> {
    if !(-12 * 3600..=14 * 3600).contains(&utc_offset_seconds) {
        return Err(bad_arg("tz", "a UTC offset between -12:00 and +14:00"));
    }
    Ok(PeriodClock::new(period(period_name)?, utc_offset_seconds))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, Fail> {
    serde_json::to_value(v).map_err(|e| Fail::Core(Error::Internal(e.to_string())))
}

/// The lifecycle options of a call (everything but the table).
#[derive(Debug, Clone)]
struct StageArgs {
    period: String,
    utc_offset_seconds: i32,
    churn_after: u32,
    early_activity: String,
    through: Option<String>,
}

impl StageArgs {
    fn options(&self) -> Result<StageOptions, Fail> {
        let clock = clock(&self.period, self.utc_offset_seconds)?;
        let early = match self.early_activity.as_str() {
            "error" => EarlyActivity::Error,
            "register_at_first_activity" => EarlyActivity::RegisterAtFirstActivity,
            other => {
                return Err(bad_arg(
                    "early_activity",
                    format!("{other:?} is not \"error\" or \"register_at_first_activity\""),
                ))
            }
        };
        let rules = StageRules::new(self.churn_after).map_err(|e| Fail::Core(e.into()))?;
        let mut options = StageOptions::new(clock).rules(rules).early_activity(early);
        if let Some(t) = &self.through {
            let p = clock
                .parse_label(t)
                .ok_or_else(|| bad_arg("through", format!("{t:?} is not a period label")))?;
            options = options.through(p);
        }
        Ok(options)
    }
}

/// An activity table read from Arrow: user codes, UTC ms, and the known registrations.
struct Activity {
    keys: Keys,
    user: Vec<u64>,
    time: Vec<i64>,
    reg: Option<(Vec<u64>, Vec<i64>)>,
}

fn activity(t: &Table, user: &str, time: &str, registered: Option<&str>) -> Result<Activity, Fail> {
    let (keys, mut codes) = Keys::encode(&[(t, user)])?;
    let user_codes = codes.pop().unwrap_or_default();
    let times = columns::utc_millis(t, time)?;
    let reg = match registered {
        None => None,
        Some(name) => {
            t.require(&[name])?;
            // Null where unknown: those users register at their first activity.
            let (mut ru, mut rt) = (Vec::new(), Vec::new());
            for chunk in t.chunks(usize::MAX) {
                let col = chunk.timestamps(name, None)?;
                for i in 0..chunk.len() {
                    if let Some(at) = col.get(i)? {
                        ru.push(user_codes[chunk.first_row() + i]);
                        rt.push(at.timestamp_millis());
                    }
                }
            }
            Some((ru, rt))
        }
    };
    Ok(Activity {
        keys,
        user: user_codes,
        time: times,
        reg,
    })
}

impl Activity {
    fn stages(&self, args: &StageArgs, progress: &mut PyProgress) -> Result<StageTable, Fail> {
        Ok(stage_table_with_progress(
            ActivityTable {
                user: &self.user,
                time: &self.time,
            },
            self.reg
                .as_ref()
                .map(|(u, t)| Registrations { user: u, time: t }),
            args.options()?,
            progress,
        )
        .map_err(Error::from)?)
    }
}

fn dictionary(keys: Vec<i32>, values: Vec<String>) -> Result<ArrayRef, Fail> {
    let d = DictionaryArray::<Int32Type>::try_new(
        Int32Array::from(keys),
        Arc::new(StringArray::from(values)),
    )
    .map_err(|e| Fail::Core(Error::Internal(e.to_string())))?;
    Ok(Arc::new(d))
}

fn period_labels(table: &StageTable) -> Vec<String> {
    (0..table.period_count())
        .map(|p| table.clock().label(table.first_period() + p as i64))
        .collect()
}

/// The stage of every user in every period from registration on: a table of `user` (named
/// as the input's column), `period` and `stage` (both dictionary-encoded text).
#[pyfunction]
#[pyo3(signature = (table, user="user", time="time", registered=None, period="month", utc_offset_seconds=28800, churn_after=2, early_activity="error", through=None, progress=None))]
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per keyword argument of the Python function"
)]
fn lifecycle_stages(
    py: Python<'_>,
    table: PyTable,
    user: &str,
    time: &str,
    registered: Option<&str>,
    period: &str,
    utc_offset_seconds: i32,
    churn_after: u32,
    early_activity: &str,
    through: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let mut progress = PyProgress::new(progress);
    let args = StageArgs {
        period: period.to_owned(),
        utc_offset_seconds,
        churn_after,
        early_activity: early_activity.to_owned(),
        through: through.map(str::to_owned),
    };
    let batch = run(py, || {
        let a = activity(&t, user, time, registered)?;
        let table = a.stages(&args, &mut progress)?;
        let n_periods = table.period_count();
        let (mut users, mut periods, mut stages) = (Vec::new(), Vec::new(), Vec::new());
        for (u, &code) in table.users().iter().enumerate() {
            for (p, &s) in table.row(u).iter().enumerate().take(n_periods) {
                if s > 0 {
                    users.push(code);
                    periods.push(p as i32);
                    stages.push(i32::from(s) - 1);
                }
            }
        }
        let names = Stage::ALL.iter().map(|s| s.name().to_owned()).collect();
        Ok(columns::batch(vec![
            (user.to_owned(), a.keys.decode(users.into_iter())),
            ("period".into(), dictionary(periods, period_labels(&table))?),
            ("stage".into(), dictionary(stages, names)?),
        ])?)
    });
    let batch = progress.finish(batch)?;
    table_out(batch)
}

/// The per-user value of a `by` column (one per user, or an `invalid_argument` on `by`).
fn segment_of_user(
    user: &[u64],
    keys: &Keys,
    seg: &[u32],
    names: &[String],
) -> Result<BTreeMap<u64, u32>, Fail> {
    let mut of_user: BTreeMap<u64, u32> = BTreeMap::new();
    for (&u, &c) in user.iter().zip(seg) {
        if let Some(prev) = of_user.insert(u, c) {
            if prev != c {
                let who = keys.decode(std::iter::once(u));
                let who = arrow_cast::display::array_value_to_string(&who, 0)
                    .unwrap_or_else(|_| u.to_string());
                return Err(bad_arg(
                    "by",
                    format!(
                        "user {who} has two values ({:?} and {:?}): the breakdown needs one per user",
                        names[prev as usize], names[c as usize]
                    ),
                ));
            }
        }
    }
    Ok(of_user)
}

fn report_rows(report: &LifecycleReport, segment: Option<&str>) -> Result<Vec<Value>, Fail> {
    const GROUPS: [(&str, &str, &str, &str); 4] = [
        ("old_active", "old_active", "old_retained", "old_retention"),
        ("new", "last_new", "new_retained", "new_retention"),
        ("dormant", "dormant", "woken", "wake_rate"),
        ("churned", "churned", "returned", "return_rate"),
    ];
    let report = to_value(report)?;
    let mut rows = Vec::new();
    for p in report["periods"].as_array().into_iter().flatten() {
        let mut row = serde_json::Map::new();
        if let Some(s) = segment {
            row.insert("segment".into(), json!(s));
        }
        for f in ["period", "registered", "actives", "active_rate"] {
            row.insert(f.into(), p[f].clone());
        }
        row.insert("new".into(), p["stages"]["new"].clone());
        let terms = p["decomposition"]["terms"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (group, size, kept, rate) in GROUPS {
            let term = terms.iter().find(|t| t["group"] == group);
            let get = |f: &str| term.map_or(Value::Null, |t| t[f].clone());
            row.insert(size.into(), get("size"));
            row.insert(kept.into(), get("retained"));
            row.insert(rate.into(), get("rate"));
        }
        if let Some(stages) = p["stages"].as_object() {
            for (stage, n) in stages {
                row.insert(format!("stage_{stage}"), n.clone());
            }
        }
        rows.push(Value::Object(row));
    }
    Ok(rows)
}

/// The active rate of every period and its decomposition: one row per period (per segment
/// with `by`, a column with one value per user), with the stage counts as `stage_*` columns.
#[pyfunction]
#[pyo3(signature = (table, user="user", time="time", registered=None, period="month", utc_offset_seconds=28800, churn_after=2, early_activity="error", through=None, by=None, progress=None))]
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per keyword argument of the Python function"
)]
fn lifecycle_report(
    py: Python<'_>,
    table: PyTable,
    user: &str,
    time: &str,
    registered: Option<&str>,
    period: &str,
    utc_offset_seconds: i32,
    churn_after: u32,
    early_activity: &str,
    through: Option<&str>,
    by: Option<&str>,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let mut progress = PyProgress::new(progress);
    let args = StageArgs {
        period: period.to_owned(),
        utc_offset_seconds,
        churn_after,
        early_activity: early_activity.to_owned(),
        through: through.map(str::to_owned),
    };
    let batch = run(py, || {
        let a = activity(&t, user, time, registered)?;
        let seg = by.map(|b| columns::labels(&t, b)).transpose()?;
        let of_user = match &seg {
            Some((codes, names)) => Some(segment_of_user(&a.user, &a.keys, codes, names)?),
            None => None,
        };
        let table = a.stages(&args, &mut progress)?;
        let all = LifecycleReport::from_table(&table).map_err(Error::from)?;
        let mut rows = report_rows(&all, by.map(|_| "(all)"))?;
        if let (Some((_, names)), Some(of_user)) = (&seg, &of_user) {
            let per_user: Vec<Option<u32>> = table
                .users()
                .iter()
                .map(|u| of_user.get(u).copied())
                .collect();
            let mut order: Vec<(usize, &String)> = names.iter().enumerate().collect();
            order.sort_by(|a, b| a.1.cmp(b.1));
            for (c, name) in order {
                let r =
                    LifecycleReport::from_table_where(&table, |u| per_user[u] == Some(c as u32))
                        .map_err(Error::from)?;
                rows.extend(report_rows(&r, Some(name))?);
            }
        }
        let mut fields: Vec<(String, Col)> = Vec::new();
        if by.is_some() {
            fields.push(("segment".into(), Col::Str));
        }
        fields.extend([
            ("period".into(), Col::Str),
            ("registered".into(), Col::I64),
            ("actives".into(), Col::I64),
            ("active_rate".into(), Col::F64),
            ("new".into(), Col::I64),
        ]);
        for (size, kept, rate) in [
            ("old_active", "old_retained", "old_retention"),
            ("last_new", "new_retained", "new_retention"),
            ("dormant", "woken", "wake_rate"),
            ("churned", "returned", "return_rate"),
        ] {
            fields.push((size.into(), Col::I64));
            fields.push((kept.into(), Col::I64));
            fields.push((rate.into(), Col::F64));
        }
        for s in Stage::ALL {
            fields.push((format!("stage_{}", s.name()), Col::I64));
        }
        let refs: Vec<(&str, Col)> = fields.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        Ok(columns::rows_batch(&refs, &rows)?)
    });
    let batch = progress.finish(batch)?;
    table_out(batch)
}

/// An ordered funnel: one row per step (`step`, `users`, `from_previous`, `from_first`,
/// `drop_off`), per `segment` when `by` names a column with one value per user.
#[pyfunction]
#[pyo3(signature = (table, steps, window_ms, user="user", time="time", event="event", by=None))]
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per keyword argument of the Python function"
)]
fn funnel(
    py: Python<'_>,
    table: PyTable,
    steps: Vec<String>,
    window_ms: i64,
    user: &str,
    time: &str,
    event: &str,
    by: Option<&str>,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let batch = run(py, || {
        let (keys, mut codes) = Keys::encode(&[(&t, user)])?;
        let users = codes.pop().unwrap_or_default();
        let times = columns::utc_millis(&t, time)?;
        let (events, names) = columns::labels(&t, event)?;
        let seg = by.map(|b| columns::labels(&t, b)).transpose()?;
        let of_user = match &seg {
            Some((codes, names)) => Some(segment_of_user(&users, &keys, codes, names)?),
            None => None,
        };
        let step_refs: Vec<&str> = steps.iter().map(String::as_str).collect();
        let table = EventTable {
            user: &users,
            time: &times,
            event: &events,
            names: &names,
        };
        let seg_fn = match (&seg, &of_user) {
            (Some((_, names)), Some(of_user)) => {
                Some(move |u: u64| of_user.get(&u).map(|&c| names[c as usize].clone()))
            }
            _ => None,
        };
        let report =
            analytics::funnel(table, &step_refs, window_ms, seg_fn).map_err(Error::from)?;
        let mut rows = Vec::new();
        let tag =
            |segment: Option<&str>, steps: &[analytics::FunnelStep]| -> Result<Vec<Value>, Fail> {
                steps
                    .iter()
                    .map(|s| {
                        let mut v = to_value(s)?;
                        if let (Some(seg), Some(o)) = (segment, v.as_object_mut()) {
                            o.insert("segment".into(), json!(seg));
                        }
                        Ok(v)
                    })
                    .collect()
            };
        rows.extend(tag(by.map(|_| "(all)"), &report.steps)?);
        for (seg, steps) in &report.segments {
            rows.extend(tag(Some(seg), steps)?);
        }
        let mut fields = Vec::new();
        if by.is_some() {
            fields.push(("segment", Col::Str));
        }
        fields.extend([
            ("step", Col::Str),
            ("users", Col::I64),
            ("from_previous", Col::F64),
            ("from_first", Col::F64),
            ("drop_off", Col::I64),
        ]);
        Ok(columns::rows_batch(&fields, &rows)?)
    })?;
    table_out(batch)
}

/// Cohort retention by first-activity period: one row per (cohort, periods_later) with the
/// cohort's size (`users`), the users active that many periods later (`retained`) and `rate`.
#[pyfunction]
#[pyo3(signature = (table, user="user", time="time", period="month", utc_offset_seconds=28800))]
fn cohort_retention(
    py: Python<'_>,
    table: PyTable,
    user: &str,
    time: &str,
    period: &str,
    utc_offset_seconds: i32,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let batch = run(py, || {
        let clock = clock(period, utc_offset_seconds)?;
        let (_, mut codes) = Keys::encode(&[(&t, user)])?;
        let users = codes.pop().unwrap_or_default();
        let times = columns::utc_millis(&t, time)?;
        let out = analytics::cohort_retention(&users, &times, clock).map_err(Error::from)?;
        let rows: Vec<Value> = out
            .cohorts
            .iter()
            .flat_map(|c| {
                c.retained
                    .iter()
                    .zip(&c.rates)
                    .enumerate()
                    .map(|(k, (r, rate))| {
                        json!({"cohort": c.cohort, "users": c.users, "periods_later": k,
                           "retained": r, "rate": rate})
                    })
            })
            .collect();
        Ok(columns::rows_batch(
            &[
                ("cohort", Col::Str),
                ("users", Col::I64),
                ("periods_later", Col::I64),
                ("retained", Col::I64),
                ("rate", Col::F64),
            ],
            &rows,
        )?)
    })?;
    table_out(batch)
}

/// Attribution of `conversions` to the same user's `touches` before them: one row per channel
/// (`channel`, `conversions` credited, `value` credited as decimal128, `touches`).
#[pyfunction]
#[pyo3(signature = (touches, conversions, model, lookback_ms, half_life_hours=None, user="user", time="time", channel="channel", value=None))]
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per keyword argument of the Python function"
)]
fn attribution(
    py: Python<'_>,
    touches: PyTable,
    conversions: PyTable,
    model: &str,
    lookback_ms: i64,
    half_life_hours: Option<f64>,
    user: &str,
    time: &str,
    channel: &str,
    value: Option<&str>,
) -> PyResult<PyTable> {
    let (tt, ct) = (Table::from_py(touches), Table::from_py(conversions));
    let batch = run(py, || {
        let model = match model {
            "first_touch" => AttributionModel::FirstTouch,
            "last_touch" => AttributionModel::LastTouch,
            "linear" => AttributionModel::Linear,
            "position_based" => AttributionModel::PositionBased,
            "time_decay" => AttributionModel::TimeDecay {
                half_life_hours: half_life_hours
                    .ok_or_else(|| bad_arg("half_life_hours", "time_decay needs a half-life"))?,
            },
            other => {
                return Err(bad_arg(
                    "model",
                    format!("unknown attribution model {other:?}"),
                ))
            }
        };
        let (_, codes) = Keys::encode(&[(&tt, user), (&ct, user)])?;
        let (tu, cu) = (&codes[0], &codes[1]);
        let (t_time, c_time) = (
            columns::utc_millis(&tt, time)?,
            columns::utc_millis(&ct, time)?,
        );
        let (channels, names) = columns::labels(&tt, channel)?;
        let values = value.map(|v| columns::decimals(&ct, v)).transpose()?;
        let out = analytics::attribute(
            EventTable {
                user: tu,
                time: &t_time,
                event: &channels,
                names: &names,
            },
            Conversions {
                user: cu,
                time: &c_time,
                value: values.as_deref(),
            },
            model,
            lookback_ms,
        )
        .map_err(Error::from)?;
        let rows = out
            .channels
            .iter()
            .map(to_value)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(columns::rows_batch(
            &[
                ("channel", Col::Str),
                ("conversions", Col::F64),
                ("value", Col::Dec),
                ("touches", Col::I64),
            ],
            &rows,
        )?)
    })?;
    table_out(batch)
}

/// Register the table functions in the native module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(lifecycle_stages, m)?)?;
    m.add_function(wrap_pyfunction!(lifecycle_report, m)?)?;
    m.add_function(wrap_pyfunction!(funnel, m)?)?;
    m.add_function(wrap_pyfunction!(cohort_retention, m)?)?;
    m.add_function(wrap_pyfunction!(attribution, m)?)?;
    Ok(())
}
