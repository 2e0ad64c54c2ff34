//! Operator overrides (drain, force-down, force-up) addressed by pool and member, and the state
//! file that keeps them across restarts (written atomically: temp file, fsync, rename), so a
//! drained server is not handed out again after a restart.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{HealthTable, Override};
use crate::model::{BackendAddr, Model};

/// What an admin action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Set [`Override::Drain`].
    Drain,
    /// Remove a drain (other overrides stay).
    Undrain,
    /// Set [`Override::ForceDown`].
    ForceDown,
    /// Set [`Override::ForceUp`].
    ForceUp,
    /// Remove any override.
    Clear,
}

impl Action {
    /// Parses the name used in URLs and on the command line.
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "drain" => Action::Drain,
            "undrain" => Action::Undrain,
            "force-down" => Action::ForceDown,
            "force-up" => Action::ForceUp,
            "clear" => Action::Clear,
            _ => return None,
        })
    }

    /// The name used in URLs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Action::Drain => "drain",
            Action::Undrain => "undrain",
            Action::ForceDown => "force-down",
            Action::ForceUp => "force-up",
            Action::Clear => "clear",
        }
    }

    /// The override after applying this action to `current`.
    pub fn apply(self, current: Option<Override>) -> Option<Override> {
        match self {
            Action::Drain => Some(Override::Drain),
            Action::ForceDown => Some(Override::ForceDown),
            Action::ForceUp => Some(Override::ForceUp),
            Action::Undrain if current == Some(Override::Drain) => None,
            Action::Undrain => current,
            Action::Clear => None,
        }
    }
}

/// Which members an action applies to: a whole pool, or one member of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    /// Pool name.
    pub pool: String,
    /// Member address (`192.0.2.10`, or `192.0.2.10:8080` when a pool lists an address on
    /// several ports); `None` means every member of the pool.
    pub member: Option<String>,
}

/// Why an action could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// No pool of that name.
    #[error("no pool named {0:?}")]
    NoPool(String),
    /// No member of that address in the pool.
    #[error("pool {pool:?} has no member {member:?}")]
    NoMember {
        /// The pool.
        pool: String,
        /// What was asked for.
        member: String,
    },
    /// The state file could not be written; the change was not made.
    #[error("cannot save overrides: {0}")]
    Save(StateFileError),
    /// The health writer is not running (shutting down).
    #[error("health state is not available (shutting down)")]
    Unavailable,
    /// In fleet mode, the override could not be written to etcd; it was not applied anywhere.
    #[error("fleet: {0}; the override was not applied")]
    Fleet(String),
}

/// Why the state file could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateFileError {
    /// It exists but could not be read; starting without it would hand out drained members.
    #[error("{}: cannot read: {reason}", path.display())]
    Read {
        /// The state file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
    /// It was read but is not a state file.
    #[error("{}: not a state file: {reason}", path.display())]
    Invalid {
        /// The state file.
        path: PathBuf,
        /// What the JSON parser said.
        reason: String,
    },
    /// It could not be written.
    #[error("{}: {reason}", path.display())]
    Write {
        /// The state file.
        path: PathBuf,
        /// What the system said.
        reason: String,
    },
}

/// Member indices a selector names in `model`.
pub fn resolve(model: &Model, sel: &Selector) -> Result<Vec<usize>, AdminError> {
    let pool = model
        .pools
        .iter()
        .find(|p| p.name == sel.pool)
        .ok_or_else(|| AdminError::NoPool(sel.pool.clone()))?;
    let Some(want) = &sel.member else {
        return Ok(pool.members.iter().map(|m| m.index).collect());
    };
    let found: Vec<usize> = pool
        .members
        .iter()
        .filter(|m| *want == m.address.to_string() || (m.port.is_some() && *want == m.id()))
        .map(|m| m.index)
        .collect();
    if found.is_empty() {
        return Err(AdminError::NoMember {
            pool: sel.pool.clone(),
            member: want.clone(),
        });
    }
    Ok(found)
}

/// One saved override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedOverride {
    /// Pool name.
    pub pool: String,
    /// Member address.
    pub member: String,
    /// Member port, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The override.
    #[serde(rename = "override")]
    pub value: Override,
}

/// The state file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// Format version, 1.
    pub version: u32,
    /// Every member with an override.
    pub overrides: Vec<SavedOverride>,
}

