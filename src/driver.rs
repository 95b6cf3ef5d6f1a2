//! The front end as one call: paths → sources → YAML trees → policy → diagnostics,
//! and "check, refuse on errors, compile" ([`compile_paths`]) for every command and
//! the server that needs a compiled policy. The CLI, the server, the tests, the fuzz
//! targets and the benchmarks all enter here.

use std::path::PathBuf;

use crate::bundle::Bundle;
use crate::check::{Analysis, Schema};
use crate::compile::Routing;
use crate::diag::{self, Code, Diagnostic, Severity};
use crate::graph::PolicyGraph;
use crate::load::{self, LoadError};
use crate::policy::{self, Policy};
use crate::source::{FileId, SourceMap};

/// What a check produced: the sources (for rendering), the policy, its request
/// schema and graph, its compiled routing (when the policy has no errors) and the
/// findings.
pub struct Checked {
    pub sources: SourceMap,
    pub policy: Policy,
    pub schema: Schema,
    /// the graph the graph checks looked at, for drawing
    pub graph: PolicyGraph,
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

    /// Whether [`compile_paths`] refuses the policy: it has errors, or warnings that
    /// are denied.
    pub fn refused(&self, deny_warnings: bool) -> bool {
        refuses(&self.diagnostics, deny_warnings)
    }
}

fn refuses(diags: &[Diagnostic], deny_warnings: bool) -> bool {
    diags
        .iter()
        .any(|d| d.is_error() || (deny_warnings && d.severity == Severity::Warning))
}

/// What [`compile_paths`] refuses and what it makes besides the routing.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompileOptions {
    /// refuse a policy with warnings, not only one with errors
    pub deny_warnings: bool,
    /// make the bundle too
    pub bundle: bool,
}

/// A policy checked, found acceptable and compiled.
pub struct Compiled {
    /// the check; its `routing` has been moved to [`Compiled::routing`]
    pub checked: Checked,
    pub routing: Routing,
    /// when asked for
    pub bundle: Option<Bundle>,
}

/// Why [`compile_paths`] compiled nothing.
pub enum CompileError {
    /// the files could not be read
    Load(LoadError),
    /// the policy has errors, or warnings that were denied: they are in its diagnostics
    Refused(Box<Checked>),
    /// the policy has no routing rules to compile
    NoRouting(Box<Checked>),
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::Load(e) => e.fmt(f),
            CompileError::Refused(checked) => {
                let n = diag::summarize(&checked.diagnostics).errors;
                let s = if n == 1 { "" } else { "s" };
                write!(f, "the policy has {n} error{s}")
            }
            CompileError::NoRouting(_) => f.write_str("the policy has no routing rules"),
        }
    }
}

/// Checks the policy made of the given files and folders and, unless its
/// diagnostics refuse it, compiles it (and makes its bundle, when asked).
pub fn compile_paths(paths: &[PathBuf], opts: CompileOptions) -> Result<Compiled, CompileError> {
    let files = load::policy_paths(paths).map_err(CompileError::Load)?;
    let (sources, diags) = load::read_files(&files).map_err(CompileError::Load)?;
    let (mut checked, bundle) = run(sources, diags, Options::default(), Some(opts));
    if checked.refused(opts.deny_warnings) {
        return Err(CompileError::Refused(Box::new(checked)));
    }
    match checked.routing.take() {
        Some(routing) => Ok(Compiled {
            checked,
            routing,
            bundle,
        }),
        None => Err(CompileError::NoRouting(Box::new(checked))),
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
pub fn check_sources(sources: SourceMap, diags: Vec<Diagnostic>, opts: Options) -> Checked {
    run(sources, diags, opts, None).0
}

/// The stages in order, each reading the one analysis of the policy; with `compile`,
/// also the bundle of a policy those options do not refuse.
fn run(
    sources: SourceMap,
    mut diags: Vec<Diagnostic>,
    opts: Options,
    compile: Option<CompileOptions>,
) -> (Checked, Option<Bundle>) {
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
    let mut analysis = crate::check::analyse(&policy, diags);
    // the graph checks look only at names that resolve, so they run on broken policies too
    let graph = crate::graph::build_analysed(&analysis);
    let graph_diags = crate::graph::check_analysed(&analysis, &graph);
    analysis.diagnostics.extend(graph_diags);
    // the analyses need routing rules whose names and types are sound; errors in
    // other sections (channels, say) do not make them less so
    let mut routing = None;
    if routing_is_sound(&policy, &analysis.diagnostics) {
        match crate::compile::routing(&policy, &analysis.schema, &sources) {
            Ok(r) => {
                let lint_opts = crate::lint::rules::Options { infos: opts.infos };
                let lint_diags = crate::lint::rules::check(&analysis, &r, &lint_opts);
                analysis.diagnostics.extend(lint_diags);
                routing = Some(r);
            }
            Err(errors) => analysis.diagnostics.extend(errors),
        }
    }
    let bundle = match (compile, &routing) {
        (Some(c), Some(r)) if !refuses(&analysis.diagnostics, c.deny_warnings) && c.bundle => {
            Some(Bundle::analysed(&analysis, r))
        }
        _ => None,
    };
    let Analysis {
        schema,
        diagnostics,
        ..
    } = analysis;
    let checked = Checked {
        sources,
        policy,
        schema,
        graph,
        routing,
        diagnostics: diag::normalize(diagnostics),
    };
    (checked, bundle)
}
