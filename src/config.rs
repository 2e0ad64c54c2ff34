//! The TOML schema of `meridian.toml`, mirrored 1:1 in serde structs, and the errors that point
//! an operator at the file, line and key that is wrong.
//!
//! Nothing here is used at runtime: `Model::load` (in the model stage) validates a [`Config`] into the
//! runtime model, so an invalid config never reaches the query path.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

/// Everything that can be wrong with a config file or the zone files it names.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: {source}", file.display())]
    Read {
        /// The file that could not be read.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{}:{line}: {reason}", file.display())]
    Invalid {
        /// The config file.
        file: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A zone file in the zones directory is wrong.
    #[error("{}:{line}: {reason}", file.display())]
    Zone {
        /// The zone file.
        file: PathBuf,
        /// 1-based line of the offending record (1 when the file as a whole is wrong).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// The whole config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DNS listeners and zones.
    pub dns: DnsConfig,
    /// Named probe definitions that pools refer to.
    #[serde(default)]
    pub monitors: BTreeMap<String, Spanned<MonitorConfig>>,
    /// Named pools (sites) of members.
    #[serde(default)]
    pub pools: BTreeMap<String, Spanned<PoolConfig>>,
    /// Names whose A/AAAA answers are computed per query, keyed by their fully-qualified name.
    #[serde(default)]
    pub services: BTreeMap<String, Spanned<ServiceConfig>>,
    /// Health checking as a whole.
    #[serde(default)]
    pub health: HealthConfig,
    /// The HTTP side: admin API (and, later, status page and metrics).
    pub http: Option<HttpConfig>,
    /// TCP directors: listeners that forward each connection to a member of a service.
    #[serde(default)]
    pub directors: Vec<Spanned<DirectorConfig>>,
    /// Where client locations come from, for `geo` and `proximity` steering.
    pub geo: Option<GeoConfig>,
    /// Fleet mode: health observations and overrides shared with other instances via etcd.
    pub fleet: Option<Spanned<FleetConfig>>,
    /// Zones signed online with DNSSEC, keyed by the zone's fully-qualified name.
    #[serde(default)]
    pub dnssec: BTreeMap<String, Spanned<DnssecConfig>>,
    /// dnstap query and response logging to a Frame Streams reader.
    pub dnstap: Option<Spanned<DnstapConfig>>,
}

/// `[dnstap]`: every query and response as a dnstap message (`AUTH_QUERY`, `AUTH_RESPONSE`)
/// to a Frame Streams reader on a Unix socket (`fstrm_capture`, `dnstap` and the like).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnstapConfig {
    /// The reader's Unix socket, relative to the config file.
    pub socket: Spanned<String>,
    /// Log each query as received. Default: true.
    pub log_queries: Option<Spanned<bool>>,
    /// Log each response as sent. Default: true.
    pub log_responses: Option<Spanned<bool>>,
    /// The `identity` field of every message. Default: the host name.
    pub identity: Option<Spanned<String>>,
    /// The `version` field of every message. Default: `"meridian VERSION"`.
    pub version: Option<Spanned<String>>,
}

/// `[dnssec."zone."]`: one signed zone.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnssecConfig {
    /// The zone's signing key (PKCS#8, PEM or DER, ECDSA P-256 or Ed25519, as written by
    /// `meridian dnssec keygen`), relative to the config file. Re-read on every reload.
    pub key: Spanned<String>,
    /// How long an RRSIG is valid (inception is backdated 1 h more). Default `"2d"`; at least
    /// `"1h"`.
    pub signature_lifetime: Option<Spanned<String>>,
}

/// `[fleet]`: this instance as one of several sharing health and overrides through etcd.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// etcd client URLs (`http://host:port`).
    #[serde(default)]
    pub etcd: Vec<Spanned<String>>,
    /// This instance's name, unique in the fleet.
    pub name: Spanned<String>,
    /// The etcd key prefix everything the fleet writes lives under. Default `/meridian`.
    pub prefix: Option<Spanned<String>>,
    /// TTL of this instance's lease (its observations outlive it by about this). Default 5s.
    pub lease_ttl: Option<Spanned<String>>,
    /// How long peers' observations count after etcd is lost. Default 30s.
    pub stale_peers: Option<Spanned<String>>,
    /// Timeout of each etcd request and of the connect. Default 1s.
    pub timeout: Option<Spanned<String>>,
}

