//! `rulec test`: test cases written next to a policy (`*.test.yaml`), each a request
//! and the decision expected for it, with a diff on failure and a summary of which
//! rules no test reaches.

use serde_json::Value as Json;

use crate::compile::table::TargetKind;
use crate::compile::Routing;
use crate::diag::Diagnostic;
use crate::load::{Kind, Node, Style};
use crate::policy::reader::{missing_key, Ctx};
use crate::source::{FileId, SourceMap, Span};

/// What a test case expects; every field given must hold.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub model: Option<String>,
    pub pool: Option<String>,
    pub rule: Option<String>,
    pub priority: Option<String>,
    /// no rule matches
    pub none: bool,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub request: Json,
    pub request_span: Span,
    pub expect: Expect,
    pub span: Span,
    /// the names the expectation refers to, as written: `("model", name)`, for E020
    pub names: Vec<(&'static str, crate::policy::Name)>,
}

/// Reads the cases of one test file; problems are diagnostics.
pub fn read_cases(sources: &SourceMap, file: FileId) -> (Vec<Case>, Vec<Diagnostic>) {
    let (docs, mut diags) = crate::load::yaml::parse(file, &sources.get(file).text);
    let mut ctx = Ctx::default();
    let mut cases = Vec::new();
    for doc in &docs {
        let Some(mut top) = ctx.map(doc, doc.span, "a test file") else {
            continue;
        };
        let list = top.req(
            &mut ctx,
            "tests",
            "[{request: {estimated_tokens: 1000}, expect: {model: MODEL}}]",
        );
        top.finish(&mut ctx);
        let Some(list) = list else { continue };
        for (i, node) in ctx.list(list, "`tests`").iter().enumerate() {
            let what = format!("test #{}", i + 1);
            let Some(mut m) = ctx.map(node, node.span, &what) else {
                continue;
            };
            let name = m
                .opt("name")
                .and_then(|n| ctx.string(n, "`name`"))
                .map(|n| n.value);
            let what = match &name {
                Some(n) => format!("test `{n}`"),
                None => what,
            };
            let request = m.req(&mut ctx, "request", "{estimated_tokens: 1000}");
            let expect_node = m.req(&mut ctx, "expect", "{model: MODEL}");
            m.finish(&mut ctx);
            let (Some(request), Some(expect_node)) = (request, expect_node) else {
                continue;
            };
            let Some(mut e) = ctx.map(expect_node, expect_node.span, "`expect`") else {
                continue;
            };
            let text = |ctx: &mut Ctx, n: Option<&Node>, what: &str| {
                n.and_then(|n| ctx.string(n, what)).map(|s| s.value)
            };
            let expect = Expect {
                model: text(&mut ctx, e.opt("model"), "`model`"),
                pool: text(&mut ctx, e.opt("pool"), "`pool`"),
                rule: text(&mut ctx, e.opt("rule"), "`rule`"),
                priority: text(&mut ctx, e.opt("priority"), "`priority`"),
                none: e
                    .opt("none")
                    .and_then(|n| ctx.boolean(n, "`none`"))
                    .is_some_and(|b| b.value),
            };
            let mut names = Vec::new();
            for kind in ["model", "pool", "rule"] {
                if let Some(n) = e.opt(kind).and_then(|n| n.text().map(|t| (t, n.span))) {
                    names.push((kind, crate::policy::Spanned::new(n.0.to_string(), n.1)));
                }
            }
            e.finish(&mut ctx);
            if expect.model.is_none()
                && expect.pool.is_none()
                && expect.rule.is_none()
                && !expect.none
            {
                ctx.push(missing_key(
                    expect_node.span,
                    format!("{what} expects nothing"),
                    "empty expectation",
                    "expect a `model`, `pool` or `rule`, or `none: true`",
                ));
                continue;
            }
            cases.push(Case {
                name: name.unwrap_or(what),
                request: to_json(request),
                request_span: request.span,
                expect,
                span: node.span,
                names,
            });
        }
    }
    diags.extend(ctx.diags);
    (cases, diags)
}

/// E020 for an expected model, pool or rule that the policy does not have: such a
/// test could never pass, and "did you mean" says why at once.
pub fn check_names(
    policy: &crate::policy::Policy,
    routing: &Routing,
    cases: &[Case],
) -> Vec<Diagnostic> {
    let rule_ids: Vec<&str> = routing.table.rules.iter().map(|r| r.id.as_str()).collect();
    let mut out = Vec::new();
    for case in cases {
        for (kind, name) in &case.names {
            let (known, declare): (Vec<&str>, &str) = match *kind {
                "model" => (
                    policy.declared.models.iter().map(String::as_str).collect(),
                    "under `gateway.models` in the policy",
                ),
                "pool" => (
                    policy.declared.pools.iter().map(String::as_str).collect(),
                    "under `load_balancing.pools` in the policy",
                ),
                _ => (
                    rule_ids.clone(),
                    "as a rule's `name` in the policy (unnamed rules are `#1`, `#2`, …)",
                ),
            };
            if !known.contains(&name.value.as_str()) {
                out.push(crate::check::names::undefined(
                    kind,
                    name,
                    known.iter().copied(),
                    declare,
                ));
            }
        }
    }
    out
}

