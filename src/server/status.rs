//! `GET /v1/status`: the live state of every provider, model, pool and machine, the
//! bundle in use, and the last refused reload.

use std::sync::atomic::Ordering;

use serde_json::{json, Value as Json};

use super::app::App;
use super::probe;
use crate::machines::{health, Params};
use crate::runtime::gateway::Gateway;
use crate::runtime::stats::lock;

pub fn status(app: &App) -> Json {
    let g = app.gateway();
    let now = app.now_ms();
    let c = &g.bundle.content;
    let providers: Vec<Json> = g
        .providers()
        .map(|(p, live)| {
            let inst = *lock(&live.instance);
            let machine = g.health_machine(p);
            let check = lock(&live.last_check).clone();
            let spec = g.provider_spec(p);
            json!({
                "name": live.name,
                "healthy": live.healthy(),
                "state": machine.map_or("healthy", |m| m.state_name(inst.state)),
                "consecutive_failures": inst.counters[usize::from(health::FAILURES.0)],
                "failed_probes": inst.counters[usize::from(health::RETRIES.0)],
                "next_probe_in_ms": inst.timer_at_ms.map(|t| t.saturating_sub(now)),
                "active_checks": if !g.passive(p) { Json::from(probe::url(spec)) } else { Json::from("off: the base url is not http(s); health comes from reported outcomes") },
                "check": machine.and_then(|m| match &m.params {
                    Params::Health(h) => Some(json!({
                        "interval_ms": h.check.interval_ms,
                        "timeout_ms": h.check.timeout_ms,
                        "unhealthy_threshold": h.check.unhealthy_threshold,
                        "backoff": h.recovery.backoff.as_str(),
                        "recovery_interval_ms": h.recovery.interval_ms,
                        "max_retries": h.recovery.max_retries,
                    })),
                    _ => None,
                }),
                "last_check": check.map(|c| json!({"ok": c.ok, "detail": c.detail, "age_ms": now.saturating_sub(c.at_ms)})),
            })
        })
        .collect();
    let models: Vec<Json> = g
        .model_ixs()
        .map(|m| {
            let spec = g.model_spec(m);
            json!({
                "name": spec.name,
                "provider": spec.provider,
                "status": spec.status,
                "available": g.model_available(m),
            })
        })
        .collect();
    let pools: Vec<Json> = g
        .pools()
        .map(|p| {
            json!({
                "name": p.spec.name,
                "members": p.spec.models.iter().zip(&p.spec.weights).map(|(m, w)| json!({
                    "model": m,
                    "weight": w,
                    "available": g.model(m).is_some_and(|i| g.model_available(i)),
                })).collect::<Vec<_>>(),
                "in_flight": p.limit.in_flight(),
                "max_concurrent": p.spec.max_concurrent,
                "peak_in_flight": p.peak.load(Ordering::Relaxed),
                "pinned_sessions": p.affinity.as_ref().map(|a| lock(a).len()),
            })
        })
        .collect();
    let windows: Vec<Json> = g
        .cost_windows()
        .map(|(m, live)| {
            let params = match &m.params {
                Params::CostWindow(p) => Some(p),
                _ => None,
            };
            json!({
                "machine": m.name,
                "metric": params.map(|p| p.metric.as_str()),
                "threshold": params.map(|p| p.threshold),
                "state": Gateway::state_of(m, &live.instance),
                "switch": live.switch(),
                "last": *lock(&live.last),
            })
        })
        .collect();
    let failover = g
        .failover_machine()
        .zip(g.live.failover.as_ref())
        .map(|(m, live)| {
            json!({
                "state": Gateway::state_of(m, &live.instance),
                "primary": c.failover.as_ref().map(|f| &f.primary),
                "routing_to": if live.to_fallbacks() { "fallbacks" } else { "primary" },
            })
        });
    let budgets = c.budgets.as_ref().map(|b| {
        json!({
            "daily": {"spent": g.shared.budgets.today(app.wall_ms()), "max": b.max_daily_budget},
            "max_cost_per_session": b.max_cost_per_session,
            "sessions_tracked": g.shared.budgets.sessions(),
        })
    });
    let refusal = lock(&app.last_refusal).clone();
    json!({
        "bundle": {
            "hash": g.hash(),
            "format": g.bundle.format,
            "policy_version": c.policy_version,
            "source": if app.from_admin.load(Ordering::Acquire) {
                "PUT /admin/bundle".to_string()
            } else {
                app.config.source.display().to_string()
            },
            "loaded_at_ms": *lock(&app.loaded_at_ms),
        },
        "uptime_ms": now,
        "ready": app.ready(),
        "providers": providers,
        "models": models,
        "pools": pools,
        "cost_windows": windows,
        "failover": failover,
        "budgets": budgets,
        "ledger": app.ledger.get().map(|l| {
            let s = l.stats();
            json!({
                "file": l.path().display().to_string(),
                "queued": s.queued,
                "committed": s.committed,
                "commits": s.commits,
                "waited": s.waited,
                "refused": s.refused,
                "failed_commits": s.failed_commits,
            })
        }),
        "leases": g.shared.leases.len(),
        "last_refused_reload": refusal.map(|r| json!({"source": r.source, "error": r.error, "age_ms": now.saturating_sub(r.at_ms), "superseded_by": r.superseded_by})),
    })
}
