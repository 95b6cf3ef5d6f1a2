//! Making a decision: the table picks the rule; then the live state shapes it —
//! pool member (session affinity, else smooth weighted round-robin over healthy
//! members), budgets, cost-window switches, provider failover, health, and the pool's
//! `max_concurrent` (overflowing to the fallback chain). Every change to the table's
//! answer is listed in the decision with its reason.

use std::sync::atomic::Ordering;

use serde::Serialize;
use serde_json::Value as Json;

use super::gateway::Gateway;
use super::leases::Lease;
use super::limits::Slot;
use super::stats::lock;
use crate::compile::request::RequestError;
use crate::compile::table::TargetKind;
use crate::compile::value::Scalar;
use crate::machines::{DowngradeTarget, Switch};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleRef<'g> {
    pub index: u32,
    pub id: &'g str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<&'g str>,
    pub file: &'g str,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolRef<'g> {
    pub name: &'g str,
    /// the member's position in the pool's `models`
    pub member: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainEntry<'g> {
    pub model: &'g str,
    pub model_id: &'g str,
    pub provider: &'g str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// A change the live state made to the table's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Adjustment {
    /// `affinity`, `budget`, `downgrade`, `fallback_fast`, `switch_provider`,
    /// `failover`, `unhealthy`, `overflow`, `all_unhealthy`
    pub kind: &'static str,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
/// A decision, borrowing its names from the gateway that made it (so making one
/// copies no strings).
pub struct Decision<'g> {
    pub decision_id: String,
    pub model: &'g str,
    pub model_id: &'g str,
    pub provider: &'g str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolRef<'g>>,
    pub rule: RuleRef<'g>,
    pub fallbacks: Vec<ChainEntry<'g>>,
    pub adjustments: Vec<Adjustment>,
    pub bundle: &'g str,
}

/// Why no decision was made; rendered by the server as a JSON error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteError {
    #[serde(skip)]
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// seconds, for `Retry-After`
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

impl RouteError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> RouteError {
        RouteError {
            status,
            code,
            message: message.into(),
            attribute: None,
            help: None,
            retry_after: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> RouteError {
        self.help = Some(help.into());
        self
    }
}

impl From<RequestError> for RouteError {
    fn from(e: RequestError) -> RouteError {
        RouteError {
            status: 400,
            code: "invalid_request",
            message: e.message,
            attribute: e.attribute,
            help: e.help,
            retry_after: None,
        }
    }
}

/// The longest session id kept: pins, leases and budgets store it, and their caps
/// count entries, so its length is what bounds their bytes.
pub const MAX_SESSION_ID: usize = 256;

/// A candidate for the final answer: a model and the pool whose slot it needs.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    model: usize,
    pool: Option<usize>,
    timeout_ms: Option<u64>,
}

impl Gateway {
    /// Decides for a request given as JSON attributes, at `now_ms` (monotonic) and
    /// `wall_ms` (wall clock, for daily budgets).
    pub fn route(
        &self,
        json: &Json,
        now_ms: u64,
        wall_ms: u64,
    ) -> Result<Decision<'_>, RouteError> {
        let c = &self.bundle.content;
        let request = c.schema.parse(json)?;
        let rule = c.table.decide(&request.values).ok_or_else(|| {
            RouteError::new(422, "no_route", "no routing rule matches this request").help(
                "add a `fallback:` rule to the policy, or check the request with `rulec explain`",
            )
        })?;
        let info = &c.table.rules[rule as usize];
        let session = self
            .session_slot
            .and_then(|s| request.values.get(s))
            .and_then(|v| match v {
                Some(Scalar::Str(s)) => Some(s.as_str()),
                _ => None,
            });
        if let Some(s) = session.filter(|s| s.len() > MAX_SESSION_ID) {
            let mut e = RouteError::new(
                400,
                "invalid_request",
                format!(
                    "`session_id` is {} bytes long; at most {MAX_SESSION_ID}",
                    s.len()
                ),
            )
            .help("use a short opaque id (a UUID, a hash)");
            e.attribute = Some("session_id".into());
            return Err(e);
        }
        let needs = self.needs(&request.values);
        let target = self.targets[rule as usize].ok_or_else(|| {
            RouteError::new(
                500,
                "bundle_inconsistent",
                format!(
                    "rule `{}` names a target the bundle does not declare",
                    info.id
                ),
            )
        })?;
        let mut adjustments = Vec::new();
        let before = adjustments.len();
        let (mut model, pool) = match info.target.kind {
            TargetKind::Model => (target, None),
            TargetKind::Pool => (
                self.pick_member(target, session, now_ms, &mut adjustments),
                Some(target),
            ),
        };
        let picked = model;
        let pinned = adjustments.len() > before;

        self.apply_budget(&mut model, session, wall_ms, &needs, &mut adjustments);
        let mut switch_provider = false;
        for (machine, switch) in self.active_switches() {
            let to = match &switch {
                Switch::Downgrade { to } => self.downgrade_of(model, to, &needs),
                Switch::FallbackFast { model } => {
                    self.model(model).filter(|&m| self.usable(m, &needs))
                }
                Switch::SwitchProvider => {
                    switch_provider = true;
                    None
                }
            };
            if let Some(to) = to.filter(|&t| t != model) {
                adjustments.push(self.adjust(
                    if matches!(switch, Switch::FallbackFast { .. }) {
                        "fallback_fast"
                    } else {
                        "downgrade"
                    },
                    model,
                    to,
                    format!("cost window `{machine}` is switched"),
                ));
                model = to;
            }
        }
        let mut timeout_ms = None;
        if let Some(primary) = self.primary.filter(|&p| self.provider_of(model) == Some(p)) {
            // a half-open primary takes the traffic that will tell whether it is back
            let failed_over = self.failed_over() && !self.half_open(primary);
            if failed_over || switch_provider {
                if let Some((to, t)) = self.failover_target(model, &needs) {
                    let (kind, reason) = if failed_over {
                        (
                            "failover",
                            format!(
                                "provider `{}` is failed over",
                                self.names.providers[primary]
                            ),
                        )
                    } else {
                        (
                            "switch_provider",
                            "a cost window switched providers".to_string(),
                        )
                    };
                    adjustments.push(self.adjust(kind, model, to, reason));
                    model = to;
                    timeout_ms = Some(t);
                }
            }
        }
        // an answer that is a member of the pool (picked or moved to) takes its slot
        let first = Candidate {
            model,
            pool: pool.filter(|&p| self.members[p].contains(&Some(model))),
            timeout_ms,
        };
        let mut origins = vec![model];
        if picked != model {
            origins.push(picked);
        }
        if let Some(p) = pool {
            origins.extend(self.members_by_weight[p].iter().copied());
        }
        let mut chain = self.chain(&origins, pool, rule, &needs);

        let mut chosen = first;
        if !self.model_available(model) {
            match chain.first().copied() {
                Some(next) => {
                    chain.remove(0);
                    adjustments.push(self.adjust(
                        "unhealthy",
                        model,
                        next.model,
                        self.unavailable_reason(model),
                    ));
                    chosen = next;
                }
                None => adjustments.push(Adjustment {
                    kind: "all_unhealthy",
                    from: self.names.models[model].to_string(),
                    to: self.names.models[model].to_string(),
                    reason: format!(
                        "{}, and no model of the fallback chain can serve the request",
                        self.unavailable_reason(model)
                    ),
                }),
            }
        }
        let (chosen, slot) = self.admit(chosen, &mut chain, &mut adjustments)?;

        if let Some(p) = pool.filter(|_| !pinned && chosen.model == picked && chosen.pool == pool) {
            if let (Some(s), Some(aff)) = (session, &self.pools[p].affinity) {
                let member = self.members[p].iter().position(|m| *m == Some(picked));
                if let Some(member) = member {
                    lock(aff).pin(s, member, now_ms);
                }
            }
        }
        self.count_decision(rule as usize, chosen.model);
        let lease = Lease {
            model: chosen.model as u32,
            generation: self.generation,
            session: session.map(str::to_string),
            slot,
            expires_ms: now_ms.saturating_add(self.shared.leases.ttl_ms),
        };
        let (id, evicted) = self.shared.leases.issue(lease);
        if evicted > 0 {
            self.shared
                .stats
                .leases_evicted
                .fetch_add(evicted as u64, Ordering::Relaxed);
        }
        let spec = &c.models[chosen.model];
        Ok(Decision {
            decision_id: format!("d-{}-{id}", self.shared.boot),
            model: &spec.name,
            model_id: &spec.model,
            provider: &spec.provider,
            pool: chosen.pool.and_then(|p| {
                let spec = &self.pools[p].spec;
                let member = self.members[p]
                    .iter()
                    .position(|m| *m == Some(chosen.model))?;
                Some(PoolRef {
                    name: &spec.name,
                    member,
                })
            }),
            rule: RuleRef {
                index: rule,
                id: &info.id,
                priority: info.priority.as_deref(),
                file: &info.source.file,
                line: info.source.line,
            },
            fallbacks: chain.iter().map(|e| self.entry(e)).collect(),
            adjustments,
            bundle: &self.bundle.hash,
        })
    }

    /// The pool member for this request: the session's pin while it lives and its
    /// member is healthy, else the next by smooth weighted round-robin over healthy
    /// members. With no healthy member, the first by weight (health moves it later).
    fn pick_member(
        &self,
        p: usize,
        session: Option<&str>,
        now_ms: u64,
        adj: &mut Vec<Adjustment>,
    ) -> usize {
        let live = &self.pools[p];
        let member_model = &self.members[p];
        let healthy = |i: usize| member_model[i].is_some_and(|m| self.model_available(m));
        if let (Some(s), Some(aff)) = (session, &live.affinity) {
            if let Some(i) = lock(aff).get(s, now_ms, healthy) {
                if let Some(m) = member_model[i] {
                    adj.push(Adjustment {
                        kind: "affinity",
                        from: self.names.models[m].to_string(),
                        to: self.names.models[m].to_string(),
                        reason: format!("session `{s}` is pinned to this member"),
                    });
                    return m;
                }
            }
        }
        let picked = lock(&live.balancer).pick(healthy);
        let member = picked.unwrap_or_else(|| {
            (0..live.spec.weights.len())
                .max_by(|&a, &b| {
                    live.spec.weights[a]
                        .total_cmp(&live.spec.weights[b])
                        .then(b.cmp(&a))
                })
                .unwrap_or(0)
        });
        member_model.get(member).copied().flatten().unwrap_or(0)
    }

    /// Budgets: a spent daily or session budget moves the model down the price ladder
    /// to the cheapest model that can serve the request and meets the quality floor.
    fn apply_budget(
        &self,
        model: &mut usize,
        session: Option<&str>,
        wall_ms: u64,
        needs: &[&str],
        adj: &mut Vec<Adjustment>,
    ) {
        let Some(b) = &self.bundle.content.budgets else {
            return;
        };
        let budgets = &self.shared.budgets;
        let reason = match (b.max_daily_budget, b.max_cost_per_session, session) {
            (Some(max), _, _) if budgets.today(wall_ms) >= max => {
                format!("the daily budget of ${max} is spent")
            }
            (_, Some(max), Some(s)) if budgets.session(s) >= max => {
                format!("session `{s}` has spent its budget of ${max}")
            }
            _ => return,
        };
        if let Some(to) = self.cheaper(*model, needs).last().copied() {
            adj.push(self.adjust("budget", *model, to, reason));
            *model = to;
        }
    }

    /// The models below `model` on the price ladder that can serve the request
    /// (capabilities, health), cheapest last, down to the quality threshold.
    fn cheaper(&self, model: usize, needs: &[&str]) -> Vec<usize> {
        let min_quality = self
            .bundle
            .content
            .budgets
            .as_ref()
            .and_then(|b| b.quality_threshold)
            .unwrap_or(f64::NEG_INFINITY);
        let mut out = Vec::new();
        let mut at = model;
        while let Some(next) = self.next_cheaper.get(at).copied().flatten() {
            if next == model || out.contains(&next) {
                break;
            }
            if self.models()[next].quality.unwrap_or(f64::INFINITY) < min_quality {
                break;
            }
            if self.usable(next, needs) {
                out.push(next);
            }
            at = next;
        }
        out
    }

    /// A model can take this request: available, with every capability it needs.
    pub(super) fn usable(&self, m: usize, needs: &[&str]) -> bool {
        self.model_available(m) && self.fits(m, needs)
    }

    fn fits(&self, m: usize, needs: &[&str]) -> bool {
        let caps = &self.models()[m].capabilities;
        needs.iter().all(|n| caps.iter().any(|c| c == n))
    }

    /// The capabilities the request's values require (`requires` in the schema).
    fn needs<'a>(&'a self, values: &[Option<Scalar>]) -> Vec<&'a str> {
        let mut out = Vec::new();
        for (slot, spec) in self.bundle.content.schema.attributes.iter().enumerate() {
            if spec.requires.is_empty() {
                continue;
            }
            if let Some(Some(Scalar::Str(v))) = values.get(slot) {
                if let Some((_, caps)) = spec.requires.iter().find(|(value, _)| value == v) {
                    out.extend(caps.iter().map(String::as_str));
                }
            }
        }
        out
    }

    /// Where a switched cost window's downgrade goes: the next cheaper model that can
    /// serve the request (above the quality floor), or the model the policy names.
    fn downgrade_of(&self, model: usize, to: &DowngradeTarget, needs: &[&str]) -> Option<usize> {
        match to {
            DowngradeTarget::NextCheaper => self.cheaper(model, needs).first().copied(),
            DowngradeTarget::Model(name) => self.model(name).filter(|&m| self.usable(m, needs)),
        }
    }

    /// The model on a failover fallback provider that stands in for `model`: a
    /// provider picked by weighted round-robin over the healthy fallbacks, and its
    /// model closest to the original.
    fn failover_target(&self, model: usize, needs: &[&str]) -> Option<(usize, u64)> {
        let f = self.bundle.content.failover.as_ref()?;
        let live = self.failover.as_ref()?;
        let stand_ins = self.stand_ins.get(model)?;
        let i =
            lock(&live.balancer).pick(|i| stand_ins[i].is_some_and(|m| self.usable(m, needs)))?;
        Some((stand_ins[i]?, f.fallbacks[i].timeout_ms))
    }

    /// The ordered fallback chain: for each origin (the answer, then the model the
    /// table picked, then the pool's other members) the pool's members by weight and
    /// the origin's stand-ins on the failover fallbacks (when it runs on the primary);
    /// then the policy's fallback rule. Only models that can serve the request, each
    /// once, never the answer itself.
    fn chain(
        &self,
        origins: &[usize],
        pool: Option<usize>,
        rule: u32,
        needs: &[&str],
    ) -> Vec<Candidate> {
        let answer = origins[0];
        let mut out: Vec<Candidate> = Vec::new();
        let push = |out: &mut Vec<Candidate>, model: usize, pool: Option<usize>, timeout_ms| {
            if model != answer && self.usable(model, needs) && !out.iter().any(|x| x.model == model)
            {
                out.push(Candidate {
                    model,
                    pool,
                    timeout_ms,
                });
            }
        };
        let member_of = |m: usize| pool.filter(|&p| self.members[p].contains(&Some(m)));
        for (k, &origin) in origins.iter().enumerate() {
            if k > 0 {
                push(&mut out, origin, member_of(origin), None);
            }
            if k == 0 {
                if let Some(p) = pool {
                    for &m in &self.members_by_weight[p] {
                        push(&mut out, m, Some(p), None);
                    }
                }
            }
            if let (Some(primary), Some(f)) = (self.primary, &self.bundle.content.failover) {
                if self.provider_of(origin) == Some(primary) {
                    for &i in &self.fallbacks_by_weight {
                        if let Some(m) = self.stand_ins[origin][i] {
                            push(&mut out, m, None, Some(f.fallbacks[i].timeout_ms));
                        }
                    }
                }
            }
        }
        if let Some(fb) = self.fallback_rule.filter(|&f| f as u32 != rule) {
            let rules = &self.bundle.content.table.rules;
            match (rules[fb].target.kind, self.targets[fb]) {
                (TargetKind::Model, Some(m)) => push(&mut out, m, None, None),
                (TargetKind::Pool, Some(p)) => {
                    for &m in &self.members_by_weight[p] {
                        push(&mut out, m, Some(p), None);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// Takes the candidate's pool slot; a full pool overflows down the chain to the
    /// first candidate whose pool (if any) has room. Never waits.
    fn admit(
        &self,
        first: Candidate,
        chain: &mut Vec<Candidate>,
        adj: &mut Vec<Adjustment>,
    ) -> Result<(Candidate, Option<Slot>), RouteError> {
        let take = |c: &Candidate| -> Result<Option<Slot>, ()> {
            let Some(p) = c.pool else { return Ok(None) };
            let live = &self.pools[p];
            match live.limit.try_take() {
                Some(slot) => {
                    // read first: a write on every decision would bounce the line
                    let now = live.limit.in_flight();
                    if now > live.peak.load(Ordering::Relaxed) {
                        live.peak.fetch_max(now, Ordering::Relaxed);
                    }
                    Ok(Some(slot))
                }
                None => Err(()),
            }
        };
        let pool_name = |c: &Candidate| {
            c.pool
                .map(|p| self.pools[p].spec.name.as_str())
                .unwrap_or("")
        };
        match take(&first) {
            Ok(slot) => {
                if first.pool.is_some() {
                    self.admitted(&first, 0);
                }
                return Ok((first, slot));
            }
            Err(()) => self.admitted(&first, 1),
        }
        let full = first.pool;
        let mut i = 0;
        while i < chain.len() {
            let c = chain[i];
            if c.pool.is_some() && c.pool == full {
                i += 1;
                continue;
            }
            if let Ok(slot) = take(&c) {
                chain.remove(i);
                self.admitted(&first, 2);
                adj.push(self.adjust(
                    "overflow",
                    first.model,
                    c.model,
                    format!(
                        "pool `{}` has all {} slots in use",
                        pool_name(&first),
                        self.pools[full.unwrap_or(0)].spec.max_concurrent
                    ),
                ));
                return Ok((c, slot));
            }
            i += 1;
        }
        let name = pool_name(&first).to_string();
        let tried: Vec<String> = chain
            .iter()
            .filter(|c| !(c.pool.is_some() && c.pool == full))
            .map(|c| format!("`{}`", self.names.models[c.model]))
            .collect();
        let rest = if tried.is_empty() {
            "the fallback chain has no model outside the pool that can serve the request"
                .to_string()
        } else {
            format!(
                "no model of the fallback chain has room ({})",
                tried.join(", ")
            )
        };
        Err(RouteError {
            retry_after: Some(1),
            ..RouteError::new(
                503,
                "pool_full",
                format!("pool `{name}` has all its slots in use, and {rest}"),
            )
            .help("retry after a second; raise `max_concurrent` if this happens under normal load")
        })
    }

    /// Counts a pool admission: 0 taken, 1 full, 2 overflow.
    fn admitted(&self, c: &Candidate, outcome: usize) {
        if let Some(p) = c.pool {
            self.pools[p].admissions[outcome].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn unavailable_reason(&self, model: usize) -> String {
        if self.models()[model].status == "disabled" {
            return format!("model `{}` is disabled", self.names.models[model]);
        }
        match self.provider_of(model) {
            Some(p) => format!("provider `{}` is unhealthy", self.names.providers[p]),
            None => format!(
                "model `{}` has no declared provider",
                self.names.models[model]
            ),
        }
    }

    fn adjust(&self, kind: &'static str, from: usize, to: usize, reason: String) -> Adjustment {
        Adjustment {
            kind,
            from: self.names.models[from].to_string(),
            to: self.names.models[to].to_string(),
            reason,
        }
    }

    fn entry(&self, c: &Candidate) -> ChainEntry<'_> {
        let m = &self.models()[c.model];
        ChainEntry {
            model: &m.name,
            model_id: &m.model,
            provider: &m.provider,
            timeout_ms: c.timeout_ms,
        }
    }
}
