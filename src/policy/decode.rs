//! Spanned YAML documents → [`Policy`] sections, one function per section. Shapes,
//! keys, keywords and typed values are checked here; names and types in `check`.

use super::model::*;
use super::reader::{missing_key, Ctx, MapReader};
use crate::diag::suggest::did_you_mean;
use crate::diag::{Code, Diagnostic};
use crate::load::Node;
use crate::source::Span;
use crate::syntax::{self, Duration, Value};

/// The sections a document may have, in documentation order.
pub const SECTIONS: &[&str] = &[
    "providers",
    "request",
    "gateway",
    "cost_aware",
    "load_balancing",
    "failover",
    "channels",
    "routing_rules",
    "templates",
    "events",
];

/// Decodes one YAML document into a partial policy.
pub fn document(ctx: &mut Ctx, doc: &Node) -> Policy {
    let mut policy = Policy::default();
    let Some(mut top) = ctx.map(doc, doc.span, "a policy document") else {
        return policy;
    };
    top.allow(SECTIONS);
    top.finish(ctx);
    let Some(entries) = doc.as_map() else {
        return policy;
    };
    for (i, (key, value)) in entries.iter().enumerate() {
        // a repeated section is E003 already: the first one counts, as everywhere
        if entries[..i].iter().any(|(k, _)| k.text() == key.text()) {
            continue;
        }
        match key.text() {
            Some("providers") => {
                policy.declared.providers = names(value);
                policy.providers = providers(ctx, value);
            }
            Some("request") => {
                policy.declared.attributes = names(value);
                policy.request = request(ctx, value);
            }
            Some("gateway") => gateway(ctx, key, value, &mut policy),
            Some("cost_aware") => policy.cost = cost_aware(ctx, key, value),
            Some("load_balancing") => {
                policy.balancing = balancing(ctx, key, value, &mut policy.declared.pools)
            }
            Some("failover") => policy.failover = failover(ctx, key, value),
            Some("channels") => {
                policy.declared.channels = names(value);
                policy.channels = channels(ctx, value);
            }
            Some("routing_rules") => {
                let rules = ctx
                    .list(value, "`routing_rules`")
                    .iter()
                    .filter_map(|n| notify_rule(ctx, n))
                    .collect();
                policy.notifications = Some(Spanned::new(rules, key.span));
            }
            Some("templates") => {
                policy.declared.templates = names(value);
                policy.templates = templates(ctx, value);
            }
            Some("events") => policy.events = events(ctx, value),
            _ => {}
        }
    }
    policy
}

fn providers(ctx: &mut Ctx, node: &Node) -> Vec<Provider> {
    let mut out = Vec::new();
    for (name, value) in ctx.named(node, "`providers`") {
        let what = format!("provider `{}`", name.value);
        let Some(mut m) = ctx.map(value, name.span, &what) else {
            continue;
        };
        let kind = m.req(ctx, "kind", "anthropic").and_then(|n| {
            ctx.keyword(
                n,
                "provider kind",
                &[
                    ("anthropic", ProviderKind::Anthropic),
                    ("openai", ProviderKind::OpenAi),
                    ("google", ProviderKind::Google),
                    ("openai_compatible", ProviderKind::OpenAiCompatible),
                ],
            )
        });
        let base_url = m
            .req(ctx, "base_url", "\"https://api.anthropic.com\"")
            .and_then(|n| url(ctx, n, "`base_url`"));
        let api_key_env = m
            .opt("api_key_env")
            .and_then(|n| ctx.env_name(n, "`api_key_env`"));
        let health_path = m
            .opt("health_path")
            .and_then(|n| ctx.string(n, "`health_path`"));
        let timeout = m.opt("timeout").and_then(|n| duration(ctx, n, "`timeout`"));
        let first_byte_timeout = m
            .opt("first_byte_timeout")
            .and_then(|n| duration(ctx, n, "`first_byte_timeout`"));
        m.finish(ctx);
        if let (Some(kind), Some(base_url)) = (kind, base_url) {
            out.push(Provider {
                name,
                kind,
                base_url,
                api_key_env,
                health_path,
                timeout,
                first_byte_timeout,
            });
        }
    }
    out
}

fn url(ctx: &mut Ctx, node: &Node, what: &str) -> Option<Name> {
    let s = ctx.string(node, what)?;
    let ok = (s.value.starts_with("http://") || s.value.starts_with("https://"))
        && s.value.len() > "https://".len()
        && !s.value.contains(char::is_whitespace);
    if !ok {
        ctx.push(
            Diagnostic::new(
                Code::InvalidValue,
                node.span,
                format!("`{}` is not an HTTP URL", s.value),
            )
            .primary_label("expected `http://...` or `https://...`")
            .help("write the provider's API base, e.g. `https://api.anthropic.com`"),
        );
        return None;
    }
    if s.value.contains('@') || s.value.contains("key=") || s.value.contains("token=") {
        ctx.push(
            Diagnostic::new(
                Code::SecretInPolicy,
                node.span,
                "the URL carries credentials",
            )
            .primary_label("credentials in a URL")
            .help("keep the URL free of secrets and name the key's variable in `api_key_env`"),
        );
        return None;
    }
    Some(s)
}

