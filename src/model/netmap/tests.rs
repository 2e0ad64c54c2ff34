//! The table builder against the per-query path: orders, bases and the widest correct scope
//! over a database written here, with `nets` entries nested inside database networks.

use super::*;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use mmdb_writer::{IpVersion, Ipv4Aliasing, Value, Writer};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::model::{Model, Service, Steering};

/// A database of the GeoIP2 layout: (network, country, continent, coordinates); a network
/// with neither country nor continent nor coordinates has an empty record.
type Row<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<(f64, f64)>,
);

fn database(rows: &[Row<'_>]) -> Vec<u8> {
    let mut w = Writer::builder("GeoIP2-City")
        .ip_version(IpVersion::V6)
        .ipv4_aliasing(Ipv4Aliasing::Enabled)
        .build_epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .build();
    for (net, country, continent, coords) in rows {
        let mut record = std::collections::BTreeMap::new();
        if let Some(c) = country {
            record.insert("country".to_owned(), Value::map([("iso_code", *c)]));
        }
        if let Some(c) = continent {
            record.insert("continent".to_owned(), Value::map([("code", *c)]));
        }
        if let Some((lat, lon)) = coords {
            record.insert(
                "location".to_owned(),
                Value::map([("latitude", *lat), ("longitude", *lon)]),
            );
        }
        let net: mmdb_writer::ipnet::IpNet = net.parse().unwrap();
        w.insert_value(net, Value::Map(record)).unwrap();
    }
    w.to_bytes().unwrap()
}

const LONDON: Option<(f64, f64)> = Some((51.5, -0.1));
const NEW_YORK: Option<(f64, f64)> = Some((40.7, -74.0));
const TOKYO: Option<(f64, f64)> = Some((35.7, 139.7));

/// Neighbouring networks of one continent (merged for a continent map), a country with
/// its own entry, a continent without one, records without a place, gaps, IPv6.
const ROWS: &[Row<'_>] = &[
    ("10.0.0.0/24", Some("GB"), Some("EU"), LONDON),
    ("10.0.1.0/24", Some("DE"), Some("EU"), Some((50.1, 8.7))),
    ("10.0.2.0/23", Some("FR"), None, Some((48.9, 2.4))),
    ("10.0.4.0/22", Some("US"), Some("NA"), NEW_YORK),
    ("10.0.8.0/24", Some("JP"), Some("AS"), TOKYO),
    ("10.0.9.0/24", None, None, None),
    ("10.0.10.0/24", Some("AR"), Some("SA"), None),
    ("10.1.0.0/16", Some("US"), Some("NA"), Some((37.8, -122.4))),
    ("192.0.2.0/24", Some("GB"), Some("EU"), LONDON),
    ("2001:db8::/33", Some("GB"), Some("EU"), LONDON),
    (
        "2001:db8:8000::/33",
        Some("DE"),
        Some("EU"),
        Some((50.1, 8.7)),
    ),
    ("2001:db9::/32", Some("JP"), Some("AS"), TOKYO),
];

fn model(rows: &[Row<'_>], services: &str, precompute: bool) -> (Model, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("geo.mmdb"), database(rows)).unwrap();
    let zones = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zones");
    let pools = "\
        [pools.eu]\ncontinent = \"EU\"\nlocation = [51.5, -0.1]\nmembers = [{ address = \"192.0.2.1\" }]\n\
        [pools.us]\ncontinent = \"NA\"\nlocation = [40.7, -74.0]\nmembers = [{ address = \"192.0.2.2\" }]\n\
        [pools.us2]\nlocation = [40.7, -74.0]\nmembers = [{ address = \"192.0.2.3\" }]\n\
        [pools.jp]\ncountries = [\"JP\"]\nlocation = [35.7, 139.7]\nmembers = [{ address = \"192.0.2.4\" }]\n";
    let text = format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = {:?}\n\
         [geo]\ndatabase = \"geo.mmdb\"\nprecompute = {precompute}\n{pools}{services}",
        zones.display().to_string(),
    );
    let model = Model::from_text(&dir.path().join("meridian.toml"), &text).unwrap();
    (model, dir)
}

fn service<'m>(model: &'m Model, name: &str) -> &'m Service {
    model
        .services
        .iter()
        .find(|s| s.name.to_ascii() == name)
        .unwrap()
}

