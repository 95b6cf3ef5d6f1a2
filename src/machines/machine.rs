//! The machine data model and its interpreter: states, rows, guards, updates, actions,
//! events, instances, and the pure [`step`] / [`transition`] that the server and the
//! tests both drive.
//!
//! A machine is plain data so that it can ship inside the bundle; its serde shape is
//! part of the bundle format (externally tagged enums, snake_case names, fields in
//! declaration order), so renaming anything here changes every bundle's hash.

use serde::{Deserialize, Serialize};

/// How many counters an instance carries. A fixed array keeps [`Instance`] `Copy`, so a
/// step allocates nothing; the health machine, the largest, needs two.
pub const MAX_COUNTERS: usize = 2;

/// An index into [`Machine::states`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StateId(pub u8);

/// An index into [`Machine::counters`] and [`Instance::counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CounterId(pub u8);

/// What happened. One closed set for every machine: a machine simply has no rows for
/// the kinds that do not concern it, and such events are reported as ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// a request to the provider (or an active health check) succeeded
    Success,
    /// a request to the provider (or an active health check) failed
    Failure,
    /// time passed; rows guarded by [`Guard::TimerDue`] fire when the timer is due
    Tick,
    ProbeOk,
    ProbeFailed,
    /// an operator reset (health) or manual fail-back (failover)
    Reset,
    /// a cost window closed; the event carries its metrics
    Window,
    PrimaryDown,
    PrimaryUp,
    DrillStart,
    DrillEnd,
}

impl EventKind {
    pub const ALL: [EventKind; 11] = [
        EventKind::Success,
        EventKind::Failure,
        EventKind::Tick,
        EventKind::ProbeOk,
        EventKind::ProbeFailed,
        EventKind::Reset,
        EventKind::Window,
        EventKind::PrimaryDown,
        EventKind::PrimaryUp,
        EventKind::DrillStart,
        EventKind::DrillEnd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Success => "success",
            EventKind::Failure => "failure",
            EventKind::Tick => "tick",
            EventKind::ProbeOk => "probe_ok",
            EventKind::ProbeFailed => "probe_failed",
            EventKind::Reset => "reset",
            EventKind::Window => "window",
            EventKind::PrimaryDown => "primary_down",
            EventKind::PrimaryUp => "primary_up",
            EventKind::DrillStart => "drill_start",
            EventKind::DrillEnd => "drill_end",
        }
    }
}

pub use crate::policy::Metric;

/// The measurements of one cost window. A metric the window could not measure (no
/// traffic, no latency samples) is `None`, and rows testing it do not fire.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_task: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99: Option<f64>,
}

impl Metrics {
    pub fn get(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::CostPerTask => self.cost_per_task,
            Metric::ErrorRate => self.error_rate,
            Metric::LatencyP50 => self.latency_p50,
            Metric::LatencyP95 => self.latency_p95,
            Metric::LatencyP99 => self.latency_p99,
        }
    }

    /// These metrics with one more value set.
    pub fn with(mut self, metric: Metric, value: f64) -> Metrics {
        let slot = match metric {
            Metric::CostPerTask => &mut self.cost_per_task,
            Metric::ErrorRate => &mut self.error_rate,
            Metric::LatencyP50 => &mut self.latency_p50,
            Metric::LatencyP95 => &mut self.latency_p95,
            Metric::LatencyP99 => &mut self.latency_p99,
        };
        *slot = Some(value);
        self
    }

    pub fn is_empty(&self) -> bool {
        *self == Metrics::default()
    }
}

/// One input to a machine. `now_ms` is the caller's clock (virtual time in tests), so
/// that stepping stays pure and replayable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub now_ms: u64,
    #[serde(default, skip_serializing_if = "Metrics::is_empty")]
    pub metrics: Metrics,
}

impl Event {
    pub fn new(kind: EventKind, now_ms: u64) -> Event {
        Event {
            kind,
            now_ms,
            metrics: Metrics::default(),
        }
    }

    /// A closed cost window.
    pub fn window(now_ms: u64, metrics: Metrics) -> Event {
        Event {
            kind: EventKind::Window,
            now_ms,
            metrics,
        }
    }
}

