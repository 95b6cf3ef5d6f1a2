//! The per-provider health machine: consecutive failures make a provider unhealthy,
//! recovery probes follow the failover section's backoff, and a provider whose probes
//! keep failing is given up on. Also where each provider's health-check settings are
//! chosen from the pools it serves.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::machine::{
    Action, BackoffKind, CounterId, CounterSpec, Delay, EventKind, Guard, Machine, NotifyEvent,
    Row, StateId, Update,
};
use super::Params;
use crate::policy::{Backoff, HealthCheck, Policy};

pub const HEALTHY: StateId = StateId(0);
pub const UNHEALTHY: StateId = StateId(1);
pub const PROBING: StateId = StateId(2);
pub const GIVEN_UP: StateId = StateId(3);
pub const STATES: [&str; 4] = ["healthy", "unhealthy", "probing", "given_up"];

/// consecutive failures while healthy
pub const FAILURES: CounterId = CounterId(0);
/// failed recovery probes since the provider went unhealthy
pub const RETRIES: CounterId = CounterId(1);

/// Used when neither a pool nor `load_balancing` gives a health check; the values of
/// the example in `docs/policy-format.md`.
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 30_000;
pub const DEFAULT_CHECK_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_UNHEALTHY_THRESHOLD: u32 = 3;

/// Used when the policy has no `failover.recovery`: the decoder's own default backoff
/// (linear), with probes 30 s, 1 min, … 5 min apart, giving up after about 27 minutes.
pub const DEFAULT_BACKOFF: BackoffKind = BackoffKind::Linear;
pub const DEFAULT_RECOVERY_INTERVAL_MS: u64 = 30_000;
pub const DEFAULT_MAX_RETRIES: u32 = 10;

/// Where a provider's health-check settings came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOrigin {
    /// the pools serving the provider (their own checks, or the default for those
    /// without one); each setting is the strictest among them
    Pools(Vec<String>),
    /// `load_balancing.health_check`: the provider is in no pool
    LoadBalancing,
    /// no health check anywhere: the built-in defaults
    Default,
}

/// What the server's active checks of this provider use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckParams {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub unhealthy_threshold: u32,
    pub origin: CheckOrigin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryOrigin {
    /// `failover.recovery`
    Policy,
    Default,
}

/// How an unhealthy provider is probed back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryParams {
    pub backoff: BackoffKind,
    pub interval_ms: u64,
    pub max_retries: u32,
    pub origin: RecoveryOrigin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthParams {
    pub provider: String,
    pub check: CheckParams,
    pub recovery: RecoveryParams,
}

/// A policy count (validated as a non-negative integer by `check`) as a `u32`; `as`
/// saturates and maps NaN to 0, so an unchecked policy cannot make this panic.
fn count(v: f64) -> u32 {
    v as u32
}

/// The providers that need a health machine: those some model runs on, the failover
/// primary and its fallbacks. Sorted by name, so the bundle does not depend on which
/// file declared what.
pub fn providers(policy: &Policy) -> Vec<String> {
    let mut out: BTreeSet<&str> = policy
        .models
        .iter()
        .map(|m| m.provider.value.as_str())
        .collect();
    if let Some(f) = &policy.failover {
        out.insert(f.primary.value.as_str());
        out.extend(f.fallbacks.iter().map(|t| t.provider.value.as_str()));
    }
    out.into_iter().map(str::to_string).collect()
}

/// The health-check settings for `provider`: the strictest of the pools it serves
/// (shortest interval, shortest timeout, lowest threshold, each on its own; since every
/// pool's timeout is below its interval, so is the minimum's), else the
/// `load_balancing` default, else the built-in defaults.
pub fn check_params(policy: &Policy, provider: &str) -> CheckParams {
    let balancing = policy.balancing.as_ref();
    let default = balancing.and_then(|b| b.health_check.as_ref());
    let runs_here = |model: &str| {
        policy
            .models
            .iter()
            .any(|m| m.name.value == model && m.provider.value == provider)
    };
    let mut pools = Vec::new();
    let mut checks: Vec<&HealthCheck> = Vec::new();
    for pool in balancing.iter().flat_map(|b| &b.pools) {
        if !pool.models.iter().any(|m| runs_here(&m.value)) {
            continue;
        }
        // a pool with no check of its own and no default is W065: it adds nothing
        if let Some(h) = pool.health_check.as_ref().or(default) {
            pools.push(pool.name.value.clone());
            checks.push(h);
        }
    }
    let origin = if !checks.is_empty() {
        CheckOrigin::Pools(pools)
    } else if let Some(h) = default {
        checks.push(h);
        CheckOrigin::LoadBalancing
    } else {
        return CheckParams {
            interval_ms: DEFAULT_CHECK_INTERVAL_MS,
            timeout_ms: DEFAULT_CHECK_TIMEOUT_MS,
            unhealthy_threshold: DEFAULT_UNHEALTHY_THRESHOLD,
            origin: CheckOrigin::Default,
        };
    };
    let min = |f: &dyn Fn(&HealthCheck) -> u64| checks.iter().map(|h| f(h)).min().unwrap_or(0);
    let threshold = checks
        .iter()
        .map(|h| count(h.unhealthy_threshold.value))
        .min()
        .unwrap_or(DEFAULT_UNHEALTHY_THRESHOLD);
    CheckParams {
        interval_ms: min(&|h| h.interval.value.ms),
        timeout_ms: min(&|h| h.timeout.value.ms),
        // zero would mean "unhealthy before any failure", which `check` rejects (E061)
        unhealthy_threshold: threshold.max(1),
        origin,
    }
}

