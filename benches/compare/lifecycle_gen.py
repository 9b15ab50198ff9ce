"""Generate the lifecycle benchmark's activity table as raw little-endian columns.

users.u64 (uint64) and times.i64 (int64, ms since the epoch, UTC), rows shuffled. Users
register (first activity) in a random month of the 24 and then are active each month with a
per-user propensity, so every stage occurs.

    python benches/compare/lifecycle_gen.py OUT_DIR --events 100000000 --users 5000000 --months 24

With ``--from-generated DATA`` the columns are instead read from a ``userops generate`` data set
(``registrations.csv`` and ``activities.csv``: a registration counts as activity), users numbered
by their member number, so the comparison runs on the demo's own data.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

MONTH0 = (2024, 1)  # first month, in +08:00


def month_start_ms(k: np.ndarray) -> np.ndarray:
    y = MONTH0[0] + (MONTH0[1] - 1 + k) // 12
    m = (MONTH0[1] - 1 + k) % 12 + 1
    d = np.array([np.datetime64(f"{yy:04d}-{mm:02d}-01", "D") for yy, mm in zip(y, m)])
    return d.astype("datetime64[ms]").astype(np.int64) - 8 * 3600 * 1000


def from_generated(data: str, out: str) -> None:
    import pandas as pd

    os.makedirs(out, exist_ok=True)
    frames = [
        pd.read_csv(os.path.join(data, name), usecols=["user", "time"], dtype={"user": str, "time": str})
        for name in ("registrations.csv", "activities.csv")
    ]
    df = pd.concat(frames, ignore_index=True)
    users = df["user"].str.slice(1).astype(np.uint64).to_numpy()
    # Milliseconds whatever unit pandas parses to (pandas 3 parses these strings to microseconds,
    # so dividing the raw integers by 10^6 put every event in January 1970).
    times = pd.to_datetime(df["time"], utc=True, format="ISO8601").dt.as_unit("ms").astype("int64").to_numpy()
    users.tofile(os.path.join(out, "users.u64"))
    times.astype(np.int64).tofile(os.path.join(out, "times.i64"))
    print(f"{len(users)} events of {len(np.unique(users))} users from {data} -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--users", type=int, default=500_000)
    ap.add_argument("--months", type=int, default=24)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--from-generated", metavar="DATA", default=None)
    a = ap.parse_args()
    if a.from_generated:
        from_generated(a.from_generated, a.out)
        return
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    starts = month_start_ms(np.arange(a.months + 1))
    reg = rng.integers(0, a.months, a.users)
    propensity = rng.beta(2.0, 1.2, a.users)
    active = rng.random((a.users, a.months)) < propensity[:, None]
    cols = np.arange(a.months)[None, :]
    active &= cols >= reg[:, None]
    active[np.arange(a.users), reg] = True
    cells_u, cells_m = np.nonzero(active)
    lam = a.events / len(cells_u)
    per = rng.poisson(lam - 1, len(cells_u)) + 1 if lam > 1 else np.ones(len(cells_u), np.int64)
    users = np.repeat(cells_u.astype(np.uint64), per)
    months = np.repeat(cells_m, per)
    del cells_u, cells_m, per, active
    span = (starts[1:] - starts[:-1])[months]
    times = starts[months] + (rng.random(len(months)) * span).astype(np.int64)
    del months, span
    perm = rng.permutation(len(users))
    users[:] = users[perm]
    times[:] = times[perm]
    del perm
    users.tofile(os.path.join(a.out, "users.u64"))
    times.tofile(os.path.join(a.out, "times.i64"))
    print(f"{len(users)} events, {a.users} users, {a.months} months -> {a.out}")


if __name__ == "__main__":
    main()
