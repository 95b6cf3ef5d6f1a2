//! The compiled state machines (`rulec::machines`): whole stories driven through
//! `step` on policies written as YAML, the example gateway's machines snapshotted, the
//! serde round trip, and proptest invariants over random policies and random event
//! sequences.

use proptest::prelude::*;
use rulec::driver::{self, Options};
use rulec::machines::{
    self, backoff_ms, cost, failover, health, step, transition, transition_table, Action,
    BackoffKind, DowngradeTarget, Event, EventKind, Fallback, Instance, Machine, Machines, Metric,
    Metrics, NotifyEvent, Params, SwitchKind,
};
use rulec::policy::Policy;

use crate::common::root;

/// The policy of one YAML text, which must check without errors.
fn policy(yaml: &str) -> Policy {
    let checked = driver::check_text("x.yaml", yaml.as_bytes());
    let errors: Vec<String> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{:?}: {}", d.code, d.message))
        .collect();
    assert!(
        errors.is_empty(),
        "the policy has errors: {errors:#?}\n{yaml}"
    );
    checked.policy
}

fn gateway() -> Policy {
    let path = root().join("rules/examples/gateway");
    let checked = driver::check_paths(&[path], Options::default()).expect("the example loads");
    assert!(!checked.has_errors(), "the example gateway checks clean");
    checked.policy
}

/// An instance of one machine with a virtual clock, stepped event by event.
struct Run<'m> {
    machine: &'m Machine,
    inst: Instance,
    now: u64,
}

