"""Table functions on 1M rows from Python: wall time per call, the same script for any wheel.

    python benches/compare/python_tables.py [--rows 1000000] [--repeat 3]

Times (wall and CPU, `getrusage`) the public functions (lifecycle, active_rate_decomposition, funnel, cohort_retention,
summary_data, rfm, preferences, resolve_identities) on generated pyarrow tables (seeded), best of
``--repeat``, and how long the GIL is held: a Python thread counts ticks while the call runs
(ticks ≈ time the interpreter was free). Run it with the installed wheel; to compare with an
older wheel, install that one into another venv and run the same script there.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import threading
import time
from typing import Any, Callable, Dict, List

import numpy as np
import pyarrow as pa

import userops


def activity(n: int, users: int, rng: np.random.Generator) -> pa.Table:
    start = np.datetime64("2025-01-01T00:00:00", "ms").astype(np.int64)
    t = start + rng.integers(0, 365 * 86_400_000, n)
    return pa.table({
        "user": pa.array(rng.integers(0, users, n), pa.int64()),
        "time": pa.array(t, pa.timestamp("ms", tz="UTC")),
        "event": pa.array(rng.choice(["view", "cart", "buy"], n, p=[0.6, 0.3, 0.1])),
        "amount": pa.array(rng.gamma(2.0, 50.0, n)),
        "category": pa.array(rng.choice(["tea", "cups", "pots", "snacks"], n)),
    })


def identifiers(n: int, rng: np.random.Generator) -> pa.Table:
    rec = rng.integers(0, n // 2, n)
    return pa.table({
        "record_id": pa.array([f"r{x}" for x in rec]),
        "kind": pa.array(np.where(rng.random(n) < 0.5, "phone", "device_id")),
        "value": pa.array([f"138{x % (n // 3):08d}" if k < 0.5 else f"d{x % (n // 4)}"
                           for x, k in zip(rec, rng.random(n))]),
    })


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (what the call cost, whatever the
    machine's load)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(fn: Callable[[], Any], repeat: int) -> Dict[str, float]:
    best, free, cpu = float("inf"), 0.0, float("inf")
    for _ in range(repeat):
        ticks = [0]
        stop = threading.Event()

        def count() -> None:
            while not stop.is_set():
                ticks[0] += 1
                time.sleep(0.001)

        th = threading.Thread(target=count)
        th.start()
        c0, t0 = cpu_seconds(), time.perf_counter()
        fn()
        elapsed = time.perf_counter() - t0
        cpu = min(cpu, cpu_seconds() - c0)  # includes the tick thread's few ms
        stop.set()
        th.join()
        if elapsed < best:
            best, free = elapsed, min(1.0, ticks[0] * 0.001 / elapsed) if elapsed > 0 else 0.0
    return {"seconds": best, "gil_free": free, "cpu": cpu}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(42)
    n = args.rows
    acts = activity(n, max(10, n // 10), rng)
    # The same activity with text user ids ("u123"): the case the old Python-side encoding paid for.
    text = acts.set_column(0, "user", pa.array([f"u{u}" for u in acts.column("user").to_pylist()]))
    ids = identifiers(n, rng)
    as_of = dt.datetime(2026, 1, 1)
    cases: List[Any] = [
        ("lifecycle", lambda: userops.lifecycle(acts, tz=0)),
        ("lifecycle, text ids", lambda: userops.lifecycle(text, tz=0)),
        ("active_rate_decomposition", lambda: userops.active_rate_decomposition(acts, tz=0)),
        ("funnel", lambda: userops.funnel(acts, ["view", "cart", "buy"])),
        ("funnel, text ids", lambda: userops.funnel(text, ["view", "cart", "buy"])),
        ("cohort_retention", lambda: userops.cohort_retention(acts, tz=0)),
        ("summary_data", lambda: userops.summary_data(acts, "user", "time", "amount")),
        ("rfm", lambda: userops.rfm(acts, "user", "time", "amount", as_of=as_of)),
        ("rfm, text ids", lambda: userops.rfm(text, "user", "time", "amount", as_of=as_of)),
        ("preferences", lambda: userops.preferences(acts, "user", "category")),
        ("resolve_identities", lambda: userops.resolve_identities(ids)),
    ]
    print(f"userops {userops.__version__} ({os.path.dirname(userops.__file__)}), {n:,} rows, "
          f"best of {args.repeat}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'function':28s} {'wall s':>8s} {'CPU s':>8s} {'GIL free':>9s}")
    for name, fn in cases:
        m = measure(fn, args.repeat)
        print(f"{name:28s} {m['seconds']:8.3f} {m['cpu']:8.3f} {m['gil_free']:9.0%}", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