/// A monitor's `consensus`: a policy name or a count of instances.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ConsensusConfig {
    /// `"local"`, `"any"`, `"all"` or `"majority"`.
    Name(String),
    /// At least this many instances.
    Count(i64),
}

/// `[geo]`: the GeoIP database.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoConfig {
    /// A MaxMind-format database (GeoIP2/GeoLite2 Country or City, DB-IP Lite, ip-location-db),
    /// relative to the config file. Re-read on every reload.
    pub database: Spanned<String>,
    /// Decide `geo` and `proximity` steering per database network when the config is loaded
    /// (a table per service, merged where neighbouring networks get the same order), instead
    /// of looking each query's client up in the database. Default true; false saves the
    /// tables' memory and load time.
    pub precompute: Option<bool>,
}

/// `[http]`: where the HTTP API listens and who may change things through it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on (`"127.0.0.1:8053"`). Keep it on loopback or a management network.
    pub listen: Spanned<String>,
    /// File holding the bearer token that admin calls must present, relative to the config
    /// file. Without it the admin endpoints answer 403.
    pub admin_token_file: Option<Spanned<String>>,
    /// Most HTTP connections open at once (status page, API, `/metrics`, event streams);
    /// further ones are closed at once. Default: 128.
    pub max_connections: Option<Spanned<u32>>,
    /// PEM certificate chain (leaf first), relative to the config file: with `tls_key`, the
    /// listener serves HTTPS only. A reload re-reads both files.
    pub tls_cert: Option<Spanned<String>>,
    /// PEM private key of `tls_cert`'s first certificate.
    pub tls_key: Option<Spanned<String>>,
}

/// `[health]`: settings shared by all monitors.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// File where operator overrides (drain, force-down, force-up) are kept across restarts,
    /// relative to the config file. Default: `meridian.state`.
    pub state_file: Option<String>,
    /// Whether a member with no probe result yet may be handed out. Default: false (Meridian
    /// waits for the first probe round before serving, so this only matters for members added
    /// by a reload).
    #[serde(default)]
    pub unknown_is_up: bool,
    /// Most probes in flight at once. Default: 512.
    pub max_concurrent_probes: Option<Spanned<u32>>,
    /// The resolver hostname (`cname`) members are resolved with, `"IP"` or `"IP:PORT"`.
    /// Default: the system's (`/etc/resolv.conf`).
    pub resolver: Option<Spanned<String>>,
    /// Shortest time a resolution of a hostname member is kept, whatever its TTL. Default: 5s.
    pub resolve_min_ttl: Option<Spanned<String>>,
    /// Longest time a resolution of a hostname member is kept, whatever its TTL. Default: 5m.
    pub resolve_max_ttl: Option<Spanned<String>>,
}

