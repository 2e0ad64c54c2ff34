//! Pools and their members after validation: addresses parsed, weights, ports, probe
//! addresses, the member's pre-built A/AAAA record, its pool's geography, and the stable hash
//! keys hash steering and selection use.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record};
use toml::Spanned;

use super::{Builder, Monitor, MonitorId};
use crate::config::{ConfigError, PoolConfig};
use crate::geo::{Continent, Coords, Country};
use crate::hash::stable_hash;

/// A member's address as handed out in answers (distinct from client and listen addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendAddr(pub IpAddr);

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Relative weight of a member or pool. Zero means "configured but never chosen".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Weight(pub u32);

/// One server of a pool.
#[derive(Debug, Clone)]
pub struct Member {
    /// Position in the model's flat member list: the index of its health entry.
    pub index: usize,
    /// Address handed out in answers.
    pub address: BackendAddr,
    /// Relative weight within the pool.
    pub weight: Weight,
    /// Port it serves on, if configured.
    pub port: Option<u16>,
    /// Address probed instead of `address`, if configured.
    pub check_address: Option<IpAddr>,
    /// The A or AAAA record for this member, built once; the answering core only renames it.
    pub record: Record,
    /// Stable hash of its address and port, for hash selection (the same on every instance
    /// and across restarts).
    pub key: u64,
}

impl Member {
    /// How metrics, events and admin calls name a member: its address, with the port when it
    /// has one (`192.0.2.10`, `192.0.2.10:8443`, `[2001:db8::1]:8443`).
    pub fn id(&self) -> String {
        match self.port {
            Some(port) => std::net::SocketAddr::new(self.address.0, port).to_string(),
            None => self.address.to_string(),
        }
    }
}

/// One site.
#[derive(Debug, Clone)]
pub struct Pool {
    /// How long a member that comes up (or a reload adds) ramps to its full weight: the
    /// pool's `slow_start`, else its monitor's; `None`: at once.
    pub slow_start: Option<std::time::Duration>,
    /// Its name in the config.
    pub name: String,
    /// Weight under weighted steering.
    pub weight: Weight,
    /// Monitor probing its members, if any.
    pub monitor: Option<MonitorId>,
    /// The members, in config order.
    pub members: Vec<Member>,
    /// Continent whose clients `geo` steering sends here first.
    pub continent: Option<Continent>,
    /// Countries whose clients `geo` steering sends here first.
    pub countries: Vec<Country>,
    /// Where the site is, for `proximity` steering.
    pub location: Option<Coords>,
    /// Stable hash of its name, for hash steering.
    pub key: u64,
}

impl Builder<'_> {
    pub(super) fn pool(
        &self,
        name: &str,
        p: &Spanned<PoolConfig>,
        monitor_ids: &HashMap<String, MonitorId>,
        monitors: &[Monitor],
        first_index: usize,
    ) -> Result<Pool, ConfigError> {
        let cfg = p.get_ref();
        let monitor = match &cfg.monitor {
            None => None,
            Some(m) => match monitor_ids.get(m.get_ref()) {
                Some(&id) => Some(id),
                None => {
                    return self.err(
                        m.span(),
                        format!("pools.{name}.monitor: no monitor named {:?}", m.get_ref()),
                    );
                }
            },
        };
        if cfg.members.is_empty() {
            return self.err(p.span(), format!("pools.{name} has no members"));
        }
        let mut members: Vec<Member> = Vec::new();
        let mut seen = HashSet::new();
        for m in &cfg.members {
            let mc = m.get_ref();
            let address: IpAddr = match mc.address.get_ref().parse() {
                Ok(a) => a,
                Err(_) => {
                    return self.err(
                        mc.address.span(),
                        format!(
                            "pools.{name}: member address {:?} is not an IP address",
                            mc.address.get_ref()
                        ),
                    );
                }
            };
            if !seen.insert((address, mc.port)) {
                return self.err(
                    m.span(),
                    format!("pools.{name}: member {address} is listed twice"),
                );
            }
            let check_address = match &mc.check_address {
                None => None,
                Some(c) => match c.get_ref().parse() {
                    Ok(a) => Some(a),
                    Err(_) => {
                        return self.err(
                            c.span(),
                            format!(
                                "pools.{name}: check_address {:?} is not an IP address",
                                c.get_ref()
                            ),
                        );
                    }
                },
            };
            let rdata = match address {
                IpAddr::V4(v4) => RData::A(A(v4)),
                IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
            };
            let member = Member {
                index: first_index + members.len(),
                address: BackendAddr(address),
                weight: Weight(*mc.weight.get_ref()),
                port: mc.port,
                check_address,
                record: Record::from_rdata(Name::root(), 0, rdata),
                key: stable_hash(format!("{address} {}", mc.port.unwrap_or(0)).as_bytes()),
            };
            if let Some(monitor) = monitor.map(|id| &monitors[id.0 as usize])
                && monitor.target(&member).is_none()
            {
                return self.err(
                    m.span(),
                    format!(
                        "pools.{name}: member {address} needs a port for {} monitor {:?} (set port on the member or the monitor)",
                        monitor.kind.word(),
                        monitor.name
                    ),
                );
            }
            members.push(member);
        }
        let continent = match &cfg.continent {
            None => None,
            Some(c) => match c.get_ref().parse::<Continent>() {
                Ok(c) => Some(c),
                Err(_) => {
                    return self.err(
                        c.span(),
                        format!(
                            "pools.{name}.continent: {:?} is not a continent code (AF, AN, AS, EU, NA, OC, SA)",
                            c.get_ref()
                        ),
                    );
                }
            },
        };
        let mut countries = Vec::new();
        for c in &cfg.countries {
            match c.get_ref().parse::<Country>() {
                Ok(code) => countries.push(code),
                Err(_) => {
                    return self.err(
                        c.span(),
                        format!(
                            "pools.{name}.countries: {:?} is not an ISO 3166 country code",
                            c.get_ref()
                        ),
                    );
                }
            }
        }
        let location = match &cfg.location {
            None => None,
            Some(l) => {
                let [lat, lon] = *l.get_ref();
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    return self.err(
                        l.span(),
                        format!(
                            "pools.{name}.location: [{lat}, {lon}] is not [latitude (-90..90), longitude (-180..180)]"
                        ),
                    );
                }
                Some(Coords { lat, lon })
            }
        };
        let slow_start =
            match self.slow_start(&format!("pools.{name}.slow_start"), &cfg.slow_start)? {
                Some(d) => Some(d),
                None => monitor.and_then(|id| monitors[id.0 as usize].slow_start),
            };
        Ok(Pool {
            name: name.to_string(),
            slow_start,
            weight: Weight(*cfg.weight.get_ref()),
            monitor,
            members,
            continent,
            countries,
            location,
            key: stable_hash(name.as_bytes()),
        })
    }
}
