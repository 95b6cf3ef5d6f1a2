//! Name resolution: every reference to a model, provider, pool, channel, template or
//! event must name something declared (E020); models and pools share one namespace
//! because `fallback:` may name either.

use crate::diag::suggest::did_you_mean;
use crate::diag::{Code, Diagnostic};
use crate::policy::{DowngradeTo, Name, Policy, Target};

/// The symbol table is part of the policy model; checks find it here too.
pub use crate::policy::Symbols;

/// Events the gateway itself emits, with what each means; notification routes may
/// name these or events declared under `events:`.
pub const GATEWAY_EVENTS: &[(&str, &str)] = &[
    (
        "critical_alert",
        "any critical event: a provider down, a failover, a budget exhausted",
    ),
    ("provider_down", "a provider turned unhealthy"),
    ("provider_recovered", "a provider is healthy again"),
    (
        "failover",
        "traffic moved from the primary provider to a fallback",
    ),
    ("failover_drill", "the result of a scheduled failover drill"),
    (
        "model_switched",
        "a cost-window rule switched models or providers",
    ),
    ("budget_exceeded", "a session or daily budget ran out"),
    (
        "daily_report",
        "the scheduled digest of the gateway's traffic and costs",
    ),
];

pub fn undefined<'a>(
    kind: &str,
    name: &Name,
    candidates: impl IntoIterator<Item = &'a str>,
    declare: &str,
) -> Diagnostic {
    let help =
        did_you_mean(&name.value, candidates).unwrap_or_else(|| format!("declare it {declare}"));
    Diagnostic::new(
        Code::UndefinedName,
        name.span,
        format!("undefined {kind} `{}`", name.value),
    )
    .primary_label(format!("no {kind} is declared with this name"))
    .help(help)
}

pub fn check(policy: &Policy, syms: &Symbols<'_>, diags: &mut Vec<Diagnostic>) {
    let d = &policy.declared;
    let (models, providers, pools) = (
        name_set(&d.models),
        name_set(&d.providers),
        name_set(&d.pools),
    );
    let has_model = |n: &str| models.contains(n);
    let has_provider = |n: &str| providers.contains(n);
    let has_pool = |n: &str| pools.contains(n);
    let model_names = || d.models.iter().map(String::as_str);
    let provider_names = || d.providers.iter().map(String::as_str);
    let pool_names = || d.pools.iter().map(String::as_str);
    let provider_help = "under `providers:` with its `kind`, `base_url` and `api_key_env`: without it the gateway has no endpoint for it";

    for model in &policy.models {
        if !has_provider(&model.provider.value) {
            diags.push(undefined(
                "provider",
                &model.provider,
                provider_names(),
                provider_help,
            ));
        }
        if let Some(pool) = syms.pools.get(model.name.value.as_str()) {
            diags.push(
                Diagnostic::new(
                    Code::DuplicateDefinition,
                    pool.name.span,
                    format!("`{}` names both a model and a pool", model.name.value),
                )
                .primary_label("pool declared here")
                .label(model.name.span, "model declared here")
                .help("give the pool another name: `fallback:` could not tell them apart"),
            );
        }
    }

    for rule in policy.routing.iter().flat_map(|r| &r.rules) {
        let Some(target) = &rule.target else { continue };
        let name = target.name();
        let known = match target {
            Target::Model(_) => has_model(&name.value),
            Target::Pool(_) => has_pool(&name.value),
            Target::Either(_) => has_model(&name.value) || has_pool(&name.value),
        };
        if known {
            continue;
        }
        let d = match target {
            Target::Model(_) => undefined("model", name, model_names(), "under `gateway.models`"),
            Target::Pool(_) => {
                undefined("pool", name, pool_names(), "under `load_balancing.pools`")
            }
            Target::Either(_) => undefined(
                "model or pool",
                name,
                model_names().chain(pool_names()),
                "under `gateway.models` or `load_balancing.pools`",
            ),
        };
        diags.push(d);
    }

    for pool in syms.pools.values() {
        for member in &pool.models {
            if !has_model(&member.value) {
                diags.push(undefined(
                    "model",
                    member,
                    model_names(),
                    "under `gateway.models`",
                ));
            }
        }
    }

    if let Some(sw) = policy.cost.as_ref().and_then(|c| c.switching.as_ref()) {
        for rule in &sw.rules {
            if let Some(DowngradeTo::Model(m)) = rule.downgrade_to.as_ref().map(|d| &d.value) {
                if !has_model(&m.value) {
                    diags.push(undefined(
                        "model",
                        m,
                        model_names(),
                        "under `gateway.models`",
                    ));
                }
            }
            if let Some(m) = &rule.fallback_to {
                if !has_model(&m.value) {
                    diags.push(undefined(
                        "model",
                        m,
                        model_names(),
                        "under `gateway.models`",
                    ));
                }
            }
        }
    }

    if let Some(f) = &policy.failover {
        let refs = std::iter::once(&f.primary).chain(f.fallbacks.iter().map(|t| &t.provider));
        for provider in refs {
            if !has_provider(&provider.value) {
                diags.push(undefined(
                    "provider",
                    provider,
                    provider_names(),
                    provider_help,
                ));
            }
        }
    }

    let channel_names: Vec<&str> = d.channels.iter().map(String::as_str).collect();
    let template_names: Vec<&str> = d.templates.iter().map(String::as_str).collect();
    for rule in policy.notifications.iter().flat_map(|n| &n.value) {
        for ch in &rule.channels {
            if !channel_names.contains(&ch.value.as_str()) {
                diags.push(undefined(
                    "channel",
                    ch,
                    channel_names.iter().copied(),
                    "under `channels:`",
                ));
            }
        }
        if let Some(t) = &rule.template {
            if !template_names.contains(&t.value.as_str()) {
                diags.push(undefined(
                    "template",
                    t,
                    template_names.iter().copied(),
                    "under `templates:` with its `text`",
                ));
            }
        }
    }
}

fn name_set(names: &[String]) -> std::collections::HashSet<&str> {
    names.iter().map(String::as_str).collect()
}
