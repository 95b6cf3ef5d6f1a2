//! The proxy against providers that break: for each fault of a fake provider — a
//! refused connection, a slow first byte, a whole-call timeout, a 500, a 429 with
//! `Retry-After`, a stream cut before and after its first byte, malformed JSON, a
//! missing usage, a closed connection, a client error — the call ends in a successful
//! fallback or a clear error, never hangs, and never retries the target that just
//! failed. Each test runs its own fakes and server.

use std::time::Duration;

use serde_json::Value;

use crate::fake_llm::{FakeKind, FakeLlm, Fault};
use crate::http::{get, Response};
use crate::proxy_common::{
    chat, chat_body, message, serve, sse_data, two_provider_policy, TO_PRIMARY,
};

/// Timeouts of the primary provider in these tests: short, so that a slow fake is
/// given up on quickly; generous next to a loopback answer.
const TIMEOUTS: &str = "    timeout: 3s\n    first_byte_timeout: 1s\n";

struct Setup {
    primary: FakeLlm,
    backup: FakeLlm,
    server: crate::http::Served,
}

fn setup(name: &str, primary: FakeKind, backup: FakeKind) -> Setup {
    let primary = FakeLlm::start_named(primary, "primary");
    let backup = FakeLlm::start_named(backup, "backup");
    let policy = two_provider_policy(name, &primary, &backup, TIMEOUTS, "");
    let server = serve(&policy, &primary, &backup, &[]);
    Setup {
        primary,
        backup,
        server,
    }
}

/// The call went to `primary`, failed, and `backup` answered it: two attempts, each
/// target called once.
fn assert_failed_over(s: &Setup, r: &Response) {
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-rulec-model"), Some("backup"), "{}", r.text());
    assert_eq!(r.header("x-rulec-provider"), Some("second"));
    assert_eq!(r.header("x-rulec-attempts"), Some("2"));
    assert_eq!(r.header("x-rulec-rule"), Some("chat"));
    assert_eq!(
        s.primary.completion_calls().len(),
        1,
        "the failed target is not retried"
    );
    assert_eq!(s.backup.completion_calls().len(), 1);
    // the backup fake signs its answer (split across chunks when streamed)
    assert!(r.text().contains(" backup"), "{}", r.text());
}

fn fail_over_on(name: &str, fault: Fault, stream: bool) {
    let s = setup(name, FakeKind::OpenAi, FakeKind::Anthropic);
    s.primary.script(vec![fault]);
    let r = chat(s.server.port, &chat_body("auto", stream), &[TO_PRIMARY]);
    assert_failed_over(&s, &r);
}

#[test]
fn a_500_fails_over() {
    fail_over_on("proxy-fault-500", Fault::status(500), false);
}

#[test]
fn a_slow_first_byte_fails_over_after_the_first_byte_timeout() {
    fail_over_on(
        "proxy-fault-first-byte",
        Fault::SlowFirstByte(Duration::from_secs(20)),
        false,
    );
}

#[test]
fn a_call_slower_than_its_timeout_fails_over() {
    // the head comes at once, the body after the whole-call timeout
    fail_over_on(
        "proxy-fault-timeout",
        Fault::SlowBody(Duration::from_secs(20)),
        false,
    );
}

#[test]
fn malformed_json_fails_over() {
    fail_over_on("proxy-fault-malformed", Fault::MalformedJson, false);
}

#[test]
fn a_closed_connection_fails_over() {
    fail_over_on("proxy-fault-close", Fault::Close, false);
}

#[test]
fn a_stream_cut_before_its_first_byte_fails_over() {
    let s = setup(
        "proxy-fault-cut-before",
        FakeKind::OpenAi,
        FakeKind::Anthropic,
    );
    s.primary.script(vec![Fault::CutBeforeFirstByte]);
    let r = chat(s.server.port, &chat_body("auto", true), &[TO_PRIMARY]);
    assert_failed_over(&s, &r);
    let data = sse_data(&r.text());
    assert_eq!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("\"error\""), "{}", r.text());
}