impl<'m> Run<'m> {
    fn new(machine: &'m Machine) -> Run<'m> {
        Run {
            machine,
            inst: machine.start(),
            now: 0,
        }
    }

    fn at(&mut self, now: u64) -> &mut Self {
        self.now = now;
        self
    }

    fn event(&mut self, event: Event) -> Vec<Action> {
        let (next, actions) = step(self.machine, &self.inst, &event);
        self.inst = next;
        actions
    }

    fn on(&mut self, kind: EventKind) -> Vec<Action> {
        self.event(Event::new(kind, self.now))
    }

    fn window(&mut self, metrics: Metrics) -> Vec<Action> {
        self.event(Event::window(self.now, metrics))
    }

    /// Whether the machine would ignore this event now (and then it is not applied).
    fn ignores(&self, kind: EventKind) -> bool {
        transition(self.machine, &self.inst, &Event::new(kind, self.now)).ignored()
    }

    fn state(&self) -> &str {
        self.machine.state_name(self.inst.state)
    }

    /// Milliseconds from now until the timer.
    fn timer_in(&self) -> Option<u64> {
        self.inst.timer_at_ms.map(|t| t - self.now)
    }
}

fn notify(e: NotifyEvent) -> Action {
    Action::Notify(e)
}

fn metric(m: Metric, v: f64) -> Metrics {
    Metrics::default().with(m, v)
}

const PROVIDERS: &str = r#"
providers:
  anthropic:
    kind: anthropic
    base_url: "https://api.anthropic.com"
  openai:
    kind: openai
    base_url: "https://api.openai.com/v1"
  google:
    kind: google
    base_url: "https://generativelanguage.googleapis.com"
gateway:
  models:
    claude_opus:
      provider: "anthropic"
      model: "claude-opus-4"
      max_tokens: 128000
      cost_per_token: 0.000015
    gpt_55:
      provider: "openai"
      model: "gpt-5.5"
      max_tokens: 128000
      cost_per_token: 0.00001
  routing_strategy:
    rules:
      - fallback: "claude_opus"
"#;

fn with_providers(rest: &str) -> Policy {
    policy(&format!("{PROVIDERS}{rest}"))
}

// ---------------------------------------------------------------- health

#[test]
fn three_failures_then_backoff_probes_then_recovery() {
    let p = with_providers(
        r#"
failover:
  primary: "anthropic"
  fallbacks:
    - provider: "openai"
      timeout_ms: 5000
  recovery:
    auto_recover: true
    backoff: "exponential"
    interval: "10s"
    max_retries: 4
"#,
    );
    let ms = machines::compile(&p);
    let m = ms.health_of("anthropic").expect("a health machine");
    let mut r = Run::new(m);

    assert!(r.at(1_000).on(EventKind::Failure).is_empty());
    assert!(r.at(2_000).on(EventKind::Failure).is_empty());
    assert_eq!(r.state(), "healthy");
    let down = r.at(3_000).on(EventKind::Failure);
    assert_eq!(r.state(), "unhealthy");
    assert_eq!(
        down,
        [Action::MarkUnhealthy, notify(NotifyEvent::ProviderDown)]
    );
    assert_eq!(r.timer_in(), Some(10_000));

    // before the timer nothing happens, and that is visible
    r.at(12_999);
    assert!(r.ignores(EventKind::Tick));
    assert_eq!(r.on(EventKind::Tick), []);
    assert_eq!(r.state(), "unhealthy");

    assert_eq!(r.at(13_000).on(EventKind::Tick), [Action::Probe]);
    assert_eq!(r.state(), "probing");
    assert_eq!(r.on(EventKind::ProbeFailed), []);
    assert_eq!(r.state(), "unhealthy");
    assert_eq!(r.timer_in(), Some(20_000), "the second wait doubles");

    assert_eq!(r.at(33_000).on(EventKind::Tick), [Action::Probe]);
    assert_eq!(
        r.at(33_100).on(EventKind::ProbeOk),
        [Action::MarkHealthy, notify(NotifyEvent::ProviderRecovered)]
    );
    assert_eq!(r.state(), "healthy");
    assert_eq!(r.inst, m.start(), "counters and timer are reset");
}

#[test]
fn failures_must_be_consecutive() {
    let p = with_providers("");
    let ms = machines::compile(&p);
    let mut r = Run::new(ms.health_of("anthropic").expect("a health machine"));
    for kind in [
        EventKind::Failure,
        EventKind::Failure,
        EventKind::Success,
        EventKind::Failure,
        EventKind::Failure,
    ] {
        assert!(r.on(kind).is_empty());
    }
    assert_eq!(r.state(), "healthy");
    r.on(EventKind::Failure);
    assert_eq!(r.state(), "unhealthy");
}

#[test]
fn linear_backoff_grows_until_max_retries_then_gives_up() {
    let p = with_providers(
        r#"
failover:
  primary: "anthropic"
  fallbacks:
    - provider: "openai"
      timeout_ms: 5000
  recovery:
    backoff: "linear"
    interval: "1m"
    max_retries: 3
"#,
    );
    let ms = machines::compile(&p);
    let mut r = Run::new(
        ms.health_of("openai")
            .expect("fallbacks are health-checked too"),
    );
    for _ in 0..3 {
        r.on(EventKind::Failure);
    }
    let mut waits = Vec::new();
    let mut probes = 0;
    while r.state() != "given_up" {
        let wait = r
            .timer_in()
            .expect("an unhealthy provider waits for its next probe");
        waits.push(wait);
        r.at(r.now + wait);
        if r.on(EventKind::Tick) == [Action::Probe] {
            probes += 1;
        }
        let actions = r.on(EventKind::ProbeFailed);
        if r.state() == "given_up" {
            assert_eq!(actions, [notify(NotifyEvent::CriticalAlert)]);
        }
    }
    assert_eq!(waits, [60_000, 120_000, 180_000]);
    assert_eq!(probes, 3);
    assert_eq!(r.inst.timer_at_ms, None, "no more probes are scheduled");
    r.at(r.now + 10_000_000);
    assert!(r.ignores(EventKind::Tick));
    assert!(r.ignores(EventKind::Success));
    // only an operator brings it back
    assert_eq!(
        r.on(EventKind::Reset),
        [Action::MarkHealthy, notify(NotifyEvent::ProviderRecovered)]
    );
    assert_eq!(r.state(), "healthy");
}

#[test]
fn zero_retries_give_up_at_the_threshold() {
    let p = with_providers(
        r#"
failover:
  primary: "anthropic"
  fallbacks:
    - provider: "openai"
      timeout_ms: 5000
  recovery:
    interval: "1m"
    max_retries: 0
"#,
    );
    let ms = machines::compile(&p);
    let mut r = Run::new(ms.health_of("anthropic").expect("a health machine"));
    r.on(EventKind::Failure);
    r.on(EventKind::Failure);
    assert_eq!(
        r.on(EventKind::Failure),
        [
            Action::MarkUnhealthy,
            notify(NotifyEvent::ProviderDown),
            notify(NotifyEvent::CriticalAlert)
        ]
    );
    assert_eq!(r.state(), "given_up");
}

#[test]
fn health_checks_come_from_the_strictest_pool_then_the_default() {
    let p = with_providers(
        r#"
load_balancing:
  strategy: "round_robin"
  health_check:
    interval: 30s
    timeout: 5s
    unhealthy_threshold: 4
  pools:
    a:
      models: ["claude_opus"]
      max_concurrent: 10
      health_check:
        interval: 20s
        timeout: 10s
        unhealthy_threshold: 5
    b:
      models: ["claude_opus"]
      max_concurrent: 10
      health_check:
        interval: 60s
        timeout: 2s
        unhealthy_threshold: 2
"#,
    );
    let check = |provider: &str| match &machines::compile(&p)
        .health_of(provider)
        .expect("a health machine")
        .params
    {
        Params::Health(h) => h.check.clone(),
        other => panic!("not health params: {other:?}"),
    };
    let anthropic = check("anthropic");
    assert_eq!(
        (
            anthropic.interval_ms,
            anthropic.timeout_ms,
            anthropic.unhealthy_threshold
        ),
        (20_000, 2_000, 2)
    );
    assert_eq!(
        anthropic.origin,
        health::CheckOrigin::Pools(vec!["a".into(), "b".into()])
    );
    let openai = check("openai");
    assert_eq!(
        (
            openai.interval_ms,
            openai.timeout_ms,
            openai.unhealthy_threshold
        ),
        (30_000, 5_000, 4)
    );
    assert_eq!(openai.origin, health::CheckOrigin::LoadBalancing);

    let bare = with_providers("");
    let ms = machines::compile(&bare);
    match &ms.health_of("openai").expect("a health machine").params {
        Params::Health(h) => {
            assert_eq!(h.check.origin, health::CheckOrigin::Default);
            assert_eq!(
                h.check.unhealthy_threshold,
                health::DEFAULT_UNHEALTHY_THRESHOLD
            );
            assert_eq!(h.recovery.origin, health::RecoveryOrigin::Default);
            assert_eq!(h.recovery.max_retries, health::DEFAULT_MAX_RETRIES);
        }
        other => panic!("not health params: {other:?}"),
    }
    assert!(ms.health_of("google").is_none(), "no model runs on google");
}

#[test]
fn the_gateway_checks_each_provider_as_its_pools_say() {
    let ms = machines::compile(&gateway());
    let names: Vec<&str> = ms.health.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "health.anthropic",
            "health.google",
            "health.local",
            "health.openai",
            "health.openclaw"
        ]
    );
    let interval = |provider: &str| match &ms.health_of(provider).expect("a machine").params {
        Params::Health(h) => (h.check.interval_ms, h.check.timeout_ms),
        other => panic!("not health params: {other:?}"),
    };
    // the budget pool checks every 10 s; the others use the 30 s default
    assert_eq!(interval("local"), (10_000, 2_000));
    assert_eq!(interval("openclaw"), (10_000, 2_000));
    assert_eq!(interval("anthropic"), (30_000, 5_000));
}

