//! `[[directors]]` after validation: listen addresses parsed, the service resolved, every
//! member's backend port known, ACLs parsed into networks. Built with the rest of the model, so
//! a director that could not work is refused at load time with `file:line: reason`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use super::{Member, Pool, Service, ServiceId, WhenAllDown};
use crate::config::{ConfigError, DirectorConfig, Source, parse_duration};

/// How a director chooses among the usable members of the steered pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduler {
    /// Round robin: each member in turn, weights ignored.
    RoundRobin,
    /// Smooth weighted round robin (nginx's): in proportion to weight, interleaved.
    WeightedRoundRobin,
    /// Weighted least connections: the fewest active connections per unit of weight; ties
    /// go round robin.
    LeastConn,
    /// Rendezvous (highest random weight) hashing of the client address: a client sticks to
    /// a member, and a member leaving or joining moves only the clients it loses or wins.
    SourceHash,
    /// Power of two choices: two random members, the one with fewer active connections per
    /// unit of weight.
    Random2,
    /// IPVS's weighted least connections: the lowest overhead (`active * 256 + inactive`) per
    /// unit of weight; ties go to the first member in pool order.
    Wlc,
    /// IPVS's shortest expected delay: the lowest `(active + 1) / weight`; ties go to the
    /// first member in pool order.
    Sed,
    /// IPVS's never queue: the first idle member in pool order, else as `sed`.
    Nq,
    /// Least response time: by weight among the members whose time to first byte (the
    /// moving average this director observes, from the start of the connect) is within the
    /// band of the fastest; members without a sample count as in band, so they get one.
    Fastest,
}

impl Scheduler {
    /// Every scheduler with its config name.
    pub const ALL: [(&'static str, Scheduler); 9] = [
        ("rr", Scheduler::RoundRobin),
        ("wrr", Scheduler::WeightedRoundRobin),
        ("leastconn", Scheduler::LeastConn),
        ("source-hash", Scheduler::SourceHash),
        ("random2", Scheduler::Random2),
        ("wlc", Scheduler::Wlc),
        ("sed", Scheduler::Sed),
        ("nq", Scheduler::Nq),
        ("fastest", Scheduler::Fastest),
    ];

    /// The scheduler called `name` in the config.
    pub fn parse(name: &str) -> Option<Scheduler> {
        Scheduler::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| *s)
    }

    /// Its config name.
    pub fn name(self) -> &'static str {
        Scheduler::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("?", |(n, _)| n)
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which PROXY protocol header goes to the backend before the client's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text header (`PROXY TCP4 …\r\n`).
    V1,
    /// The binary header.
    V2,
}

/// What happens to a member's open connections when it goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDown {
    /// They run until they end (HAProxy's default).
    Keep,
    /// They are closed at once (HAProxy's `on-marked-down shutdown-sessions`).
    Close,
}

/// One validated `[[directors]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Director {
    /// Addresses it accepts connections on, as configured (port 0 included).
    pub listen: Vec<SocketAddr>,
    /// The service whose steering and health decide where connections go.
    pub service: ServiceId,
    /// Backend port for members without their own.
    pub port: Option<u16>,
    /// How a member is chosen in the steered pool.
    pub scheduler: Scheduler,
    /// Further members tried after a failed connect.
    pub retries: u32,
    /// Time a backend connect may take.
    pub connect_timeout: Duration,
    /// Longest time with no data either way before the connection is closed.
    pub idle_timeout: Duration,
    /// Most connections through this director at once.
    pub max_connections: u32,
    /// Most connections to one member through this director, if limited.
    pub max_connections_per_member: Option<u32>,
    /// How long a connection beyond a limit waits for a slot.
    pub queue_timeout: Duration,
    /// PROXY protocol header to send, if any.
    pub send_proxy: Option<ProxyVersion>,
    /// Allowed client networks; empty means everyone.
    pub allow: Vec<IpNet>,
    /// Refused client networks (beat `allow`).
    pub deny: Vec<IpNet>,
    /// Connections to a drained member are cut after this long, if set.
    pub drain_timeout: Option<Duration>,
    /// What happens to connections of a member that goes down.
    pub on_down: OnDown,
    /// The band of the `fastest` scheduler (`fastest_within`, default 20 %).
    pub fastest_within: super::Band,
}

