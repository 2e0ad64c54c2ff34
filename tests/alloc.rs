//! The answering core allocates nothing on the heap per query in steady state: the fast path
//! writes into the worker's reused buffer, selection keeps its lists inline. Its own test binary,
//! because it counts allocations (per thread) with `allocation-counter`'s global allocator.

use std::net::SocketAddr;
use std::path::Path;

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RecordType};
use meridian::dns::{ClientAddr, Request, Transport, answer_into};
use meridian::{Model, SharedState};
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn query(name: &str, qtype: RecordType, ecs: Option<(&str, u8)>) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 7;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    if let Some((addr, prefix)) = ecs {
        let subnet = ClientSubnet::new(addr.parse().unwrap(), prefix, 0);
        e.options_mut().insert(EdnsOption::Subnet(subnet));
    }
    m.set_edns(e);
    m.to_vec().unwrap()
}

#[test]
fn fast_path_queries_allocate_nothing() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{}",
        include_str!("fixtures/every-steering.toml")
    );
    let model = Model::from_text(&fixtures.join("meridian.toml"), &text).unwrap();
    let state = SharedState::new(model);
    let queries = [
        query("static.example.test.", RecordType::A, None),
        query("Static.Example.test.", RecordType::AAAA, None),
        query("nothing.example.test.", RecordType::A, None),
        query("b.example.test.", RecordType::A, None),
        query("www.example.test.", RecordType::A, None),
        query("www.example.test.", RecordType::A, Some(("127.0.0.4", 24))),
        query("near.example.test.", RecordType::A, Some(("127.0.0.6", 24))),
        query(
            "sticky.example.test.",
            RecordType::A,
            Some(("127.0.0.2", 24)),
        ),
    ];
    let client = ClientAddr("127.0.0.1:5300".parse::<SocketAddr>().unwrap());
    let mut rng = SmallRng::seed_from_u64(3);
    let mut out = Vec::with_capacity(65_535);
    let mut run = |rounds: usize| {
        let mut answered = 0;
        for _ in 0..rounds {
            let snap = state.peek();
            for packet in &queries {
                let req = Request {
                    packet,
                    client,
                    transport: Transport::Udp,
                    unix_time: meridian::dns::unix_now(),
                    now: tokio::time::Instant::now(),
                };
                answered += usize::from(answer_into(&snap, &req, &mut rng, &mut out).replied());
            }
        }
        answered
    };
    // Warm-up: lazily initialised state (GeoIP reader caches, thread-locals) settles first.
    assert_eq!(run(10), 10 * queries.len());
    let mut answered = 0;
    let info = allocation_counter::measure(|| answered = run(100));
    assert_eq!(answered, 100 * queries.len());
    assert_eq!(info.count_total, 0, "{info:?}");

    // The counter is live: the convenience wrapper that returns a fresh Vec allocates.
    let req = Request {
        packet: &queries[0],
        client,
        transport: Transport::Udp,
        unix_time: meridian::dns::unix_now(),
        now: tokio::time::Instant::now(),
    };
    let info = allocation_counter::measure(|| {
        assert!(meridian::dns::answer(&state.peek(), &req, &mut rng).is_some());
    });
    assert!(info.count_total > 0, "{info:?}");
}
