use super::*;
use userops::{Event, Identifier, OneId};

fn ev(key: &str, member: &str) -> Event {
    Event::from_json(&format!(
        r#"{{"kind": "register", "key": "{key}", "time": "2026-01-01T00:00:00Z",
        "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "member_no", "value": "{member}"}}}}"#
    ))
    .unwrap()
}

fn identify(key: &str, phone: &str, email: &str) -> Event {
    Event::from_json(&format!(
        r#"{{"kind": "identify", "key": "{key}", "time": "2026-01-01T00:00:00Z",
        "source": {{"platform": "app", "program": "b"}},
        "ids": [{{"kind": "phone", "value": "{phone}"}}, {{"kind": "email", "value": "{email}"}}]}}"#
    ))
    .unwrap()
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

#[test]
fn recovery_replays_journal_after_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let expected = {
        let mut s = Store::open(&path).unwrap();
        s.ingest(ev("a", "M1")).unwrap();
        s.snapshot().unwrap();
        s.ingest(ev("b", "M2")).unwrap();
        assert!(s.ingest(ev("b", "M3")).is_err(), "reused key refused");
        assert!(s.ingest(ev("b", "M2")).unwrap().duplicate);
        s.engine().snapshot()
    };
    let s = Store::open(&path).unwrap();
    assert_eq!(s.engine().snapshot(), expected);
    assert_eq!(
        s.last_seq(),
        2,
        "refused and duplicate commands are not journaled"
    );
    assert!(s.warnings().is_empty());
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    assert_eq!(r.records, 2);
}

#[test]
fn periodic_snapshots_are_reproduced_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut s = Store::options().snapshot_every(3).open(&path).unwrap();
        for i in 0..10 {
            s.ingest(ev(&format!("k{i}"), &format!("M{}", i % 4)))
                .unwrap();
        }
    }
    let snaps: Vec<i64> = raw(&path)
        .prepare("SELECT seq FROM snapshot ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(snaps, vec![6, 9]);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    assert_eq!(r.snapshots_reproduced, 2);
    assert_eq!(Store::open(&path).unwrap().engine().stats().events, 10);
}

fn digest(path: &Path) -> u64 {
    userops::util::fingerprint(&std::fs::read(path).unwrap())
}

fn refused_untouched(path: &Path, want: impl Fn(&StoreError) -> bool) {
    let before = digest(path);
    match Store::open(path) {
        Err(e) => assert!(want(&e), "unexpected error {e:?}"),
        Ok(_) => panic!("{} opened", path.display()),
    }
    assert_eq!(digest(path), before, "file untouched");
}

#[test]
fn bad_paths_are_typed_errors_and_leave_files_untouched() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::BadPath { .. })
    ));

    let junk = dir.path().join("junk.db");
    std::fs::write(
        &junk,
        b"this is not a sqlite database, just some text padding it out...",
    )
    .unwrap();
    refused_untouched(&junk, |e| matches!(e, StoreError::NotAStore { .. }));

    let foreign = dir.path().join("foreign.db");
    raw(&foreign)
        .execute_batch("CREATE TABLE invoices (id INTEGER);")
        .unwrap();
    refused_untouched(&foreign, |e| matches!(e, StoreError::NotAStore { .. }));

    let newer = dir.path().join("newer.db");
    drop(Store::open(&newer).unwrap());
    raw(&newer)
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    refused_untouched(
        &newer,
        |e| matches!(e, StoreError::NewerSchema { found, supported } if *found == SCHEMA_VERSION + 1 && *supported == SCHEMA_VERSION),
    );
    assert!(check(&newer).is_err());

    let ro = dir.path().join("ro.db");
    {
        let mut s = Store::open(&ro).unwrap();
        s.ingest(ev("a", "M1")).unwrap();
    }
    let mut perm = std::fs::metadata(&ro).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&ro, perm).unwrap();
    refused_untouched(&ro, |e| matches!(e, StoreError::ReadOnly { .. }));
    let code: userops::Error = Store::open(&ro).unwrap_err().into();
    assert_eq!(code.code(), userops::ErrorCode::Storage);
    assert!(
        check(&ro).unwrap().ok(),
        "a read-only store can still be checked"
    );
}