/// `[dns]`: where Meridian answers and what it is authoritative for.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Addresses to answer on, each over UDP and TCP (`"127.0.0.1:5353"`, `"[::1]:53"`).
    pub listen: Vec<Spanned<String>>,
    /// Directory of RFC 1035 master files, relative to the config file. Each file is named after
    /// its zone (`example.test.zone` or `example.test`). Default: `zones`.
    #[serde(default = "default_zones_dir")]
    pub zones: Spanned<String>,
    /// Largest UDP response we send to EDNS clients, in bytes (RFC 6891 §6.2.5; 1232 avoids IP
    /// fragmentation). Default: 1232. Range 512–4096.
    #[serde(default = "default_udp_payload")]
    pub max_udp_payload: Spanned<u16>,
    /// How long an idle DNS-over-TCP connection is kept open (RFC 7766 §6.2.3). Default: `"10s"`.
    #[serde(default = "default_tcp_idle")]
    pub tcp_idle_timeout: Spanned<String>,
    /// Most DNS-over-TCP connections served at once, over all listeners; further connections are
    /// closed at once (RFC 7766 §6.2.2). Default: 1024.
    #[serde(default = "default_tcp_max")]
    pub tcp_max_connections: Spanned<u32>,
    /// DNS worker threads: each has its own UDP socket on every listen address (the kernel
    /// spreads queries over them with `SO_REUSEPORT`), and DNS over TCP, the directors and the
    /// HTTP API share as many runtime threads. Default: one per core this process may run on.
    /// Range 1–1024.
    pub workers: Option<Spanned<u32>>,
    /// Receive coalescing, in microseconds: after a batch of fewer than 16 queries that came
    /// within this long of its asking, a UDP worker waits this long before its next receive, so
    /// queries queue and the next system call takes many (fewer system calls and wakeups, less
    /// kernel time under steady load; after a quiet spell the first query is not delayed).
    /// Default: 0 (off). Range 0–1000.
    #[serde(default)]
    pub udp_coalesce_us: Option<Spanned<u32>>,
    /// Response rate limiting over UDP. Default: off (no table); a `[dns.rrl]` table turns it
    /// on.
    pub rrl: Option<RrlConfig>,
    /// This instance's name server identifier, sent to queries that ask for it with the NSID
    /// option (RFC 5001; `dig +nsid`): tells which server of an anycast or fleet set answered.
    /// Printable ASCII, 1–128 bytes. Default: none (NSID requests are ignored).
    pub nsid: Option<Spanned<String>>,
    /// DNS Cookies (RFC 7873, server cookies as RFC 9018 makes them). Default: off; a
    /// `[dns.cookies]` table turns them on.
    pub cookies: Option<CookiesConfig>,
}

/// `[dns.cookies]`: DNS Cookies (RFC 7873, RFC 9018).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookiesConfig {
    /// `false` keeps the settings but turns cookies off. Default: true.
    pub enabled: Option<Spanned<bool>>,
    /// The server secret: one or two lines of 32 hex digits (16 bytes), relative to the config
    /// file; the first makes new cookies, both verify (rollover). Created with a random secret
    /// (mode 0600) when absent. Default: `meridian.cookie-secret`. Re-read on every reload.
    pub secret_file: Option<Spanned<String>>,
    /// UDP queries with a client cookie but no valid server cookie get BADCOOKIE and a fresh
    /// cookie instead of an answer. Default: false.
    pub require: Option<Spanned<bool>>,
}

/// `[dns.rrl]`: response rate limiting (RRL) per client network, over UDP only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RrlConfig {
    /// `false` keeps the settings but turns limiting off. Default: true (the table being there
    /// turns it on).
    pub enabled: Option<Spanned<bool>>,
    /// Responses per second each client network gets in the long run. Default: 20.
    /// Range 1-1000000.
    pub responses_per_second: Option<Spanned<u32>>,
    /// Responses a network may get at once after a quiet spell (the bucket's size).
    /// Default: `responses_per_second`. Range 1-1000000.
    pub burst: Option<Spanned<u32>>,
    /// Every `slip`-th limited response goes out truncated (TC set) instead of being dropped;
    /// 0: all dropped, 1: all truncated. Default: 2. Range 0-100.
    pub slip: Option<Spanned<u32>>,
    /// Leading bits of an IPv4 client address that make its network. Default: 24.
    pub ipv4_prefix: Option<Spanned<u32>>,
    /// Leading bits of an IPv6 client address that make its network. Default: 56.
    pub ipv6_prefix: Option<Spanned<u32>>,
    /// Client networks (CIDR, or single addresses) never limited. Default: none.
    #[serde(default)]
    pub exempt: Vec<Spanned<String>>,
    /// Buckets in the table, rounded up to a power of two; 24 bytes each. Default: 65536.
    /// Range 1-4194304.
    pub table_size: Option<Spanned<u32>>,
}

