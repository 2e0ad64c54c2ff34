//! Prometheus metrics: what `/metrics` exports. The DNS query path only bumps atomic counters in
//! fixed arrays (no lock, no allocation, no label lookup); everything else (probes, transitions,
//! reloads) is rare enough for `prometheus-client`'s own metric types, and the per-member state
//! and snapshot generation are read from the current snapshot at scrape time.
//!
//! The director keeps its counters in its own module and adds them here with
//! [`MetricsBuilder::register_collector`] before serving starts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::director::stats::DirectorStats;
use crate::health::events::Events;
use crate::model::ProbeKind;
use crate::prober::probe::ProbeError;
use crate::state::SharedState;

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus scrapes).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a running instance reports about itself: its metrics and its recent health transitions.
/// One per instance (tests run several in one process), shared by the DNS transport, the health
/// writer, the reloader and the HTTP API.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// Counters, gauges and histograms for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The transitions ring and its live feed.
    pub events: Arc<Events>,
    /// The directors' connection counters (read by `/metrics` and the status API).
    pub directors: DirectorStats,
}

impl Telemetry {
    /// Metrics reading the snapshot in `state` and the directors' counters, and an empty
    /// transitions ring.
    pub fn new(state: &Arc<SharedState>) -> Telemetry {
        let directors = DirectorStats::new();
        let metrics = MetricsBuilder::new(state)
            .register_collector(Box::new(DirectorCollector {
                stats: directors.clone(),
            }))
            .build();
        Telemetry {
            metrics: Arc::new(metrics),
            events: Arc::new(Events::new(crate::health::events::CAPACITY)),
            directors,
        }
    }
}

/// Reads the directors' counters at scrape time.
#[derive(Debug)]
struct DirectorCollector {
    stats: DirectorStats,
}

