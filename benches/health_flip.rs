//! What one health flip costs at scale: 10,000 services × 10 members (100,000 monitored
//! members), the time from "a probe result that flips a member reaches the health writer" to
//! "the new snapshot is published", while another thread answers DNS queries from the same
//! `SharedState` and records how long each answer takes (a stalled DNS path would show there).
//! Also how long loading that model takes, its resident memory, and the first probe plan.
//!
//! Nothing is probed: the results are fed to the writer (`prober::Writer`) directly.
//! Run with `cargo bench --bench health_flip` (sizes: `SERVICES`, `MEMBERS`, `CYCLES`);
//! `cargo test --benches` runs it once at a small size. See bench/README.md.

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use meridian::SharedState;
use meridian::dns::{self, ClientAddr, Request, Transport};
use meridian::health::overrides;
use meridian::health::{HealthState, Observation};
use meridian::metrics::Telemetry;
use meridian::prober::Writer;
use rand::SeedableRng;
use rand::rngs::SmallRng;

/// However the machine behaves, the DNS thread stops after this long.
const DNS_TIME_LIMIT: Duration = Duration::from_secs(300);
/// Distinct query packets the DNS thread cycles through.
const QUERY_NAMES: usize = 1024;
/// The DNS thread reads its CPU time once per this many answers.
const CPU_BATCH: u64 = 64;

struct Sizes {
    services: usize,
    members: usize,
    cycles: usize,
    /// The DNS thread answers this many queries before the flips start (its baseline).
    baseline: u64,
}

impl Sizes {
    fn from_env() -> Sizes {
        // `cargo bench` passes `--bench`; `cargo test --benches` does not: a quick smoke run.
        let full = std::env::args().any(|a| a == "--bench");
        let var = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
                })
                .unwrap_or(default)
        };
        Sizes {
            services: var("SERVICES", if full { 10_000 } else { 100 }),
            members: var("MEMBERS", if full { 10 } else { 3 }),
            cycles: var("CYCLES", if full { 4000 } else { 10 }),
            baseline: if full { 300_000 } else { 10_000 },
        }
    }
}

fn service_name(i: usize) -> String {
    format!("s{i}.bench.test.")
}

/// Member `k` overall: a distinct loopback address (never contacted).
fn member_addr(k: usize) -> Ipv4Addr {
    let k = k as u32 + 256;
    Ipv4Addr::new(127, (k >> 16) as u8, (k >> 8) as u8, k as u8)
}

/// One pool per service, `members` members each, all monitored by one TCP monitor whose
/// thresholds are the usual ones (`fall = 3`, `rise = 2`).
fn config(s: &Sizes) -> String {
    let mut c = String::from(
        r#"[dns]
listen = ["127.0.0.1:0"]
zones = "zones"

[monitors.tcp]
type = "tcp"
port = 9
interval = "10s"
fast_interval = "2s"
timeout = "1s"
rise = 2
fall = 3
"#,
    );
    for i in 0..s.services {
        c.push_str(&format!("\n[pools.p{i}]\nmonitor = \"tcp\"\nmembers = ["));
        for j in 0..s.members {
            let sep = if j == 0 { "" } else { ", " };
            let addr = member_addr(i * s.members + j);
            c.push_str(&format!("{sep}{{ address = \"{addr}\" }}"));
        }
        c.push_str("]\n");
    }
    for i in 0..s.services {
        c.push_str(&format!(
            "\n[services.\"{}\"]\npools = [\"p{i}\"]\nselect = \"weighted\"\nmax_answers = 2\nttl = 30\nmin_ttl = 2\n",
            service_name(i)
        ));
    }
    c
}

/// A plain A query for `name` (RFC 1035 §4.1), no EDNS.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Resident memory (current, peak) of this process in kB, from /proc.
fn rss_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A latency histogram without allocation per sample: 8 buckets per power of two of
/// nanoseconds (12.5 % resolution), plus the exact maximum.
struct Histogram {
    buckets: [u64; 64 * 8],
    count: u64,
    max: u64,
    over_1ms: u64,
    /// The most CPU time one batch of `CPU_BATCH` answers took.
    max_batch_cpu: Duration,
    /// How long the phase lasted.
    wall: Duration,
    /// CPU time the thread used in the phase.
    cpu: Duration,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            buckets: [0; 64 * 8],
            count: 0,
            max: 0,
            over_1ms: 0,
            max_batch_cpu: Duration::ZERO,
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
        }
    }

    fn bucket(ns: u64) -> usize {
        let ns = ns.max(8);
        let octave = 63 - ns.leading_zeros() as usize;
        let sub = ((ns >> (octave - 3)) & 7) as usize;
        octave * 8 + sub
    }

    fn lower_bound(b: usize) -> u64 {
        let (octave, sub) = (b / 8, (b % 8) as u64);
        (8 + sub) << (octave - 3)
    }

    fn record(&mut self, d: Duration) {
        let ns = d.as_nanos().min(u128::from(u64::MAX)) as u64;
        self.buckets[Histogram::bucket(ns)] += 1;
        self.count += 1;
        self.max = self.max.max(ns);
        self.over_1ms += u64::from(ns > 1_000_000);
    }

    /// The lower bound of the bucket holding quantile `q`.
    fn quantile(&self, q: f64) -> Duration {
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Duration::from_nanos(Histogram::lower_bound(b));
            }
        }
        Duration::from_nanos(self.max)
    }

    fn line(&self, label: &str) -> String {
        format!(
            "{label:<18} {:>9} {:>7.0}k {:>7.0}k {:>8.2} {:>8.2} {:>9.1} {:>6} {:>9.1}",
            self.count,
            self.count as f64 / self.wall.as_secs_f64().max(1e-9) / 1e3,
            self.count as f64 / self.cpu.as_secs_f64().max(1e-9) / 1e3,
            us(self.quantile(0.5)),
            us(self.quantile(0.999)),
            us(Duration::from_nanos(self.max)),
            self.over_1ms,
            us(self.max_batch_cpu)
        )
    }
}

