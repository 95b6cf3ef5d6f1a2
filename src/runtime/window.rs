//! The cost window: the outcomes reported over the last `window`, and the metrics the
//! cost-window machines test (cost per task, error rate, latency percentiles). Bounded:
//! past `capacity` samples the oldest are dropped, so sustained load keeps memory flat.

use std::collections::VecDeque;
use std::sync::Mutex;

use super::stats::lock;
use crate::machines::Metrics;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub at_ms: u64,
    pub cost: Option<f64>,
    pub latency_ms: Option<f64>,
    /// an error that counts against the provider
    pub error: bool,
}

#[derive(Debug)]
pub struct Window {
    samples: Mutex<VecDeque<Sample>>,
    capacity: usize,
}

impl Window {
    pub fn new(capacity: usize) -> Window {
        Window {
            samples: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&self, sample: Sample) {
        let mut s = lock(&self.samples);
        if s.len() >= self.capacity {
            s.pop_front();
        }
        s.push_back(sample);
    }

    pub fn len(&self) -> usize {
        lock(&self.samples).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The metrics of the samples within `window_ms` before `now_ms`; older samples
    /// are dropped. A metric without samples is `None`, which no machine row tests.
    pub fn metrics(&self, now_ms: u64, window_ms: u64) -> Metrics {
        let from = now_ms.saturating_sub(window_ms);
        let mut s = lock(&self.samples);
        while s.front().is_some_and(|x| x.at_ms < from) {
            s.pop_front();
        }
        let costs: Vec<f64> = s.iter().filter_map(|x| x.cost).collect();
        let mut latencies: Vec<f64> = s.iter().filter_map(|x| x.latency_ms).collect();
        let tasks = s.len();
        let errors = s.iter().filter(|x| x.error).count();
        drop(s);
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            if latencies.is_empty() {
                return None;
            }
            // nearest rank
            let rank = ((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
            Some(latencies[rank - 1])
        };
        Metrics {
            cost_per_task: (!costs.is_empty())
                .then(|| costs.iter().sum::<f64>() / costs.len() as f64),
            error_rate: (tasks > 0).then(|| errors as f64 / tasks as f64),
            latency_p50: pct(0.50),
            latency_p95: pct(0.95),
            latency_p99: pct(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_ms: u64, cost: f64, latency_ms: f64, error: bool) -> Sample {
        Sample {
            at_ms,
            cost: Some(cost),
            latency_ms: Some(latency_ms),
            error,
        }
    }

    #[test]
    fn metrics_cover_only_the_window() {
        let w = Window::new(100);
        w.push(sample(0, 10.0, 1.0, true));
        for i in 0..100 {
            w.push(sample(1000 + i, 0.5, (i + 1) as f64, i % 10 == 0));
        }
        let m = w.metrics(1100, 500);
        assert_eq!(m.cost_per_task, Some(0.5));
        assert_eq!(m.error_rate, Some(0.1));
        assert_eq!(m.latency_p50, Some(50.0));
        assert_eq!(m.latency_p99, Some(99.0));
        assert_eq!(w.metrics(10_000, 500), Metrics::default());
    }

    #[test]
    fn capacity_bounds_memory() {
        let w = Window::new(10);
        for i in 0..1000 {
            w.push(sample(i, 1.0, 1.0, false));
        }
        assert_eq!(w.len(), 10);
    }
}
