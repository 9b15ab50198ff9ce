"""Lifecycle stages + transitions + decomposition: userops vs polars vs DuckDB on the same data.

Each engine runs in its own process (peak RSS from /usr/bin/time; it includes the loaded input
columns, 16 bytes per event, for all three), prints its timings and its transition counts
(month, stage in m-1, stage in m, users), and the driver checks that all three agree.

    python benches/compare/lifecycle_gen.py /tmp/lc --events 10000000 --users 500000
    cargo build --release -p userops-benches --example lifecycle_rust
    python benches/compare/lifecycle_compare.py /tmp/lc [userops,polars,duckdb]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

STAGE_SQL = """
WITH ev AS (
  SELECT "user" AS u,
         CAST(floor((t + 28800000) / 86400000) AS INTEGER) AS d
  FROM events
), act AS (
  SELECT DISTINCT u, year(DATE '1970-01-01' + d) * 12 + month(DATE '1970-01-01' + d) - 1 AS m FROM ev
), reg AS (
  SELECT u, min(m) AS reg FROM act GROUP BY u
), grid AS (
  SELECT r.u, r.reg, unnest(range(r.reg, (SELECT max(m) FROM act) + 1)) AS m FROM reg r
), flag AS (
  SELECT g.u, g.reg, g.m, (a.u IS NOT NULL) AS act FROM grid g LEFT JOIN act a ON a.u = g.u AND a.m = g.m
), la AS (
  SELECT *, max(CASE WHEN act THEN m END) OVER (PARTITION BY u ORDER BY m
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_last FROM flag
), st AS (
  SELECT u, m, CASE
    WHEN m = reg THEN 'new'
    WHEN act THEN CASE WHEN m = reg + 1 THEN 'last_period_new'
                       WHEN m - prev_last = 1 THEN 'active'
                       WHEN m - prev_last - 1 < 2 THEN 'awakened'
                       ELSE 'returned' END
    WHEN m - prev_last < 2 THEN 'dormant'
    ELSE 'churned' END AS stage
  FROM la
), tr AS (
  SELECT m, lag(stage) OVER (PARTITION BY u ORDER BY m) AS prev, stage FROM st
)
SELECT m, prev, stage, count(*) AS n FROM tr GROUP BY ALL
"""


def label(m: int) -> str:
    return f"{m // 12:04d}-{m % 12 + 1:02d}"


def load(data: str):
    import numpy as np

    users = np.fromfile(os.path.join(data, "users.u64"), dtype=np.uint64)
    times = np.fromfile(os.path.join(data, "times.i64"), dtype=np.int64)
    return users, times


def run_polars(data: str) -> dict:
    import polars as pl

    users, times = load(data)
    df = pl.DataFrame({"user": users, "t": times})
    t0 = time.perf_counter()
    day = ((pl.col("t") + 28_800_000) // 86_400_000).cast(pl.Int32).cast(pl.Date)
    act = df.lazy().select("user", (day.dt.year() * 12 + day.dt.month() - 1).alias("m")).unique()
    act = act.collect()
    last = act["m"].max()
    reg = act.group_by("user").agg(pl.col("m").min().alias("reg"))
    grid = (
        reg.lazy()
        .with_columns(pl.int_ranges("reg", last + 1, dtype=pl.Int32).alias("m"))
        .explode("m")
        .join(act.lazy().with_columns(pl.lit(True).alias("act")), on=["user", "m"], how="left")
        .with_columns(pl.col("act").fill_null(False))
        .sort("user", "m")
        .with_columns(
            pl.when(pl.col("act")).then(pl.col("m")).otherwise(None)
            .forward_fill().shift(1).over("user").alias("prev_last")
        )
        .with_columns(
            pl.when(pl.col("m") == pl.col("reg")).then(pl.lit("new"))
            .when(pl.col("act")).then(
                pl.when(pl.col("m") == pl.col("reg") + 1).then(pl.lit("last_period_new"))
                .when(pl.col("m") - pl.col("prev_last") == 1).then(pl.lit("active"))
                .when(pl.col("m") - pl.col("prev_last") - 1 < 2).then(pl.lit("awakened"))
                .otherwise(pl.lit("returned"))
            )
            .when(pl.col("m") - pl.col("prev_last") < 2).then(pl.lit("dormant"))
            .otherwise(pl.lit("churned"))
            .alias("stage")
        )
        .with_columns(pl.col("stage").shift(1).over("user").alias("prev"))
        .group_by("m", "prev", "stage")
        .len()
    )
    out = grid.collect()
    t1 = time.perf_counter()
    rows = [[label(m), p, s, n] for m, p, s, n in out.iter_rows()]
    return {"engine": f"polars {pl.__version__}", "events": len(users), "seconds": t1 - t0, "transitions": rows}


def run_duckdb(data: str) -> dict:
    import duckdb
    import pyarrow as pa

    users, times = load(data)
    events = pa.table({"user": users, "t": times})  # noqa: F841  (scanned by name)
    con = duckdb.connect()
    t0 = time.perf_counter()
    out = con.execute(STAGE_SQL).fetchall()
    t1 = time.perf_counter()
    rows = [[label(m), p, s, n] for m, p, s, n in out]
    return {"engine": f"duckdb {duckdb.__version__}", "events": len(users), "seconds": t1 - t0, "transitions": rows}


def measured(cmd: list[str]) -> tuple[dict, float]:
    """Run cmd under /usr/bin/time; its JSON output and peak RSS in MiB."""
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd} failed:\n{p.stderr}")
    rss = [l for l in p.stderr.splitlines() if l.startswith("MAXRSS")][-1]
    return json.loads(p.stdout.strip().splitlines()[-1]), int(rss.split()[1]) / 1024


def norm(rows) -> dict:
    return {(m, p, s): n for m, p, s, n in rows}


def main() -> None:
    if len(sys.argv) >= 3 and sys.argv[1] in ("polars", "duckdb"):
        out = run_polars(sys.argv[2]) if sys.argv[1] == "polars" else run_duckdb(sys.argv[2])
        print(json.dumps(out))
        return
    args = sys.argv[1:]
    json_out = None
    if "--json" in args:
        i = args.index("--json")
        json_out = args[i + 1]
        del args[i : i + 2]
    data = args[0]
    engines = (args[1] if len(args) > 1 else "userops,polars,duckdb").split(",")
    if engines[0] != "userops":
        sys.exit("userops comes first: the others are checked against it")
    rust_bin = os.path.join(ROOT, "target", "release", "examples", "lifecycle_rust")
    cmds = {"userops": [rust_bin, data], "polars": [sys.executable, __file__, "polars", data],
            "duckdb": [sys.executable, __file__, "duckdb", data]}
    results = []
    for cmd in (cmds[e] for e in engines):
        out, rss = measured(cmd)
        results.append((out, rss))
        print(f"{out['engine']:<16} {out['seconds']:8.2f} s  peak RSS {rss:8.0f} MiB", flush=True)
    ref = norm(results[0][0]["transitions"])
    for out, _ in results[1:]:
        if norm(out["transitions"]) != ref:
            sys.exit(f"{out['engine']} disagrees with userops")
    print(f"{', '.join(engines)} agree on {len(ref)} (month, from, to) transition counts")
    if json_out:
        with open(json_out, "w") as f:
            json.dump([{"engine": o["engine"], "events": o["events"], "seconds": o["seconds"], "rss_mib": rss}
                       for o, rss in results], f)


if __name__ == "__main__":
    main()
