//! DNSSEC online signing (RFC 4033-4035): one combined signing key per signed zone, the
//! records that publish it (DNSKEY, CDS, CDNSKEY, RFC 7344/8078), and RRSIGs made as answers
//! are given, because Meridian's answers differ per client and per health state and cannot be
//! signed ahead of time. A signature cache keyed on exactly what is signed makes the steady
//! state cost a hash lookup. Pure: the time is a parameter; the cryptography is hickory's.

mod cache;
pub mod keys;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::rdata::{CDNSKEY, CDS, DNSKEY, DNSSECRData, DS, RRSIG};
use hickory_proto::dnssec::{Algorithm, DigestType, PublicKey, SigningKey, TBS};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, SerialNumber};

pub use cache::{EncodedSig, SignatureCache};
pub use keys::{KeyError, generate, load_key, pem_encode};

/// Inception is backdated this much, for resolvers whose clocks are behind (RFC 4035 §5.3.1).
pub const INCEPTION_SKEW: u32 = 3600;

/// TTL of the DNSKEY, CDS and CDNSKEY RRsets.
pub const KEY_TTL: u32 = 3600;

/// NXNAME (RFC 9824 §2): the meta-type that marks a compact denial of a name.
pub const NXNAME: RecordType = RecordType::Unknown(128);

/// Signatures kept per zone; each entry is an RRset's to-be-signed bytes and its signature.
pub const CACHE_ENTRIES: usize = 100_000;

/// The signer of one zone: its key, the records that publish it, the signature cache and what
/// it counted.
pub struct Signer {
    origin: Name,
    key: Box<dyn SigningKey>,
    dnskey: DNSKEY,
    key_tag: u16,
    ds: DS,
    lifetime: u32,
    cache: Arc<SignatureCache>,
    signed: AtomicU64,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("origin", &self.origin)
            .field("key_tag", &self.key_tag)
            .field("algorithm", &self.algorithm())
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer for `origin` with `key` (a CSK: zone key and secure entry point flags) whose
    /// signatures are valid for `lifetime` seconds.
    pub fn new(origin: Name, key: Box<dyn SigningKey>, lifetime: u32) -> Result<Signer, KeyError> {
        let public = key.to_public_key().map_err(|e| KeyError(e.to_string()))?;
        // Flags 257: zone key + secure entry point (RFC 4034 §2.1.1), one key for everything.
        let dnskey = DNSKEY::with_flags(257, public);
        let key_tag = dnskey
            .calculate_key_tag()
            .map_err(|e| KeyError(e.to_string()))?;
        let digest = dnskey
            .to_digest(&origin, DigestType::SHA256)
            .map_err(|e| KeyError(e.to_string()))?;
        let ds = DS::new(
            key_tag,
            key.algorithm(),
            DigestType::SHA256,
            digest.as_ref().to_vec(),
        );
        Ok(Signer {
            origin,
            key,
            dnskey,
            key_tag,
            ds,
            lifetime: lifetime.max(4),
            cache: Arc::new(SignatureCache::new(CACHE_ENTRIES)),
            signed: AtomicU64::new(0),
        })
    }

    /// Keeps `previous`'s signature cache when it signed with the same key, so a reload does not
    /// make every answer miss at once.
    pub fn adopt_cache(&mut self, previous: &Signer) {
        if previous.dnskey == self.dnskey
            && previous.origin == self.origin
            && previous.lifetime == self.lifetime
        {
            self.cache = Arc::clone(&previous.cache);
        }
    }

    /// The zone this key signs.
    pub fn origin(&self) -> &Name {
        &self.origin
    }

    /// The key's algorithm (13 or 15).
    pub fn algorithm(&self) -> Algorithm {
        self.key.algorithm()
    }

    /// The key tag (RFC 4034 appendix B).
    pub fn key_tag(&self) -> u16 {
        self.key_tag
    }

    /// Signature validity in seconds.
    pub fn lifetime(&self) -> u32 {
        self.lifetime
    }

    /// The DNSKEY RDATA.
    pub fn dnskey(&self) -> &DNSKEY {
        &self.dnskey
    }

    /// The DS (SHA-256) the parent publishes.
    pub fn ds(&self) -> &DS {
        &self.ds
    }

