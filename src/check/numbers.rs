//! The numbers of a policy: weights against members (E060), values out of range (E061),
//! timeouts against intervals and against each other (E062), weight sums (W060), budgets
//! against prices (W061),
//! failover timeouts against latency thresholds (W062), quality floors (W064), pools
//! without health checks (W065), prices that cannot be per token (W066) and inactive
//! models in use (W070).

use crate::diag::{Code, Diagnostic};
use crate::policy::reader::missing_key;
use crate::policy::{HealthCheck, Metric, Model, ModelStatus, Name, Policy, Spanned, Target};
use crate::source::Span;
use crate::syntax::print;

use super::names::Symbols;

/// The highest plausible price of one token: $1,000 per million. The dearest published
/// prices stay below it (output tokens of the largest reasoning models cost up to $600 per
/// million), while a price written per 1K tokens lands far above it ($3 per million
/// written per 1K is 0.003, i.e. $3,000 per million).
const MAX_PRICE_PER_TOKEN: f64 = 0.001;

/// A budget should buy at least this many tokens of every model it governs.
const MIN_TOKENS_PER_BUDGET: f64 = 1000.0;

/// `$0.50`, `$50.00`; amounts below a cent keep their digits.
fn dollars(amount: f64) -> String {
    if (amount * 100.0).fract().abs() < 1e-9 {
        format!("${amount:.2}")
    } else {
        format!("${amount}")
    }
}

