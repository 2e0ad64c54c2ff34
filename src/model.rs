//! The validated runtime model: zones, monitors, pools, members and services, with every name
//! resolved to an index and every address parsed. Building a [`Model`] is the only way config
//! reaches runtime, so nothing on the query path re-checks what validation already proved.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, ConfigError, Source};
use crate::geo::GeoDb;

mod check;
mod cookies;
mod director;
mod dnssec;
mod dnstap;
mod fleet;
mod monitor;
mod netmap;
mod pool;
mod service;
mod settings;
mod tls;
mod zones;

pub use check::{
    DEFAULT_MAX_CONCURRENT, DnsCheck, ExecCheck, Expect, Step, TcpScript, exit_share, unescape,
};
pub use cookies::{CookieSecret, CookieSettings, DEFAULT_SECRET_FILE, SECRET_LEN};
pub use director::{Director, OnDown, ProxyVersion, Scheduler};
pub use dnssec::DEFAULT_SIGNATURE_LIFETIME;
pub use dnstap::{DnstapSettings, default_version};
pub use fleet::FleetSettings;
pub use monitor::{
    Consensus, DEFAULT_BODY_LIMIT, HttpCheck, HttpMethod, Monitor, ProbeKind, ProbeSpec,
    StatusMatch, Thresholds, WeightFrom,
};
pub use netmap::{Hit, Matched, NetTable, Outcome, TableStats, by_distance};
pub use pool::{BackendAddr, Member, Pool, Weight};
pub use service::{Band, GeoMap, MinHealthy, Selection, Service, Steering, WhenAllDown};
pub use settings::{
    DnsSettings, HealthSettings, HttpSettings, MAX_WORKERS, RrlSettings, Secret, default_workers,
};
pub use tls::{TlsError, TlsIdentity};
pub use zones::Zones;

/// Index of a pool in [`Model::pools`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(pub u32);

/// Index of a monitor in [`Model::monitors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MonitorId(pub u32);

/// Index of a service in [`Model::services`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceId(pub u32);

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
    /// Fleet mode, if configured.
    pub fleet: Option<FleetSettings>,
    /// dnstap logging, if configured.
    pub dnstap: Option<DnstapSettings>,
    /// Digest of what every instance of a fleet must have the same (see [`fleet`]).
    pub config_digest: String,
    /// What building the per-network steering tables took, when any were built.
    pub tables: Option<TableStats>,
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

    /// The pool of member `index`.
    pub fn pool_of(&self, index: usize) -> PoolId {
        self.member_slots[index].0
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
        let records: usize = self.zones.iter().map(crate::zone::Zone::len).sum();
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
        if let Some(t) = &self.tables {
            line.push_str(&format!(
                ", {} per-network steering tables ({} ranges from {} networks, {:.1} MB, built in {} ms)",
                t.tables,
                t.ranges,
                t.networks,
                t.bytes as f64 / 1e6,
                t.millis
            ));
        }
        if !self.directors.is_empty() {
            line.push_str(&format!(", {} directors", self.directors.len()));
        }
        if let Some(s) = &self.dns.rrl {
            line.push_str(&format!(
                ", RRL {}/s per /{} and /{} (burst {}, slip {})",
                s.responses_per_second, s.ipv4_prefix, s.ipv6_prefix, s.burst, s.slip
            ));
        }
        if let Some(c) = &self.dns.cookies {
            line.push_str(&format!(
                ", DNS cookies ({}{}, secret {})",
                if c.require {
                    "required over UDP"
                } else {
                    "optional"
                },
                if c.previous.is_some() {
                    ", previous secret accepted"
                } else {
                    ""
                },
                c.secret_file.display()
            ));
        }
        if let Some(t) = &self.dnstap {
            let what = match (t.log_queries, t.log_responses) {
                (true, true) => "queries and responses",
                (true, false) => "queries",
                _ => "responses",
            };
            line.push_str(&format!(", dnstap {what} to {}", t.socket.display()));
        }
        for signer in self.zones.signers() {
            line.push_str(&format!(
                ", DNSSEC {} (key {}, {:?})",
                signer.origin(),
                signer.key_tag(),
                signer.algorithm()
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

    /// `name` as a fully-qualified, lower-cased DNS name, or the error for `key` at `span`.
    fn fqdn(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        name: &str,
    ) -> Result<hickory_proto::rr::Name, ConfigError> {
        match hickory_proto::rr::Name::from_ascii(name) {
            Ok(n) if n.is_fqdn() => Ok(n.to_lowercase()),
            Ok(_) => self.err(
                span,
                format!("{key}: the name must be fully qualified (end with a dot)"),
            ),
            Err(e) => self.err(span, format!("{key}: not a DNS name: {e}")),
        }
    }

    fn build(&self, config: Config) -> Result<Model, ConfigError> {
        let mut dns = self.dns(&config)?;
        let mut zones = self.zones(&config)?;
        let fleet = self.fleet(&config)?;
        let dnstap = self.dnstap(&config)?;
        self.dnssec(&config, &mut zones)?;
        if dns.nsid.is_none() {
            dns.nsid = fleet.as_ref().map(|f| f.name.clone());
        }

        let mut monitors = Vec::new();
        let mut monitor_ids = HashMap::new();
        for (name, m) in &config.monitors {
            monitor_ids.insert(name.clone(), MonitorId(monitors.len() as u32));
            monitors.push(self.monitor(name, m, fleet.is_some())?);
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
            let mut service = service;
            service.follows_cname = service
                .pools
                .iter()
                .chain(match &service.when_all_down {
                    WhenAllDown::Fallback(p) => Some(p),
                    _ => None,
                })
                .flat_map(|p| &pools[p.0 as usize].members)
                .filter_map(|m| m.address.name())
                .any(|target| zone.origin.zone_of(target));
            // RFC 1034 §3.6.2: a name with a CNAME has no other data.
            if let Some(rtype) = zone
                .node(&service.name)
                .filter(|_| service.hostnames)
                .and_then(|node| node.rrsets.first())
                .map(|set| set.rtype)
            {
                return self.err(
                    s.span(),
                    format!(
                        "service {name} has hostname (cname) members, so it answers a CNAME and can have no other records; it has {rtype} records in {}",
                        zone.file.display()
                    ),
                );
            }
            services.push(service);
        }

        let directors = director::validate(self.src, &config.directors, &services, &pools)?;
        let precompute = config.geo.as_ref().and_then(|g| g.precompute) != Some(false);
        let tables = if precompute {
            netmap::attach(geo.as_deref(), &mut services, &pools)
        } else {
            None
        };

        let member_slots = pools
            .iter()
            .enumerate()
            .flat_map(|(p, pool)| (0..pool.members.len()).map(move |i| (PoolId(p as u32), i)))
            .collect();
        let config_digest = fleet::config_digest(self.src, &zones);
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
            config_digest,
            tables,
            fleet,
            dnstap,
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
}
