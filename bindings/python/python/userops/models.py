"""User models for data scientists: transaction summary, RFM, BG/NBD, Gamma-Gamma, churn scores.

Tables in (pandas, polars, pyarrow, anything with the Arrow PyCapsule interface) give tables of
the same kind out (or the kind asked for with ``output=``); array-likes in (pandas or polars
Series, pyarrow or numpy arrays, lists) give the same kind out. The columns go to Rust as Arrow
and are read there straight from the Arrow buffers (float64 columns are not copied), without
the GIL. The definitions are documented in the Rust crate (``userops::models``) and repeated on
each function; ``summary_data``, ``BetaGeo`` and ``GammaGamma`` follow the Python ``lifetimes``
package.

Needs ``pyarrow`` (imported on first use).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _args, _native, _progress, _tables
from ._columns import TimeLike, wall_seconds
from .errors import InvalidArgument

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


def _out(native: Any, kind: str, index: Optional[str] = None) -> Any:
    """The native result as ``kind``; pandas output indexed by ``index`` like ``lifetimes``."""
    out = _tables.from_arrow(native, kind)
    if kind == "pandas" and index is not None:
        return out.set_index(index)
    return out


def _array_kind(obj: Any) -> str:
    root = type(obj).__module__.split(".")[0]
    return {"pandas": "pandas", "polars": "polars", "pyarrow": "arrow"}.get(root, "numpy")


def _floats(columns: Dict[str, Any]) -> Any:
    """Array-likes as one pyarrow table of float64 columns (zero-copy for float64 numpy,
    pandas and pyarrow input)."""
    pa = _tables.require_pyarrow()
    out = {}
    for name, x in columns.items():
        if x is None:
            continue
        if isinstance(x, (str, bytes, bytearray, dict)) or not hasattr(x, "__len__"):
            raise InvalidArgument(
                f"invalid argument at `{name}`: expected an array of numbers (a list, numpy or "
                f"pyarrow array, pandas or polars Series), got {type(x).__name__}",
                field=name,
            )
        try:
            if _array_kind(x) == "polars":
                x = x.to_arrow()
            elif _array_kind(x) == "pandas":
                x = x.to_numpy(dtype="float64", na_value=float("nan"))
            arr = x if isinstance(x, (pa.Array, pa.ChunkedArray)) else pa.array(x, from_pandas=True)
            if arr.type != pa.float64():
                arr = arr.cast(pa.float64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError,
                OverflowError) as e:
            raise InvalidArgument(f"{name}: not numbers: {e}", field=name) from None
        out[name] = arr
    try:
        return pa.table(out)
    except pa.ArrowInvalid as e:
        raise InvalidArgument(f"the columns differ in length: {e}") from None


def _like(template: Any, native: Any) -> Any:
    """The one column of a native result as the same kind of array as ``template``."""
    pa = _tables.require_pyarrow()
    table = pa.table(native)
    col = table.column(0).combine_chunks()
    kind = _array_kind(template)
    if kind == "pandas":
        import pandas as pd

        return pd.Series(col.to_numpy(), index=getattr(template, "index", None), name=table.column_names[0])
    if kind == "polars":
        import polars as pl

        return pl.Series(table.column_names[0], col)
    if kind == "arrow":
        return col
    return col.to_numpy()


# ---------------------------------------------------------------- summary and RFM


def summary_data(
    transactions: Any,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: Optional[str] = None,
    observation_period_end: Any = None,
    freq: str = "D",
    *,
    output: _tables.Output = None,
) -> Any:
    """Per-customer (frequency, recency, T, monetary_value), as ``lifetimes``'
    ``summary_data_from_transaction_data``.

    Transactions of a customer in one period (``freq``: ``"D"`` day, ``"W"`` Monday-Sunday week,
    ``"M"`` calendar month) are one purchase worth their sum; periods after the observation end's
    period are ignored. frequency = purchase periods - 1; recency = last - first period;
    T = observation end period - first period; monetary_value = mean of the repeat periods'
    values (0 without repeats). Time-zone-aware times use their own zone's wall clock.

    Returns the caller's table kind (or ``output``); pandas output is indexed by customer id
    like ``lifetimes``.

    >>> import datetime as dt, pyarrow as pa, userops
    >>> orders = pa.table({"member": ["M1", "M1", "M2", "M3"],
    ...                    "day": [dt.date(2026, 1, 2), dt.date(2026, 1, 20), dt.date(2026, 1, 5), dt.date(2026, 1, 30)],
    ...                    "amount": [120.0, 80.0, 35.5, 500.0]})
    >>> userops.summary_data(orders, "member", "day", "amount", observation_period_end="2026-01-31").to_pylist()[0]
    {'member': 'M1', 'frequency': 1.0, 'recency': 18.0, 'T': 29.0, 'monetary_value': 80.0}
    """
    _tables.check_output(output)
    table, kind = _tables.to_arrow(transactions)
    end = None if observation_period_end is None else wall_seconds(observation_period_end, "observation_period_end")
    native = _native.summary_data(table, customer_id_col, datetime_col, monetary_value_col, end, freq)
    return _out(native, output or kind, index=customer_id_col)


def calibration_and_holdout(
    transactions: Any,
    customer_id_col: str,
    datetime_col: str,
    calibration_period_end: Any,
    observation_period_end: Any,
    monetary_value_col: Optional[str] = None,
    freq: str = "D",
    *,
    output: _tables.Output = None,
) -> Any:
    """Calibration summary (``*_cal`` columns) plus ``frequency_holdout``,
    ``monetary_value_holdout`` and ``duration_holdout`` for customers who bought by the
    calibration end, as ``lifetimes``' ``calibration_and_holdout_data``.

    >>> import datetime as dt, pyarrow as pa, userops
    >>> orders = pa.table({"member": ["M1", "M1", "M2", "M3"],
    ...                    "day": [dt.date(2026, 1, 2), dt.date(2026, 1, 20), dt.date(2026, 1, 5), dt.date(2026, 1, 30)],
    ...                    "amount": [120.0, 80.0, 35.5, 500.0]})
    >>> userops.calibration_and_holdout(orders, "member", "day", "2026-01-15", "2026-01-31").to_pylist()[0]
    {'member': 'M1', 'frequency_cal': 0.0, 'recency_cal': 0.0, 'T_cal': 13.0, 'frequency_holdout': 1.0, 'duration_holdout': 16.0}
    """
    _tables.check_output(output)
    table, kind = _tables.to_arrow(transactions)
    cal = wall_seconds(calibration_period_end, "calibration_period_end")
    end = wall_seconds(observation_period_end, "observation_period_end")
    native = _native.calibration_and_holdout(
        table, customer_id_col, datetime_col, cal, end, amount=monetary_value_col, freq=freq
    )
    return _out(native, output or kind, index=customer_id_col)


def rfm(
    orders: Any,
    customer_col: str,
    datetime_col: str,
    amount_col: str,
    as_of: Any,
    window_days: Optional[_args.UInt32] = None,
    monetary: str = "sum",
    split: str = "mean",
    *,
    output: _tables.Output = None,
    progress: _tables.Progress = None,
) -> Any:
    """RFM per customer with orders in ``(as_of - window_days, as_of]`` (all up to ``as_of``
    without a window).

    The orders' columns are read in Rust without the GIL; while the orders are aggregated,
    ``progress`` is reported in orders (see :mod:`userops._progress`: a tqdm bar by default on
    a terminal, ``False`` for none, or a callable ``f(done, total)``) and Ctrl-C stops the call
    with ``KeyboardInterrupt``.

    Columns: ``recency`` (calendar days from the last order to ``as_of``), ``frequency`` (orders),
    ``monetary`` (sum or mean), ``r_score``/``f_score``/``m_score`` (quantile scores 1-5:
    ``1 + floor(5 * (rank_min - 1) / n)`` with worse values ranked first, ties sharing the lowest
    rank) and ``segment`` (one of the eight classic segments from high/low against the mean or
    median: R high when recency < centre, F and M high when > centre).

    >>> import datetime as dt, pyarrow as pa, userops
    >>> orders = pa.table({"member": ["M1", "M1", "M2", "M3"],
    ...                    "day": [dt.date(2026, 1, 2), dt.date(2026, 1, 20), dt.date(2026, 1, 5), dt.date(2026, 1, 30)],
    ...                    "amount": [120.0, 80.0, 35.5, 500.0]})
    >>> r = userops.rfm(orders, "member", "day", "amount", as_of="2026-01-31")
    >>> r.select(["member", "recency", "frequency", "monetary", "segment"]).to_pylist()[0]
    {'member': 'M1', 'recency': 11, 'frequency': 2, 'monetary': 200.0, 'segment': 'general_value'}
    """
    _tables.check_output(output)
    table, kind = _tables.to_arrow(orders)
    with _progress.reporter(progress, total=table.num_rows, desc="rfm", unit="order") as report:
        native = _native.rfm(
            table, customer_col, datetime_col, amount_col, wall_seconds(as_of, "as_of"),
            window_days=window_days, monetary=monetary, split=split, progress=report,
        )
    return _out(native, output or kind, index=customer_col)


# ---------------------------------------------------------------- BG/NBD and Gamma-Gamma


class BetaGeo:
    """BG/NBD model (Fader, Hardie & Lee 2005) fitted by maximum likelihood, no penalizer.

    Simulated customers over 52 weeks (purchase rate ~ Gamma(2, 10), drop-out ~ Beta(1, 3)):

    >>> import random, userops
    >>> rng = random.Random(3)
    >>> f, rec, T = [], [], []
    >>> for _ in range(500):
    ...     lam, p, t, x, last = rng.gammavariate(2, 0.1), rng.betavariate(1, 3), 0.0, 0, 0.0
    ...     while True:
    ...         t += rng.expovariate(lam)
    ...         if t > 52:
    ...             break
    ...         x, last = x + 1, t
    ...         if rng.random() < p:
    ...             break
    ...     f.append(x); rec.append(last); T.append(52.0)
    >>> m = userops.BetaGeo().fit(f, rec, T)
    >>> {k: round(v, 1) for k, v in sorted(m.params.items())}
    {'a': 1.0, 'alpha': 10.2, 'b': 3.1, 'r': 2.1}
    >>> [round(float(x), 3) for x in m.p_alive([0, 5], [0, 35], [40, 40])]
    [1.0, 0.768]
    >>> round(m.expected_purchases(10), 2)
    1.52
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
        Σ ln L, in the caller's time unit) and ``evaluations`` (gradient evaluations the
        optimizer used). Raises ``InvalidArgument`` on bad input (NaN, negative values,
        recency > T, frequency > 0 with recency 0) and ``NotConverged`` when the fit does not
        converge. The columns may be lists, numpy arrays, pandas / polars Series or Arrow
        arrays; ``weights`` counts identical customers. Returns the model itself.

        >>> import userops
        >>> s = userops.sample_summary()
        >>> bg = userops.BetaGeo().fit(s["frequency"], s["recency"], s["T"])
        >>> {k: round(v, 2) for k, v in bg.params.items()}, round(bg.log_likelihood, 1)
        ({'r': 0.46, 'alpha': 4.74, 'a': 5.03, 'b': 36.37}, -5001.6)
        """
        table = _floats({"frequency": frequency, "recency": recency, "T": T, "weights": weights})
        (r, alpha, a, b), ll, iters = _native.bgnbd_fit(table)
        self.params = {"r": r, "alpha": alpha, "a": a, "b": b}
        self.log_likelihood = ll
        self.evaluations = iters
        return self

    def p_alive(self, frequency: Any, recency: Any, T: Any) -> Any:
        """P(alive) of each customer given their history, as the kind of array ``frequency``
        is (numpy for lists). Raises ``InvalidArgument`` before :meth:`fit`.

        >>> import userops
        >>> s = userops.sample_summary()  # frequency, recency, T (weeks), monetary_value
        >>> bg = userops.BetaGeo().fit(s["frequency"], s["recency"], s["T"])
        >>> [round(float(x), 3) for x in bg.p_alive([0, 5, 5], [0, 50, 10], [52, 52, 52])]
        [1.0, 0.868, 0.005]
        """
        table = _floats({"frequency": frequency, "recency": recency, "T": T})
        return _like(frequency, _native.bgnbd_p_alive(self._p(), table))

    def expected_purchases(self, t: Any, frequency: Any = None, recency: Any = None, T: Any = None) -> Any:
        """Expected purchases in the next ``t`` periods: conditional on each customer's
        (frequency, recency, T) when given (FHL eq. 10), else for a new customer (eq. 9).
        A scalar ``t`` without a history gives a float; otherwise an array of the kind of
        ``frequency`` (or ``t``). Raises ``InvalidArgument`` before :meth:`fit` or with only
        part of a history.

        >>> import userops
        >>> s = userops.sample_summary()  # frequency, recency, T (weeks), monetary_value
        >>> bg = userops.BetaGeo().fit(s["frequency"], s["recency"], s["T"])
        >>> round(bg.expected_purchases(10), 3)
        0.827
        >>> [round(float(x), 2) for x in bg.expected_purchases(10, [0, 5], [0, 50], [52, 52])]
        [0.08, 0.79]
        """
        scalar = isinstance(t, (int, float))
        horizon = _floats({"t": [t] if scalar else t})
        given = [v is not None for v in (frequency, recency, T)]
        if any(given) and not all(given):
            raise InvalidArgument("give frequency, recency and T together", field="frequency")
        history = _floats({"frequency": frequency, "recency": recency, "T": T}) if all(given) else None
        native = _native.bgnbd_expected(self._p(), horizon, history)
        if history is not None:
            return _like(frequency, native)
        if scalar:
            return float(_tables.require_pyarrow().table(native).column(0)[0].as_py())
        return _like(t, native)

    def log_likelihood_at(self, frequency: Any, recency: Any, T: Any) -> float:
        """Σ ln L of data at the fitted parameters (on the fitting data: ``log_likelihood``).

        >>> import userops
        >>> s = userops.sample_summary()  # frequency, recency, T (weeks), monetary_value
        >>> bg = userops.BetaGeo().fit(s["frequency"], s["recency"], s["T"])
        >>> abs(bg.log_likelihood_at(s["frequency"], s["recency"], s["T"]) - bg.log_likelihood) < 1e-6
        True
        >>> round(bg.log_likelihood_at([1], [10], [52]), 3)
        -5.397
        """
        table = _floats({"frequency": frequency, "recency": recency, "T": T})
        return _native.bgnbd_log_likelihood(self._p(), table)


class GammaGamma:
    """Gamma-Gamma spend model (p, q, v) fitted by maximum likelihood on customers with at
    least one repeat purchase; CLV with a fitted :class:`BetaGeo`.

    Simulated spend (each customer's scale ~ Gamma(4, 1/15), each purchase ~ Gamma(3, scale)):

    >>> import random, userops
    >>> rng = random.Random(5)
    >>> freq, mean = [], []
    >>> for _ in range(400):
    ...     nu, x = rng.gammavariate(4.0, 1 / 15.0), rng.randint(1, 6)
    ...     freq.append(x); mean.append(sum(rng.gammavariate(3.0, 1 / nu) for _ in range(x)) / x)
    >>> g = userops.GammaGamma().fit(freq, mean)
    >>> {k: round(v, 1) for k, v in sorted(g.params.items())}
    {'p': 3.1, 'q': 3.8, 'v': 14.8}
    """

    def __init__(self) -> None:
        self.params: Dict[str, float] = {}
        self.log_likelihood: float = float("nan")
        self.evaluations: int = 0

    def _p(self) -> Tuple[float, float, float]:
        if not self.params:
            raise InvalidArgument("the model is not fitted: call fit() first")
        return (self.params["p"], self.params["q"], self.params["v"])

    def fit(self, frequency: Any, monetary_value: Any, weights: Any = None) -> "GammaGamma":
        """Fit on customers with frequency >= 1 and monetary_value > 0 (others raise
        ``InvalidArgument``); ``weights`` counts identical customers. Sets ``params`` (``p``,
        ``q``, ``v``), ``log_likelihood`` and ``evaluations``; raises ``NotConverged`` when the
        fit does not converge. Returns the model itself.

        >>> import userops
        >>> s = userops.sample_summary()  # frequency, recency, T (weeks), monetary_value
        >>> bg = userops.BetaGeo().fit(s["frequency"], s["recency"], s["T"])
        >>> import pyarrow.compute as pc
        >>> rep = s.filter(pc.greater(s["frequency"], 0))  # repeat buyers only
        >>> gg = userops.GammaGamma().fit(rep["frequency"], rep["monetary_value"])
        >>> {k: round(v, 2) for k, v in gg.params.items()}
        {'p': 3.28, 'q': 4.88, 'v': 202.21}
        """
        table = _floats({"frequency": frequency, "monetary_value": monetary_value, "weights": weights})
        (p, q, v), ll, iters = _native.gamma_gamma_fit(table)
        self.params = {"p": p, "q": q, "v": v}
        self.log_likelihood = ll
        self.evaluations = iters
        return self

    def conditional_expected_average_profit(self, frequency: Any, monetary_value: Any) -> Any:
        """E[M | x, m]: each customer's expected mean transaction value, shrunk from their
        observed mean ``monetary_value`` over ``frequency`` repeat purchases towards the
        population's; an array of the kind of ``frequency``.

        >>> import userops
        >>> s = userops.sample_summary()  # frequency, recency, T (weeks), monetary_value
        >>> bg = userops.BetaGeo().fit(s["frequency"], s["recency"], s["T"])
        >>> import pyarrow.compute as pc
        >>> rep = s.filter(pc.greater(s["frequency"], 0))  # repeat buyers only
        >>> gg = userops.GammaGamma().fit(rep["frequency"], rep["monetary_value"])
        >>> [round(float(x), 1) for x in gg.conditional_expected_average_profit([1, 10], [50.0, 50.0])]
        [115.6, 62.8]
        """
        table = _floats({"frequency": frequency, "monetary_value": monetary_value})
        return _like(frequency, _native.gamma_gamma_expected_profit(self._p(), table))

    def customer_lifetime_value(
        self,
        bgnbd: BetaGeo,
        frequency: Any,
        recency: Any,
        T: Any,
        monetary_value: Any,
        time: _args.UInt32 = 12,
        discount_rate: float = 0.01,
        freq: str = "D",
    ) -> Any:
        """Discounted CLV over ``time`` months, as ``lifetimes``' ``customer_lifetime_value``:
        sum over months i of E[M] * (E[Y(i f)] - E[Y((i-1) f)]) / (1 + discount_rate)^i, with
        f = 30 (D), 4.345 (W) or 1 (M) periods per month. Raises ``InvalidArgument`` for
        another ``freq`` or an unfitted model.

        >>> import userops
        >>> s = userops.sample_summary()  # frequency, recency, T (weeks), monetary_value
        >>> bg = userops.BetaGeo().fit(s["frequency"], s["recency"], s["T"])
        >>> import pyarrow.compute as pc
        >>> rep = s.filter(pc.greater(s["frequency"], 0))  # repeat buyers only
        >>> gg = userops.GammaGamma().fit(rep["frequency"], rep["monetary_value"])
        >>> clv = gg.customer_lifetime_value(bg, [5], [50.0], [52.0], [80.0], time=12, freq="W")
        >>> round(float(clv[0]), 1)
        300.8
        """
        factor = {"D": 30.0, "W": 4.345, "M": 1.0}.get(freq)
        if factor is None:
            raise InvalidArgument('freq must be "D", "W" or "M"', field="freq")
        table = _floats({"frequency": frequency, "recency": recency, "T": T, "monetary_value": monetary_value})
        native = _native.clv(self._p(), bgnbd._p(), table, int(time), factor, float(discount_rate))
        return _like(frequency, native)


# ---------------------------------------------------------------- supervised churn


class ChurnModel:
    """A fitted logistic churn model: ``intercept``, ``coefficients`` (by feature),
    ``auc_holdout``, ``n_train``, ``n_holdout``, ``log_likelihood`` (see :func:`churn_scores`).

    >>> spec = {"model": {"features": ["x"], "intercept": -1.0, "coefficients": [0.5],
    ...                   "log_likelihood": -3.2, "iterations": 5},
    ...         "auc_holdout": None, "n_train": 10, "n_holdout": 0}
    >>> ChurnModel(spec)
    ChurnModel(intercept=-1, coefficients={'x': 0.5}, auc_holdout=None)
    """

    def __init__(self, spec: Dict[str, Any]) -> None:
        try:
            m = spec["model"]
            self.features: List[str] = list(m["features"])
            self.intercept: float = m["intercept"]
            self.coefficients: Dict[str, float] = dict(zip(self.features, m["coefficients"]))
            self.log_likelihood: float = m["log_likelihood"]
            self.iterations: int = m["iterations"]
            self.auc_holdout: Optional[float] = spec["auc_holdout"]
            self.n_train: int = spec["n_train"]
            self.n_holdout: int = spec["n_holdout"]
        except (KeyError, TypeError) as e:
            raise InvalidArgument(
                f"invalid argument at `spec`: expected a churn model as churn_scores returns it "
                f"(model, auc_holdout, n_train, n_holdout), missing or malformed: {e}",
                field="spec",
            ) from None

    def __repr__(self) -> str:
        return f"ChurnModel(intercept={self.intercept:.4g}, coefficients={self.coefficients}, auc_holdout={self.auc_holdout})"


def churn_scores(
    table: _tables.TableLike,
    features: Sequence[str],
    label: str,
    holdout: float = 0.3,
    seed: _args.UInt64 = 0,
    low_below: float = 0.3,
    high_from: float = 0.7,
    *,
    output: _tables.Output = None,
) -> Tuple[Any, ChurnModel]:
    """Fit a logistic regression (IRLS, no regularization) of ``label`` (1 = churned next
    period; booleans or 0/1) on ``features``, on the rows outside a seeded holdout, report AUC
    on the holdout, and score every row.

    Returns ``(scores, model)``: ``scores`` is the caller's table kind (or ``output``) with
    ``churn_score``, ``risk`` (``low`` below ``low_below``, ``high`` from ``high_from``, else
    ``mid``) and one ``contrib_<feature>`` column per feature (coefficient x value on the
    log-odds scale).

    >>> import pyarrow as pa, userops
    >>> t = pa.table({"days_quiet": [1.0, 3, 20, 30, 2, 25, 4, 28, 5, 22],
    ...               "churned": [0, 0, 1, 1, 0, 1, 1, 1, 0, 0]})
    >>> scores, model = userops.churn_scores(t, ["days_quiet"], "churned", holdout=0.0)
    >>> model.coefficients["days_quiet"] > 0, scores.column_names
    (True, ['churn_score', 'risk', 'contrib_days_quiet'])
    """
    _tables.check_output(output)
    arrow, kind = _tables.to_arrow(table)
    spec, native = _native.churn_scores(
        arrow, [str(f) for f in features], label, holdout=float(holdout), seed=int(seed),
        low_below=float(low_below), high_from=float(high_from),
    )
    return _tables.from_arrow(native, output or kind), ChurnModel(json.loads(spec))


# ---------------------------------------------------------------- preferences


def preferences(
    behaviours: _tables.TableLike,
    customer_col: str,
    value_col: str,
    datetime_col: Optional[str] = None,
    as_of: Optional[TimeLike] = None,
    lookback_months: _args.UInt32 = 3,
    weight_col: Optional[str] = None,
    top_k: Optional[_args.UInt32] = None,
    *,
    output: _tables.Output = None,
) -> Any:
    """Share of each customer's behaviours per value of ``value_col`` (a category, price band,
    channel, activity type or function) over the ``lookback_months`` calendar months up to
    ``as_of`` (``as_of - months < time <= as_of``; default the last time; all rows when no time
    column is given).

    Returns a long table (customer, value, weight, share, rank), rank 1 = the largest share,
    ties broken by value; with ``top_k`` only ranks <= top_k.

    >>> import pyarrow as pa, userops
    >>> b = pa.table({"member": ["M1", "M1", "M1", "M2"], "category": ["tea", "tea", "cups", "cups"]})
    >>> userops.preferences(b, "member", "category").to_pylist()[0]
    {'member': 'M1', 'category': 'tea', 'weight': 2.0, 'share': 0.6666666666666666, 'rank': 1}
    """
    _tables.check_output(output)
    table, kind = _tables.to_arrow(behaviours)
    at = None if as_of is None else wall_seconds(as_of, "as_of")
    native = _native.preferences(
        table, customer_col, value_col, weight=weight_col, time=datetime_col, as_of=at,
        lookback_months=int(lookback_months), top_k=top_k,
    )
    return _tables.from_arrow(native, output or kind)
