//! The server's background work: active health checks and recovery probes, the
//! recovery and drill timers, closing cost windows every `check_interval`, the file
//! watcher and SIGHUP. One supervisor loop reads the gateway in use at every turn, so
//! a reload needs no task to be stopped or restarted: timers and schedules are keyed
//! by name and simply carry on.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::app::App;
use super::probe;
use crate::machines::{health, EventKind, Params};
use crate::runtime::gateway::{CheckResult, Effect, Gateway};
use crate::runtime::stats::lock;

/// How often the supervisor looks at timers and schedules.
pub const TICK: Duration = Duration::from_millis(20);

/// Carries out what a machine asked for: recovery probes, sent in the background.
pub fn carry_out(app: &Arc<App>, gateway: &Gateway, effects: Vec<Effect>) {
    for Effect::Probe(p) in effects {
        let name = gateway.live.providers[p].name.clone();
        spawn_probe(Arc::clone(app), name, Kind::Recovery, None);
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// a periodic check while healthy: `success` / `failure`
    Active,
    /// a recovery probe while unhealthy: `probe_ok` / `probe_failed`
    Recovery,
}

fn spawn_probe(
    app: Arc<App>,
    provider: String,
    kind: Kind,
    in_flight: Option<Arc<Mutex<HashSet<String>>>>,
) {
    tokio::spawn(async move {
        // however the check ends, the provider may be checked again
        let _done = InFlight(in_flight, provider.clone());
        let gateway = app.gateway();
        let Some(p) = gateway.provider_ix(&provider) else {
            return;
        };
        let spec = gateway.provider_spec(p).clone();
        let timeout = gateway
            .health_machine(p)
            .and_then(|m| match &m.params {
                Params::Health(h) => Some(h.check.timeout_ms),
                _ => None,
            })
            .unwrap_or(health::DEFAULT_CHECK_TIMEOUT_MS);
        let result =
            probe::check(&app.upstream, &spec, Duration::from_millis(timeout.max(1))).await;
        // the answer goes to the gateway in use now, which may be a newer one
        let gateway = app.gateway();
        if let Some(p) = gateway.provider_ix(&provider) {
            let now = app.now_ms();
            let (ok, detail) = match &result {
                Ok(d) => (true, d.clone()),
                Err(d) => (false, d.clone()),
            };
            *lock(&gateway.live.providers[p].last_check) = Some(CheckResult {
                at_ms: now,
                ok,
                detail: detail.clone(),
            });
            gateway
                .shared
                .stats
                .probes
                .inc(&[&provider, if ok { "ok" } else { "failed" }]);
            let event = match (kind, ok) {
                (Kind::Active, true) => EventKind::Success,
                (Kind::Active, false) => EventKind::Failure,
                (Kind::Recovery, true) => EventKind::ProbeOk,
                (Kind::Recovery, false) => EventKind::ProbeFailed,
            };
            let reason = format!(
                "{} check: {detail}",
                if kind == Kind::Active {
                    "active"
                } else {
                    "recovery"
                }
            );
            let effects = gateway.provider_event(p, event, now, &reason);
            carry_out(&app, &gateway, effects);
        }
    });
}

/// Removes a provider from the set of checks in flight when dropped.
struct InFlight(Option<Arc<Mutex<HashSet<String>>>>, String);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(set) = &self.0 {
            lock(set).remove(&self.1);
        }
    }
}

/// The supervisor: runs until the process ends.
pub async fn supervise(app: Arc<App>) {
    let mut next_check: HashMap<String, u64> = HashMap::new();
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut next_window: Option<u64> = None;
    let mut next_drill: Option<u64> = None;
    let mut warned: HashSet<String> = HashSet::new();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let gateway = app.gateway();
        let now = app.now_ms();
        for (p, live) in gateway.providers() {
            let Some(machine) = gateway.health_machine(p) else {
                continue;
            };
            let Params::Health(params) = &machine.params else {
                continue;
            };
            let spec = gateway.provider_spec(p);
            if gateway.passive(p) {
                if warned.insert(spec.name.clone()) {
                    tracing::warn!(provider = %spec.name, base_url = %spec.base_url, "no active health checks for a base url that is not http(s): health comes from reported outcomes");
                }
                continue;
            }
            if lock(&live.instance).state != health::HEALTHY {
                next_check.remove(&live.name);
                continue;
            }
            let due = next_check.entry(live.name.clone()).or_insert(now);
            if now >= *due && lock(&in_flight).insert(live.name.clone()) {
                *due = now + params.check.interval_ms.max(1);
                spawn_probe(
                    Arc::clone(&app),
                    live.name.clone(),
                    Kind::Active,
                    Some(Arc::clone(&in_flight)),
                );
            }
        }
        let effects = gateway.tick(now);
        carry_out(&app, &gateway, effects);

        let check_interval = gateway
            .bundle
            .content
            .machines
            .cost_windows
            .iter()
            .find_map(|m| match &m.params {
                Params::CostWindow(c) => Some(c.check_interval_ms.max(1)),
                _ => None,
            });
        match (check_interval, next_window) {
            (Some(ci), None) => next_window = Some(now + ci),
            (Some(ci), Some(at)) if now >= at => {
                gateway.close_window(now);
                next_window = Some(now + ci);
            }
            (None, _) => next_window = None,
            _ => {}
        }
        let drill = gateway.failover_machine().and_then(|m| match &m.params {
            Params::Failover(f) => f.drill.clone(),
            _ => None,
        });
        match (drill, next_drill) {
            (Some(d), None) => next_drill = Some(now + d.every_ms.max(1)),
            (Some(d), Some(at)) if now >= at => {
                gateway.failover_event(EventKind::DrillStart, now, "scheduled failover drill");
                next_drill = Some(now + d.every_ms.max(1));
            }
            (None, _) => next_drill = None,
            _ => {}
        }
    }
}

/// Reloads on SIGHUP.
pub async fn on_sighup(app: Arc<App>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        tracing::error!(
            "cannot listen for SIGHUP; reload with the admin API or by changing the file"
        );
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: re-reading {}", app.config.source.display());
        let _ = app.reload_path("signal").await;
    }
}

/// Reloads when PATH changes (size or modification time of the file, or of any file
/// in the folder).
pub async fn watch(app: Arc<App>, every: Duration) {
    let path = app.config.source.clone();
    let mut last = super::source::fingerprint(&path);
    loop {
        tokio::time::sleep(every).await;
        let p = path.clone();
        let now = tokio::task::spawn_blocking(move || super::source::fingerprint(&p))
            .await
            .ok()
            .flatten();
        if now.is_some() && now != last {
            last = now;
            tracing::info!("{} changed: reloading", path.display());
            let _ = app.reload_path("file").await;
        }
    }
}
