//! The DNS query counters: fixed arrays of atomics indexed by protocol, query-type bucket and
//! rcode bucket, so counting a query on the request path is a few relaxed atomic adds (no lock,
//! no allocation, no label lookup). `/metrics` reads them at scrape time through their
//! [`Collector`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;

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