// ---------------------------------------------------------------- cost windows

fn cost_machine(ms: &Machines, metric: Metric) -> &Machine {
    ms.cost_windows
        .iter()
        .find(|m| matches!(&m.params, Params::CostWindow(c) if c.metric == metric))
        .expect("a machine for the metric")
}

#[test]
fn cost_breach_downgrades_and_recovery_restores() {
    let ms = machines::compile(&gateway());
    let m = cost_machine(&ms, Metric::CostPerTask);
    match &m.params {
        Params::CostWindow(c) => {
            assert_eq!((c.window_ms, c.check_interval_ms), (300_000, 30_000));
        }
        other => panic!("not cost params: {other:?}"),
    }
    let mut r = Run::new(m);
    assert_eq!(r.window(metric(Metric::CostPerTask, 0.04)), []);
    assert_eq!(r.state(), "normal");
    assert_eq!(
        r.at(30_000).window(metric(Metric::CostPerTask, 0.12)),
        [
            Action::Downgrade {
                to: DowngradeTarget::NextCheaper
            },
            notify(NotifyEvent::ModelSwitched)
        ]
    );
    assert_eq!(r.state(), "switched");
    assert_eq!(r.at(60_000).window(metric(Metric::CostPerTask, 0.2)), []);
    // a window that measured something else says nothing about cost
    let other = Event::window(90_000, metric(Metric::ErrorRate, 0.5));
    assert!(transition(m, &r.inst, &other).ignored());
    assert_eq!(
        r.at(120_000).window(metric(Metric::CostPerTask, 0.1)),
        [
            Action::Restore {
                undo: SwitchKind::DowngradeModel
            },
            notify(NotifyEvent::ModelSwitched)
        ],
        "at the threshold is back to normal"
    );
    assert_eq!(r.state(), "normal");
}

