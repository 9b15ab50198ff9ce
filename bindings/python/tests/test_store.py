"""The durable engine from Python: Engine.open, commit modes, bad files, privacy."""

import os
import pathlib
import stat
from typing import Any, Dict

import pytest

import userops


def register(key: str, member: str) -> Dict[str, Any]:
    return {
        "kind": "register",
        "key": key,
        "time": "2026-01-05T10:00:00+08:00",
        "source": {"platform": "app", "program": "brand-a"},
        "user": {"kind": "member_no", "value": member},
    }


@pytest.mark.parametrize("durability", ["every", "group"])
def test_open_survives_reopen(tmp_path: pathlib.Path, durability: str) -> None:
    path = tmp_path / "pool.db"
    e = userops.Engine.open(path, durability=durability)
    for i in range(5):
        e.ingest(register(f"k{i}", f"M{i}"))
    assert e.ingest(register("k1", "M1"))["duplicate"]
    e.flush()
    del e
    again = userops.Engine.open(str(path))
    assert again.stats()["events"] == 5
    assert again.resolve(("member_no", "M3")) == 4


def test_bad_files_raise_typed_errors_and_stay_untouched(tmp_path: pathlib.Path) -> None:
    with pytest.raises(userops.StorageError):
        userops.Engine.open(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all, just text" * 4)
    with pytest.raises(userops.StorageError):
        userops.Engine.open(junk)
    assert junk.read_bytes() == b"not a database at all, just text" * 4
    ro = tmp_path / "ro.db"
    userops.Engine.open(ro).ingest(register("a", "M1"))
    os.chmod(ro, stat.S_IRUSR)
    before = ro.read_bytes()
    with pytest.raises(userops.StorageError) as err:
        userops.Engine.open(ro)
    assert "read-only" in str(err.value)
    assert ro.read_bytes() == before
    with pytest.raises(userops.InvalidArgument):
        userops.Engine.open(tmp_path / "x.db", durability="sometimes")


def test_consent_erase_and_audit(tmp_path: pathlib.Path) -> None:
    e = userops.Engine.open(tmp_path / "p.db")
    oneid = e.ingest(register("r1", "M1"))["oneid"]
    e.set_consent(oneid, "sms", "marketing", True, actor="crm", time="2026-01-06T00:00:00Z")
    assert e.consent(("member_no", "M1"), "sms", "marketing")
    assert not e.consent(oneid, "push", "marketing")
    out = e.erase(oneid, actor="dpo", time="2026-01-07T00:00:00Z")
    assert out["identifiers_removed"] == 1 and out["consents_removed"] == 1
    assert e.resolve(("member_no", "M1")) is None
    log = e.audit_log()
    assert [a["action"] for a in log] == ["set_consent", "erase"]
    assert log[1]["actor"] == "dpo" and log[1]["target"] == f"oneid:{oneid}"
    with pytest.raises(userops.NotFound):
        e.erase(999, actor="dpo", time="2026-01-07T00:00:00Z")
    del e
    assert len(userops.Engine.open(tmp_path / "p.db").audit_log()) == 2


def test_in_memory_engine_has_privacy_too() -> None:
    e = userops.Engine()
    e.ingest(register("r1", "M1"))
    with pytest.raises(userops.InvalidArgument):
        e.set_consent(1, "", "marketing", True, actor="crm", time="2026-01-06T00:00:00Z")
    assert e.audit_log() == []