impl Director {
    /// Whether `client` may connect: not in `deny`, and in `allow` when `allow` is set.
    pub fn admits(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        !self.deny.iter().any(|n| n.contains(&client))
            && (self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&client)))
    }

    /// Where `member` is reached: its address, on its own port or else the director's.
    pub fn backend(&self, member: &Member) -> SocketAddr {
        // Validation guarantees one of the two ports exists, and refuses directors over
        // hostname members; 0 and the unspecified address would only fail the connect.
        let ip = member
            .address
            .ip()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        SocketAddr::new(ip, member.port.or(self.port).unwrap_or(0))
    }
}

/// Validates every `[[directors]]` entry against the already validated services and pools.
pub fn validate(
    src: &Source,
    configs: &[Spanned<DirectorConfig>],
    services: &[Service],
    pools: &[Pool],
) -> Result<Vec<Director>, ConfigError> {
    let mut out: Vec<Director> = Vec::new();
    for (i, d) in configs.iter().enumerate() {
        let director = one(src, &format!("directors[{i}]"), d, services, pools)?;
        for addr in &director.listen {
            if out.iter().any(|o| o.listen.contains(addr)) {
                return Err(src.error_at(
                    d.get_ref().listen.span(),
                    format!("directors[{i}].listen: {addr} is used by another director"),
                ));
            }
        }
        out.push(director);
    }
    Ok(out)
}

