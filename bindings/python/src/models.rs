//! Native entry points of the user models (`userops.models` in Python). Columns travel as
//! little-endian byte buffers (numpy `tobytes()` / `frombuffer`), which the abi3 build can read
//! without the buffer protocol; these functions only convert and delegate to `userops::models`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use userops::models::{self, BgNbdParams, GammaGammaParams};
use userops::Error;

fn err(e: impl Into<Error>) -> PyErr {
    let e: Error = e.into();
    let report = serde_json::to_string(&e.to_report()).unwrap_or_else(|_| e.to_string());
    PyValueError::new_err(report)
}

fn bad(field: &str, reason: &str) -> PyErr {
    err(Error::invalid_argument(field, reason))
}

fn f64s(field: &str, b: &[u8]) -> PyResult<Vec<f64>> {
    if b.len() % 8 != 0 {
        return Err(bad(field, "buffer length is not a multiple of 8"));
    }
    Ok(b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("chunks_exact(8)")))
        .collect())
}

fn i64s(field: &str, b: &[u8]) -> PyResult<Vec<i64>> {
    if b.len() % 8 != 0 {
        return Err(bad(field, "buffer length is not a multiple of 8"));
    }
    Ok(b.chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks_exact(8)")))
        .collect())
}

fn u64s(field: &str, b: &[u8]) -> PyResult<Vec<u64>> {
    Ok(i64s(field, b)?.into_iter().map(|v| v as u64).collect())
}

fn out_f64<'py>(py: Python<'py>, v: &[f64]) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    PyBytes::new(py, &bytes)
}

fn out_i64<'py>(py: Python<'py>, v: impl Iterator<Item = i64>) -> Bound<'py, PyBytes> {
    let bytes: Vec<u8> = v.flat_map(|x| x.to_le_bytes()).collect();
    PyBytes::new(py, &bytes)
}

type Columns<'py> = Vec<Bound<'py, PyBytes>>;

/// BG/NBD (r, alpha, a, b).
type BgTuple = (f64, f64, f64, f64);

/// Transaction summary: (customer, frequency, recency, T, monetary_value) buffers.
#[pyfunction]
#[pyo3(signature = (customers, times, amounts, observation_end, freq))]
fn summary_data<'py>(
    py: Python<'py>,
    customers: &[u8],
    times: &[u8],
    amounts: Option<&[u8]>,
    observation_end: Option<i64>,
    freq: &str,
) -> PyResult<Columns<'py>> {
    let c = u64s("customers", customers)?;
    let t = i64s("times", times)?;
    let a = amounts.map(|a| f64s("amounts", a)).transpose()?;
    let freq = models::Freq::parse(freq).map_err(err)?;
    let s = py
        .detach(|| models::summary_data(&c, &t, a.as_deref(), observation_end, freq))
        .map_err(err)?;
    Ok(vec![
        out_i64(py, s.customer.iter().map(|&v| v as i64)),
        out_f64(py, &s.frequency),
        out_f64(py, &s.recency),
        out_f64(py, &s.t),
        out_f64(py, &s.monetary_value),
    ])
}

/// Calibration/holdout split: summary columns plus frequency_holdout, monetary_value_holdout,
/// and the holdout duration.
#[pyfunction]
#[pyo3(signature = (customers, times, amounts, calibration_end, observation_end, freq))]
fn calibration_and_holdout<'py>(
    py: Python<'py>,
    customers: &[u8],
    times: &[u8],
    amounts: Option<&[u8]>,
    calibration_end: i64,
    observation_end: i64,
    freq: &str,
) -> PyResult<(Columns<'py>, f64)> {
    let c = u64s("customers", customers)?;
    let t = i64s("times", times)?;
    let a = amounts.map(|a| f64s("amounts", a)).transpose()?;
    let freq = models::Freq::parse(freq).map_err(err)?;
    let h = py
        .detach(|| {
            models::calibration_and_holdout(
                &c,
                &t,
                a.as_deref(),
                calibration_end,
                observation_end,
                freq,
            )
        })
        .map_err(err)?;
    let s = &h.calibration;
    Ok((
        vec![
            out_i64(py, s.customer.iter().map(|&v| v as i64)),
            out_f64(py, &s.frequency),
            out_f64(py, &s.recency),
            out_f64(py, &s.t),
            out_f64(py, &s.monetary_value),
            out_f64(py, &h.frequency_holdout),
            out_f64(py, &h.monetary_value_holdout),
        ],
        h.duration_holdout,
    ))
}

