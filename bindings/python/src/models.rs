//! Native entry points of the user models (`userops.models` in Python). Tables come in through
//! the Arrow PyCapsule interface and their columns are read straight from the Arrow buffers
//! ([`crate::columns`]; float64 columns without nulls are not even copied); results go back as
//! Arrow tables. These functions only convert and delegate to `userops::models`.

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
use pyo3::prelude::*;
use pyo3_arrow::PyTable;
use userops::models::{self, BgNbdParams, GammaGammaParams};
use userops::Error;

use crate::columns::{self, bad_arg, run, Fail, Keys, PyProgress};
use crate::tables::{table_out, Table};

/// BG/NBD (r, alpha, a, b).
type BgTuple = (f64, f64, f64, f64);
/// Gamma-Gamma (p, q, v).
type GgTuple = (f64, f64, f64);

fn core(e: impl Into<Error>) -> Fail {
    Fail::Core(e.into())
}

fn f64s(v: Vec<f64>) -> ArrayRef {
    Arc::new(Float64Array::from(v))
}

fn i64s(v: impl Iterator<Item = i64>) -> ArrayRef {
    Arc::new(v.collect::<Int64Array>())
}

fn one_column(name: &str, values: Vec<f64>) -> PyResult<PyTable> {
    let b = columns::batch(vec![(name.to_owned(), f64s(values))])
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    table_out(b)
}

/// Customer codes (sorted like the ids), wall-clock seconds, and amounts of a transaction table.
struct Transactions<'a> {
    keys: Keys,
    customers: Vec<u64>,
    times: Vec<i64>,
    amounts: Option<Cow<'a, [f64]>>,
}

fn transactions<'a>(
    t: &'a Table,
    customer: &str,
    time: &str,
    amount: Option<&str>,
) -> Result<Transactions<'a>, Fail> {
    let (keys, mut codes) = Keys::encode(&[(t, customer)])?;
    Ok(Transactions {
        keys,
        customers: codes.pop().unwrap_or_default(),
        times: columns::wall_seconds(t, time)?,
        amounts: amount.map(|a| columns::floats(t, a)).transpose()?,
    })
}

/// The columns of a summary (names with `suffix`, as `lifetimes` names them): the customer,
/// `frequency`, `recency`, `T` and, with amounts, `monetary_value`.
fn summary_columns(
    keys: &Keys,
    customer: &str,
    s: models::Summary,
    amounts: bool,
    suffix: &str,
) -> Vec<(String, ArrayRef)> {
    let mut cols = vec![
        (customer.to_owned(), keys.decode(s.customer.iter().copied())),
        (format!("frequency{suffix}"), f64s(s.frequency)),
        (format!("recency{suffix}"), f64s(s.recency)),
        (format!("T{suffix}"), f64s(s.t)),
    ];
    if amounts {
        cols.push((format!("monetary_value{suffix}"), f64s(s.monetary_value)));
    }
    cols
}

/// Per-customer (frequency, recency, T, monetary_value) as `lifetimes`' summary table.
#[pyfunction]
#[pyo3(signature = (table, customer, time, amount=None, observation_end=None, freq="D"))]
fn summary_data(
    py: Python<'_>,
    table: PyTable,
    customer: &str,
    time: &str,
    amount: Option<&str>,
    observation_end: Option<i64>,
    freq: &str,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let batch = run(py, || {
        let freq = models::Freq::parse(freq).map_err(core)?;
        let x = transactions(&t, customer, time, amount)?;
        let s = models::summary_data(
            &x.customers,
            &x.times,
            x.amounts.as_deref(),
            observation_end,
            freq,
        )
        .map_err(core)?;
        Ok(columns::batch(summary_columns(
            &x.keys,
            customer,
            s,
            amount.is_some(),
            "",
        ))?)
    })?;
    table_out(batch)
}

