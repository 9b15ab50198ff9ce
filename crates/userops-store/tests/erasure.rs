//! Erasure leaves no personal byte (SPEC §9): a distinct marker is written into every
//! personal field reachable through the commands (identifiers, attribute values, order and
//! line fields, activity and behaviour types, touch content, community and coupon events,
//! coupon holders, consent, tags, ledger keys and reasons, commit keys), the person is erased,
//! and every byte of the store's files (main file, `-wal`, `-shm`) and of a fresh snapshot is
//! scanned: no marker remains, while another person's data does; the ledgers still balance and
//! `check` is clean.

use std::path::Path;

use rusqlite::Connection;
use serde_json::{json, Value};
use userops::Command;
use userops_store::{check, Store};

#[path = "support/snapshots.rs"]
mod snapshots;

/// Markers that must not survive the erasure (each a distinct byte string).
const MARKERS: &[&str] = &[
    "MKMEMBER77",         // member_no
    "13912345678",        // phone, as written and inside +8613912345678
    "13987654321",        // a second phone it claimed, kept apart by the one-phone cap
    "mk.email@ex.test",   // email
    "MK-DEVICE-77",       // device id (the coupon holder's identifier)
    "mk-consent@ex.test", // platform user id the consent was given under
    "MK-ATTR-NAME",       // string attribute
    "MK-ATTR-LIST",       // list attribute
    "987654.125",         // number attribute
    "MK-ORDER-ID",        // order id
    "MK-SKU",             // line sku
    "MK-CATEGORY",        // line category
    "MK-CHANNEL",         // order channel
    "MK-REGION",          // order region
    "MK-STORE",           // order store
    "MK-ACTIVITY",        // activity type
    "MK-BEHAVIOR",        // behaviour type
    "MK-BCATEGORY",       // behaviour category
    "MK-TOUCH-CONTENT",   // touch content
    "MK-COMMUNITY",       // community
    "MK-COUPON-EVENT",    // coupon event id
    "MK-TAG-VALUE",       // enum tag (set_tag)
    "MK-TABLE-TAG",       // enum tag (set_tags table)
    "MK-EARN-KEY",        // ledger idempotency key
    "MK-EARN-REASON",     // ledger free text
    "MK-COMMIT-KEY",      // promotion commit key
];

/// Another person's value: it must stay (the scan can see what is there).
const KEPT: &str = "OtherKeepsThisCity";

fn call(s: &mut Store, method: &str, args: Value) -> Value {
    let out = s
        .call_json(method, &args.to_string())
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    serde_json::from_str(&out).unwrap()
}