/// RFM: (customer, recency, frequency, monetary, r_score, f_score, m_score) buffers (int64 /
/// float64) and the segment names.
#[pyfunction]
#[pyo3(signature = (customers, times, amounts, as_of, window_days, monetary, split))]
#[allow(clippy::too_many_arguments)]
fn rfm<'py>(
    py: Python<'py>,
    customers: &[u8],
    times: &[u8],
    amounts: &[u8],
    as_of: i64,
    window_days: Option<u32>,
    monetary: &str,
    split: &str,
) -> PyResult<(Columns<'py>, Vec<&'static str>)> {
    let c = u64s("customers", customers)?;
    let t = i64s("times", times)?;
    let a = f64s("amounts", amounts)?;
    let monetary = match monetary {
        "sum" => models::Monetary::Sum,
        "mean" => models::Monetary::Mean,
        _ => return Err(bad("monetary", "\"sum\" or \"mean\"")),
    };
    let split = match split {
        "mean" => models::Split::Mean,
        "median" => models::Split::Median,
        _ => return Err(bad("split", "\"mean\" or \"median\"")),
    };
    let mut spec = models::RfmSpec::as_of(as_of)
        .monetary(monetary)
        .split(split);
    if let Some(d) = window_days {
        spec = spec.window_days(d);
    }
    let r = py.detach(|| models::rfm(&c, &t, &a, &spec)).map_err(err)?;
    Ok((
        vec![
            out_i64(py, r.customer.iter().map(|&v| v as i64)),
            out_i64(py, r.recency.iter().copied()),
            out_i64(py, r.frequency.iter().map(|&v| v as i64)),
            out_f64(py, &r.monetary),
            out_i64(py, r.r_score.iter().map(|&v| i64::from(v))),
            out_i64(py, r.f_score.iter().map(|&v| i64::from(v))),
            out_i64(py, r.m_score.iter().map(|&v| i64::from(v))),
        ],
        r.segment.iter().map(|s| s.name()).collect(),
    ))
}

fn bg(p: (f64, f64, f64, f64)) -> BgNbdParams {
    BgNbdParams {
        r: p.0,
        alpha: p.1,
        a: p.2,
        b: p.3,
    }
}

/// BG/NBD fit: ((r, alpha, a, b), log_likelihood, iterations).
#[pyfunction]
#[pyo3(signature = (frequency, recency, t, weights))]
fn bgnbd_fit(
    py: Python<'_>,
    frequency: &[u8],
    recency: &[u8],
    t: &[u8],
    weights: Option<&[u8]>,
) -> PyResult<(BgTuple, f64, u64)> {
    let (f, r, t) = (
        f64s("frequency", frequency)?,
        f64s("recency", recency)?,
        f64s("T", t)?,
    );
    let w = weights.map(|w| f64s("weights", w)).transpose()?;
    let fit = py
        .detach(|| models::BgNbdFit::fit(&f, &r, &t, w.as_deref()))
        .map_err(err)?;
    let p = fit.params;
    Ok((
        (p.r, p.alpha, p.a, p.b),
        fit.log_likelihood,
        fit.evaluations,
    ))
}