/// The overrides in `table`, addressed by pool name and member address so they survive config
/// changes that renumber members.
pub fn collect(model: &Model, table: &HealthTable) -> StateFile {
    let overrides = model
        .members()
        .filter_map(|(pool, m)| {
            table.get(m.index).admin.map(|value| SavedOverride {
                pool: pool.name.clone(),
                member: m.address.to_string(),
                port: m.port,
                value,
            })
        })
        .collect();
    StateFile {
        version: 1,
        overrides,
    }
}

/// Sets the saved overrides on `table`; entries naming members that no longer exist are
/// skipped and returned, for a warning.
pub fn restore(model: &Model, table: &mut HealthTable, saved: &StateFile) -> Vec<SavedOverride> {
    if saved.overrides.is_empty() {
        return Vec::new();
    }
    // One pass over the model, not one per saved entry: with 100,000 members and 1,000
    // overrides, start-up spends 18 ms here instead of 200 ms (benches/health_flip.rs).
    let mut by_key: HashMap<(&str, &BackendAddr, Option<u16>), usize> = HashMap::new();
    for (pool, m) in model.members() {
        let key = (pool.name.as_str(), &m.address, m.port);
        by_key.entry(key).or_insert(m.index);
    }
    let mut unknown = Vec::new();
    for o in &saved.overrides {
        let address = match o.member.parse::<IpAddr>() {
            Ok(ip) => Some(BackendAddr::Ip(ip)),
            Err(_) => hickory_proto::rr::Name::from_ascii(&o.member)
                .ok()
                .map(|n| BackendAddr::Name(n.to_lowercase())),
        };
        let key = address.as_ref().map(|a| (o.pool.as_str(), a, o.port));
        match key.and_then(|k| by_key.get(&k)) {
            Some(&i) => table.get_mut(i).admin = Some(o.value),
            None => unknown.push(o.clone()),
        }
    }
    unknown
}

/// Reads the state file; a missing file is an empty state.
pub fn load(path: &Path) -> Result<StateFile, StateFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| StateFileError::Invalid {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StateFile {
            version: 1,
            overrides: Vec::new(),
        }),
        Err(e) => Err(StateFileError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// The health table `model` starts with: every member as [`HealthTable::initial`] has it, with
/// the operator overrides of the model's state file restored. Saved overrides of members the
/// config no longer has are dropped with a warning. A state file that exists but cannot be
/// read is an error: starting without it would hand out drained members.
pub fn restored(model: &Model) -> Result<HealthTable, StateFileError> {
    let mut table = HealthTable::initial(model);
    let saved = load(&model.health.state_file)?;
    for gone in restore(model, &mut table, &saved) {
        tracing::warn!(
            "state file: pool {:?} has no member {}; its {} override is dropped",
            gone.pool,
            gone.member,
            gone.value
        );
    }
    let restored = table.iter().filter(|m| m.admin.is_some()).count();
    if restored > 0 {
        tracing::info!(
            "restored {restored} operator overrides from {}",
            model.health.state_file.display()
        );
    }
    Ok(table)
}

/// Writes the state file atomically: a temporary file in the same directory, fsync, rename,
/// then fsync of the directory, so a crash leaves either the old or the new file.
pub fn save(path: &Path, state: &StateFile) -> Result<(), StateFileError> {
    let failed = |reason: String| StateFileError::Write {
        path: path.to_path_buf(),
        reason,
    };
    let text = serde_json::to_string_pretty(state).map_err(|e| failed(e.to_string()))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("meridian.state")
    ));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_compose() {
        assert_eq!(Action::Drain.apply(None), Some(Override::Drain));
        assert_eq!(Action::Undrain.apply(Some(Override::Drain)), None);
        assert_eq!(
            Action::Undrain.apply(Some(Override::ForceDown)),
            Some(Override::ForceDown)
        );
        assert_eq!(Action::Clear.apply(Some(Override::ForceUp)), None);
        assert_eq!(Action::parse("force-down"), Some(Action::ForceDown));
        assert_eq!(Action::parse("explode"), None);
    }

    #[test]
    fn save_then_load_round_trips_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meridian.state");
        assert_eq!(load(&path).unwrap().overrides, vec![]);
        let state = StateFile {
            version: 1,
            overrides: vec![SavedOverride {
                pool: "eu".into(),
                member: "192.0.2.10".into(),
                port: None,
                value: Override::Drain,
            }],
        };
        save(&path, &state).unwrap();
        assert_eq!(load(&path).unwrap(), state);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["meridian.state"]);
    }
}
