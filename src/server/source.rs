//! Where the served bundle comes from: a bundle file (verified) or a policy (file or
//! folder, checked and compiled on the spot). Either way a refusal carries the whole
//! explanation — the verification error or the rendered diagnostics.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::bundle::Bundle;
use crate::diag::render;
use crate::driver::{self, CompileError, CompileOptions};

/// Why a bundle or policy was not taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub message: String,
    /// the file could not be read at all (exit code 2, like `rulec check`)
    pub io: bool,
    /// the policy's diagnostics as `rulec check` prints them, when there are any
    pub diagnostics: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(d) = &self.diagnostics {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

/// A bundle is JSON; a policy is YAML, which never starts with `{` in practice (and
/// a YAML flow mapping at the top level is not a valid policy shape anyway).
pub fn looks_like_bundle(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{')
}

pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, Refusal> {
    Bundle::load(bytes).map_err(|e| Refusal {
        message: format!("bundle refused: {e}"),
        io: false,
        diagnostics: None,
    })
}

/// Loads PATH: a bundle file, or a policy file or folder.
pub fn load(path: &Path) -> Result<Bundle, Refusal> {
    load_counting_warnings(path).map(|(bundle, _)| bundle)
}

/// [`load`], and how many warnings the policy has (0 for a bundle).
pub fn load_counting_warnings(path: &Path) -> Result<(Bundle, usize), Refusal> {
    let io = |e: &dyn std::fmt::Display| Refusal {
        message: format!("cannot read `{}`: {e}", path.display()),
        io: true,
        diagnostics: None,
    };
    if path.is_file() {
        let bytes = std::fs::read(path).map_err(|e| io(&e))?;
        if looks_like_bundle(&bytes) {
            return from_bytes(&bytes).map(|b| (b, 0));
        }
    }
    let opts = CompileOptions {
        bundle: true,
        ..CompileOptions::default()
    };
    let no_routing = || Refusal {
        message: format!("policy `{}` has no routing rules to serve", path.display()),
        io: false,
        diagnostics: None,
    };
    match driver::compile_paths(&[path.to_path_buf()], opts) {
        Ok(compiled) => {
            let warnings = compiled.checked.diagnostics.len();
            compiled
                .bundle
                .map(|b| (b, warnings))
                .ok_or_else(no_routing)
        }
        Err(CompileError::Load(e)) => Err(io(&e)),
        Err(CompileError::Refused(checked)) => {
            let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
            Err(Refusal {
                message: format!(
                    "policy `{}` has {errors} error{}",
                    path.display(),
                    if errors == 1 { "" } else { "s" }
                ),
                io: false,
                diagnostics: Some(render::human(&checked.sources, &checked.diagnostics, false)),
            })
        }
        Err(CompileError::NoRouting(_)) => Err(no_routing()),
    }
}

/// What the file watcher compares: the size and modification time of PATH, or of
/// every file in it when it is a folder. `None` when it cannot be read.
pub fn fingerprint(path: &Path) -> Option<Vec<(PathBuf, u64, SystemTime)>> {
    let stat = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((p.to_path_buf(), m.len(), m.modified().ok()?))
    };
    if path.is_dir() {
        let mut out: Vec<_> = std::fs::read_dir(path)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .filter_map(|e| stat(&e.path()))
            .collect();
        out.sort();
        Some(out)
    } else {
        Some(vec![stat(path)?])
    }
}
