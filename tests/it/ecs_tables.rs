//! Per-network steering tables on a real server: two Meridians read the same database, written
//! here with `mmdb-writer` (hundreds of networks of a dozen places, IPv4 and IPv6, `nets`
//! entries nested inside database networks), one deciding per network at load and one looking
//! each query up (`[geo] precompute = false`). For a thousand ECS subnets both answer the same
//! records; the table's ECS scope is the lookup's or wider, and where it is wider, addresses
//! across the wider network get the same answer from the lookup server. It is narrower only
//! where the lookup's was wrong (a `nets` entry holding a longer one with another answer).
//! `explain` reports the scope and the first pool DNS answers with.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use ipnet::IpNet;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::geodb::Db;
use crate::support::{Meridian, QueryBuilder, addresses, get, udp_bulk};

type Place = (&'static str, Option<&'static str>, Option<(f64, f64)>);

/// Places: (country, continent, coordinates). One without a continent column (FR: the table
/// gives EU), one without coordinates (AR).
const PLACES: &[Place] = &[
    ("GB", Some("EU"), Some((51.5, -0.1))),
    ("DE", Some("EU"), Some((50.1, 8.7))),
    ("FR", None, Some((48.9, 2.4))),
    ("US", Some("NA"), Some((40.7, -74.0))),
    ("CA", Some("NA"), Some((45.4, -75.7))),
    ("JP", Some("AS"), Some((35.7, 139.7))),
    ("SG", Some("AS"), Some((1.35, 103.8))),
    ("AU", Some("OC"), Some((-33.9, 151.2))),
    ("BR", Some("SA"), Some((-23.6, -46.6))),
    ("AR", Some("SA"), None),
    ("ZA", Some("AF"), Some((-26.2, 28.0))),
];

/// A database of consecutive networks from 10.0.0.0 (sizes /22 to /26, a few left out) and
/// 2001:db8::/32 (/40s), each at a place drawn with a fixed seed.
fn database() -> Vec<u8> {
    let mut rng = SmallRng::seed_from_u64(11);
    let mut db = Db::v6("GeoIP2-City");
    let record = |rng: &mut SmallRng| {
        let (country, continent, coords) = PLACES[rng.random_range(0..PLACES.len())];
        let mut r = json!({ "country": { "iso_code": country } });
        if let Some(c) = continent {
            r["continent"] = json!({ "code": c });
        }
        if let Some((lat, lon)) = coords {
            r["location"] = json!({ "latitude": lat, "longitude": lon });
        }
        r
    };
    let mut at = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    for _ in 0..400 {
        let len = rng.random_range(22..=26u8);
        let size = 1u32 << (32 - len);
        at = at.div_ceil(size) * size;
        let r = record(&mut rng);
        if rng.random_range(0..10) > 0 {
            db = db.net(&format!("{}/{len}", Ipv4Addr::from(at)), r);
        }
        at += size;
    }
    for i in 0..200u128 {
        let r = record(&mut rng);
        let net = Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 88));
        db = db.net(&format!("{net}/40"), r);
    }
    db.bytes()
}

fn config(db: &std::path::Path, precompute: bool) -> String {
    format!(
        r#"
[geo]
database = "{}"
precompute = {precompute}

[http]
listen = "127.0.0.1:0"

[pools.eu]
continent = "EU"
countries = ["GB"]
location = [51.5, -0.1]
members = [{{ address = "192.0.2.1" }}]
[pools.us]
continent = "NA"
location = [40.7, -74.0]
members = [{{ address = "192.0.2.2" }}]
[pools.ap]
continent = "AS"
countries = ["JP"]
location = [35.7, 139.7]
members = [{{ address = "192.0.2.3" }}]
[pools.au]
continent = "OC"
location = [-33.9, 151.2]
members = [{{ address = "192.0.2.4" }}]

[services."geo.example.test."]
pools = ["eu", "us", "ap", "au"]
steering = "geo"
[services."geo.example.test.".map]
continents = {{ SA = ["us"] }}
default = ["us", "eu", "ap", "au"]
nets = {{ "10.0.16.64/26" = ["au"], "10.0.32.0/20" = ["ap"], "10.0.36.0/24" = ["eu"], "2001:db8:1000::/36" = ["au"] }}

[services."near.example.test."]
pools = ["eu", "us", "ap", "au"]
steering = "proximity"
"#,
        db.display()
    )
}

