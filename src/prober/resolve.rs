//! Hostname (`cname`) members in the prober: their name resolved through the system's
//! resolver (or `[health] resolver`) with hickory-resolver, the addresses kept for the answer's
//! TTL clamped to `resolve_min_ttl`..`resolve_max_ttl`, each address probed, and the verdicts
//! combined: the member passes when any address passes. A failed resolution is the probe's
//! failure (`resolve: NXDOMAIN`). All of it runs in the probe task, never on a query path.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::{DnsError, NetError};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::Name;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::probe::{Probe, ProbeError, ProbeResult};
use crate::model::{HealthSettings, ProbeSpec};

/// Most addresses of one name probed; the rest (in the resolver's order) are ignored.
pub const MAX_ADDRESSES: usize = 8;

/// The resolver one probe plan shares, and how long a resolution is kept.
pub struct Resolver {
    inner: Result<TokioResolver, String>,
    ttl: RangeInclusive<Duration>,
}

impl Resolver {
    /// A resolver asking `settings.resolver`, else the system's name servers. When the system's
    /// configuration cannot be read, every resolution fails with why.
    pub fn new(settings: &HealthSettings) -> Resolver {
        let provider = TokioRuntimeProvider::default();
        let builder = match settings.resolver {
            Some(addr) => {
                let connection = |mut c: ConnectionConfig| {
                    c.port = addr.port();
                    c
                };
                let server = NameServerConfig::new(
                    addr.ip(),
                    true,
                    vec![
                        connection(ConnectionConfig::udp()),
                        connection(ConnectionConfig::tcp()),
                    ],
                );
                let config = ResolverConfig::from_parts(None, Vec::new(), vec![server]);
                Ok(TokioResolver::builder_with_config(config, provider))
            }
            None => TokioResolver::builder(provider).map_err(|e| format!("no resolver: {e}")),
        };
        let (min, max) = (*settings.resolve_ttl.start(), *settings.resolve_ttl.end());
        let inner = builder.and_then(|mut b| {
            let opts = b.options_mut();
            opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
            // The cache never keeps an answer longer than Meridian would, nor a failure
            // past the next probe.
            opts.positive_max_ttl = Some(max);
            opts.negative_max_ttl = Some(min);
            if settings.resolver.is_some() {
                opts.use_hosts_file = ResolveHosts::Never;
            }
            b.build().map_err(|e| format!("no resolver: {e}"))
        });
        Resolver {
            inner,
            ttl: settings.resolve_ttl.clone(),
        }
    }

    /// The addresses of `name` within `timeout`, and until when to use them.
    async fn lookup(&self, name: &Name, timeout: Duration) -> Result<Resolution, ProbeError> {
        let resolver = self.inner.as_ref().map_err(|e| resolve_error(e.clone()))?;
        let lookup = match tokio::time::timeout(timeout, resolver.lookup_ip(name.clone())).await {
            Err(_elapsed) => return Err(resolve_error("timeout")),
            Ok(Err(e)) => return Err(resolve_error(describe(&e))),
            Ok(Ok(lookup)) => lookup,
        };
        let ttl = lookup
            .valid_until()
            .saturating_duration_since(std::time::Instant::now())
            .clamp(*self.ttl.start(), *self.ttl.end());
        let mut addresses: Vec<IpAddr> = Vec::new();
        for ip in lookup.iter() {
            if !addresses.contains(&ip) && addresses.len() < MAX_ADDRESSES {
                addresses.push(ip);
            }
        }
        if addresses.is_empty() {
            return Err(resolve_error("no addresses"));
        }
        Ok(Resolution {
            addresses,
            until: Instant::now() + ttl,
        })
    }
}

fn resolve_error(why: impl Into<String>) -> ProbeError {
    ProbeError::Resolve(why.into())
}

/// A resolver's error in an operator's words: `NXDOMAIN`, `no addresses`, `SERVFAIL`,
/// `timeout`, else hickory's own.
fn describe(e: &NetError) -> String {
    match e {
        _ if e.is_nx_domain() => "NXDOMAIN".to_string(),
        _ if e.is_no_records_found() => "no addresses".to_string(),
        NetError::Timeout => "timeout".to_string(),
        NetError::Dns(DnsError::ResponseCode(code)) => match code {
            ResponseCode::ServFail => "SERVFAIL".to_string(),
            ResponseCode::Refused => "REFUSED".to_string(),
            other => format!("rcode {}", u16::from(*other)),
        },
        other => other.to_string().chars().take(200).collect(),
    }
}

/// A name's addresses and until when they are used.
#[derive(Debug, Clone)]
struct Resolution {
    addresses: Vec<IpAddr>,
    until: Instant,
}

/// One hostname target's name and its last good resolution, kept by its probe task.
pub struct Hostname {
    name: Name,
    resolver: Arc<Resolver>,
    resolved: Option<Resolution>,
    /// The addresses last logged, so that only a change is.
    logged: Vec<IpAddr>,
}

impl Hostname {
    /// The target for `name`, resolved with `resolver` when first probed.
    pub fn new(name: Name, resolver: Arc<Resolver>) -> Hostname {
        Hostname {
            name,
            resolver,
            resolved: None,
            logged: Vec::new(),
        }
    }

    /// Resolves the name again if its resolution ran out (or failed), then probes every
    /// address (at once, each bounded by the probe's timeout): the first address that passed
    /// decides the result and its share; when none did, the first address's failure does.
    pub async fn probe<P: Probe>(&mut self, probe: &Arc<P>, spec: &ProbeSpec) -> ProbeResult {
        let start = Instant::now();
        if self.resolved.as_ref().is_none_or(|r| r.until <= start) {
            self.resolved = None;
            match self.resolver.lookup(&self.name, spec.timeout).await {
                Ok(r) => {
                    if r.addresses != self.logged {
                        let list: Vec<String> = r.addresses.iter().map(|a| a.to_string()).collect();
                        tracing::info!(
                            name = %self.name, addresses = %list.join(" "),
                            "hostname {} now resolves to {} (kept {:?})",
                            self.name,
                            list.join(", "),
                            r.until.saturating_duration_since(start)
                        );
                        self.logged.clone_from(&r.addresses);
                    }
                    self.resolved = Some(r);
                }
                Err(e) => {
                    return ProbeResult {
                        outcome: Err(e),
                        latency: start.elapsed(),
                        weight: None,
                    };
                }
            }
        }
        let addresses = self
            .resolved
            .as_ref()
            .map(|r| r.addresses.clone())
            .unwrap_or_default();
        let mut running = JoinSet::new();
        for (i, ip) in addresses.into_iter().enumerate() {
            let (probe, mut spec) = (probe.clone(), spec.clone());
            spec.target.set_ip(ip);
            running.spawn(async move { (i, probe.probe(&spec).await) });
        }
        let mut results: Vec<(usize, ProbeResult)> = running.join_all().await;
        results.sort_by_key(|(i, _)| *i);
        let mut results = results.into_iter().map(|(_, r)| r);
        let first = results.next();
        let passed = first
            .clone()
            .into_iter()
            .chain(results)
            .find(ProbeResult::is_ok);
        passed.or(first).unwrap_or_else(|| ProbeResult {
            outcome: Err(resolve_error("no addresses")),
            latency: start.elapsed(),
            weight: None,
        })
    }
}
