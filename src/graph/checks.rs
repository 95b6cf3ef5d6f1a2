//! Checks on the policy graph: dead configuration (unused models W071, pools W072,
//! providers W073, channels W082, templates W083), downgrades with nowhere to go (W074)
//! or that do not lower the price, cycles included (W075), and failover providers with
//! no models (W076).
//!
//! The checks are exact on a policy without errors. Where a definition could not be
//! decoded its edges are unknown, so the checks that depend on it stay silent rather
//! than report things as unused that may well be used.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use petgraph::algo::tarjan_scc;
use petgraph::graph::NodeIndex;
use petgraph::visit::{EdgeFiltered, IntoNeighbors};
use petgraph::Direction;

use super::{build_analysed, dollars, Edge, NodeKind, PolicyGraph};
use crate::check::Analysis;
use crate::diag::suggest::closest;
use crate::diag::{self, Code, Diagnostic};
use crate::policy::service::{can_breach, max_task_cost, switch_rules};
use crate::policy::{DowngradeTo, Metric, Model, Name, Policy, Symbols, Target};
use crate::source::Span;

/// Every graph finding of a policy, sorted.
pub fn check(policy: &Policy) -> Vec<Diagnostic> {
    let analysis = Analysis::new(policy);
    check_analysed(&analysis, &build_analysed(&analysis))
}

/// [`check`] on a policy already analysed, with its graph.
pub fn check_analysed(analysis: &Analysis<'_>, graph: &PolicyGraph) -> Vec<Diagnostic> {
    let cx = Cx::new(analysis, graph);
    let mut diags = Vec::new();
    if cx.rules_complete && cx.models_complete && cx.pools_complete {
        unused_models(&cx, &mut diags);
        cheapest_downgrade(&cx, &mut diags);
        downgrade_cycles(&cx, &mut diags);
    }
    if cx.rules_complete {
        unused_pools(&cx, &mut diags);
    }
    if cx.models_complete {
        unused_providers(&cx, &mut diags);
        failover_dead_ends(&cx, &mut diags);
    }
    unused_channels(&cx, &mut diags);
    unused_templates(&cx, &mut diags);
    diag::normalize(diags)
}

struct Cx<'a, 'p> {
    policy: &'p Policy,
    syms: &'a Symbols<'p>,
    graph: &'a PolicyGraph,
    serving: &'a BTreeSet<&'p str>,
    /// the models in service, cheapest first
    ladder: &'a [&'p Model],
    /// every routing rule decoded, with its target
    rules_complete: bool,
    /// every declared model decoded (so its provider is known)
    models_complete: bool,
    /// every declared pool decoded (so its members are known)
    pools_complete: bool,
}

impl<'a, 'p> Cx<'a, 'p> {
    fn new(analysis: &'a Analysis<'p>, graph: &'a PolicyGraph) -> Cx<'a, 'p> {
        let (policy, syms) = (analysis.policy, &analysis.symbols);
        let rules: Vec<_> = policy.routing.iter().flat_map(|r| &r.rules).collect();
        let rules_complete = rules
            .iter()
            .enumerate()
            .all(|(i, r)| r.index == i && r.target.is_some());
        let models_complete = policy
            .declared
            .models
            .iter()
            .all(|m| syms.models.contains_key(m.as_str()));
        let pools_complete = policy
            .declared
            .pools
            .iter()
            .all(|p| syms.pools.contains_key(p.as_str()));
        Cx {
            policy,
            syms,
            graph,
            serving: &analysis.service.models,
            ladder: &analysis.service.ladder,
            rules_complete,
            models_complete,
            pools_complete,
        }
    }

    fn has_incoming(&self, kind: NodeKind, name: &str, edge: fn(&Edge) -> bool) -> bool {
        self.graph.node(kind, name).is_some_and(|n| {
            self.graph
                .graph
                .edges_directed(n, Direction::Incoming)
                .any(|e| edge(e.weight()))
        })
    }
}

fn per_token(model: &Model) -> String {
    format!("${} per token", model.cost_per_token.value)
}

