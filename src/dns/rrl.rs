//! Response rate limiting (RRL) for DNS over UDP, after BIND's, Knot's `mod-rrl` and NSD's: a
//! spoofed flood must not turn Meridian into an amplifier aimed at the address it names.
//! Responses are counted per client network (the source address cut to `/24` or `/56`); past
//! `responses_per_second` (after a `burst`), a network's responses are dropped, and every
//! `slip`-th of them goes out as a header-and-question reply with TC set instead, so a real
//! resolver behind that network retries over TCP, where the handshake proves its address.
//!
//! The table is a fixed array of buckets indexed by a keyed hash of the network, so memory is
//! bounded whatever the number of sources: a network whose slot another network took starts
//! afresh. Each bucket is one atomic word of state (a tag of the network and the "theoretical
//! arrival time" of the generic cell rate algorithm, a token bucket in a single number) plus
//! counters touched only when a response is limited; checking a response is one load and one
//! compare-and-swap, with no lock and no allocation. The limiter is pure: time comes in as a
//! parameter and the verdict goes out; the transport sends, logs and counts.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use ipnet::IpNet;
use tokio::time::Instant;

use arc_swap::ArcSwapOption;

use crate::hash::mix;
use crate::model::RrlSettings;
use crate::wire::HEADER_LEN;

/// Most reports (log lines) per second over all networks, so a flood spread over many
/// networks cannot flood the log too.
const MAX_REPORTS_PER_SECOND: u32 = 10;

/// Least time between two reports about the same network.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(30);

/// Bits of a bucket's state word holding the time; the rest hold the network's tag.
const TIME_BITS: u32 = 52;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

/// Marks IPv6 keys, so an IPv6 network and an IPv4 one with the same bits hash apart.
const V6_KEY: u64 = 0x9e37_79b9_7f4a_7c15;

/// One client network's (or, after a collision, its successor's) rate state.
#[derive(Debug, Default)]
struct Bucket {
    /// Tag of the network (12 bits) and the theoretical arrival time in microseconds since the
    /// limiter's epoch (52 bits, 142 years); 0 when never used.
    state: AtomicU64,
    /// Responses limited since the network took the slot (wrapping); drives `slip`.
    limited: AtomicU32,
    /// `limited` at the last report.
    reported: AtomicU32,
    /// Second (since the epoch) of the last report, plus one; 0: never reported.
    reported_at: AtomicU32,
}

/// The rate limiter: one per loaded config, shared by every UDP socket.
pub struct Limiter {
    settings: RrlSettings,
    /// Microseconds between two responses at the limit rate.
    interval_us: u64,
    /// How far ahead of now a bucket's arrival time may be and still allow a response:
    /// `(burst - 1)` intervals.
    ahead_us: u64,
    v4_mask: u32,
    v6_mask: u128,
    buckets: Box<[Bucket]>,
    /// Keys the hash, so which networks share a slot cannot be chosen from outside.
    seed: u64,
    epoch: Instant,
    /// Reports issued in the current second: `second << 32 | count`.
    reports: AtomicU64,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// The running instance's limiter, across reloads: the table is kept while `[dns.rrl]` stays
/// the same, and replaced by a fresh one (every bucket full) when a reload changes it or turns
/// limiting on; turning it off drops the table. Owned by the server and shared by the UDP
/// workers; the model only carries the settings, so `meridian check` allocates no table.
#[derive(Debug, Default)]
pub struct RateLimit {
    current: ArcSwapOption<Limiter>,
}

impl RateLimit {
    /// No table yet: the first [`RateLimit::follow`] makes one if the settings ask for it.
    pub fn new() -> RateLimit {
        RateLimit::default()
    }

