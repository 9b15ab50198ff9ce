"""Throughput of Engine.ingest_table against a Python loop over Engine.ingest.

Run with a release build of the wheel, e.g.:

    python3 -m venv /tmp/uo && /tmp/uo/bin/pip install ./bindings/python pyarrow pandas polars
    /tmp/uo/bin/python benches/compare/ingest_table.py --rows 200000

Prints one line per path: rows, seconds (best of --repeat fresh engines), rows per second.
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Dict, List

import pyarrow as pa

import userops

SOURCE = {"platform": "app", "program": "brand-a"}


def columns(n: int) -> Dict[str, List[Any]]:
    kinds = ["register", "activity", "order", "order"]
    return {
        "kind": [kinds[i % 4] for i in range(n)],
        "key": [f"k{i}" for i in range(n)],
        "time": [f"2026-01-{1 + i % 28:02d}T10:00:00+08:00" for i in range(n)],
        "member_no": [f"M{i % (n // 3 + 1)}" for i in range(n)],
        "type": ["login" if i % 4 == 1 else None for i in range(n)],
        "order_id": [f"o{i}" if i % 4 >= 2 else None for i in range(n)],
        "amount": [f"{i % 500}.50" if i % 4 >= 2 else None for i in range(n)],
    }


def events(cols: Dict[str, List[Any]]) -> List[Dict[str, Any]]:
    out = []
    for i in range(len(cols["key"])):
        ev: Dict[str, Any] = {"kind": cols["kind"][i], "key": cols["key"][i], "time": cols["time"][i],
                              "source": SOURCE, "user": {"kind": "member_no", "value": cols["member_no"][i]}}
        for f in ("type", "order_id", "amount"):
            if cols[f][i] is not None:
                ev[f] = cols[f][i]
        out.append(ev)
    return out


def best(repeat: int, run: Callable[[userops.Engine], None]) -> float:
    times = []
    for _ in range(repeat):
        engine = userops.Engine()
        t0 = time.perf_counter()
        run(engine)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cols = columns(args.rows)
    arrow = pa.table(cols)
    evs = events(cols)
    def loop(e: userops.Engine) -> None:
        for ev in evs:
            e.ingest(ev)

    def table(t: Any, **kw: Any) -> Callable[[userops.Engine], None]:
        def run(e: userops.Engine) -> None:
            e.ingest_table(t, values=SOURCE, progress=False, **kw)

        return run

    paths: Dict[str, Callable[[userops.Engine], None]] = {
        "ingest() loop over dicts": loop,
        "ingest_table(pyarrow)": table(arrow),
        "ingest_table(pyarrow, skip)": table(arrow, errors="skip"),
    }
    try:
        import pandas as pd  # noqa: F401

        df = arrow.to_pandas()
        paths["ingest_table(pandas)"] = table(df)
    except ImportError:
        pass
    try:
        import polars as pl

        pdf = pl.from_arrow(arrow)
        paths["ingest_table(polars)"] = table(pdf)
    except ImportError:
        pass
    for name, run in paths.items():
        s = best(args.repeat, run)
        print(f"{name:28s} rows={args.rows:>8d}  {s:8.3f} s  {args.rows / s:>10,.0f} rows/s")


if __name__ == "__main__":
    main()