impl Collector for DirectorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let directors = self.stats.snapshot();
        let name = |d: &crate::director::stats::DirectorConnStats| {
            d.listen
                .first()
                .map_or_else(|| d.service.clone(), ToString::to_string)
        };
        let mut family = encoder.encode_descriptor(
            "meridian_director_connections_active",
            "Client connections open through a director now",
            None,
            MetricType::Gauge,
        )?;
        for d in &directors {
            let labels = [("director", name(d))];
            ConstGauge::new(d.active as i64).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "meridian_director_accepted",
            "Client connections a director accepted (refused ones included)",
            None,
            MetricType::Counter,
        )?;
        for d in &directors {
            let labels = [("director", name(d))];
            ConstCounter::new(d.accepted).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "meridian_director_refused",
            "Client connections a director closed at once, by reason (acl, limit, no_member, connect)",
            None,
            MetricType::Counter,
        )?;
        for d in &directors {
            for (reason, n) in [
                ("acl", d.refused_acl),
                ("limit", d.refused_limit),
                ("no_member", d.refused_no_member),
                ("connect", d.refused_connect),
            ] {
                let labels = [("director", name(d)), ("reason", reason.to_string())];
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        type Field = fn(&crate::director::stats::MemberConnStats) -> u64;
        let per_member: [(&str, &str, bool, Field); 5] = [
            (
                "meridian_director_member_connections_active",
                "Connections open to a member through a director now",
                true,
                |m| m.active,
            ),
            (
                "meridian_director_member_connections",
                "Connections established to a member through a director",
                false,
                |m| m.total,
            ),
            (
                "meridian_director_member_connect_failures",
                "Failed connects to a member (refused, timed out) through a director",
                false,
                |m| m.failed_connects,
            ),
            (
                "meridian_director_member_bytes_to_backend",
                "Bytes forwarded from clients to a member",
                false,
                |m| m.bytes_to_backend,
            ),
            (
                "meridian_director_member_bytes_to_client",
                "Bytes forwarded from a member to clients",
                false,
                |m| m.bytes_to_client,
            ),
        ];
        for (metric, help, gauge, field) in per_member {
            let kind = if gauge {
                MetricType::Gauge
            } else {
                MetricType::Counter
            };
            let mut family = encoder.encode_descriptor(metric, help, None, kind)?;
            for d in &directors {
                for m in &d.members {
                    let labels = [
                        ("director", name(d)),
                        ("pool", m.pool.clone()),
                        ("backend", m.backend.to_string()),
                    ];
                    let encoded = family.encode_family(&labels)?;
                    if gauge {
                        ConstGauge::new(field(m) as i64).encode(encoded)?;
                    } else {
                        ConstCounter::new(field(m)).encode(encoded)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// DNS transports, as the `protocol` label says them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// DNS over UDP.
    Udp = 0,
    /// DNS over TCP.
    Tcp = 1,
}

const PROTOCOLS: [&str; 2] = ["udp", "tcp"];

/// Query types counted on their own; everything else is `other`.
const QTYPES: [(u16, &str); 12] = [
    (1, "A"),
    (28, "AAAA"),
    (255, "ANY"),
    (2, "NS"),
    (6, "SOA"),
    (15, "MX"),
    (16, "TXT"),
    (5, "CNAME"),
    (33, "SRV"),
    (12, "PTR"),
    (257, "CAA"),
    (43, "DS"),
];
const QTYPE_BUCKETS: usize = QTYPES.len() + 1;

/// Response codes counted on their own (RFC 1035 §4.1.1, RFC 6891 §9 for BADVERS); everything
/// else is `other`.
const RCODES: [(u16, &str); 7] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
];
const RCODE_BUCKETS: usize = RCODES.len() + 1;

/// Upper bounds of the response-time buckets, in nanoseconds (5 µs to 100 ms; +Inf implied).
const LATENCY_BOUNDS_NS: [u64; 14] = [
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
];

/// Buckets of the probe duration histogram, in seconds.
const PROBE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A histogram of durations in atomic buckets: recording is one comparison walk and two atomic
/// adds; the count and cumulative counts are computed at scrape time.
#[derive(Debug, Default)]
struct AtomicHistogram {
    /// Per bucket (not cumulative), the last one being +Inf.
    buckets: [AtomicU64; LATENCY_BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

impl AtomicHistogram {
    fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = LATENCY_BOUNDS_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(LATENCY_BOUNDS_NS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        // Per-bucket counts: the encoder makes them cumulative.
        let mut count = 0;
        let mut buckets = [(0.0, 0); LATENCY_BOUNDS_NS.len() + 1];
        for (i, slot) in buckets.iter_mut().enumerate() {
            let n = self.buckets[i].load(Ordering::Relaxed);
            count += n;
            let bound = LATENCY_BOUNDS_NS
                .get(i)
                .map_or(f64::INFINITY, |&ns| ns as f64 / 1e9);
            *slot = (bound, n);
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder
            .encode_histogram::<prometheus_client::encoding::NoLabelSet>(sum, count, &buckets, None)
    }
}

/// The DNS counters: fixed arrays indexed by protocol, query type and response code, so that
/// counting a query is a few atomic adds.
#[derive(Debug, Default)]
pub struct DnsMetrics {
    queries: [[[AtomicU64; RCODE_BUCKETS]; QTYPE_BUCKETS]; 2],
    dropped: [AtomicU64; 2],
    truncated: [AtomicU64; 2],
    ecs: [AtomicU64; 2],
    latency: [AtomicHistogram; 2],
    /// Responses response rate limiting held back, by [`RRL_ACTIONS`].
    rrl: [AtomicU64; 2],
}

/// What happened to a response over the rate limit (the `action` label).
const RRL_ACTIONS: [&str; 2] = ["dropped", "slipped"];

impl DnsMetrics {
    /// Counts one query: `reply` is what was sent (`None` when the query got no reply) and
    /// `elapsed` the time from reading the query to handing the reply to the socket. Reads the
    /// query type and EDNS Client Subnet option from `query` and the response code and TC bit
    /// from `reply`, without allocating.
    pub fn record(
        &self,
        protocol: Protocol,
        query: &[u8],
        reply: Option<&[u8]>,
        elapsed: Duration,
    ) {
        let p = protocol as usize;
        let q = wire::inspect_query(query);
        if q.ecs {
            self.ecs[p].fetch_add(1, Ordering::Relaxed);
        }
        let Some(reply) = reply else {
            self.dropped[p].fetch_add(1, Ordering::Relaxed);
            return;
        };
        let r = wire::inspect_reply(reply);
        if r.truncated {
            self.truncated[p].fetch_add(1, Ordering::Relaxed);
        }
        let qtype = q
            .qtype
            .and_then(|t| QTYPES.iter().position(|&(code, _)| code == t))
            .unwrap_or(QTYPES.len());
        let rcode = RCODES
            .iter()
            .position(|&(code, _)| code == r.rcode)
            .unwrap_or(RCODES.len());
        self.queries[p][qtype][rcode].fetch_add(1, Ordering::Relaxed);
        self.latency[p].observe(elapsed);
    }

    /// Counts a UDP response over the rate limit: sent as a truncated reply (`slipped`) or not
    /// at all. Such a query is counted nowhere else.
    pub fn rrl_limited(&self, slipped: bool) {
        self.rrl[usize::from(slipped)].fetch_add(1, Ordering::Relaxed);
    }
}

impl Collector for DnsMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "meridian_dns_queries",
            "DNS queries answered, by protocol, query type and response code",
            None,
            MetricType::Counter,
        )?;
        for (p, protocol) in PROTOCOLS.iter().enumerate() {
            for qt in 0..QTYPE_BUCKETS {
                let qtype = QTYPES.get(qt).map_or("other", |&(_, name)| name);
                for rc in 0..RCODE_BUCKETS {
                    let n = self.queries[p][qt][rc].load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let rcode = RCODES.get(rc).map_or("other", |&(_, name)| name);
                    let labels = [("protocol", *protocol), ("qtype", qtype), ("rcode", rcode)];
                    family
                        .encode_family(&labels)?
                        .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(
                            &n, None,
                        )?;
                }
            }
        }
        let per_protocol = [
            (
                "meridian_dns_dropped",
                "DNS queries that got no reply (responses, runts)",
                &self.dropped,
            ),
            (
                "meridian_dns_truncated",
                "DNS replies sent with TC set (did not fit the UDP size)",
                &self.truncated,
            ),
            (
                "meridian_dns_ecs_queries",
                "DNS queries carrying an EDNS Client Subnet option (RFC 7871)",
                &self.ecs,
            ),
        ];
        for (name, help, counters) in per_protocol {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (p, protocol) in PROTOCOLS.iter().enumerate() {
                let n = counters[p].load(Ordering::Relaxed);
                family
                    .encode_family(&[("protocol", *protocol)])?
                    .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(&n, None)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "meridian_dns_rrl_limited",
            "DNS responses over the rate limit (RRL), by what went out instead: nothing (dropped) or a truncated reply (slipped)",
            None,
            MetricType::Counter,
        )?;
        for (i, action) in RRL_ACTIONS.iter().enumerate() {
            let n = self.rrl[i].load(Ordering::Relaxed);
            family
                .encode_family(&[("action", *action)])?
                .encode_counter::<prometheus_client::encoding::NoLabelSet, _, f64>(&n, None)?;
        }
        let mut family = encoder.encode_descriptor(
            "meridian_dns_response_duration_seconds",
            "Time from reading a DNS query to handing its reply to the socket",
            None,
            MetricType::Histogram,
        )?;
        for (p, protocol) in PROTOCOLS.iter().enumerate() {
            self.latency[p].encode(family.encode_family(&[("protocol", *protocol)])?)?;
        }
        Ok(())
    }
}

/// Label set `{reason=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Label set `{type=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TypeLabel {
    r#type: &'static str,
}

/// Label set `{to=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToLabel {
    to: &'static str,
}

/// Label set `{result=…}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// Every probe failure reason kind (the `reason` label of `meridian_probe_failures_total`).
pub const PROBE_FAILURE_REASONS: [&str; 8] = [
    "timeout",
    "connect_refused",
    "connection_reset",
    "connect",
    "tls",
    "http_status",
    "body",
    "http",
];

/// The bounded `reason` label of a probe failure.
pub fn failure_reason(e: &ProbeError) -> &'static str {
    match e {
        ProbeError::Timeout(_) => "timeout",
        ProbeError::ConnectRefused => "connect_refused",
        ProbeError::ConnectionReset => "connection_reset",
        ProbeError::Connect(_) => "connect",
        ProbeError::Tls(_) => "tls",
        ProbeError::Status(_) => "http_status",
        ProbeError::BodyMismatch(_) => "body",
        ProbeError::Http(_) => "http",
    }
}

/// The `type` label of a probe.
pub fn probe_type(kind: &ProbeKind) -> &'static str {
    match kind {
        ProbeKind::Tcp => "tcp",
        ProbeKind::Http(_) => "http",
        ProbeKind::Https(_) => "https",
    }
}

/// Every shown member state, in the order `meridian_member_state` lists them.
pub const MEMBER_STATES: [&str; 6] = [
    "up",
    "down",
    "unknown",
    "drained",
    "forced-down",
    "forced-up",
];

/// Health, probe and reload metrics: rare events, so plain `prometheus-client` metrics.
#[derive(Debug)]
struct HealthMetrics {
    probe_duration: Family<TypeLabel, Histogram>,
    probe_failures: Family<ReasonLabel, Counter>,
    transitions: Family<ToLabel, Counter>,
    reloads: Family<ResultLabel, Counter>,
}

/// Everything `/metrics` exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// DNS query counters, bumped by the transport.
    pub dns: Arc<DnsMetrics>,
    health: HealthMetrics,
}

