//! The live state of a new gateway: fresh for what is new, taken over from the
//! previous gateway (on a reload) for every provider, pool and machine that is still
//! there by name and whose state still means the same thing.

use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::{Arc, Mutex};

use super::affinity::Affinity;
use super::balancer::Balancer;
use super::gateway::Gateway;
use super::ids::{IxVec, PoolIx, ProviderIx};
use super::limits::Limit;
use super::live::{AdmissionCounters, CostLive, FailoverLive, PoolLive, ProviderLive};
use super::shared::Shared;
use super::stats::lock;
use crate::bundle::spec::PoolSpec;
use crate::bundle::Content;
use crate::machines::{health, Instance, Machine, MAX_COUNTERS};

/// The live parts of a gateway, in the bundle's order.
#[derive(Debug)]
pub struct Live {
    pub providers: IxVec<ProviderIx, Arc<ProviderLive>>,
    pub pools: IxVec<PoolIx, Arc<PoolLive>>,
    /// one per cost-window machine, in the bundle's order
    pub cost: Vec<Arc<CostLive>>,
    pub failover: Option<Arc<FailoverLive>>,
}

impl Live {
    pub fn new(c: &Content, previous: Option<&Gateway>, shared: &Shared) -> Live {
        Live {
            providers: providers(c, previous),
            pools: pools(c, previous, shared),
            cost: cost_windows(c, previous),
            failover: failover(c, previous),
        }
    }
}

/// A provider keeps its health state across reloads (by name).
fn providers(c: &Content, previous: Option<&Gateway>) -> IxVec<ProviderIx, Arc<ProviderLive>> {
    c.providers
        .iter()
        .map(|p| {
            if let Some(old) = previous.and_then(|g| g.provider(&p.name)) {
                return Arc::clone(old);
            }
            let start = c
                .machines
                .health_of(&p.name)
                .map(Machine::start)
                .unwrap_or(Instance {
                    state: health::HEALTHY,
                    counters: [0; MAX_COUNTERS],
                    timer_at_ms: None,
                });
            Arc::new(ProviderLive {
                name: p.name.clone(),
                instance: Mutex::new(start),
                healthy: AtomicBool::new(true),
                last_check: Mutex::new(None),
            })
        })
        .collect()
}

fn same_pool(a: &PoolSpec, b: &PoolSpec) -> bool {
    a.models == b.models && a.weights == b.weights && a.max_concurrent == b.max_concurrent
}

/// An unchanged pool keeps everything (balancer, pins, slots); a changed one starts
/// afresh but keeps counting the slots held under its old limit while the limit is
/// the same.
fn pools(c: &Content, previous: Option<&Gateway>, shared: &Shared) -> IxVec<PoolIx, Arc<PoolLive>> {
    let affinity_ttl = c.session_affinity.as_ref().map(|a| a.ttl_ms);
    c.pools
        .iter()
        .map(|spec| {
            let old = previous.and_then(|g| g.pool(&spec.name));
            if let Some(old) = old.filter(|old| {
                same_pool(&old.spec, spec) && old.affinity.is_some() == affinity_ttl.is_some()
            }) {
                return Arc::clone(old);
            }
            let limit = old
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
                );
            Arc::new(PoolLive {
                spec: spec.clone(),
                limit,
                balancer: Mutex::new(Balancer::new(&spec.weights)),
                affinity: affinity_ttl
                    .map(|ttl| Mutex::new(Affinity::new(ttl, shared.limits.affinity_capacity))),
                peak: AtomicU32::new(0),
                admissions: AdmissionCounters::new(|a| {
                    shared.stats.pool_admissions.get(&[&spec.name, a.as_str()])
                }),
            })
        })
        .collect()
}

/// A cost window keeps its state and switch (by machine name).
fn cost_windows(c: &Content, previous: Option<&Gateway>) -> Vec<Arc<CostLive>> {
    c.machines
        .cost_windows
        .iter()
        .map(|m| {
            previous
                .and_then(|g| g.live.cost.iter().find(|x| x.machine == m.name))
                .cloned()
                .unwrap_or_else(|| Arc::new(CostLive::new(m.name.clone(), m.start())))
        })
        .collect()
}

/// The failover state means something only for the same primary, and only if the
/// new machine can leave it (a live drill whose drill was removed cannot); the
/// balancer only for the same fallbacks.
fn failover(c: &Content, previous: Option<&Gateway>) -> Option<Arc<FailoverLive>> {
    let m = c.machines.failover.as_ref()?;
    let primary = c.failover.as_ref().map(|f| &f.primary);
    let carried = previous
        .filter(|g| g.bundle.content.failover.as_ref().map(|f| &f.primary) == primary)
        .and_then(|g| g.live.failover.as_ref())
        .filter(|f| {
            let state = lock(&f.instance).state;
            m.rows.iter().any(|r| r.from == state)
        });
    let same_fallbacks = previous.is_some_and(|g| {
        g.bundle.content.failover.as_ref().map(|f| &f.fallbacks)
            == c.failover.as_ref().map(|f| &f.fallbacks)
    });
    if let Some(live) = carried.filter(|_| same_fallbacks) {
        return Some(Arc::clone(live));
    }
    let weights: Vec<f64> = c
        .failover
        .iter()
        .flat_map(|f| &f.fallbacks)
        .map(|f| f.weight)
        .collect();
    // the state and its routing are read together, under the state's lock
    let (instance, to_fallbacks) = carried.map_or_else(
        || (m.start(), false),
        |f| {
            let inst = lock(&f.instance);
            (*inst, f.to_fallbacks())
        },
    );
    Some(Arc::new(FailoverLive {
        instance: Mutex::new(instance),
        to_fallbacks: AtomicBool::new(to_fallbacks),
        balancer: Mutex::new(Balancer::new(&weights)),
    }))
}
