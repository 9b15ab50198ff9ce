"""The intake rules through the Python door: orders and refunds reconcile, money has bounds and a
precision, points stay ≥ 0 by default, a backdated spend cannot re-upgrade, a commit verifies
its quote, set_tags refuses infinities. Each test pins one of the repro scripts of
``shared/repros`` ("Money, intake and API errors")."""

import datetime as dt
from typing import Any, Dict

import pyarrow as pa
import pytest

import userops

SRC = {"platform": "app", "program": "b"}
M1 = {"kind": "member_no", "value": "M1"}


def order(key: str, order_id: str, amount: str) -> Dict[str, Any]:
    return {"kind": "order", "key": key, "time": "2026-03-01T10:00:00Z", "source": SRC, "user": M1,
            "order_id": order_id, "amount": amount, "lines": [{"sku": "x", "price": amount, "qty": 1}]}


def refund(key: str, order_id: str, amount: str) -> Dict[str, Any]:
    return {"kind": "refund", "key": key, "time": "2026-03-04T10:00:00Z", "source": SRC, "user": M1,
            "order_id": order_id, "amount": amount}


def engine_with_program() -> userops.Engine:
    e = userops.Engine()
    e.create_program({"id": "b", "level": "brand", "earn": {"points_per_unit": "1"}})
    return e


def test_refunds_are_bounded_by_their_order() -> None:
    """repro_refund_unchecked: 6,199.00 of refunds on a 100.00 order, refunds of unknown orders."""
    e = engine_with_program()
    e.ingest(order("o1", "O1", "100.00"))
    e.ingest(refund("rf1", "O1", "100.00"))
    for r, cls, field in [(refund("rf2", "O1", "100.00"), userops.OutOfRange, "amount"),
                          (refund("rf3", "O1", "5000.00"), userops.OutOfRange, "amount"),
                          (refund("rf4", "NOPE", "999.00"), userops.InvalidEvent, "order_id")]:
        with pytest.raises(cls) as err:
            e.ingest(r)
        assert err.value.field == field
    a = e.profile(1)["aggregates"]
    assert (a["orders"], a["gmv"], a["refunds"], a["refund_amount"]) == (1, "100.00", 1, "100.00")
    e2 = engine_with_program()
    e2.ingest(order("o1", "O1", "100.00"))
    with pytest.raises(userops.OutOfRange) as err:
        e2.refund("O1", "r1", amount="150.00", time=dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc))
    assert err.value.field == "amount"
    assert e2.balance(1, "b") == 100


def test_an_order_id_counts_once() -> None:
    """repro_dup_order_id: one order id under two keys counted twice in profile, RFM, journey."""
    e = engine_with_program()
    e.ingest(order("pipeline-a:O1", "O1", "100.00"))
    with pytest.raises(userops.DuplicateOrder) as err:
        e.ingest(order("pipeline-b:O1", "O1", "100.00"))
    assert isinstance(err.value, userops.DuplicateKey)
    assert (err.value.code, err.value.status, err.value.field) == ("duplicate_order", 8, "order_id")
    assert "pipeline-a:O1" in str(err.value)
    assert e.profile(1)["aggregates"]["orders"] == 1
    rows = e.rfm("2026-04-01T00:00:00Z", output="arrow").select(["frequency", "monetary"]).to_pylist()
    assert rows == [{"frequency": 1, "monetary": 100.0}]
    assert [s["detail"] for s in e.journey(1)["steps"] if s["kind"] == "order"] == ["O1"]
    assert e.balance(1, "b") == 100


def test_the_default_clawback_keeps_the_balance_at_zero() -> None:
    """repro_negative_balance: the default clawback left a balance of -30."""
    def t(d: int) -> dt.datetime:
        return dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)

    e = userops.Engine()
    e.create_program({"id": "p", "level": "brand"})
    e.create_program({"id": "d", "level": "brand", "clawback": "debt"})
    for p in ("p", "d"):
        e.earn(("member_no", "M1"), p, 100, f"k-{p}", time=t(2))
        e.spend(1, p, 30, f"s-{p}", time=t(3))
        e.refund(f"k-{p}", f"r-{p}", time=t(4))
    assert e.balance(1, "p") == 0
    assert e.balance(1, "d") == -30
    with pytest.raises(userops.InsufficientPoints):
        e.spend(1, "p", 1, "s2", time=t(5))


