//! Profiles, tags and audiences through the engine's front door (`call_json`) and the store.

use serde_json::{json, Value};
use userops::{Command, Engine, Error, ErrorCode, OneId};

fn call(e: &mut Engine, method: &str, args: Value) -> Value {
    let out = e
        .call_json(method, &args.to_string())
        .unwrap_or_else(|err| panic!("{method}: {err}"));
    serde_json::from_str(&out).unwrap()
}

fn err(e: &mut Engine, method: &str, args: Value) -> Error {
    e.call_json(method, &args.to_string()).unwrap_err()
}

const NOW: &str = "2026-03-01T00:00:00Z";

fn order(key: &str, member: &str, time: &str, amount: &str) -> Value {
    json!({"event": {"kind": "order", "key": key, "time": time,
        "source": {"platform": "app", "program": "brand-a"},
        "user": {"kind": "member_no", "value": member}, "order_id": key, "amount": amount}})
}

/// Five members with tags; phones for three of them.
fn pool() -> Engine {
    let mut e = Engine::default();
    call(
        &mut e,
        "set_tags",
        json!({"kind": "member_no", "users": ["M1", "M2", "M3", "M4", "M5"], "now": NOW, "tags": [
            {"name": "tier", "type": "enum", "values": ["gold", "silver", "gold", null, "bronze"]},
            {"name": "age", "type": "number", "values": [45, 30, 61, 52, null]},
            {"name": "vip", "type": "bool", "values": [true, false, false, true, true]},
            {"name": "signup", "type": "date", "values": ["2025-01-01", "2026-02-20", "2025-06-01", null, "2026-02-28"]}
        ]}),
    );
    for (i, m) in ["M1", "M2", "M3"].iter().enumerate() {
        call(
            &mut e,
            "ingest",
            json!({"event": {"kind": "identify", "key": format!("id{i}"), "time": NOW,
                "source": {"platform": "app", "program": "brand-a"},
                "ids": [{"kind": "member_no", "value": m}, {"kind": "phone", "value": format!("1380013800{i}")}]}}),
        );
    }
    e
}

