//! The engine's models against their written definitions (their minimal cases).

use serde_json::{json, Value};

use crate::{Engine, ErrorCode, Event};

const SRC: &str = r#"{"platform": "app", "program": "brand-a"}"#;

fn event(kind: &str, key: &str, user: &str, time: &str, body: Value) -> Event {
    let mut v = json!({"kind": kind, "key": key, "time": time,
        "source": serde_json::from_str::<Value>(SRC).unwrap(),
        "user": {"kind": "member_no", "value": user}});
    for (k, x) in body.as_object().unwrap() {
        v[k] = x.clone();
    }
    Event::from_json(&v.to_string()).unwrap()
}

fn call(e: &mut Engine, method: &str, args: Value) -> Value {
    serde_json::from_str(&e.call_json(method, &args.to_string()).unwrap()).unwrap()
}

fn refused(e: &mut Engine, method: &str, args: Value) -> crate::Error {
    e.call_json(method, &args.to_string()).unwrap_err()
}

const AS_OF: &str = "2026-03-31T23:00:00+08:00";

#[test]
fn channel_preference_is_spend_on_lines_as_in_the_cross_table() {
    // An order of 90.00 with one 100.00 line on `store`, a line-less 30.00 order on `app` and a
    // login on `jd`: the channel preference is store 100, as the cross table says.
    let mut e = Engine::default();
    e.ingest(event(
        "order",
        "o1",
        "M1",
        "2026-03-01T10:00:00+08:00",
        json!({"order_id": "o1", "amount": "90.00", "channel": "store", "region": "sh",
               "lines": [{"sku": "s", "category": "tea", "price": "100.00", "qty": 1}]}),
    ))
    .unwrap();
    e.ingest(event(
        "order",
        "o2",
        "M1",
        "2026-03-02T10:00:00+08:00",
        json!({"order_id": "o2", "amount": "30.00", "channel": "app"}),
    ))
    .unwrap();
    let mut login = event(
        "activity",
        "a1",
        "M1",
        "2026-03-03T10:00:00+08:00",
        json!({"type": "login"}),
    );
    login.source.platform = "jd".into();
    e.ingest(login).unwrap();
    let p = call(
        &mut e,
        "preference_shares",
        json!({"as_of": AS_OF, "dimension": "channel"}),
    );
    assert_eq!(
        p,
        json!([{"oneid": 1, "value": "store", "weight": 100.0, "share": 1.0, "rank": 1}])
    );
    let x = call(
        &mut e,
        "cross_table",
        json!({"as_of": AS_OF, "rows": "region", "cols": "channel"}),
    );
    assert_eq!(x, json!([{"row": "sh", "col": "store", "amount": 100.0}]));
    // Counts have their own dimensions: the login is an activity type.
    let a = call(
        &mut e,
        "preference_shares",
        json!({"as_of": AS_OF, "dimension": "activity_type"}),
    );
    assert_eq!(a[0]["value"], "login");
    assert_eq!(a[0]["weight"], 1.0);
}

#[test]
fn behaviour_touchpoints_are_a_dimension_of_their_own() {
    let mut e = Engine::default();
    for (i, ch) in ["mini_program", "mini_program", "live"].iter().enumerate() {
        e.ingest(event(
            "behavior",
            &format!("b{i}"),
            "M1",
            "2026-03-01T10:00:00+08:00",
            json!({"type": "view", "category": "tea", "channel": ch}),
        ))
        .unwrap();
    }
    let t = call(
        &mut e,
        "preference_shares",
        json!({"as_of": AS_OF, "dimension": "touchpoint"}),
    );
    let got: Vec<(&str, f64)> = t
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["value"].as_str().unwrap(), r["weight"].as_f64().unwrap()))
        .collect();
    assert_eq!(got, [("mini_program", 2.0), ("live", 1.0)]);
    // No spend: no category preference from behaviours.
    let c = call(
        &mut e,
        "preference_shares",
        json!({"as_of": AS_OF, "dimension": "category"}),
    );
    assert_eq!(c, json!([]));
}

#[test]
fn equal_preferences_rank_by_value_whatever_the_ingest_order() {
    // M1 spends 10.00 on wine, then on apples (or the other way round): a tie, broken by value.
    for cats in [["wine", "apple"], ["apple", "wine"]] {
        let mut e = Engine::default();
        for (i, cat) in cats.iter().enumerate() {
            e.ingest(event(
                "order",
                &format!("o{i}"),
                "M1",
                "2026-03-01T10:00:00+08:00",
                json!({"order_id": format!("o{i}"), "amount": "10.00",
                       "lines": [{"sku": cat, "category": cat, "price": "10.00", "qty": 1}]}),
            ))
            .unwrap();
        }
        let p = call(
            &mut e,
            "preference_shares",
            json!({"as_of": AS_OF, "dimension": "category", "top_k": 1, "tag": "fav"}),
        );
        assert_eq!(p[0]["value"], "apple", "{cats:?}");
        assert_eq!(e.audience("fav = \"apple\"").unwrap().oneids.len(), 1);
    }
}

