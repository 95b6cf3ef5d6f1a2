//! Outcomes reported by callers (`POST /v1/report`): they end the decision's lease
//! (giving back its pool slot), feed the provider's health machine (passive health),
//! the cost window and the budgets. The proxy's attempts (`record_attempt`) go
//! through the same path, without the lease and with their reservations.

use serde::Deserialize;
use serde_json::Value as Json;

use super::attempts::{Attempt, Outcome, Usage};
use super::events::Effect;
use super::gateway::Gateway;
use super::ids::ModelIx;
use super::leases::Lease;
use super::reserve::Price;
use super::reserve::Reservation;
use super::route::RouteError;
use super::spend::{Settled, SpendSource};
use super::window::Sample;
use crate::diag::suggest::did_you_mean;
use crate::machines::EventKind;

/// Error kinds a report may name, and whether each counts against the provider.
pub const ERROR_KINDS: [(&str, bool); 7] = [
    ("timeout", true),
    ("connection", true),
    ("server_error", true),
    ("overloaded", true),
    ("rate_limited", true),
    ("invalid_request", false),
    ("content_filter", false),
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    #[serde(default)]
    pub decision_id: Option<String>,
    /// the model called, when there is no decision id (or to say which fallback was
    /// used instead of the decision's model)
    #[serde(default)]
    pub model: Option<String>,
    pub outcome: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    pub tokens: Option<f64>,
    #[serde(default)]
    pub cost: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Accepted {
    pub model: String,
    pub provider: String,
    /// whether the report ended a live decision (and gave back its pool slot)
    pub released: bool,
    /// the provider's health state after the report
    pub health: String,
    /// the call's cost in dollars: as reported, else its `tokens` at the model's
    /// `cost_per_token`, else unknown
    pub cost: Option<f64>,
    /// where `cost` comes from: `report`, `policy` (tokens × price), or
    /// `reservation` (a proxied success without usage, settled at its worst case)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_from: Option<&'static str>,
}

/// How a call's cost reaches the budgets.
#[derive(Debug)]
pub enum Billing<'s> {
    /// added to the day's and the session's spending (a report)
    Spend { session: Option<&'s str> },
    /// settled through the call's reservation, which gives back the rest
    Settle(Reservation),
}

/// One outcome, however it arrived (a report, an attempt), checked and attributed to
/// a model.
struct Observed<'a> {
    model: ModelIx,
    /// the error kind, `None` for a success
    error: Option<&'a str>,
    /// whether the error counts against the provider; `None` for a success
    counts_against: Option<bool>,
    latency_ms: Option<f64>,
    tokens: Option<f64>,
    cost: Option<f64>,
    /// where `cost` comes from, when given: `report`, or `policy` (priced already)
    cost_from: &'static str,
}

fn bad(message: impl Into<String>) -> RouteError {
    RouteError::new(400, "invalid_report", message)
}

/// The largest values one report may carry: beyond these a number is a unit mistake
/// (cents for dollars, microseconds for milliseconds) or garbage, and taking it would
/// spend a day's budget or switch a cost window on one report.
pub const MAX_COST: f64 = 1_000.0;
pub const MAX_TOKENS: f64 = 100_000_000.0;
pub const MAX_LATENCY_MS: f64 = 86_400_000.0;

fn plausible(v: Option<f64>, field: &str, max: f64, unit: &str) -> Result<(), RouteError> {
    match v {
        Some(x) if !x.is_finite() || x < 0.0 => Err(bad(format!(
            "`{field}` must be a non-negative number, not {x}"
        ))),
        Some(x) if x > max => Err(bad(format!(
            "`{field}` of {x} {unit} for one call is not plausible (at most {max})"
        ))
        .help(format!("`{field}` is in {unit}"))),
        _ => Ok(()),
    }
}

