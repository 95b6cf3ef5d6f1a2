//! Documentation generated from the code registry: `--explain CODE` and the README's
//! list of codes. The example of each code is its fixture, checked and rendered live.

use super::codes::ALL;
use super::{render, Code};

/// The rendered diagnostics of a code's example, as `rulec check` prints them.
pub fn example_output(code: Code) -> String {
    let doc = code.doc();
    let name = format!("{}.yaml", doc.code);
    let opts = crate::driver::Options { infos: true };
    let checked = crate::driver::check_text_with(&name, doc.example, opts);
    render::human(&checked.sources, &checked.diagnostics, false)
}

fn example_text(code: Code) -> String {
    String::from_utf8_lossy(code.doc().example).into_owned()
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

/// The README section listing every code.
pub fn markdown() -> String {
    let mut out = String::new();
    out.push_str("| code | name | severity | summary |\n|---|---|---|---|\n");
    for code in ALL {
        let d = code.doc();
        out.push_str(&format!(
            "| [{c}](#{l}) | `{n}` | {s} | {sum} |\n",
            c = d.code,
            l = d.code.to_ascii_lowercase(),
            n = d.name,
            s = d.severity.as_str(),
            sum = d.summary
        ));
    }
    for code in ALL {
        let d = code.doc();
        out.push_str(&format!(
            "\n#### {c}\n\n`{n}` ({s}): {sum}.\n\n**What.** {what}\n\n**Why.** {why}\n\n**Example** (`tests/fixtures/codes/{c}.yaml`):\n\n```yaml\n{ex}```\n\n**Fix.** {fix}\n",
            c = d.code,
            n = d.name,
            s = d.severity.as_str(),
            sum = d.summary,
            what = d.what,
            why = d.why,
            ex = {
                let mut t = example_text(*code);
                if !t.ends_with('\n') {
                    t.push('\n');
                }
                t
            },
            fix = d.fix,
        ));
    }
    out
}
