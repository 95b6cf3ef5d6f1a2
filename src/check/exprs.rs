//! Type-checking routing conditions against the request schema: unknown attributes
//! (E021), mismatched types and units (E030), values outside an enum (E031), operators
//! that do not apply (E032), constant comparisons (W030) and repeated list values (W031).

use crate::diag::suggest::did_you_mean;
use crate::diag::{Code, Diagnostic};
use crate::load::Node;
use crate::policy::Policy;
use crate::syntax::print::value_to_string;
use crate::syntax::{CmpOp, Expr, Literal, Operand, Value};

use super::schema::{AttrInfo, Schema, Ty};

pub fn check(policy: &Policy, schema: &Schema, diags: &mut Vec<Diagnostic>) {
    for rule in policy.routing.iter().flat_map(|r| &r.rules) {
        if let Some(cond) = &rule.condition {
            let mut c = Checker {
                node: &cond.node,
                schema,
                declared: &policy.declared.attributes,
                diags,
            };
            c.expr(&cond.expr);
        }
    }
}

struct Checker<'a> {
    node: &'a Node,
    schema: &'a Schema,
    /// attributes declared under `request:`, even those whose declaration has errors
    declared: &'a [String],
    diags: &'a mut Vec<Diagnostic>,
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "a string",
        Value::Num(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Duration(_) => "a duration",
        Value::Money(_) => "an amount of money",
        Value::Percent(_) => "a percentage",
        Value::Rate(_) => "a rate",
    }
}

fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Num(n) | Value::Money(n) | Value::Percent(n) => Some(*n),
        Value::Duration(d) => Some(d.ms as f64),
        _ => None,
    }
}

impl<'a> Checker<'a> {
    fn span(&self, range: &std::ops::Range<usize>) -> crate::source::Span {
        self.node.value_span(range.clone())
    }

    fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn expr(&mut self, e: &Expr) {
        match e {
            Expr::Or(items, _) | Expr::And(items, _) => items.iter().for_each(|i| self.expr(i)),
            Expr::Not(inner, _) => self.expr(inner),
            Expr::Bare(op) => self.bare(op),
            Expr::Compare {
                left, op, right, ..
            } => self.compare(left, *op, right),
            Expr::In {
                operand,
                negated,
                list,
                ..
            } => self.membership(operand, *negated, list),
        }
    }

