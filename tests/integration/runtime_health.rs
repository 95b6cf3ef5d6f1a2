//! Provider health in-process: consecutive failures make a provider unhealthy and
//! fail the primary over; recovery is half-open, through the probes the gateway asks
//! for (active checks) or through the traffic it lets through (a provider that cannot
//! be checked actively); a recovered primary takes its traffic back; the drill.

use serde_json::{json, Value};

use rulec::runtime::gateway::Limits;

use crate::runtime_common::{
    bundle, bundle_edited, fail, failover, failover_event, gateway, gateway_with, health, kinds,
    next_probe_at, provider, provider_event, reason, report, route, tick, without_active_checks,
};

/// `health.yaml`'s recovery: linear backoff from 1 s, three probes.
const BACKOFF_MS: u64 = 1_000;

fn pro() -> Value {
    json!({"tier": "pro"})
}

fn failed_over_to_spare(d: &Value) {
    assert_eq!(d["model"], "spare", "{d}");
    assert_eq!(kinds(d), ["failover"], "{d}");
    assert!(
        reason(d, 0).contains("provider `main` is failed over"),
        "{d}"
    );
}

#[test]
fn consecutive_failures_fail_the_primary_over_and_probes_bring_it_back() {
    let g = gateway("health");
    assert_eq!(route(&g, pro(), 0)["model"], "big");
    // failures must be consecutive
    fail(&g, "main", 2, 100);
    assert_eq!(provider(&g, "main")["consecutive_failures"], 2);
    provider_event(&g, "main", "success", 200);
    assert_eq!(provider(&g, "main")["consecutive_failures"], 0);
    fail(&g, "main", 2, 300);
    assert_eq!(health(&g, "main"), "healthy");
    assert_eq!(route(&g, pro(), 310)["model"], "big");

    // the third in a row: unhealthy, failed over, a probe due one backoff later
    assert!(provider_event(&g, "main", "failure", 1_000).is_empty());
    let main = provider(&g, "main");
    assert_eq!(
        (main["state"].as_str(), main["healthy"].as_bool()),
        (Some("unhealthy"), Some(false)),
        "{main}"
    );
    assert_eq!(failover(&g), ("failed_over".to_string(), true));
    failed_over_to_spare(&route(&g, pro(), 1_010));
    assert_eq!(next_probe_at(&g, "main"), Some(1_000 + BACKOFF_MS));

    // the gateway asks for a probe when the timer is due, not before
    assert!(tick(&g, 1_000 + BACKOFF_MS - 1).is_empty());
    assert_eq!(tick(&g, 1_000 + BACKOFF_MS), ["main"]);
    assert_eq!(health(&g, "main"), "probing");
    // an actively checked provider takes no traffic while its probe is out
    assert_eq!(provider(&g, "main")["healthy"], false);
    failed_over_to_spare(&route(&g, pro(), 2_010));
    assert!(
        tick(&g, 2_020).is_empty(),
        "a second probe while one is out"
    );

    // a failed probe: unhealthy again, the next probe two backoffs later
    assert!(provider_event(&g, "main", "probe_failed", 2_100).is_empty());
    let main = provider(&g, "main");
    assert_eq!(
        (main["state"].as_str(), main["failed_probes"].as_u64()),
        (Some("unhealthy"), Some(1)),
        "{main}"
    );
    assert!(tick(&g, 2_100 + 2 * BACKOFF_MS - 1).is_empty());
    assert_eq!(tick(&g, 2_100 + 2 * BACKOFF_MS), ["main"]);

    // a good probe: healthy, and the primary takes its traffic back
    assert!(provider_event(&g, "main", "probe_ok", 4_200).is_empty());
    let main = provider(&g, "main");
    assert_eq!(
        (
            main["state"].as_str(),
            main["healthy"].as_bool(),
            main["failed_probes"].as_u64()
        ),
        (Some("healthy"), Some(true), Some(0)),
        "{main}"
    );
    assert_eq!(next_probe_at(&g, "main"), None);
    assert_eq!(failover(&g), ("primary".to_string(), false));
    let d = route(&g, pro(), 4_300);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("big"), vec![]),
        "{d}"
    );
}

#[test]
fn a_provider_whose_probes_keep_failing_is_given_up_until_an_operator_resets_it() {
    let g = gateway("health");
    fail(&g, "main", 3, 0);
    let mut now = 2;
    for probe in 1..=3u64 {
        now = next_probe_at(&g, "main").expect("a probe is scheduled");
        assert_eq!(tick(&g, now), ["main"], "probe {probe}");
        provider_event(&g, "main", "probe_failed", now);
    }
    assert_eq!(health(&g, "main"), "given_up");
    assert_eq!(next_probe_at(&g, "main"), None);
    assert!(
        tick(&g, now + 3_600_000).is_empty(),
        "a given-up provider was probed"
    );
    failed_over_to_spare(&route(&g, pro(), now + 1));

    provider_event(&g, "main", "reset", now + 2);
    assert_eq!(health(&g, "main"), "healthy");
    assert_eq!(failover(&g), ("primary".to_string(), false));
    assert_eq!(route(&g, pro(), now + 3)["model"], "big");
}

