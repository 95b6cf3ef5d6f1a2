//! Analyses of the compiled routing rules: rules that never fire (W042), conditions
//! that match nothing (W043) or everything (W044), requests no rule covers (W045),
//! overlaps (I046) and capability gaps reachable by a concrete request (W051); context
//! windows (W052) are in `windows`.

use crate::check::{Analysis, Schema};
use crate::compile::request::Request;
use crate::compile::terms::{cube_is_empty, Cube};
use crate::compile::Routing;
use crate::diag::{Code, Diagnostic};
use crate::policy::RouteRule;
use crate::source::Span;

use super::cover::{intersecting_rules, point, uncovered, Residual, TermIndex};

/// Most earlier rules pointed at with a label of their own; the message names them all.
const MAX_NAMED: usize = 3;

pub struct Options {
    /// compute the informational overlaps too
    pub infos: bool,
}

/// An example request in a box, as compact JSON; `extra` sets an attribute the table
/// does not test.
pub fn example(routing: &Routing, cube: &Cube, extra: Option<(&str, &str)>) -> String {
    let domains = &routing.table.domains;
    let classes = point(cube, |d| domains[d].absent());
    let mut request = Request {
        values: vec![None; routing.schema.attributes.len()],
    };
    for (d, class) in classes.into_iter().enumerate() {
        let slot = routing.table.slots[d] as usize;
        request.values[slot] = domains[d].representative(class);
    }
    if let Some((name, value)) = extra {
        if let Some(slot) = routing.schema.slot(name) {
            request.values[slot] = Some(crate::compile::value::Scalar::Str(value.to_string()));
        }
    }
    compact_json(&routing.schema.to_json(&request))
}

/// `{"a": 1, "b": "x"}`: one line, spaced like people write it.
pub fn compact_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        serde_json::Value::String(k.clone()),
                        compact_json(v)
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        other => other.to_string(),
    }
}

fn condition_span(rule: &RouteRule) -> Span {
    match (&rule.condition, &rule.target) {
        (Some(c), _) => c.node.span,
        (None, Some(t)) => t.name().span,
        (None, None) => rule.span,
    }
}

// lists are never cut: the message is what JSON and SARIF carry, and a tool reading
// "…, 1 more" cannot know the one
fn names(rules: &[&RouteRule], ids: &[u32]) -> String {
    let list: Vec<String> = ids
        .iter()
        .map(|i| format!("`{}`", rules[*i as usize].id()))
        .collect();
    list.join(", ")
}

