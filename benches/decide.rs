//! Decisions and compilation: ns per decision of the compiled table against the plain
//! first-match interpreter on the same requests, for the example policy and generated
//! policies of 10 to 10,000 rules; compile time per size; bundle sizes are printed.
//!
//! Run with `cargo bench --bench decide`.

mod policy_gen;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rulec::bundle::Bundle;
use rulec::check::Schema;
use rulec::compile::value::Scalar;
use rulec::compile::Routing;
use rulec::driver::{self, Checked};

const SIZES: &[usize] = &[10, 100, 1_000, 10_000];
const SEED: u64 = 0x5EED_2024;
const REQUESTS: usize = 1_000;

fn example() -> Checked {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/examples/gateway");
    let files = rulec::load::policy_paths(&[root]).expect("example policy");
    let (sources, diags) = rulec::load::read_files(&files).expect("readable");
    driver::check_sources(sources, diags, driver::Options::default())
}

/// A policy of `n` specific rules, one per (tenant, task family) as large deployments
/// write them: rules rarely shadow each other, so a first-match interpreter scans about
/// half the list for a typical request.
fn tenant_policy(n: usize) -> String {
    let tenants = n.div_ceil(4).max(1);
    let mut t = String::from(
        "providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9/v1', api_key_env: P_KEY}\n\
         request:\n  tenant:\n    type: enum\n    values: [",
    );
    t.push_str(
        &(0..tenants)
            .map(|i| format!("t{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    t.push_str("]\n  region: {type: enum, values: [eu, us, ap]}\ngateway:\n  models:\n");
    for m in 0..4 {
        t.push_str(&format!(
            "    m{m}: {{provider: p, model: x{m}, max_tokens: 100000, cost_per_token: 0.00000{}, capabilities: [simple_qa, classification, extraction, summarization, content_writing, code_generation, analysis]}}\n",
            m + 1
        ));
    }
    t.push_str("  routing_strategy:\n    rules:\n");
    let families = [
        "task_type in [\"code_generation\", \"critical_analysis\"]",
        "task_type in [\"summarization\", \"content_creation\"]",
        "estimated_tokens > 50000",
        "region == \"eu\"",
    ];
    for i in 0..n {
        t.push_str(&format!(
            "      - if: 'tenant == \"t{}\" && {}'\n        model: m{}\n",
            i / 4,
            families[i % 4],
            i % 4
        ));
    }
    t.push_str("      - fallback: m0\n");
    t
}

fn policies() -> Vec<(String, Checked)> {
    let mut out = vec![("example".to_string(), example())];
    for &n in SIZES {
        let text = tenant_policy(n);
        out.push((
            format!("tenants/{n}"),
            driver::check_text("tenants.yaml", text.as_bytes()),
        ));
        let text = policy_gen::policy(n, SEED);
        out.push((
            format!("random/{n}"),
            driver::check_text("generated.yaml", text.as_bytes()),
        ));
    }
    out
}

fn routing(name: &str, checked: &Checked) -> Routing {
    match &checked.routing {
        Some(r) => r.clone(),
        None => panic!(
            "policy {name} did not compile: {:?}",
            checked
                .diagnostics
                .iter()
                .find(|d| d.is_error())
                .map(|d| &d.message)
        ),
    }
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(REQUESTS as u64));
    for (name, checked) in policies() {
        let routing = routing(&name, &checked);
        let requests = rulec::tools::bench::requests(&routing, REQUESTS, 7);
        let interpreter = rulec::tools::bench::Interpreter::new(&routing);
        let interpret = |values: &[Option<Scalar>]| interpreter.decide(values);
        let bundle = Bundle::new(&checked.policy, &routing).to_bytes();
        eprintln!(
            "policy {name}: {} rules, {} layout, bundle {} bytes",
            routing.table.rules.len(),
            routing.table.layout_name(),
            bundle.len()
        );
        group.bench_with_input(BenchmarkId::new("table", &name), &requests, |b, reqs| {
            b.iter(|| {
                reqs.iter()
                    .filter_map(|v| routing.table.decide(black_box(v)))
                    .count()
            })
        });
        group.bench_with_input(
            BenchmarkId::new("interpreter", &name),
            &requests,
            |b, reqs| b.iter(|| reqs.iter().filter_map(|v| interpret(black_box(v))).count()),
        );
    }
    group.finish();
}

fn bench_compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    for (kind, &n) in SIZES.iter().flat_map(|n| [("tenants", n), ("random", n)]) {
        let text = if kind == "tenants" {
            tenant_policy(n)
        } else {
            policy_gen::policy(n, SEED)
        };
        let checked = driver::check_text("generated.yaml", text.as_bytes());
        let schema = Schema::for_policy(&checked.policy);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new(kind, n), &checked, |b, checked| {
            b.iter(|| {
                let routing = rulec::compile::routing(&checked.policy, &schema, &checked.sources)
                    .expect("compiles");
                Bundle::new(&checked.policy, &routing).to_bytes().len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_decide, bench_compile);
criterion_main!(benches);
