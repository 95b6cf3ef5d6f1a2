//! The typed policy: every section of the seed plus the declarations a deployment needs
//! (providers, channel endpoints, templates, events, the request schema). Every value
//! keeps the span it came from.

use crate::load::Node;
use crate::source::Span;
use crate::syntax::{Cron, Duration, Expr, Rate, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Spanned<T> {
        Spanned { value, span }
    }
}

pub type Name = Spanned<String>;

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub version: Option<Name>,
    pub providers: Vec<Provider>,
    pub models: Vec<Model>,
    pub routing: Option<Routing>,
    pub request: Vec<Attribute>,
    pub cost: Option<CostAware>,
    pub balancing: Option<Balancing>,
    pub failover: Option<Failover>,
    pub channels: Vec<Channel>,
    pub notifications: Option<Spanned<Vec<NotifyRule>>>,
    pub templates: Vec<Template>,
    pub events: Vec<EventDecl>,
    /// every name declared, even where its definition has errors: references to it
    /// resolve, so one bad field does not cascade into "undefined" everywhere
    pub declared: Declared,
}

#[derive(Debug, Clone, Default)]
pub struct Declared {
    pub providers: Vec<String>,
    pub models: Vec<String>,
    pub pools: Vec<String>,
    pub channels: Vec<String>,
    pub templates: Vec<String>,
    pub attributes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Anthropic,
    OpenAi,
    Google,
    OpenAiCompatible,
}

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: Name,
    pub kind: Spanned<ProviderKind>,
    pub base_url: Name,
    pub api_key_env: Option<Name>,
    pub health_path: Option<Name>,
    /// the most a whole call to this provider may take, first byte to last
    pub timeout: Option<Spanned<Duration>>,
    /// the most a call may wait for the first byte of the answer
    pub first_byte_timeout: Option<Spanned<Duration>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelStatus {
    Active,
    Deprecated,
    Disabled,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: Name,
    pub provider: Name,
    pub model_id: Name,
    pub max_tokens: Spanned<f64>,
    /// the price the price ladder, the budget checks and the cost windows compare
    pub cost_per_token: Spanned<f64>,
    /// the price of a prompt token, when it differs from `cost_per_token`
    pub input_cost_per_token: Option<Spanned<f64>>,
    /// the price of an answer token, when it differs from `cost_per_token`
    pub output_cost_per_token: Option<Spanned<f64>>,
    pub status: Spanned<ModelStatus>,
    pub capabilities: Vec<Name>,
    pub quality: Option<Spanned<f64>>,
}

