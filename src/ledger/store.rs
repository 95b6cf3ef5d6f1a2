//! The ledger's file: a redb database with the entries (by sequence number) and, kept
//! in the same transaction, the totals per day, per (day, model), per (day, provider)
//! and per session, with an index of sessions by their last spending. One commit
//! applies one batch; reads see whole commits only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableTable, ReadableTableMetadata, Table, TableDefinition,
    WriteTransaction,
};

use super::record::{Amount, DayTotals, Entry, Recorded, SessionSpend};
use super::LedgerError;

/// sequence number → an encoded [`Entry`]
const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// day → (dollars, calls) since the day's last reset
const DAYS: TableDefinition<u64, (f64, u64)> = TableDefinition::new("days");
const DAY_MODELS: TableDefinition<(u64, &str), (f64, u64)> = TableDefinition::new("day_models");
const DAY_PROVIDERS: TableDefinition<(u64, &str), (f64, u64)> =
    TableDefinition::new("day_providers");
/// session → (dollars since the last reset, wall ms of its last spending)
const SESSIONS: TableDefinition<&str, (f64, u64)> = TableDefinition::new("sessions");
/// (wall ms of the last spending, session): the sessions, oldest first
const RECENT: TableDefinition<(u64, &str), ()> = TableDefinition::new("sessions_by_time");

/// The read cache; the ledger's reads are small (a day, the recent sessions).
const CACHE_BYTES: usize = 16 << 20;

pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens `path`, creating it (and its tables) when it does not exist.
    pub fn open(path: &Path) -> Result<Store, LedgerError> {
        let shown = path.to_path_buf();
        // redb asserts on some damaged files (a truncated one) instead of returning an
        // error: a damaged ledger must be a message, not a crash
        let opened = std::panic::catch_unwind(|| {
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                // files redb 3 opens as they are
                .create_with_file_format_v3(true)
                .set_repair_callback(|_| {
                    tracing::warn!("the ledger was not closed cleanly: checking it");
                })
                .create(path)
        });
        let db = match opened {
            Ok(opened) => opened.map_err(|e| LedgerError::opening(&shown, e))?,
            Err(_) => {
                return Err(LedgerError::Corrupt {
                    path: shown,
                    detail: "it is damaged (truncated?)".into(),
                })
            }
        };
        let store = Store { db, path: shown };
        store.create_tables()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn create_tables(&self) -> Result<(), LedgerError> {
        let tx = self.begin()?;
        Tables::open(&tx)?;
        tx.commit().map_err(LedgerError::storage)
    }

    fn begin(&self) -> Result<WriteTransaction, LedgerError> {
        let mut tx = self.db.begin_write().map_err(LedgerError::storage)?;
        // fsync on commit: a commit that returned survives the process (and, when the
        // disk keeps its promises, the machine); quick repair keeps the allocator's
        // state in each commit so that the first start after a kill is not a scan of
        // the whole file
        tx.set_durability(Durability::Immediate);
        tx.set_quick_repair(true);
        Ok(tx)
    }

    /// Commits `changes` in one transaction; returns how many were recorded.
    pub fn commit(&self, changes: &[Entry]) -> Result<usize, LedgerError> {
        let tx = self.begin()?;
        {
            let mut t = Tables::open(&tx)?;
            let mut seq = t
                .entries
                .last()
                .map_err(LedgerError::storage)?
                .map_or(0, |(k, _)| k.value());
            let mut batch = Batch::default();
            for change in changes {
                seq += 1;
                let stored = match change {
                    Entry::Spend { .. } => {
                        batch.spend(&t, change)?;
                        change.encode()
                    }
                    Entry::Reset { day, wall_ms, .. } => {
                        batch.write(&mut t)?;
                        let spent_before = t.reset(*day)?;
                        Entry::Reset {
                            day: *day,
                            wall_ms: *wall_ms,
                            spent_before,
                        }
                        .encode()
                    }
                };
                t.entries
                    .insert(seq, stored.as_slice())
                    .map_err(LedgerError::storage)?;
            }
            batch.write(&mut t)?;
        }
        tx.commit().map_err(LedgerError::storage)?;
        Ok(changes.len())
    }

    /// The day's totals since its last reset.
    pub fn totals(&self, day: u64) -> Result<DayTotals, LedgerError> {
        let tx = self.db.begin_read().map_err(LedgerError::storage)?;
        let days = tx.open_table(DAYS).map_err(LedgerError::storage)?;
        let (spent, calls) = days
            .get(day)
            .map_err(LedgerError::storage)?
            .map_or((0.0, 0), |v| v.value());
        let mut totals = DayTotals {
            day,
            spent,
            calls,
            ..DayTotals::default()
        };
        for (def, into) in [
            (DAY_MODELS, &mut totals.by_model),
            (DAY_PROVIDERS, &mut totals.by_provider),
        ] {
            let table = tx.open_table(def).map_err(LedgerError::storage)?;
            for row in table
                .range((day, "")..(day.saturating_add(1), ""))
                .map_err(LedgerError::storage)?
            {
                let (k, v) = row.map_err(LedgerError::storage)?;
                let (spent, calls) = v.value();
                into.insert(k.value().1.to_string(), Amount { spent, calls });
            }
        }
        Ok(totals)
    }

    /// Up to `limit` sessions, the most recent spending first.
    pub fn sessions(&self, limit: usize) -> Result<Vec<SessionSpend>, LedgerError> {
        let tx = self.db.begin_read().map_err(LedgerError::storage)?;
        let recent = tx.open_table(RECENT).map_err(LedgerError::storage)?;
        let sessions = tx.open_table(SESSIONS).map_err(LedgerError::storage)?;
        let mut out = Vec::new();
        for row in recent.iter().map_err(LedgerError::storage)?.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, _) = row.map_err(LedgerError::storage)?;
            let (last_wall_ms, session) = k.value();
            if let Some(v) = sessions.get(session).map_err(LedgerError::storage)? {
                out.push(SessionSpend {
                    session: session.to_string(),
                    spent: v.value().0,
                    last_wall_ms,
                });
            }
        }
        Ok(out)
    }

    /// Up to `limit` entries after sequence number `after`, in order.
    pub fn entries(&self, after: u64, limit: usize) -> Result<Vec<Recorded>, LedgerError> {
        let tx = self.db.begin_read().map_err(LedgerError::storage)?;
        let entries = tx.open_table(ENTRIES).map_err(LedgerError::storage)?;
        let mut out = Vec::new();
        for row in entries
            .range(after.saturating_add(1)..)
            .map_err(LedgerError::storage)?
            .take(limit)
        {
            let (k, v) = row.map_err(LedgerError::storage)?;
            let seq = k.value();
            let entry = Entry::decode(v.value()).map_err(|e| LedgerError::Corrupt {
                path: self.path.clone(),
                detail: format!("entry {seq}: {e}"),
            })?;
            out.push(Recorded { seq, entry });
        }
        Ok(out)
    }

    /// How many entries the ledger holds.
    pub fn len(&self) -> Result<u64, LedgerError> {
        let tx = self.db.begin_read().map_err(LedgerError::storage)?;
        let entries = tx.open_table(ENTRIES).map_err(LedgerError::storage)?;
        entries.len().map_err(LedgerError::storage)
    }
}