/// What the per-query path decides for `addr`: a `nets` entry (longest first), else the
/// map or the distances for the database's location.
fn reference(model: &Model, service: &Service, addr: IpAddr) -> Outcome {
    let loc = model.geo.as_ref().and_then(|db| db.lookup(addr));
    match &service.steering {
        Steering::Geo(map) => {
            if let Some((net, pools)) = map.nets.iter().find(|(n, _)| n.contains(&addr)) {
                return Outcome {
                    pools: pools.clone(),
                    matched: Matched::Net(*net),
                };
            }
            Policy::Geo(map).decide(loc.as_ref())
        }
        _ => Policy::Proximity(&service.pools, &model.pools).decide(loc.as_ref()),
    }
}

/// Every address of `net` gets the same pools from the per-query path. Checked at the
/// network's ends and at both sides of every boundary of a database network or `nets`
/// entry inside it, between which nothing can change.
fn uniform(model: &Model, service: &Service, net: IpNet) -> bool {
    let mut probes = vec![net.network(), net.broadcast()];
    // IPv4 rows also sit in the IPv6 tree: at ::/96 and its aliases ::ffff:0:0/96,
    // 2001::/32 (Teredo) and 2002::/16 (6to4).
    let db_nets = ROWS.iter().flat_map(|r| {
        let net = r.0.parse::<IpNet>().unwrap();
        let mut all = vec![net];
        if let IpNet::V4(v4) = net {
            let bits = u128::from(u32::from(v4.network()));
            let len = v4.prefix_len();
            for (base, at, shift) in [
                (0u128, 96, 0),
                (0xffff << 32, 96, 0),
                (0x2001 << 112, 32, 64),
                (0x2002 << 112, 16, 80),
            ] {
                let addr = Ipv6Addr::from(base | (bits << shift));
                all.push(IpNet::new(IpAddr::V6(addr), at + len).unwrap());
            }
        }
        all
    });
    let map_nets: Vec<IpNet> = match &service.steering {
        Steering::Geo(map) => map.nets.iter().map(|(n, _)| *n).collect(),
        _ => Vec::new(),
    };
    for inner in db_nets.chain(map_nets) {
        for edge in [inner.network(), inner.broadcast()] {
            for a in neighbours(edge) {
                if net.contains(&a) {
                    probes.push(a);
                }
            }
        }
    }
    let first = reference(model, service, probes[0]).pools;
    probes
        .iter()
        .all(|&a| reference(model, service, a).pools == first)
}

fn neighbours(a: IpAddr) -> Vec<IpAddr> {
    match a {
        IpAddr::V4(v) => {
            let n = u32::from(v);
            [n.wrapping_sub(1), n, n.wrapping_add(1)]
                .map(|x| IpAddr::V4(Ipv4Addr::from(x)))
                .to_vec()
        }
        IpAddr::V6(v) => {
            let n = u128::from(v);
            [n.wrapping_sub(1), n, n.wrapping_add(1)]
                .map(|x| IpAddr::V6(Ipv6Addr::from(x)))
                .to_vec()
        }
    }
}

/// Addresses at and around every database network's edges, in its middle, and random
/// ones (mostly inside 10.0.0.0/15 and 2001:db8::/31, where the data is).
fn addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    for row in ROWS {
        let net: IpNet = row.0.parse().unwrap();
        out.extend(neighbours(net.network()));
        out.extend(neighbours(net.broadcast()));
    }
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..2000 {
        out.push(IpAddr::V4(Ipv4Addr::from(
            0x0A00_0000 | rng.random_range(0..1u32 << 17),
        )));
        out.push(IpAddr::V6(Ipv6Addr::from(
            (0x2001_0db8u128 << 96) | rng.random_range(0..1u128 << 97),
        )));
        out.push(IpAddr::V4(Ipv4Addr::from(rng.random::<u32>())));
    }
    out.extend(
        [
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::ffff:10.0.0.1",
            "2002:a00:1::",
            "2001:0:a00:801::",
        ]
        .map(|a| a.parse::<IpAddr>().unwrap()),
    );
    out
}

