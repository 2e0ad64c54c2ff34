//! The common case of the answering core without building a message: a well-formed QUERY for
//! one name and type with at most one OPT record, answered by copying a zone's encoded RRsets
//! (or a service's chosen members) into the caller's buffer and patching the header, question
//! and OPT record. Anything else, and any answer that would not fit its transport, returns
//! `false`: the general path in [`super`] answers it, so the two cannot disagree on the cases
//! that matter (the property tests hold them to the same answers).

use std::net::IpAddr;

use hickory_proto::rr::{RData, RecordType};
use rand::Rng;

use super::{HEADER_LEN, Request, Transport};
use crate::select::{self, Family, Outcome};
use crate::state::Snapshot;
use crate::zone::{Found, OWNER_IS_QNAME, WireName, Zone};

const TYPE_OPT: u16 = 41;
const OPTION_ECS: u16 = 8;
const CLASS_IN: [u8; 2] = [0, 1];
const RCODE_NXDOMAIN: u8 = 3;
const RCODE_SERVFAIL: u8 = 2;

/// The parts of an OPT record a reply depends on.
struct Opt<'p> {
    /// The requestor's UDP payload size.
    payload: u16,
    /// The DO bit.
    dnssec_ok: bool,
    /// The EDNS Client Subnet option's data (family, source, scope, address), validated.
    ecs: Option<Ecs<'p>>,
}

/// A valid EDNS Client Subnet option (RFC 7871 §6).
struct Ecs<'p> {
    data: &'p [u8],
    addr: IpAddr,
    source: u8,
}

/// What goes after the question.
enum Body<'a> {
    /// Records copied as they are (owner = question name), and their count.
    Static(&'a [u8], u16),
    /// The chosen members of a service, as A or AAAA records with this TTL.
    Members {
        pool: &'a crate::model::Pool,
        members: select::Members,
        ttl: u32,
    },
    /// NOERROR/NXDOMAIN with the negative SOA in authority (RFC 2308).
    Negative(u8),
    /// SERVFAIL, not authoritative.
    ServFail,
}

/// Answers `req` into `out` if it is the common case; `false` leaves `out` to the general path.
pub(super) fn answer<R: Rng + ?Sized>(
    snap: &Snapshot,
    req: &Request<'_>,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> bool {
    let p = req.packet;
    if p.len() < HEADER_LEN
        // QR, OPCODE and TC clear: a plain query.
        || p[2] & 0xFA != 0
        || p[4..10] != [0, 1, 0, 0, 0, 0]
        || p[10] != 0
        || p[11] > 1
    {
        return false;
    }
    let Some((qname, end)) = WireName::parse(p, HEADER_LEN) else {
        return false;
    };
    let Some(q) = p.get(end..end + 4) else {
        return false;
    };
    let qtype = u16::from_be_bytes([q[0], q[1]]);
    // OPT, IXFR, AXFR, MAILB, MAILA, ANY and type 0 have answers of their own.
    if q[2..4] != CLASS_IN || qtype == 0 || qtype == TYPE_OPT || qtype >= 251 {
        return false;
    }
    let question_end = end + 4;
    let opt = if p[11] == 1 {
        match parse_opt(&p[question_end..]) {
            Some(opt) => Some(opt),
            None => return false,
        }
    } else if question_end == p.len() {
        None
    } else {
        return false;
    };
    let qtype = RecordType::from(qtype);

    let model = &snap.model;
    let Some(zone) = model.zones.find_wire(&qname) else {
        return false;
    };
    let mut scope = 0;
    let body = match zone.find_wire(&qname, qtype) {
        Found::Exact(node) => {
            let family = match qtype {
                RecordType::A => Some(Family::V4),
                RecordType::AAAA => Some(Family::V6),
                _ => None,
            };
            if qtype != RecordType::CNAME && node.rrset(RecordType::CNAME).is_some() {
                return false;
            }
            if let (Some(id), Some(family)) = (node.service, family) {
                let client = match &opt {
                    Some(Opt { ecs: Some(ecs), .. }) if ecs.source > 0 => {
                        select::Client::from_subnet(ecs.addr, ecs.source)
                    }
                    _ => select::Client::from_addr(model, req.client.0.ip()),
                };
                let pick = select::pick(
                    model,
                    &snap.health,
                    &model.services[id as usize],
                    family,
                    &client,
                    rng,
                );
                scope = pick.scope;
                match pick.outcome {
                    Outcome::Members { pool, members } if !members.is_empty() => Body::Members {
                        pool: &model.pools[pool.0 as usize],
                        members,
                        ttl: pick.ttl,
                    },
                    Outcome::Members { .. } | Outcome::NoData => Body::Negative(0),
                    Outcome::ServFail => Body::ServFail,
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
                        return false;
                    }
                    Some(set) => Body::Static(set.wire(), set.len() as u16),
                    None => Body::Negative(0),
                }
            }
        }
        Found::NxDomain => Body::Negative(RCODE_NXDOMAIN),
        Found::Wildcard(_) | Found::Referral { .. } => return false,
    };
    let limit = match (req.transport, &opt) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(o)) => usize::from(o.payload.clamp(512, model.dns.max_udp_payload)),
    };
    out.clear();
    if !encode(
        out,
        &p[..question_end],
        &qname,
        zone,
        &body,
        opt.as_ref().map(|o| (o, model.dns.max_udp_payload, scope)),
    ) || out.len() > limit
    {
        out.clear();
        return false;
    }
    true
}