/// The tables one write transaction changes.
struct Tables<'tx> {
    entries: Table<'tx, u64, &'static [u8]>,
    days: Table<'tx, u64, (f64, u64)>,
    models: Table<'tx, (u64, &'static str), (f64, u64)>,
    providers: Table<'tx, (u64, &'static str), (f64, u64)>,
    sessions: Table<'tx, &'static str, (f64, u64)>,
    recent: Table<'tx, (u64, &'static str), ()>,
}

impl<'tx> Tables<'tx> {
    fn open(tx: &'tx WriteTransaction) -> Result<Tables<'tx>, LedgerError> {
        Ok(Tables {
            entries: tx.open_table(ENTRIES).map_err(LedgerError::storage)?,
            days: tx.open_table(DAYS).map_err(LedgerError::storage)?,
            models: tx.open_table(DAY_MODELS).map_err(LedgerError::storage)?,
            providers: tx.open_table(DAY_PROVIDERS).map_err(LedgerError::storage)?,
            sessions: tx.open_table(SESSIONS).map_err(LedgerError::storage)?,
            recent: tx.open_table(RECENT).map_err(LedgerError::storage)?,
        })
    }

    /// Clears the day's totals and every session; returns the day's total before.
    fn reset(&mut self, day: u64) -> Result<f64, LedgerError> {
        let before = self
            .days
            .remove(day)
            .map_err(LedgerError::storage)?
            .map_or(0.0, |v| v.value().0);
        let range = (day, "")..(day.saturating_add(1), "");
        self.models
            .retain_in(range.clone(), |_, _| false)
            .map_err(LedgerError::storage)?;
        self.providers
            .retain_in(range, |_, _| false)
            .map_err(LedgerError::storage)?;
        self.sessions
            .retain(|_, _| false)
            .map_err(LedgerError::storage)?;
        self.recent
            .retain(|_, _| false)
            .map_err(LedgerError::storage)?;
        Ok(before)
    }
}

/// A session's row while a batch changes it.
#[derive(Debug, Clone, Copy)]
struct SessionRow {
    spent: f64,
    last: u64,
    /// its key in the recency index when the batch began
    indexed_at: Option<u64>,
}

/// The totals a batch touches, read once and written once: each cost is still added
/// one at a time, in order, so that a total equals the budgets' own sum to the bit.
#[derive(Default)]
struct Batch {
    days: HashMap<u64, Amount>,
    models: HashMap<(u64, String), Amount>,
    providers: HashMap<(u64, String), Amount>,
    sessions: HashMap<String, SessionRow>,
}

impl Batch {
    fn spend(&mut self, t: &Tables<'_>, change: &Entry) -> Result<(), LedgerError> {
        let Entry::Spend {
            day,
            wall_ms,
            dollars,
            session,
            model,
            provider,
            ..
        } = change
        else {
            return Ok(());
        };
        if !self.days.contains_key(day) {
            let stored = amount(t.days.get(*day).map_err(LedgerError::storage)?);
            self.days.insert(*day, stored);
        }
        if let Some(a) = self.days.get_mut(day) {
            a.add(*dollars);
        }
        add_named(&mut self.models, &t.models, *day, model, *dollars)?;
        add_named(&mut self.providers, &t.providers, *day, provider, *dollars)?;
        if let Some(s) = session {
            if !self.sessions.contains_key(s) {
                let stored = t.sessions.get(s.as_str()).map_err(LedgerError::storage)?;
                let row = stored.map_or(
                    SessionRow {
                        spent: 0.0,
                        last: 0,
                        indexed_at: None,
                    },
                    |v| {
                        let (spent, last) = v.value();
                        SessionRow {
                            spent,
                            last,
                            indexed_at: Some(last),
                        }
                    },
                );
                self.sessions.insert(s.clone(), row);
            }
            if let Some(row) = self.sessions.get_mut(s) {
                row.spent += dollars;
                row.last = row.last.max(*wall_ms);
            }
        }
        Ok(())
    }

