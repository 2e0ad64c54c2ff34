//! Why a probe failed, in the words operators read in logs and on the status page, and how
//! network, TLS and HTTP errors map to those words.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use rustls::CertificateError;

/// Why a probe failed. The `Display` form is what operators read in logs and on the status
/// page, so it is short and exact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The probe did not finish within its timeout.
    #[error("timeout after {}", ShortDuration(*.0))]
    Timeout(Duration),
    /// Nothing listens on the port (TCP RST in answer to the SYN).
    #[error("connect refused")]
    ConnectRefused,
    /// The peer reset or aborted an established connection.
    #[error("connection reset")]
    ConnectionReset,
    /// The connection could not be made for another reason (unreachable network, …).
    #[error("connect failed: {0}")]
    Connect(String),
    /// The TLS handshake failed.
    #[error("tls: {0}")]
    Tls(TlsError),
    /// The server answered with a status code that does not count as up.
    #[error("http {0}")]
    Status(u16),
    /// The body did not contain the expected substring within the body limit.
    #[error("body did not contain {0:?}")]
    BodyMismatch(String),
    /// Any other HTTP-level failure (malformed answer, connection closed mid-answer, …).
    #[error("http: {0}")]
    Http(String),
    /// A TCP dialogue's answer did not meet a step's expectation (`expected "+PONG", got
    /// "-NOAUTH …"`).
    #[error("{0}")]
    Expect(String),
    /// A DNS check failed (`dns: timeout`, `dns: rcode SERVFAIL`).
    #[error("dns: {0}")]
    Dns(String),
    /// A command check failed: its first line of stderr, else how it ended (`exit 1`).
    #[error("{0}")]
    Exec(String),
    /// An agent check's reply took the member out (`down`, `maint`, …) or said nothing usable.
    #[error("agent: {0}")]
    Agent(String),
    /// A hostname member's name did not resolve to an address (`resolve: NXDOMAIN`,
    /// `resolve: no addresses`, `resolve: timeout`).
    #[error("resolve: {0}")]
    Resolve(String),
}

/// Why a TLS handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The certificate's validity period has ended.
    #[error("certificate expired")]
    CertificateExpired,
    /// The certificate's validity period has not started yet.
    #[error("certificate not valid yet")]
    CertificateNotValidYet,
    /// The certificate does not cover the name we asked for (the `host`, else the target IP).
    #[error("certificate not valid for name {0:?}")]
    NotValidForName(String),
    /// The chain does not lead to a trusted root (self-signed, private CA not configured, …).
    #[error("unknown issuer")]
    UnknownIssuer,
    /// The certificate has been revoked.
    #[error("certificate revoked")]
    CertificateRevoked,
    /// Anything else, as rustls words it (alerts, protocol errors, bad signatures).
    #[error("{0}")]
    Other(String),
}

/// Why [`NetProbe`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ProbeSetupError {
    /// An extra root certificate could not be parsed.
    #[error("root certificate {index} is not usable")]
    RootCertificate {
        /// Its position in the list given (0-based).
        index: usize,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
    /// The TLS client configuration could not be built.
    #[error("cannot set up TLS for probes")]
    Tls(#[source] rustls::Error),
    /// The certificate verifier could not be built.
    #[error("cannot set up certificate verification for probes")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client for probes")]
    Client(#[source] reqwest::Error),
}

/// Maps an I/O error of a connect to its reason.
pub(super) fn connect_error(e: &io::Error) -> ProbeError {
    io_reason(e).unwrap_or_else(|| ProbeError::Connect(e.to_string()))
}

/// The reasons an I/O error kind alone decides.
pub(super) fn io_reason(e: &io::Error) -> Option<ProbeError> {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Some(ProbeError::ConnectRefused),
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => Some(ProbeError::ConnectionReset),
        _ => None,
    }
}

/// Maps a reqwest error to its reason by walking the source chain for the error that explains
/// it: a rustls error (possibly wrapped in an `io::Error`), or an I/O error kind. `tls_name` is
/// the name the certificate was checked against.
pub(super) fn classify(err: &reqwest::Error, tls_name: &str) -> ProbeError {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return ProbeError::Tls(tls_error(tls, tls_name));
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(reason) = io_reason(io)
        {
            return reason;
        }
        current = next_source(e);
    }
    let reason = innermost(err).to_string();
    if err.is_connect() {
        ProbeError::Connect(reason)
    } else {
        ProbeError::Http(reason)
    }
}

/// The next error in the chain. `io::Error::source` skips the error it wraps (its `Display`
/// already shows it), so the wrapped error is taken explicitly: that is where rustls errors
/// hide.
pub(super) fn next_source<'a>(
    e: &'a (dyn StdError + 'static),
) -> Option<&'a (dyn StdError + 'static)> {
    if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
        return Some(inner);
    }
    e.source()
}

/// The last error of the chain: usually the most specific words.
pub(super) fn innermost<'a>(err: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
    let mut last = err;
    while let Some(next) = next_source(last) {
        last = next;
    }
    last
}

pub(super) fn tls_error(e: &rustls::Error, name: &str) -> TlsError {
    use CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(cert) => match cert {
            C::Expired | C::ExpiredContext { .. } => TlsError::CertificateExpired,
            C::NotValidYet | C::NotValidYetContext { .. } => TlsError::CertificateNotValidYet,
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                TlsError::NotValidForName(name.to_string())
            }
            C::UnknownIssuer => TlsError::UnknownIssuer,
            C::Revoked => TlsError::CertificateRevoked,
            _ => TlsError::Other(e.to_string()),
        },
        _ => TlsError::Other(e.to_string()),
    }
}

/// A duration the way operators write them: `1s`, `500ms`, `1.5s`.
struct ShortDuration(Duration);

impl fmt::Display for ShortDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d < Duration::from_millis(1) && !d.is_zero() {
            return write!(f, "{}µs", d.as_micros());
        }
        let ms = d.as_millis();
        if ms < 1000 {
            return write!(f, "{ms}ms");
        }
        let (secs, frac) = (ms / 1000, ms % 1000);
        if frac == 0 {
            return write!(f, "{secs}s");
        }
        let frac = format!("{frac:03}");
        write!(f, "{secs}.{}s", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_config() {
        let cases = [
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(2250), "2.25s"),
            (Duration::from_millis(1001), "1.001s"),
            (Duration::from_secs(90), "90s"),
            (Duration::ZERO, "0ms"),
            (Duration::from_micros(250), "250µs"),
        ];
        for (d, text) in cases {
            assert_eq!(ShortDuration(d).to_string(), text);
        }
    }

    #[test]
    fn reasons_are_short_and_exact() {
        let cases = [
            (ProbeError::Status(503), "http 503"),
            (ProbeError::ConnectRefused, "connect refused"),
            (ProbeError::ConnectionReset, "connection reset"),
            (
                ProbeError::Timeout(Duration::from_millis(1500)),
                "timeout after 1.5s",
            ),
            (
                ProbeError::Tls(TlsError::CertificateExpired),
                "tls: certificate expired",
            ),
            (
                ProbeError::Tls(TlsError::NotValidForName("x".to_string())),
                r#"tls: certificate not valid for name "x""#,
            ),
            (
                ProbeError::Tls(TlsError::UnknownIssuer),
                "tls: unknown issuer",
            ),
            (
                ProbeError::BodyMismatch("ok".to_string()),
                r#"body did not contain "ok""#,
            ),
            (
                ProbeError::Connect("Network is unreachable".to_string()),
                "connect failed: Network is unreachable",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }
}
