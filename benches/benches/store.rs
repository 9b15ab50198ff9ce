//! Durable ingest throughput per commit mode, and recovery time for a large journal.
//!
//! `cargo bench -p userops-benches --bench store` runs the criterion throughput groups.
//! `USEROPS_RECOVERY_RECORDS=N USEROPS_BENCH_DIR=/work/benchdata/store cargo bench -p
//! userops-benches --bench store -- recovery` builds a journal of N records (default 1,000,000)
//! with no snapshot and times a full recovery (replay of every record), then a recovery from a
//! snapshot. The database goes in a temporary directory under `USEROPS_BENCH_DIR` (default
//! `.`), removed at the end; 10M records take about 3.5 GB.
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented `pub fn`"
)]
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use userops::{Command, Event};
use userops_benches::{event, events};
use userops_store::{Durability, StoreOptions};

fn run_mode(durability: Durability, evs: Vec<Event>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StoreOptions::new()
        .durability(durability)
        .open(dir.path().join("b.db"))
        .expect("open");
    for e in evs {
        store.submit(Command::ingest(e)).expect("ingest");
    }
    store.flush().expect("flush");
}

fn durable_ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_ingest");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    let few = events(200);
    g.throughput(Throughput::Elements(few.len() as u64));
    g.bench_function("every_command_200", |b| {
        b.iter_batched(
            || few.clone(),
            |evs| run_mode(Durability::EveryCommand, evs),
            BatchSize::PerIteration,
        )
    });
    let many = events(20_000);
    g.throughput(Throughput::Elements(many.len() as u64));
    g.bench_function("group_1000_or_10ms_20k", |b| {
        b.iter_batched(
            || many.clone(),
            |evs| run_mode(Durability::group(), evs),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("batch_chunks_of_10k_20k", |b| {
        b.iter_batched(
            || many.clone(),
            |evs| {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = StoreOptions::new()
                    .open(dir.path().join("b.db"))
                    .expect("open");
                store.ingest_batch(evs, 10_000).expect("batch");
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// Not a criterion group: one large journal, built once, recovered twice.
fn recovery() {
    let n: usize = std::env::var("USEROPS_RECOVERY_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir =
        tempfile::tempdir_in(std::env::var("USEROPS_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .expect("temp dir");
    let path = dir.path().join("recovery.db");
    let t = Instant::now();
    {
        let store = StoreOptions::new()
            .snapshot_every(u64::MAX)
            .open(&path)
            .expect("open");
        let chunk = 100_000;
        let mut i = 0;
        while i < n {
            let end = (i + chunk).min(n);
            store
                .ingest_batch((i..end).map(event), 10_000)
                .expect("batch");
            i = end;
        }
    }
    let build = t.elapsed();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "recovery: built {n} journal records in {:.1} s ({:.0} records/s, batch chunks of 10k), file {:.0} MiB",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64(),
        size as f64 / 1048576.0
    );
    let t = Instant::now();
    let store = StoreOptions::new().open(&path).expect("reopen");
    let full = t.elapsed();
    assert_eq!(store.last_seq() as usize, n);
    println!(
        "recovery: full replay of {n} records in {:.1} s ({:.0} records/s)",
        full.as_secs_f64(),
        n as f64 / full.as_secs_f64()
    );
    println!(
        "recovery: peak RSS so far {:.0} MiB",
        userops_benches::proc_status_mib("VmHWM")
    );
    let t = Instant::now();
    store.snapshot().expect("snapshot");
    println!(
        "recovery: snapshot written in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);
    let t = Instant::now();
    let store = StoreOptions::new().open(&path).expect("reopen");
    println!(
        "recovery: from a snapshot at record {n} in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);
    println!(
        "recovery: peak RSS {:.0} MiB",
        userops_benches::proc_status_mib("VmHWM")
    );
}

criterion_group!(benches, durable_ingest);

fn main() {
    if std::env::args().any(|a| a == "recovery") {
        recovery();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