    /// The signature cache.
    pub fn cache(&self) -> &SignatureCache {
        &self.cache
    }

    /// Signatures made (cache misses that signed).
    pub fn signatures_made(&self) -> u64 {
        self.signed.load(Ordering::Relaxed)
    }

    /// The DNSKEY record (for the zone) and the DS record (for the parent) in master-file
    /// form, one per line.
    pub fn presentation(&self) -> String {
        let dnskey = Record::from_rdata(
            self.origin.clone(),
            KEY_TTL,
            RData::DNSSEC(DNSSECRData::DNSKEY(self.dnskey.clone())),
        );
        let ds = Record::from_rdata(
            self.origin.clone(),
            KEY_TTL,
            RData::DNSSEC(DNSSECRData::DS(self.ds.clone())),
        );
        format!("{dnskey}\n{ds}\n")
    }

    /// The DS record's RDATA in presentation form (`tag alg 2 hex`).
    pub fn ds_text(&self) -> String {
        self.ds.to_string()
    }

    /// The DNSKEY, CDS or CDNSKEY RRset at the apex (`owner`), if `rtype` is one of them.
    pub fn key_records(&self, owner: &Name, rtype: RecordType) -> Option<Vec<Record>> {
        let data = match rtype {
            RecordType::DNSKEY => DNSSECRData::DNSKEY(self.dnskey.clone()),
            RecordType::CDS => DNSSECRData::CDS(CDS::new(
                self.ds.key_tag(),
                Some(self.ds.algorithm()),
                self.ds.digest_type(),
                self.ds.digest().to_vec(),
            )),
            RecordType::CDNSKEY => DNSSECRData::CDNSKEY(CDNSKEY::with_flags(
                self.dnskey.flags(),
                Some(self.algorithm()),
                self.dnskey.public_key().public_bytes().to_vec(),
            )),
            _ => return None,
        };
        Some(vec![Record::from_rdata(
            owner.clone(),
            KEY_TTL,
            RData::DNSSEC(data),
        )])
    }

    /// The validity window of signatures made at `now` (Unix seconds): inception and expiration
    /// in fixed buckets of a quarter lifetime, so an RRset is signed once per bucket and every
    /// signature served has at least three quarters of its lifetime left.
    pub fn validity(&self, now: u64) -> (u32, u32) {
        let bucket = u64::from(self.lifetime / 4);
        let start = now - now % bucket;
        // Serial arithmetic (RFC 4034 §3.1.5): the low 32 bits are what goes on the wire.
        let inception = start.wrapping_sub(u64::from(INCEPTION_SKEW)) as u32;
        let expiration = start.wrapping_add(u64::from(self.lifetime)) as u32;
        (inception, expiration)
    }

    /// The RRSIG over `rrset` (records of one owner, type and class, owned as they are served)
    /// at `now`: from the cache when this exact RRset was signed in this bucket, else signed now
    /// and cached. `None` when the records cannot be encoded or signing fails.
    pub fn sign(&self, rrset: &[Record], now: u64) -> Option<Record> {
        let first = rrset.first()?;
        let (inception, expiration) = self.validity(now);
        let input = SigInput {
            type_covered: first.record_type(),
            algorithm: self.algorithm(),
            num_labels: first.name.num_labels(),
            original_ttl: first.ttl,
            sig_expiration: SerialNumber::new(expiration),
            sig_inception: SerialNumber::new(inception),
            key_tag: self.key_tag,
            signer_name: self.origin.clone(),
        };
        let tbs = TBS::from_input(&first.name, DNSClass::IN, &input, rrset.iter()).ok()?;
        let sig = match self.cache.get(tbs.as_ref()) {
            Some(sig) => sig,
            None => {
                let sig: Arc<[u8]> = self.key.sign(&tbs).ok()?.into();
                self.signed.fetch_add(1, Ordering::Relaxed);
                self.cache.insert(tbs.as_ref(), Arc::clone(&sig));
                sig
            }
        };
        let rrsig = RRSIG::from_sig(input, sig.to_vec());
        let mut record = Record::from_rdata(
            first.name.clone(),
            first.ttl,
            RData::DNSSEC(DNSSECRData::RRSIG(rrsig)),
        );
        record.dns_class = DNSClass::IN;
        Some(record)
    }
}

#[cfg(test)]
mod tests;
