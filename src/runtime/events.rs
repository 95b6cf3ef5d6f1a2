//! Everything that changes a gateway's machines: provider events (checks, probes,
//! reported outcomes), closing a cost window, the failover machine's events, the
//! passing of time (`tick`), and restoring saved state. Each machine changes under
//! its instance's lock together with the state derived from it — a provider's health
//! flag, a window's switch, where the primary's traffic goes — so that no reader sees
//! one without the other.

use std::sync::atomic::Ordering;
use std::sync::Mutex;

use super::gateway::Gateway;
use super::ids::ProviderIx;
use super::live::{CostLive, FailoverLive};
use super::stats::lock;
use crate::machines::{
    health, transition, Action, Event, EventKind, Instance, Machine, Metrics, Params, StateId,
    Switch,
};

/// Something the caller (the server, a simulator) must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// send one recovery probe to this provider and report `probe_ok`/`probe_failed`
    Probe(ProviderIx),
}

impl Gateway {
    /// Offers an event to a provider's health machine and carries out its actions.
    pub fn provider_event(
        &self,
        p: ProviderIx,
        kind: EventKind,
        now_ms: u64,
        reason: &str,
    ) -> Vec<Effect> {
        let Some(machine) = self.health_machine(p) else {
            return Vec::new();
        };
        let actions = self.fire(
            machine,
            &self.live.providers[p].instance,
            Event::new(kind, now_ms),
            reason,
            |inst, actions| {
                self.store_healthy(p, inst);
                // the primary's failover moves with its health, before anyone can see
                // it unhealthy and still routed to
                for a in actions {
                    match a {
                        Action::MarkUnhealthy if self.ix.primary == Some(p) => {
                            self.failover_event(EventKind::PrimaryDown, now_ms, reason)
                        }
                        Action::MarkHealthy if self.ix.primary == Some(p) => {
                            self.failover_event(EventKind::PrimaryUp, now_ms, reason)
                        }
                        _ => {}
                    }
                }
            },
        );
        let mut effects = Vec::new();
        for a in actions {
            match a {
                Action::MarkUnhealthy | Action::MarkHealthy => {}
                // a provider that cannot be checked actively is probed by traffic: it
                // takes requests while `probing`, and the next reported outcome decides
                Action::Probe if self.passive(p) => tracing::info!(
                    bundle = %self.bundle.hash,
                    provider = %self.live.providers[p].name,
                    "half-open: letting traffic try the provider; the next reported outcome decides"
                ),
                Action::Probe => effects.push(Effect::Probe(p)),
                other => self.act(&other, machine, reason),
            }
        }
        effects
    }

    /// After a build: a half-open provider that can now be checked actively is probed
    /// at once (nothing else would take it out of `probing`), and every health flag
    /// follows its machine.
    pub(super) fn settle_providers(&self) {
        for (p, live) in self.live.providers.iter_enumerated() {
            let mut inst = lock(&live.instance);
            if !self.passive(p) && inst.state == health::PROBING {
                inst.state = health::UNHEALTHY;
                inst.timer_at_ms = Some(0);
            }
            self.store_healthy(p, &inst);
        }
    }

    /// Only with the instance's lock held. The provider takes traffic when healthy, or
    /// while a passive provider is half-open (`probing`).
    fn store_healthy(&self, p: ProviderIx, inst: &Instance) {
        let up =
            inst.state == health::HEALTHY || (inst.state == health::PROBING && self.passive(p));
        self.live.providers[p].healthy.store(up, Ordering::Release);
    }

    /// A passive provider in `probing`: its traffic is the probe.
    pub fn half_open(&self, p: ProviderIx) -> bool {
        self.passive(p) && lock(&self.live.providers[p].instance).state == health::PROBING
    }

    /// Offers an event to the failover machine and carries out its actions.
    pub fn failover_event(&self, kind: EventKind, now_ms: u64, reason: &str) {
        let (Some(live), Some(machine)) = (&self.live.failover, self.failover_machine()) else {
            return;
        };
        let actions = self.fire(
            machine,
            &live.instance,
            Event::new(kind, now_ms),
            reason,
            |_, actions| route_by(live, actions),
        );
        for a in &actions {
            self.act(a, machine, reason);
        }
    }

    /// Closes a cost window: measures it and offers the metrics to every cost machine.
    pub fn close_window(&self, now_ms: u64) -> Option<Metrics> {
        let window_ms = self.cost_windows().find_map(|(m, _)| match &m.params {
            Params::CostWindow(c) => Some(c.window_ms),
            _ => None,
        })?;
        let metrics = self.shared.window.metrics(now_ms, window_ms);
        for (machine, live) in self.cost_windows() {
            *lock(&live.last) = Some(metrics);
            let reason = window_reason(machine, &metrics);
            let actions = self.fire(
                machine,
                &live.instance,
                Event::window(now_ms, metrics),
                &reason,
                |_, actions| switch_by(live, actions),
            );
            for a in &actions {
                self.act(a, machine, &reason);
            }
        }
        Some(metrics)
    }

    /// Time passed: recovery timers, the drill's end, expired leases.
    pub fn tick(&self, now_ms: u64) -> Vec<Effect> {
        let mut effects = Vec::new();
        for (p, live) in self.live.providers.iter_enumerated() {
            let due = lock(&live.instance)
                .timer_at_ms
                .is_some_and(|t| now_ms >= t);
            if due {
                effects.extend(self.provider_event(
                    p,
                    EventKind::Tick,
                    now_ms,
                    "recovery timer due",
                ));
            }
        }
        if let Some(f) = &self.live.failover {
            let due = lock(&f.instance).timer_at_ms.is_some_and(|t| now_ms >= t);
            if due {
                self.failover_event(EventKind::Tick, now_ms, "drill length elapsed");
            }
        }
        let expired = self.shared.leases.expire(now_ms);
        if expired > 0 {
            self.shared
                .stats
                .leases_expired
                .fetch_add(expired as u64, Ordering::Relaxed);
        }
        effects
    }

