//! What a request needs of the model that serves it, in-process: a request larger
//! than the chosen model's context window moves to a model of the chain that holds
//! it, or is refused when none does; and a reported call without a cost is priced
//! from the policy, so that budgets and cost windows still count it.

use serde_json::json;

use crate::runtime_common::{
    fail, gateway, kinds, reason, refused, report, report_refused, route, NOON,
};

#[test]
fn a_request_larger_than_the_window_moves_to_a_model_that_holds_it() {
    let g = gateway("context");
    let fits = route(
        &g,
        json!({"task_type": "general", "estimated_tokens": 1000}),
        0,
    );
    assert_eq!(fits["model"], "small", "{fits}");
    assert!(kinds(&fits).is_empty(), "{fits}");
    // no size given: nothing to hold against the window
    let no_size = route(&g, json!({"task_type": "general"}), 1);
    assert_eq!(no_size["model"], "small", "{no_size}");

    let big = route(
        &g,
        json!({"task_type": "general", "estimated_tokens": 1001}),
        2,
    );
    assert_eq!(big["model"], "large", "{big}");
    assert_eq!(kinds(&big), ["context_window"], "{big}");
    assert_eq!(
        reason(&big, 0),
        "the request's 1001 estimated tokens exceed the context window of `small` (1000 tokens)"
    );
    // the chain offers only models that hold the request
    assert_eq!(big["fallbacks"], json!([]), "{big}");
}

#[test]
fn a_request_no_model_can_hold_is_refused_with_413() {
    let g = gateway("context");
    let r = refused(
        &g,
        json!({"task_type": "general", "estimated_tokens": 100001}),
        0,
    );
    assert_eq!(r.status, 413, "{}", r.error);
    assert_eq!(r.error["code"], "context_window_exceeded", "{}", r.error);
    assert!(
        r.error["message"]
            .as_str()
            .unwrap_or_default()
            .ends_with("and no model of the fallback chain can hold it"),
        "{}",
        r.error
    );
}

#[test]
fn a_report_with_tokens_and_no_cost_is_priced_from_the_policy() {
    let g = gateway("context");
    let d = route(&g, json!({"task_type": "general"}), 0);
    let (accepted, _) = report(
        &g,
        json!({"decision_id": d["decision_id"], "outcome": "success", "tokens": 1500}),
        1,
    );
    assert_eq!(accepted["model"], "small");
    assert_eq!(accepted["cost_from"], "policy", "{accepted}");
    let cost = accepted["cost"].as_f64().unwrap_or_default();
    assert!((cost - 0.0015).abs() < 1e-12, "{accepted}");
    // the day's budget counts it
    let spent = g.shared.budgets.today(NOON + 1);
    assert!((spent - 0.0015).abs() < 1e-12, "{spent}");

    // a reported cost is taken as it is
    let (accepted, _) = report(
        &g,
        json!({"model": "large", "outcome": "success", "tokens": 1500, "cost": 0.5}),
        2,
    );
    assert_eq!(accepted["cost_from"], "report", "{accepted}");
    assert_eq!(accepted["cost"], 0.5, "{accepted}");
    // neither tokens nor cost: nothing to price
    let (accepted, _) = report(&g, json!({"model": "large", "outcome": "success"}), 3);
    assert_eq!(accepted["cost"], json!(null), "{accepted}");
}

#[test]
fn a_large_request_whose_holders_are_down_is_a_503_to_retry_not_a_413() {
    let g = gateway("context");
    fail(&g, "main", 3, 0);
    let r = refused(
        &g,
        json!({"task_type": "general", "estimated_tokens": 5000}),
        10,
    );
    assert_eq!(r.status, 503, "{}", r.error);
    assert_eq!(r.retry_after, Some(1));
    assert_eq!(r.error["code"], "context_window_unavailable", "{}", r.error);
    assert!(
        r.error["message"].as_str().unwrap_or_default().ends_with(
            "the models that can hold it are unavailable (provider `main` is unhealthy)"
        ),
        "{}",
        r.error
    );
    // a request that fits is still answered by the table's model (all unhealthy)
    let small = route(
        &g,
        json!({"task_type": "general", "estimated_tokens": 10}),
        11,
    );
    assert_eq!(kinds(&small), ["all_unhealthy"], "{small}");
}

#[test]
fn a_price_made_from_implausible_tokens_is_refused_like_a_cost() {
    let g = gateway("context");
    // 1e8 tokens at $0.000002 is $200: plausible; the bound is the same $1,000 as `cost`
    let (accepted, _) = report(
        &g,
        json!({"model": "large", "outcome": "success", "tokens": 100000000}),
        0,
    );
    assert_eq!(accepted["cost_from"], "policy", "{accepted}");
    // at `dear`'s price the same tokens would be $10,000 for one call: a unit mistake
    let (status, e) = report_refused(
        &g,
        json!({"model": "dear", "outcome": "success", "tokens": 100000000}),
        1,
    );
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["attribute"], "tokens", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or_default()
            .contains("is $10000.00 for one call, which is not plausible"),
        "{e}"
    );
    assert_eq!(g.shared.budgets.today(NOON + 1), 200.0);
}
