//! The half of `rulec diff` that is not a decision table: every setting that changes
//! what the gateway does (models' limits and prices, pools, budgets, cost windows,
//! failover, health checks, notification routing), flattened to one line per setting
//! and compared by name, so a change in any of them is reported.

use std::collections::BTreeMap;

use crate::policy::*;
use crate::syntax::Duration;

/// One setting that differs; `None` on a side where it is not set.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingChange {
    pub setting: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The settings of both policies that differ, in the order of the settings' names.
pub fn diff(old: &Policy, new: &Policy) -> Vec<SettingChange> {
    let a = flatten(old);
    let b = flatten(new);
    let mut out = Vec::new();
    for (k, v) in &a {
        if b.get(k) != Some(v) {
            out.push(SettingChange {
                setting: k.clone(),
                old: Some(v.clone()),
                new: b.get(k).cloned(),
            });
        }
    }
    for (k, v) in &b {
        if !a.contains_key(k) {
            out.push(SettingChange {
                setting: k.clone(),
                old: None,
                new: Some(v.clone()),
            });
        }
    }
    out.sort_by(|x, y| x.setting.cmp(&y.setting));
    out
}

/// The human report of the setting changes (empty when there are none).
pub fn report(changes: &[SettingChange]) -> String {
    if changes.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "{} setting change{}:\n",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" }
    );
    for c in changes {
        let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "not set".to_string());
        out.push_str(&format!(
            "  {}: {} -> {}\n",
            c.setting,
            side(&c.old),
            side(&c.new)
        ));
    }
    out
}

/// `DowngradeModel` → `downgrade_model`: the words the policy itself uses.
fn word(debug: impl std::fmt::Debug) -> String {
    let text = format!("{debug:?}");
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    // the one keyword that is not its variant's words
    out.replace("open_ai", "openai")
}

