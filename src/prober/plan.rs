//! The probe plan: the distinct things to probe in a model (the same monitor on the same
//! address is probed once, however many pools list the member) and how long a first round of
//! them can take.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::model::{Model, MonitorId, ProbeSpec, Thresholds};

/// One distinct thing to probe, and the members whose health it decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What to probe.
    pub spec: ProbeSpec,
    /// Hysteresis and intervals of its monitor.
    pub thresholds: Thresholds,
    /// Indices of the members it decides.
    pub members: Vec<usize>,
}

/// The distinct probe targets of a model: members sharing monitor and probe address share one.
pub fn plan(model: &Model) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    let mut by_key: HashMap<(MonitorId, SocketAddr), usize> = HashMap::new();
    for pool in &model.pools {
        let (Some(id), Some(monitor)) = (pool.monitor, model.monitor_of(pool)) else {
            continue;
        };
        for member in &pool.members {
            let Some(addr) = monitor.target(member) else {
                continue; // validation guarantees a port; nothing to probe otherwise
            };
            let i = *by_key.entry((id, addr)).or_insert_with(|| {
                targets.push(Target {
                    spec: ProbeSpec {
                        kind: monitor.kind.clone(),
                        target: addr,
                        timeout: monitor.timeout,
                        source: monitor.source,
                    },
                    thresholds: monitor.thresholds,
                    members: Vec::new(),
                });
                targets.len() - 1
            });
            targets[i].members.push(member.index);
        }
    }
    targets
}

/// How long the first probe round can take at most: every probe is bounded by its timeout and
/// at most `max_concurrent_probes` run at once.
pub fn first_round_bound(model: &Model, targets: &[Target]) -> Duration {
    let longest = targets
        .iter()
        .map(|t| t.spec.timeout)
        .max()
        .unwrap_or_default();
    let rounds = targets
        .len()
        .div_ceil(model.health.max_concurrent_probes.max(1));
    longest * rounds as u32 + Duration::from_millis(500)
}
