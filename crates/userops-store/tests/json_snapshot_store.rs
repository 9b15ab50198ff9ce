//! A store written by the build at main 52e86c2, whose snapshots are JSON text (format 5),
//! opens with this build: `main-52e86c2-demo20.db` is `userops demo --users 20` of that build
//! (757 events, 28 persons, 98 identifiers; one snapshot at journal record 900, the last).
//!
//! Format 5 holds the same state as the binary format 6, so the snapshot is read as it is (no
//! replay of the journal before it), gives the state that build had byte for byte, and is
//! replaced at open by a snapshot in the current format; `check` passes before and after.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use userops::Engine;
use userops_store::{check, Store, Warning};

#[path = "support/snapshots.rs"]
mod snapshots;

const FIXTURE: &str = "main-52e86c2-demo20.db";

fn copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(FIXTURE);
    let dst = dir.join(FIXTURE);
    std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    dst
}

fn last_open_audit(path: &Path) -> String {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT detail FROM store_audit WHERE action = 'open' ORDER BY rowid DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

#[test]
fn a_store_with_a_json_snapshot_opens_and_moves_to_the_binary_format() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy(dir.path());
    let old = snapshots::stored(&path);
    let [(900, json)] = &old[..] else {
        panic!(
            "the fixture holds one snapshot at 900: {:?}",
            old.iter().map(|s| s.0).collect::<Vec<_>>()
        )
    };
    assert_eq!(Engine::snapshot_format(json), Some(5));
    assert!(json.starts_with(br#"{"format":5,"#));

    // As written: the replayed journal matches the JSON snapshot byte for byte.
    let report = check(&path).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.snapshots_reproduced, 1);
    assert_eq!(
        (report.events, report.persons, report.identifiers),
        (757, 28, 98)
    );

    let s = Store::open(&path).unwrap();
    assert_eq!(
        s.warnings(),
        &[Warning::ConvertedSnapshot {
            seq: 900,
            format: 5
        }]
    );
    assert_eq!(
        last_open_audit(&path),
        "recovered from snapshot 900 and 0 journal record(s)",
        "the JSON snapshot is read, not replaced by a replay of the journal"
    );
    let stats = s.engine().stats();
    assert_eq!(
        (stats.events, stats.persons, stats.identifiers),
        (757, 28, 98)
    );
    assert_eq!(stats.events_by_kind["touch"], 188);
    // The same state as that build's, byte for byte in its own encoding.
    let mut again = Vec::new();
    s.engine().write_snapshot_json(&mut again).unwrap();
    assert!(
        again == *json,
        "the state read differs from the one written"
    );

    // The snapshot was replaced by one in the current format, which holds the same state.
    let new = snapshots::stored(&path);
    let [(900, bin)] = &new[..] else {
        panic!("one snapshot at 900 after the open")
    };
    assert_eq!(Engine::snapshot_format(bin), Some(userops::SNAPSHOT_FORMAT));
    assert!(Engine::restore(bin)
        .unwrap()
        .snapshot_matches(&json[..])
        .unwrap());
    // Past the issue's target of 50 bytes per event even on this small state.
    assert!(
        bin.len() * 4 < json.len(),
        "{} bytes binary, {} JSON",
        bin.len(),
        json.len()
    );

    // Writes go on; the next snapshot is binary; check passes; a reopen reads it without a
    // warning and gives the same state.
    s.call_json(
        "ingest",
        r#"{"event": {"kind": "register", "key": "after-upgrade", "time": "2026-03-01T00:00:00Z",
            "source": {"platform": "app", "program": "brand-a"},
            "user": {"kind": "member_no", "value": "M-new"}}}"#,
    )
    .unwrap();
    s.snapshot().unwrap();
    let live = s.engine().snapshot();
    drop(s);
    let newest = snapshots::stored(&path).pop().unwrap();
    assert!(newest.0 > 900);
    assert_eq!(newest.1, live);
    let report = check(&path).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.snapshots_reproduced, 2);
    let s = Store::open(&path).unwrap();
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    assert_eq!(s.engine().snapshot(), live);
}
