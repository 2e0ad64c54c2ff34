//! Steering and selection over real DNS: weighted shares, hash stickiness and minimal movement,
//! `min_healthy`, EDNS Client Subnet echo and scope, and (with the sample GeoIP database) geo
//! and proximity steering and `meridian explain`.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use meridian::health::overrides::{Action, Selector};

use crate::support::answer_addrs as addrs;
use crate::support::{Meridian, QueryBuilder, ips, parse, udp_bulk};

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

// ---- Geography, with the bundled sample database (geo-data/sample.csv says where each
// loopback /24 is: 127.0.0 London, .1 Frankfurt, .2 New York, .4 Tokyo, .5 Singapore,
// .6 Sydney, .7 São Paulo, .8 Johannesburg, .10 Paris without a continent column; 127.1/16
// is absent).

fn sample_db() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("geo-data/sample.mmdb")
        .display()
        .to_string()
}

fn geo_config() -> String {
    format!(
        r#"
[geo]
database = "{}"

[pools.eu]
continent = "EU"
countries = ["GB"]
location = [51.5074, -0.1278]
members = [{{ address = "192.0.2.1" }}, {{ address = "2001:db8::1" }}]

[pools.us]
continent = "NA"
location = [40.7128, -74.0060]
members = [{{ address = "198.51.100.1" }}]

[pools.ap]
continent = "AS"
countries = ["JP"]
location = [35.6762, 139.6503]
members = [{{ address = "203.0.113.1" }}]

[pools.au]
continent = "OC"
location = [-33.8688, 151.2093]
members = [{{ address = "203.0.113.2" }}]

[services."geo.example.test."]
pools = ["eu", "us", "ap"]
steering = "geo"

[services."geo.example.test.".map]
continents = {{ OC = ["ap", "us"] }}
nets = {{ "127.0.8.0/25" = ["ap"] }}
default = ["us", "eu", "ap"]

[services."near.example.test."]
pools = ["eu", "us", "ap", "au"]
steering = "proximity"
"#,
        sample_db()
    )
}

async fn a_from(m: &Meridian, from: &str, name: &str) -> Vec<IpAddr> {
    let q = QueryBuilder::new(name, RecordType::A).build();
    addrs(&parse(
        &crate::support::udp_exchange_from(from.parse().unwrap(), m.udp, &q).await,
    ))
}

async fn a_for_subnet(m: &Meridian, net: &str, prefix: u8, name: &str) -> (Vec<IpAddr>, u8) {
    let q = QueryBuilder::new(name, RecordType::A)
        .ecs(net, prefix)
        .build();
    let r = parse(&m.udp_raw(&q).await);
    let scope = reply_subnet(&r).expect("ECS echoed").scope_prefix();
    (addrs(&r), scope)
}

const EU: &str = "192.0.2.1";
const US: &str = "198.51.100.1";
const AP: &str = "203.0.113.1";
const AU: &str = "203.0.113.2";

#[tokio::test]
async fn geo_sends_each_continent_to_its_pool_by_source_address_and_by_ecs() {
    let m = Meridian::start("", &geo_config()).await;
    let cases = [
        ("127.0.0.1", EU, "GB is listed by pool eu"),
        ("127.0.1.1", EU, "DE: continent EU"),
        ("127.0.10.1", EU, "FR: continent from the built-in table"),
        ("127.0.2.1", US, "US: continent NA"),
        ("127.0.4.1", AP, "JP is listed by pool ap"),
        ("127.0.5.1", AP, "SG: continent AS"),
        ("127.0.6.1", AP, "AU: map.continents.OC"),
        ("127.0.7.1", US, "BR: no entry, default order"),
        ("127.0.8.1", AP, "inside map.nets 127.0.8.0/25"),
        (
            "127.0.8.200",
            US,
            "ZA outside the nets entry: default order",
        ),
        ("127.1.0.1", US, "not in the database: default order"),
    ];
    for (from, want, why) in cases {
        assert_eq!(
            a_from(&m, from, "geo.example.test.").await,
            ips(&[want]),
            "{from}: {why}"
        );
        // The same client as an ECS address, asked from 127.0.0.1 (London).
        let (got, _) = a_for_subnet(&m, from, 32, "geo.example.test.").await;
        assert_eq!(got, ips(&[want]), "ECS {from}/32: {why}");
    }
    // AAAA comes from the same pool: eu has an IPv6 member, us has none (NODATA).
    let q = QueryBuilder::new("geo.example.test.", RecordType::AAAA).build();
    let r =
        parse(&crate::support::udp_exchange_from("127.0.0.1".parse().unwrap(), m.udp, &q).await);
    assert_eq!(addrs(&r), ips(&["2001:db8::1"]));
    let r =
        parse(&crate::support::udp_exchange_from("127.0.2.1".parse().unwrap(), m.udp, &q).await);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty(), "us has no IPv6 member");
}

