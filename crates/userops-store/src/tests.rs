use super::*;
use userops::{Event, Identifier, OneId};

#[path = "../tests/support/snapshots.rs"]
mod snapshots;

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

/// The one value a query returns (a count, say).
fn scalar(c: &Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

#[test]
fn recovery_replays_journal_after_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let expected = {
        let s = Store::open(&path).unwrap();
        s.ingest(ev("a", "M1")).unwrap();
        s.snapshot().unwrap();
        s.ingest(ev("b", "M2")).unwrap();
        assert!(s.ingest(ev("b", "M3")).is_err(), "reused key refused");
        assert!(s.ingest(ev("b", "M2")).unwrap().duplicate);
        let bytes = s.engine().snapshot();
        bytes
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
        let s = Store::options().snapshot_every(3).open(&path).unwrap();
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
    // No file at all: SQLite would keep the journal in memory, and lose it at close.
    for nowhere in ["", ":memory:"] {
        assert!(
            matches!(Store::open(nowhere), Err(StoreError::BadPath { .. })),
            "{nowhere:?}"
        );
    }

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
        let s = Store::open(&ro).unwrap();
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
        let s = Store::open(&path).unwrap();
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
        let s = Store::open(&path).unwrap();
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
        let s = Store::open(&path).unwrap();
        s.ingest(ev("a", "M1")).unwrap();
        s.snapshot().unwrap();
    }
    // One byte in the middle of the stored snapshot changed.
    let n = raw(&path)
        .execute(
            "UPDATE snapshot_chunk SET bytes = substr(bytes, 1, length(bytes) / 2)
                 || (CASE WHEN substr(bytes, length(bytes) / 2 + 1, 1) = X'00' THEN X'01' ELSE X'00' END)
                 || substr(bytes, length(bytes) / 2 + 2)",
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
    let s = Store::options()
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
    let n: i64 = scalar(&raw(&path), "SELECT count(*) FROM journal");
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
    let t = Store::options()
        .durability(Durability::Group {
            max_commands: 1000,
            max_delay: Duration::from_millis(1),
        })
        .open(dir.path().join("t.db"))
        .unwrap();
    t.submit(Command::ingest(ev("a", "M1"))).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    t.submit(Command::ingest(ev("b", "M2"))).unwrap();
    assert!(t.durable_seq() >= 1);
}

#[test]
fn batch_ingest_one_transaction_per_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path).unwrap();
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
    // A reader that never writes does not migrate: it says so, and reads after an open.
    let old = crate::history::EventLog::open(&path).unwrap_err();
    assert!(
        matches!(old, StoreError::OldSchema { found: 1, .. }),
        "{old}"
    );
    let s = Store::open(&path).unwrap();
    assert_eq!(s.engine().snapshot(), mem.snapshot());
    drop(s);
    let mut keys = Vec::new();
    let history = crate::history::EventLog::open(&path)
        .unwrap()
        .for_each(|e| {
            keys.push(e.event.key);
            Ok::<_, StoreError>(())
        })
        .unwrap();
    assert_eq!((keys, history.records), (vec!["a".into(), "b".into()], 2));
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
    let s = Store::open(&path).unwrap();
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
    let n: i64 = scalar(&c, "SELECT count(*) FROM identities");
    assert_eq!(n, 0);
    let n: i64 = scalar(&c, "SELECT count(*) FROM consent");
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

/// Whether `needle` is in a file of `dir` or in a stored snapshot of a store there.
fn file_mentions(dir: &Path, needle: &str) -> bool {
    !any_file_mentions(dir, needle).is_empty()
}

