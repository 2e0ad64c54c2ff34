//! The answering core: `(snapshot, packet, client, transport) → reply bytes`. Pure and
//! synchronous (no I/O, no clock, no locks; randomness is passed in), so the UDP and TCP loops
//! in [`transport`] share it and cannot disagree, and tests can call it directly.
//!
//! Behaviour follows RFC 1034 §4.3.2 (lookup), RFC 1035 §4.1 (header), RFC 2308 §3 (negative
//! answers), RFC 4592 (wildcards), RFC 6604 (CNAME rcodes), RFC 6891 (EDNS), RFC 8020 (empty
//! non-terminals), RFC 8482 (ANY) and RFC 9471 (glue).

pub mod counters;
mod fast;
pub mod rrl;
pub mod transport;

use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use ipnet::IpNet;
use rand::Rng;

use crate::model::{Model, Service};
use crate::select::{self, Family, Outcome};
use crate::state::Snapshot;
use crate::zone::{Found, Node, Zone};

/// The address a query came from (the resolver, not a backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// How the query arrived; decides the size limit of the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: 512 bytes, or the EDNS size (RFC 6891 §6.2.5), capped by ours.
    Udp,
    /// TCP: up to 65535 bytes (RFC 7766 §8).
    Tcp,
}

/// One query as received.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The raw DNS message.
    pub packet: &'a [u8],
    /// Who sent it.
    pub client: ClientAddr,
    /// UDP or TCP.
    pub transport: Transport,
}

/// Who asked: what steering decides by and the randomness it draws from; and, filled in on
/// the way, how many bits of the client's address the answer depended on (the ECS scope).
struct Asker<'a, R: ?Sized> {
    client: &'a select::Client,
    rng: &'a mut R,
    scope: u8,
}

/// Longest CNAME chain followed inside a zone before the answer stops (loops end here too).
const MAX_CNAME_HOPS: usize = 8;

/// EDNS option code of Extended DNS Errors (RFC 8914 §2).
const EDE_OPTION: u16 = 15;

/// EDE info-code 20, "Not Authoritative", with no extra text (RFC 8914 §4.21).
const EDE_NOT_AUTHORITATIVE: [u8; 2] = [0, 20];

/// Size of the fixed DNS header.
const HEADER_LEN: usize = 12;

/// Answers one query into `out` (cleared first), for loops that reuse one buffer per worker.
/// Returns false when nothing is to be sent (responses, runt packets); `out` is then empty.
///
/// The common case is answered by [`fast`], by copying encoded records; the rest by
/// [`answer_general`].
pub fn answer_into<R: Rng + ?Sized>(
    snap: &Snapshot,
    req: &Request<'_>,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> bool {
    if fast::answer(snap, req, rng, out) {
        return true;
    }
    out.clear();
    match answer_general(snap, req, rng) {
        Some(reply) => {
            out.extend_from_slice(&reply);
            true
        }
        None => false,
    }
}

/// Answers one query. `None` means "send nothing" (responses, runt packets).
pub fn answer<R: Rng + ?Sized>(snap: &Snapshot, req: &Request<'_>, rng: &mut R) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    answer_into(snap, req, rng, &mut out).then_some(out)
}

