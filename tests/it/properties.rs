//! Property tests of the answering core (proptest, in the normal suite): random packets and
//! mutations of valid queries never panic, every reply parses, fits its transport and echoes
//! the query's ID, and the fast path (copying encoded records) gives the same answer as the
//! general one (building a message) for every query. The core is called directly (it is the same pure function the UDP and
//! TCP loops call), on a snapshot of the fixture zone with services of every steering mode.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::RecordType;
use meridian::dns::{ClientAddr, Request, Transport, answer, answer_general};
use meridian::{Model, SharedState, Snapshot};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::support::QueryBuilder;

fn snapshot() -> Arc<Snapshot> {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{}",
        include_str!("../fixtures/every-steering.toml")
    );
    // Nothing is written: the config is validated as if it were tests/fixtures/meridian.toml.
    let model =
        Model::from_text(&fixtures.join("meridian.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    SharedState::new(model).load()
}

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
        }
    }
    out.push(
        QueryBuilder::new("www.example.test.", RecordType::A)
            .opcode(OpCode::Update)
            .build(),
    );
    out
}

/// What a reply must satisfy for `query` over `transport`.
fn check(snap: &Snapshot, query: &[u8], transport: Transport) -> Result<(), TestCaseError> {
    let client = ClientAddr("127.0.0.1:53000".parse::<SocketAddr>().unwrap());
    let req = Request {
        packet: query,
        client,
        transport,
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

#[test]
fn every_seed_query_is_answered() {
    let snap = snapshot();
    for (i, q) in seeds().iter().enumerate() {
        check(&snap, q, Transport::Udp).unwrap_or_else(|e| panic!("seed {i}: {e}"));
    }
}
