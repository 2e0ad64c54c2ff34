//! The instance-wide sections after validation: `[dns]` (listeners, limits, workers, response
//! rate limiting; cookies in [`super::cookies`]), `[http]` and `[health]`.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use super::Builder;
use super::cookies::CookieSettings;
use super::tls::{TlsError, TlsIdentity};
use crate::config::{Config, ConfigError, RrlConfig, parse_duration};

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
    /// Response rate limiting over UDP, when on. The table lives with the server
    /// (the DNS stage's `RateLimit`), so a reload that keeps these settings keeps it.
    pub rrl: Option<RrlSettings>,
    /// The name server identifier answered to NSID requests (RFC 5001), if any.
    pub nsid: Option<String>,
    /// Receive coalescing of the UDP workers (`udp_coalesce_us`): the wait after a batch of
    /// fewer than 16 queries that arrived within one wait of the worker asking; zero when off.
    pub udp_coalesce: Duration,
    /// DNS Cookies, when on.
    pub cookies: Option<CookieSettings>,
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
    /// Certificate and key: the listener speaks HTTPS only; `None`: plain HTTP.
    pub tls: Option<TlsIdentity>,
}

impl HttpSettings {
    /// `https` with a certificate, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// What an operator should hear about this listener: admin calls enabled on an address
    /// beyond loopback without TLS send the bearer token in clear text.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.admin_token.is_some() && self.tls.is_none() && !self.listen.ip().is_loopback() {
            w.push(format!(
                "http.listen {} is not a loopback address and admin calls are enabled without TLS: the admin token crosses the network in clear text (set http.tls_cert and http.tls_key)",
                self.listen
            ));
        }
        w
    }
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
    /// The name server hostname members are resolved with; `None`: the system's.
    pub resolver: Option<SocketAddr>,
    /// A resolution is kept for its TTL clamped to this range.
    pub resolve_ttl: RangeInclusive<Duration>,
}

/// Shortest time a hostname member's resolution is kept, unless `resolve_min_ttl` says.
pub const DEFAULT_RESOLVE_MIN_TTL: Duration = Duration::from_secs(5);
/// Longest time a hostname member's resolution is kept, unless `resolve_max_ttl` says.
pub const DEFAULT_RESOLVE_MAX_TTL: Duration = Duration::from_secs(300);

/// `[dns.rrl]` after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RrlSettings {
    /// Responses per second each client network may receive in the long run.
    pub responses_per_second: u32,
    /// Responses a network may receive at once, from a full bucket.
    pub burst: u32,
    /// Every `slip`-th limited response is sent truncated; 0: none (all dropped).
    pub slip: u32,
    /// IPv4 client addresses are grouped by this many leading bits.
    pub ipv4_prefix: u8,
    /// IPv6 client addresses are grouped by this many leading bits.
    pub ipv6_prefix: u8,
    /// Client networks never limited.
    pub exempt: Vec<IpNet>,
    /// Number of buckets (a power of two).
    pub table_size: usize,
}

/// Most DNS worker threads `[dns] workers` accepts.
pub const MAX_WORKERS: u32 = 1024;

/// The longest receive coalescing wait (`udp_coalesce_us`): 1 ms, a bound on what it adds to
/// a query's latency.
pub const MAX_COALESCE_US: u32 = 1000;

/// The default number of DNS workers: one per core this process may run on (its CPU affinity
/// mask, so `taskset -c 1` gives one), capped at [`MAX_WORKERS`].
pub fn default_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_WORKERS as usize)
}

