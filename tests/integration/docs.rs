//! The README's list of diagnostic codes is generated from the code registry; this test
//! fails when they drift apart. `RULEC_BLESS=1 cargo test` rewrites the README section.

use crate::common::root;

const START: &str = "<!-- codes:start -->\n";
const END: &str = "<!-- codes:end -->";

#[test]
fn readme_lists_every_code_as_generated() {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let (Some(a), Some(b)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md lacks the {START:?} ... {END:?} markers");
    };
    let current = &readme[a + START.len()..b];
    let generated = rulec::diag::docs::markdown();
    if current != generated {
        if std::env::var_os("RULEC_BLESS").is_some() {
            let updated = format!("{}{START}{generated}{}", &readme[..a], &readme[b..]);
            std::fs::write(&path, updated).expect("write README.md");
        } else {
            panic!("the README's code list is stale: run `RULEC_BLESS=1 cargo test readme` and commit README.md");
        }
    }
}

#[test]
fn every_explanation_renders_its_example() {
    for code in rulec::diag::codes::ALL {
        let text = rulec::diag::docs::explain(*code);
        assert!(
            text.contains(&format!("[{code}]")),
            "the example of {code} does not report {code}:\n{text}"
        );
    }
}
