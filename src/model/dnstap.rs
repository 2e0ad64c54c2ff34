//! `[dnstap]` after validation: the reader's socket, what is logged, and the identity and
//! version every message carries. The sink itself (queue, writer thread) is the dnstap stage's.

use std::path::{Path, PathBuf};

use super::Builder;
use crate::config::{Config, ConfigError, DnstapConfig};

/// `[dnstap]` after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnstapSettings {
    /// The reader's Unix socket (relative paths resolved against the config file's directory).
    pub socket: PathBuf,
    /// Log queries (`AUTH_QUERY`).
    pub log_queries: bool,
    /// Log responses (`AUTH_RESPONSE`).
    pub log_responses: bool,
    /// The `identity` field; empty: not sent.
    pub identity: String,
    /// The `version` field; empty: not sent.
    pub version: String,
}

/// Longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Longest `identity` or `version`: each is repeated in every message.
const MAX_LABEL: usize = 255;

impl Builder<'_> {
    pub(super) fn dnstap(&self, config: &Config) -> Result<Option<DnstapSettings>, ConfigError> {
        let Some(d) = &config.dnstap else {
            return Ok(None);
        };
        let cfg: &DnstapConfig = d.get_ref();
        let text = cfg.socket.get_ref();
        if text.is_empty() {
            return self.err(cfg.socket.span(), "dnstap.socket must not be empty");
        }
        if text.contains('\0') {
            return self.err(cfg.socket.span(), "dnstap.socket must not contain NUL");
        }
        let base = self.src.path.parent().unwrap_or(Path::new("."));
        let socket = base.join(text);
        let len = socket.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            return self.err(
                cfg.socket.span(),
                format!(
                    "dnstap.socket: {} is {len} bytes long; a Unix socket path holds at most {MAX_SOCKET_PATH}",
                    socket.display()
                ),
            );
        }
        let flag = |v: &Option<toml::Spanned<bool>>| v.as_ref().is_none_or(|b| *b.get_ref());
        let (log_queries, log_responses) = (flag(&cfg.log_queries), flag(&cfg.log_responses));
        if !log_queries && !log_responses {
            return self.err(
                d.span(),
                "dnstap: log_queries and log_responses are both false, so nothing would be logged (remove [dnstap] to turn it off)",
            );
        }
        let label = |key: &str, v: &Option<toml::Spanned<String>>, default: String| match v {
            None => Ok(default),
            Some(v) if v.get_ref().len() > MAX_LABEL => self.err(
                v.span(),
                format!("dnstap.{key} must be at most {MAX_LABEL} bytes long"),
            ),
            Some(v) => Ok(v.get_ref().clone()),
        };
        Ok(Some(DnstapSettings {
            socket,
            log_queries,
            log_responses,
            identity: label("identity", &cfg.identity, host_name())?,
            version: label("version", &cfg.version, default_version())?,
        }))
    }
}

/// The default `identity`: the host name, as `hostname` prints it.
fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

/// The default `version`: `meridian` and this build's version.
pub fn default_version() -> String {
    format!("meridian {}", env!("CARGO_PKG_VERSION"))
}
