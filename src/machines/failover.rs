//! The failover machine: routing to the weighted fallbacks while the primary provider
//! is down, failing back (automatically or by an operator), and the scheduled drill.

use serde::{Deserialize, Serialize};

use super::machine::{
    Action, Delay, EventKind, Fallback, Guard, Machine, NotifyEvent, Row, StateId, Update,
};
use super::Params;
use crate::policy::{DrillMode as PolicyDrillMode, Policy};

pub const PRIMARY: StateId = StateId(0);
pub const FAILED_OVER: StateId = StateId(1);
pub const DRILL: StateId = StateId(2);
pub const STATES: [&str; 3] = ["primary", "failed_over", "drill"];

/// The policy has no setting for how long a drill lasts; a live drill that never gets
/// its `drill_end` returns to the primary after this long (or after the drill interval,
/// if that is shorter, so that drills cannot overlap).
pub const DEFAULT_DRILL_LENGTH_MS: u64 = 5 * 60_000;

/// Without `failover.recovery`, the primary takes traffic back as soon as it is up.
pub const DEFAULT_AUTO_RECOVER: bool = true;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillMode {
    /// report where traffic would go; routing does not change
    DryRun,
    /// really route to the fallbacks for the drill's length
    Live,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillParams {
    /// how often the server sends `drill_start`
    pub every_ms: u64,
    pub mode: DrillMode,
    pub notify: bool,
    pub length_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailoverParams {
    pub primary: String,
    pub fallbacks: Vec<Fallback>,
    pub auto_recover: bool,
    pub drill: Option<DrillParams>,
}

/// The failover machine, if the policy has a `failover` section.
/// The weighted fallbacks as the router needs them. Weights are all given or all
/// omitted (E006 otherwise); omitted means equal shares.
pub fn fallbacks(f: &crate::policy::Failover) -> Vec<Fallback> {
    f.fallbacks
        .iter()
        .map(|t| Fallback {
            provider: t.provider.value.clone(),
            weight: t.weight.as_ref().map_or(1.0, |w| w.value),
            timeout_ms: t.timeout.value.ms,
        })
        .collect()
}

pub fn compile(policy: &Policy) -> Option<Machine> {
    let f = policy.failover.as_ref()?;
    let fallbacks = fallbacks(f);
    let drill = f.scheduled.as_ref().map(|s| DrillParams {
        every_ms: s.every.value.ms,
        mode: match s.mode.value {
            PolicyDrillMode::DryRun => DrillMode::DryRun,
            PolicyDrillMode::Live => DrillMode::Live,
        },
        notify: s.notify.value,
        length_ms: DEFAULT_DRILL_LENGTH_MS.min(s.every.value.ms),
    });
    Some(machine(FailoverParams {
        primary: f.primary.value.clone(),
        fallbacks,
        auto_recover: f
            .recovery
            .as_ref()
            .map_or(DEFAULT_AUTO_RECOVER, |r| r.auto_recover),
        drill,
    }))
}

/// The machine for the given parameters.
///
/// A real outage during a drill wins: `primary_down` in `drill` fails over. Without
/// `auto_recover`, `primary_up` only notifies and an operator's `reset` fails back.
pub fn machine(params: FailoverParams) -> Machine {
    use EventKind as E;
    let route = Action::RouteToFallbacks {
        fallbacks: params.fallbacks.clone(),
    };
    let fail_over = vec![route.clone(), Action::Notify(NotifyEvent::Failover)];
    let mut rows = vec![Row::new(
        PRIMARY,
        E::PrimaryDown,
        Guard::Always,
        vec![],
        FAILED_OVER,
        fail_over.clone(),
    )];
    rows.push(if params.auto_recover {
        Row::new(
            FAILED_OVER,
            E::PrimaryUp,
            Guard::Always,
            vec![],
            PRIMARY,
            vec![
                Action::RouteToPrimary,
                Action::Notify(NotifyEvent::Failover),
            ],
        )
    } else {
        Row::new(
            FAILED_OVER,
            E::PrimaryUp,
            Guard::Always,
            vec![],
            FAILED_OVER,
            vec![Action::Notify(NotifyEvent::ProviderRecovered)],
        )
    });
    rows.push(Row::new(
        FAILED_OVER,
        E::Reset,
        Guard::Always,
        vec![],
        PRIMARY,
        vec![Action::RouteToPrimary],
    ));
    if let Some(drill) = &params.drill {
        let mut start = match drill.mode {
            DrillMode::DryRun => vec![Action::DrillReport {
                fallbacks: params.fallbacks.clone(),
            }],
            DrillMode::Live => vec![route],
        };
        if drill.notify {
            start.push(Action::Notify(NotifyEvent::FailoverDrill));
        }
        let end = match drill.mode {
            DrillMode::DryRun => vec![],
            DrillMode::Live => vec![Action::RouteToPrimary],
        };
        rows.push(Row::new(
            PRIMARY,
            E::DrillStart,
            Guard::Always,
            vec![Update::SetTimer(Delay::Fixed(drill.length_ms))],
            DRILL,
            start,
        ));
        rows.push(Row::new(
            DRILL,
            E::DrillEnd,
            Guard::Always,
            vec![Update::ClearTimer],
            PRIMARY,
            end.clone(),
        ));
        rows.push(Row::new(
            DRILL,
            E::Tick,
            Guard::TimerDue,
            vec![Update::ClearTimer],
            PRIMARY,
            end.clone(),
        ));
        rows.push(Row::new(
            DRILL,
            E::PrimaryDown,
            Guard::Always,
            vec![Update::ClearTimer],
            FAILED_OVER,
            fail_over,
        ));
        rows.push(Row::new(
            DRILL,
            E::Reset,
            Guard::Always,
            vec![Update::ClearTimer],
            PRIMARY,
            end,
        ));
    }
    Machine {
        name: "failover".into(),
        states: STATES.iter().map(|s| s.to_string()).collect(),
        initial: PRIMARY,
        counters: vec![],
        rows,
        params: Params::Failover(params),
    }
}