/// Answers any query by decoding it and building the reply as a hickory [`Message`]: every
/// case, including those [`fast`] leaves alone. Public so tests and the fuzz target can hold the
/// two paths to the same answers.
pub fn answer_general<R: Rng + ?Sized>(
    snap: &Snapshot,
    req: &Request<'_>,
    rng: &mut R,
) -> Option<Vec<u8>> {
    let p = req.packet;
    if p.len() < HEADER_LEN {
        return None; // Not even a header: nothing to reply to.
    }
    if p[2] & 0x80 != 0 {
        return None; // QR=1: a response; answering it would enable reflection loops.
    }
    let id = u16::from_be_bytes([p[0], p[1]]);
    let opcode = OpCode::from_u8((p[2] >> 3) & 0x0f);
    let rd = p[2] & 0x01 != 0;

    let parsed = Message::from_vec(p);
    if opcode != OpCode::Query {
        // RFC 1035 §4.1.1: NOTIMP for kinds of query we do not support. Echo what we can.
        let mut resp = Message::response(id, opcode);
        resp.metadata.recursion_desired = rd;
        resp.metadata.response_code = ResponseCode::NotImp;
        if let Ok(msg) = &parsed {
            if msg.queries.len() == 1 {
                resp.add_query(msg.queries[0].clone());
            }
            if msg.edns.is_some() {
                resp.set_edns(reply_edns(&snap.model, msg.edns.as_ref()));
            }
        }
        return encode_plain(&resp);
    }
    let msg = match parsed {
        Ok(m) if m.queries.len() == 1 => m,
        // Undecodable, or QDCOUNT != 1 (RFC 9619): FORMERR with the header only.
        _ => return formerr(id, rd),
    };
    if msg.metadata.message_type != MessageType::Query {
        return None;
    }

    let query = &msg.queries[0];
    let mut resp = Message::response(id, OpCode::Query);
    // CD is left clear: an authoritative server does no validation (RFC 4035 §3.1.6).
    resp.metadata.recursion_desired = rd;
    resp.add_query(query.clone());

    let limit = match (req.transport, &msg.edns) {
        (Transport::Tcp, _) => u16::MAX as usize,
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(e)) => {
            usize::from(e.max_payload().clamp(512, snap.model.dns.max_udp_payload))
        }
    };
    if let Some(edns) = &msg.edns {
        resp.set_edns(reply_edns(&snap.model, Some(edns)));
        if edns.version() > 0 {
            // RFC 6891 §6.1.3: we speak version 0 only.
            resp.metadata.response_code = ResponseCode::BADVERS;
            return encode_plain(&resp);
        }
    }

    // RFC 7871 §7.1.1: decide by the client subnet when the resolver sent one; a /0 means
    // "do not use my clients' addresses", so the resolver's own address counts then.
    let subnet = match msg.edns.as_ref().map(request_subnet) {
        Some(Err(())) => return formerr(id, rd),
        Some(Ok(subnet)) => subnet,
        None => None,
    };
    let client = match subnet {
        Some(s) if s.source_prefix() > 0 => {
            select::Client::from_subnet(s.addr(), s.source_prefix())
        }
        _ => select::Client::from_addr(&snap.model, req.client.0.ip()),
    };
    let mut referral = false;
    let mut asker = Asker {
        client: &client,
        rng,
        scope: 0,
    };
    resolve(snap, query, &mut resp, &mut referral, &mut asker);
    if let (Some(s), Some(edns)) = (subnet, resp.edns.as_mut()) {
        // RFC 7871 §7.2.1: echo family, source prefix and address, with the scope the answer
        // holds for (0 when it did not depend on the client), never wider than the source.
        let scope = asker.scope.min(s.source_prefix());
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                s.addr(),
                s.source_prefix(),
                scope,
            )));
    }
    encode_within(resp, limit, referral)
}

/// The query's EDNS Client Subnet option, if any. `Err` for one that RFC 7871 §6 says to
/// reject with FORMERR: a source prefix longer than the address, or address bits set beyond
/// it.
fn request_subnet(edns: &Edns) -> Result<Option<ClientSubnet>, ()> {
    let Some(EdnsOption::Subnet(subnet)) = edns.options().get(EdnsCode::Subnet) else {
        return Ok(None);
    };
    let prefix = subnet.source_prefix();
    let max = match subnet.addr() {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    if prefix > max {
        return Err(());
    }
    let net = IpNet::new(subnet.addr(), prefix).map_err(|_| ())?;
    if net.network() != subnet.addr() {
        return Err(());
    }
    Ok(Some(*subnet))
}

/// The OPT record of a reply: our payload size, version 0, DO copied (RFC 3225 §3), no options.
fn reply_edns(model: &Model, request: Option<&Edns>) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(model.dns.max_udp_payload);
    e.set_version(0);
    e.set_dnssec_ok(request.is_some_and(|r| r.flags().dnssec_ok));
    e
}

fn formerr(id: u16, rd: bool) -> Option<Vec<u8>> {
    let mut resp = Message::response(id, OpCode::Query);
    resp.metadata.recursion_desired = rd;
    resp.metadata.response_code = ResponseCode::FormErr;
    encode_plain(&resp)
}

fn encode_plain(resp: &Message) -> Option<Vec<u8>> {
    resp.to_vec().ok()
}

