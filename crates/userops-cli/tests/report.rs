//! `userops demo` on a small data set, then `userops report --db` on the store it left: the
//! second report is drawn from the reopened store alone and must show the same charts with the
//! same numbers.

use std::path::Path;
use std::process::Command;

fn userops(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_userops"))
        .args(args)
        .output()
        .expect("the userops binary runs");
    assert!(
        out.status.success(),
        "userops {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `<svg>` elements of a page, in order.
fn charts(page: &Path) -> Vec<String> {
    let html = std::fs::read_to_string(page).expect("the report exists");
    html.split("<svg")
        .skip(1)
        .map(|s| s.split("</svg>").next().unwrap_or_default().to_owned())
        .collect()
}

fn title(svg: &str) -> &str {
    svg.split("<title>")
        .nth(1)
        .and_then(|s| s.split("</title>").next())
        .unwrap_or_default()
}

#[test]
fn report_from_the_store_matches_the_demo() {
    let dir = std::env::temp_dir().join(format!("userops-report-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let demo_out = dir.join("demo");
    let again_out = dir.join("again");
    let summary = userops(&[
        "demo",
        "--users",
        "300",
        "--quiet",
        "--out",
        demo_out.to_str().unwrap(),
    ]);
    assert!(summary.contains("persons (OneIDs)"), "{summary}");
    assert!(summary.contains("automation run"), "{summary}");
    let db = demo_out.join("userops.db");
    assert!(db.is_file());
    let printed = userops(&[
        "report",
        "--db",
        db.to_str().unwrap(),
        "--quiet",
        "--out",
        again_out.to_str().unwrap(),
    ]);
    assert!(printed.contains("report of"), "{printed}");

    let first = charts(&demo_out.join("index.html"));
    let second = charts(&again_out.join("index.html"));
    let titles: Vec<&str> = first.iter().map(|s| title(s)).collect();
    for expected in [
        "Active rate by month",
        "Active users decomposed by month",
        "Lifecycle stages by month",
        "Cohort retention",
        "Funnel",
        "RFM segment sizes",
        "Churn risk distribution",
        "Churn risk bands by model",
        "Channel effectiveness: outcomes per touch sent",
        "Members per tier",
        "Automation plan by channel",
    ] {
        assert!(titles.contains(&expected), "{expected} not in {titles:?}");
    }
    assert!(titles
        .iter()
        .any(|t| t.starts_with("Stage transitions into")));
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a, b, "chart {} differs after reopening the store", title(a));
    }

    // A second demo over the same place replaces its own store; a foreign file is refused.
    let foreign = dir.join("not-a-store.db");
    std::fs::write(&foreign, b"hello").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_userops"))
        .args(["demo", "--users", "10", "--quiet", "--db"])
        .arg(&foreign)
        .arg("--out")
        .arg(dir.join("x"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&foreign).unwrap(), b"hello");
    // `report` of a missing store is a clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_userops"))
        .args(["report", "--db"])
        .arg(dir.join("missing.db"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such store"));
    std::fs::remove_dir_all(&dir).unwrap();
}
