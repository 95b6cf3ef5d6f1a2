//! Decisions handed out and not yet reported. A lease holds the pool slot a decision
//! took (so `max_concurrent` counts calls in flight, not decisions made) and what a
//! report needs to know about the decision. Leases end with their report, when they
//! expire (`ttl`, a caller that never reports), or when the table is full (the oldest
//! go first), so memory stays bounded and a lost report cannot hold a slot forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::limits::Slot;
use super::stats::lock;

#[derive(Debug)]
pub struct Lease {
    /// the model's index in the gateway of `generation`
    pub model: u32,
    pub generation: u32,
    /// for the session's budget
    pub session: Option<String>,
    /// dropped with the lease, which gives the slot back
    pub slot: Option<Slot>,
    pub expires_ms: u64,
}

/// One place in the ring: the lease issued with this id, if still live. A cache line
/// each, so that two workers issuing neighbouring ids do not share one.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Place(Mutex<Option<(u64, Lease)>>);

/// A ring of `capacity` slots, one lock each: decision ids are sequential, so id `n`
/// lives in slot `n % capacity`, and issuing a lease evicts exactly the oldest one
/// (the lease issued `capacity` decisions ago, if still unreported). No hashing, no
/// shared lock on the hot path.
#[derive(Debug)]
pub struct Leases {
    slots: Box<[Place]>,
    next: AtomicU64,
    /// the oldest id `expire` has not looked at yet
    swept: Mutex<u64>,
    live: AtomicUsize,
    /// leases holding a pool slot: never evicted by the ring (that would give a slot
    /// back while its call runs); bounded by the pools' `max_concurrent`
    held: Mutex<HashMap<u64, Lease>>,
    pub ttl_ms: u64,
}

impl Leases {
    pub fn new(ttl_ms: u64, capacity: usize) -> Leases {
        Leases {
            slots: (0..capacity.max(1)).map(|_| Place::default()).collect(),
            next: AtomicU64::new(1),
            swept: Mutex::new(1),
            live: AtomicUsize::new(0),
            held: Mutex::new(HashMap::new()),
            ttl_ms,
        }
    }

    fn slot(&self, id: u64) -> &Mutex<Option<(u64, Lease)>> {
        &self.slots[(id % self.slots.len() as u64) as usize].0
    }

    /// Stores a lease and returns its id, and how many unreported leases were evicted
    /// to make room (0 or 1).
    pub fn issue(&self, lease: Lease) -> (u64, usize) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if lease.slot.is_some() {
            lock(&self.held).insert(id, lease);
            return (id, 0);
        }
        let old = lock(self.slot(id)).replace((id, lease));
        let evicted = usize::from(old.is_some());
        if evicted == 0 {
            self.live.fetch_add(1, Ordering::Relaxed);
        }
        // the evicted lease (and its slot) is dropped here, outside the lock
        drop(old);
        (id, evicted)
    }

    /// Ends a lease (its slot is returned when the lease drops).
    pub fn end(&self, id: u64) -> Option<Lease> {
        if let Some(lease) = lock(&self.held).remove(&id) {
            return Some(lease);
        }
        let mut slot = lock(self.slot(id));
        if slot.as_ref().is_some_and(|(i, _)| *i == id) {
            self.live.fetch_sub(1, Ordering::Relaxed);
            slot.take().map(|(_, l)| l)
        } else {
            None
        }
    }

    /// Ends every lease past its expiry; returns how many. Leases expire in id order
    /// (the ttl is the same for all), so the sweep stops at the first live one.
    pub fn expire(&self, now_ms: u64) -> usize {
        let expired: Vec<Lease> = {
            let mut held = lock(&self.held);
            let ids: Vec<u64> = held
                .iter()
                .filter(|(_, l)| l.expires_ms <= now_ms)
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| held.remove(id)).collect()
        };
        // the slots go back here, outside the lock
        let mut n = expired.len();
        drop(expired);
        let mut swept = lock(&self.swept);
        let end = self.next.load(Ordering::Relaxed);
        // slots older than one lap were overwritten already
        *swept = (*swept).max(end.saturating_sub(self.slots.len() as u64));
        while *swept < end {
            let mut slot = lock(self.slot(*swept));
            match slot.as_ref() {
                Some((id, l)) if *id == *swept => {
                    if l.expires_ms > now_ms {
                        break;
                    }
                    slot.take();
                    self.live.fetch_sub(1, Ordering::Relaxed);
                    n += 1;
                }
                _ => {}
            }
            drop(slot);
            *swept += 1;
        }
        n
    }

    pub fn len(&self) -> usize {
        self.live.load(Ordering::Relaxed) + lock(&self.held).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::limits::Limit;

    fn lease(slot: Option<Slot>, expires_ms: u64) -> Lease {
        Lease {
            model: 0,
            generation: 0,
            session: None,
            slot,
            expires_ms,
        }
    }

    #[test]
    fn ending_or_expiring_a_lease_returns_its_slot() {
        let limit = Limit::new(2);
        let leases = Leases::new(1000, 10);
        let (a, _) = leases.issue(lease(limit.try_take(), 1000));
        let (_b, _) = leases.issue(lease(limit.try_take(), 2000));
        assert!(limit.try_take().is_none());
        assert!(leases.end(a).is_some());
        assert_eq!(limit.in_flight(), 1);
        assert_eq!(leases.expire(2000), 1);
        assert_eq!(limit.in_flight(), 0);
        assert!(leases.end(a).is_none());
    }

    #[test]
    fn a_lease_holding_a_slot_is_never_evicted_by_the_ring() {
        let limit = Limit::new(1);
        let leases = Leases::new(1000, 2);
        let (held, _) = leases.issue(lease(limit.try_take(), 5000));
        for _ in 0..10 {
            leases.issue(lease(None, 5000));
        }
        assert_eq!(limit.in_flight(), 1);
        assert!(leases.end(held).is_some());
        assert_eq!(limit.in_flight(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let leases = Leases::new(1000, 3);
        let evicted: usize = (0..10).map(|_| leases.issue(lease(None, 5000)).1).sum();
        assert_eq!(leases.len(), 3);
        assert_eq!(evicted, 7);
    }
}
