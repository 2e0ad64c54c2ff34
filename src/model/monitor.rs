//! Monitors after validation: how members are probed (the protocol, the request and what the
//! answer must look like, the port, the timeout) and the hysteresis thresholds. Pure
//! descriptions: the prober runs them, the health table applies their thresholds.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use toml::Spanned;

use super::check::{DnsCheck, ExecCheck, TcpScript};
use super::{Builder, Member};
use crate::config::{ConfigError, ConsensusConfig, MonitorConfig};

/// A validated `[monitors.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    /// Its name in the config.
    pub name: String,
    /// Probe protocol and, for HTTP(S), the request and what to expect.
    pub kind: ProbeKind,
    /// Port to probe; `None`: the member's port, else 80 (http) or 443 (https).
    pub port: Option<u16>,
    /// Time a probe may take.
    pub timeout: Duration,
    /// Hysteresis and probe intervals.
    pub thresholds: Thresholds,
    /// How the fleet's observations decide a member's state.
    pub consensus: Consensus,
    /// The address probes are sent from; `None`: the system chooses.
    pub source: Option<IpAddr>,
    /// The ramp of a member that comes up, for pools that do not set their own.
    pub slow_start: Option<Duration>,
}

/// Longest `slow_start` accepted.
pub const MAX_SLOW_START: Duration = Duration::from_secs(24 * 3600);

/// How the observations of a fleet's instances decide a member's state (see
/// the health stage's consensus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consensus {
    /// This instance's own observation alone.
    #[default]
    Local,
    /// Down when any live instance observes it down.
    Any,
    /// Down when every live instance with an observation observes it down.
    All,
    /// Down when more than half of the live instances with an observation do.
    Majority,
    /// Down when at least this many live instances do (or all of them, when fewer observe).
    AtLeast(u32),
}

impl fmt::Display for Consensus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Consensus::Local => f.write_str("local"),
            Consensus::Any => f.write_str("any"),
            Consensus::All => f.write_str("all"),
            Consensus::Majority => f.write_str("majority"),
            Consensus::AtLeast(n) => write!(f, "{n}"),
        }
    }
}

impl Monitor {
    /// The address a member is probed at, or `None` when no port is known (validation
    /// rejects that case, so it never happens in a built model). A hostname member without a `check_address` has none: it is probed at the addresses its
    /// name resolves to, on [`Monitor::port_of`].
    pub fn target(&self, member: &Member) -> Option<SocketAddr> {
        let ip = member.check_address.or(member.address.ip())?;
        Some(SocketAddr::new(ip, self.port_of(member)?))
    }

    /// The port a member is probed on: the monitor's, else the member's, else the type's
    /// default; `None` when there is none.
    pub fn port_of(&self, member: &Member) -> Option<u16> {
        self.port.or(member.port).or(match self.kind {
            ProbeKind::Http(_) => Some(80),
            ProbeKind::Https(_) => Some(443),
            ProbeKind::Dns(_) => Some(53),
            ProbeKind::Tcp | ProbeKind::TcpScript(_) | ProbeKind::Exec(_) | ProbeKind::Agent => {
                None
            }
        })
    }

    /// Where this monitor's members report their weight share (`agent`, `header:X-Weight`,
    /// `json:/capacity`), if they do.
    pub fn weight_source(&self) -> Option<String> {
        self.kind.weight_source()
    }
}

/// Points a reported weight share must move before answers follow it, unless configured.
pub const DEFAULT_WEIGHT_STEP: u8 = 10;

/// Where an HTTP(S) monitor reads the weight share (0-100) a member reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightFrom {
    /// A response header (`header:X-Weight`), `75` or `75%`.
    Header(String),
    /// A JSON pointer (RFC 6901) into the body (`json:/capacity`): a number or such a string.
    Json(String),
}

impl fmt::Display for WeightFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WeightFrom::Header(h) => write!(f, "header:{h}"),
            WeightFrom::Json(p) => write!(f, "json:{p}"),
        }
    }
}

impl WeightFrom {
    /// Parses `header:NAME` or `json:/POINTER`.
    fn parse(text: &str) -> Result<WeightFrom, &'static str> {
        let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if let Some(name) = text.strip_prefix("header:") {
            if name.is_empty() || !name.chars().all(tchar) {
                return Err("not a header name");
            }
            Ok(WeightFrom::Header(name.to_string()))
        } else if let Some(pointer) = text.strip_prefix("json:") {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                return Err("a JSON pointer is empty or starts with /");
            }
            Ok(WeightFrom::Json(pointer.to_string()))
        } else {
            Err("expected \"header:NAME\" or \"json:/POINTER\"")
        }
    }
}

