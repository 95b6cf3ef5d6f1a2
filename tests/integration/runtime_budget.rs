//! Budgets in-process: a spent daily or session budget steps a decision down the
//! price ladder to the cheapest model that can take it above the quality floor; the
//! day's total resets at midnight UTC (or in the policy's `time_zone`) and by an
//! operator's reset; reservations price prompts and answers apart.

use serde_json::json;

use rulec::runtime::gateway::Limits;
use rulec::runtime::reserve::WorstCase;

use crate::runtime_common::{
    bundle_edited, fail, gateway, gateway_with, kinds, reason, reload, report, reserve,
    reset_budgets, route, route_at, DAY_MS, NOON,
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

/// The `budget` fixture with its day in Berlin, written under the scratch folder `tag`.
fn berlin(tag: &str) -> rulec::bundle::Bundle {
    bundle_edited(
        "budget",
        tag,
        &[(
            "quality_threshold: 0.7",
            "quality_threshold: 0.7\n      time_zone: Europe/Berlin",
        )],
    )
}

/// [`NOON`] is on 4 October 2024, in Berlin's summer time (UTC+2): Berlin's next day
/// starts at 22:00 UTC, two hours before UTC's.
const BERLIN_MIDNIGHT: u64 = (NOON / DAY_MS) * DAY_MS + 22 * 3_600_000;

#[test]
fn the_daily_budget_resets_at_midnight_in_the_policys_time_zone_not_at_utcs() {
    let zoned = gateway_with(berlin("berlin-day"), Limits::default());
    let utc = gateway("budget");
    let pro = json!({"tier": "pro"});
    for g in [&zoned, &utc] {
        spend(g, 12.0, 0);
        let d = route_at(g, pro.clone(), 1, BERLIN_MIDNIGHT - 1);
        assert_eq!(kinds(&d), ["budget"], "{d}");
    }
    // Berlin's midnight: a new day there, while UTC's day still has two hours to go
    let d = route_at(&zoned, pro.clone(), 2, BERLIN_MIDNIGHT);
    assert_eq!(
        (d["model"].as_str(), kinds(&d)),
        (Some("big"), vec![]),
        "{d}"
    );
    assert_eq!(zoned.shared.budgets.today(BERLIN_MIDNIGHT), 0.0);
    let d = route_at(&utc, pro.clone(), 2, BERLIN_MIDNIGHT);
    assert_eq!(kinds(&d), ["budget"], "{d}");
    let utc_midnight = (NOON / DAY_MS + 1) * DAY_MS;
    let d = route_at(&utc, pro, 3, utc_midnight);
    assert!(kinds(&d).is_empty(), "{d}");
    // the day's number is its date wherever the day is counted
    assert_eq!(
        zoned.shared.budgets.day_of(BERLIN_MIDNIGHT),
        utc.shared.budgets.day_of(utc_midnight)
    );
}

#[test]
fn a_reload_that_sets_a_time_zone_moves_the_days_end() {
    let utc = gateway("budget");
    let pro = json!({"tier": "pro"});
    spend(&utc, 12.0, 0);
    let zoned = reload(&utc, berlin("berlin-reload"));
    // the spending carries over: the reload happened on the same date in Berlin
    let d = route_at(&zoned, pro.clone(), 1, BERLIN_MIDNIGHT - 1);
    assert_eq!(kinds(&d), ["budget"], "{d}");
    let d = route_at(&zoned, pro, 2, BERLIN_MIDNIGHT);
    assert!(kinds(&d).is_empty(), "{d}");
    assert_eq!(zoned.shared.budgets.zone(), "Europe/Berlin");
}

#[test]
fn a_reservation_prices_the_prompt_and_the_answer_apart() {
    let priced = bundle_edited(
        "budget",
        "prices",
        &[
            (
                "cost_per_token: 0.00001,",
                "cost_per_token: 0.00001, input_cost_per_token: 0.000002, output_cost_per_token: 0.00004,",
            ),
            (
                "cost_per_token: 0.000003,",
                "cost_per_token: 0.000003, output_cost_per_token: 0.000015,",
            ),
        ],
    );
    let g = gateway_with(priced, Limits::default());
    // 1,000 bytes in 2 messages bound the prompt at 1,016 tokens; 500 tokens of answer
    let worst = WorstCase {
        prompt_bytes: 1000,
        messages: 2,
        max_output_tokens: 500,
    };
    let held = |model: &str| {
        reserve(&g, model, None, &worst, 0)
            .unwrap_or_else(|e| panic!("{model} refused: {e:?}"))
            .amount()
    };
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    let big = held("big");
    assert!(close(big, 1016.0 * 0.000002 + 500.0 * 0.00004), "{big}");
    // an input price left out is `cost_per_token`
    let medium = held("medium");
    assert!(
        close(medium, 1016.0 * 0.000003 + 500.0 * 0.000015),
        "{medium}"
    );
    let small = held("small");
    assert!(close(small, 1516.0 * 0.000001), "{small}");
}
