//! Table functions for `userops.lifecycle`, `userops.funnel`, ... : the Python side hands over
//! columns as little-endian bytes (converted from Arrow), this side builds the core's column
//! slices, calls the pure functions and returns bytes or JSON. Errors are raised as
//! `ValueError(<error report JSON>)`, which the Python wrapper turns into the typed exception.

use std::collections::BTreeMap;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use userops::analytics::{self, AttributionModel, Conversions, EventTable};
use userops::lifecycle::{
    stage_table, ActivityTable, EarlyActivity, LifecycleReport, PeriodClock, Registrations,
    StageOptions, StageRules,
};
use userops::{Decimal, Error, Period};

fn raise(e: Error) -> PyErr {
    let report = serde_json::to_string(&e.to_report()).unwrap_or_else(|_| e.to_string());
    PyValueError::new_err(report)
}

fn bad(field: &str, reason: impl Into<String>) -> PyErr {
    raise(Error::invalid_argument(field, reason))
}

fn words<T>(b: &[u8], field: &str, conv: fn([u8; 8]) -> T) -> PyResult<Vec<T>> {
    if b.len() % 8 != 0 {
        return Err(bad(
            field,
            "column bytes are not a whole number of 8-byte values",
        ));
    }
    Ok(b.chunks_exact(8)
        .map(|c| conv(c.try_into().expect("chunks_exact(8) yields 8 bytes")))
        .collect())
}

fn codes(b: &[u8], field: &str) -> PyResult<Vec<u32>> {
    if b.len() % 4 != 0 {
        return Err(bad(
            field,
            "column bytes are not a whole number of 4-byte values",
        ));
    }
    Ok(b.chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("chunks_exact(4) yields 4 bytes")))
        .collect())
}

fn period(p: &str) -> PyResult<Period> {
    match p {
        "day" => Ok(Period::Day),
        "week" => Ok(Period::Week),
        "month" => Ok(Period::Month),
        _ => Err(bad("period", format!("{p:?} is not day, week or month"))),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| raise(Error::Internal(e.to_string())))
}

/// The inputs of the lifecycle functions, owned so the GIL can be released while computing.
struct LifecycleInput {
    user: Vec<u64>,
    time: Vec<i64>,
    reg: Option<(Vec<u64>, Vec<i64>)>,
    options: StageOptions,
}

#[allow(clippy::too_many_arguments)]
fn lifecycle_input(
    user: &[u8],
    time: &[u8],
    reg_user: Option<&[u8]>,
    reg_time: Option<&[u8]>,
    period_name: &str,
    utc_offset_seconds: i32,
    churn_after: u32,
    early_activity: &str,
    through: Option<&str>,
) -> PyResult<LifecycleInput> {
    if !(-12 * 3600..=14 * 3600).contains(&utc_offset_seconds) {
        return Err(bad("tz", "a UTC offset between -12:00 and +14:00"));
    }
    let clock = PeriodClock::new(period(period_name)?, utc_offset_seconds);
    let early = match early_activity {
        "error" => EarlyActivity::Error,
        "register_at_first_activity" => EarlyActivity::RegisterAtFirstActivity,
        other => {
            return Err(bad(
                "early_activity",
                format!("{other:?} is not \"error\" or \"register_at_first_activity\""),
            ))
        }
    };
    let rules = StageRules::new(churn_after).map_err(|e| raise(e.into()))?;
    let mut options = StageOptions::new(clock).rules(rules).early_activity(early);
    if let Some(t) = through {
        let p = clock
            .parse_label(t)
            .ok_or_else(|| bad("through", format!("{t:?} is not a period label")))?;
        options = options.through(p);
    }
    let reg = match (reg_user, reg_time) {
        (Some(u), Some(t)) => Some((
            words(u, "registered", u64::from_le_bytes)?,
            words(t, "registered", i64::from_le_bytes)?,
        )),
        _ => None,
    };
    Ok(LifecycleInput {
        user: words(user, "user", u64::from_le_bytes)?,
        time: words(time, "time", i64::from_le_bytes)?,
        reg,
        options,
    })
}

impl LifecycleInput {
    fn table(&self) -> Result<userops::lifecycle::StageTable, Error> {
        Ok(stage_table(
            ActivityTable {
                user: &self.user,
                time: &self.time,
            },
            self.reg
                .as_ref()
                .map(|(u, t)| Registrations { user: u, time: t }),
            self.options,
        )?)
    }
}