/// For each declared name, the references to undefined names that are most likely
/// misspellings of it. Computed once per kind of name: one pass over the references.
fn misspellings<'a>(
    declared: &'a [String],
    refs: impl IntoIterator<Item = &'a Name>,
) -> HashMap<&'a str, Vec<&'a Name>> {
    let known: HashSet<&str> = declared.iter().map(String::as_str).collect();
    let mut out: HashMap<&str, Vec<&Name>> = HashMap::new();
    for r in refs {
        if known.contains(r.value.as_str()) {
            continue;
        }
        if let Some(c) = closest(&r.value, declared.iter().map(String::as_str)) {
            out.entry(c).or_default().push(r);
        }
    }
    out
}

/// Labels on the undefined references that were probably meant to name `name`:
/// the one place a dead definition was probably meant to be used.
fn misspelt(mut d: Diagnostic, name: &str, guesses: &HashMap<&str, Vec<&Name>>) -> Diagnostic {
    for r in guesses.get(name).into_iter().flatten() {
        d = d.label(
            r.span,
            format!("`{}` is undefined: was `{name}` meant here?", r.value),
        );
    }
    d
}

/// Names written where a model is expected.
fn model_refs(policy: &Policy) -> Vec<&Name> {
    let mut out = Vec::new();
    for rule in policy.routing.iter().flat_map(|r| &r.rules) {
        if let Some(Target::Model(n) | Target::Either(n)) = &rule.target {
            out.push(n);
        }
    }
    for pool in policy.balancing.iter().flat_map(|b| &b.pools) {
        out.extend(&pool.models);
    }
    for rule in switch_rules(policy) {
        if let Some(DowngradeTo::Model(n)) = rule.downgrade_to.as_ref().map(|d| &d.value) {
            out.push(n);
        }
        out.extend(&rule.fallback_to);
    }
    out
}

/// W071: models that no traffic can reach.
fn unused_models(cx: &Cx<'_, '_>, diags: &mut Vec<Diagnostic>) {
    let policy = cx.policy;
    let refs = model_refs(policy);
    let guesses = misspellings(&policy.declared.models, refs.iter().copied());
    // the server stands a fallback provider's model in for the primary's models
    let stand_in = |model: &Model| {
        policy.failover.as_ref().is_some_and(|f| {
            f.fallbacks
                .iter()
                .any(|t| t.provider.value == model.provider.value)
                && policy.models.iter().any(|m| {
                    m.provider.value == f.primary.value
                        && cx.serving.contains(m.name.value.as_str())
                })
        })
    };
    for model in &policy.models {
        let name = model.name.value.as_str();
        if cx.serving.contains(name) || stand_in(model) {
            continue;
        }
        let mut d = Diagnostic::new(
            Code::UnusedModel,
            model.name.span,
            format!("model `{name}` is never used"),
        )
        .primary_label("no rule, pool in use, downgrade or `fallback_to` leads here");
        let mut pools = Vec::new();
        for pool in cx.syms.pools.values() {
            for member in pool.models.iter().filter(|m| m.value == name) {
                d = d.label(
                    member.span,
                    format!(
                        "listed in pool `{}`, which no rule routes to",
                        pool.name.value
                    ),
                );
                pools.push(pool.name.value.as_str());
            }
        }
        d = misspelt(d, name, &guesses);
        let help = match pools.first() {
            Some(pool) => format!(
                "route requests to pool `{pool}` (`pool: {pool}`) or to the model (`model: {name}`), or delete it"
            ),
            None => format!("route requests to it with `model: {name}` in a routing rule, or delete it"),
        };
        diags.push(d.help(help));
    }
}