/// The `nets` entries that sit inside another one with a different order: the lookup path
/// reports the outer entry's prefix as the scope for all of it (too wide), the table the
/// widest network that misses the inner one.
const NESTED: &[&str] = &["10.0.36.0/24"];

fn scope_of(msg: &Message) -> u8 {
    match msg
        .edns
        .as_ref()
        .and_then(|e| e.options().get(EdnsCode::Subnet))
    {
        Some(EdnsOption::Subnet(s)) => s.scope_prefix(),
        other => panic!("no ECS in the reply: {other:?}"),
    }
}

/// Subnets across the data (and outside it), IPv4 and IPv6, of several source prefixes.
fn subnets() -> Vec<(IpAddr, u8)> {
    let mut rng = SmallRng::seed_from_u64(5);
    let mut out = Vec::new();
    for _ in 0..700 {
        let a = 0x0A00_0000 | rng.random_range(0..1u32 << 17);
        let prefix = [16, 20, 24, 24, 24, 28, 32][rng.random_range(0..7)];
        out.push((IpAddr::V4(Ipv4Addr::from(a)), prefix));
    }
    for _ in 0..50 {
        out.push((IpAddr::V4(Ipv4Addr::from(rng.random::<u32>())), 24));
    }
    for _ in 0..250 {
        let a = (0x2001_0db8u128 << 96) | rng.random_range(0..1u128 << 96);
        let prefix = [32, 40, 48, 56, 56, 64][rng.random_range(0..6)];
        out.push((IpAddr::V6(Ipv6Addr::from(a)), prefix));
    }
    out.into_iter()
        .map(|(a, p)| (IpNet::new(a, p).unwrap().trunc().addr(), p))
        .collect()
}

fn queries(name: &str, subnets: &[(IpAddr, u8)]) -> Vec<Vec<u8>> {
    subnets
        .iter()
        .enumerate()
        .map(|(i, (a, p))| {
            QueryBuilder::new(name, RecordType::A)
                .id(i as u16)
                .ecs(&a.to_string(), *p)
                .build()
        })
        .collect()
}

/// Addresses across `net`: both ends and random ones, each asked as a full-length subnet.
fn across(net: IpNet, rng: &mut SmallRng) -> Vec<(IpAddr, u8)> {
    let mut out = vec![net.network(), net.broadcast()];
    for _ in 0..6 {
        out.push(match net {
            IpNet::V4(n) => {
                let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                IpAddr::V4(Ipv4Addr::from(rng.random_range(lo..=hi)))
            }
            IpNet::V6(n) => {
                let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                IpAddr::V6(Ipv6Addr::from(rng.random_range(lo..=hi)))
            }
        });
    }
    out.into_iter()
        .map(|a| (a, if a.is_ipv4() { 32 } else { 128 }))
        .collect()
}

