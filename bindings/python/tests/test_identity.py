"""OneID from Python: the engine's identity methods, IdentityGraph and resolve_identities."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pytest

import userops
from userops import IdentityGraph, InvalidArgument, NotFound, resolve_identities


def identify(engine: userops.Engine, key: str, ids: List[Tuple[str, str]]) -> Dict[str, Any]:
    return engine.ingest(
        {
            "kind": "identify",
            "key": key,
            "time": "2026-01-05T10:00:00+08:00",
            "source": {"platform": "jd", "program": "brand-a"},
            "ids": [{"kind": k, "value": v} for k, v in ids],
        }
    )


def test_engine_spec_example_merge_split_and_audit() -> None:
    e = userops.Engine()
    a = identify(e, "A", [("phone", "13800138000"), ("device_id", "d1")])["oneid"]
    identify(e, "B", [("email", "b@x.com"), ("device_id", "d1")])
    c = identify(e, "C", [("email", "b@x.com"), ("openid", "o1")])["oneid"]
    assert a == c
    kinds = {i["kind"] for i in e.identifiers(a)}
    assert {"phone", "email", "openid"} <= kinds
    chain = e.explain(("phone", "13800138000"), ("openid", "o1"))["chain"]
    assert [s["record"] for s in chain] == ["A", "B", "C"]
    other = identify(e, "D", [("member_no", "M9")])["oneid"]
    with pytest.raises(InvalidArgument):
        e.merge(a, other, actor="", reason="x")
    with pytest.raises(NotFound):
        e.merge(a, 999, actor="ops", reason="x")
    report = e.merge(other, ("phone", "13800138000"), actor="ops", reason="same member")
    assert report["survivor"] == a and report["absorbed"] == [other]
    assert e.canonical(other) == a
    assert e.merge_history(other)[0]["cause"] == "manual"
    split = e.split(report["evidence"], actor="ops", reason="undo")
    assert sorted(p["oneid"] for p in split["parts"]) == [a, other]
    assert [x["action"] for x in e.identity_audit()] == ["merge", "split"]


def test_operator_merge_and_split_are_dated_and_move_member_state_both_ways() -> None:
    import datetime as dt

    e = userops.Engine()
    e.create_program({"id": "p"})

    def t(d: int) -> dt.datetime:
        return dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc)

    e.earn(("member_no", "M1"), "p", 100, "e1", time=t(2))
    e.earn(("member_no", "M2"), "p", 50, "e2", time=t(3))
    e.set_consent(("member_no", "M2"), "sms", "marketing", False, actor="crm", time=t(3))
    m = e.merge(("member_no", "M1"), ("member_no", "M2"), actor="ops", reason="same", time=t(4))
    assert e.balance(1, "p") == 150 and not e.consent(1, "sms", "marketing")
    merge_row = [r for r in e.statement(1, "p", output="arrow").to_pylist() if r["kind"] == "merge"]
    assert merge_row[0]["time"] == t(4) and merge_row[0]["amount"] == 0
    s = e.split(m["evidence"], actor="ops", reason="two people", time="2026-01-05T00:00:00Z")
    assert list(s["not_split_back"]) == ["identity"]
    assert (e.balance(1, "p"), e.balance(2, "p")) == (100, 50)
    split_row = [r for r in e.statement(2, "p", output="arrow").to_pylist() if r["kind"] == "split"]
    assert split_row[0]["time"] == t(5)
    # Erased: a tombstone cannot be merged.
    e.erase(2, actor="dpo", time=t(6))
    with pytest.raises(NotFound):
        e.merge(1, 2, actor="ops", reason="x", time=t(7))


def test_engine_conflicts_and_rules() -> None:
    e = userops.Engine()
    identify(e, "k1", [("phone", "13800138000"), ("device_id", "tab")])
    identify(e, "k2", [("phone", "13900139000"), ("device_id", "tab")])
    assert len(e.conflicts()) == 1
    assert e.conflicts()[0]["reason"]["type"] == "cap"
    with pytest.raises(InvalidArgument):
        e.set_identity_rules({"caps": {"phone": 0}}, actor="ops", reason="x")
    rules = e.set_identity_rules({"caps": {"phone": 2}}, actor="ops", reason="family")
    assert rules["caps"] == {"phone": 2}
    assert e.identity_rules()["caps"] == {"phone": 2}


def test_identity_graph_class() -> None:
    g = IdentityGraph({"junk_threshold": None})
    out = g.link("r1", [("phone", "13800138000"), ("device_id", "d1")], source="app", ts=5)
    assert out["created"] and g.resolve(("device_id", "d1")) == out["oneid"]
    assert g.resolve(("email", "nobody@x.com")) is None
    g.link("r2", [("phone", "13900139000"), ("device_id", "d1")])
    assert g.conflicts()[0]["record"] == "r2"
    why = g.explain(("phone", "13800138000"), ("phone", "13900139000"))
    assert not why["joined"] and why["reasons"]
    with pytest.raises(InvalidArgument) as bad:
        g.link("r3", [("email", "not-an-email")])
    assert bad.value.field == "ids[0]"
    with pytest.raises(InvalidArgument):
        IdentityGraph({"caps": {"phone": 0}})


def _rows() -> Dict[str, List[Any]]:
    return {
        "record_id": ["A", "A", "B", "B", "C", "C", "D", "E"],
        "kind": ["phone", "device_id", "email", "device_id", "email", "openid", "phone", "fax!"],
        "value": ["13800138000", "d1", "b@x.com", "d1", "b@x.com", "o1", "not a phone", "1"],
        "source": ["app"] * 8,
        "ts": [0, 0, 1, 1, 2, 2, 3, 4],
    }


def _check(oneids: List[Optional[int]], reasons: List[Optional[str]]) -> None:
    assert len(set(oneids[:6])) == 1 and oneids[0] is not None
    assert oneids[6] is None and oneids[7] is None
    assert reasons[:6] == [None] * 6
    assert "phone" in (reasons[6] or "") and "kind" in (reasons[7] or "")


def test_resolve_identities_pyarrow() -> None:
    pa = pytest.importorskip("pyarrow")
    out = resolve_identities(pa.table(_rows()))
    assert isinstance(out, pa.Table)
    _check(out.column("oneid").to_pylist(), out.column("reject_reason").to_pylist())


def test_resolve_identities_pandas() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    df = pd.DataFrame(_rows(), index=range(10, 18))
    out = resolve_identities(df)
    assert isinstance(out, pd.DataFrame) and list(out.index) == list(range(10, 18))
    oneids = [None if pd.isna(x) else int(x) for x in out["oneid"]]
    reasons = [None if pd.isna(x) else x for x in out["reject_reason"]]
    _check(oneids, reasons)


def test_resolve_identities_polars_and_shared_graph() -> None:
    pl = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    g = IdentityGraph()
    out = resolve_identities(pl.DataFrame(_rows()), graph=g)
    assert isinstance(out, pl.DataFrame)
    _check(out["oneid"].to_list(), out["reject_reason"].to_list())
    assert g.resolve(("openid", "o1")) == out["oneid"][0]
    with pytest.raises(InvalidArgument):
        resolve_identities(pl.DataFrame({"record_id": ["a"]}))
    with pytest.raises(InvalidArgument):
        resolve_identities([1, 2, 3])
