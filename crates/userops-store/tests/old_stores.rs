//! Stores written by the build at main d586624 open, replay and keep working:
//! `fixtures/make_old_stores.c` wrote them with that build's C ABI, filled with what the new
//! intake rules refuse (one order id under two keys, refunds of unknown orders and above what
//! was paid, amounts with three decimals or 29 digits, times in years 1 and 9999, a commit of
//! an edited quote, the deletion of an audience a rule tag uses, a clawback into debt).
//!
//! - `main-d586624-journal.db`: the journal alone. It replays as it was accepted
//!   (`Engine::replay`), receipts get the canonical fingerprints, the order book is rebuilt.
//! - `main-d586624-erased.db`: the same, an erasure (the journal before it is redacted, the
//!   snapshot is in format 3), then two events. The snapshot is read as it is
//!   (`Engine::upgrade_snapshot`): the order book does not know the orders before it.
//!
//! In both, new commands are judged by the new rules, `check` passes, and reopening gives the
//! same state byte for byte.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use userops::{Error, ErrorCode};
use userops_store::{check, Store, StoreError, Warning};

fn copy(name: &str, dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dst = dir.join(name);
    std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    dst
}

fn call(s: &mut Store, method: &str, args: Value) -> Result<Value, Error> {
    match s.call_json(method, &args.to_string()) {
        Ok(out) => Ok(serde_json::from_str(&out).unwrap()),
        Err(StoreError::Engine(e)) => Err(e),
        Err(e) => panic!("{method}: {e}"),
    }
}

fn ingest(s: &mut Store, event: Value) -> Result<Value, Error> {
    call(s, "ingest", json!({ "event": event }))
}

fn order(key: &str, order_id: &str, amount: &str, member: &str) -> Value {
    json!({"kind": "order", "key": key, "time": "2026-02-01T10:00:00+08:00",
           "source": {"platform": "app", "program": "b"},
           "user": {"kind": "member_no", "value": member}, "order_id": order_id,
           "amount": amount})
}

fn refund(key: &str, order_id: &str, amount: &str, member: &str) -> Value {
    json!({"kind": "refund", "key": key, "time": "2026-02-02T10:00:00+08:00",
           "source": {"platform": "app", "program": "b"},
           "user": {"kind": "member_no", "value": member}, "order_id": order_id,
           "amount": amount})
}

/// What both fixtures answer the same way once opened by this build.
fn the_new_rules_judge_new_commands(s: &mut Store) {
    // Amounts out of bounds, times out of the window: refused.
    let before = s.engine().snapshot();
    let e = ingest(s, order("o-mills-2", "O20", "1.005", "M1")).unwrap_err();
    assert_eq!(
        (e.code(), e.field()),
        (ErrorCode::OutOfRange, Some("amount"))
    );
    let mut ev = order("o-old", "O21", "1.00", "M1");
    ev["time"] = json!("0001-01-01T00:00:00Z");
    let e = ingest(s, ev).unwrap_err();
    assert_eq!(e.field(), Some("time"), "{e}");
    assert!(
        s.engine().snapshot() == before,
        "a refused command changed the state"
    );
    // A new order and its refunds: bounded.
    ingest(s, order("o-new", "O30", "50.00", "M2")).unwrap();
    ingest(s, refund("rf-new-1", "O30", "30.00", "M2")).unwrap();
    let e = ingest(s, refund("rf-new-2", "O30", "30.00", "M2")).unwrap_err();
    assert_eq!(
        (e.code(), e.field()),
        (ErrorCode::OutOfRange, Some("amount"))
    );
    // A commit needs the quote's checksum.
    let e = call(
        s,
        "commit",
        json!({"key": "c2", "quote": {"applied": [], "time": "2026-02-01T00:00:00Z"}}),
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("quote.checksum"), "{e}");
}

fn reopened_is_identical_and_checked(path: &Path, state: Vec<u8>) {
    let s = Store::open(path).unwrap();
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    assert!(
        s.engine().snapshot() == state,
        "reopening changed the state"
    );
    drop(s);
    let r = check(path).unwrap();
    assert!(r.ok(), "{r}");
}

