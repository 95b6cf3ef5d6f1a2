//! Stage 1: find the policy files, read them as UTF-8 text, and parse them into spanned
//! YAML trees. I/O problems (a missing path, a folder with no policy) are [`LoadError`]s;
//! problems with a file's content are diagnostics.

pub mod node;
pub mod scalar_map;
pub mod yaml;

use std::path::{Path, PathBuf};

pub use node::{Kind, Node, Scalar, Style};

use crate::diag::{Code, Diagnostic};
use crate::source::{FileId, SourceMap, Span};

/// Largest policy file read, in bytes.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A problem reaching the input at all (exit code 2), as opposed to a problem in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    Missing(PathBuf),
    Unreadable(PathBuf, String),
    NoPolicy(PathBuf),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Missing(p) => write!(f, "`{}` does not exist", p.display()),
            LoadError::Unreadable(p, why) => write!(f, "cannot read `{}`: {why}", p.display()),
            LoadError::NoPolicy(p) => write!(
                f,
                "`{}` holds no policy files (`*.yaml` or `*.yml`)",
                p.display()
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Test files (`*.test.yaml`) live next to policies but are not part of them.
pub fn is_test_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

fn is_policy_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    ) && !is_test_file(path)
}

/// Expands the command-line paths: a file stands for itself, a folder for the policy
/// files directly inside it, sorted by name. Order is stable across machines.
pub fn policy_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => LoadError::Missing(path.clone()),
            _ => LoadError::Unreadable(path.clone(), e.to_string()),
        })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(path)
                .map_err(|e| LoadError::Unreadable(path.clone(), e.to_string()))?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_policy_file(p))
                .collect();
            if found.is_empty() {
                return Err(LoadError::NoPolicy(path.clone()));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Reads the files into a [`SourceMap`]; content that is not text becomes a diagnostic.
pub fn read_files(paths: &[PathBuf]) -> Result<(SourceMap, Vec<Diagnostic>), LoadError> {
    let mut sources = SourceMap::new();
    let mut diags = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| LoadError::Unreadable(path.clone(), e.to_string()))?;
        let name = path.display().to_string();
        if meta.len() > MAX_FILE_BYTES {
            let id = sources.add(name, String::new());
            diags.push(
                Diagnostic::new(
                    Code::TooComplex,
                    Span::new(id, 0..0),
                    format!(
                        "the file is {} bytes, over the limit of {MAX_FILE_BYTES}",
                        meta.len()
                    ),
                )
                .help("split the policy into several files"),
            );
            continue;
        }
        let bytes =
            std::fs::read(path).map_err(|e| LoadError::Unreadable(path.clone(), e.to_string()))?;
        let (_, diag) = add_bytes(&mut sources, name, bytes);
        diags.extend(diag);
    }
    Ok((sources, diags))
}

/// Adds one file's bytes; non-UTF-8 or binary content yields E001.
pub fn add_bytes(
    sources: &mut SourceMap,
    name: String,
    bytes: Vec<u8>,
) -> (FileId, Option<Diagnostic>) {
    match String::from_utf8(bytes) {
        Ok(text) => {
            let nul = text.find('\0');
            let id = sources.add(name, text.replace('\0', " "));
            let diag = nul.map(|at| {
                Diagnostic::new(
                    Code::InvalidUtf8,
                    Span::new(id, at..at + 1),
                    "this is a binary file, not a policy",
                )
                .primary_label("a NUL byte")
                .help("policy files are YAML text; remove binary files from the policy folder")
            });
            (id, diag)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
            let id = sources.add(name, text);
            let diag = Diagnostic::new(
                Code::InvalidUtf8,
                Span::new(id, at..end),
                "the file is not valid UTF-8",
            )
            .primary_label("this byte is not UTF-8")
            .help("save the file as UTF-8");
            (id, Some(diag))
        }
    }
}

/// Parses every readable file; each document of each file is one [`Node`] tree.
pub fn parse_all(sources: &SourceMap, skip: &[FileId]) -> (Vec<Node>, Vec<Diagnostic>) {
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    for (id, file) in sources.files() {
        if skip.contains(&id) {
            continue;
        }
        let (file_docs, file_diags) = yaml::parse(id, &file.text);
        let empty = file_diags.is_empty() && file_docs.iter().all(Node::is_null);
        if empty {
            diags.push(
                Diagnostic::new(
                    Code::EmptyFile,
                    Span::new(id, 0..0),
                    "the policy file is empty",
                )
                .help("add the policy, or delete the file"),
            );
        }
        docs.extend(file_docs.into_iter().filter(|d| !d.is_null()));
        diags.extend(file_diags);
    }
    (docs, diags)
}