/// Calibration summary (`*_cal`) plus `frequency_holdout`, `monetary_value_holdout` and
/// `duration_holdout`.
#[pyfunction]
#[pyo3(signature = (table, customer, time, calibration_end, observation_end, amount=None, freq="D"))]
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per keyword argument of the Python function"
)]
fn calibration_and_holdout(
    py: Python<'_>,
    table: PyTable,
    customer: &str,
    time: &str,
    calibration_end: i64,
    observation_end: i64,
    amount: Option<&str>,
    freq: &str,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let batch = run(py, || {
        let freq = models::Freq::parse(freq).map_err(core)?;
        let x = transactions(&t, customer, time, amount)?;
        let h = models::calibration_and_holdout(
            &x.customers,
            &x.times,
            x.amounts.as_deref(),
            calibration_end,
            observation_end,
            freq,
        )
        .map_err(core)?;
        let n = h.calibration.customer.len();
        let mut cols = summary_columns(&x.keys, customer, h.calibration, amount.is_some(), "_cal");
        cols.push(("frequency_holdout".into(), f64s(h.frequency_holdout)));
        if amount.is_some() {
            cols.push((
                "monetary_value_holdout".into(),
                f64s(h.monetary_value_holdout),
            ));
        }
        cols.push(("duration_holdout".into(), f64s(vec![h.duration_holdout; n])));
        Ok(columns::batch(cols)?)
    })?;
    table_out(batch)
}

/// RFM per customer: `recency`, `frequency`, `monetary`, the 1-5 scores and `segment`.
#[pyfunction]
#[pyo3(signature = (table, customer, time, amount, as_of, window_days=None, monetary="sum", split="mean", progress=None))]
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per keyword argument of the Python function"
)]
fn rfm(
    py: Python<'_>,
    table: PyTable,
    customer: &str,
    time: &str,
    amount: &str,
    as_of: i64,
    window_days: Option<u32>,
    monetary: &str,
    split: &str,
    progress: Option<Py<PyAny>>,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let mut progress = PyProgress::new(progress);
    let batch = run(py, || {
        let monetary = match monetary {
            "sum" => models::Monetary::Sum,
            "mean" => models::Monetary::Mean,
            _ => return Err(bad_arg("monetary", "\"sum\" or \"mean\"")),
        };
        let split = match split {
            "mean" => models::Split::Mean,
            "median" => models::Split::Median,
            _ => return Err(bad_arg("split", "\"mean\" or \"median\"")),
        };
        let mut spec = models::RfmSpec::as_of(as_of)
            .monetary(monetary)
            .split(split);
        if let Some(d) = window_days {
            spec = spec.window_days(d);
        }
        let x = transactions(&t, customer, time, Some(amount))?;
        let amounts = x.amounts.as_deref().unwrap_or_default();
        let r = models::rfm_with_progress(&x.customers, &x.times, amounts, &spec, &mut progress)
            .map_err(core)?;
        let segments: ArrayRef = Arc::new(
            r.segment
                .iter()
                .map(|s| Some(s.name()))
                .collect::<StringArray>(),
        );
        Ok(columns::batch(vec![
            (
                customer.to_owned(),
                x.keys.decode(r.customer.iter().copied()),
            ),
            ("recency".into(), i64s(r.recency.iter().copied())),
            (
                "frequency".into(),
                i64s(r.frequency.iter().map(|&v| v as i64)),
            ),
            ("monetary".into(), f64s(r.monetary)),
            (
                "r_score".into(),
                i64s(r.r_score.iter().map(|&v| i64::from(v))),
            ),
            (
                "f_score".into(),
                i64s(r.f_score.iter().map(|&v| i64::from(v))),
            ),
            (
                "m_score".into(),
                i64s(r.m_score.iter().map(|&v| i64::from(v))),
            ),
            ("segment".into(), segments),
        ])?)
    });
    let batch = progress.finish(batch)?;
    table_out(batch)
}

fn bg(p: BgTuple) -> BgNbdParams {
    BgNbdParams {
        r: p.0,
        alpha: p.1,
        a: p.2,
        b: p.3,
    }
}

