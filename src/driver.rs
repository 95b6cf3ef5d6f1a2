//! The front end as one call: paths → sources → YAML trees → policy → diagnostics.
//! The CLI, the tests, the fuzz targets and the benchmarks all enter here.

use std::path::PathBuf;

use crate::diag::{self, Code, Diagnostic};
use crate::load::{self, LoadError};
use crate::policy::{self, Policy};
use crate::source::{FileId, SourceMap};

/// What a check produced: the sources (for rendering), the policy and the findings.
pub struct Checked {
    pub sources: SourceMap,
    pub policy: Policy,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the policy made of the given files and folders.
pub fn check_paths(paths: &[PathBuf]) -> Result<Checked, LoadError> {
    let files = load::policy_paths(paths)?;
    let (sources, diags) = load::read_files(&files)?;
    Ok(check_sources(sources, diags))
}

/// Checks one in-memory file (tests, fuzzing, benchmarks).
pub fn check_text(name: &str, text: &[u8]) -> Checked {
    let mut sources = SourceMap::new();
    let (_, diag) = load::add_bytes(&mut sources, name.to_string(), text.to_vec());
    check_sources(sources, diag.into_iter().collect())
}

/// Checks files already read; `diags` holds what reading them found.
pub fn check_sources(sources: SourceMap, mut diags: Vec<Diagnostic>) -> Checked {
    // files that are not text, or too large, are not parsed: their content is unknown
    let skip: Vec<FileId> = diags
        .iter()
        .filter(|d| matches!(d.code, Code::InvalidUtf8 | Code::TooComplex))
        .map(|d| d.primary.span.file)
        .collect();
    let (docs, parse_diags) = load::parse_all(&sources, &skip);
    diags.extend(parse_diags);
    let (policy, decode_diags) = policy::build(&docs);
    diags.extend(decode_diags);
    diags.extend(crate::check::check(&policy));
    Checked {
        sources,
        policy,
        diagnostics: diag::normalize(diags),
    }
}
