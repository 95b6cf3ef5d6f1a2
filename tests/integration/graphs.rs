//! The policy graphs (`rulec::graph`): what `build` connects, the dead-configuration and
//! downgrade checks (W071–W076, W082, W083) on small policies, the fixtures of those
//! codes, and snapshots of the DOT and Mermaid drawings of `rules/examples/gateway`.

use std::path::Path;

use rulec::diag::{Code, Diagnostic};
use rulec::driver::{self, Options};
use rulec::graph::{self, Edge, Node, NodeKind};
use rulec::policy::Policy;

const GRAPH_CODES: [Code; 8] = [
    Code::UnusedModel,
    Code::UnusedPool,
    Code::UnusedProvider,
    Code::CheapestDowngrade,
    Code::DowngradeCycle,
    Code::FailoverDeadEnd,
    Code::UnusedChannel,
    Code::UnusedTemplate,
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn policy(text: &str) -> Policy {
    driver::check_text("test.yaml", text.as_bytes()).policy
}

/// The graph findings of a policy, as (code, message).
fn found(text: &str) -> Vec<(Code, String)> {
    graph::check(&policy(text))
        .into_iter()
        .map(|d| (d.code, d.message))
        .collect()
}

fn codes(text: &str) -> Vec<Code> {
    found(text).into_iter().map(|(c, _)| c).collect()
}

fn gateway() -> driver::Checked {
    let files = rulec::load::policy_paths(&[root().join("rules/examples/gateway")])
        .expect("the gateway example exists");
    let (sources, diags) = rulec::load::read_files(&files).expect("the files read");
    driver::check_sources(sources, diags, Options::default())
}

/// The text under a span of a one-file policy.
fn at(text: &str, span: rulec::source::Span) -> &str {
    &text[span.range()]
}

const PROVIDERS: &str = r#"
providers:
  anthropic:
    kind: anthropic
    base_url: "https://api.anthropic.com"
    api_key_env: ANTHROPIC_API_KEY
  openai:
    kind: openai
    base_url: "https://api.openai.com/v1"
    api_key_env: OPENAI_API_KEY
"#;

/// A model entry (under `gateway.models`).
fn model(name: &str, provider: &str, cost: &str, max_tokens: u32) -> String {
    format!(
        "    {name}:\n      provider: \"{provider}\"\n      model: \"{name}-id\"\n      max_tokens: {max_tokens}\n      cost_per_token: {cost}\n      capabilities: [\"general_purpose\", \"analysis\", \"code_generation\", \"content_writing\", \"summarization\", \"simple_qa\", \"classification\", \"extraction\"]\n"
    )
}

/// Three anthropic models (opus, sonnet, haiku; $1.92, $0.19 and $0.16 per full task)
/// and `gpt` on openai ($1.28), routed by `rules`.
fn models_with(rules: &str, rest: &str) -> String {
    format!(
        "{PROVIDERS}gateway:\n  models:\n{}{}{}{}  routing_strategy:\n    rules:\n{rules}{rest}",
        model("opus", "anthropic", "0.000015", 128000),
        model("sonnet", "anthropic", "0.000003", 64000),
        model("haiku", "anthropic", "0.0000008", 200000),
        model("gpt", "openai", "0.00001", 128000),
    )
}

const ALL_ROUTED: &str = r#"      - name: complex
        if: task_complexity == "complex"
        model: "opus"
      - name: code
        if: task_type == "code_generation"
        model: "gpt"
      - name: simple
        if: task_complexity == "simple"
        model: "haiku"
      - fallback: "sonnet"
"#;

fn switching(rules: &str) -> String {
    format!(
        "cost_aware:\n  enabled: true\n  dynamic_switching:\n    strategy: \"cost_window\"\n    window_minutes: 5\n    check_interval: 30s\n    rules:\n{rules}"
    )
}

// ---------------------------------------------------------------- the example

#[test]
fn gateway_example_has_no_graph_findings() {
    let checked = gateway();
    let graph = graph::check(&checked.policy);
    assert!(graph.is_empty(), "graph findings: {graph:#?}");
    let all: Vec<&Diagnostic> = checked.diagnostics.iter().collect();
    assert!(all.is_empty(), "the example should check clean: {all:#?}");
}

#[test]
fn gateway_graph_has_every_edge_kind() {
    let checked = gateway();
    let g = graph::build(&checked.policy);
    let gr = &g.graph;
    assert_eq!(g.rules.len(), 11);
    let node = |k, n| g.node(k, n).unwrap_or_else(|| panic!("{n} is a node"));
    let edge = |a, b| {
        gr.find_edge(a, b)
            .map(|e| gr[e].clone())
            .unwrap_or_else(|| panic!("edge {:?} → {:?}", gr[a], gr[b]))
    };
    // rule `code` → pool, pool → members with weights, model → provider
    let code = g.rules[3];
    assert!(matches!(&gr[code], Node::Rule { id, fallback: false, .. } if id == "code"));
    let hp = node(NodeKind::Pool, "high_performance");
    assert_eq!(edge(code, hp), Edge::Target);
    let opus = node(NodeKind::Model, "claude_opus");
    let gpt = node(NodeKind::Model, "gpt_55");
    assert_eq!(edge(hp, opus), Edge::Member { weight: Some(60.0) });
    assert_eq!(edge(hp, gpt), Edge::Member { weight: Some(40.0) });
    let anthropic = node(NodeKind::Provider, "anthropic");
    assert_eq!(edge(opus, anthropic), Edge::ServedBy);
    // the fallback rule's `fallback:` names a model
    let fallback = g.rules[10];
    assert!(matches!(&gr[fallback], Node::Rule { id, fallback: true, .. } if id == "fallback"));
    assert_eq!(
        edge(fallback, node(NodeKind::Model, "claude_sonnet")),
        Edge::Target
    );
    // failover, with weights and timeouts
    let local = node(NodeKind::Provider, "local");
    assert_eq!(
        edge(anthropic, local),
        Edge::Failover {
            weight: Some(10.0),
            timeout_ms: 20000
        }
    );
    // next_cheaper: each model to the next cheaper one; a task on openclaw_light costs
    // at most $0.0096, under the $0.10 threshold, so that step never fires
    let light = node(NodeKind::Model, "openclaw_light");
    let llama = node(NodeKind::Model, "local_llama");
    let sonnet = node(NodeKind::Model, "claude_sonnet");
    let gemini = node(NodeKind::Model, "gemini_pro");
    assert!(matches!(
        edge(gemini, sonnet),
        Edge::Downgrade {
            next_cheaper: true,
            can_trigger: true,
            ..
        }
    ));
    assert!(matches!(
        edge(light, llama),
        Edge::Downgrade {
            next_cheaper: true,
            can_trigger: false,
            ..
        }
    ));
    // fallback_fast → openclaw_light from every other model in service
    assert!(matches!(edge(opus, light), Edge::FallbackTo { .. }));
    assert!(matches!(edge(llama, light), Edge::FallbackTo { .. }));
    // notifications: event → channel, event → template
    let community = node(NodeKind::Event, "community_update");
    assert!(matches!(
        edge(community, node(NodeKind::Channel, "discord")),
        Edge::Notify { .. }
    ));
    assert!(matches!(
        edge(community, node(NodeKind::Template, "community_post")),
        Edge::UsesTemplate { .. }
    ));
}

#[test]
fn gateway_dot_snapshot() {
    let text = graph::dot(&gateway().policy);
    assert!(text.starts_with("digraph rulec {\n") && text.ends_with("}\n"));
    snapshot("graphs__gateway_dot", &text);
}

#[test]
fn gateway_mermaid_snapshot() {
    let text = graph::mermaid(&gateway().policy);
    assert!(text.starts_with("flowchart LR\n"));
    snapshot("graphs__gateway_mermaid", &text);
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({
        snapshot_path => root().join("tests/integration/snapshots"),
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn drawings_are_deterministic() {
    let a = gateway();
    let b = gateway();
    assert_eq!(graph::dot(&a.policy), graph::dot(&b.policy));
    assert_eq!(graph::mermaid(&a.policy), graph::mermaid(&b.policy));
    assert_eq!(graph::check(&a.policy), graph::check(&b.policy));
}

// ---------------------------------------------------------------- the fixtures

#[test]
fn each_graph_fixture_reports_its_code_and_nothing_else() {
    for code in GRAPH_CODES {
        let path = root().join(format!("tests/fixtures/codes/{code}.yaml"));
        let text = std::fs::read(&path).expect("fixture exists");
        let checked =
            driver::check_text_with(&path.display().to_string(), &text, Options { infos: true });
        let mut all: Vec<Code> = checked.diagnostics.iter().map(|d| d.code).collect();
        all.extend(graph::check(&checked.policy).iter().map(|d| d.code));
        all.sort();
        all.dedup();
        assert_eq!(all, vec![code], "{}", path.display());
    }
}

// ---------------------------------------------------------------- W071, W072

#[test]
fn every_routed_model_is_used() {
    assert!(codes(&models_with(ALL_ROUTED, "")).is_empty());
}

#[test]
fn an_unrouted_model_is_w071_at_its_name() {
    let rules = "      - if: task_complexity == \"complex\"\n        model: \"opus\"\n      - fallback: \"sonnet\"\n";
    let text = models_with(rules, "");
    let diags = graph::check(&policy(&text));
    let unused: Vec<&str> = diags
        .iter()
        .filter(|d| d.code == Code::UnusedModel)
        .map(|d| at(&text, d.primary.span))
        .collect();
    assert_eq!(unused, ["haiku", "gpt"]);
    let d = &diags[0];
    assert_eq!(d.message, "model `haiku` is never used");
    assert!(d
        .help
        .as_deref()
        .unwrap_or_default()
        .contains("`model: haiku`"));
}

#[test]
fn downgrade_and_fallback_to_targets_count_as_used() {
    let rules = "      - if: task_complexity == \"complex\"\n        model: \"opus\"\n      - fallback: \"sonnet\"\n";
    let rest = switching(
        "      - metric: \"error_rate\"\n        threshold: 5%\n        action: \"downgrade_model\"\n        downgrade_to: \"haiku\"\n      - metric: \"latency_p99\"\n        threshold: 20s\n        action: \"fallback_fast\"\n        fallback_to: \"gpt\"\n",
    );
    let found = found(&models_with(rules, &rest));
    assert!(
        !found.iter().any(|(c, _)| *c == Code::UnusedModel),
        "{found:?}"
    );
}

const POOL: &str = r#"load_balancing:
  health_check:
    interval: 30s
    timeout: 5s
    unhealthy_threshold: 3
  pools:
    cheap:
      models: ["haiku", "sonnet"]
      weight: [50, 50]
      max_concurrent: 10
"#;

#[test]
fn a_pool_no_rule_targets_is_w072_and_its_members_w071() {
    let rules = "      - if: task_complexity == \"complex\"\n        model: \"opus\"\n      - fallback: \"gpt\"\n";
    let text = models_with(rules, POOL);
    let diags = graph::check(&policy(&text));
    let pool = diags
        .iter()
        .find(|d| d.code == Code::UnusedPool)
        .expect("W072");
    assert_eq!(at(&text, pool.primary.span), "cheap");
    assert_eq!(pool.message, "pool `cheap` is never used");
    // members of an unused pool are unused, and say so
    let haiku = diags
        .iter()
        .find(|d| d.code == Code::UnusedModel && d.message.contains("`haiku`"))
        .expect("W071 for haiku");
    assert!(haiku.labels.iter().any(|l| l
        .message
        .contains("pool `cheap`, which no rule routes to")
        && at(&text, l.span) == "\"haiku\""));
    assert!(haiku
        .help
        .as_deref()
        .unwrap_or_default()
        .contains("`pool: cheap`"));
}

#[test]
fn a_pool_named_by_a_rule_or_the_fallback_is_used_with_its_members() {
    let by_rule = "      - if: task_complexity == \"complex\"\n        model: \"opus\"\n      - if: task_type == \"code_generation\"\n        pool: \"cheap\"\n      - fallback: \"gpt\"\n";
    assert!(codes(&models_with(by_rule, POOL)).is_empty());
    let by_fallback = "      - if: task_complexity == \"complex\"\n        model: \"opus\"\n      - if: task_type == \"code_generation\"\n        model: \"gpt\"\n      - fallback: \"cheap\"\n";
    assert!(codes(&models_with(by_fallback, POOL)).is_empty());
}

#[test]
fn a_misspelt_reference_is_pointed_at_from_the_unused_definition() {
    // `sonet` is E020; the unused `sonnet` points at it
    let rules = "      - if: task_complexity == \"complex\"\n        model: \"opus\"\n      - if: task_type == \"code_generation\"\n        model: \"gpt\"\n      - if: task_complexity == \"simple\"\n        model: \"haiku\"\n      - fallback: \"sonet\"\n";
    let text = models_with(rules, "");
    let checked = driver::check_text("test.yaml", text.as_bytes());
    assert!(checked
        .diagnostics
        .iter()
        .any(|d| d.code == Code::UndefinedName));
    let diags = graph::check(&checked.policy);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, Code::UnusedModel);
    assert!(diags[0]
        .labels
        .iter()
        .any(|l| at(&text, l.span) == "\"sonet\"" && l.message.contains("was `sonnet` meant")));
}

#[test]
fn undefined_names_are_left_to_e020() {
    // a pool member, a rule target, a downgrade target and failover providers that do
    // not exist: E020 reports them; the graph has no node for them and says nothing
    let rules = "      - if: task_complexity == \"complex\"\n        model: \"opus\"\n      - if: task_type == \"code_generation\"\n        pool: \"cheap\"\n      - if: task_complexity == \"simple\"\n        model: \"mistral\"\n      - fallback: \"gpt\"\n";
    let rest = format!(
        "{}{}failover:\n  primary: \"anthropic\"\n  fallbacks:\n    - provider: \"azure\"\n      timeout_ms: 5000\n",
        POOL.replace("\"sonnet\"]", "\"ghost\"]"),
        switching("      - metric: \"error_rate\"\n        threshold: 5%\n        action: \"downgrade_model\"\n        downgrade_to: \"phantom\"\n"),
    );
    let text = models_with(rules, &rest);
    let found = found(&text);
    // `sonnet` is truly unused (the pool names `ghost` instead)
    assert_eq!(
        found,
        [(
            Code::UnusedModel,
            "model `sonnet` is never used".to_string()
        )]
    );
}

// ---------------------------------------------------------------- W073, W076

#[test]
fn providers_serving_models_or_in_failover_are_used() {
    let extra = "  google:\n    kind: google\n    base_url: \"https://generativelanguage.googleapis.com\"\n    api_key_env: GOOGLE_API_KEY\n";
    let unused = models_with(ALL_ROUTED, "").replacen("gateway:", &format!("{extra}gateway:"), 1);
    let text_at = unused.clone();
    let diags = graph::check(&policy(&unused));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, Code::UnusedProvider);
    assert_eq!(at(&text_at, diags[0].primary.span), "google");

    // in the failover chain without models: not W073 but W076, at the reference
    let failover = format!(
        "{unused}failover:\n  primary: \"anthropic\"\n  fallbacks:\n    - provider: \"openai\"\n      weight: 50\n      timeout_ms: 5000\n    - provider: \"google\"\n      weight: 50\n      timeout_ms: 5000\n"
    );
    let diags = graph::check(&policy(&failover));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.code, Code::FailoverDeadEnd);
    assert_eq!(
        d.message,
        "failover to `google` is a dead end: it has no models"
    );
    assert_eq!(at(&failover, d.primary.span), "\"google\"");
    assert_eq!(at(&failover, d.labels[0].span), "google");
}

#[test]
fn a_primary_without_models_is_w076() {
    let extra = "  google:\n    kind: google\n    base_url: \"https://generativelanguage.googleapis.com\"\n    api_key_env: GOOGLE_API_KEY\n";
    let text = models_with(ALL_ROUTED, "").replacen("gateway:", &format!("{extra}gateway:"), 1)
        + "failover:\n  primary: \"google\"\n  fallbacks:\n    - provider: \"anthropic\"\n      timeout_ms: 5000\n";
    assert_eq!(
        found(&text),
        [(
            Code::FailoverDeadEnd,
            "the primary provider `google` has no models".to_string()
        )]
    );
}

#[test]
fn a_model_that_failed_to_decode_keeps_its_provider_from_being_unused() {
    // `gpt` lacks `max_tokens` (E006): its provider is unknown, so `openai` is not
    // reported as unused
    let text = models_with(ALL_ROUTED, "").replace(
        "    gpt:\n      provider: \"openai\"\n      model: \"gpt-id\"\n      max_tokens: 128000\n",
        "    gpt:\n      provider: \"openai\"\n      model: \"gpt-id\"\n",
    );
    let checked = driver::check_text("test.yaml", text.as_bytes());
    assert!(checked.has_errors());
    assert!(graph::check(&checked.policy).is_empty());
}

// ---------------------------------------------------------------- W074

#[test]
fn next_cheaper_on_the_cheapest_model_is_w074() {
    let rest = switching(
        "      - metric: \"error_rate\"\n        threshold: 5%\n        action: \"downgrade_model\"\n        downgrade_to: \"next_cheaper\"\n",
    );
    let text = models_with(ALL_ROUTED, &rest);
    let diags = graph::check(&policy(&text));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.code, Code::CheapestDowngrade);
    assert_eq!(d.message, "`next_cheaper` has nowhere to go from `haiku`");
    assert_eq!(at(&text, d.primary.span), "\"next_cheaper\"");
    assert_eq!(at(&text, d.labels[0].span), "0.0000008");
    assert!(d.labels[0].message.contains("cheapest of the 4 models"));
}

