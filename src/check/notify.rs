//! Notification routing: routes for events nothing emits (W080) and notifications
//! that no route delivers (W081).

use crate::diag::{Code, Diagnostic};
use crate::policy::Policy;

use super::names::GATEWAY_EVENTS;

pub fn check(policy: &Policy, diags: &mut Vec<Diagnostic>) {
    let known = |e: &str| {
        GATEWAY_EVENTS.iter().any(|(g, _)| *g == e)
            || policy.events.iter().any(|d| d.name.value == e)
    };
    let rules: Vec<_> = policy.notifications.iter().flat_map(|n| &n.value).collect();
    for rule in &rules {
        if !known(&rule.event.value) {
            let names = GATEWAY_EVENTS
                .iter()
                .map(|(g, _)| *g)
                .chain(policy.events.iter().map(|e| e.name.value.as_str()));
            let help = crate::diag::suggest::did_you_mean(&rule.event.value, names).unwrap_or_else(|| {
                format!(
                    "the gateway emits {}; declare `{}` under `events:` if another system posts it",
                    GATEWAY_EVENTS.iter().map(|(g, _)| format!("`{g}`")).collect::<Vec<_>>().join(", "),
                    rule.event.value
                )
            });
            diags.push(
                Diagnostic::new(
                    Code::EventWithoutProducer,
                    rule.event.span,
                    format!("nothing emits `{}` events", rule.event.value),
                )
                .primary_label("this route can never fire")
                .help(help),
            );
        }
    }
    let routed = |e: &str| {
        rules
            .iter()
            .any(|r| r.event.value == e && !r.channels.is_empty())
    };
    if let Some(drill) = policy.failover.as_ref().and_then(|f| f.scheduled.as_ref()) {
        if drill.notify.value && !routed("failover_drill") {
            diags.push(
                Diagnostic::new(
                    Code::UnroutedNotification,
                    drill.notify.span,
                    "drill notifications are sent to no channel",
                )
                .primary_label("`failover_drill` events are emitted here")
                .help("add a notification rule: `- type: failover_drill` with its `channels`"),
            );
        }
    }
}
