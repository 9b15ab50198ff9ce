"""Loyalty from Python: programs, the ledger, tiers, benefits, tasks, typed errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

import userops

UTC = dt.timezone.utc


def t(day: int, month: int = 1, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, tzinfo=UTC)


@pytest.fixture()
def engine() -> userops.Engine:
    e = userops.Engine()
    e.create_program({"id": "group", "level": "group"})
    e.create_program(
        {
            "id": "brand-a",
            "level": "brand",
            "parent": "group",
            "conversions": {"group": {"from": 10, "to": 3}},
            "growth": {"weights": {"order": 10}},
            "tiers": {
                "basis": "spend",
                "window": "rolling_12_months",
                "levels": [{"name": "silver", "threshold": "0"}, {"name": "gold", "threshold": "1000"}],
            },
            "benefits": [{"id": "wash", "kind": "free_service", "tiers": ["gold"], "limit": 1}],
            "tasks": [{"id": "survey", "kind": "survey", "points": 5}],
        }
    )
    return e


def test_user_forms_earn_spend_statement(engine: userops.Engine) -> None:
    engine.earn({"kind": "member_no", "value": "M1"}, "brand-a", 100, "o1", time=t(1))
    oneid = engine.resolve(("member_no", "M1"))
    assert isinstance(oneid, int)
    engine.earn(("member_no", "M1"), "brand-a", 50, "o2", reason="bonus", expires=t(1, 6), time=t(2))
    out = engine.spend(oneid, "brand-a", 70, "s1", time=t(3))
    assert out["balance"] == 80
    assert engine.balance(("member_no", "M1"), "brand-a") == 80
    rows = engine.statement(oneid, "brand-a")
    assert list(rows["kind"]) == ["earn", "earn", "spend"]
    assert list(rows["amount"]) == [100, 50, -70]
    assert rows["reason"][1] == "bonus" and rows["balance"].iloc[-1] == 80
    assert str(rows["time"].dtype) == "datetime64[ms, UTC]"
    assert rows["time"][0] == t(1) and rows["expires"][1] == t(1, 6)
    # FIFO: the June bucket went first, so expiring in June takes nothing.
    assert engine.expire(t(2, 6))["points"] == 0
    assert engine.balance(oneid, "brand-a") == 80


def test_pending_refund_convert(engine: userops.Engine) -> None:
    u = ("member_no", "M2")
    assert engine.earn(u, "brand-a", 40, "o1", pending=True, time=t(1))["pending"] is True
    assert engine.balance(u, "brand-a") == 0
    assert engine.post("o1", time=t(10))["balance"] == 40
    engine.earn(u, "brand-a", 60, "o2", time=t(11))
    refund = engine.refund("o2", "r2", time=t(12))
    assert refund["points"] == 60
    conv = engine.convert(u, "brand-a", "group", 35, "c1", time=t(13))
    assert (conv["points"], conv["other"]) == (30, 9)
    assert engine.balance(u, "brand-a") == 10
    assert engine.balance(u, "group") == 9


def test_typed_errors_change_nothing(engine: userops.Engine) -> None:
    u = ("member_no", "M3")
    engine.earn(u, "brand-a", 10, "o1", time=t(1))
    with pytest.raises(userops.InsufficientPoints) as e:
        engine.spend(u, "brand-a", 11, "s1", time=t(2))
    assert isinstance(e.value, userops.LedgerError) and e.value.status == 50
    with pytest.raises(userops.LedgerDuplicateKey) as d:
        engine.earn(u, "brand-a", 11, "o1", time=t(1))
    assert isinstance(d.value, userops.DuplicateKey) and isinstance(d.value, userops.LedgerError)
    with pytest.raises(userops.InvalidAmount):
        engine.earn(u, "brand-a", 0, "o2")
    with pytest.raises(userops.ExpiryInPast):
        engine.earn(u, "brand-a", 5, "o3", expires=t(1), time=t(2))
    with pytest.raises(userops.UnknownAccount):
        engine.spend(("member_no", "NOBODY"), "brand-a", 1, "s2")
    with pytest.raises(userops.NotPending):
        engine.post("o1")
    with pytest.raises(userops.NotFound):
        engine.balance(u, "nope")
    assert engine.balance(u, "brand-a") == 10
    assert len(engine.statement(u, "brand-a")) == 1


def test_tiers_benefits_tasks(engine: userops.Engine) -> None:
    u = ("member_no", "M4")
    r = engine.record_spend(u, "brand-a", Decimal("999.99"), "p1", time=t(5))
    assert r["tier"] == "silver" and r["upgraded"] is True
    with pytest.raises(userops.NotEligible):
        engine.claim_benefit(u, "brand-a", "wash", "b1", time=t(5))
    r = engine.record_spend(u, "brand-a", "0.01", "p2", time=t(6))
    assert r["tier"] == "gold"
    assert engine.claim_benefit(u, "brand-a", "wash", "b1", time=t(6))["remaining"] == 0
    with pytest.raises(userops.LimitReached):
        engine.claim_benefit(u, "brand-a", "wash", "b2", time=t(7))
    assert engine.complete_task(u, "brand-a", "survey", "k1", time=t(7))["points"] == 5
    with pytest.raises(userops.LimitReached):
        engine.complete_task(u, "brand-a", "survey", "k2", time=t(8))
    # A year later the rolling window is empty: downgrade at evaluation (no grace).
    ev = engine.evaluate_tiers(t(10, 1, 2027))
    assert ev["downgraded"] == 1
    tier = engine.tier(u, "brand-a")
    assert tier["tier"] == "silver" and [h["reason"] for h in tier["history"]] == ["upgrade", "upgrade", "downgrade"]
    assert engine.add_growth(u, "brand-a", "order", "g1", 2, time=t(11, 1, 2027))["growth"] == 20


def test_statement_table_kinds(engine: userops.Engine) -> None:
    pl = pytest.importorskip("polars")
    pa = pytest.importorskip("pyarrow")
    u = ("member_no", "M9")
    engine.earn(u, "brand-a", 10, "o1", time=t(1))
    engine.earn(u, "brand-a", 5, "o2", pending=True, time=t(2))
    arrow = engine.statement(u, "brand-a", output="arrow")
    assert isinstance(arrow, pa.Table)
    assert arrow.column("amount").to_pylist() == [10, 5]
    assert arrow.column("pending").to_pylist() == [False, True]
    assert arrow.column("expires").null_count == 2
    polars = engine.statement(u, "brand-a", output="polars")
    assert isinstance(polars, pl.DataFrame) and polars["key"].to_list() == ["o1", "o2"]
    empty = engine.statement(("member_no", "NOBODY"), "brand-a", output="arrow")
    assert empty.num_rows == 0 and "balance" in empty.column_names
    with pytest.raises(userops.InvalidArgument):
        engine.statement(u, "brand-a", output="csv")  # type: ignore[arg-type]


def test_orders_earn_post_due_and_partial_refunds() -> None:
    e = userops.Engine()
    e.create_program(
        {"id": "b", "earn": {"points_per_unit": "1", "categories": {"shoes": "2"}, "return_days": 7}}
    )
    src = {"platform": "app", "program": "b"}
    user = {"kind": "member_no", "value": "M1"}
    lines = [
        {"sku": "A", "category": "shoes", "price": "100", "qty": 1},
        {"sku": "B", "category": "socks", "price": "50", "qty": 1},
    ]
    e.ingest({"kind": "order", "key": "ev1", "time": "2026-03-01T00:00:00Z", "source": src,
              "user": user, "order_id": "O1", "amount": "150", "lines": lines})
    assert e.balance(("member_no", "M1"), "b") == 0
    assert e.post_due(t(7, 3))["posted"] == []
    due = e.post_due(t(8, 3))
    assert due["posted"] == ["order:b:O1"] and due["points"] == 250
    # A third of the money back: the member keeps floor(250 × 100 / 150) = 166 points.
    e.ingest({"kind": "refund", "key": "rf1", "time": "2026-03-09T00:00:00Z", "source": src,
              "user": user, "order_id": "O1", "amount": "50"})
    assert e.balance(("member_no", "M1"), "b") == 166
    # 1 more back: floor(250 × 99 / 150) = 165 kept, measured on the total refunded so far.
    out = e.refund("O1", "rf2", amount=Decimal("1"), time=t(10, 3))
    assert out["points"] == 1 and e.balance(("member_no", "M1"), "b") == 165
    with pytest.raises(userops.InvalidAmount):
        e.refund("O1", "rf3", amount="0", time=t(10, 3))
    assert e.balance(("member_no", "M1"), "b") == 165


def test_refund_by_line_gives_back_what_the_line_earned() -> None:
    e = userops.Engine()
    e.create_program({"id": "b", "earn": {"points_per_unit": "1", "categories": {"shoes": "2"}}})
    src = {"platform": "app", "program": "b"}
    user = {"kind": "member_no", "value": "M1"}
    lines = [
        {"sku": "A", "category": "shoes", "price": "100", "qty": 1},
        {"sku": "B", "category": "socks", "price": "25", "qty": 2},
    ]
    # 100 × 2 + 50 = 250 points: A earned 200, B 50.
    e.ingest({"kind": "order", "key": "ev1", "time": "2026-03-01T00:00:00Z", "source": src,
              "user": user, "order_id": "O1", "amount": "150", "lines": lines})
    assert e.balance(("member_no", "M1"), "b") == 250
    out = e.refund("O1", "r1", lines=[{"sku": "A", "qty": 1}], time=t(2, 3))
    assert out["points"] == 200 and e.balance(("member_no", "M1"), "b") == 50
    # By index, with money without units (a price adjustment of half of B's 50): 25 points.
    e.refund("O1", "r2", lines=[{"line": 1, "amount": Decimal("25")}], time=t(3, 3))
    assert e.balance(("member_no", "M1"), "b") == 25
    with pytest.raises(userops.InvalidAmount) as bad:
        e.refund("O1", "r3", lines=[{"sku": "B", "qty": 3}], time=t(4, 3))
    assert bad.value.field == "lines[0].qty"
    with pytest.raises(userops.InvalidAmount) as unknown:
        e.refund("O1", "r3", lines=[{"sku": "Z", "qty": 1}], time=t(4, 3))
    assert unknown.value.field == "lines[0].sku"
    with pytest.raises(userops.InvalidArgument):
        e.refund("O1", "r3", amount="1", lines=[{"sku": "B", "qty": 1}], time=t(4, 3))
    assert e.balance(("member_no", "M1"), "b") == 25
    # Replaying a refund key returns the first result.
    assert e.refund("O1", "r1", lines=[{"sku": "A", "qty": 1}], time=t(2, 3))["duplicate"]


def test_audiences_filter_on_points_and_tier() -> None:
    e = userops.Engine()
    e.create_program(
        {
            "id": "club",
            "growth": {"weights": {"login": 1}},
            "tiers": {"basis": "growth", "window": "calendar_year",
                      "levels": [{"name": "silver", "threshold": "0"}, {"name": "gold", "threshold": "5"}]},
        }
    )
    e.earn(("member_no", "M1"), "club", 1500, "e1", time=t(2))
    e.earn(("member_no", "M2"), "club", 300, "e2", time=t(2))
    assert len(e.audience('points("club") >= 1000')) == 1
    # Kept current: a spend moves M1 below the bar, growth moves M2 up to gold.
    e.spend(("member_no", "M1"), "club", 600, "s1", time=t(3))
    assert len(e.audience('points("club") >= 1000')) == 0
    e.add_growth(("member_no", "M2"), "club", "login", "g1", count=5, time=t(3))
    assert len(e.audience('tier("club") = "gold" AND points("club") > 100')) == 1
    with pytest.raises(userops.AudienceSyntaxError) as bad:
        e.audience('points("clubb") > 1')
    assert bad.value.position == 0
