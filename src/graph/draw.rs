//! Drawings of the policy graph: Graphviz DOT ([`dot`]) and a Mermaid flowchart
//! ([`mermaid`]), with the same content. Both are laid out from one [`Sketch`]: sections
//! for routing, failover, downgrade and notifications, node and edge labels (rule ids,
//! conditions, prices, weights, timeouts, thresholds), in the graph's fixed order, so
//! the text is stable and fit for snapshots.

use std::fmt::Write as _;

use petgraph::graph::{EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;

use super::{build, dollars, Edge, Node, NodeKind, PolicyGraph};
use crate::policy::service::switch_rules;
use crate::policy::{Metric, Policy};
use crate::syntax::{print, Value};

/// Graphviz DOT: `digraph rulec { … }` with a cluster per section (the downgrade
/// graph is a plain subgraph: its edges join models drawn under routing).
pub fn dot(policy: &Policy) -> String {
    dot_graph(policy, &build(policy))
}

/// [`dot`] of a graph already built from the policy.
pub fn dot_graph(policy: &Policy, graph: &PolicyGraph) -> String {
    let sketch = Sketch::new(policy, graph);
    let mut out = String::new();
    out.push_str("digraph rulec {\n");
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for section in &sketch.sections {
        if section.nodes.is_empty() && section.edges.is_empty() {
            continue;
        }
        out.push('\n');
        if section.cluster {
            let _ = writeln!(out, "  subgraph cluster_{} {{", section.id);
            let _ = writeln!(out, "    label={};", dot_string(section.title));
        } else {
            let _ = writeln!(out, "  subgraph {} {{", section.id);
        }
        if let Some(style) = section.dot_edge_style {
            let _ = writeln!(out, "    edge [{style}];");
        }
        for &n in &section.nodes {
            let _ = writeln!(
                out,
                "    {} [label={}, shape={}];",
                dot_string(&sketch.ids[n.index()]),
                dot_label(&sketch.node_label(n)),
                dot_shape(sketch.graph.graph[n].kind())
            );
        }
        for &e in &section.edges {
            out.push_str("    ");
            out.push_str(&sketch.dot_edge(e));
            out.push('\n');
        }
        out.push_str("  }\n");
    }
    if !sketch.loose.is_empty() {
        out.push_str("\n  // models and the providers that serve them\n");
        for &e in &sketch.loose {
            out.push_str("  ");
            out.push_str(&sketch.dot_edge(e));
            out.push('\n');
        }
    }
    out.push_str("}\n");
    out
}

/// A Mermaid `flowchart LR`: a subgraph per section holding its nodes, then the edges
/// of each section (edges are kept out of the subgraphs, where Mermaid would move
/// their nodes).
pub fn mermaid(policy: &Policy) -> String {
    mermaid_graph(policy, &build(policy))
}

/// [`mermaid`] of a graph already built from the policy.
pub fn mermaid_graph(policy: &Policy, graph: &PolicyGraph) -> String {
    let sketch = Sketch::new(policy, graph);
    let mut out = String::from("flowchart LR\n");
    for section in sketch.sections.iter().filter(|s| !s.nodes.is_empty()) {
        let _ = writeln!(
            out,
            "  subgraph {}[\"{}\"]",
            section.id,
            mermaid_text(section.title)
        );
        for &n in &section.nodes {
            let label = sketch
                .node_label(n)
                .iter()
                .map(|l| mermaid_text(l))
                .collect::<Vec<_>>()
                .join("<br/>");
            let (open, close) = mermaid_shape(sketch.graph.graph[n].kind());
            let _ = writeln!(
                out,
                "    {}{open}\"{label}\"{close}",
                sketch.mermaid_ids[n.index()]
            );
        }
        out.push_str("  end\n");
    }
    for section in &sketch.sections {
        if section.edges.is_empty() {
            continue;
        }
        let _ = writeln!(out, "  %% {}", section.title);
        for &e in &section.edges {
            out.push_str("  ");
            out.push_str(&sketch.mermaid_edge(e));
            out.push('\n');
        }
    }
    if !sketch.loose.is_empty() {
        out.push_str("  %% models and the providers that serve them\n");
        for &e in &sketch.loose {
            out.push_str("  ");
            out.push_str(&sketch.mermaid_edge(e));
            out.push('\n');
        }
    }
    out
}

struct Section {
    id: &'static str,
    title: &'static str,
    cluster: bool,
    dot_edge_style: Option<&'static str>,
    nodes: Vec<NodeIndex>,
    edges: Vec<EdgeIndex>,
}

/// What both drawings show, in order.
struct Sketch<'p> {
    policy: &'p Policy,
    graph: &'p PolicyGraph,
    sections: Vec<Section>,
    /// edges between sections (model → provider)
    loose: Vec<EdgeIndex>,
    /// DOT ids by node index: `kind:name`, rules `rule:N` (1-based)
    ids: Vec<String>,
    /// Mermaid ids by node index: `kindN`, numbered per kind in graph order
    mermaid_ids: Vec<String>,
}

