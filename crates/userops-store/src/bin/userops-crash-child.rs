//! The child of the crash test (`tests/crash.rs`): opens a store, ingests events and prints the
//! idempotency key of each one once it is durable, until it is killed. With `erase`, each event
//! registers a new member that is erased right after; `erased VALUE` is printed once the
//! erasure is durable (the parent then requires that VALUE is nowhere in the files).
//!
//! Usage: `userops-crash-child DB every|group PREFIX COUNT [erase]`

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
    if !(5..=6).contains(&args.len()) {
        eprintln!("usage: userops-crash-child DB every|group PREFIX COUNT [erase]");
        std::process::exit(2);
    }
    let erase = args.get(5).is_some_and(|a| a == "erase");
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
        if erase {
            erase_one(&store, &key, &mut out);
            continue;
        }
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

/// Register a member whose value is unique to `key`, then erase the person; print the key and
/// `erased VALUE` once each is durable (an erasure commits at once, whatever the mode).
fn erase_one(store: &userops_store::Store, key: &str, out: &mut impl Write) {
    // Closed by `E`: no value is the start of another (`...x1` of `...x10`), so the parent's
    // search for an erased value cannot find a member registered and not yet erased.
    let member = format!("ERASEME{}E", key.replace('-', "x"));
    let json = format!(
        r#"{{"kind": "register", "key": "{key}", "time": "2026-01-01T00:00:00Z",
        "source": {{"platform": "app", "program": "b"}}, "user": {{"kind": "member_no", "value": "{member}"}}}}"#
    );
    let event = Event::from_json(&json).expect("the child's events are valid");
    let oneid = match store.ingest(event) {
        Ok(r) => r.oneid.map(|o| o.0).unwrap_or(0),
        Err(e) => {
            eprintln!("ingest {key}: {e}");
            std::process::exit(1);
        }
    };
    let erase = Command::from_call(
        "erase",
        &format!(r#"{{"oneid": {oneid}, "actor": "dpo", "time": "2026-01-02T00:00:00Z"}}"#),
    )
    .expect("a valid erase");
    match store.submit(erase) {
        Ok(ack) if ack.durable => {
            let _ = writeln!(out, "{key}");
            let _ = writeln!(out, "erased {member}");
            let _ = out.flush();
        }
        Ok(_) => {
            eprintln!("erase {key}: not durable at once");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("erase {key}: {e}");
            std::process::exit(1);
        }
    }
}
