//! What a decision is: the model chosen, where it came from (rule, pool member), the
//! fallback chain, every adjustment the live state made with its reason — or why no
//! decision was made. Names are borrowed from the gateway that decided, so making a
//! decision copies no strings.

use serde::Serialize;

use crate::compile::request::RequestError;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleRef<'g> {
    pub index: u32,
    pub id: &'g str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<&'g str>,
    pub file: &'g str,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolRef<'g> {
    pub name: &'g str,
    /// the member's position in the pool's `models`
    pub member: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainEntry<'g> {
    pub model: &'g str,
    pub model_id: &'g str,
    pub provider: &'g str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Why the live state changed the table's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentKind {
    /// the session is pinned to this pool member
    Affinity,
    /// a daily or session budget is spent: down the price ladder
    Budget,
    /// a cost window's `downgrade` is in force
    Downgrade,
    /// a cost window's `fallback_fast` is in force
    FallbackFast,
    /// a cost window's `switch_provider` moved the primary's traffic
    SwitchProvider,
    /// the primary provider is failed over
    Failover,
    /// the model's provider is unhealthy (or the model disabled): next in the chain
    Unhealthy,
    /// the request is larger than the model's context window: next in the chain
    ContextWindow,
    /// the pool is full: next in the chain with room
    Overflow,
    /// unhealthy, and nothing in the chain can serve: answered anyway
    AllUnhealthy,
    /// the client named this model (the proxy's `model` field)
    Requested,
}

impl AdjustmentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AdjustmentKind::Affinity => "affinity",
            AdjustmentKind::Budget => "budget",
            AdjustmentKind::Downgrade => "downgrade",
            AdjustmentKind::FallbackFast => "fallback_fast",
            AdjustmentKind::SwitchProvider => "switch_provider",
            AdjustmentKind::Failover => "failover",
            AdjustmentKind::Unhealthy => "unhealthy",
            AdjustmentKind::ContextWindow => "context_window",
            AdjustmentKind::Overflow => "overflow",
            AdjustmentKind::AllUnhealthy => "all_unhealthy",
            AdjustmentKind::Requested => "requested",
        }
    }
}

/// A change the live state made to the table's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Adjustment {
    pub kind: AdjustmentKind,
    pub from: String,
    pub to: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
/// A decision, borrowing its names from the gateway that made it (so making one
/// copies no strings).
pub struct Decision<'g> {
    pub decision_id: String,
    pub model: &'g str,
    pub model_id: &'g str,
    pub provider: &'g str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolRef<'g>>,
    pub rule: RuleRef<'g>,
    pub fallbacks: Vec<ChainEntry<'g>>,
    pub adjustments: Vec<Adjustment>,
    pub bundle: &'g str,
}

/// Why no decision was made; rendered by the server as a JSON error.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteError {
    #[serde(skip)]
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// seconds, for `Retry-After`
    #[serde(skip)]
    pub retry_after: Option<u32>,
}

impl RouteError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> RouteError {
        RouteError {
            status,
            code,
            message: message.into(),
            attribute: None,
            help: None,
            retry_after: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> RouteError {
        self.help = Some(help.into());
        self
    }
}

impl From<RequestError> for RouteError {
    fn from(e: RequestError) -> RouteError {
        RouteError {
            status: 400,
            code: "invalid_request",
            message: e.message,
            attribute: e.attribute,
            help: e.help,
            retry_after: None,
        }
    }
}

/// The longest session id kept: pins, leases and budgets store it, and their caps
/// count entries, so its length is what bounds their bytes.
pub const MAX_SESSION_ID: usize = 256;
