//! Driving a gateway in-process for the runtime scenarios: building one from a policy
//! fixture under `tests/fixtures/runtime/`, and a thin layer that names providers,
//! pools and machines by their policy names and reads decisions and live state as
//! JSON. The scenarios use only this layer, so that a change to the runtime's types
//! (indices, enums) is absorbed here: the scenarios say what a user would see.
//!
//! Every call takes the time explicitly (`now` in monotonic milliseconds; budgets
//! also take a wall clock, [`NOON`] + `now` unless a test says otherwise): there is
//! no sleeping and no wall clock anywhere in these tests.

#![allow(
    dead_code,
    reason = "shared helpers: not every scenario module uses every one of them"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use rulec::bundle::Bundle;
use rulec::machines::EventKind;
use rulec::runtime::gateway::{Effect, Gateway, Limits, Shared};
use rulec::runtime::ids::ProviderIx;
use rulec::runtime::stats::lock;

use crate::common::{root, scratch};

/// One UTC day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;

/// A wall-clock time at noon UTC, so that budgets stay within one day for any
/// `now` a test uses.
pub const NOON: u64 = 20_000 * DAY_MS + DAY_MS / 2;

/// The verified bundle of `tests/fixtures/runtime/NAME.yaml`, as the server would
/// build it from that path.
pub fn bundle(name: &str) -> Bundle {
    load(&root().join(format!("tests/fixtures/runtime/{name}.yaml")))
}

/// The bundle of fixture `name` with each `(from, to)` replaced in its text (every
/// `from` must occur), written under a scratch folder of its own (`tag`).
pub fn bundle_edited(name: &str, tag: &str, edits: &[(&str, &str)]) -> Bundle {
    let path = root().join(format!("tests/fixtures/runtime/{name}.yaml"));
    let mut text = std::fs::read_to_string(&path).expect("runtime fixture");
    for (from, to) in edits {
        assert!(text.contains(from), "`{from}` is not in fixture `{name}`");
        text = text.replace(from, to);
    }
    let file = scratch(&format!("runtime-{tag}")).join(format!("{name}.yaml"));
    std::fs::write(&file, text).expect("write the edited fixture");
    load(&file)
}

