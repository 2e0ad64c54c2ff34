//! The answering core: `(snapshot, packet, client, transport) → reply bytes`. Pure and
//! synchronous (no I/O, no clock, no locks; randomness is passed in), so the UDP and TCP loops
//! in [`transport`] share it and cannot disagree, and tests can call it directly.
//!
//! Behaviour follows RFC 1034 §4.3.2 (lookup), RFC 1035 §4.1 (header), RFC 2308 §3 (negative
//! answers), RFC 4592 (wildcards), RFC 6604 (CNAME rcodes), RFC 6891 (EDNS), RFC 8020 (empty
//! non-terminals), RFC 8482 (ANY) and RFC 9471 (glue).

pub mod cookies;
pub mod counters;
mod fast;
mod fast_signed;
pub mod rrl;
mod signed;
pub mod transport;

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as Question, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use rand::Rng;

use crate::dnssec::{NXNAME, Signer};
use crate::model::{Model, Service};
use crate::select::{self, Family, Outcome};
use crate::state::Snapshot;
use crate::wire::{Cookie, Ecs, OPTION_COOKIE, OPTION_NSID, Opt, Query, ReplyCode};
use crate::zone::{Found, Node, Zone};
use cookies::{CookieReply, Verdict};

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

/// The clock [`Request::now`] is read on (tokio's: std's outside paused test runtimes).
pub use tokio::time::Instant;

/// One query as received.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The raw DNS message.
    pub packet: &'a [u8],
    /// Who sent it.
    pub client: ClientAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// When it was received, in Unix seconds (read once per batch by the transports): what
    /// DNSSEC signatures are dated by.
    pub unix_time: u64,
    /// When it is answered (the transport's monotonic clock, taken once per batch); slow
    /// starts read it.
    pub now: Instant,
}

/// The current time in Unix seconds, for [`Request::unix_time`] (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Who asked: what steering decides by and the randomness it draws from; and, filled in on
/// the way, how many bits of the client's address the answer depended on (the ECS scope).
struct Asker<'a, R: ?Sized> {
    client: &'a select::Client,
    now: Instant,
    rng: &'a mut R,
    scope: u8,
}

/// Longest CNAME chain followed inside a zone before the answer stops (loops end here too).
const MAX_CNAME_HOPS: usize = 8;

/// EDNS option code of Extended DNS Errors (RFC 8914 §2).
const EDE_OPTION: u16 = 15;

/// EDE info-code 20, "Not Authoritative", with no extra text (RFC 8914 §4.21).
const EDE_NOT_AUTHORITATIVE: [u8; 2] = [0, 20];

/// What answering one query found out, for the counters and the rate limiter, so that neither
/// reads the packet again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
    /// QTYPE of the first question, when it could be read.
    pub qtype: Option<u16>,
    /// The query carried an EDNS Client Subnet option (valid or not).
    pub ecs: bool,
    /// Length of the only question as sent (name, type, class) when it is plain labels: what a
    /// truncated reply copies ([`rrl::truncated_reply`]).
    pub question_len: Option<usize>,
    /// The reply's response code and TC bit; `None` when nothing is to be sent (responses,
    /// runt packets).
    pub reply: Option<ReplyCode>,
    /// What the query's DNS cookie was, when cookies are on and it sent one: the counters
    /// count it, and a valid one exempts a UDP reply from rate limiting.
    pub cookie: Option<Verdict>,
}

impl Answered {
    /// Is there a reply to send?
    pub fn replied(&self) -> bool {
        self.reply.is_some()
    }
}

/// Answers one query into `out` (cleared first), for loops that reuse one buffer per worker.
/// The packet is read once ([`Query::parse`]); the common case is answered by [`fast`], by
/// copying encoded records, the rest by the general path. When nothing is to be sent, `out`
/// is empty and [`Answered::replied`] false.
pub fn answer_into<R: Rng + ?Sized>(
    snap: &Snapshot,
    req: &Request<'_>,
    rng: &mut R,
    out: &mut Vec<u8>,
) -> Answered {
    out.clear();
    let Some(query) = Query::parse(req.packet) else {
        return Answered::default(); // Not even a header: nothing to reply to.
    };
    let mut answered = Answered {
        qtype: query.first_qtype,
        ecs: query.has_ecs(),
        question_len: query.question_bytes().map(<[u8]>::len),
        reply: None,
        cookie: None,
    };
    let cookie = judge_cookie(snap, req, &query);
    answered.cookie = cookie.verdict();
    answered.reply = match fast::answer(snap, req, &query, &cookie, rng, out) {
        Some(code) => Some(code),
        None => {
            out.clear();
            general(snap, req, &query, &cookie, rng).map(|(reply, code)| {
                out.extend_from_slice(&reply);
                code
            })
        }
    };
    answered
}

