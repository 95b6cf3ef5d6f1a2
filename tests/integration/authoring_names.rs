//! What a new policy author reads (issue 13, item 8): messages about a named routing
//! rule use its name, every missing-field error (E006) says what to write, and a tab in
//! the indentation is one diagnostic on the tab itself.

use crate::common::{rulec, scratch};
use serde_json::Value;

/// Writes `text` as `file` in a fresh scratch folder and returns its path.
fn write(dir: &str, file: &str, text: &str) -> String {
    let path = scratch(dir).join(file);
    std::fs::write(&path, text).expect("write policy");
    path.display().to_string()
}

/// The diagnostics of `rulec check --format json`.
fn check_json(path: &str) -> Vec<Value> {
    let run = rulec(&["check", "--format", "json", path]);
    let v: Value = serde_json::from_str(&run.stdout).expect("valid JSON report");
    v["diagnostics"].as_array().cloned().unwrap_or_default()
}

fn text(d: &Value, key: &str) -> String {
    d[key].as_str().unwrap_or_default().to_string()
}

const HEAD: &str = r#"providers:
  anthropic:
    kind: anthropic
    base_url: "https://api.anthropic.com"
    api_key_env: ANTHROPIC_API_KEY
gateway:
  models:
    claude_sonnet:
      provider: anthropic
      model: "claude-sonnet-4"
      max_tokens: 64000
      cost_per_token: 0.000003
    claude_haiku:
      provider: anthropic
      model: "claude-haiku-4"
      max_tokens: 64000
      cost_per_token: 0.000001
"#;

#[test]
fn decoding_errors_about_a_named_rule_use_its_name() {
    let policy = format!(
        r#"{HEAD}  routing_strategy:
    rules:
      - name: long_context
        if: "estimated_tokens > 1000"
      - name: split
        if: "estimated_tokens > 100"
        model: claude_sonnet
        pool: claude_haiku
      - if: "estimated_tokens > 10"
        model: claude_sonnet
        colour: red
      - name: unconditional
        model: claude_sonnet
      - fallback: claude_haiku
"#
    );
    let path = write("names-decode", "policy.yaml", &policy);
    let messages: Vec<String> = check_json(&path)
        .iter()
        .map(|d| text(d, "message"))
        .collect();
    let want = [
        "routing rule `long_context` has no target",
        "routing rule `split` has both `model` and `pool`",
        // a rule without a name keeps its position
        "unknown key `colour` in routing rule #3",
        "routing rule `unconditional` has no `if` condition",
    ];
    for w in want {
        assert!(messages.iter().any(|m| m == w), "no `{w}` in {messages:?}");
    }
    assert!(
        !messages
            .iter()
            .any(|m| m.contains("#1") || m.contains("#2")),
        "a named rule is called by its number: {messages:?}"
    );
}

#[test]
fn lints_and_tools_call_a_named_rule_by_its_name() {
    let policy = format!(
        r#"{HEAD}  routing_strategy:
    rules:
      - name: long_context
        if: "estimated_tokens > 1000"
        model: claude_sonnet
      - name: longer_context
        if: "estimated_tokens > 5000"
        model: claude_haiku
      - fallback: claude_haiku
"#
    );
    let path = write("names-lint", "policy.yaml", &policy);
    let diags = check_json(&path);
    let shadowed = diags
        .iter()
        .find(|d| text(d, "message").contains("can never fire"))
        .unwrap_or_else(|| panic!("no shadowed-rule warning in {diags:?}"));
    assert_eq!(
        text(shadowed, "message"),
        "rule `longer_context` can never fire"
    );
    let run = rulec(&[
        "explain",
        "--request",
        r#"{"estimated_tokens": 9000}"#,
        &path,
    ]);
    assert!(
        run.stdout.contains("by rule `long_context`"),
        "{}{}",
        run.stdout,
        run.stderr
    );
}

/// Every E006 of a JSON report, with its help; the report must have at least one.
fn missing_key_helps(path: &str) -> Vec<(String, String)> {
    let found: Vec<(String, String)> = check_json(path)
        .iter()
        .filter(|d| d["code"] == "E006")
        .map(|d| (text(d, "message"), text(d, "help")))
        .collect();
    found
}