    /// Writes the batch's totals and forgets them (before a reset, and at the end).
    fn write(&mut self, t: &mut Tables<'_>) -> Result<(), LedgerError> {
        for (day, a) in self.days.drain() {
            t.days
                .insert(day, (a.spent, a.calls))
                .map_err(LedgerError::storage)?;
        }
        for (table, rows) in [
            (&mut t.models, &mut self.models),
            (&mut t.providers, &mut self.providers),
        ] {
            for ((day, name), a) in rows.drain() {
                table
                    .insert((day, name.as_str()), (a.spent, a.calls))
                    .map_err(LedgerError::storage)?;
            }
        }
        for (s, row) in self.sessions.drain() {
            t.sessions
                .insert(s.as_str(), (row.spent, row.last))
                .map_err(LedgerError::storage)?;
            if row.indexed_at != Some(row.last) {
                if let Some(old) = row.indexed_at {
                    t.recent
                        .remove((old, s.as_str()))
                        .map_err(LedgerError::storage)?;
                }
                t.recent
                    .insert((row.last, s.as_str()), ())
                    .map_err(LedgerError::storage)?;
            }
        }
        Ok(())
    }
}

fn amount(stored: Option<redb::AccessGuard<'_, (f64, u64)>>) -> Amount {
    stored.map_or(Amount::default(), |v| {
        let (spent, calls) = v.value();
        Amount { spent, calls }
    })
}

/// Adds `dollars` to the (day, name) row of a batch, reading it first if new.
fn add_named(
    rows: &mut HashMap<(u64, String), Amount>,
    table: &Table<'_, (u64, &'static str), (f64, u64)>,
    day: u64,
    name: &str,
    dollars: f64,
) -> Result<(), LedgerError> {
    let key = (day, name.to_string());
    if !rows.contains_key(&key) {
        let stored = amount(table.get((day, name)).map_err(LedgerError::storage)?);
        rows.insert(key.clone(), stored);
    }
    if let Some(a) = rows.get_mut(&key) {
        a.add(dollars);
    }
    Ok(())
}
