//! The shared engine: reads on a shared reference answer as the engine does, readers see
//! whole prefixes of the writes, and the copies end identical to a sequential replay.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use serde_json::{json, Value};

use super::{Concurrency, Route, SharedEngine};
use crate::{Command, Engine, Error};

fn cmd(method: &str, args: Value) -> Command {
    Command::from_call(method, &args.to_string()).unwrap_or_else(|e| panic!("{method}: {e}"))
}

fn member(i: u32) -> Value {
    json!({"kind": "member_no", "value": format!("M{i}")})
}

fn register(i: u32) -> Command {
    cmd(
        "ingest",
        json!({"event": {"kind": "register", "key": format!("r{i}"),
            "time": "2026-01-01T00:00:00Z", "source": {"platform": "app", "program": "brand-a"},
            "user": member(i)}}),
    )
}

fn order(i: u32, key: &str) -> Command {
    cmd(
        "ingest",
        json!({"event": {"kind": "order", "key": key, "time": "2026-01-10T10:00:00Z",
            "source": {"platform": "app", "program": "brand-a"}, "user": member(i),
            "order_id": key, "amount": "120.00",
            "lines": [{"sku": "s1", "category": "tea", "price": "60.00", "qty": 2}]}}),
    )
}

fn earn(i: u32, key: &str, points: i64) -> Command {
    cmd(
        "earn",
        json!({"user": member(i), "program": "brand-a", "points": points, "key": key,
               "time": "2026-01-02T00:00:00Z"}),
    )
}

fn spend(i: u32, key: &str, points: i64) -> Command {
    cmd(
        "spend",
        json!({"user": member(i), "program": "brand-a", "points": points, "key": key,
               "time": "2026-01-03T00:00:00Z"}),
    )
}

/// An engine with members, orders, points, a promotion, consent, a tag and an audience.
fn seeded() -> Engine {
    let mut e = Engine::default();
    let setup = [
        cmd("create_program", json!({"program": {"id": "brand-a"}})),
        cmd(
            "add_promotion",
            json!({"promotion": {"id": "p100", "action":
                {"type": "threshold_discount", "threshold": "100", "off": "10"}}}),
        ),
        cmd(
            "define_tag",
            json!({"name": "vip", "type": "bool", "now": "2026-01-01T00:00:00Z"}),
        ),
    ];
    for c in setup {
        e.execute(c).unwrap();
    }
    for i in 1..=4 {
        e.execute(register(i)).unwrap();
        e.execute(order(i, &format!("o{i}"))).unwrap();
        e.execute(earn(i, &format!("e{i}"), 100 * i64::from(i)))
            .unwrap();
    }
    let rest = [
        cmd(
            "set_tag",
            json!({"user": member(1), "tag": "vip", "value": true,
                   "now": "2026-01-05T00:00:00Z"}),
        ),
        cmd(
            "save_audience",
            json!({"name": "vips", "expression": "vip", "now": "2026-01-05T00:00:00Z"}),
        ),
        cmd(
            "set_consent",
            json!({"user": member(2), "channel": "sms", "purpose": "marketing",
                   "granted": true, "actor": "ops", "time": "2026-01-05T00:00:00Z"}),
        ),
        cmd(
            "ingest",
            json!({"event": {"kind": "identify", "key": "id1", "time": "2026-01-06T00:00:00Z",
                "source": {"platform": "jd", "program": "brand-a"},
                "ids": [member(3), {"kind": "phone", "value": "13800138000"}]}}),
        ),
    ];
    for c in rest {
        e.execute(c).unwrap();
    }
    e
}

