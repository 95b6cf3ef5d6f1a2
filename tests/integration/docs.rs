//! The pages under `docs/codes/` (one per diagnostic code, and their index) are generated
//! from the code registry; these tests fail when a page drifts from it, and
//! `RULEC_BLESS=1 cargo test --test integration docs` rewrites them.

use std::collections::BTreeSet;

use rulec::tools::code_docs;

use crate::common::root;

const BLESS: &str = "RULEC_BLESS=1 cargo test --test integration docs";

#[test]
fn code_pages_are_current() {
    let dir = root().join(code_docs::PAGES_DIR);
    let bless = std::env::var_os("RULEC_BLESS").is_some();
    if bless {
        std::fs::create_dir_all(&dir).expect("create docs/codes");
    }
    let pages = code_docs::all_pages();
    let mut problems = Vec::new();
    for (name, generated) in &pages {
        let path = dir.join(name);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(generated.as_str()) {
            continue;
        }
        if bless {
            std::fs::write(&path, generated).expect("write a code page");
        } else if current.is_none() {
            problems.push(format!("docs/codes/{name} is missing"));
        } else {
            problems.push(format!(
                "docs/codes/{name} differs from the registry in src/diag/codes.rs or its fixture's output"
            ));
        }
    }
    // a page whose code left the registry would mislead; only generated pages live here
    let expected: BTreeSet<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
    for entry in std::fs::read_dir(&dir).expect("read docs/codes") {
        let entry = entry.expect("read docs/codes");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") && !expected.contains(name.as_str()) {
            if bless {
                std::fs::remove_file(entry.path()).expect("remove a stale code page");
            } else {
                problems.push(format!("docs/codes/{name} names no code in the registry"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the generated code pages are stale:\n  {}\nrun `{BLESS}` and commit docs/codes/",
        problems.join("\n  ")
    );
}

#[test]
fn every_page_and_explanation_shows_its_code_reported() {
    for code in rulec::diag::codes::ALL {
        let reported = format!("[{code}]");
        let text = code_docs::explain(*code);
        assert!(
            text.contains(&reported),
            "the example of {code} does not report {code}:\n{text}"
        );
        let page = code_docs::page(*code);
        assert!(
            page.contains(&reported),
            "the page of {code} does not show {code} reported:\n{page}"
        );
    }
}

#[test]
fn the_index_links_every_code() {
    let index = code_docs::index();
    for code in rulec::diag::codes::ALL {
        let link = format!("[{code}]({code}.md)");
        assert!(index.contains(&link), "the index lacks {link}");
    }
}

/// `docs/sections.md`: where every section of the policy format lives, generated from
/// the same table that the unknown-key suggestions use (`src/policy/sections.rs`).
#[test]
fn the_section_table_page_is_current() {
    let path = root().join("docs/sections.md");
    let generated = format!(
        "# Where each section of a policy lives\n\n\
         Generated from `src/policy/sections.rs` (the table that `rulec check` uses to say\n\
         where a misplaced section belongs); do not edit: run `{BLESS}`.\n\n{}",
        rulec::policy::sections::markdown()
    );
    let current = std::fs::read_to_string(&path).ok();
    if current.as_deref() == Some(generated.as_str()) {
        return;
    }
    if std::env::var_os("RULEC_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write docs/sections.md");
        return;
    }
    panic!("docs/sections.md is missing or stale: run `{BLESS}` and commit it");
}
