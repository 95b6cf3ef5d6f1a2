//! Cost windows in-process: each switching action (`downgrade` to the next cheaper
//! model or to a named one, `switch_provider`, `fallback_fast`) takes effect when a
//! closed window's metric is above its threshold, and is undone when a later window
//! is back within it. Windows are closed by hand at chosen times.

use serde_json::{json, Value};

use crate::runtime_common::{
    close_window, gateway, kinds, provider, reason, report, route, windows,
};

/// One minute, the fixtures' window.
const WINDOW_MS: u64 = 60_000;

fn reports(g: &rulec::runtime::gateway::Gateway, body: &[Value], now: u64) {
    for (i, b) in body.iter().enumerate() {
        report(g, b.clone(), now + i as u64);
    }
}

fn state(g: &rulec::runtime::gateway::Gateway, machine: &str) -> String {
    windows(g)
        .get(machine)
        .cloned()
        .unwrap_or_else(|| panic!("no machine `{machine}`: {:?}", windows(g)))
}

fn plain(d: &Value, model: &str) {
    assert_eq!(d["model"], model, "{d}");
    assert!(kinds(d).is_empty(), "{d}");
}

#[test]
fn a_costly_window_downgrades_to_the_next_cheaper_model_until_a_window_is_cheap_again() {
    let g = gateway("windows");
    let machine = "cost_window.0.cost_per_task";
    let costly = json!({"model": "big", "outcome": "success", "cost": 0.5});
    reports(&g, &[costly.clone(), costly.clone(), costly], 1_000);
    plain(&route(&g, json!({"tier": "pro"}), 1_500), "big");
    close_window(&g, 2_000);
    assert_eq!(state(&g, machine), "switched");

    let d = route(&g, json!({"tier": "pro"}), 2_100);
    assert_eq!(d["model"], "medium", "{d}");
    assert_eq!(kinds(&d), ["downgrade"], "{d}");
    assert!(reason(&d, 0).contains(machine), "{d}");
    let d = route(&g, json!({"tier": "mid"}), 2_200);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("alt"), vec!["downgrade".to_string()]),
        "{d}"
    );

    // a window with nothing measured decides nothing: the switch stays
    close_window(&g, 2_000 + WINDOW_MS + 1_000);
    assert_eq!(state(&g, machine), "switched");
    // a cheap window restores
    let cheap = json!({"model": "medium", "outcome": "success", "cost": 0.01});
    reports(&g, &[cheap.clone(), cheap], 70_000);
    close_window(&g, 71_000);
    assert_eq!(state(&g, machine), "normal");
    plain(&route(&g, json!({"tier": "pro"}), 71_100), "big");
}

#[test]
fn an_erroring_window_switches_the_primary_s_traffic_to_the_failover_provider_and_back() {
    let g = gateway("windows");
    let machine = "cost_window.1.error_rate";
    // every other call fails: 50% errors, never three failures in a row
    let error = json!({"model": "big", "outcome": "error", "error": "server_error"});
    let ok = json!({"model": "big", "outcome": "success"});
    reports(&g, &[error.clone(), ok.clone(), error, ok.clone()], 1_000);
    assert_eq!(provider(&g, "main")["state"], "healthy");
    close_window(&g, 2_000);
    assert_eq!(state(&g, machine), "switched");
    assert_eq!(state(&g, "cost_window.0.cost_per_task"), "normal");

    let d = route(&g, json!({"tier": "pro"}), 2_100);
    assert_eq!(d["provider"], "backup", "{d}");
    // the stand-in closest to `big` on the fallback provider: highest quality
    assert_eq!(d["model"], "alt", "{d}");
    assert_eq!(kinds(&d), ["switch_provider"], "{d}");
    // a model that is not on the primary stays where it is
    plain(&route(&g, json!({"tier": "other"}), 2_200), "alt");

    reports(&g, &[ok.clone(), ok.clone(), ok], 70_000);
    close_window(&g, 71_000);
    assert_eq!(state(&g, machine), "normal");
    plain(&route(&g, json!({"tier": "pro"}), 71_100), "big");
}

#[test]
fn a_slow_window_falls_back_to_the_fast_model_and_back() {
    let g = gateway("windows");
    let machine = "cost_window.2.latency_p99";
    let slow = json!({"model": "big", "outcome": "success", "latency_ms": 9_000});
    reports(&g, &[slow.clone(), slow], 1_000);
    close_window(&g, 2_000);
    assert_eq!(state(&g, machine), "switched");
    let d = route(&g, json!({"tier": "pro"}), 2_100);
    assert_eq!(d["model"], "fast", "{d}");
    assert_eq!(kinds(&d), ["fallback_fast"], "{d}");
    assert!(reason(&d, 0).contains(machine), "{d}");

    let quick = json!({"model": "fast", "outcome": "success", "latency_ms": 300});
    reports(&g, &[quick.clone(), quick], 70_000);
    close_window(&g, 71_000);
    assert_eq!(state(&g, machine), "normal");
    plain(&route(&g, json!({"tier": "pro"}), 71_100), "big");
}

#[test]
fn a_downgrade_that_names_its_model_sends_every_request_there_and_back() {
    let g = gateway("windows_named");
    let costly = json!({"model": "big", "outcome": "success", "cost": 0.5});
    reports(&g, &[costly], 1_000);
    close_window(&g, 2_000);
    assert_eq!(state(&g, "cost_window.0.cost_per_task"), "switched");
    for tier in ["pro", "mid"] {
        let d = route(&g, json!({ "tier": tier }), 2_100);
        assert_eq!(d["model"], "small", "{d}");
        assert_eq!(kinds(&d), ["downgrade"], "{d}");
    }
    let cheap = json!({"model": "small", "outcome": "success", "cost": 0.001});
    reports(&g, &[cheap], 70_000);
    close_window(&g, 71_000);
    assert_eq!(state(&g, "cost_window.0.cost_per_task"), "normal");
    plain(&route(&g, json!({"tier": "pro"}), 71_100), "big");
    plain(&route(&g, json!({"tier": "mid"}), 71_200), "medium");
}
