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
fn example(routing: &Routing, cube: &Cube, d: usize, tokens: f64) -> String {
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
    compact_json(&routing.schema.to_json(&request))
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
        // above the largest window of all no model can hold the request: there is
        // nowhere better to route it, so only a larger model elsewhere makes a finding
        let largest = syms
            .models
            .values()
            .map(|m| m.max_tokens.value)
            .fold(0.0, f64::max);
        if largest <= window {
            continue;
        }
        let found = reached.iter().find_map(|piece| {
            piece[d].iter().find_map(|class| {
                if !domain.live.get(class as usize).copied().unwrap_or(false) {
                    return None;
                }
                let bounds = domain.bounds(class)?;
                count_above(&domain.kind, bounds, window).map(|v| (piece, v))
            })
        });
        let Some((piece, tokens)) = found else {
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
            .primary_label(format!("for example {}", example(routing, piece, d, tokens)))
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
