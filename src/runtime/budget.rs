//! Spending against the policy's budgets: dollars per UTC day and per session, from
//! reported costs, and money held by reservations (calls in flight, at their worst
//! case; see `reserve`). A spent budget makes the router downgrade; the day's total
//! resets at midnight UTC. Sessions are bounded like affinity pins: past `capacity`
//! the oldest are forgotten (money held for a session is kept apart: it is bounded by
//! the calls in flight).
//!
//! Holding, releasing and settling take the day's lock and then the sessions' lock,
//! and check and change both under them, so that concurrent reservations cannot
//! together hold more than a limit leaves.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::stats::lock;

#[derive(Debug, Default)]
struct Sessions {
    spent: HashMap<String, f64>,
    order: VecDeque<String>,
    /// per session: dollars held, and by how many reservations
    held: HashMap<String, (f64, usize)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Daily {
    /// UTC day number
    day: u64,
    /// dollars settled that day
    spent: f64,
    /// dollars held by live reservations, whatever day they were made
    held: f64,
    holds: usize,
}

#[derive(Debug)]
pub struct Budgets {
    daily: Mutex<Daily>,
    sessions: Mutex<Sessions>,
    capacity: usize,
}

pub const MS_PER_DAY: u64 = 86_400_000;

/// The limits a reservation must fit: the policy's `max_daily_budget` and
/// `max_cost_per_session`, in dollars.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Caps {
    pub daily: Option<f64>,
    pub session: Option<f64>,
}

/// Which limit a reservation did not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// `max_daily_budget`
    Daily,
    /// `max_cost_per_session`
    Session,
}

impl Limit {
    pub fn field(self) -> &'static str {
        match self {
            Limit::Daily => "max_daily_budget",
            Limit::Session => "max_cost_per_session",
        }
    }
}

/// Why a reservation was refused: the limit, and its numbers when refused.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Refusal {
    pub limit: Limit,
    /// the limit in dollars
    pub max: f64,
    /// dollars settled against it
    pub spent: f64,
    /// dollars held by calls in flight
    pub held: f64,
    /// the worst case the call needed
    pub needed: f64,
}

impl Refusal {
    /// Dollars the limit still leaves.
    pub fn left(&self) -> f64 {
        (self.max - self.spent - self.held).max(0.0)
    }
}

impl Budgets {
    pub fn new(capacity: usize) -> Budgets {
        Budgets {
            daily: Mutex::new(Daily::default()),
            sessions: Mutex::new(Sessions::default()),
            capacity: capacity.max(1),
        }
    }

    /// Adds a reported cost; `wall_ms` is wall-clock time (for the UTC day).
    pub fn spend(&self, session: Option<&str>, dollars: f64, wall_ms: u64) {
        if !dollars.is_finite() || dollars <= 0.0 {
            return;
        }
        let mut d = lock(&self.daily);
        let mut t = lock(&self.sessions);
        self.add(&mut d, &mut t, session, dollars, wall_ms);
    }

