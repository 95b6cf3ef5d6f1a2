//! `GET /metrics`: the Prometheus text format (version 0.0.4), encoded by
//! `prometheus-client`. The runtime knows nothing of the exposition: at each scrape the
//! counters of `runtime::stats` and the gauges of the gateway in use are copied into a
//! [`Scrape`], a collector the library encodes. The names, labels and HELP texts below are
//! what dashboards and alerts rely on; the library adds `_total` to counter names.

use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::app::App;
use crate::machines::Params;
use crate::runtime::gateway::Gateway;
use crate::runtime::stats::{lock, Family, Histogram, Sums};

type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
enum Value {
    Count(u64),
    Amount(f64),
    Histogram {
        /// `(upper bound, count in that bucket alone)`; the library accumulates them
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    },
}

/// One family: its name (without `_total` for counters), HELP text, type and samples.
#[derive(Debug)]
struct Metric {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

/// The values of one scrape, in exposition order.
#[derive(Debug, Default)]
struct Scrape(Vec<Metric>);

impl Scrape {
    /// Starts a family; every family is listed, with or without samples, so that its
    /// HELP and TYPE are there for whoever reads the exposition.
    fn family(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: MetricType,
    ) -> &mut Vec<(Labels, Value)> {
        let i = self.0.len();
        self.0.push(Metric {
            name,
            help,
            kind,
            samples: Vec::new(),
        });
        &mut self.0[i].samples
    }

