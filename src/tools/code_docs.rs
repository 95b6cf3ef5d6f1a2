//! Documentation generated from the code registry (`diag::codes`): the text of
//! `rulec check --explain CODE`, one page per code under `docs/codes/` and their index.
//! Each code's example is its fixture, checked and rendered live here rather than in
//! `diag`, because checking needs the whole front end and `diag` sits below it.

use crate::diag::codes::ALL;
use crate::diag::{render, Code};
use crate::driver::{self, Options};

/// Where the generated pages live, relative to the repository root.
pub const PAGES_DIR: &str = "docs/codes";

/// The first line of every generated page, so that a reader (and the docs test) knows
/// not to edit it by hand.
const GENERATED: &str =
    "<!-- generated from src/diag/codes.rs by `RULEC_BLESS=1 cargo test --test integration docs`; do not edit -->\n";

/// The rendered diagnostics of a code's example, as `rulec check --info` prints them.
pub fn example_output(code: Code) -> String {
    let doc = code.doc();
    let name = format!("{}.yaml", doc.code);
    let checked = driver::check_text_with(&name, doc.example, Options { infos: true });
    render::human(&checked.sources, &checked.diagnostics, false)
}

/// The example policy as text; E001's example is deliberately not UTF-8, so the bad
/// bytes show as replacement characters.
fn example_text(code: Code) -> String {
    let mut text = String::from_utf8_lossy(code.doc().example).into_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The text `rulec check --explain CODE` prints.
pub fn explain(code: Code) -> String {
    let d = code.doc();
    format!(
        "{code} {name} ({sev}): {summary}\n\nWhat it means\n  {what}\n\nWhy it matters\n  {why}\n\nExample\n{example}\n  rulec check reports:\n{output}\nHow to fix it\n  {fix}\n",
        code = d.code,
        name = d.name,
        sev = d.severity.as_str(),
        summary = d.summary,
        what = d.what,
        why = d.why,
        example = indent(&example_text(code), "    "),
        output = indent(&example_output(code), "    "),
        fix = d.fix,
    )
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

/// A fenced block whose fence is longer than any run of backticks inside `text`, so
/// that no example can close it early.
fn fenced(lang: &str, text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let body = if text.ends_with('\n') {
        text.to_string()
    } else {
        format!("{text}\n")
    };
    format!("{fence}{lang}\n{body}{fence}\n")
}

/// The file name of a code's page inside [`PAGES_DIR`].
pub fn page_name(code: Code) -> String {
    format!("{}.md", code.as_str())
}

/// The page `docs/codes/<CODE>.md`: what, why, the example, its live output, the fix.
pub fn page(code: Code) -> String {
    let d = code.doc();
    let mut out = String::from(GENERATED);
    out.push_str(&format!(
        "\n# {c} `{n}`\n\n**{s}**: {sum}.\n\n## What it means\n\n{what}\n\n## Why it matters\n\n{why}\n\n",
        c = d.code,
        n = d.name,
        s = d.severity.as_str(),
        sum = d.summary,
        what = d.what,
        why = d.why,
    ));
    out.push_str(&format!(
        "## Example\n\n[`tests/fixtures/codes/{c}.yaml`](../../tests/fixtures/codes/{c}.yaml):\n\n",
        c = d.code
    ));
    out.push_str(&fenced("yaml", &example_text(code)));
    out.push_str(&format!(
        "\n`rulec check --info {c}.yaml` reports:\n\n",
        c = d.code
    ));
    out.push_str(&fenced("text", &example_output(code)));
    out.push_str(&format!(
        "\n## How to fix it\n\n{fix}\n\n---\n\n[All diagnostic codes](README.md) · `rulec check --explain {c}` prints this page in the terminal.\n",
        fix = d.fix,
        c = d.code
    ));
    out
}

/// `docs/codes/README.md`: every code with its name, severity, summary and page.
pub fn index() -> String {
    let mut out = String::from(GENERATED);
    out.push_str(
        "\n# Diagnostic codes\n\n\
         Every finding of `rulec check` has a stable code: `E` codes are errors (exit 1),\n\
         `W` codes warnings (exit 1 only with `--deny warnings`), `I` codes information\n\
         (shown with `--info`). The number's tens group what it is about: `x0x` and `x1x`\n\
         loading, decoding and parsing, `x2x` names, `x3x` types and values, `x4x` rule\n\
         coverage, `x5x` capabilities, `x6x` numbers, `x7x` unused or inactive parts and the\n\
         downgrade and failover graphs, `x8x` notifications, `x9x` secrets.\n\
         `rulec check --explain CODE` prints a code's page in the terminal. Each page's\n\
         example is the code's test fixture, and its output is what `rulec check` prints for\n\
         it today.\n\n",
    );
    out.push_str("| code | name | severity | summary |\n|---|---|---|---|\n");
    for code in ALL {
        let d = code.doc();
        out.push_str(&format!(
            "| [{c}]({p}) | `{n}` | {s} | {sum} |\n",
            c = d.code,
            p = page_name(*code),
            n = d.name,
            s = d.severity.as_str(),
            sum = d.summary
        ));
    }
    out
}

/// Every generated file under [`PAGES_DIR`]: its file name and its contents.
pub fn all_pages() -> Vec<(String, String)> {
    let mut pages = vec![("README.md".to_string(), index())];
    pages.extend(ALL.iter().map(|c| (page_name(*c), page(*c))));
    pages
}