/// A YAML node as JSON: plain scalars become numbers, booleans or null where they read so.
pub fn to_json(node: &Node) -> Json {
    match &node.kind {
        Kind::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.text().unwrap_or_default().to_string(), to_json(v)))
                .collect(),
        ),
        Kind::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Kind::Scalar(s) if s.style != Style::Plain => Json::String(s.value.clone()),
        Kind::Scalar(s) if s.is_null() => Json::Null,
        Kind::Scalar(s) => match s.value.as_str() {
            "true" => Json::Bool(true),
            "false" => Json::Bool(false),
            v => match v.parse::<i64>() {
                Ok(i) => Json::from(i),
                Err(_) => match v.parse::<f64>() {
                    Ok(f) if f.is_finite() => Json::from(f),
                    _ => Json::String(v.to_string()),
                },
            },
        },
    }
}

/// The outcome of one case.
pub struct Outcome {
    pub case: Case,
    pub rule: Option<u32>,
    /// `None` when it passed
    pub failure: Option<String>,
}

pub fn run(routing: &Routing, cases: Vec<Case>) -> Vec<Outcome> {
    cases
        .into_iter()
        .map(|case| match routing.schema.parse(&case.request) {
            Err(e) => Outcome {
                failure: Some(format!("the request is invalid: {e}")),
                rule: None,
                case,
            },
            Ok(request) => {
                let rule = routing.table.decide(&request.values);
                let failure = mismatch(routing, &case.expect, rule);
                Outcome {
                    case,
                    rule,
                    failure,
                }
            }
        })
        .collect()
}

fn describe(routing: &Routing, rule: Option<u32>) -> String {
    match rule {
        None => "no route (no rule matches)".to_string(),
        Some(r) => {
            let info = &routing.table.rules[r as usize];
            format!("{}, by rule `{}`", info.target_text(), info.id)
        }
    }
}

fn mismatch(routing: &Routing, e: &Expect, rule: Option<u32>) -> Option<String> {
    let info = rule.map(|r| &routing.table.rules[r as usize]);
    let ok = match info {
        None => e.none,
        Some(i) => {
            !e.none
                && e.model
                    .as_ref()
                    .is_none_or(|m| i.target.kind == TargetKind::Model && &i.target.name == m)
                && e.pool
                    .as_ref()
                    .is_none_or(|p| i.target.kind == TargetKind::Pool && &i.target.name == p)
                && e.rule.as_ref().is_none_or(|r| &i.id == r)
                && e.priority
                    .as_ref()
                    .is_none_or(|p| i.priority.as_ref() == Some(p))
        }
    };
    if ok {
        return None;
    }
    let mut want = Vec::new();
    if e.none {
        want.push("no route".to_string());
    }
    if let Some(m) = &e.model {
        want.push(format!("model `{m}`"));
    }
    if let Some(p) = &e.pool {
        want.push(format!("pool `{p}`"));
    }
    if let Some(r) = &e.rule {
        want.push(format!("by rule `{r}`"));
    }
    if let Some(p) = &e.priority {
        want.push(format!("priority {p}"));
    }
    Some(format!(
        "expected: {}\n     actual:   {}",
        want.join(" "),
        describe(routing, rule)
    ))
}

/// The report: one line per case, details for failures, the rule coverage and the
/// closing `N passed, N failed` line.
pub fn report(routing: &Routing, sources: &SourceMap, outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let file = sources.get(o.case.span.file);
        let (line, _) = file.line_col(o.case.span.start as usize);
        match &o.failure {
            None => out.push_str(&format!("ok   {}\n", o.case.name)),
            Some(f) => out.push_str(&format!(
                "FAIL {} ({}:{line})\n     {f}\n",
                o.case.name, file.name
            )),
        }
    }
    let hit: std::collections::BTreeSet<u32> = outcomes.iter().filter_map(|o| o.rule).collect();
    let rules = &routing.table.rules;
    let missed: Vec<String> = (0..rules.len() as u32)
        .filter(|r| !hit.contains(r))
        .map(|r| {
            let i = &rules[r as usize];
            format!("`{}` ({}:{})", i.id, i.source.file, i.source.line)
        })
        .collect();
    out.push_str(&format!(
        "rule coverage: {} of {} rules hit",
        rules.len() - missed.len(),
        rules.len()
    ));
    if missed.is_empty() {
        out.push('\n');
    } else {
        out.push_str(&format!("; not hit: {}\n", missed.join(", ")));
    }
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    out.push_str(&format!(
        "{} passed, {failed} failed\n",
        outcomes.len() - failed
    ));
    out
}
