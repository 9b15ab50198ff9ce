//! The `userops` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod chain;
mod demo;
mod export;
mod generate;
mod report;

/// userops: unify users from every channel into one person, then operate on them.
#[derive(Parser)]
#[command(name = "userops", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a seeded synthetic multi-channel data set (JSON lines + CSV tables) to a directory.
    Generate {
        /// Number of users (10k to 10M; memory stays flat).
        #[arg(long, default_value_t = 10_000)]
        users: u32,
        /// Seed of the generator.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "data")]
        out: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// The main job: generate a multi-channel data set, ingest it into an embedded store, run
    /// the whole chain (OneID, tags, lifecycle, models, loyalty, automation, promotions), print
    /// a summary and write the HTML report.
    Demo {
        /// Number of users to generate.
        #[arg(long, default_value_t = 200_000)]
        users: u32,
        /// Seed of the generator (the same seed gives the same data).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// The store to create (default: `OUT/userops.db`); an earlier demo store there is
        /// replaced, any other file is refused.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Directory the HTML report is written to.
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Write the HTML report of an existing store (no data is generated or changed).
    Report {
        /// The store's SQLite file (e.g. `report/userops.db` after `userops demo`).
        #[arg(long)]
        db: PathBuf,
        /// Directory the HTML report is written to.
        #[arg(long, default_value = "report")]
        out: PathBuf,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Verify a store without changing it: journal checksums and sequence, snapshots, a replay
    /// that must reproduce the snapshots byte for byte, invariants, materialized tables.
    /// Exit status 0 when the store is sound, 1 otherwise.
    Check {
        /// The store's SQLite file.
        #[arg(long)]
        db: PathBuf,
    },
    /// Write a store's history as files other tools read (see `userops export events --help`).
    Export {
        #[command(subcommand)]
        what: Export,
    },
}

#[derive(Subcommand)]
enum Export {
    /// The event log as Parquet files (`DIR/events-00000.parquet`, ... and
    /// `DIR/_userops_export.json`), readable by DuckDB, polars, pandas and Spark. The store is
    /// only read. Exported: every event the journal holds, i.e. every accepted event since
    /// the store was created, except what erasures redacted (an erased person's events are
    /// never exported). Events of `ingest_batch` records are exported as journaled (column
    /// `batch_index`; the journal does not say which the engine refused). Columns: seq,
    /// batch_index, key, kind, time (UTC ms), platform, program, user_kind, user_value,
    /// user_oneid, channel, order_id, amount (exact decimal), attributes (JSON).
    Events {
        /// The store's SQLite file.
        #[arg(long)]
        db: PathBuf,
        /// Output directory: created if missing; an earlier export there is replaced, a
        /// directory holding anything else is refused.
        #[arg(long)]
        out: PathBuf,
        /// Rows per Parquet file.
        #[arg(long, default_value_t = 1 << 20)]
        rows_per_file: usize,
        /// Rows per row group (bounds the writer's memory).
        #[arg(long, default_value_t = 1 << 17)]
        row_group_rows: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Generate {
            users,
            seed,
            out,
            quiet,
        } => demo::generate_files(users, seed, &out, quiet),
        Cmd::Demo {
            users,
            seed,
            db,
            out,
            quiet,
        } => demo::run(&demo::Options {
            users,
            seed,
            db,
            out,
            quiet,
        }),
        Cmd::Report { db, out, quiet } => demo::report(&db, &out, quiet),
        Cmd::Check { db } => match userops_store::check(&db) {
            Ok(report) => {
                println!("{report}");
                if report.ok() {
                    Ok(())
                } else {
                    Err("the store has problems (see above)".to_owned())
                }
            }
            Err(e) => Err(e.to_string()),
        },
        Cmd::Export {
            what:
                Export::Events {
                    db,
                    out,
                    rows_per_file,
                    row_group_rows,
                },
        } => export::export_events(&export::Options {
            db,
            out,
            rows_per_file,
            row_group_rows,
        })
        // The files are written: a closed stdout (`| head`) is no failure of the export.
        .map(|summary| {
            use std::io::Write as _;
            let _ = writeln!(std::io::stdout(), "{summary}");
        })
        .map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("userops: {e}");
            ExitCode::FAILURE
        }
    }
}