/// One read command of every module (and more than one where a module has several kinds).
fn reads() -> Vec<Command> {
    let t = "2026-02-01T00:00:00Z";
    vec![
        cmd("resolve", json!({"user": member(1)})),
        cmd("stats", json!({})),
        cmd(
            "explain",
            json!({"a": member(3), "b": {"kind": "phone", "value": "13800138000"}}),
        ),
        cmd("conflicts", json!({})),
        cmd("canonical", json!({"oneid": 1})),
        cmd("identifiers", json!({"user": member(3)})),
        cmd("merge_history", json!({})),
        cmd("identity_audit", json!({})),
        cmd("identity_rules", json!({})),
        cmd("profile", json!({"user": member(1)})),
        cmd("profile", json!({"user": member(99)})),
        cmd("tags", json!({})),
        cmd("audience", json!({"expression": "vip", "now": t})),
        cmd("audience", json!({"expression": "nope", "now": t})),
        cmd("audiences", json!({})),
        cmd("audience_members", json!({"name": "vips"})),
        cmd(
            "export_audience",
            json!({"name": "vips", "kind": "member_no"}),
        ),
        cmd(
            "export_oneids",
            json!({"oneids": [1, 2], "kind": "member_no"}),
        ),
        cmd("balance", json!({"user": member(2), "program": "brand-a"})),
        cmd("balance", json!({"user": member(2), "program": "nope"})),
        cmd(
            "statement",
            json!({"user": member(2), "program": "brand-a"}),
        ),
        cmd("tier", json!({"user": member(2), "program": "brand-a"})),
        cmd("benefits", json!({"user": member(2), "program": "brand-a"})),
        cmd("lifecycle_report", json!({})),
        cmd("funnel", json!({"steps": ["register", "order"]})),
        cmd("rfm", json!({"as_of": t})),
        cmd(
            "quote",
            json!({"cart": {"time": t, "lines": [{"sku": "a", "category": "x",
                    "price": "60.00", "qty": 2}]}, "user": member(1)}),
        ),
        cmd("promotion_usage", json!({"id": "p100"})),
        cmd("coupon_counts", json!({})),
        cmd("channel_effectiveness", json!({})),
        cmd(
            "consent",
            json!({"user": member(2), "channel": "sms", "purpose": "marketing"}),
        ),
        cmd("audit_log", json!({})),
    ]
}

fn as_json(r: Result<crate::Output, Error>) -> String {
    match r {
        Ok(o) => serde_json::to_string(&o).unwrap(),
        Err(e) => format!("error {e:?}"),
    }
}

#[test]
fn reads_on_a_shared_reference_answer_as_execute_does() {
    let engine = seeded();
    let before = engine.snapshot();
    for c in reads() {
        assert!(!c.mutates(), "{} is a read", c.method());
        let by_execute = as_json(engine.clone().execute(c.clone()));
        assert_eq!(
            as_json(engine.query(c.clone())),
            by_execute,
            "{}",
            c.method()
        );
        // The shared engine routes it and answers the same, in both modes.
        for mode in [Concurrency::Replicas, Concurrency::Lock] {
            let shared = SharedEngine::with_concurrency(engine.clone(), mode);
            assert_eq!(
                as_json(shared.execute(c.clone())),
                by_execute,
                "{}",
                c.method()
            );
        }
    }
    assert!(engine.snapshot() == before, "reads changed the engine");
}

#[test]
fn query_refuses_writes_and_changes_nothing() {
    let engine = seeded();
    let before = engine.snapshot();
    for c in [
        register(9),
        earn(1, "x", 5),
        cmd("run_automation", json!({"now": "2026-02-01T00:00:00Z"})),
        cmd(
            "rfm",
            json!({"as_of": "2026-02-01T00:00:00Z", "tag": "rfm_segment"}),
        ),
    ] {
        assert_eq!(Route::of(&c), Route::Write);
        let err = engine.query(c).unwrap_err();
        assert_eq!(err.field(), Some("method"), "{err}");
    }
    assert!(engine.snapshot() == before);
}

#[test]
fn routes_send_scans_to_the_analysis_copy() {
    let route = |m: &str, a: Value| Route::of(&cmd(m, a));
    assert_eq!(
        route(
            "quote",
            json!({"cart": {"time": "2026-02-01T00:00:00Z", "lines": []}})
        ),
        Route::Online
    );
    assert_eq!(
        route("balance", json!({"user": member(1), "program": "p"})),
        Route::Online
    );
    assert_eq!(
        route("audience", json!({"expression": "vip"})),
        Route::Online
    );
    assert_eq!(route("lifecycle_report", json!({})), Route::Analysis);
    assert_eq!(
        route("export_audience", json!({"name": "vips"})),
        Route::Analysis
    );
    assert_eq!(route("audit_log", json!({})), Route::Analysis);
}

#[test]
fn shared_engines_cross_threads() {
    fn both<T: Send + Sync>() {}
    both::<SharedEngine>();
}