/// Fills `resp` for a well-formed QUERY.
fn resolve<R: Rng + ?Sized>(
    snap: &Snapshot,
    query: &Query,
    resp: &mut Message,
    referral: &mut bool,
    asker: &mut Asker<'_, R>,
) {
    let qtype = query.query_type();
    if query.query_class() != DNSClass::IN {
        resp.metadata.response_code = ResponseCode::Refused;
        return;
    }
    match qtype {
        RecordType::OPT => {
            resp.metadata.response_code = ResponseCode::FormErr;
            return;
        }
        // Zone transfers are not offered (RFC 5936 §2.2.1 lets a server refuse them).
        RecordType::AXFR | RecordType::IXFR => {
            resp.metadata.response_code = ResponseCode::Refused;
            return;
        }
        _ => {}
    }
    let model = &snap.model;
    let Some(zone) = model.zones.find(query.name()) else {
        // Not ours, and we do not recurse. Say why, for EDNS clients (RFC 8914 §4.21).
        resp.metadata.response_code = ResponseCode::Refused;
        if let Some(edns) = resp.edns.as_mut() {
            edns.options_mut().insert(EdnsOption::Unknown(
                EDE_OPTION,
                EDE_NOT_AUTHORITATIVE.to_vec(),
            ));
        }
        return;
    };
    resp.metadata.authoritative = true;

    let mut name = query.name().clone();
    let mut visited: Vec<Name> = Vec::new();
    for hop in 0..MAX_CNAME_HOPS {
        let (node, owner) = match zone.find(&name, qtype) {
            Found::Exact(node) => (node, name.clone()),
            // RFC 4592 §3.3.1: synthesized records are owned by the query name.
            Found::Wildcard(node) => (node, name.clone()),
            Found::Referral { cut_labels, cut } => {
                if hop == 0 {
                    resp.metadata.authoritative = false;
                    *referral = true;
                }
                add_referral(zone, &name.trim_to(usize::from(cut_labels)), cut, resp);
                return;
            }
            Found::NxDomain => {
                // RFC 6604 §3: the rcode is that of the last name in the chain.
                resp.metadata.response_code = ResponseCode::NXDomain;
                resp.add_authority(zone.negative_soa().clone());
                return;
            }
        };
        if qtype != RecordType::CNAME
            && let Some(cname) = node.rrset(RecordType::CNAME)
        {
            let Some(record) = cname.records(&owner).into_iter().next() else {
                return;
            };
            let RData::CNAME(target) = &record.data else {
                unreachable!("CNAME RRset holds CNAME data")
            };
            let target = target.0.clone();
            resp.add_answer(record);
            if !zone.origin.zone_of(&target) {
                return; // Out of zone: the resolver follows it (RFC 1034 §3.6.2).
            }
            visited.push(name);
            if visited.contains(&target) {
                return; // A loop: every CNAME of it is in the answer once.
            }
            name = target;
            continue;
        }
        answer_node(snap, zone, node, &owner, qtype, resp, asker);
        return;
    }
}

/// Answers `qtype` at an existing node (exact or wildcard-synthesized, owned by `owner`).
fn answer_node<R: Rng + ?Sized>(
    snap: &Snapshot,
    zone: &Zone,
    node: &Node,
    owner: &Name,
    qtype: RecordType,
    resp: &mut Message,
    asker: &mut Asker<'_, R>,
) {
    let family = match qtype {
        RecordType::A => Some(Family::V4),
        RecordType::AAAA => Some(Family::V6),
        _ => None,
    };
    let model = &snap.model;
    if let (Some(id), Some(family)) = (node.service, family) {
        let service = &model.services[id as usize];
        answer_service(snap, zone, service, owner, family, resp, asker);
        return;
    }
    if qtype == RecordType::ANY {
        // RFC 8482 §4.2: one RRset is enough; a service name answers with its A records.
        if let Some(id) = node.service {
            answer_service(
                snap,
                zone,
                &model.services[id as usize],
                owner,
                Family::V4,
                resp,
                asker,
            );
            if !resp.answers.is_empty() {
                return;
            }
            resp.authorities.clear();
        }
        match node.rrsets.first() {
            Some(set) => push_rrset(zone, set.records(owner), resp),
            None => {
                resp.add_authority(zone.negative_soa().clone());
            }
        }
        return;
    }
    match node.rrset(qtype) {
        Some(set) => push_rrset(zone, set.records(owner), resp),
        // NODATA (RFC 2308 §2.2): NOERROR, empty answer, SOA in authority.
        None => {
            resp.add_authority(zone.negative_soa().clone());
        }
    }
}

