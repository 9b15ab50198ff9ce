"""The audience benchmark's data and expressions in pandas (boolean masks) and DuckDB (SQL).

The table is the same pure function of (user, tag) as `benches/benches/audience.rs`
(splitmix64), so the member counts must equal the ones the Rust bench prints.

    .venv/bin/python benches/compare/audience.py [USERS]      # default 10_000_000
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np
import pandas as pd

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000


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


if __name__ == "__main__":
    main()
