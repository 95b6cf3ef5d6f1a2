//! The live state worth keeping across a restart — machine states, switches in
//! force, the failover's routing, the day's spending — as plain data, taken from a
//! gateway and put back into a fresh one. Putting it back goes through `events`, the
//! one place machine state changes; reading and writing the file is the server's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::gateway::Gateway;
use super::stats::lock;
use crate::machines::{failover, Switch};

pub const FORMAT: &str = "rulec-state/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub format: String,
    pub bundle: String,
    pub providers: BTreeMap<String, SavedMachine>,
    pub cost_windows: BTreeMap<String, SavedWindow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<SavedFailover>,
    pub budget_day: u64,
    pub budget_spent: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedMachine {
    pub state: String,
    pub counters: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedWindow {
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<Switch>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedFailover {
    pub state: String,
    pub to_fallbacks: bool,
}

impl Gateway {
    /// The state worth keeping, named by provider and machine (timers are not kept:
    /// they run on the process's own clock).
    pub fn snapshot(&self) -> Snapshot {
        let providers = self
            .live
            .providers
            .iter_enumerated()
            .filter_map(|(p, live)| {
                let m = self.health_machine(p)?;
                let inst = *lock(&live.instance);
                Some((
                    live.name.clone(),
                    SavedMachine {
                        state: m.state_name(inst.state).to_string(),
                        counters: inst.counters.to_vec(),
                    },
                ))
            })
            .collect();
        let cost_windows = self
            .cost_windows()
            .map(|(m, live)| {
                // the switch is read under the state's lock, where it changes with it
                let inst = lock(&live.instance);
                let saved = SavedWindow {
                    state: m.state_name(inst.state).to_string(),
                    switch: live.switch(),
                };
                drop(inst);
                (m.name.clone(), saved)
            })
            .collect();
        let failover = self
            .failover_machine()
            .zip(self.live.failover.as_ref())
            .map(|(m, live)| {
                let inst = lock(&live.instance);
                SavedFailover {
                    state: m.state_name(inst.state).to_string(),
                    to_fallbacks: live.to_fallbacks(),
                }
            });
        let (budget_day, budget_spent) = self.shared.budgets.day();
        Snapshot {
            format: FORMAT.into(),
            bundle: self.hash().to_string(),
            providers,
            cost_windows,
            failover,
            budget_day,
            budget_spent,
        }
    }

    /// Puts saved state back, for whatever still exists by name and whose state the
    /// machine still has; a drill is not resumed. Returns how many machines were
    /// restored.
    pub fn restore(&self, saved: &Snapshot, now_ms: u64) -> usize {
        let mut n = 0;
        for (p, live) in self.live.providers.iter_enumerated() {
            let (Some(m), Some(s)) = (self.health_machine(p), saved.providers.get(&live.name))
            else {
                continue;
            };
            if let Some(state) = m.state_id(&s.state) {
                self.restore_provider(p, state, &s.counters, now_ms);
                n += 1;
            }
        }
        for (m, live) in self.cost_windows() {
            let Some(s) = saved.cost_windows.get(&m.name) else {
                continue;
            };
            if let Some(state) = m.state_id(&s.state) {
                Gateway::restore_window(live, state, s.switch.clone());
                n += 1;
            }
        }
        if let (Some(m), Some(live), Some(s)) = (
            self.failover_machine(),
            &self.live.failover,
            &saved.failover,
        ) {
            if let Some(state) = m.state_id(&s.state).filter(|&s| s != failover::DRILL) {
                Gateway::restore_failover(live, state, s.to_fallbacks);
                n += 1;
            }
        }
        self.shared
            .budgets
            .restore_day(saved.budget_day, saved.budget_spent);
        n
    }
}
