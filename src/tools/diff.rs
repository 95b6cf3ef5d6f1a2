//! `rulec diff`: the semantic difference of two policies, computed on their decision
//! tables over a common refinement of their attribute classes — which requests change
//! decision, from what to what — not on their text.

use crate::check::schema::{AttrInfo, Schema, Ty};
use crate::compile::table::RuleInfo;
use crate::compile::terms::{cube_and, cube_is_empty, Cube};
use crate::compile::{self, Routing};
use crate::lint::cover::{uncovered_all, TermIndex};

/// Regions described per change; the rest are summed up as "more".
const MAX_REGIONS: usize = 3;

/// One class of requests whose decision changes.
pub struct Change {
    pub old: Option<u32>,
    pub new: Option<u32>,
    /// the requests concerned, described attribute by attribute
    pub region: String,
    pub example: String,
}

/// Both schemas in one: attributes must keep their type; enums keep every value.
fn merge_schemas(old: &Schema, new: &Schema) -> Result<Schema, String> {
    let mut merged = old.clone();
    for b in &new.attrs {
        match merged.attrs.iter_mut().find(|a| a.name == b.name) {
            None => merged.attrs.push(b.clone()),
            Some(a) => {
                let same_kind = std::mem::discriminant(&a.ty) == std::mem::discriminant(&b.ty);
                if !same_kind {
                    return Err(format!("attribute `{}` is {} in the old policy and {} in the new one; decisions cannot be compared", a.name, a.ty.describe(), b.ty.describe()));
                }
                if let (Ty::Enum(x), Ty::Enum(y)) = (&mut a.ty, &b.ty) {
                    for v in y {
                        if !x.contains(v) {
                            x.push(v.clone());
                        }
                    }
                }
                let loosest = |p: Option<f64>, q: Option<f64>, f: fn(f64, f64) -> f64| {
                    p.zip(q).map(|(p, q)| f(p, q))
                };
                *a = AttrInfo {
                    min: loosest(a.min, b.min, f64::min),
                    max: loosest(a.max, b.max, f64::max),
                    ..a.clone()
                };
            }
        }
    }
    Ok(merged)
}

fn same_action(a: Option<&RuleInfo>, b: Option<&RuleInfo>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.target == b.target && a.priority == b.priority,
        _ => false,
    }
}

/// Boxes of a policy over the merged domains, plus one "no route" box at the end
/// (rule index = number of rules) when the policy has no fallback.
fn boxes(
    routing: &Routing,
    domains: &[compile::domain::Domain],
) -> Result<Vec<(u32, Cube)>, String> {
    let mut terms = compile::expand(&routing.conditions, domains)
        .map_err(|_| "a condition is too complex to compare".to_string())?;
    if !routing.table.rules.iter().any(|r| r.fallback) {
        terms.push((
            routing.table.rules.len() as u32,
            compile::terms::universe(domains),
        ));
    }
    Ok(terms)
}

pub fn diff(
    old: &Routing,
    old_schema: &Schema,
    new: &Routing,
    new_schema: &Schema,
) -> Result<(Vec<Change>, Routing), String> {
    let schema = merge_schemas(old_schema, new_schema)?;
    let conditions: Vec<_> = old
        .conditions
        .iter()
        .chain(&new.conditions)
        .cloned()
        .collect();
    let domains = compile::domains(&conditions, &schema);
    let a = boxes(old, &domains)?;
    let b = boxes(new, &domains)?;
    let ia = TermIndex::new(&domains, &a);
    let ib = TermIndex::new(&domains, &b);
    let first_of =
        |terms: &[(u32, Cube)], rule: u32| terms.iter().position(|(r, _)| *r == rule).unwrap_or(0);
    // a routing over the merged schema, only to render example requests
    let request_schema = compile::request::RequestSchema::from_check(&schema);
    let slots = domains
        .iter()
        .map(|d| request_schema.slot(&d.attr).unwrap_or(0) as u32)
        .collect();
    let view = Routing {
        schema: request_schema,
        table: compile::table::DecisionTable::build_with_limit(
            domains.clone(),
            slots,
            Vec::new(),
            &[],
            0,
        ),
        terms: Vec::new(),
        conditions: Vec::new(),
    };
    let mut changes: Vec<Change> = Vec::new();
    for (ra, ca) in &a {
        let before_a = first_of(&a, *ra);
        for (rb, cb) in &b {
            let old_info = old.table.rules.get(*ra as usize);
            let new_info = new.table.rules.get(*rb as usize);
            if same_action(old_info, new_info)
                || changes
                    .iter()
                    .any(|c| c.old == old_info.map(|_| *ra) && c.new == new_info.map(|_| *rb))
            {
                continue;
            }
            let both = cube_and(ca, cb);
            if cube_is_empty(&both) {
                continue;
            }
            let before_b = first_of(&b, *rb);
            let mut earlier = ia.candidates(&both, before_a);
            earlier.extend(ib.candidates(&both, before_b));
            let regions = uncovered_all(&both, &earlier, MAX_REGIONS + 1);
            if let Some(first) = regions.first() {
                let mut words: Vec<String> = regions
                    .iter()
                    .take(MAX_REGIONS)
                    .map(|r| describe(&domains, r))
                    .collect();
                if regions.len() > MAX_REGIONS {
                    words.push("more".to_string());
                }
                changes.push(Change {
                    old: old_info.map(|_| *ra),
                    new: new_info.map(|_| *rb),
                    region: words.join("; or "),
                    example: crate::lint::rules::example(&view, first, None),
                });
            }
        }
    }
    Ok((changes, view))
}

/// `task_type in ["a", "b"], estimated_tokens > 8000`; "all requests" when unconstrained.
fn describe(domains: &[compile::domain::Domain], cube: &Cube) -> String {
    let mut parts = Vec::new();
    for (d, set) in domains.iter().zip(cube) {
        let live = d.live.iter().filter(|l| **l).count();
        if set.len() >= live {
            continue;
        }
        let classes: Vec<u16> = set.iter().collect();
        parts.push(format!("`{}` {}", d.attr, d.describe_classes(&classes)));
    }
    if parts.is_empty() {
        "all requests".to_string()
    } else {
        parts.join(", ")
    }
}

fn side(routing: &Routing, rule: Option<u32>) -> String {
    match rule.and_then(|r| routing.table.rules.get(r as usize)) {
        None => "no route".to_string(),
        Some(i) => format!(
            "{}, by rule `{}` ({}:{})",
            i.target_text(),
            i.id,
            i.source.file,
            i.source.line
        ),
    }
}

pub fn report(old: &Routing, new: &Routing, changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no decision changes: every request is routed as before\n".to_string();
    }
    let mut out = format!(
        "{} change{} in decisions:\n",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" }
    );
    for c in changes {
        out.push_str(&format!(
            "\n  requests with {} (e.g. {}):\n",
            c.region, c.example
        ));
        out.push_str(&format!("    old: {}\n", side(old, c.old)));
        out.push_str(&format!("    new: {}\n", side(new, c.new)));
    }
    out
}