/// Hysteresis thresholds of one monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Consecutive successes that bring a down member up.
    pub rise: u32,
    /// Consecutive failures that take an up member down.
    pub fall: u32,
    /// Time between probes of a steady member.
    pub interval: Duration,
    /// Time between probes while a member is transitioning.
    pub fast_interval: Duration,
    /// Points (of 100) a reported weight share must move before the health table follows it.
    pub weight_step: u8,
}

/// Bytes of the body searched for [`HttpCheck::expect_body`] unless configured otherwise.
pub const DEFAULT_BODY_LIMIT: usize = 4096;

/// What to probe and how (built from the validated monitor config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// Which protocol, and for HTTP(S) what to ask and expect.
    pub kind: ProbeKind,
    /// Address and port to connect to.
    pub target: SocketAddr,
    /// Time the whole probe may take: connect, TLS handshake, request and body read.
    pub timeout: Duration,
    /// The address to send from; `None`: the system chooses.
    pub source: Option<IpAddr>,
}

/// The protocol of a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// A TCP connect: up when the connection is accepted.
    Tcp,
    /// An HTTP/1.1 request over plain TCP.
    Http(HttpCheck),
    /// An HTTP/1.1 request over TLS.
    Https(HttpCheck),
    /// A TCP connection and a dialogue of sends and expected answers (`type = "tcp"` with
    /// `send`/`expect` or `steps`).
    TcpScript(TcpScript),
    /// A DNS query of the member.
    Dns(DnsCheck),
    /// A command run with the member's address: exit 0 is up.
    Exec(ExecCheck),
    /// HAProxy's agent check: connect, read one line (`75%`, `up 50%`, `drain`, `down`, …).
    Agent,
}

impl ProbeKind {
    /// The monitor type as configured: `tcp` (with or without a dialogue), `http`, `https`,
    /// `dns`, `exec` or `agent`.
    pub fn word(&self) -> &'static str {
        match self {
            ProbeKind::Tcp | ProbeKind::TcpScript(_) => "tcp",
            ProbeKind::Http(_) => "http",
            ProbeKind::Https(_) => "https",
            ProbeKind::Dns(_) => "dns",
            ProbeKind::Exec(_) => "exec",
            ProbeKind::Agent => "agent",
        }
    }

    /// Where members probed this way report their weight share (`agent`, `header:X-Weight`,
    /// `json:/capacity`, `exit`), if they do.
    pub fn weight_source(&self) -> Option<String> {
        match self {
            ProbeKind::Agent => Some("agent".to_string()),
            ProbeKind::Http(c) | ProbeKind::Https(c) => {
                c.weight_from.as_ref().map(|w| w.to_string())
            }
            ProbeKind::Exec(c) if c.exit_weight => Some("exit".to_string()),
            ProbeKind::Tcp | ProbeKind::TcpScript(_) | ProbeKind::Dns(_) | ProbeKind::Exec(_) => {
                None
            }
        }
    }
}

/// The request an HTTP(S) probe sends and what the answer must look like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// Request method.
    pub method: HttpMethod,
    /// Request path (and query), starting with `/`.
    pub path: String,
    /// Host header, sent verbatim, and for HTTPS also the TLS server name (SNI) and the name the
    /// certificate must be valid for. A bare host name, without a port. Default (`None`): the
    /// target address.
    pub host: Option<String>,
    /// Status codes that count as up. Default: 200–399 (redirects are not followed).
    pub expect_status: StatusMatch,
    /// A substring that must appear within the first `body_limit` bytes of the body. The body
    /// is only read when this is set.
    pub expect_body: Option<String>,
    /// Bytes of the body read when looking for `expect_body`. Default: [`DEFAULT_BODY_LIMIT`].
    pub body_limit: usize,
    /// HTTPS only: verify the certificate chain, validity period and name. Default: true.
    pub verify_tls: bool,
    /// Where the answer reports the member's weight share; `None`: it does not.
    pub weight_from: Option<WeightFrom>,
}

