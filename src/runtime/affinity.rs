//! Session affinity: a session keeps the member it was given for `ttl`, unless that
//! member turns unhealthy. Memory is bounded: past `capacity` sessions the ones that
//! expire first are dropped, so a flood of one-off session ids cannot grow the table.

use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone)]
pub struct Affinity {
    ttl_ms: u64,
    capacity: usize,
    /// session → (member, expiry)
    pins: HashMap<String, (usize, u64)>,
    /// (expiry, session): the order in which pins lapse
    by_expiry: BTreeSet<(u64, String)>,
}

impl Affinity {
    pub fn new(ttl_ms: u64, capacity: usize) -> Affinity {
        Affinity {
            ttl_ms,
            capacity: capacity.max(1),
            pins: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// The member pinned for `session` at `now_ms`, if the pin is live and the member
    /// still `healthy`.
    pub fn get(
        &mut self,
        session: &str,
        now_ms: u64,
        healthy: impl Fn(usize) -> bool,
    ) -> Option<usize> {
        self.expire(now_ms);
        let (member, _) = *self.pins.get(session)?;
        if healthy(member) {
            Some(member)
        } else {
            self.remove(session);
            None
        }
    }

    /// Pins `session` to `member` until `now_ms + ttl` (a re-pin restarts the ttl).
    pub fn pin(&mut self, session: &str, member: usize, now_ms: u64) {
        self.expire(now_ms);
        self.remove(session);
        while self.pins.len() >= self.capacity {
            let Some(first) = self.by_expiry.pop_first() else {
                break;
            };
            self.pins.remove(&first.1);
        }
        let until = now_ms.saturating_add(self.ttl_ms);
        self.pins.insert(session.to_string(), (member, until));
        self.by_expiry.insert((until, session.to_string()));
    }

    fn remove(&mut self, session: &str) {
        if let Some((_, until)) = self.pins.remove(session) {
            self.by_expiry.remove(&(until, session.to_string()));
        }
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some((until, _)) = self.by_expiry.first() {
            if *until > now_ms {
                break;
            }
            if let Some((_, session)) = self.by_expiry.pop_first() {
                self.pins.remove(&session);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.pins.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pins.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_holds_for_the_ttl_and_then_lapses() {
        let mut a = Affinity::new(1000, 10);
        a.pin("s", 2, 0);
        assert_eq!(a.get("s", 999, |_| true), Some(2));
        assert_eq!(a.get("s", 1000, |_| true), None);
        assert!(a.is_empty());
    }

    #[test]
    fn an_unhealthy_member_loses_its_sessions() {
        let mut a = Affinity::new(1000, 10);
        a.pin("s", 1, 0);
        assert_eq!(a.get("s", 10, |m| m != 1), None);
        a.pin("s", 0, 10);
        assert_eq!(a.get("s", 20, |m| m != 1), Some(0));
    }

    #[test]
    fn memory_stays_bounded() {
        let mut a = Affinity::new(60_000, 100);
        for i in 0..10_000u64 {
            a.pin(&format!("s{i}"), 0, i);
        }
        assert_eq!(a.len(), 100);
        // the newest survive
        assert_eq!(a.get("s9999", 10_000, |_| true), Some(0));
        assert_eq!(a.get("s0", 10_000, |_| true), None);
    }
}