/// Writes go on, and are not seen, while a long job holds the analysis copy; the next long
/// job sees them all.
#[test]
fn a_long_job_keeps_its_state_and_holds_up_no_writer() {
    let shared = Arc::new(SharedEngine::new(seeded()));
    let job = shared.analysis().unwrap();
    let at = job.version();
    let writer = {
        let shared = shared.clone();
        std::thread::spawn(move || {
            for i in 10..60 {
                shared.execute(register(i)).unwrap();
            }
            shared.read().version()
        })
    };
    // If writers waited for the job this join would never return (the job is still held).
    let written = writer.join().unwrap();
    assert_eq!(written, at + 50);
    assert_eq!(job.version(), at);
    assert_eq!(job.stats().persons, seeded().stats().persons);
    drop(job);
    let next = shared.analysis().unwrap();
    assert_eq!(next.version(), written);
    assert!(next.snapshot() == shared.read().snapshot());
}

/// A copy far behind is left to the background thread: the caller (a writer taking a
/// snapshot) must not apply thousands of commands, nor wait while that thread does.
#[test]
fn a_copy_far_behind_is_not_caught_up_on_the_callers_thread() {
    let shared = Arc::new(SharedEngine::new(seeded()));
    let super::Inner::Replicas(r) = &shared.inner else {
        panic!("replicas expected");
    };
    let writes = super::CATCH_UP_INLINE as u32 + 20;
    let waited = {
        // Holding the copy's slot keeps the background thread from applying anything.
        let _slot = super::lock(&r.analysis.replica);
        for i in 100..100 + writes {
            shared.execute(register(i)).unwrap();
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let caller = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let _ = tx.send(shared.analysis_if_free().map(|v| v.is_some()));
            })
        };
        let answer = rx.recv_timeout(std::time::Duration::from_secs(5));
        drop(_slot);
        caller.join().unwrap();
        answer
    };
    assert_eq!(
        waited.expect("analysis_if_free waited for the copy's catch-up"),
        Ok(false)
    );
    // Once the background thread caught up, the copy is offered again, at the published version.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let view = loop {
        if let Some(v) = shared.analysis_if_free().unwrap() {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    assert_eq!(view.version(), shared.read().version());
}

#[test]
fn an_unpublished_write_stops_writes_and_reads_go_on() {
    for mode in [Concurrency::Replicas, Concurrency::Lock] {
        let shared = SharedEngine::with_concurrency(seeded(), mode);
        let before = shared.read().snapshot();
        {
            let mut w = shared.write().unwrap();
            w.apply(register(50)).unwrap();
            // Dropped without publishing: a journal that could not be written, say.
        }
        if mode == Concurrency::Replicas {
            assert!(
                shared.read().snapshot() == before,
                "readers saw an unpublished write"
            );
            assert!(shared.write().is_err());
            assert!(shared.execute(register(51)).is_err());
        }
        assert!(shared.execute(cmd("stats", json!({}))).is_ok());
    }
}

#[test]
fn a_refused_write_changes_nothing_and_writes_go_on() {
    let shared = SharedEngine::new(seeded());
    let before = shared.read().snapshot();
    let v = shared.read().version();
    assert!(shared.execute(spend(1, "too-much", 1_000_000)).is_err());
    assert_eq!(shared.read().version(), v);
    assert!(shared.read().snapshot() == before);
    shared.execute(earn(1, "more", 1)).unwrap();
    shared.execute(earn(1, "more2", 1)).unwrap();
    assert_eq!(shared.read().version(), v + 2);
    assert!(shared.analysis().unwrap().snapshot() == shared.read().snapshot());
}

/// A write step of the interleaving test.
#[derive(Debug, Clone)]
enum Step {
    Register(u32),
    Earn(u32, i64),
    Spend(u32, i64),
    Order(u32),
}

fn step_command(s: &Step, writer: usize, n: usize) -> Command {
    let key = format!("w{writer}-{n}");
    match *s {
        Step::Register(i) => register(i),
        Step::Earn(i, p) => earn(i, &key, p),
        Step::Spend(i, p) => spend(i, &key, p),
        Step::Order(i) => order(i, &key),
    }
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u32..8).prop_map(Step::Register),
        (1u32..8, 1i64..300).prop_map(|(i, p)| Step::Earn(i, p)),
        (1u32..8, 1i64..300).prop_map(|(i, p)| Step::Spend(i, p)),
        (1u32..8).prop_map(Step::Order),
    ]
}

