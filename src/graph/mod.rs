//! The graphs of a policy: what routes to what (rules, pools, models, providers), the
//! failover chain, the downgrade graph of the cost window, and notification routing
//! (events, channels, templates), as one typed petgraph [`DiGraph`]. [`build`] makes
//! it, [`check`] reports dead configuration and downgrades that go nowhere or up in
//! price (W071–W076, W082, W083), [`dot`] and [`mermaid`] draw it.
//!
//! Only declared, resolvable names become nodes: a reference to something undefined is
//! `E020` (in `check::names`) and simply has no edge here.

mod checks;
mod draw;

use std::collections::HashMap;

use petgraph::graph::{DiGraph, NodeIndex};

use crate::check::Analysis;
use crate::policy::service::{can_breach, downgrade_moves, switch_rules};
use crate::policy::{DowngradeTo, Policy, Target};

pub use checks::{check, check_analysed};
pub use draw::{dot, dot_graph, mermaid, mermaid_graph};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKind {
    Rule,
    Model,
    Pool,
    Provider,
    Channel,
    Template,
    Event,
}

/// A node of the policy graph; names are the policy's own.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// a routing rule; `id` is [`crate::policy::RouteRule::id`]
    Rule {
        index: usize,
        id: String,
        fallback: bool,
    },
    Model {
        name: String,
        cost_per_token: f64,
        /// rule-reachable, or the target of a downgrade or `fallback_to`
        in_service: bool,
    },
    Pool {
        name: String,
    },
    Provider {
        name: String,
    },
    Channel {
        name: String,
    },
    Template {
        name: String,
    },
    /// an event type routed by a notification rule or declared under `events:`
    Event {
        name: String,
    },
}

impl Node {
    pub fn kind(&self) -> NodeKind {
        match self {
            Node::Rule { .. } => NodeKind::Rule,
            Node::Model { .. } => NodeKind::Model,
            Node::Pool { .. } => NodeKind::Pool,
            Node::Provider { .. } => NodeKind::Provider,
            Node::Channel { .. } => NodeKind::Channel,
            Node::Template { .. } => NodeKind::Template,
            Node::Event { .. } => NodeKind::Event,
        }
    }

    /// The node's name (a rule's id).
    pub fn name(&self) -> &str {
        match self {
            Node::Rule { id, .. } => id,
            Node::Model { name, .. }
            | Node::Pool { name }
            | Node::Provider { name }
            | Node::Channel { name }
            | Node::Template { name }
            | Node::Event { name } => name,
        }
    }
}

/// An edge of the policy graph.
#[derive(Debug, Clone, PartialEq)]
pub enum Edge {
    /// rule → the model or pool it sends requests to
    Target,
    /// pool → member model, with the member's weight when the weights match the members
    Member { weight: Option<f64> },
    /// model → the provider that serves it
    ServedBy,
    /// failover: primary provider → a fallback provider (edges in fallback order)
    Failover {
        weight: Option<f64>,
        timeout_ms: u64,
    },
    /// the cost window moves traffic from a model to a cheaper one (`downgrade_to`);
    /// `rule` is the index of the switching rule
    Downgrade {
        rule: usize,
        next_cheaper: bool,
        /// false when the rule's metric can never breach on the source model (a
        /// cost-per-task threshold above what a task at its `max_tokens` costs)
        can_trigger: bool,
    },
    /// `fallback_fast`: a model → the fast model named by `fallback_to`
    FallbackTo { rule: usize, can_trigger: bool },
    /// notification route `route` delivers events of this type to a channel
    Notify { route: usize },
    /// notification route `route` formats its events with a template
    UsesTemplate { route: usize },
}

/// The policy's graph, with lookups by name.
#[derive(Debug, Clone, Default)]
pub struct PolicyGraph {
    pub graph: DiGraph<Node, Edge>,
    /// rule nodes, by rule position
    pub rules: Vec<NodeIndex>,
    index: HashMap<(NodeKind, String), NodeIndex>,
}

impl PolicyGraph {
    /// The node of a named thing (not rules: see [`PolicyGraph::rules`]).
    pub fn node(&self, kind: NodeKind, name: &str) -> Option<NodeIndex> {
        self.index.get(&(kind, name.to_string())).copied()
    }

    fn add(&mut self, node: Node) -> NodeIndex {
        let key = (node.kind(), node.name().to_string());
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.graph.add_node(node);
        self.index.insert(key, i);
        i
    }

    fn edge(&mut self, from: Option<NodeIndex>, to: Option<NodeIndex>, edge: Edge) {
        if let (Some(a), Some(b)) = (from, to) {
            if a != b {
                self.graph.add_edge(a, b, edge);
            }
        }
    }
}

/// `$0.10`, `$0.192`, `$1.92`: dollars with at least two decimals and at most four;
/// amounts below a cent keep all their digits (`$0.00004`).
pub(crate) fn dollars(amount: f64) -> String {
    if amount != 0.0 && amount.abs() < 0.01 {
        return format!("${amount}");
    }
    let mut s = format!("{amount:.4}");
    while s.ends_with('0') && s.len() - s.find('.').unwrap_or(0) > 3 {
        s.pop();
    }
    format!("${s}")
}

