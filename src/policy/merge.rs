//! Merging the documents of several files into one policy. Named things are pooled;
//! a name defined twice, or a single-valued section given twice, is E011 with both places.

use super::model::{Name, Policy};
use crate::diag::{Code, Diagnostic};
use crate::source::Span;

fn duplicate(what: &str, name: &str, second: Span, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateDefinition,
        second,
        format!("{what} `{name}` is defined twice"),
    )
    .primary_label("defined again here")
    .label(first, "first defined here")
    .help(format!(
        "keep one definition of `{name}`, or rename one of them"
    ))
}

fn section_twice(section: &str, second: Span, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateDefinition,
        second,
        format!("`{section}` is given twice"),
    )
    .primary_label("given again here")
    .label(first, "first given here")
    .help(format!("write `{section}` in one file only"))
}

fn single<T>(
    diags: &mut Vec<Diagnostic>,
    section: &str,
    into: &mut Option<T>,
    from: Option<T>,
    span: fn(&T) -> Span,
) {
    match (into.as_ref(), from) {
        (Some(first), Some(second)) => {
            diags.push(section_twice(section, span(&second), span(first)))
        }
        (None, Some(second)) => *into = Some(second),
        _ => {}
    }
}

fn named<T>(
    diags: &mut Vec<Diagnostic>,
    what: &str,
    into: &mut Vec<T>,
    from: Vec<T>,
    name: fn(&T) -> &Name,
) {
    let mut index: std::collections::HashMap<String, usize> = into
        .iter()
        .enumerate()
        .map(|(i, item)| (name(item).value.clone(), i))
        .collect();
    for item in from {
        let n = name(&item);
        if let Some(&first) = index.get(&n.value) {
            diags.push(duplicate(what, &n.value, n.span, name(&into[first]).span));
        } else {
            index.insert(n.value.clone(), into.len());
            into.push(item);
        }
    }
}

/// Folds `other` into `policy`.
pub fn merge(policy: &mut Policy, other: Policy, diags: &mut Vec<Diagnostic>) {
    single(
        diags,
        "gateway.version",
        &mut policy.version,
        other.version,
        |v| v.span,
    );
    single(
        diags,
        "gateway.routing_strategy",
        &mut policy.routing,
        other.routing,
        |r| r.span,
    );
    single(diags, "cost_aware", &mut policy.cost, other.cost, |c| {
        c.span
    });
    single(
        diags,
        "load_balancing",
        &mut policy.balancing,
        other.balancing,
        |b| b.span,
    );
    single(
        diags,
        "failover",
        &mut policy.failover,
        other.failover,
        |f| f.span,
    );
    single(
        diags,
        "routing_rules",
        &mut policy.notifications,
        other.notifications,
        |n| n.span,
    );
    named(
        diags,
        "provider",
        &mut policy.providers,
        other.providers,
        |p| &p.name,
    );
    named(diags, "model", &mut policy.models, other.models, |m| {
        &m.name
    });
    named(
        diags,
        "attribute",
        &mut policy.request,
        other.request,
        |a| &a.name,
    );
    named(
        diags,
        "channel",
        &mut policy.channels,
        other.channels,
        |c| &c.name,
    );
    named(
        diags,
        "template",
        &mut policy.templates,
        other.templates,
        |t| &t.name,
    );
    named(diags, "event", &mut policy.events, other.events, |e| {
        &e.name
    });
    let (d, o) = (&mut policy.declared, other.declared);
    d.providers.extend(o.providers);
    d.models.extend(o.models);
    d.pools.extend(o.pools);
    d.channels.extend(o.channels);
    d.templates.extend(o.templates);
    d.attributes.extend(o.attributes);
}