#[test]
fn a_cost_threshold_the_cheapest_model_cannot_breach_is_fine() {
    // a task on haiku costs at most $0.16: a $0.20 threshold never fires there
    let rule = |t: &str| {
        switching(&format!("      - metric: \"cost_per_task\"\n        threshold: {t}\n        action: \"downgrade_model\"\n        downgrade_to: \"next_cheaper\"\n"))
    };
    assert!(codes(&models_with(ALL_ROUTED, &rule("$0.20"))).is_empty());
    let text = models_with(ALL_ROUTED, &rule("$0.10"));
    let diags = graph::check(&policy(&text));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, Code::CheapestDowngrade);
    assert!(diags[0]
        .labels
        .iter()
        .any(|l| at(&text, l.span) == "$0.10" && l.message.contains("costs $0.16")));
    assert!(diags[0]
        .help
        .as_deref()
        .unwrap_or_default()
        .contains("above $0.16"));
}

// ---------------------------------------------------------------- W075

#[test]
fn an_explicit_downgrade_to_the_cheapest_model_is_fine() {
    let rest = switching(
        "      - metric: \"error_rate\"\n        threshold: 5%\n        action: \"downgrade_model\"\n        downgrade_to: \"haiku\"\n",
    );
    assert!(codes(&models_with(ALL_ROUTED, &rest)).is_empty());
}

