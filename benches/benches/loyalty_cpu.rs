//! Ledger postings per second measured in CPU time (this thread's user + system time from
//! `/proc/thread-self/stat`), so that the figure holds on a shared, loaded machine where wall
//! time (criterion's measure) mostly counts waiting for a core.
//!
//! `cargo bench -p userops-benches --bench loyalty_cpu`
use chrono::{Duration, TimeZone, Utc};
use userops::loyalty::ledger::{Earn, Entry, Spend};
use userops::loyalty::{BookId, Clawback, Ledger};
use userops::OneId;

/// CPU seconds used by this thread so far (Linux; clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux /proc");
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn main() {
    const N: usize = 2_000_000;
    let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let exp = Some(t0 + Duration::days(365));
    let keys: Vec<String> = (0..N).map(|i| format!("k{i}")).collect();
    for (name, mixed) in [("earn", false), ("earn+spend", true)] {
        let mut l = Ledger::new();
        let book = l.open_book("p", 0, Clawback::Debt);
        let start = cpu_seconds();
        for (i, k) in keys.iter().enumerate() {
            let user = OneId(((if mixed { i / 2 } else { i }) % 100_000) as u64);
            if mixed && i % 2 == 1 {
                l.spend(&Spend {
                    user,
                    book,
                    points: 60,
                    key: k,
                    reason: "",
                    actor: "",
                    time: t0,
                })
                .expect("spend");
            } else {
                l.earn(&Earn {
                    entry: Entry {
                        user,
                        book: BookId(book.0),
                        points: 100,
                        key: k,
                        reason: "",
                        actor: "",
                        time: t0,
                    },
                    expires: exp,
                    pending: false,
                    order: None,
                    money: None,
                    lines: &[],
                })
                .expect("earn");
            }
        }
        let cpu = cpu_seconds() - start;
        println!(
            "{name}: {N} postings in {cpu:.2} s CPU = {:.2} M postings/s per core",
            N as f64 / cpu / 1e6
        );
        assert!(l.check_invariants().is_ok());
    }
}
