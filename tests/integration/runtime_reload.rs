//! Reload carry-over in-process: a gateway built over the previous one keeps each
//! piece of live state (provider health and timers, pool slots and pins, cost-window
//! switches, the failover machine) where the new bundle still has the same thing, and
//! starts it afresh where it does not.

use serde_json::json;

use rulec::runtime::gateway::Limits;

use crate::runtime_common::{
    bundle, bundle_edited, close_window, fail, failover, gateway, gateway_with, health, kinds,
    next_probe_at, pool, provider, reload, report, route, tick, windows, without_active_checks,
};

#[test]
fn health_timers_and_failover_carry_over_a_reload_of_the_same_policy() {
    let old = gateway("health");
    fail(&old, "main", 3, 0);
    let due = next_probe_at(&old, "main").expect("a recovery timer");
    let g = reload(&old, bundle("health"));
    assert_eq!(provider(&g, "main"), provider(&old, "main"));
    assert_eq!(health(&g, "main"), "unhealthy");
    assert_eq!(failover(&g), ("failed_over".to_string(), true));
    let d = route(&g, json!({"tier": "pro"}), 10);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("spare"), vec!["failover".to_string()]),
        "{d}"
    );
    // the recovery carries on in the new gateway
    assert_eq!(tick(&g, due), ["main"]);
    g.provider_event(
        g.provider_ix("main").expect("main"),
        rulec::machines::EventKind::ProbeOk,
        due + 1,
        "scenario",
    );
    assert_eq!(failover(&g), ("primary".to_string(), false));
    assert_eq!(route(&g, json!({"tier": "pro"}), due + 2)["model"], "big");
}

#[test]
fn a_new_primary_starts_the_failover_machine_afresh_but_keeps_provider_health() {
    let old = gateway("health");
    fail(&old, "main", 3, 0);
    assert_eq!(failover(&old).0, "failed_over");
    let swapped = bundle_edited(
        "health",
        "new-primary",
        &[
            ("primary: main", "primary: backup"),
            ("    - provider: backup", "    - provider: main"),
        ],
    );
    let g = reload(&old, swapped);
    assert_eq!(failover(&g), ("primary".to_string(), false));
    assert_eq!(health(&g, "main"), "unhealthy");
}

#[test]
fn a_half_open_provider_that_can_now_be_checked_actively_is_probed_at_once() {
    let old = gateway_with(
        without_active_checks(bundle("health"), "edge"),
        Limits::default(),
    );
    for i in 0..3 {
        report(
            &old,
            json!({"model": "outer", "outcome": "error", "error": "timeout"}),
            i,
        );
    }
    let due = next_probe_at(&old, "edge").expect("a recovery timer");
    assert!(tick(&old, due).is_empty());
    assert_eq!(health(&old, "edge"), "probing");
    assert_eq!(provider(&old, "edge")["healthy"], true);
    // the fixture as written: edge's https endpoint is checked actively
    let g = reload(&old, bundle("health"));
    // no traffic decides for an actively checked provider: it waits for its probe
    assert_eq!(provider(&g, "edge")["healthy"], false);
    assert_eq!(tick(&g, due + 1), ["edge"]);
}

#[test]
fn a_cost_window_switch_carries_over_while_its_machine_is_there() {
    let old = gateway("windows");
    for i in 0..3 {
        report(
            &old,
            json!({"model": "big", "outcome": "success", "cost": 0.5}),
            1_000 + i,
        );
    }
    close_window(&old, 2_000);
    assert_eq!(windows(&old)["cost_window.0.cost_per_task"], "switched");

    // the same machine with another threshold keeps its state
    let g = reload(
        &old,
        bundle_edited(
            "windows",
            "window-kept",
            &[("threshold: $0.10", "threshold: $0.20")],
        ),
    );
    assert_eq!(windows(&g)["cost_window.0.cost_per_task"], "switched");
    let d = route(&g, json!({"tier": "pro"}), 2_100);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("medium"), vec!["downgrade".to_string()]),
        "{d}"
    );

    // without the rule the switch is gone
    let without = bundle_edited(
        "windows",
        "window-gone",
        &[(
            "      - metric: cost_per_task\n        threshold: $0.10\n        action: downgrade_model\n        downgrade_to: next_cheaper\n",
            "",
        )],
    );
    let g = reload(&g, without);
    assert!(
        windows(&g).values().all(|s| s == "normal"),
        "{:?}",
        windows(&g)
    );
    let d = route(&g, json!({"tier": "pro"}), 2_200);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("big"), vec![]),
        "{d}"
    );
}

#[test]
fn pool_slots_and_pins_carry_over_while_the_pool_is_the_same() {
    let old = gateway("pools");
    let held = [
        route(&old, json!({"lane": "overflowing"}), 0),
        route(&old, json!({"lane": "overflowing"}), 1),
    ];
    let pinned = route(&old, json!({"lane": "sticky", "session_id": "kept"}), 2);

    let g = reload(&old, bundle("pools"));
    assert_eq!(pool(&g, "narrow")["in_flight"], 2);
    let d = route(&g, json!({"lane": "overflowing"}), 3);
    assert_eq!(kinds(&d), ["overflow"], "{d}");
    let d = route(&g, json!({"lane": "sticky", "session_id": "kept"}), 4);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (pinned["model"].as_str(), vec!["affinity".to_string()]),
        "{d}"
    );
    // a decision of the old gateway is reported to the new one by its id alone
    let (accepted, _) = report(
        &g,
        json!({"decision_id": held[0]["decision_id"], "outcome": "success"}),
        5,
    );
    assert_eq!(
        (accepted["released"].as_bool(), accepted["model"].as_str()),
        (Some(true), held[0]["model"].as_str()),
        "{accepted}"
    );
    assert_eq!(pool(&g, "narrow")["in_flight"], 1);
}

#[test]
fn a_changed_pool_starts_afresh() {
    let old = gateway("pools");
    route(&old, json!({"lane": "overflowing"}), 0);
    route(&old, json!({"lane": "overflowing"}), 1);
    route(&old, json!({"lane": "sticky", "session_id": "kept"}), 2);
    let changed = bundle_edited(
        "pools",
        "pool-changed",
        &[
            ("max_concurrent: 2", "max_concurrent: 3"),
            (
                "      weight: [50, 50]\n      max_concurrent: 100",
                "      weight: [60, 40]\n      max_concurrent: 100",
            ),
        ],
    );
    let g = reload(&old, changed);
    // a new limit counts only its own slots
    assert_eq!(pool(&g, "narrow")["in_flight"], 0);
    for i in 0..3 {
        let d = route(&g, json!({"lane": "overflowing"}), 10 + i);
        assert_eq!(d["pool"]["name"], "narrow", "{d}");
    }
    // new weights: the pins of the old pool are gone
    assert_eq!(pool(&g, "sticky")["pinned_sessions"], 0);
    let d = route(&g, json!({"lane": "sticky", "session_id": "kept"}), 20);
    assert!(kinds(&d).is_empty(), "{d}");
}
