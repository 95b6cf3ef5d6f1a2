//! Failover attempts and reservations in-process, with a controlled clock: each
//! fault an attempt can end in leads to the right next target or to the right end;
//! a failed target is never tried again within the request; the cap holds; the
//! attempts' outcomes leave the same health, budget and window state as the same
//! outcomes sent to `/v1/report`; reservations never let concurrent calls spend more
//! than the daily budget, and each is settled or given back.

use proptest::prelude::*;
use serde_json::{json, Value};

use rulec::runtime::attempts::{Attempts, Ended, Exhaustion, Outcome, Usage};
use rulec::runtime::budget::Limit;
use rulec::runtime::gateway::Gateway;
use rulec::runtime::reserve::WorstCase;

use crate::runtime_common::{
    budget_state, decide, failover, gateway, health, provider, record_attempt, record_settled,
    report, reserve, route, session_state, window_metrics,
};

fn plan<'g>(g: &'g Gateway, lane: &str, now: u64) -> Attempts<'g> {
    Attempts::new(&decide(g, json!({ "lane": lane }), now))
}

fn status(code: u16) -> Outcome {
    Outcome::Status {
        code,
        retry_after_ms: None,
    }
}

fn ok(input: u64, output: u64) -> Outcome {
    Outcome::Success {
        usage: Some(Usage {
            input_tokens: input,
            output_tokens: output,
        }),
    }
}

/// Answers each target the plan gives with the next outcome, each attempt taking
/// `step` ms from `start`; returns the models tried, in order, and the time at the end.
fn run<'g>(p: &mut Attempts<'g>, outcomes: &[Outcome], start: u64, step: u64) -> Vec<&'g str> {
    let mut now = start;
    let mut tried = Vec::new();
    for &outcome in outcomes {
        let Some(t) = p.next(now) else { break };
        now += t.wait_ms + step;
        assert!(p.record(&t, outcome, now).is_some(), "{t:?} is in flight");
        tried.push(t.model);
    }
    tried
}

fn why(p: &Attempts<'_>) -> Option<Exhaustion> {
    match p.ended() {
        Some(Ended::Exhausted { why, .. }) => Some(*why),
        _ => None,
    }
}

