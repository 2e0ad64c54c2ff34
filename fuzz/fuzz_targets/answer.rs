//! Fuzz target: bytes in, answer out. The first byte picks the transport (even: UDP, odd:
//! TCP); the rest is the packet, answered from a snapshot of the test fixture zone with
//! services of every steering mode. No input may panic, every reply must parse, echo the ID and
//! fit its transport, and the fast path must give the same (parsed) answer as the general one.
#![no_main]

use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use meridian::dns::{ClientAddr, Request, Transport, answer, answer_general};
use meridian::{Model, SharedState, Snapshot};
use rand::SeedableRng;
use rand::rngs::SmallRng;

fn snapshot() -> &'static Arc<Snapshot> {
    static SNAP: OnceLock<Arc<Snapshot>> = OnceLock::new();
    SNAP.get_or_init(|| {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{}",
            include_str!("../../tests/fixtures/every-steering.toml")
        );
        let path = std::path::Path::new(fixtures).join("meridian.toml");
        let model = Model::from_text(&path, &text).unwrap_or_else(|e| panic!("fuzz config: {e}"));
        SharedState::new(model).load()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, packet)) = data.split_first() else {
        return;
    };
    let transport = if mode & 1 == 0 {
        Transport::Udp
    } else {
        Transport::Tcp
    };
    let req = Request {
        packet,
        client: ClientAddr("192.0.2.77:5300".parse().unwrap()),
        transport,
    };
    let reply = answer(snapshot(), &req, &mut SmallRng::seed_from_u64(u64::from(mode)));
    let general = answer_general(snapshot(), &req, &mut SmallRng::seed_from_u64(u64::from(mode)));
    assert_eq!(
        reply.as_deref().map(|r| Message::from_vec(r).ok()),
        general.as_deref().map(|r| Message::from_vec(r).ok()),
        "fast and general paths agree"
    );
    if let Some(reply) = reply {
        Message::from_vec(&reply).expect("every reply parses");
        assert_eq!(&reply[..2], &packet[..2], "ID echoed");
        let limit = if transport == Transport::Udp {
            1232
        } else {
            65535
        };
        assert!(reply.len() <= limit, "reply fits its transport");
    }
});
