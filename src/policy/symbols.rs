//! The policy's symbol table: every declared model, provider and pool by name, built
//! once per policy (by [`crate::check::Analysis`]) and read by the checks, the graphs,
//! the analyses and the bundle. Models and pools share one namespace because
//! `fallback:` may name either.

use std::collections::BTreeMap;

use super::{Model, Policy, Pool, Provider, Target};

/// Declared names. A name declared twice maps to its last definition (merging reports
/// the duplicate).
pub struct Symbols<'p> {
    pub models: BTreeMap<&'p str, &'p Model>,
    pub providers: BTreeMap<&'p str, &'p Provider>,
    pub pools: BTreeMap<&'p str, &'p Pool>,
}

impl<'p> Symbols<'p> {
    pub fn new(policy: &'p Policy) -> Symbols<'p> {
        Symbols {
            models: policy
                .models
                .iter()
                .map(|m| (m.name.value.as_str(), m))
                .collect(),
            providers: policy
                .providers
                .iter()
                .map(|p| (p.name.value.as_str(), p))
                .collect(),
            pools: policy
                .balancing
                .iter()
                .flat_map(|b| &b.pools)
                .map(|p| (p.name.value.as_str(), p))
                .collect(),
        }
    }

    /// The models a target sends traffic to (a pool's members that exist).
    pub fn target_models(&self, target: &Target) -> Vec<&'p Model> {
        let name = target.name().value.as_str();
        let as_pool = |name: &str| {
            self.pools.get(name).map(|p| {
                p.models
                    .iter()
                    .filter_map(|m| self.models.get(m.value.as_str()).copied())
                    .collect::<Vec<_>>()
            })
        };
        match target {
            Target::Model(_) => self.models.get(name).map(|m| vec![*m]).unwrap_or_default(),
            Target::Pool(_) => as_pool(name).unwrap_or_default(),
            Target::Either(_) => match self.models.get(name) {
                Some(m) => vec![*m],
                None => as_pool(name).unwrap_or_default(),
            },
        }
    }
}