#[test]
fn an_explicit_downgrade_that_raises_the_price_is_w075() {
    let rest = switching(
        "      - metric: \"error_rate\"\n        threshold: 5%\n        action: \"downgrade_model\"\n        downgrade_to: \"sonnet\"\n",
    );
    let text = models_with(ALL_ROUTED, &rest);
    let diags = graph::check(&policy(&text));
    assert_eq!(diags.len(), 1, "{diags:#?}");
    let d = &diags[0];
    assert_eq!(d.code, Code::DowngradeCycle);
    assert_eq!(
        d.message,
        "downgrading `haiku` to `sonnet` does not lower its cost per token"
    );
    assert_eq!(at(&text, d.primary.span), "\"sonnet\"");
    assert_eq!(at(&text, d.labels[0].span), "0.0000008");
    assert_eq!(
        d.help.as_deref(),
        Some("downgrade to `haiku`, the cheapest model in use, or use `next_cheaper`")
    );
}

#[test]
fn two_downgrades_that_undo_each_other_are_a_cycle() {
    // error_rate moves everything to sonnet, cost_per_task everything to gpt: on gpt,
    // errors go back to sonnet, on sonnet a cost breach (up to $0.19 > $0.10) goes to gpt
    let rules = "      - if: task_complexity == \"complex\"\n        model: \"opus\"\n      - fallback: \"haiku\"\n";
    let rest = switching(
        "      - metric: \"cost_per_task\"\n        threshold: $0.10\n        action: \"downgrade_model\"\n        downgrade_to: \"gpt\"\n      - metric: \"error_rate\"\n        threshold: 5%\n        action: \"downgrade_model\"\n        downgrade_to: \"sonnet\"\n",
    );
    let text = models_with(rules, &rest);
    let diags = graph::check(&policy(&text));
    let messages: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
    assert!(
        diags.iter().all(|d| d.code == Code::DowngradeCycle),
        "{diags:#?}"
    );
    assert!(
        messages.contains(&"downgrades go round in a cycle: `gpt` → `sonnet` → `gpt`"),
        "{messages:?}"
    );
}

