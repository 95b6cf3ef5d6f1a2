//! What the ledger keeps: its entries (a settled cost, or an operator's reset), the
//! totals it reads back, and how an entry is stored (JSON, so that a later field can
//! be added with a default and old files still read).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::runtime::spend::{Settled, SpendSource};

/// Where a settled cost came from (the runtime's [`SpendSource`], as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Report,
    Proxy,
}

impl From<SpendSource> for Source {
    fn from(s: SpendSource) -> Source {
        match s {
            SpendSource::Report => Source::Report,
            SpendSource::Proxy => Source::Proxy,
        }
    }
}

impl From<Source> for SpendSource {
    fn from(s: Source) -> SpendSource {
        match s {
            Source::Report => SpendSource::Report,
            Source::Proxy => SpendSource::Proxy,
        }
    }
}

/// One change to the ledger, in the order it was queued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A settled cost.
    Spend {
        /// the budgets' day it counts on
        day: u64,
        wall_ms: u64,
        dollars: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        model: String,
        provider: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decision: Option<String>,
        source: Source,
    },
    /// An operator's reset: the day's totals and every session's start again from
    /// nothing; the entries before it stay as history.
    Reset {
        day: u64,
        wall_ms: u64,
        /// the day's total the reset cleared (filled in by the writer)
        #[serde(default)]
        spent_before: f64,
    },
}

impl Entry {
    pub fn from_settled(s: &Settled<'_>) -> Entry {
        Entry::Spend {
            day: s.day,
            wall_ms: s.wall_ms,
            dollars: s.dollars,
            session: s.session.map(str::to_string),
            model: s.model.to_string(),
            provider: s.provider.to_string(),
            decision: s.decision.map(str::to_string),
            source: s.source.into(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // an enum of strings and numbers always serialises; the fallback keeps the
        // writer free of a panic path all the same
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Entry, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

/// An entry with its sequence number (1, 2, … in commit order, never reused).
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub seq: u64,
    pub entry: Entry,
}

/// Dollars and the number of settled costs that made them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Amount {
    pub spent: f64,
    pub calls: u64,
}

impl Amount {
    pub(super) fn add(&mut self, dollars: f64) {
        self.spent += dollars;
        self.calls += 1;
    }
}

/// A day's spending since its last reset: what its budget counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayTotals {
    pub day: u64,
    pub spent: f64,
    pub calls: u64,
    pub by_model: BTreeMap<String, Amount>,
    pub by_provider: BTreeMap<String, Amount>,
}

/// A session's spending since the last reset.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionSpend {
    pub session: String,
    pub spent: f64,
    /// when it last spent (wall-clock milliseconds)
    pub last_wall_ms: u64,
}

/// What [`super::Ledger::restore_into`] put back.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub day: u64,
    /// the day's spending now in the budgets (`None`: the ledger had no entries yet,
    /// so the budgets were left as they were)
    pub spent: Option<f64>,
    pub calls: u64,
    pub sessions: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_old_fields_default() {
        let e = Entry::Spend {
            day: 3,
            wall_ms: 4,
            dollars: 0.25,
            session: Some("s".into()),
            model: "m".into(),
            provider: "p".into(),
            decision: None,
            source: Source::Proxy,
        };
        assert_eq!(Entry::decode(&e.encode()), Ok(e));
        let old = br#"{"kind":"reset","day":1,"wall_ms":2}"#;
        assert_eq!(
            Entry::decode(old),
            Ok(Entry::Reset {
                day: 1,
                wall_ms: 2,
                spent_before: 0.0
            })
        );
        assert!(Entry::decode(b"{\"kind\":\"refund\"}").is_err());
    }
}