#[test]
fn error_rate_switches_provider() {
    let ms = machines::compile(&gateway());
    let mut r = Run::new(cost_machine(&ms, Metric::ErrorRate));
    // 5% in the policy is 0.05 here
    assert_eq!(r.window(metric(Metric::ErrorRate, 0.05)), []);
    assert_eq!(
        r.window(metric(Metric::ErrorRate, 0.051)),
        [Action::SwitchProvider, notify(NotifyEvent::ModelSwitched)]
    );
    assert_eq!(
        r.window(metric(Metric::ErrorRate, 0.0)),
        [
            Action::Restore {
                undo: SwitchKind::SwitchProvider
            },
            notify(NotifyEvent::ModelSwitched)
        ]
    );
}

#[test]
fn latency_falls_back_fast_and_back() {
    let ms = machines::compile(&gateway());
    let mut r = Run::new(cost_machine(&ms, Metric::LatencyP99));
    let all = Metrics {
        cost_per_task: Some(0.01),
        error_rate: Some(0.0),
        latency_p50: Some(900.0),
        latency_p95: Some(4_000.0),
        latency_p99: Some(25_000.0),
    };
    assert_eq!(
        r.window(all),
        [
            Action::FallbackFast {
                model: "openclaw_light".into()
            },
            notify(NotifyEvent::ModelSwitched)
        ]
    );
    assert_eq!(r.state(), "switched");
    r.window(metric(Metric::LatencyP99, 19_000.0));
    assert_eq!(r.state(), "normal");
}

#[test]
fn disabled_cost_awareness_compiles_no_windows() {
    let p = with_providers(
        r#"
cost_aware:
  enabled: false
  dynamic_switching:
    strategy: "cost_window"
    window_minutes: 5
    check_interval: 30s
    rules:
      - metric: "error_rate"
        threshold: 5%
        action: "switch_provider"
"#,
    );
    assert!(machines::compile(&p).cost_windows.is_empty());
}

// ---------------------------------------------------------------- failover

fn gateway_fallbacks() -> Vec<Fallback> {
    [
        ("openai", 70.0, 15_000),
        ("google", 20.0, 15_000),
        ("local", 10.0, 20_000),
    ]
    .into_iter()
    .map(|(p, w, t)| Fallback {
        provider: p.into(),
        weight: w,
        timeout_ms: t,
    })
    .collect()
}

#[test]
fn primary_down_fails_over_and_primary_up_fails_back() {
    let ms = machines::compile(&gateway());
    let m = ms.failover.as_ref().expect("a failover machine");
    let mut r = Run::new(m);
    assert!(r.ignores(EventKind::PrimaryUp));
    assert_eq!(
        r.on(EventKind::PrimaryDown),
        [
            Action::RouteToFallbacks {
                fallbacks: gateway_fallbacks()
            },
            notify(NotifyEvent::Failover)
        ]
    );
    assert_eq!(r.state(), "failed_over");
    assert!(
        r.ignores(EventKind::DrillStart),
        "no drill during a real outage"
    );
    assert_eq!(
        r.on(EventKind::PrimaryUp),
        [Action::RouteToPrimary, notify(NotifyEvent::Failover)]
    );
    assert_eq!(r.state(), "primary");
}

