//! `rulec compile`: the checked policy as a bundle file.

use std::path::PathBuf;
use std::process::ExitCode;

use rulec::driver::CompileOptions;

use super::check::Deny;
use super::{emit, fail, load};

#[derive(clap::Args)]
pub struct Args {
    /// Policy files or folders.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where to write the bundle (standard output when not given).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Refuse to compile a policy with warnings.
    #[arg(long, value_enum)]
    deny: Option<Deny>,
}

pub fn run(args: Args) -> ExitCode {
    let opts = CompileOptions {
        deny_warnings: args.deny.is_some(),
        bundle: true,
    };
    let compiled = match load(&args.paths, opts) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // asked for, so made for every policy that compiles
    let Some(bundle) = compiled.bundle else {
        return fail("the policy has no routing rules to compile");
    };
    let bytes = bundle.to_bytes();
    let table = &bundle.content.table;
    let summary = format!(
        "{} rules, {} table, {} bytes, {}",
        table.rules.len(),
        table.layout_name(),
        bytes.len(),
        bundle.hash
    );
    match &args.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, &bytes) {
                return fail(format!("cannot write `{}`: {e}", path.display()));
            }
            eprintln!("wrote {}: {summary}", path.display());
        }
        None => {
            emit(&String::from_utf8_lossy(&bytes));
            eprintln!("{summary}");
        }
    }
    ExitCode::SUCCESS
}
