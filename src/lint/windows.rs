//! Context windows (W052): a rule whose condition admits `estimated_tokens` above the
//! `max_tokens` of its model, or of a member of its pool, with a request that takes
//! that path — the token-count twin of the capability check (W051).

use crate::compile::domain::DomainKind;
use crate::compile::request::Request;
use crate::compile::terms::Cube;
use crate::compile::value::Scalar;
use crate::compile::Routing;
use crate::diag::{Code, Diagnostic};
use crate::policy::RouteRule;

use super::rules::compact_json;

/// The attribute that carries a request's size in tokens.
const TOKENS: &str = "estimated_tokens";

/// A token count in `class` of the domain above `window`, if the class has one.
fn count_above(kind: &DomainKind, bounds: (f64, f64, bool), window: f64) -> Option<f64> {
    let DomainKind::Numeric { integer, max, .. } = kind else {
        return None;
    };
    let (lo, hi, point) = bounds;
    let v = if point {
        lo
    } else if *integer {
        lo.max(window).floor() + 1.0
    } else {
        lo.max(window) + 1.0
    };
    let inside = point || v < hi;
    (inside && v > window && max.is_none_or(|m| v <= m)).then_some(v)
}

/// An example request from `cube` with the token count set to `tokens`.
fn example_request(routing: &Routing, cube: &Cube, d: usize, tokens: f64) -> Request {
    let domains = &routing.table.domains;
    let classes = super::cover::point(cube, |i| domains[i].absent());
    let mut request = Request {
        values: vec![None; routing.schema.attributes.len()],
    };
    for (i, class) in classes.into_iter().enumerate() {
        let slot = routing.table.slots[i] as usize;
        request.values[slot] = domains[i].representative(class);
    }
    let slot = routing.table.slots[d] as usize;
    request.values[slot] = Some(Scalar::Num(tokens));
    request
}

/// Some model in service holds `tokens` and has every capability in `needs`: only
/// then is there a better place for the request than a model too small for it.
fn a_model_holds(syms: &crate::check::names::Symbols<'_>, tokens: f64, needs: &[&str]) -> bool {
    syms.models.values().any(|m| {
        m.status.value != crate::policy::ModelStatus::Disabled
            && m.max_tokens.value >= tokens
            && needs
                .iter()
                .all(|n| m.capabilities.iter().any(|c| c.value == *n))
    })
}

/// W052 for one rule, given the pieces of the request space it decides.
pub fn check(
    diags: &mut Vec<Diagnostic>,
    syms: &crate::check::names::Symbols<'_>,
    routing: &Routing,
    rule: &RouteRule,
    reached: &[Cube],
) {
    // only where the policy tests request sizes: a policy that never mentions
    // `estimated_tokens` routes without regard to size on purpose
    let Some(d) = routing.table.domains.iter().position(|x| x.attr == TOKENS) else {
        return;
    };
    let Some(target) = &rule.target else {
        return;
    };
    let domain = &routing.table.domains[d];
    for model in syms.target_models(target) {
        let window = model.max_tokens.value;
        if window <= 0.0 {
            continue; // E061 already
        }
        // a request that no model in service can hold (by size and capabilities)
        // has nowhere better to go: only a model that could take it makes a finding
        let found = reached.iter().find_map(|piece| {
            piece[d].iter().find_map(|class| {
                if !domain.live.get(class as usize).copied().unwrap_or(false) {
                    return None;
                }
                let bounds = domain.bounds(class)?;
                let tokens = count_above(&domain.kind, bounds, window)?;
                let request = example_request(routing, piece, d, tokens);
                a_model_holds(
                    syms,
                    tokens,
                    &routing.schema.required_capabilities(&request.values),
                )
                .then_some(request)
            })
        });
        let Some(request) = found else {
            continue;
        };
        let window_text =
            crate::compile::domain::format_number(window, crate::compile::domain::Unit::Plain);
        let help = if rule.is_fallback {
            format!("route requests above {window_text} tokens to a model with a larger window, in rules before the fallback")
        } else {
            format!(
                "bound the rule (`&& {TOKENS} <= {window_text}`), or route larger requests to a model with a larger window before it"
            )
        };
        diags.push(
            Diagnostic::new(
                Code::ContextWindowReach,
                rule_span(rule),
                format!(
                    "requests above {window_text} tokens can reach `{}` through rule `{}`, beyond its context window",
                    model.name.value,
                    rule.id()
                ),
            )
            .primary_label(format!(
                "for example {}",
                compact_json(&routing.schema.to_json(&request))
            ))
            .label(
                target.name().span,
                format!("routed to `{}` here", target.name().value),
            )
            .label(
                model.max_tokens.span,
                format!("`{}` holds at most {window_text} tokens", model.name.value),
            )
            .help(help),
        );
    }
}

fn rule_span(rule: &RouteRule) -> crate::source::Span {
    match (&rule.condition, &rule.target) {
        (Some(c), _) => c.node.span,
        (None, Some(t)) => t.name().span,
        (None, None) => rule.span,
    }
}