#[test]
fn unsorted_price_bands_are_refused() {
    let mut e = Engine::default();
    for method in ["preference_shares", "cross_table"] {
        let err = refused(
            &mut e,
            method,
            json!({"as_of": AS_OF, "dimension": "price_band", "rows": "category",
                   "cols": "price_band", "price_bands": ["100", "50"]}),
        );
        assert_eq!(err.field(), Some("price_bands[1]"), "{method}: {err}");
    }
}

#[test]
fn activity_levels_and_weights_keyed_by_kind() {
    let mut e = Engine::default();
    // M1: a login today and a review today; M2: one login 200 days ago (score ≈ 0.01).
    e.ingest(event(
        "activity",
        "a1",
        "M1",
        "2026-03-31T10:00:00+08:00",
        json!({"type": "login"}),
    ))
    .unwrap();
    e.ingest(event(
        "behavior",
        "b1",
        "M1",
        "2026-03-31T10:00:00+08:00",
        json!({"type": "review"}),
    ))
    .unwrap();
    e.ingest(event(
        "activity",
        "a2",
        "M2",
        "2025-09-12T10:00:00+08:00",
        json!({"type": "login"}),
    ))
    .unwrap();
    let score = |v: &Value, i: usize| v[i]["score"].as_f64().unwrap();
    let plain = call(&mut e, "activity_scores", json!({"as_of": AS_OF}));
    // Below 0.5 is `dormant`, as the default levels say (high ≥ 10, medium ≥ 3, low ≥ 0.5).
    assert_eq!(plain[0]["level"], "low");
    assert_eq!(plain[1]["level"], "dormant");
    // A weight keyed by event kind applies to every event of the kind...
    let by_kind = call(
        &mut e,
        "activity_scores",
        json!({"as_of": AS_OF, "weights": {"activity": 4}}),
    );
    assert!(
        (score(&by_kind, 0) - score(&plain, 0) - 3.0 * 0.5f64.powf(13.0 / 24.0 / 30.0)).abs()
            < 1e-9
    );
    assert!((score(&by_kind, 1) - 4.0 * score(&plain, 1)).abs() < 1e-12);
    // ...and a weight of the event's own type goes first.
    let by_type = call(
        &mut e,
        "activity_scores",
        json!({"as_of": AS_OF, "weights": {"activity": 4, "login": 0}}),
    );
    assert!((score(&by_type, 1)).abs() < 1e-12);
    // A kind the score does not count is refused, naming the key.
    let err = refused(
        &mut e,
        "activity_scores",
        json!({"as_of": AS_OF, "weights": {"touch": 2}}),
    );
    assert_eq!(err.field(), Some("weights.touch"), "{err}");
}

#[test]
fn a_reply_before_the_replied_to_user_counts() {
    // B is replied to by A before B's own first event (or after it): B's influence is 1 either
    // way, and B is one person.
    let join = |who: &str| {
        event(
            "community",
            &format!("join-{who}"),
            who,
            "2026-03-01T10:00:00+08:00",
            json!({"community": "g", "action": "join"}),
        )
    };
    let reply = event(
        "community",
        "reply",
        "A",
        "2026-03-02T10:00:00+08:00",
        json!({"community": "g", "action": "message",
               "reply_to": {"kind": "member_no", "value": "B"}}),
    );
    for order in [
        vec![join("A"), join("B"), reply.clone()],
        vec![reply.clone(), join("A"), join("B")],
        vec![join("A"), reply.clone(), join("B")],
    ] {
        let mut e = Engine::default();
        for ev in order {
            e.ingest(ev).unwrap();
        }
        let b = e
            .lookup(&crate::UserRef::Id(
                crate::Identifier::new(crate::IdKind::MemberNo, "B").unwrap(),
            ))
            .unwrap()
            .unwrap();
        let h = call(&mut e, "high_value_users", json!({"as_of": AS_OF}));
        let row = h
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["oneid"] == b.0)
            .unwrap();
        assert_eq!(row["influence"], 1);
        assert_eq!(e.stats().persons, 2);
    }
    // A reply to a OneID that does not exist is refused, nothing changed.
    let mut e = Engine::default();
    let mut bad = reply.clone();
    if let crate::EventBody::Community { reply_to, .. } = &mut bad.body {
        *reply_to = Some(crate::UserRef::OneId(crate::OneId(99)));
    }
    let err = e.ingest(bad).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidEvent);
    assert_eq!(err.field(), Some("reply_to"));
    assert_eq!(e.stats().persons, 0);
}

#[test]
fn the_location_of_orders_at_one_instant_is_the_first_region() {
    for regions in [["sh", "bj"], ["bj", "sh"]] {
        let mut e = Engine::default();
        for (i, r) in regions.iter().enumerate() {
            e.ingest(event(
                "order",
                &format!("o{i}"),
                "M1",
                "2026-03-01T10:00:00+08:00",
                json!({"order_id": format!("o{i}"), "amount": "1.00", "region": r}),
            ))
            .unwrap();
        }
        e.ingest(event(
            "activity",
            "a",
            "M1",
            "2026-03-02T10:00:00+08:00",
            json!({"type": "login"}),
        ))
        .unwrap();
        let x = call(
            &mut e,
            "cross_table",
            json!({"as_of": AS_OF, "rows": "region", "cols": "activity_type"}),
        );
        assert_eq!(x, json!([{"row": "bj", "col": "login", "amount": 1.0}]));
    }
}