/// Builds [`Metrics`]; other parts add their collectors before [`MetricsBuilder::build`].
#[derive(Debug)]
pub struct MetricsBuilder {
    metrics: Metrics,
}

impl MetricsBuilder {
    /// The standard metrics, with per-member state and the generation read from `state`.
    pub fn new(state: &Arc<SharedState>) -> MetricsBuilder {
        let mut registry = Registry::default();
        let dns = Arc::new(DnsMetrics::default());
        registry.register_collector(Box::new(dns.clone()));
        let health = HealthMetrics {
            probe_duration: Family::new_with_constructor(|| {
                Histogram::new(PROBE_BUCKETS.iter().copied())
            }),
            probe_failures: Family::default(),
            transitions: Family::default(),
            reloads: Family::default(),
        };
        // Every label value exists from the start, so rates and alerts see zeros, not gaps.
        for reason in PROBE_FAILURE_REASONS {
            let _ = health.probe_failures.get_or_create(&ReasonLabel { reason });
        }
        for to in MEMBER_STATES {
            let _ = health.transitions.get_or_create(&ToLabel { to });
        }
        for result in ["ok", "error"] {
            let _ = health.reloads.get_or_create(&ResultLabel { result });
        }
        registry.register(
            "meridian_probe_duration_seconds",
            "Time health probes took, by monitor type",
            health.probe_duration.clone(),
        );
        registry.register(
            "meridian_probe_failures",
            "Failed health probes, by reason",
            health.probe_failures.clone(),
        );
        registry.register(
            "meridian_health_transitions",
            "Member state changes (probe flips, admin actions, reloads), by new state",
            health.transitions.clone(),
        );
        registry.register(
            "meridian_config_reloads",
            "Config reloads (SIGHUP or API), by result",
            health.reloads.clone(),
        );
        registry.register_collector(Box::new(SnapshotCollector {
            state: Arc::downgrade(state),
        }));
        MetricsBuilder {
            metrics: Metrics {
                registry,
                dns,
                health,
            },
        }
    }

