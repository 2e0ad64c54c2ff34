//! The signer and its cache, with the time driven by hand.

use std::net::Ipv4Addr;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::dnssec::rdata::sig::SigInput;
use hickory_proto::dnssec::{Algorithm, PublicKey, TBS};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{DNSClass, Name, RData, Record};

use super::*;

const NOW: u64 = 1_764_720_000;
const DAY: u32 = 86_400;

fn signer(algorithm: Algorithm) -> Signer {
    let der = generate(algorithm).unwrap();
    let key = load_key(pem_encode(&der).as_bytes()).unwrap();
    Signer::new(Name::from_ascii("gslb.test.").unwrap(), key, 2 * DAY).unwrap()
}

fn rrset(name: &str, ttl: u32, addrs: &[[u8; 4]]) -> Vec<Record> {
    addrs
        .iter()
        .map(|a| {
            Record::from_rdata(
                Name::from_ascii(name).unwrap(),
                ttl,
                RData::A(A(Ipv4Addr::from(*a))),
            )
        })
        .collect()
}

fn parts(sig: &Record) -> (SigInput, Vec<u8>) {
    let RData::DNSSEC(DNSSECRData::RRSIG(rrsig)) = &sig.data else {
        panic!("not an RRSIG: {sig:?}")
    };
    (rrsig.input().clone(), rrsig.sig().to_vec())
}

/// The signature verifies against the DNSKEY, as a validator checks it.
fn verifies(s: &Signer, rrset: &[Record], sig: &Record) -> bool {
    let (input, signature) = parts(sig);
    let tbs = TBS::from_input(&rrset[0].name, DNSClass::IN, &input, rrset.iter()).unwrap();
    s.dnskey()
        .public_key()
        .verify(tbs.as_ref(), &signature)
        .is_ok()
}

#[test]
fn signatures_verify_with_both_algorithms() {
    for algorithm in [Algorithm::ECDSAP256SHA256, Algorithm::ED25519] {
        let s = signer(algorithm);
        let set = rrset("www.gslb.test.", 30, &[[192, 0, 2, 10], [192, 0, 2, 11]]);
        let sig = s.sign(&set, NOW).unwrap();
        assert!(verifies(&s, &set, &sig), "{algorithm}");
        assert_eq!(s.algorithm(), algorithm);
    }
}

#[test]
fn two_different_rrsets_never_share_a_signature() {
    let s = signer(Algorithm::ECDSAP256SHA256);
    let one = rrset("www.gslb.test.", 30, &[[192, 0, 2, 10]]);
    let other_data = rrset("www.gslb.test.", 30, &[[192, 0, 2, 11]]);
    let other_owner = rrset("web.gslb.test.", 30, &[[192, 0, 2, 10]]);
    let other_ttl = rrset("www.gslb.test.", 20, &[[192, 0, 2, 10]]);
    let sig = parts(&s.sign(&one, NOW).unwrap()).1;
    for other in [&other_data, &other_owner, &other_ttl] {
        let theirs = s.sign(other, NOW).unwrap();
        assert_ne!(parts(&theirs).1, sig);
        assert!(verifies(&s, other, &theirs));
    }
    // Different data under the same owner and TTL: one's signature never validates the other.
    assert!(!verifies(&s, &one, &s.sign(&other_data, NOW).unwrap()));
    assert_eq!(s.signatures_made(), 4);
}

#[test]
fn an_rrset_is_signed_once_per_bucket_and_a_health_change_signs_afresh() {
    let s = signer(Algorithm::ED25519);
    let both = rrset("www.gslb.test.", 30, &[[192, 0, 2, 10], [192, 0, 2, 11]]);
    let first = s.sign(&both, NOW).unwrap();
    let again = s.sign(&both, NOW + 60).unwrap();
    assert_eq!(parts(&first), parts(&again));
    assert_eq!((s.signatures_made(), s.cache().hits()), (1, 1));
    // A member went down: another RRset, another signature, never the cached one.
    let one = rrset("www.gslb.test.", 30, &[[192, 0, 2, 11]]);
    let after = s.sign(&one, NOW + 61).unwrap();
    assert_ne!(parts(&after).1, parts(&first).1);
    assert!(verifies(&s, &one, &after));
    assert_eq!(s.signatures_made(), 2);
    // Record order does not matter: the canonical RRset is what is signed.
    let reversed: Vec<Record> = both.iter().rev().cloned().collect();
    assert_eq!(parts(&s.sign(&reversed, NOW + 62).unwrap()), parts(&first));
}

#[test]
fn no_signature_is_served_outside_its_validity() {
    let s = signer(Algorithm::ECDSAP256SHA256);
    let set = rrset("static.gslb.test.", 300, &[[192, 0, 2, 80]]);
    let bucket = u64::from(2 * DAY / 4);
    // Every minute over five days: each signature served is valid now, with at least three
    // quarters of its lifetime left, inception backdated by the clock skew allowance.
    for minute in 0..5 * 24 * 60 {
        let now = NOW + minute * 60;
        let (input, _) = parts(&s.sign(&set, now).unwrap());
        let (inception, expiration) = (
            u64::from(input.sig_inception.get()),
            u64::from(input.sig_expiration.get()),
        );
        assert!(
            inception + u64::from(INCEPTION_SKEW) <= now,
            "minute {minute}"
        );
        assert!(expiration >= now + 3 * bucket, "minute {minute}");
        assert!(expiration - inception <= u64::from(2 * DAY + INCEPTION_SKEW));
    }
    assert_eq!(
        s.signatures_made(),
        5 * 24 * 60 * 60 / bucket,
        "one signature per bucket"
    );
}

#[test]
fn keys_are_refused_when_they_are_not_p256_or_ed25519() {
    assert!(load_key(b"not a key").is_err());
    assert!(load_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err());
    let p384 =
        hickory_proto::dnssec::crypto::EcdsaSigningKey::generate_pkcs8(Algorithm::ECDSAP384SHA384)
            .unwrap();
    let err = load_key(p384.secret_pkcs8_der()).err().unwrap();
    assert!(err.0.contains("ECDSA P-256"), "{err}");
    // DER is read as well as PEM.
    let der = generate(Algorithm::ED25519).unwrap();
    assert_eq!(load_key(&der).unwrap().algorithm(), Algorithm::ED25519);
}

#[test]
fn the_ds_matches_the_dnskey() {
    let s = signer(Algorithm::ECDSAP256SHA256);
    assert!(s.ds().covers(s.origin(), s.dnskey()).unwrap());
    assert_eq!(s.ds().key_tag(), s.key_tag());
    let text = s.presentation();
    assert!(text.contains("IN DNSKEY 257 3 13 "), "{text}");
    assert!(
        text.contains(&format!("IN DS {} 13 2 ", s.key_tag())),
        "{text}"
    );
}

#[test]
fn a_reload_with_the_same_key_keeps_the_cache() {
    let der = generate(Algorithm::ED25519).unwrap();
    let origin = Name::from_ascii("gslb.test.").unwrap();
    let make = || Signer::new(origin.clone(), load_key(&der).unwrap(), 2 * DAY).unwrap();
    let old = make();
    let set = rrset("static.gslb.test.", 300, &[[192, 0, 2, 80]]);
    old.sign(&set, NOW).unwrap();
    let mut new = make();
    new.adopt_cache(&old);
    new.sign(&set, NOW).unwrap();
    assert_eq!(new.signatures_made(), 0);
    let mut other = signer(Algorithm::ED25519);
    other.adopt_cache(&old);
    assert!(other.cache().is_empty());
}