fn gg(p: GgTuple) -> GammaGammaParams {
    GammaGammaParams {
        p: p.0,
        q: p.1,
        v: p.2,
    }
}

/// The `frequency`, `recency` and `T` columns, checked together.
fn frt(t: &Table) -> Result<[Cow<'_, [f64]>; 3], Fail> {
    let cols = [
        columns::floats(t, "frequency")?,
        columns::floats(t, "recency")?,
        columns::floats(t, "T")?,
    ];
    models::check_frt(&cols[0], &cols[1], &cols[2]).map_err(core)?;
    Ok(cols)
}

fn weights(t: &Table) -> Result<Option<Cow<'_, [f64]>>, Fail> {
    Ok(if t.has_column("weights") {
        Some(columns::floats(t, "weights")?)
    } else {
        None
    })
}

/// BG/NBD fit on a table of `frequency`, `recency`, `T` (and `weights`): ((r, alpha, a, b),
/// log_likelihood, evaluations).
#[pyfunction]
fn bgnbd_fit(py: Python<'_>, table: PyTable) -> PyResult<(BgTuple, f64, u64)> {
    let t = Table::from_py(table);
    run(py, || {
        let [f, r, tt] = frt(&t)?;
        let w = weights(&t)?;
        let fit = models::BgNbdFit::fit(&f, &r, &tt, w.as_deref()).map_err(core)?;
        let p = fit.params;
        Ok((
            (p.r, p.alpha, p.a, p.b),
            fit.log_likelihood,
            fit.evaluations,
        ))
    })
}

/// Σ ln L at given BG/NBD parameters.
#[pyfunction]
fn bgnbd_log_likelihood(py: Python<'_>, params: BgTuple, table: PyTable) -> PyResult<f64> {
    let t = Table::from_py(table);
    run(py, || {
        let [f, r, tt] = frt(&t)?;
        models::bgnbd_log_likelihood(&bg(params), &f, &r, &tt, None).map_err(core)
    })
}

/// P(alive) per customer: a table with one column `p_alive`.
#[pyfunction]
fn bgnbd_p_alive(py: Python<'_>, params: BgTuple, table: PyTable) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let out = run(py, || {
        let [f, r, tt] = frt(&t)?;
        let p = bg(params);
        Ok((0..f.len())
            .map(|i| p.p_alive(f[i], r[i], tt[i]))
            .collect::<Vec<f64>>())
    })?;
    one_column("p_alive", out)
}

/// Expected purchases in `t` periods (a table with column `t`: one horizon, or one per
/// customer): conditional on the customers' `history` (frequency, recency, T) when given, else
/// for a new customer. A table with one column `expected_purchases`.
#[pyfunction]
#[pyo3(signature = (params, horizon, history=None))]
fn bgnbd_expected(
    py: Python<'_>,
    params: BgTuple,
    horizon: PyTable,
    history: Option<PyTable>,
) -> PyResult<PyTable> {
    let h = Table::from_py(horizon);
    let hist = history.map(Table::from_py);
    let out = run(py, || {
        let ht = columns::floats(&h, "t")?;
        if let Some(i) = ht.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(crate::tables::TableError::bad_value("t", i, "not a number ≥ 0").into());
        }
        let p = bg(params);
        Ok(match &hist {
            Some(hist) => {
                let [f, r, tt] = frt(hist)?;
                if ht.len() != f.len() && ht.len() != 1 {
                    return Err(bad_arg("t", "one horizon, or one per customer"));
                }
                (0..f.len())
                    .map(|i| {
                        let hi = if ht.len() == 1 { ht[0] } else { ht[i] };
                        p.conditional_expected_purchases(hi, f[i], r[i], tt[i])
                    })
                    .collect::<Vec<f64>>()
            }
            None => ht.iter().map(|&v| p.expected_purchases(v)).collect(),
        })
    })?;
    one_column("expected_purchases", out)
}