#[test]
fn torn_last_record_is_truncated_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut s = Store::open(&path).unwrap();
        for k in ["a", "b", "c"] {
            s.ingest(ev(k, k)).unwrap();
        }
    }
    // A torn write: the tail of the last record is missing.
    raw(&path)
        .execute(
            "UPDATE journal SET command = substr(command, 1, 30) WHERE seq = 3",
            [],
        )
        .unwrap();
    let r = check(&path).unwrap();
    assert!(r.ok() && r.warnings.len() == 1, "{r}");
    let s = Store::open(&path).unwrap();
    assert_eq!(s.warnings().len(), 1);
    assert!(matches!(&s.warnings()[0], Warning::TornTail { seq: 3, .. }));
    assert_eq!(s.last_seq(), 2);
    assert_eq!(s.engine().stats().events, 2);
    drop(s);
    let s = Store::open(&path).unwrap();
    assert!(s.warnings().is_empty(), "repaired once");
    assert!(check(&path).unwrap().ok());
}

#[test]
fn corruption_elsewhere_is_an_error_with_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut s = Store::open(&path).unwrap();
        s.ingest(ev("a", "M1")).unwrap();
        s.ingest(ev("b", "M2")).unwrap();
        s.ingest(ev("c", "M3")).unwrap();
    }
    raw(&path)
        .execute(
            "UPDATE journal SET command = replace(command, 'M2', 'M9') WHERE seq = 2",
            [],
        )
        .unwrap();
    raw(&path)
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let before = digest(&path);
    match Store::open(&path) {
        Err(StoreError::Corrupt { seq, .. }) => assert_eq!(seq, 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(digest(&path), before, "a corrupt store is not written to");
    let r = check(&path).unwrap();
    assert!(!r.ok() && r.problems[0].contains("record 2"), "{r}");
    // a missing record is caught too
    raw(&path)
        .execute(
            "UPDATE journal SET command = replace(command, 'M9', 'M2') WHERE seq = 2",
            [],
        )
        .unwrap();
    raw(&path)
        .execute("DELETE FROM journal WHERE seq = 2", [])
        .unwrap();
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Corrupt { seq: 2, .. })
    ));
}

#[test]
fn corrupt_snapshot_is_an_error_and_check_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut s = Store::open(&path).unwrap();
        s.ingest(ev("a", "M1")).unwrap();
        s.snapshot().unwrap();
    }
    let n = raw(&path)
        .execute(
            "UPDATE snapshot SET state = CAST(replace(CAST(state AS TEXT), 'M1', 'M7') AS BLOB)",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    let r = Store::open(&path);
    assert!(
        matches!(r, Err(StoreError::Corrupt { seq: 1, .. })),
        "{r:?}"
    );
    assert!(matches!(
        Store::open(&path),
        Err(StoreError::Corrupt { seq: 1, .. })
    ));
    assert!(!check(&path).unwrap().ok());
}

#[test]
fn group_commit_reports_what_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = Store::options()
        .durability(Durability::Group {
            max_commands: 3,
            max_delay: Duration::from_secs(3600),
        })
        .open(&path)
        .unwrap();
    let a1 = s.submit(Command::ingest(ev("a", "M1"))).unwrap();
    let a2 = s.submit(Command::ingest(ev("b", "M2"))).unwrap();
    assert_eq!((a1.seq, a1.durable, a2.durable), (Some(1), false, false));
    assert_eq!(s.durable_seq(), 0);
    // not yet on disk: another reader sees nothing
    let n: i64 = raw(&path)
        .query_row("SELECT count(*) FROM journal", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    let a3 = s.submit(Command::ingest(ev("c", "M3"))).unwrap();
    assert!(a3.durable);
    assert_eq!(s.durable_seq(), 3);
    let a4 = s.submit(Command::ingest(ev("d", "M4"))).unwrap();
    assert!(!a4.durable);
    s.flush().unwrap();
    assert_eq!(s.durable_seq(), 4);
    let q = s
        .submit(Command::from_call("stats", "{}").unwrap())
        .unwrap();
    assert!(q.durable && q.seq.is_none());
    // the time bound: checked at the next call
    let mut t = Store::options()
        .durability(Durability::Group {
            max_commands: 1000,
            max_delay: Duration::from_millis(1),
        })
        .open(dir.path().join("t.db"))
        .unwrap();
    t.submit(Command::ingest(ev("a", "M1"))).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    t.submit(Command::ingest(ev("b", "M2"))).unwrap();
    assert_eq!(t.durable_seq(), 1);
}