    /// Puts a provider's health machine into a saved state (a restart). A probe that
    /// was in flight never answered, so the provider is probed again at `now_ms`.
    pub(super) fn restore_provider(
        &self,
        p: ProviderIx,
        state: StateId,
        counters: &[u32],
        now_ms: u64,
    ) {
        let mut inst = lock(&self.live.providers[p].instance);
        for (slot, v) in inst.counters.iter_mut().zip(counters) {
            *slot = *v;
        }
        inst.state = if state == health::PROBING {
            health::UNHEALTHY
        } else {
            state
        };
        inst.timer_at_ms = (inst.state == health::UNHEALTHY).then_some(now_ms);
        self.store_healthy(p, &inst);
    }

    /// Puts a cost window into a saved state with its switch.
    pub(super) fn restore_window(live: &CostLive, state: StateId, switch: Option<Switch>) {
        let mut inst = lock(&live.instance);
        inst.state = state;
        live.set_switch(switch);
    }

    /// Puts the failover machine into a saved state with its routing.
    pub(super) fn restore_failover(live: &FailoverLive, state: StateId, to_fallbacks: bool) {
        let mut inst = lock(&live.instance);
        inst.state = state;
        live.to_fallbacks.store(to_fallbacks, Ordering::Release);
    }

    /// Steps `machine` under the instance's lock; logs and counts a change of state.
    /// `then` runs on the new instance and the fired actions before the lock is let go,
    /// so that state derived from the machine's changes together with it.
    fn fire(
        &self,
        machine: &Machine,
        instance: &Mutex<Instance>,
        event: Event,
        reason: &str,
        then: impl FnOnce(&Instance, &[Action]),
    ) -> Vec<Action> {
        let mut inst = lock(instance);
        let t = transition(machine, &inst, &event);
        if t.ignored() {
            return Vec::new();
        }
        let from = machine.state_name(inst.state).to_string();
        let to = machine.state_name(t.instance.state);
        *inst = t.instance;
        then(&inst, t.actions);
        drop(inst);
        if from != to || !t.actions.is_empty() {
            self.shared
                .stats
                .transitions
                .inc(&[&machine.name, &from, to]);
            tracing::info!(
                bundle = %self.bundle.hash,
                machine = %machine.name,
                event = event.kind.as_str(),
                from = %from,
                to = %to,
                reason = %reason,
                "transition"
            );
        }
        t.actions.to_vec()
    }

    /// Actions every machine may emit.
    fn act(&self, action: &Action, machine: &Machine, reason: &str) {
        match action {
            Action::Notify(event) => {
                self.shared.stats.notifications.inc(&[event.as_str()]);
                tracing::warn!(
                    bundle = %self.bundle.hash,
                    machine = %machine.name,
                    event = event.as_str(),
                    reason = %reason,
                    "notification"
                );
            }
            Action::DrillReport { fallbacks } => {
                let targets: Vec<String> = fallbacks
                    .iter()
                    .map(|f| {
                        let up = self
                            .provider_ix(&f.provider)
                            .is_some_and(|p| self.provider_healthy(p));
                        format!(
                            "{} (weight {}, {})",
                            f.provider,
                            f.weight,
                            if up { "healthy" } else { "unhealthy" }
                        )
                    })
                    .collect();
                tracing::info!(
                    bundle = %self.bundle.hash,
                    fallbacks = %targets.join(", "),
                    "failover drill (dry run): traffic would go to the fallbacks"
                );
            }
            // carried out by the callers that own them, the routing ones under the
            // machine's lock (`route_by`, `switch_by`, the health flag)
            Action::RouteToFallbacks { .. }
            | Action::RouteToPrimary
            | Action::MarkUnhealthy
            | Action::MarkHealthy
            | Action::Probe
            | Action::Downgrade { .. }
            | Action::SwitchProvider
            | Action::FallbackFast { .. }
            | Action::Restore { .. } => {}
        }
    }
}

/// Where the failover machine's actions send the primary's traffic.
fn route_by(live: &FailoverLive, actions: &[Action]) {
    for a in actions {
        match a {
            Action::RouteToFallbacks { .. } => live.to_fallbacks.store(true, Ordering::Release),
            Action::RouteToPrimary => live.to_fallbacks.store(false, Ordering::Release),
            _ => {}
        }
    }
}

/// The switch a cost window's actions put in force, or take away.
fn switch_by(live: &CostLive, actions: &[Action]) {
    for a in actions {
        match a {
            Action::Downgrade { to } => live.set_switch(Some(Switch::Downgrade { to: to.clone() })),
            Action::SwitchProvider => live.set_switch(Some(Switch::SwitchProvider)),
            Action::FallbackFast { model } => live.set_switch(Some(Switch::FallbackFast {
                model: model.clone(),
            })),
            Action::Restore { .. } => live.set_switch(None),
            _ => {}
        }
    }
}

fn window_reason(machine: &Machine, metrics: &Metrics) -> String {
    match &machine.params {
        Params::CostWindow(c) => match metrics.get(c.metric) {
            Some(v) => format!(
                "{} is {} over the last {} (threshold {})",
                c.metric.as_str(),
                v,
                crate::bundle::spec::duration_text(c.window_ms),
                c.threshold
            ),
            None => format!("no {} measured in the window", c.metric.as_str()),
        },
        _ => String::new(),
    }
}
