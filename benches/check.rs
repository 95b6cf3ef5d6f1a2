//! Front-end throughput: `check_text` on generated clean policies of 100, 1,000 and
//! 10,000 routing rules. Criterion reports time per policy and, through
//! `Throughput::Elements`, time per rule; per-rule time should stay flat as N grows.
//!
//! Run with `cargo bench --bench check`. Set `RULEC_BENCH_DUMP=DIR` to also write the
//! generated policies to `DIR/generated-N.yaml` (to inspect them or run `rulec` on them).

mod policy_gen;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rulec::driver::check_text;

const SIZES: &[usize] = &[100, 1_000, 10_000];
const SEED: u64 = 0x5EED_2024;

/// Fails loudly when the generator produced anything the checker objects to: the
/// benchmark is only meaningful on the clean path.
fn assert_clean(n: usize, text: &str) {
    let checked = check_text("generated.yaml", text.as_bytes());
    let rules = checked.policy.routing.as_ref().map_or(0, |r| r.rules.len());
    // the analyses may warn about random rules (shadowed, capability gaps): only errors
    // leave the clean path
    if checked.diagnostics.iter().any(|d| d.is_error()) {
        let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        let mut report = format!(
            "the generated policy with {n} rules is not clean: {errors} error(s), {} warning(s)\n",
            checked.diagnostics.len() - errors
        );
        for d in checked.diagnostics.iter().take(10) {
            let span = d.primary.span;
            let (line, col) = checked.sources.get(span.file).line_col(span.start as usize);
            let source_line = checked.sources.get(span.file).line_text(line);
            report.push_str(&format!(
                "  {} {} at {line}:{col}: {}\n    | {source_line}\n",
                d.severity.as_str(),
                d.code.as_str(),
                d.message
            ));
            if let Some(help) = &d.help {
                report.push_str(&format!("    = help: {help}\n"));
            }
        }
        panic!("{report}");
    }
    // every generated rule plus the fallback must have been decoded
    assert_eq!(
        rules,
        n + 1,
        "decoded {rules} routing rules, expected {}",
        n + 1
    );
}

fn bench_check(c: &mut Criterion) {
    let mut group = c.benchmark_group("check");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for &n in SIZES {
        let text = policy_gen::policy(n, SEED);
        if let Some(dir) = std::env::var_os("RULEC_BENCH_DUMP") {
            let path = std::path::Path::new(&dir).join(format!("generated-{n}.yaml"));
            std::fs::write(&path, &text)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        }
        assert_clean(n, &text);
        let bytes = text.into_bytes();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &bytes, |b, bytes| {
            b.iter(|| check_text(black_box("generated.yaml"), black_box(bytes)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_check);
criterion_main!(benches);
