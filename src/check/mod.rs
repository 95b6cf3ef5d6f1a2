//! Stage 4: checking a decoded policy: names, types, capabilities, numbers and
//! notifications. Each check reads the policy and adds diagnostics; none changes it.

pub mod capabilities;
pub mod exprs;
pub mod names;
pub mod notify;
pub mod numbers;
pub mod schema;

use crate::diag::Diagnostic;
use crate::policy::Policy;

pub use schema::Schema;

pub fn check(policy: &Policy) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let syms = names::Symbols::new(policy);
    let schema = Schema::for_policy(policy);
    names::check(policy, &syms, &mut diags);
    exprs::check(policy, &schema, &mut diags);
    capabilities::check(policy, &schema, &syms, &mut diags);
    numbers::check(policy, &syms, &mut diags);
    notify::check(policy, &mut diags);
    routing_order(policy, &mut diags);
    diags
}

/// E041: the fallback must be the single last rule.
fn routing_order(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    use crate::diag::Code;
    let Some(routing) = &policy.routing else {
        return;
    };
    let fallbacks: Vec<_> = routing.rules.iter().filter(|r| r.is_fallback).collect();
    if let Some(first) = fallbacks.first() {
        if let Some(after) = routing.rules.iter().find(|r| r.index > first.index) {
            let what = if after.is_fallback {
                "a second fallback"
            } else {
                "rules after the fallback never run"
            };
            diags.push(
                Diagnostic::new(Code::FallbackNotLast, after.span, what)
                    .primary_label("never reached")
                    .label(first.span, "the fallback matches every request")
                    .help("move the fallback to the end and keep only one"),
            );
        }
    }
}
