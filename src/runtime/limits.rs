//! `max_concurrent` per pool: a slot is taken before a call and given back when its
//! guard drops, whatever path the call takes. Taking never waits: a full pool answers
//! at once, so the server can overflow to the fallback chain or answer 503.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

#[derive(Debug)]
pub struct Limit {
    max: u32,
    in_flight: AtomicU32,
}

/// A taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot {
    limit: Arc<Limit>,
}

impl Limit {
    pub fn new(max: u32) -> Arc<Limit> {
        Arc::new(Limit {
            max,
            in_flight: AtomicU32::new(0),
        })
    }

    /// A slot, or `None` when `max` calls are already in flight.
    pub fn try_take(self: &Arc<Limit>) -> Option<Slot> {
        let mut seen = self.in_flight.load(Ordering::Relaxed);
        loop {
            if seen >= self.max {
                return None;
            }
            match self.in_flight.compare_exchange_weak(
                seen,
                seen + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    return Some(Slot {
                        limit: Arc::clone(self),
                    })
                }
                Err(now) => seen = now,
            }
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub fn max(&self) -> u32 {
        self.max
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limit.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_more_than_max_in_flight_under_contention() {
        let limit = Limit::new(5);
        let peak = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let limit = Arc::clone(&limit);
                let peak = Arc::clone(&peak);
                std::thread::spawn(move || {
                    let mut taken = 0;
                    for _ in 0..20_000 {
                        if let Some(slot) = limit.try_take() {
                            peak.fetch_max(limit.in_flight(), Ordering::AcqRel);
                            taken += 1;
                            drop(slot);
                        }
                    }
                    taken
                })
            })
            .collect();
        let taken: u32 = threads.into_iter().map(|t| t.join().unwrap_or(0)).sum();
        assert!(taken > 0);
        assert!(peak.load(Ordering::Acquire) <= 5);
        assert_eq!(limit.in_flight(), 0, "every slot came back");
    }

    #[test]
    fn a_full_pool_refuses_at_once() {
        let limit = Limit::new(1);
        let first = limit.try_take();
        assert!(first.is_some());
        assert!(limit.try_take().is_none());
        drop(first);
        assert!(limit.try_take().is_some());
    }
}
