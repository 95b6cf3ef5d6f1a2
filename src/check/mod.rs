//! Stage 4: checking a decoded policy: names, types, capabilities, numbers and
//! notifications. Each check reads the policy through one [`Analysis`] (its symbols and
//! schema, built once) and adds diagnostics; none changes the policy.

pub mod capabilities;
pub mod exprs;
pub mod names;
pub mod notify;
pub mod numbers;
pub mod schema;

use crate::diag::Diagnostic;
use crate::policy::{Policy, Service, Symbols};

pub use schema::Schema;

/// A policy with what every later stage looks up in it, worked out once: its symbol
/// table, its request schema, the models in service and their price ladder, and the
/// diagnostics found so far. The graphs, the compiler, the analyses and the bundle
/// read it instead of building their own.
pub struct Analysis<'p> {
    pub policy: &'p Policy,
    pub symbols: Symbols<'p>,
    pub schema: Schema,
    pub service: Service<'p>,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'p> Analysis<'p> {
    /// The lookups of a policy, before any check has run.
    pub fn new(policy: &'p Policy) -> Analysis<'p> {
        let symbols = Symbols::new(policy);
        let schema = Schema::for_policy(policy);
        let service = Service::new(policy, &symbols);
        Analysis {
            policy,
            symbols,
            schema,
            service,
            diagnostics: Vec::new(),
        }
    }
}

/// Checks a decoded policy; its findings follow `so_far` (what reading and decoding
/// it found) in the analysis's diagnostics.
pub fn analyse(policy: &Policy, so_far: Vec<Diagnostic>) -> Analysis<'_> {
    let mut analysis = Analysis::new(policy);
    analysis.diagnostics = so_far;
    let (syms, schema) = (&analysis.symbols, &analysis.schema);
    let diags = &mut analysis.diagnostics;
    names::check(policy, syms, diags);
    exprs::check(policy, schema, diags);
    capabilities::check(policy, schema, syms, diags);
    numbers::check(policy, syms, diags);
    notify::check(policy, diags);
    routing_order(policy, diags);
    analysis
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