def test_a_backdated_spend_does_not_re_upgrade() -> None:
    """repro_backdated_upgrade: a late spend re-upgraded a member whose metric is below the bar."""
    def at(y: int, m: int, d: int) -> dt.datetime:
        return dt.datetime(y, m, d, 2, tzinfo=dt.timezone.utc)

    e = userops.Engine()
    e.create_program({"id": "p", "level": "brand", "tiers": {
        "basis": "spend", "window": "rolling_12_months",
        "levels": [{"name": "silver", "threshold": "0"}, {"name": "gold", "threshold": "1000"}]}})
    e.record_spend(("member_no", "M1"), "p", "1200.00", "sp1", time=at(2025, 1, 15))
    e.evaluate_tiers(at(2026, 1, 16))
    r = e.record_spend(1, "p", "500.00", "late-pos-upload", time=at(2025, 12, 1))
    assert (r["tier"], r["upgraded"]) == ("silver", False)
    t = e.tier(1, "p", now=at(2026, 1, 17))
    assert (t["tier"], t["metric"]) == ("silver", "500.00")


@pytest.mark.parametrize("price,qty", [("92233720368547758.07", 1), ("100000000000000000.00", 1),
                                       ("1000000000000000000000.00", 1), ("50000000.00", 2000000000)])
def test_cart_amounts_beyond_the_bound_are_refused(price: str, qty: int) -> None:
    """repro_quote_saturation: cart amounts above i64 cents saturated silently."""
    e = userops.Engine()
    e.add_promotion({"id": "pct", "name": "10% off", "conditions": {},
                     "action": {"type": "percent_off", "percent": "10"}})
    with pytest.raises(userops.OutOfRange) as err:
        e.quote({"time": "2026-03-02T10:00:00+08:00", "lines": [{"sku": "x", "price": price, "qty": qty}]})
    assert err.value.field is not None and err.value.field.startswith("cart.lines[0]")


def test_intake_refuses_amounts_the_analyses_cannot_sum() -> None:
    """repro_overflow_panics: 28-digit amounts were accepted, then four analyses panicked."""
    e = userops.sample_engine()
    big = "79228162514264337593543950335"
    ev = {"kind": "order", "key": "big1", "time": "2026-03-01T10:00:00+08:00", "source": SRC, "user": M1,
          "order_id": "big1", "amount": big, "lines": [{"sku": "s", "category": "tea", "price": big, "qty": 2}]}
    with pytest.raises(userops.OutOfRange) as err:
        e.ingest(ev)
    assert err.value.field == "amount"
    for bad, cls in [("10.005", userops.OutOfRange), ("1e5", userops.InvalidEvent)]:
        with pytest.raises(cls):
            e.ingest(dict(ev, key="k-" + bad, order_id="o-" + bad, amount=bad, lines=[]))
    e.repurchase()
    e.metric_tree()
    e.preference_shares("2026-03-05T00:00:00Z", "category")
    e.cross_table("2026-03-05T00:00:00Z", "category", "price_band", price_bands=["10", "100"])


def test_set_tags_refuses_infinities() -> None:
    """repro_inf_tags (set_tags half): +/-inf were dropped silently."""
    e = userops.Engine()
    with pytest.raises(userops.InvalidArgument) as err:
        e.set_tags(pa.table({"user_id": ["M1", "M2", "M3"], "score": [1.0, float("inf"), -float("inf")]}))
    assert err.value.field == "tags[0].values[1]"
    assert "inf" in str(err.value)
    assert e.stats()["persons"] == 0
    # NaN is pandas' missing value: it removes a value, as null does.
    e.set_tags(pa.table({"user_id": ["M1", "M2"], "score": [1.0, float("nan")]}))
    assert e.audience("EXISTS score").oneids("list") == [1]


def test_a_commit_refuses_an_edited_quote() -> None:
    """A quote whose budget_use was edited to 0.01 is refused at commit."""
    e = userops.Engine()
    e.add_promotion({"id": "d50", "conditions": {}, "budget": {"kind": "money", "amount": "500"},
                     "action": {"type": "threshold_discount", "threshold": "100", "off": "50"}})
    q = e.quote({"time": "2026-03-02T10:00:00+08:00", "lines": [{"sku": "x", "price": "200.00", "qty": 1}]})
    edited = dict(q, applied=[dict(q["applied"][0], budget_use="0.01")])
    with pytest.raises(userops.InvalidArgument) as err:
        e.commit(edited, "k1")
    assert err.value.field == "quote.checksum"
    e.commit(q, "k1")
    assert e.promotion_usage("d50")["money"] == "50.00"