#[test]
fn a_journal_written_before_issue_25_replays_as_it_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy("main-d586624-journal.db", dir.path());
    let mut s = Store::open(&path).unwrap();
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    {
        let e = s.engine();
        assert_eq!(e.stats().events, 14);
        e.check_invariants().unwrap();
    }
    // What was accepted stays: both deliveries of O1 and the three refunds count in the
    // profile, as they did; the clawback of the old default left M3 in debt.
    let m1 = call(
        &mut s,
        "profile",
        json!({"user": {"kind": "member_no", "value": "M1"}}),
    )
    .unwrap();
    let a = &m1["aggregates"];
    assert_eq!(
        (a["orders"].clone(), a["refunds"].clone()),
        (json!(3), json!(3)),
        "{a}"
    );
    let debt = call(
        &mut s,
        "balance",
        json!({"user": {"kind": "member_no", "value": "M3"}, "program": "b"}),
    )
    .unwrap();
    assert_eq!(debt, json!(-30));
    // Analyses over the 29-digit amount answer with a typed error, not a panic.
    let e = call(&mut s, "repurchase", json!({})).unwrap_err();
    assert_eq!(e.code(), ErrorCode::OutOfRange, "{e}");
    // Receipts were recomputed by the replay: canonical fingerprints. The order written with
    // "10.0" and resent with "10.00" is the same event; the identify with its ids in the
    // other order too.
    let r = ingest(
        &mut s,
        order_at(
            "o-one-decimal",
            "O4",
            "10.00",
            "M2",
            "2026-01-08T12:00:00+08:00",
        ),
    )
    .unwrap();
    assert_eq!(r["duplicate"], json!(true));
    let ident = json!({"kind": "identify", "key": "i1", "time": "2026-01-05T10:00:00+08:00",
        "source": {"platform": "app", "program": "b"},
        "ids": [{"kind": "member_no", "value": "M1"}, {"kind": "phone", "value": "13800138000"}]});
    assert_eq!(ingest(&mut s, ident).unwrap()["duplicate"], json!(true));
    // A refund of O1, over-refunded before the rules: nothing is left to refund now. A third
    // key for O1, a refund of an order that never was: refused.
    let e = ingest(&mut s, refund("rf-more", "O1", "1.00", "M1")).unwrap_err();
    assert_eq!(
        (e.code(), e.field()),
        (ErrorCode::OutOfRange, Some("amount"))
    );
    let e = ingest(&mut s, order("pipeline-c:O1", "O1", "100.00", "M1")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::DuplicateOrder, "{e}");
    assert!(e.to_string().contains("pipeline-a:O1"), "{e}");
    let e = ingest(&mut s, refund("rf-x", "O99", "1.00", "M1")).unwrap_err();
    assert_eq!(e.field(), Some("order_id"), "{e}");
    the_new_rules_judge_new_commands(&mut s);
    let state = s.engine().snapshot();
    drop(s);
    reopened_is_identical_and_checked(&path, state);
}

fn order_at(key: &str, order_id: &str, amount: &str, member: &str, time: &str) -> Value {
    let mut o = order(key, order_id, amount, member);
    o["time"] = json!(time);
    o
}

#[test]
fn a_redacted_journal_with_a_format_3_snapshot_is_read_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy("main-d586624-erased.db", dir.path());
    let mut s = Store::open(&path).unwrap();
    assert!(
        matches!(s.warnings(), [Warning::UpgradedSnapshot { format: 3, .. }]),
        "{:?}",
        s.warnings()
    );
    {
        let e = s.engine();
        assert_eq!(e.stats().events, 17);
        e.check_invariants().unwrap();
    }
    // The receipts restored from the old snapshot hold the fingerprint of the event as it was
    // given: an exact resend is still the same event.
    let r = ingest(
        &mut s,
        order_at(
            "o-one-decimal",
            "O4",
            "10.0",
            "M2",
            "2026-01-08T12:00:00+08:00",
        ),
    )
    .unwrap();
    assert_eq!(r["duplicate"], json!(true));
    // The order book does not know the orders before the snapshot: a refund of one is
    // accepted unchecked, as it was. Orders after it are known (O6 came twice after the
    // snapshot; the first stays).
    ingest(&mut s, refund("rf-o5", "O5", "10.00", "M1")).unwrap();
    let e = ingest(&mut s, order("after-3", "O6", "20.00", "M2")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::DuplicateOrder, "{e}");
    assert!(e.to_string().contains("after-1"), "{e}");
    the_new_rules_judge_new_commands(&mut s);
    let state = s.engine().snapshot();
    drop(s);
    reopened_is_identical_and_checked(&path, state);
}

#[test]
fn check_reports_an_old_snapshot_until_the_store_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy("main-d586624-erased.db", dir.path());
    let r = check(&path).unwrap();
    assert!(!r.ok(), "{r}");
    assert!(
        r.problems.iter().any(|p| p.contains("open the store once")),
        "{r}"
    );
    drop(Store::open(&path).unwrap());
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    assert!(r.warnings.iter().any(|w| w.contains("superseded")), "{r}");
}
