//! Making a decision, as a sequence of steps, each one function:
//!
//! 1. **table**: the compiled decision table picks the rule;
//! 2. **pool**: a pool rule picks its member (the session's pin, else smooth weighted
//!    round-robin over healthy members);
//! 3. **budget**: a spent daily or session budget steps down the price ladder;
//! 4. **windows**: switched cost windows downgrade, fall back fast or switch provider;
//! 5. **failover**: the failed-over primary's traffic goes to a fallback's stand-in;
//! 6. **chain**: the ordered fallback chain of models that can serve the request;
//! 7. **health**: an unavailable answer moves to the first of the chain;
//! 8. **admission**: the answer's pool slot, else overflow down the chain, else 503.
//!
//! Every change to the table's answer is an [`Adjustment`] with its reason. The steps
//! read live state and change only the balancers, pins and slots they use.

use std::sync::atomic::Ordering;

use serde_json::Value as Json;

use super::gateway::Gateway;
use super::ids::{FallbackIx, Ix, ModelIx, PoolIx, RuleIx};
use super::index::Target;
use super::leases::Lease;
use super::limits::Slot;
use super::live::Admission;
use super::reserve::{Reservation, WorstCase};
use super::stats::lock;
use crate::compile::value::Scalar;
use crate::machines::{DowngradeTarget, Switch};

pub use super::call::Call;
pub use super::decision::{
    Adjustment, AdjustmentKind, ChainEntry, Decision, PoolRef, RouteError, RuleRef, MAX_SESSION_ID,
};

/// A candidate for the final answer: a model and the pool whose slot it needs.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    model: ModelIx,
    pool: Option<PoolIx>,
    timeout_ms: Option<u64>,
}

/// What a request needs of a model: the capabilities its values require, and room
/// for its tokens in the model's context window.
struct Needs<'g> {
    capabilities: Vec<&'g str>,
    tokens: Option<f64>,
}

/// The answer as the steps shape it.
struct Plan {
    rule: RuleIx,
    /// what the table (and the pool step) picked
    picked: ModelIx,
    /// the answer so far
    model: ModelIx,
    pool: Option<PoolIx>,
    /// the pool step followed a session's pin
    pinned: bool,
    timeout_ms: Option<u64>,
    adjustments: Vec<Adjustment>,
}

impl Plan {
    fn move_to(&mut self, adjustment: Adjustment, to: ModelIx) {
        self.adjustments.push(adjustment);
        self.model = to;
    }
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
        let request = self.bundle.content.schema.parse(json)?;
        let values = &request.values;
        let (rule, target) = self.step_table(values)?;
        let session = self.session_of(values)?;
        let needs = self.needs(values);

        let mut plan = self.step_pool(rule, target, session, now_ms);
        self.step_budget(&mut plan, session, wall_ms, &needs);
        let switch_provider = self.step_windows(&mut plan, &needs);
        self.step_failover(&mut plan, switch_provider, &needs);
        let mut chain = self.step_chain(&plan, &needs);
        let first = self.step_fit(&mut plan, &mut chain, &needs)?;
        let (chosen, slot) = self.step_admission(first, &mut chain, &mut plan.adjustments)?;

