//! What a new policy author hits (issue 13): misplaced sections, attribute suggestions,
//! test files, full lists in machine-readable output, and `diff` seeing every setting.

use crate::common::{codes, root, rulec, scratch};

/// Writes `text` as a one-file policy in a scratch folder and returns its path.
fn policy(name: &str, text: &str) -> String {
    let dir = scratch(name);
    let path = dir.join("policy.yaml");
    std::fs::write(&path, text).expect("write policy");
    path.display().to_string()
}

/// The help lines of a JSON report, by code.
fn helps(json: &str, code: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("valid JSON report");
    v["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter(|d| d["code"] == code)
        .map(|d| d["help"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn misplaced_top_level_sections_say_where_they_live() {
    let cases = [
        ("models", "`gateway.models`"),
        ("routing", "`gateway.routing_strategy`"),
        ("rules", "`gateway.routing_strategy.rules`"),
        ("budget", "`cost_aware.optimization.constraints`"),
        ("pools", "`load_balancing.pools`"),
    ];
    for (key, place) in cases {
        let path = policy(&format!("misplaced-{key}"), &format!("{key}: {{}}\n"));
        let run = rulec(&["check", "--format", "json", &path]);
        let h = helps(&run.stdout, "E005");
        assert_eq!(h.len(), 1, "`{key}`: {}", run.stdout);
        assert!(
            h[0].contains(place),
            "`{key}` should point at {place}: {}",
            h[0]
        );
        // never towards the notification routes, which mean something else
        assert!(!h[0].contains("routing_rules"), "`{key}`: {}", h[0]);
    }
}

#[test]
fn close_keys_of_the_same_meaning_are_still_suggested() {
    let path = policy(
        "misplaced-nested",
        "gateway:\n  routing: {}\nload_balancing:\n  pools:\n    p:\n      model: [a]\n      max_concurrent: 1\n",
    );
    let run = rulec(&["check", "--format", "json", &path]);
    let h = helps(&run.stdout, "E005");
    assert!(
        h.contains(&"did you mean `routing_strategy`?".to_string()),
        "{h:?}"
    );
    assert!(h.contains(&"did you mean `models`?".to_string()), "{h:?}");
}

#[test]
fn unknown_attributes_suggest_by_a_shared_word_in_check_and_explain() {
    let fixture =
        std::fs::read_to_string(root().join("tests/fixtures/codes/W052.yaml")).expect("fixture");
    let path = policy(
        "attr-check",
        &fixture.replace("estimated_tokens > 16000", "tokens > 16000"),
    );
    let run = rulec(&["check", "--format", "json", &path]);
    assert_eq!(
        helps(&run.stdout, "E021"),
        vec!["did you mean `estimated_tokens`?".to_string()]
    );
    let run = rulec(&[
        "explain",
        "tests/fixtures/codes/W052.yaml",
        "--request",
        r#"{"tokens": 5}"#,
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("did you mean `estimated_tokens`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn capability_lists_are_never_cut() {
    let run = rulec(&[
        "check",
        "--format",
        "json",
        "tests/fixtures/codes/W051.yaml",
    ]);
    assert!(codes(&run.stdout).contains(&"W051".to_string()));
    assert!(!run.stdout.contains(" more"), "{}", run.stdout);
    assert!(run.stdout.contains("`critical_analysis`"), "{}", run.stdout);
    let run = rulec(&[
        "check",
        "--color",
        "never",
        "tests/fixtures/codes/W051.yaml",
    ]);
    assert!(!run.stdout.contains("1 more"), "{}", run.stdout);
}

#[test]
fn check_on_a_test_file_says_it_is_one() {
    let run = rulec(&["check", "rules/examples/gateway/routing.test.yaml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is a test file"), "{}", run.stderr);
    assert!(run.stderr.contains("rulec test"), "{}", run.stderr);
    assert!(!run.stdout.contains("unknown key"), "{}", run.stdout);
}

#[test]
fn tests_key_in_a_policy_file_points_at_test_files() {
    let path = policy("tests-key", "tests: []\n");
    let run = rulec(&["check", "--format", "json", &path]);
    let h = helps(&run.stdout, "E005");
    assert!(h.len() == 1 && h[0].contains("rulec test"), "{h:?}");
}

#[test]
fn test_help_describes_the_file_format() {
    let run = rulec(&["test", "--help"]);
    for word in ["*.test.yaml", "tests:", "request:", "expect:", "none: true"] {
        assert!(
            run.stdout.contains(word),
            "`{word}` missing:\n{}",
            run.stdout
        );
    }
}

#[test]
fn a_test_file_of_the_wrong_shape_has_help() {
    let dir = scratch("test-shape");
    let t = dir.join("bad.test.yaml");
    std::fs::write(&t, "tests: 3\n").expect("write");
    let run = rulec(&[
        "test",
        "tests/fixtures/codes/W066.yaml",
        &t.display().to_string(),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("[E007]"), "{}", run.stdout);
    assert!(run.stdout.contains("= help:"), "{}", run.stdout);
}

#[test]
fn an_expected_model_that_does_not_exist_is_e020() {
    let dir = scratch("test-e020");
    let t = dir.join("names.test.yaml");
    std::fs::write(
        &t,
        "tests:\n  - request: {}\n    expect: {model: claude_sonet}\n",
    )
    .expect("write");
    let run = rulec(&[
        "test",
        "tests/fixtures/codes/W066.yaml",
        &t.display().to_string(),
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("[E020]"), "{}", run.stdout);
    assert!(
        run.stdout.contains("did you mean `claude_sonnet`?"),
        "{}",
        run.stdout
    );
}

/// `rulec diff` of the example policy against a copy with one edit in one file.
fn diff_after(name: &str, file: &str, from: &str, to: &str) -> crate::common::Run {
    let src = root().join("rules/examples/gateway");
    let dir = scratch(&format!("diff-{name}"));
    for entry in std::fs::read_dir(&src).expect("examples") {
        let path = entry.expect("entry").path();
        let mut text = std::fs::read_to_string(&path).expect("read");
        if path.file_name().and_then(|n| n.to_str()) == Some(file) {
            assert!(text.contains(from), "`{from}` is not in {file}");
            text = text.replacen(from, to, 1);
        }
        let target = dir.join(path.file_name().expect("name"));
        std::fs::write(target, text).expect("write");
    }
    rulec(&[
        "diff",
        &src.display().to_string(),
        &dir.display().to_string(),
    ])
}

#[test]
fn diff_of_equal_policies_is_empty() {
    let run = diff_after(
        "none",
        "load-balancer.yaml",
        "max_concurrent: 10",
        "max_concurrent: 10",
    );
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(!run.stdout.contains("setting"), "{}", run.stdout);
}

#[test]
fn diff_reports_every_kind_of_setting_change() {
    let cases = [
        ("pool-members", "load-balancer.yaml", r#"["claude_opus", "gpt_55"]"#, r#"["gpt_55", "claude_opus"]"#, "pool `high_performance` models"),
        ("pool-weights", "load-balancer.yaml", "weight: [60, 40]", "weight: [90, 10]", "pool `high_performance` weights: 60/40 -> 90/10"),
        ("pool-limit", "load-balancer.yaml", "max_concurrent: 10", "max_concurrent: 20", "pool `high_performance` max_concurrent: 10 -> 20"),
        ("health-check", "load-balancer.yaml", "interval: 10s", "interval: 20s", "pool `budget` health_check interval: 10s -> 20s"),
        ("budget", "cost-aware-routing.yaml", "max_daily_budget: 50.00", "max_daily_budget: 5.00", "max_daily_budget: $50 -> $5"),
        ("quality", "cost-aware-routing.yaml", "quality_threshold: 0.85", "quality_threshold: 0.9", "quality_threshold: 0.85 -> 0.9"),
        ("window-threshold", "cost-aware-routing.yaml", "threshold: $0.10", "threshold: $0.20", "switching rule on `cost_per_task` threshold: 0.1 -> 0.2"),
        ("window-action", "cost-aware-routing.yaml", "action: \"switch_provider\"", "action: \"downgrade_model\"\n        downgrade_to: \"next_cheaper\"", "switching rule on `error_rate` action: switch_provider -> downgrade_model, downgrade_to next_cheaper"),
        ("failover-weight", "failover-config.yaml", "weight: 70", "weight: 60", "failover fallback `openai` weight: 70 -> 60"),
        ("failover-timeout", "failover-config.yaml", "timeout_ms: 20000", "timeout_ms: 18000", "failover fallback `local` timeout: 20s -> 18s"),
        ("recovery", "failover-config.yaml", "max_retries: 12", "max_retries: 3", "recovery max_retries: 12 -> 3"),
        ("notification", "multi-channel-routing.yaml", "channels: [\"telegram\"]", "channels: [\"slack\"]", "notification route #2 (`failover_drill`) channels: [telegram] -> [slack]"),
    ];
    for (name, file, from, to, expected) in cases {
        let run = diff_after(name, file, from, to);
        assert_eq!(run.code, 1, "{name}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(expected),
            "{name}: expected `{expected}` in:\n{}",
            run.stdout
        );
    }
}
