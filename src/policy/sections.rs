//! The table of every section of the policy format with its full path and what it
//! holds. Unknown-key suggestions use it to say where a misplaced section lives, the
//! docs list it, and the tests walk it, so the three cannot drift apart.

/// One section: a mapping or list that has a fixed place in the format.
#[derive(Debug)]
pub struct Section {
    /// Dotted path from the top of a document, e.g. `gateway.models`.
    pub path: &'static str,
    /// What the section holds, as the subject of "… live in `path`".
    pub holds: &'static str,
    /// Other words a first policy uses for it (`routing`, `budget`); each alias must
    /// mean this section and nothing else, or a suggestion would lead astray.
    pub aliases: &'static [&'static str],
}

impl Section {
    /// The key that opens the section: the last part of its path.
    pub fn key(&self) -> &'static str {
        self.path.rsplit('.').next().unwrap_or(self.path)
    }

    /// The path of the enclosing section, or `None` at the top level.
    pub fn parent(&self) -> Option<&'static str> {
        self.path.rsplit_once('.').map(|(p, _)| p)
    }
}

/// Every section, in documentation order.
pub const ALL: &[Section] = &[
    Section {
        path: "providers",
        holds: "providers (endpoints and credentials)",
        aliases: &["provider", "endpoints"],
    },
    Section {
        path: "request",
        holds: "request attributes",
        aliases: &["attributes", "schema", "request_schema"],
    },
    Section {
        path: "gateway",
        holds: "models and the routing strategy",
        aliases: &[],
    },
    Section {
        path: "gateway.models",
        holds: "model declarations",
        aliases: &["model"],
    },
    Section {
        path: "gateway.routing_strategy",
        holds: "the routing strategy",
        aliases: &["routing", "router"],
    },
    Section {
        path: "gateway.routing_strategy.rules",
        holds: "routing rules",
        aliases: &["routes", "route", "route_rules", "model_rules"],
    },
    Section {
        path: "cost_aware",
        holds: "cost optimisation",
        aliases: &["cost", "costs"],
    },
    Section {
        path: "cost_aware.optimization",
        holds: "the optimisation target and constraints",
        aliases: &["optimisation"],
    },
    Section {
        path: "cost_aware.optimization.constraints",
        holds: "budgets, the budget day's time zone and the quality floor",
        aliases: &[
            "budget",
            "budgets",
            "max_daily_budget",
            "max_cost_per_session",
            "quality_threshold",
            "time_zone",
        ],
    },
    Section {
        path: "cost_aware.dynamic_switching",
        holds: "cost-window switching",
        aliases: &["switching", "cost_window"],
    },
    Section {
        path: "cost_aware.dynamic_switching.rules",
        holds: "cost-window switching rules",
        aliases: &[],
    },
    Section {
        path: "load_balancing",
        holds: "load balancing",
        aliases: &["balancing", "load_balancer"],
    },
    Section {
        path: "load_balancing.pools",
        holds: "load-balancing pools",
        aliases: &["pool"],
    },
    Section {
        path: "load_balancing.health_check",
        holds: "default health checks",
        aliases: &["health", "health_checks"],
    },
    Section {
        path: "load_balancing.session_affinity",
        holds: "session affinity",
        aliases: &["affinity", "sticky_sessions"],
    },
    Section {
        path: "failover",
        holds: "provider failover",
        aliases: &[],
    },
    Section {
        path: "failover.fallbacks",
        holds: "failover fallbacks",
        aliases: &[],
    },
    Section {
        path: "failover.scheduled_failover",
        holds: "scheduled failover tests",
        aliases: &[],
    },
    Section {
        path: "failover.recovery",
        holds: "failover recovery",
        aliases: &[],
    },
    Section {
        path: "channels",
        holds: "notification channels",
        aliases: &["channel"],
    },
    Section {
        path: "routing_rules",
        holds: "notification routes (which events go to which channels)",
        aliases: &["notification_rules", "notify"],
    },
    Section {
        path: "templates",
        holds: "notification templates",
        aliases: &["template"],
    },
    Section {
        path: "events",
        holds: "externally produced event types",
        aliases: &[],
    },
];

/// The sections a key names, by their key or an alias, wherever they live. A key can
/// name several (`rules`).
pub fn named(key: &str) -> Vec<&'static Section> {
    let key = key.to_ascii_lowercase();
    ALL.iter()
        .filter(|s| s.key() == key || s.aliases.contains(&key.as_str()))
        .collect()
}

/// Whether two keys name a common section (`model` and `models` do).
pub fn same_meaning(a: &str, b: &str) -> bool {
    let b = named(b);
    named(a)
        .iter()
        .any(|s| b.iter().any(|o| std::ptr::eq(*s, *o)))
}

/// The help for an unknown key that names sections of the format: where each lives.
pub fn elsewhere(key: &str) -> Option<String> {
    let found = named(key);
    if found.is_empty() {
        return None;
    }
    let parts: Vec<String> = found
        .iter()
        .map(|s| format!("{} under `{}`", s.holds, s.path))
        .collect();
    Some(format!("write {}", parts.join(", or ")))
}

/// A Markdown table of the sections, for the docs.
pub fn markdown() -> String {
    let mut out = String::from("| section | holds |\n|---|---|\n");
    for s in ALL {
        out.push_str(&format!("| `{}` | {} |\n", s.path, s.holds));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_name_one_section_and_are_not_keys_of_another() {
        for s in ALL {
            for a in s.aliases {
                let owners: Vec<_> = ALL.iter().filter(|o| o.aliases.contains(a)).collect();
                assert_eq!(owners.len(), 1, "alias `{a}` names several sections");
                assert!(
                    ALL.iter().all(|o| o.key() != *a),
                    "alias `{a}` is the key of a section"
                );
            }
        }
    }

    #[test]
    fn every_parent_is_a_section() {
        for s in ALL {
            if let Some(p) = s.parent() {
                assert!(
                    ALL.iter().any(|o| o.path == p),
                    "`{}` has no parent",
                    s.path
                );
            }
        }
    }

    #[test]
    fn misplaced_sections_say_where_they_live() {
        let help = elsewhere("models").unwrap_or_default();
        assert!(help.contains("`gateway.models`"), "{help}");
        let help = elsewhere("rules").unwrap_or_default();
        assert!(help.contains("`gateway.routing_strategy.rules`"), "{help}");
        assert!(
            help.contains("`cost_aware.dynamic_switching.rules`"),
            "{help}"
        );
        assert_eq!(elsewhere("weight"), None);
        assert!(same_meaning("model", "models"));
        assert!(!same_meaning("routing", "routing_rules"));
    }
}
