//! What a bundle carries besides the decision table: the parts of the policy the
//! server acts on, flattened to plain data. Secrets never appear: only the names of
//! the environment variables that hold them.

use serde::{Deserialize, Serialize};

use crate::policy::service::downgrade_moves;
use crate::policy::{BalanceStrategy, ChannelKind, ModelStatus, Policy, ProviderKind, Service};
use crate::syntax::print;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    pub name: String,
    pub kind: String,
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_path: Option<String>,
    /// the most a whole call may take; left out when not set, so that bundles of
    /// policies without it keep their bytes and hashes
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// the most a call may wait for the answer's first byte
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub provider: String,
    pub model: String,
    pub max_tokens: u64,
    /// the price the price ladder, the budget step and the cost windows compare
    pub cost_per_token: f64,
    /// dollars per prompt token, when the policy sets it apart; see `Price::of`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_cost_per_token: Option<f64>,
    /// dollars per answer token, when the policy sets it apart
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_cost_per_token: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<f64>,
    pub status: String,
    pub capabilities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub unhealthy_threshold: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub name: String,
    pub strategy: String,
    pub models: Vec<String>,
    /// one per model; equal when the policy gives none
    pub weights: Vec<f64>,
    pub max_concurrent: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverSpec {
    pub primary: String,
    pub fallbacks: Vec<crate::machines::Fallback>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffinitySpec {
    pub ttl_ms: u64,
}

/// A model and the one a `next_cheaper` downgrade moves it to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DowngradeSpec {
    pub from: String,
    pub to: String,
}

/// The cost constraints the server enforces. Spending past a budget downgrades the
/// affected decisions to the cheapest model in service that still meets the quality
/// floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// dollars per session id
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost_per_session: Option<f64>,
    /// dollars per day, in `time_zone`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_daily_budget: Option<f64>,
    /// the lowest model quality a budget downgrade may go to
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality_threshold: Option<f64>,
    /// the IANA zone whose midnight starts a budget day; UTC when not set
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateSpec {
    pub count: f64,
    pub per_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateSpec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySpec {
    pub event: String,
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dedup: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedup_window_ms: Option<u64>,
    /// a five-field cron schedule, UTC
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    pub name: String,
    pub text: String,
}

/// The bundle's words for provider kinds and model statuses that the server acts on,
/// defined once for the bundle writer and its readers.
pub mod keyword {
    pub const ANTHROPIC: &str = "anthropic";
    pub const OPENAI: &str = "openai";
    pub const GOOGLE: &str = "google";
    pub const OPENAI_COMPATIBLE: &str = "openai_compatible";
    pub const DISABLED: &str = "disabled";
    /// The models listing of Anthropic's API, which health checks request by default.
    pub const ANTHROPIC_MODELS_PATH: &str = "/v1/models";
    /// The models listing of OpenAI-style APIs (their `base_url` ends in `/v1`).
    pub const OPENAI_MODELS_PATH: &str = "/models";
    /// The `anthropic-version` header every call to Anthropic's API carries.
    pub const ANTHROPIC_VERSION: &str = "2023-06-01";
}

pub use keyword::DISABLED as STATUS_DISABLED;

fn provider_kind(k: ProviderKind) -> &'static str {
    match k {
        ProviderKind::Anthropic => keyword::ANTHROPIC,
        ProviderKind::OpenAi => keyword::OPENAI,
        ProviderKind::Google => keyword::GOOGLE,
        ProviderKind::OpenAiCompatible => keyword::OPENAI_COMPATIBLE,
    }
}

impl ProviderSpec {
    /// Anthropic's API (`x-api-key`, `/v1/messages`) rather than an OpenAI-style one.
    pub fn is_anthropic(&self) -> bool {
        self.kind == keyword::ANTHROPIC
    }

    /// What health checks request under `base_url`: `health_path`, else the API's
    /// models listing.
    pub fn check_path(&self) -> &str {
        match &self.health_path {
            Some(p) => p,
            None if self.is_anthropic() => keyword::ANTHROPIC_MODELS_PATH,
            None => keyword::OPENAI_MODELS_PATH,
        }
    }
}