#[test]
fn erase_redacts_the_journal_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let live = {
        let s = Store::options().snapshot_every(2).open(&path).unwrap();
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
        let bytes = s.engine().snapshot();
        bytes
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
    let snapshots = snapshots::contents(&path);
    assert!(
        snapshots.windows(7).any(|w| w == b"M-other"),
        "the stored snapshots are searched too"
    );
    let redacted: i64 = scalar(
        &raw(&path),
        "SELECT count(*) FROM journal WHERE method = 'redacted'",
    );
    // the two identify events, and the activity naming the person by OneID
    assert_eq!(redacted, 3);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.engine().snapshot(), live);
    drop(s);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    assert_eq!(r.redacted, 3);
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
        let s = Store::open_with(&path, cfg).unwrap();
        s.ingest(identify("i1", "13800138000", "secret@x.com"))
            .unwrap();
        s.snapshot().unwrap();
    }
    {
        // reopened with default options: the store keeps its creation config
        let s = Store::open(&path).unwrap();
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
    let h = EngineHandle::open(&path, "every").unwrap();
    assert!(h
        .call_json("stats", "{}")
        .unwrap()
        .contains(r#""events":1"#));
    assert!(EngineHandle::open(&path, "sometimes").is_err());
    assert!(EngineHandle::default().engine_mut().is_ok());
}

#[test]
fn group_commit_timer_makes_a_lone_command_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::options()
        .durability(Durability::Group {
            max_commands: 1000,
            max_delay: Duration::from_millis(20),
        })
        .open(&path)
        .unwrap();
    let ack = s.submit(Command::ingest(ev("a", "M1"))).unwrap();
    // Staged and acknowledged under the lock the flusher needs: not durable yet.
    assert_eq!((ack.seq, ack.durable), (Some(1), false));
    // No further call: the flusher alone must commit it. The bound is generous (a loaded
    // machine); the deadline is 20 ms.
    assert!(
        s.wait_durable(1, Duration::from_secs(60)),
        "not made durable"
    );
    assert_eq!(s.durable_seq(), 1);
    let n: i64 = scalar(&raw(&path), "SELECT count(*) FROM journal");
    assert_eq!(n, 1, "another reader sees the committed record");
    assert!(
        !s.wait_durable(2, Duration::from_millis(10)),
        "seq 2 was never journaled"
    );
    // A second group after an idle spell is flushed too.
    let ack = s.submit(Command::ingest(ev("b", "M2"))).unwrap();
    assert!(s.wait_durable(ack.seq.unwrap(), Duration::from_secs(60)));
    // Dropping stops the flusher (the test would hang on a join otherwise) and commits.
    s.submit(Command::ingest(ev("c", "M3"))).unwrap();
    drop(s);
    assert_eq!(Store::open(&path).unwrap().engine().stats().events, 3);
}

fn call(s: &mut Store, method: &str, args: &str) -> serde_json::Value {
    serde_json::from_str(&s.call_json(method, args).unwrap()).unwrap()
}

/// The files of `dir` (db, -wal, -shm) whose bytes hold `needle`, a store's file also in its
/// stored snapshots' contents.
fn any_file_mentions(dir: &Path, needle: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|f| {
            let p = f.unwrap().path();
            let mut bytes = std::fs::read(&p).unwrap();
            if p.extension().is_some_and(|e| e == "db") {
                bytes.extend(snapshots::contents(&p));
            }
            bytes
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
                .then(|| p.display().to_string())
        })
        .collect()
}

