//! Spending against the policy's budgets: dollars per day and per session, from
//! reported costs, and money held by reservations (calls in flight, at their worst
//! case; see `reserve`). A spent budget makes the router downgrade; the day's total
//! resets at midnight UTC, or at midnight in the policy's `time_zone` (a [`DayClock`]).
//! Sessions are bounded like affinity pins: past `capacity` the oldest are forgotten
//! (money held for a session is kept apart: it is bounded by the calls in flight).
//!
//! Holding, releasing and settling take the day's lock and then the sessions' lock,
//! and check and change both under them, so that concurrent reservations cannot
//! together hold more than a limit leaves.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::stats::lock;

#[derive(Debug, Default)]
struct Sessions {
    spent: HashMap<String, f64>,
    order: VecDeque<String>,
    /// per session: dollars held, and by how many reservations
    held: HashMap<String, (f64, usize)>,
}

#[derive(Debug, Default)]
struct Daily {
    /// the day number, by `clock`
    day: u64,
    /// dollars settled that day
    spent: f64,
    /// dollars held by live reservations, whatever day they were made
    held: f64,
    holds: usize,
    clock: DayClock,
}

#[derive(Debug)]
pub struct Budgets {
    daily: Mutex<Daily>,
    sessions: Mutex<Sessions>,
    capacity: usize,
}

/// One UTC day; a zone's days are 23 or 25 hours long when its clocks change.
pub const MS_PER_DAY: u64 = 86_400_000;

/// The first day numbers count from.
const EPOCH: Date = Date::constant(1970, 1, 1);

/// How wall-clock time divides into budget days: the UTC day, or the calendar day of a
/// time zone. A day's number is its date counted from 1970-01-01, whatever the zone, so
/// that UTC's are `wall_ms / MS_PER_DAY` as they always were and a saved day number
/// names the same date after a restart.
#[derive(Debug, Clone, Default)]
pub struct DayClock {
    /// `None` for UTC
    zone: Option<TimeZone>,
    /// the zone's day last computed: a zone's hot path compares two numbers, and
    /// looks the zone up only when the time leaves that day
    last: Option<DaySpan>,
}

/// A day of a zone and when it starts and ends, in wall ms: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DaySpan {
    day: u64,
    start: u64,
    end: u64,
}

impl DayClock {
    /// Days that start at midnight UTC.
    pub fn utc() -> DayClock {
        DayClock::default()
    }

    /// Days that start at midnight in the IANA zone `name` (`Europe/Berlin`); `None`
    /// when the zone database does not have it.
    pub fn zone(name: &str) -> Option<DayClock> {
        let zone = jiff::tz::db().get(name).ok()?;
        if zone == TimeZone::UTC {
            return Some(DayClock::utc());
        }
        Some(DayClock {
            zone: Some(zone),
            last: None,
        })
    }

    /// The zone's IANA name, `UTC` for UTC.
    pub fn name(&self) -> &str {
        self.zone
            .as_ref()
            .and_then(TimeZone::iana_name)
            .unwrap_or("UTC")
    }

    /// The number of the day `wall_ms` falls on.
    pub fn day(&mut self, wall_ms: u64) -> u64 {
        let Some(zone) = &self.zone else {
            return wall_ms / MS_PER_DAY;
        };
        if let Some(last) = self.last.filter(|d| (d.start..d.end).contains(&wall_ms)) {
            return last.day;
        }
        match local_day(zone, wall_ms) {
            Some(span) => {
                self.last = Some(span);
                span.day
            }
            // past the calendar's end (the year 9999): no budget lives that long
            None => wall_ms / MS_PER_DAY,
        }
    }
}

/// The local day of `zone` that `wall_ms` falls in. Times before 1970 count as day 0.
fn local_day(zone: &TimeZone, wall_ms: u64) -> Option<DaySpan> {
    let at = Timestamp::from_millisecond(i64::try_from(wall_ms).ok()?).ok()?;
    let date = zone.to_datetime(at).date();
    let day = date
        .duration_since(EPOCH)
        .as_secs()
        .div_euclid(86_400)
        .max(0);
    Some(DaySpan {
        day: day as u64,
        start: day_start(zone, date)?,
        end: day_start(zone, date.tomorrow().ok()?)?,
    })
}

