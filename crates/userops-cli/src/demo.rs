//! `userops demo`: the main job, end to end on generated data.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use userops::{Command, Engine, Event, Output, Receipt};
use userops_store::Store;

use crate::generate;

pub struct Options {
    pub users: u32,
    pub seed: u64,
    pub db: Option<PathBuf>,
    pub quiet: bool,
}

#[allow(clippy::large_enum_variant)] // one per run
enum Sink {
    Memory(Engine),
    Store(Store),
}

impl Sink {
    fn ingest(&mut self, event: Event) -> Result<Receipt, String> {
        let command = Command::ingest(event);
        let output = match self {
            Sink::Memory(e) => e.execute(command).map_err(|e| e.to_string())?,
            Sink::Store(s) => s.execute(command).map_err(|e| e.to_string())?,
        };
        match output {
            Output::Receipt(r) => Ok(r),
            other => Err(format!("ingest returned {other:?}")),
        }
    }

    fn engine(&self) -> &Engine {
        match self {
            Sink::Memory(e) => e,
            Sink::Store(s) => s.engine(),
        }
    }
}

fn bar(len: u64, quiet: bool, what: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_owned());
    pb
}

pub fn run(opts: &Options) -> Result<(), String> {
    let t0 = Instant::now();
    let events = generate::events(opts.users, opts.seed);
    let generated = t0.elapsed();
    let mut sink = match &opts.db {
        Some(path) => Sink::Store(Store::open(path).map_err(|e| e.to_string())?),
        None => Sink::Memory(Engine::default()),
    };
    let pb = bar(events.len() as u64, opts.quiet, "ingest");
    let t1 = Instant::now();
    let total = events.len();
    let mut merges = 0u64;
    for (i, event) in events.into_iter().enumerate() {
        merges += sink.ingest(event)?.absorbed.len() as u64;
        if i % 1024 == 0 {
            pb.set_position(i as u64);
        }
    }
    pb.finish_and_clear();
    let ingest = t1.elapsed();
    let stats = sink.engine().stats();
    println!(
        "userops demo: {} generated users (seed {})",
        opts.users, opts.seed
    );
    println!("  generated {total} events in {:.2?}", generated);
    println!(
        "  ingested in {:.2?} ({:.0} events/s)",
        ingest,
        total as f64 / ingest.as_secs_f64().max(1e-9)
    );
    println!("  events by kind:");
    for (kind, n) in &stats.events_by_kind {
        println!("    {kind:<10} {n:>9}");
    }
    println!("  identifiers: {}", stats.identifiers);
    println!("  persons (OneIDs): {}", stats.persons);
    if merges > 0 {
        println!("  person merges during intake: {merges}");
    }
    Ok(())
}