fn default_zones_dir() -> Spanned<String> {
    Spanned::new(0..0, "zones".to_string())
}
fn default_udp_payload() -> Spanned<u16> {
    Spanned::new(0..0, 1232)
}
fn default_tcp_idle() -> Spanned<String> {
    Spanned::new(0..0, "10s".to_string())
}
fn default_tcp_max() -> Spanned<u32> {
    Spanned::new(0..0, 1024)
}

/// `[monitors.NAME]`: how members are probed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// `"http"`, `"https"`, `"tcp"`, `"dns"` or `"exec"`.
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    /// HTTP(S) method: `"GET"` or `"HEAD"`. Default: `"GET"`.
    pub method: Option<Spanned<String>>,
    /// HTTP(S) path to request. Default: `"/"`.
    pub path: Option<String>,
    /// Port to probe; default: the member's port.
    pub port: Option<u16>,
    /// HTTP(S) Host header (and SNI for https); default: the member's address.
    pub host: Option<String>,
    /// Accepted HTTP status codes; default: 200–399.
    pub expect_status: Option<Vec<u16>>,
    /// A substring the response body must contain within its first `body_limit` bytes.
    pub expect_body: Option<String>,
    /// How much of the body is read to look for `expect_body`, in bytes. Default: 4096.
    pub body_limit: Option<usize>,
    /// `https` only: verify the certificate chain and name. Default: true.
    pub verify_tls: Option<bool>,
    /// Time between probes (`"2s"`, `"500ms"`). Default: `"2s"`.
    pub interval: Option<Spanned<String>>,
    /// Time between probes while a member is transitioning (after a failure, or recovering),
    /// so a dead member is confirmed quickly. Default: a quarter of `interval`, at least 100ms.
    pub fast_interval: Option<Spanned<String>>,
    /// Time a probe may take before it counts as failed. Default: `"1s"`.
    pub timeout: Option<Spanned<String>>,
    /// Consecutive successes before a down member is up again. Default: 2.
    pub rise: Option<u32>,
    /// Consecutive failures before an up member is down. Default: 3.
    pub fall: Option<u32>,
    /// How the fleet's observations decide a member's state. Default: `"local"`.
    pub consensus: Option<Spanned<ConsensusConfig>>,
    /// The address probes are sent from. Default: chosen by the system.
    pub source: Option<Spanned<String>>,
    /// HTTP(S): where the member reports its weight share (`"header:X-Weight"`,
    /// `"json:/capacity"`). Default: no report.
    pub weight_from: Option<Spanned<String>>,
    /// Points (of 100) a reported share must move before answers follow it. Default: 10.
    pub weight_step: Option<Spanned<i64>>,
    /// A member that comes up ramps from a small share to its full weight over this time.
    pub slow_start: Option<Spanned<String>>,
    /// `tcp`: bytes sent once connected (`\r`, `\n`, `\t`, `\\` and `\xHH` escapes).
    pub send: Option<Spanned<String>>,
    /// `tcp`: a substring the answer must contain within `body_limit` bytes (escapes as `send`).
    pub expect: Option<Spanned<String>>,
    /// `tcp`: a regular expression (`regex` crate syntax) the answer must match instead.
    pub expect_regex: Option<Spanned<String>>,
    /// `tcp`: several `send`/`expect` steps in order, instead of one.
    pub steps: Option<Vec<Spanned<StepConfig>>>,
    /// `dns`: the name queried.
    pub query_name: Option<Spanned<String>>,
    /// `dns`: the record type queried. Default: `"A"`.
    pub query_type: Option<Spanned<String>>,
    /// `dns`: the response code that counts as up. Default: `"NOERROR"`.
    pub expect_rcode: Option<Spanned<String>>,
    /// `dns`: an address that must be in the answer.
    pub expect_address: Option<Spanned<String>>,
    /// `exec`: the program run (a path, or a name looked up in `PATH`); no shell.
    pub command: Option<Spanned<String>>,
    /// `exec`: its arguments; `{address}` and `{port}` are replaced by the member's.
    pub args: Option<Vec<String>>,
    /// `exec`: most commands of this monitor running at once. Default: 8.
    pub max_concurrent: Option<Spanned<usize>>,
}

