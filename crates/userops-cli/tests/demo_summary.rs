//! The demo's summary for a fixed seed is pinned: a change to the engine that moves any figure
//! of the demo (an event refused, a merge, a tag count, a model fit, a points total) shows up
//! here as a diff, so work on the write path or the state layout can prove it changed no
//! answer. When a figure changes on purpose, regenerate the file with
//! `USEROPS_BLESS=1 cargo test -p userops-cli --test demo_summary` and say why in the commit.

use std::process::Command;

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/demo_summary_300_seed7.txt"
);

/// The summary lines of `userops demo` (without the store and report paths and the wall time).
fn summary(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|l| *l != "summary:")
        .take_while(|l| !l.starts_with("  store:"))
        .map(|l| format!("{}\n", l.trim_end()))
        .collect()
}

#[test]
fn the_demo_summary_of_a_fixed_seed_is_unchanged() {
    let dir = std::env::temp_dir().join(format!("userops-demo-summary-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_userops"))
        .args(["demo", "--users", "300", "--seed", "7", "--quiet", "--out"])
        .arg(&dir)
        .output()
        .expect("the userops binary runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "userops demo failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = summary(&stdout);
    assert!(
        got.lines().count() > 20,
        "the summary was not found in the output:\n{stdout}"
    );
    if std::env::var_os("USEROPS_BLESS").is_some() {
        std::fs::write(FIXTURE, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(FIXTURE).expect("the fixture exists");
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .map(|(w, g)| format!("- {w}\n+ {g}"))
            .collect();
        panic!(
            "the demo summary changed ({} lines before, {} now):\n{}",
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}
