//! `userops-service`: serve one durable userops store over HTTP (see the crate docs for the
//! endpoints).
//!
//! ```sh
//! cargo run --release -p userops-service -- --db service.db --addr 127.0.0.1:8080
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;

/// Serve one durable userops store over HTTP.
#[derive(Parser)]
struct Args {
    /// The store's SQLite file (created if missing).
    #[arg(long, default_value = "service.db")]
    db: PathBuf,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// `every` (each write committed before it is answered) or `group` (committed in groups
    /// within 10 ms: faster, a crash loses the last group).
    #[arg(long, default_value = "every")]
    durability: String,
    /// Async worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let store = Arc::new(userops_service::open_store(&args.db, &args.durability)?);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.workers {
        runtime.worker_threads(n);
    }
    runtime
        .enable_all()
        .build()?
        .block_on(userops_service::serve(
            store,
            args.addr,
            |a| eprintln!("userops-service: {} on http://{a}", args.db.display()),
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        ))?;
    // The store is dropped here: group commit flushes, a background snapshot finishes.
    Ok(())
}