/// One `steps = [{ send = "...", expect = "..." }]` entry of a `tcp` monitor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepConfig {
    /// Bytes sent (escapes as the monitor's `send`).
    pub send: Option<Spanned<String>>,
    /// A substring the answer must contain.
    pub expect: Option<Spanned<String>>,
    /// A regular expression the answer must match.
    pub expect_regex: Option<Spanned<String>>,
}

/// `[pools.NAME]`: one site: its members, its monitor, and where it is.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Name of a `[monitors.*]` entry; no monitor means members are always considered up.
    pub monitor: Option<Spanned<String>>,
    /// Weight of this pool under `steering = "weighted"`. Default: 100.
    #[serde(default = "default_weight")]
    pub weight: Spanned<u32>,
    /// A member that comes up ramps to its full weight over this time; default: the
    /// monitor's `slow_start`, else none.
    pub slow_start: Option<Spanned<String>>,
    /// Continent code (`"EU"`; AF, AN, AS, EU, NA, OC or SA) whose clients `geo` steering sends
    /// here first.
    pub continent: Option<Spanned<String>>,
    /// ISO 3166-1 alpha-2 country codes whose clients `geo` steering sends here first.
    #[serde(default)]
    pub countries: Vec<Spanned<String>>,
    /// `[latitude, longitude]` of the site in degrees, for `proximity` steering.
    pub location: Option<Spanned<[f64; 2]>>,
    /// The servers of this site.
    pub members: Vec<Spanned<MemberConfig>>,
}

/// One entry of `members = [...]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// IPv4 or IPv6 address handed out in answers (or `cname`, not both).
    pub address: Option<Spanned<String>>,
    /// A host name answered as one CNAME record when the member is chosen (gdnsd's `DYNC`);
    /// probed at the addresses it resolves to.
    pub cname: Option<Spanned<String>>,
    /// Relative weight within the pool. Default: 100. 0 keeps the member configured but unused.
    #[serde(default = "default_weight")]
    pub weight: Spanned<u32>,
    /// Port the member serves on (for probes and the director). Default: the monitor's or 80.
    pub port: Option<u16>,
    /// Address to probe instead of `address`.
    pub check_address: Option<Spanned<String>>,
}

fn default_weight() -> Spanned<u32> {
    Spanned::new(0..0, 100)
}

/// `[services."NAME."]`: a DNS name whose A/AAAA answers are computed per query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Pools this service balances over, in order.
    pub pools: Vec<Spanned<String>>,
    /// How a pool is chosen: `"failover"` (pools in order), `"weighted"` (by pool weight),
    /// `"geo"` (by the client's country/continent/network, see `map`), `"proximity"` (nearest
    /// pool `location` first), `"hash"` (the client's network sticks to a pool) or
    /// `"latency"` (lowest probe round-trip time first). Default: `"failover"`.
    #[serde(default = "default_steering")]
    pub steering: Spanned<String>,
    /// How many usable members a pool needs before steering picks it: a count (`2`) or a share
    /// of its members (`"50%"`). A pool below it is skipped while another pool meets it.
    /// Default: 1.
    pub min_healthy: Option<Spanned<MinHealthyConfig>>,
    /// Explicit `geo` steering entries; without it the map comes from the pools' `countries`
    /// and `continent`.
    pub map: Option<Spanned<GeoMapConfig>>,
    /// How members are chosen inside the pool: `"all"`, `"weighted"` (a weight-proportional
    /// random subset), `"hash"` (the client's network gets the same members each time) or
    /// `"fastest"` (by weight among the members with the lowest probe round-trip time).
    /// Default: `"all"`.
    #[serde(default = "default_select")]
    pub select: Spanned<String>,
    /// `select = "fastest"` and `steering = "latency"`: how far above the fastest round-trip
    /// time still counts as fastest, a percentage (`"20%"`) or a duration (`"5ms"`).
    /// Default: `"20%"`.
    pub fastest_within: Option<Spanned<String>>,
    /// Most addresses in one answer. Default: no limit for `all`, 1 for `weighted`.
    pub max_answers: Option<Spanned<u32>>,
    /// TTL of the computed records, in seconds. Default: 30.
    #[serde(default = "default_ttl")]
    pub ttl: Spanned<u32>,
    /// Lowest TTL handed out while a member is transitioning, in seconds. Default: 5 (or `ttl`
    /// when that is lower).
    pub min_ttl: Option<Spanned<u32>>,
    /// What to answer when no member is usable: `"all"` (every member: fail open),
    /// `"fallback"` (the `fallback` pool), `"nodata"` or `"servfail"`. Default: `"all"`.
    #[serde(default = "default_when_all_down")]
    pub when_all_down: Spanned<String>,
    /// The pool used when `when_all_down = "fallback"`.
    pub fallback: Option<Spanned<String>>,
}