/// CPU time this thread has used. Wall time includes being preempted, which on a shared machine
/// happens for milliseconds at a time; CPU time only counts work, so a real stall (a lock, a
/// long copy) shows in it and preemption does not.
fn thread_cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("thread CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One kind of writer step: wall times for median, p99 and maximum, and the most CPU time
/// one step took.
fn summary(label: &str, steps: &[(Duration, Duration)]) -> String {
    let mut wall: Vec<Duration> = steps.iter().map(|s| s.0).collect();
    wall.sort();
    let Some(&max) = wall.last() else {
        return format!("{label:<20} none");
    };
    let at = |q: f64| wall[((wall.len() - 1) as f64 * q).round() as usize];
    let cpu = steps.iter().map(|s| s.1).max().unwrap_or_default();
    format!(
        "{label:<20} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        wall.len(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(max),
        ms(cpu)
    )
}

/// Answers queries from `state` until `stop`, recording each answer's wall time (snapshot load
/// included), and the CPU time of each batch of `CPU_BATCH` answers, in the baseline histogram
/// until `baseline` are done (then says so on `baseline_done`), and in the flips
/// histogram after that.
fn dns_thread(
    state: Arc<SharedState>,
    queries: Vec<Vec<u8>>,
    stop: Arc<AtomicBool>,
    baseline_queries: u64,
    baseline_done: mpsc::Sender<()>,
) -> (Histogram, Histogram) {
    let client = ClientAddr(SocketAddr::from(([127, 0, 0, 1], 5353)));
    let mut rng = SmallRng::seed_from_u64(7);
    let (mut baseline, mut during) = (Histogram::new(), Histogram::new());
    let started = Instant::now();
    let mut n: u64 = 0;
    let cpu_start = thread_cpu();
    let mut batch_cpu = cpu_start;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < DNS_TIME_LIMIT {
        let packet = &queries[n as usize % queries.len()];
        let t = Instant::now();
        let snap = state.peek();
        let reply = dns::answer(
            &snap,
            &Request {
                packet,
                client,
                transport: Transport::Udp,
                unix_time: meridian::dns::unix_now(),
                now: tokio::time::Instant::now(),
            },
            &mut rng,
        );
        drop(snap);
        let took = t.elapsed();
        black_box(reply);
        n += 1;
        let h = if n <= baseline_queries {
            &mut baseline
        } else {
            &mut during
        };
        h.record(took);
        if n.is_multiple_of(CPU_BATCH) {
            let cpu = thread_cpu();
            h.max_batch_cpu = h.max_batch_cpu.max(cpu - batch_cpu);
            batch_cpu = cpu;
        }
        if n == baseline_queries {
            baseline.wall = started.elapsed();
            baseline.cpu = thread_cpu() - cpu_start;
            batch_cpu = cpu_start + baseline.cpu; // batches do not span the two phases
            let _ = baseline_done.send(());
        }
    }
    during.wall = started.elapsed().saturating_sub(baseline.wall);
    during.cpu = (thread_cpu() - cpu_start).saturating_sub(baseline.cpu);
    (baseline, during)
}

fn main() {
    let sizes = Sizes::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(
        dir.path().join("zones/bench.test.zone"),
        "@ 300 SOA ns1 hostmaster 1 3600 600 86400 60\n@ 300 NS ns1\nns1 300 A 127.0.0.1\n",
    )
    .unwrap();
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, config(&sizes)).unwrap();
    // Log lines are formatted as in production (one per flip), then thrown away.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .try_init();

    let (rss_before, _) = rss_kb();
    let t = Instant::now();
    let model = meridian::Model::load(&path).expect("the generated config is valid");
    let load = t.elapsed();
    let (rss_model, _) = rss_kb();

    let t = Instant::now();
    let targets = meridian::prober::plan(&model).len();
    let plan = t.elapsed();

    // A restart with operator overrides: every 100th member drained in the state file.
    let mut table = meridian::health::HealthTable::initial(&model);
    for (_, m) in model.members().step_by(100) {
        table.get_mut(m.index).admin = Some(meridian::health::Override::Drain);
    }
    let saved = overrides::collect(&model, &table);
    let mut table = meridian::health::HealthTable::initial(&model);
    let t = Instant::now();
    let unknown = overrides::restore(&model, &mut table, &saved);
    let restore = t.elapsed();
    assert!(unknown.is_empty());
    drop(table);

    let t = Instant::now();
    let state = Arc::new(SharedState::new(model));
    let telemetry = Telemetry::new(&state, meridian::director::stats::DirectorStats::new());
    let mut writer = Writer::new(state.clone(), telemetry.health());
    let writer_start = t.elapsed();
    let members = writer.table().len();

    // The first round: every target reports up; one publish, as when all results arrive at once.
    let up = Observation {
        ok: true,
        reason: None,
        latency: Duration::from_micros(200),
        share: None,
    };
    let down = Observation {
        ok: false,
        reason: Some(Arc::from("connect refused")),
        latency: Duration::from_micros(200),
        share: None,
    };
    let t = Instant::now();
    for i in 0..targets {
        writer.apply(i, &up);
    }
    writer.publish();
    let first_round = t.elapsed();
    let (rss_running, rss_peak) = rss_kb();

    println!(
        "model: {} services × {} members = {members} members, {targets} probe targets",
        sizes.services, sizes.members
    );
    println!(
        "load (Model::load, config + zone)  {:>9.1} ms   RSS +{:.1} MB",
        ms(load),
        (rss_model.saturating_sub(rss_before)) as f64 / 1024.0
    );
    println!("first probe plan (prober::plan)    {:>9.1} ms", ms(plan));
    println!(
        "restore {:>6} saved overrides      {:>9.1} ms",
        saved.overrides.len(),
        ms(restore)
    );
    println!(
        "snapshot + writer (incl. plan)     {:>9.1} ms",
        ms(writer_start)
    );
    println!(
        "first round applied, published    {:>9.1} ms   RSS {:.1} MB (peak {:.1} MB)",
        ms(first_round),
        rss_running as f64 / 1024.0,
        rss_peak as f64 / 1024.0
    );

    // The DNS thread asks for services spread over the whole model, the flipped ones among them.
    let step = sizes.services.div_ceil(QUERY_NAMES).max(1);
    let queries: Vec<Vec<u8>> = (0..sizes.services)
        .step_by(step)
        .enumerate()
        .map(|(n, i)| query(n as u16, &service_name(i)))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let (baseline_tx, baseline_rx) = mpsc::channel();
    let dns = {
        let (state, stop) = (state.clone(), stop.clone());
        let n = sizes.baseline;
        std::thread::spawn(move || dns_thread(state, queries, stop, n, baseline_tx))
    };
    baseline_rx
        .recv_timeout(DNS_TIME_LIMIT)
        .expect("the DNS thread answers its baseline queries");

    // Each cycle takes one member's target down (fall = 3 failures) and up again (rise = 2
    // successes); every result publishes (a streak lowers the TTL, the last one flips).
    // Targets are spread over the model, and each is a service's member the DNS thread asks
    // for.
    let mut flips: Vec<(Duration, Duration)> = Vec::with_capacity(sizes.cycles * 2);
    let mut streaks = Vec::with_capacity(sizes.cycles * 3);
    let mut rounds = 0u64;
    let flipping = Instant::now();
    for c in 0..sizes.cycles {
        let target = (c * step * sizes.members) % targets;
        let member = writer.targets()[target].members[0];
        for obs in [&down, &down, &down, &up, &up] {
            let before = writer.table().get(member).state;
            let cpu = thread_cpu();
            let t = Instant::now();
            let changed = writer.apply(target, obs);
            let generation = changed.then(|| writer.publish());
            let took = (t.elapsed(), thread_cpu() - cpu);
            assert!(changed, "every result of the cycle changes an answer");
            assert_eq!(state.load().generation, generation.unwrap());
            let after = writer.table().get(member).state;
            if before != after {
                flips.push(took);
            } else {
                streaks.push(took);
            }
            rounds += 1;
        }
        assert_eq!(writer.table().get(member).state, HealthState::Up);
    }
    let flipping = flipping.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (baseline, during) = dns.join().expect("DNS thread");
    let (_, rss_peak) = rss_kb();

    println!();
    println!(
        "result → published (ms) {:>6} {:>9} {:>9} {:>9} {:>9}",
        "n", "median", "p99", "max", "max CPU"
    );
    println!("{}", summary("  flip (down or up)", &flips));
    println!("{}", summary("  streak (TTL change)", &streaks));
    println!(
        "{rounds} publishes in {:.1} ms; DNS answered {} queries meanwhile",
        ms(flipping),
        during.count
    );
    println!();
    println!(
        "DNS answer (µs)    {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>6} {:>9}",
        "n",
        "per s",
        "per CPUs",
        "median",
        "p99.9",
        "max",
        ">1ms",
        format!("CPU/{CPU_BATCH}q")
    );
    println!("{}", baseline.line("  before the flips"));
    println!("{}", during.line("  during the flips"));
    println!("peak RSS {:.1} MB", rss_peak as f64 / 1024.0);
}