/// W072: pools that no rule routes to.
fn unused_pools(cx: &Cx<'_, '_>, diags: &mut Vec<Diagnostic>) {
    let policy = cx.policy;
    let refs: Vec<&Name> = policy
        .routing
        .iter()
        .flat_map(|r| &r.rules)
        .filter_map(|r| match &r.target {
            Some(Target::Pool(n) | Target::Either(n)) => Some(n),
            _ => None,
        })
        .collect();
    let guesses = misspellings(&policy.declared.pools, refs.iter().copied());
    for pool in policy.balancing.iter().flat_map(|b| &b.pools) {
        let name = pool.name.value.as_str();
        // a model of the same name is E011; `fallback:` resolves to the model there
        if cx.syms.models.contains_key(name)
            || cx.has_incoming(NodeKind::Pool, name, |e| matches!(e, Edge::Target))
        {
            continue;
        }
        let mut d = Diagnostic::new(
            Code::UnusedPool,
            pool.name.span,
            format!("pool `{name}` is never used"),
        )
        .primary_label("no routing rule sends requests to this pool");
        if let Some(routing) = &policy.routing {
            d = d.label(routing.span, format!("no rule here has `pool: {name}`"));
        }
        d = misspelt(d, name, &guesses);
        diags.push(d.help(format!(
            "send requests to it with `pool: {name}` in a routing rule, or delete it"
        )));
    }
}

/// W073: providers that serve no model and take no part in failover.
fn unused_providers(cx: &Cx<'_, '_>, diags: &mut Vec<Diagnostic>) {
    let policy = cx.policy;
    let mut refs: Vec<&Name> = policy.models.iter().map(|m| &m.provider).collect();
    if let Some(f) = &policy.failover {
        refs.push(&f.primary);
        refs.extend(f.fallbacks.iter().map(|t| &t.provider));
    }
    let guesses = misspellings(&policy.declared.providers, refs.iter().copied());
    for provider in &policy.providers {
        let name = provider.name.value.as_str();
        let used = cx.has_incoming(NodeKind::Provider, name, |e| {
            matches!(e, Edge::ServedBy | Edge::Failover { .. })
        }) || policy
            .failover
            .as_ref()
            .is_some_and(|f| f.primary.value == name);
        if used {
            continue;
        }
        let d = Diagnostic::new(
            Code::UnusedProvider,
            provider.name.span,
            format!("provider `{name}` is never used"),
        )
        .primary_label("it serves no model and is not in the failover chain");
        let d = misspelt(d, name, &guesses);
        diags.push(d.help(format!(
            "set `provider: {name}` on a model, add it to `failover`, or delete it"
        )));
    }
}

/// W074: `next_cheaper` triggered on the cheapest model in service.
fn cheapest_downgrade(cx: &Cx<'_, '_>, diags: &mut Vec<Diagnostic>) {
    let ladder = cx.ladder;
    let Some(cheapest) = ladder.first() else {
        return;
    };
    let name = &cheapest.name.value;
    for rule in switch_rules(cx.policy) {
        let Some(to) = &rule.downgrade_to else {
            continue;
        };
        if to.value != DowngradeTo::NextCheaper || !can_breach(rule, cheapest) {
            continue;
        }
        let standing = if ladder.len() == 1 {
            format!("`{name}` is the only model in use")
        } else {
            format!(
                "`{name}` is the cheapest of the {} models in use, at {}",
                ladder.len(),
                per_token(cheapest)
            )
        };
        let mut d = Diagnostic::new(
            Code::CheapestDowngrade,
            to.span,
            format!("`next_cheaper` has nowhere to go from `{name}`"),
        )
        .primary_label("no cheaper model to move to")
        .label(cheapest.cost_per_token.span, standing);
        let help = if rule.metric.value == Metric::CostPerTask {
            let most = max_task_cost(cheapest);
            d = d.label(
                rule.threshold.span,
                format!(
                    "a task of {} tokens (`max_tokens`) on `{name}` costs {}, above this threshold",
                    cheapest.max_tokens.value,
                    dollars(most)
                ),
            );
            format!(
                "add a cheaper model, or raise the threshold above {} so that `{name}` never breaches it",
                dollars(most)
            )
        } else {
            "add a cheaper model for the downgrade to reach, or handle this metric with `switch_provider`".to_string()
        };
        diags.push(d.help(help));
    }
}

