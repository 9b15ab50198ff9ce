//! A store shared by threads ([`Concurrency::Replicas`]): reads never wait for the writer or
//! its commit, snapshots are written beside the live journal, and what recovery rebuilds is
//! what the threads wrote.

use std::sync::mpsc;

use super::*;
use userops::shared::Concurrency;
use userops::{Event, OneId};

fn register(key: &str, member: &str) -> Event {
    Event::from_json(&format!(
        r#"{{"kind": "register", "key": "{key}", "time": "2026-01-01T00:00:00Z",
        "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "member_no", "value": "{member}"}}}}"#
    ))
    .unwrap()
}

fn replicas(path: &Path, every: u64, durability: Durability) -> Store {
    Store::options()
        .concurrency(Concurrency::Replicas)
        .durability(durability)
        .snapshot_every(every)
        .open(path)
        .unwrap()
}

fn snapshot_seqs(path: &Path) -> Vec<i64> {
    Connection::open(path)
        .unwrap()
        .prepare("SELECT seq FROM snapshot ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn stats(store: &Store) -> u64 {
    let out = store
        .execute(Command::from_call("stats", "{}").unwrap())
        .unwrap();
    match out {
        Output::Stats(s) => s.events,
        other => panic!("{other:?}"),
    }
}

/// With the write lock held (a write in progress, its commit included), reads on other
/// threads answer; with [`Concurrency::Lock`] they wait for it.
#[test]
fn reads_do_not_wait_for_a_write_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    for (concurrency, reads_wait) in [(Concurrency::Replicas, false), (Concurrency::Lock, true)] {
        let path = dir.path().join(format!("{concurrency:?}.db"));
        let store = Store::options()
            .concurrency(concurrency)
            .open(&path)
            .unwrap();
        store.ingest(register("r0", "M0")).unwrap();
        std::thread::scope(|scope| {
            let writer = store.shared().write().unwrap();
            let (tx, rx) = mpsc::channel();
            let store = &store;
            let reader = scope.spawn(move || {
                let answered = stats(store);
                tx.send(answered).unwrap();
            });
            let early = rx.recv_timeout(Duration::from_millis(500));
            assert_eq!(early.is_err(), reads_wait, "{concurrency:?}: {early:?}");
            drop(writer);
            reader.join().unwrap();
            if reads_wait {
                assert_eq!(rx.recv().unwrap(), 1);
            } else {
                assert_eq!(early.unwrap(), 1);
            }
        });
    }
}

/// Threads write at once; the journal's order is the order the writes were applied in, so
/// reopening rebuilds exactly the state the threads last read, and `check` replays it.
#[test]
fn concurrent_writers_are_journaled_in_order_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let live = {
        let store = replicas(&path, 7, Durability::group());
        std::thread::scope(|scope| {
            for t in 0..4 {
                let store = &store;
                scope.spawn(move || {
                    for i in 0..25 {
                        // Members overlap between threads: the same person from two writers.
                        store
                            .ingest(register(&format!("t{t}-{i}"), &format!("M{}", i % 9)))
                            .unwrap();
                        let _ = stats(store);
                    }
                });
            }
        });
        store.flush().unwrap();
        assert_eq!(stats(&store), 100);
        let bytes = store.engine().snapshot();
        bytes
    };
    let reopened = Store::open(&path).unwrap();
    assert_eq!(reopened.engine().snapshot(), live);
    drop(reopened);
    let report = check(&path).unwrap();
    assert!(report.ok(), "{report}");
}

/// Periodic snapshots are written by a background thread from the analysis copy at the seq
/// they were due; recovery and `check` use them as any other.
#[test]
fn background_snapshots_are_reproduced_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let live = {
        let store = replicas(&path, 4, Durability::EveryCommand);
        for i in 0..18 {
            store
                .ingest(register(&format!("k{i}"), &format!("M{}", i % 5)))
                .unwrap();
        }
        store.snapshot().unwrap();
        assert_eq!(store.snapshot_error(), None);
        let bytes = store.engine().snapshot();
        bytes
    };
    let seqs = snapshot_seqs(&path);
    assert_eq!(seqs.len(), 2, "{seqs:?}");
    assert_eq!(seqs[1], 18, "the requested snapshot is at the last write");
    let report = check(&path).unwrap();
    assert!(report.ok(), "{report}");
    assert_eq!(report.snapshots_reproduced, 2);
    assert_eq!(Store::open(&path).unwrap().engine().snapshot(), live);
}

/// A snapshot taken before an erasure is not stored once the erasure is journaled: it would
/// hold the erased person.
#[test]
fn a_snapshot_from_before_an_erasure_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = replicas(&path, u64::MAX, Durability::EveryCommand);
    store
        .ingest(
            Event::from_json(
                r#"{"kind": "identify", "key": "i1", "time": "2026-01-01T00:00:00Z",
                "source": {"platform": "app", "program": "b"},
                "ids": [{"kind": "email", "value": "gone@x.com"}]}"#,
            )
            .unwrap(),
        )
        .unwrap();
    store.ingest(register("r1", "M-kept")).unwrap();
    let before = store.shared().analysis_if_free().unwrap().unwrap();
    let seq = store.base_seq + before.version() as i64;
    store
        .execute(
            Command::from_call(
                "erase",
                r#"{"oneid": 1, "actor": "dpo", "time": "2026-01-02T00:00:00Z"}"#,
            )
            .unwrap(),
        )
        .unwrap();
    background_snapshot(&store.shared, &path, &before, seq, "test").unwrap();
    drop(before);
    assert!(!snapshot_seqs(&path).contains(&seq));
    let c = Connection::open(&path).unwrap();
    let chunks: i64 = c
        .query_row(
            "SELECT count(*) FROM snapshot_chunk WHERE seq = ?1",
            [seq],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(chunks, 0);
    drop(c);
    drop(store);
    let reopened = Store::open(&path).unwrap();
    assert_eq!(
        reopened
            .engine()
            .identity()
            .resolve(&userops::Identifier::parse("email", "gone@x.com").unwrap()),
        None
    );
    assert_eq!(
        reopened
            .engine()
            .lookup(&userops::UserRef::OneId(OneId(2)))
            .unwrap(),
        Some(OneId(2))
    );
}

/// While a long job holds the analysis copy, writes go on (and the snapshot that falls due
/// waits for the copy); after the job, the next write writes it.
#[test]
fn a_long_job_holds_up_neither_writes_nor_the_next_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = replicas(&path, 3, Durability::EveryCommand);
    let job = store.shared().analysis().unwrap();
    for i in 0..5 {
        store.ingest(register(&format!("k{i}"), "M1")).unwrap();
    }
    assert_eq!(job.version(), 0);
    assert!(
        snapshot_seqs(&path).is_empty(),
        "the copy was held: no snapshot yet"
    );
    drop(job);
    store.ingest(register("k5", "M1")).unwrap();
    drop(store);
    assert_eq!(snapshot_seqs(&path), vec![6]);
    assert!(check(&path).unwrap().ok());
}
