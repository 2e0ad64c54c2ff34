//! `[fleet]` after validation: where etcd is, this instance's name, the key prefix and the time
//! bounds; and the digest of everything in a config that must be the same on every instance.

use std::time::Duration;

use toml::Spanned;

use super::Builder;
use super::Zones;
use crate::config::{Config, FleetConfig};
use crate::config::{ConfigError, Source};

/// `[fleet]` after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetSettings {
    /// etcd client URLs, as configured.
    pub endpoints: Vec<String>,
    /// This instance's name.
    pub name: String,
    /// Key prefix, starting with `/`, without a trailing `/`.
    pub prefix: String,
    /// TTL of the instance's lease.
    pub lease_ttl: Duration,
    /// How long peers' observations count after etcd is lost.
    pub stale_peers: Duration,
    /// Timeout of each etcd request and of connecting.
    pub timeout: Duration,
}

/// The shortest lease: etcd rounds TTLs to seconds, and keep-alives go out at a third of it.
const MIN_LEASE: Duration = Duration::from_secs(2);

impl Builder<'_> {
    pub(super) fn fleet(&self, config: &Config) -> Result<Option<FleetSettings>, ConfigError> {
        let Some(f) = &config.fleet else {
            return Ok(None);
        };
        let cfg: &FleetConfig = f.get_ref();
        if cfg.etcd.is_empty() {
            return self.err(f.span(), "fleet.etcd: at least one etcd endpoint is needed");
        }
        let mut endpoints = Vec::new();
        for e in &cfg.etcd {
            let url = e.get_ref().trim();
            if let Err(reason) = endpoint(url) {
                return self.err(e.span(), format!("fleet.etcd: {url:?}: {reason}"));
            }
            if endpoints.iter().any(|seen: &String| seen == url) {
                return self.err(e.span(), format!("fleet.etcd: {url:?} is listed twice"));
            }
            endpoints.push(url.to_string());
        }
        let name = cfg.name.get_ref();
        if name.is_empty() || name.len() > 63 {
            return self.err(cfg.name.span(), "fleet.name must be 1 to 63 bytes long");
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return self.err(
                cfg.name.span(),
                format!("fleet.name = {name:?}: only letters, digits, '.', '-' and '_'"),
            );
        }
        let prefix = match &cfg.prefix {
            None => "/meridian".to_string(),
            Some(p) => {
                let text = p.get_ref();
                if !text.starts_with('/') || text.ends_with('/') || text.contains("//") {
                    return self.err(
                        p.span(),
                        format!(
                            "fleet.prefix = {text:?}: must start with '/' and not end with '/'"
                        ),
                    );
                }
                text.clone()
            }
        };
        let lease_ttl = self.optional_duration("fleet.lease_ttl", &cfg.lease_ttl, 5)?;
        if lease_ttl < MIN_LEASE {
            let span = cfg
                .lease_ttl
                .as_ref()
                .map(Spanned::span)
                .unwrap_or_default();
            return self.err(span, "fleet.lease_ttl must be at least 2s");
        }
        Ok(Some(FleetSettings {
            endpoints,
            name: name.clone(),
            prefix,
            lease_ttl,
            stale_peers: self.optional_duration("fleet.stale_peers", &cfg.stale_peers, 30)?,
            timeout: self.optional_duration("fleet.timeout", &cfg.timeout, 1)?,
        }))
    }

    fn optional_duration(
        &self,
        key: &str,
        value: &Option<Spanned<String>>,
        default_secs: u64,
    ) -> Result<Duration, ConfigError> {
        match value {
            Some(v) => self.duration(key, v),
            None => Ok(Duration::from_secs(default_secs)),
        }
    }
}

/// Checks an etcd endpoint: `http://`, a host and a port, nothing else (TLS to etcd is not
/// supported yet, so `https://` is refused rather than failing at run time).
fn endpoint(url: &str) -> Result<(), &'static str> {
    if url.starts_with("https://") {
        return Err(
            "TLS to etcd is not supported yet: use http:// (on a private network or loopback)",
        );
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or("expected http://HOST:PORT")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').ok_or("no port")?;
    if host.is_empty() || host.contains('/') || host.contains('@') {
        return Err("expected http://HOST:PORT");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err("the port must be 1 to 65535"),
    }
}

/// A digest of what must be the same on every instance of a fleet: the monitors (without
/// their probe `source`), pools, services, directors (without their `listen`) and GeoIP
/// settings as written, and each zone's origin and SOA (its serial). Instance-specific
/// settings (`[dns]`, `[http]`, `[health]`, `[fleet]`, `[dnstap]`) are left out.
pub(super) fn config_digest(src: &Source, zones: &Zones) -> String {
    let mut text = String::new();
    if let Ok(mut table) = src.text.parse::<toml::Table>() {
        for key in ["dns", "http", "health", "fleet", "dnstap"] {
            table.remove(key);
        }
        if let Some(toml::Value::Table(monitors)) = table.get_mut("monitors") {
            for (_, monitor) in monitors.iter_mut() {
                if let toml::Value::Table(m) = monitor {
                    m.remove("source");
                }
            }
        }
        if let Some(toml::Value::Array(directors)) = table.get_mut("directors") {
            for director in directors.iter_mut() {
                if let toml::Value::Table(d) = director {
                    d.remove("listen");
                }
            }
        }
        text = table.to_string();
    }
    for zone in zones.iter() {
        text.push_str(&format!("\n{} {}", zone.origin, zone.negative_soa()));
    }
    format!("{:016x}", crate::hash::stable_hash(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn endpoints_need_scheme_host_and_port() {
        assert!(endpoint("http://127.0.0.1:2379").is_ok());
        assert!(endpoint("http://etcd.example:2379/").is_ok());
        assert!(endpoint("https://etcd.example:2379").is_err());
        assert!(endpoint("127.0.0.1:2379").is_err());
        assert!(endpoint("http://127.0.0.1").is_err());
        assert!(endpoint("http://:2379").is_err());
        assert!(endpoint("http://h:0").is_err());
        assert!(endpoint("http://h:x").is_err());
        assert!(endpoint("http://h/p:1").is_err());
    }
}
