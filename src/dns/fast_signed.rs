//! Signed answers on the fast path: the RRSIG record of a static RRset or of a service's chosen
//! members, as encoded bytes the fast path appends to the answer. Each is encoded once per
//! answer RRset and validity bucket and kept beside the zone's signature cache with the
//! expiration it carries; a miss signs (or takes the cached signature) through [`Signer::sign`],
//! exactly what the general path does, so both serve the same RRSIG.

use std::sync::Arc;

use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use hickory_proto::serialize::binary::BinEncodable;

use super::renamed;
use crate::dnssec::{EncodedSig, Signer};
use crate::model::Pool;
use crate::select;
use crate::wire::{CLASS_IN, WireName};
use crate::zone::{OWNER_IS_QNAME, RrSet, name_from_wire};

/// Kinds of answer a key is made for, so a static RRset and a service's members never share
/// one.
const KEY_STATIC: u8 = 0;
const KEY_MEMBERS: u8 = 1;

/// The encoded RRSIG over `set` as served at `qname` at `now` (Unix seconds).
pub(super) fn static_rrsig(
    signer: &Signer,
    qname: &WireName,
    set: &RrSet,
    now: u64,
) -> Option<Arc<EncodedSig>> {
    let mut key = key_head(signer, KEY_STATIC, qname, now);
    key.extend_from_slice(set.wire());
    rrsig(signer, &key, now, || {
        set.records(&name_from_wire(qname.as_bytes()))
    })
}

/// The encoded RRSIG over the A or AAAA records of `members` of `pool` with `ttl`, as served at
/// `qname` at `now`. Keyed on the addresses in order, so any order the members are served in
/// finds the same entry (the signature covers the RRset in canonical order).
pub(super) fn members_rrsig(
    signer: &Signer,
    qname: &WireName,
    pool: &Pool,
    members: &select::Members,
    ttl: u32,
    now: u64,
) -> Option<Arc<EncodedSig>> {
    let mut addrs: Vec<[u8; 16]> = Vec::with_capacity(members.len());
    let mut v4 = true;
    for &i in members {
        match &pool.members[i].record.data {
            RData::A(a) => addrs.push(a.0.to_ipv6_mapped().octets()),
            RData::AAAA(a) => {
                v4 = false;
                addrs.push(a.0.octets());
            }
            _ => return None,
        }
    }
    addrs.sort_unstable();
    let mut key = key_head(signer, KEY_MEMBERS, qname, now);
    key.push(u8::from(v4));
    key.extend_from_slice(&ttl.to_be_bytes());
    for a in &addrs {
        key.extend_from_slice(a);
    }
    rrsig(signer, &key, now, || {
        let owner = name_from_wire(qname.as_bytes());
        members
            .iter()
            .map(|&i| {
                let mut r = renamed(&pool.members[i].record, &owner);
                r.ttl = ttl;
                r
            })
            .collect()
    })
}

/// The start of a key: its kind, the inception of `now`'s validity bucket, the owner.
fn key_head(signer: &Signer, kind: u8, qname: &WireName, now: u64) -> Vec<u8> {
    let (inception, _) = signer.validity(now);
    let mut key = Vec::with_capacity(64);
    key.push(kind);
    key.extend_from_slice(&inception.to_be_bytes());
    key.extend_from_slice(qname.as_bytes());
    key
}

