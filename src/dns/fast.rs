//! The common case of the answering core without building a message: a well-formed QUERY for
//! one name and type with at most one OPT record, answered by copying a zone's encoded RRsets
//! (or a service's chosen members) into the caller's buffer and patching the header, question
//! and OPT record (ECS and COOKIE options written by hand). Anything else, and any answer that would not fit its transport, returns
//! `false`: the general path in [`super`] answers it, so the two cannot disagree on the cases
//! that matter (the property tests hold them to the same answers).

use hickory_proto::rr::{RData, RecordType};
use rand::Rng;

use super::cookies::{CookieReply, OPTION_LEN};
use super::{
    Asker, Request, ServiceAnswer, fast_signed, reply_limit, service_answer, steering_client,
};
use crate::select::{self, Family};
use crate::state::Snapshot;
use crate::wire::{
    CLASS_IN, Ecs, HEADER_LEN, OPTION_COOKIE, OPTION_ECS, Opt, Query, ReplyCode, TYPE_OPT, WireName,
};
use crate::zone::{Found, OWNER_IS_QNAME, RrSet, Zone};

const RCODE_NXDOMAIN: u8 = 3;
const RCODE_SERVFAIL: u8 = 2;

/// What goes after the question.
enum Body<'a> {
    /// An RRset copied as it is (owner = question name).
    Static(&'a RrSet),
    /// The chosen members of a service, as A or AAAA records with this TTL.
    Members {
        pool: &'a crate::model::Pool,
        members: select::Members,
        ttl: u32,
    },
    /// A hostname member's CNAME record (its target outside the zone), with this TTL.
    Cname(&'a hickory_proto::rr::Name, u32),
    /// NOERROR/NXDOMAIN with the negative SOA in authority (RFC 2308).
    Negative(u8),
    /// SERVFAIL, not authoritative.
    ServFail,
}

/// Answers `query` into `out` if it is the common case, with the reply's code; `None` leaves
/// `out` to the general path.
pub(super) fn answer<R: Rng + ?Sized>(
    snap: &Snapshot,
    req: &Request<'_>,
    query: &Query<'_>,
    cookie: &CookieReply,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> Option<ReplyCode> {
    let model = &snap.model;
    // QR, OPCODE and TC clear: a plain query, with nothing but its question and OPT record.
    if query.flags() & 0xFA != 0 || !query.plain {
        return None;
    }
    let question = query.question.as_ref()?;
    let qname = &question.name;
    let qtype = question.qtype;
    // OPT, IXFR, AXFR, MAILB, MAILA, ANY and type 0 have answers of their own.
    if question.qclass != u16::from_be_bytes(CLASS_IN)
        || qtype == 0
        || qtype == TYPE_OPT
        || qtype >= 251
    {
        return None;
    }
    // Version 0, options well formed, a valid ECS and cookie if any (else BADVERS and FORMERR,
    // which the general path writes); NSID and BADCOOKIE are written by the general path too.
    let opt = match &query.opt {
        Some(o)
            if o.version != 0
                || o.ext_rcode != 0
                || !o.well_formed
                || o.ecs == Ecs::Malformed
                || *cookie == CookieReply::Malformed
                || cookie.badcookie()
                || (o.nsid && model.dns.nsid.is_some()) =>
        {
            return None;
        }
        opt => opt.as_ref(),
    };
    let ecs = opt.map_or(Ecs::Absent, |o| o.ecs);
    let qtype = RecordType::from(qtype);

    let (zone, signer) = model.zones.find_signed_wire(qname)?;
    // A signed zone's apex answers the key records, and its DO answers carry RRSIGs and denial
    // proofs: the general path writes those, except a positive answer's RRSIG, which
    // [`fast_signed`] encodes. Everything else is answered as for any zone.
    let signer = match signer {
        Some(_)
            if matches!(
                qtype,
                RecordType::DNSKEY | RecordType::CDS | RecordType::CDNSKEY | crate::dnssec::NXNAME
            ) =>
        {
            return None;
        }
        Some(signer) if opt.is_some_and(|o| o.dnssec_ok) => Some(signer),
        _ => None,
    };
    let mut scope = 0;
    let body = match zone.find_wire(qname, qtype) {
        Found::Exact(node) => {
            // CNAME chains, and services whose CNAME is followed inside the zone.
            if (qtype != RecordType::CNAME && node.rrset(RecordType::CNAME).is_some())
                || node
                    .service
                    .is_some_and(|id| model.services[id as usize].follows_cname)
            {
                return None;
            }
            let service = node.service.map(|id| &model.services[id as usize]);
            let family = Family::of_qtype(u16::from(qtype));
            if let Some(service) = service.filter(|s| s.hostnames || family.is_some()) {
                let client = steering_client(model, req, &ecs);
                let mut asker = Asker {
                    client: &client,
                    now: req.now,
                    rng,
                    scope: 0,
                };
                let answer =
                    service_answer(snap, service, family.unwrap_or(Family::V4), &mut asker);
                scope = asker.scope;
                // As the general path's `hostname_service`: a hostname pool answers its one
                // CNAME for every type, an address pool its addresses or NODATA.
                match answer {
                    ServiceAnswer::Members { pool, members, ttl } if pool.hostnames => {
                        match members
                            .first()
                            .and_then(|&i| pool.members[i].address.name())
                        {
                            Some(target) => Body::Cname(target, ttl),
                            None => return None,
                        }
                    }
                    _ if family.is_none() => Body::Negative(0),
                    ServiceAnswer::Members { pool, members, ttl } => {
                        Body::Members { pool, members, ttl }
                    }
                    ServiceAnswer::Negative => Body::Negative(0),
                    ServiceAnswer::ServFail => Body::ServFail,
                }
            } else {
                match node.rrset(qtype) {
                    // NS, MX and SRV answers carry addresses in the additional section.
                    Some(set)
                        if matches!(
                            set.rtype,
                            RecordType::NS | RecordType::MX | RecordType::SRV
                        ) =>
                    {
                        return None;
                    }
                    Some(set) => Body::Static(set),
                    None => Body::Negative(0),
                }
            }
        }
        Found::NxDomain => Body::Negative(RCODE_NXDOMAIN),
        Found::Wildcard(_) | Found::Referral { .. } => return None,
    };
    let rrsig = match (signer, &body) {
        (None, _) | (Some(_), Body::ServFail) => None,
        (Some(s), Body::Static(set)) => {
            Some(fast_signed::static_rrsig(s, qname, set, req.unix_time)?)
        }
        (Some(s), Body::Members { pool, members, ttl }) => Some(fast_signed::members_rrsig(
            s,
            qname,
            pool,
            members,
            *ttl,
            req.unix_time,
        )?),
        // Denial of existence: the NSEC and the SOA's RRSIG are the general path's.
        (Some(_), Body::Negative(_)) => return None,
        // A hostname member's CNAME with DO: the general path signs it.
        (Some(_), Body::Cname(..)) => return None,
    };
    let limit = reply_limit(model, req.transport, opt.map(|o| o.payload));
    out.clear();
    let rcode = encode(
        out,
        &query.packet()[..question.end],
        qname,
        zone,
        (&body, rrsig.as_ref().map(|r| &r.record[..])),
        opt.map(|o| (o, model.dns.max_udp_payload, scope)),
        cookie.option(),
    );
    match rcode {
        Some(rcode) if out.len() <= limit => Some(ReplyCode {
            rcode: u16::from(rcode),
            truncated: false,
        }),
        _ => {
            out.clear();
            None
        }
    }
}

/// Writes the reply: header, the query's own question bytes, the body and its encoded RRSIG
/// record if any (one argument: they go together), and the OPT record (our payload size, DO copied, ECS echoed with `scope`
/// capped at the source prefix, the COOKIE option). Returns the RCODE written; `None` when the
/// body cannot be written here.
fn encode(
    out: &mut Vec<u8>,
    query: &[u8],
    qname: &WireName,
    zone: &Zone,
    (body, rrsig): (&Body<'_>, Option<&[u8]>),
    opt: Option<(&Opt<'_>, u16, u8)>,
    cookie: Option<&[u8; OPTION_LEN]>,
) -> Option<u8> {
    let (flags, rcode, mut answers, authority): (u8, u8, u16, u16) = match body {
        Body::Static(set) => (0x84, 0, set.len() as u16, 0),
        Body::Members { members, .. } => (0x84, 0, members.len() as u16, 0),
        Body::Cname(..) => (0x84, 0, 1, 0),
        Body::Negative(rcode) => (0x84, *rcode, 0, 1),
        Body::ServFail => (0x80, RCODE_SERVFAIL, 0, 0),
    };
    answers += u16::from(rrsig.is_some());
    out.extend_from_slice(&query[..2]);
    out.push(flags | (query[2] & 0x01));
    out.push(rcode);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&authority.to_be_bytes());
    out.extend_from_slice(&[0, u8::from(opt.is_some())]);
    out.extend_from_slice(&query[HEADER_LEN..]);
    match body {
        Body::Static(set) => out.extend_from_slice(set.wire()),
        Body::Members { pool, members, ttl } => {
            for &i in members {
                out.extend_from_slice(&OWNER_IS_QNAME);
                match &pool.members[i].record.data {
                    RData::A(a) => {
                        out.extend_from_slice(&u16::from(RecordType::A).to_be_bytes());
                        out.extend_from_slice(&CLASS_IN);
                        out.extend_from_slice(&ttl.to_be_bytes());
                        out.extend_from_slice(&4u16.to_be_bytes());
                        out.extend_from_slice(&a.0.octets());
                    }
                    RData::AAAA(a) => {
                        out.extend_from_slice(&u16::from(RecordType::AAAA).to_be_bytes());
                        out.extend_from_slice(&CLASS_IN);
                        out.extend_from_slice(&ttl.to_be_bytes());
                        out.extend_from_slice(&16u16.to_be_bytes());
                        out.extend_from_slice(&a.0.octets());
                    }
                    _ => return None,
                }
            }
        }
        Body::Cname(target, ttl) => {
            out.extend_from_slice(&OWNER_IS_QNAME);
            out.extend_from_slice(&u16::from(RecordType::CNAME).to_be_bytes());
            out.extend_from_slice(&CLASS_IN);
            out.extend_from_slice(&ttl.to_be_bytes());
            // The target uncompressed: its labels, then the root.
            let len: usize = target.iter().map(|l| l.len() + 1).sum::<usize>() + 1;
            out.extend_from_slice(&(len as u16).to_be_bytes());
            for label in target.iter() {
                out.push(label.len() as u8);
                out.extend_from_slice(label);
            }
            out.push(0);
        }
        Body::Negative(_) => {
            // The apex is a suffix of the question name: point at it.
            let apex = qname.suffix(zone.origin_labels()).len();
            let at = HEADER_LEN + qname.as_bytes().len() - apex;
            out.extend_from_slice(&(0xC000 | at as u16).to_be_bytes());
            out.extend_from_slice(zone.negative_tail());
        }
        Body::ServFail => {}
    }
    if let Some(rrsig) = rrsig {
        out.extend_from_slice(rrsig);
    }
    if let Some((opt, payload, scope)) = opt {
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&payload.to_be_bytes());
        out.extend_from_slice(&[0, 0, if opt.dnssec_ok { 0x80 } else { 0 }, 0]);
        let rdlen_at = out.len();
        out.extend_from_slice(&[0, 0]);
        if let Ecs::Valid(ecs) = &opt.ecs {
            out.extend_from_slice(&OPTION_ECS.to_be_bytes());
            out.extend_from_slice(&(ecs.data.len() as u16).to_be_bytes());
            out.extend_from_slice(&ecs.data[..3]);
            out.push(ecs.scope_for(scope));
            out.extend_from_slice(&ecs.data[4..]);
        }
        if let Some(cookie) = cookie {
            out.extend_from_slice(&OPTION_COOKIE.to_be_bytes());
            out.extend_from_slice(&(OPTION_LEN as u16).to_be_bytes());
            out.extend_from_slice(cookie);
        }
        let rdlen = (out.len() - rdlen_at - 2) as u16;
        out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    }
    Some(rcode)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::path::Path;

    use hickory_proto::op::{Edns, Message, Query};
    use hickory_proto::rr::Name;
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    use super::*;
    use crate::dns::{ClientAddr, Transport};
    use crate::{Model, SharedState};

    fn snapshot() -> std::sync::Arc<Snapshot> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n\
             [dns.cookies]\nsecret_file = \"cookie-secret\"\n{}",
            include_str!("../../tests/fixtures/every-steering.toml")
        );
        let model = Model::from_text(&fixtures.join("meridian.toml"), &text).unwrap();
        SharedState::new(model).load()
    }

    fn query(name: &str, qtype: RecordType, edns: Option<Option<(&str, u8)>>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 0x1234;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(ecs) = edns {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            if let Some((addr, prefix)) = ecs {
                let subnet = ClientSubnet::new(addr.parse().unwrap(), prefix, 0);
                e.options_mut().insert(EdnsOption::Subnet(subnet));
            }
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn fast(snap: &Snapshot, packet: &[u8]) -> bool {
        let req = Request {
            packet,
            client: ClientAddr("127.0.0.1:5300".parse::<SocketAddr>().unwrap()),
            transport: Transport::Udp,
            unix_time: 1_764_720_000,
            now: tokio::time::Instant::now(),
        };
        let mut out = Vec::new();
        let parsed = crate::wire::Query::parse(packet).unwrap();
        answer(
            snap,
            &req,
            &parsed,
            &super::super::judge_cookie(snap, &req, &parsed),
            &mut SmallRng::seed_from_u64(1),
            &mut out,
        )
        .is_some()
    }

    #[test]
    fn the_common_cases_take_the_fast_path() {
        let snap = snapshot();
        for (name, qtype) in [
            ("static.example.test.", RecordType::A),
            ("STATIC.Example.test.", RecordType::AAAA),
            ("www.example.test.", RecordType::A),
            ("near.example.test.", RecordType::A),
            ("sticky.example.test.", RecordType::AAAA),
            ("txt.example.test.", RecordType::TXT),
            ("example.test.", RecordType::SOA),
            ("static.example.test.", RecordType::MX),
            ("b.example.test.", RecordType::A),
            ("nothing.example.test.", RecordType::A),
            ("alias.example.test.", RecordType::CNAME),
            // Hostname members whose names lie outside the zone: their CNAME, any type.
            ("edge.example.test.", RecordType::A),
            ("edge.example.test.", RecordType::TXT),
            ("blend.example.test.", RecordType::AAAA),
            ("blend.example.test.", RecordType::CNAME),
        ] {
            for edns in [None, Some(None), Some(Some(("192.0.2.0", 24)))] {
                assert!(
                    fast(&snap, &query(name, qtype, edns)),
                    "{name} {qtype} {edns:?}"
                );
            }
        }
    }

    #[test]
    fn the_rest_is_left_to_the_general_path() {
        let snap = snapshot();
        for (name, qtype) in [
            ("static.example.test.", RecordType::ANY),
            ("example.test.", RecordType::MX),
            ("example.test.", RecordType::NS),
            ("_http._tcp.example.test.", RecordType::SRV),
            ("alias.example.test.", RecordType::A),
            // A hostname member inside the zone: its CNAME is followed.
            ("cdn.example.test.", RecordType::A),
            ("x.wild.example.test.", RecordType::A),
            ("www.sub.example.test.", RecordType::A),
            ("www.example.org.", RecordType::A),
            ("static.example.test.", RecordType::AXFR),
        ] {
            assert!(!fast(&snap, &query(name, qtype, None)), "{name} {qtype}");
        }
        let plain = query("static.example.test.", RecordType::A, None);
        let mut trailing = plain.clone();
        trailing.push(0);
        let mut response = plain.clone();
        response[2] |= 0x80;
        let mut pointer = plain.clone();
        pointer.truncate(12);
        pointer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        let bad_ecs = query(
            "static.example.test.",
            RecordType::A,
            Some(Some(("192.0.2.0", 22))),
        );
        for packet in [trailing, response, pointer, bad_ecs, plain[..20].to_vec()] {
            assert!(!fast(&snap, &packet), "{packet:02x?}");
        }
    }

    #[test]
    fn cookie_queries_take_the_fast_path_unless_malformed() {
        let snap = snapshot();
        let with_cookie = |data: &[u8]| {
            let plain = query("static.example.test.", RecordType::A, Some(None));
            let mut m = Message::from_vec(&plain).unwrap();
            let option = EdnsOption::Unknown(crate::wire::OPTION_COOKIE, data.to_vec());
            m.edns.as_mut().unwrap().options_mut().insert(option);
            m.to_vec().unwrap()
        };
        let secret = snap.model.dns.cookies.as_ref().unwrap().secret;
        let client = "127.0.0.1".parse().unwrap();
        let valid = crate::dns::cookies::server_cookie(&secret, &[1; 8], client, 1_764_720_000);
        assert!(fast(&snap, &with_cookie(&[1; 8])), "a client cookie");
        assert!(
            fast(&snap, &with_cookie(&[&[1; 8][..], &valid].concat())),
            "valid"
        );
        assert!(fast(&snap, &with_cookie(&[1; 24])), "invalid: a fresh one");
        assert!(!fast(&snap, &with_cookie(&[1; 9])), "malformed: FORMERR");
    }
}
