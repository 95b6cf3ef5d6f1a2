//! AST → canonical text. `parse_condition(&print(e))` gives back `e` (positions aside):
//! parentheses are written exactly where precedence or grouping needs them.

use std::fmt::Write as _;

use super::ast::{Duration, Expr, Literal, Operand, Rate, Value};

pub fn print(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr);
    out
}

fn write_expr(out: &mut String, expr: &Expr) {
    match expr {
        Expr::Or(items, _) => write_joined(out, items, " || ", |e| matches!(e, Expr::Or(..))),
        Expr::And(items, _) => write_joined(out, items, " && ", |e| {
            matches!(e, Expr::Or(..) | Expr::And(..))
        }),
        Expr::Not(inner, _) => {
            out.push('!');
            write_wrapped(out, inner, matches!(**inner, Expr::Or(..) | Expr::And(..)));
        }
        Expr::Compare {
            left, op, right, ..
        } => {
            write_operand(out, left);
            let _ = write!(out, " {} ", op.as_str());
            write_operand(out, right);
        }
        Expr::In {
            operand,
            negated,
            list,
            ..
        } => {
            write_operand(out, operand);
            out.push_str(if *negated { " not in [" } else { " in [" });
            for (i, lit) in list.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, &lit.value);
            }
            out.push(']');
        }
        Expr::Bare(operand) => write_operand(out, operand),
    }
}

fn write_joined(out: &mut String, items: &[Expr], sep: &str, needs_parens: fn(&Expr) -> bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        write_wrapped(out, item, needs_parens(item));
    }
}

fn write_wrapped(out: &mut String, expr: &Expr, parens: bool) {
    if parens {
        out.push('(');
        write_expr(out, expr);
        out.push(')');
    } else {
        write_expr(out, expr);
    }
}

fn write_operand(out: &mut String, operand: &Operand) {
    match operand {
        Operand::Attr(name, _) => out.push_str(name),
        Operand::Lit(Literal { value, .. }) => write_value(out, value),
    }
}

/// Writes a value in the syntax the grammar reads back.
pub fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Str(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Money(n) => {
            let _ = write!(out, "${n}");
        }
        Value::Percent(n) => {
            let _ = write!(out, "{n}%");
        }
        Value::Duration(d) => out.push_str(&duration(*d)),
        Value::Rate(r) => out.push_str(&rate(r)),
    }
}

pub fn value_to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The largest unit that divides the duration exactly: `300000ms` prints as `5m`.
pub fn duration(d: Duration) -> String {
    const UNITS: [(u64, &str); 4] = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    for (ms, unit) in UNITS {
        if d.ms != 0 && d.ms.is_multiple_of(ms) {
            return format!("{}{unit}", d.ms / ms);
        }
    }
    format!("{}ms", d.ms)
}

fn rate(r: &Rate) -> String {
    let unit = match r.per.ms {
        1_000 => "s",
        60_000 => "min",
        3_600_000 => "hour",
        _ => "day",
    };
    format!("{}/{unit}", r.count)
}
