//! The userops side of the lifecycle comparison: load the raw columns, then time the stage
//! table and the report (stages, transitions, decomposition) of every month.
//!
//! cargo run --release -p userops-benches --example lifecycle_rust -- DATA_DIR

use std::time::Instant;

use userops::lifecycle::{stage_table, ActivityTable, LifecycleReport, PeriodClock, StageOptions};
use userops::Period;

/// Read a raw column value by value, so that peak memory holds the column once (as the numpy
/// loads of the Python side do).
fn read<T>(path: &str, conv: fn([u8; 8]) -> T) -> Vec<T> {
    use std::io::Read;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let len = f.metadata().map(|m| m.len() as usize / 8).unwrap_or(0);
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut out = Vec::with_capacity(len);
    let mut v = [0u8; 8];
    while r.read_exact(&mut v).is_ok() {
        out.push(conv(v));
    }
    out
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: lifecycle_rust DATA_DIR");
    let users: Vec<u64> = read(&format!("{dir}/users.u64"), u64::from_le_bytes);
    let times: Vec<i64> = read(&format!("{dir}/times.i64"), i64::from_le_bytes);
    let t0 = Instant::now();
    let clock = PeriodClock::new(Period::Month, 8 * 3600);
    let table = stage_table(
        ActivityTable {
            user: &users,
            time: &times,
        },
        None,
        StageOptions::new(clock),
    )
    .expect("bench data is valid");
    let t1 = Instant::now();
    let report = LifecycleReport::from_table(&table).expect("identity holds");
    let t2 = Instant::now();
    // Transition counts (month, from, to) for the cross-check with polars and DuckDB.
    let mut rows = Vec::new();
    for p in &report.periods {
        for t in &p.transitions {
            rows.push(serde_json::json!([
                p.period,
                t.from.map(|s| s.name()),
                t.to.name(),
                t.users
            ]));
        }
    }
    let out = serde_json::json!({
        "engine": "userops",
        "events": users.len(),
        "users": table.users().len(),
        "months": table.period_count(),
        "seconds_stages": (t1 - t0).as_secs_f64(),
        "seconds_report": (t2 - t1).as_secs_f64(),
        "seconds": (t2 - t0).as_secs_f64(),
        "transitions": rows,
    });
    println!("{out}");
}