/// The stage of every user in every period: `(users u64 bytes, period labels, codes u8
/// bytes (users × periods, 0 = not registered), stage names)`.
#[pyfunction]
#[pyo3(signature = (user, time, reg_user=None, reg_time=None, period="month", utc_offset_seconds=28800, churn_after=2, early_activity="error", through=None))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn lifecycle_stages<'py>(
    py: Python<'py>,
    user: &[u8],
    time: &[u8],
    reg_user: Option<&[u8]>,
    reg_time: Option<&[u8]>,
    period: &str,
    utc_offset_seconds: i32,
    churn_after: u32,
    early_activity: &str,
    through: Option<&str>,
) -> PyResult<(
    Bound<'py, PyBytes>,
    Vec<String>,
    Bound<'py, PyBytes>,
    Vec<String>,
)> {
    let input = lifecycle_input(
        user,
        time,
        reg_user,
        reg_time,
        period,
        utc_offset_seconds,
        churn_after,
        early_activity,
        through,
    )?;
    let table = py.detach(|| input.table()).map_err(raise)?;
    let users: Vec<u8> = table.users().iter().flat_map(|u| u.to_le_bytes()).collect();
    let labels = (0..table.period_count())
        .map(|p| table.clock().label(table.first_period() + p as i64))
        .collect();
    let mut codes = Vec::with_capacity(table.users().len() * table.period_count());
    for u in 0..table.users().len() {
        codes.extend_from_slice(table.row(u));
    }
    let names = userops::lifecycle::Stage::ALL
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    Ok((
        PyBytes::new(py, &users),
        labels,
        PyBytes::new(py, &codes),
        names,
    ))
}

/// The lifecycle report as JSON: `{"all": report, "segments": {name: report}}`. `seg_code`
/// (u32 per activity row, into `seg_names`) breaks it down by a per-user value.
#[pyfunction]
#[pyo3(signature = (user, time, reg_user=None, reg_time=None, period="month", utc_offset_seconds=28800, churn_after=2, early_activity="error", through=None, seg_code=None, seg_names=None))]
#[allow(clippy::too_many_arguments)]
fn lifecycle_report(
    py: Python<'_>,
    user: &[u8],
    time: &[u8],
    reg_user: Option<&[u8]>,
    reg_time: Option<&[u8]>,
    period: &str,
    utc_offset_seconds: i32,
    churn_after: u32,
    early_activity: &str,
    through: Option<&str>,
    seg_code: Option<&[u8]>,
    seg_names: Option<Vec<String>>,
) -> PyResult<String> {
    let input = lifecycle_input(
        user,
        time,
        reg_user,
        reg_time,
        period,
        utc_offset_seconds,
        churn_after,
        early_activity,
        through,
    )?;
    let seg = seg_code.map(|b| codes(b, "by")).transpose()?;
    let names = seg_names.unwrap_or_default();
    // The segment of each user: one value per user, or an error naming the user.
    let mut of_user: BTreeMap<u64, u32> = BTreeMap::new();
    if let Some(seg) = &seg {
        if seg.len() != input.user.len() {
            return Err(bad("by", "one segment value per activity row"));
        }
        for (&u, &c) in input.user.iter().zip(seg) {
            if c as usize >= names.len() {
                return Err(bad("by", "segment code outside its dictionary"));
            }
            if let Some(prev) = of_user.insert(u, c) {
                if prev != c {
                    return Err(bad(
                        "by",
                        format!(
                            "user {u} has two values ({:?} and {:?}): the breakdown needs one per user",
                            names[prev as usize], names[c as usize]
                        ),
                    ));
                }
            }
        }
    }
    let out = py.detach(|| -> Result<serde_json::Value, Error> {
        let table = input.table()?;
        let all = LifecycleReport::from_table(&table)?;
        let mut segments = serde_json::Map::new();
        if seg.is_some() {
            let per_user: Vec<Option<u32>> = table
                .users()
                .iter()
                .map(|u| of_user.get(u).copied())
                .collect();
            for (c, name) in names.iter().enumerate() {
                let r =
                    LifecycleReport::from_table_where(&table, |u| per_user[u] == Some(c as u32))?;
                segments.insert(
                    name.clone(),
                    serde_json::to_value(r).map_err(|e| Error::Internal(e.to_string()))?,
                );
            }
        }
        Ok(serde_json::json!({"all": all, "segments": segments}))
    });
    to_json(&out.map_err(raise)?)
}