/// When a row may fire, beyond its state and event kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Guard {
    Always,
    /// `counter < limit`
    CounterBelow {
        counter: CounterId,
        limit: u32,
    },
    /// `counter >= limit`
    CounterAtLeast {
        counter: CounterId,
        limit: u32,
    },
    /// a timer is set and `now_ms` has reached it
    TimerDue,
    /// the metric is present and strictly above the threshold
    MetricAbove {
        metric: Metric,
        threshold: f64,
    },
    /// the metric is present and at or below the threshold
    MetricAtMost {
        metric: Metric,
        threshold: f64,
    },
}

impl Guard {
    pub fn holds(&self, inst: &Instance, event: &Event) -> bool {
        match *self {
            Guard::Always => true,
            Guard::CounterBelow { counter, limit } => inst.counter(counter) < limit,
            Guard::CounterAtLeast { counter, limit } => inst.counter(counter) >= limit,
            Guard::TimerDue => inst.timer_at_ms.is_some_and(|t| event.now_ms >= t),
            // NaN compares false both ways, so an unmeasurable value counts as missing
            Guard::MetricAbove { metric, threshold } => {
                event.metrics.get(metric).is_some_and(|v| v > threshold)
            }
            Guard::MetricAtMost { metric, threshold } => {
                event.metrics.get(metric).is_some_and(|v| v <= threshold)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// `base × (n + 1)`
    Linear,
    /// `base × 2^n`
    Exponential,
}

impl BackoffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackoffKind::Linear => "linear",
            BackoffKind::Exponential => "exponential",
        }
    }
}

/// The `n`-th backoff delay (`n` from 0). Saturates instead of overflowing: a policy
/// may ask for 60 exponential retries, and the answer is then "practically never".
pub fn backoff_ms(base_ms: u64, kind: BackoffKind, n: u32) -> u64 {
    match kind {
        BackoffKind::Linear => base_ms.saturating_mul(u64::from(n).saturating_add(1)),
        BackoffKind::Exponential => match 1u64.checked_shl(n) {
            Some(factor) => base_ms.saturating_mul(factor),
            None if base_ms == 0 => 0,
            None => u64::MAX,
        },
    }
}

/// How long a timer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delay {
    Fixed(u64),
    /// [`backoff_ms`] of the counter's current value
    Backoff {
        base_ms: u64,
        kind: BackoffKind,
        counter: CounterId,
    },
}

impl Delay {
    pub fn ms(&self, inst: &Instance) -> u64 {
        match *self {
            Delay::Fixed(ms) => ms,
            Delay::Backoff {
                base_ms,
                kind,
                counter,
            } => backoff_ms(base_ms, kind, inst.counter(counter)),
        }
    }
}

/// A change to the instance, applied in row order (so a backoff set after an
/// increment sees the incremented counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Update {
    Inc(CounterId),
    Reset(CounterId),
    SetTimer(Delay),
    ClearTimer,
}

impl Update {
    fn apply(&self, inst: &mut Instance, now_ms: u64) {
        match *self {
            Update::Inc(c) => {
                if let Some(v) = inst.counters.get_mut(usize::from(c.0)) {
                    *v = v.saturating_add(1);
                }
            }
            Update::Reset(c) => {
                if let Some(v) = inst.counters.get_mut(usize::from(c.0)) {
                    *v = 0;
                }
            }
            Update::SetTimer(d) => inst.timer_at_ms = Some(now_ms.saturating_add(d.ms(inst))),
            Update::ClearTimer => inst.timer_at_ms = None,
        }
    }
}

/// The gateway's own event types (listed in `docs/policy-format.md`) that machines emit
/// notifications for; the notification routes of the policy decide where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    ProviderDown,
    ProviderRecovered,
    CriticalAlert,
    Failover,
    FailoverDrill,
    ModelSwitched,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::ProviderDown => "provider_down",
            NotifyEvent::ProviderRecovered => "provider_recovered",
            NotifyEvent::CriticalAlert => "critical_alert",
            NotifyEvent::Failover => "failover",
            NotifyEvent::FailoverDrill => "failover_drill",
            NotifyEvent::ModelSwitched => "model_switched",
        }
    }
}

/// Where `downgrade_model` goes. `next_cheaper` is relative to the model a request was
/// routed to, so only the server can resolve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DowngradeTarget {
    NextCheaper,
    Model(String),
}

/// The switch a cost-window rule makes; named again by the `restore` that undoes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchKind {
    DowngradeModel,
    SwitchProvider,
    FallbackFast,
}

