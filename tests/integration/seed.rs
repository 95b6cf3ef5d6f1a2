//! The published seed policies: every genuine defect is reported at its exact place,
//! and the corrected example checks clean.

use crate::common::{codes, rulec};

#[test]
fn seed_human_output() {
    let run = rulec(&["check", "--color", "never", "rules/seed"]);
    assert_eq!(run.code, 1, "the seed has errors");
    insta::assert_snapshot!("seed_human", run.stdout);
}

#[test]
fn seed_json_output() {
    let run = rulec(&["check", "--format", "json", "rules/seed"]);
    assert_eq!(run.code, 1);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    insta::assert_json_snapshot!("seed_json", value);
}

/// The defects the seed is known to contain, by code, file and line.
#[test]
fn seed_defects_are_all_found_in_place() {
    let run = rulec(&["check", "--format", "json", "rules/seed"]);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let found: Vec<(String, String, u64)> = v["diagnostics"]
        .as_array()
        .expect("list")
        .iter()
        .map(|d| {
            let file = d["file"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string();
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                file,
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    let expect = [
        ("E020", "load-balancer.yaml", 6),          // gpt_55 undeclared
        ("E020", "load-balancer.yaml", 14),         // gemini_pro undeclared
        ("E020", "load-balancer.yaml", 18),         // local_llama undeclared
        ("E060", "load-balancer.yaml", 15),         // 3 weights, 2 models
        ("W065", "load-balancer.yaml", 13),         // standard: no health check
        ("W065", "load-balancer.yaml", 17),         // budget: no health check
        ("E020", "multi-channel-routing.yaml", 28), // template community_post missing
        ("E006", "multi-channel-routing.yaml", 3),  // slack: no endpoint
        ("E006", "multi-channel-routing.yaml", 7),  // telegram: no endpoint, chat, token
        ("E006", "multi-channel-routing.yaml", 11), // email: no endpoint, from, to
        ("E006", "multi-channel-routing.yaml", 15), // discord: no endpoint
        ("W080", "multi-channel-routing.yaml", 26), // community_update: no producer
        ("E020", "gateway-multi-model-routing.yaml", 6), // provider anthropic undeclared
        ("E020", "gateway-multi-model-routing.yaml", 20), // provider openclaw undeclared
        ("E020", "failover-config.yaml", 3),        // primary anthropic undeclared
        ("E020", "failover-config.yaml", 5),        // openai
        ("E020", "failover-config.yaml", 8),        // google
        ("E020", "failover-config.yaml", 11),       // local
        ("W060", "failover-config.yaml", 4),        // weights 80+20+10 = 110
        ("W062", "failover-config.yaml", 13),       // local may take 60 s, latency rule at 10 s
        ("W081", "failover-config.yaml", 18),       // drill notifies nobody
        ("W061", "cost-aware-routing.yaml", 7),     // session budget buys 33 opus tokens
        ("W061", "cost-aware-routing.yaml", 16),    // cost-per-task threshold buys 6
        ("W063", "cost-aware-routing.yaml", 23),    // latency threshold without unit
        ("E006", "cost-aware-routing.yaml", 24),    // fallback_fast without a target
        ("W064", "cost-aware-routing.yaml", 9),     // quality floor with no scores
    ];
    for (code, file, line) in expect {
        assert!(
            found
                .iter()
                .any(|(c, f, l)| c == code && f == file && *l == line),
            "missing {code} at {file}:{line}; found {found:?}"
        );
    }
}

#[test]
fn corrected_example_checks_clean_with_deny_warnings() {
    let run = rulec(&[
        "check",
        "--deny",
        "warnings",
        "--format",
        "json",
        "rules/examples/gateway",
    ]);
    assert_eq!(codes(&run.stdout), Vec::<String>::new(), "{}", run.stdout);
    assert_eq!(run.code, 0);
}
