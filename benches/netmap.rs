//! The per-network steering tables' lookup (`NetTable::lookup`), the step that replaced a GeoIP
//! lookup per ECS query: a database of 300,000 IPv4 and 100,000 IPv6 networks written here
//! (mmdb-writer; sizes and countries drawn from a fixed seed), a continent map and a country
//! map as in `bench/dns-ecs.sh`, and 55,000 client addresses from distinct networks looked up
//! in a shuffled order, so the working set is as scattered as a resolver's clients are.
//! `geo_lookup` is the per-query path on the same database (`GeoDb::lookup`) for scale.
//! Run with `cargo bench --bench netmap`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use mmdb_writer::{IpVersion, Ipv4Aliasing, Value, Writer};
use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

const PLACES: &[(&str, &str)] = &[
    ("GB", "EU"),
    ("DE", "EU"),
    ("FR", "EU"),
    ("NL", "EU"),
    ("AT", "EU"),
    ("CH", "EU"),
    ("IE", "EU"),
    ("SE", "EU"),
    ("US", "NA"),
    ("CA", "NA"),
    ("MX", "NA"),
    ("BR", "SA"),
    ("AR", "SA"),
    ("JP", "AS"),
    ("KR", "AS"),
    ("CN", "AS"),
    ("IN", "AS"),
    ("SG", "AS"),
    ("AU", "OC"),
    ("ZA", "AF"),
];

const CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
zones = "ZONES"

[geo]
database = "GEO"

[pools.eu]
continent = "EU"
members = [{ address = "192.0.2.1" }]
[pools.us]
continent = "NA"
members = [{ address = "192.0.2.2" }]
[pools.ap]
continent = "AS"
members = [{ address = "192.0.2.3" }]
[pools.de]
countries = ["DE", "AT", "CH"]
members = [{ address = "192.0.2.4" }]
[pools.gb]
countries = ["GB", "IE"]
members = [{ address = "192.0.2.5" }]
[pools.usa]
countries = ["US"]
members = [{ address = "192.0.2.6" }]

[services."geo.example.test."]
pools = ["eu", "us", "ap"]
steering = "geo"
[services."country.example.test."]
pools = ["de", "gb", "usa"]
steering = "geo"
"#;

/// Networks one after another with gaps, mostly /24s; returns them with a client address in
/// each.
fn networks(rng: &mut SmallRng) -> Vec<(mmdb_writer::ipnet::IpNet, IpAddr, usize)> {
    let mut out = Vec::new();
    let mut at: u32 = u32::from(Ipv4Addr::new(1, 0, 0, 0));
    while out.len() < 300_000 {
        let len = match rng.random_range(0..100) {
            0..70 => 24,
            70..85 => 23,
            85..95 => 22,
            95..99 => 20,
            _ => 16,
        };
        let size = 1u32 << (32 - len);
        at = at.next_multiple_of(size);
        let net = format!("{}/{len}", Ipv4Addr::from(at)).parse().unwrap();
        let addr = IpAddr::V4(Ipv4Addr::from(at + rng.random_range(0..size)));
        out.push((net, addr, rng.random_range(0..PLACES.len())));
        at += size * rng.random_range(1..3u32);
    }
    let mut at: u128 = u128::from("2400::".parse::<Ipv6Addr>().unwrap());
    while out.len() < 400_000 {
        let len = [32u8, 36, 40, 44, 48][rng.random_range(0..5)];
        let size = 1u128 << (128 - len);
        at = at.next_multiple_of(size);
        let net = format!("{}/{len}", Ipv6Addr::from(at)).parse().unwrap();
        let addr = IpAddr::V6(Ipv6Addr::from(at + rng.random_range(0..size)));
        out.push((net, addr, rng.random_range(0..PLACES.len())));
        at += size * rng.random_range(1..3u128);
    }
    out
}

fn netmap(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(21);
    let nets = networks(&mut rng);
    let mut w = Writer::builder("GeoIP2-Country")
        .ip_version(IpVersion::V6)
        .ipv4_aliasing(Ipv4Aliasing::Enabled)
        .build_epoch(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .build();
    for (net, _, place) in &nets {
        let (country, continent) = PLACES[*place];
        let record = Value::map([
            ("country", Value::map([("iso_code", country)])),
            ("continent", Value::map([("code", continent)])),
        ]);
        w.insert_value(*net, record).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let geo = dir.path().join("geo.mmdb");
    std::fs::write(&geo, w.to_bytes().unwrap()).unwrap();
    let zones = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zones");
    let path = dir.path().join("meridian.toml");
    let config = CONFIG
        .replace("ZONES", &zones.display().to_string())
        .replace("GEO", &geo.display().to_string());
    std::fs::write(&path, config).unwrap();
    let model = meridian::Model::load(&path).unwrap();
    if let Some(stats) = &model.tables {
        eprintln!("{stats:?}");
    }

    // 50,000 IPv4 and 5,000 IPv6 clients of distinct networks, shuffled.
    let (v4, v6) = nets.split_at(300_000);
    let mut clients: Vec<IpAddr> = v4.choose_multiple(&mut rng, 50_000).map(|n| n.1).collect();
    clients.extend(v6.choose_multiple(&mut rng, 5_000).map(|n| n.1));
    clients.shuffle(&mut rng);

    for name in ["geo.example.test.", "country.example.test."] {
        let service = model
            .services
            .iter()
            .find(|s| s.name.to_string().trim_end_matches('.') == name.trim_end_matches('.'))
            .unwrap();
        let table = service.networks.as_ref().expect("a table");
        let label = format!("table_{}", name.split('.').next().unwrap());
        let mut next = clients.iter().cycle();
        c.bench_function(&label, |b| {
            b.iter(|| black_box(table.lookup(black_box(*next.next().unwrap())).scope))
        });
    }
    let db = model.geo.as_ref().expect("a database");
    let mut next = clients.iter().cycle();
    c.bench_function("geo_lookup", |b| {
        b.iter(|| black_box(db.lookup(black_box(*next.next().unwrap()))))
    });
}

criterion_group!(benches, netmap);
criterion_main!(benches);