    fn counters(
        &mut self,
        name: &'static str,
        help: &'static str,
        keys: &[&'static str],
        f: &Family,
    ) {
        let samples = self.family(name, help, MetricType::Counter);
        for (values, n) in f.snapshot() {
            samples.push((labels(keys, values), Value::Count(n)));
        }
    }

    fn sums(&mut self, name: &'static str, help: &'static str, key: &'static str, s: &Sums) {
        let samples = self.family(name, help, MetricType::Counter);
        for (value, v) in s.snapshot() {
            samples.push((vec![(key, value)], Value::Amount(v)));
        }
    }
}

fn labels(keys: &[&'static str], values: Vec<String>) -> Labels {
    keys.iter().copied().zip(values).collect()
}

fn histogram(h: &Histogram) -> Value {
    let (buckets, count, sum) = h.snapshot();
    Value::Histogram {
        buckets,
        count,
        sum,
    }
}

fn flag(on: bool) -> Value {
    Value::Count(u64::from(on))
}

fn encode_value(kind: MetricType, value: &Value, mut e: MetricEncoder) -> std::fmt::Result {
    match (value, kind) {
        (Value::Count(n), MetricType::Counter) => e.encode_counter::<NoLabelSet, _, u64>(n, None),
        (Value::Amount(v), MetricType::Counter) => e.encode_counter::<NoLabelSet, _, f64>(v, None),
        (Value::Count(n), _) => e.encode_gauge(n),
        (Value::Amount(v), _) => e.encode_gauge(v),
        (
            Value::Histogram {
                buckets,
                count,
                sum,
            },
            _,
        ) => e.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None),
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        for m in &self.0 {
            let mut family = encoder.encode_descriptor(m.name, m.help, None, m.kind)?;
            for (labels, value) in &m.samples {
                encode_value(m.kind, value, family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}

/// The exposition of the gateway in use and the server's counters.
pub fn render(app: &App) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(scrape(app)));
    let mut text = String::new();
    // writing into a String cannot fail, and every value above is finite or encodable
    if prometheus_text::encode(&mut text, &registry).is_err() {
        tracing::error!("the metrics could not be encoded");
    }
    text
}

fn scrape(app: &App) -> Scrape {
    let g = app.gateway();
    let s = &g.shared.stats;
    let mut o = Scrape::default();
    o.family("rulec_bundle_info", "the bundle in use", MetricType::Gauge)
        .push((vec![("hash", g.hash().to_string())], Value::Count(1)));
    o.counters(
        "rulec_decisions",
        "decisions made, by rule and model",
        &["rule", "model"],
        &s.decisions,
    );
    o.counters(
        "rulec_route_rejections",
        "route requests answered with an error, by code",
        &["code"],
        &s.rejections,
    );
    o.counters(
        "rulec_proxy_calls",
        "calls through the proxy endpoints, by endpoint and result (ok, cut, or the error code)",
        &["endpoint", "result"],
        &s.proxy_calls,
    );
    o.counters(
        "rulec_proxy_failovers",
        "proxied calls answered by a later attempt than the first, by endpoint",
        &["endpoint"],
        &s.proxy_failovers,
    );
    o.family(
        "rulec_route_duration_seconds",
        "time to handle POST /v1/route",
        MetricType::Histogram,
    )
    .push((Vec::new(), histogram(&s.route_seconds)));
    let calls = o.family(
        "rulec_call_latency_seconds",
        "provider call latency as reported, by model",
        MetricType::Histogram,
    );
    for (model, h) in lock(&s.call_seconds).iter() {
        calls.push((vec![("model", model.clone())], histogram(h)));
    }
    o.counters(
        "rulec_reports",
        "reported outcomes, by provider and outcome",
        &["provider", "outcome"],
        &s.outcomes,
    );
    o.sums(
        "rulec_tokens",
        "tokens reported, by model",
        "model",
        &s.tokens,
    );
    o.sums(
        "rulec_cost_dollars",
        "cost reported, by model",
        "model",
        &s.cost,
    );
    let in_flight = o.family(
        "rulec_pool_in_flight",
        "calls holding a pool slot",
        MetricType::Gauge,
    );
    for p in g.pools() {
        let n = u64::from(p.limit.in_flight());
        in_flight.push((vec![("pool", p.spec.name.clone())], Value::Count(n)));
    }
    let max = o.family(
        "rulec_pool_max_concurrent",
        "the pool's max_concurrent",
        MetricType::Gauge,
    );
    for p in g.pools() {
        let n = u64::from(p.spec.max_concurrent);
        max.push((vec![("pool", p.spec.name.clone())], Value::Count(n)));
    }
    o.counters(
        "rulec_pool_admissions",
        "slot requests, by pool and outcome (taken, full, overflow)",
        &["pool", "outcome"],
        &s.pool_admissions,
    );
    let states = o.family(
        "rulec_provider_state",
        "1 for the provider's current health state",
        MetricType::Gauge,
    );
    for (p, live) in g.providers() {
        if let Some(m) = g.health_machine(p) {
            let current = lock(&live.instance).state;
            for (i, state) in m.states.iter().enumerate() {
                let keys = vec![("provider", live.name.clone()), ("state", state.clone())];
                states.push((keys, flag(usize::from(current.0) == i)));
            }
        }
    }
    let healthy = o.family(
        "rulec_provider_healthy",
        "1 when the provider takes traffic",
        MetricType::Gauge,
    );
    for (_, live) in g.providers() {
        let on = live.healthy();
        healthy.push((vec![("provider", live.name.clone())], flag(on)));
    }
    let failover = o.family(
        "rulec_failover_state",
        "1 for the failover machine's current state",
        MetricType::Gauge,
    );
    if let (Some(m), Some(live)) = (g.failover_machine(), &g.live.failover) {
        let current = Gateway::state_of(m, &live.instance);
        for state in &m.states {
            failover.push((vec![("state", state.clone())], flag(*state == current)));
        }
    }
    let windows: Vec<_> = g
        .cost_windows()
        .filter_map(|(m, live)| match &m.params {
            Params::CostWindow(p) => Some((m, p, live)),
            _ => None,
        })
        .collect();
    let measured = o.family(
        "rulec_cost_window_value",
        "the metric each cost window measured last",
        MetricType::Gauge,
    );
    for (m, p, live) in &windows {
        if let Some(v) = lock(&live.last).and_then(|x| x.get(p.metric)) {
            let keys = vec![
                ("machine", m.name.clone()),
                ("metric", p.metric.as_str().to_string()),
            ];
            measured.push((keys, Value::Amount(v)));
        }
    }
    let switched = o.family(
        "rulec_cost_window_switched",
        "1 while the window's switch is in force",
        MetricType::Gauge,
    );
    for (m, _, live) in &windows {
        switched.push((
            vec![("machine", m.name.clone())],
            flag(live.switch().is_some()),
        ));
    }
    o.counters(
        "rulec_transitions",
        "state machine transitions",
        &["machine", "from", "to"],
        &s.transitions,
    );
    o.counters(
        "rulec_reloads",
        "reload attempts, by result and source",
        &["result", "source"],
        &s.reloads,
    );
    o.counters(
        "rulec_notifications",
        "notifications raised, by event",
        &["event"],
        &s.notifications,
    );
    o.counters(
        "rulec_probes",
        "health checks sent, by provider and result",
        &["provider", "result"],
        &s.probes,
    );
    o.family(
        "rulec_budget_spent_dollars",
        "dollars spent today (the budget day: UTC, or the policy's time_zone)",
        MetricType::Gauge,
    )
    .push((
        vec![("budget", "daily".to_string())],
        Value::Amount(g.shared.budgets.today(app.wall_ms())),
    ));
    o.family(
        "rulec_leases",
        "decisions not yet reported",
        MetricType::Gauge,
    )
    .push((Vec::new(), Value::Count(g.shared.leases.len() as u64)));
    o.family(
        "rulec_leases_evicted",
        "unreported decisions dropped because the lease table was full",
        MetricType::Counter,
    )
    .push((
        Vec::new(),
        Value::Count(s.leases_evicted.load(Ordering::Relaxed)),
    ));
    o.family(
        "rulec_leases_expired",
        "unreported decisions whose lease ran out (their pool slot was given back)",
        MetricType::Counter,
    )
    .push((
        Vec::new(),
        Value::Count(s.leases_expired.load(Ordering::Relaxed)),
    ));
    if let Some(ledger) = app.ledger.get() {
        let l = ledger.stats();
        let entries = o.family(
            "rulec_ledger_entries",
            "changes to the spend ledger, by result (committed; refused: lost after waiting for room, each logged)",
            MetricType::Counter,
        );
        entries.push((
            vec![("result", "committed".to_string())],
            Value::Count(l.committed),
        ));
        entries.push((
            vec![("result", "refused".to_string())],
            Value::Count(l.refused),
        ));
        o.family(
            "rulec_ledger_failed_commits",
            "spend ledger transactions that failed (retried with their entries)",
            MetricType::Counter,
        )
        .push((Vec::new(), Value::Count(l.failed_commits)));
    }
    o
}