/// A funnel as JSON ([`analytics::FunnelReport`]); `seg_code` (u32 per row into `seg_names`)
/// breaks it down by a per-user value.
#[pyfunction]
#[pyo3(signature = (user, time, event, names, steps, window_ms, seg_code=None, seg_names=None))]
#[allow(clippy::too_many_arguments)]
fn funnel(
    py: Python<'_>,
    user: &[u8],
    time: &[u8],
    event: &[u8],
    names: Vec<String>,
    steps: Vec<String>,
    window_ms: i64,
    seg_code: Option<&[u8]>,
    seg_names: Option<Vec<String>>,
) -> PyResult<String> {
    let (user, time, event) = (
        words(user, "user", u64::from_le_bytes)?,
        words(time, "time", i64::from_le_bytes)?,
        codes(event, "event")?,
    );
    let seg = seg_code.map(|b| codes(b, "by")).transpose()?;
    let seg_names = seg_names.unwrap_or_default();
    let mut of_user: BTreeMap<u64, String> = BTreeMap::new();
    if let Some(seg) = &seg {
        if seg.len() != user.len() {
            return Err(bad("by", "one segment value per row"));
        }
        for (&u, &c) in user.iter().zip(seg) {
            let name = seg_names
                .get(c as usize)
                .ok_or_else(|| bad("by", "segment code outside its dictionary"))?;
            if let Some(prev) = of_user.insert(u, name.clone()) {
                if &prev != name {
                    return Err(bad("by", format!("user {u} has two values ({prev:?} and {name:?}): the breakdown needs one per user")));
                }
            }
        }
    }
    let out = py.detach(|| {
        let step_refs: Vec<&str> = steps.iter().map(String::as_str).collect();
        let t = EventTable {
            user: &user,
            time: &time,
            event: &event,
            names: &names,
        };
        let seg_fn = seg.as_ref().map(|_| |u: u64| of_user.get(&u).cloned());
        analytics::funnel(t, &step_refs, window_ms, seg_fn).map_err(Error::from)
    });
    to_json(&out.map_err(raise)?)
}

/// Cohort retention as JSON ([`analytics::CohortTable`]).
#[pyfunction]
#[pyo3(signature = (user, time, period="month", utc_offset_seconds=28800))]
fn cohort_retention(
    py: Python<'_>,
    user: &[u8],
    time: &[u8],
    period: &str,
    utc_offset_seconds: i32,
) -> PyResult<String> {
    if !(-12 * 3600..=14 * 3600).contains(&utc_offset_seconds) {
        return Err(bad("tz", "a UTC offset between -12:00 and +14:00"));
    }
    let clock = PeriodClock::new(self::period(period)?, utc_offset_seconds);
    let (user, time) = (
        words(user, "user", u64::from_le_bytes)?,
        words(time, "time", i64::from_le_bytes)?,
    );
    let out = py.detach(|| analytics::cohort_retention(&user, &time, clock).map_err(Error::from));
    to_json(&out.map_err(raise)?)
}

/// Attribution as JSON ([`analytics::AttributionReport`]). `conv_value` holds decimal strings.
#[pyfunction]
#[pyo3(signature = (t_user, t_time, t_channel, channels, c_user, c_time, c_value, model, half_life_hours, lookback_ms))]
#[allow(clippy::too_many_arguments)]
fn attribution(
    py: Python<'_>,
    t_user: &[u8],
    t_time: &[u8],
    t_channel: &[u8],
    channels: Vec<String>,
    c_user: &[u8],
    c_time: &[u8],
    c_value: Option<Vec<String>>,
    model: &str,
    half_life_hours: Option<f64>,
    lookback_ms: i64,
) -> PyResult<String> {
    let model = match model {
        "first_touch" => AttributionModel::FirstTouch,
        "last_touch" => AttributionModel::LastTouch,
        "linear" => AttributionModel::Linear,
        "position_based" => AttributionModel::PositionBased,
        "time_decay" => AttributionModel::TimeDecay {
            half_life_hours: half_life_hours
                .ok_or_else(|| bad("half_life_hours", "time_decay needs a half-life"))?,
        },
        other => return Err(bad("model", format!("unknown attribution model {other:?}"))),
    };
    let values: Option<Vec<Decimal>> = c_value
        .map(|v| {
            v.iter()
                .enumerate()
                .map(|(i, s)| {
                    s.parse::<Decimal>()
                        .map_err(|e| bad("value", format!("row {i}: {s:?} is not a decimal: {e}")))
                })
                .collect::<PyResult<Vec<_>>>()
        })
        .transpose()?;
    let (tu, tt, tc) = (
        words(t_user, "user", u64::from_le_bytes)?,
        words(t_time, "time", i64::from_le_bytes)?,
        codes(t_channel, "channel")?,
    );
    let (cu, ct) = (
        words(c_user, "user", u64::from_le_bytes)?,
        words(c_time, "time", i64::from_le_bytes)?,
    );
    let out = py.detach(|| {
        analytics::attribute(
            EventTable {
                user: &tu,
                time: &tt,
                event: &tc,
                names: &channels,
            },
            Conversions {
                user: &cu,
                time: &ct,
                value: values.as_deref(),
            },
            model,
            lookback_ms,
        )
        .map_err(Error::from)
    });
    to_json(&out.map_err(raise)?)
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