#[test]
fn batch_ingest_one_transaction_per_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    let mut events: Vec<Event> = (0..10)
        .map(|i| ev(&format!("k{i}"), &format!("M{i}")))
        .collect();
    events.push(ev("k3", "other")); // key reuse: refused, the rest goes on
    events.push(ev("k4", "M4")); // replay: duplicate, not journaled
    let out = s.ingest_batch(events, 4).unwrap();
    assert_eq!(out.len(), 12);
    assert!(out[10].is_err());
    assert!(out[11].as_ref().unwrap().duplicate);
    assert_eq!(s.last_seq(), 10);
    assert_eq!(s.durable_seq(), 10);
    drop(s);
    assert_eq!(Store::open(&path).unwrap().engine().stats().events, 10);
}

#[test]
fn migrates_a_schema_1_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let c = raw(&path);
    c.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE journal (seq INTEGER PRIMARY KEY, method TEXT NOT NULL, command TEXT NOT NULL, checksum INTEGER NOT NULL);
         CREATE TABLE snapshot (seq INTEGER PRIMARY KEY, state BLOB NOT NULL);",
    )
    .unwrap();
    let mut mem = Engine::default();
    for (i, k) in ["a", "b"].iter().enumerate() {
        let cmd = Command::ingest(ev(k, k));
        mem.execute(cmd.clone()).unwrap();
        let text = serde_json::to_string(&cmd).unwrap();
        c.execute(
            "INSERT INTO journal VALUES (?1, 'ingest', ?2, ?3)",
            params![
                i as i64 + 1,
                text,
                userops::util::fingerprint(text.as_bytes()) as i64
            ],
        )
        .unwrap();
    }
    drop(c);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.engine().snapshot(), mem.snapshot());
    drop(s);
    let v: i64 = raw(&path)
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let keys: Vec<String> = raw(&path)
        .prepare("SELECT idem_key FROM journal ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(keys, ["a", "b"]);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
}