/// Answers one query. `None` means "send nothing" (responses, runt packets).
pub fn answer<R: Rng + ?Sized>(snap: &Snapshot, req: &Request<'_>, rng: &mut R) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    answer_into(snap, req, rng, &mut out)
        .replied()
        .then_some(out)
}

/// Answers any query by decoding it and building the reply as a hickory [`Message`]: every
/// case, including those [`fast`] leaves alone. Public so tests and the fuzz target can hold the
/// two paths to the same answers.
pub fn answer_general<R: Rng + ?Sized>(
    snap: &Snapshot,
    req: &Request<'_>,
    rng: &mut R,
) -> Option<Vec<u8>> {
    let query = Query::parse(req.packet)?;
    let cookie = judge_cookie(snap, req, &query);
    general(snap, req, &query, &cookie, rng).map(|(reply, _)| reply)
}

/// What the query's COOKIE option earns its reply ([`cookies::judge`]), read once per query
/// and shared by both paths.
fn judge_cookie(snap: &Snapshot, req: &Request<'_>, query: &Query<'_>) -> CookieReply {
    let cookie = query.opt.map_or(Cookie::Absent, |o| o.cookie);
    cookies::judge(
        snap.model.dns.cookies.as_ref(),
        cookie,
        req.client.0.ip(),
        req.transport,
        req.unix_time,
    )
}

/// An encoded reply and what the counters read from it.
type Reply = (Vec<u8>, ReplyCode);

fn general<R: Rng + ?Sized>(
    snap: &Snapshot,
    req: &Request<'_>,
    query: &Query<'_>,
    cookie: &CookieReply,
    rng: &mut R,
) -> Option<Reply> {
    if query.is_response() {
        return None; // QR=1: a response; answering it would enable reflection loops.
    }
    let id = query.id();
    let opcode = OpCode::from_u8((query.flags() >> 3) & 0x0f);
    let rd = query.recursion_desired();
    let opt = query.opt.as_ref();

    let parsed = Message::from_vec(req.packet);
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
                resp.set_edns(reply_edns(&snap.model, opt));
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

    let question = &msg.queries[0];
    let mut resp = Message::response(id, OpCode::Query);
    // CD is left clear: an authoritative server does no validation (RFC 4035 §3.1.6).
    resp.metadata.recursion_desired = rd;
    resp.add_query(question.clone());

    let limit = reply_limit(
        &snap.model,
        req.transport,
        msg.edns.as_ref().map(Edns::max_payload),
    );
    if let Some(edns) = &msg.edns {
        resp.set_edns(reply_edns(&snap.model, opt));
        if edns.version() > 0 {
            // RFC 6891 §6.1.3: we speak version 0 only.
            resp.metadata.response_code = ResponseCode::BADVERS;
            return encode_plain(&resp);
        }
    }
    let ecs = opt.map_or(Ecs::Absent, |o| o.ecs);
    if ecs == Ecs::Malformed || *cookie == CookieReply::Malformed {
        return formerr(id, rd);
    }
    if cookie.badcookie() {
        // RFC 7873 §5.2.3: no answer, a fresh server cookie to come back with.
        add_cookie(&mut resp, cookie);
        resp.metadata.response_code = ResponseCode::BADCOOKIE;
        return encode_plain(&resp);
    }
    let client = steering_client(&snap.model, req, &ecs);
    let mut referral = false;
    let mut asker = Asker {
        client: &client,
        now: req.now,
        rng,
        scope: 0,
    };
    let signed = resolve(snap, question, &mut resp, &mut referral, &mut asker);
    if let Some((zone, signer)) = signed.filter(|_| opt.is_some_and(|o| o.dnssec_ok)) {
        signed::finish(
            zone,
            signer,
            question.name(),
            question.query_type(),
            &mut resp,
            req.unix_time,
        );
    }
    if let (Ecs::Valid(s), Some(edns)) = (ecs, resp.edns.as_mut()) {
        // RFC 7871 §7.2.1: echo family, source prefix and address, with the scope the answer
        // holds for (0 when it did not depend on the client), never wider than the source.
        edns.options_mut()
            .insert(EdnsOption::Subnet(ClientSubnet::new(
                s.addr,
                s.source,
                s.scope_for(asker.scope),
            )));
    }
    add_cookie(&mut resp, cookie);
    encode_within(resp, limit, referral)
}

