//! Capability claims: a rule that selects a task type (any enum value with `requires`)
//! must send it only to models that have every required capability (E050); a required
//! capability that no model offers is W050.

use crate::diag::{Code, Diagnostic};
use crate::policy::Policy;

use super::exprs::selected_values;
use super::names::Symbols;
use super::schema::Schema;

pub fn check(policy: &Policy, schema: &Schema, syms: &Symbols<'_>, diags: &mut Vec<Diagnostic>) {
    for attr in schema.attrs.iter().filter(|a| !a.requires.is_empty()) {
        for rule in policy.routing.iter().flat_map(|r| &r.rules) {
            let (Some(cond), Some(target)) = (&rule.condition, &rule.target) else {
                continue;
            };
            let Some(values) = selected_values(&cond.expr, &attr.name) else {
                continue;
            };
            let models = syms.target_models(target);
            for (value, range) in values {
                let Some((_, needed)) = attr.requires.iter().find(|(v, _)| *v == value) else {
                    continue;
                };
                for model in &models {
                    let missing = model.missing_capabilities(needed);
                    if missing.is_empty() {
                        continue;
                    }
                    let list = missing
                        .iter()
                        .map(|c| format!("`{c}`"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    let able: Vec<&str> = syms
                        .models
                        .values()
                        .filter(|m| m.missing_capabilities(needed).is_empty())
                        .map(|m| m.name.value.as_str())
                        .collect();
                    let help = match able.first() {
                        Some(m) => format!("route `{value}` to a model that has {list}, such as `{m}`"),
                        None => format!("no declared model has {list}; add one, or add the capability to `{}` if it has it", model.name.value),
                    };
                    let have = if model.capabilities.is_empty() {
                        "no capabilities".to_string()
                    } else {
                        model
                            .capabilities
                            .iter()
                            .map(|c| c.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    diags.push(
                        Diagnostic::new(
                            Code::MissingCapability,
                            cond.node.value_span(range.clone()),
                            format!(
                                "`{value}` tasks go to `{}`, which lacks {list}",
                                model.name.value
                            ),
                        )
                        .primary_label(format!("`{value}` requires {list}"))
                        .label(
                            target.name().span,
                            format!("routed to `{}` here", target.name().value),
                        )
                        .label(
                            model.name.span,
                            format!("`{}` has {have}", model.name.value),
                        )
                        .help(help),
                    );
                }
            }
        }
    }

    // W050: only declared requirements have a place to point at
    for decl in &policy.request {
        for (value, caps) in &decl.requires {
            for cap in caps {
                let provided = policy
                    .models
                    .iter()
                    .any(|m| m.capabilities.iter().any(|c| c.value == cap.value));
                if provided {
                    continue;
                }
                let all: Vec<&str> = policy
                    .models
                    .iter()
                    .flat_map(|m| m.capabilities.iter().map(|c| c.value.as_str()))
                    .collect();
                let help =
                    crate::diag::suggest::did_you_mean(&cap.value, all).unwrap_or_else(|| {
                        format!("add a model with `{}`, or correct the name", cap.value)
                    });
                diags.push(
                    Diagnostic::new(
                        Code::UnprovidedCapability,
                        cap.span,
                        format!(
                            "no model provides `{}`, which `{}` requires",
                            cap.value, value.value
                        ),
                    )
                    .primary_label("provided by no model")
                    .help(help),
                );
            }
        }
    }
}
