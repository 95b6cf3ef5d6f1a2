//! The front end as one call: paths → sources → YAML trees → policy → diagnostics.
//! The CLI, the tests, the fuzz targets and the benchmarks all enter here.

use std::path::PathBuf;

use crate::compile::Routing;
use crate::diag::{self, Code, Diagnostic};
use crate::load::{self, LoadError};
use crate::policy::{self, Policy};
use crate::source::{FileId, SourceMap};

/// What a check produced: the sources (for rendering), the policy, its compiled
/// routing (when the policy has no errors) and the findings.
pub struct Checked {
    pub sources: SourceMap,
    pub policy: Policy,
    pub routing: Option<Routing>,
    pub diagnostics: Vec<Diagnostic>,
}

/// What to compute beyond errors and warnings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// informational findings (overlapping rules)
    pub infos: bool,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks the policy made of the given files and folders.
pub fn check_paths(paths: &[PathBuf], opts: Options) -> Result<Checked, LoadError> {
    let files = load::policy_paths(paths)?;
    let (sources, diags) = load::read_files(&files)?;
    Ok(check_sources(sources, diags, opts))
}

/// Checks one in-memory file (tests, fuzzing, benchmarks).
pub fn check_text(name: &str, text: &[u8]) -> Checked {
    let mut sources = SourceMap::new();
    let (_, diag) = load::add_bytes(&mut sources, name.to_string(), text.to_vec());
    check_sources(sources, diag.into_iter().collect(), Options::default())
}

/// [`check_text`] with options.
pub fn check_text_with(name: &str, text: &[u8], opts: Options) -> Checked {
    let mut sources = SourceMap::new();
    let (_, diag) = load::add_bytes(&mut sources, name.to_string(), text.to_vec());
    check_sources(sources, diag.into_iter().collect(), opts)
}

/// No error inside a routing rule, nor one that changes what conditions mean.
fn routing_is_sound(policy: &Policy, diags: &[Diagnostic]) -> bool {
    let rule_spans: Vec<crate::source::Span> = policy
        .routing
        .iter()
        .flat_map(|r| &r.rules)
        .map(|r| r.span)
        .collect();
    !diags.iter().filter(|d| d.is_error()).any(|d| {
        let p = d.primary.span;
        let in_rule = rule_spans
            .iter()
            .any(|s| s.file == p.file && s.start <= p.start && p.end <= s.end);
        // errors that change what a condition means wherever they are reported
        let meaning = matches!(
            d.code,
            Code::YamlSyntax
                | Code::InvalidUtf8
                | Code::TooComplex
                | Code::DuplicateDefinition
                | Code::UnknownAttribute
                | Code::TypeMismatch
                | Code::ValueNotAllowed
                | Code::InvalidOperator
                | Code::AttributeComparison
        );
        in_rule || meaning
    })
}

/// Checks files already read; `diags` holds what reading them found.
pub fn check_sources(sources: SourceMap, mut diags: Vec<Diagnostic>, opts: Options) -> Checked {
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
    // the graph checks look only at names that resolve, so they run on broken policies too
    diags.extend(crate::graph::check(&policy));
    // the analyses need routing rules whose names and types are sound; errors in
    // other sections (channels, say) do not make them less so
    let mut routing = None;
    if routing_is_sound(&policy, &diags) {
        let schema = crate::check::Schema::for_policy(&policy);
        match crate::compile::routing(&policy, &schema, &sources) {
            Ok(r) => {
                let lint_opts = crate::lint::rules::Options { infos: opts.infos };
                diags.extend(crate::lint::rules::check(&policy, &schema, &r, &lint_opts));
                routing = Some(r);
            }
            Err(errors) => diags.extend(errors),
        }
    }
    Checked {
        sources,
        policy,
        routing,
        diagnostics: diag::normalize(diags),
    }
}