/// Puts the reply's COOKIE option (client cookie and server cookie) into its OPT record.
fn add_cookie(resp: &mut Message, cookie: &CookieReply) {
    if let (Some(option), Some(edns)) = (cookie.option(), resp.edns.as_mut()) {
        edns.options_mut()
            .insert(EdnsOption::Unknown(OPTION_COOKIE, option.to_vec()));
    }
}

/// The largest reply `transport` takes: 65535 bytes over TCP (RFC 7766 §8); over UDP 512
/// without EDNS, else the requestor's payload size (at least 512) capped by ours (RFC 6891
/// §6.2.5). Both paths answer within it.
fn reply_limit(model: &Model, transport: Transport, payload: Option<u16>) -> usize {
    match (transport, payload) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, None) => 512,
        (Transport::Udp, Some(p)) => usize::from(p.clamp(512, model.dns.max_udp_payload)),
    }
}

/// Who steering decides by (RFC 7871 §7.1.1): the client subnet when the resolver sent one; a
/// /0 means "do not use my clients' addresses", so the resolver's own address counts then.
fn steering_client(model: &Model, req: &Request<'_>, ecs: &Ecs<'_>) -> select::Client {
    match ecs {
        Ecs::Valid(s) if s.source > 0 => select::Client::from_subnet(s.addr, s.source),
        _ => select::Client::from_addr(model, req.client.0.ip()),
    }
}

/// What a service name answers for one family: the chosen members with their TTL, a negative
/// answer (no member of the family, or `when_all_down = "nodata"`), or SERVFAIL.
enum ServiceAnswer<'m> {
    Members {
        pool: &'m crate::model::Pool,
        members: select::Members,
        ttl: u32,
    },
    Negative,
    ServFail,
}

/// Steers `service` for `family` and the asker, and says how the answer is written; raises the
/// asker's ECS scope to what the decision depended on.
fn service_answer<'m, R: Rng + ?Sized>(
    snap: &'m Snapshot,
    service: &Service,
    family: Family,
    asker: &mut Asker<'_, R>,
) -> ServiceAnswer<'m> {
    members_answer(&snap.model, pick_for(snap, service, family, asker))
}

/// Steering and selection of `service` for the asker; raises its ECS scope to what the
/// decision depended on.
fn pick_for<R: Rng + ?Sized>(
    snap: &Snapshot,
    service: &Service,
    family: Family,
    asker: &mut Asker<'_, R>,
) -> select::Pick {
    let pick = select::pick(
        &snap.model,
        (&snap.health, asker.now),
        service,
        family,
        asker.client,
        asker.rng,
    );
    asker.scope = asker.scope.max(pick.scope);
    pick
}

/// How a pick of address members is written.
fn members_answer(model: &Model, pick: select::Pick) -> ServiceAnswer<'_> {
    match pick.outcome {
        Outcome::Members { pool, members } if !members.is_empty() => ServiceAnswer::Members {
            pool: &model.pools[pool.0 as usize],
            members,
            ttl: pick.ttl,
        },
        Outcome::Members { .. } | Outcome::NoData => ServiceAnswer::Negative,
        Outcome::ServFail => ServiceAnswer::ServFail,
    }
}

