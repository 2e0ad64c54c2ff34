//! Property tests of the answering core (proptest, in the normal suite): random packets and
//! mutations of valid queries never panic, every reply parses, fits its transport and echoes
//! the query's ID, and the fast path (copying encoded records) gives the same answer as the
//! general one (building a message) for every query. The core is called directly (it is the same pure function the UDP and
//! TCP loops call), on a snapshot of the fixture zone with services of every steering mode and
//! every `when_all_down` choice, and members in several states of health; the seed queries
//! must reach each answer health decides (SERVFAIL, NODATA, failing open, a lowered TTL).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::RecordType;
use meridian::dns::{ClientAddr, Request, Transport, answer, answer_general};
use meridian::health::{HealthState, HealthTable, MemberHealth};
use meridian::model::WhenAllDown;
use meridian::select::{self, Client, Family, Outcome, Steered};
use meridian::{Model, Snapshot};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::support::QueryBuilder;

fn snapshot() -> Arc<Snapshot> {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // The zone is signed, so DO queries take the signing paths too (a test key, not a secret);
    // cookies are on, with the secret of RFC 9018's examples.
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n\
         [dns.cookies]\nsecret_file = \"cookie-secret\"\n{}\n\
         [dnssec.\"example.test.\"]\nkey = \"keys/example.test.pem\"\n",
        include_str!("../fixtures/every-steering.toml")
    );
    // Nothing is written: the config is validated as if it were tests/fixtures/meridian.toml.
    let model =
        Model::from_text(&fixtures.join("meridian.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(Snapshot {
        generation: 1,
        health: Arc::new(fixture_health(&model)),
        model: Arc::new(model),
        published: SystemTime::UNIX_EPOCH,
    })
}

/// The health the fixture's comments describe: every member of pool `dead` down (the second
/// recovering: one success into `rise`), the first member of `flaky` failing (up, one failure
/// into `fall`), every other monitored member up; unmonitored members are always up.
fn fixture_health(model: &Model) -> HealthTable {
    model
        .members()
        .map(|(pool, member)| {
            if pool.monitor.is_none() {
                return MemberHealth::unmonitored();
            }
            let first = pool.members.first().map(|m| m.index) == Some(member.index);
            let mut h = MemberHealth::unknown();
            h.state = HealthState::Up;
            match pool.name.as_str() {
                "dead" => {
                    h.state = HealthState::Down;
                    h.successes = u32::from(!first);
                }
                "flaky" if first => h.failures = 1,
                _ => {}
            }
            h
        })
        .collect()
}

/// The address every query comes from.
const CLIENT: &str = "127.0.0.1:53000";

/// Valid queries to mutate: several names, types, EDNS sizes, ECS and opcodes.
fn seeds() -> Vec<Vec<u8>> {
    let names = [
        "www.example.test.",
        "WWW.Example.TEST.",
        "near.example.test.",
        "sticky.example.test.",
        "static.example.test.",
        "STATIC.example.test.",
        "mixed.CASE.example.test.",
        "txt.example.test.",
        "_http._tcp.example.test.",
        "b.example.test.",
        "alias.example.test.",
        "x.wild.example.test.",
        "blocked.wild.example.test.",
        "sub.example.test.",
        "www.sub.example.test.",
        "big.example.test.",
        "ns1.example.test.",
        "nothing.example.test.",
        "deep.nothing.Example.test.",
        "example.test.",
        "www.example.org.",
        "failover.example.test.",
        "weighted.example.test.",
        "open.example.test.",
        "fallback.example.test.",
        "nodata.example.test.",
        "servfail.example.test.",
        "cdn.example.test.",
        "edge.example.test.",
        "blend.example.test.",
    ];
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::ANY,
            RecordType::MX,
            RecordType::TXT,
            RecordType::SOA,
            RecordType::NS,
            RecordType::CNAME,
            RecordType::DS,
            RecordType::SRV,
            RecordType::CAA,
        ] {
            let q = QueryBuilder::new(name, qtype).id(i as u16);
            out.push(q.build());
            out.push(q.clone().edns(4096).build());
            out.push(q.clone().edns(512).dnssec_ok().build());
            out.push(q.clone().ecs("192.0.2.0", 24).build());
            out.push(q.clone().ecs("127.0.0.0", 20).build());
            out.push(q.clone().ecs("0.0.0.0", 0).build());
            out.push(q.clone().ecs("2001:db8::", 48).build());
            for cookie in cookies() {
                out.push(q.clone().cookie(&cookie).build());
            }
        }
    }
    out.push(
        QueryBuilder::new("www.example.test.", RecordType::A)
            .opcode(OpCode::Update)
            .build(),
    );
    out
}