/// Σ ln L at given BG/NBD parameters.
#[pyfunction]
fn bgnbd_log_likelihood(
    params: (f64, f64, f64, f64),
    frequency: &[u8],
    recency: &[u8],
    t: &[u8],
) -> PyResult<f64> {
    let (f, r, t) = (
        f64s("frequency", frequency)?,
        f64s("recency", recency)?,
        f64s("T", t)?,
    );
    models::bgnbd_log_likelihood(&bg(params), &f, &r, &t, None).map_err(err)
}

/// P(alive) per customer.
#[pyfunction]
fn bgnbd_p_alive<'py>(
    py: Python<'py>,
    params: (f64, f64, f64, f64),
    frequency: &[u8],
    recency: &[u8],
    t: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let (f, r, t) = (
        f64s("frequency", frequency)?,
        f64s("recency", recency)?,
        f64s("T", t)?,
    );
    models::check_frt(&f, &r, &t).map_err(err)?;
    let p = bg(params);
    let out: Vec<f64> = (0..f.len()).map(|i| p.p_alive(f[i], r[i], t[i])).collect();
    Ok(out_f64(py, &out))
}

/// Expected purchases in `horizon` periods: conditional on (frequency, recency, T) when given,
/// else for a new customer.
#[pyfunction]
#[pyo3(signature = (params, horizon, frequency, recency, t))]
fn bgnbd_expected<'py>(
    py: Python<'py>,
    params: (f64, f64, f64, f64),
    horizon: &[u8],
    frequency: Option<&[u8]>,
    recency: Option<&[u8]>,
    t: Option<&[u8]>,
) -> PyResult<Bound<'py, PyBytes>> {
    let h = f64s("t", horizon)?;
    if let Some(i) = h.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(bad(&format!("t[{i}]"), "not a number ≥ 0"));
    }
    let p = bg(params);
    let out: Vec<f64> = match (frequency, recency, t) {
        (Some(f), Some(r), Some(tt)) => {
            let (f, r, tt) = (f64s("frequency", f)?, f64s("recency", r)?, f64s("T", tt)?);
            models::check_frt(&f, &r, &tt).map_err(err)?;
            if h.len() != f.len() && h.len() != 1 {
                return Err(bad("t", "one horizon, or one per customer"));
            }
            (0..f.len())
                .map(|i| {
                    let hi = if h.len() == 1 { h[0] } else { h[i] };
                    p.conditional_expected_purchases(hi, f[i], r[i], tt[i])
                })
                .collect()
        }
        (None, None, None) => h.iter().map(|&v| p.expected_purchases(v)).collect(),
        _ => return Err(bad("frequency", "give frequency, recency and T together")),
    };
    Ok(out_f64(py, &out))
}

/// Gamma-Gamma fit: ((p, q, v), log_likelihood, iterations).
#[pyfunction]
#[pyo3(signature = (frequency, monetary_value, weights))]
fn gamma_gamma_fit(
    py: Python<'_>,
    frequency: &[u8],
    monetary_value: &[u8],
    weights: Option<&[u8]>,
) -> PyResult<((f64, f64, f64), f64, u64)> {
    let (f, m) = (
        f64s("frequency", frequency)?,
        f64s("monetary_value", monetary_value)?,
    );
    let w = weights.map(|w| f64s("weights", w)).transpose()?;
    let fit = py
        .detach(|| models::GammaGammaFit::fit(&f, &m, w.as_deref()))
        .map_err(err)?;
    let p = fit.params;
    Ok(((p.p, p.q, p.v), fit.log_likelihood, fit.evaluations))
}

fn gg(p: (f64, f64, f64)) -> GammaGammaParams {
    GammaGammaParams {
        p: p.0,
        q: p.1,
        v: p.2,
    }
}

/// E[M | x, m̄] per customer.
#[pyfunction]
fn gamma_gamma_expected_profit<'py>(
    py: Python<'py>,
    params: (f64, f64, f64),
    frequency: &[u8],
    monetary_value: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let (f, m) = (
        f64s("frequency", frequency)?,
        f64s("monetary_value", monetary_value)?,
    );
    if f.len() != m.len() {
        return Err(bad("monetary_value", "one per customer"));
    }
    let p = gg(params);
    let out: Vec<f64> = (0..f.len())
        .map(|i| p.conditional_expected_average_profit(f[i], m[i]))
        .collect();
    Ok(out_f64(py, &out))
}

