//! The probe plan: the distinct things to probe in a model (the same monitor on the same
//! address is probed once, however many pools list the member) and how long a first round of
//! them can take.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::rr::Name;

use crate::model::{Model, MonitorId, ProbeKind, ProbeSpec, Thresholds};

/// One distinct thing to probe, and the members whose health it decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// What to probe. For a hostname target, its `target` is only the port: each probe goes
    /// to the addresses `resolve` resolves to.
    pub spec: ProbeSpec,
    /// A hostname member's name, resolved before probing (see `prober::resolve`).
    pub resolve: Option<Name>,
    /// Hysteresis and intervals of its monitor.
    pub thresholds: Thresholds,
    /// Indices of the members it decides.
    pub members: Vec<usize>,
}

impl Target {
    /// What is probed, for the log: `192.0.2.10:80`, or `eu.cdn.example.net.:443`.
    pub fn probed(&self) -> String {
        match &self.resolve {
            Some(name) => format!("{name}:{}", self.spec.target.port()),
            None => self.spec.target.to_string(),
        }
    }
}

/// What makes two probe targets the same thing (with the monitor).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Probed {
    Address(SocketAddr),
    Name(Name, u16),
}

/// The distinct probe targets of a model: members sharing monitor and probe address share one.
pub fn plan(model: &Model) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    let mut by_key: HashMap<(MonitorId, Probed), usize> = HashMap::new();
    for pool in &model.pools {
        let (Some(id), Some(monitor)) = (pool.monitor, model.monitor_of(pool)) else {
            continue;
        };
        for member in &pool.members {
            let Some(port) = monitor.port_of(member) else {
                continue; // validation guarantees a port; nothing to probe otherwise
            };
            let (probed, addr, name) = match (monitor.target(member), member.address.name()) {
                (Some(addr), _) => (Probed::Address(addr), addr, None),
                (None, Some(name)) => (
                    Probed::Name(name.clone(), port),
                    SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
                    Some(name.clone()),
                ),
                (None, None) => continue,
            };
            let i = *by_key.entry((id, probed)).or_insert_with(|| {
                let mut kind = monitor.kind.clone();
                // HTTP(S) to a host name: that name is the Host header and the TLS name,
                // unless the monitor sets `host`.
                if let (ProbeKind::Http(c) | ProbeKind::Https(c), Some(name)) = (&mut kind, &name)
                    && c.host.is_none()
                {
                    c.host = Some(name.to_string().trim_end_matches('.').to_string());
                }
                targets.push(Target {
                    spec: ProbeSpec {
                        kind,
                        target: addr,
                        timeout: monitor.timeout,
                        source: monitor.source,
                    },
                    resolve: name,
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
