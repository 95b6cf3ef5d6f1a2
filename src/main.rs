//! The `rulec` command line. Exit codes: 0 success, 1 findings or failures, 2 usage or
//! I/O error.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "rulec",
    version,
    about = "Check and compile LLM routing policies; explain, test and compare them; serve them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a policy: parse, resolve names, type-check conditions, lint.
    Check(cli::check::Args),
    /// Compile a policy into a bundle (decision table, state machines, specs).
    Compile(cli::compile::Args),
    /// Explain the decision for one request: the rule that matched and why earlier ones did not.
    Explain(cli::author::ExplainArgs),
    /// Run the test cases (`*.test.yaml`) written next to a policy.
    Test(cli::author::TestArgs),
    /// Show which requests two policies route differently, and every setting that changed.
    Diff(cli::author::DiffArgs),
    /// Measure decisions: the compiled table against the plain interpreter.
    Bench(cli::author::BenchArgs),
    /// Draw the policy's graphs (routing, failover, downgrades, notifications).
    Graph(cli::author::GraphArgs),
    /// Print the transition tables of the compiled state machines.
    Machines(cli::author::MachinesArgs),
    /// Serve a bundle (or policy) over HTTP: decisions, live health, balancing, metrics, hot reload.
    Serve(cli::serve::Args),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check(a) => cli::check::run(a),
        Command::Compile(a) => cli::compile::run(a),
        Command::Explain(a) => cli::author::explain(a),
        Command::Test(a) => cli::author::test(a),
        Command::Diff(a) => cli::author::diff(a),
        Command::Bench(a) => cli::author::bench(a),
        Command::Graph(a) => cli::author::graph(a),
        Command::Machines(a) => cli::author::machines(a),
        Command::Serve(a) => cli::serve::run(a),
    }
}