// ---------------------------------------------------------------- W082, W083

const CHANNELS: &str = r#"channels:
  slack:
    provider: "slack_webhook"
    endpoint_env: SLACK_WEBHOOK_URL
  discord:
    provider: "discord_webhook"
    endpoint_env: DISCORD_WEBHOOK_URL
templates:
  post:
    text: "{{message}}"
  digest:
    text: "{{message}}"
"#;

#[test]
fn channels_and_templates_without_routes_are_w082_and_w083() {
    let text = format!(
        "{CHANNELS}routing_rules:\n  - type: \"critical_alert\"\n    channels: [\"slack\"]\n    content_template: \"post\"\n"
    );
    let diags = graph::check(&policy(&text));
    let got: Vec<(Code, &str)> = diags
        .iter()
        .map(|d| (d.code, at(&text, d.primary.span)))
        .collect();
    assert_eq!(
        got,
        [
            (Code::UnusedChannel, "discord"),
            (Code::UnusedTemplate, "digest")
        ]
    );
    assert!(diags[0]
        .labels
        .iter()
        .any(|l| at(&text, l.span) == "routing_rules"));
}

#[test]
fn without_any_route_every_channel_and_template_is_unused() {
    assert_eq!(
        codes(CHANNELS),
        [
            Code::UnusedChannel,
            Code::UnusedChannel,
            Code::UnusedTemplate,
            Code::UnusedTemplate
        ]
    );
}

