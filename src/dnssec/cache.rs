//! The signature cache: to-be-signed bytes (RRSIG RDATA without the signature, then the
//! canonical RRset: owner, type, class, original TTL, RDATA; RFC 4034 §3.1.8.1) → signature.
//! Keyed on exactly what is signed, so two different RRsets never share a signature and a
//! changed answer (zone data, health, TTL) is a different key; the validity window is in the
//! key, so a signature is never served after it expires. Bounded, sharded and concurrent
//! (quick_cache's CLOCK-Pro): entries age out one by one, never all at once, and signing
//! happens outside its locks. Beside it, the RRSIG records the fast path copies: encoded once
//! per answer RRset and validity bucket, with the expiration they carry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An RRSIG record as an answer copies it (owner: a pointer to the question name), and the
/// expiration (serial arithmetic, RFC 4034 §3.1.5) of the signature it holds.
#[derive(Debug)]
pub struct EncodedSig {
    /// The signature's expiration, Unix seconds modulo 2^32.
    pub expiration: u32,
    /// Owner, type, class, TTL, RDLENGTH and RDATA.
    pub record: Box<[u8]>,
}

impl EncodedSig {
    /// True while the signature has not expired at `now` (Unix seconds).
    pub fn valid_at(&self, now: u64) -> bool {
        (self.expiration.wrapping_sub(now as u32) as i32) > 0
    }
}

/// A bounded, concurrent map from to-be-signed bytes to signatures, with hit counts, and the
/// encoded RRSIG records of the answers served from them.
pub struct SignatureCache {
    map: quick_cache::sync::Cache<Box<[u8]>, Arc<[u8]>>,
    encoded: quick_cache::sync::Cache<Box<[u8]>, Arc<EncodedSig>>,
    hits: AtomicU64,
    lookups: AtomicU64,
}

impl SignatureCache {
    /// A cache holding about `entries` signatures.
    pub fn new(entries: usize) -> SignatureCache {
        SignatureCache {
            map: quick_cache::sync::Cache::new(entries),
            encoded: quick_cache::sync::Cache::new(entries),
            hits: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
        }
    }

    /// The signature over `tbs`, if cached.
    pub fn get(&self, tbs: &[u8]) -> Option<Arc<[u8]>> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let found = self.map.get(tbs);
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Keeps `sig` as the signature over `tbs`.
    pub fn insert(&self, tbs: &[u8], sig: Arc<[u8]>) {
        self.map.insert(tbs.into(), sig);
    }

    /// The encoded RRSIG record kept under `key` (an answer RRset and its validity bucket), if
    /// its signature is still valid at `now`; a hit counts as a signature cache hit.
    pub fn get_encoded(&self, key: &[u8], now: u64) -> Option<Arc<EncodedSig>> {
        let found = self.encoded.get(key).filter(|e| e.valid_at(now))?;
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(found)
    }

    /// Keeps `sig` under `key`.
    pub fn insert_encoded(&self, key: &[u8], sig: Arc<EncodedSig>) {
        self.encoded.insert(key.into(), sig);
    }

    /// Signatures held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// Lookups that found a signature.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// All lookups.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }
}
