"""User models for data scientists: transaction summary, RFM, BG/NBD, Gamma-Gamma, churn scores.

Tables in (pandas, polars or pyarrow) give tables of the same kind out; array-likes in (pandas or
polars Series, pyarrow or numpy arrays) give the same kind out. The definitions are documented in
the Rust crate (``userops::models``) and repeated on each function; ``summary_data``,
``BetaGeo`` and ``GammaGamma`` follow the Python ``lifetimes`` package.

Needs ``numpy`` and ``pyarrow`` (imported on first use).
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from . import _native
from .errors import InvalidArgument, from_report

__all__ = [
    "summary_data",
    "calibration_and_holdout",
    "rfm",
    "BetaGeo",
    "GammaGamma",
    "ChurnModel",
    "churn_scores",
    "preferences",
]

_EPOCH = _dt.datetime(1970, 1, 1)


def _np() -> Any:
    try:
        import numpy as np
    except ImportError as e:  # pragma: no cover - numpy comes with pyarrow
        raise ImportError("userops.models needs numpy: pip install numpy pyarrow") from e
    return np


def _pa() -> Tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError as e:  # pragma: no cover
        raise ImportError("userops.models needs pyarrow: pip install pyarrow") from e
    return pa, pc


def _native_call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call a native function, turning its error report into the typed exception."""
    try:
        return fn(*args)
    except ValueError as e:
        text = str(e)
        if text.startswith("{"):
            raise from_report(json.loads(text)) from None
        raise


# ---------------------------------------------------------------- conversions


def _kind(obj: Any) -> str:
    mod = type(obj).__module__.split(".")[0]
    if mod == "pandas":
        return "pandas"
    if mod == "polars":
        return "polars"
    if mod == "pyarrow":
        return "arrow"
    return "other"


def _table(obj: Any) -> Any:
    pa, _ = _pa()
    if isinstance(obj, pa.Table):
        return obj
    if _kind(obj) == "pandas":
        return pa.Table.from_pandas(obj, preserve_index=False)
    try:
        return pa.table(obj)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"expected a pandas, polars or pyarrow table: {e}") from None


def _column(table: Any, name: str) -> Any:
    if name not in table.column_names:
        raise InvalidArgument(f"no column {name!r} (columns: {table.column_names})", field=name)
    col = table.column(name).combine_chunks()
    pa, _ = _pa()
    if pa.types.is_string_view(col.type):
        col = col.cast(pa.large_string())  # polars' strings; sort kernels want plain strings
    if col.null_count:
        raise InvalidArgument(f"column {name!r} has {col.null_count} null values", field=name)
    return col


def _keys(col: Any) -> Tuple[bytes, Any]:
    """Customer ids as dense int64 keys in sorted id order, and the sorted ids.

    Hash-encodes the column once (O(n)) and sorts only the distinct ids."""
    np = _np()
    _, pc = _pa()
    enc = col.dictionary_encode()
    order = np.asarray(pc.array_sort_indices(enc.dictionary), dtype=np.int64)
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    keys = rank[np.asarray(enc.indices, dtype=np.int64)]
    return keys.tobytes(), enc.dictionary.take(order)