/// Gamma-Gamma fit on a table of `frequency`, `monetary_value` (and `weights`): ((p, q, v),
/// log_likelihood, evaluations).
#[pyfunction]
fn gamma_gamma_fit(py: Python<'_>, table: PyTable) -> PyResult<(GgTuple, f64, u64)> {
    let t = Table::from_py(table);
    run(py, || {
        let f = columns::floats(&t, "frequency")?;
        let m = columns::floats(&t, "monetary_value")?;
        let w = weights(&t)?;
        let fit = models::GammaGammaFit::fit(&f, &m, w.as_deref()).map_err(core)?;
        let p = fit.params;
        Ok(((p.p, p.q, p.v), fit.log_likelihood, fit.evaluations))
    })
}

/// E[M | x, m̄] per customer: a table with one column `expected_average_profit`.
#[pyfunction]
fn gamma_gamma_expected_profit(
    py: Python<'_>,
    params: GgTuple,
    table: PyTable,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let out = run(py, || {
        let f = columns::floats(&t, "frequency")?;
        let m = columns::floats(&t, "monetary_value")?;
        let p = gg(params);
        Ok((0..f.len())
            .map(|i| p.conditional_expected_average_profit(f[i], m[i]))
            .collect::<Vec<f64>>())
    })?;
    one_column("expected_average_profit", out)
}

/// Discounted CLV per customer from a table of `frequency`, `recency`, `T`,
/// `monetary_value`: a table with one column `clv`.
#[pyfunction]
fn clv(
    py: Python<'_>,
    gg_params: GgTuple,
    bg_params: BgTuple,
    table: PyTable,
    months: u32,
    periods_per_month: f64,
    monthly_discount: f64,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let out = run(py, || {
        if !(monthly_discount.is_finite() && monthly_discount > -1.0) {
            return Err(bad_arg("discount_rate", "a rate > -1"));
        }
        let [f, r, tt] = frt(&t)?;
        let m = columns::floats(&t, "monetary_value")?;
        let (g, b) = (gg(gg_params), bg(bg_params));
        Ok((0..f.len())
            .map(|i| {
                g.clv(
                    &b,
                    f[i],
                    r[i],
                    tt[i],
                    m[i],
                    months,
                    periods_per_month,
                    monthly_discount,
                )
            })
            .collect::<Vec<f64>>())
    })?;
    one_column("clv", out)
}

/// Supervised churn: fit on `features` and `label` of `table`, score every row. Returns the
/// fitted model as JSON (`ChurnModel`) and a table of `churn_score`, `risk` (low / mid /
/// high) and one `contrib_<feature>` per feature (coefficient × value, log-odds).
#[pyfunction]
#[pyo3(signature = (table, features, label, holdout=0.3, seed=0, low_below=0.3, high_from=0.7))]
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per keyword argument of the Python function"
)]
fn churn_scores(
    py: Python<'_>,
    table: PyTable,
    features: Vec<String>,
    label: &str,
    holdout: f64,
    seed: u64,
    low_below: f64,
    high_from: f64,
) -> PyResult<(String, PyTable)> {
    let t = Table::from_py(table);
    let (model, batch) = run(py, || {
        if !(0.0 <= low_below && low_below <= high_from && high_from <= 1.0) {
            return Err(bad_arg("bands", "need 0 <= low_below <= high_from <= 1"));
        }
        let cols = features
            .iter()
            .map(|f| columns::floats(&t, f))
            .collect::<Result<Vec<_>, _>>()?;
        let y = columns::flags(&t, label)?;
        let refs: Vec<&[f64]> = cols.iter().map(|c| c.as_ref()).collect();
        let m = models::fit_churn_model(&features, &refs, &y, holdout, seed).map_err(core)?;
        let n = y.len();
        let mut z = vec![m.model.intercept; n];
        let mut out: Vec<(String, ArrayRef)> = Vec::new();
        let mut contribs = Vec::new();
        for (f, (c, coef)) in features.iter().zip(cols.iter().zip(&m.model.coefficients)) {
            let contrib: Vec<f64> = c.iter().map(|x| coef * x).collect();
            for (zi, ci) in z.iter_mut().zip(&contrib) {
                *zi += ci;
            }
            contribs.push((format!("contrib_{f}"), f64s(contrib)));
        }
        let score: Vec<f64> = z.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
        let risk: ArrayRef = Arc::new(
            score
                .iter()
                .map(|&s| {
                    Some(if s < low_below {
                        "low"
                    } else if s >= high_from {
                        "high"
                    } else {
                        "mid"
                    })
                })
                .collect::<StringArray>(),
        );
        out.push(("churn_score".into(), f64s(score)));
        out.push(("risk".into(), risk));
        out.extend(contribs);
        let json =
            serde_json::to_string(&m).map_err(|e| Fail::Core(Error::Internal(e.to_string())))?;
        Ok((json, columns::batch(out)?))
    })?;
    Ok((model, table_out(batch)?))
}

