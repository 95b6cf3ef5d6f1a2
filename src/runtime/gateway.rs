//! One loaded bundle and the live state around it. A `Gateway` is built from a
//! verified bundle — its [`Index`] (pure, from the bundle alone) and its [`Live`]
//! state (fresh, or carried over from the gateway it replaces) — and is immutable
//! afterwards except for the live parts behind locks and atomics, which change only
//! in `events`. Hot reload builds a new one and swaps it in; requests keep the
//! `Arc<Gateway>` they started with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::carry::Live;
use super::ids::{ModelIx, ProviderIx, RuleIx};
use super::index::Index;
use super::live::{CostLive, PoolLive, ProviderLive};
use super::stats::lock;
use crate::bundle::spec::{ModelSpec, ProviderSpec};
use crate::bundle::Bundle;
use crate::machines::{Instance, Machine, Switch};

pub use super::events::Effect;
pub use super::live::CheckResult;
pub use super::shared::{Limits, Shared};

#[derive(Debug)]
pub struct Gateway {
    pub bundle: Arc<Bundle>,
    pub shared: Arc<Shared>,
    pub live: Live,
    pub ix: Index,
    /// the decisions counter per (rule, model), resolved on first use
    decisions: Vec<OnceLock<Arc<AtomicU64>>>,
    /// this gateway's number among the gateways of this process (see [`Shared`])
    pub generation: u32,
}

impl Gateway {
    /// Builds the gateway for `bundle`, taking over the live state of `previous` for
    /// every provider, pool and machine that is still there (by name).
    pub fn new(bundle: Bundle, previous: Option<&Gateway>, shared: Arc<Shared>) -> Gateway {
        let c = &bundle.content;
        let ix = Index::new(c);
        let live = Live::new(c, previous, &shared);
        let decisions = (0..c.table.rules.len() * c.models.len())
            .map(|_| OnceLock::new())
            .collect();
        let generation = shared.register(c.models.iter().map(|m| m.name.clone()).collect());
        shared
            .budgets
            .set_zone(c.budgets.as_ref().and_then(|b| b.time_zone.as_deref()));
        let gateway = Gateway {
            bundle: Arc::new(bundle),
            shared,
            live,
            ix,
            decisions,
            generation,
        };
        gateway.settle_providers();
        gateway
    }

    /// Counts a decision for (rule, model).
    pub(super) fn count_decision(&self, rule: RuleIx, model: ModelIx) {
        let Some(cell) = self
            .decisions
            .get(rule.as_u32() as usize * self.ix.names.models.len() + model.as_u32() as usize)
        else {
            return;
        };
        cell.get_or_init(|| {
            self.shared
                .stats
                .decisions
                .get(&[&self.ix.names.rules[rule], &self.ix.names.models[model]])
        })
        .fetch_add(1, Ordering::Relaxed);
    }

    pub fn hash(&self) -> &str {
        &self.bundle.hash
    }

    pub fn models(&self) -> &[ModelSpec] {
        &self.bundle.content.models
    }

    pub fn model_spec(&self, m: ModelIx) -> &ModelSpec {
        &self.bundle.content.models[m.as_u32() as usize]
    }

    pub fn model(&self, name: &str) -> Option<ModelIx> {
        self.ix.model_by_name.get(name).copied()
    }

    pub fn provider_ix(&self, name: &str) -> Option<ProviderIx> {
        self.ix.provider_by_name.get(name).copied()
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<ProviderLive>> {
        self.provider_ix(name).map(|p| &self.live.providers[p])
    }

    pub fn provider_spec(&self, p: ProviderIx) -> &ProviderSpec {
        &self.bundle.content.providers[p.as_u32() as usize]
    }

    /// Every provider with its live state, in the bundle's order.
    pub fn providers(&self) -> impl Iterator<Item = (ProviderIx, &Arc<ProviderLive>)> {
        self.live.providers.iter_enumerated()
    }

    /// Every pool's live state, in the bundle's order.
    pub fn pools(&self) -> impl Iterator<Item = &Arc<PoolLive>> {
        self.live.pools.iter()
    }

    /// Every model's index, in the bundle's order.
    pub fn model_ixs(&self) -> impl Iterator<Item = ModelIx> {
        self.ix.model_provider.indices()
    }

    pub fn provider_of(&self, model: ModelIx) -> Option<ProviderIx> {
        self.ix.model_provider.get(model).copied().flatten()
    }

    pub fn pool(&self, name: &str) -> Option<&Arc<PoolLive>> {
        self.ix.pool_by_name.get(name).map(|&p| &self.live.pools[p])
    }

    pub fn provider_healthy(&self, p: ProviderIx) -> bool {
        self.live.providers[p].healthy()
    }

    /// Whether the provider has no active checks (its health comes from reports).
    pub fn passive(&self, p: ProviderIx) -> bool {
        self.ix.passive[p]
    }

    /// A model may take traffic: it is not disabled and its provider is healthy.
    pub fn model_available(&self, m: ModelIx) -> bool {
        !self.ix.disabled[m]
            && self
                .provider_of(m)
                .is_some_and(|p| self.provider_healthy(p))
    }

    pub fn health_machine(&self, p: ProviderIx) -> Option<&Machine> {
        let i = self.ix.health_machine.get(p).copied().flatten()?;
        self.bundle.content.machines.health.get(i.as_u32() as usize)
    }

    /// Each cost-window machine with its live state, in rule order.
    pub fn cost_windows(&self) -> impl Iterator<Item = (&Machine, &Arc<CostLive>)> {
        self.bundle
            .content
            .machines
            .cost_windows
            .iter()
            .zip(&self.live.cost)
    }

    /// The switches the cost windows have in force, in rule order.
    pub fn active_switches(&self) -> impl Iterator<Item = (&str, Switch)> {
        self.live
            .cost
            .iter()
            .filter_map(|c| c.switch().map(|s| (c.machine.as_str(), s)))
    }

    /// Whether the failover machine routes the primary's traffic to the fallbacks.
    pub fn failed_over(&self) -> bool {
        self.live
            .failover
            .as_ref()
            .is_some_and(|f| f.to_fallbacks())
    }

    /// The state of a machine instance, by name.
    pub fn state_of(machine: &Machine, instance: &Mutex<Instance>) -> String {
        machine.state_name(lock(instance).state).to_string()
    }

    pub fn failover_machine(&self) -> Option<&Machine> {
        self.bundle.content.machines.failover.as_ref()
    }

    pub fn primary(&self) -> Option<ProviderIx> {
        self.ix.primary
    }
}

pub use crate::machines::failover::DrillMode;
