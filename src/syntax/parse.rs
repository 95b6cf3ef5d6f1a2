//! Text → AST with the pest grammar in `grammar/rulec.pest`, for conditions and for the
//! typed values found elsewhere in a policy. Errors carry byte ranges into the text.

use std::ops::Range;

use pest::iterators::Pair;
use pest::Parser as _;

use super::ast::{CmpOp, Cron, Duration, Expr, Literal, Operand, Pos, Rate, Value};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/rulec.pest"]
struct Grammar;

/// Deepest nesting of parentheses and `!` accepted in a condition.
pub const MAX_NESTING: usize = 64;

/// A syntax error: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub range: Range<usize>,
    pub message: String,
    pub help: Option<String>,
    /// the input exceeded a safety limit rather than being malformed
    pub too_complex: bool,
}

impl SyntaxError {
    fn new(range: Range<usize>, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            range,
            message: message.into(),
            help: None,
            too_complex: false,
        }
    }

    fn help(mut self, help: impl Into<String>) -> SyntaxError {
        self.help = Some(help.into());
        self
    }
}

/// Parses a routing condition.
pub fn parse_condition(text: &str) -> Result<Expr, SyntaxError> {
    check_nesting(text)?;
    let mut pairs = Grammar::parse(Rule::condition, text).map_err(|e| convert(e, text))?;
    let top = pairs
        .next()
        .and_then(|p| p.into_inner().next())
        .ok_or_else(|| SyntaxError::new(0..text.len(), "empty condition"))?;
    build_or(top, 0)
}

/// Rejects inputs nested deeper than [`MAX_NESTING`] before the recursive parser sees
/// them, so that `((((...` cannot exhaust the stack.
fn check_nesting(text: &str) -> Result<(), SyntaxError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, ch) in text.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '"' | '\'' => quote = Some(ch),
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            let mut e = SyntaxError::new(
                i..i + 1,
                format!("the condition nests deeper than {MAX_NESTING} levels"),
            )
            .help("simplify the condition: split it into several rules");
            e.too_complex = true;
            return Err(e);
        }
    }
    Ok(())
}

fn pos(pair: &Pair<'_, Rule>) -> Pos {
    let s = pair.as_span();
    Pos(s.start()..s.end())
}

fn too_deep(at: usize) -> SyntaxError {
    let mut e = SyntaxError::new(
        at..at + 1,
        format!("the condition nests deeper than {MAX_NESTING} levels"),
    )
    .help("simplify the condition: split it into several rules");
    e.too_complex = true;
    e
}

// `depth` counts the enclosing groups and negations, so that the AST (and every
// recursive walk over it) stays shallow whatever the input.
fn build_or(pair: Pair<'_, Rule>, depth: usize) -> Result<Expr, SyntaxError> {
    let p = pos(&pair);
    let mut items = Vec::new();
    for inner in pair.into_inner() {
        if inner.as_rule() == Rule::and_expr {
            items.push(build_and(inner, depth)?);
        }
    }
    Ok(if items.len() == 1 {
        items.remove(0)
    } else {
        Expr::Or(items, p)
    })
}

fn build_and(pair: Pair<'_, Rule>, depth: usize) -> Result<Expr, SyntaxError> {
    let p = pos(&pair);
    let mut items = Vec::new();
    for inner in pair.into_inner() {
        if inner.as_rule() == Rule::unary {
            items.push(build_unary(inner, depth)?);
        }
    }
    Ok(if items.len() == 1 {
        items.remove(0)
    } else {
        Expr::And(items, p)
    })
}

fn build_unary(pair: Pair<'_, Rule>, depth: usize) -> Result<Expr, SyntaxError> {
    let mut nots: Vec<usize> = Vec::new();
    let end = pair.as_span().end();
    let mut expr = None;
    for inner in pair.into_inner() {
        match inner.as_rule() {
            Rule::not_op => {
                if depth + nots.len() >= MAX_NESTING {
                    return Err(too_deep(inner.as_span().start()));
                }
                nots.push(inner.as_span().start());
            }
            Rule::group => {
                let at = inner.as_span().start();
                if depth + nots.len() >= MAX_NESTING {
                    return Err(too_deep(at));
                }
                let body = inner
                    .into_inner()
                    .next()
                    .ok_or_else(|| SyntaxError::new(at..at + 1, "empty parentheses"))?;
                expr = Some(build_or(body, depth + nots.len() + 1)?);
            }
            Rule::predicate => expr = Some(build_predicate(inner)?),
            _ => {}
        }
    }
    let mut expr = expr.ok_or_else(|| SyntaxError::new(end..end, "expected a condition"))?;
    for start in nots.into_iter().rev() {
        expr = Expr::Not(Box::new(expr), Pos(start..end));
    }
    Ok(expr)
}

