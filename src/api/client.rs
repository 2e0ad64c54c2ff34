//! The client side of the API for `meridian admin` and `meridian explain`: they read the same
//! config as the server, so over HTTPS they trust what that config names, not the system's
//! certificate authorities: the configured certificate itself, or one that chains to a
//! certificate of the configured chain (the server has not reloaded a renewal yet).

use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::model::HttpSettings;

/// A client for the API `http` describes and the base URL to call it on (`https://addr` with a
/// certificate, `http://addr` without).
pub fn client(http: &HttpSettings) -> Result<(reqwest::Client, String), String> {
    let base = format!("{}://{}", http.scheme(), http.listen);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let tls = match &http.tls {
        None => builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        Some(id) => {
            let mut roots = rustls::RootCertStore::empty();
            let (_added, _ignored) = roots.add_parsable_certificates(id.key.cert.iter().cloned());
            let chain =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("{}: {e}", id.cert_path.display()))?;
            let verifier = Configured {
                leaf: id.leaf().clone(),
                chain,
                provider,
            };
            let mut tls = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth();
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            tls
        }
    };
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    Ok((client, base))
}

/// Accepts the configured leaf certificate, or one that chains to a certificate of the
/// configured chain whatever name it carries (the client dials the address in its own config,
/// so the name is not what identifies the server).
#[derive(Debug)]
struct Configured {
    leaf: CertificateDer<'static>,
    chain: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Configured {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            return Ok(ServerCertVerified::assertion());
        }
        // The chain is checked before the name: a name error means the chain verified.
        match self
            .chain
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(v) => Ok(v),
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            Err(Error::InvalidCertificate(e)) => Err(Error::General(format!(
                "the server presents a certificate other than http.tls_cert's, and not issued by it ({e:?}); renewed on disk but not reloaded yet? send the server SIGHUP"
            ))),
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