#[test]
fn a_refused_connection_fails_over() {
    let s = setup("proxy-fault-refused", FakeKind::OpenAi, FakeKind::Anthropic);
    s.primary.set_default(Fault::Refuse);
    let r = chat(s.server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-rulec-model"), Some("backup"));
    assert_eq!(r.header("x-rulec-attempts"), Some("2"));
    assert_eq!(s.backup.completion_calls().len(), 1);
}

#[test]
fn a_429_fails_over_and_when_every_target_is_limited_the_client_gets_429_with_retry_after() {
    let s = setup("proxy-fault-429", FakeKind::OpenAi, FakeKind::Anthropic);
    s.primary.script(vec![Fault::rate_limited("1")]);
    let r = chat(s.server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    assert_failed_over(&s, &r);

    s.primary.script(vec![Fault::rate_limited("30")]);
    s.backup.script(vec![Fault::rate_limited("7")]);
    let r = chat(s.server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(
        r.header("retry-after"),
        Some("7"),
        "the last provider's wait"
    );
    assert_eq!(r.header("x-rulec-attempts"), Some("2"));
    // an Anthropic provider's error, in the OpenAI client's shape
    let body = r.json();
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(s.primary.completion_calls().len(), 2);
    assert_eq!(s.backup.completion_calls().len(), 2);
}

#[test]
fn a_stream_cut_after_its_first_byte_ends_with_an_error_event_and_no_other_model() {
    let s = setup(
        "proxy-fault-cut-after",
        FakeKind::OpenAi,
        FakeKind::Anthropic,
    );
    s.primary.script(vec![Fault::CutAfterFirstByte]);
    let r = chat(s.server.port, &chat_body("auto", true), &[TO_PRIMARY]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-rulec-model"), Some("primary"));
    assert_eq!(r.header("x-rulec-attempts"), Some("1"));
    let data = sse_data(&r.text());
    let last: Value = serde_json::from_str(data.last().expect("events")).expect("JSON");
    assert!(last["error"]["message"].is_string(), "{}", r.text());
    assert!(!r.text().contains("[DONE]"), "{}", r.text());
    assert_eq!(
        s.backup.completion_calls().len(),
        0,
        "never switch mid-answer"
    );

    // the same for an Anthropic client: an `error` event
    s.primary.script(vec![Fault::CutAfterFirstByte]);
    let mut body = chat_body("auto", true);
    body["max_tokens"] = 50.into();
    let r = message(s.server.port, &body, &[TO_PRIMARY]);
    assert_eq!(r.status, 200);
    assert!(r.text().contains("event: error"), "{}", r.text());
    assert!(!r.text().contains("message_stop"), "{}", r.text());
    assert_eq!(s.backup.completion_calls().len(), 0);
}

#[test]
fn a_client_error_is_returned_not_failed_over() {
    let s = setup("proxy-fault-400", FakeKind::OpenAi, FakeKind::Anthropic);
    s.primary.script(vec![Fault::status(400)]);
    let r = chat(s.server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.header("x-rulec-attempts"), Some("1"));
    assert_eq!(s.backup.completion_calls().len(), 0);
    assert!(r.json()["error"]["message"].is_string());
}

#[test]
fn an_answer_without_usage_is_served_and_settles_its_worst_case() {
    let s = setup(
        "proxy-fault-no-usage",
        FakeKind::OpenAi,
        FakeKind::Anthropic,
    );
    s.primary.script(vec![Fault::MissingUsage]);
    let r = chat(s.server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-rulec-model"), Some("primary"));
    // the worst case: the prompt's 10 bytes + 7 tokens of overhead, plus max_tokens 50,
    // at $0.00001 a token (the fake's real usage would be far less)
    let metrics = get(s.server.port, "/metrics").text();
    let cost = metrics
        .lines()
        .find_map(|l| l.strip_prefix("rulec_cost_dollars_total{model=\"primary\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no cost of `primary` in:\n{metrics}"));
    assert!((cost - 67.0 * 0.00001).abs() < 1e-9, "{cost}");
}

#[test]
fn when_every_provider_fails_the_client_gets_a_clear_error_listing_the_attempts() {
    let s = setup("proxy-fault-all", FakeKind::OpenAi, FakeKind::Anthropic);
    s.primary
        .script(vec![Fault::SlowFirstByte(Duration::from_secs(20))]);
    s.backup.set_default(Fault::Refuse);
    let r = chat(s.server.port, &chat_body("auto", false), &[TO_PRIMARY]);
    assert_eq!(r.status, 502, "{}", r.text());
    let message = r.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("`primary` on `first`: no first byte in time"),
        "{message}"
    );
    assert!(
        message.contains("`backup` on `second`: could not connect"),
        "{message}"
    );
    assert_eq!(r.header("x-rulec-attempts"), Some("2"));
}
