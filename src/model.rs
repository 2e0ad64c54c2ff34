//! The validated runtime model: zones, monitors, pools, members and services, with every name
//! resolved to an index and every address parsed. Building a [`Model`] is the only way config
//! reaches runtime, so nothing on the query path re-checks what validation already proved.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record};
use toml::Spanned;

use crate::config::{Config, ConfigError, PoolConfig, RrlConfig, Source, parse_duration};
use crate::dns::rrl::{Limiter, RrlSettings};
use crate::geo::{Continent, Coords, Country, GeoDb};
use crate::hash::stable_hash;
// Until the zone module takes it from `hash` itself.
pub(crate) use crate::hash::mix;
use crate::zone::{NameMap, WireName, Zone, origin_from_file_name};

mod director;
mod monitor;
mod service;

pub use director::{Director, OnDown, ProxyVersion, Scheduler};
pub use monitor::{
    DEFAULT_BODY_LIMIT, HttpCheck, HttpMethod, Monitor, ProbeKind, ProbeSpec, StatusMatch,
    Thresholds,
};
pub use service::{GeoMap, MinHealthy, Selection, Service, Steering, WhenAllDown};

/// Index of a pool in [`Model::pools`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(pub u32);

/// Index of a monitor in [`Model::monitors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MonitorId(pub u32);

/// Index of a service in [`Model::services`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceId(pub u32);

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

/// `[dns]` after validation.
#[derive(Debug, Clone)]
pub struct DnsSettings {
    /// Addresses to serve UDP and TCP on.
    pub listen: Vec<SocketAddr>,
    /// Largest UDP response to EDNS clients, and the size we advertise.
    pub max_udp_payload: u16,
    /// Idle timeout of DNS-over-TCP connections.
    pub tcp_idle_timeout: Duration,
    /// Most concurrent DNS-over-TCP connections.
    pub tcp_max_connections: u32,
    /// DNS worker threads (and UDP sockets per listen address); also the number of runtime
    /// threads serving DNS over TCP, the directors and the API.
    pub workers: usize,
    /// Response rate limiting over UDP, when on: its settings and its table, which a reload
    /// replaces with an empty one.
    pub rrl: Option<Arc<Limiter>>,
}

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `[http]` after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSettings {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// Bearer token for admin calls; `None` disables them.
    pub admin_token: Option<Secret>,
    /// Most HTTP connections open at once.
    pub max_connections: usize,
}

/// `[health]` after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// Where operator overrides are persisted.
    pub state_file: PathBuf,
    /// May members without a probe result be handed out?
    pub unknown_is_up: bool,
    /// Most probes in flight at once.
    pub max_concurrent_probes: usize,
}

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

/// One site.
#[derive(Debug, Clone)]
pub struct Pool {
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

/// The served zones, found by longest-suffix match.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    list: Vec<Zone>,
    /// Zone index by lower-cased wire-format origin.
    by_origin: NameMap<usize>,
}

impl Zones {
    /// The zone `qname` belongs to (the one with the longest matching origin), if any.
    pub fn find(&self, qname: &Name) -> Option<&Zone> {
        self.position(qname).map(|i| &self.list[i])
    }

    /// [`Zones::find`] for a name already in wire form.
    pub fn find_wire(&self, qname: &WireName) -> Option<&Zone> {
        self.position_wire(qname).map(|i| &self.list[i])
    }

    /// Index of the zone with the longest origin that `qname` is at or below.
    fn position(&self, qname: &Name) -> Option<usize> {
        self.position_wire(&WireName::from_name(qname)?)
    }

    fn position_wire(&self, qname: &WireName) -> Option<usize> {
        (0..=qname.label_count())
            .rev()
            .find_map(|labels| self.by_origin.get(qname.suffix(labels)).copied())
    }

    /// Every zone.
    pub fn iter(&self) -> impl Iterator<Item = &Zone> {
        self.list.iter()
    }