fn one(
    src: &Source,
    key: &str,
    d: &Spanned<DirectorConfig>,
    services: &[Service],
    pools: &[Pool],
) -> Result<Director, ConfigError> {
    let cfg = d.get_ref();
    let err = |span: std::ops::Range<usize>, reason: String| Err(src.error_at(span, reason));

    let mut listen = Vec::new();
    for text in cfg.listen.get_ref().as_slice() {
        match text.parse::<SocketAddr>() {
            Ok(a) if listen.contains(&a) => {
                return err(
                    cfg.listen.span(),
                    format!("{key}.listen: {a} is listed twice"),
                );
            }
            Ok(a) => listen.push(a),
            Err(_) => {
                return err(
                    cfg.listen.span(),
                    format!(
                        "{key}.listen: {text:?} is not an address:port (\"127.0.0.1:8443\", \"[::1]:8443\")"
                    ),
                );
            }
        }
    }
    if listen.is_empty() {
        return err(cfg.listen.span(), format!("{key}.listen is empty"));
    }

    let wanted = cfg
        .service
        .get_ref()
        .trim_end_matches('.')
        .to_ascii_lowercase()
        + ".";
    let Some(service) = services
        .iter()
        .position(|s| s.name.to_ascii().eq_ignore_ascii_case(&wanted))
    else {
        return err(
            cfg.service.span(),
            format!(
                "{key}.service: no service named {:?}",
                cfg.service.get_ref()
            ),
        );
    };
    let port = cfg.port.as_ref().map(|p| *p.get_ref());
    if port == Some(0) {
        return err(
            cfg.port.as_ref().map_or(d.span(), Spanned::span),
            format!("{key}.port must be 1 to 65535"),
        );
    }
    // Every member the director could send a connection to needs a port.
    let s = &services[service];
    let fallback = match s.when_all_down {
        WhenAllDown::Fallback(p) => Some(p),
        _ => None,
    };
    if let Some(pool) = s
        .pools
        .iter()
        .chain(fallback.iter())
        .map(|p| &pools[p.0 as usize])
        .find(|p| p.hostnames)
    {
        return err(
            d.span(),
            format!(
                "{key}: pool {} of service {} has hostname (cname) members; a director connects to addresses only",
                pool.name, s.name
            ),
        );
    }
    if port.is_none() {
        for pool in s.pools.iter().chain(fallback.iter()) {
            let pool = &pools[pool.0 as usize];
            if let Some(m) = pool.members.iter().find(|m| m.port.is_none()) {
                return err(
                    d.span(),
                    format!(
                        "{key}: member {} of pool {} has no port; set port on the director or on the member",
                        m.address, pool.name
                    ),
                );
            }
        }
    }

    let scheduler = match &cfg.scheduler {
        None => Scheduler::LeastConn,
        Some(v) => match Scheduler::parse(v.get_ref()) {
            Some(s) => s,
            None => {
                let names: Vec<String> = Scheduler::ALL
                    .iter()
                    .map(|(n, _)| format!("{n:?}"))
                    .collect();
                return err(
                    v.span(),
                    format!(
                        "{key}.scheduler = {:?}: expected one of {}",
                        v.get_ref(),
                        names.join(", ")
                    ),
                );
            }
        },
    };
    let duration = |name: &str, v: &Option<Spanned<String>>, default: Option<Duration>| match v {
        None => Ok(default),
        Some(v) => match parse_duration(v.get_ref()) {
            Ok(d) if d.is_zero() => {
                Err(src.error_at(v.span(), format!("{key}.{name} must be more than 0")))
            }
            Ok(d) => Ok(Some(d)),
            Err(reason) => Err(src.error_at(v.span(), format!("{key}.{name}: {reason}"))),
        },
    };
    let secs = |s| Some(Duration::from_secs(s));
    let connect_timeout = duration("connect_timeout", &cfg.connect_timeout, secs(2))?;
    let idle_timeout = duration("idle_timeout", &cfg.idle_timeout, secs(300))?;
    let queue_timeout = duration("queue_timeout", &cfg.queue_timeout, secs(1))?;
    let drain_timeout = duration("drain_timeout", &cfg.drain_timeout, None)?;
    let at_least_one = |name: &str, v: &Option<Spanned<u32>>| match v {
        Some(v) if *v.get_ref() == 0 => {
            Err(src.error_at(v.span(), format!("{key}.{name} must be at least 1")))
        }
        Some(v) => Ok(Some(*v.get_ref())),
        None => Ok(None),
    };
    let max_connections = at_least_one("max_connections", &cfg.max_connections)?.unwrap_or(4096);
    let max_connections_per_member = at_least_one(
        "max_connections_per_member",
        &cfg.max_connections_per_member,
    )?;

    let send_proxy = match &cfg.send_proxy {
        None => None,
        Some(v) => match v.get_ref().as_str() {
            "v1" => Some(ProxyVersion::V1),
            "v2" => Some(ProxyVersion::V2),
            other => {
                return err(
                    v.span(),
                    format!("{key}.send_proxy = {other:?}: expected \"v1\" or \"v2\""),
                );
            }
        },
    };
    let allow = src.networks(&format!("{key}.allow"), &cfg.allow)?;
    let deny = src.networks(&format!("{key}.deny"), &cfg.deny)?;
    let on_down = match cfg.on_down.as_ref().map(|v| (v, v.get_ref().as_str())) {
        None | Some((_, "keep")) => OnDown::Keep,
        Some((_, "close")) => OnDown::Close,
        Some((v, other)) => {
            return err(
                v.span(),
                format!("{key}.on_down = {other:?}: expected \"keep\" or \"close\""),
            );
        }
    };
    let fastest_within = match &cfg.fastest_within {
        None => super::Band::DEFAULT,
        Some(v) if scheduler != Scheduler::Fastest => {
            return err(
                v.span(),
                format!("{key}.fastest_within is only used with scheduler = \"fastest\""),
            );
        }
        Some(v) => match super::service::parse_band(v.get_ref()) {
            Some(band) => band,
            None => {
                return err(
                    v.span(),
                    format!(
                        "{key}.fastest_within = {:?}: expected a percentage from 0% to 1000% (\"20%\") or a duration up to 10s (\"5ms\")",
                        v.get_ref()
                    ),
                );
            }
        },
    };
    let retries = cfg.retries.as_ref().map_or(2, |r| *r.get_ref());
    Ok(Director {
        listen,
        service: ServiceId(service as u32),
        port,
        scheduler,
        retries,
        connect_timeout: connect_timeout.unwrap_or_default(),
        idle_timeout: idle_timeout.unwrap_or_default(),
        max_connections,
        max_connections_per_member,
        queue_timeout: queue_timeout.unwrap_or_default(),
        send_proxy,
        allow,
        deny,
        drain_timeout,
        on_down,
        fastest_within,
    })
}
