//! What outlives every bundle: the counters, the cost window's samples, budgets,
//! leases, the limits on what the process keeps, and the names of recent gateways'
//! models (for reports on decisions made before a reload).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::budget::Budgets;
use super::leases::Leases;
use super::spend::SpendLogSlot;
use super::stats::{lock, Stats};
use super::window::Window;

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

/// How many reloads back a lease's model can still be named.
const GENERATIONS_KEPT: usize = 64;

#[derive(Debug)]
pub struct Shared {
    /// the model names of recent gateways, by generation, for leases issued before a
    /// reload (reports name the model by the index it had then)
    generations: Mutex<VecDeque<(u32, Arc<Vec<String>>)>>,
    next_generation: AtomicU32,
    /// this process's mark in decision ids (`d-BOOT-N`), so that an id from before a
    /// restart, or from another replica, is never taken for one of this process's
    pub boot: String,
    pub stats: Stats,
    pub window: Window,
    pub budgets: Budgets,
    pub leases: Leases,
    pub limits: Limits,
    /// the durable record of settled spending, when the server keeps one
    pub spend_log: SpendLogSlot,
}

impl Shared {
    pub fn new(limits: Limits) -> Arc<Shared> {
        Shared::with_boot(limits, boot_mark())
    }

    /// With a given boot mark: for tests and simulations that need the same
    /// decision ids on every run.
    pub fn with_boot(limits: Limits, boot: String) -> Arc<Shared> {
        Arc::new(Shared {
            generations: Mutex::new(VecDeque::new()),
            next_generation: AtomicU32::new(0),
            boot,
            stats: Stats::default(),
            window: Window::new(limits.window_capacity),
            budgets: Budgets::new(limits.session_capacity),
            leases: Leases::new(limits.lease_ttl_ms, limits.lease_capacity),
            limits,
            spend_log: SpendLogSlot::default(),
        })
    }

    /// Numbers a new gateway and remembers its model names.
    pub(super) fn register(&self, models: Vec<String>) -> u32 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let mut kept = lock(&self.generations);
        if kept.len() >= GENERATIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back((generation, Arc::new(models)));
        generation
    }

    /// Forgets all spending (an operator's reset) and tells the spend log; returns
    /// what today's total was.
    pub fn reset_budgets(&self, wall_ms: u64) -> f64 {
        let before = self.budgets.reset();
        if let Some(log) = self.spend_log.get() {
            log.reset(self.budgets.day_of(wall_ms), wall_ms);
        }
        before
    }

    /// The name of model `index` in the gateway of `generation`, while remembered.
    pub fn model_name(&self, generation: u32, index: u32) -> Option<String> {
        let kept = lock(&self.generations);
        let (_, names) = kept.iter().find(|(g, _)| *g == generation)?;
        names.get(index as usize).cloned()
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