impl<'p> Sketch<'p> {
    fn new(policy: &'p Policy, graph: &'p PolicyGraph) -> Sketch<'p> {
        let g = &graph.graph;
        let section = |id, title, cluster, style| Section {
            id,
            title,
            cluster,
            dot_edge_style: style,
            nodes: Vec::new(),
            edges: Vec::new(),
        };
        let mut sections = vec![
            section("routing", "routing", true, None),
            section("failover", "providers and failover", true, None),
            section(
                "downgrade",
                "cost window: downgrades and fast fallbacks",
                false,
                Some("style=dashed, color=\"#b03a2e\", fontcolor=\"#b03a2e\""),
            ),
            section("notifications", "notifications", true, None),
        ];
        for n in g.node_indices() {
            let s = match g[n].kind() {
                NodeKind::Rule | NodeKind::Pool | NodeKind::Model => 0,
                NodeKind::Provider => 1,
                NodeKind::Event | NodeKind::Channel | NodeKind::Template => 3,
            };
            sections[s].nodes.push(n);
        }
        let mut loose = Vec::new();
        for e in g.edge_references() {
            let s = match e.weight() {
                Edge::Target | Edge::Member { .. } => 0,
                Edge::Failover { .. } => 1,
                Edge::Downgrade { .. } | Edge::FallbackTo { .. } => 2,
                Edge::Notify { .. } | Edge::UsesTemplate { .. } => 3,
                Edge::ServedBy => {
                    loose.push(e.id());
                    continue;
                }
            };
            sections[s].edges.push(e.id());
        }
        let mut counts = std::collections::HashMap::new();
        let mut ids = Vec::new();
        let mut mermaid_ids = Vec::new();
        for n in g.node_indices() {
            let node = &g[n];
            let prefix = kind_name(node.kind());
            ids.push(match node {
                Node::Rule { index, .. } => format!("rule:{}", index + 1),
                other => format!("{prefix}:{}", other.name()),
            });
            let count = counts.entry(prefix).or_insert(0usize);
            *count += 1;
            mermaid_ids.push(format!("{prefix}{count}"));
        }
        Sketch {
            policy,
            graph,
            sections,
            loose,
            ids,
            mermaid_ids,
        }
    }

    /// The lines of a node's label.
    fn node_label(&self, n: NodeIndex) -> Vec<String> {
        match &self.graph.graph[n] {
            Node::Rule {
                index,
                id,
                fallback,
            } => {
                let rule = self
                    .policy
                    .routing
                    .iter()
                    .flat_map(|r| &r.rules)
                    .find(|r| r.index == *index);
                let second = match rule.and_then(|r| r.condition.as_ref()) {
                    // an unnamed fallback's id is already `fallback`
                    _ if *fallback && id == "fallback" => return vec![id.clone()],
                    _ if *fallback => "fallback".to_string(),
                    Some(c) => format!("if {}", print::print(&c.expr)),
                    None => "no condition".to_string(),
                };
                vec![id.clone(), second]
            }
            Node::Model {
                name,
                cost_per_token,
                ..
            } => vec![name.clone(), format!("${cost_per_token}/token")],
            Node::Pool { name } => vec![format!("pool {name}")],
            Node::Provider { name } => {
                let primary = self
                    .policy
                    .failover
                    .as_ref()
                    .is_some_and(|f| f.primary.value == *name);
                if primary {
                    vec![name.clone(), "primary".to_string()]
                } else {
                    vec![name.clone()]
                }
            }
            Node::Event { name } => vec![format!("event {name}")],
            Node::Channel { name } => vec![format!("channel {name}")],
            Node::Template { name } => vec![format!("template {name}")],
        }
    }

    /// An edge's label (empty for none) and whether it is a dimmed edge (a switching
    /// rule that can never fire on its source model).
    fn edge_label(&self, e: EdgeIndex) -> (String, bool) {
        let rule_text = |rule: usize, what: &str| {
            let r = &switch_rules(self.policy)[rule];
            format!(
                "{what} if {} > {}",
                metric_name(r.metric.value),
                match r.threshold.value.written {
                    Value::Money(v) => dollars(v),
                    ref other => print::value_to_string(other),
                }
            )
        };
        match &self.graph.graph[e] {
            Edge::Target | Edge::ServedBy | Edge::Notify { .. } => (String::new(), false),
            Edge::Member { weight } => (
                weight.map(|w| format!("weight {w}")).unwrap_or_default(),
                false,
            ),
            Edge::Failover { weight, timeout_ms } => {
                let timeout = print::duration(crate::syntax::Duration { ms: *timeout_ms });
                let label = match weight {
                    Some(w) => format!("weight {w}, timeout {timeout}"),
                    None => format!("timeout {timeout}"),
                };
                (label, false)
            }
            Edge::Downgrade {
                rule,
                next_cheaper,
                can_trigger,
            } => {
                let what = if *next_cheaper {
                    "next_cheaper"
                } else {
                    "downgrade"
                };
                (never(rule_text(*rule, what), *can_trigger), !can_trigger)
            }
            Edge::FallbackTo { rule, can_trigger } => (
                never(rule_text(*rule, "fallback_fast"), *can_trigger),
                !can_trigger,
            ),
            Edge::UsesTemplate { .. } => ("template".to_string(), false),
        }
    }

    fn dot_edge(&self, e: EdgeIndex) -> String {
        let g = &self.graph.graph;
        let (a, b) = g.edge_endpoints(e).expect("edge of this graph");
        let (label, dim) = self.edge_label(e);
        let mut attrs = Vec::new();
        if !label.is_empty() {
            attrs.push(format!("label={}", dot_string(&label)));
        }
        match &g[e] {
            Edge::ServedBy => attrs.push("style=dotted, arrowhead=empty".to_string()),
            Edge::Failover { .. } => attrs.push("style=bold".to_string()),
            Edge::UsesTemplate { .. } => attrs.push("style=dashed".to_string()),
            _ => {}
        }
        if dim {
            attrs.push("style=dotted, color=gray, fontcolor=gray".to_string());
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        format!(
            "{} -> {}{attrs};",
            dot_string(&self.ids[a.index()]),
            dot_string(&self.ids[b.index()])
        )
    }

    fn mermaid_edge(&self, e: EdgeIndex) -> String {
        let g = &self.graph.graph;
        let (a, b) = g.edge_endpoints(e).expect("edge of this graph");
        let (label, _) = self.edge_label(e);
        let arrow = match &g[e] {
            Edge::Failover { .. } => "==>",
            Edge::ServedBy
            | Edge::Downgrade { .. }
            | Edge::FallbackTo { .. }
            | Edge::UsesTemplate { .. } => "-.->",
            _ => "-->",
        };
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("|\"{}\"|", mermaid_text(&label))
        };
        format!(
            "{} {arrow}{label} {}",
            self.mermaid_ids[a.index()],
            self.mermaid_ids[b.index()]
        )
    }
}