    /// The limiter for `settings` (`None`: limiting off), making a table only when the current
    /// one was made for other settings. Workers call it once per batch with the settings of
    /// the snapshot they answer from; it is one atomic load and a comparison unless the
    /// settings changed, and concurrent callers end up sharing one table.
    pub fn follow(&self, settings: Option<&RrlSettings>, now: Instant) -> Option<Arc<Limiter>> {
        loop {
            let current = self.current.load_full();
            let fits = match (&current, settings) {
                (None, None) => true,
                (Some(limiter), Some(s)) => limiter.settings() == s,
                _ => false,
            };
            if fits {
                return current;
            }
            let next = settings.map(|s| Arc::new(Limiter::new(s.clone(), now)));
            let previous = self.current.compare_and_swap(&current, next.clone());
            let unchanged = match (&*previous, &current) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            };
            if unchanged {
                return next;
            }
        }
    }
}

/// What happens to a response over the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// Send [`truncated_reply`] instead of the answer; otherwise send nothing.
    pub slip: bool,
    /// A line to log about the network, at most one per [`REPORT_INTERVAL`].
    pub report: Option<Report>,
}

/// Something worth a log line: a network is being limited. Its `Display` is the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The client network.
    pub network: IpNet,
    /// Responses limited since the previous report (or since limiting began).
    pub limited: u32,
    /// Time since the previous report, when limiting went on since then; `None` when this is
    /// the start of an episode.
    pub since_last: Option<Duration>,
    /// The limit: responses per second.
    pub rate: u32,
    /// The limit: burst.
    pub burst: u32,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.since_last {
            None => write!(
                f,
                "rrl: limiting {}: over {} responses/s (burst {})",
                self.network, self.rate, self.burst
            ),
            Some(t) => write!(
                f,
                "rrl: still limiting {}: {} responses over {}/s limited in the last {} s",
                self.network,
                self.limited,
                self.rate,
                t.as_secs()
            ),
        }
    }
}

impl Limiter {
    /// A limiter with an empty table; `epoch` is the origin of the times given to
    /// [`Limiter::check`] (any instant not after them).
    pub fn new(settings: RrlSettings, epoch: Instant) -> Limiter {
        let rate = u64::from(settings.responses_per_second.max(1));
        let interval_us = (1_000_000 / rate).max(1);
        let ahead_us = interval_us * u64::from(settings.burst.max(1) - 1);
        let size = settings.table_size.max(1).next_power_of_two();
        let v4_mask = u32::MAX
            .checked_shl(32 - u32::from(settings.ipv4_prefix))
            .unwrap_or(0);
        let v6_mask = u128::MAX
            .checked_shl(128 - u32::from(settings.ipv6_prefix))
            .unwrap_or(0);
        Limiter {
            buckets: (0..size).map(|_| Bucket::default()).collect(),
            settings,
            interval_us,
            ahead_us,
            v4_mask,
            v6_mask,
            seed: rand::random(),
            epoch,
            reports: AtomicU64::new(0),
        }
    }

    /// The settings it limits by.
    pub fn settings(&self) -> &RrlSettings {
        &self.settings
    }

