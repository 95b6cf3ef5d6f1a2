//! Pools in-process: `max_concurrent` counts decisions not yet reported, a full pool
//! overflows down the fallback chain or answers 503 `pool_full`, a lease that is
//! never reported gives its slot back when it expires, and session affinity pins a
//! session to its member for the ttl unless that member turns unhealthy.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::runtime_common::{
    bundle, fail, gateway, gateway_with, kinds, lease_ttl, pool, reason, refused, report,
    report_refused, route, tick,
};

fn lane(name: &str) -> Value {
    json!({ "lane": name })
}

fn sticky(session: &str) -> Value {
    json!({"lane": "sticky", "session_id": session})
}

#[test]
fn a_full_pool_overflows_down_the_chain_and_a_report_gives_the_slot_back() {
    let g = gateway("pools");
    let a = route(&g, lane("overflowing"), 0);
    let b = route(&g, lane("overflowing"), 1);
    for d in [&a, &b] {
        assert_eq!(d["pool"]["name"], "narrow", "{d}");
        assert!(kinds(d).is_empty(), "{d}");
    }
    // smooth round-robin over equal weights: one each
    assert_ne!(a["model"], b["model"]);
    assert_eq!(pool(&g, "narrow")["in_flight"], 2);

    // both slots held: the stand-in on the failover provider, outside the pool
    let c = route(&g, lane("overflowing"), 2);
    assert_eq!(c["model"], "spare", "{c}");
    assert_eq!(kinds(&c), ["overflow"], "{c}");
    assert!(
        reason(&c, 0).contains("pool `narrow` has all 2 slots in use"),
        "{c}"
    );
    assert!(c.get("pool").is_none(), "{c}");
    assert_eq!(pool(&g, "narrow")["in_flight"], 2);

    let (accepted, _) = report(
        &g,
        json!({"decision_id": a["decision_id"], "outcome": "success"}),
        3,
    );
    assert_eq!(accepted["released"], true, "{accepted}");
    assert_eq!(pool(&g, "narrow")["in_flight"], 1);
    let d = route(&g, lane("overflowing"), 4);
    assert_eq!(d["pool"]["name"], "narrow", "{d}");
    assert!(kinds(&d).is_empty(), "{d}");
    // a decision is released once
    let (status, error) = report_refused(
        &g,
        json!({"decision_id": a["decision_id"], "outcome": "success"}),
        5,
    );
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("unknown_decision")),
        "{error}"
    );
}

#[test]
fn a_full_pool_with_nowhere_to_overflow_answers_503_pool_full_at_once() {
    let g = gateway("pools");
    let held = route(&g, lane("strict"), 0);
    assert_eq!(held["pool"]["name"], "strict", "{held}");
    let r = refused(&g, lane("strict"), 45_000);
    assert_eq!(r.status, 503);
    assert_eq!(r.retry_after, Some(1));
    assert_eq!(r.error["code"], "pool_full", "{}", r.error);
    // the slot is held by a decision never reported: the message says so, and the
    // help points at reporting and the lease timeout before a larger pool
    let message = r.error["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "pool `strict` has all 1 slots in use, held by 1 decision not yet reported;"
        ),
        "{message}"
    );
    let help = r.error["help"].as_str().unwrap_or_default();
    assert!(
        help.contains("`POST /v1/report`") && help.contains("`--lease-timeout`, now 120 s"),
        "{help}"
    );
    report(
        &g,
        json!({"decision_id": held["decision_id"], "outcome": "success"}),
        2,
    );
    assert_eq!(route(&g, lane("strict"), 3)["pool"]["name"], "strict");
}

#[test]
fn an_unreported_decision_gives_its_slot_back_when_its_lease_expires() {
    let g = gateway_with(bundle("pools"), lease_ttl(1_000));
    let held = route(&g, lane("strict"), 0);
    tick(&g, 999);
    assert_eq!(pool(&g, "strict")["in_flight"], 1);
    assert_eq!(refused(&g, lane("strict"), 999).status, 503);
    tick(&g, 1_000);
    assert_eq!(pool(&g, "strict")["in_flight"], 0);
    assert_eq!(route(&g, lane("strict"), 1_001)["pool"]["name"], "strict");
    // the expired decision is gone; naming the model still counts the outcome
    let late = json!({"decision_id": held["decision_id"], "outcome": "success"});
    assert_eq!(report_refused(&g, late, 1_002).0, 404);
    let (accepted, _) = report(
        &g,
        json!({"decision_id": held["decision_id"], "model": "lone", "outcome": "success"}),
        1_003,
    );
    assert_eq!(accepted["released"], false, "{accepted}");
    assert_eq!(
        pool(&g, "strict")["in_flight"],
        1,
        "a late report freed another decision's slot"
    );
}

#[test]
fn weighted_round_robin_skips_an_unhealthy_member() {
    let g = gateway("pools");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..10 {
        let d = route(&g, lane("sticky"), i);
        *counts
            .entry(d["model"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    assert_eq!(
        counts,
        BTreeMap::from([("left".into(), 5), ("right".into(), 5)])
    );
    fail(&g, "one", 3, 100);
    for i in 0..4 {
        let d = route(&g, lane("sticky"), 200 + i);
        assert_eq!(
            (d["model"].as_str(), kinds(&d)),
            (Some("right"), vec![]),
            "{d}"
        );
    }
}

#[test]
fn a_pinned_session_sticks_for_the_ttl_then_is_balanced_afresh() {
    let g = gateway("pools");
    let first = route(&g, sticky("s-1"), 0);
    assert!(kinds(&first).is_empty(), "{first}");
    let member = first["model"].as_str().expect("model").to_string();
    assert_eq!(pool(&g, "sticky")["pinned_sessions"], 1);
    // other traffic moves the round-robin on; the session stays put
    for i in 1..5 {
        route(&g, lane("sticky"), i * 100);
        let d = route(&g, sticky("s-1"), i * 100 + 1);
        assert_eq!(d["model"], member.as_str(), "{d}");
        assert_eq!(kinds(&d), ["affinity"], "{d}");
        assert!(reason(&d, 0).contains("session `s-1` is pinned"), "{d}");
    }
    // the ttl is 10 s from the pin, which a pinned answer does not extend
    let d = route(&g, sticky("s-1"), 9_999);
    assert_eq!(kinds(&d), ["affinity"], "{d}");
    let d = route(&g, sticky("s-1"), 10_000);
    assert!(kinds(&d).is_empty(), "the pin outlived its ttl: {d}");
    // that answer pinned the session afresh
    let again = route(&g, sticky("s-1"), 10_001);
    assert_eq!(again["model"], d["model"], "{again}");
    assert_eq!(kinds(&again), ["affinity"], "{again}");
}

#[test]
fn a_pinned_session_moves_off_a_member_that_turns_unhealthy_and_sticks_to_the_new_one() {
    let g = gateway("pools");
    let d = route(&g, sticky("s-2"), 0);
    let (pinned, provider) = (
        d["model"].as_str().expect("model").to_string(),
        d["provider"].as_str().expect("provider").to_string(),
    );
    fail(&g, &provider, 3, 10);
    let moved = route(&g, sticky("s-2"), 20);
    assert_ne!(
        moved["model"],
        pinned.as_str(),
        "stayed on an unhealthy member: {moved}"
    );
    assert!(kinds(&moved).is_empty(), "{moved}");
    let again = route(&g, sticky("s-2"), 30);
    assert_eq!(
        again["model"], moved["model"],
        "the new pin did not hold: {again}"
    );
    assert_eq!(kinds(&again), ["affinity"], "{again}");
}
