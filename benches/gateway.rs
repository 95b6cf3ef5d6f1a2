//! The gateway's decision path without HTTP: for the example policy, ns per
//! `Gateway::route` (parse the attributes, decide, balance, take a lease, build the
//! decision), with and without its JSON encoding, against the bare table decision on
//! the same requests — so the server's own cost per request is known apart from the
//! HTTP stack's.
//!
//! Run with `cargo bench --bench gateway`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use rulec::bundle::Bundle;
use rulec::runtime::gateway::{Gateway, Limits, Shared};
use serde_json::{json, Value};

fn gateway() -> Gateway {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/examples/gateway");
    let bundle = rulec::server::source::load(&root).expect("the example compiles");
    Gateway::new(bundle, None, Shared::new(Limits::default()))
}

fn requests() -> Vec<Value> {
    vec![
        json!({"task_type": "content_creation", "estimated_tokens": 2000}),
        json!({"task_type": "summarization", "task_complexity": "simple", "session_id": "s-1"}),
        json!({"task_type": "code_generation", "task_complexity": "complex"}),
        json!({"task_type": "classification"}),
    ]
}

fn bench(c: &mut Criterion) {
    let g = gateway();
    let bodies: Vec<Vec<u8>> = requests()
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap_or_default())
        .collect();
    let values: Vec<Value> = requests();
    let bundle: Arc<Bundle> = Arc::clone(&g.bundle);
    let parsed: Vec<_> = values
        .iter()
        .filter_map(|v| bundle.content.schema.parse(v).ok())
        .collect();
    let mut group = c.benchmark_group("gateway");
    group.bench_function("table_decide", |b| {
        b.iter(|| {
            for r in &parsed {
                black_box(bundle.content.table.decide(black_box(&r.values)));
            }
        })
    });
    group.bench_function("parse_json", |b| {
        b.iter(|| {
            for body in &bodies {
                black_box(serde_json::from_slice::<Value>(black_box(body)).ok());
            }
        })
    });
    let mut now = 0u64;
    group.bench_function("route", |b| {
        b.iter(|| {
            now += 1;
            for v in &values {
                black_box(g.route(black_box(v), now, now).ok());
            }
        })
    });
    group.bench_function("route_and_encode", |b| {
        b.iter(|| {
            now += 1;
            for body in &bodies {
                let v: Value = serde_json::from_slice(body).unwrap_or_default();
                let d = g.route(&v, now, now).ok();
                black_box(serde_json::to_vec(&d).ok());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
