//! `userops export events` as a command: what it prints, its exit status, and that it never
//! writes the store it reads.

use std::process::{Command, Output};

fn userops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_userops"))
        .args(args)
        .output()
        .expect("the userops binary runs")
}

#[test]
fn exports_a_store_prints_the_range_and_leaves_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    {
        let s = userops_store::Store::open(&db).unwrap();
        for i in 0..3 {
            let e = userops::Event::from_json(&format!(
                r#"{{"kind": "register", "key": "r{i}", "time": "2026-01-01T00:00:00Z",
                "source": {{"platform": "app", "program": "b"}},
                "user": {{"kind": "member_no", "value": "M{i}"}}}}"#
            ))
            .unwrap();
            s.ingest(e).unwrap();
        }
    }
    let before = std::fs::read(&db).unwrap();
    let out = dir.path().join("out");
    let o = userops(&[
        "export",
        "events",
        "--db",
        db.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("exported 3 events from journal records 1..=3"),
        "{stdout}"
    );
    assert!(out.join("events-00000.parquet").is_file());
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the store is only read"
    );
}

#[test]
fn a_missing_store_fails_with_its_reason_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let o = userops(&[
        "export",
        "events",
        "--db",
        dir.path().join("none.db").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("none.db") && stderr.contains("no such file"),
        "{stderr}"
    );
    assert!(!out.exists());
}
