//! The gateway's index of a bundle: names to typed indices and the relations the
//! router follows (a model's provider, a provider's health machine, the price
//! ladder, each rule's target, pool members, failover stand-ins). Built once per
//! bundle, pure and immutable: no live state here.

use std::collections::HashMap;
use std::sync::Arc;

use super::ids::{FallbackIx, HealthMachineIx, Ix, IxVec, ModelIx, PoolIx, ProviderIx, RuleIx};
use crate::bundle::spec::{ModelSpec, ProviderSpec};
use crate::bundle::Content;
use crate::compile::table::TargetKind;
use crate::machines::Params;

/// Where a rule sends its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Model(ModelIx),
    Pool(PoolIx),
}

/// Interned names, so that leases and decisions share instead of allocating.
#[derive(Debug)]
pub struct Names {
    pub models: IxVec<ModelIx, Arc<str>>,
    pub providers: IxVec<ProviderIx, Arc<str>>,
    pub rules: IxVec<RuleIx, Arc<str>>,
}

#[derive(Debug)]
pub struct Index {
    pub model_by_name: HashMap<String, ModelIx>,
    pub provider_by_name: HashMap<String, ProviderIx>,
    pub pool_by_name: HashMap<String, PoolIx>,
    /// `None`: the model names a provider the policy does not declare
    pub model_provider: IxVec<ModelIx, Option<ProviderIx>>,
    pub disabled: IxVec<ModelIx, bool>,
    pub health_machine: IxVec<ProviderIx, Option<HealthMachineIx>>,
    /// no active checks (see [`active_checks`]): health comes from reported outcomes
    pub passive: IxVec<ProviderIx, bool>,
    /// each model's `next_cheaper` move, if the policy gives one
    pub next_cheaper: IxVec<ModelIx, Option<ModelIx>>,
    /// `None` only in a bundle that names an undeclared target (refused on load)
    pub targets: IxVec<RuleIx, Option<Target>>,
    pub fallback_rule: Option<RuleIx>,
    /// each member's model, in the pool's order (the balancer's member positions)
    pub members: IxVec<PoolIx, Vec<Option<ModelIx>>>,
    /// the members' models, heaviest weight first
    pub members_by_weight: IxVec<PoolIx, Vec<ModelIx>>,
    pub primary: Option<ProviderIx>,
    /// the failover fallbacks, heaviest weight first
    pub fallbacks_by_weight: Vec<FallbackIx>,
    /// per model, per failover fallback: the model standing in for it there
    pub stand_ins: IxVec<ModelIx, IxVec<FallbackIx, Option<ModelIx>>>,
    /// the request schema's slot of `session_id`
    pub session_slot: Option<usize>,
    /// the request schema's slot of `estimated_tokens`
    pub tokens_slot: Option<usize>,
    pub names: Names,
}

/// Whether the server can check a provider actively: every `http://` and `https://`
/// endpoint, which is every endpoint a policy can declare (only a hand-made bundle
/// can name another kind).
pub fn active_checks(p: &ProviderSpec) -> bool {
    p.base_url.starts_with("http://") || p.base_url.starts_with("https://")
}

fn by_name<'a, I: Ix>(names: impl Iterator<Item = &'a String>) -> HashMap<String, I> {
    names
        .enumerate()
        .map(|(i, n)| (n.clone(), I::new(i)))
        .collect()
}

/// The positions `0..n` ordered by `weight`, heaviest first (ties by position).
fn heaviest_first(weights: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    order
}

/// The in-service model of `provider` most like `models[model]`: most capabilities
/// in common, then highest quality, then name.
fn stand_in(
    models: &IxVec<ModelIx, ModelSpec>,
    disabled: &IxVec<ModelIx, bool>,
    model: ModelIx,
    provider: &str,
) -> Option<ModelIx> {
    let want = &models[model].capabilities;
    let shared = |m: &ModelSpec| m.capabilities.iter().filter(|c| want.contains(c)).count();
    models
        .iter_enumerated()
        .filter(|(i, m)| m.provider == provider && !disabled[*i])
        .max_by(|(_, a), (_, b)| {
            shared(a)
                .cmp(&shared(b))
                .then(
                    a.quality
                        .unwrap_or(0.0)
                        .total_cmp(&b.quality.unwrap_or(0.0)),
                )
                .then(b.name.cmp(&a.name))
        })
        .map(|(i, _)| i)
}