#[test]
fn every_missing_field_has_a_help_line_saying_what_to_write() {
    // one policy per section, each leaving out that section's required fields; the
    // keys are what the help must show how to write
    let cases: [(&str, &str, &[&str]); 11] = [
        ("providers", "providers:\n  bare: {}\n", &["`kind: ", "`base_url: "]),
        (
            "request",
            "request:\n  tier: {}\n  level: {type: enum}\n",
            &["`type: ", "`values: "],
        ),
        (
            "models",
            "gateway:\n  models:\n    empty: {}\n",
            &["`provider: ", "`model: ", "`max_tokens: ", "`cost_per_token: "],
        ),
        (
            "routing",
            "gateway:\n  routing_strategy: {policy: first_match}\n",
            &["`rules: "],
        ),
        (
            "rule",
            "gateway:\n  routing_strategy:\n    rules:\n      - {name: x, model: m}\n",
            &["`if: "],
        ),
        (
            "switching",
            "cost_aware:\n  enabled: true\n  dynamic_switching:\n    rules:\n      - {}\n      - {metric: cost_per_task, threshold: $0.10, action: downgrade_model}\n      - {metric: cost_per_task, threshold: $0.10, action: fallback_fast}\n",
            &[
                "`window_minutes: ",
                "`check_interval: ",
                "`metric: ",
                "`threshold: ",
                "`action: ",
                "`downgrade_to: ",
                "`fallback_to: ",
            ],
        ),
        (
            "balancing",
            "load_balancing:\n  health_check: {}\n  session_affinity: {enabled: true}\n  pools:\n    p: {}\n",
            &[
                "`interval: ",
                "`timeout: ",
                "`unhealthy_threshold: ",
                "`ttl: ",
                "`models: ",
                "`max_concurrent: ",
            ],
        ),
        (
            "failover",
            "failover:\n  fallbacks:\n    - {}\n  scheduled_failover: {}\n  recovery: {}\n",
            &[
                "`primary: ",
                "`provider: ",
                "`timeout_ms: ",
                "`test_interval: ",
                "`max_retries: ",
            ],
        ),
        (
            "channels",
            "channels:\n  bare: {}\n  slack: {provider: slack_webhook}\n",
            &["`provider: ", "`endpoint_env: "],
        ),
        (
            "notifications",
            "routing_rules:\n  - {}\n",
            &["`type: ", "`channels: "],
        ),
        ("templates", "templates:\n  t: {}\n", &["`text: "]),
    ];
    for (section, yaml, keys) in cases {
        let path = write(&format!("e006-{section}"), "policy.yaml", yaml);
        let found = missing_key_helps(&path);
        assert!(!found.is_empty(), "`{section}`: no E006");
        for (message, help) in &found {
            assert!(!help.is_empty(), "`{section}`: `{message}` has no help");
        }
        for key in keys {
            assert!(
                found.iter().any(|(_, h)| h.contains(key)),
                "`{section}`: no help shows {key}…`: {found:?}"
            );
        }
    }
}

#[test]
fn fallback_weights_missing_on_some_say_what_to_write() {
    let policy = format!(
        r#"{HEAD}  routing_strategy:
    rules:
      - fallback: claude_haiku
failover:
  primary: anthropic
  fallbacks:
    - {{provider: backup, weight: 80, timeout_ms: 5000}}
    - {{provider: spare, timeout_ms: 5000}}
"#
    )
    .replace(
        "providers:\n",
        "providers:\n  backup: {kind: openai_compatible, base_url: \"https://backup.example/v1\"}\n  spare: {kind: openai_compatible, base_url: \"https://spare.example/v1\"}\n",
    );
    let path = write("e006-weights", "policy.yaml", &policy);
    let found = missing_key_helps(&path);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "the fallback `spare` has no `weight`");
    assert!(found[0].1.contains("`weight`"), "{found:?}");
}

#[test]
fn missing_fields_in_a_test_file_have_help_lines() {
    let dir = scratch("e006-tests");
    let policy = dir.join("policy.yaml");
    let tests = dir.join("policy.test.yaml");
    std::fs::write(
        &policy,
        format!("{HEAD}  routing_strategy:\n    rules:\n      - fallback: claude_haiku\n"),
    )
    .expect("write policy");
    std::fs::write(
        &tests,
        "tests:\n  - name: no request\n    expect: {model: claude_haiku}\n  - name: no expectation\n    request: {estimated_tokens: 10}\n  - name: empty\n    request: {estimated_tokens: 10}\n    expect: {}\n",
    )
    .expect("write tests");
    let run = rulec(&["test", &dir.display().to_string()]);
    let out = format!("{}{}", run.stdout, run.stderr);
    let blocks: Vec<&str> = out
        .split("\n\n")
        .filter(|b| b.contains("error[E006]"))
        .collect();
    assert_eq!(blocks.len(), 3, "{out}");
    for b in &blocks {
        assert!(b.contains("= help: "), "no help in:\n{b}");
    }
    assert!(out.contains("add `request: {"), "{out}");
    assert!(out.contains("add `expect: {"), "{out}");
}

#[test]
fn a_tab_in_the_indentation_is_one_diagnostic_on_the_tab() {
    // the parser notices these tabs only at the end of the line before
    let cases = [
        (
            "after-scalar",
            "gateway:\n  models:\n    a:\n      provider: x\n\t    model: y\n",
            5,
        ),
        ("in-list", "gateway:\n  models:\n    - a\n\t- b\n", 4),
        ("after-key", "gateway:\n\tversion: v2\n", 2),
    ];
    for (name, yaml, line) in cases {
        let path = write(&format!("tab-{name}"), "policy.yaml", yaml);
        let diags = check_json(&path);
        assert_eq!(diags.len(), 1, "`{name}`: {diags:?}");
        let d = &diags[0];
        assert_eq!(d["code"], "E002", "`{name}`");
        assert_eq!(
            (d["line"].as_u64(), d["column"].as_u64()),
            (Some(line), Some(1))
        );
        assert_eq!(
            d["labels"].as_array().map(Vec::len),
            Some(0),
            "`{name}`: {d}"
        );
        assert!(!text(d, "help").is_empty(), "`{name}`");
    }
    // a tab after the indentation is not called an indentation tab
    let path = write("tab-inline", "policy.yaml", "gateway:\n  version:\tv2\n");
    let diags = check_json(&path);
    assert!(
        diags
            .iter()
            .all(|d| !text(d, "message").contains("indentation")),
        "{diags:?}"
    );
}