/// Discounted CLV per customer.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn clv<'py>(
    py: Python<'py>,
    gg_params: (f64, f64, f64),
    bg_params: (f64, f64, f64, f64),
    frequency: &[u8],
    recency: &[u8],
    t: &[u8],
    monetary_value: &[u8],
    months: u32,
    periods_per_month: f64,
    monthly_discount: f64,
) -> PyResult<Bound<'py, PyBytes>> {
    let (f, r, tt, m) = (
        f64s("frequency", frequency)?,
        f64s("recency", recency)?,
        f64s("T", t)?,
        f64s("monetary_value", monetary_value)?,
    );
    models::check_frt(&f, &r, &tt).map_err(err)?;
    if m.len() != f.len() {
        return Err(bad("monetary_value", "one per customer"));
    }
    if !(monthly_discount.is_finite() && monthly_discount > -1.0) {
        return Err(bad("discount_rate", "a rate > -1"));
    }
    let (g, b) = (gg(gg_params), bg(bg_params));
    let out: Vec<f64> = (0..f.len())
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
        .collect();
    Ok(out_f64(py, &out))
}

/// Supervised churn model: the fitted model as JSON (`ChurnModel`).
#[pyfunction]
fn churn_fit(
    py: Python<'_>,
    names: Vec<String>,
    columns: Vec<Vec<u8>>,
    labels: &[u8],
    holdout: f64,
    seed: u64,
) -> PyResult<String> {
    let cols = columns
        .iter()
        .zip(&names)
        .map(|(c, n)| f64s(n, c))
        .collect::<PyResult<Vec<_>>>()?;
    let y: Vec<bool> = labels.iter().map(|&b| b != 0).collect();
    let m = py
        .detach(|| {
            let refs: Vec<&[f64]> = cols.iter().map(Vec::as_slice).collect();
            models::fit_churn_model(&names, &refs, &y, holdout, seed)
        })
        .map_err(err)?;
    serde_json::to_string(&m).map_err(|e| err(Error::Internal(e.to_string())))
}

/// Preference shares: (customer, value, weight, share, rank) buffers.
#[pyfunction]
#[pyo3(signature = (customers, values, weights, times, as_of, lookback_months, top_k))]
#[allow(clippy::too_many_arguments)]
fn preferences<'py>(
    py: Python<'py>,
    customers: &[u8],
    values: &[u8],
    weights: Option<&[u8]>,
    times: Option<&[u8]>,
    as_of: Option<i64>,
    lookback_months: u32,
    top_k: Option<u32>,
) -> PyResult<Columns<'py>> {
    let c = u64s("customers", customers)?;
    let v = u64s("values", values)?;
    let w = weights.map(|w| f64s("weights", w)).transpose()?;
    let t = times.map(|t| i64s("times", t)).transpose()?;
    let window = match (&t, as_of) {
        (Some(t), Some(at)) => Some((t.as_slice(), at, lookback_months)),
        (None, None) => None,
        _ => return Err(bad("as_of", "give times and as_of together")),
    };
    let p = py
        .detach(|| models::preferences(&c, &v, w.as_deref(), window, top_k))
        .map_err(err)?;
    Ok(vec![
        out_i64(py, p.customer.iter().map(|&x| x as i64)),
        out_i64(py, p.value.iter().map(|&x| x as i64)),
        out_f64(py, &p.weight),
        out_f64(py, &p.share),
        out_i64(py, p.rank.iter().map(|&x| i64::from(x))),
    ])
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
    m.add_function(wrap_pyfunction!(churn_fit, m)?)?;
    m.add_function(wrap_pyfunction!(preferences, m)?)?;
    Ok(())
}