    fn add(
        &self,
        d: &mut MutexGuard<'_, Daily>,
        t: &mut MutexGuard<'_, Sessions>,
        session: Option<&str>,
        dollars: f64,
        wall_ms: u64,
    ) {
        if !dollars.is_finite() || dollars <= 0.0 {
            return;
        }
        roll(d, wall_ms);
        d.spent += dollars;
        if let Some(s) = session {
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

    /// Holds `dollars` for a call in flight if the day's and the session's settled
    /// plus held money leave room for it under `caps`; else says which limit refused.
    /// Returns the dollars held (a cost that is not a number fits no limit, and
    /// without limits is held as nothing).
    pub fn hold(
        &self,
        session: Option<&str>,
        dollars: f64,
        caps: Caps,
        wall_ms: u64,
    ) -> Result<f64, Refusal> {
        let dollars = if dollars.is_finite() {
            dollars.max(0.0)
        } else {
            f64::INFINITY
        };
        let mut d = lock(&self.daily);
        let mut t = lock(&self.sessions);
        roll(&mut d, wall_ms);
        if let Some(max) = caps.daily {
            if d.spent + d.held + dollars > max {
                return Err(Refusal {
                    limit: Limit::Daily,
                    max,
                    spent: d.spent,
                    held: d.held,
                    needed: dollars,
                });
            }
        }
        if let (Some(max), Some(s)) = (caps.session, session) {
            let spent = t.spent.get(s).copied().unwrap_or(0.0);
            let held = t.held.get(s).map_or(0.0, |h| h.0);
            if spent + held + dollars > max {
                return Err(Refusal {
                    limit: Limit::Session,
                    max,
                    spent,
                    held,
                    needed: dollars,
                });
            }
        }
        let dollars = if dollars.is_finite() { dollars } else { 0.0 };
        d.held += dollars;
        d.holds += 1;
        if let Some(s) = session {
            let h = t.held.entry(s.to_string()).or_default();
            h.0 += dollars;
            h.1 += 1;
        }
        Ok(dollars)
    }

    /// Gives back a hold of `held` dollars and spends `dollars` in its place, in one
    /// step (no reservation can take the room in between). `dollars` may exceed what
    /// was held: money a provider billed is spent.
    pub fn settle(&self, session: Option<&str>, held: f64, dollars: f64, wall_ms: u64) {
        let mut d = lock(&self.daily);
        let mut t = lock(&self.sessions);
        unhold(&mut d, &mut t, session, held);
        self.add(&mut d, &mut t, session, dollars, wall_ms);
    }

    /// Gives back a hold of `held` dollars, spending nothing.
    pub fn release(&self, session: Option<&str>, held: f64) {
        let mut d = lock(&self.daily);
        let mut t = lock(&self.sessions);
        unhold(&mut d, &mut t, session, held);
    }

    /// Dollars spent today (UTC): settled money only.
    pub fn today(&self, wall_ms: u64) -> f64 {
        let d = lock(&self.daily);
        if d.day == wall_ms / MS_PER_DAY {
            d.spent
        } else {
            0.0
        }
    }

    /// Today's settled dollars and the dollars held, read together.
    pub fn today_and_held(&self, wall_ms: u64) -> (f64, f64) {
        let d = lock(&self.daily);
        let spent = if d.day == wall_ms / MS_PER_DAY {
            d.spent
        } else {
            0.0
        };
        (spent, d.held)
    }

    /// Dollars held by reservations in flight, and how many there are.
    pub fn held(&self) -> (f64, usize) {
        let d = lock(&self.daily);
        (d.held, d.holds)
    }

    /// Dollars held for a session's calls in flight.
    pub fn session_held(&self, session: &str) -> f64 {
        lock(&self.sessions).held.get(session).map_or(0.0, |h| h.0)
    }

    /// The day's total as saved by a previous run (`--state-dir`).
    pub fn restore_day(&self, day: u64, spent: f64) {
        if spent.is_finite() && spent >= 0.0 {
            let mut d = lock(&self.daily);
            d.day = day;
            d.spent = spent;
        }
    }

    /// A session's spending as saved by a previous run (the ledger in `--state-dir`).
    pub fn restore_session(&self, session: &str, spent: f64) {
        if spent.is_finite() && spent > 0.0 {
            let mut t = lock(&self.sessions);
            if !t.spent.contains_key(session) {
                if t.spent.len() >= self.capacity {
                    return;
                }
                t.order.push_back(session.to_string());
            }
            t.spent.insert(session.to_string(), spent);
        }
    }

    /// Forgets all spending (an operator's reset); returns what today's total was.
    /// Money held by calls in flight stays held until they settle.
    pub fn reset(&self) -> f64 {
        let mut d = lock(&self.daily);
        let mut t = lock(&self.sessions);
        let before = std::mem::take(&mut d.spent);
        d.day = 0;
        t.spent.clear();
        t.order.clear();
        before
    }

    pub fn day(&self) -> (u64, f64) {
        let d = lock(&self.daily);
        (d.day, d.spent)
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

/// A new UTC day starts with nothing settled (held money stays held).
fn roll(d: &mut Daily, wall_ms: u64) {
    let day = wall_ms / MS_PER_DAY;
    if d.day != day {
        d.day = day;
        d.spent = 0.0;
    }
}

fn unhold(d: &mut Daily, t: &mut Sessions, session: Option<&str>, dollars: f64) {
    d.holds = d.holds.saturating_sub(1);
    // the sum of holds is exact when they are all gone: no drift left behind
    d.held = if d.holds == 0 {
        0.0
    } else {
        (d.held - dollars).max(0.0)
    };
    if let Some(s) = session {
        if let Some(h) = t.held.get_mut(s) {
            h.1 = h.1.saturating_sub(1);
            h.0 = (h.0 - dollars).max(0.0);
            if h.1 == 0 {
                t.held.remove(s);
            }
        }
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

    #[test]
    fn holds_count_against_both_limits_and_settle_in_one_step() {
        let b = Budgets::new(10);
        let caps = Caps {
            daily: Some(1.0),
            session: Some(0.5),
        };
        b.hold(Some("s"), 0.25, caps, 0).expect("fits");
        b.hold(Some("s"), 0.25, caps, 0)
            .expect("fits the session exactly");
        let e = b.hold(Some("s"), 0.125, caps, 0).expect_err("session full");
        assert_eq!((e.limit, e.held, e.left()), (Limit::Session, 0.5, 0.0));
        b.hold(None, 0.5, caps, 0).expect("fits the day exactly");
        let e = b.hold(None, 0.125, caps, 0).expect_err("day full");
        assert_eq!((e.limit, e.spent, e.held), (Limit::Daily, 0.0, 1.0));

        b.settle(Some("s"), 0.25, 0.125, 5);
        assert_eq!(
            (b.today(5), b.session("s"), b.session_held("s")),
            (0.125, 0.125, 0.25)
        );
        b.release(Some("s"), 0.25);
        b.release(None, 0.5);
        assert_eq!(b.held(), (0.0, 0));
        assert_eq!(b.session_held("s"), 0.0);
        // a hold made yesterday is still held today; yesterday's spending is not
        b.hold(None, 0.5, caps, 10).expect("fits");
        let e = b
            .hold(None, 0.75, caps, MS_PER_DAY)
            .expect_err("held counts");
        assert_eq!((e.spent, e.held), (0.0, 0.5));
        assert!(b.hold(None, f64::NAN, caps, 0).is_err());
    }
}
