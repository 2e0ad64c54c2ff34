//! Fuzz target: bytes in, answer out. The first byte picks the transport (bit 0: UDP or TCP)
//! and the health of the members (bits 1-7, see `health`); the rest is the packet, answered
//! from a snapshot of the test fixture zone with services of every steering mode and every
//! `when_all_down` choice. No input may panic, every reply must parse, echo the ID and fit its
//! transport, and the fast path must give the same (parsed) answer as the general one.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use hickory_proto::op::Message;
use libfuzzer_sys::fuzz_target;
use meridian::dns::{ClientAddr, Request, Transport, answer, answer_general};
use meridian::health::{HealthState, HealthTable, MemberHealth, Override};
use meridian::{Model, Snapshot};
use rand::SeedableRng;
use rand::rngs::SmallRng;

/// Services over the fixture's `eu` and `us` pools (which get a monitor here, so their health
/// is fuzzed too): the other steering modes, with answers for when pools run short or every
/// member is down.
const MORE_SERVICES: &str = r#"
[services."fo.example.test."]
pools = ["eu", "us"]
steering = "failover"
select = "weighted"
min_healthy = "50%"
when_all_down = "servfail"
[services."wt.example.test."]
pools = ["eu", "us"]
steering = "weighted"
max_answers = 1
when_all_down = "nodata"
[services."fb.example.test."]
pools = ["eu"]
when_all_down = "fallback"
fallback = "us"
[monitors.probe]
type = "tcp"
port = 80
rise = 3
fall = 3
"#;

fn model() -> &'static Arc<Model> {
    static MODEL: OnceLock<Arc<Model>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");
        let fixture = include_str!("../../tests/fixtures/every-steering.toml");
        let steering = fixture
            .replace("[pools.eu]\n", "[pools.eu]\nmonitor = \"probe\"\n")
            .replace("[pools.us]\n", "[pools.us]\nmonitor = \"probe\"\n");
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n{steering}{MORE_SERVICES}"
        );
        let path = std::path::Path::new(fixtures).join("meridian.toml");
        let model = Model::from_text(&path, &text).unwrap_or_else(|e| panic!("fuzz config: {e}"));
        // Health only matters for monitored pools: both fixture pools must have the monitor.
        assert!(
            model.pools.iter().all(|p| model.monitor_of(p).is_some()),
            "every fixture pool is monitored"
        );
        assert!(
            model.member_count() >= 4,
            "the encoding in `health` picks 1 of the first 4 members"
        );
        Arc::new(model)
    })
}

/// The health of every member from the 7 bits of `bits`: bits 0-1 pick one of the first four
/// members, bits 2-4 give it one of 8 states (up, down, failing, recovering, unknown, drained,
/// forced down, forced up), bits 5-6 give every other member one of 4 (up, down, failing,
/// recovering). `bits` = 0 is every member up, as before health was fuzzed.
fn health(model: &Model, bits: u8) -> HealthTable {
    let chosen = usize::from(bits & 3);
    (0..model.member_count())
        .map(|i| {
            let state = if i == chosen {
                (bits >> 2) & 7
            } else {
                (bits >> 5) & 3
            };
            let mut h = MemberHealth::unknown();
            h.state = HealthState::Up;
            match state {
                0 => {}
                1 => h.state = HealthState::Down,
                2 => h.failures = 1,
                3 => {
                    h.state = HealthState::Down;
                    h.successes = 1;
                }
                4 => h.state = HealthState::Unknown,
                5 => h.admin = Some(Override::Drain),
                6 => h.admin = Some(Override::ForceDown),
                _ => {
                    h.state = HealthState::Down;
                    h.admin = Some(Override::ForceUp);
                }
            }
            h
        })
        .collect()
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
    let model = model();
    let snap = Snapshot {
        generation: 1,
        model: model.clone(),
        health: Arc::new(health(model, mode >> 1)),
        published: SystemTime::UNIX_EPOCH,
    };
    let req = Request {
        packet,
        client: ClientAddr("192.0.2.77:5300".parse().unwrap()),
        transport,
        unix_time: 1_764_720_000,
        now: meridian::dns::Instant::now(),
    };
    let reply = answer(&snap, &req, &mut SmallRng::seed_from_u64(u64::from(mode)));
    let general = answer_general(&snap, &req, &mut SmallRng::seed_from_u64(u64::from(mode)));
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