/// When `date` starts in `zone`, in wall ms: its midnight, or the first moment after
/// it where the clocks skip midnight (a gap resolves to its later side).
fn day_start(zone: &TimeZone, date: Date) -> Option<u64> {
    let at = zone.to_timestamp(date.to_datetime(Time::midnight())).ok()?;
    Some(at.as_millisecond().max(0) as u64)
}

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

    /// Sets the time zone whose midnight starts a budget day: UTC for `None`, or for a
    /// zone the database lacks (a loaded bundle's zone was checked to exist). Setting
    /// the zone in use again keeps its cached day. Today's spending stays today's
    /// unless the new zone is already on another date.
    pub fn set_zone(&self, zone: Option<&str>) {
        let clock = zone.and_then(DayClock::zone).unwrap_or_default();
        let mut d = lock(&self.daily);
        if d.clock.name() != clock.name() {
            d.clock = clock;
        }
    }

    /// The zone budget days follow: its IANA name, `UTC` by default.
    pub fn zone(&self) -> String {
        lock(&self.daily).clock.name().to_string()
    }

    /// The number of the budget day `wall_ms` falls on (its date in the budgets' zone,
    /// counted from 1970-01-01): what the ledger and the status page key a day by.
    pub fn day_of(&self, wall_ms: u64) -> u64 {
        lock(&self.daily).clock.day(wall_ms)
    }

    /// Adds a reported cost; `wall_ms` is wall-clock time (for the day).
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

    /// Dollars spent today (in the budgets' zone): settled money only.
    pub fn today(&self, wall_ms: u64) -> f64 {
        spent_on(&mut lock(&self.daily), wall_ms)
    }

    /// Today's settled dollars and the dollars held, read together.
    pub fn today_and_held(&self, wall_ms: u64) -> (f64, f64) {
        let mut d = lock(&self.daily);
        (spent_on(&mut d, wall_ms), d.held)
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

/// The dollars settled on the day `wall_ms` falls on.
fn spent_on(d: &mut Daily, wall_ms: u64) -> f64 {
    if d.day == d.clock.day(wall_ms) {
        d.spent
    } else {
        0.0
    }
}

/// A new day starts with nothing settled (held money stays held).
fn roll(d: &mut Daily, wall_ms: u64) {
    let day = d.clock.day(wall_ms);
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

    /// Wall ms of an RFC 3339 instant, for readable zone tests.
    fn at(instant: &str) -> u64 {
        let t: Timestamp = instant.parse().expect("an instant");
        t.as_millisecond() as u64
    }

    fn berlin() -> Budgets {
        let b = Budgets::new(10);
        b.set_zone(Some("Europe/Berlin"));
        assert_eq!(b.zone(), "Europe/Berlin");
        b
    }

    #[test]
    fn utc_days_are_the_wall_clock_divided_by_a_day() {
        let b = Budgets::new(10);
        assert_eq!(b.zone(), "UTC");
        let t = at("2024-07-15T23:30:00Z");
        assert_eq!(b.day_of(t), t / MS_PER_DAY);
        // a zone the database lacks, or `UTC` named, is the UTC day
        b.set_zone(Some("Mars/Olympus_Mons"));
        assert_eq!((b.zone(), b.day_of(t)), ("UTC".to_string(), t / MS_PER_DAY));
        b.set_zone(Some("utc"));
        assert_eq!((b.zone(), b.day_of(t)), ("UTC".to_string(), t / MS_PER_DAY));
    }

    #[test]
    fn a_zone_day_starts_at_its_midnight_winter_and_summer() {
        let b = berlin();
        // winter (UTC+1): Berlin's 16 January starts at 23:00 UTC on the 15th
        let jan15 = at("2024-01-15T12:00:00Z") / MS_PER_DAY;
        assert_eq!(b.day_of(at("2024-01-15T22:59:59.999Z")), jan15);
        assert_eq!(b.day_of(at("2024-01-15T23:00:00Z")), jan15 + 1);
        // summer (UTC+2): at 22:00 UTC
        let jul15 = at("2024-07-15T12:00:00Z") / MS_PER_DAY;
        assert_eq!(b.day_of(at("2024-07-15T21:59:59.999Z")), jul15);
        assert_eq!(b.day_of(at("2024-07-15T22:00:00Z")), jul15 + 1);
        // the cached day does not hold a time before it
        assert_eq!(b.day_of(at("2024-07-15T00:00:00Z")), jul15);
        assert_eq!(b.day_of(at("2024-07-14T21:59:59.999Z")), jul15 - 1);
    }

    #[test]
    fn days_when_the_clocks_change_are_23_and_25_hours_long() {
        let b = berlin();
        let day = |t: &str| b.day_of(at(t));
        // 31 March 2024: 00:00 CET to 00:00 CEST is 23 hours
        let mar31 = day("2024-03-30T23:00:00Z");
        assert_eq!(day("2024-03-30T22:59:59.999Z"), mar31 - 1);
        assert_eq!(day("2024-03-31T21:59:59.999Z"), mar31);
        assert_eq!(day("2024-03-31T22:00:00Z"), mar31 + 1);
        // 27 October 2024: 00:00 CEST to 00:00 CET is 25 hours
        let oct27 = day("2024-10-26T22:00:00Z");
        assert_eq!(day("2024-10-26T21:59:59.999Z"), oct27 - 1);
        assert_eq!(day("2024-10-27T22:59:59.999Z"), oct27);
        assert_eq!(day("2024-10-27T23:00:00Z"), oct27 + 1);
        // São Paulo skipped midnight on 4 November 2018: the day began at 01:00 (03:00 UTC)
        b.set_zone(Some("America/Sao_Paulo"));
        let nov4 = at("2018-11-04T12:00:00Z") / MS_PER_DAY;
        assert_eq!(b.day_of(at("2018-11-04T02:59:59.999Z")), nov4 - 1);
        assert_eq!(b.day_of(at("2018-11-04T03:00:00Z")), nov4);
    }

    #[test]
    fn spending_resets_at_the_zones_midnight_not_at_utcs() {
        let b = berlin();
        let caps = Caps {
            daily: Some(1.0),
            session: None,
        };
        b.spend(Some("s"), 0.75, at("2024-01-15T22:30:00Z"));
        assert_eq!(b.today(at("2024-01-15T22:59:59.999Z")), 0.75);
        assert!(b.hold(None, 0.5, caps, at("2024-01-15T22:59:00Z")).is_err());
        // 23:00 UTC is still the 15th in UTC, but the 16th in Berlin
        assert_eq!(b.today(at("2024-01-15T23:00:00Z")), 0.0);
        let held = b.hold(None, 0.5, caps, at("2024-01-15T23:00:00Z"));
        assert_eq!(held, Ok(0.5));
        // days saved before a restart are the same dates in the zone
        let (day, spent) = b.day();
        assert_eq!((day, spent), (b.day_of(at("2024-01-16T12:00:00Z")), 0.0));
    }

    /// A machine without `/usr/share/zoneinfo` falls back to the copy built in (the
    /// `tzdb-bundle-always` feature): without it, a policy's zone would be unknown there.
    #[test]
    fn the_zone_database_is_built_in() {
        let db = jiff::tz::TimeZoneDatabase::bundled();
        assert!(db.get("Europe/Berlin").is_ok());
    }

    #[test]
    fn times_outside_the_calendar_do_not_panic() {
        let b = berlin();
        assert_eq!(b.day_of(0), 0);
        assert_eq!(b.day_of(u64::MAX), u64::MAX / MS_PER_DAY);
        b.set_zone(Some("America/New_York"));
        assert_eq!(b.day_of(0), 0);
    }
}
