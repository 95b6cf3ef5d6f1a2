//! Property tests: the printer and parser agree on every expression, and no input —
//! random bytes or near-valid policies — panics the checker or yields a span outside
//! its file.

use proptest::prelude::*;
use rulec::syntax::ast::{CmpOp, Duration, Expr, Literal, Operand, Pos, Rate, Value};
use rulec::syntax::{parse_condition, print::print};

fn name() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "task_type",
        "task_complexity",
        "estimated_tokens",
        "tenant.tier",
        "is_streaming",
        "a",
        "order_id",
        "notify",
    ])
    .prop_map(str::to_string)
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1_000_000i64..1_000_000).prop_map(|n| n as f64),
        (0u32..100_000, 1u32..1000).prop_map(|(a, b)| f64::from(a) / f64::from(b)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z_ \"\\\\é]{0,12}".prop_map(Value::Str),
        number().prop_map(Value::Num),
        any::<bool>().prop_map(Value::Bool),
        (0u64..10_000_000_000).prop_map(|ms| Value::Duration(Duration { ms })),
        number().prop_map(|n| Value::Money(n.abs())),
        number().prop_map(|n| Value::Percent(n.abs())),
        (
            1u32..10_000,
            prop::sample::select(vec![1_000u64, 60_000, 3_600_000, 86_400_000])
        )
            .prop_map(|(c, per)| Value::Rate(Rate {
                count: f64::from(c),
                per: Duration { ms: per }
            })),
    ]
}

fn literal() -> impl Strategy<Value = Literal> {
    value().prop_map(|value| Literal {
        value,
        pos: Pos::default(),
    })
}

fn operand() -> impl Strategy<Value = Operand> {
    prop_oneof![
        3 => name().prop_map(|n| Operand::Attr(n, Pos::default())),
        1 => literal().prop_map(Operand::Lit),
    ]
}

fn op() -> impl Strategy<Value = CmpOp> {
    prop::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ])
}

fn leaf() -> impl Strategy<Value = Expr> {
    prop_oneof![
        (operand(), op(), operand()).prop_map(|(left, op, right)| Expr::Compare {
            left,
            op,
            right,
            pos: Pos::default()
        }),
        (
            operand(),
            any::<bool>(),
            prop::collection::vec(literal(), 0..4)
        )
            .prop_map(|(operand, negated, list)| Expr::In {
                operand,
                negated,
                list,
                pos: Pos::default()
            }),
        operand().prop_map(Expr::Bare),
    ]
}

pub fn expr() -> impl Strategy<Value = Expr> {
    leaf().prop_recursive(5, 40, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| Expr::And(v, Pos::default())),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| Expr::Or(v, Pos::default())),
            inner.prop_map(|e| Expr::Not(Box::new(e), Pos::default())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn print_then_parse_is_identity(e in expr()) {
        let text = print(&e);
        let back = parse_condition(&text);
        prop_assert!(back.is_ok(), "`{}` does not parse: {:?}", text, back);
        prop_assert_eq!(back.unwrap(), e, "through `{}`", text);
    }

    #[test]
    fn printing_is_a_fixed_point(e in expr()) {
        let once = print(&e);
        let twice = print(&parse_condition(&once).unwrap());
        prop_assert_eq!(once, twice);
    }
}

/// Every diagnostic span lies within its file, on character boundaries, and renders.
fn assert_well_formed(checked: &rulec::driver::Checked) {
    for d in &checked.diagnostics {
        for span in std::iter::once(d.primary.span).chain(d.labels.iter().map(|l| l.span)) {
            let text = &checked.sources.get(span.file).text;
            assert!(
                span.start <= span.end && span.end as usize <= text.len(),
                "span {span:?} outside a file of {} bytes ({})",
                text.len(),
                d.message
            );
            assert!(
                text.is_char_boundary(span.start as usize)
                    && text.is_char_boundary(span.end as usize),
                "span {span:?} splits a character"
            );
        }
    }
    let _ = rulec::diag::render::human(&checked.sources, &checked.diagnostics, false);
    let _ = rulec::diag::render::json(&checked.sources, &checked.diagnostics);
}

fn seed_texts() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in ["rules/seed", "rules/examples/gateway"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        out.extend(
            paths
                .into_iter()
                .map(|p| std::fs::read_to_string(p).unwrap()),
        );
    }
    out
}

/// Edits that keep a policy almost valid: the inputs a typing author produces.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, String),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Indent(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = prop::sample::select(vec![
        "\"",
        "'",
        ":",
        "- ",
        "[",
        "]",
        "{",
        "}",
        "&a ",
        "*a",
        "\n",
        "\t",
        "  ",
        "#",
        "!",
        "==",
        "&&",
        "(",
        ")",
        "1e999",
        "-5",
        "0",
        "é",
        "\u{0}",
        "<<: *a\n",
        "if: ",
        "model: x",
        "pool: p",
        "fallback: z",
        "in [",
        "30q",
        "every",
        "$",
        "%",
        "/min",
    ])
    .prop_map(str::to_string);
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), token).prop_map(|(a, t)| Edit::Insert(a, t)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<usize>(), 0usize..6).prop_map(|(a, n)| Edit::Indent(a, n)),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let floor = |s: &str, mut i: usize| {
        i = i.min(s.len());
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match e {
        Edit::Delete(at, n) => {
            let a = floor(text, at % (text.len() + 1));
            let b = floor(text, a + n);
            format!("{}{}", &text[..a], &text[b..])
        }
        Edit::Insert(at, t) => {
            let a = floor(text, at % (text.len() + 1));
            format!("{}{t}{}", &text[..a], &text[a..])
        }
        Edit::DuplicateLine(i) if !lines.is_empty() => {
            let i = i % lines.len();
            let l = lines[i].clone();
            lines.insert(i, l);
            lines.join("\n")
        }
        Edit::SwapLines(a, b) if !lines.is_empty() => {
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        Edit::Indent(i, n) if !lines.is_empty() => {
            let len = lines.len();
            lines[i % len].insert_str(0, &" ".repeat(*n));
            lines.join("\n")
        }
        _ => text.to_string(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        assert_well_formed(&rulec::driver::check_text("random.yaml", &bytes));
    }

    #[test]
    fn random_conditions_never_panic(text in "[ -~]{0,80}") {
        let _ = parse_condition(&text);
        let yaml = format!("gateway:\n  routing_strategy:\n    rules:\n      - if: {text:?}\n        model: m\n");
        assert_well_formed(&rulec::driver::check_text("cond.yaml", yaml.as_bytes()));
    }

    #[test]
    fn near_valid_policies_never_panic(which in any::<usize>(), edits in prop::collection::vec(edit(), 1..6)) {
        let texts = seed_texts();
        let mut text = texts[which % texts.len()].clone();
        for e in &edits {
            text = apply(&text, e);
        }
        assert_well_formed(&rulec::driver::check_text("near.yaml", text.as_bytes()));
    }
}