pub fn check(analysis: &Analysis<'_>, routing: &Routing, opts: &Options) -> Vec<Diagnostic> {
    let (policy, schema, syms) = (analysis.policy, &analysis.schema, &analysis.symbols);
    let mut diags = Vec::new();
    let Some(list) = &policy.routing else {
        return diags;
    };
    let rules: Vec<&RouteRule> = list.rules.iter().collect();
    let terms = &routing.terms;
    // the bitset index only serves the informational overlaps
    let index = opts
        .infos
        .then(|| TermIndex::new(&routing.table.domains, terms));
    let universe = crate::compile::terms::universe(&routing.table.domains);

    // the range of boxes of each rule
    let mut ranges = vec![(0usize, 0usize); rules.len()];
    let mut t = 0;
    for (r, range) in ranges.iter_mut().enumerate() {
        let start = t;
        while t < terms.len() && terms[t].0 as usize == r {
            t += 1;
        }
        *range = (start, t);
    }

    let mut residual = Residual::new(universe.clone());
    for (r, rule) in rules.iter().enumerate() {
        let (start, end) = ranges[r];
        if start == end {
            if rule.condition.is_some() {
                diags.push(
                    Diagnostic::new(Code::NeverMatches, condition_span(rule), format!("the condition of rule `{}` matches no request", rule.id()))
                        .primary_label("no request satisfies this")
                        .help("its parts contradict each other or lie outside the attributes' declared ranges"),
                );
            }
            continue;
        }
        let own: Vec<&Cube> = terms[start..end].iter().map(|(_, c)| c).collect();
        let reached = residual.claim(&own);
        capabilities(&mut diags, syms, schema, routing, rule, &reached);
        super::windows::check(&mut diags, syms, routing, rule, &reached);
        if reached.is_empty() {
            let shadows: Vec<u32> = {
                let mut v: Vec<u32> = (start..end)
                    .flat_map(|i| intersecting_rules(terms, &terms[i].1, start, MAX_NAMED + 1))
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            let mut d = Diagnostic::new(
                Code::ShadowedRule,
                condition_span(rule),
                format!("rule `{}` can never fire", rule.id()),
            )
            .primary_label(format!(
                "every request it matches is taken by {}",
                names(&rules, &shadows)
            ));
            for s in shadows.iter().take(MAX_NAMED) {
                let earlier = rules[*s as usize];
                d = d.label(
                    condition_span(earlier),
                    format!("`{}` comes first", earlier.id()),
                );
            }
            diags.push(d.help(format!(
                "move `{}` above the rules that shadow it, narrow them, or delete it",
                rule.id()
            )));
            continue;
        }
        if !rule.is_fallback && uncovered(&universe, &own).is_none() {
            diags.push(
                Diagnostic::new(
                    Code::AlwaysMatches,
                    condition_span(rule),
                    format!("rule `{}` matches every request", rule.id()),
                )
                .primary_label("always true")
                .help("write it as `- fallback: NAME` at the end, or narrow the condition"),
            );
        }
        if opts.infos && !rule.is_fallback {
            if let Some(index) = &index {
                overlaps(&mut diags, routing, index, &rules, &ranges, r);
            }
        }
    }

    if !rules.iter().any(|r| r.is_fallback) {
        if let Some(hole) = residual.first() {
            diags.push(
                Diagnostic::new(Code::Uncovered, list.span, "some requests match no rule")
                    .primary_label(format!("for example {}", example(routing, hole, None)))
                    .help("add `- fallback: NAME` as the last rule"),
            );
        }
    }

    diags
}

fn overlaps(
    diags: &mut Vec<Diagnostic>,
    routing: &Routing,
    index: &TermIndex<'_>,
    rules: &[&RouteRule],
    ranges: &[(usize, usize)],
    r: usize,
) {
    let (start, end) = ranges[r];
    let terms = &routing.terms;
    let mut earlier: Vec<u32> = (start..end)
        .flat_map(|i| intersecting_rules(terms, &terms[i].1, start, MAX_NAMED + 1))
        .collect();
    earlier.sort_unstable();
    earlier.dedup();
    let Some(&first) = earlier.first() else {
        return;
    };
    // an example that the earlier rule decides: in both, and in no rule before it
    let (fs, fe) = ranges[first as usize];
    let sample = (start..end).find_map(|i| {
        (fs..fe).find_map(|j| {
            let both = crate::compile::terms::cube_and(&terms[i].1, &terms[j].1);
            if cube_is_empty(&both) {
                return None;
            }
            let before = index.candidates(&both, fs);
            uncovered(&both, &before)
        })
    });
    let rule = rules[r];
    let mut d = Diagnostic::new(
        Code::OverlappingRules,
        condition_span(rule),
        format!("rule `{}` overlaps {}", rule.id(), names(rules, &earlier)),
    )
    .primary_label(match &sample {
        Some(s) => format!("both match {}", example(routing, s, None)),
        None => "some requests match both".to_string(),
    });
    for e in earlier.iter().take(MAX_NAMED) {
        d = d.label(
            condition_span(rules[*e as usize]),
            format!("`{}` comes first and decides them", rules[*e as usize].id()),
        );
    }
    diags.push(d.help("the earlier rule decides requests in the overlap; reorder the rules if that is not intended"));
}

/// What a rule's model lacks for the attribute values that can reach it.
struct Gap<'p> {
    model: &'p str,
    values: Vec<String>,
    caps: Vec<String>,
    example: String,
}