/// W075: explicit downgrade targets that are not cheaper than what they replace, and
/// cycles in the downgrade graph (edges that can fire only).
fn downgrade_cycles(cx: &Cx<'_, '_>, diags: &mut Vec<Diagnostic>) {
    let g = &cx.graph.graph;
    let live = EdgeFiltered::from_fn(g, |e| {
        matches!(
            e.weight(),
            Edge::Downgrade {
                can_trigger: true,
                ..
            }
        )
    });
    let mut scc_of: HashMap<NodeIndex, usize> = HashMap::new();
    let sccs = tarjan_scc(&live);
    for (i, scc) in sccs.iter().enumerate() {
        if scc.len() > 1 {
            scc_of.extend(scc.iter().map(|&n| (n, i)));
        }
    }
    let ladder = cx.ladder;
    for rule in switch_rules(cx.policy) {
        let Some(DowngradeTo::Model(target)) = rule.downgrade_to.as_ref().map(|d| &d.value) else {
            continue;
        };
        let Some(&t) = cx.syms.models.get(target.value.as_str()) else {
            continue;
        };
        let offenders: Vec<&Model> = ladder
            .iter()
            .rev()
            .copied()
            .filter(|r| r.name.value != t.name.value)
            .filter(|r| can_breach(rule, r))
            .filter(|r| r.cost_per_token.value <= t.cost_per_token.value)
            .collect();
        let cycle = cx
            .graph
            .node(NodeKind::Model, &t.name.value)
            .filter(|n| scc_of.contains_key(n))
            .and_then(|n| cycle_through(&live, n, &scc_of))
            .map(|path| {
                path.iter()
                    .map(|&n| format!("`{}`", g[n].name()))
                    .collect::<Vec<_>>()
                    .join(" → ")
            });
        if offenders.is_empty() && cycle.is_none() {
            continue;
        }
        let tname = &t.name.value;
        let message = match (&cycle, offenders.as_slice()) {
            (Some(path), _) => format!("downgrades go round in a cycle: {path}"),
            (None, [one]) => format!(
                "downgrading `{}` to `{tname}` does not lower its cost per token",
                one.name.value
            ),
            (None, many) => format!(
                "downgrading to `{tname}` does not lower the cost per token of {} models",
                many.len()
            ),
        };
        let mut d = Diagnostic::new(Code::DowngradeCycle, target.span, message)
            .primary_label(format!("`{tname}` costs {}", per_token(t)));
        for r in &offenders {
            let how = if r.cost_per_token.value < t.cost_per_token.value {
                "cheaper than"
            } else {
                "as expensive as"
            };
            d = d.label(
                r.cost_per_token.span,
                format!("`{}` costs {}, {how} `{tname}`", r.name.value, per_token(r)),
            );
        }
        let help = match ladder.first() {
            Some(c) if c.name.value != *tname => format!(
                "downgrade to `{}`, the cheapest model in use, or use `next_cheaper`",
                c.name.value
            ),
            _ => "use `downgrade_to: next_cheaper`, which always moves to a cheaper model"
                .to_string(),
        };
        diags.push(d.help(help));
    }
}

