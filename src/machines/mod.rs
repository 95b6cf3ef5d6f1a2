//! The dynamic parts of a policy compiled into explicit state machines: provider
//! health, cost windows and failover. Machines are data (rows of state × event ×
//! guard → updates, next state, actions) run by one pure [`step`], so the server and
//! the tests drive exactly the same thing, and the bundle can carry them as JSON.
//!
//! `compile` assumes a policy that `check` found free of errors; given anything else it
//! still returns machines (never panics), with the defaults documented in each module.

pub mod cost;
pub mod failover;
pub mod health;
pub mod machine;
pub mod table;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;

pub use cost::{CostParams, Switch};
pub use failover::{DrillMode, DrillParams, FailoverParams};
pub use health::{CheckOrigin, CheckParams, HealthParams, RecoveryOrigin, RecoveryParams};
pub use machine::{
    backoff_ms, step, transition, Action, BackoffKind, CounterId, CounterSpec, Delay,
    DowngradeTarget, Event, EventKind, Fallback, Guard, Instance, Machine, Metric, Metrics,
    NotifyEvent, Row, StateId, SwitchKind, Transition, Update, MAX_COUNTERS,
};
pub use table::transition_table;

/// The parameters a machine was compiled from, which the server also needs (check
/// intervals and timeouts, window lengths, the drill schedule).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Params {
    Health(HealthParams),
    CostWindow(CostParams),
    Failover(FailoverParams),
}

/// Every machine of a policy, in a fixed order: health by provider name, cost windows
/// by rule position.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Machines {
    pub health: Vec<Machine>,
    pub cost_windows: Vec<Machine>,
    pub failover: Option<Machine>,
}

impl Machines {
    pub fn iter(&self) -> impl Iterator<Item = &Machine> {
        self.health
            .iter()
            .chain(&self.cost_windows)
            .chain(&self.failover)
    }

    pub fn get(&self, name: &str) -> Option<&Machine> {
        self.iter().find(|m| m.name == name)
    }

    /// The health machine of a provider.
    pub fn health_of(&self, provider: &str) -> Option<&Machine> {
        self.health
            .iter()
            .find(|m| matches!(&m.params, Params::Health(p) if p.provider == provider))
    }

    /// Every machine is internally consistent (see [`Machine::validate`]).
    pub fn validate(&self) -> Result<(), String> {
        self.iter().try_for_each(Machine::validate)
    }
}

/// Compiles the health, cost-window and failover machines of a policy.
pub fn compile(policy: &Policy) -> Machines {
    Machines {
        health: health::compile(policy),
        cost_windows: cost::compile(policy),
        failover: failover::compile(policy),
    }
}