impl Builder<'_> {
    pub(super) fn dns(&self, config: &Config) -> Result<DnsSettings, ConfigError> {
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
        let nsid = match &d.nsid {
            Some(n) if n.get_ref().is_empty() || n.get_ref().len() > 128 => {
                return self.err(n.span(), "dns.nsid must be 1 to 128 bytes long");
            }
            Some(n)
                if !n
                    .get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_graphic() || b == b' ') =>
            {
                return self.err(
                    n.span(),
                    format!(
                        "dns.nsid = {:?}: only printable ASCII is allowed",
                        n.get_ref()
                    ),
                );
            }
            n => n.as_ref().map(|n| n.get_ref().clone()),
        };
        let udp_coalesce = match &d.udp_coalesce_us {
            Some(v) if *v.get_ref() > MAX_COALESCE_US => {
                return self.err(
                    v.span(),
                    format!(
                        "dns.udp_coalesce_us = {}: at most {MAX_COALESCE_US} (1 ms)",
                        v.get_ref()
                    ),
                );
            }
            Some(v) => Duration::from_micros(u64::from(*v.get_ref())),
            None => Duration::ZERO,
        };
        Ok(DnsSettings {
            udp_coalesce,
            listen,
            max_udp_payload: payload,
            tcp_idle_timeout,
            tcp_max_connections: tcp_max,
            workers,
            rrl: self.rrl(d.rrl.as_ref())?,
            nsid,
            cookies: self.cookies(d.cookies.as_ref())?,
        })
    }

    /// `[dns.rrl]`: every key is checked even when `enabled = false`, except that a rate of 0
    /// is only refused while enabled.
    fn rrl(&self, config: Option<&RrlConfig>) -> Result<Option<RrlSettings>, ConfigError> {
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
        Ok(enabled.then_some(settings))
    }

    pub(super) fn duration(
        &self,
        key: &str,
        value: &Spanned<String>,
    ) -> Result<Duration, ConfigError> {
        match parse_duration(value.get_ref()) {
            Ok(d) if d.is_zero() => self.err(value.span(), format!("{key} must be more than 0")),
            Ok(d) => Ok(d),
            Err(reason) => self.err(value.span(), format!("{key}: {reason}")),
        }
    }

    pub(super) fn http(&self, config: &Config) -> Result<Option<HttpSettings>, ConfigError> {
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
        let tls = match (&h.tls_cert, &h.tls_key) {
            (None, None) => None,
            (Some(c), None) => return self.err(c.span(), "http.tls_cert needs http.tls_key"),
            (None, Some(k)) => return self.err(k.span(), "http.tls_key needs http.tls_cert"),
            (Some(c), Some(k)) => {
                let base = self.src.path.parent().unwrap_or(Path::new("."));
                match TlsIdentity::load(&base.join(c.get_ref()), &base.join(k.get_ref())) {
                    Ok(id) => Some(id),
                    Err(e @ TlsError::Cert(_)) => {
                        return self.err(c.span(), format!("http.tls_cert: {e}"));
                    }
                    Err(e @ TlsError::Key(_)) => {
                        return self.err(k.span(), format!("http.tls_key: {e}"));
                    }
                }
            }
        };
        Ok(Some(HttpSettings {
            listen,
            admin_token,
            max_connections,
            tls,
        }))
    }

    pub(super) fn health(&self, config: &Config) -> Result<HealthSettings, ConfigError> {
        let h = &config.health;
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        let max = match &h.max_concurrent_probes {
            Some(v) if *v.get_ref() == 0 => {
                return self.err(v.span(), "health.max_concurrent_probes must be at least 1");
            }
            Some(v) => *v.get_ref() as usize,
            None => 512,
        };
        let resolver = match &h.resolver {
            None => None,
            Some(v) => {
                let text = v.get_ref();
                let parsed = text.parse::<SocketAddr>().or_else(|_| {
                    text.parse::<std::net::IpAddr>()
                        .map(|ip| SocketAddr::new(ip, 53))
                });
                match parsed {
                    Ok(addr) => Some(addr),
                    Err(_) => {
                        return self.err(
                            v.span(),
                            format!(
                                "health.resolver = {text:?}: expected an address, with a port or not (\"127.0.0.1:53\", \"::1\")"
                            ),
                        );
                    }
                }
            }
        };
        let ttl = |key: &str, v: &Option<Spanned<String>>, default| match v {
            None => Ok(default),
            Some(v) => self.duration(key, v),
        };
        let min_ttl = ttl(
            "health.resolve_min_ttl",
            &h.resolve_min_ttl,
            DEFAULT_RESOLVE_MIN_TTL,
        )?;
        let max_ttl = ttl(
            "health.resolve_max_ttl",
            &h.resolve_max_ttl,
            DEFAULT_RESOLVE_MAX_TTL,
        )?;
        if let Some(v) = h.resolve_max_ttl.as_ref().or(h.resolve_min_ttl.as_ref())
            && min_ttl > max_ttl
        {
            return self.err(
                v.span(),
                "health.resolve_min_ttl is above health.resolve_max_ttl",
            );
        }
        Ok(HealthSettings {
            state_file: base.join(h.state_file.as_deref().unwrap_or("meridian.state")),
            unknown_is_up: h.unknown_is_up,
            max_concurrent_probes: max,
            resolver,
            resolve_ttl: min_ttl..=max_ttl,
        })
    }
}

/// Largest admin token file read: a token is one line, and a wrong path such as `/dev/zero`
/// must not make a reload read forever.
const TOKEN_FILE_MAX: usize = 4096;

/// Why an admin token file cannot be used.
#[derive(Debug, thiserror::Error)]
enum TokenFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a regular file", .0.display())]
    NotAFile(PathBuf),
    #[error("{} is larger than {TOKEN_FILE_MAX} bytes (it holds one token)", .0.display())]
    TooLarge(PathBuf),
    #[error("{} is empty", .0.display())]
    Empty(PathBuf),
    #[error("{}: the token must be visible ASCII without spaces (as an HTTP header carries it)", .0.display())]
    NotVisibleAscii(PathBuf),
}

/// The token in an admin token file: a regular file (a FIFO or terminal would block a reload),
/// at most `TOKEN_FILE_MAX` bytes, holding one token of visible ASCII (what an HTTP
/// `Authorization` header can carry) with surrounding whitespace ignored.
fn read_token(path: &Path) -> Result<String, TokenFileError> {
    use std::io::Read;
    let owned = || path.to_path_buf();
    let cannot = |source: std::io::Error| TokenFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    if !std::fs::metadata(path).map_err(cannot)?.is_file() {
        return Err(TokenFileError::NotAFile(owned()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(TOKEN_FILE_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > TOKEN_FILE_MAX {
        return Err(TokenFileError::TooLarge(owned()));
    }
    let token = bytes.trim_ascii();
    if token.is_empty() {
        return Err(TokenFileError::Empty(owned()));
    }
    if !token.iter().all(u8::is_ascii_graphic) {
        return Err(TokenFileError::NotVisibleAscii(owned()));
    }
    Ok(String::from_utf8_lossy(token).into_owned())
}