#[test]
fn without_auto_recover_an_operator_fails_back() {
    let p = with_providers(
        r#"
failover:
  primary: "anthropic"
  fallbacks:
    - provider: "openai"
      timeout_ms: 5000
  recovery:
    auto_recover: false
    interval: "1m"
    max_retries: 3
"#,
    );
    let ms = machines::compile(&p);
    let mut r = Run::new(ms.failover.as_ref().expect("a failover machine"));
    r.on(EventKind::PrimaryDown);
    assert_eq!(
        r.on(EventKind::PrimaryUp),
        [notify(NotifyEvent::ProviderRecovered)]
    );
    assert_eq!(r.state(), "failed_over");
    assert_eq!(r.on(EventKind::Reset), [Action::RouteToPrimary]);
    assert_eq!(r.state(), "primary");
}

fn routes(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::RouteToFallbacks { .. } | Action::RouteToPrimary))
}

#[test]
fn a_dry_run_drill_reports_without_rerouting() {
    let ms = machines::compile(&gateway());
    let m = ms.failover.as_ref().expect("a failover machine");
    match &m.params {
        Params::Failover(f) => {
            let drill = f.drill.as_ref().expect("a drill");
            assert_eq!(drill.every_ms, 6 * 3_600_000);
            assert_eq!(drill.mode, failover::DrillMode::DryRun);
        }
        other => panic!("not failover params: {other:?}"),
    }
    let mut r = Run::new(m);
    let start = r.at(1_000).on(EventKind::DrillStart);
    assert_eq!(
        start,
        [
            Action::DrillReport {
                fallbacks: gateway_fallbacks()
            },
            notify(NotifyEvent::FailoverDrill)
        ]
    );
    assert_eq!(r.state(), "drill");
    let end = r.at(2_000).on(EventKind::DrillEnd);
    assert!(!routes(&start) && !routes(&end));
    assert_eq!(r.state(), "primary");
}

#[test]
fn a_live_drill_reroutes_until_it_ends_and_yields_to_a_real_outage() {
    let p = with_providers(
        r#"
failover:
  primary: "anthropic"
  fallbacks:
    - provider: "openai"
      timeout_ms: 5000
  scheduled_failover:
    test_interval: "every 1h"
    mode: "live"
"#,
    );
    let ms = machines::compile(&p);
    let m = ms.failover.as_ref().expect("a failover machine");
    let to_openai = Action::RouteToFallbacks {
        fallbacks: vec![Fallback {
            provider: "openai".into(),
            weight: 1.0,
            timeout_ms: 5_000,
        }],
    };
    let mut r = Run::new(m);
    // notify defaults to false: no drill notification
    assert_eq!(
        r.on(EventKind::DrillStart),
        std::slice::from_ref(&to_openai)
    );
    assert_eq!(r.timer_in(), Some(failover::DEFAULT_DRILL_LENGTH_MS));
    r.at(failover::DEFAULT_DRILL_LENGTH_MS);
    assert_eq!(r.on(EventKind::Tick), [Action::RouteToPrimary]);
    assert_eq!(r.state(), "primary");

    r.on(EventKind::DrillStart);
    assert_eq!(
        r.on(EventKind::PrimaryDown),
        [to_openai, notify(NotifyEvent::Failover)]
    );
    assert_eq!(r.state(), "failed_over");
    assert_eq!(
        r.inst.timer_at_ms, None,
        "the drill's end no longer applies"
    );
}

// ---------------------------------------------------------------- bundle shape

#[test]
fn gateway_machines_snapshot() {
    let ms = machines::compile(&gateway());
    ms.validate().expect("compiled machines are consistent");
    insta::assert_json_snapshot!("gateway_machines", ms);
}

#[test]
fn gateway_transition_tables_snapshot() {
    let ms = machines::compile(&gateway());
    let tables: Vec<String> = ms.iter().map(transition_table).collect();
    insta::assert_snapshot!("gateway_transition_tables", tables.join("\n"));
}

