"""Tags, audiences and profiles from Python: wide tables from pandas, polars and pyarrow."""

import datetime as dt
from typing import Any

import pytest

import userops

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")

NOW = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def frame() -> Any:
    return pd.DataFrame(
        {
            "user_id": ["M1", "M2", "M3", "M4"],
            "tier": pd.Categorical(["gold", "silver", "gold", None]),
            "age": [45.0, 30.0, float("nan"), 52.0],
            "vip": [True, False, True, False],
            "signup": pd.to_datetime(["2026-02-20", "2025-01-01", "2026-02-27", "2024-05-05"]),
        }
    )


def check(engine: userops.Engine) -> None:
    assert engine.audience('tier = "gold"', now=NOW).oneids(like="list") == [1, 3]
    assert engine.audience("age BETWEEN 40 AND 60", now=NOW).oneids(like="list") == [1, 4]
    assert engine.audience("NOT EXISTS age", now=NOW).oneids(like="list") == [3]
    assert engine.audience("vip AND signup >= now - 30d", now=NOW).oneids(like="list") == [1, 3]
    types = {t["name"]: t["type"] for t in engine.tags()}
    assert types == {"tier": "enum", "age": "number", "vip": "bool", "signup": "date"}


@pytest.mark.parametrize("convert", ["pandas", "polars", "pyarrow"])
def test_set_tags_from_any_table(convert: str) -> None:
    df = frame()
    table = {"pandas": lambda: df, "polars": lambda: pl.from_pandas(df), "pyarrow": lambda: pa.table(df)}[convert]()
    engine = userops.Engine()
    out = engine.set_tags(table, user="user_id", kind="member_no")
    assert out["rows"] == 4 and out["created"] == 4
    check(engine)


def test_a_large_audience_comes_back_packed_and_whole() -> None:
    # Members travel as packed u64s, not JSON numbers: the same members, in order, as the
    # JSON view of the same command; the Arrow view is a zero-copy uint64 array over them.
    n = 20_000
    engine = userops.Engine()
    engine.set_tags(
        pd.DataFrame({"user_id": [f"M{i}" for i in range(n)], "score": [i % 7 for i in range(n)]}),
        user="user_id",
        kind="member_no",
    )
    a = engine.audience("score >= 3", now=NOW)
    via_json = engine.call("audience", expression="score >= 3", now=NOW)
    assert len(a) == via_json["size"] == sum(1 for i in range(n) if i % 7 >= 3)
    assert a.oneids(like="list") == via_json["oneids"]
    arrow = a.oneids()
    assert arrow.type == pa.uint64() and arrow.to_pylist() == via_json["oneids"]
    assert a.export().num_rows == len(a)
    with pytest.raises(userops.AudienceSyntaxError):
        engine.audience("score >=", now=NOW)


def test_audience_object_and_exports() -> None:
    engine = userops.Engine()
    engine.set_tags(frame(), user="user_id", kind="member_no")
    for i, m in enumerate(["M1", "M3"]):
        engine.ingest(
            {
                "kind": "identify",
                "key": f"k{i}",
                "time": "2026-01-05T10:00:00+08:00",
                "source": {"platform": "app", "program": "b"},
                "ids": [{"kind": "member_no", "value": m}, {"kind": "phone", "value": f"1380013800{i}"}],
            }
        )
    a = engine.audience("vip")
    assert len(a) == 2
    assert a.oneids().to_pylist() == [1, 3]
    assert a.oneids().type == pa.uint64()
    assert a.oneids(like="pandas").tolist() == [1, 3]
    assert a.oneids(like="polars").to_list() == [1, 3]
    phones = a.export(kind="phone")
    assert phones.column("value").to_pylist() == ["+8613800138000", "+8613800138001"]
    assert a.export().column("oneid").to_pylist() == [1, 3]

    saved = engine.save_audience("vips", "vip", now=NOW)
    assert saved["size"] == 2 and saved["history"][0]["size"] == 2
    engine.set_tag(("member_no", "M2"), "vip", True)
    assert engine.refresh_audience("vips")["size"] == 3
    assert len(engine.audience_members("vips")) == 3
    assert [r["value"] for r in engine.export_audience("vips", kind="phone")["rows"]] == [
        "+8613800138000",
        "+8613800138001",
    ]
    engine.save_audience("gold", 'tier = "gold"')
    assert engine.combine_audiences("both", "intersection", ["vips", "gold"])["size"] == 2
    assert len(engine.audience('in_audience("both") AND NOT in_audience("gold")')) == 0


def test_syntax_errors_carry_a_position() -> None:
    engine = userops.Engine()
    engine.set_tags(frame(), user="user_id", kind="member_no")
    with pytest.raises(userops.AudienceSyntaxError) as e:
        engine.audience('vip AND tierr = "gold"')
    assert e.value.position == 8
    assert "did you mean `tier`" in str(e.value)
    assert e.value.code == "audience_syntax" and e.value.status == 40
    with pytest.raises(userops.AudienceSyntaxError) as e:
        engine.audience('age > "x"')
    assert e.value.position == 6
    with pytest.raises(userops.AudienceSyntaxError):
        engine.save_audience("bad", "(vip")
    with pytest.raises(userops.InvalidArgument):
        engine.set_tags(pd.DataFrame({"user_id": ["M1"], "age": ["old"]}))
    assert engine.audiences() == []


def test_rule_tags_and_profiles() -> None:
    engine = userops.Engine()
    engine.set_tags(frame(), user="user_id", kind="member_no", now=NOW)
    engine.define_tag("middle_aged", rule="age BETWEEN 40 AND 60", now=NOW)
    assert engine.audience("middle_aged").oneids(like="list") == [1, 4]
    engine.define_attribute("spend", "decimal", merge="sum")
    engine.set_attribute(("member_no", "M1"), "spend", "10.50")
    p = engine.set_attribute(("member_no", "M1"), "spend", "1.25")
    assert p["attributes"]["spend"] == "11.75"
    p = engine.profile(("member_no", "M1"))
    assert p["tags"]["middle_aged"] is True and p["tags"]["tier"] == "gold"
    assert p["points"] is None
