"""userops from Python, notebook style: generated data in, OneID out, tables all the way.

    python examples/python/quickstart.py            # 2,000 members
    python examples/python/quickstart.py --members 200

Sections: 1. identities from three channels (pandas) → OneID; 2. orders (polars) → receipts;
3. bad rows reported, not lost; 4. what the pool holds; 5. tags from a table; 6. audiences;
7. lifecycle stages and the active-rate decomposition; 8. RFM segments (from a table and from the
engine, as a tag); 9. churn risk (BG/NBD) written back as a tag; 10. a promotion for the
at-risk audience. Every table goes to Rust as Arrow and comes back as the kind it came in
(pandas or polars); engine methods return the kind asked for with ``output=``.
"""

from __future__ import annotations

import argparse
import datetime as dt
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


START = dt.datetime(2025, 9, 1, tzinfo=dt.timezone(dt.timedelta(hours=8)))
WEEKS = 25  # orders from 2025-09-01 to late February 2026
RATE = (2.0, 0.25)  # purchases per week ~ Gamma(shape, scale)
DROP = (2.0, 8.0)  # drop-out after a purchase ~ Beta(a, b)


def orders(members: int, rng: random.Random) -> pl.DataFrame:
    """Orders as the BG/NBD story tells it: each member buys at their own rate (Gamma) and may
    drop out after any purchase (Beta); some members never buy."""
    rows: List[Dict[str, Any]] = []
    for m in range(members):
        rate, p_drop = rng.gammavariate(*RATE), rng.betavariate(*DROP)
        week = rng.uniform(0, 4)
        while week < WEEKS:
            t = START + dt.timedelta(weeks=week)
            i = len(rows)
            rows.append({"key": f"order-{i}", "time": t.isoformat(), "member_no": f"M{m}",
                         "order_id": f"A{i:07d}", "amount": f"{rng.randrange(20, 800)}.{rng.randrange(100):02d}",
                         "channel": rng.choice(["app", "app", "mini_program", "store"])})
            if rng.random() < p_drop:
                break
            week += rng.expovariate(rate)
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

    print("\n== 5. Tags from a table (pandas): typed from the dtypes, one row per member")
    spend = (o.with_columns(pl.col("amount").cast(pl.Float64))
              .group_by("member_no").agg(pl.col("amount").sum().alias("spend"),
                                         pl.len().alias("orders")).sort("member_no"))
    tags = spend.to_pandas()
    tags["tier"] = pd.cut(tags["spend"], [0, 1000, 3000, float("inf")], labels=["silver", "gold", "platinum"])
    tags["vip"] = tags["orders"] >= 5
    print(tags.head(5).to_string(index=False))
    out = engine.set_tags(tags.drop(columns=["orders"]), user="member_no", kind="member_no")
    print(f"set {out['tags']} for {out['rows']} members")

    print("\n== 6. Audiences")
    gold = engine.audience('tier IN ("gold", "platinum") AND vip')
    print(f"{gold.expression!r}: {len(gold)} members")
    print(gold.export("member_no").slice(0, 5).to_pandas().to_string(index=False))

    print("\n== 7. Lifecycle: stages per month and the active-rate decomposition (polars in, polars out)")
    acts = o.select(pl.col("member_no").alias("user"),
                    pl.col("time").str.to_datetime(time_zone="Asia/Shanghai").alias("time"))
    stages = userops.lifecycle(acts)
    print(stages.filter(pl.col("period") == "2026-02").group_by("stage").len().sort("stage"))
    dec = userops.active_rate_decomposition(acts)
    print(dec.select("period", "registered", "actives", "active_rate", "new", "old_retained",
                     "new_retained", "woken", "returned").tail(4))

    print("\n== 8. RFM segments at 2026-03-01")
    priced = o.with_columns(pl.col("amount").cast(pl.Float64))
    r = userops.rfm(priced, "member_no", "time", "amount", as_of="2026-03-01")
    print(r.group_by("segment").agg(pl.len().alias("members"), pl.col("monetary").mean().round(2))
           .sort("members", descending=True))
    # The same model over the orders the engine holds, by OneID, written back as a tag.
    seg = engine.rfm("2026-03-01T00:00:00+08:00", tag="rfm_segment", output="polars")
    print(seg.head(3))
    print("important_value members:", len(engine.audience('rfm_segment = "important_value"')))

    print("\n== 9. Churn risk: BG/NBD on the weekly summary, P(alive) written back as a tag")
    summary = userops.summary_data(priced, "member_no", "time", "amount",
                                   observation_period_end="2026-02-28", freq="W")
    bg = userops.BetaGeo().fit(summary["frequency"], summary["recency"], summary["T"])
    print("params:", {k: round(v, 3) for k, v in bg.params.items()})
    alive = bg.p_alive(summary["frequency"], summary["recency"], summary["T"])
    risk = summary.select("member_no").with_columns(
        churn_risk=pl.when(alive < 0.3).then(pl.lit("high")).when(alive < 0.7).then(pl.lit("mid"))
        .otherwise(pl.lit("low")), p_alive=alive)
    print(risk.group_by("churn_risk").len().sort("churn_risk"))
    engine.set_tags(risk.select("member_no", "churn_risk"), user="member_no", kind="member_no")
    # Or in one call over the engine's own orders: the table of bands, and the fit.
    users, fit = engine.churn_risk("2026-02-28T23:59:59+08:00", freq="W")
    print("engine BG/NBD:", {k: round(v, 3) for k, v in fit["params"].items()})
    print(users["risk"].value_counts().sort_index().to_dict())

    print("\n== 10. A promotion and a win-back coupon for the at-risk audience")
    at_risk = engine.save_audience("at_risk", 'churn_risk = "high" AND tier IN ("gold", "platinum")')
    print(f"audience at_risk: {at_risk['size']} members")
    engine.add_promotion({"id": "m300", "name": "300 off 50", "conditions": {},
                          "action": {"type": "threshold_discount", "threshold": "300", "off": "50"}})
    engine.add_coupon_template({"id": "winback20", "kind": "consumption",
                                "benefit": {"type": "percent_off", "percent": "20"}, "valid_days": 14})
    members = engine.audience_members("at_risk").oneids("list")
    coupons = engine.issue_coupons("winback20", members, time="2026-03-01T10:00:00+08:00")
    cart = {"time": "2026-03-02T10:00:00+08:00", "channel": "app",
            "lines": [{"sku": "tea-1", "category": "tea", "price": "199.00", "qty": 2}]}
    rows = []
    for oneid, coupon in list(zip(members, coupons))[:3]:
        q = engine.quote(cart, user=oneid)
        used = engine.use_coupon(coupon, oneid, cart)
        rows.append({"oneid": oneid, "subtotal": q["subtotal"], "promotion": q["discount"],
                     "coupon": coupon, "coupon_discount": used["discount"]})
    print(pd.DataFrame(rows).to_string(index=False))
    print(engine.coupon_counts())


if __name__ == "__main__":
    main()