/// For every address: the table's order and basis are the per-query path's, the scope's
/// network gets that order everywhere, and the network one bit wider does not.
fn check(model: &Model, name: &str) {
    let service = service(model, name);
    let table = service.networks.as_ref().expect("a table");
    for addr in addresses() {
        let hit = table.lookup(addr);
        assert_eq!(
            *hit.outcome,
            reference(model, service, addr),
            "{name} {addr}"
        );
        let net = IpNet::new(addr, hit.scope).unwrap().trunc();
        assert!(
            uniform(model, service, net),
            "{name} {addr}: {net} is not uniform"
        );
        if hit.scope > 0 {
            let wider = IpNet::new(addr, hit.scope - 1).unwrap().trunc();
            assert!(!uniform(model, service, wider), "{name} {addr}: {wider} is");
        }
    }
}

const SERVICES: &str = "\
    [services.\"geo.example.test.\"]\npools = [\"eu\", \"us\", \"jp\"]\nsteering = \"geo\"\n\
    [services.\"geo.example.test.\".map.nets]\n\
    \"10.0.1.64/26\" = [\"jp\"]\n\"10.0.0.0/23\" = [\"us\"]\n\"10.1.128.0/17\" = [\"eu\"]\n\
    \"2001:db8:4000::/34\" = [\"jp\"]\n\
    [services.\"near.example.test.\"]\npools = [\"eu\", \"us\", \"us2\", \"jp\"]\nsteering = \"proximity\"\n\
    [services.\"near2.example.test.\"]\npools = [\"eu\", \"us\", \"us2\", \"jp\"]\nsteering = \"proximity\"\n";

#[test]
fn a_geo_table_decides_what_a_lookup_decides_with_the_widest_correct_scope() {
    let (model, _dir) = model(ROWS, SERVICES, true);
    check(&model, "geo.example.test.");
    let table = service(&model, "geo.example.test.")
        .networks
        .clone()
        .unwrap();
    let at = |a: &str| table.lookup(a.parse().unwrap());
    // GB, DE and FR networks are one continent, but 10.0.0.0/23 is a `nets` entry (with a
    // /26 inside it): FR's /23 is on its own; JP's /24 merges with nothing.
    assert_eq!(
        (at("10.0.2.1").outcome.matched, at("10.0.2.1").scope),
        (Matched::Continent(Continent::EU), 23)
    );
    assert_eq!(
        at("10.0.1.65").outcome.matched,
        Matched::Net("10.0.1.64/26".parse().unwrap())
    );
    assert_eq!(at("10.0.1.65").scope, 26);
    // Inside the /23 but outside the /26: the widest networks that miss the /26.
    assert_eq!(at("10.0.0.1").scope, 24);
    assert_eq!(at("10.0.1.1").scope, 26);
    assert_eq!(at("10.0.1.129").scope, 25);
    // A record without a place and a gap are both unknown: the default order.
    assert_eq!(at("10.0.9.1").outcome.matched, Matched::Unknown);
    assert_eq!(at("172.16.0.1").outcome.matched, Matched::Unknown);
    // IPv4-mapped and 6to4 addresses find the IPv4 data, as a lookup does.
    assert_eq!(
        at("::ffff:10.0.8.1").outcome.matched,
        Matched::Country("JP".parse().unwrap())
    );
    assert_eq!(
        at("2002:a00:801::").outcome.matched,
        Matched::Country("JP".parse().unwrap())
    );
}

#[test]
fn a_proximity_table_ranks_by_distance_and_keeps_ties_in_config_order() {
    let (model, _dir) = model(ROWS, SERVICES, true);
    check(&model, "near.example.test.");
    let near = service(&model, "near.example.test.");
    let table = near.networks.clone().unwrap();
    let names = |a: &str| -> Vec<String> {
        let hit = table.lookup(a.parse().unwrap());
        hit.outcome
            .pools
            .iter()
            .map(|p| model.pools[p.0 as usize].name.clone())
            .collect()
    };
    // us and us2 are at the same place: config order.
    assert_eq!(names("10.0.4.1"), ["us", "us2", "eu", "jp"]);
    // No coordinates (AR), no place, no record: config order, unknown.
    for a in ["10.0.10.1", "10.0.9.1", "172.16.0.1"] {
        assert_eq!(names(a), ["eu", "us", "us2", "jp"], "{a}");
        assert_eq!(
            table.lookup(a.parse().unwrap()).outcome.matched,
            Matched::Unknown
        );
    }
    // Two services with the same pools share one table.
    let twin = service(&model, "near2.example.test.")
        .networks
        .clone()
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(&table, &twin));
    let stats = model.tables.unwrap();
    assert_eq!(stats.tables, 2);
}

