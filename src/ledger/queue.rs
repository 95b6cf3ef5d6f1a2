//! The hand-over between the request path and the ledger's writer thread: a bounded
//! queue of changes (settled costs, resets) plus the flush and close requests, and
//! the timing of a batch — the writer takes everything queued at most [`LINGER`]
//! after the first change was queued, or at once when a flush or close is waiting or
//! [`EARLY`] changes are.
//!
//! A condition variable rather than a channel: a producer that finds the queue full
//! must wait for room with a deadline (std's bounded channel cannot), and the writer
//! takes the whole queue in one swap instead of one message at a time.

use std::collections::VecDeque;
use std::sync::{mpsc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::record::Entry;
use crate::runtime::stats::lock;

/// How long after the first queued change its batch is committed, at the latest
/// (plus the commit's own time).
pub const LINGER: Duration = Duration::from_millis(50);

/// A batch this large is committed without waiting for [`LINGER`].
pub const EARLY: usize = 4096;

/// What the writer is told to do.
#[derive(Debug)]
pub enum Message {
    /// A change to record (bounded by the queue's capacity).
    Change(Entry),
    /// Commit everything queued before this, then answer.
    Flush(mpsc::Sender<Result<(), String>>),
}

/// What a producer's push came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// queued at once
    Queued,
    /// queued after waiting for room
    Waited,
    /// not queued: the queue stayed full for the whole wait, or the ledger is closed
    Refused,
}

/// One batch for the writer.
#[derive(Debug, Default)]
pub struct Taken {
    pub messages: Vec<Message>,
    /// the ledger is closing: commit this batch and stop
    pub closed: bool,
}

#[derive(Debug, Default)]
struct State {
    messages: VecDeque<Message>,
    /// changes queued, against the capacity (flushes do not count)
    changes: usize,
    /// when the oldest queued change arrived: its batch's deadline runs from here
    first_at: Option<Instant>,
    /// a flush is waiting: commit without lingering
    urgent: bool,
    closed: bool,
}

#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    /// the writer waits here for work
    work: Condvar,
    /// producers wait here for room
    room: Condvar,
    capacity: usize,
}

impl Queue {
    pub fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Queues a change; when the queue is full, waits up to `wait` for room.
    pub fn push(&self, entry: Entry, wait: Duration) -> Pushed {
        let mut s = lock(&self.state);
        let mut outcome = Pushed::Queued;
        if s.changes >= self.capacity && !s.closed {
            outcome = Pushed::Waited;
            let cap = self.capacity;
            s = self
                .room
                .wait_timeout_while(s, wait, |s| s.changes >= cap && !s.closed)
                .map_or_else(|e| e.into_inner().0, |(s, _)| s);
        }
        if s.closed || s.changes >= self.capacity {
            return Pushed::Refused;
        }
        s.first_at.get_or_insert_with(Instant::now);
        s.messages.push_back(Message::Change(entry));
        s.changes += 1;
        // the writer only needs waking when it idles (the first change) or may stop
        // lingering (a full batch); a wake-up per change would cost a syscall each
        if s.changes == 1 || s.changes == EARLY {
            self.work.notify_one();
        }
        outcome
    }

    /// Asks the writer to commit everything queued so far; the answer comes on the
    /// returned receiver. `None` when the ledger is closed.
    pub fn flush(&self) -> Option<mpsc::Receiver<Result<(), String>>> {
        let mut s = lock(&self.state);
        if s.closed {
            return None;
        }
        let (tx, rx) = mpsc::channel();
        s.messages.push_back(Message::Flush(tx));
        s.urgent = true;
        self.work.notify_one();
        Some(rx)
    }

    /// Tells the writer to commit what is queued and stop; later pushes are refused.
    pub fn close(&self) {
        let mut s = lock(&self.state);
        s.closed = true;
        self.work.notify_one();
        self.room.notify_all();
    }

    /// The next batch. Waits for a first message — for ever, or up to `idle` — then
    /// until the batch is due, and takes everything queued.
    pub fn take(&self, idle: Option<Duration>) -> Taken {
        let mut s = lock(&self.state);
        s = match idle {
            None => self
                .work
                .wait_while(s, |s| s.messages.is_empty() && !s.closed)
                .unwrap_or_else(|e| e.into_inner()),
            Some(idle) => self
                .work
                .wait_timeout_while(s, idle, |s| s.messages.is_empty() && !s.closed)
                .map_or_else(|e| e.into_inner().0, |(s, _)| s),
        };
        if let Some(first) = s.first_at {
            let due = first + LINGER;
            let left = due.saturating_duration_since(Instant::now());
            s = self
                .work
                .wait_timeout_while(s, left, |s| {
                    !s.urgent && !s.closed && s.changes < EARLY && Instant::now() < due
                })
                .map_or_else(|e| e.into_inner().0, |(s, _)| s);
        }
        self.drain(s)
    }

    fn drain(&self, mut s: MutexGuard<'_, State>) -> Taken {
        let messages = Vec::from(std::mem::take(&mut s.messages));
        s.changes = 0;
        s.first_at = None;
        s.urgent = false;
        let closed = s.closed;
        drop(s);
        self.room.notify_all();
        Taken { messages, closed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::record::Entry;

    fn reset(day: u64) -> Entry {
        Entry::Reset {
            day,
            wall_ms: 0,
            spent_before: 0.0,
        }
    }

    #[test]
    fn a_full_queue_refuses_after_waiting_and_takes_again_once_drained() {
        let q = Queue::new(2);
        assert_eq!(q.push(reset(1), Duration::ZERO), Pushed::Queued);
        assert_eq!(q.push(reset(2), Duration::ZERO), Pushed::Queued);
        assert_eq!(q.push(reset(3), Duration::from_millis(1)), Pushed::Refused);
        let _flushed = q.flush().expect("open");
        // a flush is urgent: taken without lingering, the flush included
        let taken = q.take(None);
        assert_eq!(taken.messages.len(), 3);
        assert!(!taken.closed);
        assert_eq!(q.push(reset(4), Duration::ZERO), Pushed::Queued);
    }

    #[test]
    fn a_producer_waiting_for_room_gets_it_when_the_writer_takes() {
        let q = std::sync::Arc::new(Queue::new(1));
        assert_eq!(q.push(reset(1), Duration::ZERO), Pushed::Queued);
        let producer = {
            let q = std::sync::Arc::clone(&q);
            std::thread::spawn(move || q.push(reset(2), Duration::from_secs(30)))
        };
        // the writer takes the first change (after its linger); the producer then fits
        let first = q.take(None);
        assert_eq!(first.messages.len(), 1);
        let pushed = producer.join().expect("the producer finishes");
        assert!(matches!(pushed, Pushed::Waited | Pushed::Queued));
        q.close();
        assert!(q.flush().is_none());
        let last = q.take(None);
        assert!(last.closed);
        assert_eq!(last.messages.len(), 1);
        assert_eq!(q.push(reset(3), Duration::ZERO), Pushed::Refused);
    }
}
