//! One fixture per diagnostic code (`tests/fixtures/codes/<CODE>.yaml`): each must make
//! `rulec check` report its code, and its rendered output is snapshotted beside it.

use rulec::diag::codes::ALL;

use crate::common::{codes, root, rulec};

#[test]
fn every_code_has_a_fixture_that_triggers_it() {
    let mut missing = Vec::new();
    for code in ALL {
        let path = format!("tests/fixtures/codes/{code}.yaml");
        let run = rulec(&["check", "--info", "--format", "json", &path]);
        if !codes(&run.stdout).iter().any(|c| c == code.as_str()) {
            missing.push(format!("{code}: reported {:?}", codes(&run.stdout)));
        }
    }
    assert!(
        missing.is_empty(),
        "fixtures that do not trigger their code:\n{}",
        missing.join("\n")
    );
}

#[test]
fn no_fixture_without_a_code() {
    let dir = root().join("tests/fixtures/codes");
    for entry in std::fs::read_dir(dir).expect("fixtures dir") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        assert!(
            rulec::diag::Code::parse(stem).is_some(),
            "{} is not named after a diagnostic code",
            path.display()
        );
    }
}

#[test]
fn fixture_output_snapshots() {
    for code in ALL {
        let path = format!("tests/fixtures/codes/{code}.yaml");
        let run = rulec(&["check", "--info", "--color", "never", &path]);
        insta::with_settings!({
            snapshot_path => root().join("tests/fixtures/codes"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("rulec check {path}"),
        }, {
            insta::assert_snapshot!(code.as_str(), run.stdout);
        });
    }
}