fn member_balances(c: &Connection) -> Vec<(i64, i64)> {
    c.prepare(
        "SELECT oneid, sum(delta) FROM (
             SELECT credit_oneid AS oneid, amount AS delta FROM postings
                 WHERE credit_oneid IS NOT NULL AND kind NOT IN ('pending_earn', 'void')
             UNION ALL
             SELECT debit_oneid, -amount FROM postings
                 WHERE debit_oneid IS NOT NULL AND kind NOT IN ('pending_earn', 'void'))
         GROUP BY oneid ORDER BY oneid",
    )
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn erase_keeps_the_ledger_balanced_under_a_pseudonym_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let t = "2026-03-01T10:00:00Z";
    let before = {
        let mut s = Store::options().snapshot_every(3).open(&path).unwrap();
        call(
            &mut s,
            "create_program",
            r#"{"program": {"id": "brand-a"}}"#,
        );
        s.ingest(identify("i1", "13800138000", "secret@x.com"))
            .unwrap();
        s.ingest(identify("i2", "13900139000", "other@x.com"))
            .unwrap();
        // Identifiers in keys and free text, the person named by identifier and by OneID.
        call(
            &mut s,
            "earn",
            &format!(
                r#"{{"user": {{"kind": "phone", "value": "13800138000"}}, "program": "brand-a",
            "points": 100, "key": "order-13800138000", "reason": "gift for secret@x.com", "actor": "13800138000", "time": "{t}"}}"#
            ),
        );
        call(
            &mut s,
            "earn",
            &format!(
                r#"{{"user": {{"oneid": 1}}, "program": "brand-a", "points": 50,
            "key": "o-secret@x.com", "order": "basket-13800138000", "pending": true, "time": "{t}"}}"#
            ),
        );
        call(
            &mut s,
            "post",
            &format!(r#"{{"key": "o-secret@x.com", "time": "{t}"}}"#),
        );
        call(
            &mut s,
            "spend",
            &format!(
                r#"{{"user": {{"oneid": 1}}, "program": "brand-a", "points": 30,
            "key": "redeem-13800138000", "reason": "mug", "time": "{t}"}}"#
            ),
        );
        call(
            &mut s,
            "earn",
            &format!(
                r#"{{"user": {{"kind": "phone", "value": "13900139000"}}, "program": "brand-a",
            "points": 70, "key": "order-other", "reason": "kept", "time": "{t}"}}"#
            ),
        );
        let c = raw(&path);
        assert_eq!(member_balances(&c), vec![(1, 120), (2, 70)]);
        let out = call(
            &mut s,
            "erase",
            r#"{"oneid": 1, "actor": "dpo", "time": "2026-03-02T00:00:00Z"}"#,
        );
        assert_eq!(out["identifiers_removed"], 2);
        // A read view of the engine, let go of before the next write below.
        let e = s.engine();
        e.check_invariants().unwrap();
        let ledger = e.loyalty().ledger();
        let members: Vec<(userops::OneId, i64)> = ledger
            .accounts()
            .iter()
            .filter_map(|a| match a.kind {
                userops::loyalty::AccountKind::Member(o) => Some((o, a.points())),
                _ => None,
            })
            .collect();
        let pseudonym = userops::OneId(userops::privacy::PSEUDONYM_BASE);
        assert_eq!(members, vec![(pseudonym, 120), (OneId(2), 70)]);
        for op in ledger.ops() {
            assert!(
                !op.key.contains("13800138000") && !op.key.contains("secret"),
                "{op:?}"
            );
            assert!(
                !op.reason().contains("secret") && !op.actor().contains("138"),
                "{op:?}"
            );
        }
        // the other member's write is untouched
        assert!(ledger
            .ops()
            .iter()
            .any(|o| &*o.key == "order-other" && o.reason() == "kept"));
        // postings table in step: same balances, re-keyed, free text gone
        assert_eq!(
            member_balances(&c),
            vec![(2, 70), (userops::privacy::PSEUDONYM_BASE as i64, 120)]
        );
        let text: i64 = c
            .query_row(
                "SELECT count(*) FROM postings WHERE (credit_oneid = ?1 OR debit_oneid = ?1) AND (reason <> '' OR actor <> '' OR key NOT LIKE 'erased:%')",
                [userops::privacy::PSEUDONYM_BASE as i64],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(text, 0);
        drop(e);
        // the old keys no longer name anything
        assert!(s.call_json("post", r#"{"key": "o-secret@x.com"}"#).is_err());
        e_snapshot(&s)
    };
    // after recovery: same state, check passes (ledger invariants, postings table)
    let s = Store::open(&path).unwrap();
    assert_eq!(e_snapshot(&s), before);
    drop(s);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    let c = raw(&path);
    let zero: i64 = c
        .query_row(
            "SELECT sum(amount) - sum(amount) + (SELECT coalesce(sum(CASE WHEN credit_kind = 'issuance' THEN amount ELSE 0 END) - sum(CASE WHEN debit_kind = 'issuance' THEN amount ELSE 0 END), 0) FROM postings WHERE kind NOT IN ('pending_earn', 'void')) + (SELECT coalesce(sum(delta), 0) FROM (SELECT amount AS delta FROM postings WHERE credit_kind = 'member' AND kind NOT IN ('pending_earn', 'void') UNION ALL SELECT -amount FROM postings WHERE debit_kind = 'member' AND kind NOT IN ('pending_earn', 'void')) ) + (SELECT coalesce(sum(CASE WHEN credit_kind = 'redemption' THEN amount ELSE 0 END) - sum(CASE WHEN debit_kind = 'redemption' THEN amount ELSE 0 END), 0) FROM postings) FROM postings",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(zero, 0, "issuance + members + redemption balance to zero");
    drop(c);
    for needle in ["13800138000", "secret@x.com", "secret%40x.com"] {
        let found = any_file_mentions(dir.path(), needle);
        assert!(found.is_empty(), "{needle} found in {found:?}");
    }
    assert!(
        !any_file_mentions(dir.path(), "13900139000").is_empty(),
        "others are kept"
    );
}

fn e_snapshot(s: &Store) -> Vec<u8> {
    let bytes = s.engine().snapshot();
    bytes
}

/// The `tags` table's rows as `(oneid, tag, value as text, rowid)`, by oneid and tag.
fn tag_table(c: &Connection) -> Vec<(i64, String, String, i64)> {
    c.prepare("SELECT oneid, tag, CAST(value AS TEXT), rowid FROM tags ORDER BY oneid, tag")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn tags_table_rewrites_only_the_persons_a_command_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let t = "2026-03-01T10:00:00Z";
    let mut s = Store::open(&path).unwrap();
    call(&mut s, "create_program", r#"{"program": {"id": "b"}}"#);
    for m in 1..=5 {
        s.ingest(ev(&format!("r{m}"), &format!("M{m}"))).unwrap();
    }
    call(
        &mut s,
        "define_tag",
        &format!(r#"{{"name": "city", "type": "enum", "now": "{t}"}}"#),
    );
    call(
        &mut s,
        "set_tags",
        r#"{"kind": "member_no", "users": ["M1", "M2", "M3", "M4", "M5"],
            "tags": [{"name": "city", "values": ["a", "b", "c", "d", "e"]}]}"#,
    );
    call(
        &mut s,
        "define_tag",
        &format!(r#"{{"name": "rich", "rule": "points(\"b\") >= 100", "now": "{t}"}}"#),
    );
    let engine_rows = |s: &Store| -> Vec<(i64, String)> {
        let mut rows: Vec<(i64, String)> = s
            .engine()
            .tag_rows()
            .into_iter()
            .map(|(o, t, _)| (o.0 as i64, t))
            .collect();
        rows.sort();
        rows
    };
    let c = raw(&path);
    let before = tag_table(&c);
    // A loyalty command moves a rule tag reading points: its member's row appears, and no
    // other person's rows are rewritten (their rowids stay).
    call(
        &mut s,
        "earn",
        &format!(
            r#"{{"user": {{"kind": "member_no", "value": "M2"}}, "program": "b", "points": 150, "key": "e1", "time": "{t}"}}"#
        ),
    );
    let after = tag_table(&c);
    let table = |rows: &[(i64, String, String, i64)]| -> Vec<(i64, String)> {
        rows.iter().map(|r| (r.0, r.1.clone())).collect()
    };
    assert_eq!(table(&after), engine_rows(&s));
    assert!(after.contains(&(
        2,
        "rich".into(),
        "1".into(),
        after.iter().find(|r| r.0 == 2 && r.1 == "rich").unwrap().3
    )));
    let untouched = |rows: &[(i64, String, String, i64)]| -> Vec<(i64, String, String, i64)> {
        rows.iter().filter(|r| r.0 != 2).cloned().collect()
    };
    assert_eq!(
        untouched(&after),
        untouched(&before),
        "other persons' rows were rewritten"
    );
    // An event rewrites its own person's rows only.
    s.ingest(Event::from_json(&format!(r#"{{"kind": "order", "key": "o1", "time": "{t}",
        "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "member_no", "value": "M4"}},
        "order_id": "o-1", "amount": "10.00"}}"#)).unwrap())
    .unwrap();
    let last = tag_table(&c);
    assert_eq!(table(&last), engine_rows(&s));
    let others = |rows: &[(i64, String, String, i64)]| -> Vec<(i64, String, String, i64)> {
        rows.iter().filter(|r| r.0 != 4).cloned().collect()
    };
    assert_eq!(
        others(&last),
        others(&after),
        "an event rewrote other persons' rows"
    );
    // Defining a tag rewrites the table (every row of the new tag at once), still equal.
    call(
        &mut s,
        "define_tag",
        &format!(r#"{{"name": "named", "rule": "EXISTS city", "now": "{t}"}}"#),
    );
    assert_eq!(table(&tag_table(&c)), engine_rows(&s));
}

#[test]
fn postings_and_tags_tables_follow_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let t = "2026-03-01T10:00:00Z";
    {
        let mut s = Store::options().snapshot_every(4).open(&path).unwrap();
        call(
            &mut s,
            "create_program",
            r#"{"program": {"id": "brand-a"}}"#,
        );
        s.ingest(ev("r1", "M1")).unwrap();
        s.ingest(ev("r2", "M2")).unwrap();
        call(
            &mut s,
            "earn",
            &format!(
                r#"{{"user": {{"oneid": 1}}, "program": "brand-a", "points": 100, "key": "e1", "reason": "welcome", "time": "{t}"}}"#
            ),
        );
        call(
            &mut s,
            "spend",
            &format!(
                r#"{{"user": {{"oneid": 1}}, "program": "brand-a", "points": 40, "key": "s1", "time": "{t}"}}"#
            ),
        );
        call(
            &mut s,
            "earn",
            &format!(
                r#"{{"user": {{"oneid": 2}}, "program": "brand-a", "points": 5, "key": "e2", "time": "{t}"}}"#
            ),
        );
        call(
            &mut s,
            "define_tag",
            &format!(r#"{{"name": "vip", "now": "{t}"}}"#),
        );
        call(
            &mut s,
            "define_tag",
            &format!(r#"{{"name": "city", "type": "enum", "now": "{t}"}}"#),
        );
        call(
            &mut s,
            "set_tag",
            &format!(r#"{{"user": {{"oneid": 1}}, "tag": "vip", "value": true, "now": "{t}"}}"#),
        );
        call(
            &mut s,
            "set_tag",
            &format!(
                r#"{{"user": {{"oneid": 2}}, "tag": "city", "value": "shanghai", "now": "{t}"}}"#
            ),
        );
        // a rule tag over an aggregate, recomputed by an order event
        call(
            &mut s,
            "define_tag",
            &format!(r#"{{"name": "buyer", "rule": "orders >= 1", "now": "{t}"}}"#),
        );
        s.ingest(Event::from_json(r#"{"kind": "order", "key": "o1", "time": "2026-03-01T11:00:00Z",
            "source": {"platform": "app", "program": "b"}, "user": {"oneid": 2}, "order_id": "o-1", "amount": "10.00"}"#).unwrap()).unwrap();
        let c = raw(&path);
        let rows: Vec<(i64, String, String, i64, Option<String>)> = c
            .prepare("SELECT id, kind, credit_kind, amount, key FROM postings ORDER BY id")
            .unwrap()
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (1, "earn".into(), "member".into(), 100, Some("e1".into())),
                (
                    2,
                    "spend".into(),
                    "redemption".into(),
                    40,
                    Some("s1".into())
                ),
                (3, "earn".into(), "member".into(), 5, Some("e2".into())),
            ]
        );
        assert_eq!(member_balances(&c), vec![(1, 60), (2, 5)]);
        let tags = |c: &Connection| -> Vec<(i64, String, String)> {
            c.prepare("SELECT oneid, tag, CAST(value AS TEXT) FROM tags ORDER BY oneid, tag")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let want = vec![
            (1, "buyer".to_owned(), "0".to_owned()),
            (1, "vip".to_owned(), "1".to_owned()),
            (2, "buyer".to_owned(), "1".to_owned()),
            (2, "city".to_owned(), "shanghai".to_owned()),
        ];
        let got = tags(&c);
        // a bool rule tag may store only its members; compare what the engine says
        let engine_rows: Vec<(i64, String)> = s
            .engine()
            .tag_rows()
            .into_iter()
            .map(|(o, t, _)| (o.0 as i64, t))
            .collect();
        assert_eq!(
            got.iter()
                .map(|(o, t, _)| (*o, t.clone()))
                .collect::<Vec<_>>(),
            engine_rows
        );
        for w in &want {
            if engine_rows.contains(&(w.0, w.1.clone())) {
                assert!(got.contains(w), "{w:?} missing from {got:?}");
            }
        }
        assert!(got.contains(&(2, "buyer".into(), "1".into())), "{got:?}");
        // erasure: the person's tags go, postings move to the pseudonym
        call(
            &mut s,
            "erase",
            r#"{"oneid": 2, "actor": "dpo", "time": "2026-03-02T00:00:00Z"}"#,
        );
        let n: i64 = scalar(
            &c,
            "SELECT count(*) FROM postings WHERE credit_oneid = 2 OR debit_oneid = 2",
        );
        assert_eq!(n, 0);
        assert_eq!(
            member_balances(&c),
            vec![(1, 60), (userops::privacy::PSEUDONYM_BASE as i64, 5)]
        );
        drop(c);
        assert!(check(&path).unwrap().ok());
    }
    // after recovery (and a forced rebuild) the tables are what check expects
    raw(&path)
        .execute(
            "UPDATE meta SET value = '0' WHERE key = 'projected_seq'",
            [],
        )
        .unwrap();
    let s = Store::open(&path).unwrap();
    drop(s);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    // and check notices a table out of step
    raw(&path)
        .execute("UPDATE postings SET amount = amount + 1 WHERE id = 1", [])
        .unwrap();
    raw(&path)
        .execute("DELETE FROM tags WHERE tag = 'vip'", [])
        .unwrap();
    let r = check(&path).unwrap();
    assert!(!r.ok(), "{r}");
    let text = r.to_string();
    assert!(
        text.contains("postings: row 1") && text.contains("tags:"),
        "{text}"
    );
}

#[test]
fn store_actions_are_audited_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let s = Store::options().snapshot_every(2).open(&path).unwrap();
        s.ingest(ev("a", "M1")).unwrap();
        s.ingest(ev("b", "M2")).unwrap(); // periodic snapshot
        s.ingest(ev("c", "M3")).unwrap();
        s.snapshot().unwrap();
        s.call_json("set_consent", r#"{"user": {"oneid": 1}, "channel": "sms", "purpose": "marketing", "granted": true, "actor": "op", "time": "2026-01-02T00:00:00Z"}"#).unwrap();
        s.call_json(
            "erase",
            r#"{"oneid": 1, "actor": "dpo", "time": "2026-01-03T00:00:00Z"}"#,
        )
        .unwrap();
        s.ingest(ev("d", "M4")).unwrap();
    }
    raw(&path)
        .execute("UPDATE journal SET command = substr(command, 1, 20) WHERE seq = (SELECT max(seq) FROM journal)", [])
        .unwrap();
    drop(Store::open(&path).unwrap());
    let c = raw(&path);
    let actions: Vec<(String, String)> = c
        .prepare("SELECT action, target FROM store_audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "open",
            "snapshot",
            "snapshot",
            "redact",
            "snapshot",
            "truncate_torn_tail",
            "rebuild_tables",
            "open"
        ],
        "{actions:?}"
    );
    assert_eq!(actions[5].1, "journal:6");
    // operator actions are in `audit`
    let ops: Vec<String> = c
        .prepare("SELECT action FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ops, ["set_consent", "erase"]);
    assert!(c.execute("UPDATE store_audit SET actor = 'x'", []).is_err());
    assert!(c.execute("DELETE FROM store_audit", []).is_err());
    let migrated = dir.path().join("v1.db");
    let v1 = raw(&migrated);
    v1.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         CREATE TABLE journal (seq INTEGER PRIMARY KEY, method TEXT NOT NULL, command TEXT NOT NULL, checksum INTEGER NOT NULL);
         CREATE TABLE snapshot (seq INTEGER PRIMARY KEY, state BLOB NOT NULL);",
    )
    .unwrap();
    drop(v1);
    drop(Store::open(&migrated).unwrap());
    let first: String = raw(&migrated)
        .query_row(
            "SELECT action || ' ' || detail FROM store_audit ORDER BY seq LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(first, format!("migrate version 1 to {SCHEMA_VERSION}"));
}

#[test]
fn identity_tables_follow_batch_commands_and_operator_merges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = Store::open(&path).unwrap();
    // A whole batch as one command (not `Store::ingest_batch`): its persons are projected too.
    let batch = Command::Core(userops::CoreCommand::IngestBatch {
        events: vec![ev("b1", "M1"), ev("b2", "M2"), ev("b3", "M1")],
        on_error: userops::OnError::Skip,
    });
    s.execute(batch).unwrap();
    let c = raw(&path);
    let count = |sql: &str| scalar(&c, sql);
    assert_eq!(count("SELECT count(*) FROM identities"), 2);
    assert_eq!(count("SELECT count(*) FROM persons"), 2);
    // An operator merge moves identifiers without an event.
    s.call_json(
        "merge",
        r#"{"a": {"oneid": 1}, "b": {"oneid": 2}, "actor": "op", "reason": "same person"}"#,
    )
    .unwrap();
    assert_eq!(
        count("SELECT count(DISTINCT oneid) FROM identities"),
        1,
        "both identifiers now belong to the survivor"
    );
    assert_eq!(
        count("SELECT count(*) FROM persons WHERE merged_into IS NOT NULL"),
        1
    );
    // Events about known persons leave their rows alone, and `check` agrees with the tables.
    s.ingest(ev("b4", "M2")).unwrap();
    s.ingest(ev("b5", "M9")).unwrap(); // a new person
    assert_eq!(count("SELECT count(*) FROM identities"), 3);
    drop(s);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
}

#[test]
fn a_snapshot_in_an_older_format_is_replaced_by_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let expected = {
        let s = Store::open(&path).unwrap();
        s.ingest(ev("a", "M1")).unwrap();
        s.ingest(identify("i1", "13800138000", "a@x.com")).unwrap();
        s.snapshot().unwrap();
        s.ingest(ev("b", "M2")).unwrap();
        let bytes = s.engine().snapshot();
        bytes
    };
    // Mark the snapshot as written by an older build (with a valid checksum).
    {
        let c = raw(&path);
        let (seq, state): (i64, Vec<u8>) = c
            .query_row("SELECT seq, bytes FROM snapshot_chunk", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        let mut json = Vec::new();
        userops::Engine::restore(&state)
            .unwrap()
            .write_snapshot_json(&mut json)
            .unwrap();
        let text = String::from_utf8(json).unwrap();
        let current = format!(r#"{{"format":{}"#, userops::SNAPSHOT_FORMAT_JSON);
        assert!(text.starts_with(&current), "{}", &text[..20]);
        let old = text.replacen(&current, r#"{"format":1"#, 1);
        c.execute(
            "UPDATE snapshot_chunk SET bytes = ?2 WHERE seq = ?1",
            params![seq, old.as_bytes()],
        )
        .unwrap();
        c.execute(
            "UPDATE snapshot SET len = ?2, checksum = ?3 WHERE seq = ?1",
            params![
                seq,
                old.len() as i64,
                journal::snapshot_checksum(seq, old.as_bytes())
            ],
        )
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.warnings(), &[Warning::OldSnapshot { seq: 2 }]);
    assert_eq!(s.engine().snapshot(), expected);
}

/// Events enough for a state of some kilobytes.
fn fill(s: &mut Store, n: usize) {
    for i in 0..n {
        s.ingest(ev(&format!("k{i}"), &format!("M{i}"))).unwrap();
    }
}

fn chunk_count(path: &Path) -> i64 {
    scalar(&raw(path), "SELECT count(*) FROM snapshot_chunk")
}

#[test]
fn a_snapshot_larger_than_sqlites_length_limit_is_stored_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (limit, expected) = {
        let mut s = Store::open(&path).unwrap();
        fill(&mut s, 60);
        let len = s.engine().snapshot().len();
        // Snapshots are compressed: the limit follows the state's size, for 8 chunks or more.
        let limit = len / 4;
        assert!(limit > 200, "state of {len} bytes");
        {
            let db = lock(&s.shared.db);
            db.conn
                .set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, limit as i32)
                .unwrap();
            // What a single blob would run into (SQLite's default limit is 1 GB).
            let one_blob = db
                .conn
                .query_row("SELECT length(zeroblob(?1))", [len as i64], |r| {
                    r.get::<_, i64>(0)
                });
            assert!(one_blob.is_err(), "{one_blob:?}");
        }
        s.snapshot().unwrap();
        s.ingest(ev("after", "M-after")).unwrap();
        let bytes = s.engine().snapshot();
        (limit, bytes)
    };
    let chunks = chunk_count(&path);
    assert!(chunks >= 8, "{chunks} chunk(s)");
    let longest: i64 = raw(&path)
        .query_row("SELECT max(length(bytes)) FROM snapshot_chunk", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(longest <= limit as i64 / 2, "{longest}");
    let s = Store::open(&path).unwrap();
    assert_eq!(s.engine().snapshot(), expected);
    assert!(s.warnings().is_empty());
    drop(s);
    let audit: String = raw(&path)
        .query_row(
            "SELECT detail FROM store_audit WHERE action = 'open' ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(audit.contains("from snapshot 60 and 1 journal"), "{audit}");
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    assert_eq!(r.snapshots, vec![60]);
}

#[test]
fn a_missing_or_changed_snapshot_chunk_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    {
        let mut s = Store::open(&path).unwrap();
        fill(&mut s, 30);
        // Snapshots are compressed: a limit that follows the state's size, for 6 chunks.
        let limit = s.engine().snapshot().len() / 3;
        lock(&s.shared.db)
            .conn
            .set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, limit as i32)
            .unwrap();
        s.snapshot().unwrap();
    }
    assert!(chunk_count(&path) > 3);
    let pristine = std::fs::read(&path).unwrap();
    let cases: [(&str, &str); 3] = [
        (
            "DELETE FROM snapshot_chunk WHERE idx = 1",
            "chunk 1 is missing",
        ),
        (
            "DELETE FROM snapshot_chunk WHERE idx = (SELECT max(idx) FROM snapshot_chunk)",
            "header says",
        ),
        (
            "UPDATE snapshot_chunk SET bytes = CAST(X'23' || substr(bytes, 2) AS BLOB) WHERE idx = 2",
            "checksum mismatch",
        ),
    ];
    for (sql, why) in cases {
        std::fs::write(&path, &pristine).unwrap();
        assert_eq!(raw(&path).execute(sql, []).unwrap(), 1, "{sql}");
        match Store::open(&path) {
            Err(StoreError::Corrupt { seq: 30, reason }) => {
                assert!(reason.contains(why), "{reason}")
            }
            other => panic!("{sql}: {:?}", other.err()),
        }
        let r = check(&path).unwrap();
        assert!(r.problems.iter().any(|p| p.contains(why)), "{r}");
    }
}

#[test]
fn migrates_a_schema_2_store_with_whole_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    let expected = {
        let mut s = Store::options().snapshot_every(5).open(&path).unwrap();
        fill(&mut s, 12);
        let bytes = s.engine().snapshot();
        bytes
    };
    // Put the file back the way schema 2 kept it: one `state` blob per snapshot.
    {
        let c = raw(&path);
        c.execute_batch(
            "CREATE TABLE snapshot_v2 (seq INTEGER PRIMARY KEY, state BLOB NOT NULL, checksum INTEGER NOT NULL);
             INSERT INTO snapshot_v2 SELECT seq, (SELECT bytes FROM snapshot_chunk c WHERE c.seq = s.seq), checksum FROM snapshot s;
             DROP TABLE snapshot; DROP TABLE snapshot_chunk;
             ALTER TABLE snapshot_v2 RENAME TO snapshot;
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    assert!(
        !check(&path).unwrap().ok(),
        "check asks for a migration first"
    );
    let s = Store::open(&path).unwrap();
    assert_eq!(s.engine().snapshot(), expected);
    drop(s);
    let c = raw(&path);
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let heads: Vec<(i64, i64, i64)> = c
        .prepare("SELECT seq, chunks, len FROM snapshot ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        heads.iter().map(|h| (h.0, h.1)).collect::<Vec<_>>(),
        [(5, 1), (10, 1)]
    );
    assert!(heads.iter().all(|h| h.2 > 100));
    let migrated: i64 = scalar(
        &c,
        "SELECT count(*) FROM store_audit WHERE action = 'migrate' AND detail = 'version 2 to 3'",
    );
    assert_eq!(migrated, 1);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
    assert_eq!(r.snapshots_reproduced, 2);
}

#[test]
fn page_cache_and_checkpoint_interval_are_set_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let pragma = |s: &Store, name: &str| -> i64 {
        let db = lock(&s.shared.db);
        db.conn
            .pragma_query_value(None, name, |r| r.get(0))
            .unwrap()
    };
    let s = Store::open(dir.path().join("a.db")).unwrap();
    assert_eq!(pragma(&s, "cache_size"), -64 * 1024);
    // The journal's connection never folds the WAL inside a commit: the checkpoint thread does.
    assert_eq!(pragma(&s, "wal_autocheckpoint"), 0);
    let s = StoreOptions::new()
        .page_cache_mib(8)
        .open(dir.path().join("b.db"))
        .unwrap();
    assert_eq!(pragma(&s, "cache_size"), -8 * 1024);
    // Zero is taken as the least, not as SQLite's "default".
    let s = StoreOptions::new()
        .page_cache_mib(0)
        .open(dir.path().join("c.db"))
        .unwrap();
    assert_eq!(pragma(&s, "cache_size"), -1024);
}

/// A command other than an event creates a person when it names a new identifier (an
/// attribute, a tag table, an earn): the person has its rows at once, whatever field the
/// identifier came in by.
#[test]
fn persons_created_by_commands_are_projected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path).unwrap();
    s.ingest(ev("a", "M1")).unwrap();
    call(
        &mut s,
        "set_attribute",
        r#"{"user": {"kind": "member_no", "value": "M2"}, "name": "city", "value": "Hangzhou"}"#,
    );
    call(&mut s, "define_tag", r#"{"name": "vip", "type": "bool"}"#);
    call(
        &mut s,
        "set_tags",
        r#"{"kind": "member_no", "users": ["M3", "M4"], "tags": [{"name": "vip", "values": [true, true]}]}"#,
    );
    s.flush().unwrap();
    let c = raw(&path);
    assert_eq!(scalar(&c, "SELECT count(*) FROM persons"), 4);
    assert_eq!(scalar(&c, "SELECT count(*) FROM identities"), 4);
    let r = check(&path).unwrap();
    assert!(r.ok(), "{r}");
}

/// The WAL is folded into the main file by the checkpoint thread once a commit leaves it past
/// the threshold; nothing is lost by folding beside live commits.
#[test]
fn the_checkpoint_thread_folds_the_wal_past_its_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let mut options = StoreOptions::new();
    options.fold_wal_after = 8;
    let s = options.open(&path).unwrap();
    let main_len = || std::fs::metadata(&path).unwrap().len();
    let before = main_len();
    assert_eq!(lock(&s.shared.db).checkpointer.runs(), 0);
    for i in 0..200 {
        s.ingest(ev(&format!("r{i}"), &format!("M{i}"))).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while lock(&s.shared.db).checkpointer.runs() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        lock(&s.shared.db).checkpointer.runs() > 0,
        "no checkpoint ran"
    );
    // Wait for the fold in progress, if any, to reach the main file.
    while main_len() <= before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        main_len() > before,
        "the main file never grew: {before} bytes"
    );
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.engine().stats().events, 200);
}