fn request(ctx: &mut Ctx, node: &Node) -> Vec<Attribute> {
    let mut out = Vec::new();
    for (name, value) in ctx.named(node, "`request`") {
        let what = format!("attribute `{}`", name.value);
        let Some(mut m) = ctx.map(value, name.span, &what) else {
            continue;
        };
        let ty_node = m.req(ctx, "type", "string");
        let values = m.opt("values").map(|n| ctx.strings(n, "`values`"));
        let ty = ty_node.and_then(|n| {
            ctx.keyword(
                n,
                "attribute type",
                &[
                    ("string", 0u8),
                    ("enum", 1),
                    ("int", 2),
                    ("number", 3),
                    ("bool", 4),
                    ("duration", 5),
                    ("money", 6),
                    ("percent", 7),
                ],
            )
        });
        let ty = ty.map(|t| {
            let v = match t.value {
                0 => AttrType::String,
                1 => AttrType::Enum(values.clone().unwrap_or_default()),
                2 => AttrType::Int,
                3 => AttrType::Number,
                4 => AttrType::Bool,
                5 => AttrType::Duration,
                6 => AttrType::Money,
                _ => AttrType::Percent,
            };
            Spanned::new(v, t.span)
        });
        if let (Some(t), Some(_)) = (&ty, &values) {
            if !matches!(t.value, AttrType::Enum(_)) {
                ctx.push(
                    Diagnostic::new(
                        Code::UnknownKey,
                        t.span,
                        format!("{what} has `values` but is not an enum"),
                    )
                    .primary_label("not `enum`")
                    .help("write `type: enum` to restrict the attribute to `values`"),
                );
            }
        }
        if matches!(ty.as_ref().map(|t| &t.value), Some(AttrType::Enum(v)) if v.is_empty()) {
            if let Some(t) = &ty {
                ctx.push(
                    missing_key(name.span, format!("{what} is an enum without `values`"), "`values` is required for `type: enum`", "add `values: [low, high]` listing the allowed values, or write `type: string`")
                    .label(t.span, "declared an enum here"),
                );
            }
        }
        let mut requires = Vec::new();
        if let Some(req) = m.opt("requires") {
            for (value, caps) in ctx.named(req, "`requires`") {
                let caps = ctx.strings(caps, "required capabilities");
                requires.push((value, caps));
            }
        }
        let min = m.opt("min").and_then(|n| ctx.number(n, "`min`"));
        let max = m.opt("max").and_then(|n| ctx.number(n, "`max`"));
        m.allow(&["description"]);
        m.finish(ctx);
        if let Some(ty) = ty {
            out.push(Attribute {
                span: name.span,
                name,
                ty,
                requires,
                min,
                max,
            });
        }
    }
    out
}

fn gateway(ctx: &mut Ctx, key: &Node, node: &Node, policy: &mut Policy) {
    let Some(mut m) = ctx.map(node, key.span, "`gateway`") else {
        return;
    };
    policy.version = m.opt("version").and_then(|n| ctx.string(n, "`version`"));
    if let Some(models) = m.opt("models") {
        policy.declared.models = names(models);
        policy.models = self::models(ctx, models);
    }
    if let Some((k, v)) = m.opt_entry("routing_strategy") {
        policy.routing = routing(ctx, k, v);
    }
    m.finish(ctx);
}

fn models(ctx: &mut Ctx, node: &Node) -> Vec<Model> {
    let mut out = Vec::new();
    for (name, value) in ctx.named(node, "`models`") {
        let what = format!("model `{}`", name.value);
        let Some(mut m) = ctx.map(value, name.span, &what) else {
            continue;
        };
        let provider = m
            .req(ctx, "provider", "PROVIDER")
            .and_then(|n| ctx.string(n, "`provider`"));
        let model_id = m
            .req(ctx, "model", "claude-sonnet-4")
            .and_then(|n| ctx.string(n, "`model`"));
        let max_tokens = m
            .req(ctx, "max_tokens", "200000")
            .and_then(|n| ctx.integer(n, "`max_tokens`"));
        let cost = m
            .req(ctx, "cost_per_token", "0.000003")
            .and_then(|n| ctx.number(n, "`cost_per_token`"));
        let input_cost_per_token = m
            .opt("input_cost_per_token")
            .and_then(|n| ctx.number(n, "`input_cost_per_token`"));
        let output_cost_per_token = m
            .opt("output_cost_per_token")
            .and_then(|n| ctx.number(n, "`output_cost_per_token`"));
        let status = match m.opt("status") {
            Some(n) => ctx.keyword(
                n,
                "model status",
                &[
                    ("active", ModelStatus::Active),
                    ("deprecated", ModelStatus::Deprecated),
                    ("disabled", ModelStatus::Disabled),
                ],
            ),
            None => Some(Spanned::new(ModelStatus::Active, name.span)),
        };
        let capabilities = m
            .opt("capabilities")
            .map(|n| ctx.strings(n, "`capabilities`"))
            .unwrap_or_default();
        let quality = m.opt("quality").and_then(|n| ctx.number(n, "`quality`"));
        m.finish(ctx);
        if let (
            Some(provider),
            Some(model_id),
            Some(max_tokens),
            Some(cost_per_token),
            Some(status),
        ) = (provider, model_id, max_tokens, cost, status)
        {
            out.push(Model {
                name,
                provider,
                model_id,
                max_tokens,
                cost_per_token,
                input_cost_per_token,
                output_cost_per_token,
                status,
                capabilities,
                quality,
            });
        }
    }
    out
}

