//! The policy authors' tools: `explain`, `test`, `diff`, `bench`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::ValueEnum;
use rulec::bundle::Bundle;
use rulec::diag::render;
use rulec::source::SourceMap;
use rulec::tools::{bench, diff, explain, testing};

use super::{emit, fail, load_quietly};
use rulec::driver::CompileOptions;

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// Policy files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The request's attributes as a JSON object.
    #[arg(long, value_name = "JSON")]
    request: String,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
}

pub fn explain(args: ExplainArgs) -> ExitCode {
    let loaded = match load_quietly(&args.paths, CompileOptions::default()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let json: serde_json::Value = match serde_json::from_str(&args.request) {
        Ok(v) => v,
        Err(e) => return fail(format!("`--request` is not JSON: {e}")),
    };
    let e = match explain::explain(&loaded.routing, &json) {
        Ok(e) => e,
        Err(e) => return fail(format!("the request is refused: {e}")),
    };
    match args.format {
        Format::Human => emit(&explain::render(
            &loaded.routing,
            &loaded.checked.policy,
            &loaded.checked.sources,
            &e,
        )),
        Format::Json => emit(&format!(
            "{}\n",
            serde_json::to_string_pretty(&explain::to_json(&loaded.routing, &e))
                .unwrap_or_default()
        )),
    }
    ExitCode::SUCCESS
}

/// The test-file format, shown by `rulec test --help`.
const TEST_FORMAT: &str = "\
Test files are YAML files named `*.test.yaml` (or `*.test.yml`), next to the policy:

  tests:
    - name: long code goes to opus          # optional; defaults to `test #N`
      request:                              # the request's attributes, as the gateway gets them
        task_type: code_generation
        estimated_tokens: 20000
      expect:                               # every key given must hold
        model: claude_opus                  # or `pool: NAME`
        rule: long_code                     # optional: the rule's `name`, or `#N`
        priority: high                      # optional
    - request: { task_type: simple_qa }
      expect: { none: true }                # no rule matches

A model, pool or rule the policy does not have is an error (E020), not a failing test.
Exit codes: 0 all passed, 1 a test failed or a file has errors, 2 usage or I/O error.";

#[derive(clap::Args)]
#[command(after_help = TEST_FORMAT)]
pub struct TestArgs {
    /// A policy folder (its `*.test.yaml` files are the tests), or policy and test files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub fn test(args: TestArgs) -> ExitCode {
    let mut test_files = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            let Ok(entries) = std::fs::read_dir(p) else {
                return fail(format!("cannot read `{}`", p.display()));
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| rulec::load::is_test_file(f))
                .collect();
            found.sort();
            test_files.extend(found);
        } else if rulec::load::is_test_file(p) {
            test_files.push(p.clone());
        }
    }
    let policy_paths: Vec<PathBuf> = args
        .paths
        .iter()
        .filter(|p| !rulec::load::is_test_file(p))
        .cloned()
        .collect();
    if test_files.is_empty() {
        return fail("no test files (`*.test.yaml`) were given or found");
    }
    if policy_paths.is_empty() {
        return fail("no policy was given: name the policy folder or files too");
    }
    let loaded = match load_quietly(&policy_paths, CompileOptions::default()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut sources = SourceMap::new();
    let mut cases = Vec::new();
    let mut diags = Vec::new();
    for f in &test_files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => return fail(format!("cannot read `{}`: {e}", f.display())),
        };
        let (id, d) = rulec::load::add_bytes(&mut sources, f.display().to_string(), bytes);
        diags.extend(d);
        if diags.is_empty() {
            let (c, d) = testing::read_cases(&sources, id);
            cases.extend(c);
            diags.extend(d);
        }
    }
    diags.extend(testing::check_names(
        &loaded.checked.policy,
        &loaded.routing,
        &cases,
    ));
    if !diags.is_empty() {
        emit(&render::human(&sources, &diags, false));
        return ExitCode::from(1);
    }
    let outcomes = testing::run(&loaded.routing, cases);
    emit(&testing::report(&loaded.routing, &sources, &outcomes));
    if outcomes.iter().any(|o| o.failure.is_some()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

#[derive(clap::Args)]
pub struct DiffArgs {
    /// The old policy (a file or folder).
    old: PathBuf,
    /// The new policy (a file or folder).
    new: PathBuf,
}

pub fn diff(args: DiffArgs) -> ExitCode {
    // exit 1 means "decisions changed": a policy that does not compile is exit 2
    let old = match load_quietly(std::slice::from_ref(&args.old), CompileOptions::default()) {
        Ok(l) => l,
        Err(_) => {
            return fail(format!(
                "cannot compare: `{}` does not compile",
                args.old.display()
            ))
        }
    };
    let new = match load_quietly(std::slice::from_ref(&args.new), CompileOptions::default()) {
        Ok(l) => l,
        Err(_) => {
            return fail(format!(
                "cannot compare: `{}` does not compile",
                args.new.display()
            ))
        }
    };
    match diff::diff(
        &old.routing,
        &old.checked.schema,
        &new.routing,
        &new.checked.schema,
    ) {
        Ok((changes, _)) => {
            let settings = rulec::tools::settings::diff(&old.checked.policy, &new.checked.policy);
            let mut text = if changes.is_empty() && !settings.is_empty() {
                "no decision changes: every request takes the same rule as before\n".to_string()
            } else {
                diff::report(&old.routing, &new.routing, &changes)
            };
            if !settings.is_empty() {
                // "every request is routed as before" stays true of the rules alone
                text.push('\n');
                text.push_str(&rulec::tools::settings::report(&settings));
            }
            emit(&text);
            if changes.is_empty() && settings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => fail(e),
    }
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Policy files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// How many generated requests to decide (1,000 stay in cache: the decision
    /// cost, not the memory system, is measured).
    #[arg(long, default_value_t = 1_000)]
    requests: usize,
    /// Minimum measuring time per side, in milliseconds.
    #[arg(long, default_value_t = 500)]
    millis: u64,
    /// Seed of the request generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub fn bench(args: BenchArgs) -> ExitCode {
    let opts = CompileOptions {
        bundle: true,
        ..CompileOptions::default()
    };
    let loaded = match load_quietly(&args.paths, opts) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // compiled again, to time the compiler alone; the bundle is the check's, made
    // from the same policy
    let start = Instant::now();
    let routing = match rulec::compile::routing(
        &loaded.checked.policy,
        &loaded.checked.schema,
        &loaded.checked.sources,
    ) {
        Ok(r) => r,
        Err(_) => return fail("the policy does not compile"),
    };
    let compile_ms = start.elapsed().as_secs_f64() * 1000.0;
    let Some(bundle) = loaded.bundle.as_ref().map(Bundle::to_bytes) else {
        return fail("the policy does not compile");
    };
    let r = bench::run(
        &routing,
        args.requests,
        args.seed,
        Duration::from_millis(args.millis),
    );
    emit(&format!(
        "rules: {}\nlayout: {}\ncompile: {compile_ms:.2} ms\nbundle: {} bytes\nrequests: {}\nagreement: {}/{}\ntable: {:.1} ns/decision\ninterpreter: {:.1} ns/decision\nspeedup: {:.1}x\n",
        r.rules,
        r.layout,
        bundle.len(),
        r.requests,
        r.agreement,
        r.requests,
        r.table_ns,
        r.interpreter_ns,
        r.speedup()
    ));
    if r.agreement == r.requests {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "error: the table and the interpreter disagree on {} requests",
            r.requests - r.agreement
        );
        ExitCode::from(1)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(clap::Args)]
pub struct GraphArgs {
    /// Policy files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Graphviz DOT or a Mermaid flowchart.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    format: GraphFormat,
}

/// Draws the policy's graphs; a policy with errors is drawn as far as it resolves.
pub fn graph(args: GraphArgs) -> ExitCode {
    let checked = match rulec::driver::check_paths(&args.paths, rulec::driver::Options::default()) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    emit(&match args.format {
        GraphFormat::Dot => rulec::graph::dot_graph(&checked.policy, &checked.graph),
        GraphFormat::Mermaid => rulec::graph::mermaid_graph(&checked.policy, &checked.graph),
    });
    ExitCode::SUCCESS
}

#[derive(clap::Args)]
pub struct MachinesArgs {
    /// Policy files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Prints the transition table of every state machine compiled from the policy.
pub fn machines(args: MachinesArgs) -> ExitCode {
    let loaded = match load_quietly(&args.paths, CompileOptions::default()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let machines = rulec::machines::compile(&loaded.checked.policy);
    let tables: Vec<String> = machines
        .iter()
        .map(rulec::machines::transition_table)
        .collect();
    emit(&tables.join("\n"));
    ExitCode::SUCCESS
}