/// What a reader saw: the version and a fingerprint of the whole state, and one balance.
type Seen = (u64, u64, String);

fn observe(e: &Engine, version: u64) -> Seen {
    let balance = as_json(e.query(cmd(
        "balance",
        json!({"user": member(1), "program": "brand-a"}),
    )));
    (version, crate::util::fingerprint(&e.snapshot()), balance)
}

fn interleave(
    mode: Concurrency,
    writers: Vec<Vec<Step>>,
    readers: usize,
) -> Result<(), TestCaseError> {
    let start = seeded();
    let shared = Arc::new(SharedEngine::with_concurrency(start.clone(), mode));
    // (version after the write, command), in whatever order the threads ran.
    let log: Arc<Mutex<Vec<(u64, Command)>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut seen_all: Vec<Seen> = Vec::new();
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (w, steps) in writers.iter().enumerate() {
            let (shared, log) = (shared.clone(), log.clone());
            handles.push(scope.spawn(move || {
                for (n, s) in steps.iter().enumerate() {
                    let c = shared.read().prepare(step_command(s, w, n)).unwrap();
                    let mut writer = shared.write().unwrap();
                    match writer.apply(c.clone()) {
                        // A replayed key (a register of a seeded member) changes nothing.
                        Ok(crate::Output::Receipt(r)) if r.duplicate => {}
                        Ok(_) => {
                            let v = writer.publish();
                            log.lock().unwrap().push((v, c));
                        }
                        Err(_) => {}
                    }
                }
            }));
        }
        let readers: Vec<_> = (0..readers)
            .map(|r| {
                let (shared, done) = (shared.clone(), done.clone());
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    loop {
                        let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                        let view = if r % 2 == 1 {
                            shared.analysis().unwrap()
                        } else {
                            shared.read()
                        };
                        seen.push(observe(&view, view.version()));
                        drop(view);
                        if finished {
                            return seen;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in readers {
            seen_all.extend(r.join().unwrap());
        }
    });
    // The sequential replay, in the writers' order: the state after every prefix.
    let mut log = Arc::try_unwrap(log).unwrap().into_inner().unwrap();
    log.sort_by_key(|(v, _)| *v);
    let mut replay = start;
    let mut states: BTreeMap<u64, Seen> = BTreeMap::new();
    states.insert(0, observe(&replay, 0));
    for (i, (v, c)) in log.iter().enumerate() {
        prop_assert_eq!(*v, i as u64 + 1, "versions are 1..=n in write order");
        replay.execute_prepared(c.clone()).unwrap();
        states.insert(*v, observe(&replay, *v));
    }
    for s in &seen_all {
        prop_assert_eq!(
            Some(s),
            states.get(&s.0),
            "a reader saw a state that never existed"
        );
    }
    let last = states.keys().last().copied().unwrap_or(0);
    prop_assert_eq!(
        &observe(&shared.read(), shared.read().version()),
        &states[&last]
    );
    let analysis = shared.analysis().unwrap();
    prop_assert_eq!(&observe(&analysis, analysis.version()), &states[&last]);
    prop_assert!(shared.read().snapshot() == replay.snapshot());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn readers_see_prefixes_and_the_end_is_the_sequential_replay(
        writers in prop::collection::vec(prop::collection::vec(step(), 1..25), 1..3),
        lock in any::<bool>(),
    ) {
        let mode = if lock { Concurrency::Lock } else { Concurrency::Replicas };
        interleave(mode, writers, 3)?;
    }
}

#[test]
fn a_write_from_a_thread_holding_a_view_is_refused_not_hung() {
    for mode in [Concurrency::Replicas, Concurrency::Lock] {
        let shared = SharedEngine::with_concurrency(seeded(), mode);
        let view = shared.read();
        let err = shared.execute(register(70)).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::InvalidArgument, "{err}");
        assert_eq!(view.stats().persons, 4);
        drop(view);
        shared.execute(register(70)).unwrap();
        shared.execute(register(71)).unwrap();
        // A replayed key is no write: no version, nothing for the other copies.
        let v = shared.read().version();
        shared.execute(register(71)).unwrap();
        assert_eq!(shared.read().version(), v);
        assert!(shared.analysis().unwrap().snapshot() == shared.read().snapshot());
    }
}

/// Members registered on 2026-01-01 and a rule that welcomes them with points and a tag.
fn welcome_engine(members: u32) -> Engine {
    let mut e = Engine::default();
    e.execute(cmd("create_program", json!({"program": {"id": "brand-a"}})))
        .unwrap();
    for i in 1..=members {
        e.execute(register(i)).unwrap();
    }
    e.execute(cmd(
        "add_rule",
        json!({"rule": {"id": "welcome", "trigger": {"type": "register", "grace_days": 60},
            "actions": [{"type": "grant_points", "points": 10, "program": "brand-a"},
                        {"type": "add_tag", "tag": "welcomed"}]}}),
    ))
    .unwrap();
    e
}

fn balance_of(shared: &SharedEngine, i: u32) -> i64 {
    let out = shared
        .execute(cmd(
            "balance",
            json!({"user": member(i), "program": "brand-a"}),
        ))
        .unwrap();
    serde_json::to_value(out).unwrap().as_i64().unwrap()
}

const WELCOME_AT: &str = "2026-01-05T00:00:00Z";

/// While an automation run is being planned and committed chunk by chunk, another thread's
/// reads (balance, quote, profile) and writes (ingest) go through between two chunks; readers
/// see the chunks committed so far; the final state is the sequential replay of the writes in
/// the order they took the write lock (the journal's).
#[test]
fn an_automation_run_is_planned_off_the_writer_and_replays() {
    for mode in [Concurrency::Replicas, Concurrency::Lock] {
        let start = welcome_engine(2_500);
        let shared = Arc::new(SharedEngine::with_concurrency(start.clone(), mode));
        let journal = Arc::new(Mutex::new(Vec::<Command>::new()));
        // A write as a store does it: applied and journaled under the write lock.
        let commit = |shared: &SharedEngine, journal: &Mutex<Vec<Command>>, c: Command| {
            let mut w = shared.write()?;
            let out = w.apply(c.clone())?;
            journal.lock().unwrap().push(c);
            w.publish();
            Ok::<_, Error>(out)
        };
        let (ask, asked) = std::sync::mpsc::channel::<u32>();
        let (tell, told) = std::sync::mpsc::channel::<(i64, i64, String)>();
        let side = {
            let (shared, journal) = (shared.clone(), journal.clone());
            std::thread::spawn(move || {
                for i in asked {
                    commit(&shared, &journal, register(10_000 + i)).unwrap();
                    let profile = shared
                        .execute(cmd("profile", json!({"user": member(10_000 + i)})))
                        .unwrap();
                    shared
                        .execute(cmd(
                            "quote",
                            json!({"cart": {"time": WELCOME_AT, "lines": []}}),
                        ))
                        .unwrap();
                    let seen = (balance_of(&shared, 1), balance_of(&shared, 2_500));
                    tell.send((seen.0, seen.1, serde_json::to_string(&profile).unwrap()))
                        .unwrap();
                }
            })
        };
        let now = WELCOME_AT.parse().unwrap();
        let mut chunks = 0u32;
        let mut seen = Vec::new();
        shared
            .plan_automation(now, 1_000, |c| {
                // The run is in progress (planned up to this chunk, chunks before it
                // committed): another thread writes and reads now, and must get through.
                ask.send(chunks).unwrap();
                let got = told
                    .recv_timeout(std::time::Duration::from_secs(120))
                    .expect("a write or read on another thread waited for the automation run");
                seen.push(got);
                commit(&shared, &journal, c)?;
                chunks += 1;
                Ok::<_, Error>(())
            })
            .unwrap();
        drop(ask);
        side.join().unwrap();
        assert_eq!(chunks, 3, "{mode:?}: 2,500 users in chunks of 1,000");
        // Between chunks the other thread saw the run applied to the first users only.
        assert_eq!((seen[0].0, seen[0].1), (0, 0), "{mode:?}");
        assert_eq!((seen[1].0, seen[1].1), (10, 0), "{mode:?}");
        assert_eq!((seen[2].0, seen[2].1), (10, 0), "{mode:?}");
        assert_eq!(
            (balance_of(&shared, 1), balance_of(&shared, 2_500)),
            (10, 10)
        );
        // The journal interleaves the other thread's writes with the run's chunks.
        let methods: Vec<String> = journal.lock().unwrap().iter().map(|c| c.method()).collect();
        assert_eq!(
            methods,
            [
                "ingest",
                "apply_automation_plan",
                "ingest",
                "apply_automation_plan",
                "ingest",
                "apply_automation_plan"
            ],
            "{mode:?}"
        );
        // Members registered while the run was planned are left for the next run.
        assert_eq!(balance_of(&shared, 10_000), 0, "{mode:?}");
        let mut replay = start.clone();
        for c in journal.lock().unwrap().iter() {
            replay.execute(c.clone()).unwrap();
        }
        assert!(replay.snapshot() == shared.read().snapshot(), "{mode:?}");
        assert!(
            replay.snapshot() == shared.analysis().unwrap().snapshot(),
            "{mode:?}"
        );
    }
}

/// A run through `execute` is the chunked one, with the same rows as a run on a lone engine
/// (in chunk order); a planned chunk committed after another run fired the same users
/// changes nothing (each firing is checked again at commit).
#[test]
fn planned_firings_are_checked_again_at_commit() {
    let start = welcome_engine(2_500);
    let now = WELCOME_AT.parse().unwrap();
    let mut alone = start.clone();
    let mut chunked_rows = Vec::new();
    alone.run_automation_chunked(now, super::AUTOMATION_CHUNK_USERS, |c| {
        chunked_rows.extend(c)
    });
    let shared = SharedEngine::new(start.clone());
    let out = shared
        .execute(cmd("run_automation", json!({"now": WELCOME_AT})))
        .unwrap();
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        serde_json::to_value(&chunked_rows).unwrap()
    );
    assert_eq!(chunked_rows.len(), 5_000);
    assert!(alone.snapshot() == shared.read().snapshot());

    // Plan on the start state, let a whole run commit first, then commit the plan.
    let shared = SharedEngine::new(start);
    let planned: Vec<Command> = shared.read().plan_automation(now, 1_000).collect();
    assert_eq!(planned.len(), 3);
    shared
        .execute(cmd("run_automation", json!({"now": WELCOME_AT})))
        .unwrap();
    let before = shared.read().snapshot();
    for c in planned {
        let out = shared.execute(c).unwrap();
        assert_eq!(serde_json::to_value(&out).unwrap(), json!([]));
    }
    assert!(shared.read().snapshot() == before, "a firing went twice");
    assert_eq!(balance_of(&shared, 1), 10);
}