/// W051 for one rule, given the pieces of the request space it decides.
fn capabilities(
    diags: &mut Vec<Diagnostic>,
    syms: &crate::policy::Symbols<'_>,
    schema: &Schema,
    routing: &Routing,
    rule: &RouteRule,
    reached: &[Cube],
) {
    // requirements bind only where the policy uses the attribute: a policy that never
    // tests nor declares `task_type` is not judged by the built-in task types
    let used = |name: &str| {
        routing.table.domains.iter().any(|d| d.attr == name)
            || schema.get(name).is_some_and(|a| a.span.is_some())
    };
    for attr in schema
        .attrs
        .iter()
        .filter(|a| !a.requires.is_empty() && used(&a.name))
    {
        let domain = routing
            .table
            .domains
            .iter()
            .position(|d| d.attr == attr.name);
        {
            let (Some(target), Some(any)) = (&rule.target, reached.first()) else {
                continue;
            };
            let mut gaps: Vec<Gap<'_>> = Vec::new();
            for (value, needed) in &attr.requires {
                // a request with this value that the rule decides, if there is one
                let example = match domain {
                    Some(d) => {
                        let Some(v) = routing.table.domains[d].class_of_value(value) else {
                            continue;
                        };
                        reached
                            .iter()
                            .find(|piece| piece[d].contains(v))
                            .map(|piece| {
                                let mut only = crate::compile::terms::ClassSet::empty(
                                    routing.table.domains[d].classes(),
                                );
                                only.insert(v);
                                let mut cube = piece.clone();
                                cube[d] = only;
                                example(routing, &cube, None)
                            })
                    }
                    // the rule does not test the attribute: any value reaches it
                    None => Some(example(routing, any, Some((&attr.name, value)))),
                };
                let Some(example) = example else { continue };
                for model in syms.target_models(target) {
                    let missing = model.missing_capabilities(needed);
                    if missing.is_empty() {
                        continue;
                    }
                    let name = model.name.value.as_str();
                    let gap = match gaps.iter_mut().find(|g| g.model == name) {
                        Some(g) => g,
                        None => {
                            gaps.push(Gap {
                                model: name,
                                values: Vec::new(),
                                caps: Vec::new(),
                                example: example.clone(),
                            });
                            gaps.last_mut().expect("just pushed")
                        }
                    };
                    gap.values.push(value.clone());
                    for m in missing {
                        if !gap.caps.contains(m) {
                            gap.caps.push(m.clone());
                        }
                    }
                }
            }
            for gap in gaps {
                // the whole list, as in `names`
                let quote = |v: &[String]| {
                    let l: Vec<String> = v.iter().map(|x| format!("`{x}`")).collect();
                    l.join(", ")
                };
                let model_span = syms.models.get(gap.model).map(|m| m.name.span);
                let mut diag = Diagnostic::new(
                    Code::CapabilityReach,
                    condition_span(rule),
                    format!(
                        "{} requests can reach `{}` through rule `{}`, which lacks {}",
                        quote(&gap.values),
                        gap.model,
                        rule.id(),
                        quote(&gap.caps)
                    ),
                )
                .primary_label(format!("for example {}", gap.example))
                .label(
                    target.name().span,
                    format!("routed to `{}` here", target.name().value),
                );
                if let Some(span) = model_span {
                    diag = diag.label(span, format!("`{}` is declared here", gap.model));
                }
                let help = if rule.is_fallback {
                    format!("route those `{}` values to a model that can serve them, in rules before the fallback", attr.name)
                } else {
                    format!(
                        "restrict the rule to the `{}` values `{}` can serve (`&& {} in [...]`), or route the others before it",
                        attr.name, gap.model, attr.name
                    )
                };
                diags.push(diag.help(help));
            }
        }
    }
}
