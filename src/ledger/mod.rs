//! The spend ledger: every settled cost (and every operator's reset) recorded in an
//! embedded redb database in `--state-dir` (`ledger.redb`), with running totals per
//! day, model, provider and session kept in the same transactions — the authority
//! for the budgets after a restart, a `kill -9` included.
//!
//! The request path only queues ([`SpendLog::settled`]); one writer thread commits
//! what is queued in batches, each at most ~50 ms after its first entry was queued,
//! with an fsync, so a process killed outright loses nothing settled more than
//! 200 ms before (see `docs/serving.md`, "Ledger").
//!
//! - `record`: the entries and the totals read back.
//! - `store`: the database file, its tables, one batch per transaction.
//! - `queue`: the bounded hand-over from the request path to the writer.
//! - `writer`: the writer thread.

mod queue;
mod record;
mod store;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use record::{Amount, DayTotals, Entry, Recorded, Restored, SessionSpend, Source};

use crate::runtime::budget::Budgets;
use crate::runtime::spend::{Settled, SpendLog};
use crate::runtime::stats::lock;
use queue::{Pushed, Queue};
use store::Store;
use writer::Counters;

/// The ledger's file in the state directory.
pub const FILE: &str = "ledger.redb";

/// Changes queued before producers must wait for the writer: a few hundred ms of its
/// work at most, so that an overloaded gateway waits for the ledger rather than
/// letting the window a `kill -9` can lose grow.
const CAPACITY: usize = 16_384;

/// How long a producer waits for room in a full queue before the change is refused
/// (and logged as lost): long enough to ride out a slow fsync, short enough that a
/// dead disk slows requests down rather than stopping them.
const WAIT_FOR_ROOM: Duration = Duration::from_secs(1);

/// How often a flush looks whether the writer is still alive while it waits.
const FLUSH_POLL: Duration = Duration::from_millis(100);

/// Why the ledger cannot be opened or used.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerError {
    /// Another process holds the file.
    Locked { path: PathBuf },
    /// The file is not a ledger redb can read.
    Corrupt { path: PathBuf, detail: String },
    /// The directory or file cannot be created, read or written.
    Io { path: PathBuf, detail: String },
    /// The database failed while in use.
    Storage(String),
    /// The ledger's writer has stopped.
    Closed,
}

impl LedgerError {
    fn opening(path: &Path, e: redb::DatabaseError) -> LedgerError {
        let path = path.to_path_buf();
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => LedgerError::Locked { path },
            redb::DatabaseError::UpgradeRequired(v) => LedgerError::Corrupt {
                path,
                detail: format!("it has file format {v}, which this build cannot read"),
            },
            redb::DatabaseError::RepairAborted => LedgerError::Corrupt {
                path,
                detail: "its repair was stopped".into(),
            },
            // redb's word for a file that is not one of its databases
            redb::DatabaseError::Storage(redb::StorageError::Io(e))
                if e.kind() == std::io::ErrorKind::InvalidData =>
            {
                LedgerError::Corrupt {
                    path,
                    detail: "it is not a redb database, or it is damaged".into(),
                }
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(e)) => LedgerError::Io {
                path,
                detail: e.to_string(),
            },
            other => LedgerError::Corrupt {
                path,
                detail: other.to_string(),
            },
        }
    }

    fn storage(e: impl Into<redb::Error>) -> LedgerError {
        LedgerError::Storage(e.into().to_string())
    }
}

impl fmt::Display for LedgerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerError::Locked { path } => write!(
                f,
                "the ledger `{}` is in use by another process (another `rulec serve` with the same `--state-dir`?)",
                path.display()
            ),
            LedgerError::Corrupt { path, detail } => write!(
                f,
                "the ledger `{}` cannot be read: {detail}; move it away to start a new one (its spending is then forgotten)",
                path.display()
            ),
            LedgerError::Io { path, detail } => {
                write!(f, "cannot open the ledger `{}`: {detail}", path.display())
            }
            LedgerError::Storage(detail) => write!(f, "the ledger failed: {detail}"),
            LedgerError::Closed => f.write_str("the ledger is closed"),
        }
    }
}

impl std::error::Error for LedgerError {}

/// What the ledger has done since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerStats {
    /// changes queued (settled costs and resets)
    pub queued: u64,
    /// changes that found the queue full and waited for room
    pub waited: u64,
    /// changes refused after waiting: lost, each logged as an error
    pub refused: u64,
    /// changes committed, and in how many transactions
    pub committed: u64,
    pub commits: u64,
    pub failed_commits: u64,
}

