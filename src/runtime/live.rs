//! The live state kept per provider, pool, cost window and failover: machine
//! instances and what derives from them (the health flag, the window's switch, where
//! the primary's traffic goes), balancers, affinity and slots. The types only; they
//! are built in `carry` and changed in `events`.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::affinity::Affinity;
use super::balancer::Balancer;
use super::limits::Limit;
use super::stats::lock;
use crate::bundle::spec::PoolSpec;
use crate::machines::{Instance, Metrics, Switch};

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
    /// whether the provider takes traffic; changed with `instance`, under its lock
    pub(super) healthy: AtomicBool,
    pub last_check: Mutex<Option<CheckResult>>,
}

impl ProviderLive {
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }
}

/// What happened when a decision asked a pool for a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// the pool had room
    Taken,
    /// the pool was full (then the request overflowed, or was refused)
    Full,
    /// the pool was full and the request went to a model of the chain instead
    Overflow,
}

impl Admission {
    pub const ALL: [Admission; 3] = [Admission::Taken, Admission::Full, Admission::Overflow];

    /// The `outcome` label of `rulec_pool_admissions_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Admission::Taken => "taken",
            Admission::Full => "full",
            Admission::Overflow => "overflow",
        }
    }
}

/// A pool's admission counters, resolved once so that a decision does no lookup.
#[derive(Debug)]
pub struct AdmissionCounters {
    taken: Arc<AtomicU64>,
    full: Arc<AtomicU64>,
    overflow: Arc<AtomicU64>,
}

impl AdmissionCounters {
    pub fn new(mut counter: impl FnMut(Admission) -> Arc<AtomicU64>) -> AdmissionCounters {
        AdmissionCounters {
            taken: counter(Admission::Taken),
            full: counter(Admission::Full),
            overflow: counter(Admission::Overflow),
        }
    }

    pub fn count(&self, a: Admission) {
        let c = match a {
            Admission::Taken => &self.taken,
            Admission::Full => &self.full,
            Admission::Overflow => &self.overflow,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct PoolLive {
    pub spec: PoolSpec,
    pub limit: Arc<Limit>,
    pub balancer: Mutex<Balancer>,
    pub affinity: Option<Mutex<Affinity>>,
    /// the most slots ever taken at once
    pub peak: AtomicU32,
    pub admissions: AdmissionCounters,
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

    /// Only with the instance's lock held (see `events`), so that no reader sees a
    /// state without its switch.
    pub(super) fn set_switch(&self, switch: Option<Switch>) {
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
    /// set by `route_to_fallbacks`, cleared by `route_to_primary`, under the
    /// instance's lock
    pub(super) to_fallbacks: AtomicBool,
    pub balancer: Mutex<Balancer>,
}

impl FailoverLive {
    /// Whether the primary's traffic goes to the fallbacks.
    pub fn to_fallbacks(&self) -> bool {
        self.to_fallbacks.load(Ordering::Acquire)
    }
}