/// The entry under `key`, else the RRSIG over `records()` signed (or found in the signature
/// cache) and encoded, then kept.
fn rrsig(
    signer: &Signer,
    key: &[u8],
    now: u64,
    records: impl FnOnce() -> Vec<Record>,
) -> Option<Arc<EncodedSig>> {
    let cache = signer.cache();
    if let Some(found) = cache.get_encoded(key, now) {
        return Some(found);
    }
    let sig = signer.sign(&records(), now)?;
    // What [`Signer::sign`] dated the signature with.
    let (_, expiration) = signer.validity(now);
    let rdata = sig.data.to_bytes().ok()?;
    let mut record = Vec::with_capacity(12 + rdata.len());
    record.extend_from_slice(&OWNER_IS_QNAME);
    record.extend_from_slice(&u16::from(RecordType::RRSIG).to_be_bytes());
    record.extend_from_slice(&CLASS_IN);
    record.extend_from_slice(&sig.ttl.to_be_bytes());
    record.extend_from_slice(&u16::try_from(rdata.len()).ok()?.to_be_bytes());
    record.extend_from_slice(&rdata);
    debug_assert_eq!(sig.dns_class, DNSClass::IN);
    let encoded = Arc::new(EncodedSig {
        expiration,
        record: record.into(),
    });
    cache.insert_encoded(key, Arc::clone(&encoded));
    Some(encoded)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;

    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::Name;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::dns::{ClientAddr, Request, Transport, fast};
    use crate::state::Snapshot;
    use crate::{Model, SharedState};

    const NOW: u64 = 1_764_720_000;

    fn snapshot() -> Arc<Snapshot> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{}\n\
             [dnssec.\"example.test.\"]\nkey = \"keys/example.test.pem\"\n",
            include_str!("../../tests/fixtures/every-steering.toml")
        );
        let model = Model::from_text(&fixtures.join("meridian.toml"), &text).unwrap();
        SharedState::new(model).load()
    }

    /// The fast path's reply to `name`/`qtype` with DO at `unix_time`, if it answered.
    fn fast_reply(
        snap: &Snapshot,
        name: &str,
        qtype: RecordType,
        unix_time: u64,
    ) -> Option<Message> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(true);
        m.set_edns(e);
        let packet = m.to_vec().unwrap();
        let req = Request {
            packet: &packet,
            client: ClientAddr("127.0.0.1:5300".parse::<SocketAddr>().unwrap()),
            transport: Transport::Udp,
            unix_time,
            now: tokio::time::Instant::now(),
        };
        let parsed = crate::wire::Query::parse(&packet).unwrap();
        let mut out = Vec::new();
        fast::answer(
            snap,
            &req,
            &parsed,
            &super::super::cookies::CookieReply::None,
            &mut SmallRng::seed_from_u64(1),
            &mut out,
        )?;
        Some(Message::from_vec(&out).unwrap())
    }

    /// The (inception, expiration) of the answer's RRSIG.
    fn validity(reply: &Message) -> (u32, u32) {
        let sig = reply
            .answers
            .iter()
            .find_map(|r| match &r.data {
                RData::DNSSEC(DNSSECRData::RRSIG(sig)) => Some(sig.input().clone()),
                _ => None,
            })
            .expect("an RRSIG in the answer");
        (sig.sig_inception.get(), sig.sig_expiration.get())
    }

    #[test]
    fn static_and_service_answers_are_signed_on_the_fast_path() {
        let snap = snapshot();
        let signer = snap
            .model
            .zones
            .signer_of(&Name::from_ascii("example.test.").unwrap());
        let cache = signer.unwrap().cache();
        for (name, qtype) in [
            ("static.example.test.", RecordType::A),
            ("STATIC.example.test.", RecordType::A),
            ("txt.example.test.", RecordType::TXT),
            ("example.test.", RecordType::SOA),
            ("www.example.test.", RecordType::A),
            ("sticky.example.test.", RecordType::AAAA),
        ] {
            let reply = fast_reply(&snap, name, qtype, NOW).unwrap_or_else(|| panic!("{name}"));
            assert!(
                reply.answers.iter().any(|r| r.record_type() == qtype),
                "{name}"
            );
            let hits = cache.hits();
            // Served again from the encoded record: a cache hit, the same signature.
            let again = fast_reply(&snap, name, qtype, NOW).unwrap();
            assert_eq!(cache.hits(), hits + 1, "{name}");
            assert_eq!(reply.answers, again.answers, "{name}");
        }
        // Denial of existence and the key records are the general path's.
        for (name, qtype) in [
            ("nothing.example.test.", RecordType::A),
            ("static.example.test.", RecordType::NS),
            ("example.test.", RecordType::DNSKEY),
        ] {
            assert!(
                fast_reply(&snap, name, qtype, NOW).is_none(),
                "{name} {qtype}"
            );
        }
    }

    #[test]
    fn an_encoded_signature_is_never_served_after_its_bucket() {
        let snap = snapshot();
        let name = "static.example.test.";
        let lifetime = u64::from(
            snap.model
                .zones
                .signers()
                .next()
                .map(Signer::lifetime)
                .unwrap(),
        );
        let first = validity(&fast_reply(&snap, name, RecordType::A, NOW).unwrap());
        // Every time from now to past the first signature's expiration: each answer's signature
        // is valid then, and has three quarters of its lifetime left.
        for step in 0..=10 {
            let now = NOW + step * lifetime / 8;
            let (inception, expiration) =
                validity(&fast_reply(&snap, name, RecordType::A, now).unwrap());
            assert!(u64::from(inception) <= now, "{step}");
            assert!(u64::from(expiration) >= now + lifetime * 3 / 4, "{step}");
            if now >= u64::from(first.1) {
                assert_ne!((inception, expiration), first, "{step}");
            }
        }
        // An entry kept past its expiration is not served.
        let sig = EncodedSig {
            expiration: (NOW + 10) as u32,
            record: Box::new([]),
        };
        assert!(sig.valid_at(NOW + 9) && !sig.valid_at(NOW + 10) && !sig.valid_at(NOW + 11));
    }
}
