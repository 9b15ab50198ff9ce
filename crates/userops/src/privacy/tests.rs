use super::*;
use crate::{Command, Config, Engine, Event};

fn register(key: &str, phone: &str) -> Event {
    Event::from_json(&format!(
        r#"{{"kind": "register", "key": "{key}", "time": "2026-01-01T00:00:00Z",
        "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "phone", "value": "{phone}"}}}}"#
    ))
    .unwrap()
}

fn identify(key: &str, a: &str, b: &str) -> Event {
    Event::from_json(&format!(
        r#"{{"kind": "identify", "key": "{key}", "time": "2026-01-01T00:00:00Z",
        "source": {{"platform": "app", "program": "b"}},
        "ids": [{{"kind": "phone", "value": "{a}"}}, {{"kind": "email", "value": "{b}"}}]}}"#
    ))
    .unwrap()
}

fn consent(
    e: &mut Engine,
    user: &str,
    channel: &str,
    granted: bool,
    time: &str,
) -> Result<String, Error> {
    e.call_json(
        "set_consent",
        &format!(
            r#"{{"user": {user}, "channel": "{channel}", "purpose": "marketing", "granted": {granted},
            "actor": "op", "time": "{time}"}}"#
        ),
    )
}

#[test]
fn consent_per_channel_and_purpose_defaults_to_no() {
    let mut e = Engine::default();
    e.ingest(register("r1", "13800138000")).unwrap();
    assert!(!e.has_consent(OneId(1), "sms", "marketing"));
    consent(
        &mut e,
        r#"{"kind": "phone", "value": "13800138000"}"#,
        "sms",
        true,
        "2026-01-02T00:00:00Z",
    )
    .unwrap();
    assert!(e.has_consent(OneId(1), "sms", "marketing"));
    assert!(!e.has_consent(OneId(1), "sms", "survey"));
    assert!(!e.has_consent(OneId(1), "push", "marketing"));
    let q = e
        .call_json(
            "consent",
            r#"{"user": {"oneid": 1}, "channel": "sms", "purpose": "marketing"}"#,
        )
        .unwrap();
    assert!(q.contains(r#""granted":true"#), "{q}");
    consent(
        &mut e,
        r#"{"oneid": 1}"#,
        "sms",
        false,
        "2026-01-03T00:00:00Z",
    )
    .unwrap();
    assert!(!e.has_consent(OneId(1), "sms", "marketing"));
    // bad input changes nothing
    let before = e.snapshot();
    assert!(consent(
        &mut e,
        r#"{"oneid": 9}"#,
        "sms",
        true,
        "2026-01-03T00:00:00Z"
    )
    .is_err());
    assert!(consent(&mut e, r#"{"oneid": 1}"#, " ", true, "2026-01-03T00:00:00Z").is_err());
    assert!(consent(&mut e, r#"{"oneid": 1}"#, "sms", true, "yesterday").is_err());
    assert_eq!(e.snapshot(), before);
    assert_eq!(e.privacy().audit().len(), 2);
}

#[test]
fn merge_carries_consent_later_decision_wins() {
    let mut e = Engine::default();
    e.ingest(register("r1", "13800138000")).unwrap();
    let two = e
        .ingest(Event::from_json(r#"{"kind": "identify", "key": "i0", "time": "2026-01-01T00:00:00Z",
        "source": {"platform": "app", "program": "b"}, "ids": [{"kind": "email", "value": "a@x.com"}]}"#).unwrap())
        .unwrap()
        .oneid
        .unwrap();
    consent(
        &mut e,
        r#"{"oneid": 1}"#,
        "sms",
        false,
        "2026-01-02T00:00:00Z",
    )
    .unwrap();
    consent(
        &mut e,
        &format!(r#"{{"oneid": {two}}}"#),
        "sms",
        true,
        "2026-01-05T00:00:00Z",
    )
    .unwrap();
    consent(
        &mut e,
        &format!(r#"{{"oneid": {two}}}"#),
        "email",
        true,
        "2026-01-05T00:00:00Z",
    )
    .unwrap();
    e.ingest(identify("i1", "13800138000", "a@x.com")).unwrap();
    assert!(
        e.has_consent(OneId(1), "sms", "marketing"),
        "later grant wins"
    );
    assert!(
        e.has_consent(two, "email", "marketing"),
        "absorbed id names the survivor"
    );
    e.check_invariants().unwrap();
}

#[test]
fn erase_removes_identifiers_and_consent_keeps_tombstone_and_audits() {
    let mut e = Engine::default();
    e.ingest(identify("i1", "13800138000", "a@x.com")).unwrap();
    e.ingest(register("r2", "13900139000")).unwrap();
    consent(
        &mut e,
        r#"{"oneid": 1}"#,
        "sms",
        true,
        "2026-01-02T00:00:00Z",
    )
    .unwrap();
    let out = e
        .call_json(
            "erase",
            r#"{"oneid": 1, "actor": "dpo", "time": "2026-01-03T00:00:00Z"}"#,
        )
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["identifiers_removed"], 2);
    assert_eq!(v["consents_removed"], 1);
    assert_eq!(v["already_erased"], false);
    assert_eq!(
        e.lookup(&UserRef::Id(
            crate::Identifier::parse("phone", "13800138000").unwrap()
        ))
        .unwrap(),
        None
    );
    assert!(!e.has_consent(OneId(1), "sms", "marketing"));
    assert_eq!(e.stats().identifiers, 1);
    // the tombstone cannot be used for new data
    let by_oneid = Event::from_json(
        r#"{"kind": "activity", "key": "a1", "time": "2026-01-04T00:00:00Z",
        "source": {"platform": "app", "program": "b"}, "user": {"oneid": 1}, "type": "login"}"#,
    )
    .unwrap();
    assert!(e.ingest(by_oneid).is_err());
    // the same phone coming back is a new person
    let again = e.ingest(register("r3", "13800138000")).unwrap();
    assert_eq!(again.oneid, Some(OneId(3)));
    let second = e
        .call_json(
            "erase",
            r#"{"oneid": 1, "actor": "dpo", "time": "2026-01-04T00:00:00Z"}"#,
        )
        .unwrap();
    assert!(second.contains(r#""already_erased":true"#));
    assert!(e
        .call_json(
            "erase",
            r#"{"oneid": 77, "actor": "dpo", "time": "2026-01-04T00:00:00Z"}"#
        )
        .is_err());
    let log: serde_json::Value =
        serde_json::from_str(&e.call_json("audit_log", "{}").unwrap()).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["set_consent", "erase", "erase"]);
    assert_eq!(log[1]["target"], "oneid:1");
    assert_eq!(log[1]["actor"], "dpo");
    e.check_invariants().unwrap();
}

#[test]
fn salted_hashing_at_intake_keeps_plain_values_out_of_state() {
    let cfg = Config::builder()
        .hash_identifiers("pepper")
        .build()
        .unwrap();
    let mut e = Engine::new(cfg);
    let r = e.ingest(identify("i1", "13800138000", "a@x.com")).unwrap();
    // The JSON form: the binary one is compressed, where no plain value could be seen.
    let mut snap = Vec::new();
    e.write_snapshot_json(&mut snap).unwrap();
    let snap = String::from_utf8(snap).unwrap();
    assert!(
        !snap.contains("8613800138000") && !snap.contains("a@x.com"),
        "{snap}"
    );
    assert!(snap.contains("sha256:"));
    // lookups with the plain value hash the same way
    let out = e
        .call_json(
            "resolve",
            r#"{"user": {"kind": "phone", "value": "+86 138 0013 8000"}}"#,
        )
        .unwrap();
    assert_eq!(out, format!(r#"{{"oneid":{}}}"#, r.oneid.unwrap()));
    // a replay of the same event is a duplicate, not a key clash
    assert!(
        e.ingest(identify("i1", "13800138000", "a@x.com"))
            .unwrap()
            .duplicate
    );
    // prepare is idempotent
    let c = Command::ingest(register("r9", "13900139000"));
    let once = e.prepare(c).unwrap();
    assert_eq!(e.prepare(once.clone()).unwrap(), once);
    assert!(Config::builder().hash_identifiers("").build().is_err());
}