// ---------------------------------------------------------------- drawings

#[test]
fn drawings_escape_names() {
    let text = r#"
providers:
  "we\"ird":
    kind: anthropic
    base_url: "https://api.anthropic.com"
    api_key_env: ANTHROPIC_API_KEY
gateway:
  models:
    "a#b<c>":
      provider: "we\"ird"
      model: "m"
      max_tokens: 1000
      cost_per_token: 0.000001
  routing_strategy:
    rules:
      - fallback: "a#b<c>"
"#;
    let p = policy(text);
    let dot = graph::dot(&p);
    assert!(
        dot.contains(r#""provider:we\"ird" [label="we\"ird", shape=box3d];"#),
        "{dot}"
    );
    assert!(
        dot.contains(r#""model:a#b<c>" -> "provider:we\"ird""#),
        "{dot}"
    );
    let mermaid = graph::mermaid(&p);
    assert!(
        mermaid.contains(r#"model1(["a#35;b#lt;c#gt;<br/>$0.000001/token"])"#),
        "{mermaid}"
    );
    assert!(
        mermaid.contains(r#"provider1[("we#quot;ird")]"#),
        "{mermaid}"
    );
    assert!(mermaid.contains("model1 -.-> provider1"), "{mermaid}");
}

#[test]
fn an_empty_policy_draws_an_empty_graph() {
    let p = Policy::default();
    assert_eq!(
        graph::dot(&p),
        "digraph rulec {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n  edge [fontname=\"Helvetica\", fontsize=9];\n}\n"
    );
    assert_eq!(graph::mermaid(&p), "flowchart LR\n");
    assert!(graph::check(&p).is_empty());
}