    /// The attribute's schema entry, borrowed: an enum may carry thousands of values.
    fn attr(&mut self, name: &str, range: &std::ops::Range<usize>) -> Option<&'a AttrInfo> {
        let schema: &'a Schema = self.schema;
        if let Some(a) = schema.get(name) {
            return Some(a);
        }
        if self.declared.iter().any(|d| d == name) {
            return None; // its declaration has an error of its own
        }
        let help = crate::diag::suggest::did_you_mean_attribute(name, self.schema.names())
            .unwrap_or_else(|| format!("declare `{name}` under `request:` with its `type`"));
        let d = Diagnostic::new(
            Code::UnknownAttribute,
            self.span(range),
            format!("unknown request attribute `{name}`"),
        )
        .primary_label("not in the request schema")
        .help(help);
        self.push(d);
        None
    }

    fn bare(&mut self, op: &Operand) {
        match op {
            Operand::Attr(name, pos) => {
                let Some(a) = self.attr(name, &pos.0) else {
                    return;
                };
                if a.ty != Ty::Bool {
                    let d = Diagnostic::new(
                        Code::InvalidOperator,
                        self.span(&pos.0),
                        format!("`{name}` is not a boolean and cannot stand alone as a condition"),
                    )
                    .primary_label(format!("this is {}", a.ty.describe()))
                    .help(format!("compare it: `{name} == ...`"));
                    self.push(d);
                }
            }
            Operand::Lit(lit) => {
                let d = match lit.value {
                    Value::Bool(b) => Diagnostic::new(
                        Code::ConstantCondition,
                        self.span(&lit.pos.0),
                        format!("the condition is always {b}"),
                    )
                    .primary_label("a constant")
                    .help(if b {
                        "a rule that always matches is a `fallback`"
                    } else {
                        "a rule that never matches can be deleted"
                    }),
                    _ => Diagnostic::new(
                        Code::TypeMismatch,
                        self.span(&lit.pos.0),
                        "a condition must be true or false",
                    )
                    .primary_label(format!("this is {}", value_kind(&lit.value))),
                };
                self.push(d);
            }
        }
    }

    fn compare(&mut self, left: &Operand, op: CmpOp, right: &Operand) {
        match (left, right) {
            (Operand::Attr(a, ap), Operand::Lit(lit)) => self.attr_vs_lit(a, &ap.0, op, lit),
            (Operand::Lit(lit), Operand::Attr(a, ap)) => {
                self.attr_vs_lit(a, &ap.0, op.flipped(), lit)
            }
            (Operand::Attr(a, ap), Operand::Attr(b, bp)) => {
                // both must exist; then the comparison itself is what is unsupported
                let (Some(_), Some(_)) = (self.attr(a, &ap.0), self.attr(b, &bp.0)) else {
                    return;
                };
                let d = Diagnostic::new(
                    Code::AttributeComparison,
                    self.span(&(ap.0.start..bp.0.end)),
                    format!("`{a}` is compared with another attribute, `{b}`"),
                )
                .primary_label("two request attributes")
                .help("compare each attribute with a value; conditions compile to a table indexed by one attribute at a time");
                self.push(d);
            }
            (Operand::Lit(l), Operand::Lit(r)) => {
                let d = Diagnostic::new(
                    Code::ConstantCondition,
                    self.span(&(l.pos.0.start..r.pos.0.end)),
                    "this comparison does not depend on the request",
                )
                .primary_label("two constants")
                .help("compare a request attribute with a value");
                self.push(d);
            }
        }
    }

    fn ordering(&mut self, attr: &AttrInfo, op: CmpOp, range: &std::ops::Range<usize>) -> bool {
        if op.is_ordering() && !attr.ty.is_numeric() {
            let d = Diagnostic::new(
                Code::InvalidOperator,
                self.span(range),
                format!(
                    "`{}` has no order: `{}` does not apply",
                    attr.name,
                    op.as_str()
                ),
            )
            .primary_label(format!("`{}` is {}", attr.name, attr.ty.describe()))
            .help("use `==`, `!=` or `in [...]`");
            self.push(d);
            return false;
        }
        true
    }

    /// Checks `attr OP lit`; `op` is oriented with the attribute on the left.
    fn attr_vs_lit(&mut self, name: &str, apos: &std::ops::Range<usize>, op: CmpOp, lit: &Literal) {
        let Some(attr) = self.attr(name, apos) else {
            return;
        };
        if !self.literal_fits(attr, apos, lit) {
            return;
        }
        if !self.ordering(
            attr,
            op,
            &(apos.start.min(lit.pos.0.start)..apos.end.max(lit.pos.0.end)),
        ) {
            return;
        }
        self.range_check(attr, apos, op, lit);
    }

    /// Whether a literal has the attribute's type (reporting E030/E031 when not).
    fn literal_fits(
        &mut self,
        attr: &AttrInfo,
        apos: &std::ops::Range<usize>,
        lit: &Literal,
    ) -> bool {
        let ok = matches!(
            (&attr.ty, &lit.value),
            (Ty::String | Ty::Enum(_), Value::Str(_))
                | (Ty::Int | Ty::Number, Value::Num(_))
                | (Ty::Bool, Value::Bool(_))
                | (Ty::Duration, Value::Duration(_))
                | (Ty::Money, Value::Money(_) | Value::Num(_))
                | (Ty::Percent, Value::Percent(_))
        );
        if !ok {
            let help = match (&attr.ty, &lit.value) {
                (Ty::Duration, Value::Num(n)) => {
                    format!("durations need a unit: `{n}ms` or `{n}s`")
                }
                (Ty::Percent, Value::Num(n)) => format!("write a percentage: `{n}%`"),
                (Ty::String | Ty::Enum(_), v) => format!("quote it: `\"{}\"`", value_to_string(v)),
                _ => format!("compare with {}", attr.ty.describe()),
            };
            let d = Diagnostic::new(
                Code::TypeMismatch,
                self.span(&lit.pos.0),
                format!(
                    "`{}` is {}, but this is {}",
                    attr.name,
                    attr.ty.describe(),
                    value_kind(&lit.value)
                ),
            )
            .primary_label(format!("expected {}", attr.ty.describe()))
            .label(self.span(apos), attr.ty.describe().to_string())
            .help(help);
            self.push(d);
            return false;
        }
        if let (Ty::Enum(values), Value::Str(s)) = (&attr.ty, &lit.value) {
            // an enum declared without values is E006 already
            if !values.is_empty() && !values.contains(s) {
                let listed = values
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let help = match did_you_mean(s, values.iter().map(String::as_str)) {
                    Some(dym) => dym,
                    None => format!(
                        "`{}` is one of {listed}; declare more values under `request.{}.values`",
                        attr.name, attr.name
                    ),
                };
                let d = Diagnostic::new(
                    Code::ValueNotAllowed,
                    self.span(&lit.pos.0),
                    format!("`{s}` is not a value of `{}`", attr.name),
                )
                .primary_label(format!("not one of the values of `{}`", attr.name))
                .help(help);
                self.push(d);
                return false;
            }
        }
        true
    }

    /// W030 when the literal lies outside the attribute's declared `min`/`max`.
    fn range_check(
        &mut self,
        attr: &AttrInfo,
        apos: &std::ops::Range<usize>,
        op: CmpOp,
        lit: &Literal,
    ) {
        let Some(v) = numeric(&lit.value) else { return };
        let (lo, hi) = (
            attr.min.unwrap_or(f64::NEG_INFINITY),
            attr.max.unwrap_or(f64::INFINITY),
        );
        let verdict = match op {
            CmpOp::Lt if v <= lo => Some(false),
            CmpOp::Le if v < lo => Some(false),
            CmpOp::Gt if v >= hi => Some(false),
            CmpOp::Ge if v > hi => Some(false),
            CmpOp::Eq if v < lo || v > hi => Some(false),
            CmpOp::Ge if v <= lo => Some(true),
            CmpOp::Gt if v < lo => Some(true),
            CmpOp::Le if v >= hi => Some(true),
            CmpOp::Lt if v > hi => Some(true),
            CmpOp::Ne if v < lo || v > hi => Some(true),
            _ => None,
        };
        if let Some(always) = verdict {
            let range = |x: f64| {
                if x.is_finite() {
                    x.to_string()
                } else {
                    "∞".to_string()
                }
            };
            let d = Diagnostic::new(
                Code::ConstantCondition,
                self.span(&(apos.start.min(lit.pos.0.start)..apos.end.max(lit.pos.0.end))),
                format!("this comparison is always {always}"),
            )
            .primary_label(format!(
                "`{}` lies between {} and {}",
                attr.name,
                range(lo),
                range(hi)
            ))
            .help("compare with a value inside the attribute's range");
            self.push(d);
        }
    }

    fn membership(&mut self, operand: &Operand, negated: bool, list: &[Literal]) {
        let (name, apos) = match operand {
            Operand::Attr(name, pos) => (name, &pos.0),
            Operand::Lit(lit) => {
                let d = Diagnostic::new(
                    Code::ConstantCondition,
                    self.span(&lit.pos.0),
                    "this membership test does not depend on the request",
                )
                .primary_label("a constant")
                .help("test a request attribute: `task_type in [...]`");
                self.push(d);
                return;
            }
        };
        let Some(attr) = self.attr(name, apos) else {
            return;
        };
        if list.is_empty() {
            let d = Diagnostic::new(
                Code::ConstantCondition,
                self.span(apos),
                format!(
                    "`{name} {}in []` is always {}",
                    if negated { "not " } else { "" },
                    negated
                ),
            )
            .primary_label("empty list")
            .help("list the values to test for");
            self.push(d);
        }
        for (i, lit) in list.iter().enumerate() {
            if !self.literal_fits(attr, apos, lit) {
                continue;
            }
            if let Some(first) = list[..i].iter().find(|l| l.value == lit.value) {
                let d = Diagnostic::new(
                    Code::DuplicateListValue,
                    self.span(&lit.pos.0),
                    format!(
                        "`{}` is listed twice",
                        match &lit.value {
                            Value::Str(s) => s.clone(),
                            other => value_to_string(other),
                        }
                    ),
                )
                .primary_label("repeated here")
                .label(self.span(&first.pos.0), "first listed here")
                .help("remove the repeat, or correct it to the value you meant");
                self.push(d);
            }
        }
    }
}

