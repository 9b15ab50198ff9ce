"""Check `userops export events` against the store it was made from, with other readers.

Usage: python scripts/check_export.py STORE_DB EXPORT_DIR

The expected figures come from the store's journal itself, read with sqlite3 and json (not
with userops): every event of an `ingest` or `ingest_batch` record (records an erasure
redacted hold none), counted by kind, with the sum of the amounts per kind and the set of
idempotency keys. The export is then read with pyarrow and with DuckDB, and each must give
the same row count, per-kind counts, per-kind amount sums (exact decimals), keys and time
range. Exits non-zero with the differences on failure.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import sqlite3
import sys
from collections import Counter
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
Figures = tuple[int, dict[str, int], dict[str, Decimal], set[str], tuple[int, int]]


def millis(text: str) -> int:
    """RFC 3339 time (any zone) as milliseconds since the epoch, UTC."""
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (t - EPOCH) // dt.timedelta(milliseconds=1)


def from_journal(db: pathlib.Path) -> Figures:
    """The figures of the events the journal holds."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    kinds: Counter[str] = Counter()
    sums: dict[str, Decimal] = {}
    keys: set[str] = set()
    lo, hi = 2**63, -(2**63)
    rows = 0
    for method, command in conn.execute(
        "SELECT method, command FROM journal WHERE method IN ('ingest', 'ingest_batch') ORDER BY seq"
    ):
        args = json.loads(command)["args"]
        events = [args["event"]] if method == "ingest" else args["events"]
        for e in events:
            rows += 1
            kinds[e["kind"]] += 1
            keys.add(e["key"])
            if "amount" in e:
                sums[e["kind"]] = sums.get(e["kind"], Decimal(0)) + Decimal(e["amount"])
            t = millis(e["time"])
            lo, hi = min(lo, t), max(hi, t)
    conn.close()
    return rows, dict(kinds), sums, keys, (lo, hi)


def with_pyarrow(out: pathlib.Path) -> Figures:
    """The figures of the export, read with pyarrow."""
    table = pq.read_table(sorted(str(p) for p in out.glob("*.parquet")))
    assert table.schema.field("time").type == pa.timestamp("ms", tz="UTC"), table.schema
    assert pa.types.is_decimal(table.schema.field("amount").type), table.schema
    assert pa.types.is_dictionary(table.schema.field("kind").type), table.schema
    kinds = [str(k) for k in table.column("kind").to_pylist()]
    amounts = table.column("amount").to_pylist()
    sums: dict[str, Decimal] = {}
    for k, a in zip(kinds, amounts):
        if a is not None:
            sums[k] = sums.get(k, Decimal(0)) + a
    times = pc.cast(table.column("time"), pa.int64())
    span = (pc.min(times).as_py(), pc.max(times).as_py())
    keys = {str(k) for k in table.column("key").to_pylist()}
    return table.num_rows, dict(Counter(kinds)), sums, keys, span


def with_duckdb(out: pathlib.Path) -> Figures:
    """The figures of the export, read with DuckDB's own Parquet reader."""
    con = duckdb.connect()
    src = f"read_parquet('{out}/*.parquet')"
    rows = con.execute(f"SELECT count(*) FROM {src}").fetchone()
    per_kind = con.execute(
        f"SELECT kind, count(*), sum(amount) FROM {src} GROUP BY kind"
    ).fetchall()
    span = con.execute(f"SELECT epoch_ms(min(time)), epoch_ms(max(time)) FROM {src}").fetchone()
    keys = {k for (k,) in con.execute(f"SELECT key FROM {src}").fetchall()}
    assert rows is not None and span is not None
    kinds = {str(k): int(n) for k, n, _ in per_kind}
    sums = {str(k): Decimal(s) for k, _, s in per_kind if s is not None}
    return int(rows[0]), kinds, sums, keys, (int(span[0]), int(span[1]))


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    db, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    want = from_journal(db)
    manifest = json.loads((out / "_userops_export.json").read_text())
    bad = []
    if manifest["events"] != want[0]:
        bad.append(f"manifest says {manifest['events']} events, the journal holds {want[0]}")
    names = ("rows", "per-kind counts", "per-kind amount sums", "keys", "time range")
    for reader, got in (("pyarrow", with_pyarrow(out)), ("duckdb", with_duckdb(out))):
        for name, w, g in zip(names, want, got):
            if w != g:
                shown = (len(w), len(g)) if isinstance(w, set) else (w, g)  # type: ignore[arg-type]
                bad.append(f"{reader}: {name} differ: journal {shown[0]}, export {shown[1]}")
    if bad:
        print("\n".join(bad), file=sys.stderr)
        return 1
    print(
        f"export OK: {want[0]} events, {len(want[1])} kinds, amounts "
        + ", ".join(f"{k} {v}" for k, v in sorted(want[2].items()))
        + " (pyarrow and DuckDB agree with the journal)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