/// The spend ledger of one state directory.
pub struct Ledger {
    store: Arc<Store>,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Ledger {
    /// Opens (or creates) `dir/ledger.redb` and starts its writer. A file another
    /// process holds is [`LedgerError::Locked`] at once, not a wait.
    pub fn open(dir: &Path) -> Result<Arc<Ledger>, LedgerError> {
        std::fs::create_dir_all(dir).map_err(|e| LedgerError::Io {
            path: dir.to_path_buf(),
            detail: e.to_string(),
        })?;
        let store = Arc::new(Store::open(&dir.join(FILE))?);
        let queue = Arc::new(Queue::new(CAPACITY));
        let counters = Arc::new(Counters::default());
        let writer = {
            let (store, queue, counters) = (
                Arc::clone(&store),
                Arc::clone(&queue),
                Arc::clone(&counters),
            );
            std::thread::Builder::new()
                .name("rulec-ledger".into())
                .spawn(move || writer::run(store, queue, counters))
                .map_err(|e| LedgerError::Io {
                    path: dir.to_path_buf(),
                    detail: format!("cannot start the ledger's writer: {e}"),
                })?
        };
        Ok(Arc::new(Ledger {
            store,
            queue,
            counters,
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// A day's committed spending since its last reset, in total and by model and
    /// provider.
    pub fn totals(&self, day: u64) -> Result<DayTotals, LedgerError> {
        self.store.totals(day)
    }

    /// Up to `limit` sessions with committed spending since the last reset, the most
    /// recent first.
    pub fn sessions(&self, limit: usize) -> Result<Vec<SessionSpend>, LedgerError> {
        self.store.sessions(limit)
    }

    /// Up to `limit` committed entries after sequence number `after` (0: from the
    /// first), in order.
    pub fn entries(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, LedgerError> {
        self.store.entries(after, limit)
    }

    /// Waits until everything queued before the call is committed.
    pub fn flush(&self) -> Result<(), LedgerError> {
        let answer = self.queue.flush().ok_or(LedgerError::Closed)?;
        loop {
            match answer.recv_timeout(FLUSH_POLL) {
                Ok(result) => return result.map_err(LedgerError::Storage),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(LedgerError::Closed)
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    // a writer that died (it should not) never answers
                    if lock(&self.writer).as_ref().is_none_or(|w| w.is_finished()) {
                        return Err(LedgerError::Closed);
                    }
                }
            }
        }
    }

    /// Puts the ledger's spending for `day` and its most recent sessions (at most
    /// `session_capacity`) into `budgets`, overriding what they held. A ledger
    /// without any entry yet (a new file) leaves the budgets as they are.
    pub fn restore_into(
        &self,
        budgets: &Budgets,
        day: u64,
        session_capacity: usize,
    ) -> Result<Restored, LedgerError> {
        if self.store.len()? == 0 {
            return Ok(Restored {
                day,
                spent: None,
                calls: 0,
                sessions: 0,
            });
        }
        let totals = self.store.totals(day)?;
        budgets.restore_day(day, totals.spent);
        let sessions = self.store.sessions(session_capacity)?;
        // oldest first, so that the budgets forget the oldest first when full
        for s in sessions.iter().rev() {
            budgets.restore_session(&s.session, s.spent);
        }
        Ok(Restored {
            day,
            spent: Some(totals.spent),
            calls: totals.calls,
            sessions: sessions.len(),
        })
    }

    pub fn stats(&self) -> LedgerStats {
        let c = &self.counters;
        LedgerStats {
            queued: c.queued.load(Ordering::Relaxed),
            waited: c.waited.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            committed: c.committed.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            failed_commits: c.failed_commits.load(Ordering::Relaxed),
        }
    }

    fn queue(&self, entry: Entry) {
        let c = &self.counters;
        match self.queue.push(entry, WAIT_FOR_ROOM) {
            Pushed::Queued => {}
            Pushed::Waited => {
                let n = c.waited.fetch_add(1, Ordering::Relaxed) + 1;
                // the first, then every 1,024th: a stalled disk must not flood the log
                if n == 1 || n.is_multiple_of(1024) {
                    tracing::warn!(
                        waited = n,
                        "the ledger's queue is full: requests wait for its writer"
                    );
                }
            }
            Pushed::Refused => {
                let n = c.refused.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    lost = n,
                    file = %self.path().display(),
                    "the ledger's writer is stuck: settled spending was not recorded"
                );
                return;
            }
        }
        c.queued.fetch_add(1, Ordering::Relaxed);
    }
}

impl SpendLog for Ledger {
    fn settled(&self, spend: &Settled<'_>) {
        // the budgets count no such amount, and JSON cannot store it
        if !spend.dollars.is_finite() {
            tracing::warn!(dollars = %spend.dollars, model = spend.model, "the ledger skips a cost that is not a number");
            return;
        }
        self.queue(Entry::from_settled(spend));
    }

    fn reset(&self, day: u64, wall_ms: u64) {
        self.queue(Entry::Reset {
            day,
            wall_ms,
            spent_before: 0.0,
        });
    }
}

impl Drop for Ledger {
    /// Commits what is queued and stops the writer, so that the file can be opened
    /// again by the time the drop returns.
    fn drop(&mut self) {
        self.queue.close();
        if let Some(w) = lock(&self.writer).take() {
            let _ = w.join();
        }
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path())
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::budget::MS_PER_DAY;
    use crate::runtime::spend::SpendSource;

    /// A fresh directory under the system's temporary directory.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rulec-ledger-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Settles `dollars` on `day`, each call a millisecond after the one before.
    fn spend(log: &dyn SpendLog, day: u64, dollars: f64, session: Option<&str>, model: &str) {
        static TICK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let provider = if model == "small" { "cheap" } else { "main" };
        log.settled(&Settled {
            day,
            wall_ms: day * MS_PER_DAY + TICK.fetch_add(1, Ordering::Relaxed),
            dollars,
            session,
            model,
            provider,
            decision: None,
            source: SpendSource::Report,
        });
    }

    #[test]
    fn entries_are_committed_in_batches_with_their_totals() {
        let dir = scratch("batches");
        let ledger = Ledger::open(&dir).expect("opens");
        for _ in 0..1_000 {
            spend(&*ledger, 7, 0.25, Some("s-1"), "big");
        }
        spend(&*ledger, 7, 0.5, None, "small");
        spend(&*ledger, 8, 1.0, Some("s-2"), "small");
        ledger.flush().expect("flushes");
        let stats = ledger.stats();
        assert_eq!((stats.queued, stats.committed), (1_002, 1_002));
        assert!(stats.commits < 100, "{stats:?}");

        let t = ledger.totals(7).expect("reads");
        assert_eq!((t.spent, t.calls), (250.5, 1_001));
        assert_eq!(
            t.by_model["big"],
            Amount {
                spent: 250.0,
                calls: 1_000
            }
        );
        assert_eq!(
            t.by_model["small"],
            Amount {
                spent: 0.5,
                calls: 1
            }
        );
        assert_eq!(t.by_provider["cheap"].spent, 0.5);
        assert!(!t.by_model.contains_key("other"));
        assert_eq!(ledger.totals(8).expect("reads").spent, 1.0);
        assert_eq!(
            ledger.totals(9).expect("reads"),
            DayTotals {
                day: 9,
                ..DayTotals::default()
            }
        );

        let sessions = ledger.sessions(10).expect("reads");
        let names: Vec<(&str, f64)> = sessions
            .iter()
            .map(|s| (s.session.as_str(), s.spent))
            .collect();
        assert_eq!(names, [("s-2", 1.0), ("s-1", 250.0)], "most recent first");
        assert_eq!(ledger.sessions(1).expect("reads").len(), 1);

        let entries = ledger.entries(0, 5).expect("reads");
        assert_eq!(
            entries.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let last = ledger.entries(1_001, 10).expect("reads");
        assert_eq!(last.len(), 1);
        assert!(
            matches!(&last[0].entry, Entry::Spend { day: 8, model, session: Some(s), .. } if model == "small" && s == "s-2")
        );
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reset_clears_the_day_and_the_sessions_and_is_kept_as_history() {
        let dir = scratch("reset");
        let ledger = Ledger::open(&dir).expect("opens");
        spend(&*ledger, 7, 0.5, Some("s-1"), "big");
        spend(&*ledger, 6, 2.0, None, "big");
        ledger.reset(7, 7 * MS_PER_DAY + 2_000);
        spend(&*ledger, 7, 0.25, Some("s-2"), "small");
        ledger.flush().expect("flushes");

        let t = ledger.totals(7).expect("reads");
        assert_eq!((t.spent, t.calls), (0.25, 1));
        assert_eq!(t.by_model.keys().collect::<Vec<_>>(), ["small"]);
        assert_eq!(t.by_provider.keys().collect::<Vec<_>>(), ["cheap"]);
        assert_eq!(
            ledger.totals(6).expect("reads").spent,
            2.0,
            "another day stays"
        );
        let sessions = ledger.sessions(10).expect("reads");
        assert_eq!(sessions.len(), 1);
        assert_eq!(
            (sessions[0].session.as_str(), sessions[0].spent),
            ("s-2", 0.25)
        );

        let entries = ledger.entries(0, 10).expect("reads");
        assert_eq!(entries.len(), 4);
        assert!(
            matches!(entries[2].entry, Entry::Reset { day: 7, spent_before, .. } if spent_before == 0.5),
            "{:?}",
            entries[2]
        );
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reopened_ledger_restores_the_budgets() {
        let dir = scratch("reopen");
        let ledger = Ledger::open(&dir).expect("opens");
        let fresh = Budgets::new(10);
        fresh.restore_day(7, 3.0);
        let r = ledger.restore_into(&fresh, 7, 10).expect("restores");
        assert_eq!(r.spent, None, "a new ledger leaves the budgets alone");
        assert_eq!(fresh.day(), (7, 3.0));

        spend(&*ledger, 7, 0.5, Some("old"), "big");
        spend(&*ledger, 7, 0.25, Some("new"), "big");
        spend(&*ledger, 7, 0.125, None, "small");
        // dropping commits what is queued and lets go of the file
        drop(ledger);

        let again = Ledger::open(&dir).expect("opens again");
        assert_eq!(again.totals(7).expect("reads").spent, 0.875);
        let budgets = Budgets::new(1);
        budgets.restore_day(7, 99.0);
        let r = again.restore_into(&budgets, 7, 1).expect("restores");
        assert_eq!((r.spent, r.calls, r.sessions), (Some(0.875), 3, 1));
        assert_eq!(budgets.day(), (7, 0.875), "the ledger overrides");
        assert_eq!(
            (budgets.session("new"), budgets.session("old")),
            (0.25, 0.0)
        );

        // the next UTC day starts from nothing; sessions are not per day
        let tomorrow = Budgets::new(10);
        let r = again.restore_into(&tomorrow, 8, 10).expect("restores");
        assert_eq!((r.spent, r.sessions), (Some(0.0), 2));
        assert_eq!(tomorrow.day(), (8, 0.0));
        assert_eq!(tomorrow.session("old"), 0.5);

        spend(&*again, 7, 1.0, None, "big");
        spend(&*again, 7, f64::NAN, None, "big");
        again.flush().expect("flushes");
        let entries = again.entries(0, 10).expect("reads");
        assert_eq!(
            entries.last().map(|r| r.seq),
            Some(4),
            "sequence numbers go on"
        );
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_held_or_corrupt_file_is_a_clear_error() {
        let dir = scratch("locked");
        let ledger = Ledger::open(&dir).expect("opens");
        let e = Ledger::open(&dir).expect_err("the file is held");
        assert!(matches!(e, LedgerError::Locked { .. }), "{e:?}");
        assert!(e.to_string().contains("in use by another process"), "{e}");
        drop(ledger);

        let bad = scratch("corrupt");
        std::fs::create_dir_all(&bad).expect("mkdir");
        std::fs::write(bad.join(FILE), vec![0x5a; 64 * 1024]).expect("write");
        let e = Ledger::open(&bad).expect_err("not a database");
        assert!(matches!(e, LedgerError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("cannot be read"), "{e}");

        // a real ledger cut short (redb asserts on it)
        let cut = scratch("truncated");
        let ledger = Ledger::open(&cut).expect("opens");
        spend(&*ledger, 7, 0.5, Some("s"), "big");
        drop(ledger);
        let bytes = std::fs::read(cut.join(FILE)).expect("read");
        std::fs::write(cut.join(FILE), &bytes[..bytes.len() / 2]).expect("write");
        let e = Ledger::open(&cut).expect_err("truncated");
        assert!(matches!(e, LedgerError::Corrupt { .. }), "{e:?}");

        let file = scratch("not_a_dir");
        std::fs::write(&file, b"").expect("write");
        let e = Ledger::open(&file).expect_err("a file is no directory");
        assert!(matches!(e, LedgerError::Io { .. }), "{e:?}");
        for d in [dir, bad, cut] {
            let _ = std::fs::remove_dir_all(d);
        }
        let _ = std::fs::remove_file(file);
    }
}