fn answer_service<R: Rng + ?Sized>(
    snap: &Snapshot,
    zone: &Zone,
    service: &Service,
    owner: &Name,
    family: Family,
    resp: &mut Message,
    asker: &mut Asker<'_, R>,
) {
    let model = &snap.model;
    let pick = select::pick(
        model,
        &snap.health,
        service,
        family,
        asker.client,
        asker.rng,
    );
    asker.scope = asker.scope.max(pick.scope);
    match pick.outcome {
        Outcome::Members { pool, members } if !members.is_empty() => {
            let pool = &model.pools[pool.0 as usize];
            for i in members {
                let mut record = renamed(&pool.members[i].record, owner);
                record.ttl = pick.ttl;
                resp.add_answer(record);
            }
        }
        Outcome::Members { .. } | Outcome::NoData => {
            resp.add_authority(zone.negative_soa().clone());
        }
        Outcome::ServFail => {
            resp.metadata.authoritative = false;
            resp.metadata.response_code = ResponseCode::ServFail;
        }
    }
}

/// Adds an RRset to the answer, then the in-zone addresses of the names it points at
/// (RFC 1035 §3.3: NS, MX and SRV additional section processing).
fn push_rrset(zone: &Zone, records: Vec<Record>, resp: &mut Message) {
    for r in &records {
        let target = match &r.data {
            RData::NS(ns) => &ns.0,
            RData::MX(mx) => &mx.exchange,
            RData::SRV(srv) => &srv.target,
            _ => continue,
        };
        add_addresses(zone, target, resp);
    }
    for r in records {
        resp.add_answer(r);
    }
}

/// A referral: the cut's NS RRset in authority, glue for in-zone targets in additional
/// (RFC 1034 §4.3.2 step 3b, RFC 9471 §3).
fn add_referral(zone: &Zone, cut_name: &Name, cut: &Node, resp: &mut Message) {
    let Some(ns) = cut.rrset(RecordType::NS) else {
        return;
    };
    let records = ns.records(cut_name);
    for r in &records {
        if let RData::NS(target) = &r.data {
            add_addresses(zone, &target.0, resp);
        }
    }
    for r in records {
        resp.add_authority(r);
    }
}

fn add_addresses(zone: &Zone, target: &Name, resp: &mut Message) {
    if !zone.origin.zone_of(target) {
        return;
    }
    let Some(node) = zone.node(target) else {
        return;
    };
    for rtype in [RecordType::A, RecordType::AAAA] {
        if let Some(set) = node.rrset(rtype) {
            for r in set.records(target) {
                if !resp.additionals.contains(&r) {
                    resp.additionals.push(r);
                }
            }
        }
    }
}

fn renamed(record: &Record, owner: &Name) -> Record {
    let mut r = record.clone();
    r.name = owner.clone();
    r
}

/// Encodes, fitting the transport's limit: first drop optional additional data (RFC 2181 §9),
/// then truncate to the question with TC set (RFC 1035 §4.2.1, RFC 6891 §7). Glue a referral
/// needs is not optional (RFC 9471 §3): losing it sets TC.
fn encode_within(mut resp: Message, limit: usize, referral: bool) -> Option<Vec<u8>> {
    let bytes = match resp.to_vec() {
        Ok(b) => b,
        Err(_) => {
            resp.answers.clear();
            resp.authorities.clear();
            resp.additionals.clear();
            resp.metadata.authoritative = false;
            resp.metadata.response_code = ResponseCode::ServFail;
            return encode_plain(&resp);
        }
    };
    if bytes.len() <= limit {
        return Some(bytes);
    }
    if !resp.additionals.is_empty() && !referral {
        resp.additionals.clear();
        if let Ok(b) = resp.to_vec()
            && b.len() <= limit
        {
            return Some(b);
        }
    }
    resp.answers.clear();
    resp.authorities.clear();
    resp.additionals.clear();
    resp.metadata.truncation = true;
    encode_plain(&resp)
}
