//! The compiled decision table agrees with a plain first-match interpreter of the
//! conditions, on random policies (attributes, enums, thresholds, rule orders,
//! fallbacks) and random requests — through the real pipeline: YAML text → check →
//! compile.

use proptest::prelude::*;
use rulec::check::Schema;
use rulec::compile::{self, interp, value::Scalar};

#[derive(Debug, Clone)]
enum Kind {
    Enum(Vec<String>),
    Str,
    Int,
    Bool,
    Duration,
}

#[derive(Debug, Clone)]
struct Attr {
    name: String,
    kind: Kind,
}

fn attrs() -> impl Strategy<Value = Vec<Attr>> {
    let kind = prop_oneof![
        prop::collection::btree_set("[a-d]", 1..4)
            .prop_map(|s| Kind::Enum(s.into_iter().collect())),
        Just(Kind::Str),
        Just(Kind::Int),
        Just(Kind::Bool),
        Just(Kind::Duration),
    ];
    prop::collection::vec(kind, 1..5).prop_map(|kinds| {
        kinds
            .into_iter()
            .enumerate()
            .map(|(i, kind)| Attr {
                name: format!("a{i}"),
                kind,
            })
            .collect()
    })
}

/// A type-correct literal for an attribute, from a small pool so that values collide.
fn literal(a: &Attr, pick: u32) -> String {
    match &a.kind {
        Kind::Enum(vs) => format!("\"{}\"", vs[pick as usize % vs.len()]),
        Kind::Str => format!("\"s{}\"", pick % 4),
        Kind::Int => format!("{}", (pick % 12) as i64 - 2),
        Kind::Bool => pick.is_multiple_of(2).to_string(),
        Kind::Duration => format!("{}ms", (pick % 6) * 100),
    }
}

/// Builds a random condition from a stream of numbers, type-correct for `attrs`.
fn condition(attrs: &[Attr], seed: &[u32], depth: u32, i: &mut usize) -> String {
    let mut next = || {
        let v = seed[*i % seed.len()];
        *i += 1;
        v
    };
    let choice = next() % 10;
    if depth > 0 && choice < 2 {
        let n = 2 + next() % 2;
        let op = if choice == 0 { " && " } else { " || " };
        let parts: Vec<String> = (0..n)
            .map(|_| format!("({})", condition(attrs, seed, depth - 1, i)))
            .collect();
        return parts.join(op);
    }
    if depth > 0 && choice == 2 {
        return format!("!({})", condition(attrs, seed, depth - 1, i));
    }
    let a = &attrs[next() as usize % attrs.len()];
    let ops: &[&str] = match a.kind {
        Kind::Int | Kind::Duration => &["==", "!=", "<", "<=", ">", ">="],
        _ => &["==", "!="],
    };
    match next() % 4 {
        0 if !matches!(a.kind, Kind::Bool) => {
            let n = next() % 3;
            let list: Vec<String> = (0..n).map(|_| literal(a, next())).collect();
            let not = if next() % 2 == 0 { "not " } else { "" };
            format!("{} {not}in [{}]", a.name, list.join(", "))
        }
        1 if matches!(a.kind, Kind::Bool) => a.name.clone(),
        _ => format!(
            "{} {} {}",
            a.name,
            ops[next() as usize % ops.len()],
            literal(a, next())
        ),
    }
}

fn policy_text(attrs: &[Attr], rules: &[String], fallback: bool) -> String {
    let mut t =
        String::from("providers:\n  p: {kind: openai, base_url: 'http://127.0.0.1:9'}\nrequest:\n");
    for a in attrs {
        let ty = match &a.kind {
            Kind::Enum(vs) => format!("{{type: enum, values: [{}]}}", vs.join(", ")),
            Kind::Str => "{type: string}".into(),
            Kind::Int => "{type: int}".into(),
            Kind::Bool => "{type: bool}".into(),
            Kind::Duration => "{type: duration}".into(),
        };
        t.push_str(&format!("  {}: {ty}\n", a.name));
    }
    t.push_str("gateway:\n  models:\n    m: {provider: p, model: x, max_tokens: 1000, cost_per_token: 0.000001}\n  routing_strategy:\n    rules:\n");
    for r in rules {
        t.push_str(&format!(
            "      - if: '{}'\n        model: m\n",
            r.replace('\'', "''")
        ));
    }
    if fallback {
        t.push_str("      - fallback: m\n");
    }
    t
}

fn request_values(attrs: &[Attr], seed: &[u32]) -> Vec<Option<Scalar>> {
    attrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let v = seed[i % seed.len()]
                .wrapping_mul(2654435761)
                .rotate_left(i as u32);
            if v.is_multiple_of(5) {
                return None;
            }
            Some(match &a.kind {
                Kind::Enum(vs) => Scalar::Str(vs[(v / 5) as usize % vs.len()].clone()),
                Kind::Str => Scalar::Str(format!("s{}", (v / 5) % 6)),
                Kind::Int => Scalar::Num(f64::from((v / 5) % 16) - 4.0),
                Kind::Bool => Scalar::Bool((v / 5).is_multiple_of(2)),
                Kind::Duration => Scalar::Num(f64::from((v / 5) % 14) * 50.0),
            })
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn table_agrees_with_the_interpreter(
        attrs in attrs(),
        seeds in prop::collection::vec(prop::collection::vec(any::<u32>(), 8..40), 1..8),
        fallback in any::<bool>(),
        requests in prop::collection::vec(prop::collection::vec(any::<u32>(), 1..6), 1..30),
    ) {
        let rules: Vec<String> = seeds.iter().map(|s| condition(&attrs, s, 3, &mut 0)).collect();
        let text = policy_text(&attrs, &rules, fallback);
        let checked = rulec::driver::check_text("random.yaml", text.as_bytes());
        let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.message.clone()).collect();
        prop_assert!(errors.is_empty(), "generated policy has errors: {:?}\n{}", errors, text);
        let schema = Schema::for_policy(&checked.policy);
        let routing = compile::routing(&checked.policy, &schema, &checked.sources).expect("compiles");
        let t = &routing.table;
        let bitsets = rulec::compile::table::DecisionTable::build_with_limit(
            t.domains.clone(), t.slots.clone(), t.rules.clone(), &routing.terms, 0);
        for r in &requests {
            let values = request_values(&attrs, r);
            let mut slots = vec![None; routing.schema.attributes.len()];
            for (a, v) in attrs.iter().zip(&values) {
                slots[routing.schema.slot(&a.name).unwrap()] = v.clone();
            }
            let table = routing.table.decide(&slots);
            let get = |name: &str| routing.schema.slot(name).and_then(|i| slots[i].as_ref());
            let reference = interp::first_match(&routing.conditions, &get).map(|i| i as u32);
            prop_assert_eq!(table, reference, "layout {}, request {:?}\n{}", routing.table.layout_name(), values, text);
            prop_assert_eq!(bitsets.decide(&slots), reference, "bitsets layout, request {:?}\n{}", values, text);
        }
    }
}
