//! Pools and their members after validation: addresses parsed, weights, ports, probe
//! addresses, the member's pre-built A/AAAA record, its pool's geography, and the stable hash
//! keys hash steering and selection use.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;

use hickory_proto::rr::rdata::{A, AAAA, CNAME};
use hickory_proto::rr::{Name, RData, Record};
use toml::Spanned;

use super::{Builder, Monitor, MonitorId};
use crate::config::{ConfigError, MemberConfig, PoolConfig};
use crate::geo::{Continent, Coords, Country};
use crate::hash::stable_hash;

/// What a member hands out in answers (distinct from client and listen addresses): an
/// address (an A or AAAA record), or a host name (one CNAME record, gdnsd's `DYNC`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendAddr {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A fully-qualified host name, lower-cased, probed at the addresses it resolves to.
    Name(Name),
}

impl BackendAddr {
    /// The address, for an address member.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            BackendAddr::Ip(ip) => Some(*ip),
            BackendAddr::Name(_) => None,
        }
    }

    /// The host name, for a hostname member.
    pub fn name(&self) -> Option<&Name> {
        match self {
            BackendAddr::Ip(_) => None,
            BackendAddr::Name(name) => Some(name),
        }
    }
}

impl fmt::Display for BackendAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendAddr::Ip(ip) => ip.fmt(f),
            BackendAddr::Name(name) => name.fmt(f),
        }
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
    /// Address (or host name) handed out in answers.
    pub address: BackendAddr,
    /// Relative weight within the pool.
    pub weight: Weight,
    /// Port it serves on, if configured.
    pub port: Option<u16>,
    /// Address probed instead of `address`, if configured.
    pub check_address: Option<IpAddr>,
    /// The A, AAAA or CNAME record for this member, built once; the answering core only
    /// renames it.
    pub record: Record,
    /// Stable hash of its address and port, for hash selection (the same on every instance
    /// and across restarts).
    pub key: u64,
}

impl Member {
    /// How metrics, events and admin calls name a member: its address, with the port when it
    /// has one (`192.0.2.10`, `192.0.2.10:8443`, `[2001:db8::1]:8443`).
    pub fn id(&self) -> String {
        match (&self.address, self.port) {
            (BackendAddr::Ip(ip), Some(port)) => std::net::SocketAddr::new(*ip, port).to_string(),
            (BackendAddr::Name(name), Some(port)) => format!("{name}:{port}"),
            (address, None) => address.to_string(),
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
    /// Whether its members are host names (all of them: a pool does not mix), so that it
    /// answers one CNAME record.
    pub hostnames: bool,
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
            let address = self.member_address(name, m)?;
            if let Some(first) = members.first()
                && first.address.name().is_some() != address.name().is_some()
            {
                return self.err(
                    m.span(),
                    format!(
                        "pools.{name}: mixes address and cname members; a pool answers addresses or one CNAME, so put hostname members in a pool of their own"
                    ),
                );
            }
            if !seen.insert((address.clone(), mc.port)) {
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
            let rdata = match &address {
                BackendAddr::Ip(IpAddr::V4(v4)) => RData::A(A(*v4)),
                BackendAddr::Ip(IpAddr::V6(v6)) => RData::AAAA(AAAA(*v6)),
                BackendAddr::Name(target) => RData::CNAME(CNAME(target.clone())),
            };
            let key = stable_hash(format!("{address} {}", mc.port.unwrap_or(0)).as_bytes());
            let member = Member {
                index: first_index + members.len(),
                address,
                weight: Weight(*mc.weight.get_ref()),
                port: mc.port,
                check_address,
                record: Record::from_rdata(Name::root(), 0, rdata),
                key,
            };
            if let Some(monitor) = monitor.map(|id| &monitors[id.0 as usize])
                && monitor.port_of(&member).is_none()
            {
                return self.err(
                    m.span(),
                    format!(
                        "pools.{name}: member {} needs a port for {} monitor {:?} (set port on the member or the monitor)",
                        member.address,
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
        let hostnames = members.iter().any(|m| m.address.name().is_some());
        Ok(Pool {
            name: name.to_string(),
            hostnames,
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

    /// A member's `address` or `cname` (exactly one of them): an IP address, or a
    /// fully-qualified host name (the final dot optional) that is not an address.
    fn member_address(
        &self,
        pool: &str,
        m: &Spanned<MemberConfig>,
    ) -> Result<BackendAddr, ConfigError> {
        let mc = m.get_ref();
        match (&mc.address, &mc.cname) {
            (Some(a), None) => match a.get_ref().parse() {
                Ok(ip) => Ok(BackendAddr::Ip(ip)),
                Err(_) => {
                    let text = a.get_ref();
                    let hint = if text.contains(|c: char| c.is_ascii_alphabetic() && c > 'f') {
                        " (a host name goes in cname)"
                    } else {
                        ""
                    };
                    self.err(
                        a.span(),
                        format!("pools.{pool}: member address {text:?} is not an IP address{hint}"),
                    )
                }
            },
            (None, Some(c)) => {
                let text = c.get_ref();
                let why = if text.parse::<IpAddr>().is_ok() {
                    Some("an IP address goes in address".to_string())
                } else {
                    match Name::from_ascii(text) {
                        Ok(n) if n.num_labels() >= 2 => None,
                        Ok(_) => Some("a host name has at least two labels".to_string()),
                        Err(_) => Some("not a DNS name".to_string()),
                    }
                };
                if let Some(why) = why {
                    return self.err(
                        c.span(),
                        format!("pools.{pool}: member cname {text:?}: {why}"),
                    );
                }
                let mut name = Name::from_ascii(text).expect("parsed above");
                name.set_fqdn(true);
                Ok(BackendAddr::Name(name.to_lowercase()))
            }
            (Some(_), Some(_)) => self.err(
                m.span(),
                format!("pools.{pool}: a member has an address or a cname, not both"),
            ),
            (None, None) => self.err(
                m.span(),
                format!("pools.{pool}: a member needs an address or a cname"),
            ),
        }
    }
}
