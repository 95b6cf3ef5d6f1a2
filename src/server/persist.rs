//! `--state-dir`: the file that keeps a gateway's [`Snapshot`] across restarts, so
//! that a restart does not forget an unhealthy provider, a switched cost window, a
//! failover in force or the day's spending. What is kept, and how it is put back, is
//! the runtime's (`runtime::snapshot`); this module only reads and writes the file.

use std::path::{Path, PathBuf};

use crate::runtime::gateway::Gateway;
use crate::runtime::snapshot::{Snapshot, FORMAT};

pub fn path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

/// Writes the state atomically (a temporary file renamed over the old one).
pub fn save(dir: &Path, g: &Gateway) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("state.json.tmp");
    let bytes = serde_json::to_vec_pretty(&g.snapshot()).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(tmp, path(dir))
}

/// Reads saved state; `Ok(None)` when there is none.
pub fn read(dir: &Path) -> Result<Option<Snapshot>, String> {
    let p = path(dir);
    match std::fs::read(&p) {
        Ok(bytes) => {
            let saved: Snapshot = serde_json::from_slice(&bytes)
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
