//! Signed answers (DO set) from the fast path, which copies encoded RRsets and their encoded
//! RRSIGs, are the answers the general path builds: every name of the signed fixture zone, many
//! types, two resolvers on different continents (the geo service answers each differently),
//! UDP with a large and a small payload, and TCP; warm and cold signature caches.

use std::net::SocketAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use meridian::dns::{ClientAddr, Request, Transport, answer, answer_general};
use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::dnssec::{WWW, ZONE, load_model};
use crate::support::QueryBuilder;

/// Every owner of tests/fixtures/dnssec/gslb.test.zone, the empty non-terminal `b`, names under
/// the wildcard and below both cuts, a name that does not exist, the service, mixed case.
const NAMES: [&str; 15] = [
    ZONE,
    "ns1.gslb.test.",
    "static.gslb.test.",
    "STATIC.Gslb.Test.",
    "x.wild.gslb.test.",
    "*.wild.gslb.test.",
    "to-www.gslb.test.",
    "a.b.gslb.test.",
    "b.gslb.test.",
    "secure.gslb.test.",
    "host.secure.gslb.test.",
    "insecure.gslb.test.",
    "nothing.gslb.test.",
    WWW,
    "WWW.GSLB.test.",
];

const TYPES: [RecordType; 11] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::SOA,
    RecordType::NS,
    RecordType::DS,
    RecordType::MX,
    RecordType::CNAME,
    RecordType::RRSIG,
    RecordType::NSEC,
    RecordType::DNSKEY,
];

#[tokio::test]
async fn do_answers_from_the_fast_path_are_the_general_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (state, _eu, _us) = load_model(dir.path(), true).await;
    let snap = state.load();
    let unix_time = meridian::dns::unix_now();
    let mut signed_answers = 0;
    // Twice: the first round fills the caches (each path may be the one that signs), the second
    // serves from them.
    for _round in 0..2 {
        for from in ["127.0.0.53:5300", "127.0.2.53:5300"] {
            let client = ClientAddr(from.parse::<SocketAddr>().unwrap());
            for name in NAMES {
                for qtype in TYPES {
                    for (payload, transport) in [
                        (1232, Transport::Udp),
                        (512, Transport::Udp),
                        (1232, Transport::Tcp),
                    ] {
                        let q = QueryBuilder::new(name, qtype)
                            .edns(payload)
                            .dnssec_ok()
                            .build();
                        let req = Request {
                            packet: &q,
                            client,
                            transport,
                            unix_time,
                            now: tokio::time::Instant::now(),
                        };
                        let fast = answer(&snap, &req, &mut SmallRng::seed_from_u64(5));
                        let general = answer_general(&snap, &req, &mut SmallRng::seed_from_u64(5));
                        let fast = Message::from_vec(&fast.expect("a reply")).expect("parses");
                        let general =
                            Message::from_vec(&general.expect("a reply")).expect("parses");
                        assert_eq!(
                            fast, general,
                            "{name} {qtype} {payload} {transport:?} {from}"
                        );
                        let sigs = fast
                            .answers
                            .iter()
                            .filter(|r| r.record_type() == RecordType::RRSIG)
                            .count();
                        signed_answers += usize::from(sigs > 0);
                    }
                }
            }
        }
    }
    // Static RRsets, the service's members, CNAME chains, the key records: many are signed.
    assert!(signed_answers > 100, "{signed_answers} signed answers");
}
