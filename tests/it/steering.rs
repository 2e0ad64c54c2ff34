//! Steering and selection over real DNS: weighted shares, hash stickiness and minimal movement,
//! `min_healthy`, EDNS Client Subnet echo and scope, and (with the sample GeoIP database) geo
//! and proximity steering and `meridian explain`.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};
use meridian::health::overrides::{Action, Selector};

use crate::support::{Meridian, QueryBuilder, parse, udp_bulk};

fn addrs(msg: &Message) -> Vec<IpAddr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// The ECS option of a reply, if any.
fn reply_subnet(msg: &Message) -> Option<ClientSubnet> {
    match msg.edns.as_ref()?.options().get(EdnsCode::Subnet)? {
        EdnsOption::Subnet(s) => Some(*s),
        other => panic!("ECS option did not parse: {other:?}"),
    }
}

async fn set(m: &Meridian, pool: &str, member: Option<&str>, action: Action) {
    m.control
        .apply(
            Selector {
                pool: pool.to_string(),
                member: member.map(str::to_string),
            },
            action,
        )
        .await
        .expect("admin action");
}

const HASHED: &str = r#"
[pools.ten]
members = [
  { address = "192.0.2.1" }, { address = "192.0.2.2" }, { address = "192.0.2.3" },
  { address = "192.0.2.4" }, { address = "192.0.2.5" }, { address = "192.0.2.6" },
  { address = "192.0.2.7" }, { address = "192.0.2.8" }, { address = "192.0.2.9" },
  { address = "192.0.2.10" },
]

[pools.a]
members = [{ address = "198.51.100.1" }]
[pools.b]
members = [{ address = "198.51.100.2" }]
[pools.c]
members = [{ address = "198.51.100.3" }]
[pools.d]
members = [{ address = "198.51.100.4" }]

[pools.weighted]
members = [
  { address = "203.0.113.1", weight = 100 },
  { address = "203.0.113.2", weight = 300 },
  { address = "203.0.113.3", weight = 600 },
]

[pools.half]
members = [
  { address = "203.0.113.11" }, { address = "203.0.113.12" },
  { address = "203.0.113.13" }, { address = "203.0.113.14" },
]

[services."sticky.example.test."]
pools = ["ten"]
select = "hash"
max_answers = 1

[services."sites.example.test."]
pools = ["a", "b", "c", "d"]
steering = "hash"

[services."shares.example.test."]
pools = ["weighted"]
select = "weighted"
max_answers = 2

[services."picky.example.test."]
pools = ["half", "a"]
min_healthy = "50%"
"#;

/// One query per client network (ECS /24 from 10.x.y.0), IDs 0..n.
fn per_network_queries(name: &str, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let net = Ipv4Addr::new(10, (i >> 8) as u8, i as u8, 0).to_string();
            QueryBuilder::new(name, RecordType::A)
                .id(i as u16)
                .ecs(&net, 24)
                .build()
        })
        .collect()
}

#[tokio::test]
async fn weighted_selection_follows_member_weights_over_20000_queries() {
    let m = Meridian::start("", HASHED).await;
    let n = 20_000;
    let packets: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            QueryBuilder::new("shares.example.test.", RecordType::A)
                .id(i as u16)
                .build()
        })
        .collect();
    let mut firsts: HashMap<IpAddr, u32> = HashMap::new();
    for r in udp_bulk(m.udp, &packets, 64).await {
        let got = addrs(&r);
        assert_eq!(got.len(), 2, "max_answers = 2");
        assert_ne!(got[0], got[1], "max_answers never repeats a member");
        *firsts.entry(got[0]).or_default() += 1;
    }
    // The first record is one weighted draw over 100 : 300 : 600.
    for (addr, want) in [
        ("203.0.113.1", 0.1),
        ("203.0.113.2", 0.3),
        ("203.0.113.3", 0.6),
    ] {
        let share = f64::from(firsts[&addr.parse::<IpAddr>().unwrap()]) / f64::from(n);
        assert!(
            (share - want).abs() <= 0.02,
            "{addr}: {share:.4} of first records, expected {want} ± 0.02 ({firsts:?})"
        );
    }
}

