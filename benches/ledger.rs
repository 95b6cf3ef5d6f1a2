//! The spend ledger's throughput: how many settled costs per second the writer
//! commits (each batch one fsynced redb transaction, with the day, model, provider
//! and session totals), and what `settled` costs the request path while the writer
//! keeps up.
//!
//! Run with `cargo bench --bench ledger`; criterion's `thrpt` line is entries per
//! second. The ledger file lives under the target directory and grows with the run.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rulec::ledger::Ledger;
use rulec::runtime::spend::{Settled, SpendLog, SpendSource};

const MODELS: [(&str, &str); 4] = [
    ("claude_opus", "anthropic"),
    ("claude_sonnet", "anthropic"),
    ("gpt_55", "openai"),
    ("local_llama", "local"),
];

fn dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench_ledger");
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Settles `n` costs over 4 models and 10,000 sessions, starting at `from`.
fn settle(log: &dyn SpendLog, sessions: &[String], from: u64, n: u64) {
    for i in from..from + n {
        let (model, provider) = MODELS[(i % 4) as usize];
        log.settled(&Settled {
            day: 20_000,
            wall_ms: 20_000 * 86_400_000 + i,
            dollars: 0.001,
            session: Some(&sessions[(i % sessions.len() as u64) as usize]),
            model,
            provider,
            decision: None,
            source: SpendSource::Report,
        });
    }
}

fn bench(c: &mut Criterion) {
    let dir = dir();
    let ledger = match Ledger::open(&dir) {
        Ok(l) => l,
        Err(e) => panic!("cannot open the bench's ledger: {e}"),
    };
    let sessions: Vec<String> = (0..10_000).map(|i| format!("s-{i}")).collect();
    let mut next = 0u64;
    let mut group = c.benchmark_group("ledger");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    // queue `iters` costs and wait until all are committed: the writer's sustained rate
    group.bench_function("settle_and_commit", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            settle(&*ledger, &sessions, next, iters);
            black_box(ledger.flush().is_ok());
            next += iters;
            start.elapsed()
        })
    });
    // the request path's share: queueing only (the commits happen on the writer thread)
    group.bench_function("settle_only", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            settle(&*ledger, &sessions, next, iters);
            let took = start.elapsed();
            black_box(ledger.flush().is_ok());
            next += iters;
            took
        })
    });
    group.finish();
    let stats = ledger.stats();
    println!(
        "ledger: {} entries in {} commits ({} per commit), {} waited for room, {} refused",
        stats.committed,
        stats.commits,
        stats.committed / stats.commits.max(1),
        stats.waited,
        stats.refused
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
