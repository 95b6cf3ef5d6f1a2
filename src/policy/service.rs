//! What a policy means for the traffic it serves, where the graphs (their checks and
//! drawings) and the bundle (its downgrade table) must agree: which models traffic can
//! be on, the price ladder among them, the moves a `downgrade_to` makes, and whether a
//! switching rule can fire on a model.

use std::collections::BTreeSet;

use super::{DowngradeTo, Metric, Model, Policy, SwitchRule, Symbols};

/// The models in service and their price ladder, worked out once per policy.
#[derive(Debug, Clone, Default)]
pub struct Service<'p> {
    /// models that traffic can be on, by name
    pub models: BTreeSet<&'p str>,
    /// the models in service, cheapest first (ties broken by name)
    pub ladder: Vec<&'p Model>,
}

impl<'p> Service<'p> {
    pub fn new(policy: &'p Policy, syms: &Symbols<'p>) -> Service<'p> {
        let models = in_service(policy, syms);
        let ladder = ladder(&models, syms);
        Service { models, ladder }
    }
}

/// Whether a switching rule can fire while traffic is on `model`: a cost-per-task
/// threshold cannot be breached by a model whose most expensive task (`max_tokens` at
/// its price) costs no more than the threshold; the other metrics can breach anywhere.
pub fn can_breach(rule: &SwitchRule, model: &Model) -> bool {
    match rule.metric.value {
        Metric::CostPerTask => max_task_cost(model) > rule.threshold.value.value,
        _ => true,
    }
}

/// What one task at the model's `max_tokens` costs.
pub fn max_task_cost(model: &Model) -> f64 {
    model.cost_per_token.value * model.max_tokens.value
}

/// The switching rules of the cost window.
pub fn switch_rules(policy: &Policy) -> &[SwitchRule] {
    policy
        .cost
        .as_ref()
        .and_then(|c| c.switching.as_ref())
        .map_or(&[], |s| s.rules.as_slice())
}

/// Models that traffic can be on, by name: reached from a routing rule (pools expanded),
/// or the target of an explicit `downgrade_to` or of `fallback_to`.
fn in_service<'p>(policy: &'p Policy, syms: &Symbols<'p>) -> BTreeSet<&'p str> {
    let mut out = BTreeSet::new();
    for rule in policy.routing.iter().flat_map(|r| &r.rules) {
        if let Some(t) = &rule.target {
            out.extend(
                syms.target_models(t)
                    .into_iter()
                    .map(|m| m.name.value.as_str()),
            );
        }
    }
    for rule in switch_rules(policy) {
        if let Some(DowngradeTo::Model(m)) = rule.downgrade_to.as_ref().map(|d| &d.value) {
            if let Some(model) = syms.models.get(m.value.as_str()) {
                out.insert(model.name.value.as_str());
            }
        }
        if let Some(m) = &rule.fallback_to {
            if let Some(model) = syms.models.get(m.value.as_str()) {
                out.insert(model.name.value.as_str());
            }
        }
    }
    out
}

/// The moves one `downgrade_to` makes, most expensive model first: `next_cheaper` moves
/// each model in service to the one below it on the ladder; an explicit target takes
/// every model in service, itself included (which is how a cycle shows). The graph
/// checks, the drawings and the bundle's downgrade table all use this.
pub fn downgrade_moves<'p>(to: &'p DowngradeTo, ladder: &[&'p Model]) -> Vec<(&'p Model, &'p str)> {
    match to {
        DowngradeTo::NextCheaper => ladder
            .windows(2)
            .rev()
            .map(|pair| (pair[1], pair[0].name.value.as_str()))
            .collect(),
        DowngradeTo::Model(target) => ladder
            .iter()
            .rev()
            .map(|m| (*m, target.value.as_str()))
            .collect(),
    }
}

/// The models in service, cheapest first (ties broken by name): `next_cheaper` moves
/// each one to the one before it.
fn ladder<'p>(in_service: &BTreeSet<&'p str>, syms: &Symbols<'p>) -> Vec<&'p Model> {
    let mut models: Vec<&Model> = in_service
        .iter()
        .filter_map(|n| syms.models.get(n).copied())
        .collect();
    models.sort_by(|a, b| {
        a.cost_per_token
            .value
            .total_cmp(&b.cost_per_token.value)
            .then_with(|| a.name.value.cmp(&b.name.value))
    });
    models
}