/// Preference shares: (customer, value, weight, share, rank), rank 1 the largest share.
#[pyfunction]
#[pyo3(signature = (table, customer, value, weight=None, time=None, as_of=None, lookback_months=3, top_k=None))]
#[expect(
    clippy::too_many_arguments,
    reason = "one argument per keyword argument of the Python function"
)]
fn preferences(
    py: Python<'_>,
    table: PyTable,
    customer: &str,
    value: &str,
    weight: Option<&str>,
    time: Option<&str>,
    as_of: Option<i64>,
    lookback_months: u32,
    top_k: Option<u32>,
) -> PyResult<PyTable> {
    let t = Table::from_py(table);
    let batch = run(py, || {
        let (keys, mut codes) = Keys::encode(&[(&t, customer)])?;
        let (vkeys, mut vcodes) = Keys::encode(&[(&t, value)])?;
        let (c, v) = (
            codes.pop().unwrap_or_default(),
            vcodes.pop().unwrap_or_default(),
        );
        let w = weight.map(|w| columns::floats(&t, w)).transpose()?;
        let times = time.map(|n| columns::wall_seconds(&t, n)).transpose()?;
        if as_of.is_some() && times.is_none() {
            return Err(bad_arg("as_of", "give a time column with as_of"));
        }
        let window = times.as_deref().map(|ts| {
            let at = as_of.unwrap_or_else(|| ts.iter().copied().max().unwrap_or(0));
            (ts, at, lookback_months)
        });
        let p = models::preferences(&c, &v, w.as_deref(), window, top_k).map_err(core)?;
        Ok(columns::batch(vec![
            (customer.to_owned(), keys.decode(p.customer.iter().copied())),
            (value.to_owned(), vkeys.decode(p.value.iter().copied())),
            ("weight".into(), f64s(p.weight)),
            ("share".into(), f64s(p.share)),
            ("rank".into(), i64s(p.rank.iter().map(|&x| i64::from(x)))),
        ])?)
    })?;
    table_out(batch)
}

/// Register the models' functions in the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(summary_data, m)?)?;
    m.add_function(wrap_pyfunction!(calibration_and_holdout, m)?)?;
    m.add_function(wrap_pyfunction!(rfm, m)?)?;
    m.add_function(wrap_pyfunction!(bgnbd_fit, m)?)?;
    m.add_function(wrap_pyfunction!(bgnbd_log_likelihood, m)?)?;
    m.add_function(wrap_pyfunction!(bgnbd_p_alive, m)?)?;
    m.add_function(wrap_pyfunction!(bgnbd_expected, m)?)?;
    m.add_function(wrap_pyfunction!(gamma_gamma_fit, m)?)?;
    m.add_function(wrap_pyfunction!(gamma_gamma_expected_profit, m)?)?;
    m.add_function(wrap_pyfunction!(clv, m)?)?;
    m.add_function(wrap_pyfunction!(churn_scores, m)?)?;
    m.add_function(wrap_pyfunction!(preferences, m)?)?;
    Ok(())
}