#[test]
fn materialized_tables_follow_merges_and_erasure() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    // Rules that let one person hold two phones and two emails, so that i3 merges 2 into 1
    // (the default caps of one would refuse the link and report a conflict instead).
    s.execute(
        Command::from_call(
            "set_identity_rules",
            r#"{"rules": {"caps": {"phone": 2, "email": 2}}, "actor": "test", "reason": "two phones"}"#,
        )
        .unwrap(),
    )
    .unwrap();
    s.ingest(identify("i1", "13800138000", "a@x.com")).unwrap();
    s.ingest(identify("i2", "13900139000", "b@x.com")).unwrap();
    s.ingest(identify("i3", "13900139000", "a@x.com")).unwrap(); // merges 2 into 1
    let rows = |c: &Connection, sql: &str| -> Vec<(String, i64)> {
        c.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let c = raw(&path);
    let ids = rows(&c, "SELECT value, oneid FROM identities ORDER BY value");
    assert_eq!(ids.len(), 4);
    assert!(ids.iter().all(|(_, o)| *o == 1), "{ids:?}");
    let merged: i64 = c
        .query_row("SELECT merged_into FROM persons WHERE oneid = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(merged, 1);
    s.call_json("set_consent", r#"{"user": {"oneid": 2}, "channel": "sms", "purpose": "marketing", "granted": true, "actor": "op", "time": "2026-01-02T00:00:00Z"}"#).unwrap();
    let consent = rows(&c, "SELECT channel, oneid FROM consent");
    assert_eq!(consent, vec![("sms".to_owned(), 1)]);
    s.call_json(
        "erase",
        r#"{"oneid": 1, "actor": "dpo", "time": "2026-01-03T00:00:00Z"}"#,
    )
    .unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM identities", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    let n: i64 = c
        .query_row("SELECT count(*) FROM consent", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    let audit = rows(&c, "SELECT action, seq FROM audit ORDER BY seq");
    assert_eq!(
        audit,
        vec![("set_consent".to_owned(), 1), ("erase".to_owned(), 2)]
    );
    // the audit log cannot be edited, even from SQL
    assert!(c.execute("UPDATE audit SET actor = 'nobody'", []).is_err());
    assert!(c.execute("DELETE FROM audit", []).is_err());
    drop(s);
    assert!(check(&path).unwrap().ok());
}

fn file_mentions(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().any(|f| {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
    })
}

#[test]
fn erase_redacts_the_journal_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let live = {
        let mut s = Store::options().snapshot_every(2).open(&path).unwrap();
        s.ingest(identify("i1", "13800138000", "secret@x.com"))
            .unwrap();
        s.ingest(ev("r1", "M-other")).unwrap();
        s.ingest(identify("i2", "13800138000", "secret2@x.com"))
            .unwrap();
        let by_oneid = Event::from_json(
            r#"{"kind": "activity", "key": "a1", "time": "2026-01-04T00:00:00Z",
            "source": {"platform": "app", "program": "b"}, "user": {"oneid": 1}, "type": "login"}"#,
        )
        .unwrap();
        s.ingest(by_oneid).unwrap();
        let ack = s
            .submit(
                Command::from_call(
                    "erase",
                    r#"{"oneid": 1, "actor": "dpo", "time": "2026-01-03T00:00:00Z"}"#,
                )
                .unwrap(),
            )
            .unwrap();
        assert!(ack.durable);
        s.ingest(ev("r2", "M-later")).unwrap();
        s.engine().snapshot()
    };
    // checkpoint the WAL so the main file is what we search, then look for the plain values
    raw(&path)
        .pragma_query_value(None, "wal_checkpoint", |_| Ok(()))
        .unwrap();
    assert!(!file_mentions(dir.path(), "secret@x.com"));
    assert!(!file_mentions(dir.path(), "8613800138000"));
    assert!(
        file_mentions(dir.path(), "M-other"),
        "other people's records are kept"
    );
    let redacted: i64 = raw(&path)
        .query_row(
            "SELECT count(*) FROM journal WHERE method = 'redacted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(redacted, 2);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.engine().snapshot(), live);
    drop(s);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    assert_eq!(r.redacted, 2);
    assert_eq!(r.replay_base, 5);
}

#[test]
fn hashing_keeps_plain_identifiers_off_disk_and_config_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let cfg = Config::builder()
        .hash_identifiers("pepper")
        .build()
        .unwrap();
    {
        let mut s = Store::open_with(&path, cfg).unwrap();
        s.ingest(identify("i1", "13800138000", "secret@x.com"))
            .unwrap();
        s.snapshot().unwrap();
    }
    {
        // reopened with default options: the store keeps its creation config
        let mut s = Store::open(&path).unwrap();
        s.ingest(identify("i2", "13700137000", "other@x.com"))
            .unwrap();
        let id = Identifier::parse("phone", "13700137000").unwrap();
        assert_eq!(
            s.engine().lookup(&userops::UserRef::Id(id)).unwrap(),
            Some(OneId(2))
        );
    }
    raw(&path)
        .pragma_query_value(None, "wal_checkpoint", |_| Ok(()))
        .unwrap();
    for plain in [
        "secret@x.com",
        "other@x.com",
        "8613800138000",
        "8613700137000",
    ] {
        assert!(!file_mentions(dir.path(), plain), "{plain} on disk");
    }
    assert!(check(&path).unwrap().ok());
}

#[test]
fn handle_opens_both_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let mut h = EngineHandle::open(&path, "group").unwrap();
    h.ingest_json(r#"{"kind": "register", "key": "r1", "time": "2026-01-01T00:00:00Z",
        "source": {"platform": "app", "program": "b"}, "user": {"kind": "member_no", "value": "M1"}}"#)
        .unwrap();
    assert!(h.engine_mut().is_err());
    drop(h);
    let mut h = EngineHandle::open(&path, "every").unwrap();
    assert!(h
        .call_json("stats", "{}")
        .unwrap()
        .contains(r#""events":1"#));
    assert!(EngineHandle::open(&path, "sometimes").is_err());
    assert!(EngineHandle::default().engine_mut().is_ok());
}