fn build_predicate(pair: Pair<'_, Rule>) -> Result<Expr, SyntaxError> {
    let p = pos(&pair);
    let mut inner = pair.into_inner();
    let first = inner
        .next()
        .ok_or_else(|| SyntaxError::new(p.0.clone(), "expected an operand"))?;
    let left = build_operand(first)?;
    let Some(op) = inner.next() else {
        return Ok(Expr::Bare(left));
    };
    let rhs = inner
        .next()
        .ok_or_else(|| SyntaxError::new(p.0.clone(), "expected a right-hand side"))?;
    match op.as_rule() {
        Rule::cmp_op => Ok(Expr::Compare {
            left,
            op: cmp_op(op.as_str()),
            right: build_operand(rhs)?,
            pos: p,
        }),
        Rule::in_op | Rule::not_in_op => Ok(Expr::In {
            operand: left,
            negated: op.as_rule() == Rule::not_in_op,
            list: rhs
                .into_inner()
                .map(build_literal)
                .collect::<Result<_, _>>()?,
            pos: p,
        }),
        _ => Err(SyntaxError::new(p.0, "unexpected operator")),
    }
}

fn cmp_op(s: &str) -> CmpOp {
    match s {
        "==" => CmpOp::Eq,
        "!=" => CmpOp::Ne,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        _ => CmpOp::Ge,
    }
}

fn build_operand(pair: Pair<'_, Rule>) -> Result<Operand, SyntaxError> {
    if pair.as_rule() == Rule::path {
        return Ok(Operand::Attr(pair.as_str().to_string(), pos(&pair)));
    }
    build_literal(pair).map(Operand::Lit)
}

fn build_literal(pair: Pair<'_, Rule>) -> Result<Literal, SyntaxError> {
    let p = pos(&pair);
    let value = literal_value(pair)?;
    Ok(Literal { value, pos: p })
}

fn literal_value(pair: Pair<'_, Rule>) -> Result<Value, SyntaxError> {
    let range = pos(&pair).0;
    Ok(match pair.as_rule() {
        Rule::string => {
            let inner = pair.into_inner().next().map_or("", |p| p.as_str());
            Value::Str(unescape(inner))
        }
        Rule::number => Value::Num(number(pair.as_str(), range)?),
        Rule::boolean => Value::Bool(pair.as_str() == "true"),
        Rule::money => Value::Money(number(pair.as_str().trim_start_matches('$'), range)?),
        Rule::percent => Value::Percent(number(pair.as_str().trim_end_matches('%'), range)?),
        Rule::duration => Value::Duration(duration(pair)?),
        Rule::rate => Value::Rate(rate(pair)?),
        _ => return Err(SyntaxError::new(range, "expected a value")),
    })
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn number(text: &str, range: Range<usize>) -> Result<f64, SyntaxError> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    match clean.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(n),
        _ => Err(SyntaxError::new(
            range,
            format!("`{text}` is not a number that fits"),
        )),
    }
}

fn unit_ms(unit: &str) -> u64 {
    match unit {
        "ms" => 1,
        "s" | "sec" | "second" => 1_000,
        "m" | "min" | "minute" => 60_000,
        "h" | "hour" => 3_600_000,
        _ => 86_400_000,
    }
}

fn duration(pair: Pair<'_, Rule>) -> Result<Duration, SyntaxError> {
    let range = pos(&pair).0;
    let mut inner = pair.into_inner();
    let amount = inner.next().map_or("0", |p| p.as_str());
    let unit = inner.next().map_or("ms", |p| p.as_str());
    let n = number(amount, range.clone())?;
    let ms = n * unit_ms(unit) as f64;
    if ms.fract() != 0.0 || ms > u64::MAX as f64 / 2.0 {
        return Err(SyntaxError::new(
            range,
            format!("`{amount}{unit}` is not a whole number of milliseconds"),
        )
        .help("write a whole number of a smaller unit, e.g. `1500ms`"));
    }
    Ok(Duration { ms: ms as u64 })
}

