//! TLS for probes: a fresh full handshake every time, the verifier that accepts or rejects
//! without a CA, and the reqwest clients built on them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::ProbeSetupError;

/// A reqwest client for plain-HTTP calls to Meridian's own API (the `meridian admin` command).
/// It is given a TLS configuration with no trusted roots because the client crate needs one;
/// HTTPS through it fails.
pub fn plain_http_client() -> Result<reqwest::Client, ProbeSetupError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(ProbeSetupError::Tls)?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(ProbeSetupError::Client)
}

/// A client TLS configuration for probes: HTTP/1.1 only, and no session resumption, so every
/// probe does a full handshake and sees the certificate the server has now.
pub(super) fn tls_config(
    provider: &Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<ClientConfig, ProbeSetupError> {
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(ProbeSetupError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// A reqwest client for probes; `resolve` pins a host name to the target address, `source`
/// is the address to send from.
pub(super) fn client(
    tls: &ClientConfig,
    resolve: Option<(&str, SocketAddr)>,
    source: Option<IpAddr>,
) -> Result<reqwest::Client, ProbeSetupError> {
    let mut builder = reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .user_agent(concat!("meridian-health/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .local_address(source);
    if let Some((host, addr)) = resolve {
        builder = builder.resolve(host, addr);
    }
    builder.build().map_err(ProbeSetupError::Client)
}

/// Certificate verification with a fixed answer: accept anything (`verify_tls = false`), or
/// reject everything as an unknown issuer (no CA certificates to trust). Handshake signatures
/// are still checked, so the server does hold the key of the certificate it shows.
#[derive(Debug)]
pub(super) struct FixedVerdict {
    pub(super) accept: bool,
    pub(super) algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for FixedVerdict {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.accept {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
