//! The policy fields the proxy reads — a provider's `timeout` and `first_byte_timeout`,
//! a model's `input_cost_per_token` and `output_cost_per_token`, the budget day's
//! `time_zone` — checked, compiled into the bundle and compared by `rulec diff` like
//! every other field. Each mistake has a policy under `tests/fixtures/fields/` whose
//! rendered check is snapshotted beside it.

use serde_json::Value;

use crate::common::{codes, root, rulec, scratch};

/// Declares one `#[test]` per fixture of `tests/fixtures/fields/`, each with the codes
/// its check must report.
macro_rules! field_fixtures {
    ($($name:ident => [$($code:literal),*];)*) => {
        $(
            #[test]
            fn $name() {
                fixture_reports(stringify!($name), &[$($code),*]);
            }
        )*
    };
}

field_fixtures! {
    valid => [];
    timeout_zero => ["E061"];
    timeout_without_unit => ["E009"];
    first_byte_after_timeout => ["E062"];
    price_negative => ["E061"];
    price_not_a_number => ["E007"];
    price_per_million => ["W066"];
    time_zone_typo => ["E009"];
    time_zone_unknown => ["E009"];
}

/// `rulec check` of the fixture reports exactly `expected`, and its human output
/// matches the snapshot `tests/fixtures/fields/<name>.snap`.
fn fixture_reports(name: &str, expected: &[&str]) {
    let path = format!("tests/fixtures/fields/{name}.yaml");
    let run = rulec(&["check", "--format", "json", &path]);
    assert_eq!(codes(&run.stdout), expected, "{path}\n{}", run.stderr);
    let failing = expected.iter().any(|c| c.starts_with('E'));
    assert_eq!(run.code, i32::from(failing), "{path}: exit code");

    let run = rulec(&["check", "--color", "never", &path]);
    insta::with_settings!({
        snapshot_path => root().join("tests/fixtures/fields"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("rulec check {path}"),
    }, {
        insta::assert_snapshot!(name, run.stdout);
    });
}

/// The bundle `rulec compile` writes for `policy`, as JSON.
fn compiled(policy: &str, tag: &str) -> Value {
    let out = scratch(&format!("fields-{tag}")).join("bundle.json");
    let out_arg = out.to_string_lossy().into_owned();
    let run = rulec(&["compile", policy, "-o", &out_arg]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let text = std::fs::read_to_string(&out).expect("the bundle is written");
    serde_json::from_str(&text).expect("the bundle is JSON")
}

#[test]
fn the_bundle_carries_the_fields_in_their_units() {
    let b = compiled("tests/fixtures/fields/valid.yaml", "valid");
    let c = &b["content"];
    let provider = &c["providers"][0];
    assert_eq!(provider["timeout_ms"], 120_000, "{provider}");
    assert_eq!(provider["first_byte_timeout_ms"], 500, "{provider}");
    let model = &c["models"][0];
    assert_eq!(model["cost_per_token"], 0.000003, "{model}");
    assert_eq!(model["input_cost_per_token"], 0.000003, "{model}");
    assert_eq!(model["output_cost_per_token"], 0.000015, "{model}");
    assert_eq!(
        c["budgets"]["time_zone"], "Europe/Berlin",
        "{}",
        c["budgets"]
    );
}

/// A policy that sets none of them compiles to the bytes it did before they existed:
/// the keys are left out, not written as `null`.
#[test]
fn a_bundle_without_the_fields_does_not_mention_them() {
    let b = compiled("rules/examples/gateway", "example");
    let c = &b["content"];
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let absent = ["timeout_ms", "first_byte_timeout_ms"];
    for p in c["providers"].as_array().expect("providers") {
        assert!(
            absent.iter().all(|k| !keys(p).contains(&k.to_string())),
            "{p}"
        );
    }
    let absent = ["input_cost_per_token", "output_cost_per_token"];
    for m in c["models"].as_array().expect("models") {
        assert!(
            absent.iter().all(|k| !keys(m).contains(&k.to_string())),
            "{m}"
        );
    }
    assert!(!keys(&c["budgets"]).contains(&"time_zone".to_string()));
}

/// Zone names match without regard to case; the bundle holds the database's spelling.
#[test]
fn a_time_zone_is_spelt_as_the_database_spells_it() {
    let dir = scratch("fields-zone-case");
    let text = std::fs::read_to_string(root().join("tests/fixtures/fields/valid.yaml"))
        .expect("the fixture")
        .replace("Europe/Berlin", "europe/BERLIN");
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, text).expect("write the policy");
    let b = compiled(&policy.to_string_lossy(), "zone-case-bundle");
    assert_eq!(b["content"]["budgets"]["time_zone"], "Europe/Berlin");
}

/// A bundle whose zone this machine's database lacks is refused on load, rather than
/// served with another day than its policy says.
#[test]
fn a_bundle_with_an_unknown_time_zone_is_refused() {
    let b = compiled("tests/fixtures/fields/valid.yaml", "unknown-zone");
    let mut bundle: rulec::bundle::Bundle = serde_json::from_value(b).expect("a bundle's shape");
    if let Some(budgets) = bundle.content.budgets.as_mut() {
        budgets.time_zone = Some("Mars/Olympus_Mons".into());
    }
    bundle.hash = rulec::bundle::digest(&bundle.content);
    let err = rulec::bundle::Bundle::load(&bundle.to_bytes()).expect_err("refused");
    let message = err.to_string();
    assert!(message.contains("`Mars/Olympus_Mons`"), "{message}");
    assert!(message.contains("time zone database"), "{message}");
}

#[test]
fn diff_reports_changed_timeouts_prices_and_time_zone() {
    let old = root().join("tests/fixtures/fields/valid.yaml");
    let text = std::fs::read_to_string(&old).expect("the fixture");
    let edits = [
        ("timeout: 2m", "timeout: 90s"),
        (
            "output_cost_per_token: 0.000015",
            "output_cost_per_token: 0.00002",
        ),
        ("Europe/Berlin", "America/New_York"),
    ];
    let mut new_text = text.clone();
    for (from, to) in edits {
        assert!(new_text.contains(from), "`{from}` is not in the fixture");
        new_text = new_text.replace(from, to);
    }
    let dir = scratch("fields-diff");
    std::fs::write(dir.join("policy.yaml"), new_text).expect("write the new policy");
    let run = rulec(&["diff", &old.to_string_lossy(), &dir.to_string_lossy()]);
    for line in [
        "provider `anthropic` timeout: 2m -> 90s",
        "model `claude_sonnet` output_cost_per_token: 0.000015 -> 0.00002",
        "budget time_zone: Europe/Berlin -> America/New_York",
    ] {
        assert!(
            run.stdout.contains(line),
            "missing `{line}` in:\n{}",
            run.stdout
        );
    }
    assert!(
        !run.stdout.contains("first_byte_timeout"),
        "unchanged settings are not listed:\n{}",
        run.stdout
    );
}

/// A `time_zone` misplaced outside the constraints is answered with where it lives.
#[test]
fn a_misplaced_time_zone_says_where_it_lives() {
    let dir = scratch("fields-misplaced-zone");
    let text = std::fs::read_to_string(root().join("tests/fixtures/fields/valid.yaml"))
        .expect("the fixture")
        .replace(
            "  optimization:\n",
            "  time_zone: \"Europe/Berlin\"\n  optimization:\n",
        );
    std::fs::write(dir.join("policy.yaml"), text).expect("write the policy");
    let run = rulec(&["check", "--color", "never", &dir.to_string_lossy()]);
    assert!(
        run.stdout
            .contains("error[E005]: unknown key `time_zone` in `cost_aware`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("under `cost_aware.optimization.constraints`"),
        "{}",
        run.stdout
    );
}
