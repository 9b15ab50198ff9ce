//! `userops demo`: the main job, end to end on generated data.

use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use userops::{Command, Engine, Event, Output, Receipt};
use userops_store::Store;

use crate::generate;
use crate::report::{svg, Report, Section};

pub struct Options {
    pub users: u32,
    pub seed: u64,
    pub db: Option<PathBuf>,
    pub out: PathBuf,
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
    let intake = monthly_intake(&events);
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
    let report = Report {
        title: format!("userops demo — {} users, seed {}", opts.users, opts.seed),
        summary: vec![
            ("events ingested".into(), total.to_string()),
            ("identifiers".into(), stats.identifiers.to_string()),
            ("persons (OneIDs)".into(), stats.persons.to_string()),
            ("person merges during intake".into(), merges.to_string()),
        ],
        sections: vec![
            Section {
                title: "Intake per month".into(),
                note: "Generated events per calendar month (UTC) and kind: the seasonal peaks are Spring Festival (Jan/Feb), May Day and National Day (Oct).".into(),
                body: svg::stacked_bars(
                    "Events per month by kind",
                    &intake.months,
                    &intake
                        .kinds
                        .iter()
                        .map(|(k, v)| svg::Series {
                            name: k,
                            values: v.clone(),
                        })
                        .collect::<Vec<_>>(),
                    false,
                ),
            },
            Section {
            title: "Intake by event kind".into(),
            note: "Events accepted per kind (replayed idempotency keys not counted).".into(),
            body: svg::hbars(
                "Events by kind",
                &stats.events_by_kind.keys().cloned().collect::<Vec<_>>(),
                &stats
                    .events_by_kind
                    .values()
                    .map(|v| *v as f64)
                    .collect::<Vec<_>>(),
                false,
            ),
        },
        ],
    };
    let path = report
        .write(&opts.out)
        .map_err(|e| format!("writing the report: {e}"))?;
    println!("  report: {}", path.display());
    Ok(())
}

/// Events per month (UTC calendar month) and kind, for the intake chart.
struct MonthlyIntake {
    months: Vec<String>,
    kinds: Vec<(String, Vec<f64>)>,
}

fn monthly_intake(events: &[Event]) -> MonthlyIntake {
    use std::collections::BTreeMap;
    let mut counts: BTreeMap<&'static str, BTreeMap<String, f64>> = BTreeMap::new();
    let mut months = std::collections::BTreeSet::new();
    for e in events {
        let m = e.time.format("%Y-%m").to_string();
        *counts
            .entry(e.kind_name())
            .or_default()
            .entry(m.clone())
            .or_default() += 1.0;
        months.insert(m);
    }
    let months: Vec<String> = months.into_iter().collect();
    let kinds = counts
        .into_iter()
        .map(|(k, by_month)| {
            (
                k.to_owned(),
                months
                    .iter()
                    .map(|m| by_month.get(m).copied().unwrap_or(0.0))
                    .collect(),
            )
        })
        .collect();
    MonthlyIntake { months, kinds }
}

/// `userops generate`: write the data set to files, user by user, with a progress bar.
pub fn generate_files(
    users: u32,
    seed: u64,
    out: &std::path::Path,
    quiet: bool,
) -> Result<(), String> {
    let pb = bar(u64::from(users), quiet, "generate");
    let t = Instant::now();
    let written = generate::write(out, users, seed, |u| {
        if u % 1024 == 0 {
            pb.set_position(u64::from(u));
        }
    })?;
    pb.finish_and_clear();
    println!(
        "wrote {} events ({} identity rows) for {users} users to {} in {:.2?}",
        written.events,
        written.identity_rows,
        out.display(),
        t.elapsed()
    );
    Ok(())
}
