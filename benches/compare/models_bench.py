"""Benchmark the user models against their Python peers (run from the repository root):

    python benches/compare/models_bench.py bgnbd 2000 100000 1000000
    python benches/compare/models_bench.py rfm 10000000

``bgnbd``: fits BG/NBD with ``userops.BetaGeo`` and ``lifetimes.BetaGeoFitter`` (penalizer 0)
on the same simulated customers (r=0.25, alpha=4, a=0.8, b=2.5, T uniform on [1, 52]) and
prints wall time, optimizer work (userops: gradient evaluations; lifetimes: scipy BFGS
iterations and function evaluations) and the largest relative parameter difference.

``rfm``: RFM (recency days, order count, amount sum, 1-5 quantile scores with min-rank ties,
mean split into the eight segments) over N simulated orders of N/10 customers with
``userops.rfm`` on a pyarrow table, pandas and polars; prints wall time of each (input
already in memory in each library's own format) and checks that the three agree.

``generated DATA [--json OUT]``: both on a ``userops generate`` data set (``orders.csv``, users
by member number, as of 2027-01-01 +08:00): RFM as above, and BG/NBD fitted by userops and
lifetimes on the same daily repeat-purchase summary (computed once, by lifetimes'
``summary_data_from_transaction_data``); prints one JSON line.
"""

from __future__ import annotations

import resource
import sys
import time
from typing import Any, Callable, Dict, Tuple

import numpy as np