#[test]
fn without_precompute_there_is_no_table() {
    let (model, _dir) = model(ROWS, SERVICES, false);
    assert!(model.tables.is_none());
    assert!(model.services.iter().all(|s| s.networks.is_none()));
}

/// The shortest prefix length `p` such that the `/p` network around `addr` lies inside
/// `start..=end`, by trying every length (the reference for the cut into aligned networks).
fn widest_prefix(addr: u32, start: u32, end: u32) -> u8 {
    (0..=32u32)
        .find(|&p| {
            let mask = u32::MAX.checked_shl(32 - p).unwrap_or(0);
            (addr & mask) >= start && (addr | !mask) <= end
        })
        .expect("a /32 always fits") as u8
}

#[test]
fn the_widest_aligned_network_at_an_address() {
    // 10.0.0.0 - 10.0.3.255 is a /22.
    let (s, e) = u32::of("10.0.0.0/22".parse().unwrap()).unwrap();
    assert_eq!(s.block(e), (e, 22));
    // 10.0.1.0 - 10.0.3.255: the /24 at .1, then the /23 at .2-.3.
    assert_eq!((s + 256).block(e), (s + 511, 24));
    assert_eq!((s + 512).block(e), (e, 23));
    // The whole space is /0; a single address /32 (/128).
    assert_eq!(0u32.block(u32::MAX), (u32::MAX, 0));
    assert_eq!(0u128.block(u128::MAX), (u128::MAX, 0));
    assert_eq!(7u32.block(7), (7, 32));
    assert_eq!(7u128.block(7), (7, 128));
    assert_eq!((1u128 << 127).block(u128::MAX), (u128::MAX, 1));
}

#[test]
fn every_address_of_a_range_gets_the_widest_scope_of_its_run() {
    // Random segments over a small stretch of the space, two outcomes sharing pools (1 and 2)
    // and one that does not (3): a lookup gives each address its own outcome and the widest
    // aligned network around it inside its run, as the reference computes it.
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..50 {
        let mut segments = Vec::new();
        let mut at = 0u32;
        while at < 4096 {
            let end = (at + rng.random_range(0..300)).min(4095);
            segments.push((at, end, rng.random_range(1..=3u32)));
            at = end + 1;
        }
        segments.push((4096, u32::MAX, 4));
        let same = |a: u32, b: u32| a == b || (a < 3 && b < 3);
        let table = Ranges::from_segments(segments.clone(), same);
        let mut outcome = vec![0u32; 4096];
        for &(start, end, o) in &segments[..segments.len() - 1] {
            outcome[start as usize..=end as usize].fill(o);
        }
        // Each address's run, as the first and last address of the stretch sharing pools.
        let mut run = vec![(0u32, 0u32); 4096];
        let mut first = 0;
        for a in 0..4096usize {
            if a == 4095 || !same(outcome[a], outcome[a + 1]) {
                run[first..=a].fill((first as u32, a as u32));
                first = a + 1;
            }
        }
        for addr in 0..4096u32 {
            let (run_start, run_end) = run[addr as usize];
            let want = (
                outcome[addr as usize],
                widest_prefix(addr, run_start, run_end),
            );
            assert_eq!(table.lookup(addr), want, "address {addr}");
        }
        assert_eq!(table.lookup(u32::MAX), (4, 1));
        assert_eq!(table.lookup(4096), (4, 20));
    }
}

#[test]
fn an_overlay_splits_what_it_sits_in() {
    let base = vec![(0u32, 99, 1), (100, 199, 2), (200, u32::MAX, 3)];
    assert_eq!(
        overlay(base.clone(), 150, 249, 9),
        vec![(0, 99, 1), (100, 149, 2), (150, 249, 9), (250, u32::MAX, 3)]
    );
    assert_eq!(
        overlay(base.clone(), 0, 99, 9),
        vec![(0, 99, 9), (100, 199, 2), (200, u32::MAX, 3)]
    );
    assert_eq!(overlay(base, 0, u32::MAX, 9), vec![(0, u32::MAX, 9)]);
}