fn channel_kind(k: ChannelKind) -> &'static str {
    match k {
        ChannelKind::SlackWebhook => "slack_webhook",
        ChannelKind::TelegramBot => "telegram_bot",
        ChannelKind::Smtp => "smtp",
        ChannelKind::DiscordWebhook => "discord_webhook",
        ChannelKind::Webhook => "webhook",
    }
}

pub fn providers(p: &Policy) -> Vec<ProviderSpec> {
    p.providers
        .iter()
        .map(|x| ProviderSpec {
            name: x.name.value.clone(),
            kind: provider_kind(x.kind.value).into(),
            base_url: x.base_url.value.clone(),
            api_key_env: x.api_key_env.as_ref().map(|e| e.value.clone()),
            health_path: x.health_path.as_ref().map(|h| h.value.clone()),
            timeout_ms: x.timeout.as_ref().map(|t| t.value.ms),
            first_byte_timeout_ms: x.first_byte_timeout.as_ref().map(|t| t.value.ms),
        })
        .collect()
}

pub fn models(p: &Policy) -> Vec<ModelSpec> {
    p.models
        .iter()
        .map(|m| ModelSpec {
            name: m.name.value.clone(),
            provider: m.provider.value.clone(),
            model: m.model_id.value.clone(),
            max_tokens: m.max_tokens.value.max(0.0) as u64,
            cost_per_token: m.cost_per_token.value,
            input_cost_per_token: m.input_cost_per_token.as_ref().map(|c| c.value),
            output_cost_per_token: m.output_cost_per_token.as_ref().map(|c| c.value),
            quality: m.quality.as_ref().map(|q| q.value),
            status: match m.status.value {
                ModelStatus::Active => "active",
                ModelStatus::Deprecated => "deprecated",
                ModelStatus::Disabled => keyword::DISABLED,
            }
            .into(),
            capabilities: m.capabilities.iter().map(|c| c.value.clone()).collect(),
        })
        .collect()
}

fn health(h: &crate::policy::HealthCheck) -> HealthCheckSpec {
    HealthCheckSpec {
        interval_ms: h.interval.value.ms,
        timeout_ms: h.timeout.value.ms,
        unhealthy_threshold: h.unhealthy_threshold.value.max(1.0) as u32,
    }
}

pub fn pools(p: &Policy) -> Vec<PoolSpec> {
    let Some(b) = &p.balancing else {
        return Vec::new();
    };
    let strategy = match b.strategy.value {
        BalanceStrategy::WeightedRoundRobin => "weighted_round_robin",
        BalanceStrategy::RoundRobin => "round_robin",
    };
    b.pools
        .iter()
        .map(|pool| {
            let weights = match (&pool.weights, b.strategy.value) {
                (Some(w), BalanceStrategy::WeightedRoundRobin) => {
                    w.value.iter().map(|x| x.value).collect()
                }
                _ => vec![1.0; pool.models.len()],
            };
            PoolSpec {
                name: pool.name.value.clone(),
                strategy: strategy.into(),
                models: pool.models.iter().map(|m| m.value.clone()).collect(),
                weights,
                max_concurrent: pool.max_concurrent.value.max(0.0) as u32,
                health_check: pool
                    .health_check
                    .as_ref()
                    .or(b.health_check.as_ref())
                    .map(health),
            }
        })
        .collect()
}

pub fn failover(p: &Policy) -> Option<FailoverSpec> {
    let f = p.failover.as_ref()?;
    Some(FailoverSpec {
        primary: f.primary.value.clone(),
        fallbacks: crate::machines::failover::fallbacks(f),
    })
}

pub fn affinity(p: &Policy) -> Option<AffinitySpec> {
    let a = p.balancing.as_ref()?.session_affinity.as_ref()?;
    a.enabled.then_some(AffinitySpec {
        ttl_ms: a.ttl.value.ms,
    })
}

