//! `/metrics` as Prometheus itself reads it: after traffic that fills every family
//! (decisions, rejections, reports, pool admissions, health checks, failover and
//! cost-window transitions, notifications), `promtool check metrics` finds nothing to
//! say about the exposition.
//!
//! promtool comes from Debian's `prometheus` package, which `.ci/run` installs; where it
//! is missing the test fails under `CI` and is skipped, loudly, elsewhere.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{root, scratch};
use crate::http::{eventually, get, post_json, FakeProvider, Served};

const PATIENCE: Duration = Duration::from_secs(20);

/// `promtool check metrics` on `text`: (exit code, stdout and stderr), or `None` when
/// there is no promtool to run.
fn promtool_check(text: &str) -> Option<(i32, String)> {
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("promtool did not start: {e}"),
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(text.as_bytes())
        .expect("promtool reads the exposition");
    let out = child.wait_with_output().expect("promtool runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.code().unwrap_or(-1), said))
}

fn route(port: u16, body: Value) -> Value {
    let r = post_json(port, "/v1/route", &body);
    assert_eq!(r.status, 200, "route {body}: {}", r.text());
    r.json()
}

fn report(port: u16, body: Value) {
    let r = post_json(port, "/v1/report", &body);
    assert_eq!(r.status, 200, "report {body}: {}", r.text());
}

#[test]
fn promtool_finds_nothing_wrong_with_metrics_after_traffic() {
    // the live-test policy, its three providers faked on loopback
    let (alpha, beta, gamma) = (
        FakeProvider::start(),
        FakeProvider::start(),
        FakeProvider::start(),
    );
    let text = std::fs::read_to_string(root().join("tests/fixtures/serve/live.yaml"))
        .expect("the live-test policy");
    let text = text
        .replace("@ALPHA@", &alpha.port.to_string())
        .replace("@BETA@", &beta.port.to_string())
        .replace("@GAMMA@", &gamma.port.to_string());
    let policy = scratch("metrics-promtool").join("live.yaml");
    std::fs::write(&policy, text).expect("write the policy");
    let s = Served::start(&[policy.to_str().expect("a UTF-8 path")], &[]);
    let port = s.port;

    for (i, tier) in ["pro", "free", "free", "pro", "free"].iter().enumerate() {
        let d = route(port, json!({"tier": tier, "session_id": format!("s-{i}")}));
        report(
            port,
            json!({"decision_id": d["decision_id"], "outcome": "success",
                   "latency_ms": 120 * (i + 1), "tokens": 800, "cost": 0.002}),
        );
    }
    let held = route(port, json!({"tier": "free"}));
    report(
        port,
        json!({"decision_id": held["decision_id"], "outcome": "error", "error": "server_error"}),
    );
    let refused = post_json(port, "/v1/route", &json!({"tier": "gold"}));
    assert_eq!(refused.status, 400, "{}", refused.text());
    // expensive tasks switch the cost window; a failing primary fails over
    for _ in 0..5 {
        report(
            port,
            json!({"model": "big", "outcome": "success", "cost": 0.5, "latency_ms": 900}),
        );
    }
    alpha.set_status(500);

    let filled = [
        "rulec_decisions_total{",
        "rulec_route_rejections_total{",
        "rulec_call_latency_seconds_bucket{",
        "rulec_reports_total{",
        "rulec_tokens_total{",
        "rulec_cost_dollars_total{",
        "rulec_pool_admissions_total{",
        "rulec_probes_total{",
        r#"rulec_transitions_total{machine="failover""#,
        r#"rulec_notifications_total{event="model_switched"}"#,
        r#"rulec_cost_window_switched{machine="cost_window.0.cost_per_task"} 1"#,
    ];
    let mut body = String::new();
    let settled = eventually(PATIENCE, || {
        body = get(port, "/metrics").text();
        filled.iter().all(|f| body.contains(f))
    });
    let missing: Vec<_> = filled.iter().filter(|f| !body.contains(*f)).collect();
    assert!(settled, "never saw {missing:?} in:\n{body}");

    let r = get(port, "/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8"),
        "the Prometheus text format, which promtool parses"
    );
    let body = r.text();
    for family in ["rulec_decisions_total", "rulec_cost_window_value"] {
        assert!(
            body.contains(&format!("# HELP {family} ")),
            "no HELP for {family}:\n{body}"
        );
    }

    match promtool_check(&body) {
        Some((code, said)) => assert!(
            code == 0 && said.is_empty(),
            "promtool check metrics exited {code} and said:\n{said}\non:\n{body}"
        ),
        None if std::env::var_os("CI").is_some() => {
            panic!("promtool is not installed (.ci/run installs Debian's `prometheus` package)")
        }
        None => eprintln!(
            "\n*** SKIPPED promtool_finds_nothing_wrong_with_metrics_after_traffic: \
             promtool is not installed (apt-get install prometheus) ***\n"
        ),
    }
}