impl Gateway {
    /// Takes one reported outcome. Returns what it was attributed to and the effects
    /// (probes) the health machine asked for.
    pub fn report(
        &self,
        json: Json,
        now_ms: u64,
        wall_ms: u64,
    ) -> Result<(Accepted, Vec<Effect>), RouteError> {
        let report: Report = serde_json::from_value(json).map_err(|e| {
            bad(format!("{e}")).help(
                "a report looks like {\"decision_id\": \"d-1\", \"outcome\": \"success\", \"latency_ms\": 850, \"tokens\": 1200, \"cost\": 0.004}",
            )
        })?;
        let counts_against = match (report.outcome.as_str(), report.error.as_deref()) {
            ("success", None) => None,
            ("success", Some(_)) => return Err(bad("a successful outcome has no `error`")),
            ("error", Some(kind)) => match ERROR_KINDS.iter().find(|(k, _)| *k == kind) {
                Some((_, counts)) => Some(*counts),
                None => {
                    let kinds: Vec<&str> = ERROR_KINDS.iter().map(|(k, _)| *k).collect();
                    let mut e = bad(format!("`{kind}` is not an error kind"));
                    e.help = Some(
                        did_you_mean(kind, kinds.iter().copied())
                            .unwrap_or_else(|| format!("the error kinds are {}", kinds.join(", "))),
                    );
                    e.attribute = Some("error".into());
                    return Err(e);
                }
            },
            ("error", None) => {
                return Err(bad("an error outcome needs `error`: its kind")
                    .help(format!("one of {}", ERROR_KINDS.map(|(k, _)| k).join(", "))))
            }
            (other, _) => {
                return Err(bad(format!("`{other}` is not an outcome"))
                    .help("the outcomes are `success` and `error`"))
            }
        };
        plausible(
            report.latency_ms,
            "latency_ms",
            MAX_LATENCY_MS,
            "milliseconds",
        )?;
        plausible(report.tokens, "tokens", MAX_TOKENS, "tokens")?;
        plausible(report.cost, "cost", MAX_COST, "dollars")?;

        // a misspelt model must not use up the decision: check it before the lease ends
        if let Some(name) = &report.model {
            if self.model(name).is_none() {
                let mut e = bad(format!("model `{name}` is not in the policy"));
                e.attribute = Some("model".into());
                e.help = did_you_mean(name, self.models().iter().map(|m| m.name.as_str()));
                return Err(e);
            }
        }
        let lease = match &report.decision_id {
            Some(id) => {
                let lease = self.end_decision(id)?;
                if lease.is_none() && report.model.is_none() {
                    return Err(RouteError::new(
                        404,
                        "unknown_decision",
                        format!("decision `{id}` is unknown: already reported, expired, or made before a restart"),
                    )
                    .help("add `model` to the report so that its outcome still counts"));
                }
                lease
            }
            None => None,
        };
        let released = lease.is_some();
        let model_name: String =
            match (&report.model, &lease) {
                (Some(m), _) => m.clone(),
                (None, Some(l)) if l.generation == self.generation => self
                    .models()
                    .get(l.model as usize)
                    .map(|m| m.name.clone())
                    .unwrap_or_default(),
                (None, Some(l)) => match self.shared.model_name(l.generation, l.model) {
                    Some(name) => name,
                    None => return Err(RouteError::new(
                        404,
                        "unknown_decision",
                        "the decision was made by a bundle too many reloads ago to name its model",
                    )
                    .help("add `model` to the report")),
                },
                (None, None) => return Err(bad("a report needs `decision_id` or `model`")),
            };
        let Some(model) = self.model(&model_name) else {
            let mut e = bad(format!("model `{model_name}` is not in the policy"));
            e.attribute = Some("model".into());
            e.help = did_you_mean(&model_name, self.models().iter().map(|m| m.name.as_str()));
            return Err(e);
        };
        // a price made from `tokens` is held to the same bound as a reported cost
        if let (None, Some(t)) = (report.cost, report.tokens) {
            let priced = t * self.model_spec(model).cost_per_token;
            if priced > MAX_COST {
                let mut e = bad(format!(
                    "`tokens` of {t} at the price of `{model_name}` is ${priced:.2} for one call, which is not plausible (at most ${MAX_COST})"
                ))
                .help("`tokens` counts the call's tokens; report again with `model` and the right `tokens`, or with `cost` in dollars");
                e.attribute = Some("tokens".into());
                return Err(e);
            }
        }
        let session = lease.as_ref().and_then(|l| l.session.clone());
        drop(lease);
        let error = report.error.as_deref();
        Ok(self.take(
            Observed {
                model,
                error,
                counts_against,
                latency_ms: report.latency_ms,
                tokens: report.tokens,
                cost: report.cost,
                cost_from: "report",
            },
            Billing::Spend {
                session: session.as_deref(),
            },
            released,
            now_ms,
            wall_ms,
        ))
    }

    /// Takes how one attempt of the proxy ended (see `attempts`), through the same
    /// path as a report: counters, passive health, the cost window and the budgets —
    /// spent directly, or settled through the attempt's reservation. The call is
    /// priced from the policy: `billed` (the usage a success reported, or what a
    /// stream cut after its first byte had used) at the model's input and output
    /// prices; a success without usage settles a reservation at its worst case, since
    /// the provider billed something and nothing says less. Leases are the caller's: a
    /// request holds its decision's slot across all of its attempts.
    pub fn record_attempt(
        &self,
        attempt: &Attempt<'_>,
        billed: Option<Usage>,
        billing: Billing<'_>,
        now_ms: u64,
        wall_ms: u64,
    ) -> Result<(Accepted, Vec<Effect>), RouteError> {
        let name = attempt.target.model;
        let Some(model) = self.model(name) else {
            let mut e = bad(format!("model `{name}` is not in the policy"));
            e.attribute = Some("model".into());
            return Err(e);
        };
        let error = attempt.outcome.error_kind();
        let counts_against = error.map(|kind| {
            ERROR_KINDS
                .iter()
                .find(|(k, _)| *k == kind)
                .is_some_and(|(_, counts)| *counts)
        });
        let billed = match attempt.outcome {
            Outcome::Success { usage: Some(u) } => Some(u),
            _ => billed,
        };
        let price = Price::of(self.model_spec(model));
        let cost = billed.map(|u| {
            (u.input_tokens as f64 * price.input + u.output_tokens as f64 * price.output)
                .min(MAX_COST)
        });
        Ok(self.take(
            Observed {
                model,
                error,
                counts_against,
                latency_ms: Some(attempt.latency_ms as f64),
                tokens: billed.map(|u| u.total() as f64),
                cost,
                cost_from: "policy",
            },
            billing,
            false,
            now_ms,
            wall_ms,
        ))
    }