fn routing(ctx: &mut Ctx, key: &Node, node: &Node) -> Option<Routing> {
    let mut m = ctx.map(node, key.span, "`routing_strategy`")?;
    let policy = m.opt("policy").and_then(|n| {
        ctx.keyword(
            n,
            "routing policy",
            &[
                ("first_match", RoutingPolicy::FirstMatch),
                ("cost_aware_capability", RoutingPolicy::CostAwareCapability),
            ],
        )
    });
    let rules = match m.req(
        ctx,
        "rules",
        "[{if: \"estimated_tokens > 100000\", model: MODEL}, {fallback: MODEL}]",
    ) {
        Some(list) => ctx
            .list(list, "`rules`")
            .iter()
            .enumerate()
            .filter_map(|(i, n)| route_rule(ctx, i, n))
            .collect(),
        None => Vec::new(),
    };
    m.finish(ctx);
    Some(Routing {
        policy,
        rules,
        span: key.span,
    })
}

fn route_rule(ctx: &mut Ctx, index: usize, node: &Node) -> Option<RouteRule> {
    // messages about a named rule use its name, as `RouteRule::id` does everywhere after
    // decoding; the name has to be peeked before the mapping is read
    let named = node
        .as_map()
        .and_then(|entries| entries.iter().find(|(k, _)| k.text() == Some("name")))
        .and_then(|(_, v)| v.as_scalar())
        .filter(|s| !s.is_null())
        .map(|s| s.value.clone());
    let what = match named {
        Some(n) => format!("routing rule `{n}`"),
        None => format!("routing rule #{}", index + 1),
    };
    let mut m = ctx.map(node, node.span, &what)?;
    let name = m.opt("name").and_then(|n| ctx.string(n, "`name`"));
    let fallback = m.opt("fallback");
    let cond_node = m.opt("if");
    let model = m.opt("model").and_then(|n| ctx.string(n, "`model`"));
    let pool = m.opt("pool").and_then(|n| ctx.string(n, "`pool`"));
    let priority = m.opt("priority").and_then(|n| {
        ctx.keyword(
            n,
            "priority",
            &[
                ("cost", Priority::Cost),
                ("quality", Priority::Quality),
                ("latency", Priority::Latency),
                ("balanced", Priority::Balanced),
            ],
        )
    });
    m.finish(ctx);

    let condition = cond_node.and_then(|n| condition(ctx, n));
    let had_both = model.is_some() && pool.is_some();
    let mut target = match (model, pool) {
        (Some(m), None) => Some(Target::Model(m)),
        (None, Some(p)) => Some(Target::Pool(p)),
        (Some(m), Some(p)) => {
            ctx.push(
                Diagnostic::new(
                    Code::RuleTarget,
                    p.span,
                    format!("{what} has both `model` and `pool`"),
                )
                .primary_label("second target")
                .label(m.span, "first target")
                .help("a rule sends its requests to one place: keep `model` or `pool`"),
            );
            None
        }
        (None, None) => None,
    };
    let is_fallback = fallback.is_some();
    if let Some(f) = fallback {
        if cond_node.is_some() {
            ctx.push(
                Diagnostic::new(
                    Code::RuleTarget,
                    f.span,
                    format!("{what} has both `if` and `fallback`"),
                )
                .primary_label("a fallback matches every request")
                .help("drop the `if`, or turn the fallback into `model:` / `pool:`"),
            );
        }
        if target.is_some() {
            ctx.push(
                Diagnostic::new(
                    Code::RuleTarget,
                    f.span,
                    format!("{what} has a `fallback` and another target"),
                )
                .primary_label("fallback target")
                .help("write `- fallback: NAME` on its own"),
            );
        }
        target = ctx.string(f, "`fallback`").map(Target::Either);
    } else if cond_node.is_none() {
        ctx.push(missing_key(
            node.span,
            format!("{what} has no `if` condition"),
            "`if` is required",
            "add `if: CONDITION`, or write `- fallback: NAME` for the default route",
        ));
    } else if target.is_none() && !had_both {
        ctx.push(
            Diagnostic::new(Code::RuleTarget, node.span, format!("{what} has no target"))
                .primary_label("neither `model` nor `pool`")
                .help("add `model: NAME` or `pool: NAME`"),
        );
    }
    Some(RouteRule {
        index,
        name,
        condition,
        target,
        priority,
        is_fallback,
        span: node.span,
    })
}

