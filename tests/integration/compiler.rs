//! The compiler through the command line: bundles (deterministic, verified, tamper-
//! and truncation-proof), `explain`, `test`, `diff` and `bench`.

use crate::common::{root, rulec, scratch};

fn compile_example(dir: &std::path::Path) -> Vec<u8> {
    let out = dir.join("bundle.json");
    let run = rulec(&[
        "compile",
        "rules/examples/gateway",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::read(out).unwrap()
}

#[test]
fn bundles_are_deterministic_and_snapshotted() {
    let dir = scratch("bundle_det");
    let a = compile_example(&dir);
    let b = compile_example(&dir);
    assert_eq!(a, b, "two compilations differ");
    let text = String::from_utf8(a).unwrap();
    assert!(!text.contains("sk-"), "no secrets");
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!("example_bundle", value);
}

#[test]
fn loading_verifies_hash_format_and_shape() {
    let dir = scratch("bundle_verify");
    let bytes = compile_example(&dir);
    let bundle = rulec::bundle::Bundle::load(&bytes).expect("a fresh bundle loads");
    assert_eq!(bundle.content.table.rules.len(), 11);

    // a changed target: the hash no longer matches
    let text = String::from_utf8(bytes.clone()).unwrap();
    let tampered = text.replacen("\"claude_opus\"", "\"gpt_55\"", 1);
    assert_ne!(tampered, text);
    let err = rulec::bundle::Bundle::load(tampered.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("does not match its hash"), "{err}");

    // cut short
    let err = rulec::bundle::Bundle::load(&bytes[..bytes.len() / 2]).unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");

    // another format version
    let other = text.replacen("rulec-bundle/1", "rulec-bundle/9", 1);
    let err = rulec::bundle::Bundle::load(other.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("`rulec-bundle/9`"), "{err}");

    // an unknown field is not silently dropped
    let extra = text.replacen("\"content\":{", "\"content\":{\"extra\":1,", 1);
    assert_ne!(extra, text);
    assert!(rulec::bundle::Bundle::load(extra.as_bytes()).is_err());
}

#[test]
fn compile_refuses_a_policy_with_errors() {
    let dir = scratch("compile_refuse");
    let out = dir.join("b.json");
    let run = rulec(&["compile", "rules/seed", "-o", out.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error[E020]"), "{}", run.stderr);
    assert!(!out.exists());
}

#[test]
fn explain_shows_the_rule_and_the_misses() {
    let run = rulec(&[
        "explain",
        "rules/examples/gateway",
        "--request",
        r#"{"task_type": "summarization", "task_complexity": "simple", "estimated_tokens": 1200}"#,
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("explain_summary", run.stdout);

    let json = rulec(&[
        "explain",
        "rules/examples/gateway",
        "--format",
        "json",
        "--request",
        r#"{"tenant": "x"}"#,
    ]);
    assert_eq!(json.code, 2);
    assert!(
        json.stderr.contains("unknown request attribute `tenant`"),
        "{}",
        json.stderr
    );
    let bad = rulec(&[
        "explain",
        "rules/examples/gateway",
        "--request",
        r#"{"task_type": "sumarization"}"#,
    ]);
    assert!(
        bad.stderr.contains("did you mean `summarization`?"),
        "{}",
        bad.stderr
    );
}

#[test]
fn the_example_tests_pass_and_cover_every_rule() {
    let run = rulec(&["test", "rules/examples/gateway"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("rule coverage: 11 of 11 rules hit"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.trim_end().ends_with("13 passed, 0 failed"),
        "{}",
        run.stdout
    );
}

#[test]
fn a_failing_test_shows_a_diff() {
    let dir = scratch("failing_test");
    for entry in std::fs::read_dir(root().join("rules/examples/gateway")).unwrap() {
        let p = entry.unwrap().path();
        if !rulec::load::is_test_file(&p) {
            std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.join("wrong.test.yaml"),
        "tests:\n  - name: summaries to opus\n    request: {task_type: summarization}\n    expect: {model: claude_opus}\n",
    )
    .unwrap();
    let run = rulec(&["test", dir.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("FAIL summaries to opus"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("expected: model `claude_opus`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("actual:   pool `standard`, priority balanced, by rule `summaries`"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("0 passed, 1 failed"));
    assert!(
        run.stdout.contains("not hit: `huge_context`"),
        "{}",
        run.stdout
    );
}

#[test]
fn diff_reports_changed_decisions() {
    let dir = scratch("diff_new");
    for entry in std::fs::read_dir(root().join("rules/examples/gateway")).unwrap() {
        let p = entry.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        // summaries move from the standard pool to sonnet; long context starts at 60000
        let text = text
            .replace(
                "pool: \"standard\"\n        priority: \"balanced\"",
                "model: \"claude_sonnet\"\n        priority: \"balanced\"",
            )
            .replace("estimated_tokens > 64000", "estimated_tokens > 60000");
        std::fs::write(dir.join(p.file_name().unwrap()), text).unwrap();
    }
    let same = rulec(&["diff", "rules/examples/gateway", "rules/examples/gateway"]);
    assert_eq!(same.code, 0);
    assert!(same.stdout.contains("no decision changes"));
    let run = rulec(&["diff", "rules/examples/gateway", dir.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let out = run.stdout.replace(dir.to_str().unwrap(), "NEW");
    insta::assert_snapshot!("diff_example", out);
}

#[test]
fn bench_prints_machine_readable_lines() {
    let run = rulec(&[
        "bench",
        "rules/examples/gateway",
        "--requests",
        "200",
        "--millis",
        "20",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for key in ["table:", "interpreter:", "speedup:", "agreement: 200/200"] {
        assert!(
            run.stdout.lines().any(|l| l.starts_with(key)),
            "missing `{key}` in {}",
            run.stdout
        );
    }
    let ns: f64 = run
        .stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("table: ")?
                .strip_suffix(" ns/decision")?
                .parse()
                .ok()
        })
        .expect("table: N ns/decision");
    assert!(ns > 0.0);
}