#[tokio::test]
async fn hash_selection_sticks_and_moves_only_the_removed_members_share() {
    let m = Meridian::start("", HASHED).await;
    // The same client network gets the same member, 1,000 times.
    let same: Vec<Vec<u8>> = (0..1000)
        .map(|i| {
            QueryBuilder::new("sticky.example.test.", RecordType::A)
                .id(i)
                .ecs("10.1.2.0", 24)
                .build()
        })
        .collect();
    let answers: BTreeSet<Vec<IpAddr>> =
        udp_bulk(m.udp, &same, 64).await.iter().map(addrs).collect();
    assert_eq!(answers.len(), 1, "one network, one answer: {answers:?}");

    // 10,000 networks spread over 10 members; force one down and count who moved.
    let n = 10_000;
    let packets = per_network_queries("sticky.example.test.", n);
    let before: Vec<IpAddr> = udp_bulk(m.udp, &packets, 64)
        .await
        .iter()
        .map(|r| addrs(r)[0])
        .collect();
    let mut load: HashMap<IpAddr, usize> = HashMap::new();
    for a in &before {
        *load.entry(*a).or_default() += 1;
    }
    assert_eq!(load.len(), 10, "every member serves some networks");
    assert!(
        load.values().all(|&c| (700..=1300).contains(&c)),
        "equal weights spread evenly: {load:?}"
    );

    let gone: IpAddr = "192.0.2.4".parse().unwrap();
    set(&m, "ten", Some("192.0.2.4"), Action::ForceDown).await;
    let after: Vec<IpAddr> = udp_bulk(m.udp, &packets, 64)
        .await
        .iter()
        .map(|r| addrs(r)[0])
        .collect();
    let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
    assert!(
        after.iter().all(|a| *a != gone),
        "the removed member is gone"
    );
    // Exactly the networks the removed member served move, and nobody else.
    assert_eq!(moved, load[&gone]);
    assert!(
        moved as f64 / n as f64 <= 1.0 / 10.0 + 0.05,
        "{moved} of {n} networks moved"
    );
    for (b, a) in before.iter().zip(&after) {
        if *b != gone {
            assert_eq!(b, a, "a network whose member stayed kept it");
        }
    }
}

#[tokio::test]
async fn hash_steering_sticks_networks_to_pools_and_moves_only_a_failed_pools_clients() {
    let m = Meridian::start("", HASHED).await;
    let n = 4000;
    let packets = per_network_queries("sites.example.test.", n);
    let before: Vec<IpAddr> = udp_bulk(m.udp, &packets, 64)
        .await
        .iter()
        .map(|r| addrs(r)[0])
        .collect();
    let again: Vec<IpAddr> = udp_bulk(m.udp, &packets, 64)
        .await
        .iter()
        .map(|r| addrs(r)[0])
        .collect();
    assert_eq!(before, again, "every network sticks to its pool");
    let pools: BTreeSet<&IpAddr> = before.iter().collect();
    assert_eq!(pools.len(), 4, "all four pools get networks");

    set(&m, "b", None, Action::ForceDown).await;
    let b: IpAddr = "198.51.100.2".parse().unwrap();
    let after: Vec<IpAddr> = udp_bulk(m.udp, &packets, 64)
        .await
        .iter()
        .map(|r| addrs(r)[0])
        .collect();
    for (was, now) in before.iter().zip(&after) {
        if *was == b {
            assert_ne!(*now, b);
        } else {
            assert_eq!(was, now, "only pool b's networks move");
        }
    }
}