fn condition(ctx: &mut Ctx, node: &Node) -> Option<Condition> {
    let text = match node.as_scalar() {
        Some(s) if !s.is_null() => s.value.as_str(),
        _ => {
            ctx.wrong_type(node, "a condition (a string)", "`if`");
            return None;
        }
    };
    match syntax::parse_condition(text) {
        Ok(expr) => Some(Condition {
            expr,
            node: node.clone(),
        }),
        Err(e) => {
            let (code, message) = if e.too_complex {
                (Code::TooComplex, "the condition nests too deeply")
            } else {
                (Code::ExprSyntax, "invalid condition")
            };
            let span = node.value_span(e.range.clone());
            ctx.push(
                Diagnostic::new(code, span, message)
                    .primary_label(e.message)
                    .help_opt(e.help),
            );
            None
        }
    }
}

fn cost_aware(ctx: &mut Ctx, key: &Node, node: &Node) -> Option<CostAware> {
    let mut m = ctx.map(node, key.span, "`cost_aware`")?;
    let enabled = m
        .opt("enabled")
        .and_then(|n| ctx.boolean(n, "`enabled`"))
        .is_none_or(|b| b.value);
    let mut target = None;
    let mut constraints = Constraints::default();
    if let Some((k, v)) = m.opt_entry("optimization") {
        if let Some(mut o) = ctx.map(v, k.span, "`optimization`") {
            target = o.opt("target").and_then(|n| {
                ctx.keyword(
                    n,
                    "optimization target",
                    &[
                        ("minimize_cost", OptimizationTarget::MinimizeCost),
                        ("maximize_quality", OptimizationTarget::MaximizeQuality),
                        ("balanced", OptimizationTarget::Balanced),
                    ],
                )
            });
            if let Some((ck, cv)) = o.opt_entry("constraints") {
                if let Some(mut c) = ctx.map(cv, ck.span, "`constraints`") {
                    constraints.max_cost_per_session = c
                        .opt("max_cost_per_session")
                        .and_then(|n| money(ctx, n, "`max_cost_per_session`"));
                    constraints.max_daily_budget = c
                        .opt("max_daily_budget")
                        .and_then(|n| money(ctx, n, "`max_daily_budget`"));
                    constraints.quality_threshold = c
                        .opt("quality_threshold")
                        .and_then(|n| ctx.number(n, "`quality_threshold`"));
                    constraints.time_zone = c.opt("time_zone").and_then(|n| time_zone(ctx, n));
                    c.finish(ctx);
                }
            }
            o.finish(ctx);
        }
    }
    let switching = m
        .opt_entry("dynamic_switching")
        .and_then(|(k, v)| dynamic_switching(ctx, k, v));
    m.finish(ctx);
    Some(CostAware {
        enabled,
        target,
        constraints,
        switching,
        span: key.span,
    })
}

/// Money as a bare number (dollars) or `$0.10`.
fn money(ctx: &mut Ctx, node: &Node, what: &str) -> Option<Spanned<f64>> {
    let is_number = node
        .as_scalar()
        .is_some_and(|s| !s.is_quoted() && s.value.parse::<f64>().is_ok());
    if is_number {
        return ctx.number(node, what);
    }
    ctx.typed(node, "an amount of money", syntax::parse_money)
}

/// An IANA time zone name (`Europe/Berlin`), spelt as the zone database spells it
/// (names match without regard to case there). An unknown name gets the closest known.
fn time_zone(ctx: &mut Ctx, node: &Node) -> Option<Name> {
    let name = ctx.string(node, "`time_zone`")?;
    let db = jiff::tz::db();
    if let Ok(tz) = db.get(&name.value) {
        let spelt = tz.iana_name().unwrap_or(&name.value).to_string();
        return Some(Spanned::new(spelt, name.span));
    }
    let known: Vec<String> = db.available().map(|n| n.to_string()).collect();
    let example = "an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`";
    let help = match did_you_mean(&name.value, known.iter().map(String::as_str)) {
        Some(dym) => format!("{dym} a time zone is {example}"),
        None => format!("write {example}"),
    };
    ctx.push(
        Diagnostic::new(
            Code::InvalidValue,
            node.span,
            format!("`{}` is not a time zone", name.value),
        )
        .primary_label("unknown time zone")
        .help(help),
    );
    None
}

/// A duration written `30s`; a bare number is refused because its unit is unknown.
fn duration(ctx: &mut Ctx, node: &Node, what: &str) -> Option<Spanned<Duration>> {
    let _ = what;
    ctx.typed(node, "a duration", syntax::parse_duration)
}