fn never(label: String, can_trigger: bool) -> String {
    if can_trigger {
        label
    } else {
        format!("{label} (never fires)")
    }
}

fn kind_name(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Rule => "rule",
        NodeKind::Model => "model",
        NodeKind::Pool => "pool",
        NodeKind::Provider => "provider",
        NodeKind::Channel => "channel",
        NodeKind::Template => "template",
        NodeKind::Event => "event",
    }
}

fn metric_name(m: Metric) -> &'static str {
    match m {
        Metric::CostPerTask => "cost_per_task",
        Metric::ErrorRate => "error_rate",
        Metric::LatencyP50 => "latency_p50",
        Metric::LatencyP95 => "latency_p95",
        Metric::LatencyP99 => "latency_p99",
    }
}

fn dot_shape(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Rule => "box",
        NodeKind::Pool => "component",
        NodeKind::Model => "ellipse",
        NodeKind::Provider => "box3d",
        NodeKind::Event => "cds",
        NodeKind::Channel => "hexagon",
        NodeKind::Template => "note",
    }
}

fn mermaid_shape(kind: NodeKind) -> (&'static str, &'static str) {
    match kind {
        NodeKind::Rule => ("[", "]"),
        NodeKind::Pool => ("[[", "]]"),
        NodeKind::Model => ("([", "])"),
        NodeKind::Provider => ("[(", ")]"),
        NodeKind::Event => (">", "]"),
        NodeKind::Channel => ("{{", "}}"),
        NodeKind::Template => ("[/", "/]"),
    }
}

/// A DOT double-quoted string: quotes and backslashes escaped, line breaks as `\n`.
fn dot_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A multi-line DOT label: each line escaped, joined by `\n` (centred lines).
fn dot_label(lines: &[String]) -> String {
    let inner: Vec<String> = lines
        .iter()
        .map(|l| {
            let s = dot_string(l);
            s[1..s.len() - 1].to_string()
        })
        .collect();
    format!("\"{}\"", inner.join("\\n"))
}

/// Text inside a quoted Mermaid label: characters Mermaid would read as syntax or
/// markup become entity codes.
fn mermaid_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("#quot;"),
            '#' => out.push_str("#35;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '|' => out.push_str("#124;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(dot_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(
            dot_label(&["x\"".to_string(), "y".to_string()]),
            "\"x\\\"\\ny\""
        );
        assert_eq!(
            mermaid_text("#9 \"a\" <b> | c"),
            "#35;9 #quot;a#quot; #lt;b#gt; #124; c"
        );
    }
}
