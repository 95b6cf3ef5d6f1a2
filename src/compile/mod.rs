//! Stage 5: compiling a checked policy. The routing rules become a decision table
//! (first match resolved at compile time); the analyses in `lint` and the tools read
//! the boxes each rule was expanded into.

pub mod domain;
pub mod interp;
pub mod request;
pub mod table;
pub mod terms;
pub mod value;

use std::collections::BTreeSet;

use crate::check::schema::{Schema, Ty};
use crate::diag::{Code, Diagnostic};
use crate::policy::{Policy, Target};
use crate::source::SourceMap;
use crate::syntax::print::print;
use crate::syntax::{Expr, Operand};

use domain::{Domain, DomainKind, Unit};
use request::RequestSchema;
use table::{DecisionTable, RuleInfo, SourceRef, TargetKind, TargetRef};
use terms::{Cube, Expander};
use value::{literal, Scalar};

/// The routing part of a compiled policy.
#[derive(Debug, Clone)]
pub struct Routing {
    pub schema: RequestSchema,
    pub table: DecisionTable,
    /// every box of every rule, in rule order: `(rule, box)`
    pub terms: Vec<(u32, Cube)>,
    /// each rule's condition (`None` for the fallback), for the reference interpreter
    pub conditions: Vec<Option<Expr>>,
}