    /// Adds a collector (e.g. the director's per-member connection counters).
    pub fn register_collector(mut self, collector: Box<dyn Collector>) -> MetricsBuilder {
        self.metrics.registry.register_collector(collector);
        self
    }

    /// The finished metrics.
    pub fn build(self) -> Metrics {
        self.metrics
    }
}

impl Metrics {
    /// Counts one probe: its duration, and its failure reason when it failed.
    pub fn probe(&self, kind: &ProbeKind, latency: Duration, outcome: &Result<(), ProbeError>) {
        self.health
            .probe_duration
            .get_or_create(&TypeLabel {
                r#type: probe_type(kind),
            })
            .observe(latency.as_secs_f64());
        if let Err(e) = outcome {
            self.health
                .probe_failures
                .get_or_create(&ReasonLabel {
                    reason: failure_reason(e),
                })
                .inc();
        }
    }

    /// Counts a member's state change to `to` (one of [`MEMBER_STATES`]).
    pub fn transition(&self, to: &str) {
        if let Some(&to) = MEMBER_STATES.iter().find(|&&s| s == to) {
            self.health.transitions.get_or_create(&ToLabel { to }).inc();
        }
    }

    /// Counts a config reload.
    pub fn reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.health
            .reloads
            .get_or_create(&ResultLabel { result })
            .inc();
    }

    /// The OpenMetrics text of every metric, for [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; a collector error would only truncate the text.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Reads the current snapshot at scrape time: the generation and each member's state.