#[test]
fn the_chain_is_the_decisions_model_then_its_fallbacks_with_their_timeouts() {
    let g = gateway("attempts");
    let d = route(&g, json!({"lane": "single"}), 0);
    let chain: Vec<&str> = d["fallbacks"]
        .as_array()
        .map(|f| f.iter().filter_map(|x| x["model"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        (d["model"].as_str(), chain),
        (Some("big"), vec!["alt", "extra", "medium"]),
        "{d}"
    );

    let mut p = plan(&g, "single", 0).with_cap(4);
    let t = p.next(0).expect("a first target");
    assert_eq!(
        (t.model, t.provider, t.attempt, t.timeout_ms, t.wait_ms),
        ("big", "main", 1, None, 0)
    );
    // one attempt at a time
    assert_eq!(p.next(0), None);
    p.record(&t, status(500), 10);
    let t = p.next(10).expect("a fallback");
    assert_eq!(
        (t.model, t.model_id, t.timeout_ms, t.attempt),
        ("alt", "alt-1", Some(5_000), 2)
    );
    // an outcome for a target that is not in flight changes nothing
    let mut stale = t.clone();
    stale.attempt = 1;
    assert!(p.record(&stale, ok(1, 1), 20).is_none());
    p.record(&t, Outcome::Timeout, 5_010);
    let t = p.next(5_010).expect("the next fallback");
    assert_eq!((t.model, t.timeout_ms), ("extra", Some(8_000)));
}

#[test]
fn a_refused_connection_skips_every_model_on_that_provider() {
    let g = gateway("attempts");
    let mut p = plan(&g, "single", 0).with_cap(4);
    let tried = run(
        &mut p,
        &[Outcome::ConnectError, status(502), status(500), ok(1, 1)],
        0,
        5,
    );
    // `medium` is on `main`, which refused: nothing is left to try
    assert_eq!(tried, ["big", "alt", "extra"]);
    assert_eq!(why(&p), Some(Exhaustion::Chain));
    match p.ended() {
        Some(Ended::Exhausted {
            last: Some(last), ..
        }) => {
            assert_eq!((last.target.model, last.outcome), ("extra", status(500)))
        }
        other => panic!("{other:?}"),
    }

    // a 500 excludes only the model: `medium` on the same provider is still tried
    let mut p = plan(&g, "single", 0).with_cap(4);
    let tried = run(
        &mut p,
        &[status(500), status(500), status(500), ok(10, 20)],
        0,
        5,
    );
    assert_eq!(tried, ["big", "alt", "extra", "medium"]);
    assert!(
        matches!(p.ended(), Some(Ended::Served { attempt }) if attempt.target.model == "medium")
    );
}

#[test]
fn timeouts_fail_over_within_the_deadline() {
    let g = gateway("attempts");
    // a slow first byte: the next fallback, with its own timeout
    let mut p = plan(&g, "single", 0);
    let tried = run(&mut p, &[Outcome::FirstByteTimeout, ok(5, 5)], 0, 3_000);
    assert_eq!(tried, ["big", "alt"]);
    assert_eq!(p.attempts().len(), 2);
    let Some(Ended::Served { attempt }) = p.ended() else {
        panic!("{:?}", p.ended())
    };
    assert_eq!((attempt.target.attempt, attempt.latency_ms), (2, 3_000));

    // a whole-call timeout late in the request: the fallback gets only what is left
    let mut p = plan(&g, "single", 0).with_deadline(6_000);
    let t = p.next(0).expect("big");
    assert_eq!(t.timeout_ms, Some(6_000));
    p.record(&t, Outcome::Timeout, 4_000);
    let t = p.next(4_000).expect("alt");
    assert_eq!((t.model, t.timeout_ms), ("alt", Some(2_000)));
    p.record(&t, Outcome::Timeout, 6_000);
    assert_eq!(p.next(6_000), None);
    assert_eq!(why(&p), Some(Exhaustion::Deadline));
}

#[test]
fn the_cap_holds() {
    let g = gateway("attempts");
    let mut p = plan(&g, "single", 0);
    assert_eq!(p.cap(), 3);
    let tried = run(&mut p, &[status(503); 5], 0, 1);
    assert_eq!(tried, ["big", "alt", "extra"]);
    assert_eq!(why(&p), Some(Exhaustion::Cap));
    let mut p = plan(&g, "single", 0).with_cap(1);
    assert_eq!(run(&mut p, &[status(500); 5], 0, 1), ["big"]);
    assert_eq!(why(&p), Some(Exhaustion::Cap));
}

#[test]
fn a_retry_after_prefers_a_target_that_need_not_wait_and_skips_a_wait_too_long() {
    // a fresh gateway for each request: the pool's first pick is `big`
    let g = gateway("attempts");
    let limited = Outcome::Status {
        code: 429,
        retry_after_ms: Some(1_000),
    };

    let mut p = plan(&g, "pooled", 0).with_cap(4);
    let t = p.next(100).expect("big");
    assert_eq!(t.model, "big");
    p.record(&t, limited, 100);
    // `medium` comes next in the chain, but `main` asked to wait: `alt` need not
    let t = p.next(100).expect("a target");
    assert_eq!((t.model, t.wait_ms), ("alt", 0));
    p.record(&t, status(500), 200);
    let t = p.next(200).expect("a target");
    assert_eq!((t.model, t.wait_ms), ("extra", 0));
    p.record(&t, status(500), 300);
    // only `medium` is left: it waits out the rest of the Retry-After
    let t = p.next(300).expect("medium");
    assert_eq!((t.model, t.wait_ms), ("medium", 800));
    p.record(&t, ok(1, 1), 1_500);
    assert_eq!(p.attempts()[3].latency_ms, 400);

    // a provider asking to wait longer than the plan waits is skipped
    let g = gateway("attempts");
    let mut p = plan(&g, "pooled", 0).with_cap(4);
    let long = Outcome::Status {
        code: 429,
        retry_after_ms: Some(60_000),
    };
    let tried = run(&mut p, &[long, status(500), status(500), ok(1, 1)], 0, 10);
    assert_eq!(tried, ["big", "alt", "extra"]);
    assert_eq!(why(&p), Some(Exhaustion::Chain));

    // or one whose wait would end past the deadline
    let g = gateway("attempts");
    let mut p = plan(&g, "pooled", 0).with_cap(4).with_deadline(1_000);
    let tried = run(
        &mut p,
        &[limited, status(500), status(500), ok(1, 1)],
        0,
        10,
    );
    assert_eq!(tried, ["big", "alt", "extra"]);
    assert_eq!(why(&p), Some(Exhaustion::Chain));
}

#[test]
fn a_stream_cut_fails_over_only_before_the_first_byte() {
    let g = gateway("attempts");
    let mut p = plan(&g, "single", 0);
    let before = Outcome::StreamCut {
        after_first_byte: false,
    };
    assert_eq!(run(&mut p, &[before, ok(1, 1)], 0, 10), ["big", "alt"]);
    assert!(matches!(p.ended(), Some(Ended::Served { .. })));

    let mut p = plan(&g, "single", 0);
    let after = Outcome::StreamCut {
        after_first_byte: true,
    };
    assert_eq!(run(&mut p, &[after, ok(1, 1)], 0, 10), ["big"]);
    assert!(
        matches!(p.ended(), Some(Ended::CutAfterFirstByte { attempt }) if attempt.target.model == "big"),
        "{:?}",
        p.ended()
    );
}

#[test]
fn the_clients_errors_are_returned_not_failed_over() {
    let g = gateway("attempts");
    for outcome in [400, 401, 403, 404, 413, 422]
        .map(status)
        .into_iter()
        .chain([Outcome::ContentFilter])
    {
        let mut p = plan(&g, "single", 0);
        assert_eq!(
            run(&mut p, &[outcome, ok(1, 1)], 0, 10),
            ["big"],
            "{outcome:?}"
        );
        assert!(
            matches!(p.ended(), Some(Ended::ClientError { attempt }) if attempt.outcome == outcome),
            "{outcome:?}: {:?}",
            p.ended()
        );
    }
    // the provider's own 4xx fail over
    for code in [408, 429] {
        let mut p = plan(&g, "single", 0);
        assert_eq!(
            run(&mut p, &[status(code), ok(1, 1)], 0, 10),
            ["big", "alt"],
            "{code}"
        );
    }
}

/// What `/v1/report` is sent for an attempt's outcome, written out by hand.
fn as_report(model: &str, outcome: Outcome, latency_ms: u64) -> Value {
    let error = match outcome {
        Outcome::Success { usage } => {
            let mut r = json!({"model": model, "outcome": "success", "latency_ms": latency_ms});
            if let Some(u) = usage {
                r["tokens"] = json!(u.input_tokens + u.output_tokens);
            }
            return r;
        }
        Outcome::ConnectError | Outcome::StreamCut { .. } => "connection",
        Outcome::FirstByteTimeout | Outcome::Timeout => "timeout",
        Outcome::Status { code: 429, .. } => "rate_limited",
        Outcome::Status { code: 503, .. } => "overloaded",
        Outcome::Status { code: 500, .. } => "server_error",
        Outcome::Status { .. } | Outcome::ContentFilter => "invalid_request",
    };
    json!({"model": model, "outcome": "error", "error": error, "latency_ms": latency_ms})
}

#[test]
fn attempts_leave_the_state_the_same_outcomes_reported_leave() {
    let proxied = gateway("attempts");
    let reported = gateway("attempts");
    let requests: [&[Outcome]; 4] = [
        &[Outcome::ConnectError, status(500), ok(1_000, 500)],
        &[Outcome::FirstByteTimeout, ok(200, 100)],
        &[
            Outcome::Status {
                code: 429,
                retry_after_ms: Some(500),
            },
            status(503),
            Outcome::StreamCut {
                after_first_byte: false,
            },
        ],
        &[status(400)],
    ];
    let mut now = 0;
    for outcomes in requests {
        let mut p = plan(&proxied, "single", now);
        for &outcome in outcomes {
            let Some(t) = p.next(now) else { break };
            now += t.wait_ms + 250;
            let attempt = p.record(&t, outcome, now).expect("in flight").clone();
            let (a, probes_a) = record_attempt(&proxied, &attempt, None, now);
            let body = as_report(attempt.target.model, outcome, attempt.latency_ms);
            let (b, probes_b) = report(&reported, body, now);
            assert_eq!((&a, probes_a), (&b, probes_b), "{outcome:?}");
        }
    }
    // three failures in a row on `main`: unhealthy in both, and failed over
    assert_eq!(health(&proxied, "main"), "unhealthy");
    for name in ["main", "backup", "spare"] {
        assert_eq!(
            provider(&proxied, name),
            provider(&reported, name),
            "{name}"
        );
    }
    assert_eq!(budget_state(&proxied, now), budget_state(&reported, now));
    assert!(budget_state(&proxied, now).0 > 0.0);
    assert_eq!(
        window_metrics(&proxied, now, 60_000),
        window_metrics(&reported, now, 60_000)
    );
    assert_eq!(failover(&proxied), ("failed_over".to_string(), true));
    assert_eq!(failover(&proxied), failover(&reported));
}

fn worst(prompt_bytes: u64, max_output_tokens: u64) -> WorstCase {
    WorstCase {
        prompt_bytes,
        messages: 1,
        max_output_tokens,
    }
}

/// `big`'s price: 2^-17 dollars per token.
const BIG: f64 = 0.000_007_629_394_531_25;

#[test]
fn a_reservation_holds_the_worst_case_and_settles_to_the_real_cost() {
    let g = gateway("attempts");
    // 1000 bytes + 8 for the message, and 1000 output tokens
    let r = reserve(&g, "big", Some("s-1"), &worst(1_000, 1_000), 0).expect("fits");
    assert_eq!(r.amount(), 2_008.0 * BIG);
    assert_eq!(budget_state(&g, 0), (0.0, 2_008.0 * BIG, 1));
    assert_eq!(session_state(&g, "s-1"), (0.0, 2_008.0 * BIG));

    // the attempt settles it from its usage, at the policy's price
    let mut p = plan(&g, "single", 0);
    let t = p.next(0).expect("big");
    let attempt = p.record(&t, ok(300, 200), 900).expect("in flight").clone();
    let accepted = record_settled(&g, &attempt, r, 900);
    assert_eq!(
        (accepted["cost"].as_f64(), accepted["cost_from"].as_str()),
        (Some(500.0 * BIG), Some("policy"))
    );
    assert_eq!(budget_state(&g, 900), (500.0 * BIG, 0.0, 0));
    assert_eq!(session_state(&g, "s-1"), (500.0 * BIG, 0.0));

    // a success without usage settles at the worst case; a failure gives all back
    let r = reserve(&g, "big", None, &worst(100, 100), 1_000).expect("fits");
    let mut p = plan(&g, "single", 1_000);
    let t = p.next(1_000).expect("big");
    let attempt = p
        .record(&t, Outcome::Success { usage: None }, 1_100)
        .expect("in flight")
        .clone();
    let accepted = record_settled(&g, &attempt, r, 1_100);
    assert_eq!(accepted["cost_from"], "reservation", "{accepted}");
    assert_eq!(budget_state(&g, 1_100), (708.0 * BIG, 0.0, 0));
    let r = reserve(&g, "big", None, &worst(100, 100), 1_200).expect("fits");
    let mut p = plan(&g, "single", 1_200);
    let t = p.next(1_200).expect("big");
    let attempt = p.record(&t, status(500), 1_300).expect("in flight").clone();
    let accepted = record_settled(&g, &attempt, r, 1_300);
    assert_eq!(accepted["cost"], Value::Null, "{accepted}");
    assert_eq!(budget_state(&g, 1_300), (708.0 * BIG, 0.0, 0));

    // dropped without settling: given back
    let r = reserve(&g, "big", None, &worst(100, 100), 1_400).expect("fits");
    assert_eq!(budget_state(&g, 1_400).2, 1);
    drop(r);
    assert_eq!(budget_state(&g, 1_400), (708.0 * BIG, 0.0, 0));
}

#[test]
fn a_reservation_that_does_not_fit_says_which_limit_and_what_is_left() {
    let g = gateway("attempts");
    // the session's $0.25 is 32768 tokens of `big`: two of 16384 fill it
    let half = worst(16_384 - 8, 0);
    let a = reserve(&g, "big", Some("s-1"), &half, 0).expect("fits");
    let _b = reserve(&g, "big", Some("s-1"), &half, 0).expect("fits exactly");
    let e = reserve(&g, "big", Some("s-1"), &worst(0, 1), 0).expect_err("the session is full");
    assert_eq!(
        (e.limit, e.max, e.held, e.left()),
        (Limit::Session, 0.25, 0.25, 0.0)
    );
    let error = serde_json::to_value(e.to_error()).expect("serialises");
    assert_eq!(
        (e.to_error().status, error["code"].as_str()),
        (402, Some("budget_exceeded"))
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("`max_cost_per_session`")),
        "{error}"
    );
    // another session, and the anonymous, still fit the day
    drop(a);
    assert!(reserve(&g, "big", Some("s-1"), &worst(0, 1), 0).is_ok());

    // the day's $1.00: held money counts, settled money counts
    let g = gateway("attempts");
    let quarter = worst(32_768 - 8, 0);
    let held: Vec<_> = (0..4)
        .map(|i| reserve(&g, "big", None, &quarter, i).expect("fits"))
        .collect();
    let e = reserve(&g, "extra", None, &worst(0, 1), 5).expect_err("the day is held");
    assert_eq!(
        (e.limit, e.spent, e.held, e.left()),
        (Limit::Daily, 0.0, 1.0, 0.0)
    );
    // routing reads settled money only: held money does not step it down
    let d = route(&g, json!({"lane": "single"}), 6);
    assert_eq!(
        (
            d["model"].as_str(),
            d["adjustments"].as_array().map(Vec::len)
        ),
        (Some("big"), Some(0)),
        "{d}"
    );
    drop(held);
    assert_eq!(budget_state(&g, 7), (0.0, 0.0, 0));
}

#[test]
fn concurrent_reservations_never_hold_more_than_the_daily_budget() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let g = gateway("attempts");
    let max = 1.0;
    let done = AtomicBool::new(false);
    let granted = AtomicU64::new(0);
    let refused = AtomicU64::new(0);
    let settled_tokens = AtomicU64::new(0);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                let (spent, held, _) = budget_state(&g, 0);
                assert!(spent + held <= max, "{spent} settled + {held} held");
            }
        });
        let workers: Vec<_> = (0..8u64)
            .map(|w| {
                let (g, granted, refused, settled_tokens) =
                    (&g, &granted, &refused, &settled_tokens);
                s.spawn(move || {
                    for i in 0..200u64 {
                        // 1008 to 2007 tokens of `big` at worst
                        let tokens = 1_000 + (w * 200 + i) % 1_000;
                        match reserve(g, "big", None, &worst(tokens, 0), i) {
                            Ok(r) => {
                                granted.fetch_add(1, Ordering::Relaxed);
                                let (spent, held, _) = budget_state(g, i);
                                assert!(spent + held <= max, "{spent} settled + {held} held");
                                if i % 3 == 0 {
                                    drop(r);
                                } else {
                                    let real = tokens / 2;
                                    settled_tokens.fetch_add(real, Ordering::Relaxed);
                                    r.settle(real as f64 * BIG, crate::runtime_common::NOON + i);
                                }
                            }
                            Err(e) => {
                                assert_eq!(e.limit, Limit::Daily);
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a worker");
        }
        done.store(true, Ordering::Relaxed);
    });
    let (spent, held, holds) = budget_state(&g, 0);
    assert_eq!(
        (held, holds),
        (0.0, 0),
        "every reservation settled or given back"
    );
    assert_eq!(spent, settled_tokens.load(Ordering::Relaxed) as f64 * BIG);
    assert!(spent <= max, "{spent}");
    assert_eq!(
        granted.load(Ordering::Relaxed) + refused.load(Ordering::Relaxed),
        1_600
    );
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "the budget was never reached"
    );
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        (0u64..3, 0u64..3).prop_map(|(i, o)| ok(i, o)),
        Just(Outcome::Success { usage: None }),
        Just(Outcome::ConnectError),
        Just(Outcome::FirstByteTimeout),
        Just(Outcome::Timeout),
        (
            prop::sample::select(vec![400u16, 401, 408, 422, 429, 500, 502, 503, 529]),
            prop::option::of(0u64..5_000)
        )
            .prop_map(|(code, retry_after_ms)| Outcome::Status {
                code,
                retry_after_ms
            }),
        Just(Outcome::ContentFilter),
        any::<bool>().prop_map(|after_first_byte| Outcome::StreamCut { after_first_byte }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_planner_never_repeats_a_failed_target_ends_within_the_cap_and_never_switches_after_a_cut(
        lane in prop::sample::select(vec!["single", "pooled"]),
        cap in 1u32..6,
        deadline in prop::option::of(500u64..20_000),
        steps in prop::collection::vec((outcome(), 0u64..3_000), 1..10),
    ) {
        let g = gateway("attempts");
        let mut p = plan(&g, lane, 0).with_cap(cap);
        if let Some(d) = deadline {
            p = p.with_deadline(d);
        }
        let mut now = 0;
        let mut failed: Vec<(&str, &str)> = Vec::new();
        let mut refused: Vec<&str> = Vec::new();
        let mut ended = false;
        for (outcome, took) in steps {
            let Some(t) = p.next(now) else { ended = true; break };
            prop_assert!(!failed.iter().any(|&(m, _)| m == t.model), "{} again after failing", t.model);
            prop_assert!(!refused.contains(&t.provider), "{} refused a connection", t.provider);
            prop_assert!(t.wait_ms <= rulec::runtime::attempts::DEFAULT_MAX_WAIT_MS);
            prop_assert!(t.attempt <= cap);
            now += t.wait_ms + took;
            p.record(&t, outcome, now);
            failed.push((t.model, t.provider));
            if outcome == Outcome::ConnectError {
                refused.push(t.provider);
            }
            if matches!(outcome, Outcome::StreamCut { after_first_byte: true }) {
                prop_assert_eq!(p.next(now + 1), None);
                let is_cut = matches!(p.ended(), Some(Ended::CutAfterFirstByte { .. }));
                prop_assert!(is_cut);
            }
        }
        prop_assert!(p.attempts().len() <= cap as usize);
        if ended {
            prop_assert!(p.ended().is_some());
        }
        // whatever it was, the plan has an end within the cap and the chain
        let mut more = 0;
        while let Some(t) = p.next(now) {
            more += 1;
            now += t.wait_ms + 1;
            p.record(&t, status(500), now);
            prop_assert!(more <= cap);
        }
        prop_assert!(p.ended().is_some());
        prop_assert!(p.attempts().len() <= cap as usize);
    }
}