#[test]
fn serde_round_trip_and_stable_json() {
    let ms = machines::compile(&gateway());
    let json = serde_json::to_string(&ms).expect("serializes");
    let back: Machines = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, ms);
    let again = serde_json::to_string(&machines::compile(&gateway())).expect("serializes");
    assert_eq!(json, again, "the same policy gives the same bytes");

    let ev = Event::window(5, metric(Metric::LatencyP95, 1.5));
    let text = serde_json::to_string(&ev).expect("serializes");
    assert_eq!(
        text,
        r#"{"kind":"window","now_ms":5,"metrics":{"latency_p95":1.5}}"#
    );
    assert_eq!(serde_json::from_str::<Event>(&text).expect("parses"), ev);
    let tick: Event = serde_json::from_str(r#"{"kind":"tick","now_ms":7}"#).expect("parses");
    assert_eq!(tick, Event::new(EventKind::Tick, 7));
}

#[test]
fn corrupt_machines_are_rejected_not_trusted() {
    let ms = machines::compile(&gateway());
    let mut m = ms.health[0].clone();
    m.rows[0].to = machines::StateId(9);
    assert!(m.validate().is_err());
    let mut m = ms.health[0].clone();
    m.rows[0].updates = vec![machines::Update::Inc(machines::CounterId(5))];
    assert!(m.validate().is_err());
}

// ---------------------------------------------------------------- properties

#[derive(Debug, Clone)]
struct Knobs {
    /// pool thresholds for anthropic's pools; empty: no pools
    pool_thresholds: Vec<u32>,
    default_threshold: Option<u32>,
    recovery: Option<(BackoffKind, u64, u32)>,
    auto_recover: bool,
    drill: Option<(bool, bool, u64)>,
    cost_threshold: f64,
    error_pct: u32,
    latency_ms: u64,
}

fn params() -> impl Strategy<Value = Knobs> {
    (
        prop::collection::vec(1u32..8, 0..3),
        prop::option::of(1u32..8),
        prop::option::of((
            prop_oneof![Just(BackoffKind::Linear), Just(BackoffKind::Exponential)],
            1u64..600,
            0u32..10,
        )),
        any::<bool>(),
        prop::option::of((any::<bool>(), any::<bool>(), 1u64..48)),
        1u32..100,
        1u32..50,
        100u64..30_000,
    )
        .prop_map(
            |(pool_thresholds, default_threshold, recovery, auto_recover, drill, c, e, l)| Knobs {
                pool_thresholds,
                default_threshold,
                recovery,
                auto_recover,
                drill,
                cost_threshold: f64::from(c) / 100.0,
                error_pct: e,
                latency_ms: l,
            },
        )
}

fn yaml(p: &Knobs) -> String {
    let mut s = PROVIDERS.to_string();
    let check = |t: u32| format!("interval: 30s\n    timeout: 5s\n    unhealthy_threshold: {t}");
    if p.default_threshold.is_some() || !p.pool_thresholds.is_empty() {
        s.push_str("load_balancing:\n  strategy: \"round_robin\"\n");
        if let Some(t) = p.default_threshold {
            s.push_str(&format!("  health_check:\n    {}\n", check(t)));
        }
        if !p.pool_thresholds.is_empty() {
            s.push_str("  pools:\n");
            for (i, t) in p.pool_thresholds.iter().enumerate() {
                s.push_str(&format!(
                    "    p{i}:\n      models: [\"claude_opus\"]\n      max_concurrent: 5\n      health_check:\n        interval: 20s\n        timeout: 2s\n        unhealthy_threshold: {t}\n"
                ));
            }
        }
    }
    s.push_str(
        "failover:\n  primary: \"anthropic\"\n  fallbacks:\n    - provider: \"openai\"\n      weight: 100\n      timeout_ms: 50\n",
    );
    if let Some((notify, live, hours)) = p.drill {
        s.push_str(&format!(
            "  scheduled_failover:\n    test_interval: \"every {hours}h\"\n    mode: \"{}\"\n    notify: {notify}\n",
            if live { "live" } else { "dry_run" }
        ));
    }
    if let Some((kind, secs, retries)) = p.recovery {
        s.push_str(&format!(
            "  recovery:\n    auto_recover: {}\n    backoff: \"{}\"\n    interval: \"{secs}s\"\n    max_retries: {retries}\n",
            p.auto_recover,
            kind.as_str()
        ));
    }
    s.push_str(&format!(
        r#"cost_aware:
  dynamic_switching:
    strategy: "cost_window"
    window_minutes: 5
    check_interval: 30s
    rules:
      - metric: "cost_per_task"
        threshold: ${}
        action: "downgrade_model"
        downgrade_to: "gpt_55"
      - metric: "error_rate"
        threshold: {}%
        action: "switch_provider"
      - metric: "latency_p95"
        threshold: {}ms
        action: "fallback_fast"
        fallback_to: "gpt_55"
"#,
        p.cost_threshold, p.error_pct, p.latency_ms
    ));
    s
}

