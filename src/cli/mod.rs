//! The command line's subcommands; each file owns one. Shared here: loading a policy
//! that must be free of errors before anything is compiled from it.

pub mod author;
pub mod check;
pub mod compile;
pub mod serve;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use rulec::diag::render;
use rulec::driver::{self, CompileError, CompileOptions, Compiled};

/// Writes to stdout; a closed pipe (`rulec ... | head`) is not worth a panic.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A usage or I/O problem: message on stderr, exit code 2.
pub fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Checks the policy; on errors prints them (to stderr) and returns exit code 1.
/// Warnings are printed in full by `compile` (and fail with `deny_warnings`); the
/// authors' tools only count them, so their own output stays readable.
pub fn load(paths: &[PathBuf], opts: CompileOptions) -> Result<Compiled, ExitCode> {
    load_with(paths, opts, true)
}

/// [`load`] that only counts warnings.
pub fn load_quietly(paths: &[PathBuf], opts: CompileOptions) -> Result<Compiled, ExitCode> {
    load_with(paths, opts, false)
}

fn load_with(
    paths: &[PathBuf],
    opts: CompileOptions,
    show_warnings: bool,
) -> Result<Compiled, ExitCode> {
    let outcome = driver::compile_paths(paths, opts);
    let checked = match &outcome {
        Ok(compiled) => &compiled.checked,
        Err(CompileError::Load(e)) => return Err(fail(e)),
        Err(CompileError::Refused(checked) | CompileError::NoRouting(checked)) => checked,
    };
    let failing = matches!(outcome, Err(CompileError::Refused(_)));
    if !failing && !show_warnings {
        let n = checked
            .diagnostics
            .iter()
            .filter(|d| d.severity == rulec::diag::Severity::Warning)
            .count();
        if n > 0 {
            eprintln!(
                "note: the policy has {n} warning{}; `rulec check` shows them",
                if n == 1 { "" } else { "s" }
            );
        }
    } else if !checked.diagnostics.is_empty() {
        let color = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none();
        eprint!(
            "{}",
            render::human(&checked.sources, &checked.diagnostics, color)
        );
    }
    match outcome {
        Ok(compiled) => Ok(compiled),
        Err(CompileError::Refused(_)) => Err(ExitCode::from(1)),
        Err(_) => Err(fail("the policy has no routing rules to compile")),
    }
}
