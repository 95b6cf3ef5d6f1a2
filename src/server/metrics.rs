//! `GET /metrics`: Prometheus text format (version 0.0.4), written by hand — the
//! counters live in `runtime::stats`, the gauges are read off the gateway in use.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use super::app::App;
use crate::machines::Params;
use crate::runtime::gateway::Gateway;
use crate::runtime::stats::{lock, Family, Histogram};

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels<S: AsRef<str>>(names: &[&str], values: &[S]) -> String {
    let parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v.as_ref())))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn family(&mut self, name: &str, help: &str, names: &[&str], f: &Family) {
        self.head(name, "counter", help);
        for (values, n) in f.snapshot() {
            let _ = writeln!(self.0, "{name}{} {n}", labels(names, &values));
        }
    }

    fn sample<S: AsRef<str>>(&mut self, name: &str, names: &[&str], values: &[S], v: f64) {
        let _ = writeln!(self.0, "{name}{} {v}", labels(names, values));
    }

    fn histogram(&mut self, name: &str, names: &[&str], values: &[String], h: &Histogram) {
        let (cumulative, total, sum) = h.snapshot();
        let base: Vec<String> = names
            .iter()
            .zip(values)
            .map(|(n, v)| format!("{n}=\"{}\",", escape(v)))
            .collect();
        let base = base.concat();
        for (b, n) in h.bounds.iter().zip(&cumulative) {
            let _ = writeln!(self.0, "{name}_bucket{{{base}le=\"{b}\"}} {n}");
        }
        let _ = writeln!(self.0, "{name}_bucket{{{base}le=\"+Inf\"}} {total}");
        let _ = writeln!(self.0, "{name}_sum{} {sum}", labels(names, values));
        let _ = writeln!(self.0, "{name}_count{} {total}", labels(names, values));
    }
}

