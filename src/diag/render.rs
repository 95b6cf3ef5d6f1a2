//! The edge where diagnostics become text: human (codespan-reporting), JSON and SARIF 2.1.0.
//!
//! The text under the primary span (a W045 or W051 counterexample, "defined again here")
//! is part of the finding, so every format carries it: the human output as the caret's
//! label, JSON as `"label"` (`null` when the primary span has no text, so a reader can
//! tell "nothing to add" from an empty string), SARIF in the result's message text and
//! as `properties.label` (left out when there is no text).

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{Error as FilesError, Files};
use codespan_reporting::term;
use serde_json::{json, Value};

use super::{summarize, Diagnostic, Label, Severity};
use crate::source::{FileId, SourceMap};

impl<'a> Files<'a> for SourceMap {
    type FileId = FileId;
    type Name = &'a str;
    type Source = &'a str;

    fn name(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        self.try_get(id)
            .map(|f| f.name.as_str())
            .ok_or(FilesError::FileMissing)
    }

    fn source(&'a self, id: FileId) -> Result<&'a str, FilesError> {
        self.try_get(id)
            .map(|f| f.text.as_str())
            .ok_or(FilesError::FileMissing)
    }

    fn line_index(&'a self, id: FileId, byte_index: usize) -> Result<usize, FilesError> {
        self.try_get(id)
            .map(|f| f.line_index(byte_index))
            .ok_or(FilesError::FileMissing)
    }

    fn line_range(
        &'a self,
        id: FileId,
        line_index: usize,
    ) -> Result<std::ops::Range<usize>, FilesError> {
        let file = self.try_get(id).ok_or(FilesError::FileMissing)?;
        file.line_range(line_index).ok_or(FilesError::LineTooLarge {
            given: line_index,
            max: file.line_count().saturating_sub(1),
        })
    }
}

fn to_codespan(d: &Diagnostic) -> cs::Diagnostic<FileId> {
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
        Severity::Info => cs::Severity::Note,
    };
    let mut labels = vec![
        cs::Label::primary(d.primary.span.file, d.primary.span.range())
            .with_message(d.primary.message.clone()),
    ];
    labels.extend(d.labels.iter().map(|l: &Label| {
        cs::Label::secondary(l.span.file, l.span.range()).with_message(l.message.clone())
    }));
    let mut notes = Vec::new();
    if let Some(help) = &d.help {
        notes.push(format!("help: {help}"));
    }
    cs::Diagnostic::new(severity)
        .with_code(d.code.as_str())
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(notes)
}

/// Human-readable output, optionally with ANSI colour, followed by a summary line.
pub fn human(sources: &SourceMap, diags: &[Diagnostic], color: bool) -> String {
    let config = term::Config::default();
    let mut out = String::new();
    if color {
        let mut buffer = term::termcolor::Buffer::ansi();
        for d in diags {
            // a rendering failure means a span outside its file: fall back to plain text
            if term::emit_to_write_style(&mut buffer, &config, sources, &to_codespan(d)).is_err() {
                out.push_str(&plain_line(sources, d));
            }
        }
        out.push_str(&String::from_utf8_lossy(buffer.as_slice()));
    } else {
        for d in diags {
            match term::emit_into_string(&config, sources, &to_codespan(d)) {
                Ok(text) => out.push_str(&text),
                Err(_) => out.push_str(&plain_line(sources, d)),
            }
        }
    }
    out.push_str(&summary_line(diags));
    out
}

fn plain_line(sources: &SourceMap, d: &Diagnostic) -> String {
    let (file, line, col) = position(sources, d.primary.span.file, d.primary.span.start as usize);
    format!(
        "{}[{}]: {} ({file}:{line}:{col})\n",
        d.severity.as_str(),
        d.code,
        d.message
    )
}

