//! Budgets in-process: a spent daily or session budget steps a decision down the
//! price ladder to the cheapest model that can take it above the quality floor; the
//! day's total resets at midnight UTC and by an operator's reset.

use serde_json::json;

use crate::runtime_common::{
    fail, gateway, kinds, reason, report, reset_budgets, route, route_at, DAY_MS, NOON,
};

fn spend(g: &rulec::runtime::gateway::Gateway, dollars: f64, now: u64) {
    report(
        g,
        json!({"model": "big", "outcome": "success", "cost": dollars}),
        now,
    );
}

#[test]
fn a_spent_daily_budget_steps_down_to_the_cheapest_model_above_the_quality_floor() {
    let g = gateway("budget");
    let pro = json!({"tier": "pro"});
    assert_eq!(route(&g, pro.clone(), 0)["model"], "big");
    spend(&g, 6.0, 10);
    let d = route(&g, pro.clone(), 20);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("big"), vec![]),
        "{d}"
    );

    // $12 of $10: `tiny` is cheaper still but below the 0.7 quality floor
    spend(&g, 6.0, 30);
    let d = route(&g, pro.clone(), 40);
    assert_eq!(d["model"], "small", "{d}");
    assert_eq!(kinds(&d), ["budget"], "{d}");
    assert!(
        reason(&d, 0).contains("daily budget of $10 is spent"),
        "{d}"
    );
    assert_eq!(d["adjustments"][0]["from"], "big", "{d}");
    let d = route(&g, json!({"tier": "mid"}), 41);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("small"), vec!["budget".to_string()]),
        "{d}"
    );
    // nothing cheaper above the floor: the model stands, with no adjustment
    let d = route(&g, json!({"tier": "low"}), 42);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("small"), vec![]),
        "{d}"
    );
    let d = route(&g, json!({"tier": "bottom"}), 43);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("tiny"), vec![]),
        "{d}"
    );

    // the ladder skips a model whose provider is down
    assert!(fail(&g, "cheap", 3, 50).is_empty());
    let d = route(&g, pro.clone(), 60);
    assert_eq!(d["model"], "medium", "{d}");
    assert_eq!(kinds(&d), ["budget"], "{d}");
}

#[test]
fn the_daily_budget_resets_at_midnight_utc_and_by_an_operator() {
    let g = gateway("budget");
    let pro = json!({"tier": "pro"});
    spend(&g, 12.0, 0);
    assert_eq!(kinds(&route(&g, pro.clone(), 1)), ["budget"]);
    // the last millisecond of the day still counts it; the next day starts afresh
    let midnight = (NOON / DAY_MS + 1) * DAY_MS;
    let d = route_at(&g, pro.clone(), 2, midnight - 1);
    assert_eq!(kinds(&d), ["budget"], "{d}");
    let d = route_at(&g, pro.clone(), 3, midnight);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("big"), vec![]),
        "{d}"
    );

    // an operator's reset forgets today's spending at once
    spend(&g, 12.0, 4);
    assert_eq!(kinds(&route(&g, pro.clone(), 5)), ["budget"]);
    reset_budgets(&g);
    let d = route(&g, pro, 6);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("big"), vec![]),
        "{d}"
    );
}

#[test]
fn a_spent_session_budget_steps_down_that_session_only() {
    let g = gateway("budget");
    let mine = json!({"tier": "pro", "session_id": "s-1"});
    let d = route(&g, mine.clone(), 0);
    assert_eq!(d["model"], "big");
    // the cost reported against the session's decision is the session's spending
    let (accepted, _) = report(
        &g,
        json!({"decision_id": d["decision_id"], "outcome": "success", "cost": 0.6}),
        10,
    );
    assert_eq!(accepted["released"], true, "{accepted}");
    assert!(kinds(&route(&g, mine.clone(), 20)).is_empty());
    let d = route(&g, mine.clone(), 30);
    report(
        &g,
        json!({"decision_id": d["decision_id"], "outcome": "success", "cost": 0.6}),
        40,
    );
    // $1.20 of $1.00; the day ($1.20 of $10) is not spent
    let d = route(&g, mine, 50);
    assert_eq!(d["model"], "small", "{d}");
    assert_eq!(kinds(&d), ["budget"], "{d}");
    assert!(reason(&d, 0).contains("session `s-1`"), "{d}");
    let other = route(&g, json!({"tier": "pro", "session_id": "s-2"}), 60);
    assert_eq!(
        (other["model"].as_str(), kinds(&other)),
        (Some("big"), vec![]),
        "{other}"
    );
    let anonymous = route(&g, json!({"tier": "pro"}), 70);
    assert!(kinds(&anonymous).is_empty(), "{anonymous}");
}