impl SwitchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SwitchKind::DowngradeModel => "downgrade_model",
            SwitchKind::SwitchProvider => "switch_provider",
            SwitchKind::FallbackFast => "fallback_fast",
        }
    }
}

impl Row {
    pub fn new(
        from: StateId,
        on: EventKind,
        guard: Guard,
        updates: Vec<Update>,
        to: StateId,
        actions: Vec<Action>,
    ) -> Row {
        Row {
            from,
            on,
            guard,
            updates,
            to,
            actions,
        }
    }
}

/// One failover target as the router needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fallback {
    pub provider: String,
    /// relative share, as written; `1.0` each when the policy gives no weights
    pub weight: f64,
    pub timeout_ms: u64,
}

/// What the server must do when a row fires. Actions carry everything they need, so
/// the server does not have to look back into the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    MarkUnhealthy,
    MarkHealthy,
    /// send one active probe now; answer with `probe_ok` or `probe_failed`
    Probe,
    Notify(NotifyEvent),
    Downgrade {
        to: DowngradeTarget,
    },
    SwitchProvider,
    FallbackFast {
        model: String,
    },
    /// undo the switch of the given kind
    Restore {
        undo: SwitchKind,
    },
    RouteToFallbacks {
        fallbacks: Vec<Fallback>,
    },
    RouteToPrimary,
    /// a dry-run drill: report where traffic would go, change nothing
    DrillReport {
        fallbacks: Vec<Fallback>,
    },
}

/// One transition: in `from`, on an event of kind `on` for which `guard` holds, apply
/// `updates`, move to `to` and emit `actions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub from: StateId,
    pub on: EventKind,
    pub guard: Guard,
    pub updates: Vec<Update>,
    pub to: StateId,
    pub actions: Vec<Action>,
}

/// A counter's name and the largest value the machine's rows let it reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterSpec {
    pub name: String,
    pub limit: u32,
}

/// A compiled state machine: the rows plus the policy parameters the server needs
/// around them (check intervals, window lengths, drill schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub name: String,
    pub states: Vec<String>,
    pub initial: StateId,
    pub counters: Vec<CounterSpec>,
    pub rows: Vec<Row>,
    pub params: super::Params,
}

impl Machine {
    /// The state's name; `"?"` for an id outside the machine (a corrupt bundle).
    pub fn state_name(&self, id: StateId) -> &str {
        self.states
            .get(usize::from(id.0))
            .map_or("?", String::as_str)
    }

    pub fn state_id(&self, name: &str) -> Option<StateId> {
        let i = self.states.iter().position(|s| s == name)?;
        u8::try_from(i).ok().map(StateId)
    }

    pub fn counter_name(&self, id: CounterId) -> &str {
        self.counters
            .get(usize::from(id.0))
            .map_or("?", |c| c.name.as_str())
    }

    /// A fresh instance in the initial state: counters at zero, no timer.
    pub fn start(&self) -> Instance {
        Instance {
            state: self.initial,
            counters: [0; MAX_COUNTERS],
            timer_at_ms: None,
        }
    }

    /// Every state and counter a row names exists. Compiled machines always pass; a
    /// server loading a bundle should check, because [`step`] trusts the ids.
    pub fn validate(&self) -> Result<(), String> {
        let n_states = self.states.len();
        if n_states == 0 || n_states > usize::from(u8::MAX) + 1 {
            return Err(format!("{}: {} states", self.name, n_states));
        }
        if self.counters.len() > MAX_COUNTERS {
            return Err(format!(
                "{}: {} counters, at most {MAX_COUNTERS}",
                self.name,
                self.counters.len()
            ));
        }
        let state_ok = |s: StateId| usize::from(s.0) < n_states;
        let counter_ok = |c: CounterId| usize::from(c.0) < self.counters.len();
        if !state_ok(self.initial) {
            return Err(format!("{}: the initial state does not exist", self.name));
        }
        for (i, row) in self.rows.iter().enumerate() {
            let mut counters = Vec::new();
            match row.guard {
                Guard::CounterBelow { counter, .. } | Guard::CounterAtLeast { counter, .. } => {
                    counters.push(counter)
                }
                _ => {}
            }
            for u in &row.updates {
                match *u {
                    Update::Inc(c)
                    | Update::Reset(c)
                    | Update::SetTimer(Delay::Backoff { counter: c, .. }) => counters.push(c),
                    Update::SetTimer(Delay::Fixed(_)) | Update::ClearTimer => {}
                }
            }
            if !state_ok(row.from) || !state_ok(row.to) {
                return Err(format!(
                    "{}: row {i} names a state that does not exist",
                    self.name
                ));
            }
            if !counters.into_iter().all(counter_ok) {
                return Err(format!(
                    "{}: row {i} names a counter that does not exist",
                    self.name
                ));
            }
        }
        Ok(())
    }
}