    /// Ends the lease of decision `id` (giving back its pool slot): `Ok(None)` when it
    /// is not live (already ended, expired, or made by another process), an error when
    /// `id` is not a decision id.
    pub fn end_decision(&self, id: &str) -> Result<Option<Lease>, RouteError> {
        let (boot, n) = id
            .strip_prefix("d-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(boot, n)| Some((boot, n.parse::<u64>().ok()?)))
            .ok_or_else(|| {
                bad(format!("`{id}` is not a decision id"))
                    .help("decision ids look like `d-1f3a9c0e-42`, as `/v1/route` returned them")
            })?;
        // an id of another process (before a restart, another replica) is not ours
        Ok((boot == self.shared.boot)
            .then(|| self.shared.leases.end(n))
            .flatten())
    }

    /// One outcome, checked and attributed, into counters, the budgets, the cost
    /// window and the provider's health machine.
    fn take(
        &self,
        o: Observed<'_>,
        billing: Billing<'_>,
        released: bool,
        now_ms: u64,
        wall_ms: u64,
    ) -> (Accepted, Vec<Effect>) {
        let stats = &self.shared.stats;
        let model_name = self.ix.names.models[o.model].to_string();
        let provider = self.provider_of(o.model);
        let provider_name = provider
            .map_or("", |p| &*self.ix.names.providers[p])
            .to_string();
        stats
            .outcomes
            .inc(&[&provider_name, o.error.unwrap_or("success")]);
        if let Some(ms) = o.latency_ms {
            stats.call_histogram(&model_name).observe(ms / 1000.0);
        }
        if let Some(t) = o.tokens {
            stats.tokens.add(&model_name, t);
        }
        // a report without a cost is priced from the policy, so that budgets and cost
        // windows still see the call
        let (mut cost, mut cost_from) = match (o.cost, o.tokens) {
            (Some(c), _) => (Some(c), Some(o.cost_from)),
            (None, Some(t)) => (
                Some(t * self.model_spec(o.model).cost_per_token),
                Some("policy"),
            ),
            (None, None) => (None, None),
        };
        let (session, decision, source) = match billing {
            Billing::Spend { session } => {
                if let Some(c) = cost {
                    self.shared.budgets.spend(session, c, wall_ms);
                }
                (session.map(str::to_string), None, SpendSource::Report)
            }
            Billing::Settle(r) => {
                if cost.is_none() && o.error.is_none() {
                    (cost, cost_from) = (Some(r.amount()), Some("reservation"));
                }
                let session = r.session().map(str::to_string);
                let decision = r.decision().map(str::to_string);
                r.settle(cost.unwrap_or(0.0), wall_ms);
                (session, decision, SpendSource::Proxy)
            }
        };
        if let (Some(log), Some(c)) = (self.shared.spend_log.get(), cost) {
            if c > 0.0 && c.is_finite() {
                log.settled(&Settled {
                    day: self.shared.budgets.day_of(wall_ms),
                    wall_ms,
                    dollars: c,
                    session: session.as_deref(),
                    model: &model_name,
                    provider: &provider_name,
                    decision: decision.as_deref(),
                    source,
                });
            }
        }
        if let Some(c) = cost {
            stats.cost.add(&model_name, c);
        }
        self.shared.window.push(Sample {
            at_ms: now_ms,
            cost,
            latency_ms: o.latency_ms,
            error: o.counts_against == Some(true),
        });
        let mut effects = Vec::new();
        if let Some(p) = provider {
            let half_open = self.half_open(p);
            let (kind, reason) = match (o.counts_against, o.error) {
                (None, _) if half_open => (
                    Some(EventKind::ProbeOk),
                    "half-open: a reported success".to_string(),
                ),
                (None, _) => (Some(EventKind::Success), "reported success".to_string()),
                (Some(true), Some(k)) if half_open => (
                    Some(EventKind::ProbeFailed),
                    format!("half-open: a reported error: {k}"),
                ),
                (Some(true), Some(k)) => (Some(EventKind::Failure), format!("reported error: {k}")),
                _ => (None, String::new()),
            };
            if let Some(kind) = kind {
                effects = self.provider_event(p, kind, now_ms, &reason);
            }
        }
        let health = provider
            .and_then(|p| {
                Some(crate::runtime::gateway::Gateway::state_of(
                    self.health_machine(p)?,
                    &self.live.providers[p].instance,
                ))
            })
            .unwrap_or_else(|| "unknown".into());
        (
            Accepted {
                model: model_name,
                provider: provider_name,
                released,
                health,
                cost,
                cost_from,
            },
            effects,
        )
    }
}