/// A writer that publishes part way and goes on (as a store's batch does) keeps every copy in
/// step: its own state, the published one and the analysis copy hold every write, a reader
/// holding the old copy meanwhile included.
#[test]
fn a_writer_that_publishes_part_way_keeps_the_copies_in_step() {
    let shared = Arc::new(SharedEngine::new(Engine::default()));
    let mut alone = Engine::default();
    {
        let mut w = shared.write().unwrap();
        for i in 1..=30 {
            w.apply(register(i)).unwrap();
            alone.execute(register(i)).unwrap();
            if i % 10 == 0 {
                w.publish();
                assert_eq!(w.engine().stats().events, u64::from(i + i / 10 - 1));
                // A reader on another thread holds the published copy for a moment.
                let reader = {
                    let shared = shared.clone();
                    std::thread::spawn(move || {
                        let view = shared.read();
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        view.stats().events
                    })
                };
                std::thread::sleep(std::time::Duration::from_millis(5));
                w.apply(register(1_000 + i)).unwrap();
                alone.execute(register(1_000 + i)).unwrap();
                assert_eq!(reader.join().unwrap(), u64::from(i + i / 10 - 1));
            }
        }
        w.publish();
    }
    assert!(shared.read().snapshot() == alone.snapshot());
    assert!(shared.analysis().unwrap().snapshot() == alone.snapshot());
    // The next write's copy too.
    shared.execute(register(5_000)).unwrap();
    alone.execute(register(5_000)).unwrap();
    assert!(shared.read().snapshot() == alone.snapshot());
}
