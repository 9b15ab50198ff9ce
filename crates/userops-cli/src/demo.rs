//! `userops demo`: the main job, end to end on generated data.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use userops::Event;
use userops_store::{Durability, Store};

use crate::report::{collect, pages};
use crate::{chain, generate};

pub struct Options {
    pub users: u32,
    pub seed: u64,
    pub db: Option<PathBuf>,
    pub out: PathBuf,
    pub quiet: bool,
}

pub fn bar(len: u64, quiet: bool, what: &str) -> ProgressBar {
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

/// The first bytes of every SQLite file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The demo starts from an empty store: an earlier demo store at `path` is replaced, anything
/// else there is refused (never deleted).
fn fresh_store_path(path: &Path) -> Result<(), String> {
    let Ok(bytes) = std::fs::read(path).map(|b| b.into_iter().take(72).collect::<Vec<u8>>()) else {
        return Ok(()); // nothing there
    };
    let app_id = bytes
        .get(68..72)
        .map(|b| i64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])));
    if bytes.get(..16) != Some(&SQLITE_MAGIC[..]) || app_id != Some(userops_store::APPLICATION_ID) {
        return Err(format!(
            "{} exists and is not a userops store; pass another --db",
            path.display()
        ));
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", PathBuf::from(p).display())),
        }
    }
    Ok(())
}

fn phase(quiet: bool, what: &str, took: Duration) {
    if !quiet {
        println!("  {what:<34} {took:>10.2?}");
    }
}

pub fn run(opts: &Options) -> Result<(), String> {
    let total_t = Instant::now();
    let quiet = opts.quiet;
    let mk = |len: u64, what: &str| bar(len, quiet, what);
    println!(
        "userops demo: {} generated users (seed {})",
        opts.users, opts.seed
    );

    let t = Instant::now();
    let pb = mk(u64::from(opts.users), "generate");
    let mut events: Vec<Event> = Vec::new();
    for u in 0..opts.users {
        events.extend(generate::user_events(opts.seed, u));
        if u % 1024 == 0 {
            pb.set_position(u64::from(u));
        }
    }
    events.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.key.cmp(&b.key)));
    pb.finish_and_clear();
    phase(
        quiet,
        &format!("generated {} events", events.len()),
        t.elapsed(),
    );

    let db = opts
        .db
        .clone()
        .unwrap_or_else(|| opts.out.join("userops.db"));
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    fresh_store_path(&db)?;
    // Group commit and one snapshot at the end: the demo is one bulk load, so per-command
    // fsyncs and periodic whole-state snapshots would only slow it down.
    let mut store = Store::options()
        .durability(Durability::Group {
            max_commands: 10_000,
            max_delay: Duration::from_secs(1),
        })
        .snapshot_every(u64::MAX)
        .open(&db)
        .map_err(|e| format!("{}: {e}", db.display()))?;

    // The loyalty step needs only the orders; the events themselves are moved into the store
    // chunk by chunk, so their strings are freed as they go.
    let orders = chain::order_facts(&events);
    let total = events.len();
    let t = Instant::now();
    let pb = mk(total as u64, "ingest");
    let (mut merges, mut refused, mut done) = (0u64, 0u64, 0usize);
    let mut rest = events.into_iter();
    loop {
        let chunk: Vec<Event> = rest.by_ref().take(20_000).collect();
        if chunk.is_empty() {
            break;
        }
        let n = chunk.len();
        for r in store.ingest_batch(chunk, n).map_err(|e| e.to_string())? {
            match r {
                Ok(receipt) => merges += receipt.absorbed.len() as u64,
                Err(_) => refused += 1,
            }
        }
        done += n;
        pb.set_position(done as u64);
    }
    drop(rest);
    pb.finish_and_clear();
    let took = t.elapsed();
    phase(
        quiet,
        &format!(
            "ingested ({:.0} events/s)",
            total as f64 / took.as_secs_f64().max(1e-9)
        ),
        took,
    );
    if refused > 0 {
        return Err(format!("{refused} generated events were refused"));
    }

    let t = Instant::now();
    let chain = chain::run(&mut store, &orders, mk)?;
    phase(quiet, "tags, loyalty, consent, automation", t.elapsed());
    drop(orders);

    let t = Instant::now();
    store.snapshot().map_err(|e| e.to_string())?;
    phase(quiet, "snapshot", t.elapsed());

    let t = Instant::now();
    let results = collect::collect(&mut store, mk)?;
    phase(quiet, "lifecycle, analytics, models", t.elapsed());

    println!("summary:");
    println!("  {:<40} {merges}", "person merges during intake");
    for (k, v) in pages::summary(&results) {
        println!("  {k:<40} {v}");
    }
    println!(
        "  {:<40} {} rules, plan {:?}",
        "automation run", chain.rules, chain.plan
    );
    println!(
        "  {:<40} subtotal {} discount {} total {} ({} applied, commit {})",
        "sample cart quote",
        chain.quote["subtotal"].as_str().unwrap_or("?"),
        chain.quote["discount"].as_str().unwrap_or("?"),
        chain.quote["total"].as_str().unwrap_or("?"),
        chain.quote["applied"].as_array().map_or(0, Vec::len),
        chain.commit["state"].as_str().unwrap_or("?"),
    );
    println!(
        "  {:<40} {} points on {} orders, {} refunds; evaluation {}",
        "loyalty", chain.points_earned, chain.orders_earned, chain.refunds, chain.evaluation
    );
    let report = pages::build(
        &results,
        format!("userops demo — {} users, seed {}", opts.users, opts.seed),
    );
    let path = report
        .write(&opts.out)
        .map_err(|e| format!("writing the report: {e}"))?;
    println!("  store:  {}", db.display());
    println!("  report: {}", path.display());
    println!("  total wall time: {:.2?}", total_t.elapsed());
    Ok(())
}

/// `userops report --db PATH`: the report of an existing store, nothing regenerated.
pub fn report(db: &Path, out: &Path, quiet: bool) -> Result<(), String> {
    let t = Instant::now();
    if !db.is_file() {
        return Err(format!("{}: no such store", db.display()));
    }
    let mut store = Store::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
    let results = collect::collect(&mut store, |len, what| bar(len, quiet, what))?;
    let report = pages::build(&results, format!("userops report — {}", db.display()));
    let path = report
        .write(out)
        .map_err(|e| format!("writing the report: {e}"))?;
    println!(
        "report of {} ({} events, {} persons): {} in {:.2?}",
        db.display(),
        results.stats.events,
        results.stats.persons,
        path.display(),
        t.elapsed()
    );
    Ok(())
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