/// The OPT record of a reply: our payload size, version 0, DO copied (RFC 3225 §3), and our
/// name server identifier when the query asked for it and one is set (RFC 5001 §2.2).
fn reply_edns(model: &Model, request: Option<&Opt<'_>>) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(model.dns.max_udp_payload);
    e.set_version(0);
    e.set_dnssec_ok(request.is_some_and(|r| r.dnssec_ok));
    if let (Some(nsid), true) = (&model.dns.nsid, request.is_some_and(|r| r.nsid)) {
        e.options_mut()
            .insert(EdnsOption::Unknown(OPTION_NSID, nsid.as_bytes().to_vec()));
    }
    e
}

fn formerr(id: u16, rd: bool) -> Option<Reply> {
    let mut resp = Message::response(id, OpCode::Query);
    resp.metadata.recursion_desired = rd;
    resp.metadata.response_code = ResponseCode::FormErr;
    encode_plain(&resp)
}

fn encode_plain(resp: &Message) -> Option<Reply> {
    let code = ReplyCode {
        rcode: u16::from(resp.metadata.response_code),
        truncated: resp.metadata.truncation,
    };
    resp.to_vec().ok().map(|bytes| (bytes, code))
}

/// Fills `resp` for a well-formed QUERY; returns the zone and its signer when the zone is
/// signed, for [`signed::finish`].
fn resolve<'s, R: Rng + ?Sized>(
    snap: &'s Snapshot,
    question: &Question,
    resp: &mut Message,
    referral: &mut bool,
    asker: &mut Asker<'_, R>,
) -> Option<(&'s Zone, &'s Signer)> {
    let qtype = question.query_type();
    if question.query_class() != DNSClass::IN {
        resp.metadata.response_code = ResponseCode::Refused;
        return None;
    }
    match qtype {
        RecordType::OPT => {
            resp.metadata.response_code = ResponseCode::FormErr;
            return None;
        }
        // Zone transfers are not offered (RFC 5936 §2.2.1 lets a server refuse them).
        RecordType::AXFR | RecordType::IXFR => {
            resp.metadata.response_code = ResponseCode::Refused;
            return None;
        }
        _ => {}
    }
    let model = &snap.model;
    let Some((zone, signer)) = model.zones.find_signed(question.name()) else {
        // Not ours, and we do not recurse. Say why, for EDNS clients (RFC 8914 §4.21).
        resp.metadata.response_code = ResponseCode::Refused;
        if let Some(edns) = resp.edns.as_mut() {
            edns.options_mut().insert(EdnsOption::Unknown(
                EDE_OPTION,
                EDE_NOT_AUTHORITATIVE.to_vec(),
            ));
        }
        return None;
    };
    if signer.is_some() && qtype == NXNAME {
        // RFC 9824 §3.3: NXNAME is a meta-type; asking for it is a format error.
        resp.metadata.response_code = ResponseCode::FormErr;
        return None;
    }
    resp.metadata.authoritative = true;
    let signed = signer.map(|s| (zone, s));

    let mut name = question.name().clone();
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
                return signed;
            }
            Found::NxDomain => {
                // RFC 6604 §3: the rcode is that of the last name in the chain.
                resp.metadata.response_code = ResponseCode::NXDomain;
                resp.add_authority(zone.negative_soa().clone());
                return signed;
            }
        };
        let cname = match hostname_service(snap, zone, node, &owner, qtype, resp, asker) {
            AtService::Written => return signed,
            AtService::Cname(record, ttl) => {
                let mut record = renamed(record, &owner);
                record.ttl = ttl;
                Some(record)
            }
            AtService::Other if qtype == RecordType::CNAME => None,
            AtService::Other => node
                .rrset(RecordType::CNAME)
                .and_then(|set| set.records(&owner).into_iter().next()),
        };
        if let Some(record) = cname {
            let RData::CNAME(target) = &record.data else {
                unreachable!("CNAME RRset holds CNAME data")
            };
            let target = target.0.clone();
            resp.add_answer(record);
            if qtype == RecordType::CNAME {
                return signed; // A hostname service asked for its CNAME itself.
            }
            if !zone.origin.zone_of(&target) {
                return signed; // Out of zone: the resolver follows it (RFC 1034 §3.6.2).
            }
            visited.push(name);
            if visited.contains(&target) {
                return signed; // A loop: every CNAME of it is in the answer once.
            }
            name = target;
            continue;
        }
        answer_node(snap, zone, signer, node, &owner, qtype, resp, asker);
        return signed;
    }
    signed
}