fn dynamic_switching(ctx: &mut Ctx, key: &Node, node: &Node) -> Option<DynamicSwitching> {
    let mut m = ctx.map(node, key.span, "`dynamic_switching`")?;
    m.opt("strategy")
        .and_then(|n| ctx.keyword(n, "switching strategy", &[("cost_window", ())]));
    let window = m.req(ctx, "window_minutes", "5").and_then(|n| {
        ctx.number(n, "`window_minutes`").map(|w| {
            Spanned::new(
                Duration {
                    ms: (w.value.max(0.0) * 60_000.0) as u64,
                },
                w.span,
            )
        })
    });
    let check_interval = m
        .req(ctx, "check_interval", "30s")
        .and_then(|n| duration(ctx, n, "`check_interval`"));
    let rules = m
        .opt("rules")
        .map(|n| {
            ctx.list(n, "`rules`")
                .iter()
                .filter_map(|r| switch_rule(ctx, r))
                .collect()
        })
        .unwrap_or_default();
    m.finish(ctx);
    Some(DynamicSwitching {
        window: window?,
        check_interval: check_interval?,
        rules,
        span: key.span,
    })
}

fn switch_rule(ctx: &mut Ctx, node: &Node) -> Option<SwitchRule> {
    let mut m = ctx.map(node, node.span, "a switching rule")?;
    let metric = m.req(ctx, "metric", "cost_per_task").and_then(|n| {
        ctx.keyword(
            n,
            "metric",
            &[
                ("cost_per_task", Metric::CostPerTask),
                ("error_rate", Metric::ErrorRate),
                ("latency_p50", Metric::LatencyP50),
                ("latency_p95", Metric::LatencyP95),
                ("latency_p99", Metric::LatencyP99),
            ],
        )
    });
    let threshold_node = m.req(ctx, "threshold", "$0.10");
    let action = m.req(ctx, "action", "downgrade_model").and_then(|n| {
        ctx.keyword(
            n,
            "action",
            &[
                ("downgrade_model", SwitchAction::DowngradeModel),
                ("switch_provider", SwitchAction::SwitchProvider),
                ("fallback_fast", SwitchAction::FallbackFast),
            ],
        )
    });
    let downgrade_to = m.opt("downgrade_to").and_then(|n| {
        let s = ctx.string(n, "`downgrade_to`")?;
        Some(Spanned::new(
            if s.value == "next_cheaper" {
                DowngradeTo::NextCheaper
            } else {
                DowngradeTo::Model(s)
            },
            n.span,
        ))
    });
    let fallback_to = m
        .opt("fallback_to")
        .and_then(|n| ctx.string(n, "`fallback_to`"));
    m.finish(ctx);
    let metric = metric?;
    let threshold = threshold(ctx, threshold_node?, metric.value)?;
    let action = action?;
    match action.value {
        SwitchAction::DowngradeModel if downgrade_to.is_none() => ctx.push(missing_key(
            action.span,
            "`downgrade_model` needs `downgrade_to`",
            "downgrade to what?",
            "add `downgrade_to: next_cheaper` or `downgrade_to: MODEL`",
        )),
        SwitchAction::FallbackFast if fallback_to.is_none() => ctx.push(missing_key(
            action.span,
            "`fallback_fast` needs `fallback_to`",
            "which model is the fast one?",
            "add `fallback_to: MODEL` naming the model to fall back to",
        )),
        _ => {}
    }
    Some(SwitchRule {
        metric,
        threshold,
        action,
        downgrade_to,
        fallback_to,
        span: node.span,
    })
}

/// A threshold read in its metric's unit. Units that do not fit the metric are E030.
fn threshold(ctx: &mut Ctx, node: &Node, metric: Metric) -> Option<Spanned<Threshold>> {
    let written = ctx.typed(node, "a threshold", syntax::parse_threshold)?;
    let mismatch = |ctx: &mut Ctx, expected: &str| {
        ctx.push(
            Diagnostic::new(
                Code::TypeMismatch,
                node.span,
                format!("this threshold is not {expected}"),
            )
            .primary_label(format!("expected {expected}")),
        );
    };
    let value = match (metric, &written.value) {
        (Metric::CostPerTask, Value::Money(v) | Value::Num(v)) => *v,
        (Metric::CostPerTask, _) => {
            mismatch(ctx, "an amount of money such as `$0.10`");
            return None;
        }
        (Metric::ErrorRate, Value::Num(v)) => {
            if !(0.0..=1.0).contains(v) {
                ctx.push(
                    Diagnostic::new(
                        Code::OutOfRange,
                        node.span,
                        format!("an error rate of {v} is outside 0 to 1"),
                    )
                    .primary_label("a fraction of requests")
                    .help(format!(
                        "write a fraction (`0.05`) or a percentage (`{v}%`)"
                    )),
                );
                return None;
            }
            *v
        }
        (Metric::ErrorRate, Value::Percent(p)) => {
            if !(0.0..=100.0).contains(p) {
                ctx.push(
                    Diagnostic::new(
                        Code::OutOfRange,
                        node.span,
                        format!("an error rate of {p}% is outside 0% to 100%"),
                    )
                    .primary_label("out of range"),
                );
                return None;
            }
            p / 100.0
        }
        (Metric::ErrorRate, _) => {
            mismatch(ctx, "a rate of errors such as `0.05` or `5%`");
            return None;
        }
        (_, Value::Duration(d)) => d.ms as f64,
        (_, Value::Num(v)) => {
            ctx.push(
                Diagnostic::new(
                    Code::UnitlessThreshold,
                    node.span,
                    "latency threshold without a unit",
                )
                .primary_label(format!("read as {v} milliseconds"))
                .help(format!("write `{v}ms` or `{}s`", v / 1000.0)),
            );
            *v
        }
        _ => {
            mismatch(ctx, "a duration such as `10s`");
            return None;
        }
    };
    Some(Spanned::new(
        Threshold {
            value,
            written: written.value,
        },
        node.span,
    ))
}

