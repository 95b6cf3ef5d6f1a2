//! The record of settled spending, as the runtime hands it on: every dollar the
//! budgets settle (a report's cost, a proxied call's real cost) is also given to a
//! [`SpendLog`], which the server backs with the durable ledger in `--state-dir`
//! (`crate::ledger`). The runtime does no I/O: it calls the log, which must not block.

use std::fmt;
use std::sync::{Arc, OnceLock};

/// Where a settled cost came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendSource {
    /// `POST /v1/report`
    Report,
    /// a call the proxy made
    Proxy,
}

impl SpendSource {
    pub fn as_str(self) -> &'static str {
        match self {
            SpendSource::Report => "report",
            SpendSource::Proxy => "proxy",
        }
    }
}

/// One settled cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled<'a> {
    /// the budgets' day the cost counts on
    pub day: u64,
    pub wall_ms: u64,
    pub dollars: f64,
    pub session: Option<&'a str>,
    /// the policy's model and provider names
    pub model: &'a str,
    pub provider: &'a str,
    /// the decision the cost belongs to, when known
    pub decision: Option<&'a str>,
    pub source: SpendSource,
}

/// A durable record of settled spending. Called on the request path: an
/// implementation queues and returns at once.
pub trait SpendLog: Send + Sync {
    fn settled(&self, spend: &Settled<'_>);
    /// An operator reset the budgets at `wall_ms`: spending before it no longer counts.
    fn reset(&self, day: u64, wall_ms: u64);
}

/// The log a server installs once at start; none in tests and `rulec` tools.
#[derive(Default)]
pub struct SpendLogSlot(OnceLock<Arc<dyn SpendLog>>);

impl SpendLogSlot {
    /// Installs `log`; `false` when one is already installed.
    pub fn install(&self, log: Arc<dyn SpendLog>) -> bool {
        self.0.set(log).is_ok()
    }

    pub fn get(&self) -> Option<&Arc<dyn SpendLog>> {
        self.0.get()
    }
}

impl fmt::Debug for SpendLogSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "SpendLogSlot(installed)"
        } else {
            "SpendLogSlot(none)"
        })
    }
}