fn rate(pair: Pair<'_, Rule>) -> Result<Rate, SyntaxError> {
    let range = pos(&pair).0;
    let mut inner = pair.into_inner();
    let count = number(inner.next().map_or("0", |p| p.as_str()), range)?;
    let unit = inner.next().map_or("s", |p| p.as_str());
    Ok(Rate {
        count,
        per: Duration { ms: unit_ms(unit) },
    })
}

fn single<'t>(
    rule: Rule,
    text: &'t str,
    what: &str,
    example: &str,
) -> Result<Pair<'t, Rule>, SyntaxError> {
    let pairs = Grammar::parse(rule, text).map_err(|e| {
        let mut err = convert(e, text);
        err.message = format!("`{text}` is not {what}");
        err.help = Some(format!("write {what} such as {example}"));
        err
    })?;
    pairs
        .into_iter()
        .next()
        .and_then(|p| p.into_inner().next())
        .ok_or_else(|| SyntaxError::new(0..text.len(), format!("expected {what}")))
}

/// `30s`, `500ms`, `5m`, `6h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, SyntaxError> {
    duration(single(
        Rule::duration_value,
        text,
        "a duration",
        "`500ms`, `30s`, `5m`, `6h` or `1d`",
    )?)
}

/// `10/min`, `100/hour`.
pub fn parse_rate(text: &str) -> Result<Rate, SyntaxError> {
    rate(single(
        Rule::rate_value,
        text,
        "a rate",
        "`10/min` or `100/hour`",
    )?)
}

/// `every 6h`.
pub fn parse_interval(text: &str) -> Result<Duration, SyntaxError> {
    let pairs = Grammar::parse(Rule::interval_value, text).map_err(|e| {
        let mut err = convert(e, text);
        err.message = format!("`{text}` is not an interval");
        err.help = Some("write an interval such as `every 6h` or `every 30m`".into());
        err
    })?;
    let d = pairs
        .into_iter()
        .next()
        .and_then(|p| p.into_inner().find(|p| p.as_rule() == Rule::duration))
        .ok_or_else(|| SyntaxError::new(0..text.len(), "expected an interval"))?;
    duration(d)
}

/// `$0.10` or `0.10` (dollars).
pub fn parse_money(text: &str) -> Result<f64, SyntaxError> {
    let pair = single(
        Rule::money_value,
        text,
        "an amount of money",
        "`$0.10` or `0.10`",
    )?;
    let range = pos(&pair).0;
    number(pair.as_str().trim_start_matches('$'), range)
}

/// A metric threshold: money, percent, rate, duration or a bare number.
pub fn parse_threshold(text: &str) -> Result<Value, SyntaxError> {
    literal_value(single(
        Rule::threshold_value,
        text,
        "a threshold",
        "`$0.10`, `5%`, `10s` or `0.05`",
    )?)
}

/// A five-field cron schedule: `0 8 * * *`.
pub fn parse_cron(text: &str) -> Result<Cron, SyntaxError> {
    let pairs = Grammar::parse(Rule::cron_value, text).map_err(|e| {
        let mut err = convert(e, text);
        err.message = format!("`{text}` is not a cron schedule");
        err.help = Some(
            "write five fields: minute hour day-of-month month day-of-week, e.g. `0 8 * * *`"
                .into(),
        );
        err
    })?;
    let fields: Vec<Pair<'_, Rule>> = pairs
        .into_iter()
        .next()
        .map(|p| {
            p.into_inner()
                .filter(|p| p.as_rule() == Rule::cron_field)
                .collect()
        })
        .unwrap_or_default();
    const LIMITS: [(&str, u8, u8); 5] = [
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    ];
    let mut sets = Vec::new();
    for (field, (name, lo, hi)) in fields.into_iter().zip(LIMITS) {
        let range = pos(&field).0;
        sets.push(cron_field(field.as_str(), name, lo, hi, range)?);
    }
    let mut it = sets.into_iter();
    let mut next = || it.next().unwrap_or_default();
    let (minutes, hours, days_of_month, months, mut days_of_week) =
        (next(), next(), next(), next(), next());
    // 7 and 0 are both Sunday
    if days_of_week.contains(&7) {
        days_of_week.retain(|d| *d != 7);
        if !days_of_week.contains(&0) {
            days_of_week.insert(0, 0);
        }
    }
    Ok(Cron {
        minutes,
        hours,
        days_of_month,
        months,
        days_of_week,
    })
}

