//! Spending against the policy's budgets: dollars per UTC day and per session, from
//! reported costs. A spent budget makes the router downgrade; the day's total resets
//! at midnight UTC. Sessions are bounded like affinity pins: past `capacity` the
//! oldest are forgotten.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::stats::lock;

#[derive(Debug, Default)]
struct Sessions {
    spent: HashMap<String, f64>,
    order: VecDeque<String>,
}

#[derive(Debug)]
pub struct Budgets {
    /// (UTC day number, dollars spent that day)
    daily: Mutex<(u64, f64)>,
    sessions: Mutex<Sessions>,
    capacity: usize,
}

pub const MS_PER_DAY: u64 = 86_400_000;

impl Budgets {
    pub fn new(capacity: usize) -> Budgets {
        Budgets {
            daily: Mutex::new((0, 0.0)),
            sessions: Mutex::new(Sessions::default()),
            capacity: capacity.max(1),
        }
    }

    /// Adds a reported cost; `wall_ms` is wall-clock time (for the UTC day).
    pub fn spend(&self, session: Option<&str>, dollars: f64, wall_ms: u64) {
        if !dollars.is_finite() || dollars <= 0.0 {
            return;
        }
        {
            let mut d = lock(&self.daily);
            let day = wall_ms / MS_PER_DAY;
            if d.0 != day {
                *d = (day, 0.0);
            }
            d.1 += dollars;
        }
        if let Some(s) = session {
            let mut t = lock(&self.sessions);
            if !t.spent.contains_key(s) {
                while t.spent.len() >= self.capacity {
                    match t.order.pop_front() {
                        Some(old) => {
                            t.spent.remove(&old);
                        }
                        None => break,
                    }
                }
                t.order.push_back(s.to_string());
            }
            *t.spent.entry(s.to_string()).or_default() += dollars;
        }
    }

    /// Dollars spent today (UTC).
    pub fn today(&self, wall_ms: u64) -> f64 {
        let d = lock(&self.daily);
        if d.0 == wall_ms / MS_PER_DAY {
            d.1
        } else {
            0.0
        }
    }

    /// The day's total as saved by a previous run (`--state-dir`).
    pub fn restore_day(&self, day: u64, spent: f64) {
        if spent.is_finite() && spent >= 0.0 {
            *lock(&self.daily) = (day, spent);
        }
    }

    /// Forgets all spending (an operator's reset); returns what today's total was.
    pub fn reset(&self) -> f64 {
        let before = std::mem::replace(&mut *lock(&self.daily), (0, 0.0)).1;
        *lock(&self.sessions) = Sessions::default();
        before
    }

    pub fn day(&self) -> (u64, f64) {
        *lock(&self.daily)
    }

    pub fn session(&self, session: &str) -> f64 {
        lock(&self.sessions)
            .spent
            .get(session)
            .copied()
            .unwrap_or(0.0)
    }

    pub fn sessions(&self) -> usize {
        lock(&self.sessions).spent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_resets_and_sessions_are_bounded() {
        let b = Budgets::new(2);
        b.spend(Some("a"), 1.0, 10);
        b.spend(Some("a"), 0.5, 20);
        assert_eq!(b.today(30), 1.5);
        assert_eq!(b.session("a"), 1.5);
        assert_eq!(b.today(MS_PER_DAY + 1), 0.0);
        b.spend(Some("b"), 1.0, MS_PER_DAY + 2);
        b.spend(Some("c"), 1.0, MS_PER_DAY + 3);
        assert_eq!(b.sessions(), 2);
        assert_eq!(b.session("a"), 0.0);
        assert_eq!(b.today(MS_PER_DAY + 4), 2.0);
        b.spend(None, f64::NAN, 0);
        assert_eq!(b.today(MS_PER_DAY + 4), 2.0);
    }
}