/// `min_healthy = 2` or `min_healthy = "50%"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum MinHealthyConfig {
    /// A number of members.
    Count(u32),
    /// A percentage of the pool's members, `"NN%"`.
    Share(String),
}

/// `[services."NAME".map]`: which pools, in order, clients from where go to. Each value is an
/// ordered pool list; the service's other pools follow it as a last resort.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GeoMapConfig {
    /// By ISO 3166 country code: `{ JP = ["ap", "us-west"] }`.
    #[serde(default)]
    pub countries: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    /// By continent code: `{ EU = ["eu-west", "us-east"] }`.
    #[serde(default)]
    pub continents: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    /// By client network (CIDR), checked before the database (longest prefix wins):
    /// `{ "10.0.0.0/8" = ["eu-west"] }`.
    #[serde(default)]
    pub nets: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    /// Order for clients nothing else matches. Default: the service's `pools` order.
    pub default: Option<Vec<Spanned<String>>>,
}

fn default_steering() -> Spanned<String> {
    Spanned::new(0..0, "failover".to_string())
}
fn default_select() -> Spanned<String> {
    Spanned::new(0..0, "all".to_string())
}
fn default_ttl() -> Spanned<u32> {
    Spanned::new(0..0, 30)
}
fn default_when_all_down() -> Spanned<String> {
    Spanned::new(0..0, "all".to_string())
}

/// `[[directors]]`: a TCP listener that forwards every accepted connection to a member of a
/// service, picked by the service's steering and health and then by `scheduler`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorConfig {
    /// Address(es) to accept connections on: `"127.0.0.1:8443"` or a list of them.
    pub listen: Spanned<OneOrMany>,
    /// The `[services."NAME."]` whose pools and health decide where connections go.
    pub service: Spanned<String>,
    /// Backend port, used for members without a `port` of their own. Default: none (then every
    /// member of the service's pools must set `port`).
    pub port: Option<Spanned<u16>>,
    /// `"rr"`, `"wrr"`, `"leastconn"` (weighted least connections), `"source-hash"`,
    /// `"random2"`, `"wlc"`, `"sed"`, `"nq"` or `"fastest"` (least time to first byte).
    /// Default: `"leastconn"`.
    pub scheduler: Option<Spanned<String>>,
    /// `scheduler = "fastest"`: how far above the fastest time to first byte still counts
    /// as fastest, a percentage (`"20%"`) or a duration (`"5ms"`). Default: `"20%"`.
    pub fastest_within: Option<Spanned<String>>,
    /// Other members tried after a failed connect. Default: 2.
    pub retries: Option<Spanned<u32>>,
    /// Time a backend connect may take before the next member is tried. Default: `"2s"`.
    pub connect_timeout: Option<Spanned<String>>,
    /// A connection with no data in either direction for this long is closed. Default: `"5m"`.
    pub idle_timeout: Option<Spanned<String>>,
    /// Most connections open through this director at once. Default: 4096.
    pub max_connections: Option<Spanned<u32>>,
    /// Most connections open to one member through this director. Default: no limit.
    pub max_connections_per_member: Option<Spanned<u32>>,
    /// How long a connection beyond a limit waits for a slot before it is closed.
    /// Default: `"1s"`.
    pub queue_timeout: Option<Spanned<String>>,
    /// PROXY protocol header sent to the backend first: `"v1"` (text) or `"v2"` (binary).
    /// Default: none.
    pub send_proxy: Option<Spanned<String>>,
    /// Client networks (CIDR, or single addresses) allowed to connect. Default: everyone.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Client networks refused even when `allow` matches. Default: none.
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    /// Connections to a drained member are closed after this long. Default: none (they run
    /// until they end).
    pub drain_timeout: Option<Spanned<String>>,
    /// What happens to a member's open connections when it goes down (probes, passive
    /// failure or force-down): `"keep"` or `"close"`. Default: `"keep"`.
    pub on_down: Option<Spanned<String>>,
}