/// An event kind and how far the clock moves before it.
fn events(kinds: &'static [EventKind]) -> impl Strategy<Value = Vec<(EventKind, u64)>> {
    let time = prop_oneof![0u64..1_000, 0u64..100_000_000];
    prop::collection::vec((prop::sample::select(kinds), time), 0..120)
}

/// Weighted towards failures, due ticks and failed probes, so that runs reach the
/// long backoffs and `given_up`; the rest (and one kind the machine has no row for)
/// interleave.
const HEALTH_EVENTS: &[EventKind] = &[
    EventKind::Failure,
    EventKind::Failure,
    EventKind::Failure,
    EventKind::Success,
    EventKind::Tick,
    EventKind::Tick,
    EventKind::Tick,
    EventKind::ProbeFailed,
    EventKind::ProbeFailed,
    EventKind::ProbeFailed,
    EventKind::ProbeOk,
    EventKind::Reset,
    EventKind::PrimaryDown,
];

const FAILOVER_EVENTS: &[EventKind] = &[
    EventKind::PrimaryDown,
    EventKind::PrimaryUp,
    EventKind::DrillStart,
    EventKind::DrillEnd,
    EventKind::Tick,
    EventKind::Reset,
    EventKind::Failure,
];

fn windows() -> impl Strategy<Value = Vec<Metrics>> {
    let value = prop::option::of(prop_oneof![0.0f64..0.2, 0.0f64..40_000.0]);
    let metrics = (
        value.clone(),
        value.clone(),
        value.clone(),
        value.clone(),
        value,
    )
        .prop_map(|(a, b, c, d, e)| Metrics {
            cost_per_task: a,
            error_rate: b,
            latency_p50: c,
            latency_p95: d,
            latency_p99: e,
        });
    prop::collection::vec(metrics, 0..40)
}

/// Runs the events, checking the invariants every machine owes after every step;
/// returns the trace (instance and actions after each event).
fn run_checked(m: &Machine, evs: &[Event]) -> Vec<(Instance, Vec<Action>)> {
    let mut inst = m.start();
    let mut trace = Vec::new();
    for ev in evs {
        let t = transition(m, &inst, ev);
        if t.ignored() {
            assert_eq!(t.instance, inst, "an ignored event changes nothing");
            assert!(t.actions.is_empty());
        }
        let (next, actions) = step(m, &inst, ev);
        assert_eq!((next, actions.as_slice()), (t.instance, t.actions));
        assert!(
            usize::from(next.state.0) < m.states.len(),
            "state outside the machine"
        );
        for (value, spec) in next.counters.iter().zip(&m.counters) {
            assert!(
                *value <= spec.limit,
                "{}: counter {} = {value} over {}",
                m.name,
                spec.name,
                spec.limit
            );
        }
        inst = next;
        trace.push((inst, actions));
    }
    trace
}