fn dur(d: Duration) -> String {
    match d.ms {
        0 => "0s".to_string(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

/// A schedule as its five fields, each the list of values it matches.
fn cron(c: &crate::syntax::Cron) -> String {
    let field = |v: &[u8]| {
        let l: Vec<String> = v.iter().map(u8::to_string).collect();
        l.join(",")
    };
    format!(
        "minutes {}; hours {}; days {}; months {}; weekdays {}",
        field(&c.minutes),
        field(&c.hours),
        field(&c.days_of_month),
        field(&c.months),
        field(&c.days_of_week)
    )
}

fn num(n: f64) -> String {
    format!("{n}")
}

fn names(list: &[Name]) -> String {
    let l: Vec<&str> = list.iter().map(|n| n.value.as_str()).collect();
    format!("[{}]", l.join(", "))
}

fn health(set: &mut BTreeMap<String, String>, prefix: &str, h: &HealthCheck) {
    set.insert(format!("{prefix} interval"), dur(h.interval.value));
    set.insert(format!("{prefix} timeout"), dur(h.timeout.value));
    set.insert(
        format!("{prefix} unhealthy_threshold"),
        num(h.unhealthy_threshold.value),
    );
}

/// Every behaviour-changing setting as "name → value". Routing rules are left out:
/// the decision tables compare them by meaning, not by text.
fn flatten(p: &Policy) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    for pr in &p.providers {
        let k = format!("provider `{}`", pr.name.value);
        s.insert(format!("{k} kind"), word(pr.kind.value));
        s.insert(format!("{k} base_url"), pr.base_url.value.clone());
        if let Some(e) = &pr.api_key_env {
            s.insert(format!("{k} api_key_env"), e.value.clone());
        }
        if let Some(h) = &pr.health_path {
            s.insert(format!("{k} health_path"), h.value.clone());
        }
        if let Some(t) = &pr.timeout {
            s.insert(format!("{k} timeout"), dur(t.value));
        }
        if let Some(t) = &pr.first_byte_timeout {
            s.insert(format!("{k} first_byte_timeout"), dur(t.value));
        }
    }
    for m in &p.models {
        let k = format!("model `{}`", m.name.value);
        s.insert(format!("{k} provider"), m.provider.value.clone());
        s.insert(format!("{k} model"), m.model_id.value.clone());
        s.insert(format!("{k} max_tokens"), num(m.max_tokens.value));
        s.insert(format!("{k} cost_per_token"), num(m.cost_per_token.value));
        if let Some(c) = &m.input_cost_per_token {
            s.insert(format!("{k} input_cost_per_token"), num(c.value));
        }
        if let Some(c) = &m.output_cost_per_token {
            s.insert(format!("{k} output_cost_per_token"), num(c.value));
        }
        s.insert(format!("{k} status"), word(m.status.value));
        s.insert(format!("{k} capabilities"), names(&m.capabilities));
        if let Some(q) = &m.quality {
            s.insert(format!("{k} quality"), num(q.value));
        }
    }
    if let Some(r) = &p.routing {
        if let Some(policy) = &r.policy {
            s.insert("routing_strategy policy".to_string(), word(policy.value));
        }
    }
    if let Some(c) = &p.cost {
        s.insert("cost_aware enabled".to_string(), c.enabled.to_string());
        if let Some(t) = &c.target {
            s.insert("optimization target".to_string(), word(t.value));
        }
        let k = &c.constraints;
        if let Some(v) = &k.max_cost_per_session {
            s.insert("max_cost_per_session".to_string(), format!("${}", v.value));
        }
        if let Some(v) = &k.max_daily_budget {
            s.insert("max_daily_budget".to_string(), format!("${}", v.value));
        }
        if let Some(v) = &k.quality_threshold {
            s.insert("quality_threshold".to_string(), num(v.value));
        }
        if let Some(z) = &k.time_zone {
            s.insert("budget time_zone".to_string(), z.value.clone());
        }
        if let Some(w) = &c.switching {
            s.insert("cost window".to_string(), dur(w.window.value));
            s.insert(
                "cost window check_interval".to_string(),
                dur(w.check_interval.value),
            );
            for r in &w.rules {
                let k = format!("switching rule on `{}`", r.metric.value.as_str());
                s.insert(format!("{k} threshold"), num(r.threshold.value.value));
                let mut action = word(r.action.value);
                if let Some(d) = &r.downgrade_to {
                    match &d.value {
                        DowngradeTo::NextCheaper => action.push_str(", downgrade_to next_cheaper"),
                        DowngradeTo::Model(m) => {
                            action.push_str(&format!(", downgrade_to `{}`", m.value))
                        }
                    }
                }
                if let Some(f) = &r.fallback_to {
                    action.push_str(&format!(", fallback_to `{}`", f.value));
                }
                s.insert(format!("{k} action"), action);
            }
        }
    }
    if let Some(b) = &p.balancing {
        s.insert(
            "load_balancing strategy".to_string(),
            word(b.strategy.value),
        );
        if let Some(h) = &b.health_check {
            health(&mut s, "default health_check", h);
        }
        if let Some(a) = &b.session_affinity {
            s.insert(
                "session_affinity enabled".to_string(),
                a.enabled.to_string(),
            );
            s.insert("session_affinity ttl".to_string(), dur(a.ttl.value));
        }
        for pool in &b.pools {
            let k = format!("pool `{}`", pool.name.value);
            s.insert(format!("{k} models"), names(&pool.models));
            if let Some(w) = &pool.weights {
                let w: Vec<String> = w.value.iter().map(|x| num(x.value)).collect();
                s.insert(format!("{k} weights"), w.join("/"));
            }
            s.insert(
                format!("{k} max_concurrent"),
                num(pool.max_concurrent.value),
            );
            if let Some(h) = &pool.health_check {
                health(&mut s, &format!("{k} health_check"), h);
            }
        }
    }
    if let Some(f) = &p.failover {
        s.insert("failover primary".to_string(), f.primary.value.clone());
        let order: Vec<&str> = f
            .fallbacks
            .iter()
            .map(|t| t.provider.value.as_str())
            .collect();
        s.insert("failover fallbacks".to_string(), order.join(", "));
        for t in &f.fallbacks {
            let k = format!("failover fallback `{}`", t.provider.value);
            if let Some(w) = &t.weight {
                s.insert(format!("{k} weight"), num(w.value));
            }
            s.insert(format!("{k} timeout"), dur(t.timeout.value));
        }
        if let Some(sf) = &f.scheduled {
            s.insert("scheduled_failover every".to_string(), dur(sf.every.value));
            s.insert("scheduled_failover mode".to_string(), word(sf.mode.value));
            s.insert(
                "scheduled_failover notify".to_string(),
                sf.notify.value.to_string(),
            );
        }
        if let Some(r) = &f.recovery {
            s.insert(
                "recovery auto_recover".to_string(),
                r.auto_recover.to_string(),
            );
            s.insert("recovery backoff".to_string(), word(r.backoff.value));
            s.insert("recovery interval".to_string(), dur(r.interval.value));
            s.insert("recovery max_retries".to_string(), num(r.max_retries.value));
        }
    }
    for c in &p.channels {
        let k = format!("channel `{}`", c.name.value);
        s.insert(format!("{k} provider"), word(c.kind.value));
        if let Some(r) = &c.rate_limit {
            s.insert(
                format!("{k} rate_limit"),
                format!("{}/{}", r.value.count, dur(r.value.per)),
            );
        }
        for (field, v) in [
            ("endpoint_env", &c.endpoint_env),
            ("secret_env", &c.secret_env),
            ("chat_id", &c.chat_id),
            ("from", &c.from),
        ] {
            if let Some(v) = v {
                s.insert(format!("{k} {field}"), v.value.clone());
            }
        }
        if !c.to.is_empty() {
            s.insert(format!("{k} to"), names(&c.to));
        }
    }
    if let Some(rules) = &p.notifications {
        for (i, r) in rules.value.iter().enumerate() {
            let k = format!("notification route #{} (`{}`)", i + 1, r.event.value);
            s.insert(format!("{k} channels"), names(&r.channels));
            if let Some(d) = &r.dedup {
                s.insert(format!("{k} dedup"), d.value.to_string());
            }
            if let Some(d) = &r.dedup_window {
                s.insert(format!("{k} dedup_window"), dur(d.value));
            }
            if let Some(c) = &r.schedule {
                s.insert(format!("{k} schedule"), cron(&c.value));
            }
            if let Some(t) = &r.template {
                s.insert(format!("{k} template"), t.value.clone());
            }
        }
    }
    for t in &p.templates {
        s.insert(format!("template `{}`", t.name.value), t.text.value.clone());
    }
    s
}