fn oneids(v: &Value) -> Vec<u64> {
    v["oneids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn audiences_from_tags_with_every_operator() {
    let mut e = pool();
    let cases = [
        (r#"tier = "gold""#, vec![1, 3]),
        (r#"tier != "gold""#, vec![2, 5]),
        (r#"tier IN ("silver", "bronze")"#, vec![2, 5]),
        (r#"tier NOT IN ("gold")"#, vec![2, 4, 5]),
        ("age BETWEEN 40 AND 60", vec![1, 4]),
        ("age > 45", vec![3, 4]),
        ("age >= 45", vec![1, 3, 4]),
        ("age < 45 OR NOT EXISTS age", vec![2, 5]),
        ("age <= 30", vec![2]),
        ("vip AND NOT tier = \"gold\"", vec![4, 5]),
        ("vip = false", vec![2, 3]),
        ("signup >= now - 30d", vec![2, 5]),
        (r#"signup < "2025-12-31""#, vec![1, 3]),
        (
            r#"(tier = "gold" OR tier = "bronze") AND vip AND NOT age > 50 AND EXISTS signup"#,
            vec![1, 5],
        ),
    ];
    for (expr, want) in cases {
        let a = call(&mut e, "audience", json!({"expression": expr, "now": NOW}));
        assert_eq!(oneids(&a), want, "{expr}");
        assert_eq!(a["size"], want.len(), "{expr}");
    }
}

#[test]
fn expression_errors_have_positions_and_suggestions() {
    let mut e = pool();
    let before = e.snapshot();
    let x = err(
        &mut e,
        "audience",
        json!({"expression": "tierr = \"gold\""}),
    );
    assert_eq!(x.code(), ErrorCode::AudienceSyntax);
    assert_eq!(x.to_report().position, Some(0));
    assert!(x.to_string().contains("did you mean `tier`"), "{x}");
    let x = err(
        &mut e,
        "audience",
        json!({"expression": "vip AND age > \"x\""}),
    );
    assert_eq!(x.to_report().position, Some(14));
    assert!(x.to_string().contains("type mismatch"), "{x}");
    let x = err(
        &mut e,
        "audience",
        json!({"expression": "age > 3 AND (vip"}),
    );
    assert_eq!(x.to_report().position, Some(16));
    let x = err(
        &mut e,
        "save_audience",
        json!({"name": "a", "expression": "in_audience(\"nope\")"}),
    );
    assert_eq!(x.code(), ErrorCode::AudienceSyntax);
    assert!(matches!(
        err(&mut e, "audience", json!({"expression": "tier > \"a\""})),
        Error::AudienceSyntax(_)
    ));
    assert!(matches!(
        err(&mut e, "audience", json!({"expression": "age"})),
        Error::AudienceSyntax(_)
    ));
    // Bad writes change nothing.
    let bad = [
        (
            "set_tags",
            json!({"kind": "member_no", "users": ["M9"], "tags": [{"name": "age", "type": "enum", "values": ["x"]}]}),
        ),
        (
            "set_tags",
            json!({"kind": "member_no", "users": ["M9", "M8"], "tags": [{"name": "age", "values": [1]}]}),
        ),
        (
            "set_tags",
            json!({"kind": "member_no", "users": ["M9"], "tags": [{"name": "age", "values": ["old"]}]}),
        ),
        (
            "set_tags",
            json!({"kind": "member_no", "users": [""], "tags": [{"name": "age", "values": [1]}]}),
        ),
        (
            "set_tags",
            json!({"kind": "member_no", "users": ["M9"], "tags": [{"name": "and", "type": "bool", "values": [true]}]}),
        ),
        (
            "set_tag",
            json!({"user": {"kind": "member_no", "value": "M1"}, "tag": "agee", "value": 3}),
        ),
        ("define_tag", json!({"name": "x", "rule": "agee > 3"})),
        ("define_tag", json!({"name": "tier"})),
    ];
    for (m, args) in bad {
        assert!(e.call_json(m, &args.to_string()).is_err(), "{m} {args}");
    }
    assert_eq!(before, e.snapshot());
}

#[test]
fn saved_audiences_history_export_and_set_operations() {
    let mut e = pool();
    let gold = call(
        &mut e,
        "save_audience",
        json!({"name": "gold", "expression": "tier = 'gold'", "now": NOW}),
    );
    assert_eq!(gold["size"], 2);
    assert_eq!(gold["expression"], r#"tier = "gold""#);
    call(
        &mut e,
        "save_audience",
        json!({"name": "vips", "expression": "vip", "now": NOW}),
    );
    let both = call(
        &mut e,
        "combine_audiences",
        json!({"name": "gold_vips", "op": "intersection", "audiences": ["gold", "vips"], "now": NOW}),
    );
    assert_eq!(both["size"], 1);
    let diff = call(
        &mut e,
        "combine_audiences",
        json!({"name": "vip_not_gold", "op": "difference", "audiences": ["vips", "gold"], "now": NOW}),
    );
    assert_eq!(diff["size"], 2);
    let union = call(
        &mut e,
        "audience",
        json!({"expression": "in_audience(\"gold\") OR in_audience(\"vips\")"}),
    );
    assert_eq!(oneids(&union), vec![1, 3, 4, 5]);

    // Membership changes; the saved audience keeps its members until refreshed.
    call(
        &mut e,
        "set_tag",
        json!({"user": {"kind": "member_no", "value": "M2"}, "tag": "tier", "value": "gold", "now": NOW}),
    );
    assert_eq!(
        oneids(&call(&mut e, "audience_members", json!({"name": "gold"}))),
        vec![1, 3]
    );
    let r = call(
        &mut e,
        "refresh_audience",
        json!({"name": "gold", "now": "2026-03-02T00:00:00Z"}),
    );
    assert_eq!(r["size"], 3);
    let sizes: Vec<u64> = r["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![2, 3]);
    assert_eq!(r["history"][1]["at"], "2026-03-02T00:00:00Z");

    let x = call(
        &mut e,
        "export_audience",
        json!({"name": "gold", "kind": "phone"}),
    );
    let phones: Vec<&str> = x["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        phones,
        vec!["+8613800138000", "+8613800138001", "+8613800138002"]
    );
    assert_eq!(x["missing"], json!([]));
    let x = call(
        &mut e,
        "export_audience",
        json!({"name": "vips", "kind": "phone"}),
    );
    assert_eq!(x["missing"], json!([4, 5]));
    let x = call(&mut e, "export_audience", json!({"name": "vips"}));
    assert_eq!(x["rows"].as_array().unwrap().len(), 3);
    assert!(e
        .call_json("export_audience", r#"{"name": "nope"}"#)
        .is_err());
    assert!(e
        .call_json("export_audience", r#"{"name": "gold", "kind": "Bad Kind"}"#)
        .is_err());
    let listed = call(&mut e, "audiences", json!({}));
    assert_eq!(listed.as_array().unwrap().len(), 4);
    call(&mut e, "delete_audience", json!({"name": "vip_not_gold"}));
    assert_eq!(
        call(&mut e, "audiences", json!({}))
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn rule_tags_follow_their_inputs_and_time() {
    let mut e = pool();
    call(
        &mut e,
        "define_tag",
        json!({"name": "middle_aged", "rule": "age BETWEEN 40 AND 60", "now": NOW}),
    );
    call(
        &mut e,
        "define_tag",
        json!({"name": "lapsed", "rule": "last_order < now - 90d", "now": NOW}),
    );
    let members = |e: &mut Engine, x: &str| {
        oneids(&call(e, "audience", json!({"expression": x, "now": NOW})))
    };
    assert_eq!(members(&mut e, "middle_aged"), vec![1, 4]);
    call(
        &mut e,
        "set_tag",
        json!({"user": {"kind": "member_no", "value": "M2"}, "tag": "age", "value": 41, "now": NOW}),
    );
    assert_eq!(members(&mut e, "middle_aged"), vec![1, 2, 4]);
    assert!(e
        .call_json(
            "set_tag",
            r#"{"user": {"oneid": 1}, "tag": "middle_aged", "value": false}"#
        )
        .is_err());

    // Orders feed aggregates, which feed the rule.
    call(
        &mut e,
        "ingest",
        order("o1", "M1", "2025-10-01T00:00:00Z", "100.50"),
    );
    call(
        &mut e,
        "ingest",
        order("o2", "M2", "2026-02-01T00:00:00Z", "20"),
    );
    // Recomputed on ingest at the latest time seen (NOW, from the earlier commands).
    assert_eq!(members(&mut e, "lapsed"), vec![1]);
    call(
        &mut e,
        "refresh_tags",
        json!({"now": "2026-01-01T00:00:00Z"}),
    );
    assert_eq!(members(&mut e, "lapsed"), vec![1]);
    call(
        &mut e,
        "refresh_tags",
        json!({"now": "2026-06-01T00:00:00Z"}),
    );
    assert_eq!(members(&mut e, "lapsed"), vec![1, 2]);
    assert_eq!(members(&mut e, "gmv > 50"), vec![1]);
    assert_eq!(members(&mut e, "orders = 1"), vec![1, 2]);

    let tags = call(&mut e, "tags", json!({}));
    let mid = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "middle_aged")
        .unwrap();
    assert_eq!(
        mid["kind"]["rule"]["expression"],
        "age BETWEEN 40.0 AND 60.0"
    );
    assert_eq!(mid["users"], 3);
    assert!(mid["memory_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn profile_view_attributes_strategies_and_aggregates() {
    let mut e = pool();
    let m1 = json!({"kind": "member_no", "value": "M1"});
    call(
        &mut e,
        "define_attribute",
        json!({"name": "city", "type": "string", "merge": {"source_priority": ["crm", "app"]}}),
    );
    call(
        &mut e,
        "define_attribute",
        json!({"name": "balance", "type": "decimal", "merge": "sum"}),
    );
    call(
        &mut e,
        "define_attribute",
        json!({"name": "interests", "type": "list", "merge": "union"}),
    );
    assert!(e
        .call_json(
            "define_attribute",
            r#"{"name": "x", "type": "bool", "merge": "sum"}"#
        )
        .is_err());
    call(
        &mut e,
        "set_attribute",
        json!({"user": m1, "name": "city", "value": "shanghai", "source": "crm", "at": NOW}),
    );
    let v = call(
        &mut e,
        "set_attribute",
        json!({"user": m1, "name": "city", "value": "beijing", "source": "app", "at": "2026-03-05T00:00:00Z"}),
    );
    assert_eq!(v["attributes"]["city"], "shanghai", "crm outranks app");
    call(
        &mut e,
        "set_attribute",
        json!({"user": m1, "name": "balance", "value": "10.25", "at": NOW}),
    );
    call(
        &mut e,
        "set_attribute",
        json!({"user": m1, "name": "balance", "value": "0.75", "at": NOW}),
    );
    call(
        &mut e,
        "set_attribute",
        json!({"user": m1, "name": "interests", "value": ["golf", "tea"], "at": NOW}),
    );
    call(
        &mut e,
        "set_attribute",
        json!({"user": m1, "name": "interests", "value": ["wine", "golf"], "at": NOW}),
    );
    call(
        &mut e,
        "set_attribute",
        json!({"user": m1, "name": "nickname", "value": "Li", "at": NOW}),
    );
    call(
        &mut e,
        "ingest",
        order("o1", "M1", "2026-01-01T00:00:00Z", "99.90"),
    );
    call(
        &mut e,
        "ingest",
        order("o2", "M1", "2026-02-01T00:00:00Z", "0.10"),
    );
    call(
        &mut e,
        "ingest",
        json!({"event": {"kind": "refund", "key": "r1", "time": NOW,
        "source": {"platform": "app", "program": "brand-a"}, "user": {"oneid": 1}, "order_id": "o1", "amount": "5"}}),
    );
    call(
        &mut e,
        "ingest",
        json!({"event": {"kind": "touch", "key": "t1", "time": NOW,
        "source": {"platform": "app", "program": "brand-a"}, "user": {"oneid": 1}, "channel": "sms", "content": "c", "outcome": "clicked"}}),
    );
    let p = call(&mut e, "profile", json!({"user": m1}));
    assert_eq!(p["oneid"], 1);
    assert_eq!(p["attributes"]["balance"], "11.00");
    assert_eq!(p["attributes"]["interests"], json!(["golf", "tea", "wine"]));
    assert_eq!(p["attributes"]["nickname"], "Li");
    assert_eq!(p["tags"]["tier"], "gold");
    assert_eq!(p["tags"]["age"], 45.0);
    assert_eq!(p["aggregates"]["orders"], 2);
    assert_eq!(p["aggregates"]["gmv"], "100.00");
    assert_eq!(p["aggregates"]["refund_amount"], "5");
    assert_eq!(p["aggregates"]["touches"]["clicked"], 1);
    assert_eq!(p["points"], Value::Null);
    assert_eq!(p["identifiers"].as_array().unwrap().len(), 2);
    let a = call(
        &mut e,
        "audience",
        json!({"expression": "interests = \"wine\" AND city = \"shanghai\" AND balance > 10"}),
    );
    assert_eq!(oneids(&a), vec![1]);
    assert!(e
        .call_json(
            "set_attribute",
            r#"{"user": {"oneid": 1}, "name": "balance", "value": "abc"}"#
        )
        .is_err());
    assert!(e
        .call_json(
            "set_attribute",
            r#"{"user": {"oneid": 1}, "name": "orders", "value": 3}"#
        )
        .is_err());
}

#[test]
fn merge_profiles_combines_and_moves_tags() {
    let mut e = pool();
    call(
        &mut e,
        "define_attribute",
        json!({"name": "spend", "type": "number", "merge": "max"}),
    );
    call(
        &mut e,
        "set_attribute",
        json!({"user": {"oneid": 1}, "name": "spend", "value": 10, "at": NOW}),
    );
    call(
        &mut e,
        "set_attribute",
        json!({"user": {"oneid": 4}, "name": "spend", "value": 30, "at": NOW}),
    );
    call(
        &mut e,
        "set_attribute",
        json!({"user": {"oneid": 4}, "name": "city", "value": "xi'an", "at": NOW}),
    );
    call(&mut e, "ingest", order("o1", "M1", NOW, "10"));
    call(&mut e, "ingest", order("o2", "M4", NOW, "15"));
    call(
        &mut e,
        "define_tag",
        json!({"name": "dormant", "type": "bool"}),
    );
    call(
        &mut e,
        "set_tag",
        json!({"user": {"oneid": 4}, "tag": "dormant", "value": true}),
    );
    call(
        &mut e,
        "save_audience",
        json!({"name": "no_tier", "expression": "NOT EXISTS tier", "now": NOW}),
    );
    // Through the one merge flow (an operator merge); the profile and tags sections of its
    // report say what each module did.
    let m = call(
        &mut e,
        "merge",
        json!({"a": {"oneid": 1}, "b": {"oneid": 4}, "actor": "ops", "reason": "same", "time": NOW}),
    );
    let (r, t) = (&m["modules"]["profile"][0], &m["modules"]["tags"][0]);
    assert_eq!(r["attributes"]["spend"], "taken");
    assert_eq!(r["attributes"]["city"], "taken");
    assert_eq!(t["tags_moved"], json!(["dormant"]));
    assert!(t["tags_conflicting"]
        .as_array()
        .unwrap()
        .contains(&json!("age")));
    assert_eq!(t["audiences"], json!(["no_tier"]));
    let p = e.profile(OneId(1)).unwrap();
    assert_eq!(p.attributes["spend"], json!(30.0));
    assert_eq!(p.aggregates.orders, 2);
    assert_eq!(p.aggregates.gmv.to_string(), "25");
    assert_eq!(p.tags["age"], json!(45.0), "survivor's value kept");
    assert_eq!(p.tags["dormant"], json!(true));
    // The absorbed user left every index and the universe.
    let a = e.audience("NOT vip").unwrap();
    assert_eq!(a.oneids, vec![OneId(2), OneId(3)]);
    assert_eq!(e.audience("spend >= 30").unwrap().oneids, vec![OneId(1)]);
    assert_eq!(e.audience("EXISTS age").unwrap().size, 3);
}

#[test]
fn journal_replay_and_snapshot_give_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.db");
    let cmds = [
        (
            "set_tags",
            json!({"kind": "member_no", "users": ["M1", "M2"], "tags": [
            {"name": "age", "type": "number", "values": [45, 3.5]},
            {"name": "tier", "type": "enum", "values": ["a", "b"]}]}),
        ),
        ("define_tag", json!({"name": "old", "rule": "age > 40"})),
        (
            "save_audience",
            json!({"name": "olds", "expression": "old"}),
        ),
        (
            "set_attribute",
            json!({"user": {"oneid": 2}, "name": "city", "value": "x"}),
        ),
        ("refresh_audience", json!({"name": "olds"})),
    ];
    let live = {
        let store = userops_store::Store::open(&path).unwrap();
        for (m, a) in &cmds {
            // `now` is filled in when the command is made, so the journal holds it.
            store
                .execute(Command::from_call(m, &a.to_string()).unwrap())
                .unwrap();
        }
        let bytes = store.engine().snapshot();
        bytes
    };
    let back = userops_store::Store::open(&path).unwrap();
    assert_eq!(back.engine().snapshot(), live);
    let restored = Engine::restore(&live).unwrap();
    assert_eq!(restored.snapshot(), live);
    assert_eq!(restored.audience("old").unwrap().size, 1);
}
