//! The child of the crash test (`tests/crash.rs`): opens a store, ingests events and prints the
//! idempotency key of each one once it is durable, until it is killed.
//!
//! Usage: `userops-crash-child DB every|group PREFIX COUNT`

use std::io::Write;
use std::time::Duration;

use userops::{Command, Event};
use userops_store::{Durability, StoreOptions};

fn event(key: &str, i: u64) -> Event {
    // Every fifth event links two members, so persons merge and the identity graph is exercised.
    let json = if i % 5 == 4 {
        format!(
            r#"{{"kind": "identify", "key": "{key}", "time": "2026-01-01T00:00:00Z",
            "source": {{"platform": "app", "program": "b"}},
            "ids": [{{"kind": "member_no", "value": "M{}"}}, {{"kind": "member_no", "value": "M{}"}}]}}"#,
            i % 97,
            (i * 7) % 89
        )
    } else {
        format!(
            r#"{{"kind": "register", "key": "{key}", "time": "2026-01-01T00:00:00Z",
            "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "member_no", "value": "M{}"}}}}"#,
            i % 97
        )
    };
    Event::from_json(&json).expect("the child's events are valid")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: userops-crash-child DB every|group PREFIX COUNT");
        std::process::exit(2);
    }
    let durability = match args[2].as_str() {
        "group" => Durability::Group {
            max_commands: 16,
            max_delay: Duration::from_millis(2),
        },
        _ => Durability::EveryCommand,
    };
    let count: u64 = args[4].parse().unwrap_or(100);
    let store = match StoreOptions::new()
        .durability(durability)
        .snapshot_every(40)
        .open(&args[1])
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("open: {e}");
            std::process::exit(1);
        }
    };
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut pending: Vec<(i64, String)> = Vec::new();
    for i in 0..count {
        let key = format!("{}-{i}", args[3]);
        match store.submit(Command::ingest(event(&key, i))) {
            Ok(ack) => {
                if let Some(seq) = ack.seq {
                    pending.push((seq, key));
                }
            }
            Err(e) => {
                eprintln!("ingest {key}: {e}");
                std::process::exit(1);
            }
        }
        let durable = store.durable_seq();
        pending.retain(|(seq, key)| {
            if *seq <= durable {
                // Written only once durable: the parent holds us to every key it reads.
                let _ = writeln!(out, "{key}");
                false
            } else {
                true
            }
        });
        let _ = out.flush();
    }
    if store.flush().is_ok() {
        for (_, key) in pending {
            let _ = writeln!(out, "{key}");
        }
    }
    let _ = out.flush();
}