/// Reads the OPT record that must end the packet: version 0, options well formed, at most one
/// valid ECS option. `None` sends the query to the general path (which also answers BADVERS
/// and FORMERR).
fn parse_opt(rr: &[u8]) -> Option<Opt<'_>> {
    if rr.len() < 11 || rr[0] != 0 || u16::from_be_bytes([rr[1], rr[2]]) != TYPE_OPT {
        return None;
    }
    // Extended RCODE and VERSION must be 0 in a query we answer here.
    if rr[5] != 0 || rr[6] != 0 {
        return None;
    }
    let rdlen = usize::from(u16::from_be_bytes([rr[9], rr[10]]));
    let mut options = rr.get(11..)?;
    if options.len() != rdlen {
        return None;
    }
    let mut ecs = None;
    while !options.is_empty() {
        let head = options.get(..4)?;
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let data = options.get(4..4 + len)?;
        if code == OPTION_ECS {
            if ecs.is_some() {
                return None;
            }
            ecs = Some(parse_ecs(data)?);
        }
        options = &options[4 + len..];
    }
    Some(Opt {
        payload: u16::from_be_bytes([rr[3], rr[4]]),
        dnssec_ok: rr[7] & 0x80 != 0,
        ecs,
    })
}

/// An ECS option whose address has exactly the source prefix's bytes and no bit set beyond it.
fn parse_ecs(data: &[u8]) -> Option<Ecs<'_>> {
    let (family, source) = (
        u16::from_be_bytes([*data.first()?, *data.get(1)?]),
        *data.get(2)?,
    );
    let addr = data.get(4..)?;
    let max = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source > max || addr.len() != usize::from(source).div_ceil(8) {
        return None;
    }
    if let Some(&last) = addr.last() {
        let spare = (8 - source % 8) % 8;
        if last & ((1u8 << spare) - 1) != 0 {
            return None;
        }
    }
    let addr = if family == 1 {
        let mut a = [0u8; 4];
        a[..addr.len()].copy_from_slice(addr);
        IpAddr::from(a)
    } else {
        let mut a = [0u8; 16];
        a[..addr.len()].copy_from_slice(addr);
        IpAddr::from(a)
    };
    Some(Ecs { data, addr, source })
}

/// Writes the reply: header, the query's own question bytes, the body, and the OPT record
/// (our payload size, DO copied, ECS echoed with `scope` capped at the source prefix).
fn encode(
    out: &mut Vec<u8>,
    query: &[u8],
    qname: &WireName,
    zone: &Zone,
    body: &Body<'_>,
    opt: Option<(&Opt<'_>, u16, u8)>,
) -> bool {
    let (flags, rcode, answers, authority): (u8, u8, u16, u16) = match body {
        Body::Static(_, n) => (0x84, 0, *n, 0),
        Body::Members { members, .. } => (0x84, 0, members.len() as u16, 0),
        Body::Negative(rcode) => (0x84, *rcode, 0, 1),
        Body::ServFail => (0x80, RCODE_SERVFAIL, 0, 0),
    };
    out.extend_from_slice(&query[..2]);
    out.push(flags | (query[2] & 0x01));
    out.push(rcode);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&authority.to_be_bytes());
    out.extend_from_slice(&[0, u8::from(opt.is_some())]);
    out.extend_from_slice(&query[HEADER_LEN..]);
    match body {
        Body::Static(wire, _) => out.extend_from_slice(wire),
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
                    _ => return false,
                }
            }
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
    if let Some((opt, payload, scope)) = opt {
        out.push(0);
        out.extend_from_slice(&TYPE_OPT.to_be_bytes());
        out.extend_from_slice(&payload.to_be_bytes());
        out.extend_from_slice(&[0, 0, if opt.dnssec_ok { 0x80 } else { 0 }, 0]);
        match &opt.ecs {
            None => out.extend_from_slice(&[0, 0]),
            Some(ecs) => {
                out.extend_from_slice(&(4 + ecs.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&OPTION_ECS.to_be_bytes());
                out.extend_from_slice(&(ecs.data.len() as u16).to_be_bytes());
                out.extend_from_slice(&ecs.data[..3]);
                out.push(scope.min(ecs.source));
                out.extend_from_slice(&ecs.data[4..]);
            }
        }
    }
    true
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
    use crate::dns::ClientAddr;
    use crate::{Model, SharedState};

    fn snapshot() -> std::sync::Arc<Snapshot> {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{}",
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
        };
        let mut out = Vec::new();
        answer(snap, &req, &mut SmallRng::seed_from_u64(1), &mut out)
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
    fn ecs_options_are_validated_like_rfc_7871_says() {
        assert!(parse_ecs(&[0, 1, 24, 0, 192, 0, 2]).is_some());
        assert!(parse_ecs(&[0, 1, 0, 0]).is_some());
        assert!(
            parse_ecs(&[0, 1, 33, 0, 1, 2, 3, 4, 5]).is_none(),
            "prefix too long"
        );
        assert!(
            parse_ecs(&[0, 1, 23, 0, 192, 0, 3]).is_none(),
            "bits beyond the prefix"
        );
        assert!(
            parse_ecs(&[0, 1, 24, 0, 192, 0, 2, 0]).is_none(),
            "address too long"
        );
        assert!(parse_ecs(&[0, 3, 0, 0]).is_none(), "unknown family");
        assert!(parse_ecs(&[0, 2, 48, 0, 0x20, 1, 0xd, 0xb8, 0, 0]).is_some());
    }
}