/// For `downgrade_to: next_cheaper`: each model in service to the next cheaper one on
/// the price ladder; for an explicit target: every other model in service to it.
pub fn downgrades(p: &Policy, service: &Service<'_>) -> Vec<DowngradeSpec> {
    let Some(sw) = p.cost.as_ref().and_then(|c| c.switching.as_ref()) else {
        return Vec::new();
    };
    let mut out: Vec<DowngradeSpec> = Vec::new();
    for to in sw.rules.iter().filter_map(|r| r.downgrade_to.as_ref()) {
        for (from, target) in downgrade_moves(&to.value, &service.ladder) {
            let spec = DowngradeSpec {
                from: from.name.value.clone(),
                to: target.to_string(),
            };
            if spec.from != spec.to && !out.contains(&spec) {
                out.push(spec);
            }
        }
    }
    out
}

/// The budgets of an enabled `cost_aware` section, if it sets any.
pub fn budgets(p: &Policy) -> Option<BudgetSpec> {
    let c = &p.cost.as_ref().filter(|c| c.enabled)?.constraints;
    let spec = BudgetSpec {
        max_cost_per_session: c.max_cost_per_session.as_ref().map(|v| v.value),
        max_daily_budget: c.max_daily_budget.as_ref().map(|v| v.value),
        quality_threshold: c.quality_threshold.as_ref().map(|v| v.value),
        time_zone: c.time_zone.as_ref().map(|z| z.value.clone()),
    };
    (spec.max_cost_per_session.is_some()
        || spec.max_daily_budget.is_some()
        || spec.quality_threshold.is_some()
        || spec.time_zone.is_some())
    .then_some(spec)
}

pub fn channels(p: &Policy) -> Vec<ChannelSpec> {
    p.channels
        .iter()
        .map(|c| ChannelSpec {
            name: c.name.value.clone(),
            kind: channel_kind(c.kind.value).into(),
            rate_limit: c.rate_limit.as_ref().map(|r| RateSpec {
                count: r.value.count,
                per_ms: r.value.per.ms,
            }),
            endpoint_env: c.endpoint_env.as_ref().map(|e| e.value.clone()),
            secret_env: c.secret_env.as_ref().map(|e| e.value.clone()),
            chat_id: c.chat_id.as_ref().map(|e| e.value.clone()),
            from: c.from.as_ref().map(|e| e.value.clone()),
            to: c.to.iter().map(|e| e.value.clone()).collect(),
        })
        .collect()
}

pub fn notifications(p: &Policy) -> Vec<NotifySpec> {
    p.notifications
        .iter()
        .flat_map(|n| &n.value)
        .map(|r| NotifySpec {
            event: r.event.value.clone(),
            channels: r.channels.iter().map(|c| c.value.clone()).collect(),
            dedup: r.dedup.as_ref().is_some_and(|d| d.value),
            dedup_window_ms: r.dedup_window.as_ref().map(|d| d.value.ms),
            schedule: r.schedule.as_ref().map(|s| cron_text(&s.value)),
            template: r.template.as_ref().map(|t| t.value.clone()),
        })
        .collect()
}

/// A cron schedule in canonical form: `*` for a full field, runs as `a-b`.
fn cron_text(c: &crate::syntax::Cron) -> String {
    let field = |v: &[u8], lo: u8, hi: u8| {
        if v.len() == usize::from(hi - lo) + 1 {
            return "*".to_string();
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < v.len() {
            let mut j = i;
            while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
                j += 1;
            }
            parts.push(if i == j {
                v[i].to_string()
            } else {
                format!("{}-{}", v[i], v[j])
            });
            i = j + 1;
        }
        parts.join(",")
    };
    format!(
        "{} {} {} {} {}",
        field(&c.minutes, 0, 59),
        field(&c.hours, 0, 23),
        field(&c.days_of_month, 1, 31),
        field(&c.months, 1, 12),
        field(&c.days_of_week, 0, 6)
    )
}

pub fn templates(p: &Policy) -> Vec<TemplateSpec> {
    p.templates
        .iter()
        .map(|t| TemplateSpec {
            name: t.name.value.clone(),
            text: t.text.value.clone(),
        })
        .collect()
}

/// `5m` for 300000 ms: the policy's own syntax, for messages.
pub fn duration_text(ms: u64) -> String {
    print::duration(crate::syntax::Duration { ms })
}