/// The running state of one machine (per provider, per rule...): small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Instance {
    pub state: StateId,
    pub counters: [u32; MAX_COUNTERS],
    pub timer_at_ms: Option<u64>,
}

impl Instance {
    /// The counter's value; 0 for a counter the instance does not have.
    pub fn counter(&self, id: CounterId) -> u32 {
        self.counters.get(usize::from(id.0)).copied().unwrap_or(0)
    }
}

/// The result of offering one event to a machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition<'m> {
    pub instance: Instance,
    /// the index of the row that fired; `None` when the event was ignored
    pub row: Option<usize>,
    /// the fired row's actions, borrowed from the machine
    pub actions: &'m [Action],
}

impl Transition<'_> {
    /// No row matched: the instance is unchanged and nothing is to be done. Worth
    /// logging, since it usually means an event arrived in a state that does not
    /// expect it (or a window without the metric a rule tests).
    pub fn ignored(&self) -> bool {
        self.row.is_none()
    }
}

/// Offers `event` to an instance of `machine`: the first row for the instance's state
/// and the event's kind whose guard holds fires. Pure and allocation-free; the
/// actions are borrowed from the machine.
pub fn transition<'m>(machine: &'m Machine, inst: &Instance, event: &Event) -> Transition<'m> {
    let fired = machine.rows.iter().enumerate().find(|(_, row)| {
        row.from == inst.state && row.on == event.kind && row.guard.holds(inst, event)
    });
    match fired {
        Some((i, row)) => {
            let mut next = *inst;
            for u in &row.updates {
                u.apply(&mut next, event.now_ms);
            }
            next.state = row.to;
            Transition {
                instance: next,
                row: Some(i),
                actions: &row.actions,
            }
        }
        None => Transition {
            instance: *inst,
            row: None,
            actions: &[],
        },
    }
}

/// [`transition`] with owned actions. An ignored event returns the instance unchanged
/// and no actions; use [`transition`] to tell that apart from a row without actions.
pub fn step(machine: &Machine, inst: &Instance, event: &Event) -> (Instance, Vec<Action>) {
    let t = transition(machine, inst, event);
    (t.instance, t.actions.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_as_specified() {
        let lin: Vec<u64> = (0..4)
            .map(|n| backoff_ms(100, BackoffKind::Linear, n))
            .collect();
        let exp: Vec<u64> = (0..4)
            .map(|n| backoff_ms(100, BackoffKind::Exponential, n))
            .collect();
        assert_eq!(lin, [100, 200, 300, 400]);
        assert_eq!(exp, [100, 200, 400, 800]);
        assert_eq!(backoff_ms(100, BackoffKind::Exponential, 200), u64::MAX);
        assert_eq!(backoff_ms(0, BackoffKind::Exponential, 200), 0);
        assert_eq!(backoff_ms(u64::MAX, BackoffKind::Linear, 3), u64::MAX);
    }

    #[test]
    fn nan_metrics_never_fire() {
        let inst = Instance {
            state: StateId(0),
            counters: [0; MAX_COUNTERS],
            timer_at_ms: None,
        };
        let ev = Event::window(0, Metrics::default().with(Metric::ErrorRate, f64::NAN));
        for g in [
            Guard::MetricAbove {
                metric: Metric::ErrorRate,
                threshold: 0.1,
            },
            Guard::MetricAtMost {
                metric: Metric::ErrorRate,
                threshold: 0.1,
            },
        ] {
            assert!(!g.holds(&inst, &ev));
        }
    }

    #[test]
    fn missing_counters_read_as_zero_and_updates_are_dropped() {
        let mut inst = Instance {
            state: StateId(0),
            counters: [1, 2],
            timer_at_ms: None,
        };
        Update::Inc(CounterId(9)).apply(&mut inst, 0);
        assert_eq!(inst.counters, [1, 2]);
        assert_eq!(inst.counter(CounterId(9)), 0);
    }
}