#[tokio::test]
async fn geo_with_a_map_of_nets_alone_needs_no_database() {
    let config = format!(
        r#"
[pools.eu]
members = [{{ address = "{EU}" }}]
[pools.us]
members = [{{ address = "{US}" }}]

[services."nets.example.test."]
pools = ["eu", "us"]
steering = "geo"

[services."nets.example.test.".map]
nets = {{ "127.0.8.0/24" = ["us"] }}
default = ["eu"]
"#
    );
    let m = Meridian::start("", &config).await;
    assert_eq!(
        a_from(&m, "127.0.8.1", "nets.example.test.").await,
        ips(&[US])
    );
    assert_eq!(
        a_from(&m, "127.0.9.1", "nets.example.test.").await,
        ips(&[EU])
    );
    // A pool naming its countries needs the database to find them.
    let with_countries = config.replace("[pools.us]\n", "[pools.us]\ncountries = [\"US\"]\n");
    let err = crate::support::error_of(
        &crate::support::config_text("", &with_countries),
        crate::support::ZONE,
    );
    assert!(
        err.ends_with(
            "services.\"nets.example.test.\".steering = \"geo\" needs a GeoIP database to look up countries and continents: add [geo] database = \"...\""
        ),
        "{err}"
    );
}

#[tokio::test]
async fn geo_falls_through_the_clients_list_when_its_pool_is_down() {
    let m = Meridian::start("", &geo_config()).await;
    set(&m, "ap", None, Action::ForceDown).await;
    // JP: ap, then other AS pools (none), then the default order: us.
    assert_eq!(
        a_from(&m, "127.0.4.1", "geo.example.test.").await,
        ips(&[US])
    );
    set(&m, "us", None, Action::ForceDown).await;
    assert_eq!(
        a_from(&m, "127.0.4.1", "geo.example.test.").await,
        ips(&[EU])
    );
    // GB: eu, then the rest of the default order.
    set(&m, "ap", None, Action::Clear).await;
    set(&m, "us", None, Action::Clear).await;
    set(&m, "eu", None, Action::ForceDown).await;
    assert_eq!(
        a_from(&m, "127.0.0.1", "geo.example.test.").await,
        ips(&[US])
    );
}

#[tokio::test]
async fn geo_and_proximity_scopes_follow_the_matched_network() {
    let m = Meridian::start("", &geo_config()).await;
    let cases = [
        // (ECS network, prefix, service, answer, scope). The scope is the widest network
        // around the client whose every address gets the same pool order: neighbouring
        // database networks with the same order count as one.
        // JP (a country entry) and SG (continent AS) both rank ap, us, eu: 127.0.4.0/23.
        ("127.0.4.0", 24, "geo.example.test.", AP, 23),
        // New York and San Francisco, both NA: 127.0.2.0/23.
        ("127.0.2.77", 32, "geo.example.test.", US, 23),
        // A shorter source than the database network: capped at the source.
        ("127.0.0.0", 16, "geo.example.test.", EU, 16),
        // A nets entry: its own prefix.
        ("127.0.8.0", 25, "geo.example.test.", AP, 25),
        // Outside the nets entry but inside the database /24 that contains it: the answer
        // holds only for the /25.
        ("127.0.8.128", 25, "geo.example.test.", US, 25),
        // Unknown to the database (the default order, as for every unlisted address from
        // 127.0.11.0 on): 127.1.0.0/16 is the widest network that misses the listed ones.
        ("127.1.0.0", 24, "geo.example.test.", US, 16),
        // Singapore and Tokyo rank the four pools alike: 127.0.4.0/23 again.
        ("127.0.5.0", 24, "near.example.test.", AP, 23),
    ];
    for (net, prefix, name, want, scope) in cases {
        assert_eq!(
            a_for_subnet(&m, net, prefix, name).await,
            (ips(&[want]), scope),
            "{name} for {net}/{prefix}"
        );
    }
}

