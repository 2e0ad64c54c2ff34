//! Signing keys on disk: PKCS#8 in PEM (`-----BEGIN PRIVATE KEY-----`, what `meridian dnssec
//! keygen` writes; DER is read too), ECDSA P-256/SHA-256 (algorithm 13) or Ed25519
//! (algorithm 15), told apart by trying each.

use hickory_proto::dnssec::crypto::{EcdsaSigningKey, Ed25519SigningKey};
use hickory_proto::dnssec::{Algorithm, SigningKey};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

/// Why a key cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// Reads a key file's bytes (PEM or DER PKCS#8) as a signing key of algorithm 13 or 15.
pub fn load_key(bytes: &[u8]) -> Result<Box<dyn SigningKey>, KeyError> {
    let der = if bytes.starts_with(b"-----") || bytes.first().is_some_and(u8::is_ascii_whitespace) {
        PrivatePkcs8KeyDer::from_pem_slice(bytes)
            .map_err(|e| KeyError(format!("not a PKCS#8 PEM private key ({e})")))?
    } else {
        PrivatePkcs8KeyDer::from(bytes.to_vec())
    };
    if let Ok(k) = EcdsaSigningKey::from_pkcs8(&der, Algorithm::ECDSAP256SHA256) {
        return Ok(Box::new(k));
    }
    if let Ok(k) = Ed25519SigningKey::from_pkcs8(&der) {
        return Ok(Box::new(k));
    }
    Err(KeyError(
        "not an ECDSA P-256 (algorithm 13) or Ed25519 (algorithm 15) PKCS#8 private key".into(),
    ))
}

/// A new PKCS#8 key (DER) of `algorithm` (13 or 15).
pub fn generate(algorithm: Algorithm) -> Result<Vec<u8>, KeyError> {
    let der = match algorithm {
        Algorithm::ECDSAP256SHA256 => EcdsaSigningKey::generate_pkcs8(algorithm),
        Algorithm::ED25519 => Ed25519SigningKey::generate_pkcs8(),
        other => return Err(KeyError(format!("algorithm {other} is not supported"))),
    }
    .map_err(|e| KeyError(e.to_string()))?;
    Ok(der.secret_pkcs8_der().to_vec())
}

/// PKCS#8 DER as PEM (RFC 7468 §10): base64 in lines of 64 characters.
pub fn pem_encode(der: &[u8]) -> String {
    let b64 = data_encoding::BASE64.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}
