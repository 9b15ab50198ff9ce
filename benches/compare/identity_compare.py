"""networkx and igraph connected components on the OneID benchmark data, end to end from the
raw strings in the CSV (read, build the graph, components, one component id per row).

Edges are the same evidence userops records: each record's first identifier to each other one.

    python identity_compare.py networkx|igraph ROWS.csv [USEROPS_ONEIDS]

With USEROPS_ONEIDS (one OneID per row from `identity_scale ... none ... OUT`), checks that the
partition of rows is the same. Prints one JSON line; run under `/usr/bin/time -v` for peak memory.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pandas as pd


def load(path: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"record_id": str, "kind": str, "value": str, "source": str})


def star_edges(codes: np.ndarray, records: pd.Series) -> tuple:
    # First identifier of each record to every identifier of the record.
    first = pd.Series(codes).groupby(records.values, sort=False).transform("first").to_numpy()
    keep = first != codes
    return first[keep], codes[keep]


def run_igraph(df: pd.DataFrame) -> np.ndarray:
    import igraph as ig

    key = df["kind"].str.cat(df["value"], sep=":")
    codes, uniques = pd.factorize(key)
    a, b = star_edges(codes, df["record_id"])
    g = ig.Graph(n=len(uniques), edges=np.column_stack([a, b]).tolist())
    membership = np.asarray(g.connected_components().membership)
    return membership[codes]


def run_networkx(df: pd.DataFrame) -> np.ndarray:
    import networkx as nx

    key = (df["kind"] + ":" + df["value"]).to_numpy()
    g = nx.Graph()
    g.add_nodes_from(key)
    first = df.groupby("record_id", sort=False)["value"].transform("first")
    firstkey = (df.groupby("record_id", sort=False)["kind"].transform("first") + ":" + first).to_numpy()
    g.add_edges_from((u, v) for u, v in zip(firstkey, key) if u != v)
    comp = {}
    for i, c in enumerate(nx.connected_components(g)):
        for n in c:
            comp[n] = i
    return np.fromiter((comp[k] for k in key), dtype=np.int64, count=len(key))


def same_partition(x: np.ndarray, y: np.ndarray) -> bool:
    pairs = pd.DataFrame({"x": x, "y": y}).drop_duplicates()
    return bool(pairs["x"].is_unique and pairs["y"].is_unique)


if __name__ == "__main__":
    which, path = sys.argv[1], sys.argv[2]
    t0 = time.perf_counter()
    c0 = time.process_time()
    df = load(path)
    t_read = time.perf_counter() - t0
    comp = run_igraph(df) if which == "igraph" else run_networkx(df)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    out = {
        "tool": which,
        "rows": len(df),
        "read_s": round(t_read, 3),
        "total_wall_s": round(wall, 3),
        "total_cpu_s": round(cpu, 3),
        "components": int(len(np.unique(comp))),
    }
    if len(sys.argv) > 3:
        ours = np.loadtxt(sys.argv[3], dtype=np.int64)
        out["same_partition_as_userops"] = same_partition(comp, ours)
    print(json.dumps(out))