/// COOKIE options to seed with: a client cookie alone, with a valid server cookie for
/// [`CLIENT`] (made now with the fixture's secret), and with a tampered one (mutations make
/// malformed ones).
fn cookies() -> Vec<Vec<u8>> {
    let secret = meridian::model::CookieSecret(
        data_encoding::HEXLOWER
            .decode(b"e5e973e5a6b2a43f48e7dc849e37bfcf")
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let client = CLIENT.parse::<SocketAddr>().unwrap().ip();
    let now = meridian::dns::unix_now() as u32;
    let valid = meridian::dns::cookies::server_cookie(&secret, &[1; 8], client, now);
    let mut tampered = valid;
    tampered[15] ^= 1;
    vec![
        vec![1; 8],
        [&[1; 8][..], &valid].concat(),
        [&[1; 8][..], &tampered].concat(),
    ]
}

/// What a reply must satisfy for `query` over `transport`.
fn check(snap: &Snapshot, query: &[u8], transport: Transport) -> Result<(), TestCaseError> {
    let client = ClientAddr(CLIENT.parse::<SocketAddr>().unwrap());
    let req = Request {
        packet: query,
        client,
        transport,
        unix_time: meridian::dns::unix_now(),
        now: tokio::time::Instant::now(),
    };
    let reply = answer(snap, &req, &mut SmallRng::seed_from_u64(7));
    let general = answer_general(snap, &req, &mut SmallRng::seed_from_u64(7));
    // Same randomness, same answer: the fast path may encode differently (uncompressed names
    // in record data), never answer differently.
    prop_assert_eq!(
        reply.as_deref().map(Message::from_vec).map(Result::ok),
        general.as_deref().map(Message::from_vec).map(Result::ok),
        "fast and general paths differ for {:02x?}",
        query
    );
    let Some(reply) = reply else {
        // Silence is allowed for runts and responses only.
        prop_assert!(
            query.len() < 12 || query[2] & 0x80 != 0,
            "no reply to {query:02x?}"
        );
        return Ok(());
    };
    let parsed = Message::from_vec(&reply);
    prop_assert!(parsed.is_ok(), "reply does not parse: {:?}", parsed.err());
    prop_assert_eq!(&reply[..2], &query[..2], "ID echoed");
    prop_assert!(reply[2] & 0x80 != 0, "QR set");
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => match Message::from_vec(query).ok().and_then(|m| m.edns) {
            Some(e) => usize::from(e.max_payload().clamp(512, 1232)),
            None => 1232,
        },
    };
    prop_assert!(reply.len() <= limit, "{} bytes > {limit}", reply.len());
    if transport == Transport::Udp && Message::from_vec(query).is_ok_and(|m| m.edns.is_none()) {
        prop_assert!(reply.len() <= 512, "no EDNS: {} bytes", reply.len());
    }
    Ok(())
}

/// A mutation of a seed query: overwrite, insert, delete bytes, or cut it short.
#[derive(Debug, Clone)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<usize>().prop_map(Edit::Delete),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn mutate(mut p: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match *e {
            Edit::Set(i, b) if !p.is_empty() => {
                let n = p.len();
                p[i % n] = b;
            }
            Edit::Insert(i, b) => {
                let at = i % (p.len() + 1);
                p.insert(at, b);
            }
            Edit::Delete(i) if !p.is_empty() => {
                let n = p.len();
                p.remove(i % n);
            }
            Edit::Truncate(i) => p.truncate(i % (p.len() + 1)),
            _ => {}
        }
    }
    p
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_packets_never_break_the_core(
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
        tcp in any::<bool>(),
    ) {
        let snap = SNAP.with(Arc::clone);
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        check(&snap, &bytes, transport)?;
    }

    #[test]
    fn mutated_queries_never_break_the_core(
        seed in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
        tcp in any::<bool>(),
    ) {
        let snap = SNAP.with(Arc::clone);
        let seeds = SEEDS.with(Clone::clone);
        let query = mutate(seed.get(&seeds).clone(), &edits);
        let transport = if tcp { Transport::Tcp } else { Transport::Udp };
        check(&snap, &query, transport)?;
    }
}

