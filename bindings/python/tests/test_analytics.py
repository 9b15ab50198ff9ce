"""Analytics table functions against naive Python, and the engine's analysis methods."""

from __future__ import annotations

import itertools
import random
from decimal import Decimal
from typing import Dict, List, Set, Tuple

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import userops

BASE = pd.Timestamp("2026-03-01T00:00:00+08:00")


def naive_level(events: List[Tuple[int, str]], steps: List[str], window: int) -> int:
    best = 0
    for i, (t0, e0) in enumerate(events):
        if e0 != steps[0]:
            continue
        # Brute force over ordered choices of later events within the window.
        def go(k: int, j: int, t0: int = t0) -> int:
            if k == len(steps):
                return k
            b = k
            for jj in range(j, len(events)):
                if events[jj][1] == steps[k] and events[jj][0] - t0 <= window:
                    b = max(b, go(k + 1, jj + 1))
            return b
        best = max(best, go(1, i + 1))
    return best


def test_funnel_matches_naive() -> None:
    rnd = random.Random(1)
    rows = [(rnd.randrange(30), rnd.randrange(100), rnd.choice("abcd")) for _ in range(400)]
    df = pd.DataFrame({"user": [r[0] for r in rows],
                       "time": [BASE + pd.Timedelta(seconds=r[1]) for r in rows],
                       "event": [r[2] for r in rows]})
    steps = ["a", "b", "c"]
    out = userops.funnel(df, steps, window_seconds=40)
    assert list(out["step"]) == steps
    levels = []
    for u in set(r[0] for r in rows):
        ev = sorted((r[1], i, r[2]) for i, r in enumerate(rows) if r[0] == u)
        levels.append(naive_level([(t, e) for t, _, e in ev], steps, 40))
    want = [sum(1 for l in levels if l > k) for k in range(3)]
    assert list(out["users"]) == want
    assert list(out["drop_off"]) == [0, want[0] - want[1], want[1] - want[2]]
    with pytest.raises(userops.InvalidArgument) as e:
        userops.funnel(df, ["a", "zzz"])
    assert "zzz" in str(e.value)
    seg = userops.funnel(pl.from_pandas(df.assign(g=df.user % 2)), steps, window_seconds=40, by="g")
    assert isinstance(seg, pl.DataFrame)
    parts = seg.filter(pl.col("segment") != "(all)").group_by("step").agg(pl.col("users").sum())
    assert dict(parts.iter_rows()) == dict(zip(steps, want))


def test_cohort_retention_matches_naive() -> None:
    rnd = random.Random(2)
    rows = [(rnd.randrange(50), rnd.randrange(200)) for _ in range(500)]
    t = pa.table({"user": [r[0] for r in rows],
                  "time": pa.array([(BASE + pd.Timedelta(days=r[1])).to_pydatetime() for r in rows],
                                   pa.timestamp("ms", tz="Asia/Shanghai"))})
    out = userops.cohort_retention(t, period="month")
    assert isinstance(out, pa.Table)
    months: Dict[int, Set[int]] = {}
    for u, d in rows:
        ts = BASE + pd.Timedelta(days=d)
        months.setdefault(u, set()).add(ts.year * 12 + ts.month - 1)
    for r in out.to_pylist():
        y, m = map(int, r["cohort"].split("-"))
        c = y * 12 + m - 1
        members = [s for s in months.values() if min(s) == c]
        assert r["users"] == len(members)
        assert r["retained"] == sum(1 for s in members if c + r["periods_later"] in s)


def test_attribution() -> None:
    touches = pd.DataFrame({"user": [1, 1, 2], "channel": ["sms", "push", "sms"],
                            "time": [BASE, BASE + pd.Timedelta(hours=1), BASE]})
    conv = pd.DataFrame({"user": [1, 2, 3], "time": [BASE + pd.Timedelta(hours=2)] * 3,
                         "amount": [Decimal("100.00"), Decimal("10.00"), Decimal("5.00")]})
    out = userops.attribution(touches, conv, model="linear", value="amount")
    got = {r.channel: (r.conversions, r.value) for r in out.itertuples()}
    assert got["sms"] == (1.5, Decimal("60"))
    assert got["push"] == (0.5, Decimal("50"))
    pb = userops.attribution(touches, conv, model="first_touch")
    assert dict(zip(pb["channel"], pb["conversions"])) == {"sms": 2.0}
    with pytest.raises(userops.InvalidArgument):
        userops.attribution(touches, conv.assign(amount=[1.5, 2.0, 3.0]), value="amount")
    with pytest.raises(userops.InvalidArgument):
        userops.attribution(touches, conv, model="time_decay")


def test_engine_analyses() -> None:
    e = userops.Engine()
    src = {"platform": "app", "program": "p"}
    for n in (1, 2):
        e.ingest({"kind": "touch", "key": f"t{n}", "time": "2026-03-01T10:00:00+08:00", "source": src,
                  "user": {"kind": "member_no", "value": f"M{n}"}, "channel": "sms", "content": "c",
                  "outcome": "clicked"})
    e.ingest({"kind": "order", "key": "o1", "time": "2026-03-01T11:00:00+08:00", "source": src,
              "user": {"kind": "member_no", "value": "M1"}, "order_id": "o1", "amount": "20.00"})
    f = e.funnel(["touch_clicked", "order"])
    assert [s["users"] for s in f["steps"]] == [2, 1]
    j = e.journey(("member_no", "M1"))
    assert [s["name"] for s in j["steps"]] == ["touch_clicked", "order"]
    a = e.attribution("last_touch")
    assert a["channels"][0]["value"] == "20.00"
    assert e.metric_tree()[0]["tree"]["value"] == "20.00"
    assert e.paths("touch_clicked", "order")["dropped"] == 1
    with pytest.raises(userops.NotFound):
        e.journey(("member_no", "nobody"))
