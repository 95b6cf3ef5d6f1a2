//! One loaded bundle and the live state around it. A `Gateway` is immutable once
//! built, except for the live parts behind locks and atomics; hot reload builds a new
//! one that takes over the live parts of the old (providers, pools, machines that
//! still exist) and swaps it in. Requests keep the `Arc<Gateway>` they started with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::affinity::Affinity;
use super::balancer::Balancer;
use super::budget::Budgets;
use super::leases::Leases;
use super::limits::Limit;
use super::stats::{lock, Stats};
use super::window::Window;
use crate::bundle::spec::{ModelSpec, PoolSpec};
use crate::bundle::Bundle;
use crate::compile::table::TargetKind;
use crate::machines::{
    failover, health, transition, Action, Event, EventKind, Instance, Machine, Metrics, Params,
    Switch, MAX_COUNTERS,
};

/// How many affinity pins, budget sessions and leases the server keeps at most.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub affinity_capacity: usize,
    pub session_capacity: usize,
    pub lease_capacity: usize,
    pub lease_ttl_ms: u64,
    pub window_capacity: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            affinity_capacity: 100_000,
            session_capacity: 100_000,
            lease_capacity: 100_000,
            lease_ttl_ms: 120_000,
            window_capacity: 200_000,
        }
    }
}

/// What outlives every bundle: counters, the cost window, budgets, leases.
#[derive(Debug)]
pub struct Shared {
    /// the model names of recent gateways, by generation, for leases issued before a
    /// reload (reports name the model by the index it had then)
    generations: Mutex<std::collections::VecDeque<(u32, Arc<Vec<String>>)>>,
    next_generation: std::sync::atomic::AtomicU32,
    /// this process's mark in decision ids (`d-BOOT-N`), so that an id from before a
    /// restart, or from another replica, is never taken for one of this process's
    pub boot: String,
    pub stats: Stats,
    pub window: Window,
    pub budgets: Budgets,
    pub leases: Leases,
    pub limits: Limits,
}

impl Shared {
    pub fn new(limits: Limits) -> Arc<Shared> {
        Arc::new(Shared {
            generations: Mutex::new(std::collections::VecDeque::new()),
            next_generation: std::sync::atomic::AtomicU32::new(0),
            boot: boot_mark(),
            stats: Stats::default(),
            window: Window::new(limits.window_capacity),
            budgets: Budgets::new(limits.session_capacity),
            leases: Leases::new(limits.lease_ttl_ms, limits.lease_capacity),
            limits,
        })
    }
}

/// Eight hex digits from the wall clock and the process id: different for every
/// start of every replica in practice, and short enough to read.
fn boot_mark() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // RandomState is seeded from the OS's randomness
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("{:08x}", h.finish() as u32)
}

/// How many reloads back a lease's model can still be named.
const GENERATIONS_KEPT: usize = 64;

impl Shared {
    fn register(&self, models: Vec<String>) -> u32 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let mut kept = lock(&self.generations);
        if kept.len() >= GENERATIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back((generation, Arc::new(models)));
        generation
    }

    /// The name of model `index` in the gateway of `generation`, while remembered.
    pub fn model_name(&self, generation: u32, index: u32) -> Option<String> {
        let kept = lock(&self.generations);
        let (_, names) = kept.iter().find(|(g, _)| *g == generation)?;
        names.get(index as usize).cloned()
    }
}

/// The last active or recovery check of a provider, for `/v1/status`.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub at_ms: u64,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug)]
pub struct ProviderLive {
    pub name: String,
    pub instance: Mutex<Instance>,
    pub healthy: AtomicBool,
    pub last_check: Mutex<Option<CheckResult>>,
}

#[derive(Debug)]
pub struct PoolLive {
    pub spec: PoolSpec,
    pub limit: Arc<Limit>,
    pub balancer: Mutex<Balancer>,
    pub affinity: Option<Mutex<Affinity>>,
    /// the most slots ever taken at once
    pub peak: AtomicU32,
    /// `rulec_pool_admissions_total` for this pool: taken, full, overflow
    pub admissions: [Arc<AtomicU64>; 3],
}