fn health_check(ctx: &mut Ctx, key: &Node, node: &Node) -> Option<HealthCheck> {
    let mut m = ctx.map(node, key.span, "`health_check`")?;
    let interval = m
        .req(ctx, "interval", "30s")
        .and_then(|n| duration(ctx, n, "`interval`"));
    let timeout = m
        .req(ctx, "timeout", "5s")
        .and_then(|n| duration(ctx, n, "`timeout`"));
    let threshold = m
        .req(ctx, "unhealthy_threshold", "3")
        .and_then(|n| ctx.integer(n, "`unhealthy_threshold`"));
    m.finish(ctx);
    Some(HealthCheck {
        interval: interval?,
        timeout: timeout?,
        unhealthy_threshold: threshold?,
        span: key.span,
    })
}

/// The keys of a mapping of named things, whatever their values.
fn names(node: &Node) -> Vec<String> {
    node.as_map()
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.text().map(str::to_string))
        .collect()
}

fn balancing(
    ctx: &mut Ctx,
    key: &Node,
    node: &Node,
    declared_pools: &mut Vec<String>,
) -> Option<Balancing> {
    let mut m = ctx.map(node, key.span, "`load_balancing`")?;
    let strategy = match m.opt("strategy") {
        Some(n) => ctx.keyword(
            n,
            "balancing strategy",
            &[
                ("weighted_round_robin", BalanceStrategy::WeightedRoundRobin),
                ("round_robin", BalanceStrategy::RoundRobin),
            ],
        ),
        None => Some(Spanned::new(BalanceStrategy::WeightedRoundRobin, key.span)),
    };
    let health = m
        .opt_entry("health_check")
        .and_then(|(k, v)| health_check(ctx, k, v));
    let mut pools = Vec::new();
    if let Some(p) = m.opt("pools") {
        declared_pools.extend(names(p));
        for (name, value) in ctx.named(p, "`pools`") {
            if let Some(pool) = pool(ctx, name, value) {
                pools.push(pool);
            }
        }
    }
    let session_affinity = m.opt_entry("session_affinity").and_then(|(k, v)| {
        let mut a = ctx.map(v, k.span, "`session_affinity`")?;
        let enabled = a
            .opt("enabled")
            .and_then(|n| ctx.boolean(n, "`enabled`"))
            .is_none_or(|b| b.value);
        let ttl = a
            .req(ctx, "ttl", "10m")
            .and_then(|n| duration(ctx, n, "`ttl`"));
        a.finish(ctx);
        Some(SessionAffinity { enabled, ttl: ttl? })
    });
    m.finish(ctx);
    Some(Balancing {
        strategy: strategy?,
        pools,
        health_check: health,
        session_affinity,
        span: key.span,
    })
}

fn pool(ctx: &mut Ctx, name: Name, node: &Node) -> Option<Pool> {
    let what = format!("pool `{}`", name.value);
    let mut m = ctx.map(node, name.span, &what)?;
    let models = m
        .req(ctx, "models", "[MODEL, MODEL]")
        .map(|n| ctx.strings(n, "`models`"))
        .unwrap_or_default();
    let weights = m.opt("weight").map(|n| {
        let items = ctx.list(n, "`weight`");
        Spanned::new(
            items
                .iter()
                .filter_map(|w| ctx.number(w, "a weight"))
                .collect(),
            n.span,
        )
    });
    let max_concurrent = m
        .req(ctx, "max_concurrent", "10")
        .and_then(|n| ctx.integer(n, "`max_concurrent`"));
    let health = m
        .opt_entry("health_check")
        .and_then(|(k, v)| health_check(ctx, k, v));
    m.finish(ctx);
    Some(Pool {
        name,
        models,
        weights,
        max_concurrent: max_concurrent?,
        health_check: health,
    })
}