/// A shortest cycle from `start` back to itself inside its strongly connected component.
fn cycle_through<G>(
    g: G,
    start: NodeIndex,
    scc_of: &HashMap<NodeIndex, usize>,
) -> Option<Vec<NodeIndex>>
where
    G: IntoNeighbors<NodeId = NodeIndex>,
{
    let comp = scc_of.get(&start)?;
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(n) = queue.pop_front() {
        let mut next: Vec<NodeIndex> = g
            .neighbors(n)
            .filter(|m| scc_of.get(m) == Some(comp))
            .collect();
        next.sort();
        for m in next {
            if m == start {
                // start → … → n, then back to start
                let mut path = vec![n];
                let mut at = n;
                while at != start {
                    at = parent[&at];
                    path.push(at);
                }
                path.reverse();
                path.push(start);
                return Some(path);
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(m) {
                e.insert(n);
                queue.push_back(m);
            }
        }
    }
    None
}

/// W076: failover providers that have no model to run on.
fn failover_dead_ends(cx: &Cx<'_, '_>, diags: &mut Vec<Diagnostic>) {
    let Some(f) = &cx.policy.failover else { return };
    let serves = |p: &str| cx.policy.models.iter().any(|m| m.provider.value == p);
    let refs =
        std::iter::once((&f.primary, true)).chain(f.fallbacks.iter().map(|t| (&t.provider, false)));
    for (name, primary) in refs {
        let Some(provider) = cx.syms.providers.get(name.value.as_str()) else {
            continue;
        };
        let p = name.value.as_str();
        if serves(p) {
            continue;
        }
        let (message, help) = if primary {
            (
                format!("the primary provider `{p}` has no models"),
                format!("declare a model with `provider: {p}` under `gateway.models`, or make a provider that serves models the primary"),
            )
        } else {
            (
                format!("failover to `{p}` is a dead end: it has no models"),
                format!("declare a model with `provider: {p}` under `gateway.models`, or remove `{p}` from the fallbacks"),
            )
        };
        diags.push(
            Diagnostic::new(Code::FailoverDeadEnd, name.span, message)
                .primary_label("traffic failed over here has nothing to run on")
                .label(
                    provider.name.span,
                    "declared here, but no model names this provider",
                )
                .help(help),
        );
    }
}

/// Names of a kind written in the notification routes.
fn route_refs(policy: &Policy, channels: bool) -> Vec<&Name> {
    let routes = policy.notifications.iter().flat_map(|n| &n.value);
    if channels {
        routes.flat_map(|r| &r.channels).collect()
    } else {
        routes.filter_map(|r| r.template.as_ref()).collect()
    }
}

fn routes_span(policy: &Policy) -> Option<Span> {
    policy.notifications.as_ref().map(|n| n.span)
}

/// W082: channels that no notification route uses.
fn unused_channels(cx: &Cx<'_, '_>, diags: &mut Vec<Diagnostic>) {
    let policy = cx.policy;
    let refs = route_refs(policy, true);
    let guesses = misspellings(&policy.declared.channels, refs.iter().copied());
    for channel in &policy.channels {
        let name = channel.name.value.as_str();
        if cx.has_incoming(NodeKind::Channel, name, |e| {
            matches!(e, Edge::Notify { .. })
        }) {
            continue;
        }
        let mut d = Diagnostic::new(
            Code::UnusedChannel,
            channel.name.span,
            format!("channel `{name}` is never used"),
        )
        .primary_label("no notification route sends anything here");
        if let Some(span) = routes_span(policy) {
            d = d.label(
                span,
                format!("no route here lists `{name}` in its `channels`"),
            );
        }
        let d = misspelt(d, name, &guesses);
        diags.push(d.help(format!(
            "add `{name}` to the `channels` of a `routing_rules` entry, or delete it"
        )));
    }
}

/// W083: templates that no notification route uses.
fn unused_templates(cx: &Cx<'_, '_>, diags: &mut Vec<Diagnostic>) {
    let policy = cx.policy;
    let refs = route_refs(policy, false);
    let guesses = misspellings(&policy.declared.templates, refs.iter().copied());
    for template in &policy.templates {
        let name = template.name.value.as_str();
        if cx.has_incoming(NodeKind::Template, name, |e| {
            matches!(e, Edge::UsesTemplate { .. })
        }) {
            continue;
        }
        let mut d = Diagnostic::new(
            Code::UnusedTemplate,
            template.name.span,
            format!("template `{name}` is never used"),
        )
        .primary_label("no notification route formats its messages with it");
        if let Some(span) = routes_span(policy) {
            d = d.label(
                span,
                format!("no route here has `content_template: {name}`"),
            );
        }
        let d = misspelt(d, name, &guesses);
        diags.push(d.help(format!(
            "set `content_template: {name}` on a `routing_rules` entry, or delete it"
        )));
    }
}