/// A value given either once or as a list (`listen = "a"` or `listen = ["a", "b"]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// A list of values.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values, in order.
    pub fn as_slice(&self) -> &[String] {
        match self {
            OneOrMany::One(v) => std::slice::from_ref(v),
            OneOrMany::Many(v) => v,
        }
    }
}

/// A config file's text, kept so errors can be turned into line numbers.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path as given by the operator.
    pub path: PathBuf,
    /// Full text of the file.
    pub text: String,
}

impl Source {
    /// Reads a config file.
    pub fn read(path: &Path) -> Result<Source, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Ok(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// 1-based line number of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// An [`ConfigError::Invalid`] at the given span.
    pub fn error_at(&self, span: std::ops::Range<usize>, reason: impl fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            file: self.path.clone(),
            line: self.line_of(span.start),
            reason: reason.to_string(),
        }
    }

    /// Parses a list of networks (`"10.0.0.0/8"`, `"2001:db8::/32"`) or single addresses,
    /// host bits cleared, naming `key` and the line of a bad entry.
    pub fn networks(&self, key: &str, list: &[Spanned<String>]) -> Result<Vec<IpNet>, ConfigError> {
        list.iter()
            .map(|v| {
                let text = v.get_ref().trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map(|n| n.trunc())
                    .map_err(|_| {
                        self.error_at(
                            v.span(),
                            format!(
                                "{key}: {text:?} is not a network (\"10.0.0.0/8\", \"2001:db8::/32\") or an address"
                            ),
                        )
                    })
            })
            .collect()
    }

    /// Parses the text into a [`Config`], reporting TOML and schema errors with their line.
    pub fn parse(&self) -> Result<Config, ConfigError> {
        toml::from_str(&self.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            self.error_at(span, e.message().trim_end())
        })
    }
}

/// Why a duration in the config could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Only digits, or nothing at all.
    #[error("duration {0:?} needs a unit (ms, s, m or h)")]
    NoUnit(String),
    /// No whole number in front of the unit.
    #[error("duration {0:?} must start with a whole number")]
    NoNumber(String),
    /// A unit other than ms, s, m and h.
    #[error("duration {text:?} has unknown unit {unit:?} (ms, s, m, h or d)")]
    Unit {
        /// The whole duration as written.
        text: String,
        /// The unit as written.
        unit: String,
    },
}

/// Parses a duration such as `"2s"`, `"500ms"`, `"1m"`, `"1h"` or `"2d"`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| DurationError::NoUnit(text.to_string()))?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| DurationError::NoNumber(text.to_string()))?;
    let ms = match unit {
        "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        "d" => n.saturating_mul(86_400_000),
        _ => {
            return Err(DurationError::Unit {
                text: text.to_string(),
                unit: unit.to_string(),
            });
        }
    };
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("2").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("2 weeks").is_err());
    }

    #[test]
    fn line_numbers_come_from_spans() {
        let src = Source {
            path: "m.toml".into(),
            text: "[dns]\nlisten = [\"x\"]\nbogus = 1\n".into(),
        };
        let err = src.parse().unwrap_err().to_string();
        assert!(err.starts_with("m.toml:3: "), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }
}