/// The values of `attr` a condition restricts requests to, when it does: `Some` for
/// `attr == "x"`, `attr in [...]`, conjunctions containing one, and disjunctions of them.
pub fn selected_values(expr: &Expr, attr: &str) -> Option<Vec<(String, std::ops::Range<usize>)>> {
    match expr {
        Expr::Compare {
            left,
            op: CmpOp::Eq,
            right,
            ..
        } => match (left, right) {
            (Operand::Attr(a, _), Operand::Lit(l)) | (Operand::Lit(l), Operand::Attr(a, _))
                if a == attr =>
            {
                match &l.value {
                    Value::Str(s) => Some(vec![(s.clone(), l.pos.0.clone())]),
                    _ => None,
                }
            }
            _ => None,
        },
        Expr::In {
            operand: Operand::Attr(a, _),
            negated: false,
            list,
            ..
        } if a == attr => Some(
            list.iter()
                .filter_map(|l| match &l.value {
                    Value::Str(s) => Some((s.clone(), l.pos.0.clone())),
                    _ => None,
                })
                .collect(),
        ),
        Expr::And(items, _) => {
            let mut acc: Option<Vec<(String, std::ops::Range<usize>)>> = None;
            for item in items {
                if let Some(vals) = selected_values(item, attr) {
                    acc = Some(match acc {
                        None => vals,
                        Some(prev) => prev
                            .into_iter()
                            .filter(|(v, _)| vals.iter().any(|(w, _)| w == v))
                            .collect(),
                    });
                }
            }
            acc
        }
        Expr::Or(items, _) => {
            let mut all = Vec::new();
            for item in items {
                all.extend(selected_values(item, attr)?);
            }
            Some(all)
        }
        _ => None,
    }
}
