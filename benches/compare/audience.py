"""The audience benchmark's data and expressions in pandas (boolean masks) and DuckDB (SQL).

The table is the same pure function of (user, tag) as `benches/benches/audience.rs`
(splitmix64), so the member counts must equal the ones the Rust bench prints.

    .venv/bin/python benches/compare/audience.py [USERS]      # default 10_000_000

``audience.py generated DATA [--json OUT]`` runs one audience on a ``userops generate`` data set
instead: per-member order count and spend (from ``orders.csv``) as tags, and the demo's "vip"
expression ``n_orders >= 3 AND gmv >= 3000`` evaluated by userops (tags set from the same table,
``Engine.audience``), pandas, polars and DuckDB; the member counts must agree.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pandas as pd

N = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 10_000_000


def splitmix64(x: np.ndarray) -> np.ndarray:
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def build(n: int) -> pd.DataFrame:
    u = np.arange(n, dtype=np.uint64)
    cols = {"user": np.arange(n, dtype=np.int64)}
    with np.errstate(over="ignore"):
        for j in range(50):
            h = splitmix64(u * np.uint64(64) + np.uint64(j))
            name = f"t{j}"
            if j < 20:
                cols[name] = (h % np.uint64(100)) < np.uint64(10 + 4 * j)
            elif j < 35:
                k = 4 + j % 5
                cols[name] = pd.Categorical.from_codes((h % np.uint64(k)).astype(np.int8), [f"v{i}" for i in range(k)])
            elif j < 45:
                if j % 2 == 1:
                    cols[name] = 18.0 + (h % np.uint64(63)).astype(np.float64)
                else:
                    cols[name] = (h % np.uint64(1_000_000)).astype(np.float64) / 100.0
            else:
                days = (h % np.uint64(1096)).astype("timedelta64[D]")
                cols[name] = (np.datetime64("2023-01-01") + days).astype("datetime64[ns]")
    return pd.DataFrame(cols)


def timed(f, repeat: int = 7) -> tuple[str, object]:
    """Median wall time and mean CPU time (all threads of the process) per call, in ms.

    The machine is shared: CPU time is the figure that contention inflates least."""
    out = f()
    runs = []
    cpu0 = time.process_time()
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        runs.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / repeat
    return f"wall {statistics.median(runs) * 1000:.1f} ms, cpu {cpu * 1000:.1f} ms", out


def timed_ms(f, repeat: int = 7) -> tuple[dict, object]:
    """Like `timed`, as numbers: median wall ms and mean CPU ms per call."""
    out = f()
    runs = []
    cpu0 = time.process_time()
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        runs.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu0) / repeat
    return {"wall_ms": statistics.median(runs) * 1000, "cpu_ms": cpu * 1000}, out


def main() -> None:
    t = time.perf_counter()
    df = build(N)
    print(f"built {N} users x 50 tags in {time.perf_counter() - t:.1f} s")
    for label, c in [("bool t1", "t1"), ("enum t20", "t20"), ("number t35", "t35"), ("number t36", "t36"), ("date t45", "t45")]:
        print(f"pandas memory {label}: {df[c].memory_usage(index=False, deep=True) / 2**20:.2f} MiB")
    print(f"pandas memory all 50 tags: {df.drop(columns='user').memory_usage(index=False, deep=True).sum() / 2**20:.1f} MiB")

    exprs = {
        "spend": ("t36", 1000, 5000),
        "age": ("t35", 30, 45),
    }
    for label, (col, lo, hi) in exprs.items():
        def mask() -> pd.Series:
            return (
                (df["t20"] == "v1")
                & df["t21"].isin(["v0", "v2"])
                & df[col].between(lo, hi)
                & ~df["t1"]
                & (df["t2"] | df["t3"])
            )

        ms, m = timed(mask)
        print(f"pandas 5-clause ({label} range): {ms}, members {int(m.sum())}")

    import duckdb

    con = duckdb.connect()
    t = time.perf_counter()
    con.register("df_view", df)
    con.execute("CREATE TABLE t AS SELECT * FROM df_view")
    con.unregister("df_view")
    print(f"duckdb load: {time.perf_counter() - t:.1f} s, threads {con.execute('SELECT current_setting(' + repr('threads') + ')').fetchone()[0]}")
    size = con.execute("SELECT memory_usage FROM pragma_database_size()").fetchone()[0]
    print(f"duckdb memory (whole table incl. user column): {size}")
    for label, (col, lo, hi) in exprs.items():
        where = f"t20 = 'v1' AND t21 IN ('v0', 'v2') AND {col} BETWEEN {lo} AND {hi} AND NOT t1 AND (t2 OR t3)"
        ms, n = timed(lambda: con.execute(f"SELECT count(*) FROM t WHERE {where}").fetchone()[0])
        print(f"duckdb 5-clause ({label} range) count(*): {ms}, members {n}")
        ms, ids = timed(lambda: con.execute(f"SELECT user FROM t WHERE {where}").fetchnumpy()["user"], repeat=3)
        print(f"duckdb 5-clause ({label} range) user ids: {ms}, members {len(ids)}")


def generated(data: str, json_out: str | None) -> None:
    import json
    import os

    import duckdb
    import polars as pl

    import userops

    orders = pd.read_csv(os.path.join(data, "orders.csv"), usecols=["user", "amount"], dtype={"user": str})
    per = orders.groupby("user", sort=True).agg(n_orders=("amount", "size"), gmv=("amount", "sum")).reset_index()
    engine = userops.Engine()
    t = time.perf_counter()
    engine.set_tags(per, user="user", kind="member_no")
    load_s = time.perf_counter() - t
    expr = "n_orders >= 3 AND gmv >= 3000"
    u_ms, u = timed_ms(lambda: engine.audience(expr))
    p_ms, p = timed_ms(lambda: per["user"][(per["n_orders"] >= 3) & (per["gmv"] >= 3000)].to_numpy())
    pl_df = pl.from_pandas(per)
    l_ms, l = timed_ms(lambda: pl_df.filter((pl.col("n_orders") >= 3) & (pl.col("gmv") >= 3000))["user"])
    con = duckdb.connect()
    con.register("per_view", per)
    con.execute("CREATE TABLE per AS SELECT * FROM per_view")
    d_ms, d = timed_ms(lambda: con.execute("SELECT \"user\" FROM per WHERE n_orders >= 3 AND gmv >= 3000").fetchnumpy()["user"])
    sizes = {"userops": len(u), "pandas": len(p), "polars": len(l), "duckdb": len(d)}
    if len(set(sizes.values())) != 1:
        raise SystemExit(f"audience sizes disagree: {sizes}")
    out = {"members": len(p), "tagged_users": len(per), "userops_load_s": load_s,
           "userops": u_ms, "pandas": p_ms, "polars": l_ms, "duckdb": d_ms,
           "versions": {"pandas": pd.__version__, "polars": pl.__version__, "duckdb": duckdb.__version__}}
    print(json.dumps(out))
    if json_out:
        with open(json_out, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "generated":
        generated(sys.argv[2], sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--json" else None)
    else:
        main()
