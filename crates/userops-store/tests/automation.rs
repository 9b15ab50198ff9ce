//! An automation run through a store is planned off the write lock and journaled chunk by
//! chunk (`apply_automation_plan`): other writes are journaled between its chunks, and
//! reopening the store (replaying the journal) gives back the same state.

use serde_json::{json, Value};
use userops::shared::{Concurrency, AUTOMATION_CHUNK_USERS};
use userops::{Command, Event};
use userops_store::{Store, StoreOptions};

fn cmd(method: &str, args: Value) -> Command {
    Command::from_call(method, &args.to_string()).unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn registration(i: u32) -> Event {
    serde_json::from_value(json!({"kind": "register", "key": format!("r{i}"),
        "time": "2026-01-01T00:00:00Z", "source": {"platform": "app", "program": "brand-a"},
        "user": {"kind": "member_no", "value": format!("M{i}")}}))
    .unwrap()
}

fn register(i: u32) -> Command {
    Command::ingest(registration(i))
}

fn open(path: &std::path::Path, concurrency: Concurrency) -> Store {
    StoreOptions::new()
        .snapshot_every(u64::MAX)
        .concurrency(concurrency)
        .open(path)
        .unwrap()
}

const NOW: &str = "2026-01-05T00:00:00Z";

#[test]
fn a_run_is_journaled_in_chunks_with_other_writes_between_and_replays() {
    for concurrency in [Concurrency::Replicas, Concurrency::Lock] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let store = open(&path, concurrency);
        store
            .execute(cmd("create_program", json!({"program": {"id": "brand-a"}})))
            .unwrap();
        store
            .ingest_batch((1..=2_500).map(registration), 1_000)
            .unwrap();
        store
            .execute(cmd(
                "add_rule",
                json!({"rule": {"id": "welcome", "trigger": {"type": "register", "grace_days": 60},
                    "actions": [{"type": "grant_points", "points": 10, "program": "brand-a"},
                                {"type": "add_tag", "tag": "welcomed"}]}}),
            ))
            .unwrap();
        let before = store.last_seq();
        // While the run is in progress, another thread's write and read get through before
        // each chunk is committed (a run holding the write lock would keep them waiting).
        let now = NOW.parse().unwrap();
        let mut seqs = Vec::new();
        let mut chunk = 0;
        store
            .shared()
            .plan_automation(now, 1_000, |c| {
                std::thread::scope(|s| {
                    let side = s.spawn(|| {
                        let ack = store.submit(register(10_000 + chunk)).unwrap();
                        store
                            .execute(cmd("profile", json!({"user": {"oneid": 1}})))
                            .unwrap();
                        ack.seq.unwrap()
                    });
                    seqs.push(("ingest", side.join().unwrap()));
                });
                seqs.push(("apply_automation_plan", store.submit(c)?.seq.unwrap()));
                chunk += 1;
                Ok::<_, userops_store::StoreError>(())
            })
            .unwrap();
        let order: Vec<(&str, i64)> = seqs.iter().map(|(m, s)| (*m, s - before)).collect();
        assert_eq!(
            order,
            [
                ("ingest", 1),
                ("apply_automation_plan", 2),
                ("ingest", 3),
                ("apply_automation_plan", 4),
                ("ingest", 5),
                ("apply_automation_plan", 6)
            ],
            "{concurrency:?}"
        );
        // A run through `submit` is planned and journaled the same way: it fires for the
        // members registered since the first run was planned, in chunks, nobody twice.
        store
            .ingest_batch((20_001..=21_500).map(registration), 1_000)
            .unwrap();
        let before = store.last_seq();
        let again = store
            .submit(cmd("run_automation", json!({"now": NOW})))
            .unwrap();
        // Chunks go by OneID over every member (4,003): the unfired ones (OneIDs 2,501 to
        // 4,003) fall in these (three with chunks of 1,000).
        let size = AUTOMATION_CHUNK_USERS as i64;
        let chunks = (4_003 - 1) / size - (2_501 - 1) / size + 1;
        assert_eq!(again.seq, Some(before + chunks), "{concurrency:?}");
        let rows = serde_json::to_value(&again.output).unwrap();
        assert_eq!(rows.as_array().unwrap().len(), 2 * 1_503, "{concurrency:?}");
        let state = store.engine().snapshot();
        drop(store);
        let reopened = open(&path, concurrency);
        assert_eq!(reopened.last_seq(), before + chunks);
        assert!(
            reopened.engine().snapshot() == state,
            "{concurrency:?}: the replayed journal gives another state"
        );
    }
}
