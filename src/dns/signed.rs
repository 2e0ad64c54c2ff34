//! DNSSEC for answers of a signed zone to queries with DO set (RFC 4035 §3.1): after the
//! general path has built the answer, denial of existence is added as compact answers
//! (RFC 9824: an NSEC at the name itself, next name `\000.name`, so no other name is ever
//! revealed or needs to be signed ahead of time), referrals to unsigned children get the NSEC
//! proving there is no DS, and every authoritative RRset in the answer and authority sections
//! gets its RRSIG from the zone's [`Signer`] (cached per exact RRset).

use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::dnssec::{NXNAME, Signer};
use crate::zone::{Found, Node, Zone};

/// Adds denial proofs and RRSIGs to `resp`, the answer to `qname`/`qtype` from `zone`, at `now`
/// (Unix seconds).
pub(super) fn finish(
    zone: &Zone,
    signer: &Signer,
    qname: &Name,
    qtype: RecordType,
    resp: &mut Message,
    now: u64,
) {
    let rcode = resp.metadata.response_code;
    if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
        return;
    }
    let last = chain_end(resp, qname);
    let ttl = zone.negative_soa().ttl;
    let referral_cut = resp
        .authorities
        .iter()
        .find(|r| r.record_type() == RecordType::NS)
        .map(|r| r.name.clone());
    if rcode == ResponseCode::NXDomain {
        // RFC 9824 §3.1: the name "exists" with nothing but NSEC, RRSIG and NXNAME; the rcode is
        // NOERROR (the NXNAME bit tells resolvers that understand it).
        resp.metadata.response_code = ResponseCode::NoError;
        let types = [RecordType::RRSIG, RecordType::NSEC, NXNAME];
        if let Some(nsec) = nsec_at(&last, ttl, types) {
            resp.add_authority(nsec);
        }
    } else if let Some(cut) = referral_cut {
        // RFC 4035 §3.1.4: a secure delegation carries its DS RRset, an insecure one the NSEC
        // proving there is none.
        let ds = zone
            .node(&cut)
            .and_then(|n| n.rrset(RecordType::DS))
            .map(|set| set.records(&cut));
        match ds {
            Some(ds) => {
                for r in ds {
                    resp.add_authority(r);
                }
            }
            None => {
                let types = [RecordType::NS, RecordType::RRSIG, RecordType::NSEC];
                if let Some(nsec) = nsec_at(&cut, ttl, types) {
                    resp.add_authority(nsec);
                }
            }
        }
    } else if is_nodata(resp, &last, qtype) {
        let node = match zone.find(&last, qtype) {
            Found::Exact(node) | Found::Wildcard(node) => Some(node),
            _ => None,
        };
        let types = node_types(zone, node, &last, qtype);
        if let Some(nsec) = nsec_at(&last, ttl, types) {
            resp.add_authority(nsec);
        }
    }
    let answers = sign_section(signer, &resp.answers, now, false);
    resp.answers.extend(answers);
    let authorities = sign_section(signer, &resp.authorities, now, true);
    resp.authorities.extend(authorities);
}

/// The name the answer ends at: `qname`, or the target of the last in-zone CNAME followed.
fn chain_end(resp: &Message, qname: &Name) -> Name {
    let mut name = qname.clone();
    for _ in 0..resp.answers.len() {
        let next = resp.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == name => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(target) if target != name => name = target,
            _ => break,
        }
    }
    name
}

/// True for NODATA: no record of `qtype` (nor CNAME) at `last`, and the negative SOA in
/// authority.
fn is_nodata(resp: &Message, last: &Name, qtype: RecordType) -> bool {
    let answered = resp
        .answers
        .iter()
        .any(|r| r.name == *last && (r.record_type() == qtype || qtype == RecordType::ANY));
    !answered
        && resp
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
}

/// The types an NSEC at `owner` lists for a NODATA answer to `qtype`: what the node holds, A
/// and AAAA at a service name (so RFC 8198 caching never denies a family it may answer), the
/// key records at the apex, RRSIG and NSEC; never `qtype` itself.
fn node_types(
    zone: &Zone,
    node: Option<&Node>,
    owner: &Name,
    qtype: RecordType,
) -> Vec<RecordType> {
    let mut types = vec![RecordType::RRSIG, RecordType::NSEC];
    if let Some(node) = node {
        types.extend(node.rrsets.iter().map(|s| s.rtype));
        if node.service.is_some() {
            types.extend([RecordType::A, RecordType::AAAA]);
        }
    }
    if *owner == zone.origin {
        types.extend([RecordType::DNSKEY, RecordType::CDS, RecordType::CDNSKEY]);
    }
    if !matches!(qtype, RecordType::RRSIG | RecordType::NSEC) {
        types.retain(|t| *t != qtype);
    }
    types
}

/// The compact-denial NSEC at `owner`: next name `\000.owner` (its immediate successor in
/// canonical order, RFC 9824 §3), the given types. `None` when that name would be too long.
fn nsec_at(owner: &Name, ttl: u32, types: impl IntoIterator<Item = RecordType>) -> Option<Record> {
    // Lower-cased: validators following RFC 6840 §5.1 do not lower-case it when they check.
    let next = Name::from_labels([&[0u8][..]])
        .ok()?
        .append_domain(&owner.to_lowercase())
        .ok()?;
    let nsec = NSEC::new(next, types);
    Some(Record::from_rdata(
        owner.clone(),
        ttl,
        RData::DNSSEC(DNSSECRData::NSEC(nsec)),
    ))
}

/// The RRSIGs over every RRset of `section` in order of first appearance; in authority, the
/// NS RRset of a referral is not the zone's data and is not signed (RFC 4035 §2.2).
fn sign_section(signer: &Signer, section: &[Record], now: u64, authority: bool) -> Vec<Record> {
    let mut sigs = Vec::new();
    let mut done: Vec<(&Name, RecordType)> = Vec::new();
    for r in section {
        let key = (&r.name, r.record_type());
        if done.contains(&key) || (authority && key.1 == RecordType::NS) {
            continue;
        }
        done.push(key);
        let rrset: Vec<Record> = section
            .iter()
            .filter(|o| o.name == r.name && o.record_type() == key.1)
            .cloned()
            .collect();
        if let Some(sig) = signer.sign(&rrset, now) {
            sigs.push(sig);
        }
    }
    sigs
}