fn cron_field(
    text: &str,
    name: &str,
    lo: u8,
    hi: u8,
    range: Range<usize>,
) -> Result<Vec<u8>, SyntaxError> {
    let bad = |msg: String| {
        SyntaxError::new(range.clone(), msg)
            .help(format!("the {name} field takes values from {lo} to {hi}"))
    };
    let mut set = Vec::new();
    for item in text.split(',') {
        let (body, step) = match item.split_once('/') {
            Some((b, s)) => (
                b,
                s.parse::<u16>()
                    .map_err(|_| bad(format!("bad step in `{item}`")))?,
            ),
            None => (item, 1),
        };
        if step == 0 {
            return Err(bad(format!("the step in `{item}` is zero")));
        }
        let (start, end) = if body == "*" {
            (lo as u16, hi as u16)
        } else {
            let (a, b) = body.split_once('-').unwrap_or((body, body));
            let a = a
                .parse::<u16>()
                .map_err(|_| bad(format!("`{a}` is not a number")))?;
            let b = b
                .parse::<u16>()
                .map_err(|_| bad(format!("`{b}` is not a number")))?;
            (a, b)
        };
        if start < lo as u16 || end > hi as u16 || start > end {
            return Err(bad(format!(
                "`{item}` is outside the {name} range {lo}-{hi}"
            )));
        }
        let mut v = start;
        while v <= end {
            set.push(v as u8);
            v += step;
        }
    }
    set.sort_unstable();
    set.dedup();
    Ok(set)
}

fn rule_name(rule: &Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::or_expr | Rule::and_expr | Rule::unary | Rule::predicate => "a condition",
        Rule::or_op => "`||`",
        Rule::and_op => "`&&`",
        Rule::not_op => "`!`",
        Rule::in_op => "`in`",
        Rule::not_in_op => "`not in`",
        Rule::cmp_op => "a comparison operator",
        Rule::list => "a list `[...]`",
        Rule::path => "an attribute name",
        Rule::string => "a string",
        Rule::number => "a number",
        Rule::boolean => "`true` or `false`",
        Rule::money => "an amount such as `$0.10`",
        Rule::percent => "a percentage",
        Rule::duration => "a duration",
        Rule::rate => "a rate",
        Rule::group => "`(`",
        Rule::EOI => "the end of the condition",
        Rule::cron_field => "a cron field",
        Rule::every => "`every`",
        _ => return None,
    })
}

fn convert(e: pest::error::Error<Rule>, text: &str) -> SyntaxError {
    use pest::error::{ErrorVariant, InputLocation};
    let at = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
    .min(text.len());
    let mut end = (at + 1).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    let found =
        text[at..]
            .split_whitespace()
            .next()
            .map_or("the end of the condition".to_string(), |w| {
                let w: String = w.chars().take(20).collect();
                format!("`{w}`")
            });
    let message = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().filter_map(rule_name).collect();
            names.dedup();
            if names.is_empty() {
                format!("unexpected {found}")
            } else {
                format!("expected {}, found {found}", join_or(&names))
            }
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    let rest = &text[at..];
    let unterminated = rest
        .chars()
        .next()
        .filter(|q| *q == '"' || *q == '\'')
        .is_some_and(|q| !rest[1..].contains(q));
    if unterminated {
        return SyntaxError::new(at..end, "this string is never closed")
            .help("close the string with the same quote it opens with");
    }
    let mut err = SyntaxError::new(at..end, message);
    let after_digit = text[..at].ends_with(|c: char| c.is_ascii_digit());
    if after_digit && rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        err = err.help("numbers take no suffix: write `8000`, not `8k`; durations take `ms`, `s`, `m`, `h` or `d`");
    } else if ["<", ">", "==", "!="].iter().any(|op| rest.starts_with(op)) {
        err = err.help("comparisons do not chain: write `a < x && x < b`");
    } else if rest.starts_with('=') && !rest.starts_with("==") {
        err = err.help("compare with `==`, not `=`");
    } else if rest.starts_with('&') && !rest.starts_with("&&") {
        err = err.help("write `&&` (or `and`)");
    } else if rest.starts_with('|') && !rest.starts_with("||") {
        err = err.help("write `||` (or `or`)");
    }
    err
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
