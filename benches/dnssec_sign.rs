//! The cost of one DNSSEC signature (a cache miss) with each algorithm Meridian signs with,
//! against a signature cache hit for the same RRset (what a steady-state answer pays).

use std::net::Ipv4Addr;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::dnssec::{Algorithm, TBS};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record};
use meridian::dnssec::{Signer, generate, load_key};

fn rrset() -> Vec<Record> {
    (10..12)
        .map(|i| {
            Record::from_rdata(
                Name::from_ascii("www.gslb.test.").unwrap(),
                30,
                RData::A(A(Ipv4Addr::new(192, 0, 2, i))),
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    for (label, algorithm) in [
        ("ecdsap256sha256", Algorithm::ECDSAP256SHA256),
        ("ed25519", Algorithm::ED25519),
    ] {
        let key = load_key(&generate(algorithm).unwrap()).unwrap();
        let tbs = TBS::from(&[0x5a; 120][..]);
        c.bench_function(&format!("sign/{label}"), |b| {
            b.iter(|| key.sign(&tbs).unwrap())
        });
        let signer = Signer::new(
            Name::from_ascii("gslb.test.").unwrap(),
            load_key(&generate(algorithm).unwrap()).unwrap(),
            172_800,
        )
        .unwrap();
        let set = rrset();
        signer.sign(&set, 1_764_720_000).unwrap();
        c.bench_function(&format!("cached/{label}"), |b| {
            b.iter(|| signer.sign(&set, 1_764_720_000).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
