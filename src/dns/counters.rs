//! The DNS query counters: fixed arrays of atomics indexed by protocol, query-type bucket and
//! rcode bucket, so counting a query on the request path is a few relaxed atomic adds (no lock,
//! no allocation, no label lookup). `/metrics` reads them at scrape time through their
//! [`Collector`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;

use super::Answered;
use super::cookies::Verdict;

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
const RCODES: [(u16, &str); 8] = [
    (0, "NOERROR"),
    (1, "FORMERR"),
    (2, "SERVFAIL"),
    (3, "NXDOMAIN"),
    (4, "NOTIMP"),
    (5, "REFUSED"),
    (16, "BADVERS"),
    (23, "BADCOOKIE"),
];

/// DNS cookie verdicts, as the `result` label says them (in [`Verdict`] order).
const COOKIE_RESULTS: [&str; 4] = ["client_only", "valid", "invalid", "malformed"];
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
    /// Queries with a COOKIE option (cookies on), by protocol and [`COOKIE_RESULTS`].
    cookies: [[AtomicU64; COOKIE_RESULTS.len()]; 2],
    /// BADCOOKIE replies sent, by protocol.
    badcookie: [AtomicU64; 2],
}

/// What happened to a response over the rate limit (the `action` label).
const RRL_ACTIONS: [&str; 2] = ["dropped", "slipped"];

impl DnsMetrics {
    /// Counts one query from what answering it found ([`Answered`]: query type, ECS, and the
    /// reply's code and TC bit, or no reply); `elapsed` is the time from reading the query to
    /// handing the reply to the socket.
    pub fn record(&self, protocol: Protocol, answered: &Answered, elapsed: Duration) {
        let p = protocol as usize;
        if answered.ecs {
            self.ecs[p].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(verdict) = answered.cookie {
            let i = match verdict {
                Verdict::ClientOnly => 0,
                Verdict::Valid => 1,
                Verdict::Invalid => 2,
                Verdict::Malformed => 3,
            };
            self.cookies[p][i].fetch_add(1, Ordering::Relaxed);
        }
        let Some(r) = answered.reply else {
            self.dropped[p].fetch_add(1, Ordering::Relaxed);
            return;
        };
        if r.truncated {
            self.truncated[p].fetch_add(1, Ordering::Relaxed);
        }
        if r.rcode == 23 {
            self.badcookie[p].fetch_add(1, Ordering::Relaxed);
        }
        let qtype = answered
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
            (
                "meridian_dns_badcookie_replies",
                "DNS replies sent with BADCOOKIE (no valid server cookie while dns.cookies.require is set)",
                &self.badcookie,
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
            "meridian_dns_cookie_queries",
            "DNS queries carrying a COOKIE option (RFC 7873) while cookies are on, by protocol and what the server cookie was: none yet (client_only), valid, invalid (stale, tampered, another secret) or a malformed option",
            None,
            MetricType::Counter,
        )?;
        for (p, protocol) in PROTOCOLS.iter().enumerate() {
            for (i, result) in COOKIE_RESULTS.iter().enumerate() {
                let n = self.cookies[p][i].load(Ordering::Relaxed);
                family
                    .encode_family(&[("protocol", *protocol), ("result", *result)])?
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
