//! What the server counts: decisions, outcomes, transitions, reloads, notifications,
//! latencies. Counters live outside any one bundle, so they stay monotonic across hot
//! reloads; the hot path increments a pre-resolved atomic and takes no lock.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Upper bounds of the latency buckets, in seconds (Prometheus `le`).
pub const ROUTE_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0,
];
pub const CALL_BUCKETS: [f64; 12] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0,
];

/// A fixed-bucket histogram (cumulative buckets are computed when rendered).
#[derive(Debug)]
pub struct Histogram {
    pub bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// the sum in microseconds, so that it stays an integer
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, seconds: f64) {
        let seconds = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        let i = self
            .bounds
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    /// `(per-bucket counts, total count, sum in seconds)`: one `(upper bound, count)` per
    /// bound, then `(f64::INFINITY, count)` for what lies above the last one.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.counts)
            .map(|(b, c)| (b, c.load(Ordering::Relaxed)))
            .collect();
        let total = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (buckets, total, sum)
    }
}

/// Labelled counters, created on first use.
#[derive(Debug, Default)]
pub struct Family {
    cells: Mutex<BTreeMap<Vec<String>, Arc<AtomicU64>>>,
}

impl Family {
    /// The counter for these label values; resolve once and keep it on hot paths.
    pub fn get(&self, labels: &[&str]) -> Arc<AtomicU64> {
        let key: Vec<String> = labels.iter().map(|s| s.to_string()).collect();
        Arc::clone(lock(&self.cells).entry(key).or_default())
    }

    pub fn inc(&self, labels: &[&str]) {
        self.get(labels).fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Vec<(Vec<String>, u64)> {
        lock(&self.cells)
            .iter()
            .map(|(k, v)| (k.clone(), v.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Labelled sums of floating-point amounts (tokens, dollars).
#[derive(Debug, Default)]
pub struct Sums {
    cells: Mutex<BTreeMap<String, f64>>,
}

impl Sums {
    pub fn add(&self, label: &str, amount: f64) {
        if amount.is_finite() {
            *lock(&self.cells).entry(label.to_string()).or_default() += amount;
        }
    }

    pub fn snapshot(&self) -> Vec<(String, f64)> {
        lock(&self.cells)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

#[derive(Debug)]
pub struct Stats {
    /// labels: rule, model
    pub decisions: Family,
    /// labels: code (no_route, invalid_request, pool_full, …)
    pub rejections: Family,
    /// labels: pool, outcome (taken, overflow, full)
    pub pool_admissions: Family,
    /// labels: provider, outcome (success or the error kind)
    pub outcomes: Family,
    /// labels: machine, from, to
    pub transitions: Family,
    /// labels: result (ok, refused), source (signal, file, admin)
    pub reloads: Family,
    /// labels: event
    pub notifications: Family,
    /// labels: provider, result (ok, failed)
    pub probes: Family,
    /// proxied calls; labels: endpoint (chat_completions, messages), result (`ok`,
    /// `cut`, or the error code the client got)
    pub proxy_calls: Family,
    /// proxied calls answered by a later attempt than the first; labels: endpoint
    pub proxy_failovers: Family,
    pub tokens: Sums,
    pub cost: Sums,
    /// `/v1/route` handling time, measured by the server
    pub route_seconds: Histogram,
    /// call latencies as reported, per model
    pub call_seconds: Mutex<BTreeMap<String, Arc<Histogram>>>,
    pub leases_evicted: AtomicU64,
    pub leases_expired: AtomicU64,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            decisions: Family::default(),
            rejections: Family::default(),
            pool_admissions: Family::default(),
            outcomes: Family::default(),
            transitions: Family::default(),
            reloads: Family::default(),
            notifications: Family::default(),
            probes: Family::default(),
            proxy_calls: Family::default(),
            proxy_failovers: Family::default(),
            tokens: Sums::default(),
            cost: Sums::default(),
            route_seconds: Histogram::new(&ROUTE_BUCKETS),
            call_seconds: Mutex::new(BTreeMap::new()),
            leases_evicted: AtomicU64::new(0),
            leases_expired: AtomicU64::new(0),
        }
    }
}

impl Stats {
    pub fn call_histogram(&self, model: &str) -> Arc<Histogram> {
        Arc::clone(
            lock(&self.call_seconds)
                .entry(model.to_string())
                .or_insert_with(|| Arc::new(Histogram::new(&CALL_BUCKETS))),
        )
    }
}

/// A poisoned lock only means another thread panicked while holding it; the data
/// (counters, small tables) is still usable, and the server must keep answering.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