pub fn render(app: &App) -> String {
    let g = app.gateway();
    let s = &g.shared.stats;
    let mut o = Out(String::new());
    o.head("rulec_bundle_info", "gauge", "the bundle in use");
    o.sample("rulec_bundle_info", &["hash"], &[g.hash().to_string()], 1.0);
    o.family(
        "rulec_decisions_total",
        "decisions made, by rule and model",
        &["rule", "model"],
        &s.decisions,
    );
    o.family(
        "rulec_route_rejections_total",
        "route requests answered with an error, by code",
        &["code"],
        &s.rejections,
    );
    o.head(
        "rulec_route_duration_seconds",
        "histogram",
        "time to handle POST /v1/route",
    );
    o.histogram("rulec_route_duration_seconds", &[], &[], &s.route_seconds);
    o.head(
        "rulec_call_latency_seconds",
        "histogram",
        "provider call latency as reported, by model",
    );
    for (model, h) in lock(&s.call_seconds).iter() {
        o.histogram(
            "rulec_call_latency_seconds",
            &["model"],
            std::slice::from_ref(model),
            h,
        );
    }
    o.family(
        "rulec_reports_total",
        "reported outcomes, by provider and outcome",
        &["provider", "outcome"],
        &s.outcomes,
    );
    o.head("rulec_tokens_total", "counter", "tokens reported, by model");
    for (m, v) in s.tokens.snapshot() {
        o.sample("rulec_tokens_total", &["model"], &[m], v);
    }
    o.head(
        "rulec_cost_dollars_total",
        "counter",
        "cost reported, by model",
    );
    for (m, v) in s.cost.snapshot() {
        o.sample("rulec_cost_dollars_total", &["model"], &[m], v);
    }
    o.head("rulec_pool_in_flight", "gauge", "calls holding a pool slot");
    for p in g.pools() {
        o.sample(
            "rulec_pool_in_flight",
            &["pool"],
            &[p.spec.name.as_str()],
            f64::from(p.limit.in_flight()),
        );
    }
    o.head(
        "rulec_pool_max_concurrent",
        "gauge",
        "the pool's max_concurrent",
    );
    for p in g.pools() {
        o.sample(
            "rulec_pool_max_concurrent",
            &["pool"],
            &[p.spec.name.as_str()],
            f64::from(p.spec.max_concurrent),
        );
    }
    o.family(
        "rulec_pool_admissions_total",
        "slot requests, by pool and outcome (taken, full, overflow)",
        &["pool", "outcome"],
        &s.pool_admissions,
    );
    o.head(
        "rulec_provider_state",
        "gauge",
        "1 for the provider's current health state",
    );
    for (p, live) in g.providers() {
        if let Some(m) = g.health_machine(p) {
            let current = lock(&live.instance).state;
            for (i, state) in m.states.iter().enumerate() {
                let on = usize::from(current.0) == i;
                o.sample(
                    "rulec_provider_state",
                    &["provider", "state"],
                    &[live.name.clone(), state.clone()],
                    if on { 1.0 } else { 0.0 },
                );
            }
        }
    }
    o.head(
        "rulec_provider_healthy",
        "gauge",
        "1 when the provider takes traffic",
    );
    for (_, live) in g.providers() {
        o.sample(
            "rulec_provider_healthy",
            &["provider"],
            &[live.name.as_str()],
            if live.healthy() { 1.0 } else { 0.0 },
        );
    }
    o.head(
        "rulec_failover_state",
        "gauge",
        "1 for the failover machine's current state",
    );
    if let (Some(m), Some(live)) = (g.failover_machine(), &g.live.failover) {
        let current = Gateway::state_of(m, &live.instance);
        for state in &m.states {
            o.sample(
                "rulec_failover_state",
                &["state"],
                std::slice::from_ref(state),
                if *state == current { 1.0 } else { 0.0 },
            );
        }
    }
    let windows: Vec<_> = g
        .cost_windows()
        .filter_map(|(m, live)| match &m.params {
            Params::CostWindow(p) => Some((m, p, live)),
            _ => None,
        })
        .collect();
    // each metric's samples together, as the text format wants
    o.head(
        "rulec_cost_window_value",
        "gauge",
        "the metric each cost window measured last",
    );
    for (m, p, live) in &windows {
        if let Some(v) = lock(&live.last).and_then(|x| x.get(p.metric)) {
            o.sample(
                "rulec_cost_window_value",
                &["machine", "metric"],
                &[m.name.as_str(), p.metric.as_str()],
                v,
            );
        }
    }
    o.head(
        "rulec_cost_window_switched",
        "gauge",
        "1 while the window's switch is in force",
    );
    for (m, _, live) in &windows {
        let on = live.switch().is_some();
        o.sample(
            "rulec_cost_window_switched",
            &["machine"],
            &[m.name.as_str()],
            if on { 1.0 } else { 0.0 },
        );
    }
    o.family(
        "rulec_transitions_total",
        "state machine transitions",
        &["machine", "from", "to"],
        &s.transitions,
    );
    o.family(
        "rulec_reloads_total",
        "reload attempts, by result and source",
        &["result", "source"],
        &s.reloads,
    );
    o.family(
        "rulec_notifications_total",
        "notifications raised, by event",
        &["event"],
        &s.notifications,
    );
    o.family(
        "rulec_probes_total",
        "health checks sent, by provider and result",
        &["provider", "result"],
        &s.probes,
    );
    o.head(
        "rulec_budget_spent_dollars",
        "gauge",
        "dollars spent today (UTC)",
    );
    o.sample(
        "rulec_budget_spent_dollars",
        &["budget"],
        &["daily"],
        g.shared.budgets.today(app.wall_ms()),
    );
    o.head("rulec_leases", "gauge", "decisions not yet reported");
    o.sample::<&str>("rulec_leases", &[], &[], g.shared.leases.len() as f64);
    o.head(
        "rulec_leases_evicted_total",
        "counter",
        "unreported decisions dropped because the lease table was full",
    );
    o.sample::<&str>(
        "rulec_leases_evicted_total",
        &[],
        &[],
        s.leases_evicted.load(Ordering::Relaxed) as f64,
    );
    o.head(
        "rulec_leases_expired_total",
        "counter",
        "unreported decisions whose lease ran out (their pool slot was given back)",
    );
    o.sample::<&str>(
        "rulec_leases_expired_total",
        &[],
        &[],
        s.leases_expired.load(Ordering::Relaxed) as f64,
    );
    o.0
}