/// Answers `qtype` at an existing node (exact or wildcard-synthesized, owned by `owner`).
#[allow(clippy::too_many_arguments)]
fn answer_node<R: Rng + ?Sized>(
    snap: &Snapshot,
    zone: &Zone,
    signer: Option<&Signer>,
    node: &Node,
    owner: &Name,
    qtype: RecordType,
    resp: &mut Message,
    asker: &mut Asker<'_, R>,
) {
    let model = &snap.model;
    if let (Some(id), Some(family)) = (node.service, Family::of_qtype(u16::from(qtype))) {
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
    // The key records at the apex of a signed zone (RFC 4035 §2.1, RFC 7344 §4).
    if let Some(records) = signer
        .filter(|_| *owner == zone.origin)
        .and_then(|s| s.key_records(owner, qtype))
    {
        push_rrset(zone, records, resp);
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

/// What a node that may be a service with hostname pools answers.
enum AtService<'m> {
    /// Not such a service: the zone's data (or the plain service path) answers.
    Other,
    /// Steering chose a hostname pool: this member's CNAME record, with this TTL, followed
    /// like the zone's.
    Cname(&'m Record, u32),
    /// Steering chose an address pool: the answer is written.
    Written,
}

/// At a service with hostname pools, steers once for any query type: a hostname pool answers
/// one CNAME (the one member selection picks), an address pool its A/AAAA records (A for
/// ANY) or NODATA for other types (such a name has no other data).
fn hostname_service<'m, R: Rng + ?Sized>(
    snap: &'m Snapshot,
    zone: &Zone,
    node: &Node,
    owner: &Name,
    qtype: RecordType,
    resp: &mut Message,
    asker: &mut Asker<'_, R>,
) -> AtService<'m> {
    let model = &snap.model;
    let Some(service) = node
        .service
        .map(|id| &model.services[id as usize])
        .filter(|s| s.hostnames)
    else {
        return AtService::Other;
    };
    let family = Family::of_qtype(u16::from(qtype));
    let pick = pick_for(snap, service, family.unwrap_or(Family::V4), asker);
    if let Outcome::Members { pool, members } = &pick.outcome
        && let Some(&first) = members.first()
        && let member = &model.pools[pool.0 as usize].members[first]
        && member.address.name().is_some()
    {
        return AtService::Cname(&member.record, pick.ttl);
    }
    if family.is_some() || qtype == RecordType::ANY {
        write_service(zone, members_answer(model, pick), owner, resp);
    } else {
        resp.add_authority(zone.negative_soa().clone());
    }
    AtService::Written
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
    write_service(
        zone,
        service_answer(snap, service, family, asker),
        owner,
        resp,
    );
}

fn write_service(zone: &Zone, answer: ServiceAnswer<'_>, owner: &Name, resp: &mut Message) {
    match answer {
        ServiceAnswer::Members { pool, members, ttl } => {
            for i in members {
                let mut record = renamed(&pool.members[i].record, owner);
                record.ttl = ttl;
                resp.add_answer(record);
            }
        }
        ServiceAnswer::Negative => {
            resp.add_authority(zone.negative_soa().clone());
        }
        ServiceAnswer::ServFail => {
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
fn encode_within(mut resp: Message, limit: usize, referral: bool) -> Option<Reply> {
    let (bytes, code) = match encode_plain(&resp) {
        Some(reply) => reply,
        None => {
            resp.answers.clear();
            resp.authorities.clear();
            resp.additionals.clear();
            resp.metadata.authoritative = false;
            resp.metadata.response_code = ResponseCode::ServFail;
            return encode_plain(&resp);
        }
    };
    if bytes.len() <= limit {
        return Some((bytes, code));
    }
    if !resp.additionals.is_empty() && !referral {
        resp.additionals.clear();
        if let Some(reply) = encode_plain(&resp)
            && reply.0.len() <= limit
        {
            return Some(reply);
        }
    }
    resp.answers.clear();
    resp.authorities.clear();
    resp.additionals.clear();
    resp.metadata.truncation = true;
    encode_plain(&resp)
}