def timed(fn: Callable[[], Any]) -> Tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds of this process: user + system, all threads)."""
    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    w, c = time.perf_counter(), cpu()
    out = fn()
    return out, time.perf_counter() - w, cpu() - c


def simulate_bgnbd(n: int, seed: int = 0) -> Dict[str, Any]:
    rng = np.random.default_rng(seed)
    r, alpha, a, b = 0.25, 4.0, 0.8, 2.5
    T = rng.uniform(1.0, 52.0, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    t = np.zeros(n)
    x = np.zeros(n)
    last = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1.0 / np.maximum(lam[idx], 1e-12))
        bought = t[idx] <= T[idx]
        alive[idx[~bought]] = False
        got = idx[bought]
        x[got] += 1
        last[got] = t[got]
        # The BG/NBD story: after each purchase the customer drops out with probability p.
        alive[got[rng.uniform(size=got.size) < p[got]]] = False
    return {"frequency": x, "recency": last, "T": T}


def bench_bgnbd(sizes: list[int]) -> None:
    import lifetimes.fitters as lf
    from lifetimes import BetaGeoFitter

    import userops

    captured: Dict[str, Any] = {}
    real_minimize = lf.minimize

    def spy(*args: Any, **kwargs: Any) -> Any:
        out = real_minimize(*args, **kwargs)
        captured["nit"], captured["nfev"] = out.nit, out.nfev
        return out

    lf.minimize = spy
    print("| customers | userops wall / CPU (s) | userops gradient evals | lifetimes wall / CPU (s) | lifetimes BFGS iters / fevals | max rel. param diff | LL diff per customer |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        d = simulate_bgnbd(n)
        m, uw, uc = timed(lambda: userops.BetaGeo().fit(d["frequency"], d["recency"], d["T"]))
        lt, lw, lc = timed(lambda: BetaGeoFitter(penalizer_coef=0.0).fit(d["frequency"], d["recency"], d["T"]))
        diff = max(abs(m.params[k] - lt.params_[k]) / abs(lt.params_[k]) for k in ["r", "alpha", "a", "b"])
        lt_ll = -BetaGeoFitter._negative_log_likelihood(
            np.log(lt.params_.to_numpy()), d["frequency"], d["recency"], d["T"], np.ones(n), 0.0
        ) * n
        print(
            f"| {n:,} | {uw:.3f} / {uc:.3f} | {m.evaluations} | {lw:.3f} / {lc:.3f} | {captured['nit']} / {captured['nfev']} "
            f"| {diff:.1e} | {abs(m.log_likelihood - lt_ll) / n:.1e} |",
            flush=True,
        )


def bench_rfm(n: int) -> None:
    """One size; prints a row of | orders / customers | userops | pandas | polars | agreement |
    with wall / CPU seconds."""
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    import userops

    rng = np.random.default_rng(1)
    customers = max(n // 10, 1)
    start = np.datetime64("2025-01-01T00:00:00", "s")
    cust = rng.integers(0, customers, n)
    secs = rng.integers(0, 365 * 86400, n)
    amount = np.round(rng.gamma(2.0, 50.0, n), 2)
    times = (start + secs.astype("timedelta64[s]")).astype("datetime64[us]")
    as_of = np.datetime64("2025-12-31T23:59:59", "s")
    table = pa.table({"user": cust, "time": times, "amount": amount})
    pdf = pd.DataFrame({"user": cust, "time": times, "amount": amount})
    pldf = pl.DataFrame({"user": cust, "time": times, "amount": amount})

    def score(s: Any) -> Any:
        return (1 + (5 * (s.rank(method="min") - 1)) // len(s)).astype(int)

    ours, uw, uc = timed(lambda: userops.rfm(table, "user", "time", "amount", as_of=as_of))
    g, pw, pc_ = timed(lambda: pandas_rfm(pdf, as_of, score))
    pq, lw, lc = timed(lambda: polars_rfm(pldf, as_of))
    report(n, customers, ours, g, pq, (uw, uc), (pw, pc_), (lw, lc))


def pandas_rfm(pdf: Any, as_of: Any, score: Any) -> Any:
    import pandas as pd

    g = pdf.groupby("user").agg(last=("time", "max"), frequency=("amount", "size"), monetary=("amount", "sum"))
    g["recency"] = (pd.Timestamp(as_of).normalize() - g["last"].dt.normalize()).dt.days
    g["r_score"] = score(-g["recency"])
    g["f_score"] = score(g["frequency"])
    g["m_score"] = score(g["monetary"])
    hi_r = g["recency"] < g["recency"].mean()
    hi_f = g["frequency"] > g["frequency"].mean()
    hi_m = g["monetary"] > g["monetary"].mean()
    g["segment"] = (
        np.where(hi_m, "important_", "general_")
        + np.select([hi_r & hi_f, hi_r & ~hi_f, ~hi_r & hi_f], ["value", "develop", "keep"], "win_back")
    )
    return g


def polars_rfm(pldf: Any, as_of: Any) -> Any:
    import polars as pl

    day = pl.lit(as_of.astype("datetime64[D]").astype(object))
    return (
        pldf.lazy()
        .group_by("user")
        .agg(pl.col("time").max().alias("last"), pl.len().alias("frequency"), pl.col("amount").sum().alias("monetary"))
        .with_columns((day - pl.col("last").dt.date()).dt.total_days().alias("recency"))
        .with_columns(
            (1 + (5 * (pl.col(c).rank("min") - 1)) // pl.len()).alias(n_)
            for c, n_ in [("frequency", "f_score"), ("monetary", "m_score")]
        )
        .with_columns((1 + (5 * ((-pl.col("recency")).rank("min") - 1)) // pl.len()).alias("r_score"))
        .with_columns(
            (
                pl.when(pl.col("monetary") > pl.col("monetary").mean()).then(pl.lit("important_")).otherwise(pl.lit("general_"))
                + pl.when((pl.col("recency") < pl.col("recency").mean()) & (pl.col("frequency") > pl.col("frequency").mean()))
            .then(pl.lit("value"))
            .when(pl.col("recency") < pl.col("recency").mean())
            .then(pl.lit("develop"))
            .when(pl.col("frequency") > pl.col("frequency").mean())
            .then(pl.lit("keep"))
                .otherwise(pl.lit("win_back"))
            ).alias("segment")
        )
        .sort("user")
        .collect()
    )


def report(n: int, customers: int, ours: Any, g: Any, pq: Any, u: Tuple[float, float], p: Tuple[float, float], l: Tuple[float, float]) -> None:
    ours_pd = ours.to_pandas()
    # Sums of floats in another order can differ in the last bit and break a tie the other
    # way, so score and segment agreement is reported as a count of differing customers.
    same = (ours_pd["recency"].to_numpy() == g["recency"].to_numpy()).all() and (
        ours_pd["frequency"].to_numpy() == g["frequency"].to_numpy()
    ).all()
    diff_pd = int((ours_pd["m_score"].to_numpy() != g["m_score"].to_numpy()).sum()) + int(
        (ours_pd["segment"].to_numpy() != g["segment"].to_numpy()).sum()
    )
    diff_pl = int((ours_pd["segment"].to_numpy() != pq["segment"].to_numpy()).sum())
    agree = f"R,F identical: {same}; M-score/segment differences vs pandas {diff_pd}, segment vs polars {diff_pl}"
    print(
        f"| {n:,} / {customers:,} | {u[0]:.2f} / {u[1]:.2f} | {p[0]:.2f} / {p[1]:.2f} | {l[0]:.2f} / {l[1]:.2f} | {agree} |",
        flush=True,
    )


def bench_generated(data: str, json_out: Any) -> None:
    import json
    import os

    import lifetimes
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    from lifetimes import BetaGeoFitter
    from lifetimes.utils import summary_data_from_transaction_data

    import userops

    orders = pd.read_csv(os.path.join(data, "orders.csv"), usecols=["user", "time", "amount"], dtype={"user": str})
    cust = orders["user"].str.slice(1).astype(np.int64).to_numpy()
    # Business time (+08:00) wall clock, as the engine's models count days.
    local = pd.to_datetime(orders["time"], utc=True, format="ISO8601") + pd.Timedelta(hours=8)
    times = local.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
    amount = orders["amount"].to_numpy(dtype=np.float64)
    as_of = np.datetime64("2027-01-01T00:00:00", "s")
    table = pa.table({"user": cust, "time": times, "amount": amount})
    pdf = pd.DataFrame({"user": cust, "time": times, "amount": amount})
    pldf = pl.DataFrame({"user": cust, "time": times, "amount": amount})

    def score(s: Any) -> Any:
        return (1 + (5 * (s.rank(method="min") - 1)) // len(s)).astype(int)

    ours, uw, uc = timed(lambda: userops.rfm(table, "user", "time", "amount", as_of=as_of))
    g, pw, pc_ = timed(lambda: pandas_rfm(pdf, as_of, score))
    pq, lw, lc = timed(lambda: polars_rfm(pldf, as_of))
    report(len(cust), len(g), ours, g, pq, (uw, uc), (pw, pc_), (lw, lc))
    rfm_same = bool((ours.to_pandas()["recency"].to_numpy() == g["recency"].to_numpy()).all())

    summary = summary_data_from_transaction_data(
        pdf, "user", "time", freq="D", observation_period_end=pd.Timestamp(as_of)
    )
    f, r, T = (summary[c].to_numpy(dtype=np.float64) for c in ("frequency", "recency", "T"))
    keys = ["r", "alpha", "a", "b"]
    from lifetimes.utils import ConvergenceError

    bgnbd: Dict[str, Any] = {}
    try:
        lt, tw, tc = timed(lambda: BetaGeoFitter(penalizer_coef=0.0).fit(f, r, T))
        bgnbd.update(lifetimes=[tw, tc], lifetimes_params={k: float(lt.params_[k]) for k in keys})
    except ConvergenceError as e:
        bgnbd.update(lifetimes=None, lifetimes_error=" ".join(str(e).split()))
    try:
        m, bw, bc = timed(lambda: userops.BetaGeo().fit(f, r, T))
        bgnbd.update(userops=[bw, bc], converged=True, params={k: float(m.params[k]) for k in keys})
        if bgnbd["lifetimes"] is not None:
            lp = bgnbd["lifetimes_params"]
            bgnbd["max_rel_param_diff"] = max(abs(m.params[k] - lp[k]) / abs(lp[k]) for k in keys)
    except userops.NotConverged as e:
        # No interior maximum on this data (the likelihood keeps rising towards a boundary):
        # userops says so instead of returning the last iterate; lifetimes returns where scipy stopped.
        bgnbd.update(userops=None, converged=False, error=str(e))
    out = {
        "orders": len(cust), "customers": len(g),
        "rfm": {"userops": [uw, uc], "pandas": [pw, pc_], "polars": [lw, lc], "recency_identical": rfm_same},
        "bgnbd": bgnbd,
        "versions": {"pandas": pd.__version__, "polars": pl.__version__, "lifetimes": lifetimes.__version__,
                     "numpy": np.__version__},
    }
    print(json.dumps(out))
    if json_out:
        with open(json_out, "w") as fh:
            json.dump(out, fh)


if __name__ == "__main__":
    what, *args = sys.argv[1:]
    if what == "generated":
        bench_generated(args[0], args[2] if len(args) > 2 and args[1] == "--json" else None)
    elif what == "bgnbd":
        bench_bgnbd([int(a) for a in args])
    elif what == "rfm":
        for a in args:
            bench_rfm(int(a))
    else:
        raise SystemExit(__doc__)