#[tokio::test]
async fn min_healthy_skips_a_pool_below_its_share() {
    let m = Meridian::start("", HASHED).await;
    let r = m.query("picky.example.test.", RecordType::A).await;
    assert_eq!(addrs(&r).len(), 4, "pool half is whole");
    // 2 of 4 usable is still 50%.
    set(&m, "half", Some("203.0.113.11"), Action::ForceDown).await;
    set(&m, "half", Some("203.0.113.12"), Action::ForceDown).await;
    let r = m.query("picky.example.test.", RecordType::A).await;
    assert_eq!(
        addrs(&r),
        [
            "203.0.113.13".parse::<IpAddr>().unwrap(),
            "203.0.113.14".parse().unwrap()
        ]
    );
    // 1 of 4 is below: the next pool answers.
    set(&m, "half", Some("203.0.113.13"), Action::ForceDown).await;
    let r = m.query("picky.example.test.", RecordType::A).await;
    assert_eq!(addrs(&r), ["198.51.100.1".parse::<IpAddr>().unwrap()]);
    // Nothing meets it anywhere: a pool with any usable member still answers rather than none.
    set(&m, "a", None, Action::ForceDown).await;
    let r = m.query("picky.example.test.", RecordType::A).await;
    assert_eq!(addrs(&r), ["203.0.113.14".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn ecs_is_echoed_with_the_scope_the_decision_used() {
    let m = Meridian::start("", HASHED).await;
    let ask = |name: &str, addr: &str, prefix: u8| {
        QueryBuilder::new(name, RecordType::A)
            .ecs(addr, prefix)
            .build()
    };
    // Not client-specific (failover over pools, all members): scope 0, rest echoed as sent.
    let r = parse(&m.udp_raw(&ask("picky.example.test.", "10.9.8.0", 24)).await);
    let s = reply_subnet(&r).expect("ECS echoed");
    assert_eq!(
        (s.addr(), s.source_prefix(), s.scope_prefix()),
        ("10.9.8.0".parse().unwrap(), 24, 0)
    );
    // Weighted selection: random, not client-specific.
    let r = parse(
        &m.udp_raw(&ask("shares.example.test.", "10.9.8.0", 24))
            .await,
    );
    assert_eq!(reply_subnet(&r).unwrap().scope_prefix(), 0);
    // Hash selection keys on the /24.
    let r = parse(
        &m.udp_raw(&ask("sticky.example.test.", "10.9.8.0", 24))
            .await,
    );
    assert_eq!(reply_subnet(&r).unwrap().scope_prefix(), 24);
    // ... capped at a shorter source prefix,
    let r = parse(&m.udp_raw(&ask("sites.example.test.", "10.9.0.0", 16)).await);
    let s = reply_subnet(&r).unwrap();
    assert_eq!((s.source_prefix(), s.scope_prefix()), (16, 16));
    // ... and IPv6 networks key on the /56.
    let r = parse(
        &m.udp_raw(&ask("sites.example.test.", "2001:db8:1:2::", 64))
            .await,
    );
    let s = reply_subnet(&r).unwrap();
    assert_eq!((s.source_prefix(), s.scope_prefix()), (64, 56));
    // Static names are not tailored: scope 0.
    let r = parse(&m.udp_raw(&ask("example.test.", "10.9.8.0", 24)).await);
    assert_eq!(reply_subnet(&r).unwrap().scope_prefix(), 0);
    // Over TCP too.
    let r = parse(
        &m.tcp_raw(&ask("sticky.example.test.", "10.9.8.0", 24))
            .await,
    );
    assert_eq!(reply_subnet(&r).unwrap().scope_prefix(), 24);
    // A /0 source: the resolver asked us not to use client addresses; scope stays 0.
    let r = parse(&m.udp_raw(&ask("sticky.example.test.", "0.0.0.0", 0)).await);
    let s = reply_subnet(&r).unwrap();
    assert_eq!((s.source_prefix(), s.scope_prefix()), (0, 0));
}

#[tokio::test]
async fn no_ecs_in_replies_to_queries_without_it() {
    let m = Meridian::start("", HASHED).await;
    for name in [
        "sticky.example.test.",
        "sites.example.test.",
        "example.test.",
    ] {
        let r = m.query(name, RecordType::A).await;
        assert!(r.edns.is_some(), "EDNS query, EDNS reply");
        assert!(reply_subnet(&r).is_none(), "{name}: no ECS added");
    }
}

#[tokio::test]
async fn malformed_ecs_gets_formerr() {
    let m = Meridian::start("", HASHED).await;
    // RFC 7871 §6: address bits set beyond the source prefix.
    let q = QueryBuilder::new("sticky.example.test.", RecordType::A)
        .id(0x4242)
        .ecs("10.9.8.0", 20)
        .build();
    let r = parse(&m.udp_raw(&q).await);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(r.metadata.id, 0x4242);
}
