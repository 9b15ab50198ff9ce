//! Open-loop load on `examples/service` over loopback: a mixed load (80 % reads: profile and
//! quote; 20 % writes: ingest and commit) at constant request rates, then the same while an
//! automation run and a snapshot are in flight, then reads straight on the shared engine at 1
//! and 2 threads. Prints p50 / p99 / p99.9 / max per request kind and overall, throughput, and
//! whether the targets hold (quote p99 < 5 ms at 5,000 req/s; no request over 50 ms while an
//! automation run or a snapshot is in progress).
//!
//! ```sh
//! cargo run --release -p userops-benches --example service_load
//! USERS=1000000 RATES=1000,2500,5000 SECS=10 cargo run --release -p userops-benches --example service_load
//! CONCURRENCY=lock cargo run --release -p userops-benches --example service_load  # one copy
//! JOBS=snapshot cargo run --release -p userops-benches --example service_load  # or automation
//! ```
//!
//! Open loop, no coordinated omission: request `i` is due at `start + i / rate` whatever the
//! service does; its latency is measured from when it was due, so a stall counts for every
//! request it delays. The requests go over `CONNS` keep-alive connections (default 64); a
//! request waits for a free one (that wait is part of its latency).
//!
//! The service runs in this process on a runtime of its own (`WORKERS` async workers,
//! default 2) over a durable store (group commit, replicas) in a temporary directory; the
//! load generator runs on another (1 thread). Both share the machine's cores: note the load
//! average (`uptime`) next to every figure. `USERS` members are loaded first (one order each,
//! through the store, in batches), so that profile, quote and the automation run have data.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use userops::Command;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const KINDS: [&str; 4] = ["profile", "quote", "ingest", "commit"];

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(s),
        })
    }

    /// POST `body` to `path`; the status.
    async fn post(&mut self, path: &str, body: &str) -> std::io::Result<u16> {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: l\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.stream.get_mut().write_all(req.as_bytes()).await?;
        // Headers, then exactly Content-Length bytes of body.
        let mut head = Vec::with_capacity(256);
        loop {
            let b = self.stream.read_u8().await?;
            head.push(b);
            if head.ends_with(b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&head);
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad response: {head}")))?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await?;
        Ok(status)
    }
}

/// Latencies (µs) of one run, per kind and overall, and what went wrong.
struct Recorded {
    by_kind: Vec<Histogram<u64>>,
    all: Histogram<u64>,
    errors: u64,
    /// Requests due inside `window` (while a long job ran) and the slowest of them (µs).
    in_window: u64,
    window_max: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("histogram bounds")
}

/// The bodies of each kind for request number `i` (the users are `U0..U{users}`).
fn request(i: u64, users: u64, quote: &str) -> (usize, &'static str, String) {
    let u = (i.wrapping_mul(2_654_435_761)) % users;
    let user = json!({"kind": "member_no", "value": format!("U{u}")});
    // 40 % profile, 40 % quote, 10 % ingest, 10 % commit.
    match i % 10 {
        0..=3 => (
            0,
            "/profile",
            json!({"user": user}).to_string(),
        ),
        4..=7 => (
            1,
            "/quote",
            json!({"user": user, "cart": {"time": "2026-03-01T02:00:00Z", "channel": "app",
                "lines": [{"sku": "s", "category": "x", "price": format!("{}.00", 100 + (i % 5) * 60), "qty": 1}]}})
            .to_string(),
        ),
        8 => (
            2,
            "/ingest",
            json!({"kind": "order", "key": format!("load-{i}"), "time": "2026-03-01T02:00:00Z",
                "source": {"platform": "app", "program": "b"}, "user": user,
                "order_id": format!("load-{i}"), "amount": "120.00",
                "lines": [{"sku": "s", "category": "x", "price": "120.00", "qty": 1}]})
            .to_string(),
        ),
        _ => (
            3,
            "/commit",
            format!(r#"{{"quote": {quote}, "key": "commit-{i}"}}"#),
        ),
    }
}

/// Send requests at `rate` per second for `secs` seconds (numbered from `first`); the
/// latency of each from the moment it was due. `window` marks the requests due while a long
/// job runs.
/// Where the load goes and what it sends.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    users: u64,
    conns: usize,
    /// The quote every commit sends (under a new key each time).
    quote: Arc<String>,
}

