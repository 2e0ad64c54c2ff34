//! The fleet as operators see it: instances, and per monitored member each instance's own
//! observation beside the state this instance answers with. One function builds it, for
//! `/api/v1/fleet`, the status page and the fleet metrics alike.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio::time::Instant;

use super::FleetStatus;
use crate::health::HealthState;
use crate::health::fleet::MemberKey;
use crate::state::Snapshot;

/// `GET /api/v1/fleet`.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    /// Is fleet mode configured?
    pub enabled: bool,
    /// This instance's name (the NSID without a fleet, if set).
    pub name: Option<String>,
    /// The etcd key prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Is etcd connected?
    pub etcd_connected: bool,
    /// This instance's config digest.
    pub config_digest: String,
    /// Do peers' observations count now (connected, or lost for less than `stale_peers`)?
    pub peers_counted: bool,
    /// Live instances.
    pub instances: Vec<InstanceReport>,
    /// Monitored members.
    pub members: Vec<MemberReport>,
    /// etcd writes so far.
    pub etcd_writes: u64,
}

/// One live instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceReport {
    /// Its name.
    pub name: String,
    /// Its Meridian version.
    pub version: String,
    /// Its config digest.
    pub config_digest: String,
    /// Is its digest this instance's?
    pub config_matches: bool,
    /// Its config generation.
    pub generation: u64,
    /// When it started (seconds since the Unix epoch).
    pub started: u64,
    /// When this instance last saw a write of it (now for this instance itself).
    pub last_seen: u64,
    /// Is it this instance?
    #[serde(rename = "self")]
    pub is_self: bool,
}

/// One monitored member.
#[derive(Debug, Clone, Serialize)]
pub struct MemberReport {
    /// Pool name.
    pub pool: String,
    /// Member id.
    pub member: String,
    /// The monitor's consensus policy.
    pub consensus: String,
    /// The state this instance shows and answers with.
    pub state: String,
    /// This instance's own observation.
    pub local: String,
    /// Each live instance's observation (this one's included), by name.
    pub observations: BTreeMap<String, String>,
    /// Does some counted observation differ from the probe state answers follow?
    pub disagreeing: bool,
}

impl FleetReport {
    /// Live instances whose config differs from this one's.
    pub fn config_mismatches(&self) -> usize {
        self.instances.iter().filter(|i| !i.config_matches).count()
    }

    /// Members on which some live instance's observation differs from the consensus.
    pub fn disagreeing(&self) -> usize {
        self.members.iter().filter(|m| m.disagreeing).count()
    }
}

/// The report for `snap` (what DNS answers from), with the fleet's `status` if there is one.
pub fn report(snap: &Snapshot, status: Option<&FleetStatus>) -> FleetReport {
    let model = &snap.model;
    let Some(status) = status else {
        return FleetReport {
            enabled: false,
            name: model.dns.nsid.clone(),
            prefix: None,
            etcd_connected: false,
            config_digest: model.config_digest.clone(),
            peers_counted: false,
            instances: Vec::new(),
            members: Vec::new(),
            etcd_writes: 0,
        };
    };
    let me = &status.settings.name;
    let view = status.peers.borrow().clone();
    let counted = view.counts(Instant::now(), status.settings.stale_peers);
    let instances = view
        .instances
        .values()
        .map(|i| InstanceReport {
            name: i.name.clone(),
            version: i.version.clone(),
            config_digest: i.config_digest.clone(),
            config_matches: i.config_digest == model.config_digest,
            generation: i.generation,
            started: i.started,
            last_seen: if i.name == *me {
                crate::health::fleet::unix_now()
            } else {
                view.last_seen.get(&i.name).copied().unwrap_or(i.started)
            },
            is_self: i.name == *me,
        })
        .collect();
    let mut members = Vec::new();
    for (pool, member) in model.members() {
        let Some(monitor) = model.monitor_of(pool) else {
            continue;
        };
        let h = snap.health.get(member.index);
        let key = MemberKey {
            pool: pool.name.clone(),
            member: member.id(),
        };
        let mut observations = BTreeMap::new();
        if h.state != HealthState::Unknown {
            observations.insert(me.clone(), h.state.to_string());
        }
        let mut disagreeing = false;
        for (name, obs) in &view.observations {
            if let Some(o) = obs.get(&key) {
                observations.insert(name.clone(), o.state.to_string());
                disagreeing |= counted && o.state != h.effective();
            }
        }
        disagreeing |= h.state != HealthState::Unknown && h.state != h.effective();
        members.push(MemberReport {
            pool: pool.name.clone(),
            member: member.id(),
            consensus: monitor.consensus.to_string(),
            state: h.shown().to_string(),
            local: h.state.to_string(),
            observations,
            disagreeing,
        });
    }
    FleetReport {
        enabled: true,
        name: Some(me.clone()),
        prefix: Some(status.settings.prefix.clone()),
        etcd_connected: status.connected(),
        config_digest: model.config_digest.clone(),
        peers_counted: counted,
        instances,
        members,
        etcd_writes: status.writes(),
    }
}
