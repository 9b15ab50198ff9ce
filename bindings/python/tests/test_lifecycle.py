"""Lifecycle table functions and engine methods."""

from __future__ import annotations

import random

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import userops


def ts(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


def hand_table() -> pd.DataFrame:
    # u1 registers in the last second of January (+08:00), active in Feb, quiet in Mar.
    # u2 active Jan, quiet Feb and Mar, back in Apr (returned).
    rows = [
        ("u1", "2026-01-31T23:59:59+08:00"),
        ("u1", "2026-02-01T00:00:00+08:00"),
        ("u2", "2026-01-05T10:00:00+08:00"),
        ("u2", "2026-04-05T10:00:00+08:00"),
    ]
    return pd.DataFrame({"user": [r[0] for r in rows], "time": pd.to_datetime([r[1] for r in rows], utc=True)})


def test_stages_by_hand_and_kinds_round_trip() -> None:
    df = hand_table()
    out = userops.lifecycle(df, user="user", time="time")
    assert isinstance(out, pd.DataFrame)
    got = {(r.user, str(r.period)): str(r.stage) for r in out.itertuples()}
    assert got[("u1", "2026-01")] == "new"
    assert got[("u1", "2026-02")] == "last_period_new"
    assert got[("u1", "2026-03")] == "dormant"
    assert got[("u1", "2026-04")] == "churned"
    assert got[("u2", "2026-02")] == "dormant"
    assert got[("u2", "2026-03")] == "churned"
    assert got[("u2", "2026-04")] == "returned"
    # In UTC, u1's registration falls in January too, but their Feb 1 00:00 +08:00 is Jan 31 UTC.
    utc = userops.lifecycle(df, tz=0)
    got_utc = {(r.user, str(r.period)): str(r.stage) for r in utc.itertuples()}
    assert got_utc[("u1", "2026-02")] == "dormant"
    polars_out = userops.lifecycle(pl.from_pandas(df))
    assert isinstance(polars_out, pl.DataFrame)
    arrow_out = userops.lifecycle(pa.Table.from_pandas(df))
    assert isinstance(arrow_out, pa.Table)
    assert arrow_out.num_rows == len(out) == polars_out.height


def test_bad_input_raises_typed_errors() -> None:
    df = hand_table()
    naive = df.assign(time=df["time"].dt.tz_localize(None))
    with pytest.raises(userops.InvalidArgument) as e:
        userops.lifecycle(naive)
    assert e.value.field == "time"
    with pytest.raises(userops.InvalidArgument):
        userops.lifecycle(df, user="nope")
    reg = df.assign(registered=pd.Timestamp("2026-03-01T00:00:00Z"))
    with pytest.raises(userops.InvalidArgument) as e:
        userops.lifecycle(reg, registered="registered")
    assert "before registering" in str(e.value)
    ok = userops.lifecycle(reg, registered="registered", early_activity="register_at_first_activity")
    assert len(ok) > 0
    with pytest.raises(userops.InvalidArgument):
        userops.lifecycle(df, churn_after=1)
    with pytest.raises(userops.InvalidArgument):
        userops.lifecycle(df, period="year")


def test_decomposition_identity_on_random_data() -> None:
    rnd = random.Random(6)
    base = pd.Timestamp("2025-01-01T00:00:00+08:00")
    users = [rnd.randrange(300) for _ in range(3000)]
    times = [base + pd.Timedelta(minutes=rnd.randrange(60 * 24 * 365)) for _ in users]
    df = pd.DataFrame({"user": users, "time": times, "tier": [u % 3 for u in users]})
    dec = userops.active_rate_decomposition(df)
    assert len(dec) == 12
    for r in dec.iloc[1:].itertuples():
        assert r.actives == r.new + r.old_retained + r.new_retained + r.woken + r.returned
        assert r.registered == sum(getattr(r, f"stage_{s}") for s in
                                   ["new", "last_period_new", "active", "awakened", "returned", "dormant", "churned"])
    # Breakdown by a per-user tag: the segments add up to the whole.
    seg = userops.active_rate_decomposition(df, by="tier")
    whole = seg[seg.segment == "(all)"].set_index("period")
    parts = seg[seg.segment != "(all)"].groupby("period")["actives"].sum()
    assert (whole["actives"] == parts).all()
    bad = df.assign(tier=range(len(df)))
    with pytest.raises(userops.InvalidArgument) as e:
        userops.active_rate_decomposition(bad, by="tier")
    assert e.value.field == "by"


def test_engine_lifecycle_methods() -> None:
    e = userops.Engine()
    src = {"platform": "app", "program": "p"}
    e.ingest({"kind": "register", "key": "r1", "time": "2026-01-05T00:00:00+08:00", "source": src,
              "user": {"kind": "member_no", "value": "M1"}})
    e.ingest({"kind": "activity", "key": "a1", "time": "2026-02-05T00:00:00+08:00", "source": src,
              "user": {"kind": "member_no", "value": "M1"}, "type": "login"})
    assert e.lifecycle_stages() == {1: "last_period_new"}
    rep = e.lifecycle_report()
    assert [p["period"] for p in rep["periods"]] == ["2026-01", "2026-02"]
    d = e.active_rate_decomposition("2026-02")
    assert d["actives"] == 1 and d["active_rate"] == 1.0
    # February's only user is last-period-new, i.e. in the old-active group of the projection;
    # the new-user group is empty, so new retention cannot move the rate.
    p = e.project_active_rate(target=0.5, lever="old_retention",
                              rates={"old_retention": 0.0, "new_retention": 0.5, "wake_rate": 0.0, "return_rate": 0.0},
                              new_users=0)
    assert p["lever"]["feasible"] is True and p["lever"]["required"] == 0.5
    q = e.project_active_rate(target=0.5, lever="new_retention",
                              rates={"old_retention": 0.0, "new_retention": 0.5, "wake_rate": 0.0, "return_rate": 0.0},
                              new_users=0)
    assert q["lever"]["feasible"] is False
    with pytest.raises(userops.InvalidArgument):
        e.lifecycle_stages("2026-13")


def test_stage_tags_and_breakdowns_by_tag_match_explicit_segments() -> None:
    e = userops.Engine()
    src = {"platform": "app", "program": "p"}
    for i in range(8):
        m = {"kind": "member_no", "value": f"M{i}"}
        e.ingest({"kind": "register", "key": f"r{i}", "time": f"2026-0{1 + i % 2}-05T00:00:00+08:00",
                  "source": src, "user": m})
        if i % 3 != 0:
            e.ingest({"kind": "activity", "key": f"a{i}", "time": "2026-03-05T00:00:00+08:00", "source": src,
                      "user": m, "type": "login"})
            e.ingest({"kind": "activity", "key": f"b{i}", "time": "2026-03-05T01:00:00+08:00", "source": src,
                      "user": m, "type": "pay"})
    stages = e.write_lifecycle_tags("2026-03")
    assert stages == e.lifecycle_stages("2026-03") and len(stages) == 8
    by_stage: dict[str, list[int]] = {}
    for u, s in stages.items():
        by_stage.setdefault(s, []).append(u)
    assert len(by_stage) >= 2
    for s, users in by_stage.items():
        assert e.audience(f'lifecycle_stage = "{s}"').oneids().to_pylist() == sorted(users)
    segments = {f"lifecycle_stage={s}": sorted(u) for s, u in by_stage.items()}
    got = e.active_rate_decomposition("2026-03", by_tag="lifecycle_stage")["segments"]
    want = e.active_rate_decomposition("2026-03", segments=segments)["segments"]
    assert got == want and set(got) == set(segments)
    f_tag = e.funnel(["login", "pay"], by_tag="lifecycle_stage")["segments"]
    f_hand = e.funnel(["login", "pay"], segments=segments)["segments"]
    assert f_tag == f_hand and set(f_tag) == set(segments)
    first = sorted(by_stage)[0]
    f_aud = e.funnel(["login", "pay"], audiences={"x": f'lifecycle_stage = "{first}"'})["segments"]
    assert f_aud["x"] == f_hand[f"lifecycle_stage={first}"]
    with pytest.raises(userops.UserOpsError):
        e.funnel(["login"], by_tag="no_such_tag")