fn failover(ctx: &mut Ctx, key: &Node, node: &Node) -> Option<Failover> {
    let mut m = ctx.map(node, key.span, "`failover`")?;
    let primary = m
        .req(ctx, "primary", "PROVIDER")
        .and_then(|n| ctx.string(n, "`primary`"));
    let fallbacks_span = m.opt_entry("fallbacks").map(|(k, _)| k.span);
    let fallbacks = m
        .opt("fallbacks")
        .map(|n| {
            ctx.list(n, "`fallbacks`")
                .iter()
                .filter_map(|f| failover_target(ctx, f))
                .collect()
        })
        .unwrap_or_default();
    let scheduled = m.opt_entry("scheduled_failover").and_then(|(k, v)| {
        let mut s = ctx.map(v, k.span, "`scheduled_failover`")?;
        let every = s
            .req(ctx, "test_interval", "\"every 6h\"")
            .and_then(|n| ctx.typed(n, "an interval", syntax::parse_interval));
        let mode = match s.opt("mode") {
            Some(n) => ctx.keyword(
                n,
                "drill mode",
                &[("dry_run", DrillMode::DryRun), ("live", DrillMode::Live)],
            ),
            None => Some(Spanned::new(DrillMode::DryRun, k.span)),
        };
        let notify = match s.opt("notify") {
            Some(n) => ctx.boolean(n, "`notify`"),
            None => Some(Spanned::new(false, k.span)),
        };
        s.finish(ctx);
        Some(ScheduledFailover {
            every: every?,
            mode: mode?,
            notify: notify?,
        })
    });
    let recovery = m.opt_entry("recovery").and_then(|(k, v)| {
        let mut r = ctx.map(v, k.span, "`recovery`")?;
        let auto_recover = r
            .opt("auto_recover")
            .and_then(|n| ctx.boolean(n, "`auto_recover`"))
            .is_none_or(|b| b.value);
        let backoff = match r.opt("backoff") {
            Some(n) => ctx.keyword(
                n,
                "backoff",
                &[
                    ("linear", Backoff::Linear),
                    ("exponential", Backoff::Exponential),
                ],
            ),
            None => Some(Spanned::new(Backoff::Linear, k.span)),
        };
        let interval = r
            .req(ctx, "interval", "30s")
            .and_then(|n| duration(ctx, n, "`interval`"));
        let max_retries = r
            .req(ctx, "max_retries", "3")
            .and_then(|n| ctx.integer(n, "`max_retries`"));
        r.finish(ctx);
        Some(Recovery {
            auto_recover,
            backoff: backoff?,
            interval: interval?,
            max_retries: max_retries?,
        })
    });
    m.finish(ctx);
    Some(Failover {
        primary: primary?,
        fallbacks_span: fallbacks_span.unwrap_or(key.span),
        fallbacks,
        scheduled,
        recovery,
        span: key.span,
    })
}

fn failover_target(ctx: &mut Ctx, node: &Node) -> Option<FailoverTarget> {
    let mut m = ctx.map(node, node.span, "a failover fallback")?;
    let provider = m
        .req(ctx, "provider", "PROVIDER")
        .and_then(|n| ctx.string(n, "`provider`"));
    let weight = match m.opt("weight") {
        Some(n) => Some(ctx.number(n, "`weight`")),
        None => Some(None),
    };
    let timeout = m.req(ctx, "timeout_ms", "15000").and_then(|n| {
        ctx.integer(n, "`timeout_ms`").map(|t| {
            Spanned::new(
                Duration {
                    ms: t.value.max(0.0) as u64,
                },
                t.span,
            )
        })
    });
    m.finish(ctx);
    Some(FailoverTarget {
        provider: provider?,
        weight: weight?,
        timeout: timeout?,
    })
}

fn channels(ctx: &mut Ctx, node: &Node) -> Vec<Channel> {
    let mut out = Vec::new();
    for (name, value) in ctx.named(node, "`channels`") {
        if let Some(c) = channel(ctx, name, value) {
            out.push(c);
        }
    }
    out
}

fn channel(ctx: &mut Ctx, name: Name, node: &Node) -> Option<Channel> {
    let what = format!("channel `{}`", name.value);
    let mut m = ctx.map(node, name.span, &what)?;
    let kind = m.req(ctx, "provider", "slack_webhook").and_then(|n| {
        ctx.keyword(
            n,
            "channel provider",
            &[
                ("slack_webhook", ChannelKind::SlackWebhook),
                ("telegram_bot", ChannelKind::TelegramBot),
                ("smtp", ChannelKind::Smtp),
                ("discord_webhook", ChannelKind::DiscordWebhook),
                ("webhook", ChannelKind::Webhook),
            ],
        )
    });
    let purpose = m.opt("priority").and_then(|n| ctx.string(n, "`priority`"));
    let rate_limit = m
        .opt("rate_limit")
        .and_then(|n| ctx.typed(n, "a rate", syntax::parse_rate));
    let endpoint_node = m.opt("endpoint_env");
    let endpoint_env = endpoint_node.and_then(|n| ctx.env_name(n, "`endpoint_env`"));
    let secret_env = m
        .opt("secret_env")
        .and_then(|n| ctx.env_name(n, "`secret_env`"));
    let chat_id = m.opt("chat_id").and_then(|n| ctx.string(n, "`chat_id`"));
    let from = m.opt("from").and_then(|n| ctx.string(n, "`from`"));
    let to = m
        .opt("to")
        .map(|n| ctx.strings(n, "`to`"))
        .unwrap_or_default();
    let Some(kind) = kind else {
        m.finish(ctx);
        return None;
    };
    let present = Present {
        endpoint: endpoint_node.is_some(),
        chat_id: chat_id.is_some(),
        from: from.is_some(),
        to: !to.is_empty(),
        secret: secret_env.is_some(),
    };
    require_for_kind(ctx, &m, &what, &kind, present);
    m.finish(ctx);
    Some(Channel {
        name,
        kind,
        purpose,
        rate_limit,
        endpoint_env,
        secret_env,
        chat_id,
        from,
        to,
    })
}