impl Model {
    /// The capabilities of `needed` this model does not list.
    pub fn missing_capabilities<'n>(&self, needed: &'n [String]) -> Vec<&'n String> {
        needed
            .iter()
            .filter(|cap| !self.capabilities.iter().any(|c| &c.value == *cap))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoutingPolicy {
    FirstMatch,
    CostAwareCapability,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Priority {
    Cost,
    Quality,
    Latency,
    Balanced,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Cost => "cost",
            Priority::Quality => "quality",
            Priority::Latency => "latency",
            Priority::Balanced => "balanced",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Routing {
    pub policy: Option<Spanned<RoutingPolicy>>,
    pub rules: Vec<RouteRule>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Model(Name),
    Pool(Name),
    /// `fallback: NAME`, a model or a pool, resolved by `check`
    Either(Name),
}

impl Target {
    pub fn name(&self) -> &Name {
        match self {
            Target::Model(n) | Target::Pool(n) | Target::Either(n) => n,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub expr: Expr,
    /// the `if:` scalar, to map positions inside the condition back to the source
    pub node: Node,
}

#[derive(Debug, Clone)]
pub struct RouteRule {
    /// 0-based position in the rule list
    pub index: usize,
    pub name: Option<Name>,
    /// `None` for the fallback
    pub condition: Option<Condition>,
    pub target: Option<Target>,
    pub priority: Option<Spanned<Priority>>,
    pub is_fallback: bool,
    pub span: Span,
}

impl RouteRule {
    /// `name` if given, else `fallback` for the fallback, else `#N` (1-based).
    pub fn id(&self) -> String {
        match &self.name {
            Some(n) => n.value.clone(),
            None if self.is_fallback => "fallback".to_string(),
            None => format!("#{}", self.index + 1),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttrType {
    String,
    Enum(Vec<Name>),
    Int,
    Number,
    Bool,
    Duration,
    Money,
    Percent,
}

#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: Name,
    pub ty: Spanned<AttrType>,
    /// for enums: value → capabilities that value requires
    pub requires: Vec<(Name, Vec<Name>)>,
    pub min: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OptimizationTarget {
    MinimizeCost,
    MaximizeQuality,
    Balanced,
}

#[derive(Debug, Clone, Default)]
pub struct Constraints {
    pub max_cost_per_session: Option<Spanned<f64>>,
    pub max_daily_budget: Option<Spanned<f64>>,
    pub quality_threshold: Option<Spanned<f64>>,
    /// the IANA zone whose midnight starts a new budget day; UTC when absent
    pub time_zone: Option<Name>,
}

/// A cost-window metric. Values are in the unit the policy's thresholds are read in:
/// dollars for `cost_per_task`, a fraction of 1 for `error_rate` (5% is 0.05),
/// milliseconds for the latencies.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    CostPerTask,
    ErrorRate,
    LatencyP50,
    LatencyP95,
    LatencyP99,
}

impl Metric {
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::CostPerTask => "cost_per_task",
            Metric::ErrorRate => "error_rate",
            Metric::LatencyP50 => "latency_p50",
            Metric::LatencyP95 => "latency_p95",
            Metric::LatencyP99 => "latency_p99",
        }
    }

    pub fn is_latency(self) -> bool {
        matches!(
            self,
            Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwitchAction {
    DowngradeModel,
    SwitchProvider,
    FallbackFast,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DowngradeTo {
    NextCheaper,
    Model(Name),
}

/// A threshold in the metric's own unit: dollars, a fraction of 1, or milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub value: f64,
    pub written: Value,
}

#[derive(Debug, Clone)]
pub struct SwitchRule {
    pub metric: Spanned<Metric>,
    pub threshold: Spanned<Threshold>,
    pub action: Spanned<SwitchAction>,
    pub downgrade_to: Option<Spanned<DowngradeTo>>,
    pub fallback_to: Option<Name>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct DynamicSwitching {
    pub window: Spanned<Duration>,
    pub check_interval: Spanned<Duration>,
    pub rules: Vec<SwitchRule>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct CostAware {
    pub enabled: bool,
    pub target: Option<Spanned<OptimizationTarget>>,
    pub constraints: Constraints,
    pub switching: Option<DynamicSwitching>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BalanceStrategy {
    WeightedRoundRobin,
    RoundRobin,
}

#[derive(Debug, Clone)]
pub struct HealthCheck {
    pub interval: Spanned<Duration>,
    pub timeout: Spanned<Duration>,
    pub unhealthy_threshold: Spanned<f64>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Pool {
    pub name: Name,
    pub models: Vec<Name>,
    pub weights: Option<Spanned<Vec<Spanned<f64>>>>,
    pub max_concurrent: Spanned<f64>,
    pub health_check: Option<HealthCheck>,
}

#[derive(Debug, Clone)]
pub struct SessionAffinity {
    pub enabled: bool,
    pub ttl: Spanned<Duration>,
}

#[derive(Debug, Clone)]
pub struct Balancing {
    pub strategy: Spanned<BalanceStrategy>,
    pub pools: Vec<Pool>,
    pub health_check: Option<HealthCheck>,
    pub session_affinity: Option<SessionAffinity>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct FailoverTarget {
    pub provider: Name,
    /// `None` when not written: fallbacks without weights share traffic equally
    pub weight: Option<Spanned<f64>>,
    pub timeout: Spanned<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DrillMode {
    DryRun,
    Live,
}

#[derive(Debug, Clone)]
pub struct ScheduledFailover {
    pub every: Spanned<Duration>,
    pub mode: Spanned<DrillMode>,
    pub notify: Spanned<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backoff {
    Linear,
    Exponential,
}

#[derive(Debug, Clone)]
pub struct Recovery {
    pub auto_recover: bool,
    pub backoff: Spanned<Backoff>,
    pub interval: Spanned<Duration>,
    pub max_retries: Spanned<f64>,
}

#[derive(Debug, Clone)]
pub struct Failover {
    pub primary: Name,
    /// the `fallbacks` key, where weight sums are reported
    pub fallbacks_span: Span,
    pub fallbacks: Vec<FailoverTarget>,
    pub scheduled: Option<ScheduledFailover>,
    pub recovery: Option<Recovery>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    SlackWebhook,
    TelegramBot,
    Smtp,
    DiscordWebhook,
    Webhook,
}

#[derive(Debug, Clone)]
pub struct Channel {
    pub name: Name,
    pub kind: Spanned<ChannelKind>,
    pub purpose: Option<Name>,
    pub rate_limit: Option<Spanned<Rate>>,
    pub endpoint_env: Option<Name>,
    pub secret_env: Option<Name>,
    pub chat_id: Option<Name>,
    pub from: Option<Name>,
    pub to: Vec<Name>,
}

#[derive(Debug, Clone)]
pub struct NotifyRule {
    pub event: Name,
    pub channels: Vec<Name>,
    pub dedup: Option<Spanned<bool>>,
    pub dedup_window: Option<Spanned<Duration>>,
    pub schedule: Option<Spanned<Cron>>,
    pub template: Option<Name>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Template {
    pub name: Name,
    pub text: Name,
}

#[derive(Debug, Clone)]
pub struct EventDecl {
    pub name: Name,
    pub description: Option<Name>,
}
