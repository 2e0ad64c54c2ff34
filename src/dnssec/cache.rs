//! The signature cache: to-be-signed bytes (RRSIG RDATA without the signature, then the
//! canonical RRset: owner, type, class, original TTL, RDATA; RFC 4034 §3.1.8.1) → signature.
//! Keyed on exactly what is signed, so two different RRsets never share a signature and a
//! changed answer (zone data, health, TTL) is a different key; the validity window is in the
//! key, so a signature is never served after it expires. Bounded, sharded and concurrent
//! (quick_cache's CLOCK-Pro): entries age out one by one, never all at once, and signing
//! happens outside its locks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A bounded, concurrent map from to-be-signed bytes to signatures, with hit counts.
pub struct SignatureCache {
    map: quick_cache::sync::Cache<Box<[u8]>, Arc<[u8]>>,
    hits: AtomicU64,
    lookups: AtomicU64,
}

impl SignatureCache {
    /// A cache holding about `entries` signatures.
    pub fn new(entries: usize) -> SignatureCache {
        SignatureCache {
            map: quick_cache::sync::Cache::new(entries),
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
