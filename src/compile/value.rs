//! Request values at run time, normalised so that conditions and requests compare in
//! one unit: durations in milliseconds, money in dollars, percentages in points.

use serde::{Deserialize, Serialize};

use crate::syntax::Value;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Num(f64),
    Str(String),
}

/// A literal of the rule language as a run-time scalar.
pub fn literal(v: &Value) -> Scalar {
    match v {
        Value::Str(s) => Scalar::Str(s.clone()),
        Value::Num(n) | Value::Money(n) | Value::Percent(n) => Scalar::Num(*n),
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Duration(d) => Scalar::Num(d.ms as f64),
        Value::Rate(r) => Scalar::Num(r.per_second()),
    }
}

/// `x OP y` on numbers: the one definition both the table and the interpreter use.
pub fn compare_numbers(x: f64, op: crate::syntax::CmpOp, y: f64) -> bool {
    use crate::syntax::CmpOp;
    match op {
        CmpOp::Eq => x == y,
        CmpOp::Ne => x != y,
        CmpOp::Lt => x < y,
        CmpOp::Le => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Ge => x >= y,
    }
}
