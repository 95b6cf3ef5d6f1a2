//! The ledger's one writer thread: takes batches from the queue, commits each in one
//! transaction, answers flushes, and keeps a batch whose commit failed to try again
//! (spending is never dropped because the disk hiccuped once).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::queue::{Message, Queue};
use super::record::Entry;
use super::store::Store;
use super::LedgerError;

/// How long after a failed commit the batch is tried again (sooner with new work).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the ledger has done so far, for logs and tests.
#[derive(Debug, Default)]
pub struct Counters {
    pub queued: AtomicU64,
    /// producers that found the queue full and waited for room
    pub waited: AtomicU64,
    /// changes refused after waiting: lost, and logged as an error
    pub refused: AtomicU64,
    pub committed: AtomicU64,
    pub commits: AtomicU64,
    pub failed_commits: AtomicU64,
}

pub fn run(store: Arc<Store>, queue: Arc<Queue>, counters: Arc<Counters>) {
    let mut pending: Vec<Entry> = Vec::new();
    loop {
        let idle = (!pending.is_empty()).then_some(RETRY_AFTER);
        let taken = queue.take(idle);
        let mut flushes = Vec::new();
        for message in taken.messages {
            match message {
                Message::Change(e) => pending.push(e),
                Message::Flush(reply) => flushes.push(reply),
            }
        }
        let result = commit(&store, &mut pending, &counters);
        for reply in flushes {
            // a flusher that stopped waiting is no error of ours
            let _ = reply.send(result.clone());
        }
        if taken.closed {
            if !pending.is_empty() {
                tracing::error!(
                    lost = pending.len(),
                    file = %store.path().display(),
                    "the ledger closed with settled spending it could not write"
                );
            }
            return;
        }
    }
}

fn commit(store: &Store, pending: &mut Vec<Entry>, counters: &Counters) -> Result<(), String> {
    if pending.is_empty() {
        return Ok(());
    }
    let started = std::time::Instant::now();
    // redb asserts on some storage failures; the writer must outlive them to say so
    let committed =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.commit(pending)))
            .unwrap_or_else(|_| Err(LedgerError::Storage("the database panicked".into())));
    match committed {
        Ok(n) => {
            tracing::debug!(
                entries = n,
                took_us = started.elapsed().as_micros() as u64,
                "ledger commit"
            );
            pending.clear();
            counters.committed.fetch_add(n as u64, Ordering::Relaxed);
            counters.commits.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => {
            counters.failed_commits.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                pending = pending.len(),
                "cannot write to the ledger: {e}; trying again"
            );
            Err(e.to_string())
        }
    }
}
