//! Service names: A/AAAA computed per query from pools and members, everything else from the
//! zone.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::support::answer_addrs as addrs;
use crate::support::{Meridian, ip};

const SERVICES: &str = r#"
[pools.eu]
members = [
  { address = "192.0.2.10" },
  { address = "192.0.2.11" },
  { address = "2001:db8::10" },
]

[pools.us]
weight = 300
members = [
  { address = "198.51.100.10", weight = 300 },
  { address = "198.51.100.11", weight = 100 },
]

[services."www.example.test."]
pools = ["eu", "us"]
steering = "failover"
select = "all"
ttl = 30

[services."api.example.test."]
pools = ["eu", "us"]
steering = "weighted"
select = "weighted"
max_answers = 1
ttl = 20

[services."two.example.test."]
pools = ["us"]
select = "weighted"
max_answers = 2

[services."rotate.example.test."]
pools = ["eu"]
select = "all"
max_answers = 1
"#;

#[tokio::test]
async fn a_and_aaaa_come_from_the_members_of_the_steered_pool() {
    let m = Meridian::start("", SERVICES).await;
    for r in [
        m.query("www.example.test.", RecordType::A).await,
        m.query_tcp("WWW.example.test.", RecordType::A).await,
    ] {
        assert!(r.metadata.authoritative);
        assert_eq!(addrs(&r), [ip("192.0.2.10"), ip("192.0.2.11")]);
        assert!(r.answers.iter().all(|a| a.ttl == 30));
    }
    let r = m.query("www.example.test.", RecordType::AAAA).await;
    assert_eq!(addrs(&r), [ip("2001:db8::10")]);
}

#[tokio::test]
async fn other_types_and_missing_families_follow_the_zone() {
    let m = Meridian::start("", SERVICES).await;
    // The service name exists, so other types are NODATA with the SOA.
    let r = m.query("www.example.test.", RecordType::MX).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    // A pool without IPv6 members: NODATA for AAAA, not an error.
    let r = m.query("two.example.test.", RecordType::AAAA).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    // A CNAME in the zone that points at a service name is followed into it.
    let r = m.query("to-www.example.test.", RecordType::A).await;
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    assert_eq!(addrs(&r), [ip("192.0.2.10"), ip("192.0.2.11")]);
}

#[tokio::test]
async fn weighted_choice_follows_pool_and_member_weights() {
    let m = Meridian::start("", SERVICES).await;
    let n = 4000;
    let mut counts: HashMap<IpAddr, u32> = HashMap::new();
    for _ in 0..n {
        let r = m.query("api.example.test.", RecordType::A).await;
        let got = addrs(&r);
        assert_eq!(got.len(), 1, "max_answers = 1");
        *counts.entry(got[0]).or_default() += 1;
    }
    let share = |a: &str| f64::from(counts.get(&ip(a)).copied().unwrap_or(0)) / f64::from(n);
    // Pools: eu 100 vs us 300. Inside us: 300 vs 100. Inside eu: 100 vs 100.
    let expected = [
        ("192.0.2.10", 0.125),
        ("192.0.2.11", 0.125),
        ("198.51.100.10", 0.5625),
        ("198.51.100.11", 0.1875),
    ];
    for (a, want) in expected {
        assert!(
            (share(a) - want).abs() < 0.03,
            "{a}: share {} expected {want} ({counts:?})",
            share(a)
        );
    }
}

#[tokio::test]
async fn max_answers_never_repeats_and_rotates_through_members() {
    let m = Meridian::start("", SERVICES).await;
    for _ in 0..200 {
        let got = addrs(&m.query("two.example.test.", RecordType::A).await);
        assert_eq!(got.len(), 2);
        assert_ne!(got[0], got[1]);
    }
    let mut seen = BTreeSet::new();
    for _ in 0..200 {
        let got = addrs(&m.query("rotate.example.test.", RecordType::A).await);
        assert_eq!(got.len(), 1);
        seen.insert(got[0]);
    }
    assert_eq!(
        seen.len(),
        2,
        "select = all with max_answers = 1 hands out every member"
    );
}