#[derive(Debug)]
struct SnapshotCollector {
    state: Weak<SharedState>,
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(state) = self.state.upgrade() else {
            return Ok(());
        };
        let snap = state.load();
        let generation = ConstGauge::new(snap.generation as i64);
        let metric = encoder.encode_descriptor(
            "meridian_snapshot_generation",
            "Generation of the snapshot in force (one more with every published change)",
            None,
            generation.metric_type(),
        )?;
        generation.encode(metric)?;

        let mut family = encoder.encode_descriptor(
            "meridian_member_state",
            "1 for the state a member is shown in (overrides first, then probes), else 0",
            None,
            MetricType::Gauge,
        )?;
        let model = &snap.model;
        for (pool, member) in model.members() {
            let id = member_id(member);
            let shown = snap.health.get(member.index).display_state();
            for state in MEMBER_STATES {
                let labels = [
                    ("pool", pool.name.as_str()),
                    ("member", id.as_str()),
                    ("state", state),
                ];
                ConstGauge::new(i64::from(shown == state))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "meridian_member_usable",
            "1 when a member may be handed out now (in answers and director picks), else 0",
            None,
            MetricType::Gauge,
        )?;
        for (pool, member) in model.members() {
            let id = member_id(member);
            let usable = crate::select::usable(model, &snap.health, member);
            let labels = [("pool", pool.name.as_str()), ("member", id.as_str())];
            ConstGauge::new(i64::from(usable)).encode(family.encode_family(&labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "meridian_members",
            "Members by the state they are shown in",
            None,
            MetricType::Gauge,
        )?;
        let mut counts = [0i64; MEMBER_STATES.len()];
        for h in snap.health.iter() {
            let shown = h.display_state();
            if let Some(i) = MEMBER_STATES.iter().position(|&s| s == shown) {
                counts[i] += 1;
            }
        }
        for (state, n) in MEMBER_STATES.iter().zip(counts) {
            ConstGauge::new(n).encode(family.encode_family(&[("state", *state)])?)?;
        }
        Ok(())
    }
}

/// How metrics and the API name a member: its address, with the port when it has one
/// (`192.0.2.10`, `192.0.2.10:8443`, `[2001:db8::1]:8443`), as admin calls accept it.
pub fn member_id(member: &crate::model::Member) -> String {
    match member.port {
        Some(port) => std::net::SocketAddr::new(member.address.0, port).to_string(),
        None => member.address.to_string(),
    }
}

/// Reading just enough of a DNS message for the counters, without allocating: the first
/// question's type, the EDNS Client Subnet option (RFC 7871 §6), the response code with its
/// EDNS extension (RFC 6891 §6.1.3) and the TC bit (RFC 1035 §4.1.1).
mod wire {
    /// What the counters need from a query.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct QueryFacts {
        /// QTYPE of the first question, when the question could be read.
        pub qtype: Option<u16>,
        /// True when the OPT record carries option 8 (edns-client-subnet).
        pub ecs: bool,
    }

    /// What the counters need from a reply.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct ReplyFacts {
        /// The full response code: header RCODE plus the OPT record's extended bits.
        pub rcode: u16,
        /// TC bit.
        pub truncated: bool,
    }

    const OPT: u16 = 41;
    const ECS: u16 = 8;

    fn u16_at(m: &[u8], i: usize) -> Option<u16> {
        Some(u16::from_be_bytes([*m.get(i)?, *m.get(i + 1)?]))
    }

    /// The offset after the name starting at `i`.
    fn skip_name(m: &[u8], mut i: usize) -> Option<usize> {
        loop {
            let len = *m.get(i)?;
            match len {
                0 => return Some(i + 1),
                l if l & 0xC0 == 0xC0 => return Some(i + 2),
                l if l & 0xC0 == 0 => i += 1 + l as usize,
                _ => return None,
            }
        }
    }

    /// The first OPT record of the additional section: the offset of its TYPE field and its
    /// RDATA. `after_question` is where the answer section starts.
    fn find_opt(m: &[u8], after_question: usize) -> Option<(usize, &[u8])> {
        let an = u16_at(m, 6)? as usize;
        let ns = u16_at(m, 8)? as usize;
        let ar = u16_at(m, 10)? as usize;
        let mut i = after_question;
        for n in 0..an + ns + ar {
            i = skip_name(m, i)?;
            let rtype = u16_at(m, i)?;
            let rdlen = u16_at(m, i + 8)? as usize;
            let rdata = m.get(i + 10..i + 10 + rdlen)?;
            if n >= an + ns && rtype == OPT {
                return Some((i, rdata));
            }
            i += 10 + rdlen;
        }
        None
    }