fn load(path: &Path) -> Bundle {
    rulec::server::source::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `bundle` with `provider`'s endpoint one the server cannot check actively, rehashed.
/// Every `http://` and `https://` endpoint is checked; no policy can declare another
/// kind, only a hand-made bundle can: this is that bundle, for the scenarios of health
/// that comes from reported outcomes alone.
pub fn without_active_checks(mut bundle: Bundle, provider: &str) -> Bundle {
    let spec = bundle
        .content
        .providers
        .iter_mut()
        .find(|p| p.name == provider)
        .unwrap_or_else(|| panic!("no provider `{provider}` in the bundle"));
    spec.base_url = format!("unix:/run/{provider}.sock");
    bundle.hash = rulec::bundle::digest(&bundle.content);
    bundle
}

/// A fresh gateway for fixture `name`, with the server's default limits.
pub fn gateway(name: &str) -> Gateway {
    gateway_with(bundle(name), Limits::default())
}

pub fn gateway_with(bundle: Bundle, limits: Limits) -> Gateway {
    Gateway::new(bundle, None, Shared::new(limits))
}

/// The limits of the server with leases lasting `ttl_ms`.
pub fn lease_ttl(ttl_ms: u64) -> Limits {
    Limits {
        lease_ttl_ms: ttl_ms,
        ..Limits::default()
    }
}

/// What a reload does: a gateway for `bundle` taking over the live state of `old`.
pub fn reload(old: &Gateway, bundle: Bundle) -> Gateway {
    Gateway::new(bundle, Some(old), Arc::clone(&old.shared))
}

/// A decision for `request` at `now`, as `/v1/route` would answer it; panics if the
/// request is refused.
pub fn route(g: &Gateway, request: Value, now: u64) -> Value {
    route_at(g, request, now, NOON + now)
}

/// [`route`] with an explicit wall clock (for the budget's day).
pub fn route_at(g: &Gateway, request: Value, now: u64, wall: u64) -> Value {
    match g.route(&request, now, wall) {
        Ok(d) => serde_json::to_value(&d).expect("a decision serialises"),
        Err(e) => panic!(
            "route {request} refused with {}: {}",
            e.status,
            serde_json::to_value(&e).unwrap_or_default()
        ),
    }
}

/// A refusal as the server renders it: status, error body, `Retry-After` seconds.
pub struct Refused {
    pub status: u16,
    pub error: Value,
    pub retry_after: Option<u32>,
}

/// The refusal of `request` at `now`; panics if a decision is made instead.
pub fn refused(g: &Gateway, request: Value, now: u64) -> Refused {
    match g.route(&request, now, NOON + now) {
        Ok(d) => panic!(
            "route {request} was expected to be refused, got {}",
            serde_json::to_value(&d).unwrap_or_default()
        ),
        Err(e) => Refused {
            status: e.status,
            error: serde_json::to_value(&e).expect("an error serialises"),
            retry_after: e.retry_after,
        },
    }
}

/// The kinds of a decision's adjustments, in order.
pub fn kinds(decision: &Value) -> Vec<String> {
    decision["adjustments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The reason of a decision's adjustment number `i`.
pub fn reason(decision: &Value, i: usize) -> String {
    decision["adjustments"][i]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The names of the providers an event asked the caller to probe.
fn probed(g: &Gateway, effects: Vec<Effect>) -> Vec<String> {
    effects
        .into_iter()
        .map(|Effect::Probe(p)| g.live.providers[p].name.clone())
        .collect()
}

/// A report at `now`, as `/v1/report` takes it: the accepted answer and the
/// providers to probe. Panics if the report is refused.
pub fn report(g: &Gateway, body: Value, now: u64) -> (Value, Vec<String>) {
    match g.report(body.clone(), now, NOON + now) {
        Ok((accepted, effects)) => (
            serde_json::to_value(&accepted).expect("an answer serialises"),
            probed(g, effects),
        ),
        Err(e) => panic!(
            "report {body} refused with {}: {}",
            e.status,
            serde_json::to_value(&e).unwrap_or_default()
        ),
    }
}

/// The refusal of a report: status and error body.
pub fn report_refused(g: &Gateway, body: Value, now: u64) -> (u16, Value) {
    match g.report(body.clone(), now, NOON + now) {
        Ok((accepted, _)) => panic!(
            "report {body} was expected to be refused, got {}",
            serde_json::to_value(&accepted).unwrap_or_default()
        ),
        Err(e) => (
            e.status,
            serde_json::to_value(&e).expect("an error serialises"),
        ),
    }
}

fn event_kind(kind: &str) -> EventKind {
    serde_json::from_value(json!(kind)).unwrap_or_else(|e| panic!("event `{kind}`: {e}"))
}

fn provider_index(g: &Gateway, name: &str) -> ProviderIx {
    g.provider_ix(name)
        .unwrap_or_else(|| panic!("no provider `{name}` in the bundle"))
}

/// Offers `kind` (`failure`, `success`, `probe_ok`, `probe_failed`, `reset`) to the
/// health machine of `provider`, as an active check or a probe's answer would;
/// returns the providers to probe.
pub fn provider_event(g: &Gateway, provider: &str, kind: &str, now: u64) -> Vec<String> {
    let p = provider_index(g, provider);
    probed(g, g.provider_event(p, event_kind(kind), now, "scenario"))
}

/// `n` consecutive failed checks of `provider`, at `now`, `now + 1`, …
pub fn fail(g: &Gateway, provider: &str, n: u64, now: u64) -> Vec<String> {
    (0..n)
        .flat_map(|i| provider_event(g, provider, "failure", now + i))
        .collect()
}

/// Offers `kind` (`drill_start`, `drill_end`, `reset`, …) to the failover machine.
pub fn failover_event(g: &Gateway, kind: &str, now: u64) {
    g.failover_event(event_kind(kind), now, "scenario");
}

/// Time passes to `now`: due timers fire, expired leases end. Returns the providers
/// to probe.
pub fn tick(g: &Gateway, now: u64) -> Vec<String> {
    probed(g, g.tick(now))
}

/// Closes the cost window at `now`.
pub fn close_window(g: &Gateway, now: u64) {
    g.close_window(now);
}

/// A provider's live state as `/v1/status` shows it: `state`, `healthy`,
/// `consecutive_failures`, `failed_probes`, and `next_probe_at_ms` (the timer).
pub fn provider(g: &Gateway, name: &str) -> Value {
    let p = provider_index(g, name);
    let live = &g.live.providers[p];
    let inst = *lock(&live.instance);
    let state = g.health_machine(p).map_or("healthy".to_string(), |m| {
        m.state_name(inst.state).to_string()
    });
    json!({
        "state": state,
        "healthy": g.provider_healthy(p),
        "consecutive_failures": inst.counters[0],
        "failed_probes": inst.counters[1],
        "next_probe_at_ms": inst.timer_at_ms,
    })
}

/// The health state of a provider (`healthy`, `unhealthy`, `probing`, `given_up`).
pub fn health(g: &Gateway, name: &str) -> String {
    provider(g, name)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// When the provider's recovery timer is due, if it is set.
pub fn next_probe_at(g: &Gateway, name: &str) -> Option<u64> {
    provider(g, name)["next_probe_at_ms"].as_u64()
}

/// The failover machine's state (`primary`, `failed_over`, `drill`) and whether the
/// primary's traffic goes to the fallbacks.
pub fn failover(g: &Gateway) -> (String, bool) {
    let state = match (g.failover_machine(), &g.live.failover) {
        (Some(m), Some(live)) => Gateway::state_of(m, &live.instance),
        _ => "none".to_string(),
    };
    (state, g.failed_over())
}

/// Every cost-window machine's state (`normal`, `switched`), by machine name.
pub fn windows(g: &Gateway) -> BTreeMap<String, String> {
    g.cost_windows()
        .map(|(m, live)| (m.name.clone(), Gateway::state_of(m, &live.instance)))
        .collect()
}

/// A pool's live numbers as `/v1/status` shows them: `in_flight`, `max_concurrent`,
/// `pinned_sessions`.
pub fn pool(g: &Gateway, name: &str) -> Value {
    let live = g
        .pool(name)
        .unwrap_or_else(|| panic!("no pool `{name}` in the bundle"));
    json!({
        "in_flight": live.limit.in_flight(),
        "max_concurrent": live.spec.max_concurrent,
        "pinned_sessions": live.affinity.as_ref().map(|a| lock(a).len()),
    })
}

/// An operator's budget reset (`POST /admin/budgets/reset`).
pub fn reset_budgets(g: &Gateway) {
    g.shared.budgets.reset();
}

/// A decision for `request` at `now` as the runtime's own value, for the failover
/// planner; panics if the request is refused.
pub fn decide(g: &Gateway, request: Value, now: u64) -> rulec::runtime::decision::Decision<'_> {
    g.route(&request, now, NOON + now).unwrap_or_else(|e| {
        panic!(
            "route {request} refused with {}: {}",
            e.status,
            serde_json::to_value(&e).unwrap_or_default()
        )
    })
}

/// One finished attempt fed to the gateway as the proxy would, its cost spent
/// directly (no reservation) for `session`: the accepted answer and the providers to
/// probe. Panics if it is refused.
pub fn record_attempt(
    g: &Gateway,
    attempt: &rulec::runtime::attempts::Attempt<'_>,
    session: Option<&str>,
    now: u64,
) -> (Value, Vec<String>) {
    let billing = rulec::runtime::report::Billing::Spend { session };
    match g.record_attempt(attempt, None, billing, now, NOON + now) {
        Ok((accepted, effects)) => (
            serde_json::to_value(&accepted).expect("an answer serialises"),
            probed(g, effects),
        ),
        Err(e) => panic!(
            "attempt {attempt:?} refused: {}",
            serde_json::to_value(&e).unwrap_or_default()
        ),
    }
}

/// One finished attempt whose cost settles `reservation`: the accepted answer.
pub fn record_settled(
    g: &Gateway,
    attempt: &rulec::runtime::attempts::Attempt<'_>,
    reservation: rulec::runtime::reserve::Reservation,
    now: u64,
) -> Value {
    let billing = rulec::runtime::report::Billing::Settle(reservation);
    match g.record_attempt(attempt, None, billing, now, NOON + now) {
        Ok((accepted, _)) => serde_json::to_value(&accepted).expect("an answer serialises"),
        Err(e) => panic!(
            "attempt {attempt:?} refused: {}",
            serde_json::to_value(&e).unwrap_or_default()
        ),
    }
}

/// A reservation of a call to `model` for `session` at `now`, or the refusal.
pub fn reserve(
    g: &Gateway,
    model: &str,
    session: Option<&str>,
    worst: &rulec::runtime::reserve::WorstCase,
    now: u64,
) -> Result<rulec::runtime::reserve::Reservation, rulec::runtime::budget::Refusal> {
    let m = g
        .model(model)
        .unwrap_or_else(|| panic!("no model `{model}` in the bundle"));
    g.reserve(m, session, worst, NOON + now)
}

/// The day's settled dollars at `now`, the dollars held by reservations, and how many
/// reservations hold them; read together.
pub fn budget_state(g: &Gateway, now: u64) -> (f64, f64, usize) {
    let (spent, held) = g.shared.budgets.today_and_held(NOON + now);
    (spent, held, g.shared.budgets.held().1)
}

/// A session's settled and held dollars.
pub fn session_state(g: &Gateway, session: &str) -> (f64, f64) {
    (
        g.shared.budgets.session(session),
        g.shared.budgets.session_held(session),
    )
}

/// The cost window's metrics over the `window_ms` before `now`.
pub fn window_metrics(g: &Gateway, now: u64, window_ms: u64) -> Value {
    serde_json::to_value(g.shared.window.metrics(now, window_ms)).expect("metrics serialise")
}
