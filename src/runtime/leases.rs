//! Decisions handed out and not yet reported. A lease holds the pool slot a decision
//! took (so `max_concurrent` counts calls in flight, not decisions made) and what a
//! report needs to know about the decision. Leases end with their report, when they
//! expire (`ttl`, a caller that never reports), or when the table is full (the oldest
//! go first), so memory stays bounded and a lost report cannot hold a slot forever.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::limits::Slot;
use super::stats::lock;

#[derive(Debug)]
pub struct Lease {
    pub model: Arc<str>,
    pub provider: Arc<str>,
    pub rule: Arc<str>,
    pub session: Option<String>,
    /// dropped with the lease, which gives the slot back
    pub slot: Option<Slot>,
    pub expires_ms: u64,
}

#[derive(Debug, Default)]
struct Table {
    live: HashMap<u64, Lease>,
    /// ids in the order they were issued (and expire: the ttl is the same for all)
    order: VecDeque<u64>,
}

#[derive(Debug)]
pub struct Leases {
    table: Mutex<Table>,
    next: AtomicU64,
    pub ttl_ms: u64,
    capacity: usize,
}

impl Leases {
    pub fn new(ttl_ms: u64, capacity: usize) -> Leases {
        Leases {
            table: Mutex::new(Table::default()),
            next: AtomicU64::new(1),
            ttl_ms,
            capacity: capacity.max(1),
        }
    }

    /// Stores a lease and returns its id; returns how many old leases were evicted
    /// to make room.
    pub fn issue(&self, lease: Lease) -> (u64, usize) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut t = lock(&self.table);
        let mut evicted = 0;
        while t.live.len() >= self.capacity {
            let Some(old) = t.order.pop_front() else {
                break;
            };
            if t.live.remove(&old).is_some() {
                evicted += 1;
            }
        }
        t.live.insert(id, lease);
        t.order.push_back(id);
        (id, evicted)
    }

    /// Ends a lease (its slot is returned when the lease drops).
    pub fn end(&self, id: u64) -> Option<Lease> {
        lock(&self.table).live.remove(&id)
    }

    /// Ends every lease past its expiry; returns how many.
    pub fn expire(&self, now_ms: u64) -> usize {
        let mut t = lock(&self.table);
        let mut n = 0;
        while let Some(&id) = t.order.front() {
            match t.live.get(&id) {
                Some(l) if l.expires_ms > now_ms => break,
                Some(_) => {
                    t.live.remove(&id);
                    n += 1;
                }
                None => {}
            }
            t.order.pop_front();
        }
        n
    }

    pub fn len(&self) -> usize {
        lock(&self.table).live.len()
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
            model: "m".into(),
            provider: "p".into(),
            rule: "r".into(),
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
    fn the_table_is_bounded() {
        let leases = Leases::new(1000, 3);
        let evicted: usize = (0..10).map(|_| leases.issue(lease(None, 5000)).1).sum();
        assert_eq!(leases.len(), 3);
        assert_eq!(evicted, 7);
    }
}