/// Compiles the routing rules of a policy that `check` found free of errors.
pub fn routing(
    policy: &Policy,
    schema: &Schema,
    sources: &SourceMap,
) -> Result<Routing, Vec<Diagnostic>> {
    let rules: Vec<_> = policy.routing.iter().flat_map(|r| &r.rules).collect();
    let conditions: Vec<Option<Expr>> = rules
        .iter()
        .map(|r| r.condition.as_ref().map(|c| c.expr.clone()))
        .collect();
    let request_schema = RequestSchema::from_check(schema);
    let domains = domains(&conditions, schema);
    let slots: Vec<u32> = domains
        .iter()
        .map(|d| request_schema.slot(&d.attr).unwrap_or(0) as u32)
        .collect();
    let mut errors = Vec::new();
    let terms = match expand(&conditions, &domains) {
        Ok(terms) => terms,
        Err(failed) => {
            for i in failed {
                let rule = rules[i];
                let span = rule.condition.as_ref().map_or(rule.span, |c| c.node.span);
                errors.push(
                    Diagnostic::new(
                        Code::TooComplex,
                        span,
                        format!(
                            "the condition of rule `{}` expands into more than {} cases",
                            rule.id(),
                            terms::MAX_TERMS_PER_RULE
                        ),
                    )
                    .primary_label("too many combinations of `||` inside `&&`")
                    .help("split the rule into several rules, one per alternative"),
                );
            }
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let infos = rules
        .iter()
        .map(|r| {
            let target = match &r.target {
                Some(Target::Model(n)) => TargetRef {
                    kind: TargetKind::Model,
                    name: n.value.clone(),
                },
                Some(Target::Pool(n)) => TargetRef {
                    kind: TargetKind::Pool,
                    name: n.value.clone(),
                },
                Some(Target::Either(n)) => {
                    let is_model = policy.models.iter().any(|m| m.name.value == n.value);
                    TargetRef {
                        kind: if is_model {
                            TargetKind::Model
                        } else {
                            TargetKind::Pool
                        },
                        name: n.value.clone(),
                    }
                }
                None => TargetRef {
                    kind: TargetKind::Model,
                    name: String::new(),
                },
            };
            let file = sources.get(r.span.file);
            let (line, _) = file.line_col(r.span.start as usize);
            RuleInfo {
                id: r.id(),
                target,
                priority: r.priority.as_ref().map(|p| p.value.as_str().to_string()),
                fallback: r.is_fallback,
                condition: r.condition.as_ref().map(|c| print(&c.expr)),
                source: SourceRef {
                    file: file.name.clone(),
                    line,
                },
            }
        })
        .collect();
    let table = DecisionTable::build(domains, slots, infos, &terms);
    Ok(Routing {
        schema: request_schema,
        table,
        terms,
        conditions,
    })
}

/// Every rule's boxes over `domains`, in rule order (a rule without a condition, the
/// fallback, is one box covering everything); `Err` lists the rules whose conditions
/// expand into too many boxes.
pub fn expand(
    conditions: &[Option<Expr>],
    domains: &[Domain],
) -> Result<Vec<(u32, Cube)>, Vec<usize>> {
    let expander = Expander::new(domains);
    let mut terms = Vec::new();
    let mut failed = Vec::new();
    for (i, cond) in conditions.iter().enumerate() {
        let cubes = match cond {
            None => Ok(vec![expander.universe().clone()]),
            Some(e) => expander.dnf(e, false),
        };
        match cubes {
            Ok(cubes) => terms.extend(cubes.into_iter().map(|c| (i as u32, c))),
            Err(terms::TooManyTerms) => failed.push(i),
        }
    }
    if failed.is_empty() {
        Ok(terms)
    } else {
        Err(failed)
    }
}

/// The attributes the conditions test, with the literals each is compared with, in
/// order of first use.
pub fn domains(conditions: &[Option<Expr>], schema: &Schema) -> Vec<Domain> {
    let mut order: Vec<String> = Vec::new();
    let mut strings: Vec<BTreeSet<String>> = Vec::new();
    let mut numbers: Vec<Vec<f64>> = Vec::new();
    let mut visit = |attr: &str, lit: Option<Scalar>| {
        let i = match order.iter().position(|a| a == attr) {
            Some(i) => i,
            None => {
                order.push(attr.to_string());
                strings.push(BTreeSet::new());
                numbers.push(Vec::new());
                order.len() - 1
            }
        };
        match lit {
            Some(Scalar::Str(s)) => {
                strings[i].insert(s);
            }
            Some(Scalar::Num(n)) => numbers[i].push(n),
            _ => {}
        }
    };
    for expr in conditions.iter().flatten() {
        walk(expr, &mut visit);
    }
    order
        .into_iter()
        .zip(strings.into_iter().zip(numbers))
        .filter_map(|(attr, (strs, mut nums))| {
            let info = schema.get(&attr)?;
            nums.sort_by(f64::total_cmp);
            nums.dedup();
            let numeric = |integer: bool, unit: Unit| DomainKind::Numeric {
                thresholds: nums.clone(),
                integer,
                min: info.min,
                max: info.max,
                unit,
            };
            let kind = match &info.ty {
                Ty::Enum(values) => DomainKind::Values {
                    values: values.clone(),
                    open: false,
                },
                Ty::String => DomainKind::Values {
                    values: strs.into_iter().collect(),
                    open: true,
                },
                Ty::Int => numeric(true, Unit::Plain),
                Ty::Number => numeric(false, Unit::Plain),
                Ty::Duration => numeric(true, Unit::Duration),
                Ty::Money => numeric(false, Unit::Money),
                Ty::Percent => numeric(false, Unit::Percent),
                Ty::Bool => DomainKind::Bool,
            };
            Some(Domain::new(attr, kind))
        })
        .collect()
}

fn walk(expr: &Expr, visit: &mut impl FnMut(&str, Option<Scalar>)) {
    match expr {
        Expr::Or(items, _) | Expr::And(items, _) => items.iter().for_each(|e| walk(e, visit)),
        Expr::Not(inner, _) => walk(inner, visit),
        Expr::Compare { left, right, .. } => match (left, right) {
            (Operand::Attr(a, _), Operand::Lit(l)) | (Operand::Lit(l), Operand::Attr(a, _)) => {
                visit(a, Some(literal(&l.value)))
            }
            (Operand::Attr(a, _), Operand::Attr(b, _)) => {
                visit(a, None);
                visit(b, None);
            }
            _ => {}
        },
        Expr::In {
            operand: Operand::Attr(a, _),
            list,
            ..
        } => {
            visit(a, None);
            for l in list {
                visit(a, Some(literal(&l.value)));
            }
        }
        Expr::Bare(Operand::Attr(a, _)) => visit(a, None),
        _ => {}
    }
}