/// Great-circle distance, computed here independently of Meridian's code.
fn km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1, la2, lo2) = (
        a.0.to_radians(),
        a.1.to_radians(),
        b.0.to_radians(),
        b.1.to_radians(),
    );
    let cos = la1.sin() * la2.sin() + la1.cos() * la2.cos() * (lo2 - lo1).cos();
    6371.0088 * cos.clamp(-1.0, 1.0).acos()
}

#[tokio::test]
async fn proximity_orders_pools_by_distance_and_skips_a_down_pool() {
    let m = Meridian::start("", &geo_config()).await;
    let sites = [
        ("eu", (51.5074, -0.1278)),
        ("us", (40.7128, -74.0060)),
        ("ap", (35.6762, 139.6503)),
        ("au", (-33.8688, 151.2093)),
    ];
    // Singapore and São Paulo, as in geo-data/sample.csv.
    for (from, here, first) in [
        ("127.0.5.1", (1.3521, 103.8198), AP),
        ("127.0.7.1", (-23.5505, -46.6333), US),
    ] {
        let mut by_distance: Vec<(f64, &str)> = sites
            .iter()
            .map(|(name, at)| (km(here, *at), *name))
            .collect();
        by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
        let explained = explain_json(&m, &["near.example.test.", "A", "--client", from]).await;
        let pools = explained["pools"].as_array().unwrap();
        let order: Vec<&str> = pools.iter().map(|p| p["name"].as_str().unwrap()).collect();
        let want: Vec<&str> = by_distance.iter().map(|(_, n)| *n).collect();
        assert_eq!(order, want, "from {from}");
        for (p, (d, _)) in pools.iter().zip(&by_distance) {
            let got = p["distance_km"].as_f64().unwrap();
            assert!(
                (got - d).abs() < 1.0,
                "{}: {got} km vs {d:.1} km",
                p["name"]
            );
        }
        assert_eq!(a_from(&m, from, "near.example.test.").await, ips(&[first]));
    }
    // Singapore's nearest pool down: the next nearest (Sydney).
    set(&m, "ap", None, Action::ForceDown).await;
    assert_eq!(
        a_from(&m, "127.0.5.1", "near.example.test.").await,
        ips(&[AU])
    );
}

/// Runs `meridian explain --json` on the running test instance's config.
async fn explain_json(m: &Meridian, args: &[&str]) -> serde_json::Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("explain")
        .arg("--config")
        .arg(&m.config_path)
        .args(args)
        .arg("--json")
        .output()
        .await
        .expect("run meridian explain");
    assert!(
        out.status.success(),
        "explain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("explain prints JSON")
}

