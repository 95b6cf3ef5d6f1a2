//! Budgets that hold through the proxy: 200 simultaneous calls against a small daily
//! budget spend at most the budget (counted at the fake providers: the calls they
//! served × what each cost), the others get 402 `budget_exceeded`; and the settled
//! spend survives `kill -9` through the ledger in `--state-dir`.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::common::scratch;
use crate::fake_llm::{FakeKind, FakeLlm, Fault};
use crate::http::{eventually, get, Served};
use crate::proxy_common::{chat, chat_body, serve, two_provider_policy, TO_PRIMARY};

/// The models' price in the tests' policy: a call of the tests' body may cost up to
/// 67 tokens ($0.00067) and costs what the fake's usage says (a few tokens).
const PRICE: f64 = 0.00001;

fn budget(max_daily: f64) -> String {
    format!(
        "cost_aware:\n  enabled: true\n  optimization:\n    target: \"minimize_cost\"\n    constraints:\n      max_daily_budget: {max_daily}\n"
    )
}

/// What the fakes were paid: every call they served in full, at its usage.
fn paid(fakes: &[&FakeLlm]) -> f64 {
    fakes
        .iter()
        .map(|f| {
            let served = f.served() as f64;
            let body = f
                .completion_calls()
                .first()
                .map(|c| c.body.clone())
                .unwrap_or(Value::Null);
            let usage = f.usage_of(&body).unwrap_or_default();
            served * (usage.input_tokens + usage.output_tokens) as f64 * PRICE
        })
        .sum()
}

fn spent(server: &Served) -> f64 {
    let status = get(server.port, "/v1/status").json();
    status["budgets"]["daily"]["spent"]
        .as_f64()
        .unwrap_or_else(|| panic!("no daily spend in {status}"))
}

/// Each of `threads` threads sends `calls` calls; the statuses they got.
fn traffic(port: u16, threads: usize, calls: usize) -> thread::JoinHandle<Vec<u16>> {
    thread::spawn(move || {
        let start = Arc::new(Barrier::new(threads));
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let start = Arc::clone(&start);
                thread::spawn(move || {
                    start.wait();
                    (0..calls)
                        .map(|_| {
                            let body =
                                serde_json::to_vec(&chat_body("auto", false)).unwrap_or_default();
                            crate::http::request(
                                port,
                                "POST",
                                "/v1/chat/completions",
                                &[("Content-Type", "application/json"), TO_PRIMARY],
                                &body,
                            )
                            .map_or(0, |r| r.status)
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    })
}

#[test]
fn two_hundred_simultaneous_calls_spend_at_most_the_daily_budget() {
    let primary = FakeLlm::start_named(FakeKind::OpenAi, "primary");
    let backup = FakeLlm::start_named(FakeKind::OpenAi, "backup");
    // a little slowness keeps many calls in flight at once
    primary.set_default(Fault::SlowBody(Duration::from_millis(20)));
    backup.set_default(Fault::SlowBody(Duration::from_millis(20)));
    let max = 0.005;
    let policy = two_provider_policy("proxy-budget-200", &primary, &backup, "", &budget(max));
    let server = serve(&policy, &primary, &backup, &[]);

    let statuses = traffic(server.port, 200, 1).join().expect("traffic");
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!(ok + refused, 200, "only answers and refusals: {statuses:?}");
    assert!(ok > 0 && refused > 0, "{ok} answered, {refused} refused");
    let paid = paid(&[&primary, &backup]);
    assert!(
        paid <= max + 1e-9,
        "the providers were paid ${paid}, over ${max}; status: {}",
        get(server.port, "/v1/status").json()["budgets"]
    );
    assert_eq!(
        (primary.served() + backup.served()) as usize,
        ok,
        "every answer was one served call"
    );
    let spent = spent(&server);
    assert!(
        (spent - paid).abs() < 1e-9,
        "settled ${spent}, paid ${paid}"
    );

    // a refusal names the limit, in the client's shape
    let r = chat(server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    if r.status == 402 {
        let e = r.json();
        assert_eq!(e["error"]["type"], "budget_exceeded", "{e}");
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("max_daily_budget"), "{message}");
    }
}

#[test]
fn settled_spend_survives_kill_9_during_traffic() {
    let primary = FakeLlm::start_named(FakeKind::OpenAi, "primary");
    let backup = FakeLlm::start_named(FakeKind::OpenAi, "backup");
    primary.set_default(Fault::SlowBody(Duration::from_millis(30)));
    let policy = two_provider_policy("proxy-budget-kill", &primary, &backup, "", &budget(100.0));
    let state = scratch("proxy-budget-kill-state");
    let _ = std::fs::remove_dir_all(&state);
    let state_arg = state.to_str().expect("a UTF-8 path").to_string();
    let server = serve(&policy, &primary, &backup, &["--state-dir", &state_arg]);

    // kill -9 in the middle of traffic
    let load = traffic(server.port, 8, 60);
    assert!(
        eventually(Duration::from_secs(30), || spent(&server) > 0.0),
        "no spend settled"
    );
    let before = spent(&server);
    thread::sleep(Duration::from_millis(300));
    server.signal("KILL");
    let _ = server.wait_exit(Duration::from_secs(10));
    let _ = load.join();
    let paid_at_kill = paid(&[&primary, &backup]);

    let server = serve(&policy, &primary, &backup, &["--state-dir", &state_arg]);
    let after = spent(&server);
    assert!(
        after >= before - 1e-9,
        "lost spend settled 300 ms before the kill: ${before} then ${after}"
    );
    assert!(
        after <= paid_at_kill + 1e-9,
        "more spend than the providers were paid: ${after} > ${paid_at_kill}"
    );

    // quiet, then kill -9: exactly the same settled spend
    primary.set_default(Fault::None);
    let r = chat(server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    assert_eq!(r.status, 200, "{}", r.text());
    let settled = spent(&server);
    assert!(settled > after);
    thread::sleep(Duration::from_millis(300));
    server.signal("KILL");
    let _ = server.wait_exit(Duration::from_secs(10));
    let server = serve(&policy, &primary, &backup, &["--state-dir", &state_arg]);
    let restored = spent(&server);
    assert!(
        (restored - settled).abs() < 1e-9,
        "settled ${settled}, restored ${restored}"
    );
    // the ledger shows in the status and the metrics
    let r = chat(server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        eventually(Duration::from_secs(10), || {
            get(server.port, "/v1/status").json()["ledger"]["committed"].as_u64() >= Some(1)
        }),
        "{}",
        get(server.port, "/v1/status").json()["ledger"]
    );
    let ledger = get(server.port, "/v1/status").json()["ledger"].clone();
    assert!(
        ledger["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("ledger.redb")),
        "{ledger}"
    );
    assert_eq!(ledger["refused"], 0, "{ledger}");
    let metrics = get(server.port, "/metrics").text();
    assert!(
        metrics.contains("rulec_ledger_entries_total{result=\"committed\"}"),
        "{metrics}"
    );
}
