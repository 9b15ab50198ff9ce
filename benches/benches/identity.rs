//! OneID: batch resolution of identifier rows, and linking one record into a populated graph.
#![expect(
    missing_docs,
    reason = "criterion_group! defines an undocumented `pub fn`"
)]
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use userops::identity::{BatchColumns, IdentityGraph, Record};
use userops::{IdKind, Identifier};

/// `n` rows: records of a phone and a device, every third person also an email record that
/// shares the device, and a few shared tablets.
fn rows(n: usize) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut rid, mut kind, mut value) = (Vec::new(), Vec::new(), Vec::new());
    let mut p = 0usize;
    while rid.len() < n {
        let dev = if p.is_multiple_of(97) {
            format!("tablet{}", p % 7)
        } else {
            format!("d{p}")
        };
        for (k, v) in [("phone", format!("13{:09}", p)), ("device_id", dev.clone())] {
            rid.push(format!("a{p}"));
            kind.push(k.to_owned());
            value.push(v);
        }
        if p.is_multiple_of(3) {
            for (k, v) in [("email", format!("u{p}@ex.com")), ("device_id", dev)] {
                rid.push(format!("b{p}"));
                kind.push(k.to_owned());
                value.push(v);
            }
        }
        p += 1;
    }
    (rid, kind, value)
}

fn identity(c: &mut Criterion) {
    let (rid, kind, value) = rows(100_000);
    let source = vec!["app".to_owned(); rid.len()];
    let ts = vec![0i64; rid.len()];
    let mut g = c.benchmark_group("identity");
    g.sample_size(10);
    g.throughput(Throughput::Elements(rid.len() as u64));
    g.bench_function("resolve_batch_100k_rows", |b| {
        b.iter(|| {
            let mut graph = IdentityGraph::default();
            graph
                .resolve_batch(&BatchColumns {
                    record_id: &rid,
                    kind: &kind,
                    value: &value,
                    source: &source,
                    ts: &ts,
                })
                .expect("bench batch")
                .oneids
                .len()
        })
    });
    let mut graph = IdentityGraph::default();
    graph
        .resolve_batch(&BatchColumns {
            record_id: &rid,
            kind: &kind,
            value: &value,
            source: &source,
            ts: &ts,
        })
        .expect("bench batch");
    let mut i = 0u64;
    g.throughput(Throughput::Elements(1));
    g.sample_size(50);
    g.bench_function("link_one_record_into_100k_rows", |b| {
        b.iter_batched(
            || {
                i += 1;
                Record {
                    id: format!("x{i}"),
                    source: "app".into(),
                    ts: 0,
                    ids: vec![
                        Identifier::new(IdKind::Email, &format!("late{i}@ex.com")).expect("email"),
                        Identifier::new(IdKind::Phone, &format!("13{:09}", i % 30_000))
                            .expect("phone"),
                    ],
                }
            },
            |r| graph.link(&r),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, identity);
criterion_main!(benches);
