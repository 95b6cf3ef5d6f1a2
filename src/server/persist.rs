//! `--state-dir`: the live state saved at shutdown and restored at start, so that a
//! restart does not forget an unhealthy provider, a switched cost window, a failover
//! in force or the day's spending. Timers are not saved (they run on the process's
//! own clock): an unhealthy provider is probed again soon after the restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::machines::{health, Switch};
use crate::runtime::gateway::Gateway;
use crate::runtime::stats::lock;

pub const FORMAT: &str = "rulec-state/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
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

pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

pub fn capture(g: &Gateway) -> Saved {
    let providers = g
        .providers
        .iter()
        .enumerate()
        .filter_map(|(p, live)| {
            let m = g.health_machine(p)?;
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
    let cost_windows = g
        .cost_windows()
        .map(|(m, live)| {
            (
                m.name.clone(),
                SavedWindow {
                    state: Gateway::state_of(m, &live.instance),
                    switch: live.switch(),
                },
            )
        })
        .collect();
    let failover = g
        .failover_machine()
        .zip(g.failover.as_ref())
        .map(|(m, live)| SavedFailover {
            state: Gateway::state_of(m, &live.instance),
            to_fallbacks: live.to_fallbacks.load(Ordering::Acquire),
        });
    let (budget_day, budget_spent) = g.shared.budgets.day();
    Saved {
        format: FORMAT.into(),
        bundle: g.hash().to_string(),
        providers,
        cost_windows,
        failover,
        budget_day,
        budget_spent,
    }
}

/// Writes the state atomically (a temporary file renamed over the old one).
pub fn save(dir: &Path, g: &Gateway) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("state.json.tmp");
    let bytes = serde_json::to_vec_pretty(&capture(g)).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path(dir))
}

/// Reads saved state; `Ok(None)` when there is none.
pub fn read(dir: &Path) -> Result<Option<Saved>, String> {
    let p = path(dir);
    match std::fs::read(&p) {
        Ok(bytes) => {
            let saved: Saved = serde_json::from_slice(&bytes)
                .map_err(|e| format!("`{}` is not saved rulec state: {e}", p.display()))?;
            if saved.format != FORMAT {
                return Err(format!(
                    "`{}` has format `{}`, not `{FORMAT}`",
                    p.display(),
                    saved.format
                ));
            }
            Ok(Some(saved))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read `{}`: {e}", p.display())),
    }
}

/// Puts saved state back into a fresh gateway, for whatever still exists by name.
/// Returns how many machines were restored.
pub fn restore(g: &Gateway, saved: &Saved, now_ms: u64) -> usize {
    let mut n = 0;
    for (p, live) in g.providers.iter().enumerate() {
        let (Some(m), Some(s)) = (g.health_machine(p), saved.providers.get(&live.name)) else {
            continue;
        };
        let Some(state) = m.state_id(&s.state) else {
            continue;
        };
        let mut inst = lock(&live.instance);
        for (slot, v) in inst.counters.iter_mut().zip(&s.counters) {
            *slot = *v;
        }
        // a probe in flight at shutdown never answered: probe again
        inst.state = if state == health::PROBING {
            health::UNHEALTHY
        } else {
            state
        };
        inst.timer_at_ms = (inst.state == health::UNHEALTHY).then_some(now_ms);
        drop(inst);
        g.sync_healthy(p);
        n += 1;
    }
    for (m, live) in g.cost_windows() {
        let Some(s) = saved.cost_windows.get(&m.name) else {
            continue;
        };
        let Some(state) = m.state_id(&s.state) else {
            continue;
        };
        lock(&live.instance).state = state;
        live.set_switch(s.switch.clone());
        n += 1;
    }
    if let (Some(m), Some(live), Some(s)) = (g.failover_machine(), &g.failover, &saved.failover) {
        // a drill is not resumed
        if let Some(state) = m.state_id(&s.state).filter(|_| s.state != "drill") {
            lock(&live.instance).state = state;
            live.to_fallbacks.store(s.to_fallbacks, Ordering::Release);
            n += 1;
        }
    }
    g.shared
        .budgets
        .restore_day(saved.budget_day, saved.budget_spent);
    n
}
