//! The plain-text transition table of a machine, for `rulec` to print and for docs.

use std::fmt::Write as _;

use super::machine::{Action, Delay, DowngradeTarget, Fallback, Guard, Machine, Metric, Update};

/// A threshold in its metric's unit, so that `0.05` is not read as 5 cents or 5 ms.
fn amount(metric: Metric, v: f64) -> String {
    match metric {
        Metric::CostPerTask => format!("${v}"),
        Metric::ErrorRate => format!("{v}"),
        Metric::LatencyP50 | Metric::LatencyP95 | Metric::LatencyP99 => format!("{v}ms"),
    }
}

fn fallbacks(list: &[Fallback]) -> String {
    list.iter()
        .map(|f| format!("{} w{} {}ms", f.provider, f.weight, f.timeout_ms))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn describe_guard(m: &Machine, g: &Guard) -> String {
    match g {
        Guard::Always => "-".into(),
        Guard::CounterBelow { counter, limit } => {
            format!("{} < {limit}", m.counter_name(*counter))
        }
        Guard::CounterAtLeast { counter, limit } => {
            format!("{} >= {limit}", m.counter_name(*counter))
        }
        Guard::TimerDue => "timer due".into(),
        Guard::MetricAbove { metric, threshold } => {
            format!("{} > {}", metric.as_str(), amount(*metric, *threshold))
        }
        Guard::MetricAtMost { metric, threshold } => {
            format!("{} <= {}", metric.as_str(), amount(*metric, *threshold))
        }
    }
}

pub fn describe_update(m: &Machine, u: &Update) -> String {
    match u {
        Update::Inc(c) => format!("{} += 1", m.counter_name(*c)),
        Update::Reset(c) => format!("{} := 0", m.counter_name(*c)),
        Update::SetTimer(Delay::Fixed(ms)) => format!("timer := now + {ms}ms"),
        Update::SetTimer(Delay::Backoff {
            base_ms,
            kind,
            counter,
        }) => format!(
            "timer := now + {}({base_ms}ms, {})",
            kind.as_str(),
            m.counter_name(*counter)
        ),
        Update::ClearTimer => "timer := none".into(),
    }
}

pub fn describe_action(a: &Action) -> String {
    match a {
        Action::MarkUnhealthy => "mark_unhealthy".into(),
        Action::MarkHealthy => "mark_healthy".into(),
        Action::Probe => "probe".into(),
        Action::Notify(e) => format!("notify({})", e.as_str()),
        Action::Downgrade { to } => match to {
            DowngradeTarget::NextCheaper => "downgrade(next_cheaper)".into(),
            DowngradeTarget::Model(m) => format!("downgrade({m})"),
        },
        Action::SwitchProvider => "switch_provider".into(),
        Action::FallbackFast { model } => format!("fallback_fast({model})"),
        Action::Restore { undo } => format!("restore({})", undo.as_str()),
        Action::RouteToFallbacks { fallbacks: f } => {
            format!("route_to_fallbacks({})", fallbacks(f))
        }
        Action::RouteToPrimary => "route_to_primary".into(),
        Action::DrillReport { fallbacks: f } => format!("drill_report({})", fallbacks(f)),
    }
}

fn join(items: Vec<String>) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join("; ")
    }
}

/// The machine's rows as an aligned text table, one row per line, headed by the
/// machine's name, initial state and counters.
pub fn transition_table(machine: &Machine) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "machine {} (initial: {})",
        machine.name,
        machine.state_name(machine.initial)
    );
    if !machine.counters.is_empty() {
        let counters: Vec<String> = machine
            .counters
            .iter()
            .map(|c| format!("{} <= {}", c.name, c.limit))
            .collect();
        let _ = writeln!(out, "counters: {}", counters.join(", "));
    }
    let mut lines: Vec<[String; 7]> = vec![[
        "#".into(),
        "from".into(),
        "on".into(),
        "guard".into(),
        "updates".into(),
        "to".into(),
        "actions".into(),
    ]];
    for (i, row) in machine.rows.iter().enumerate() {
        lines.push([
            i.to_string(),
            machine.state_name(row.from).to_string(),
            row.on.as_str().to_string(),
            describe_guard(machine, &row.guard),
            join(
                row.updates
                    .iter()
                    .map(|u| describe_update(machine, u))
                    .collect(),
            ),
            machine.state_name(row.to).to_string(),
            join(row.actions.iter().map(describe_action).collect()),
        ]);
    }
    let mut widths = [0usize; 7];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < line.len() {
                text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    out
}