#[test]
fn a_live_drill_routes_to_the_fallbacks_for_its_length_and_an_outage_during_it_wins() {
    let g = gateway("health");
    failover_event(&g, "drill_start", 1_000);
    assert_eq!(failover(&g), ("drill".to_string(), true));
    failed_over_to_spare(&route(&g, pro(), 1_001));
    // the drill lasts five minutes (its interval, 6 h, is longer)
    let end = 1_000 + 5 * 60_000;
    tick(&g, end - 1);
    assert_eq!(failover(&g).0, "drill");
    tick(&g, end);
    assert_eq!(failover(&g), ("primary".to_string(), false));
    assert_eq!(route(&g, pro(), end + 1)["model"], "big");

    // a real outage during a drill fails over for good: the drill's end changes nothing
    failover_event(&g, "drill_start", 400_000);
    fail(&g, "main", 3, 400_010);
    assert_eq!(failover(&g), ("failed_over".to_string(), true));
    tick(&g, 400_000 + 5 * 60_000);
    assert_eq!(failover(&g).0, "failed_over");
    failed_over_to_spare(&route(&g, pro(), 700_001));
}

#[test]
fn a_dry_run_drill_changes_no_decision() {
    let b = bundle_edited(
        "health",
        "dry-run",
        &[("mode: \"live\"", "mode: \"dry_run\"")],
    );
    let g = gateway_with(b, Default::default());
    failover_event(&g, "drill_start", 1_000);
    assert_eq!(failover(&g), ("drill".to_string(), false));
    let d = route(&g, pro(), 1_001);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("big"), vec![]),
        "{d}"
    );
    failover_event(&g, "drill_end", 2_000);
    assert_eq!(failover(&g), ("primary".to_string(), false));
}

#[test]
fn a_provider_without_active_checks_recovers_half_open_through_its_traffic() {
    let g = gateway_with(
        without_active_checks(bundle("health"), "edge"),
        Limits::default(),
    );
    let edge = json!({"tier": "edge"});
    let error = json!({"model": "outer", "outcome": "error", "error": "server_error"});
    let ok = json!({"model": "outer", "outcome": "success", "latency_ms": 300});
    for i in 0..2 {
        let (accepted, _) = report(&g, error.clone(), 1_000 + i);
        assert_eq!(accepted["health"], "healthy", "{accepted}");
    }
    let (accepted, probes) = report(&g, error.clone(), 1_002);
    assert_eq!(
        (accepted["health"].as_str(), accepted["provider"].as_str()),
        (Some("unhealthy"), Some("edge")),
        "{accepted}"
    );
    assert!(probes.is_empty());
    // unhealthy: its request goes down the chain to the fallback rule's model
    let d = route(&g, edge.clone(), 1_010);
    assert_eq!(d["model"], "big", "{d}");
    assert_eq!(kinds(&d), ["unhealthy"], "{d}");
    assert!(
        reason(&d, 0).contains("provider `edge` is unhealthy"),
        "{d}"
    );

    // half-open when the timer is due: no probe to send, traffic is the probe
    let due = next_probe_at(&g, "edge").expect("a recovery timer");
    assert_eq!(due, 1_002 + BACKOFF_MS);
    assert!(
        tick(&g, due).is_empty(),
        "a provider without active checks was to be probed"
    );
    let p = provider(&g, "edge");
    assert_eq!(
        (p["state"].as_str(), p["healthy"].as_bool()),
        (Some("probing"), Some(true)),
        "{p}"
    );
    let d = route(&g, edge.clone(), due + 1);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("outer"), vec![]),
        "{d}"
    );

    // one reported error while half-open is a failed probe
    let (accepted, _) = report(&g, error, due + 2);
    assert_eq!(accepted["health"], "unhealthy", "{accepted}");
    assert_eq!(provider(&g, "edge")["failed_probes"], 1);
    assert_eq!(kinds(&route(&g, edge.clone(), due + 3)), ["unhealthy"]);
    let due = next_probe_at(&g, "edge").expect("a second recovery timer");
    assert_eq!(due, 1_002 + BACKOFF_MS + 2 + 2 * BACKOFF_MS);
    assert!(tick(&g, due).is_empty());
    assert_eq!(health(&g, "edge"), "probing");

    // one reported success while half-open brings it back
    let (accepted, _) = report(&g, ok, due + 1);
    assert_eq!(accepted["health"], "healthy", "{accepted}");
    let p = provider(&g, "edge");
    assert_eq!(
        (p["healthy"].as_bool(), p["failed_probes"].as_u64()),
        (Some(true), Some(0)),
        "{p}"
    );
    let d = route(&g, edge, due + 2);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("outer"), vec![]),
        "{d}"
    );
}

#[test]
fn reported_errors_that_are_the_caller_s_fault_do_not_count_against_a_provider() {
    let g = gateway("health");
    for i in 0..5 {
        let (accepted, _) = report(
            &g,
            json!({"model": "outer", "outcome": "error", "error": "invalid_request"}),
            i,
        );
        assert_eq!(accepted["health"], "healthy", "{accepted}");
    }
    assert_eq!(provider(&g, "edge")["consecutive_failures"], 0);
}