impl Index {
    pub fn new(c: &Content) -> Index {
        let model_by_name: HashMap<String, ModelIx> = by_name(c.models.iter().map(|m| &m.name));
        let provider_by_name: HashMap<String, ProviderIx> =
            by_name(c.providers.iter().map(|p| &p.name));
        let pool_by_name: HashMap<String, PoolIx> = by_name(c.pools.iter().map(|p| &p.name));
        let model = |name: &String| model_by_name.get(name).copied();
        let models: IxVec<ModelIx, ModelSpec> = c.models.iter().cloned().collect();

        let model_provider = c
            .models
            .iter()
            .map(|m| provider_by_name.get(&m.provider).copied())
            .collect();
        let disabled: IxVec<ModelIx, bool> = c
            .models
            .iter()
            .map(|m| m.status == crate::bundle::spec::STATUS_DISABLED)
            .collect();
        let health_machine = c
            .providers
            .iter()
            .map(|p| {
                c.machines
                    .health
                    .iter()
                    .position(|m| matches!(&m.params, Params::Health(h) if h.provider == p.name))
                    .map(HealthMachineIx::new)
            })
            .collect();
        let passive = c.providers.iter().map(|p| !active_checks(p)).collect();
        let next_cheaper = c
            .models
            .iter()
            .map(|m| {
                c.downgrades
                    .iter()
                    .find(|d| d.from == m.name)
                    .and_then(|d| model(&d.to))
            })
            .collect();
        let targets = c
            .table
            .rules
            .iter()
            .map(|r| match r.target.kind {
                TargetKind::Model => model(&r.target.name).map(Target::Model),
                TargetKind::Pool => pool_by_name.get(&r.target.name).copied().map(Target::Pool),
            })
            .collect();
        let fallback_rule = c
            .table
            .rules
            .iter()
            .position(|r| r.fallback)
            .map(RuleIx::new);
        let members: IxVec<PoolIx, Vec<Option<ModelIx>>> = c
            .pools
            .iter()
            .map(|p| p.models.iter().map(model).collect())
            .collect();
        let members_by_weight = c
            .pools
            .iter()
            .zip(&members)
            .map(|(p, ms)| {
                heaviest_first(&p.weights)
                    .into_iter()
                    .filter_map(|i| ms.get(i).copied().flatten())
                    .collect()
            })
            .collect();
        let fallbacks = c.failover.as_ref().map_or(&[][..], |f| &f.fallbacks[..]);
        let weights: Vec<f64> = fallbacks.iter().map(|f| f.weight).collect();
        let fallbacks_by_weight = heaviest_first(&weights)
            .into_iter()
            .map(FallbackIx::new)
            .collect();
        let stand_ins = models
            .indices()
            .map(|m| {
                fallbacks
                    .iter()
                    .map(|f| stand_in(&models, &disabled, m, &f.provider))
                    .collect()
            })
            .collect();
        let primary = c
            .failover
            .as_ref()
            .and_then(|f| provider_by_name.get(&f.primary).copied());
        let names = Names {
            models: c
                .models
                .iter()
                .map(|m| Arc::from(m.name.as_str()))
                .collect(),
            providers: c
                .providers
                .iter()
                .map(|p| Arc::from(p.name.as_str()))
                .collect(),
            rules: c
                .table
                .rules
                .iter()
                .map(|r| Arc::from(r.id.as_str()))
                .collect(),
        };
        Index {
            model_by_name,
            provider_by_name,
            pool_by_name,
            model_provider,
            disabled,
            health_machine,
            passive,
            next_cheaper,
            targets,
            fallback_rule,
            members,
            members_by_weight,
            primary,
            fallbacks_by_weight,
            stand_ins,
            session_slot: c.schema.slot("session_id"),
            tokens_slot: c.schema.slot("estimated_tokens"),
            names,
        }
    }

    /// The position of `model` among the pool's members.
    pub fn member_position(&self, pool: PoolIx, model: ModelIx) -> Option<usize> {
        self.members[pool].iter().position(|m| *m == Some(model))
    }

    pub fn is_member(&self, pool: PoolIx, model: ModelIx) -> bool {
        self.members[pool].contains(&Some(model))
    }
}
