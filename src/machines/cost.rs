//! The cost-window machines: one per `dynamic_switching` rule, switching away when the
//! window's metric goes above the rule's threshold and back when it returns to it.

use serde::{Deserialize, Serialize};

use super::machine::{
    Action, DowngradeTarget, EventKind, Guard, Machine, Metric, NotifyEvent, Row, StateId,
    SwitchKind,
};
use super::Params;
use crate::policy::{DowngradeTo, Policy, SwitchAction, SwitchRule};

pub const NORMAL: StateId = StateId(0);
pub const SWITCHED: StateId = StateId(1);
pub const STATES: [&str; 2] = ["normal", "switched"];

/// What a rule switches to, resolved as far as the policy allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Switch {
    Downgrade { to: DowngradeTarget },
    SwitchProvider,
    FallbackFast { model: String },
}

impl Switch {
    pub fn kind(&self) -> SwitchKind {
        match self {
            Switch::Downgrade { .. } => SwitchKind::DowngradeModel,
            Switch::SwitchProvider => SwitchKind::SwitchProvider,
            Switch::FallbackFast { .. } => SwitchKind::FallbackFast,
        }
    }

    fn action(&self) -> Action {
        match self {
            Switch::Downgrade { to } => Action::Downgrade { to: to.clone() },
            Switch::SwitchProvider => Action::SwitchProvider,
            Switch::FallbackFast { model } => Action::FallbackFast {
                model: model.clone(),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostParams {
    /// the rule's 0-based position under `dynamic_switching.rules`
    pub rule: usize,
    pub metric: Metric,
    /// in the metric's unit (see [`Metric`])
    pub threshold: f64,
    pub switch: Switch,
    /// how far back each window's metrics reach
    pub window_ms: u64,
    /// how often a window is evaluated (and a `window` event sent)
    pub check_interval_ms: u64,
}

fn switch(rule: &SwitchRule) -> Option<Switch> {
    Some(match rule.action.value {
        // without `downgrade_to` (E006) the natural reading is the next cheaper model
        SwitchAction::DowngradeModel => Switch::Downgrade {
            to: match rule.downgrade_to.as_ref().map(|d| &d.value) {
                Some(DowngradeTo::Model(m)) => DowngradeTarget::Model(m.value.clone()),
                Some(DowngradeTo::NextCheaper) | None => DowngradeTarget::NextCheaper,
            },
        },
        SwitchAction::SwitchProvider => Switch::SwitchProvider,
        // without `fallback_to` (E006) there is nowhere to go: no machine
        SwitchAction::FallbackFast => Switch::FallbackFast {
            model: rule.fallback_to.as_ref()?.value.clone(),
        },
    })
}

/// One machine per switching rule, in rule order; none when `cost_aware.enabled` is
/// false.
pub fn compile(policy: &Policy) -> Vec<Machine> {
    let Some(cost) = policy.cost.as_ref().filter(|c| c.enabled) else {
        return Vec::new();
    };
    let Some(sw) = &cost.switching else {
        return Vec::new();
    };
    sw.rules
        .iter()
        .enumerate()
        .filter_map(|(i, rule)| {
            Some(machine(CostParams {
                rule: i,
                metric: rule.metric.value,
                threshold: rule.threshold.value.value,
                switch: switch(rule)?,
                window_ms: sw.window.value.ms,
                check_interval_ms: sw.check_interval.value.ms,
            }))
        })
        .collect()
}

/// The machine of one rule. Windows within the threshold keep their state through
/// explicit rows, so an ignored `window` event always means the metric was missing.
pub fn machine(params: CostParams) -> Machine {
    let above = Guard::MetricAbove {
        metric: params.metric,
        threshold: params.threshold,
    };
    let at_most = Guard::MetricAtMost {
        metric: params.metric,
        threshold: params.threshold,
    };
    let row = |from, guard: &Guard, to, actions| Row {
        from,
        on: EventKind::Window,
        guard: guard.clone(),
        updates: vec![],
        to,
        actions,
    };
    let notify = Action::Notify(NotifyEvent::ModelSwitched);
    let rows = vec![
        row(
            NORMAL,
            &above,
            SWITCHED,
            vec![params.switch.action(), notify.clone()],
        ),
        row(NORMAL, &at_most, NORMAL, vec![]),
        row(
            SWITCHED,
            &at_most,
            NORMAL,
            vec![
                Action::Restore {
                    undo: params.switch.kind(),
                },
                notify,
            ],
        ),
        row(SWITCHED, &above, SWITCHED, vec![]),
    ];
    Machine {
        name: format!("cost_window.{}.{}", params.rule, params.metric.as_str()),
        states: STATES.iter().map(|s| s.to_string()).collect(),
        initial: NORMAL,
        counters: vec![],
        rows,
        params: Params::CostWindow(params),
    }
}
