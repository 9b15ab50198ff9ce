import json
import threading
from decimal import Decimal
from typing import Any, Callable, Dict, Type

import pytest

import userops

IDENTIFY = {
    "kind": "identify",
    "key": "jd-7781",
    "time": "2026-01-05T10:00:00+08:00",
    "source": {"platform": "jd", "program": "brand-a"},
    "ids": [{"kind": "phone", "value": "13800138000"}, {"kind": "device_id", "value": "a9f3"}],
}


def order(key: str, amount: object = "399.00", qty: int = 2) -> Dict[str, Any]:
    return {
        "kind": "order",
        "key": key,
        "time": "2026-01-05T10:00:00+08:00",
        "source": {"platform": "app", "program": "brand-a"},
        "user": {"kind": "phone", "value": "13800138000"},
        "order_id": "o-1",
        "amount": amount,
        "channel": "app",
        "lines": [{"sku": "s1", "category": "fruit", "price": "99.50", "qty": qty}],
    }


def test_receipt_and_replay() -> None:
    e = userops.Engine()
    r = e.ingest(IDENTIFY)
    assert r == {"key": "jd-7781", "kind": "identify", "seq": 1, "oneid": 1, "absorbed": [], "duplicate": False}
    again = e.ingest(IDENTIFY)
    assert again["duplicate"] is True and again["seq"] == 1
    assert e.stats()["events"] == 1


def test_json_text_and_dict_agree() -> None:
    a, b = userops.Engine(), userops.Engine()
    assert a.ingest(IDENTIFY) == b.ingest(json.dumps(IDENTIFY))


def test_order_resolves_user_and_decimal_money() -> None:
    e = userops.Engine()
    e.ingest(IDENTIFY)
    r = e.ingest(order("o1", amount=Decimal("399.00")))
    assert r["oneid"] == 1
    assert e.resolve(("phone", "+86 138-0013-8000")) == 1
    assert e.resolve({"kind": "email", "value": "nobody@example.com"}) is None
    assert e.resolve(1) == 1


@pytest.mark.parametrize(
    "mutate, exc, field",
    [
        (lambda ev: ev.update(kind="telepathy"), userops.InvalidEvent, ""),
        (lambda ev: ev.pop("key"), userops.InvalidEvent, ""),
        (lambda ev: ev.update(time="2026-01-05 10:00:00"), userops.InvalidEvent, "time"),
        (lambda ev: ev["ids"].__setitem__(0, {"kind": "phone", "value": "12"}), userops.InvalidEvent, "ids[0]"),
        (lambda ev: ev["ids"].__setitem__(0, {"kind": "email", "value": "no-at-sign"}), userops.InvalidEvent, "ids[0]"),
        (lambda ev: ev.update(ids=[]), userops.InvalidEvent, "ids"),
    ],
)
def test_bad_events_are_typed_and_change_nothing(
    mutate: Callable[[Dict[str, Any]], Any], exc: Type[userops.UserOpsError], field: str
) -> None:
    e = userops.Engine()
    e.ingest(dict(IDENTIFY, key="first"))
    before = e.stats()
    ev = json.loads(json.dumps(IDENTIFY))
    mutate(ev)
    with pytest.raises(exc) as info:
        e.ingest(ev)
    assert isinstance(info.value, userops.UserOpsError)
    assert not isinstance(info.value, RuntimeError)
    if field:
        assert info.value.field == field, info.value
    assert e.stats() == before


def test_float_money_and_bad_qty_rejected() -> None:
    e = userops.Engine()
    with pytest.raises(userops.InvalidEvent) as info:
        e.ingest(order("o1", amount=399.0))
    assert "amount" in str(info.value)
    with pytest.raises(userops.InvalidEvent) as info:
        e.ingest(order("o2", qty=0))
    assert info.value.field == "lines[0].qty"
    assert e.stats()["events"] == 0


def test_malformed_json_text() -> None:
    e = userops.Engine()
    with pytest.raises(userops.InvalidEvent):
        e.ingest('{"kind": "identify", ')
    with pytest.raises(userops.InvalidArgument):
        e.ingest({"kind": "identify", "x": object()})


def test_reused_key_with_other_content() -> None:
    e = userops.Engine()
    e.ingest(IDENTIFY)
    other = dict(IDENTIFY, ids=[{"kind": "device_id", "value": "other"}])
    with pytest.raises(userops.DuplicateKey):
        e.ingest(other)


def test_unknown_method_and_bad_user() -> None:
    e = userops.Engine()
    with pytest.raises(userops.UnknownMethod):
        e.call("teleport")
    with pytest.raises(userops.InvalidArgument) as info:
        e.resolve(("phone", "12"))
    assert info.value.field == "user"
    with pytest.raises(userops.NotFound):
        e.resolve(12345)


def test_threads_share_one_engine() -> None:
    e = userops.Engine()
    def work(t: int) -> None:
        for i in range(200):
            e.ingest(dict(IDENTIFY, key=f"{t}-{i}", ids=[{"kind": "member_no", "value": f"M{t}-{i}"}]))
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert e.stats()["persons"] == 800
    assert e.stats()["events"] == 800


def test_version() -> None:
    import pathlib
    import re

    # The version comes from Cargo (the workspace's version), through maturin.
    cargo = (pathlib.Path(__file__).resolve().parents[3] / "Cargo.toml").read_text()
    workspace_version = re.search(r'^version = "([^"]+)"', cargo, re.M)
    assert workspace_version is not None
    assert userops.__version__ == workspace_version.group(1)
    from importlib.metadata import version

    assert version("userops") == userops.__version__


def test_receipt_matches_the_shared_fixture() -> None:
    import pathlib

    fixtures = pathlib.Path(__file__).resolve().parents[3] / "tests" / "fixtures"
    receipt = userops.Engine().ingest((fixtures / "identify.json").read_text())
    assert receipt == json.loads((fixtures / "identify.receipt.json").read_text())


def test_docstrings() -> None:
    import doctest

    import userops.errors

    for mod in (userops, userops.errors):
        result = doctest.testmod(mod)
        assert result.failed == 0 and result.attempted > 0, mod


def test_every_engine_error_code_has_its_exception_class() -> None:
    """An engine error code without a class (or with another status number) fails here: the
    package has no catch-all that would hide it."""
    from userops import _native
    from userops.errors import _BY_CODE

    codes = dict(_native.error_codes)
    assert codes.pop("ok") == 0
    assert codes, "the native module lists the codes"
    for name, status in codes.items():
        cls = _BY_CODE.get(name)
        assert cls is not None, f"error code {name!r} has no exception class"
        assert cls.code == name and cls.status == status, (name, cls)
        assert issubclass(cls, userops.UserOpsError)
    assert set(_BY_CODE) == set(codes), "a class for a code the engine does not have"


def test_a_report_with_an_unknown_code_is_an_internal_error_naming_it() -> None:
    from userops.errors import InternalError, from_report

    e = from_report({"code": "no_such_code", "message": "boom"})
    assert type(e) is InternalError
    assert "no_such_code" in str(e) and "boom" in str(e)
    known = from_report({"code": "not_found", "message": "x", "field": "user"})
    assert type(known) is userops.NotFound and known.field == "user"
