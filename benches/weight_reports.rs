//! What load reports cost the health writer: 1,000 members (100 services × 10) behind an
//! HAProxy-agent monitor, each reporting a weight share once per simulated second, fed to the
//! health writer (`prober::Writer`) directly; the writer thread's CPU time per second of reports
//! (as a share of one core) and how many snapshots it published. Most reports wobble a few
//! points around the member's share (below `weight_step`, so nothing is published); a few per
//! second move by more (the member's load really changed), and each of those is published at
//! once, as if every report arrived on its own (the writer's worst case: no batching).
//!
//! Run with `cargo bench --bench weight_reports` (sizes: `SERVICES`, `MEMBERS`, `SECONDS`,
//! `MOVES` = real changes per second); `cargo test --benches` runs it once at a small size.
//! See bench/README.md.

use std::sync::Arc;
use std::time::Duration;

use meridian::SharedState;
use meridian::health::Observation;
use meridian::metrics::Telemetry;
use meridian::prober::Writer;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

fn thread_cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

fn config(services: usize, members: usize) -> String {
    let mut c = String::from(
        r#"[dns]
listen = ["127.0.0.1:0"]
zones = "zones"

[monitors.agent]
type = "agent"
port = 9
interval = "1s"
weight_step = 10
"#,
    );
    for i in 0..services {
        c.push_str(&format!("\n[pools.p{i}]\nmonitor = \"agent\"\nmembers = ["));
        for j in 0..members {
            let k = (i * members + j) as u32 + 256;
            let sep = if j == 0 { "" } else { ", " };
            c.push_str(&format!(
                "{sep}{{ address = \"127.{}.{}.{}\" }}",
                (k >> 16) as u8,
                (k >> 8) as u8,
                k as u8
            ));
        }
        c.push_str("]\n");
    }
    for i in 0..services {
        c.push_str(&format!(
            "\n[services.\"s{i}.bench.test.\"]\npools = [\"p{i}\"]\nselect = \"weighted\"\nmax_answers = 2\n"
        ));
    }
    c
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let services = var("SERVICES", if full { 100 } else { 10 });
    let members = var("MEMBERS", 10);
    let seconds = var("SECONDS", if full { 60 } else { 3 });
    let moves = var("MOVES", if full { 10 } else { 2 });

    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(
        dir.path().join("zones/bench.test.zone"),
        "@ 300 SOA ns1 hostmaster 1 3600 600 86400 60\n@ 300 NS ns1\nns1 300 A 127.0.0.1\n",
    )
    .unwrap();
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, config(services, members)).unwrap();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .try_init();
    let model = meridian::Model::load(&path).expect("the generated config is valid");
    let state = Arc::new(SharedState::new(model));
    let telemetry = Telemetry::new(&state, meridian::director::stats::DirectorStats::new());
    let mut writer = Writer::new(state.clone(), telemetry.health());
    let targets = writer.targets().len();
    let report = |share: u8| Observation {
        ok: true,
        reason: None,
        latency: Duration::from_micros(200),
        share: Some(share),
    };

    // Every member up at 50 %.
    let mut shares = vec![50u8; targets];
    for i in 0..targets {
        writer.apply(i, &report(50));
    }
    writer.publish();

    let mut rng = SmallRng::seed_from_u64(7);
    let mut per_second = Vec::with_capacity(seconds);
    let mut published = 0u64;
    let generation_before = state.load().generation;
    for _ in 0..seconds {
        // The members whose load really changes this second.
        let moving: Vec<usize> = (0..moves).map(|_| rng.random_range(0..targets)).collect();
        let cpu = thread_cpu();
        for (i, held) in shares.iter_mut().enumerate() {
            let share = if moving.contains(&i) {
                // A real change: 25 points up or down, within 0-100.
                *held = if *held >= 50 { *held - 25 } else { *held + 25 };
                *held
            } else {
                // Wobble below weight_step around the share held.
                held.saturating_add_signed(rng.random_range(-4i8..=4))
                    .min(100)
            };
            if writer.apply(i, &report(share)) {
                writer.publish();
                published += 1;
            }
        }
        per_second.push(thread_cpu() - cpu);
    }
    assert_eq!(state.load().generation - generation_before, published);
    per_second.sort();
    let median = per_second[per_second.len() / 2];
    let max = per_second[per_second.len() - 1];
    let pct = |d: Duration| d.as_secs_f64() * 100.0;
    println!(
        "weight reports: {} members reporting once a second for {seconds} s, {moves} real changes a second",
        targets
    );
    println!(
        "health writer CPU per second of reports: median {:.3} ms ({:.2} % of a core), max {:.3} ms ({:.2} %)  (target < 5 %)",
        median.as_secs_f64() * 1000.0,
        pct(median),
        max.as_secs_f64() * 1000.0,
        pct(max)
    );
    println!(
        "snapshots published: {published} in {seconds} s ({:.1}/s) for {} reports ({:.2} % of reports)",
        published as f64 / seconds as f64,
        targets * seconds,
        published as f64 * 100.0 / (targets * seconds) as f64
    );
}