    /// Number of zones.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// True when no zone is served.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn find_mut(&mut self, qname: &Name) -> Option<&mut Zone> {
        self.position(qname).map(|i| &mut self.list[i])
    }
}

/// The validated configuration Meridian runs on.
#[derive(Debug, Clone)]
pub struct Model {
    /// The config file it came from.
    pub config_path: PathBuf,
    /// DNS listeners and limits.
    pub dns: DnsSettings,
    /// Health checking settings.
    pub health: HealthSettings,
    /// The HTTP API, if configured.
    pub http: Option<HttpSettings>,
    /// Served zones.
    pub zones: Zones,
    /// Monitors.
    pub monitors: Vec<Monitor>,
    /// Pools.
    pub pools: Vec<Pool>,
    /// Services.
    pub services: Vec<Service>,
    /// The GeoIP database, if configured.
    pub geo: Option<Arc<GeoDb>>,
    /// TCP directors, in config order.
    pub directors: Vec<Director>,
    /// For each member index, its pool and position in the pool.
    member_slots: Vec<(PoolId, usize)>,
}

impl Model {
    /// Reads, parses and validates a config file and every zone file it names.
    pub fn load(path: &Path) -> Result<Model, ConfigError> {
        let source = Source::read(path)?;
        let config = source.parse()?;
        Builder { src: &source }.build(config)
    }

    /// Parses and validates config text as if it were read from `path` (zones are read from
    /// disk relative to `path`).
    pub fn from_text(path: &Path, text: &str) -> Result<Model, ConfigError> {
        let source = Source {
            path: path.to_path_buf(),
            text: text.to_string(),
        };
        let config = source.parse()?;
        Builder { src: &source }.build(config)
    }

    /// Total number of members over all pools.
    pub fn member_count(&self) -> usize {
        self.pools.iter().map(|p| p.members.len()).sum()
    }

    /// Member `index` with its pool.
    pub fn member(&self, index: usize) -> (&Pool, &Member) {
        let (pool, pos) = self.member_slots[index];
        let pool = &self.pools[pool.0 as usize];
        (pool, &pool.members[pos])
    }

    /// Every member with its pool, in index order.
    pub fn members(&self) -> impl Iterator<Item = (&Pool, &Member)> {
        self.pools
            .iter()
            .flat_map(|p| p.members.iter().map(move |m| (p, m)))
    }

    /// The monitor of a pool, if any.
    pub fn monitor_of(&self, pool: &Pool) -> Option<&Monitor> {
        pool.monitor.map(|id| &self.monitors[id.0 as usize])
    }

    /// One line describing what is served, for `check` and the startup log.
    pub fn summary(&self) -> String {
        let records: usize = self.zones.iter().map(Zone::len).sum();
        let mut line = format!(
            "{} zones ({} names), {} services, {} pools, {} members, {} monitors",
            self.zones.len(),
            records,
            self.services.len(),
            self.pools.len(),
            self.member_count(),
            self.monitors.len()
        );
        if let Some(db) = &self.geo {
            line.push_str(&format!(", GeoIP {}", db.describe()));
        }
        if !self.directors.is_empty() {
            line.push_str(&format!(", {} directors", self.directors.len()));
        }
        if let Some(rrl) = &self.dns.rrl {
            let s = rrl.settings();
            line.push_str(&format!(
                ", RRL {}/s per /{} and /{} (burst {}, slip {})",
                s.responses_per_second, s.ipv4_prefix, s.ipv6_prefix, s.burst, s.slip
            ));
        }
        line
    }

    /// Every director listen address, as configured, in config order.
    pub fn director_listen(&self) -> Vec<SocketAddr> {
        self.directors
            .iter()
            .flat_map(|d| d.listen.iter().copied())
            .collect()
    }
}

/// Most DNS worker threads `[dns] workers` accepts.
pub const MAX_WORKERS: u32 = 1024;

