//! Ingest throughput: identify and activity events through `Engine::ingest`.
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented `pub fn`"
)]
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use userops::Engine;
use userops_benches::events;

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
