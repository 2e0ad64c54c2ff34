//! What response rate limiting adds to a UDP query that is not limited: one
//! `Limiter::check` for the same network every time (its bucket stays in cache), and for
//! 100,000 networks in turn (a bucket per query from memory, as with many resolvers); and
//! writing the truncated reply a slipped response becomes. Run with
//! `cargo bench --bench rrl`; compare with the ~5 µs of CPU a whole query costs
//! (`bench/dns.sh`).

use std::hint::black_box;
use std::net::IpAddr;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use meridian::dns::rrl::{Limiter, MAX_TRUNCATED_LEN, truncated_reply};
use meridian::model::RrlSettings;
use tokio::time::Instant;

fn rrl(c: &mut Criterion) {
    // A limit no benchmark reaches: time advances 1 µs per check, one token's worth.
    let settings = RrlSettings {
        responses_per_second: 1_000_000,
        burst: 1_000_000,
        slip: 2,
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        exempt: Vec::new(),
        table_size: 1 << 16,
    };
    let t0 = Instant::now();
    let limiter = Limiter::new(settings, t0);
    let mut tick = 0u64;
    let client: IpAddr = "198.51.100.7".parse().unwrap();
    c.bench_function("rrl_check_one_network", |b| {
        b.iter(|| {
            tick += 1;
            let now = t0 + Duration::from_micros(tick);
            assert!(limiter.check(black_box(client), now).is_none());
        })
    });
    let clients: Vec<IpAddr> = (0..100_000u32)
        .map(|n| IpAddr::from((0x0a00_0000 + (n << 8) + 1).to_be_bytes()))
        .collect();
    let mut i = 0;
    c.bench_function("rrl_check_100k_networks", |b| {
        b.iter(|| {
            tick += 1;
            i = (i + 1) % clients.len();
            let now = t0 + Duration::from_micros(tick);
            assert!(limiter.check(black_box(clients[i]), now).is_none());
        })
    });
    // static.bench.test. A, as dnsperf asks it.
    let mut query = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in ["static", "bench", "test"] {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    c.bench_function("rrl_truncated_reply", |b| {
        b.iter(|| {
            let mut out = [0u8; MAX_TRUNCATED_LEN];
            black_box(
                truncated_reply(black_box(&query), Some(query.len() - 12), &mut out)
                    .map(<[u8]>::len),
            );
        })
    });
}

criterion_group!(benches, rrl);
criterion_main!(benches);
