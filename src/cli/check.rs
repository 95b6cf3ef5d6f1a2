//! `rulec check`: diagnostics for people (codespan), CI (JSON) and code scanning (SARIF).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use rulec::diag::{render, Code, Severity};
use rulec::driver::{self, Options};

use super::{emit, fail};

#[derive(clap::Args)]
pub struct Args {
    /// Policy files, or folders whose `*.yaml` / `*.yml` files form one policy.
    #[arg(required_unless_present = "explain")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Treat warnings as errors for the exit code (`--deny warnings`).
    #[arg(long, value_enum)]
    deny: Option<Deny>,
    /// Print the documentation of a diagnostic code (e.g. `E020`) and exit.
    #[arg(long, value_name = "CODE")]
    explain: Option<String>,
    /// Also report informational findings (overlapping rules).
    #[arg(long)]
    info: bool,
    /// When to use colour in human output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    color: Color,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Deny {
    Warnings,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

pub fn run(args: Args) -> ExitCode {
    if let Some(code) = &args.explain {
        return match Code::parse(code) {
            Some(code) => {
                emit(&rulec::tools::code_docs::explain(code));
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("error: `{code}` is not a rulec diagnostic code");
                eprintln!(
                    "help: codes look like `E020` or `W060`; docs/codes/README.md lists them all"
                );
                ExitCode::from(2)
            }
        };
    }
    // a test file is not a policy: reading it as one would only say `unknown key tests`
    if let Some(test) = args.paths.iter().find(|p| rulec::load::is_test_file(p)) {
        eprintln!("error: `{}` is a test file, not a policy", test.display());
        eprintln!(
            "help: run its tests with `rulec test POLICY {}`; `rulec test --help` describes the format",
            test.display()
        );
        return ExitCode::from(2);
    }
    let checked = match driver::check_paths(&args.paths, Options { infos: args.info }) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let diags = &checked.diagnostics;
    let text = match args.format {
        Format::Human => {
            let color = match args.color {
                Color::Always => true,
                Color::Never => false,
                Color::Auto => {
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
                }
            };
            render::human(&checked.sources, diags, color)
        }
        Format::Json => render::json(&checked.sources, diags),
        Format::Sarif => render::sarif(&checked.sources, diags),
    };
    emit(&text);
    let failing = diags.iter().any(|d| {
        d.is_error()
            || (matches!(args.deny, Some(Deny::Warnings)) && d.severity == Severity::Warning)
    });
    if failing {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