fn ingest(s: &mut Store, event: Value) -> Value {
    call(s, "ingest", json!({ "event": event }))
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file of the directory (the store's main file, `-wal` and `-shm`), concatenated.
fn all_files(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    all
}

/// Every snapshot stored in the store at `path`, as JSON text: the stored ones are compressed,
/// where a scan of the files could not see a personal byte.
fn stored_snapshots_as_json(path: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for (_, bytes) in snapshots::stored(path) {
        let engine = userops::Engine::restore(&bytes).unwrap();
        engine.write_snapshot_json(&mut all).unwrap();
    }
    all
}

fn src() -> Value {
    json!({"platform": "app", "program": "brand-a"})
}

/// Person 1 (the one erased) with a marker in every personal field; person 2 kept.
fn fill(s: &mut Store) {
    let me = json!({"kind": "member_no", "value": "MKMEMBER77"});
    let t = |d: u32| format!("2026-01-{d:02}T10:00:00Z");
    call(
        s,
        "create_program",
        json!({"program": {"id": "brand-a", "earn": {"points_per_unit": "1", "return_days": 30}}}),
    );
    ingest(
        s,
        json!({"kind": "identify", "key": "k1", "time": t(1), "source": src(), "ids": [me,
            {"kind": "phone", "value": "13912345678"}, {"kind": "email", "value": "mk.email@ex.test"},
            {"kind": "device_id", "value": "MK-DEVICE-77"},
            {"kind": "platform_user_id", "value": "mk-consent@ex.test"}]}),
    );
    ingest(
        s,
        json!({"kind": "register", "key": "k2", "time": t(1), "source": src(), "user": me}),
    );
    ingest(
        s,
        json!({"kind": "register", "key": "k3", "time": t(1), "source": src(),
            "user": {"kind": "member_no", "value": "OTHER1"}}),
    );
    call(
        s,
        "set_attribute",
        json!({"user": {"kind": "member_no", "value": "OTHER1"}, "name": "city", "value": KEPT}),
    );
    // The claim founds a person of its own (a conflict): nothing but this record evidences it.
    ingest(
        s,
        json!({"kind": "identify", "key": "k1b", "time": t(1), "source": src(), "ids": [me,
            {"kind": "phone", "value": "13987654321"}]}),
    );
    call(
        s,
        "set_attribute",
        json!({"user": me, "name": "full_name", "value": "MK-ATTR-NAME", "at": t(2)}),
    );
    call(
        s,
        "set_attribute",
        json!({"user": me, "name": "hobbies", "value": ["MK-ATTR-LIST"], "at": t(2)}),
    );
    call(
        s,
        "set_attribute",
        json!({"user": me, "name": "shoe_size", "value": 987654.125, "at": t(2)}),
    );
    ingest(
        s,
        json!({"kind": "activity", "key": "k4", "time": t(3), "source": src(), "user": me,
            "type": "MK-ACTIVITY"}),
    );
    ingest(
        s,
        json!({"kind": "behavior", "key": "k5", "time": t(3), "source": src(), "user": me,
            "type": "MK-BEHAVIOR", "category": "MK-BCATEGORY", "channel": "app"}),
    );
    ingest(
        s,
        json!({"kind": "order", "key": "k6", "time": t(4), "source": src(),
            "user": {"kind": "phone", "value": "13912345678"},
            "order_id": "MK-ORDER-ID", "amount": "120.00", "channel": "MK-CHANNEL",
            "region": "MK-REGION", "store": "MK-STORE",
            "lines": [{"sku": "MK-SKU", "category": "MK-CATEGORY", "price": "60.00", "qty": 2}]}),
    );
    ingest(
        s,
        json!({"kind": "refund", "key": "MK-EVENT-KEY", "time": t(5), "source": src(), "user": me,
            "order_id": "MK-ORDER-ID", "amount": "60.00"}),
    );
    ingest(
        s,
        json!({"kind": "community", "key": "k8", "time": t(5), "source": src(), "user": me,
            "community": "MK-COMMUNITY", "action": "message"}),
    );
    ingest(
        s,
        json!({"kind": "touch", "key": "k9", "time": t(6), "source": src(), "user": me,
            "channel": "sms", "content": "MK-TOUCH-CONTENT", "outcome": "opened"}),
    );
    ingest(
        s,
        json!({"kind": "coupon", "key": "k10", "time": t(6), "source": src(), "user": me,
            "coupon_id": "MK-COUPON-EVENT", "action": "issued"}),
    );
    call(s, "define_tag", json!({"name": "nickname", "type": "enum"}));
    call(
        s,
        "set_tag",
        json!({"user": me, "tag": "nickname", "value": "MK-TAG-VALUE", "now": t(7)}),
    );
    call(
        s,
        "set_tags",
        json!({"kind": "member_no", "users": ["MKMEMBER77", "OTHER1"], "now": t(7),
            "tags": [{"name": "motto", "type": "enum", "values": ["MK-TABLE-TAG", "other motto"]}]}),
    );
    call(
        s,
        "set_consent",
        json!({"user": {"kind": "platform_user_id", "value": "mk-consent@ex.test"}, "channel": "sms",
            "purpose": "marketing", "granted": true, "actor": "crm", "time": t(7)}),
    );
    call(
        s,
        "earn",
        json!({"user": me, "program": "brand-a", "points": 500, "key": "MK-EARN-KEY",
            "reason": "MK-EARN-REASON", "time": t(8)}),
    );
    call(
        s,
        "spend",
        json!({"user": me, "program": "brand-a", "points": 120, "key": "spend-1", "time": t(9)}),
    );
    call(
        s,
        "add_coupon_template",
        json!({"template": {"id": "c10", "kind": "consumption",
            "benefit": {"type": "amount_off", "off": "10"}, "valid_days": 30}}),
    );
    call(
        s,
        "issue_coupons",
        json!({"template": "c10", "users": [{"kind": "device_id", "value": "MK-DEVICE-77"}],
            "time": t(9)}),
    );
    call(
        s,
        "add_promotion",
        json!({"promotion": {"id": "p20", "action": {"type": "threshold_discount", "threshold": "50", "off": "20"},
            "limits": {"per_user": 3}}}),
    );
    let q = call(
        s,
        "quote",
        json!({"cart": {"time": t(10), "lines": [{"sku": "MK-SKU", "price": "80.00", "qty": 1}]},
            "user": me}),
    );
    call(s, "commit", json!({"quote": q, "key": "MK-COMMIT-KEY"}));
    call(s, "rfm", json!({"as_of": t(20), "tag": "rfm_segment"}));
    call(
        s,
        "add_rule",
        json!({"rule": {"id": "hello", "trigger": {"type": "inactive", "days": 1},
            "actions": [{"type": "touch", "channel": "sms", "content": "hello"}]}}),
    );
    call(s, "run_automation", json!({"now": t(21)}));
}

#[test]
fn erasure_leaves_no_personal_byte_in_the_files_or_a_fresh_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.db");
    {
        // Periodic snapshots: the person is in several before the erasure.
        let mut s = Store::options().snapshot_every(4).open(&path).unwrap();
        fill(&mut s);
        let before = all_files(dir.path());
        let stored = stored_snapshots_as_json(&path);
        assert!(
            !stored.is_empty(),
            "no snapshot was stored before the erasure"
        );
        let mut snap = Vec::new();
        s.engine().write_snapshot_json(&mut snap).unwrap();
        for m in MARKERS {
            assert!(
                holds(&before, m) || holds(&snap, m),
                "{m} was never written: the test would prove nothing for it"
            );
        }
        let e = call(
            &mut s,
            "erase",
            json!({"oneid": 1, "actor": "dpo", "time": "2026-02-01T00:00:00Z"}),
        );
        assert_eq!(e["identifiers_removed"], 6, "{e}");
        assert_eq!(
            e["also_erased"],
            json!([3]),
            "the person of the claimed phone"
        );
        // While the store is open too (the WAL and the shared memory file exist).
        let open = all_files(dir.path());
        let stored = stored_snapshots_as_json(&path);
        for m in MARKERS {
            assert!(
                !holds(&open, m),
                "{m} is in the store's files after the erasure"
            );
            assert!(!holds(&stored, m), "{m} is in a stored snapshot");
        }
    }
    let closed = all_files(dir.path());
    for m in MARKERS {
        assert!(
            !holds(&closed, m),
            "{m} is in the store's files after closing"
        );
    }
    assert!(holds(&closed, KEPT), "the other person's data stays");
    let s = Store::open(&path).unwrap();
    let mut snap = Vec::new();
    s.engine().write_snapshot_json(&mut snap).unwrap();
    let stored = stored_snapshots_as_json(&path);
    for m in MARKERS {
        assert!(!holds(&snap, m), "{m} is in a fresh snapshot");
        assert!(
            !holds(&stored, m),
            "{m} is in a stored snapshot after reopening"
        );
    }
    assert!(holds(&snap, KEPT));
    // The ledger still balances (part of the invariants) and the person's postings stay,
    // under a pseudonym.
    s.engine().check_invariants().unwrap();
    {
        let view = s.engine();
        let ledger = view.loyalty().ledger();
        let total: i128 = ledger.accounts().iter().map(|a| a.balance()).sum();
        assert_eq!(total, 0);
        assert!(ledger.accounts().iter().any(|a| matches!(a.kind,
            userops::loyalty::AccountKind::Member(o) if userops::privacy::is_pseudonym(o) && a.balance() != 0)));
    }
    drop(s);
    let report = check(&path).unwrap();
    assert!(report.ok(), "{report}");
}

/// A crash between an erasure's commit and the checkpoint that folds the WAL leaves the old
/// pages in the WAL; the next open folds it before anything else. Simulated by a reader that
/// keeps the checkpoint from truncating the WAL, and a copy of the files taken then.
#[test]
fn an_erasure_interrupted_before_its_checkpoint_is_folded_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.db");
    let copy = tempfile::tempdir().unwrap();
    let marker = "MKWALMEMBER1";
    {
        let mut s = Store::open(&path).unwrap();
        ingest(
            &mut s,
            json!({"kind": "register", "key": "r1", "time": "2026-01-01T00:00:00Z",
                "source": src(), "user": {"kind": "member_no", "value": marker}}),
        );
        let reader = Connection::open(&path).unwrap();
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM journal;")
            .unwrap();
        s.execute(
            Command::from_call(
                "erase",
                r#"{"oneid": 1, "actor": "dpo", "time": "2026-01-02T00:00:00Z"}"#,
            )
            .unwrap(),
        )
        .unwrap();
        // The "crash": the files as they are now.
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, copy.path().join(f.file_name().unwrap())).unwrap();
        }
        drop(reader);
    }
    assert!(
        holds(&all_files(copy.path()), marker),
        "the reader kept the old pages in the WAL (the situation this test is about)"
    );
    let s = Store::open(copy.path().join("pool.db")).unwrap();
    assert!(
        !holds(&all_files(copy.path()), marker),
        "opening folds the WAL before anything else"
    );
    assert_eq!(s.engine().stats().persons, 1);
}