        self.pin_session(&plan, chosen, session, now_ms);
        Ok(self.decide(plan, chosen, slot, &chain, session, now_ms))
    }

    /// Decides for a call the proxy makes: like [`Gateway::route`], but the client may
    /// name the model (it replaces the table's target; the other steps still apply),
    /// and the budget step asks whether the call's worst case fits what the budgets
    /// leave — stepping down the price ladder to a model whose worst case fits, or
    /// refusing with 402 `budget_exceeded` — instead of whether they are spent. The
    /// decision comes with the chosen model's reservation.
    pub fn route_call(
        &self,
        json: &Json,
        call: &Call,
        now_ms: u64,
        wall_ms: u64,
    ) -> Result<(Decision<'_>, Reservation), RouteError> {
        let request = self.bundle.content.schema.parse(json)?;
        let values = &request.values;
        let (rule, target) = self.step_table(values)?;
        let session = self.session_of(values)?;
        let needs = self.needs(values);

        let mut plan = match call.model {
            Some(model) => self.step_requested(rule, target, model),
            None => self.step_pool(rule, target, session, now_ms),
        };
        self.step_budget_call(&mut plan, session, wall_ms, &needs, &call.worst)?;
        let switch_provider = self.step_windows(&mut plan, &needs);
        self.step_failover(&mut plan, switch_provider, &needs);
        let mut chain = self.step_chain(&plan, &needs);
        let first = self.step_fit(&mut plan, &mut chain, &needs)?;
        let (chosen, slot) = self.step_admission(first, &mut chain, &mut plan.adjustments)?;
        // the slot (if any) is given back when this fails: nothing is issued yet
        let reservation = self
            .reserve(chosen.model, session, &call.worst, wall_ms)
            .map_err(|r| r.to_error())?;

        self.pin_session(&plan, chosen, session, now_ms);
        let decision = self.decide(plan, chosen, slot, &chain, session, now_ms);
        let reservation = reservation.for_decision(&decision.decision_id);
        Ok((decision, reservation))
    }

    /// Step 2 for a model the client named: it replaces the table's target.
    fn step_requested(&self, rule: RuleIx, target: Target, model: ModelIx) -> Plan {
        let from = match target {
            Target::Model(m) => self.ix.names.models[m].to_string(),
            Target::Pool(p) => self.live.pools[p].spec.name.clone(),
        };
        let to = self.ix.names.models[model].to_string();
        let adjustments = if from == to {
            Vec::new()
        } else {
            vec![Adjustment {
                kind: AdjustmentKind::Requested,
                from,
                to,
                reason: "the client named the model".into(),
            }]
        };
        Plan {
            rule,
            picked: model,
            model,
            pool: None,
            pinned: false,
            timeout_ms: None,
            adjustments,
        }
    }

    /// Step 3 for a call: when the worst case of a call to the model does not fit
    /// the daily or session budget, the first model down the price ladder whose worst
    /// case fits; none: 402.
    fn step_budget_call(
        &self,
        plan: &mut Plan,
        session: Option<&str>,
        wall_ms: u64,
        needs: &Needs<'_>,
        worst: &WorstCase,
    ) -> Result<(), RouteError> {
        let caps = self.caps();
        if caps.daily.is_none() && caps.session.is_none() {
            return Ok(());
        }
        // a reservation taken and given back at once: the same check as the real one
        let refusal = match self.reserve(plan.model, session, worst, wall_ms) {
            Ok(_) => return Ok(()),
            Err(r) => r,
        };
        let to = self
            .cheaper(plan.model, needs)
            .into_iter()
            .find(|&m| self.reserve(m, session, worst, wall_ms).is_ok());
        let Some(to) = to else {
            return Err(refusal.to_error());
        };
        let reason = format!(
            "a call to `{}` may cost up to ${:.6}, and `{}` has ${:.6} left",
            self.ix.names.models[plan.model],
            refusal.needed,
            refusal.limit.field(),
            refusal.left()
        );
        plan.move_to(
            self.adjust(AdjustmentKind::Budget, plan.model, to, reason),
            to,
        );
        Ok(())
    }

    /// The request's session id, refused when too long to keep.
    fn session_of<'r>(&self, values: &'r [Option<Scalar>]) -> Result<Option<&'r str>, RouteError> {
        let session = self
            .ix
            .session_slot
            .and_then(|s| values.get(s))
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
        Ok(session)
    }

    /// Step 1: the rule the decision table picks, and its target.
    fn step_table(&self, values: &[Option<Scalar>]) -> Result<(RuleIx, Target), RouteError> {
        let rule = self.bundle.content.table.decide(values).ok_or_else(|| {
            RouteError::new(422, "no_route", "no routing rule matches this request").help(
                "add a `fallback:` rule to the policy, or check the request with `rulec explain`",
            )
        })?;
        let rule = RuleIx::new(rule as usize);
        let target = self
            .ix
            .targets
            .get(rule)
            .copied()
            .flatten()
            .ok_or_else(|| {
                RouteError::new(
                    500,
                    "bundle_inconsistent",
                    format!(
                        "rule `{}` names a target the bundle does not declare",
                        self.ix.names.rules.get(rule).map_or("?", |r| r)
                    ),
                )
            })?;
        Ok((rule, target))
    }

    /// Step 2: the model of the target; for a pool, its member for this request: the
    /// session's pin while it lives and its member is healthy, else the next by smooth
    /// weighted round-robin over healthy members. With no healthy member, the first by
    /// weight (the health step moves it later).
    fn step_pool(&self, rule: RuleIx, target: Target, session: Option<&str>, now_ms: u64) -> Plan {
        let plan = |model, pool, pinned, adjustments| Plan {
            rule,
            picked: model,
            model,
            pool,
            pinned,
            timeout_ms: None,
            adjustments,
        };
        let p = match target {
            Target::Model(m) => return plan(m, None, false, Vec::new()),
            Target::Pool(p) => p,
        };
        let live = &self.live.pools[p];
        let members = &self.ix.members[p];
        let member_model = |i: usize| members.get(i).copied().flatten();
        let healthy = |i: usize| member_model(i).is_some_and(|m| self.model_available(m));
        if let (Some(s), Some(aff)) = (session, &live.affinity) {
            let pinned = lock(aff).get(s, now_ms, healthy);
            if let Some(m) = pinned.and_then(member_model) {
                let name = &self.ix.names.models[m];
                let pin = Adjustment {
                    kind: AdjustmentKind::Affinity,
                    from: name.to_string(),
                    to: name.to_string(),
                    reason: format!("session `{s}` is pinned to this member"),
                };
                return plan(m, Some(p), true, vec![pin]);
            }
        }
        let picked = lock(&live.balancer).pick(healthy);
        let member = picked.unwrap_or_else(|| {
            let w = &live.spec.weights;
            (0..w.len())
                .max_by(|&a, &b| w[a].total_cmp(&w[b]).then(b.cmp(&a)))
                .unwrap_or(0)
        });
        let model = member_model(member).unwrap_or(ModelIx::new(0));
        plan(model, Some(p), false, Vec::new())
    }

    /// Step 3: a spent daily or session budget moves the model down the price ladder
    /// to the cheapest model that can serve the request and meets the quality floor.
    fn step_budget(&self, plan: &mut Plan, session: Option<&str>, wall_ms: u64, needs: &Needs<'_>) {
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
        if let Some(to) = self.cheaper(plan.model, needs).last().copied() {
            plan.move_to(
                self.adjust(AdjustmentKind::Budget, plan.model, to, reason),
                to,
            );
        }
    }

    /// Step 4: the switches of the cost windows in force, in rule order. Returns
    /// whether one of them switches providers (carried out by step 5).
    fn step_windows(&self, plan: &mut Plan, needs: &Needs<'_>) -> bool {
        let mut switch_provider = false;
        for (machine, switch) in self.active_switches() {
            let (kind, to) = match &switch {
                Switch::Downgrade { to } => (
                    AdjustmentKind::Downgrade,
                    self.downgrade_of(plan.model, to, needs),
                ),
                Switch::FallbackFast { model } => (
                    AdjustmentKind::FallbackFast,
                    self.model(model).filter(|&m| self.usable(m, needs)),
                ),
                Switch::SwitchProvider => {
                    switch_provider = true;
                    continue;
                }
            };
            if let Some(to) = to.filter(|&t| t != plan.model) {
                let reason = format!("cost window `{machine}` is switched");
                plan.move_to(self.adjust(kind, plan.model, to, reason), to);
            }
        }
        switch_provider
    }

    /// Step 5: a model on the primary provider moves to a fallback's stand-in while
    /// the primary is failed over (unless it is half-open: its traffic is the probe)
    /// or a cost window switched providers.
    fn step_failover(&self, plan: &mut Plan, switch_provider: bool, needs: &Needs<'_>) {
        let Some(primary) = self
            .ix
            .primary
            .filter(|&p| self.provider_of(plan.model) == Some(p))
        else {
            return;
        };
        let failed_over = self.failed_over() && !self.half_open(primary);
        if !failed_over && !switch_provider {
            return;
        }
        let Some((to, timeout_ms)) = self.failover_target(plan.model, needs) else {
            return;
        };
        let (kind, reason) = if failed_over {
            (
                AdjustmentKind::Failover,
                format!(
                    "provider `{}` is failed over",
                    self.ix.names.providers[primary]
                ),
            )
        } else {
            (
                AdjustmentKind::SwitchProvider,
                "a cost window switched providers".to_string(),
            )
        };
        plan.move_to(self.adjust(kind, plan.model, to, reason), to);
        plan.timeout_ms = Some(timeout_ms);
    }

    /// Step 6: the ordered fallback chain: for each origin (the answer, then the model
    /// the table picked, then the pool's other members) the pool's members by weight
    /// and the origin's stand-ins on the failover fallbacks (when it runs on the
    /// primary); then the policy's fallback rule. Only models that can serve the
    /// request, each once, never the answer itself.
    fn step_chain(&self, plan: &Plan, needs: &Needs<'_>) -> Vec<Candidate> {
        let answer = plan.model;
        let pool = plan.pool;
        let mut origins = vec![answer];
        if plan.picked != answer {
            origins.push(plan.picked);
        }
        if let Some(p) = pool {
            origins.extend(self.ix.members_by_weight[p].iter().copied());
        }
        let mut out: Vec<Candidate> = Vec::new();
        let push = |out: &mut Vec<Candidate>, model, pool, timeout_ms| {
            if model != answer && self.usable(model, needs) && !out.iter().any(|x| x.model == model)
            {
                out.push(Candidate {
                    model,
                    pool,
                    timeout_ms,
                });
            }
        };
        let member_of = |m: ModelIx| pool.filter(|&p| self.ix.is_member(p, m));
        for (k, &origin) in origins.iter().enumerate() {
            if k == 0 {
                if let Some(p) = pool {
                    for &m in &self.ix.members_by_weight[p] {
                        push(&mut out, m, Some(p), None);
                    }
                }
            } else {
                push(&mut out, origin, member_of(origin), None);
            }
            if let (Some(primary), Some(f)) = (self.ix.primary, &self.bundle.content.failover) {
                if self.provider_of(origin) == Some(primary) {
                    for &i in &self.ix.fallbacks_by_weight {
                        if let Some(m) = self.ix.stand_ins[origin][i] {
                            push(&mut out, m, None, Some(fallback_timeout(f, i)));
                        }
                    }
                }
            }
        }
        if let Some(fb) = self.ix.fallback_rule.filter(|&f| f != plan.rule) {
            match self.ix.targets[fb] {
                Some(Target::Model(m)) => push(&mut out, m, None, None),
                Some(Target::Pool(p)) => {
                    for &m in &self.ix.members_by_weight[p] {
                        push(&mut out, m, Some(p), None);
                    }
                }
                None => {}
            }
        }
        out
    }

    /// Step 7: an answer that cannot take this request — its provider unhealthy, the
    /// model disabled, or the request larger than its context window — moves to the
    /// first of the chain (which holds only models that can). With nothing there, an
    /// unavailable answer stands and the decision says so; a request no model can
    /// hold is refused. An answer that is a member of the pool (picked or moved to)
    /// needs its slot.
    fn step_fit(
        &self,
        plan: &mut Plan,
        chain: &mut Vec<Candidate>,
        needs: &Needs<'_>,
    ) -> Result<Candidate, RouteError> {
        let model = plan.model;
        let first = Candidate {
            model,
            pool: plan.pool.filter(|&p| self.ix.is_member(p, model)),
            timeout_ms: plan.timeout_ms,
        };
        let too_large = !self.holds(model, needs);
        if !too_large && self.model_available(model) {
            return Ok(first);
        }
        let (kind, reason) = if too_large {
            let tokens = needs.tokens.unwrap_or_default();
            (
                AdjustmentKind::ContextWindow,
                format!(
                    "the request's {tokens} estimated tokens exceed the context window of `{}` ({} tokens)",
                    self.ix.names.models[model],
                    self.model_spec(model).max_tokens
                ),
            )
        } else {
            (AdjustmentKind::Unhealthy, self.unavailable_reason(model))
        };
        if chain.is_empty() {
            // a model that could hold the request but is unavailable now: a passing
            // outage, not a request too large for the policy
            let waiting = too_large
                .then(|| {
                    self.model_ixs()
                        .find(|&m| !self.ix.disabled[m] && self.fits(m, needs))
                })
                .flatten();
            if let Some(m) = waiting {
                return Err(RouteError {
                    retry_after: Some(1),
                    ..RouteError::new(
                        503,
                        "context_window_unavailable",
                        format!(
                            "{reason}, and the models that can hold it are unavailable ({})",
                            self.unavailable_reason(m)
                        ),
                    )
                    .help("retry shortly; `GET /v1/status` shows which providers are unhealthy")
                });
            }
            if too_large {
                return Err(RouteError::new(
                    413,
                    "context_window_exceeded",
                    format!("{reason}, and no model of the fallback chain can hold it"),
                )
                .help("split the request, or route requests this large to a model with a larger `max_tokens`"));
            }
            plan.adjustments.push(Adjustment {
                kind: AdjustmentKind::AllUnhealthy,
                from: self.ix.names.models[model].to_string(),
                to: self.ix.names.models[model].to_string(),
                reason: format!(
                    "{reason}, and no model of the fallback chain can serve the request"
                ),
            });
            return Ok(first);
        }
        let next = chain.remove(0);
        plan.move_to(self.adjust(kind, model, next.model, reason), next.model);
        Ok(next)
    }

    /// Step 8: takes the candidate's pool slot; a full pool overflows down the chain
    /// to the first candidate whose pool (if any) has room. Never waits.
    fn step_admission(
        &self,
        first: Candidate,
        chain: &mut Vec<Candidate>,
        adj: &mut Vec<Adjustment>,
    ) -> Result<(Candidate, Option<Slot>), RouteError> {
        let Some(full) = first.pool else {
            return Ok((first, None));
        };
        if let Some(slot) = self.take_slot(full) {
            self.live.pools[full].admissions.count(Admission::Taken);
            return Ok((first, Some(slot)));
        }
        self.live.pools[full].admissions.count(Admission::Full);
        let outside = |c: &Candidate| c.pool != Some(full);
        for i in 0..chain.len() {
            let c = chain[i];
            if !outside(&c) {
                continue;
            }
            let slot = match c.pool {
                None => None,
                Some(p) => match self.take_slot(p) {
                    Some(slot) => Some(slot),
                    None => continue,
                },
            };
            chain.remove(i);
            self.live.pools[full].admissions.count(Admission::Overflow);
            let spec = &self.live.pools[full].spec;
            adj.push(self.adjust(
                AdjustmentKind::Overflow,
                first.model,
                c.model,
                format!(
                    "pool `{}` has all {} slots in use",
                    spec.name, spec.max_concurrent
                ),
            ));
            return Ok((c, slot));
        }
        let tried: Vec<String> = chain
            .iter()
            .filter(|c| outside(c))
            .map(|c| format!("`{}`", self.ix.names.models[c.model]))
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
        Err(self.pool_full(full, &rest))
    }

    /// A full pool's 503: its slots are held by decisions whose outcomes have not been
    /// reported yet (a slot is given back by the report, or when the lease expires),
    /// so the fix is usually to report them, not a larger pool. Cheap: a full pool
    /// under load answers many of these.
    fn pool_full(&self, pool: PoolIx, rest: &str) -> RouteError {
        let live = &self.live.pools[pool];
        let held = live.limit.in_flight();
        let message = format!(
            "pool `{}` has all {} slots in use, held by {held} {} not yet reported; and {rest}",
            live.spec.name,
            live.spec.max_concurrent,
            if held == 1 { "decision" } else { "decisions" },
        );
        RouteError {
            retry_after: Some(1),
            ..RouteError::new(503, "pool_full", message).help(format!(
                "a decision holds its pool slot until its outcome is sent to `POST /v1/report` (with its `decision_id`) or its lease expires (`--lease-timeout`, now {}); report every call's outcome, and raise `max_concurrent` only if this many calls really run at once",
                seconds(self.shared.leases.ttl_ms)
            ))
        }
    }

    /// A slot of the pool, if it has room; keeps the pool's peak.
    fn take_slot(&self, p: PoolIx) -> Option<Slot> {
        let live = &self.live.pools[p];
        let slot = live.limit.try_take()?;
        // read first: a write on every decision would bounce the line
        let now = live.limit.in_flight();
        if now > live.peak.load(Ordering::Relaxed) {
            live.peak.fetch_max(now, Ordering::Relaxed);
        }
        Some(slot)
    }

    /// Pins the session to the member the pool step picked, when that is the answer.
    fn pin_session(&self, plan: &Plan, chosen: Candidate, session: Option<&str>, now_ms: u64) {
        let Some(p) = plan.pool else { return };
        if plan.pinned || chosen.model != plan.picked || chosen.pool != plan.pool {
            return;
        }
        let (Some(s), Some(aff)) = (session, &self.live.pools[p].affinity) else {
            return;
        };
        if let Some(member) = self.ix.member_position(p, plan.picked) {
            lock(aff).pin(s, member, now_ms);
        }
    }

    /// Counts the decision, issues its lease (which holds the slot) and writes it.
    fn decide(
        &self,
        plan: Plan,
        chosen: Candidate,
        slot: Option<Slot>,
        chain: &[Candidate],
        session: Option<&str>,
        now_ms: u64,
    ) -> Decision<'_> {
        self.count_decision(plan.rule, chosen.model);
        let lease = Lease {
            model: chosen.model.as_u32(),
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
        let spec = self.model_spec(chosen.model);
        let info = &self.bundle.content.table.rules[plan.rule.as_u32() as usize];
        Decision {
            decision_id: format!("d-{}-{id}", self.shared.boot),
            model: &spec.name,
            model_id: &spec.model,
            provider: &spec.provider,
            pool: chosen.pool.and_then(|p| {
                Some(PoolRef {
                    name: &self.live.pools[p].spec.name,
                    member: self.ix.member_position(p, chosen.model)?,
                })
            }),
            rule: RuleRef {
                index: plan.rule.as_u32(),
                id: &info.id,
                priority: info.priority.as_deref(),
                file: &info.source.file,
                line: info.source.line,
            },
            fallbacks: chain.iter().map(|e| self.entry(e)).collect(),
            adjustments: plan.adjustments,
            bundle: &self.bundle.hash,
        }
    }

    /// The models below `model` on the price ladder that can serve the request
    /// (capabilities, health), cheapest last, down to the quality threshold.
    fn cheaper(&self, model: ModelIx, needs: &Needs<'_>) -> Vec<ModelIx> {
        let min_quality = self
            .bundle
            .content
            .budgets
            .as_ref()
            .and_then(|b| b.quality_threshold)
            .unwrap_or(f64::NEG_INFINITY);
        let mut out = Vec::new();
        let mut at = model;
        while let Some(next) = self.ix.next_cheaper.get(at).copied().flatten() {
            if next == model || out.contains(&next) {
                break;
            }
            if self.model_spec(next).quality.unwrap_or(f64::INFINITY) < min_quality {
                break;
            }
            if self.usable(next, needs) {
                out.push(next);
            }
            at = next;
        }
        out
    }

    /// A model can take this request: available, with every capability it needs and
    /// room for its tokens.
    fn usable(&self, m: ModelIx, needs: &Needs<'_>) -> bool {
        self.model_available(m) && self.fits(m, needs)
    }

    fn fits(&self, m: ModelIx, needs: &Needs<'_>) -> bool {
        let caps = &self.model_spec(m).capabilities;
        self.holds(m, needs)
            && needs
                .capabilities
                .iter()
                .all(|n| caps.iter().any(|c| c == n))
    }

    /// The request's tokens fit the model's context window (`max_tokens`).
    fn holds(&self, m: ModelIx, needs: &Needs<'_>) -> bool {
        needs
            .tokens
            .is_none_or(|t| t <= self.model_spec(m).max_tokens as f64)
    }

    /// What the request needs: the capabilities its values require (`requires` in
    /// the schema) and its `estimated_tokens`.
    fn needs<'a>(&'a self, values: &[Option<Scalar>]) -> Needs<'a> {
        let capabilities = self.bundle.content.schema.required_capabilities(values);
        let tokens = self
            .ix
            .tokens_slot
            .and_then(|s| values.get(s))
            .and_then(|v| match v {
                Some(Scalar::Num(n)) => Some(*n),
                _ => None,
            });
        Needs {
            capabilities,
            tokens,
        }
    }

    /// Where a switched cost window's downgrade goes: the next cheaper model that can
    /// serve the request (above the quality floor), or the model the policy names.
    fn downgrade_of(
        &self,
        model: ModelIx,
        to: &DowngradeTarget,
        needs: &Needs<'_>,
    ) -> Option<ModelIx> {
        match to {
            DowngradeTarget::NextCheaper => self.cheaper(model, needs).first().copied(),
            DowngradeTarget::Model(name) => self.model(name).filter(|&m| self.usable(m, needs)),
        }
    }

    /// The model on a failover fallback provider that stands in for `model`: a
    /// provider picked by weighted round-robin over the healthy fallbacks, and its
    /// model closest to the original.
    fn failover_target(&self, model: ModelIx, needs: &Needs<'_>) -> Option<(ModelIx, u64)> {
        let f = self.bundle.content.failover.as_ref()?;
        let live = self.live.failover.as_ref()?;
        let stand_ins = self.ix.stand_ins.get(model)?;
        let usable = |i: usize| {
            stand_ins
                .get(FallbackIx::new(i))
                .copied()
                .flatten()
                .is_some_and(|m| self.usable(m, needs))
        };
        let i = FallbackIx::new(lock(&live.balancer).pick(usable)?);
        Some((stand_ins[i]?, fallback_timeout(f, i)))
    }

    fn unavailable_reason(&self, model: ModelIx) -> String {
        let name = &self.ix.names.models[model];
        if self.ix.disabled[model] {
            return format!("model `{name}` is disabled");
        }
        match self.provider_of(model) {
            Some(p) => format!("provider `{}` is unhealthy", self.ix.names.providers[p]),
            None => format!("model `{name}` has no declared provider"),
        }
    }

    fn adjust(
        &self,
        kind: AdjustmentKind,
        from: ModelIx,
        to: ModelIx,
        reason: String,
    ) -> Adjustment {
        Adjustment {
            kind,
            from: self.ix.names.models[from].to_string(),
            to: self.ix.names.models[to].to_string(),
            reason,
        }
    }

    fn entry(&self, c: &Candidate) -> ChainEntry<'_> {
        let m = self.model_spec(c.model);
        ChainEntry {
            model: &m.name,
            model_id: &m.model,
            provider: &m.provider,
            timeout_ms: c.timeout_ms,
        }
    }
}

fn fallback_timeout(f: &crate::bundle::spec::FailoverSpec, i: FallbackIx) -> u64 {
    f.fallbacks
        .get(i.as_u32() as usize)
        .map_or(0, |x| x.timeout_ms)
}

/// Milliseconds as whole seconds for messages (`45 s`), or milliseconds below one.
fn seconds(ms: u64) -> String {
    if ms >= 1000 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}
