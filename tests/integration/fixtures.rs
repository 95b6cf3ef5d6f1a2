//! One fixture per diagnostic code (`tests/fixtures/codes/<CODE>.yaml`): each must make
//! `rulec check` report its code, and its rendered output is snapshotted beside it.
//!
//! Every code is its own test, so a fixture that stops triggering its code does not hide
//! the others; `every_code_has_a_test` keeps the list below equal to the code registry.

use std::collections::BTreeSet;

use rulec::diag::codes::ALL;

use crate::common::{codes, root, rulec};

/// Declares one `#[test]` per code, named after it (`cargo test fixtures::W045`), and
/// `LISTED`, the codes declared, for the completeness check.
macro_rules! code_tests {
    ($($code:ident)*) => {
        const LISTED: &[&str] = &[$(stringify!($code)),*];
        $(
            #[test]
            #[allow(non_snake_case)]
            fn $code() {
                fixture_reports_its_code(stringify!($code));
            }
        )*
    };
}

// The single list of codes with a fixture test: a new code in `rulec::diag::codes` goes
// here too, or `every_code_has_a_test` fails.
code_tests! {
    E001 E002 E003 E004 E005 E006 E007 E008 E009 E010 E011 W001
    E020 E021
    E030 E031 E032 E033 W030 W031
    E040 E041 W042 W043 W044 W045 I046
    E050 W051 W052 W050
    E060 E061 E062 W060 W061 W062 W063 W064 W065 W066
    W070 W071 W072 W073 W074 W075 W076
    W080 W081 W082 W083
    E090
}

/// The fixture for `code` makes `rulec check` report it, and its human output matches
/// the snapshot `tests/fixtures/codes/<CODE>.snap`.
fn fixture_reports_its_code(code: &str) {
    assert!(
        rulec::diag::Code::parse(code).is_some(),
        "`{code}` is listed in tests/integration/fixtures.rs but is not a diagnostic code"
    );
    let path = format!("tests/fixtures/codes/{code}.yaml");
    let run = rulec(&["check", "--info", "--format", "json", &path]);
    let reported = codes(&run.stdout);
    assert!(
        reported.iter().any(|c| c == code),
        "{path} does not trigger {code}: reported {reported:?}\n{}",
        run.stderr
    );

    let run = rulec(&["check", "--info", "--color", "never", &path]);
    insta::with_settings!({
        snapshot_path => root().join("tests/fixtures/codes"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("rulec check {path}"),
    }, {
        insta::assert_snapshot!(code, run.stdout);
    });
}

#[test]
fn every_code_has_a_test() {
    let listed: BTreeSet<&str> = LISTED.iter().copied().collect();
    let registry: BTreeSet<&str> = ALL.iter().map(|c| c.as_str()).collect();
    let untested: Vec<_> = registry.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&registry).collect();
    assert!(
        untested.is_empty() && unknown.is_empty(),
        "the code list in tests/integration/fixtures.rs is out of date: \
         add {untested:?}, remove {unknown:?}"
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

/// A policy without a fallback: the request no rule matches, which the human output shows
/// under the caret, reaches CI tools too, in JSON as `label` and in SARIF's message.
#[test]
fn json_and_sarif_carry_the_example_request() {
    let path = "tests/fixtures/codes/W045.yaml";
    let example = r#"for example {"task_type": "general"}"#;

    let run = rulec(&["check", "--format", "json", path]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("a JSON report");
    let w045 = v["diagnostics"]
        .as_array()
        .expect("a diagnostics array")
        .iter()
        .find(|d| d["code"] == "W045")
        .expect("W045 reported");
    assert_eq!(w045["label"], example, "in {w045}");

    let run = rulec(&["check", "--format", "sarif", path]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("a SARIF report");
    let result = v["runs"][0]["results"]
        .as_array()
        .expect("a results array")
        .iter()
        .find(|r| r["ruleId"] == "W045")
        .expect("W045 reported");
    assert_eq!(result["properties"]["label"], example, "in {result}");
    let text = result["message"]["text"].as_str().expect("message text");
    assert!(text.contains(example), "`{text}` lacks the example");
}

/// JSON and SARIF agree finding by finding, over the seed and every fixture: a primary
/// span with no text of its own is a `null` label in JSON (never an empty string) and no
/// `properties` in SARIF.
#[test]
fn json_and_sarif_agree_on_labels() {
    let fixtures = ALL.iter().map(|c| format!("tests/fixtures/codes/{c}.yaml"));
    let (mut with_text, mut without) = (0, 0);
    for path in std::iter::once("rules/seed".to_string()).chain(fixtures) {
        let json = rulec(&["check", "--info", "--format", "json", &path]);
        let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("a JSON report");
        let diags = v["diagnostics"].as_array().expect("a diagnostics array");
        let sarif = rulec(&["check", "--info", "--format", "sarif", &path]);
        let s: serde_json::Value = serde_json::from_str(&sarif.stdout).expect("a SARIF report");
        let results = s["runs"][0]["results"].as_array().expect("a results array");
        assert_eq!(diags.len(), results.len(), "{path}");
        for (d, r) in diags.iter().zip(results) {
            assert_eq!(d["code"], r["ruleId"], "{path}");
            match d["label"].as_str() {
                Some(text) => {
                    assert!(!text.is_empty(), "{path}: empty label in {d}");
                    with_text += 1;
                }
                None => {
                    assert!(d["label"].is_null(), "{path}: label in {d}");
                    without += 1;
                }
            }
            let sarif_label = r
                .get("properties")
                .map_or(&serde_json::Value::Null, |p| &p["label"]);
            assert_eq!(&d["label"], sarif_label, "{path}: {d} and {r}");
        }
    }
    assert!(
        with_text > 0 && without > 0,
        "both kinds of finding are covered"
    );
}
