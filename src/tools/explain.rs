//! `rulec explain`: the decision for one request, the rule that made it, and why each
//! earlier rule did not match — comparison by comparison, with source lines.

use serde_json::{json, Value as Json};

use crate::compile::request::{Request, RequestError};
use crate::compile::value::Scalar;
use crate::compile::{interp, Routing};
use crate::policy::Policy;
use crate::source::SourceMap;
use crate::syntax::print::{print, value_to_string};
use crate::syntax::{Expr, Operand};

/// One explained decision.
pub struct Explanation {
    pub request: Request,
    pub rule: Option<u32>,
    /// for each earlier rule: why it did not match
    pub misses: Vec<(u32, Vec<String>)>,
}

pub fn explain(routing: &Routing, json: &Json) -> Result<Explanation, RequestError> {
    let request = routing.schema.parse(json)?;
    let rule = routing.table.decide(&request.values);
    let get = |name: &str| {
        routing
            .schema
            .slot(name)
            .and_then(|i| request.values[i].as_ref())
    };
    let reference = interp::first_match(&routing.conditions, &get).map(|i| i as u32);
    // the table and the interpreter are proven equal by property tests; say so loudly if not
    debug_assert_eq!(rule, reference, "table and interpreter disagree");
    let upto = rule.unwrap_or(routing.conditions.len() as u32);
    let misses = (0..upto)
        .filter_map(|r| {
            let cond = routing.conditions[r as usize].as_ref()?;
            let mut reasons = Vec::new();
            why_false(cond, &get, &mut reasons);
            Some((r, reasons))
        })
        .collect();
    Ok(Explanation {
        request,
        rule,
        misses,
    })
}

fn current<'a>(o: &Operand, get: &dyn Fn(&str) -> Option<&'a Scalar>) -> String {
    match o {
        Operand::Attr(name, _) => match get(name) {
            Some(Scalar::Str(s)) => format!("`{name}` is {s:?}"),
            Some(Scalar::Num(n)) => format!("`{name}` is {n}"),
            Some(Scalar::Bool(b)) => format!("`{name}` is {b}"),
            None => format!("`{name}` is absent"),
        },
        Operand::Lit(l) => value_to_string(&l.value),
    }
}

/// The parts of a false condition that make it false.
fn why_false<'a>(expr: &'a Expr, get: &dyn Fn(&str) -> Option<&'a Scalar>, out: &mut Vec<String>) {
    let holds = |e: &'a Expr| interp::eval(e, &|n: &str| get(n));
    match expr {
        Expr::And(items, _) => {
            if let Some(first) = items.iter().find(|e| !holds(e)) {
                why_false(first, get, out);
            }
        }
        Expr::Or(items, _) => items.iter().for_each(|e| why_false(e, get, out)),
        Expr::Not(inner, _) => out.push(format!(
            "`{}` is true, so `{}` is false",
            print(inner),
            print(expr)
        )),
        Expr::Compare { left, right, .. } => {
            let attr = if matches!(left, Operand::Attr(..)) {
                left
            } else {
                right
            };
            out.push(format!(
                "`{}` is false: {}",
                print(expr),
                current(attr, get)
            ));
        }
        Expr::In { operand, .. } | Expr::Bare(operand) => out.push(format!(
            "`{}` is false: {}",
            print(expr),
            current(operand, get)
        )),
    }
}

/// The human report, with the source lines of the rules involved.
pub fn render(routing: &Routing, policy: &Policy, sources: &SourceMap, e: &Explanation) -> String {
    let mut out = String::new();
    let rules = &routing.table.rules;
    let req = crate::lint::rules::compact_json(&routing.schema.to_json(&e.request));
    out.push_str(&format!("request: {req}\n"));
    let source_lines = |r: u32| -> String {
        let Some(rule) = policy
            .routing
            .as_ref()
            .and_then(|x| x.rules.get(r as usize))
        else {
            return String::new();
        };
        let file = sources.get(rule.span.file);
        let (first, _) = file.line_col(rule.span.start as usize);
        let (last, _) = file.line_col(rule.span.end.saturating_sub(1) as usize);
        (first..=last)
            .map(|l| format!("  {l:>4} | {}\n", file.line_text(l)))
            .collect()
    };
    match e.rule {
        Some(r) => {
            let info = &rules[r as usize];
            out.push_str(&format!(
                "decision: {}, by rule `{}` ({}:{}){}\n",
                info.target_text(),
                info.id,
                info.source.file,
                info.source.line,
                if info.fallback { ", the fallback" } else { "" }
            ));
            out.push_str(&source_lines(r));
        }
        None => out.push_str("decision: none: no rule matches and there is no fallback\n"),
    }
    if e.misses.is_empty() {
        return out;
    }
    out.push_str("earlier rules that did not match:\n");
    for (r, reasons) in &e.misses {
        let info = &rules[*r as usize];
        out.push_str(&format!(
            "  rule `{}` ({}:{}):\n",
            info.id, info.source.file, info.source.line
        ));
        for reason in reasons {
            out.push_str(&format!("    - {reason}\n"));
        }
    }
    out
}

/// The machine-readable report (the server answers decisions in the same terms).
pub fn to_json(routing: &Routing, e: &Explanation) -> Json {
    let rules = &routing.table.rules;
    let decision = e.rule.map(|r| {
        let info = &rules[r as usize];
        json!({
            "kind": info.target.kind,
            "target": info.target.name,
            "priority": info.priority,
            "rule": info.id,
            "rule_index": r,
            "fallback": info.fallback,
            "source": { "file": info.source.file, "line": info.source.line },
        })
    });
    json!({
        "request": routing.schema.to_json(&e.request),
        "decision": decision,
        "not_matched": e.misses.iter().map(|(r, reasons)| json!({
            "rule": rules[*r as usize].id,
            "source": { "file": rules[*r as usize].source.file, "line": rules[*r as usize].source.line },
            "reasons": reasons,
        })).collect::<Vec<_>>(),
    })
}