#[derive(Debug)]
pub struct CostLive {
    pub machine: String,
    pub instance: Mutex<Instance>,
    /// the switch in force, set and cleared by the machine's actions
    active: Mutex<Option<Switch>>,
    /// whether `active` is set: read on every decision without taking the lock
    switched: AtomicBool,
    pub last: Mutex<Option<Metrics>>,
}

impl CostLive {
    pub fn new(machine: String, instance: Instance) -> CostLive {
        CostLive {
            machine,
            instance: Mutex::new(instance),
            active: Mutex::new(None),
            switched: AtomicBool::new(false),
            last: Mutex::new(None),
        }
    }

    pub fn set_switch(&self, switch: Option<Switch>) {
        let mut active = lock(&self.active);
        self.switched.store(switch.is_some(), Ordering::Release);
        *active = switch;
    }

    pub fn switch(&self) -> Option<Switch> {
        if !self.switched.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.active).clone()
    }
}

#[derive(Debug)]
pub struct FailoverLive {
    pub instance: Mutex<Instance>,
    /// set by `route_to_fallbacks`, cleared by `route_to_primary`
    pub to_fallbacks: AtomicBool,
    pub balancer: Mutex<Balancer>,
}

/// Something the caller (the server) must do after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// send one recovery probe to this provider and report `probe_ok`/`probe_failed`
    Probe(usize),
}

#[derive(Debug)]
pub struct Gateway {
    pub bundle: Arc<Bundle>,
    pub shared: Arc<Shared>,
    pub providers: Vec<Arc<ProviderLive>>,
    pub pools: Vec<Arc<PoolLive>>,
    pub cost: Vec<Arc<CostLive>>,
    pub failover: Option<Arc<FailoverLive>>,
    pub(super) model_index: HashMap<String, usize>,
    pub(super) provider_index: HashMap<String, usize>,
    pub(super) pool_index: HashMap<String, usize>,
    /// each model's provider (an index into `providers`), `None` if undeclared
    pub(super) model_provider: Vec<Option<usize>>,
    /// each provider's health machine (an index into the bundle's health machines)
    pub(super) health_machine: Vec<Option<usize>>,
    /// each model's `next_cheaper` target
    pub(super) next_cheaper: Vec<Option<usize>>,
    /// per rule: the target's index (model or pool)
    pub(super) targets: Vec<Option<usize>>,
    /// the decisions counter per (rule, model), resolved on first use
    pub(super) decisions: Vec<OnceLock<Arc<AtomicU64>>>,
    pub(super) names: Names,
    /// this gateway's number among the gateways of this process (see [`Shared`])
    pub generation: u32,
    pub(super) session_slot: Option<usize>,
    pub(super) primary: Option<usize>,
    /// per pool: each member's model, by position
    pub(super) members: Vec<Vec<Option<usize>>>,
    /// per pool: its members' models, heaviest weight first
    pub(super) members_by_weight: Vec<Vec<usize>>,
    /// the failover fallbacks' positions, heaviest weight first
    pub(super) fallbacks_by_weight: Vec<usize>,
    /// per model, per failover fallback: the model standing in for it there
    pub(super) stand_ins: Vec<Vec<Option<usize>>>,
    /// the position of the rule marked `fallback`
    pub(super) fallback_rule: Option<usize>,
    /// per provider: no active checks (see [`active_checks`]); health comes from
    /// reported outcomes
    pub passive: Vec<bool>,
}

/// Whether the server can check a provider actively: plain HTTP endpoints for now.
pub fn active_checks(p: &crate::bundle::spec::ProviderSpec) -> bool {
    p.base_url.starts_with("http://")
}

/// Interned names, so that leases and decisions share instead of allocating.
#[derive(Debug, Default)]
pub(super) struct Names {
    pub models: Vec<Arc<str>>,
    pub providers: Vec<Arc<str>>,
    pub rules: Vec<Arc<str>>,
}