/// A price without float noise: `0.000003`, `3000`.
fn plain(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (5 - x.abs().log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A model's prices with the keys they were written under: `cost_per_token`, and the
/// input and output prices when given.
fn model_prices(m: &Model) -> impl Iterator<Item = (&'static str, &Spanned<f64>)> {
    [
        ("cost_per_token", Some(&m.cost_per_token)),
        ("input_cost_per_token", m.input_cost_per_token.as_ref()),
        ("output_cost_per_token", m.output_cost_per_token.as_ref()),
    ]
    .into_iter()
    .filter_map(|(key, price)| price.map(|p| (key, p)))
}

/// W066: a per-token price no model has; it is almost always a per-1K or per-1M price.
fn prices(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    for m in &policy.models {
        for (key, price) in model_prices(m) {
            if let Some(d) = implausible_price(&m.name.value, key, price) {
                diags.push(d);
            }
        }
    }
}

fn implausible_price(model: &str, key: &str, price: &Spanned<f64>) -> Option<Diagnostic> {
    let (span, price) = (price.span, price.value);
    if price <= MAX_PRICE_PER_TOKEN {
        return None;
    }
    // the unit that turns it into a plausible price: per 1K first, then per 1M
    let (unit, per_token) = if price / 1000.0 <= MAX_PRICE_PER_TOKEN {
        ("1K", price / 1000.0)
    } else {
        ("1M", price / 1_000_000.0)
    };
    Some(
        Diagnostic::new(
            Code::PriceNotPerToken,
            span,
            format!(
                "`{key}` of `{model}` is ${} per million tokens",
                plain(price * 1_000_000.0)
            ),
        )
        .primary_label(format!("looks like a price per {unit} tokens"))
        .help(format!(
            "`{key}` is the price of one token: for ${} per {unit} tokens write `{key}: {}` (${} per million)",
            plain(price),
            plain(per_token),
            plain(per_token * 1_000_000.0)
        )),
    )
}

fn out_of_range(span: Span, message: String, label: &str) -> Diagnostic {
    Diagnostic::new(Code::OutOfRange, span, message).primary_label(label.to_string())
}

fn positive(diags: &mut Vec<Diagnostic>, n: &Spanned<f64>, what: &str) {
    if n.value <= 0.0 {
        diags.push(out_of_range(
            n.span,
            format!("{what} must be greater than zero"),
            "not positive",
        ));
    }
}

fn non_negative(diags: &mut Vec<Diagnostic>, n: &Spanned<f64>, what: &str) {
    if n.value < 0.0 {
        diags.push(out_of_range(
            n.span,
            format!("{what} cannot be negative"),
            "negative",
        ));
    }
}

fn fraction(diags: &mut Vec<Diagnostic>, n: &Spanned<f64>, what: &str) {
    if !(0.0..=1.0).contains(&n.value) {
        diags.push(
            out_of_range(
                n.span,
                format!("{what} must lie between 0 and 1"),
                "outside 0 to 1",
            )
            .help(format!(
                "write a fraction: {} for {}%",
                n.value / 100.0,
                n.value
            )),
        );
    }
}

fn nonzero_duration(diags: &mut Vec<Diagnostic>, d: &Spanned<crate::syntax::Duration>, what: &str) {
    if d.value.ms == 0 {
        diags.push(out_of_range(
            d.span,
            format!("{what} must be longer than zero"),
            "zero",
        ));
    }
}

fn health(diags: &mut Vec<Diagnostic>, h: &HealthCheck) {
    nonzero_duration(diags, &h.interval, "a health-check interval");
    nonzero_duration(diags, &h.timeout, "a health-check timeout");
    positive(diags, &h.unhealthy_threshold, "`unhealthy_threshold`");
    if h.timeout.value.ms >= h.interval.value.ms && h.interval.value.ms > 0 {
        diags.push(
            Diagnostic::new(
                Code::TimingConflict,
                h.timeout.span,
                "the health-check timeout is not shorter than its interval",
            )
            .primary_label("timeout")
            .label(h.interval.span, "interval")
            .help("make the timeout shorter than the interval, or checks overlap"),
        );
    }
}

/// Weights: positive, summing to 100 (W060); `counted` names what they are weights of.
fn weight_sum(
    diags: &mut Vec<Diagnostic>,
    weights: &[Spanned<f64>],
    span: Span,
    counted: &str,
    labels: bool,
) {
    for w in weights {
        non_negative(diags, w, "a weight");
    }
    let sum: f64 = weights.iter().map(|w| w.value).sum();
    if sum <= 0.0 {
        diags.push(out_of_range(
            span,
            format!("the weights of {counted} add up to zero"),
            "no traffic would flow",
        ));
        return;
    }
    if (sum - 100.0).abs() > 1e-9 {
        let shares = weights
            .iter()
            .map(|w| format!("{:.1}%", w.value * 100.0 / sum))
            .collect::<Vec<_>>()
            .join(" / ");
        let mut d = Diagnostic::new(
            Code::WeightsNotHundred,
            span,
            format!("the weights of {counted} add up to {sum}, not 100"),
        )
        .primary_label(format!("actual shares: {shares}"));
        if labels {
            for w in weights {
                d = d.label(w.span, format!("{:.1}%", w.value * 100.0 / sum));
            }
        }
        diags.push(d.help("adjust the weights so that they add up to 100"));
    }
}

pub fn check(policy: &Policy, syms: &Symbols<'_>, diags: &mut Vec<Diagnostic>) {
    for m in &policy.models {
        positive(diags, &m.max_tokens, "`max_tokens`");
        for (key, price) in model_prices(m) {
            non_negative(diags, price, &format!("`{key}`"));
        }
        if let Some(q) = &m.quality {
            fraction(diags, q, "`quality`");
        }
    }
    for a in &policy.request {
        if let (Some(min), Some(max)) = (&a.min, &a.max) {
            if min.value > max.value {
                diags.push(
                    out_of_range(
                        max.span,
                        format!("`{}` has `max` below `min`", a.name.value),
                        "max",
                    )
                    .label(min.span, "min")
                    .help("`min` must not exceed `max`; no value could be valid"),
                );
            }
        }
    }
    prices(policy, diags);
    providers(policy, diags);
    pools(policy, diags);
    failover(policy, diags);
    cost(policy, syms, diags);
    channels(policy, diags);
    inactive(policy, syms, diags);
}

/// A provider's timeouts: each longer than zero, and the first byte's no longer than
/// the whole call's, or it could never be the one to fire.
fn providers(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    for p in &policy.providers {
        for (key, t) in [
            ("timeout", &p.timeout),
            ("first_byte_timeout", &p.first_byte_timeout),
        ] {
            if let Some(t) = t {
                let what = format!("the `{key}` of provider `{}`", p.name.value);
                nonzero_duration(diags, t, &what);
            }
        }
        let (Some(first), Some(whole)) = (&p.first_byte_timeout, &p.timeout) else {
            continue;
        };
        if first.value.ms > whole.value.ms {
            diags.push(
                Diagnostic::new(
                    Code::TimingConflict,
                    first.span,
                    format!(
                        "provider `{}` waits longer for the first byte than for the whole call",
                        p.name.value
                    ),
                )
                .primary_label(format!("first byte: {}", print::duration(first.value)))
                .label(whole.span, format!("whole call: {}", print::duration(whole.value)))
                .help("make `first_byte_timeout` no longer than `timeout`: as written, the whole call's timeout always fires first"),
            );
        }
    }
}

fn pools(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    let Some(b) = &policy.balancing else { return };
    if let Some(h) = &b.health_check {
        health(diags, h);
    }
    if let Some(a) = &b.session_affinity {
        nonzero_duration(diags, &a.ttl, "the session-affinity `ttl`");
    }
    for pool in &b.pools {
        positive(diags, &pool.max_concurrent, "`max_concurrent`");
        if let Some(h) = &pool.health_check {
            health(diags, h);
        } else if b.health_check.is_none() {
            diags.push(
                Diagnostic::new(
                    Code::NoHealthCheck,
                    pool.name.span,
                    format!("pool `{}` has no health check", pool.name.value),
                )
                .primary_label("members are checked only by failing requests")
                .help("add `health_check` with `interval`, `timeout` and `unhealthy_threshold`, here or under `load_balancing`"),
            );
        }
        if pool.models.is_empty() {
            diags.push(out_of_range(
                pool.name.span,
                format!("pool `{}` has no models", pool.name.value),
                "empty pool",
            ));
        }
        let Some(weights) = &pool.weights else {
            continue;
        };
        if weights.value.len() != pool.models.len() {
            let models_span = pool
                .models
                .first()
                .zip(pool.models.last())
                .map_or(pool.name.span, |(a, b)| a.span.to(b.span));
            diags.push(
                Diagnostic::new(
                    Code::WeightsMismatch,
                    weights.span,
                    format!(
                        "pool `{}` has {} weights for {} models",
                        pool.name.value,
                        weights.value.len(),
                        pool.models.len()
                    ),
                )
                .primary_label(format!("{} weights", weights.value.len()))
                .label(models_span, format!("{} models", pool.models.len()))
                .help("give one weight per model, in the same order"),
            );
            continue;
        }
        weight_sum(
            diags,
            &weights.value,
            weights.span,
            &format!("pool `{}`", pool.name.value),
            false,
        );
    }
}

fn failover(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    let Some(f) = &policy.failover else { return };
    for t in &f.fallbacks {
        if t.timeout.value.ms == 0 {
            diags.push(out_of_range(
                t.timeout.span,
                "a failover timeout must be longer than zero".into(),
                "zero",
            ));
        }
        if t.provider.value == f.primary.value {
            diags.push(
                Diagnostic::new(
                    Code::DuplicateDefinition,
                    t.provider.span,
                    format!("`{}` is both the primary and a fallback", t.provider.value),
                )
                .primary_label("fallback")
                .label(f.primary.span, "primary")
                .help("a provider cannot stand in for itself; remove it from the fallbacks"),
            );
        }
    }
    let weights: Vec<Spanned<f64>> = f
        .fallbacks
        .iter()
        .filter_map(|t| t.weight.clone())
        .collect();
    if !weights.is_empty() && weights.len() < f.fallbacks.len() {
        for t in f.fallbacks.iter().filter(|t| t.weight.is_none()) {
            diags.push(missing_key(
                t.provider.span,
                format!("the fallback `{}` has no `weight`", t.provider.value),
                "the other fallbacks have weights",
                "give every fallback a `weight`, or none (equal shares)",
            ));
        }
    } else if !weights.is_empty() {
        weight_sum(
            diags,
            &weights,
            f.fallbacks_span,
            "the failover fallbacks",
            true,
        );
    }
    if let Some(s) = &f.scheduled {
        nonzero_duration(diags, &s.every, "the drill interval");
    }
    if let Some(r) = &f.recovery {
        nonzero_duration(diags, &r.interval, "the recovery interval");
        non_negative(diags, &r.max_retries, "`max_retries`");
    }
    // W062: a fallback allowed to be slower than the latency rule tolerates
    let latency = policy
        .cost
        .as_ref()
        .and_then(|c| c.switching.as_ref())
        .into_iter()
        .flat_map(|s| &s.rules)
        .find(|r| r.metric.value == Metric::LatencyP99);
    if let Some(rule) = latency {
        for t in &f.fallbacks {
            if t.timeout.value.ms as f64 > rule.threshold.value.value {
                diags.push(
                    Diagnostic::new(
                        Code::TimeoutAboveLatency,
                        t.timeout.span,
                        format!(
                            "failover to `{}` may take {} ms, above the {} ms p99 latency that triggers a switch",
                            t.provider.value, t.timeout.value.ms, rule.threshold.value.value
                        ),
                    )
                    .primary_label("timeout")
                    .label(rule.threshold.span, "latency threshold")
                    .help("lower the timeout below the threshold, or raise the threshold"),
                );
            }
        }
    }
}

/// Models that traffic can reach: rule targets (pools expanded) and cost-window targets.
fn routed_models<'p>(policy: &'p Policy, syms: &Symbols<'p>) -> Vec<&'p Model> {
    let mut out: Vec<&Model> = Vec::new();
    let mut add = |m: &'p Model| {
        if !out.iter().any(|o| o.name.value == m.name.value) {
            out.push(m);
        }
    };
    for rule in policy.routing.iter().flat_map(|r| &r.rules) {
        if let Some(t) = &rule.target {
            syms.target_models(t).into_iter().for_each(&mut add);
        }
    }
    for pool in syms.pools.values() {
        for m in &pool.models {
            if let Some(model) = syms.models.get(m.value.as_str()) {
                add(model);
            }
        }
    }
    out
}

fn cost(policy: &Policy, syms: &Symbols<'_>, diags: &mut Vec<Diagnostic>) {
    let Some(c) = &policy.cost else { return };
    let k = &c.constraints;
    if let Some(v) = &k.max_cost_per_session {
        positive(diags, v, "`max_cost_per_session`");
    }
    if let Some(v) = &k.max_daily_budget {
        positive(diags, v, "`max_daily_budget`");
    }
    if let (Some(s), Some(d)) = (&k.max_cost_per_session, &k.max_daily_budget) {
        if s.value > d.value {
            diags.push(
                out_of_range(
                    s.span,
                    "the session budget is larger than the daily budget".into(),
                    "per session",
                )
                .label(d.span, "per day")
                .help("a single session cannot spend more than a whole day"),
            );
        }
    }
    if let Some(q) = &k.quality_threshold {
        fraction(diags, q, "`quality_threshold`");
    }
    if let Some(sw) = &c.switching {
        nonzero_duration(diags, &sw.window, "the cost window");
        nonzero_duration(diags, &sw.check_interval, "`check_interval`");
        if sw.check_interval.value.ms > sw.window.value.ms && sw.window.value.ms > 0 {
            diags.push(
                Diagnostic::new(
                    Code::TimingConflict,
                    sw.check_interval.span,
                    "the window is checked less often than it is long",
                )
                .primary_label("check interval")
                .label(sw.window.span, "window")
                .help(
                    "make `check_interval` shorter than the window, or whole windows go unchecked",
                ),
            );
        }
        for rule in &sw.rules {
            if rule.threshold.value.value <= 0.0 {
                diags.push(out_of_range(
                    rule.threshold.span,
                    "a threshold must be greater than zero".into(),
                    "always breached",
                ));
            }
        }
    }

    let routed = routed_models(policy, syms);
    let mut budgets: Vec<(&str, Span, f64)> = Vec::new();
    if let Some(v) = &k.max_cost_per_session {
        budgets.push(("the session budget", v.span, v.value));
    }
    if let Some(v) = &k.max_daily_budget {
        budgets.push(("the daily budget", v.span, v.value));
    }
    for rule in c.switching.iter().flat_map(|s| &s.rules) {
        if rule.metric.value == Metric::CostPerTask {
            budgets.push((
                "the cost-per-task threshold",
                rule.threshold.span,
                rule.threshold.value.value,
            ));
        }
    }
    for (what, span, amount) in budgets {
        if amount <= 0.0 {
            continue;
        }
        let mut short: Vec<(&Model, f64)> = routed
            .iter()
            .filter(|m| m.cost_per_token.value > 0.0)
            .map(|m| (*m, amount / m.cost_per_token.value))
            .filter(|(_, tokens)| *tokens < MIN_TOKENS_PER_BUDGET)
            .collect();
        if short.is_empty() {
            continue;
        }
        short.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (worst, tokens) = short[0];
        let mut d = Diagnostic::new(
            Code::BudgetBelowPrice,
            span,
            format!(
                "{what} of {} buys only {} tokens of `{}`",
                dollars(amount),
                tokens.floor(),
                worst.name.value
            ),
        )
        .primary_label(format!(
            "fewer than {MIN_TOKENS_PER_BUDGET} tokens for {} model(s)",
            short.len()
        ));
        for (m, t) in &short {
            d = d.label(
                m.cost_per_token.span,
                format!(
                    "`{}`: ${} per token, {} tokens",
                    m.name.value,
                    m.cost_per_token.value,
                    t.floor()
                ),
            );
        }
        diags.push(d.help("`cost_per_token` is the price of one token (e.g. 0.000015 for $15 per million); check its unit, or raise the limit"));
    }

    if let Some(q) = &k.quality_threshold {
        let unscored: Vec<&Model> = routed
            .iter()
            .copied()
            .filter(|m| m.quality.is_none())
            .collect();
        if !unscored.is_empty() {
            let mut d = Diagnostic::new(
                Code::QualityUnenforceable,
                q.span,
                format!("the quality floor of {} cannot be enforced", q.value),
            )
            .primary_label(format!(
                "{} routed model(s) declare no `quality`",
                unscored.len()
            ));
            for m in unscored {
                d = d.label(m.name.span, format!("`{}` has no `quality`", m.name.value));
            }
            diags.push(d.help("give every model a `quality` score between 0 and 1"));
        }
    }
}

fn channels(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    for c in &policy.channels {
        if let Some(r) = &c.rate_limit {
            if r.value.count <= 0.0 {
                diags.push(out_of_range(
                    r.span,
                    "a rate limit must allow at least some messages".into(),
                    "zero",
                ));
            }
        }
    }
    for rule in policy.notifications.iter().flat_map(|n| &n.value) {
        if rule.channels.is_empty() {
            diags.push(out_of_range(
                rule.event.span,
                format!("the route for `{}` has no channels", rule.event.value),
                "delivered nowhere",
            ));
        }
        repeated(diags, &rule.channels);
    }
    for m in &policy.models {
        repeated(diags, &m.capabilities);
    }
    for pool in policy.balancing.iter().flat_map(|b| &b.pools) {
        repeated(diags, &pool.models);
    }
}

/// W031 for every name listed a second time.
fn repeated(diags: &mut Vec<Diagnostic>, names: &[Name]) {
    for (i, name) in names.iter().enumerate() {
        if let Some(first) = names[..i].iter().find(|c| c.value == name.value) {
            diags.push(
                Diagnostic::new(
                    Code::DuplicateListValue,
                    name.span,
                    format!("`{}` is listed twice", name.value),
                )
                .primary_label("repeated here")
                .label(first.span, "first listed here")
                .help("remove the repeat"),
            );
        }
    }
}

fn inactive(policy: &Policy, syms: &Symbols<'_>, diags: &mut Vec<Diagnostic>) {
    let mut uses: Vec<(Span, &str)> = Vec::new();
    for rule in policy.routing.iter().flat_map(|r| &r.rules) {
        if let Some(t) = &rule.target {
            if !matches!(t, Target::Pool(_)) {
                uses.push((t.name().span, t.name().value.as_str()));
            }
        }
    }
    for pool in syms.pools.values() {
        uses.extend(pool.models.iter().map(|m| (m.span, m.value.as_str())));
    }
    for (span, name) in uses {
        let Some(model) = syms.models.get(name) else {
            continue;
        };
        if model.status.value == ModelStatus::Active {
            continue;
        }
        let status = if model.status.value == ModelStatus::Deprecated {
            "deprecated"
        } else {
            "disabled"
        };
        diags.push(
            Diagnostic::new(
                Code::InactiveModel,
                span,
                format!("`{name}` is {status} but still in use"),
            )
            .primary_label("used here")
            .label(model.status.span, format!("marked {status} here"))
            .help("route to an active model, or set the status back to `active`"),
        );
    }
}