    /// The offset after the question section, and the first question's type.
    fn questions(m: &[u8]) -> Option<(usize, Option<u16>)> {
        let qd = u16_at(m, 4)?;
        let mut i = 12;
        let mut first = None;
        for n in 0..qd {
            i = skip_name(m, i)?;
            if n == 0 {
                first = Some(u16_at(m, i)?);
            }
            i += 4;
        }
        Some((i, first))
    }

    /// Query type and ECS presence; anything unreadable counts as no type and no ECS.
    pub fn inspect_query(m: &[u8]) -> QueryFacts {
        let Some((end, qtype)) = questions(m) else {
            return QueryFacts {
                qtype: None,
                ecs: false,
            };
        };
        let ecs = u16_at(m, 10).is_some_and(|ar| ar > 0)
            && find_opt(m, end).is_some_and(|(_, rdata)| has_option(rdata, ECS));
        QueryFacts { qtype, ecs }
    }

    fn has_option(mut rdata: &[u8], code: u16) -> bool {
        while let (Some(c), Some(len)) = (u16_at(rdata, 0), u16_at(rdata, 2)) {
            if c == code {
                return true;
            }
            let Some(rest) = rdata.get(4 + len as usize..) else {
                return false;
            };
            rdata = rest;
        }
        false
    }

    /// Response code and TC; an unreadable OPT leaves the header's 4-bit code.
    pub fn inspect_reply(m: &[u8]) -> ReplyFacts {
        let (Some(&flags), Some(&low)) = (m.get(2), m.get(3)) else {
            return ReplyFacts {
                rcode: 0,
                truncated: false,
            };
        };
        let mut rcode = u16::from(low & 0x0F);
        if u16_at(m, 10).is_some_and(|ar| ar > 0)
            && let Some((end, _)) = questions(m)
            && let Some((at, _)) = find_opt(m, end)
            && let Some(&ext) = m.get(at + 4)
        {
            // The OPT TTL's first byte holds the upper 8 bits of the 12-bit RCODE.
            rcode |= u16::from(ext) << 4;
        }
        ReplyFacts {
            rcode,
            truncated: flags & 0x02 != 0,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
        use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
        use hickory_proto::rr::{Name, RecordType};

        fn query(qtype: RecordType, edns: Option<Edns>) -> Message {
            let mut m = Message::new(1, MessageType::Query, OpCode::Query);
            m.add_query(Query::query(
                Name::from_ascii("www.example.test.").unwrap(),
                qtype,
            ));
            if let Some(e) = edns {
                m.set_edns(e);
            }
            m
        }

        #[test]
        fn query_type_and_ecs() {
            let plain = query(RecordType::AAAA, None).to_vec().unwrap();
            assert_eq!(
                inspect_query(&plain),
                QueryFacts {
                    qtype: Some(28),
                    ecs: false
                }
            );
            let mut e = Edns::new();
            e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                "192.0.2.0".parse().unwrap(),
                24,
                0,
            )));
            let with_ecs = query(RecordType::A, Some(e)).to_vec().unwrap();
            assert_eq!(
                inspect_query(&with_ecs),
                QueryFacts {
                    qtype: Some(1),
                    ecs: true
                }
            );
            let edns_only = query(RecordType::MX, Some(Edns::new())).to_vec().unwrap();
            assert!(!inspect_query(&edns_only).ecs);
            for garbage in [&[][..], &[0; 11], &[0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63]] {
                assert_eq!(inspect_query(garbage).qtype, None);
            }
        }

        #[test]
        fn reply_rcode_with_extension_and_tc() {
            let mut m = query(RecordType::A, None);
            m.metadata.message_type = MessageType::Response;
            m.metadata.response_code = ResponseCode::NXDomain;
            m.metadata.truncation = true;
            let r = inspect_reply(&m.to_vec().unwrap());
            assert_eq!((r.rcode, r.truncated), (3, true));

            let mut m = query(RecordType::A, Some(Edns::new()));
            m.metadata.message_type = MessageType::Response;
            m.metadata.response_code = ResponseCode::BADVERS;
            let r = inspect_reply(&m.to_vec().unwrap());
            assert_eq!((r.rcode, r.truncated), (16, false));
        }
    }
}
