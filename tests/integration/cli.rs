//! The command line: formats, exit codes, `--explain`, `--deny warnings`, merging files.

use crate::common::{codes, rulec, scratch};

#[test]
fn exit_codes() {
    assert_eq!(rulec(&["check", "rules/examples/gateway"]).code, 0);
    assert_eq!(rulec(&["check", "rules/seed"]).code, 1);
    let missing = rulec(&["check", "no/such/policy.yaml"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .contains("`no/such/policy.yaml` does not exist"),
        "{}",
        missing.stderr
    );
    assert_eq!(rulec(&["check"]).code, 2, "no path is a usage error");
    assert_eq!(rulec(&["check", "--format", "xml", "rules/seed"]).code, 2);
}

#[test]
fn warnings_fail_only_when_denied() {
    let dir = scratch("warn_only");
    let file = dir.join("p.yaml");
    std::fs::write(&file, "failover:\n  primary: p\n  fallbacks:\n    - provider: q\n      weight: 50\n      timeout_ms: 100\n    - provider: r\n      weight: 20\n      timeout_ms: 100\nproviders:\n  p: {kind: openai, base_url: 'http://127.0.0.1:1'}\n  q: {kind: openai, base_url: 'http://127.0.0.1:2'}\n  r: {kind: openai, base_url: 'http://127.0.0.1:3'}\n").unwrap();
    let path = file.to_str().unwrap();
    let plain = rulec(&["check", "--format", "json", path]);
    let found = codes(&plain.stdout);
    assert!(found.contains(&"W060".to_string()), "{found:?}");
    assert!(found.iter().all(|c| c.starts_with('W')), "{found:?}");
    assert_eq!(plain.code, 0);
    assert_eq!(rulec(&["check", "--deny", "warnings", path]).code, 1);
}

#[test]
fn json_report_has_the_documented_shape() {
    let run = rulec(&["check", "--format", "json", "rules/seed"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let first = &v["diagnostics"][0];
    for key in [
        "code",
        "severity",
        "message",
        "file",
        "line",
        "column",
        "end_line",
        "end_column",
        "labels",
        "help",
    ] {
        assert!(first.get(key).is_some(), "missing `{key}` in {first}");
    }
    let errors = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .count();
    assert_eq!(v["summary"]["errors"].as_u64(), Some(errors as u64));
    assert!(v["summary"]["warnings"].as_u64().unwrap() > 0);
}

#[test]
fn sarif_report_is_sarif_2_1_0() {
    let run = rulec(&["check", "--format", "sarif", "rules/seed"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(v["version"], "2.1.0");
    let results = v["runs"][0]["results"].as_array().expect("results");
    let json = rulec(&["check", "--format", "json", "rules/seed"]);
    assert_eq!(results.len(), codes(&json.stdout).len());
    let rules = v["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    for r in results {
        let idx = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        let region = &r["locations"][0]["physicalLocation"]["region"];
        assert!(region["startLine"].as_u64().unwrap() >= 1);
        assert!(region["startColumn"].as_u64().unwrap() >= 1);
    }
}

#[test]
fn explain_prints_the_doc_entry() {
    let run = rulec(&["check", "--explain", "e020"]);
    assert_eq!(run.code, 0);
    for part in [
        "E020 undefined-name (error)",
        "What it means",
        "Why it matters",
        "Example",
        "rulec check reports:",
        "error[E020]",
        "How to fix it",
    ] {
        assert!(
            run.stdout.contains(part),
            "missing `{part}` in:\n{}",
            run.stdout
        );
    }
    let bad = rulec(&["check", "--explain", "E999"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("`E999` is not a rulec diagnostic code"));
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let piped = rulec(&["check", "rules/seed"]);
    assert!(
        !piped.stdout.contains('\u{1b}'),
        "no ANSI escapes when piped"
    );
    let forced = rulec(&["check", "--color", "always", "rules/seed"]);
    assert!(forced.stdout.contains('\u{1b}'));
}

#[test]
fn names_defined_twice_across_files_point_at_both() {
    let dir = scratch("twice");
    let model = "gateway:\n  models:\n    m:\n      provider: p\n      model: x\n      max_tokens: 10\n      cost_per_token: 0.000001\n";
    std::fs::write(dir.join("a.yaml"), model).unwrap();
    std::fs::write(
        dir.join("b.yml"),
        "providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9'}\n---\n".to_string()
            + model,
    )
    .unwrap();
    let run = rulec(&["check", "--format", "json", dir.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let d = &v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "E011")
        .expect("E011")
        .clone();
    assert!(d["file"].as_str().unwrap().ends_with("b.yml"));
    assert!(d["labels"][0]["file"].as_str().unwrap().ends_with("a.yaml"));
    assert_eq!(d["labels"][0]["line"], 3);
}

#[test]
fn folders_skip_test_files_and_other_extensions() {
    let dir = scratch("mixed");
    std::fs::write(dir.join("notes.txt"), "not yaml: [").unwrap();
    std::fs::write(dir.join("policy.test.yaml"), "cases: []").unwrap();
    std::fs::write(
        dir.join("p.yaml"),
        "providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9'}\n",
    )
    .unwrap();
    let run = rulec(&["check", dir.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

#[test]
fn positions_inside_quoted_conditions_are_exact() {
    let dir = scratch("quoted");
    let file = dir.join("p.yaml");
    // the escaped quotes shift nothing: the typo is reported at its own column
    std::fs::write(&file, "gateway:\n  routing_strategy:\n    rules:\n      - if: \"task_type == \\\"sumarization\\\"\"\n        model: m\n").unwrap();
    let run = rulec(&["check", "--format", "json", file.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let d = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "E031")
        .expect("E031")
        .clone();
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(4), Some(27))
    );
    assert_eq!(d["end_column"].as_u64(), Some(43));
    assert_eq!(d["help"], "did you mean `summarization`?");
}
