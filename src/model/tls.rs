//! The HTTP listener's certificate and key (`[http] tls_cert`, `tls_key`), read and checked
//! when the config is loaded, so a renewed certificate reaches the listener with the snapshot a
//! reload publishes and a bad one is refused like any other bad config.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate chain and its private key, ready for the TLS handshake.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The PEM certificate chain, leaf first, as configured (resolved against the config file).
    pub cert_path: PathBuf,
    /// The PEM private key, as configured.
    pub key_path: PathBuf,
    /// The chain and signing key the handshake presents.
    pub key: Arc<CertifiedKey>,
}

impl TlsIdentity {
    /// Reads `cert_path` (PEM, one or more certificates, leaf first) and `key_path` (a PEM
    /// PKCS#8, PKCS#1 or SEC1 key) and checks that the key belongs to the leaf. The error
    /// names which file is wrong and why.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<TlsIdentity, TlsError> {
        let chain = read_chain(cert_path).map_err(TlsError::Cert)?;
        let der = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
            TlsError::Key(format!(
                "{}: {}",
                key_path.display(),
                pem_reason(&e, "PRIVATE KEY")
            ))
        })?;
        let provider = rustls::crypto::ring::default_provider();
        let signing = provider
            .key_provider
            .load_private_key(der)
            .map_err(|e| TlsError::Key(format!("{}: unsupported key: {e}", key_path.display())))?;
        let key = CertifiedKey::new(chain, signing);
        key.keys_match().map_err(|_| {
            TlsError::Key(format!(
                "{}: this key does not belong to the first certificate of {}",
                key_path.display(),
                cert_path.display()
            ))
        })?;
        Ok(TlsIdentity {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            key: Arc::new(key),
        })
    }

    /// The leaf certificate (DER), which clients that trust exactly this certificate pin.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.key.cert[0]
    }
}

/// Why a certificate or key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// `tls_cert` is unreadable, empty or not PEM certificates.
    #[error("{0}")]
    Cert(String),
    /// `tls_key` is unreadable, not a PEM key, of an unsupported type or not the leaf's.
    #[error("{0}")]
    Key(String),
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {}", path.display(), pem_reason(&e, "CERTIFICATE")))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {}", path.display(), pem_reason(&e, "CERTIFICATE")))?;
    if chain.is_empty() {
        return Err(format!(
            "{}: no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(chain)
}

fn pem_reason(e: &rustls_pki_types::pem::Error, what: &str) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::Io(e) => format!("cannot read it: {e}"),
        Error::NoItemsFound => format!("no PEM {what} in it"),
        other => format!("not valid PEM: {other:?}"),
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

/// Same files and same certificate chain: a renewed certificate at the same path differs.
impl PartialEq for TlsIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.cert_path == other.cert_path
            && self.key_path == other.key_path
            && self.key.cert == other.key.cert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn loads_a_matching_pair_and_refuses_the_wrong_key_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair("localhost");
        let (_, other_key) = pair("localhost");
        let c = write(dir.path(), "c.pem", &cert);
        let k = write(dir.path(), "k.pem", &key);
        let id = TlsIdentity::load(&c, &k).unwrap();
        assert_eq!(id.key.cert.len(), 1);
        let wrong = write(dir.path(), "wrong.pem", &other_key);
        let e = TlsIdentity::load(&c, &wrong).unwrap_err().to_string();
        assert!(
            e.contains("wrong.pem") && e.contains("does not belong"),
            "{e}"
        );
    }

    #[test]
    fn refuses_missing_files_and_non_pem_content() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair("localhost");
        let c = write(dir.path(), "c.pem", &cert);
        let k = write(dir.path(), "k.pem", &key);
        let missing = dir.path().join("absent.pem");
        let e = TlsIdentity::load(&missing, &k).unwrap_err().to_string();
        assert!(e.contains("absent.pem") && e.contains("cannot read"), "{e}");
        let junk = write(dir.path(), "junk.pem", "hello\n");
        let e = TlsIdentity::load(&junk, &k).unwrap_err().to_string();
        assert!(e.contains("junk.pem") && e.contains("CERTIFICATE"), "{e}");
        let e = TlsIdentity::load(&c, &junk).unwrap_err().to_string();
        assert!(e.contains("junk.pem") && e.contains("PRIVATE KEY"), "{e}");
        // The certificate given as the key, and the key given as the certificate.
        assert!(TlsIdentity::load(&k, &c).is_err());
    }

    #[test]
    fn a_renewed_certificate_at_the_same_path_is_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair("localhost");
        let c = write(dir.path(), "c.pem", &cert);
        let k = write(dir.path(), "k.pem", &key);
        let a = TlsIdentity::load(&c, &k).unwrap();
        assert_eq!(a, TlsIdentity::load(&c, &k).unwrap());
        let (cert, key) = pair("localhost");
        write(dir.path(), "c.pem", &cert);
        write(dir.path(), "k.pem", &key);
        assert_ne!(a, TlsIdentity::load(&c, &k).unwrap());
    }
}