/// `checked: 3 errors, 1 warning` (or `no problems found`).
pub fn summary_line(diags: &[Diagnostic]) -> String {
    let s = summarize(diags);
    if s.errors == 0 && s.warnings == 0 {
        return match s.infos {
            0 => "no problems found\n".to_string(),
            n => format!("no problems found, {}\n", plural(n, "note")),
        };
    }
    let mut line = format!(
        "found {}, {}",
        plural(s.errors, "error"),
        plural(s.warnings, "warning")
    );
    if s.infos > 0 {
        line.push_str(&format!(", {}", plural(s.infos, "note")));
    }
    line.push('\n');
    line
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn position(sources: &SourceMap, file: FileId, offset: usize) -> (String, usize, usize) {
    match sources.try_get(file) {
        Some(f) => {
            let (line, col) = f.line_col(offset);
            (f.name.clone(), line, col)
        }
        None => (String::new(), 0, 0),
    }
}

fn label_json(sources: &SourceMap, l: &Label) -> Value {
    let (file, line, column) = position(sources, l.span.file, l.span.start as usize);
    let (_, end_line, end_column) = position(sources, l.span.file, l.span.end as usize);
    json!({
        "message": l.message,
        "file": file,
        "line": line,
        "column": column,
        "end_line": end_line,
        "end_column": end_column,
    })
}

/// The primary label's text, or `None` when the primary span carries none.
fn primary_text(d: &Diagnostic) -> Option<&str> {
    Some(d.primary.message.as_str()).filter(|m| !m.is_empty())
}

/// The JSON report: `{"diagnostics": [...], "summary": {"errors", "warnings", "infos"}}`.
pub fn json_value(sources: &SourceMap, diags: &[Diagnostic]) -> Value {
    let list: Vec<Value> = diags
        .iter()
        .map(|d| {
            let p = d.primary.span;
            let (file, line, column) = position(sources, p.file, p.start as usize);
            let (_, end_line, end_column) = position(sources, p.file, p.end as usize);
            json!({
                "code": d.code.as_str(),
                "severity": d.severity.as_str(),
                "message": d.message,
                "file": file,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "label": primary_text(d),
                "labels": d.labels.iter().map(|l| label_json(sources, l)).collect::<Vec<_>>(),
                "help": d.help,
            })
        })
        .collect();
    json!({ "diagnostics": list, "summary": summarize(diags) })
}

pub fn json(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut text = serde_json::to_string_pretty(&json_value(sources, diags)).unwrap_or_default();
    text.push('\n');
    text
}

fn sarif_location(sources: &SourceMap, l: &Label) -> Value {
    let (file, line, column) = position(sources, l.span.file, l.span.start as usize);
    let (_, end_line, end_column) = position(sources, l.span.file, l.span.end as usize);
    let mut loc = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": file },
            "region": {
                "startLine": line,
                "startColumn": column,
                "endLine": end_line,
                "endColumn": end_column,
            }
        }
    });
    if !l.message.is_empty() {
        loc["message"] = json!({ "text": l.message });
    }
    loc
}

/// SARIF 2.1.0, one run, with a rule entry for every code that occurs.
pub fn sarif(sources: &SourceMap, diags: &[Diagnostic]) -> String {
    let mut codes: Vec<_> = diags.iter().map(|d| d.code).collect();
    codes.sort();
    codes.dedup();
    let rules: Vec<Value> = codes
        .iter()
        .map(|c| {
            let doc = c.doc();
            json!({
                "id": doc.code,
                "name": doc.name,
                "shortDescription": { "text": doc.summary },
                "fullDescription": { "text": doc.what },
                "help": { "text": format!("{} {}", doc.why, doc.fix) },
                "defaultConfiguration": { "level": sarif_level(doc.severity) },
            })
        })
        .collect();
    let results: Vec<Value> = diags
        .iter()
        .map(|d| {
            let mut message = d.message.clone();
            // SARIF viewers often show only the message text, so the example goes there too
            if let Some(label) = primary_text(d) {
                message.push_str(&format!(": {label}"));
            }
            if let Some(help) = &d.help {
                message.push_str(&format!(" (help: {help})"));
            }
            let mut result = json!({
                "ruleId": d.code.as_str(),
                "ruleIndex": codes.iter().position(|c| *c == d.code),
                "level": sarif_level(d.severity),
                "message": { "text": message },
                "locations": [sarif_location(sources, &d.primary)],
                "relatedLocations": d.labels.iter().enumerate().map(|(i, l)| {
                    let mut loc = sarif_location(sources, l);
                    loc["id"] = json!(i);
                    loc
                }).collect::<Vec<_>>(),
            });
            if let Some(label) = primary_text(d) {
                result["properties"] = json!({ "label": label });
            }
            result
        })
        .collect();
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "rulec",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }]
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}