/// The graph of a policy. Nodes come in a fixed order (rules in rule order, then
/// pools, models, providers, events, channels and templates in declaration order), and
/// so do edges, so drawings are stable.
pub fn build(policy: &Policy) -> PolicyGraph {
    build_analysed(&Analysis::new(policy))
}

/// [`build`] on a policy already analysed.
pub fn build_analysed(analysis: &Analysis<'_>) -> PolicyGraph {
    let (policy, serving) = (analysis.policy, &analysis.service.models);
    let mut g = PolicyGraph::default();

    let rules: Vec<_> = policy.routing.iter().flat_map(|r| &r.rules).collect();
    for rule in &rules {
        let i = g.graph.add_node(Node::Rule {
            index: rule.index,
            id: rule.id(),
            fallback: rule.is_fallback,
        });
        g.rules.push(i);
    }
    let pools: Vec<_> = policy.balancing.iter().flat_map(|b| &b.pools).collect();
    for pool in &pools {
        g.add(Node::Pool {
            name: pool.name.value.clone(),
        });
    }
    for m in &policy.models {
        g.add(Node::Model {
            name: m.name.value.clone(),
            cost_per_token: m.cost_per_token.value,
            in_service: serving.contains(m.name.value.as_str()),
        });
    }
    for p in &policy.providers {
        g.add(Node::Provider {
            name: p.name.value.clone(),
        });
    }
    let routes: Vec<_> = policy.notifications.iter().flat_map(|n| &n.value).collect();
    let events = routes
        .iter()
        .map(|r| &r.event)
        .chain(policy.events.iter().map(|e| &e.name));
    for e in events {
        g.add(Node::Event {
            name: e.value.clone(),
        });
    }
    for c in &policy.channels {
        g.add(Node::Channel {
            name: c.name.value.clone(),
        });
    }
    for t in &policy.templates {
        g.add(Node::Template {
            name: t.name.value.clone(),
        });
    }

    // routing: rule → target, pool → members, model → provider
    for (rule, &node) in rules.iter().zip(&g.rules.clone()) {
        let Some(target) = &rule.target else { continue };
        let name = target.name().value.as_str();
        let to = match target {
            Target::Model(_) => g.node(NodeKind::Model, name),
            Target::Pool(_) => g.node(NodeKind::Pool, name),
            Target::Either(_) => g
                .node(NodeKind::Model, name)
                .or_else(|| g.node(NodeKind::Pool, name)),
        };
        g.edge(Some(node), to, Edge::Target);
    }
    for pool in &pools {
        let from = g.node(NodeKind::Pool, &pool.name.value);
        let weights = pool
            .weights
            .as_ref()
            .filter(|w| w.value.len() == pool.models.len());
        for (i, member) in pool.models.iter().enumerate() {
            let to = g.node(NodeKind::Model, &member.value);
            let weight = weights.map(|w| w.value[i].value);
            g.edge(from, to, Edge::Member { weight });
        }
    }
    for m in &policy.models {
        let from = g.node(NodeKind::Model, &m.name.value);
        let to = g.node(NodeKind::Provider, &m.provider.value);
        g.edge(from, to, Edge::ServedBy);
    }

    // failover: primary → each fallback
    if let Some(f) = &policy.failover {
        let primary = g.node(NodeKind::Provider, &f.primary.value);
        for t in &f.fallbacks {
            let to = g.node(NodeKind::Provider, &t.provider.value);
            let edge = Edge::Failover {
                weight: t.weight.as_ref().map(|w| w.value),
                timeout_ms: t.timeout.value.ms,
            };
            g.edge(primary, to, edge);
        }
    }

    // the cost window: downgrades and fast fallbacks
    let ladder = &analysis.service.ladder;
    for (ri, rule) in switch_rules(policy).iter().enumerate() {
        if let Some(to) = rule.downgrade_to.as_ref().map(|d| &d.value) {
            for (from, target) in downgrade_moves(to, ladder) {
                let edge = Edge::Downgrade {
                    rule: ri,
                    next_cheaper: matches!(to, DowngradeTo::NextCheaper),
                    can_trigger: can_breach(rule, from),
                };
                let a = g.node(NodeKind::Model, &from.name.value);
                let b = g.node(NodeKind::Model, target);
                g.edge(a, b, edge);
            }
        }
        if let Some(target) = &rule.fallback_to {
            let to = g.node(NodeKind::Model, &target.value);
            for from in ladder.iter().rev() {
                let edge = Edge::FallbackTo {
                    rule: ri,
                    can_trigger: can_breach(rule, from),
                };
                let a = g.node(NodeKind::Model, &from.name.value);
                g.edge(a, to, edge);
            }
        }
    }

    // notifications: event type → channels, and → its template
    for (ri, route) in routes.iter().enumerate() {
        let from = g.node(NodeKind::Event, &route.event.value);
        for ch in &route.channels {
            let to = g.node(NodeKind::Channel, &ch.value);
            g.edge(from, to, Edge::Notify { route: ri });
        }
        if let Some(t) = &route.template {
            let to = g.node(NodeKind::Template, &t.value);
            g.edge(from, to, Edge::UsesTemplate { route: ri });
        }
    }
    g
}