fn timed(raw: &[(EventKind, u64)]) -> Vec<Event> {
    let mut now = 0u64;
    raw.iter()
        .map(|(kind, dt)| {
            now += dt;
            Event::new(*kind, now)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn health_invariants(p in params(), raw in events(HEALTH_EVENTS)) {
        let policy = policy(&yaml(&p));
        let ms = machines::compile(&policy);
        prop_assert!(ms.validate().is_ok());
        let m = ms.health_of("anthropic").expect("a health machine");
        let Params::Health(hp) = &m.params else { panic!("health params") };
        if let Some(min) = p.pool_thresholds.iter().min() {
            prop_assert_eq!(hp.check.unhealthy_threshold, *min);
        } else if let Some(t) = p.default_threshold {
            prop_assert_eq!(hp.check.unhealthy_threshold, t);
        }
        let r = &hp.recovery;
        let last = backoff_ms(r.interval_ms, r.backoff, r.max_retries.saturating_sub(1));
        let evs = timed(&raw);
        let trace = run_checked(m, &evs);
        prop_assert_eq!(&trace, &run_checked(m, &evs), "deterministic");

        let mut before = m.start();
        let mut probes = 0u32;
        let mut last_wait = 0u64;
        for (ev, (inst, actions)) in evs.iter().zip(&trace) {
            prop_assert!(inst.counters[1] <= r.max_retries);
            if before.state == health::HEALTHY && inst.state != health::HEALTHY {
                probes = 0;
                last_wait = 0;
            }
            probes += actions.iter().filter(|a| **a == Action::Probe).count() as u32;
            prop_assert!(probes <= r.max_retries, "probed more than max_retries");
            if inst.state == health::UNHEALTHY && before.state != health::UNHEALTHY {
                let wait = inst.timer_at_ms.expect("an unhealthy provider waits") - ev.now_ms;
                prop_assert_eq!(wait, backoff_ms(r.interval_ms, r.backoff, inst.counters[1]));
                prop_assert!(wait >= last_wait, "backoff shrank: {} after {}", wait, last_wait);
                prop_assert!(wait <= last, "backoff past the last retry");
                last_wait = wait;
            }
            if inst.state == health::GIVEN_UP {
                prop_assert_eq!(inst.timer_at_ms, None);
            }
            before = *inst;
        }
    }

    #[test]
    fn cost_window_invariants(p in params(), ws in windows()) {
        let policy = policy(&yaml(&p));
        let ms = machines::compile(&policy);
        prop_assert_eq!(ms.cost_windows.len(), 3);
        for m in &ms.cost_windows {
            let Params::CostWindow(c) = &m.params else { panic!("cost params") };
            let evs: Vec<Event> = ws
                .iter()
                .enumerate()
                .map(|(i, w)| Event::window(i as u64 * c.check_interval_ms, *w))
                .collect();
            let trace = run_checked(m, &evs);
            prop_assert_eq!(&trace, &run_checked(m, &evs), "deterministic");
            // switched exactly when the latest window that measured the metric was above
            let mut above = false;
            for (ev, (inst, _)) in evs.iter().zip(&trace) {
                if let Some(v) = ev.metrics.get(c.metric) {
                    above = v > c.threshold;
                }
                prop_assert_eq!(inst.state == cost::SWITCHED, above);
            }
        }
    }

    #[test]
    fn failover_invariants(p in params(), raw in events(FAILOVER_EVENTS)) {
        let policy = policy(&yaml(&p));
        let ms = machines::compile(&policy);
        let m = ms.failover.as_ref().expect("a failover machine");
        let Params::Failover(fp) = &m.params else { panic!("failover params") };
        let evs = timed(&raw);
        let trace = run_checked(m, &evs);
        prop_assert_eq!(&trace, &run_checked(m, &evs), "deterministic");
        let mut before = m.start();
        for (ev, (inst, actions)) in evs.iter().zip(&trace) {
            let dry = fp.drill.as_ref().is_some_and(|d| d.mode == failover::DrillMode::DryRun);
            let drill_step = before.state == failover::DRILL || inst.state == failover::DRILL;
            if dry && drill_step && ev.kind != EventKind::PrimaryDown {
                prop_assert!(!routes(actions), "a dry run rerouted: {:?}", actions);
            }
            if fp.drill.is_none() {
                prop_assert!(inst.state != failover::DRILL);
            }
            if !fp.auto_recover && ev.kind == EventKind::PrimaryUp {
                prop_assert!(inst.state != failover::PRIMARY || before.state == failover::PRIMARY);
            }
            before = *inst;
        }
    }

    #[test]
    fn compiled_machines_round_trip(p in params()) {
        let policy = policy(&yaml(&p));
        let ms = machines::compile(&policy);
        let json = serde_json::to_string(&ms).expect("serializes");
        let back: Machines = serde_json::from_str(&json).expect("deserializes");
        prop_assert_eq!(&back, &ms);
        prop_assert_eq!(json, serde_json::to_string(&machines::compile(&policy)).expect("serializes"));
    }
}