/// The in-service model of `provider` most like `models[model]`: most capabilities
/// in common, then highest quality, then name.
fn stand_in(models: &[ModelSpec], model: usize, provider: &str) -> Option<usize> {
    let want = &models[model].capabilities;
    let shared = |m: &ModelSpec| m.capabilities.iter().filter(|c| want.contains(c)).count();
    models
        .iter()
        .enumerate()
        .filter(|(_, m)| m.provider == provider && m.status != "disabled")
        .max_by(|(_, a), (_, b)| {
            shared(a)
                .cmp(&shared(b))
                .then(
                    a.quality
                        .unwrap_or(0.0)
                        .total_cmp(&b.quality.unwrap_or(0.0)),
                )
                .then(b.name.cmp(&a.name))
        })
        .map(|(i, _)| i)
}

fn same_pool(a: &PoolSpec, b: &PoolSpec) -> bool {
    a.models == b.models && a.weights == b.weights && a.max_concurrent == b.max_concurrent
}

impl Gateway {
    /// Builds the gateway for `bundle`, taking over the live state of `previous` for
    /// every provider, pool and machine that is still there (by name).
    pub fn new(bundle: Bundle, previous: Option<&Gateway>, shared: Arc<Shared>) -> Gateway {
        let c = &bundle.content;
        let index = |names: Vec<&String>| -> HashMap<String, usize> {
            names
                .into_iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i))
                .collect()
        };
        let model_index = index(c.models.iter().map(|m| &m.name).collect());
        let provider_index = index(c.providers.iter().map(|p| &p.name).collect());
        let pool_index = index(c.pools.iter().map(|p| &p.name).collect());

        let providers =
            c.providers
                .iter()
                .map(|p| {
                    previous
                        .and_then(|g| g.provider(&p.name))
                        .cloned()
                        .unwrap_or_else(|| {
                            let start =
                                c.machines.health_of(&p.name).map(Machine::start).unwrap_or(
                                    Instance {
                                        state: health::HEALTHY,
                                        counters: [0; MAX_COUNTERS],
                                        timer_at_ms: None,
                                    },
                                );
                            Arc::new(ProviderLive {
                                name: p.name.clone(),
                                instance: Mutex::new(start),
                                healthy: AtomicBool::new(true),
                                last_check: Mutex::new(None),
                            })
                        })
                })
                .collect();
        let affinity_ttl = c.session_affinity.as_ref().map(|a| a.ttl_ms);
        let pools = c
            .pools
            .iter()
            .map(|spec| {
                let old = previous
                    .and_then(|g| g.pool(&spec.name))
                    .filter(|old| same_pool(&old.spec, spec));
                match old {
                    Some(old) if old.affinity.is_some() == affinity_ttl.is_some() => {
                        Arc::clone(old)
                    }
                    _ => Arc::new(PoolLive {
                        spec: spec.clone(),
                        // slots held under the old pool stay counted while the limit stands
                        limit: previous
                            .and_then(|g| g.pool(&spec.name))
                            .filter(|old| old.spec.max_concurrent == spec.max_concurrent)
                            .map_or_else(
                                || {
                                    Limit::new(if spec.max_concurrent == 0 {
                                        u32::MAX
                                    } else {
                                        spec.max_concurrent
                                    })
                                },
                                |old| Arc::clone(&old.limit),
                            ),
                        balancer: Mutex::new(Balancer::new(&spec.weights)),
                        affinity: affinity_ttl.map(|ttl| {
                            Mutex::new(Affinity::new(ttl, shared.limits.affinity_capacity))
                        }),
                        peak: AtomicU32::new(0),
                        admissions: ["taken", "full", "overflow"]
                            .map(|o| shared.stats.pool_admissions.get(&[&spec.name, o])),
                    }),
                }
            })
            .collect();
        let cost = c
            .machines
            .cost_windows
            .iter()
            .map(|m| {
                previous
                    .and_then(|g| g.cost.iter().find(|x| x.machine == m.name))
                    .cloned()
                    .unwrap_or_else(|| Arc::new(CostLive::new(m.name.clone(), m.start())))
            })
            .collect();
        let failover = c.machines.failover.as_ref().map(|m| {
            let primary = c.failover.as_ref().map(|f| &f.primary);
            // the old state means something only for the same primary, and only if the
            // new machine can leave it (a live drill whose drill was removed cannot)
            let carried = previous
                .filter(|g| g.bundle.content.failover.as_ref().map(|f| &f.primary) == primary)
                .and_then(|g| g.failover.as_ref())
                .filter(|f| {
                    let state = lock(&f.instance).state;
                    m.rows.iter().any(|r| r.from == state)
                });
            let same_fallbacks = previous.is_some_and(|g| {
                g.bundle.content.failover.as_ref().map(|f| &f.fallbacks)
                    == c.failover.as_ref().map(|f| &f.fallbacks)
            });
            match carried {
                Some(live) if same_fallbacks => Arc::clone(live),
                _ => {
                    let weights: Vec<f64> = c
                        .failover
                        .iter()
                        .flat_map(|f| &f.fallbacks)
                        .map(|f| f.weight)
                        .collect();
                    Arc::new(FailoverLive {
                        instance: Mutex::new(
                            carried.map_or_else(|| m.start(), |f| *lock(&f.instance)),
                        ),
                        to_fallbacks: AtomicBool::new(
                            carried.is_some_and(|f| f.to_fallbacks.load(Ordering::Acquire)),
                        ),
                        balancer: Mutex::new(Balancer::new(&weights)),
                    })
                }
            }
        });

        let model_provider = c
            .models
            .iter()
            .map(|m| provider_index.get(&m.provider).copied())
            .collect();
        let health_machine =
            c.providers
                .iter()
                .map(|p| {
                    c.machines.health.iter().position(
                        |m| matches!(&m.params, Params::Health(h) if h.provider == p.name),
                    )
                })
                .collect();
        let next_cheaper = c
            .models
            .iter()
            .map(|m| {
                c.downgrades
                    .iter()
                    .find(|d| d.from == m.name)
                    .and_then(|d| model_index.get(&d.to).copied())
            })
            .collect();
        let targets = c
            .table
            .rules
            .iter()
            .map(|r| match r.target.kind {
                TargetKind::Model => model_index.get(&r.target.name).copied(),
                TargetKind::Pool => pool_index.get(&r.target.name).copied(),
            })
            .collect();
        let names = Names {
            models: c
                .models
                .iter()
                .map(|m| Arc::from(m.name.as_str()))
                .collect(),
            providers: c
                .providers
                .iter()
                .map(|p| Arc::from(p.name.as_str()))
                .collect(),
            rules: c
                .table
                .rules
                .iter()
                .map(|r| Arc::from(r.id.as_str()))
                .collect(),
        };
        let decisions = (0..c.table.rules.len() * c.models.len())
            .map(|_| OnceLock::new())
            .collect();
        let session_slot = c.schema.slot("session_id");
        let primary = c
            .failover
            .as_ref()
            .and_then(|f| provider_index.get(&f.primary).copied());
        let members: Vec<Vec<Option<usize>>> = c
            .pools
            .iter()
            .map(|p| {
                p.models
                    .iter()
                    .map(|m| model_index.get(m).copied())
                    .collect()
            })
            .collect();
        let members_by_weight = c
            .pools
            .iter()
            .zip(&members)
            .map(|(p, ms)| {
                let mut order: Vec<usize> = (0..ms.len()).collect();
                order.sort_by(|&a, &b| p.weights[b].total_cmp(&p.weights[a]).then(a.cmp(&b)));
                order.into_iter().filter_map(|i| ms[i]).collect()
            })
            .collect();
        let fallbacks = c.failover.as_ref().map_or(&[][..], |f| &f.fallbacks[..]);
        let mut fallbacks_by_weight: Vec<usize> = (0..fallbacks.len()).collect();
        fallbacks_by_weight.sort_by(|&a, &b| {
            fallbacks[b]
                .weight
                .total_cmp(&fallbacks[a].weight)
                .then(a.cmp(&b))
        });
        let stand_ins = (0..c.models.len())
            .map(|m| {
                fallbacks
                    .iter()
                    .map(|f| stand_in(&c.models, m, &f.provider))
                    .collect()
            })
            .collect();
        let fallback_rule = c.table.rules.iter().position(|r| r.fallback);
        let passive = c.providers.iter().map(|p| !active_checks(p)).collect();
        let generation = shared.register(c.models.iter().map(|m| m.name.clone()).collect());
        let gateway = Gateway {
            bundle: Arc::new(bundle),
            shared,
            providers,
            pools,
            cost,
            failover,
            model_index,
            provider_index,
            pool_index,
            model_provider,
            health_machine,
            next_cheaper,
            targets,
            decisions,
            names,
            session_slot,
            primary,
            members,
            members_by_weight,
            fallbacks_by_weight,
            stand_ins,
            fallback_rule,
            passive,
            generation,
        };
        for p in 0..gateway.providers.len() {
            // a half-open provider that can now be checked actively: probe it at once
            // (nothing else would take it out of `probing`)
            if !gateway.passive[p] {
                let mut inst = lock(&gateway.providers[p].instance);
                if inst.state == health::PROBING {
                    inst.state = health::UNHEALTHY;
                    inst.timer_at_ms = Some(0);
                }
            }
            gateway.sync_healthy(p);
        }
        gateway
    }

    /// Counts a decision for (rule, model).
    pub(super) fn count_decision(&self, rule: usize, model: usize) {
        let Some(cell) = self.decisions.get(rule * self.names.models.len() + model) else {
            return;
        };
        cell.get_or_init(|| {
            self.shared
                .stats
                .decisions
                .get(&[&self.names.rules[rule], &self.names.models[model]])
        })
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn hash(&self) -> &str {
        &self.bundle.hash
    }

    pub fn models(&self) -> &[ModelSpec] {
        &self.bundle.content.models
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<ProviderLive>> {
        self.provider_index.get(name).map(|&i| &self.providers[i])
    }

    pub fn provider_of(&self, model: usize) -> Option<usize> {
        self.model_provider.get(model).copied().flatten()
    }

    pub fn pool(&self, name: &str) -> Option<&Arc<PoolLive>> {
        self.pool_index.get(name).map(|&i| &self.pools[i])
    }

    pub fn model(&self, name: &str) -> Option<usize> {
        self.model_index.get(name).copied()
    }

    pub fn provider_healthy(&self, p: usize) -> bool {
        self.providers[p].healthy.load(Ordering::Acquire)
    }

    /// A model may take traffic: it is not disabled and its provider is healthy.
    pub fn model_available(&self, m: usize) -> bool {
        self.models()[m].status != "disabled"
            && self
                .provider_of(m)
                .is_some_and(|p| self.provider_healthy(p))
    }

    pub fn health_machine(&self, p: usize) -> Option<&Machine> {
        let i = self.health_machine.get(p).copied().flatten()?;
        self.bundle.content.machines.health.get(i)
    }

    /// Offers an event to a provider's health machine and carries out its actions.
    pub fn provider_event(
        &self,
        p: usize,
        kind: EventKind,
        now_ms: u64,
        reason: &str,
    ) -> Vec<Effect> {
        let Some(machine) = self.health_machine(p) else {
            return Vec::new();
        };
        // the flag changes with the state, so no reader sees one without the other
        let actions = self.fire(
            machine,
            &self.providers[p].instance,
            Event::new(kind, now_ms),
            reason,
            |inst, actions| {
                self.store_healthy(p, inst);
                // the primary's failover moves with its health, before anyone can see
                // it unhealthy and still routed to
                for a in actions {
                    match a {
                        Action::MarkUnhealthy if self.primary == Some(p) => {
                            self.failover_event(EventKind::PrimaryDown, now_ms, reason)
                        }
                        Action::MarkHealthy if self.primary == Some(p) => {
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
                Action::Probe if self.passive[p] => tracing::info!(
                    bundle = %self.bundle.hash,
                    provider = %self.providers[p].name,
                    "half-open: letting traffic try the provider; the next reported outcome decides"
                ),
                Action::Probe => effects.push(Effect::Probe(p)),
                other => self.act(&other, machine, reason),
            }
        }
        effects
    }

    /// The provider takes traffic when healthy, or while a passive provider is
    /// half-open (`probing`).
    pub fn sync_healthy(&self, p: usize) {
        let inst = lock(&self.providers[p].instance);
        self.store_healthy(p, &inst);
    }

    fn store_healthy(&self, p: usize, inst: &Instance) {
        let up =
            inst.state == health::HEALTHY || (inst.state == health::PROBING && self.passive[p]);
        self.providers[p].healthy.store(up, Ordering::Release);
    }

    /// A passive provider in `probing`: its traffic is the probe.
    pub fn half_open(&self, p: usize) -> bool {
        self.passive[p] && lock(&self.providers[p].instance).state == health::PROBING
    }

    /// Offers an event to the failover machine and carries out its actions.
    pub fn failover_event(&self, kind: EventKind, now_ms: u64, reason: &str) {
        let (Some(live), Some(machine)) = (&self.failover, &self.bundle.content.machines.failover)
        else {
            return;
        };
        let actions = self.fire(
            machine,
            &live.instance,
            Event::new(kind, now_ms),
            reason,
            |_, actions| self.route_by(actions),
        );
        for a in &actions {
            self.act(a, machine, reason);
        }
    }

    /// Where the failover machine's actions send the primary's traffic.
    fn route_by(&self, actions: &[Action]) {
        let Some(f) = &self.failover else { return };
        for a in actions {
            match a {
                Action::RouteToFallbacks { .. } => f.to_fallbacks.store(true, Ordering::Release),
                Action::RouteToPrimary => f.to_fallbacks.store(false, Ordering::Release),
                _ => {}
            }
        }
    }

    /// Closes a cost window: measures it and offers the metrics to every cost machine.
    pub fn close_window(&self, now_ms: u64) -> Option<Metrics> {
        let machines = &self.bundle.content.machines.cost_windows;
        let window_ms = machines.iter().find_map(|m| match &m.params {
            Params::CostWindow(c) => Some(c.window_ms),
            _ => None,
        })?;
        let metrics = self.shared.window.metrics(now_ms, window_ms);
        for (machine, live) in self.cost_windows() {
            *lock(&live.last) = Some(metrics);
            let reason = match &machine.params {
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
            };
            // the switch changes together with the state (under its lock)
            let actions = self.fire(
                machine,
                &live.instance,
                Event::window(now_ms, metrics),
                &reason,
                |_, actions| {
                    for a in actions {
                        match a {
                            Action::Downgrade { to } => {
                                live.set_switch(Some(Switch::Downgrade { to: to.clone() }))
                            }
                            Action::SwitchProvider => live.set_switch(Some(Switch::SwitchProvider)),
                            Action::FallbackFast { model } => {
                                live.set_switch(Some(Switch::FallbackFast {
                                    model: model.clone(),
                                }))
                            }
                            Action::Restore { .. } => live.set_switch(None),
                            _ => {}
                        }
                    }
                },
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
        for p in 0..self.providers.len() {
            let due = lock(&self.providers[p].instance)
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
        if let Some(f) = &self.failover {
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
                            .provider_index
                            .get(&f.provider)
                            .is_some_and(|&p| self.provider_healthy(p));
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
            // machine's lock (`route_by`, the window switches, the health flag)
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

    /// Each cost-window machine with its live state, in rule order.
    pub fn cost_windows(&self) -> impl Iterator<Item = (&Machine, &Arc<CostLive>)> {
        self.bundle
            .content
            .machines
            .cost_windows
            .iter()
            .zip(&self.cost)
    }

    /// The switches the cost windows have in force, in rule order.
    pub fn active_switches(&self) -> Vec<(String, Switch)> {
        self.cost
            .iter()
            .filter_map(|c| c.switch().map(|s| (c.machine.clone(), s)))
            .collect()
    }

    /// Whether the failover machine routes the primary's traffic to the fallbacks.
    pub fn failed_over(&self) -> bool {
        self.failover
            .as_ref()
            .is_some_and(|f| f.to_fallbacks.load(Ordering::Acquire))
    }

    /// The state of a machine instance, by name.
    pub fn state_of(machine: &Machine, instance: &Mutex<Instance>) -> String {
        machine.state_name(lock(instance).state).to_string()
    }

    pub fn failover_machine(&self) -> Option<&Machine> {
        self.bundle.content.machines.failover.as_ref()
    }

    pub fn primary(&self) -> Option<usize> {
        self.primary
    }
}

pub use failover::DrillMode;