/// Which of a channel's connection settings are present.
struct Present {
    endpoint: bool,
    chat_id: bool,
    from: bool,
    to: bool,
    secret: bool,
}

/// One E006 per channel naming every connection setting its provider still needs.
fn require_for_kind(
    ctx: &mut Ctx,
    m: &MapReader<'_>,
    what: &str,
    kind: &Spanned<ChannelKind>,
    p: Present,
) {
    let mut missing = Vec::new();
    if !p.endpoint {
        missing.push("endpoint_env");
    }
    match kind.value {
        ChannelKind::TelegramBot => {
            if !p.chat_id {
                missing.push("chat_id");
            }
            if !p.secret {
                missing.push("secret_env");
            }
        }
        ChannelKind::Smtp => {
            if !p.from {
                missing.push("from");
            }
            if !p.to {
                missing.push("to");
            }
        }
        _ => {}
    }
    if missing.is_empty() {
        return;
    }
    let list = missing.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>();
    let joined = match list.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => String::new(),
    };
    ctx.push(
        missing_key(
            m.owner(),
            format!("{what} is missing {joined}"),
            "this channel has no way to deliver",
            channel_help(kind.value),
        )
        .label(kind.span, "this provider needs them"),
    );
}

fn channel_help(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::SlackWebhook => "name the environment variable holding the webhook URL: `endpoint_env: SLACK_WEBHOOK_URL`",
        ChannelKind::DiscordWebhook => "name the environment variable holding the webhook URL: `endpoint_env: DISCORD_WEBHOOK_URL`",
        ChannelKind::Webhook => "name the environment variable holding the webhook URL: `endpoint_env: ALERTS_WEBHOOK_URL`",
        ChannelKind::TelegramBot => {
            "set `endpoint_env` (the Bot API base URL's variable), `secret_env` (the bot token's variable) and `chat_id`"
        }
        ChannelKind::Smtp => {
            "set `endpoint_env` (a variable holding `smtp://host:port`), `from` and `to`"
        }
    }
}

fn notify_rule(ctx: &mut Ctx, node: &Node) -> Option<NotifyRule> {
    let mut m = ctx.map(node, node.span, "a notification rule")?;
    let event = m
        .req(ctx, "type", "critical_alert")
        .and_then(|n| ctx.string(n, "`type`"));
    let channels = m
        .req(ctx, "channels", "[CHANNEL]")
        .map(|n| ctx.strings(n, "`channels`"))
        .unwrap_or_default();
    let dedup = m.opt("dedup").and_then(|n| ctx.boolean(n, "`dedup`"));
    let dedup_window = m
        .opt("dedup_window")
        .and_then(|n| duration(ctx, n, "`dedup_window`"));
    let schedule = m
        .opt("schedule")
        .and_then(|n| ctx.typed(n, "a cron schedule", syntax::parse_cron));
    let template = m
        .opt("content_template")
        .and_then(|n| ctx.string(n, "`content_template`"));
    m.finish(ctx);
    Some(NotifyRule {
        event: event?,
        channels,
        dedup,
        dedup_window,
        schedule,
        template,
        span: node.span,
    })
}

fn templates(ctx: &mut Ctx, node: &Node) -> Vec<Template> {
    let mut out = Vec::new();
    for (name, value) in ctx.named(node, "`templates`") {
        let what = format!("template `{}`", name.value);
        let Some(mut m) = ctx.map(value, name.span, &what) else {
            continue;
        };
        let text = m
            .req(ctx, "text", "\"gateway update: {{message}}\"")
            .and_then(|n| ctx.string(n, "`text`"));
        m.finish(ctx);
        if let Some(text) = text {
            out.push(Template { name, text });
        }
    }
    out
}

fn events(ctx: &mut Ctx, node: &Node) -> Vec<EventDecl> {
    let mut out = Vec::new();
    for (name, value) in ctx.named(node, "`events`") {
        let what = format!("event `{}`", name.value);
        let description = if value.is_null() {
            None
        } else {
            let Some(mut m) = ctx.map(value, name.span, &what) else {
                continue;
            };
            let d = m
                .opt("description")
                .and_then(|n| ctx.string(n, "`description`"));
            m.finish(ctx);
            d
        };
        out.push(EventDecl { name, description });
    }
    out
}

/// The span of a whole document's top-level key, for section-level diagnostics.
pub fn section_span(doc: &Node, section: &str) -> Option<Span> {
    doc.as_map()?
        .iter()
        .find(|(k, _)| k.text() == Some(section))
        .map(|(k, _)| k.span)
}