/// The recovery settings of `failover.recovery`, or the defaults.
pub fn recovery_params(policy: &Policy) -> RecoveryParams {
    match policy.failover.as_ref().and_then(|f| f.recovery.as_ref()) {
        Some(r) => RecoveryParams {
            backoff: match r.backoff.value {
                Backoff::Linear => BackoffKind::Linear,
                Backoff::Exponential => BackoffKind::Exponential,
            },
            interval_ms: r.interval.value.ms,
            max_retries: count(r.max_retries.value),
            origin: RecoveryOrigin::Policy,
        },
        None => RecoveryParams {
            backoff: DEFAULT_BACKOFF,
            interval_ms: DEFAULT_RECOVERY_INTERVAL_MS,
            max_retries: DEFAULT_MAX_RETRIES,
            origin: RecoveryOrigin::Default,
        },
    }
}

/// One health machine per provider that needs one, in name order.
pub fn compile(policy: &Policy) -> Vec<Machine> {
    let recovery = recovery_params(policy);
    providers(policy)
        .into_iter()
        .map(|provider| {
            let check = check_params(policy, &provider);
            machine(HealthParams {
                provider,
                check,
                recovery: recovery.clone(),
            })
        })
        .collect()
}

/// The health machine for one provider's parameters.
///
/// `max_retries` counts recovery probes: the `n`-th probe (from 0) is sent
/// `backoff(n)` after the previous failure, and when probe number `max_retries` fails
/// the provider is given up. With `max_retries: 0` no probe is ever sent: reaching the
/// threshold gives up at once. Only `reset` leaves `given_up`.
pub fn machine(params: HealthParams) -> Machine {
    use EventKind as E;
    let threshold = params.check.unhealthy_threshold.max(1);
    let retries = params.recovery.max_retries;
    let backoff = Update::SetTimer(Delay::Backoff {
        base_ms: params.recovery.interval_ms,
        kind: params.recovery.backoff,
        counter: RETRIES,
    });
    let down = vec![
        Action::MarkUnhealthy,
        Action::Notify(NotifyEvent::ProviderDown),
    ];
    let recovered = vec![
        Action::MarkHealthy,
        Action::Notify(NotifyEvent::ProviderRecovered),
    ];
    let clear_all = vec![
        Update::Reset(FAILURES),
        Update::Reset(RETRIES),
        Update::ClearTimer,
    ];
    let reaching_threshold = Guard::CounterAtLeast {
        counter: FAILURES,
        limit: threshold - 1,
    };

    let mut rows = Vec::new();
    // with a threshold of 1 the first failure already reaches it: no counting row
    if threshold > 1 {
        rows.push(Row::new(
            HEALTHY,
            E::Failure,
            Guard::CounterBelow {
                counter: FAILURES,
                limit: threshold - 1,
            },
            vec![Update::Inc(FAILURES)],
            HEALTHY,
            vec![],
        ));
    }
    if retries > 0 {
        rows.push(Row::new(
            HEALTHY,
            E::Failure,
            reaching_threshold,
            vec![Update::Inc(FAILURES), Update::Reset(RETRIES), backoff],
            UNHEALTHY,
            down.clone(),
        ));
    } else {
        let mut actions = down;
        actions.push(Action::Notify(NotifyEvent::CriticalAlert));
        rows.push(Row::new(
            HEALTHY,
            E::Failure,
            reaching_threshold,
            vec![
                Update::Inc(FAILURES),
                Update::Reset(RETRIES),
                Update::ClearTimer,
            ],
            GIVEN_UP,
            actions,
        ));
    }
    // failures must be consecutive to count
    rows.push(Row::new(
        HEALTHY,
        E::Success,
        Guard::Always,
        vec![Update::Reset(FAILURES)],
        HEALTHY,
        vec![],
    ));
    rows.push(Row::new(
        UNHEALTHY,
        E::Tick,
        Guard::TimerDue,
        vec![Update::ClearTimer],
        PROBING,
        vec![Action::Probe],
    ));
    rows.push(Row::new(
        PROBING,
        E::ProbeOk,
        Guard::Always,
        clear_all.clone(),
        HEALTHY,
        recovered.clone(),
    ));
    if retries > 0 {
        rows.push(Row::new(
            PROBING,
            E::ProbeFailed,
            Guard::CounterBelow {
                counter: RETRIES,
                limit: retries - 1,
            },
            vec![Update::Inc(RETRIES), backoff],
            UNHEALTHY,
            vec![],
        ));
        rows.push(Row::new(
            PROBING,
            E::ProbeFailed,
            Guard::CounterAtLeast {
                counter: RETRIES,
                limit: retries - 1,
            },
            vec![Update::Inc(RETRIES), Update::ClearTimer],
            GIVEN_UP,
            vec![Action::Notify(NotifyEvent::CriticalAlert)],
        ));
    }
    rows.push(Row::new(
        HEALTHY,
        E::Reset,
        Guard::Always,
        clear_all.clone(),
        HEALTHY,
        vec![],
    ));
    for from in [UNHEALTHY, PROBING, GIVEN_UP] {
        rows.push(Row::new(
            from,
            E::Reset,
            Guard::Always,
            clear_all.clone(),
            HEALTHY,
            recovered.clone(),
        ));
    }

    Machine {
        name: format!("health.{}", params.provider),
        states: STATES.iter().map(|s| s.to_string()).collect(),
        initial: HEALTHY,
        counters: vec![
            CounterSpec {
                name: "failures".into(),
                limit: threshold,
            },
            CounterSpec {
                name: "retries".into(),
                limit: retries,
            },
        ],
        rows,
        params: Params::Health(params),
    }
}
