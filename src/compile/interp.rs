//! The reference semantics: a plain first-match interpreter over the condition ASTs.
//! The decision table must agree with it on every request (a property test checks).

use super::value::Scalar;
use crate::syntax::{CmpOp, Expr, Operand, Value};

/// A borrowed scalar, so that interpreting allocates nothing either.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ref<'a> {
    S(&'a str),
    N(f64),
    B(bool),
}

fn of_scalar(s: &Scalar) -> Ref<'_> {
    match s {
        Scalar::Str(s) => Ref::S(s),
        Scalar::Num(n) => Ref::N(*n),
        Scalar::Bool(b) => Ref::B(*b),
    }
}

fn of_value(v: &Value) -> Ref<'_> {
    match v {
        Value::Str(s) => Ref::S(s),
        Value::Num(n) | Value::Money(n) | Value::Percent(n) => Ref::N(*n),
        Value::Bool(b) => Ref::B(*b),
        Value::Duration(d) => Ref::N(d.ms as f64),
        Value::Rate(r) => Ref::N(r.per_second()),
    }
}

/// Compares two values. Values of different types are never equal and have no order.
fn compare(a: Ref<'_>, op: CmpOp, b: Ref<'_>) -> bool {
    match (a, b) {
        (Ref::N(x), Ref::N(y)) => super::value::compare_numbers(x, op, y),
        _ => match op {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            _ => false,
        },
    }
}

/// Evaluates a condition; `get` returns an attribute's value, `None` when absent.
/// An absent attribute equals nothing: `==`, `in` and orderings are false, `!=` and
/// `not in` are true.
pub fn eval<'a, F>(expr: &'a Expr, get: &F) -> bool
where
    F: Fn(&str) -> Option<&'a Scalar>,
{
    match expr {
        Expr::Or(items, _) => items.iter().any(|e| eval(e, get)),
        Expr::And(items, _) => items.iter().all(|e| eval(e, get)),
        Expr::Not(inner, _) => !eval(inner, get),
        Expr::Compare {
            left, op, right, ..
        } => match (operand(left, get), operand(right, get)) {
            (Some(a), Some(b)) => compare(a, *op, b),
            _ => *op == CmpOp::Ne,
        },
        Expr::In {
            operand: o,
            negated,
            list,
            ..
        } => match operand(o, get) {
            Some(v) => {
                list.iter()
                    .any(|l| compare(v, CmpOp::Eq, of_value(&l.value)))
                    != *negated
            }
            None => *negated,
        },
        Expr::Bare(o) => operand(o, get) == Some(Ref::B(true)),
    }
}

fn operand<'a, F>(o: &'a Operand, get: &F) -> Option<Ref<'a>>
where
    F: Fn(&str) -> Option<&'a Scalar>,
{
    match o {
        Operand::Attr(name, _) => get(name).map(of_scalar),
        Operand::Lit(l) => Some(of_value(&l.value)),
    }
}

/// The index of the first rule whose condition holds (`None` conditions always hold).
pub fn first_match<'a, F>(conditions: &'a [Option<Expr>], get: &F) -> Option<usize>
where
    F: Fn(&str) -> Option<&'a Scalar>,
{
    conditions
        .iter()
        .position(|c| c.as_ref().is_none_or(|e| eval(e, get)))
}