    /// Decides about one response to `client` at `now`: `None` to send it, else what to do
    /// instead. Takes a slot of the table for the client's network; never blocks.
    pub fn check(&self, client: IpAddr, now: Instant) -> Option<Limited> {
        let client = client.to_canonical();
        let hash = self.hash(client);
        let bucket = &self.buckets[hash as usize & (self.buckets.len() - 1)];
        let tag = hash >> TIME_BITS;
        let now_us = now.saturating_duration_since(self.epoch).as_micros();
        let now_us = u64::try_from(now_us).unwrap_or(TIME_MASK).min(TIME_MASK);
        let mut current = bucket.state.load(Ordering::Relaxed);
        loop {
            let ours = current != 0 && current >> TIME_BITS == tag;
            // A slot that is empty or held by another network starts full for this one.
            let arrival = if ours {
                (current & TIME_MASK).max(now_us)
            } else {
                now_us
            };
            if arrival - now_us > self.ahead_us {
                return self.limited(bucket, client, now_us);
            }
            let next = tag << TIME_BITS | (arrival + self.interval_us).min(TIME_MASK);
            match bucket.state.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if !ours && current != 0 {
                        // Taken over from another network: its counters are not ours.
                        bucket.limited.store(0, Ordering::Relaxed);
                        bucket.reported.store(0, Ordering::Relaxed);
                        bucket.reported_at.store(0, Ordering::Relaxed);
                    }
                    return None;
                }
                Err(seen) => current = seen,
            }
        }
    }

    /// The verdict for a response over the limit (`client` is canonical).
    fn limited(&self, bucket: &Bucket, client: IpAddr, now_us: u64) -> Option<Limited> {
        if self.settings.exempt.iter().any(|n| n.contains(&client)) {
            return None;
        }
        let count = bucket
            .limited
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1);
        let slip = self.settings.slip != 0 && count.is_multiple_of(self.settings.slip);
        let now_s = u32::try_from(now_us / 1_000_000).unwrap_or(u32::MAX - 1);
        let interval_s = REPORT_INTERVAL.as_secs() as u32;
        let last = bucket.reported_at.load(Ordering::Relaxed);
        let due = last == 0 || now_s >= (last - 1).saturating_add(interval_s);
        let report = if due
            && self.take_report(now_s)
            && bucket
                .reported_at
                .compare_exchange(last, now_s + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let before = bucket.reported.swap(count, Ordering::Relaxed);
            let since_last = (last != 0 && now_s - (last - 1) < 2 * interval_s)
                .then(|| Duration::from_secs(u64::from(now_s - (last - 1))));
            Some(Report {
                network: self.network(client),
                limited: count.wrapping_sub(before),
                since_last,
                rate: self.settings.responses_per_second,
                burst: self.settings.burst,
            })
        } else {
            None
        };
        Some(Limited { slip, report })
    }

    /// Takes one of this second's report slots, if any is left.
    fn take_report(&self, now_s: u32) -> bool {
        let mut current = self.reports.load(Ordering::Relaxed);
        loop {
            let (second, count) = ((current >> 32) as u32, current as u32);
            let next = if second != now_s {
                u64::from(now_s) << 32 | 1
            } else if count < MAX_REPORTS_PER_SECOND {
                current + 1
            } else {
                return false;
            };
            match self.reports.compare_exchange_weak(
                current,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// A keyed hash of the client's network: the low bits pick the slot, the top bits tag it.
    fn hash(&self, client: IpAddr) -> u64 {
        match client {
            IpAddr::V4(a) => mix(u64::from(u32::from(a) & self.v4_mask) ^ self.seed),
            IpAddr::V6(a) => {
                let bits = u128::from(a) & self.v6_mask;
                mix(mix((bits >> 64) as u64 ^ self.seed) ^ bits as u64 ^ V6_KEY)
            }
        }
    }

    /// The client's network as configured (`/24`, `/56`).
    fn network(&self, client: IpAddr) -> IpNet {
        let prefix = match client {
            IpAddr::V4(_) => self.settings.ipv4_prefix,
            IpAddr::V6(_) => self.settings.ipv6_prefix,
        };
        IpNet::new(client, prefix).map_or(IpNet::from(client), |n| n.trunc())
    }
}

/// Longest reply [`truncated_reply`] writes: the header and one question whose name is at most
/// 255 bytes (RFC 1035 §2.3.4), type and class.
pub const MAX_TRUNCATED_LEN: usize = HEADER_LEN + 255 + 4;

/// The reply a slipped response is replaced with, written into `out` from the query's bytes,
/// as NSD sends it: the query's ID, opcode and RD, QR and TC set, RCODE NOERROR, and its
/// question as asked (letter case kept) with no other records (RFC 1035 §4.1.1; TC tells the
/// resolver to ask again over TCP, RFC 7766 §5). `question_len` is the length of the query's
/// only question as [`crate::wire::Query`] read it ([`super::Answered::question_len`]); `None`
/// (QDCOUNT not 1, a compression pointer, a name past 255 bytes or past the end) leaves just
/// the header. `None` for a packet shorter than a header, which gets no reply at all.
pub fn truncated_reply<'b>(
    query: &[u8],
    question_len: Option<usize>,
    out: &'b mut [u8; MAX_TRUNCATED_LEN],
) -> Option<&'b [u8]> {
    let header = query.get(..HEADER_LEN)?;
    let question = question_len
        .filter(|&n| n <= MAX_TRUNCATED_LEN - HEADER_LEN && HEADER_LEN + n <= query.len());
    out[..2].copy_from_slice(&header[..2]);
    // QR, the query's opcode, TC and RD; AA, RA, Z, AD, CD and RCODE clear.
    out[2] = 0x80 | (header[2] & 0x78) | 0x02 | (header[2] & 0x01);
    out[3] = 0;
    out[4..HEADER_LEN].copy_from_slice(&[0, u8::from(question.is_some()), 0, 0, 0, 0, 0, 0]);
    let len = HEADER_LEN + question.unwrap_or(0);
    out[HEADER_LEN..len].copy_from_slice(&query[HEADER_LEN..len]);
    Some(&out[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn the_table_survives_a_reload_that_keeps_the_settings() {
        let t0 = Instant::now();
        let rl = RateLimit::new();
        assert!(rl.follow(None, t0).is_none());
        let first = rl.follow(Some(&settings(1, 1, 0)), t0).expect("on");
        let client = ip("192.0.2.1");
        assert!(first.check(client, t0).is_none(), "the burst");
        assert!(first.check(client, t0).is_some(), "then limited");
        // The same settings (a reload that did not touch [dns.rrl]): the same table, so the
        // network is still limited.
        let same = rl.follow(Some(&settings(1, 1, 0)), t0).expect("on");
        assert!(Arc::ptr_eq(&first, &same));
        assert!(same.check(client, t0).is_some());
        // Other settings: a fresh table, the network gets its burst again.
        let other = rl.follow(Some(&settings(1, 2, 0)), t0).expect("on");
        assert!(!Arc::ptr_eq(&first, &other));
        assert!(other.check(client, t0).is_none());
        // Off, then on again: fresh.
        assert!(rl.follow(None, t0).is_none());
        let again = rl.follow(Some(&settings(1, 2, 0)), t0).expect("on");
        assert!(!Arc::ptr_eq(&other, &again));
    }

    fn settings(rate: u32, burst: u32, slip: u32) -> RrlSettings {
        RrlSettings {
            responses_per_second: rate,
            burst,
            slip,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            exempt: Vec::new(),
            table_size: 1 << 16,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// How many of `n` responses to `client`, all at `at`, are limited.
    fn limited_of(l: &Limiter, client: &str, at: Instant, n: u32) -> u32 {
        (0..n).filter(|_| l.check(ip(client), at).is_some()).count() as u32
    }

    #[test]
    fn a_burst_then_the_rate() {
        let t0 = Instant::now();
        let l = Limiter::new(settings(10, 5, 2), t0);
        // A full bucket lets `burst` through at once, then nothing.
        assert_eq!(limited_of(&l, "192.0.2.1", t0, 8), 3);
        // One interval (100 ms) later, exactly one more.
        let t = t0 + Duration::from_millis(100);
        assert_eq!(limited_of(&l, "192.0.2.1", t, 3), 2);
        // After a second, 10 more (never more than the burst at once).
        let t = t + Duration::from_secs(1);
        assert_eq!(limited_of(&l, "192.0.2.1", t, 20), 15);
        // Idle long enough, the bucket is full again, but not fuller.
        let t = t + Duration::from_secs(60);
        assert_eq!(limited_of(&l, "192.0.2.1", t, 6), 1);
    }

    #[test]
    fn a_steady_sender_gets_the_rate_over_time() {
        let t0 = Instant::now();
        let l = Limiter::new(settings(20, 20, 0), t0);
        // 200 queries a second for 10 s: burst + rate x 10 s answered.
        let mut sent = 0;
        for ms in 0..10_000u64 {
            if ms % 5 == 0
                && l.check(ip("198.51.100.7"), t0 + Duration::from_millis(ms))
                    .is_none()
            {
                sent += 1;
            }
        }
        assert!((20 + 199..=20 + 200).contains(&sent), "{sent}");
    }

    #[test]
    fn networks_are_separate_and_cut_at_the_prefix() {
        let t0 = Instant::now();
        let l = Limiter::new(settings(1, 2, 0), t0);
        assert_eq!(limited_of(&l, "192.0.2.1", t0, 2), 0);
        // The same /24: the same bucket.
        assert_eq!(limited_of(&l, "192.0.2.200", t0, 1), 1);
        // IPv4-mapped IPv6 (a dual-stack socket) is the same IPv4 client.
        assert_eq!(limited_of(&l, "::ffff:192.0.2.9", t0, 1), 1);
        // Another /24 has its own.
        assert_eq!(limited_of(&l, "192.0.3.1", t0, 2), 0);
        // IPv6 by /56.
        assert_eq!(limited_of(&l, "2001:db8:0:100::1", t0, 2), 0);
        assert_eq!(limited_of(&l, "2001:db8:0:1ff::2", t0, 1), 1);
        assert_eq!(limited_of(&l, "2001:db8:0:200::1", t0, 2), 0);
    }

    #[test]
    fn slip_sends_every_nth_limited_response_truncated() {
        let t0 = Instant::now();
        for (slip, expected) in [(0, 0), (1, 12), (2, 6), (3, 4)] {
            let l = Limiter::new(settings(1, 1, slip), t0);
            assert_eq!(l.check(ip("192.0.2.1"), t0), None);
            let slipped = (0..12)
                .map(|_| l.check(ip("192.0.2.1"), t0).expect("limited"))
                .filter(|v| v.slip)
                .count();
            assert_eq!(slipped, expected, "slip = {slip}");
        }
    }

    #[test]
    fn exempt_networks_are_never_limited() {
        let t0 = Instant::now();
        let mut s = settings(1, 1, 2);
        s.exempt = vec![
            "192.0.2.0/25".parse().unwrap(),
            "2001:db8::/32".parse().unwrap(),
        ];
        let l = Limiter::new(s, t0);
        assert_eq!(limited_of(&l, "192.0.2.1", t0, 50), 0);
        assert_eq!(limited_of(&l, "::ffff:192.0.2.1", t0, 50), 0);
        // Same /24, outside the exempt /25: limited (the bucket is shared and already empty).
        assert_eq!(limited_of(&l, "192.0.2.200", t0, 2), 2);
        assert_eq!(limited_of(&l, "2001:db8::1", t0, 50), 0);
    }

    #[test]
    fn a_network_taking_a_slot_starts_full() {
        let t0 = Instant::now();
        let mut s = settings(1, 2, 0);
        s.table_size = 1; // every network shares the one slot
        let l = Limiter::new(s, t0);
        let tag = |client: &str| l.hash(ip(client)) >> TIME_BITS;
        // Another network with another tag (one in 4096 share a tag).
        let other = (1..=255)
            .map(|n| format!("198.51.{n}.1"))
            .find(|o| tag(o) != tag("192.0.2.1"))
            .unwrap();
        assert_eq!(limited_of(&l, "192.0.2.1", t0, 3), 1);
        assert_eq!(limited_of(&l, &other, t0, 3), 1);
        // Taken back: full again.
        assert_eq!(limited_of(&l, "192.0.2.1", t0, 2), 0);
    }

    #[test]
    fn reports_at_most_one_per_network_per_interval() {
        let t0 = Instant::now();
        let l = Limiter::new(settings(1, 1, 0), t0);
        let reports = |at: Instant, n: u32| -> Vec<Report> {
            (0..n)
                .filter_map(|_| l.check(ip("192.0.2.77"), at).and_then(|v| v.report))
                .collect()
        };
        assert_eq!(l.check(ip("192.0.2.77"), t0), None);
        let first = reports(t0, 100);
        assert_eq!(first.len(), 1, "{first:?}");
        assert_eq!(
            first[0].to_string(),
            "rrl: limiting 192.0.2.0/24: over 1 responses/s (burst 1)"
        );
        // Within the interval: silent, however many are limited.
        assert!(reports(t0 + Duration::from_secs(29), 100).is_empty());
        // After it, one line with what was limited since the first: the other 99 at t0, 99 at
        // t0 + 29 s (one was allowed then, and one now) and this one.
        let later = reports(t0 + REPORT_INTERVAL, 10);
        assert_eq!(later.len(), 1, "{later:?}");
        assert_eq!(
            later[0].to_string(),
            "rrl: still limiting 192.0.2.0/24: 199 responses over 1/s limited in the last 30 s"
        );
        // A new episode long after: no "since".
        let much_later = reports(t0 + 10 * REPORT_INTERVAL, 3);
        assert_eq!(much_later[0].since_last, None);
    }

    #[test]
    fn reports_are_capped_over_all_networks() {
        let t0 = Instant::now();
        let mut s = settings(1, 1, 0);
        s.table_size = 1 << 16;
        let l = Limiter::new(s, t0);
        let mut reports = 0;
        for n in 0..200u32 {
            let client = IpAddr::from([10, (n >> 8) as u8, n as u8, 1]);
            for _ in 0..2 {
                if l.check(client, t0).and_then(|v| v.report).is_some() {
                    reports += 1;
                }
            }
        }
        assert_eq!(reports, MAX_REPORTS_PER_SECOND);
    }

    /// The truncated reply to `query`, its question read as the request path reads it.
    fn slip<'b>(query: &[u8], out: &'b mut [u8; MAX_TRUNCATED_LEN]) -> Option<&'b [u8]> {
        let question =
            crate::wire::Query::parse(query).and_then(|q| q.question_bytes().map(<[u8]>::len));
        truncated_reply(query, question, out)
    }

    fn query(name: &str, id: u16) -> Vec<u8> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(
            Name::from_ascii(name).unwrap(),
            RecordType::AAAA,
        ));
        let mut e = hickory_proto::op::Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
        m.to_vec().unwrap()
    }

    #[test]
    fn truncated_replies_echo_id_and_question_with_tc() {
        let mut out = [0u8; MAX_TRUNCATED_LEN];
        let q = query("WwW.Example.TEST.", 0xbeef);
        let reply = Message::from_vec(slip(&q, &mut out).unwrap()).unwrap();
        assert_eq!(reply.metadata.id, 0xbeef);
        assert_eq!(reply.metadata.message_type, MessageType::Response);
        assert!(reply.metadata.truncation);
        assert!(reply.metadata.recursion_desired);
        assert!(!reply.metadata.authoritative);
        assert_eq!(reply.queries.len(), 1);
        assert_eq!(reply.queries[0].name().to_string(), "WwW.Example.TEST.");
        assert_eq!(reply.queries[0].query_type(), RecordType::AAAA);
        assert!(reply.answers.is_empty() && reply.additionals.is_empty());
        assert!(reply.edns.is_none());

        // The longest name fits.
        let label = "a".repeat(63);
        let long = format!("{label}.{label}.{label}.{}.", "b".repeat(61));
        let q = query(&long, 1);
        let n = slip(&q, &mut out).unwrap().len();
        assert_eq!(n, MAX_TRUNCATED_LEN);

        // No question to copy: the header alone; not even a header: nothing.
        let mut two = q.clone();
        two[5] = 2;
        let r = slip(&two, &mut out).unwrap();
        assert_eq!(r.len(), HEADER_LEN);
        assert_eq!(&r[..2], &[0, 1]);
        assert_eq!(&r[4..6], &[0, 0]);
        let mut pointer = q[..HEADER_LEN].to_vec();
        pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert_eq!(slip(&pointer, &mut out).unwrap().len(), HEADER_LEN);
        assert_eq!(
            slip(&q[..HEADER_LEN + 3], &mut out).unwrap().len(),
            HEADER_LEN
        );
        assert_eq!(slip(&q[..5], &mut out), None);
    }
}