#[tokio::test]
async fn tables_answer_as_lookups_do_with_scopes_as_wide_as_is_correct() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("geo.mmdb");
    std::fs::write(&path, database()).unwrap();
    let tables = Meridian::start("", &config(&path, true)).await;
    let lookups = Meridian::start("", &config(&path, false)).await;
    let stats = tables.state.load().model.tables.expect("tables built");
    assert_eq!(stats.tables, 2);
    assert!(lookups.state.load().model.tables.is_none());

    let subnets = subnets();
    let mut rng = SmallRng::seed_from_u64(9);
    let (mut equal, mut wider, mut narrower) = (0, 0, 0);
    for name in ["geo.example.test.", "near.example.test."] {
        let packets = queries(name, &subnets);
        let got = udp_bulk(tables.udp, &packets, 50).await;
        let want = udp_bulk(lookups.udp, &packets, 50).await;
        let mut widened = Vec::new();
        for (((a, p), g), w) in subnets.iter().zip(&got).zip(&want) {
            assert_eq!(
                g.metadata.response_code, w.metadata.response_code,
                "{name} {a}/{p}"
            );
            assert_eq!(addresses(g), addresses(w), "{name} {a}/{p}");
            let (gs, ws) = (scope_of(g), scope_of(w));
            if gs > ws {
                // Narrower only where the lookup's scope was too wide: a `nets` match whose
                // network holds a longer entry with another answer.
                let claimed = IpNet::new(*a, ws).unwrap().trunc();
                let inner = NESTED
                    .iter()
                    .map(|n| n.parse::<IpNet>().unwrap())
                    .find(|n| claimed.contains(n) && *n != claimed && !n.contains(a));
                let inner = inner
                    .unwrap_or_else(|| panic!("{name} {a}/{p}: scope {gs}, narrower than {ws}"));
                let q = QueryBuilder::new(name, RecordType::A)
                    .ecs(&inner.addr().to_string(), inner.prefix_len())
                    .build();
                let other = crate::support::parse(&lookups.udp_raw(&q).await);
                assert_ne!(
                    addresses(&other),
                    addresses(w),
                    "{name} {a}/{p}: {inner} inside {claimed}"
                );
                narrower += 1;
                continue;
            }
            if gs == ws {
                equal += 1;
            } else {
                wider += 1;
                widened.push((IpNet::new(*a, gs).unwrap().trunc(), addresses(g)));
            }
        }
        // Every address of a widened scope gets the same answer from the lookup server.
        let mut probes = Vec::new();
        let mut expected = Vec::new();
        for (net, answer) in widened.iter().take(300) {
            for probe in across(*net, &mut rng) {
                probes.push(probe);
                expected.push((*net, answer.clone()));
            }
        }
        let replies = udp_bulk(lookups.udp, &queries(name, &probes), 50).await;
        for ((reply, (net, answer)), (a, _)) in replies.iter().zip(&expected).zip(&probes) {
            assert_eq!(&addresses(reply), answer, "{name}: {a} in the scope {net}");
        }
    }
    assert!(
        wider > 100 && equal > 100 && narrower > 0,
        "wider {wider}, equal {equal}, narrower {narrower}"
    );

    // explain reads the same table: DNS's scope and the pool whose member DNS answers.
    let member_pool: HashMap<IpAddr, &str> = [
        ("192.0.2.1", "eu"),
        ("192.0.2.2", "us"),
        ("192.0.2.3", "ap"),
        ("192.0.2.4", "au"),
    ]
    .map(|(a, p)| (a.parse().unwrap(), p))
    .into_iter()
    .collect();
    for (a, p) in subnets.iter().step_by(20) {
        for name in ["geo.example.test.", "near.example.test."] {
            let q = QueryBuilder::new(name, RecordType::A)
                .ecs(&a.to_string(), *p)
                .build();
            let reply = crate::support::parse(&tables.udp_raw(&q).await);
            let ecs = format!("{a}/{p}").replace('/', "%2F");
            let (status, body) = get(
                &tables,
                &format!("/api/v1/explain?name={name}&type=A&client=127.0.0.1&ecs={ecs}"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(
                v["answer"]["ecs_scope"],
                scope_of(&reply),
                "{name} {a}/{p}: {body}"
            );
            assert_eq!(
                v["pools"][0]["name"],
                member_pool[&addresses(&reply)[0]],
                "{name} {a}/{p}: {body}"
            );
        }
    }
}
