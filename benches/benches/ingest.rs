//! Ingest throughput: identify and activity events through `Engine::ingest`.
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use userops::{Engine, Event};

fn events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let json = if i % 2 == 0 {
                format!(
                    r#"{{"kind": "identify", "key": "i{i}", "time": "2026-01-05T10:00:00+08:00",
                    "source": {{"platform": "jd", "program": "b"}},
                    "ids": [{{"kind": "member_no", "value": "M{}"}}, {{"kind": "device_id", "value": "d{}"}}]}}"#,
                    i / 2,
                    i / 3
                )
            } else {
                format!(
                    r#"{{"kind": "activity", "key": "a{i}", "time": "2026-01-05T10:00:00+08:00",
                    "source": {{"platform": "app", "program": "b"}},
                    "user": {{"kind": "member_no", "value": "M{}"}}, "type": "login"}}"#,
                    i / 2
                )
            };
            Event::from_json(&json).expect("bench event parses")
        })
        .collect()
}

fn ingest(c: &mut Criterion) {
    let batch = events(10_000);
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.bench_function("10k_events", |b| {
        b.iter_batched(
            || (Engine::default(), batch.clone()),
            |(mut engine, evs)| {
                for e in evs {
                    engine.ingest(e).expect("bench ingest");
                }
                engine
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
