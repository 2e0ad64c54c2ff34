//! Response rate limiting as a client sees it: floods over real UDP from loopback addresses
//! (any 127/8 address is a client of its own on Linux), the replies that come back or do not,
//! TCP from the same address, another network at the same time, exemptions, slip, reload, the
//! `/metrics` counters and config errors. Each flood is a fixed batch sent as fast as the test
//! can; the server's counters say when it has read all of it, so no wait stands in for
//! synchronisation, and the bound on full answers is derived from the measured time.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use meridian::Model;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::support::{
    HTTP_OPEN, Meridian, QueryBuilder, REPLY_TIMEOUT, Scraped, VALID, ZONE, config_dir,
    config_text, error_of, eventually, parse, scrape, udp_exchange_from,
};

/// Long-run limit of the test configs: low, so the time a flood takes adds almost nothing.
const RATE: u32 = 2;
/// Responses a fresh network gets at once.
const BURST: u32 = 10;

/// The name every flood asks, in mixed case to check that slipped replies echo it as asked.
const NAME: &str = "StAtIc.example.test.";

/// The flooding client and another network's.
const FLOODER: [u8; 4] = [127, 0, 0, 1];
const NEIGHBOUR: [u8; 4] = [127, 0, 9, 1];

/// `[dns.rrl]` with [`RATE`], [`BURST`] and `keys`, as the extra `[dns]` text of a test
/// config.
fn rrl(keys: &str) -> String {
    format!("[dns.rrl]\nresponses_per_second = {RATE}\nburst = {BURST}\n{keys}\n")
}

/// The most full answers a fresh network can get in `elapsed`: the burst, the rate over the
/// time, and one for a token accruing within the measurement.
fn most_full(elapsed: std::time::Duration) -> usize {
    BURST as usize + (f64::from(RATE) * elapsed.as_secs_f64()).ceil() as usize + 1
}

/// Sends one query for [`NAME`] per ID from `sock`, as fast as it can.
async fn flood(sock: &UdpSocket, server: SocketAddr, ids: RangeInclusive<u16>) {
    for id in ids {
        let q = QueryBuilder::new(NAME, RecordType::A).id(id).build();
        sock.send_to(&q, server).await.expect("send");
    }
}

/// A UDP query from `from` that must get a full answer.
async fn answered_from(m: &Meridian, from: [u8; 4]) {
    let q = QueryBuilder::new(NAME, RecordType::A).id(0xfeed).build();
    let r = parse(&udp_exchange_from(IpAddr::from(from), m.udp, &q).await);
    assert!(!r.metadata.truncation, "{from:?} was limited: {r:?}");
    assert_eq!(r.answers.len(), 1, "{r:?}");
}

/// What the server counted: full UDP answers for [`NAME`], and limited responses.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Counted {
    full: usize,
    dropped: usize,
    slipped: usize,
}

impl Counted {
    fn of(metrics: &Scraped) -> Counted {
        // Query counters appear once non-zero; the RRL ones are always there.
        let full = metrics
            .scrape
            .samples
            .iter()
            .filter(|s| s.metric == "meridian_dns_queries_total")
            .filter(|s| {
                s.labels.get("protocol") == Some("udp") && s.labels.get("qtype") == Some("A")
            })
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum::<f64>();
        let limited =
            |action| metrics.value("meridian_dns_rrl_limited_total", &[("action", action)]);
        Counted {
            full: full as usize,
            dropped: limited("dropped") as usize,
            slipped: limited("slipped") as usize,
        }
    }

    fn total(&self) -> usize {
        self.full + self.dropped + self.slipped
    }
}