async fn run(
    target: Target,
    rate: u64,
    secs: u64,
    first: u64,
    window: Arc<AtomicBool>,
) -> Recorded {
    let Target {
        addr,
        users,
        conns,
        quote,
    } = target;
    let (tx, rx) = tokio::sync::mpsc::channel::<(Instant, u64, bool)>(1 << 20);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let rec = Arc::new(Mutex::new(Recorded {
        by_kind: KINDS.iter().map(|_| histogram()).collect(),
        all: histogram(),
        errors: 0,
        in_window: 0,
        window_max: 0,
    }));
    let mut workers = Vec::new();
    for _ in 0..conns {
        let (rx, rec, quote) = (rx.clone(), rec.clone(), quote.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await.expect("connect");
            loop {
                let next = rx.lock().await.recv().await;
                let Some((due, i, in_window)) = next else {
                    return;
                };
                let (kind, path, body) = request(i, users, &quote);
                let ok = match conn.post(path, &body).await {
                    Ok(s) => s == 200,
                    Err(_) => {
                        conn = Conn::open(addr).await.expect("reconnect");
                        false
                    }
                };
                let us = due.elapsed().as_micros().max(1) as u64;
                let mut r = rec.lock().expect("recorder");
                let _ = r.by_kind[kind].record(us);
                let _ = r.all.record(us);
                if !ok {
                    r.errors += 1;
                }
                if in_window {
                    r.in_window += 1;
                    r.window_max = r.window_max.max(us);
                }
            }
        }));
    }
    let start = Instant::now();
    let total = rate * secs;
    for n in 0..total {
        let due = start + Duration::from_nanos(n * 1_000_000_000 / rate);
        tokio::time::sleep_until(due.into()).await;
        let _ = tx
            .send((due, first + n, window.load(Ordering::Relaxed)))
            .await;
    }
    drop(tx);
    for w in workers {
        let _ = w.await;
    }
    Arc::try_unwrap(rec)
        .ok()
        .expect("workers done")
        .into_inner()
        .expect("recorder")
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn report(label: &str, rate: u64, secs: u64, r: &Recorded) {
    let n = r.all.len();
    println!(
        "{label}: {rate} req/s offered, {:.0} req/s done, {} errors, load {}",
        n as f64 / secs as f64,
        r.errors,
        loadavg()
    );
    println!("  kind      count    p50 ms   p99 ms  p99.9 ms   max ms");
    let rows = KINDS
        .iter()
        .zip(&r.by_kind)
        .map(|(k, h)| (*k, h))
        .chain([("all", &r.all)]);
    for (k, h) in rows {
        println!(
            "  {k:<8} {:>6} {:>9.2} {:>8.2} {:>9.2} {:>8.2}",
            h.len(),
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max())
        );
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

fn call(store: &userops_store::Store, method: &str, args: Value) -> userops::Output {
    store
        .execute(Command::from_call(method, &args.to_string()).expect("command"))
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// A durable store in a temporary directory (the service's settings, `CONCURRENCY` as asked)
/// holding a program, a promotion, an automation rule and `users` members with one order each,
/// its copies caught up.
fn open_and_preload(users: u64) -> (tempfile::TempDir, Arc<userops_store::Store>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let concurrency: userops::shared::Concurrency = env("CONCURRENCY", "replicas".to_owned())
        .parse()
        .expect("CONCURRENCY is replicas or lock");
    // The service's own settings (examples/service `open_store`), with the concurrency asked.
    let store = Arc::new(
        userops_store::StoreOptions::new()
            .durability(userops_store::Durability::group())
            .concurrency(concurrency)
            .open(dir.path().join("load.db"))
            .expect("open"),
    );
    call(
        &store,
        "create_program",
        json!({"program": {"id": "b", "earn": {"points_per_unit": "1"}}}),
    );
    call(
        &store,
        "add_promotion",
        json!({"promotion": {"id": "p300", "action": {"type": "threshold_discount", "threshold": "300", "off": "50"}}}),
    );
    call(
        &store,
        "add_rule",
        json!({"rule": {"id": "winback", "trigger": {"type": "inactive", "days": 30},
            "actions": [{"type": "grant_points", "points": 10, "program": "b"}]}}),
    );
    let clock = Instant::now();
    let mut i = 0;
    while i < users {
        let n = (users - i).min(50_000);
        let events = (i..i + n).map(|u| {
            userops::Event::from_json(
                &json!({"kind": "order", "key": format!("pre-{u}"),
                    "time": format!("2026-01-{:02}T02:00:00Z", 1 + u % 28),
                    "source": {"platform": "app", "program": "b"},
                    "user": {"kind": "member_no", "value": format!("U{u}")},
                    "order_id": format!("pre-{u}"), "amount": "100.00",
                    "lines": [{"sku": "s", "category": "x", "price": "100.00", "qty": 1}]})
                .to_string(),
            )
            .expect("event")
        });
        let batch = Command::Core(userops::CoreCommand::IngestBatch {
            events: events.collect(),
            on_error: userops::OnError::Stop,
        });
        store.execute(batch).expect("preload");
        i += n;
    }
    store.flush().expect("flush");
    println!(
        "loaded {users} users (one order each) in {:.1} s, load {}",
        clock.elapsed().as_secs_f64(),
        loadavg()
    );
    // The preload is a few large writes: the other online copy replays them at the next
    // write and the analysis copy in the background. Let both catch up before measuring, and
    // say how long that took (requests in that window would wait for a core).
    let clock = Instant::now();
    call(
        &store,
        "create_program",
        json!({"program": {"id": "settle"}}),
    );
    drop(store.shared().analysis().expect("analysis copy"));
    println!(
        "copies caught up with the preload in {:.2} s; resident {:.0} MiB ({concurrency:?})",
        clock.elapsed().as_secs_f64(),
        userops_benches::proc_status_mib("VmRSS")
    );
    (dir, store)
}

/// Reads straight on the shared engine, closed loop, for `secs` on 1 then 2 threads.
fn reads_on_the_shared_engine(store: &userops_store::Store, users: u64, secs: u64) {
    for threads in [1, 2] {
        let done = AtomicU64::new(0);
        let t = Instant::now();
        std::thread::scope(|s| {
            for th in 0..threads {
                let (store, done) = (&store, &done);
                s.spawn(move || {
                    let mut i = th as u64;
                    while t.elapsed() < Duration::from_secs(secs) {
                        // Kinds 0..8 of `request` are the reads.
                        let (_, path, body) = request(i / 8 * 10 + i % 8, users, "");
                        let method = &path[1..];
                        let c = Command::from_call(method, &body).expect("read");
                        store.execute(c).expect("read answer");
                        i = i.wrapping_add(7919);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        println!(
            "reads (profile + quote) on the shared engine, {threads} thread(s): {:.0} reads/s, load {}",
            done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64(),
            loadavg()
        );
    }
}

/// Which long jobs run beside the load.
#[derive(Clone, Copy)]
struct Jobs {
    automation: bool,
    snapshot: bool,
}

fn main() {
    let users: u64 = env("USERS", 20_000);
    let rates: Vec<u64> = env("RATES", "1000,2500,5000".to_owned())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let secs: u64 = env("SECS", 10);
    let conns: usize = env("CONNS", 64);
    let workers: usize = env("WORKERS", 2);
    let during_rate: u64 = env("DURING_RATE", 1000);

    let (_dir, store) = open_and_preload(users);

    // The service, on a runtime of its own.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (tx, rx) = std::sync::mpsc::channel();
    let service = {
        let store = store.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
                .expect("service runtime")
                .block_on(userops_service::serve(
                    store,
                    "127.0.0.1:0".parse().expect("addr"),
                    move |a| tx.send(a).expect("bound"),
                    async {
                        let _ = stopped.await;
                    },
                ))
                .expect("serve")
        })
    };
    let addr = rx.recv().expect("bound");
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");

    // One quote (above the threshold) that every commit reuses under a new key.
    let quote = call(
        &store,
        "quote",
        json!({"cart": {"time": "2026-03-01T02:00:00Z", "channel": "app",
            "lines": [{"sku": "s", "category": "x", "price": "320.00", "qty": 1}]}}),
    );
    let target = Target {
        addr,
        users,
        conns,
        quote: Arc::new(serde_json::to_string(&quote).expect("quote json")),
    };
    let never = Arc::new(AtomicBool::new(false));
    let first = AtomicU64::new(0);
    let mut quote_p99_at_5000 = None;
    for &rate in &rates {
        let from = first.fetch_add(rate * secs, Ordering::Relaxed);
        let r = client.block_on(run(target.clone(), rate, secs, from, never.clone()));
        report("mixed", rate, secs, &r);
        if rate == 5000 {
            quote_p99_at_5000 = Some(r.by_kind[1].value_at_quantile(0.99));
        }
    }

    // The same while an automation run over every user and a snapshot are in flight (JOBS:
    // `both`, or `automation` or `snapshot` alone, to tell which one slows requests).
    let jobs_run = match env("JOBS", "both".to_owned()).as_str() {
        "automation" => Jobs {
            automation: true,
            snapshot: false,
        },
        "snapshot" => Jobs {
            automation: false,
            snapshot: true,
        },
        _ => Jobs {
            automation: true,
            snapshot: true,
        },
    };
    let window = Arc::new(AtomicBool::new(false));
    let jobs = {
        let (store, window) = (store.clone(), window.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            window.store(true, Ordering::SeqCst);
            let t = Instant::now();
            let snap = {
                let store = store.clone();
                std::thread::spawn(move || {
                    let t = Instant::now();
                    if jobs_run.snapshot {
                        store.snapshot().expect("snapshot");
                    }
                    t.elapsed()
                })
            };
            let plan = if jobs_run.automation {
                call(
                    &store,
                    "run_automation",
                    json!({"now": "2026-03-15T02:00:00Z"}),
                )
            } else {
                userops::Output::Campaigns(userops::campaigns::CampaignsOutput::Plan(Vec::new()))
            };
            let automation = t.elapsed();
            let snapshot = snap.join().expect("snapshot thread");
            window.store(false, Ordering::SeqCst);
            let rows = match plan {
                userops::Output::Campaigns(userops::campaigns::CampaignsOutput::Plan(p)) => p.len(),
                _ => 0,
            };
            (automation, snapshot, rows)
        })
    };
    let from = first.fetch_add(during_rate * secs * 4, Ordering::Relaxed);
    let during = client
        .block_on(async { run(target.clone(), during_rate, secs * 4, from, window.clone()).await });
    let (automation, snapshot, rows) = jobs.join().expect("jobs");
    report(
        "mixed, automation run + snapshot in flight",
        during_rate,
        secs * 4,
        &during,
    );
    println!(
        "  automation over {users} users: {:.1} s ({rows} plan rows); snapshot: {:.1} s; \
         {} requests due while they ran, slowest {:.1} ms",
        automation.as_secs_f64(),
        snapshot.as_secs_f64(),
        during.in_window,
        ms(during.window_max)
    );

    let _ = stop.send(());
    service.join().expect("service");

    reads_on_the_shared_engine(&store, users, secs);

    if let Some(p99) = quote_p99_at_5000 {
        println!(
            "target quote p99 < 5 ms at 5,000 req/s: {:.2} ms -> {}",
            ms(p99),
            if p99 < 5_000 { "met" } else { "NOT met" }
        );
    }
    println!(
        "target no request > 50 ms while automation/snapshot run: slowest {:.1} ms -> {}",
        ms(during.window_max),
        if during.window_max <= 50_000 {
            "met"
        } else {
            "NOT met"
        }
    );
}