/// The default number of DNS workers: one per core this process may run on (its CPU affinity
/// mask, so `taskset -c 1` gives one), capped at [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS as usize)
}

struct Builder<'s> {
    src: &'s Source,
}

impl Builder<'_> {
    fn err<T>(
        &self,
        span: std::ops::Range<usize>,
        reason: impl fmt::Display,
    ) -> Result<T, ConfigError> {
        Err(self.src.error_at(span, reason))
    }

    fn build(&self, config: Config) -> Result<Model, ConfigError> {
        let dns = self.dns(&config)?;
        let mut zones = self.zones(&config)?;

        let mut monitors = Vec::new();
        let mut monitor_ids = HashMap::new();
        for (name, m) in &config.monitors {
            monitor_ids.insert(name.clone(), MonitorId(monitors.len() as u32));
            monitors.push(self.monitor(name, m)?);
        }

        let mut pools = Vec::new();
        let mut pool_ids = HashMap::new();
        let mut next_member = 0;
        for (name, p) in &config.pools {
            pool_ids.insert(name.clone(), PoolId(pools.len() as u32));
            let pool = self.pool(name, p, &monitor_ids, &monitors, next_member)?;
            next_member += pool.members.len();
            pools.push(pool);
        }
        let health = self.health(&config)?;
        let http = self.http(&config)?;
        let geo = self.geo(&config)?;

        let mut services = Vec::new();
        for (name, s) in &config.services {
            let id = services.len();
            let service = self.service(name, s, &pool_ids, &pools, geo.is_some())?;
            let Some(zone) = zones.find_mut(&service.name) else {
                return self.err(
                    s.span(),
                    format!("service {name} is not inside any served zone"),
                );
            };
            if let Err(reason) = zone.add_service(&service.name, id) {
                return self.err(s.span(), reason);
            }
            services.push(service);
        }

        let directors = director::validate(self.src, &config.directors, &services, &pools)?;

        let member_slots = pools
            .iter()
            .enumerate()
            .flat_map(|(p, pool)| (0..pool.members.len()).map(move |i| (PoolId(p as u32), i)))
            .collect();
        Ok(Model {
            member_slots,
            config_path: self.src.path.clone(),
            dns,
            health,
            http,
            zones,
            monitors,
            pools,
            services,
            geo,
            directors,
        })
    }

    fn geo(&self, config: &Config) -> Result<Option<Arc<GeoDb>>, ConfigError> {
        let Some(g) = &config.geo else {
            return Ok(None);
        };
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        match GeoDb::open(&base.join(g.database.get_ref())) {
            Ok(db) => Ok(Some(Arc::new(db))),
            Err(e) => self.err(g.database.span(), format!("geo.database: {e}")),
        }
    }

    fn dns(&self, config: &Config) -> Result<DnsSettings, ConfigError> {
        let d = &config.dns;
        let mut listen = Vec::new();
        for addr in &d.listen {
            match addr.get_ref().parse::<SocketAddr>() {
                Ok(a) if listen.contains(&a) => {
                    return self.err(addr.span(), format!("dns.listen: {a} is listed twice"));
                }
                Ok(a) => listen.push(a),
                Err(_) => {
                    return self.err(
                        addr.span(),
                        format!(
                            "dns.listen: {:?} is not an address:port (\"127.0.0.1:53\", \"[::1]:53\")",
                            addr.get_ref()
                        ),
                    );
                }
            }
        }
        if listen.is_empty() {
            return self.err(
                d.listen.first().map_or(0..0, |s| s.span()),
                "dns.listen is empty",
            );
        }
        let payload = *d.max_udp_payload.get_ref();
        if !(512..=4096).contains(&payload) {
            return self.err(
                d.max_udp_payload.span(),
                format!("dns.max_udp_payload = {payload}: must be between 512 and 4096"),
            );
        }
        let tcp_idle_timeout = self.duration("dns.tcp_idle_timeout", &d.tcp_idle_timeout)?;
        let tcp_max = *d.tcp_max_connections.get_ref();
        if tcp_max == 0 {
            return self.err(
                d.tcp_max_connections.span(),
                "dns.tcp_max_connections must be at least 1",
            );
        }
        let workers = match &d.workers {
            Some(w) if !(1..=MAX_WORKERS).contains(w.get_ref()) => {
                return self.err(
                    w.span(),
                    format!(
                        "dns.workers = {}: must be between 1 and {MAX_WORKERS}",
                        w.get_ref()
                    ),
                );
            }
            Some(w) => *w.get_ref() as usize,
            None => default_workers(),
        };
        Ok(DnsSettings {
            listen,
            max_udp_payload: payload,
            tcp_idle_timeout,
            tcp_max_connections: tcp_max,
            workers,
            rrl: self.rrl(d.rrl.as_ref())?,
        })
    }

    /// `[dns.rrl]`: every key is checked even when `enabled = false`, except that a rate of 0
    /// is only refused while enabled.
    fn rrl(&self, config: Option<&RrlConfig>) -> Result<Option<Arc<Limiter>>, ConfigError> {
        let Some(r) = config else {
            return Ok(None);
        };
        let enabled = r.enabled.as_ref().is_none_or(|v| *v.get_ref());
        let number =
            |key: &str, value: &Option<Spanned<u32>>, default: u32, range: RangeInclusive<u32>| {
                let Some(v) = value else {
                    return Ok(default);
                };
                let n = *v.get_ref();
                if range.contains(&n) {
                    return Ok(n);
                }
                let hint = if key == "responses_per_second" && n == 0 {
                    " (to turn limiting off, set enabled = false)"
                } else {
                    ""
                };
                self.err(
                    v.span(),
                    format!(
                        "dns.rrl.{key} = {n}: must be between {} and {}{hint}",
                        range.start(),
                        range.end()
                    ),
                )
            };
        let least_rate = u32::from(enabled);
        let rate = number(
            "responses_per_second",
            &r.responses_per_second,
            20,
            least_rate..=1_000_000,
        )?;
        let settings = RrlSettings {
            responses_per_second: rate,
            burst: number("burst", &r.burst, rate.max(1), 1..=1_000_000)?,
            slip: number("slip", &r.slip, 2, 0..=100)?,
            ipv4_prefix: number("ipv4_prefix", &r.ipv4_prefix, 24, 1..=32)? as u8,
            ipv6_prefix: number("ipv6_prefix", &r.ipv6_prefix, 56, 1..=128)? as u8,
            exempt: self.src.networks("dns.rrl.exempt", &r.exempt)?,
            table_size: number("table_size", &r.table_size, 1 << 16, 1..=1 << 22)?
                .next_power_of_two() as usize,
        };
        Ok(enabled.then(|| Arc::new(Limiter::new(settings, tokio::time::Instant::now()))))
    }

    fn duration(&self, key: &str, value: &Spanned<String>) -> Result<Duration, ConfigError> {
        match parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() => self.err(value.span(), format!("{key} must be more than 0")),
            Ok(d) => Ok(d),
            Err(reason) => self.err(value.span(), format!("{key}: {reason}")),
        }
    }

    fn zones(&self, config: &Config) -> Result<Zones, ConfigError> {
        let dir_value = &config.dns.zones;
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        let dir = base.join(dir_value.get_ref());
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                return self.err(
                    dir_value.span(),
                    format!("dns.zones: cannot read directory {}: {e}", dir.display()),
                );
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !name.starts_with('.') && !name.ends_with('~')
            })
            .collect();
        files.sort();
        let mut zones = Zones::default();
        let mut seen: BTreeMap<Name, PathBuf> = BTreeMap::new();
        for file in files {
            let Some(origin) = origin_from_file_name(&file) else {
                return self.err(
                    dir_value.span(),
                    format!(
                        "{}: file name is not a zone name (expected e.g. example.test.zone)",
                        file.display()
                    ),
                );
            };
            if let Some(other) = seen.get(&origin) {
                return self.err(
                    dir_value.span(),
                    format!(
                        "zone {origin} is defined twice: {} and {}",
                        other.display(),
                        file.display()
                    ),
                );
            }
            let zone = Zone::load(&file, &origin)?;
            let key = WireName::from_name(&origin)
                .map(|w| Box::<[u8]>::from(w.as_bytes()))
                .unwrap_or_default();
            seen.insert(origin, file);
            zones.by_origin.insert(key, zones.list.len());
            zones.list.push(zone);
        }
        if zones.list.is_empty() {
            return self.err(
                dir_value.span(),
                format!("dns.zones: no zone files in {}", dir.display()),
            );
        }
        Ok(zones)
    }

    fn http(&self, config: &Config) -> Result<Option<HttpSettings>, ConfigError> {
        let Some(h) = &config.http else {
            return Ok(None);
        };
        let listen = match h.listen.get_ref().parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                return self.err(
                    h.listen.span(),
                    format!(
                        "http.listen: {:?} is not an address:port (\"127.0.0.1:8053\")",
                        h.listen.get_ref()
                    ),
                );
            }
        };
        let admin_token = match &h.admin_token_file {
            None => None,
            Some(file) => {
                let base = self.src.path.parent().unwrap_or(Path::new("."));
                match read_token(&base.join(file.get_ref())) {
                    Ok(token) => Some(Secret(token)),
                    Err(reason) => {
                        return self.err(file.span(), format!("http.admin_token_file: {reason}"));
                    }
                }
            }
        };
        let max_connections = match &h.max_connections {
            Some(v) if *v.get_ref() == 0 => {
                return self.err(v.span(), "http.max_connections must be at least 1");
            }
            Some(v) => *v.get_ref() as usize,
            None => 128,
        };
        Ok(Some(HttpSettings {
            listen,
            admin_token,
            max_connections,
        }))
    }

    fn health(&self, config: &Config) -> Result<HealthSettings, ConfigError> {
        let h = &config.health;
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        let max = match &h.max_concurrent_probes {
            Some(v) if *v.get_ref() == 0 => {
                return self.err(v.span(), "health.max_concurrent_probes must be at least 1");
            }
            Some(v) => *v.get_ref() as usize,
            None => 512,
        };
        Ok(HealthSettings {
            state_file: base.join(h.state_file.as_deref().unwrap_or("meridian.state")),
            unknown_is_up: h.unknown_is_up,
            max_concurrent_probes: max,
        })
    }

    fn pool(
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
                        "pools.{name}: member {address} needs a port for tcp monitor {:?} (set port on the member or the monitor)",
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
        Ok(Pool {
            name: name.to_string(),
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

/// Largest admin token file read: a token is one line, and a wrong path such as `/dev/zero`
/// must not make a reload read forever.
const TOKEN_FILE_MAX: usize = 4096;

/// The token in an admin token file: a regular file (a FIFO or terminal would block a reload),
/// at most `TOKEN_FILE_MAX` bytes, holding one token of visible ASCII (what an HTTP
/// `Authorization` header can carry) with surrounding whitespace ignored.
fn read_token(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let shown = path.display();
    let cannot = |e: std::io::Error| format!("cannot read {shown}: {e}");
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(TOKEN_FILE_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > TOKEN_FILE_MAX {
        return Err(format!(
            "{shown} is larger than {TOKEN_FILE_MAX} bytes (it holds one token)"
        ));
    }
    let token = bytes.trim_ascii();
    if token.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    if !token.iter().all(u8::is_ascii_graphic) {
        return Err(format!(
            "{shown}: the token must be visible ASCII without spaces (as an HTTP header carries it)"
        ));
    }
    Ok(String::from_utf8_lossy(token).into_owned())
}