#[tokio::test]
async fn explain_reports_location_pools_members_ttl_and_scope() {
    let m = Meridian::start("", &geo_config()).await;
    let ask = |name| [name, "A", "--client", "127.0.0.1", "--ecs", "127.0.4.0/24"];
    let got = explain_json(&m, &ask("geo.example.test.")).await;
    let want = serde_json::json!({
        "name": "geo.example.test.",
        "qtype": "A",
        "client": {
            "address": "127.0.4.0",
            "ecs": "127.0.4.0/24",
            "location": {
                "network": "127.0.4.0/24",
                "country": "JP",
                "continent": "AS",
                "latitude": 35.6762,
                "longitude": 139.6503,
            },
        },
        "steering": "geo",
        "basis": "country JP",
        "min_healthy": "1",
        "pools": [
            { "rank": 1, "name": "ap", "weight": 100, "usable": 1, "members": 1, "needed": 1, "distance_km": null, "chosen": true },
            { "rank": 2, "name": "us", "weight": 100, "usable": 1, "members": 1, "needed": 1, "distance_km": null, "chosen": false },
            { "rank": 3, "name": "eu", "weight": 100, "usable": 2, "members": 2, "needed": 1, "distance_km": null, "chosen": false },
        ],
        "answer": {
            "outcome": "members",
            "pool": "ap",
            "when_all_down": null,
            "selection": "all",
            "members": [{ "address": "203.0.113.1", "weight": 100, "effective_weight": 100, "weight_source": "configured", "state": "up" }],
            "ttl": 30,
            // Tokyo's /24 and Singapore's beside it get the same order: the /23.
            "ecs_scope": 23,
        },
        "health": "offline: no probes run, monitored members assumed up; saved overrides applied",
    });
    for key in want.as_object().unwrap().keys() {
        assert_eq!(got[key], want[key], "field {key}");
    }
    assert_eq!(got, want);

    // Typed as with dig, without the final dot: the same name.
    let undotted = explain_json(&m, &ask("geo.example.test")).await;
    assert_eq!(undotted, want);

    // Not a service: a clear error, exit 1.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["explain", "--config"])
        .arg(&m.config_path)
        .args(["static.example.test.", "A", "--client", "127.0.0.1"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: static.example.test. is not a service name: its answers are static (ask it with dig)"
    );
}

#[tokio::test]
async fn a_replaced_database_is_used_after_a_reload_and_a_broken_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("geo.mmdb");
    std::fs::copy(sample_db(), &db).unwrap();
    let config = geo_config().replace(&sample_db(), "geo.mmdb");
    let m = Meridian::start_at(dir.path(), "", &config).await;
    // 127.1.0.0/16 is not in the sample: the default order.
    assert_eq!(
        a_from(&m, "127.1.0.1", "geo.example.test.").await,
        ips(&[US])
    );

    // A new file on disk puts it in Japan; a reload picks it up.
    let japan = crate::geodb::Db::v6("Test-City")
        .net(
            "127.1.0.0/16",
            serde_json::json!({ "country": { "iso_code": "JP" }, "continent": { "code": "AS" } }),
        )
        .bytes();
    std::fs::write(&db, japan).unwrap();
    let model = meridian::Model::load(&m.config_path).expect("new database loads");
    m.control.reload(model).await.expect("reload");
    assert_eq!(
        a_from(&m, "127.1.0.1", "geo.example.test.").await,
        ips(&[AP])
    );

    // A broken file is refused with the config line and the reason; the running one stays.
    std::fs::write(&db, b"not a database").unwrap();
    let err = meridian::Model::load(&m.config_path)
        .unwrap_err()
        .to_string();
    let written = std::fs::read_to_string(&m.config_path).unwrap();
    let line = written
        .lines()
        .position(|l| l.starts_with("database"))
        .unwrap()
        + 1;
    assert_eq!(
        err,
        format!(
            "{}:{line}: geo.database: {}: not a MaxMind DB file (metadata marker not found)",
            m.config_path.display(),
            dir.path().join("geo.mmdb").display()
        )
    );
    assert_eq!(
        a_from(&m, "127.1.0.1", "geo.example.test.").await,
        ips(&[AP])
    );
}

