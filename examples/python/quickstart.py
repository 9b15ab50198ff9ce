"""userops from Python, notebook style: generated data in, OneID out, tables all the way.

    python examples/python/quickstart.py            # 2,000 members
    python examples/python/quickstart.py --members 200

Sections: 1. identities from three channels (pandas) → OneID; 2. orders (polars) → receipts;
3. bad rows reported, not lost; 4. what the pool holds. (Tags, audiences, lifecycle, RFM, churn
and promotions are added here as those modules land.)
"""

from __future__ import annotations

import argparse
import random
from typing import Any, Dict, List

import pandas as pd
import polars as pl

import userops

SOURCE_APP = {"platform": "app", "program": "brand-a"}


def identities(members: int, rng: random.Random) -> pd.DataFrame:
    """Identify events as three channels see the same people: the app (member number + phone),
    the JD shop (phone + device) and WeChat (openid + device)."""
    rows: List[Dict[str, Any]] = []
    for m in range(members):
        phone = f"138{m:08d}"
        device = f"dev-{m:06x}"
        t = f"2026-01-{1 + m % 28:02d}T{8 + m % 12:02d}:00:00+08:00"
        rows.append({"key": f"app-{m}", "platform": "app", "member_no": f"M{m}", "phone": phone,
                     "device_id": None, "openid": None, "time": t})
        if rng.random() < 0.7:
            rows.append({"key": f"jd-{m}", "platform": "jd", "member_no": None, "phone": phone,
                         "device_id": device, "openid": None, "time": t})
        if rng.random() < 0.5:
            rows.append({"key": f"wx-{m}", "platform": "wechat", "member_no": None, "phone": None,
                         "device_id": device, "openid": f"o-{m:06d}", "time": t})
    rng.shuffle(rows)
    return pd.DataFrame(rows)


def orders(members: int, rng: random.Random) -> pl.DataFrame:
    rows: List[Dict[str, Any]] = []
    for i in range(members * 2):
        m = rng.randrange(members)
        rows.append({"key": f"order-{i}", "time": f"2026-02-{1 + i % 28:02d}T12:00:00+08:00",
                     "member_no": f"M{m}", "order_id": f"A{i:07d}",
                     "amount": f"{rng.randrange(20, 800)}.{rng.randrange(100):02d}", "channel": "app"})
    return pl.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=2000)
    args = ap.parse_args()
    rng = random.Random(7)
    engine = userops.Engine()

    print("== 1. OneID: identities from app, JD and WeChat (a pandas table)")
    ids = identities(args.members, rng)
    receipts = engine.ingest_table(ids, values={"kind": "identify", "program": "brand-a"})
    merges = receipts[receipts["absorbed"].map(len) > 0]
    print(f"{len(ids)} identify rows → {engine.stats()['persons']} persons; {len(merges)} rows merged persons")
    print(receipts.head(5).to_string(index=False))
    print("resolve phone +86 138-0000-0001 →", engine.resolve(("phone", "+86 138-0000-0001")))

    print("\n== 2. Orders (a polars table) → receipts as polars")
    o = orders(args.members, rng)
    r = engine.ingest_table(o, values={"kind": "order", **SOURCE_APP})
    print(r.select("row", "key", "oneid", "duplicate").head(5))
    again = engine.ingest_table(o, values={"kind": "order", **SOURCE_APP})
    print("same table again: all duplicates →", bool(again["duplicate"].all()))

    print("\n== 3. Bad rows are reported (errors='skip'), good rows go in")
    bad = pd.DataFrame({"key": ["x1", "x2", "x3"], "kind": "activity", "type": "login",
                        "time": ["2026-03-01T09:00:00+08:00", "not a time", "2026-03-01T09:05:00+08:00"],
                        "phone": ["13800000001", "13800000002", "12"]})
    out = engine.ingest_table(bad, values=SOURCE_APP, errors="skip")
    print(out[["row", "key", "oneid", "error_code", "error_column", "error"]].to_string(index=False))

    print("\n== 4. The pool")
    print(engine.stats())


if __name__ == "__main__":
    main()
