//! The steering core per query, without sockets: `select::pick` for a static-like `failover`
//! service, a `weighted` one, `geo` + `weighted`, `proximity` and `hash`, with the bundled
//! sample GeoIP database; and `weighted_load`: the `weighted` service over copies of its pools
//! whose members report weight shares (and one ramps in a slow start), against
//! `weighted_weighted` as the anchor; `weighted_fastest`: the same pools, probed, whose members
//! have round-trip averages (two of the first pool's three in the band), selected by
//! `fastest`, beside `weighted_probed` (those probed pools selected by `weighted`: what the
//! monitor alone costs, the TTL's look at transitions), and `latency_fastest`, which also
//! ranks the pools by their round-trip times.
//! Run with `cargo bench --bench steering`.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use meridian::SharedState;
use meridian::select::{self, Client, Family};
use rand::SeedableRng;
use rand::rngs::SmallRng;

const CONFIG: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
zones = "zones"

[geo]
database = "GEO"

[pools.eu]
continent = "EU"
countries = ["GB", "DE"]
location = [51.51, -0.13]
members = [{ address = "192.0.2.1" }, { address = "192.0.2.2", weight = 300 }, { address = "192.0.2.3" }]
[pools.us]
continent = "NA"
location = [40.71, -74.01]
members = [{ address = "198.51.100.1" }, { address = "198.51.100.2" }]
[pools.ap]
continent = "AS"
countries = ["JP"]
location = [35.68, 139.69]
members = [{ address = "203.0.113.1" }, { address = "203.0.113.2" }]

[monitors.probe]
type = "tcp"
port = 80

[pools.ft-eu]
monitor = "probe"
members = [{ address = "192.0.2.1" }, { address = "192.0.2.2", weight = 300 }, { address = "192.0.2.3" }]
[pools.ft-us]
monitor = "probe"
members = [{ address = "198.51.100.1" }, { address = "198.51.100.2" }]
[pools.ft-ap]
monitor = "probe"
members = [{ address = "203.0.113.1" }, { address = "203.0.113.2" }]

[pools.lw-eu]
slow_start = "1h"
members = [{ address = "192.0.2.1" }, { address = "192.0.2.2", weight = 300 }, { address = "192.0.2.3" }]
[pools.lw-us]
members = [{ address = "198.51.100.1" }, { address = "198.51.100.2" }]
[pools.lw-ap]
members = [{ address = "203.0.113.1" }, { address = "203.0.113.2" }]

[services."load.bench.test."]
pools = ["lw-eu", "lw-us", "lw-ap"]
steering = "weighted"
select = "weighted"
max_answers = 1
[services."probed.bench.test."]
pools = ["ft-eu", "ft-us", "ft-ap"]
steering = "weighted"
select = "weighted"
max_answers = 1
[services."fastest.bench.test."]
pools = ["ft-eu", "ft-us", "ft-ap"]
steering = "weighted"
select = "fastest"
max_answers = 1
[services."latency.bench.test."]
pools = ["ft-eu", "ft-us", "ft-ap"]
steering = "latency"
select = "fastest"
max_answers = 1
[services."failover.bench.test."]
pools = ["eu", "us", "ap"]
[services."weighted.bench.test."]
pools = ["eu", "us", "ap"]
steering = "weighted"
select = "weighted"
max_answers = 1
[services."geo.bench.test."]
pools = ["eu", "us", "ap"]
steering = "geo"
select = "weighted"
max_answers = 1
[services."near.bench.test."]
pools = ["eu", "us", "ap"]
steering = "proximity"
select = "weighted"
max_answers = 1
[services."hash.bench.test."]
pools = ["eu", "us", "ap"]
steering = "hash"
select = "hash"
max_answers = 1
"#;

fn steering(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(
        dir.path().join("zones/bench.test.zone"),
        "@ 300 SOA ns1 hostmaster 1 3600 600 86400 60\n@ 300 NS ns1\nns1 300 A 127.0.0.1\n",
    )
    .unwrap();
    let geo = Path::new(env!("CARGO_MANIFEST_DIR")).join("geo-data/sample.mmdb");
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, CONFIG.replace("GEO", &geo.display().to_string())).unwrap();
    let model = meridian::Model::load(&path).unwrap();
    let state = SharedState::new(model);
    // The load-weighted pools' members report shares; one is in a slow start.
    let mut table = (*state.load().health).clone();
    let model = state.load().model.clone();
    let mut ramping = false;
    for (pool, member) in model.members().filter(|(p, _)| p.name.starts_with("lw-")) {
        let h = table.get_mut(member.index);
        h.share = Some(40 + (member.index % 5) as u8 * 10);
        if pool.name == "lw-eu" && !ramping {
            ramping = true;
            h.ramp = Some(meridian::health::Ramp {
                since: meridian::dns::Instant::now(),
                window: std::time::Duration::from_secs(3600),
            });
        }
    }
    // The probed pools' members are up with round-trip averages: 10, 11 and 30 ms in the
    // first pool (the third out of the band), slower pools after it.
    for (pool, member) in model.members().filter(|(p, _)| p.name.starts_with("ft-")) {
        let h = table.get_mut(member.index);
        h.state = meridian::health::HealthState::Up;
        let base = match pool.name.as_str() {
            "ft-eu" => 10,
            "ft-us" => 40,
            _ => 80,
        };
        let spread = [0, 1, 20][member.index % 3];
        h.rtt = Some(std::time::Duration::from_millis(base + spread));
    }
    state.publish_health(std::sync::Arc::new(table));
    let snap = state.load();
    let mut rng = SmallRng::seed_from_u64(1);
    // A client in the sample database's US network.
    let addr: IpAddr = "127.0.2.1".parse().unwrap();
    for (label, name) in [
        ("failover_all", "failover.bench.test."),
        ("weighted_weighted", "weighted.bench.test."),
        ("weighted_load", "load.bench.test."),
        ("weighted_probed", "probed.bench.test."),
        ("weighted_fastest", "fastest.bench.test."),
        ("latency_fastest", "latency.bench.test."),
        ("geo_weighted", "geo.bench.test."),
        ("proximity_weighted", "near.bench.test."),
        ("hash_hash", "hash.bench.test."),
    ] {
        let service = snap
            .model
            .services
            .iter()
            .find(|s| s.name.to_string() == name)
            .unwrap();
        let now = meridian::dns::Instant::now();
        c.bench_function(label, |b| {
            b.iter(|| {
                // A fresh client per query, as the DNS path makes one: the location lookup is
                // part of the cost.
                let client = Client::from_addr(&snap.model, black_box(addr));
                black_box(select::pick(
                    &snap.model,
                    (&snap.health, now),
                    service,
                    Family::V4,
                    &client,
                    &mut rng,
                ))
            })
        });
    }
}

criterion_group!(benches, steering);
criterion_main!(benches);