/// Polls `/metrics` until the server has handled `total` UDP A queries (answered in full,
/// dropped or slipped), bounded by the tests' patience.
async fn handled(m: &Meridian, total: usize) -> Counted {
    eventually(&format!("{total} queries handled"), || async {
        let c = Counted::of(&scrape(m).await);
        if c.total() == total {
            Ok(c)
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await
}

/// The replies that reached a flooding socket, by kind.
#[derive(Debug, Default)]
struct Replies {
    full: Vec<Message>,
    truncated: Vec<Message>,
}

/// Receives exactly `n` replies on `sock` (each within [`REPLY_TIMEOUT`]), then checks that no
/// further one is waiting; checks each reply's kind and that IDs are not repeated.
async fn receive(sock: &UdpSocket, n: usize) -> Replies {
    let mut replies = Replies::default();
    let mut ids = HashSet::new();
    let mut buf = vec![0u8; 65_535];
    for _ in 0..n {
        let (len, _) = tokio::time::timeout(REPLY_TIMEOUT, sock.recv_from(&mut buf))
            .await
            .expect("a reply the server counted did not arrive")
            .expect("recv");
        let r = parse(&buf[..len]);
        assert!(
            ids.insert(r.metadata.id),
            "two replies to ID {}",
            r.metadata.id
        );
        assert_eq!(r.queries.len(), 1, "{r:?}");
        assert_eq!(
            r.queries[0].name().to_string(),
            NAME,
            "question echoed as asked"
        );
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        if r.metadata.truncation {
            assert!(
                r.answers.is_empty() && r.authorities.is_empty() && r.additionals.is_empty(),
                "{r:?}"
            );
            assert!(!r.metadata.authoritative);
            replies.truncated.push(r);
        } else {
            assert_eq!(r.answers.len(), 1, "{r:?}");
            replies.full.push(r);
        }
    }
    assert!(
        sock.try_recv_from(&mut buf).is_err(),
        "a reply beyond those the server counted"
    );
    replies
}

#[tokio::test]
async fn a_flood_gets_the_rate_and_slips_while_tcp_and_neighbours_are_served() {
    let m = Meridian::start(&rrl("slip = 2"), HTTP_OPEN).await;
    let sock = UdpSocket::bind((IpAddr::from(FLOODER), 0)).await.unwrap();
    let start = Instant::now();
    flood(&sock, m.udp, 1..=30).await;
    // While its UDP is limited, the same address is served over TCP ...
    let r = m.query_tcp(NAME, RecordType::A).await;
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 1, "{r:?}");
    // ... and another network over UDP.
    answered_from(&m, NEIGHBOUR).await;
    flood(&sock, m.udp, 31..=60).await;
    answered_from(&m, NEIGHBOUR).await;
    let counted = handled(&m, 60 + 2).await;
    let elapsed = start.elapsed();

    let full = counted.full - 2; // the neighbour's two
    assert!(
        (BURST as usize..=most_full(elapsed)).contains(&full),
        "{full} full answers in {elapsed:?} at {RATE}/s, burst {BURST}"
    );
    // slip = 2: every other limited response is sent truncated, the rest dropped.
    assert!(
        counted.slipped.abs_diff(counted.dropped) <= 1,
        "{counted:?}"
    );
    assert_eq!(full + counted.slipped + counted.dropped, 60);
    let replies = receive(&sock, full + counted.slipped).await;
    assert_eq!(replies.full.len(), full);
    assert_eq!(replies.truncated.len(), counted.slipped);
    // The first BURST queries were answered in full: the bucket starts full.
    let mut answered: Vec<u16> = replies.full.iter().map(|r| r.metadata.id).collect();
    answered.sort_unstable();
    assert_eq!(
        answered[..BURST as usize],
        (1..=BURST as u16).collect::<Vec<_>>()
    );

    let metrics = scrape(&m).await;
    assert_eq!(
        metrics.value(
            "meridian_dns_queries_total",
            &[("protocol", "tcp"), ("qtype", "A"), ("rcode", "NOERROR")]
        ),
        1.0
    );
    // Limited responses count nowhere else.
    assert_eq!(
        metrics.value("meridian_dns_truncated_total", &[("protocol", "udp")]),
        0.0
    );
    assert_eq!(
        metrics.value("meridian_dns_dropped_total", &[("protocol", "udp")]),
        0.0
    );
}

#[tokio::test]
async fn slip_0_drops_every_limited_response_and_slip_1_truncates_every_one_after_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let m = Meridian::start_at(dir.path(), &rrl("slip = 0"), HTTP_OPEN).await;
    let sock = UdpSocket::bind((IpAddr::from(FLOODER), 0)).await.unwrap();
    let start = Instant::now();
    flood(&sock, m.udp, 1..=30).await;
    let counted = handled(&m, 30).await;
    assert!((BURST as usize..=most_full(start.elapsed())).contains(&counted.full));
    assert_eq!(counted.slipped, 0);
    assert_eq!(counted.dropped, 30 - counted.full);
    let replies = receive(&sock, counted.full).await;
    assert!(replies.truncated.is_empty());

    // The reloaded settings apply at once, with a fresh table: the same network gets its
    // burst again, then a truncated reply for every limited response.
    std::fs::write(
        dir.path().join("meridian.toml"),
        config_text(&rrl("slip = 1"), HTTP_OPEN),
    )
    .unwrap();
    let reloaded = meridian::reload::reload(&m.state, &m.control, &m.telemetry)
        .await
        .expect("reload");
    assert!(
        reloaded
            .summary
            .contains("RRL 2/s per /24 and /56 (burst 10, slip 1)"),
        "{}",
        reloaded.summary
    );
    let start = Instant::now();
    flood(&sock, m.udp, 101..=130).await;
    let replies = receive(&sock, 30).await;
    let full = replies.full.len();
    assert!((BURST as usize..=most_full(start.elapsed())).contains(&full));
    assert_eq!(replies.truncated.len(), 30 - full);
    let after = Counted::of(&scrape(&m).await);
    assert_eq!(after.slipped, 30 - full);
    assert_eq!(after.dropped, counted.dropped, "slip = 1 drops nothing");
}

#[tokio::test]
async fn exempt_networks_are_never_limited() {
    let m = Meridian::start(
        &rrl("slip = 1\nexempt = [\"127.0.0.0/24\", \"::1\"]"),
        HTTP_OPEN,
    )
    .await;
    let sock = UdpSocket::bind((IpAddr::from(FLOODER), 0)).await.unwrap();
    flood(&sock, m.udp, 1..=40).await;
    let replies = receive(&sock, 40).await;
    assert_eq!(
        replies.full.len(),
        40,
        "every query of an exempt network answered"
    );

    // A network not listed is limited as usual.
    let other = UdpSocket::bind((IpAddr::from(NEIGHBOUR), 0)).await.unwrap();
    let start = Instant::now();
    flood(&other, m.udp, 1..=15).await;
    let replies = receive(&other, 15).await;
    assert!((BURST as usize..=most_full(start.elapsed())).contains(&replies.full.len()));
    let counted = Counted::of(&scrape(&m).await);
    assert_eq!(counted.slipped, replies.truncated.len());
    assert!(counted.slipped >= 15usize.saturating_sub(most_full(start.elapsed())));
    assert_eq!(counted.dropped, 0);
}

/// The valid test config with `keys` as its `[dns.rrl]` table (line 4 on).
fn with_rrl(keys: &str) -> String {
    VALID.replace(
        "zones = \"zones\"\n",
        &format!("zones = \"zones\"\n[dns.rrl]\n{keys}\n"),
    )
}

#[test]
fn config_errors_name_file_line_and_key() {
    let error = |keys: &str| error_of(&with_rrl(keys), ZONE);
    let cases = [
        (
            "exempt = [\"192.0.2.0/24\",\n  \"10.0.0.300/8\"]",
            "DIR/meridian.toml:6: dns.rrl.exempt: \"10.0.0.300/8\" is not a network (\"10.0.0.0/8\", \"2001:db8::/32\") or an address",
        ),
        (
            "responses_per_second = 0",
            "DIR/meridian.toml:5: dns.rrl.responses_per_second = 0: must be between 1 and 1000000 (to turn limiting off, set enabled = false)",
        ),
        (
            "burst = 0",
            "DIR/meridian.toml:5: dns.rrl.burst = 0: must be between 1 and 1000000",
        ),
        (
            "slip = 101",
            "DIR/meridian.toml:5: dns.rrl.slip = 101: must be between 0 and 100",
        ),
        (
            "ipv4_prefix = 33",
            "DIR/meridian.toml:5: dns.rrl.ipv4_prefix = 33: must be between 1 and 32",
        ),
        (
            "ipv6_prefix = 0",
            "DIR/meridian.toml:5: dns.rrl.ipv6_prefix = 0: must be between 1 and 128",
        ),
        (
            "table_size = 0",
            "DIR/meridian.toml:5: dns.rrl.table_size = 0: must be between 1 and 4194304",
        ),
        (
            "enabled = false\nslip = -1",
            "DIR/meridian.toml:6: invalid value: integer `-1`, expected u32",
        ),
        ("rate = 20", "DIR/meridian.toml:5: unknown field `rate`"),
    ];
    for (keys, expected) in cases {
        let e = error(keys);
        assert!(
            e.starts_with(expected),
            "{keys}:\n  got      {e}\n  expected {expected}"
        );
    }
}

#[test]
fn defaults_and_turning_it_off() {
    let load = |text: &str| {
        let (_dir, path) = config_dir(text, ZONE);
        Model::load(&path).unwrap()
    };
    assert!(load(VALID).dns.rrl.is_none(), "off without [dns.rrl]");
    // An empty table turns it on with the defaults.
    let on = load(&with_rrl(""));
    let s = on.dns.rrl.as_ref().expect("on");
    assert_eq!(
        (
            s.responses_per_second,
            s.burst,
            s.slip,
            s.ipv4_prefix,
            s.ipv6_prefix,
            s.table_size
        ),
        (20, 20, 2, 24, 56, 65_536)
    );
    assert!(s.exempt.is_empty());
    assert!(
        on.summary()
            .ends_with(", RRL 20/s per /24 and /56 (burst 20, slip 2)")
    );
    // A rate of 0 is allowed while off; table sizes round up to a power of two.
    assert!(
        load(&with_rrl("enabled = false\nresponses_per_second = 0"))
            .dns
            .rrl
            .is_none()
    );
    let sized = load(&with_rrl("table_size = 1000"));
    assert_eq!(sized.dns.rrl.unwrap().table_size, 1024);
}