#[tokio::test]
async fn explain_over_http_and_the_cli_use_live_health() {
    let config = format!("{}\n[http]\nlisten = \"127.0.0.1:0\"\n", geo_config());
    let m = Meridian::start("", &config).await;
    set(&m, "ap", None, Action::ForceDown).await;
    let (status, body) = crate::support::get(
        &m,
        "/api/v1/explain?name=geo.example.test.&type=A&client=127.0.0.1&ecs=127.0.4.0%2F24",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let got: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(got["health"], "live");
    assert_eq!(got["basis"], "country JP");
    assert_eq!(got["pools"][0]["name"], "ap");
    assert_eq!(got["pools"][0]["usable"], 0);
    assert_eq!(got["pools"][1]["chosen"], true);
    assert_eq!(got["answer"]["pool"], "us");
    assert_eq!(got["answer"]["members"][0]["address"], US);
    assert_eq!(got["answer"]["ecs_scope"], 23);

    // The CLI asks the running server when the config's [http] address answers. The test
    // server listens on a port the kernel chose, so point a copy of the config at it.
    let live = std::fs::read_to_string(&m.config_path)
        .unwrap()
        .replace("127.0.0.1:0\"\n", &format!("{}\"\n", m.http.unwrap()));
    let copy = m.config_path.with_file_name("live.toml");
    std::fs::write(&copy, live).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("explain")
        .arg("--config")
        .arg(&copy)
        .args(["geo.example.test.", "A", "--client", "127.0.4.1"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1. ap               0/1 usable"), "{text}");
    assert!(text.contains("answer from pool us"), "{text}");
    assert!(text.trim_end().ends_with("health: live"), "{text}");

    // Without the final dot, the same name.
    let (status, body) = crate::support::get(
        &m,
        "/api/v1/explain?name=geo.example.test&type=A&client=127.0.0.1&ecs=127.0.4.0%2F24",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let undotted: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(undotted["name"], "geo.example.test.");
    assert_eq!(undotted["answer"]["pool"], "us");

    // Names that are not services, and bad parameters.
    let (status, body) = crate::support::get(
        &m,
        "/api/v1/explain?name=static.example.test.&client=127.0.0.1",
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) =
        crate::support::get(&m, "/api/v1/explain?name=geo.example.test.&client=nowhere").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn two_instances_with_the_same_config_answer_each_client_alike() {
    let config = format!(
        r#"{}
[pools.ten]
members = [
  {{ address = "192.0.2.101" }}, {{ address = "192.0.2.102" }}, {{ address = "192.0.2.103" }},
  {{ address = "192.0.2.104" }}, {{ address = "192.0.2.105" }}, {{ address = "192.0.2.106" }},
]

[services."sticky.example.test."]
pools = ["ten", "us"]
steering = "hash"
select = "hash"
max_answers = 2
"#,
        geo_config()
    );
    let one = Meridian::start("", &config).await;
    let two = Meridian::start("", &config).await;
    let mut compared = 0;
    for name in [
        "geo.example.test.",
        "near.example.test.",
        "sticky.example.test.",
    ] {
        for net in 0..=10u8 {
            for host in [1u8, 77, 200] {
                let addr = format!("127.0.{net}.{host}");
                let q = QueryBuilder::new(name, RecordType::A)
                    .ecs(&addr, 32)
                    .build();
                let a = parse(&one.udp_raw(&q).await);
                let b = parse(&two.udp_raw(&q).await);
                assert_eq!(addrs(&a), addrs(&b), "{name} for {addr}");
                assert_eq!(
                    reply_subnet(&a),
                    reply_subnet(&b),
                    "{name} for {addr}: scope"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 3 * 11 * 3);
}

#[tokio::test]
async fn an_all_down_nodata_answer_is_not_client_specific() {
    let config = format!(
        "{HASHED}\n[services.\"gone.example.test.\"]\npools = [\"a\", \"b\"]\nsteering = \"hash\"\nwhen_all_down = \"nodata\"\n"
    );
    let m = Meridian::start("", &config).await;
    let q = QueryBuilder::new("gone.example.test.", RecordType::A)
        .ecs("10.9.8.0", 24)
        .build();
    // Up: hash steering keys on the /24.
    let r = parse(&m.udp_raw(&q).await);
    assert_eq!(reply_subnet(&r).unwrap().scope_prefix(), 24);
    // Everything down: NODATA for every client, so scope 0.
    set(&m, "a", None, Action::ForceDown).await;
    set(&m, "b", None, Action::ForceDown).await;
    let r = parse(&m.udp_raw(&q).await);
    assert!(r.answers.is_empty());
    assert_eq!(reply_subnet(&r).unwrap().scope_prefix(), 0);
}