def _seconds_col(col: Any, field: str) -> bytes:
    """Wall-clock seconds since 1970 (time-zone-aware timestamps use their zone's wall clock)."""
    np = _np()
    pa, pc = _pa()
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            col = pc.cast(col, pa.timestamp("us"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise InvalidArgument(f"column {field!r}: not ISO timestamps: {e}", field=field) from None
        t = col.type
    if pa.types.is_date(t):
        days = np.asarray(col.cast(pa.date32()).cast(pa.int32()), dtype=np.int64)
        return (days * 86400).tobytes()
    if not pa.types.is_timestamp(t):
        raise InvalidArgument(f"column {field!r} holds {t}, not timestamps or dates", field=field)
    if t.tz is not None:
        col = pc.local_timestamp(col)
    per_second = {"s": 1, "ms": 1000, "us": 1_000_000, "ns": 1_000_000_000}[t.unit]
    raw = np.asarray(col.cast(pa.timestamp(t.unit)).cast(pa.int64()), dtype=np.int64)
    return (raw // per_second).tobytes()


def _seconds(value: Any, field: str) -> int:
    """One point in time as wall-clock seconds since 1970."""
    np = _np()
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[s]").astype(np.int64))
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value)
        except ValueError as e:
            raise InvalidArgument(f"{field}: {e}", field=field) from None
    if isinstance(value, _dt.datetime):
        naive = value.replace(tzinfo=None)
        return int((naive - _EPOCH) // _dt.timedelta(seconds=1))
    if isinstance(value, _dt.date):
        return (value - _EPOCH.date()).days * 86400
    raise InvalidArgument(f"{field}: expected a date, datetime or ISO string", field=field)


def _f64(x: Any, field: str) -> Any:
    np = _np()
    try:
        arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"{field}: not numbers: {e}", field=field) from None
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    return arr


def _like(template: Any, values: Any, name: str) -> Any:
    """Return ``values`` as the same kind of array as ``template``."""
    kind = _kind(template)
    if kind == "pandas":
        import pandas as pd

        index = getattr(template, "index", None)
        return pd.Series(values, index=index, name=name)
    if kind == "polars":
        import polars as pl

        return pl.Series(name, values)
    if kind == "arrow":
        pa, _ = _pa()
        return pa.array(values)
    return values


def _out(kind: str, columns: Dict[str, Any], index: Optional[str] = None) -> Any:
    pa, _ = _pa()
    table = pa.table(columns)
    if kind == "pandas":
        df = table.to_pandas()
        return df.set_index(index) if index else df
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table


def _buf(b: bytes, dtype: str) -> Any:
    return _np().frombuffer(b, dtype=dtype).copy()


# ---------------------------------------------------------------- summary and RFM


def summary_data(
    transactions: Any,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: Optional[str] = None,
    observation_period_end: Any = None,
    freq: str = "D",
) -> Any:
    """Per-customer (frequency, recency, T, monetary_value), as ``lifetimes``'
    ``summary_data_from_transaction_data``.

    Transactions of a customer in one period (``freq``: ``"D"`` day, ``"W"`` Monday-Sunday week,
    ``"M"`` calendar month) are one purchase worth their sum; periods after the observation end's
    period are ignored. frequency = purchase periods - 1; recency = last - first period;
    T = observation end period - first period; monetary_value = mean of the repeat periods'
    values (0 without repeats). Time-zone-aware times use their own zone's wall clock.

    Returns the caller's table kind; pandas output is indexed by customer id like ``lifetimes``.
    """
    kind = _kind(transactions)
    table = _table(transactions)
    keys, ids = _keys(_column(table, customer_id_col))
    times = _seconds_col(_column(table, datetime_col), datetime_col)
    amounts = None
    if monetary_value_col is not None:
        amounts = _f64(_column(table, monetary_value_col), monetary_value_col).tobytes()
    end = None if observation_period_end is None else _seconds(observation_period_end, "observation_period_end")
    cols = _native_call(_native.summary_data, keys, times, amounts, end, freq)
    key = _buf(cols[0], "<i8")
    out: Dict[str, Any] = {customer_id_col: ids.take(key)}
    for name, b in zip(["frequency", "recency", "T"], cols[1:4]):
        out[name] = _buf(b, "<f8")
    if monetary_value_col is not None:
        out["monetary_value"] = _buf(cols[4], "<f8")
    return _out(kind, out, index=customer_id_col)


def calibration_and_holdout(
    transactions: Any,
    customer_id_col: str,
    datetime_col: str,
    calibration_period_end: Any,
    observation_period_end: Any,
    monetary_value_col: Optional[str] = None,
    freq: str = "D",
) -> Any:
    """Calibration summary (``*_cal`` columns) plus ``frequency_holdout``,
    ``monetary_value_holdout`` and ``duration_holdout`` for customers who bought by the
    calibration end, as ``lifetimes``' ``calibration_and_holdout_data``."""
    kind = _kind(transactions)
    table = _table(transactions)
    keys, ids = _keys(_column(table, customer_id_col))
    times = _seconds_col(_column(table, datetime_col), datetime_col)
    amounts = None
    if monetary_value_col is not None:
        amounts = _f64(_column(table, monetary_value_col), monetary_value_col).tobytes()
    cal = _seconds(calibration_period_end, "calibration_period_end")
    end = _seconds(observation_period_end, "observation_period_end")
    cols, duration = _native_call(_native.calibration_and_holdout, keys, times, amounts, cal, end, freq)
    np = _np()
    out: Dict[str, Any] = {customer_id_col: ids.take(_buf(cols[0], "<i8"))}
    names = ["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal", "frequency_holdout", "monetary_value_holdout"]
    for name, b in zip(names, cols[1:]):
        if monetary_value_col is None and name.startswith("monetary"):
            continue
        out[name] = _buf(b, "<f8")
    out["duration_holdout"] = np.full(len(out["frequency_cal"]), duration)
    return _out(kind, out, index=customer_id_col)


def rfm(
    orders: Any,
    customer_col: str,
    datetime_col: str,
    amount_col: str,
    as_of: Any,
    window_days: Optional[int] = None,
    monetary: str = "sum",
    split: str = "mean",
) -> Any:
    """RFM per customer with orders in ``(as_of - window_days, as_of]`` (all up to ``as_of``
    without a window).

    Columns: ``recency`` (calendar days from the last order to ``as_of``), ``frequency`` (orders),
    ``monetary`` (sum or mean), ``r_score``/``f_score``/``m_score`` (quantile scores 1-5:
    ``1 + floor(5 * (rank_min - 1) / n)`` with worse values ranked first, ties sharing the lowest
    rank) and ``segment`` (one of the eight classic segments from high/low against the mean or
    median: R high when recency < centre, F and M high when > centre).
    """
    kind = _kind(orders)
    table = _table(orders)
    keys, ids = _keys(_column(table, customer_col))
    times = _seconds_col(_column(table, datetime_col), datetime_col)
    amounts = _f64(_column(table, amount_col), amount_col).tobytes()
    cols, segments = _native_call(
        _native.rfm, keys, times, amounts, _seconds(as_of, "as_of"), window_days, monetary, split
    )
    out: Dict[str, Any] = {customer_col: ids.take(_buf(cols[0], "<i8"))}
    out["recency"] = _buf(cols[1], "<i8")
    out["frequency"] = _buf(cols[2], "<i8")
    out["monetary"] = _buf(cols[3], "<f8")
    out["r_score"] = _buf(cols[4], "<i8")
    out["f_score"] = _buf(cols[5], "<i8")
    out["m_score"] = _buf(cols[6], "<i8")
    out["segment"] = segments
    return _out(kind, out, index=customer_col)


# ---------------------------------------------------------------- BG/NBD and Gamma-Gamma


class BetaGeo:
    """BG/NBD model (Fader, Hardie & Lee 2005) fitted by maximum likelihood, no penalizer.

    >>> import userops
    >>> m = userops.BetaGeo().fit([0, 1, 3, 0, 2, 5, 0, 1], [0, 10, 30, 0, 20, 35, 0, 3],
    ...                           [40, 38, 39, 20, 36, 40, 10, 30])
    >>> sorted(m.params)
    ['a', 'alpha', 'b', 'r']
    """

    def __init__(self) -> None:
        self.params: Dict[str, float] = {}
        self.log_likelihood: float = float("nan")
        self.evaluations: int = 0

    def _p(self) -> Tuple[float, float, float, float]:
        if not self.params:
            raise InvalidArgument("the model is not fitted: call fit() first")
        p = self.params
        return (p["r"], p["alpha"], p["a"], p["b"])

    def fit(self, frequency: Any, recency: Any, T: Any, weights: Any = None) -> "BetaGeo":
        """Fit on per-customer (frequency, recency, T) (see :func:`summary_data`).

        Sets ``params`` (``r``, ``alpha``, ``a``, ``b``), ``log_likelihood`` (the total
        Σ ln L, in the caller's time unit) and ``evaluations`` (gradient evaluations the optimizer used). Raises ``InvalidArgument`` on bad
        input (NaN, negative values, recency > T, frequency > 0 with recency 0) and
        ``NotConverged`` when the fit does not converge.
        """
        w = None if weights is None else _f64(weights, "weights").tobytes()
        (r, alpha, a, b), ll, iters = _native_call(
            _native.bgnbd_fit,
            _f64(frequency, "frequency").tobytes(),
            _f64(recency, "recency").tobytes(),
            _f64(T, "T").tobytes(),
            w,
        )
        self.params = {"r": r, "alpha": alpha, "a": a, "b": b}
        self.log_likelihood = ll
        self.evaluations = iters
        return self

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(alive) of each customer given their history."""
        out = _native_call(
            _native.bgnbd_p_alive,
            self._p(),
            _f64(frequency, "frequency").tobytes(),
            _f64(recency, "recency").tobytes(),
            _f64(T, "T").tobytes(),
        )
        return _like(frequency, _buf(out, "<f8"), "p_alive")

    def expected_purchases(self, t: Any, frequency: Any = None, recency: Any = None, T: Any = None) -> Any:
        """Expected purchases in the next ``t`` periods: conditional on each customer's
        (frequency, recency, T) when given (FHL eq. 10), else for a new customer (eq. 9)."""
        np = _np()
        horizon = _f64(np.atleast_1d(t) if np.isscalar(t) else t, "t")
        args = [None if v is None else _f64(v, n).tobytes() for v, n in ((frequency, "frequency"), (recency, "recency"), (T, "T"))]
        out = _buf(_native_call(_native.bgnbd_expected, self._p(), horizon.tobytes(), *args), "<f8")
        if frequency is not None:
            return _like(frequency, out, "expected_purchases")
        if np.isscalar(t):
            return float(out[0])
        return _like(t, out, "expected_purchases")

    def log_likelihood_at(self, frequency: Any, recency: Any, T: Any) -> float:
        """Σ ln L of data at the fitted parameters."""
        ll: float = _native_call(
            _native.bgnbd_log_likelihood,
            self._p(),
            _f64(frequency, "frequency").tobytes(),
            _f64(recency, "recency").tobytes(),
            _f64(T, "T").tobytes(),
        )
        return ll


class GammaGamma:
    """Gamma-Gamma spend model (p, q, v) fitted by maximum likelihood on customers with at
    least one repeat purchase; CLV with a fitted :class:`BetaGeo`."""

    def __init__(self) -> None:
        self.params: Dict[str, float] = {}
        self.log_likelihood: float = float("nan")
        self.evaluations: int = 0

    def _p(self) -> Tuple[float, float, float]:
        if not self.params:
            raise InvalidArgument("the model is not fitted: call fit() first")
        return (self.params["p"], self.params["q"], self.params["v"])

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None) -> "GammaGamma":
        """Fit on customers with frequency >= 1 and monetary_value > 0 (others are an error)."""
        w = None if weights is None else _f64(weights, "weights").tobytes()
        (p, q, v), ll, iters = _native_call(
            _native.gamma_gamma_fit,
            _f64(frequency, "frequency").tobytes(),
            _f64(monetary_value, "monetary_value").tobytes(),
            w,
        )
        self.params = {"p": p, "q": q, "v": v}
        self.log_likelihood = ll
        self.evaluations = iters
        return self

    def conditional_expected_average_profit(self, frequency: Any, monetary_value: Any) -> Any:
        """E[M | x, m]: the customer's expected mean transaction value."""
        out = _native_call(
            _native.gamma_gamma_expected_profit,
            self._p(),
            _f64(frequency, "frequency").tobytes(),
            _f64(monetary_value, "monetary_value").tobytes(),
        )
        return _like(frequency, _buf(out, "<f8"), "expected_average_profit")

    def customer_lifetime_value(
        self,
        bgnbd: BetaGeo,
        frequency: Any,
        recency: Any,
        T: Any,
        monetary_value: Any,
        time: int = 12,
        discount_rate: float = 0.01,
        freq: str = "D",
    ) -> Any:
        """Discounted CLV over ``time`` months, as ``lifetimes``' ``customer_lifetime_value``:
        sum over months i of E[M] * (E[Y(i f)] - E[Y((i-1) f)]) / (1 + discount_rate)^i, with
        f = 30 (D), 4.345 (W) or 1 (M) periods per month."""
        factor = {"D": 30.0, "W": 4.345, "M": 1.0}.get(freq)
        if factor is None:
            raise InvalidArgument('freq must be "D", "W" or "M"', field="freq")
        out = _native_call(
            _native.clv,
            self._p(),
            bgnbd._p(),
            _f64(frequency, "frequency").tobytes(),
            _f64(recency, "recency").tobytes(),
            _f64(T, "T").tobytes(),
            _f64(monetary_value, "monetary_value").tobytes(),
            int(time),
            factor,
            float(discount_rate),
        )
        return _like(frequency, _buf(out, "<f8"), "clv")


# ---------------------------------------------------------------- supervised churn


class ChurnModel:
    """A fitted logistic churn model: ``intercept``, ``coefficients`` (by feature),
    ``auc_holdout``, ``n_train``, ``n_holdout``, ``log_likelihood``."""

    def __init__(self, spec: Dict[str, Any]) -> None:
        m = spec["model"]
        self.features: List[str] = list(m["features"])
        self.intercept: float = m["intercept"]
        self.coefficients: Dict[str, float] = dict(zip(self.features, m["coefficients"]))
        self.log_likelihood: float = m["log_likelihood"]
        self.iterations: int = m["iterations"]
        self.auc_holdout: Optional[float] = spec["auc_holdout"]
        self.n_train: int = spec["n_train"]
        self.n_holdout: int = spec["n_holdout"]

    def __repr__(self) -> str:
        return f"ChurnModel(intercept={self.intercept:.4g}, coefficients={self.coefficients}, auc_holdout={self.auc_holdout})"


def churn_scores(
    table: Any,
    features: Sequence[str],
    label: str,
    holdout: float = 0.3,
    seed: int = 0,
    low_below: float = 0.3,
    high_from: float = 0.7,
) -> Tuple[Any, ChurnModel]:
    """Fit a logistic regression (IRLS, no regularization) of ``label`` (1 = churned next
    period) on ``features``, on the rows outside a seeded holdout, report AUC on the holdout, and
    score every row.

    Returns ``(scores, model)``: ``scores`` is the caller's table kind with ``churn_score``,
    ``risk`` (``low`` below ``low_below``, ``high`` from ``high_from``, else ``mid``) and one
    ``contrib_<feature>`` column per feature (coefficient x value on the log-odds scale).
    """
    np = _np()
    if not 0.0 <= low_below <= high_from <= 1.0:
        raise InvalidArgument("need 0 <= low_below <= high_from <= 1", field="bands")
    kind = _kind(table)
    t = _table(table)
    cols = [_f64(_column(t, f), f) for f in features]
    y = np.asarray(_column(t, label), dtype=np.float64)
    if not np.isin(y, (0.0, 1.0)).all():
        raise InvalidArgument(f"label {label!r} must be 0/1 or boolean", field=label)
    spec = json.loads(
        _native_call(_native.churn_fit, list(features), [c.tobytes() for c in cols], y.astype(np.uint8).tobytes(), float(holdout), int(seed))
    )
    model = ChurnModel(spec)
    z = np.full(len(y), model.intercept)
    out: Dict[str, Any] = {}
    for f, c in zip(features, cols):
        contrib = model.coefficients[f] * c
        out[f"contrib_{f}"] = contrib
        z = z + contrib
    score = 1.0 / (1.0 + np.exp(-z))
    risk = np.where(score < low_below, "low", np.where(score >= high_from, "high", "mid"))
    result = {"churn_score": score, "risk": risk.tolist(), **out}
    return _out(kind, result), model


# ---------------------------------------------------------------- preferences


def preferences(
    behaviours: Any,
    customer_col: str,
    value_col: str,
    datetime_col: Optional[str] = None,
    as_of: Any = None,
    lookback_months: int = 3,
    weight_col: Optional[str] = None,
    top_k: Optional[int] = None,
) -> Any:
    """Share of each customer's behaviours per value of ``value_col`` (a category, price band,
    channel, activity type or function) over the ``lookback_months`` calendar months up to
    ``as_of`` (``as_of - months < time <= as_of``; all rows when no time column is given).

    Returns a long table (customer, value, weight, share, rank), rank 1 = the largest share,
    ties broken by value; with ``top_k`` only ranks <= top_k.
    """
    np = _np()
    kind = _kind(behaviours)
    table = _table(behaviours)
    keys, ids = _keys(_column(table, customer_col))
    vkeys, values = _keys(_column(table, value_col))
    weights = None if weight_col is None else _f64(_column(table, weight_col), weight_col).tobytes()
    times = None
    at = None
    if datetime_col is not None:
        times = _seconds_col(_column(table, datetime_col), datetime_col)
        at = _seconds(as_of, "as_of") if as_of is not None else int(np.frombuffer(times, "<i8").max())
    cols = _native_call(_native.preferences, keys, vkeys, weights, times, at, int(lookback_months), top_k)
    out: Dict[str, Any] = {
        customer_col: ids.take(_buf(cols[0], "<i8")),
        value_col: values.take(_buf(cols[1], "<i8")),
        "weight": _buf(cols[2], "<f8"),
        "share": _buf(cols[3], "<f8"),
        "rank": _buf(cols[4], "<i8"),
    }
    return _out(kind, out)
