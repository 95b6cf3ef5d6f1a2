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