thread_local! {
    static SNAP: Arc<Snapshot> = snapshot();
    static SEEDS: Vec<Vec<u8>> = seeds();
}

/// The answers of a service that health decides, beside the plain one from a healthy pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Branch {
    /// `when_all_down = "servfail"`.
    ServFail,
    /// `when_all_down = "nodata"`.
    NoData,
    /// `when_all_down = "all"`: the first pool's members, with `min_ttl`.
    FailOpen,
    /// A pool with a member about to flip: its members, with a TTL below the service's.
    LoweredTtl,
}

/// Which [`Branch`] answered `query`, if it asks for A or AAAA of a service and one did;
/// steering and selection decide it (run as the core runs them, from the same client and seed),
/// and the core's `reply` must show it.
fn branch(snap: &Snapshot, query: &[u8], reply: &[u8]) -> Option<Branch> {
    let query = Message::from_vec(query).ok()?;
    let [question] = query.queries.as_slice() else {
        return None;
    };
    let family = Family::of_qtype(u16::from(question.query_type()))?;
    let model = &snap.model;
    let service = model.services.iter().find(|s| s.name == *question.name())?;
    let client = Client::from_addr(model, CLIENT.parse::<SocketAddr>().unwrap().ip());
    let pick = select::pick(
        model,
        (&snap.health, tokio::time::Instant::now()),
        service,
        family,
        &client,
        &mut SmallRng::seed_from_u64(7),
    );
    let branch = match (&pick.outcome, pick.steered) {
        (Outcome::ServFail, _) => Branch::ServFail,
        (Outcome::NoData, _) => Branch::NoData,
        (Outcome::Members { .. }, Steered::AllDown { .. })
            if matches!(service.when_all_down, WhenAllDown::All) =>
        {
            Branch::FailOpen
        }
        (Outcome::Members { members, .. }, Steered::Pool(_))
            if !members.is_empty() && pick.ttl < service.ttl =>
        {
            Branch::LoweredTtl
        }
        _ => return None,
    };
    let reply = Message::from_vec(reply).expect("reply parses");
    let code = reply.metadata.response_code;
    let ttls: Vec<u32> = reply.answers.iter().map(|r| r.ttl).collect();
    let shown = match branch {
        Branch::ServFail => code == ResponseCode::ServFail,
        Branch::NoData => code == ResponseCode::NoError && ttls.is_empty(),
        Branch::FailOpen => !ttls.is_empty() && ttls.iter().all(|&t| t == service.min_ttl),
        Branch::LoweredTtl => !ttls.is_empty() && ttls.iter().all(|&t| t == pick.ttl),
    };
    assert!(
        shown,
        "{branch:?} for {question}, but the reply is {reply:?}"
    );
    Some(branch)
}

#[test]
fn every_seed_query_is_answered() {
    let snap = snapshot();
    let mut reached: BTreeMap<Branch, usize> = BTreeMap::new();
    for (i, q) in seeds().iter().enumerate() {
        check(&snap, q, Transport::Udp).unwrap_or_else(|e| panic!("seed {i}: {e}"));
        let client = ClientAddr(CLIENT.parse::<SocketAddr>().unwrap());
        let req = Request {
            packet: q,
            client,
            transport: Transport::Udp,
            unix_time: meridian::dns::unix_now(),
            now: tokio::time::Instant::now(),
        };
        let reply = answer(&snap, &req, &mut SmallRng::seed_from_u64(7)).expect("a reply");
        if let Some(b) = branch(&snap, q, &reply) {
            *reached.entry(b).or_default() += 1;
        }
    }
    // The fixture (and its health) must keep every branch in reach: a fixture edit that drops
    // one fails here instead of silently leaving it untested.
    for b in [
        Branch::ServFail,
        Branch::NoData,
        Branch::FailOpen,
        Branch::LoweredTtl,
    ] {
        assert!(
            reached.get(&b).is_some_and(|&n| n > 0),
            "no seed query reached {b:?}: {reached:?}"
        );
    }
}