impl Default for HttpCheck {
    /// `GET /`, any 2xx/3xx, no body check, certificates verified.
    fn default() -> HttpCheck {
        HttpCheck {
            method: HttpMethod::Get,
            path: "/".to_string(),
            host: None,
            expect_status: StatusMatch::default(),
            expect_body: None,
            body_limit: DEFAULT_BODY_LIMIT,
            verify_tls: true,
            weight_from: None,
        }
    }
}

/// HTTP method of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpMethod {
    /// `GET`.
    #[default]
    Get,
    /// `HEAD` (no body, so `expect_body` can never match).
    Head,
}

/// Which HTTP status codes count as up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusMatch {
    /// Any code in this inclusive range.
    Range(RangeInclusive<u16>),
    /// Exactly one of these codes.
    Codes(Vec<u16>),
}

impl Default for StatusMatch {
    /// 200–399: success and redirects.
    fn default() -> StatusMatch {
        StatusMatch::Range(200..=399)
    }
}

impl StatusMatch {
    /// Does `code` count as up?
    pub fn matches(&self, code: u16) -> bool {
        match self {
            StatusMatch::Range(range) => range.contains(&code),
            StatusMatch::Codes(codes) => codes.contains(&code),
        }
    }
}

impl Builder<'_> {
    /// A `slow_start` key: more than 0, at most [`MAX_SLOW_START`].
    pub(super) fn slow_start(
        &self,
        key: &str,
        value: &Option<Spanned<String>>,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = value else {
            return Ok(None);
        };
        let d = self.duration(key, v)?;
        if d > MAX_SLOW_START {
            return self.err(v.span(), format!("{key} = {:?}: at most 24h", v.get_ref()));
        }
        Ok(Some(d))
    }

    pub(super) fn monitor(
        &self,
        name: &str,
        m: &Spanned<MonitorConfig>,
        fleet: bool,
    ) -> Result<Monitor, ConfigError> {
        let cfg = m.get_ref();
        self.check_keys(name, m)?;
        let method = match &cfg.method {
            None => HttpMethod::Get,
            Some(v) => match v.get_ref().to_ascii_uppercase().as_str() {
                "GET" => HttpMethod::Get,
                "HEAD" => HttpMethod::Head,
                _ => {
                    return self.err(
                        v.span(),
                        format!(
                            "monitors.{name}.method = {:?}: expected \"GET\" or \"HEAD\"",
                            v.get_ref()
                        ),
                    );
                }
            },
        };
        let path = cfg.path.clone().unwrap_or_else(|| "/".to_string());
        if !path.starts_with('/') {
            return self.err(
                m.span(),
                format!("monitors.{name}.path = {path:?}: must start with /"),
            );
        }
        let expect_status = match &cfg.expect_status {
            Some(codes) if codes.is_empty() || codes.iter().any(|c| !(100..=599).contains(c)) => {
                return self.err(
                    m.span(),
                    format!("monitors.{name}.expect_status: status codes are 100 to 599"),
                );
            }
            Some(codes) => StatusMatch::Codes(codes.clone()),
            None => StatusMatch::default(),
        };
        let http = matches!(cfg.kind.get_ref().as_str(), "http" | "https");
        let weight_from = match cfg.weight_from.as_ref().filter(|_| http) {
            None => None,
            Some(v) => match WeightFrom::parse(v.get_ref()) {
                Ok(WeightFrom::Json(_)) if method == HttpMethod::Head => {
                    return self.err(
                        v.span(),
                        format!(
                            "monitors.{name}.weight_from = {:?}: a HEAD answer has no body to read",
                            v.get_ref()
                        ),
                    );
                }
                Ok(w) => Some(w),
                Err(why) => {
                    return self.err(
                        v.span(),
                        format!("monitors.{name}.weight_from = {:?}: {why}", v.get_ref()),
                    );
                }
            },
        };
        let check = HttpCheck {
            method,
            path,
            host: cfg.host.clone(),
            expect_status,
            expect_body: cfg.expect_body.clone(),
            body_limit: cfg.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
            verify_tls: cfg.verify_tls.unwrap_or(true),
            weight_from,
        };
        let kind = match self.check_kind(name, m)? {
            Some(kind) => kind,
            None => match cfg.kind.get_ref().as_str() {
                "http" => ProbeKind::Http(check),
                "https" => ProbeKind::Https(check),
                "tcp" => ProbeKind::Tcp,
                "agent" if cfg.port.is_none() => {
                    return self.err(
                        m.span(),
                        format!("monitors.{name}: type = \"agent\" needs port (the agent's port)"),
                    );
                }
                "agent" => ProbeKind::Agent,
                other => {
                    return self.err(
                    cfg.kind.span(),
                    format!(
                        "monitors.{name}.type = {other:?}: expected \"http\", \"https\", \"tcp\", \"dns\", \"exec\" or \"agent\""
                    ),
                );
                }
            },
        };
        let reports = kind.weight_source().is_some();
        let weight_step = match &cfg.weight_step {
            None => DEFAULT_WEIGHT_STEP,
            Some(v) if !reports => {
                return self.err(
                    v.span(),
                    format!(
                        "monitors.{name}.weight_step applies to agent monitors and monitors with weight_from"
                    ),
                );
            }
            Some(v) => match u8::try_from(*v.get_ref()) {
                Ok(step) if (1..=100).contains(&step) => step,
                _ => {
                    return self.err(
                        v.span(),
                        format!(
                            "monitors.{name}.weight_step = {}: expected 1 to 100 points",
                            v.get_ref()
                        ),
                    );
                }
            },
        };
        let interval = match &cfg.interval {
            Some(v) => self.duration(&format!("monitors.{name}.interval"), v)?,
            None => Duration::from_secs(2),
        };
        let timeout = match &cfg.timeout {
            Some(v) => self.duration(&format!("monitors.{name}.timeout"), v)?,
            None => Duration::from_secs(1),
        };
        let fast_interval = match &cfg.fast_interval {
            Some(v) => self.duration(&format!("monitors.{name}.fast_interval"), v)?,
            None => (interval / 4).max(Duration::from_millis(100)).min(interval),
        };
        let rise = cfg.rise.unwrap_or(2);
        let fall = cfg.fall.unwrap_or(3);
        if rise == 0 || fall == 0 {
            return self.err(
                m.span(),
                format!("monitors.{name}: rise and fall must be at least 1"),
            );
        }
        let consensus = match &cfg.consensus {
            None => Consensus::Local,
            Some(c) => {
                let consensus = match c.get_ref() {
                    ConsensusConfig::Name(n) => match n.as_str() {
                        "local" => Consensus::Local,
                        "any" => Consensus::Any,
                        "all" => Consensus::All,
                        "majority" => Consensus::Majority,
                        other => {
                            return self.err(
                                c.span(),
                                format!(
                                    "monitors.{name}.consensus = {other:?}: expected \"local\", \"any\", \"all\", \"majority\" or a count"
                                ),
                            );
                        }
                    },
                    ConsensusConfig::Count(n) => {
                        match u32::try_from(*n) {
                            Ok(n) if n >= 1 => Consensus::AtLeast(n),
                            _ => {
                                return self.err(
                                c.span(),
                                format!("monitors.{name}.consensus = {n}: a count must be at least 1"),
                            );
                            }
                        }
                    }
                };
                if consensus != Consensus::Local && !fleet {
                    return self.err(
                        c.span(),
                        format!(
                            "monitors.{name}.consensus = \"{consensus}\" needs a [fleet] table"
                        ),
                    );
                }
                consensus
            }
        };
        let source = match &cfg.source {
            None => None,
            Some(s) => match s.get_ref().parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    return self.err(
                        s.span(),
                        format!(
                            "monitors.{name}.source = {:?}: not an IP address",
                            s.get_ref()
                        ),
                    );
                }
            },
        };
        let slow_start =
            self.slow_start(&format!("monitors.{name}.slow_start"), &cfg.slow_start)?;
        Ok(Monitor {
            name: name.to_string(),
            slow_start,
            kind,
            port: cfg.port,
            timeout,
            consensus,
            source,
            thresholds: Thresholds {
                rise,
                fall,
                interval,
                fast_interval,
                weight_step,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_match() {
        assert!(StatusMatch::default().matches(200));
        assert!(StatusMatch::default().matches(399));
        assert!(!StatusMatch::default().matches(400));
        assert!(!StatusMatch::default().matches(199));
        assert!(StatusMatch::Codes(vec![204]).matches(204));
        assert!(!StatusMatch::Codes(vec![204]).matches(200));
    }
}
