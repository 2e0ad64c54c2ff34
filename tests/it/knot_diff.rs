//! Differential test against Knot DNS: a real `knotd` and Meridian serve the same fixture zone,
//! receive the same query bytes, and must give the same answers (rcode, header flags, question
//! echo, records as multisets, OPT). Knot is the reference for RFC behaviour Meridian's own
//! tests could get wrong in the same way as the code they test.
//!
//! `knotd` comes from the Debian package `knot`; without it the test fails instead of skipping.

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::support::{self, Meridian, QueryBuilder};

/// Where the Debian package installs the daemon; `KNOTD` overrides it.
const KNOTD: &str = "/usr/sbin/knotd";

/// Ports tried for Knot before giving up (another process may take a port we found free).
const KNOT_START_ATTEMPTS: usize = 5;

/// Readiness polls per start attempt, each waiting at most [`READY_POLL`] for the reply.
const READY_TRIES: usize = 100;

/// Bound of one readiness poll.
const READY_POLL: Duration = Duration::from_millis(50);

/// How long a server's silence must last to count as "no reply" (only where silence is allowed).
const SILENCE: Duration = Duration::from_millis(500);

/// EDNS option code of Extended DNS Errors (RFC 8914 §2).
const EDE_OPTION: u16 = 15;

/// A `knotd` serving the fixture zone on loopback, killed when dropped.
pub struct Knot {
    child: Child,
    /// Where it answers UDP and TCP.
    pub addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Knot {
    /// Starts `knotd` on a free loopback port and waits until it answers for `example.test`.
    pub(crate) async fn start() -> Knot {
        Knot::start_with("", "").await
    }

    /// Like [`Knot::start`], with `sections` (module configs) before the template and
    /// `template` lines (`global-module: …`) in the default template.
    pub async fn start_with(sections: &str, template: &str) -> Knot {
        let knotd = std::env::var_os("KNOTD").map_or_else(|| PathBuf::from(KNOTD), PathBuf::from);
        assert!(
            knotd.is_file(),
            "knotd not found at {} (install the Debian package `knot`, or set KNOTD)",
            knotd.display()
        );
        let mut failures = String::new();
        for attempt in 1..=KNOT_START_ATTEMPTS {
            let port = free_port();
            let mut knot = Knot::spawn(&knotd, port, sections, template);
            match knot.wait_ready().await {
                Ok(()) => return knot,
                Err(why) => {
                    let _ = writeln!(
                        failures,
                        "attempt {attempt} on port {port}: {why}\n--- knotd log ---\n{}",
                        knot.log_text()
                    );
                }
            }
        }
        panic!("knotd did not become ready:\n{failures}");
    }

    fn spawn(knotd: &Path, port: u16, sections: &str, template: &str) -> Knot {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path();
        let conf = format!(
            "server:\n    listen: 127.0.0.1@{port}\n    rundir: {run}\n    udp-workers: 1\n    \
             tcp-workers: 1\n    background-workers: 1\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n    storage: {run}/db\n{sections}\
             template:\n  - id: default\n    storage: {zones}\n    semantic-checks: off\n{template}\
             zone:\n  - domain: example.test\n    file: example.test.zone\n",
            run = run.display(),
            zones = support::fixture_zones().display(),
        );
        let conf_path = run.join("knot.conf");
        std::fs::write(&conf_path, conf).expect("write knot.conf");
        let log = run.join("knotd.log");
        let out = File::create(&log).expect("create knotd.log");
        let err = out.try_clone().expect("clone log handle");
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", knotd.display()));
        Knot {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
            _dir: dir,
        }
    }

    /// Polls with a real SOA query until Knot answers it authoritatively (bounded).
    async fn wait_ready(&mut self) -> Result<(), String> {
        let probe = QueryBuilder::new("example.test.", RecordType::SOA)
            .id(0x5eed)
            .build();
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind probe");
        let mut buf = vec![0u8; 65_535];
        for _ in 0..READY_TRIES {
            if let Some(status) = self.exited() {
                return Err(format!("knotd exited: {status}"));
            }
            sock.send_to(&probe, self.addr).await.expect("send probe");
            let ready = match tokio::time::timeout(READY_POLL, sock.recv_from(&mut buf)).await {
                Ok(Ok((n, _))) => Message::from_vec(&buf[..n]).is_ok_and(|m| {
                    m.metadata.id == 0x5eed
                        && m.metadata.response_code == ResponseCode::NoError
                        && m.metadata.authoritative
                        && m.answers.len() == 1
                }),
                Ok(Err(_)) => false,
                Err(_) => continue, // Already waited READY_POLL for it.
            };
            if ready {
                return Ok(());
            }
            // An immediate error or a not-ready answer must not turn the loop into a spin.
            tokio::time::sleep(READY_POLL).await;
        }
        Err(format!(
            "no authoritative SOA answer after {READY_TRIES} polls"
        ))
    }

    fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot wait for knotd: {e}")),
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_else(|e| format!("(no log: {e})"))
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    crate::support::child_port()
}

/// One UDP or TCP exchange with a loopback server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Udp,
    Tcp,
}

impl Via {
    pub(crate) async fn exchange(self, server: SocketAddr, packet: &[u8]) -> Vec<u8> {
        match self {
            Via::Udp => support::udp_exchange(server, packet).await,
            Via::Tcp => {
                let mut s = TcpStream::connect(server).await.expect("tcp connect");
                support::write_frame(&mut s, packet).await;
                support::read_frame(&mut s).await.expect("tcp reply")
            }
        }
    }
}

impl Via {
    /// Like [`Via::exchange`], but `None` when no reply comes within [`SILENCE`] (or TCP closes).
    async fn try_exchange(self, server: SocketAddr, packet: &[u8]) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65_535];
        match self {
            Via::Udp => {
                let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
                sock.send_to(packet, server).await.expect("send");
                let (n, _) = tokio::time::timeout(SILENCE, sock.recv_from(&mut buf))
                    .await
                    .ok()?
                    .ok()?;
                buf.truncate(n);
                Some(buf)
            }
            Via::Tcp => {
                let mut s = TcpStream::connect(server).await.expect("tcp connect");
                support::write_frame(&mut s, packet).await;
                let read = async {
                    let len = usize::from(s.read_u16().await.ok()?);
                    buf.truncate(len);
                    s.read_exact(&mut buf).await.ok()?;
                    Some(buf)
                };
                tokio::time::timeout(SILENCE, read).await.ok()?
            }
        }
    }
}

/// One query of the differential run, and whether it also goes over TCP.
pub(crate) struct Case {
    pub(crate) packet: Vec<u8>,
    pub(crate) tcp: bool,
}

/// Collects the queries, giving each its own ID.
#[derive(Default)]
struct Cases(Vec<Case>);

impl Cases {
    fn id(&self) -> u16 {
        0x1000 + self.0.len() as u16
    }

    /// Over UDP only.
    fn udp(&mut self, q: QueryBuilder) {
        let packet = q.id(self.id()).build();
        self.0.push(Case { packet, tcp: false });
    }

    /// Over UDP and over TCP.
    fn both(&mut self, q: QueryBuilder) {
        let packet = q.id(self.id()).build();
        self.0.push(Case { packet, tcp: true });
    }

    /// Over UDP, with a change [`QueryBuilder`] cannot express made to the message.
    fn udp_with(&mut self, q: QueryBuilder, change: impl FnOnce(&mut Message)) {
        let mut msg = Message::from_vec(&q.id(self.id()).build()).expect("own query parses");
        change(&mut msg);
        let packet = msg.to_vec().expect("encode query");
        self.0.push(Case { packet, tcp: false });
    }
}

fn q(name: &str, qtype: RecordType) -> QueryBuilder {
    QueryBuilder::new(name, qtype)
}

/// Queries with EDNS (payload 1232), as a modern resolver sends them.
fn e(name: &str, qtype: RecordType) -> QueryBuilder {
    QueryBuilder::new(name, qtype).edns(1232)
}

/// Every query of the differential run. ANY is left out: RFC 8482 lets servers choose.
pub(crate) fn cases() -> Vec<Case> {
    use RecordType::{A, AAAA, CNAME, DS, MX, NS, SOA, SRV, TXT};
    let unknown = RecordType::Unknown(65534);
    let mut c = Cases::default();

    // Apex.
    c.both(e("example.test.", SOA));
    c.both(e("example.test.", NS));
    c.udp(e("example.test.", MX));
    c.udp(e("example.test.", TXT));
    c.udp(e("example.test.", AAAA)); // NODATA at the apex
    c.udp(e("example.test.", DS)); // the parent's data; we are not the parent
    c.udp(q("example.test.", SOA)); // no EDNS

    // Plain addresses.
    c.udp(e("ns1.example.test.", A));
    c.udp(e("ns1.example.test.", AAAA));
    c.udp(e("ns2.example.test.", A));
    c.udp(e("mail.example.test.", A));
    c.udp(e("static.example.test.", A));
    c.udp(e("static.example.test.", AAAA));
    c.udp(e("a.b.example.test.", A));

    // Mixed case: the question comes back as sent (RFC 1034 §3.1; 0x20 resolvers rely on it).
    c.both(e("MiXeD.cAsE.example.TEST.", A));
    c.udp(e("mixed.case.example.test.", A));
    c.udp(e("STATIC.EXAMPLE.TEST.", AAAA));
    c.udp(e("Example.Test.", SOA));
    c.udp(e("WWW.Example.Test.", A));
    c.udp(e("ALIAS2.Example.TEST.", A));

    // NODATA (RFC 2308 §2.2), including an unknown type (RFC 3597).
    c.udp(e("static.example.test.", MX));
    c.udp(e("txt.example.test.", A));
    c.udp(e("ns1.example.test.", TXT));
    c.udp(e("static.example.test.", unknown));
    c.udp(e("example.test.", unknown));
    c.udp(e("txt.example.test.", TXT));

    // NXDOMAIN.
    c.both(e("nope.example.test.", A));
    c.udp(e("deep.nope.example.test.", AAAA));
    c.udp(e("www.example.test.", A));
    c.udp(e("notexample.test.", A)); // not under the zone at all: REFUSED, not NXDOMAIN

    // Empty non-terminal (RFC 8020): NODATA, not NXDOMAIN.
    c.udp(e("b.example.test.", A));
    c.udp(e("b.example.test.", TXT));

    // CNAME chains (RFC 1034 §3.6.2, RFC 6604).
    c.both(e("alias.example.test.", A));
    c.udp(e("alias.example.test.", AAAA));
    c.udp(e("alias.example.test.", MX)); // chain ends in NODATA
    c.udp(e("alias2.example.test.", A));
    c.udp(e("dangling.example.test.", A));
    c.udp(e("outside.example.test.", A));
    c.udp(e("loop1.example.test.", A));
    c.udp(e("to-www.example.test.", A));
    c.udp(e("alias.example.test.", CNAME));
    c.udp(e("dangling.example.test.", CNAME));
    c.udp(e("static.example.test.", CNAME));

    // Wildcards (RFC 4592).
    c.both(e("x.wild.example.test.", A));
    c.udp(e("x.y.wild.example.test.", A));
    c.udp(e("x.wild.example.test.", TXT));
    c.udp(e("x.wild.example.test.", AAAA));
    c.udp(e("X.Wild.Example.Test.", A));
    c.udp(e("blocked.wild.example.test.", A));
    c.udp(e("blocked.wild.example.test.", TXT));
    c.udp(e("y.blocked.wild.example.test.", A));
    c.udp(e("wild.example.test.", A));
    c.udp(e("*.wild.example.test.", A));
    c.udp(e("x.cnamewild.example.test.", A));
    c.udp(e("x.cnamewild.example.test.", CNAME));

    // Delegation (RFC 1034 §4.3.2, RFC 9471), DS from the parent side (RFC 4035 §3.1.4.1).
    c.both(e("sub.example.test.", A));
    c.udp(e("www.sub.example.test.", A));
    c.udp(e("ns.sub.example.test.", A));
    c.udp(e("sub.example.test.", NS));
    c.udp(e("SUB.Example.Test.", NS));
    c.both(e("sub.example.test.", DS));
    c.udp(e("x.sub.example.test.", DS));
    c.udp(e("www.sub.example.test.", A).dnssec_ok());
    c.udp(q("www.sub.example.test.", AAAA));

    // Additional section processing.
    c.both(e("_http._tcp.example.test.", SRV));

    // Truncation (RFC 1035 §4.2.1, RFC 6891 §7); over TCP the full answer.
    c.both(q("big.example.test.", A));
    c.udp(e("big.example.test.", A));
    c.udp(QueryBuilder::new("big.example.test.", A).edns(512));
    c.udp(QueryBuilder::new("big.example.test.", A).edns(100)); // below 512: 512
    c.both(e("bigtxt.example.test.", TXT));
    c.udp(QueryBuilder::new("bigtxt.example.test.", TXT).edns(4096));
    c.udp(q("bigtxt.example.test.", TXT));

    // Not ours: REFUSED (we do not recurse).
    c.both(e("foo.invalid.", A));
    c.udp(q("foo.invalid.", A));
    c.udp(e(".", SOA));
    c.udp(e(".", NS));
    c.udp(e("test.", SOA));
    c.udp(e("example.test.invalid.", A));

    // Class CH: not ours either.
    c.udp_with(e("static.example.test.", A), |m| {
        m.queries[0].set_query_class(DNSClass::CH);
    });
    c.udp_with(q("example.test.", SOA), |m| {
        m.queries[0].set_query_class(DNSClass::CH);
    });

    // EDNS (RFC 6891): versions, DO (RFC 3225), payload sizes.
    c.both(e("static.example.test.", A).edns_version(1));
    c.udp(e("foo.invalid.", A).edns_version(1));
    c.udp(e("static.example.test.", A).dnssec_ok());
    c.udp(e("nope.example.test.", A).dnssec_ok());
    c.udp(e("alias.example.test.", A).dnssec_ok());
    c.udp(QueryBuilder::new("static.example.test.", A).edns(512));
    c.udp(QueryBuilder::new("static.example.test.", A).edns(4096));
    c.udp(QueryBuilder::new("static.example.test.", A).edns(100));
    c.udp(q("static.example.test.", A));

    // Header flags: RD echoed with RA clear; CD and AD in queries.
    c.udp(e("static.example.test.", A).rd());
    c.udp(e("nope.example.test.", A).rd());
    c.udp(q("foo.invalid.", A).rd());
    c.udp_with(e("static.example.test.", A), |m| {
        m.metadata.checking_disabled = true;
    });
    c.udp_with(e("static.example.test.", A).dnssec_ok(), |m| {
        m.metadata.authentic_data = true;
    });

    c.0
}

/// The question section of a raw message, byte for byte (`None` if it does not parse).
fn question_bytes(packet: &[u8]) -> Option<&[u8]> {
    let qdcount = u16::from_be_bytes([*packet.get(4)?, *packet.get(5)?]);
    let mut pos = 12;
    for _ in 0..qdcount {
        loop {
            let len = *packet.get(pos)?;
            if len == 0 {
                pos += 1;
                break;
            }
            if len & 0xc0 == 0xc0 {
                pos += 2;
                break;
            }
            pos += 1 + usize::from(len);
        }
        pos += 4;
    }
    packet.get(12..pos)
}

/// A short description of a query, for the mismatch report.
pub(crate) fn describe(packet: &[u8]) -> String {
    let Ok(m) = Message::from_vec(packet) else {
        return format!("unparsable query {packet:02x?}");
    };
    let mut s = format!("id={:#06x}", m.metadata.id);
    for query in &m.queries {
        let _ = write!(
            s,
            " {} {} {}",
            query.name(),
            query.query_class(),
            query.query_type()
        );
    }
    if m.metadata.recursion_desired {
        s.push_str(" +rd");
    }
    if m.metadata.checking_disabled {
        s.push_str(" +cd");
    }
    if m.metadata.authentic_data {
        s.push_str(" +ad");
    }
    match &m.edns {
        None => s.push_str(" no-edns"),
        Some(edns) => {
            let _ = write!(s, " edns(v{} size {}", edns.version(), edns.max_payload());
            if edns.flags().dnssec_ok {
                s.push_str(" DO");
            }
            s.push(')');
        }
    }
    s
}

/// One record as text for multiset comparison: owner lowercased (RFC 4343), names inside RDATA
/// lowercased too (compression may borrow the question's case), other RDATA exact.
fn canonical(r: &Record) -> String {
    let rdata = match &r.data {
        // Display joins the strings; keep their boundaries and bytes.
        RData::TXT(txt) => txt
            .txt_data
            .iter()
            .map(|s| format!("{:?}", String::from_utf8_lossy(s)))
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    };
    let rdata = match r.record_type() {
        RecordType::CNAME
        | RecordType::NS
        | RecordType::MX
        | RecordType::SRV
        | RecordType::SOA
        | RecordType::PTR => rdata.to_ascii_lowercase(),
        _ => rdata,
    };
    format!(
        "{} {} {} {} {}",
        r.name.to_lowercase(),
        r.ttl,
        r.dns_class,
        r.record_type(),
        rdata
    )
}

/// Compares a section as a multiset; appends what only one side has to `diffs`.
fn compare_section(section: &str, knot: &[Record], meridian: &[Record], diffs: &mut Vec<String>) {
    let mut k: Vec<String> = knot.iter().map(canonical).collect();
    let mut m: Vec<String> = meridian.iter().map(canonical).collect();
    k.sort();
    m.sort();
    if k == m {
        return;
    }
    let mut only_m = m.clone();
    let mut only_k = Vec::new();
    for r in k {
        match only_m.iter().position(|x| *x == r) {
            Some(i) => {
                only_m.remove(i);
            }
            None => only_k.push(r),
        }
    }
    for r in only_k {
        diffs.push(format!("{section}: only Knot has     {r}"));
    }
    for r in only_m {
        diffs.push(format!("{section}: only Meridian has {r}"));
    }
}

/// Everything that differs between Knot's and Meridian's replies to `query`, as readable lines.
pub(crate) fn compare(query: &[u8], knot: &[u8], meridian: &[u8]) -> Vec<String> {
    let mut diffs = Vec::new();
    let (k, m) = match (Message::from_vec(knot), Message::from_vec(meridian)) {
        (Ok(k), Ok(m)) => (k, m),
        (k, m) => {
            if let Err(e) = k {
                diffs.push(format!("Knot's reply does not parse: {e}: {knot:02x?}"));
            }
            if let Err(e) = m {
                diffs.push(format!(
                    "Meridian's reply does not parse: {e}: {meridian:02x?}"
                ));
            }
            return diffs;
        }
    };
    let (kh, mh) = (&k.metadata, &m.metadata);
    macro_rules! same {
        ($what:literal, $field:ident) => {
            if kh.$field != mh.$field {
                diffs.push(format!(
                    "{}: Knot {:?}, Meridian {:?}",
                    $what, kh.$field, mh.$field
                ));
            }
        };
    }
    same!("rcode", response_code);
    same!("ID", id);
    same!("QR", message_type);
    same!("opcode", op_code);
    same!("AA", authoritative);
    same!("TC", truncation);
    same!("RD", recursion_desired);
    same!("RA", recursion_available);
    same!("AD", authentic_data);
    same!("CD", checking_disabled);

    let sent = question_bytes(query);
    let (kq, mq) = (question_bytes(knot), question_bytes(meridian));
    if kq != mq {
        diffs.push(format!(
            "question bytes: Knot {:?}, Meridian {:?}",
            kq.map(String::from_utf8_lossy),
            mq.map(String::from_utf8_lossy)
        ));
    } else if kq != sent {
        diffs.push(format!(
            "question not echoed as sent by either: sent {:?}, both {:?}",
            sent.map(String::from_utf8_lossy),
            kq.map(String::from_utf8_lossy)
        ));
    }

    if kh.truncation || mh.truncation {
        // What a truncated reply carries besides the header and question is the server's choice.
        return diffs;
    }

    match (&k.edns, &m.edns) {
        (None, None) => {}
        (Some(_), None) => diffs.push("OPT: only Knot has one".to_owned()),
        (None, Some(_)) => diffs.push("OPT: only Meridian has one".to_owned()),
        (Some(ke), Some(me)) => {
            if ke.version() != me.version() {
                diffs.push(format!(
                    "EDNS version: Knot {}, Meridian {}",
                    ke.version(),
                    me.version()
                ));
            }
            if ke.flags().dnssec_ok != me.flags().dnssec_ok {
                diffs.push(format!(
                    "DO: Knot {}, Meridian {}",
                    ke.flags().dnssec_ok,
                    me.flags().dnssec_ok
                ));
            }
            let (k_ede, m_ede) = (has_ede(&k), has_ede(&m));
            if k_ede != m_ede {
                diffs.push(format!(
                    "Extended DNS Error option present: Knot {k_ede}, Meridian {m_ede}"
                ));
            }
            if ke.max_payload() != me.max_payload() {
                diffs.push(format!(
                    "EDNS payload: Knot {}, Meridian {}",
                    ke.max_payload(),
                    me.max_payload()
                ));
            }
        }
    }

    compare_section("answer", &k.answers, &m.answers, &mut diffs);
    compare_section("authority", &k.authorities, &m.authorities, &mut diffs);
    compare_section("additional", &k.additionals, &m.additionals, &mut diffs);
    diffs
}

/// Whether a reply's OPT carries an Extended DNS Error (RFC 8914).
fn has_ede(reply: &Message) -> bool {
    reply.edns.as_ref().is_some_and(|e| {
        e.options()
            .as_ref()
            .iter()
            .any(|(code, _)| u16::from(*code) == EDE_OPTION)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_knot() {
    let knot = Knot::start().await;
    let meridian = Meridian::start("", "").await;
    let cases = cases();

    let mut compared = 0;
    let mut mismatched = 0;
    for case in &cases {
        let vias: &[Via] = if case.tcp {
            &[Via::Udp, Via::Tcp]
        } else {
            &[Via::Udp]
        };
        for &via in vias {
            let k = via.exchange(knot.addr, &case.packet).await;
            let m = via
                .exchange(meridian_addr(&meridian, via), &case.packet)
                .await;
            compared += 1;
            let diffs = compare(&case.packet, &k, &m);
            if !diffs.is_empty() {
                mismatched += 1;
                println!("MISMATCH {via:?} {}", describe(&case.packet));
                for d in diffs {
                    println!("    {d}");
                }
            }
        }
    }
    println!(
        "knot_diff: {} queries, {compared} exchanges compared, {mismatched} mismatched",
        cases.len()
    );
    meridian.stop().await;
    assert!(compared >= 60, "only {compared} exchanges compared");
    assert_eq!(
        mismatched, 0,
        "{mismatched} of {compared} replies differ from Knot's (diffs above)"
    );
}

pub(crate) fn meridian_addr(meridian: &Meridian, via: Via) -> SocketAddr {
    match via {
        Via::Udp => meridian.udp,
        Via::Tcp => meridian.tcp,
    }
}

/// Sets the opcode bits of a raw query.
fn with_opcode(mut packet: Vec<u8>, opcode: u8) -> Vec<u8> {
    packet[2] = (packet[2] & !0x78) | (opcode << 3);
    packet
}

/// Sends `response` (QR=1) and then `query` from one socket; returns the first reply's ID.
/// A server that answered the response would answer it first: the socket and order are the same.
async fn first_reply_id(server: SocketAddr, response: &[u8], query: &[u8]) -> u16 {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    sock.send_to(response, server).await.expect("send response");
    sock.send_to(query, server).await.expect("send query");
    let mut buf = vec![0u8; 65_535];
    let (n, _) = tokio::time::timeout(support::REPLY_TIMEOUT, sock.recv_from(&mut buf))
        .await
        .expect("no UDP reply in time")
        .expect("recv");
    assert!(n >= 2, "runt reply");
    u16::from_be_bytes([buf[0], buf[1]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_queries_match_knot() {
    use RecordType::{A, SOA};
    let knot = Knot::start().await;
    let meridian = Meridian::start("", "").await;
    let mut failures = Vec::new();
    let mut notes = Vec::new();

    // QDCOUNT=2 (RFC 9619): FORMERR from both.
    let mut two = Message::from_vec(&e("static.example.test.", A).id(0x2001).build())
        .expect("own query parses");
    two.add_query(hickory_proto::op::Query::query(
        hickory_proto::rr::Name::from_ascii("ns1.example.test.").expect("name"),
        A,
    ));
    let two = two.to_vec().expect("encode");
    for via in [Via::Udp, Via::Tcp] {
        let m = support::parse(&via.exchange(meridian_addr(&meridian, via), &two).await);
        let h = &m.metadata;
        if h.response_code != ResponseCode::FormErr
            || h.id != 0x2001
            || h.message_type != MessageType::Response
        {
            failures.push(format!(
                "{via:?} QDCOUNT=2: Meridian answered {:?} id {:#06x} {:?}, want FORMERR",
                h.response_code, h.id, h.message_type
            ));
        }
        match via.try_exchange(knot.addr, &two).await {
            None => notes.push(format!(
                "{via:?} QDCOUNT=2: Knot sent no reply; Meridian {:?}",
                h.response_code
            )),
            Some(k) => {
                let k = support::parse(&k);
                if k.metadata.response_code != h.response_code {
                    notes.push(format!(
                        "{via:?} QDCOUNT=2: Knot {:?}, Meridian {:?}",
                        k.metadata.response_code, h.response_code
                    ));
                }
            }
        }
    }

    // Opcodes other than QUERY: STATUS, unassigned 3, NOTIFY, UPDATE. Meridian implements none.
    for opcode in [2u8, 3, 4, 5] {
        let packet = with_opcode(
            e("example.test.", SOA)
                .id(0x2100 + u16::from(opcode))
                .build(),
            opcode,
        );
        let k = support::parse(&Via::Udp.exchange(knot.addr, &packet).await);
        let m = support::parse(&meridian.udp_raw(&packet).await);
        let h = &m.metadata;
        if h.response_code != ResponseCode::NotImp
            || h.id != 0x2100 + u16::from(opcode)
            || h.message_type != MessageType::Response
            || h.op_code != OpCode::from_u8(opcode)
        {
            failures.push(format!(
                "opcode {opcode}: Meridian answered {:?} id {:#06x} {:?} opcode {:?}, want NOTIMP",
                h.response_code, h.id, h.message_type, h.op_code
            ));
        }
        if k.metadata.response_code != h.response_code {
            notes.push(format!(
                "opcode {opcode} ({:?}) example.test SOA: Knot {:?}, Meridian {:?}",
                OpCode::from_u8(opcode),
                k.metadata.response_code,
                h.response_code
            ));
        }
    }

    // A response (QR=1) gets no reply (RFC 1035 §4.1.1; replying invites reflection loops).
    let response = {
        let mut p = e("static.example.test.", A).id(0x3001).build();
        p[2] |= 0x80;
        p
    };
    let query = e("static.example.test.", A).id(0x3002).build();
    let first = first_reply_id(meridian.udp, &response, &query).await;
    if first != 0x3002 {
        failures.push(format!(
            "QR=1 packet: Meridian replied to it (first reply id {first:#06x}, want 0x3002)"
        ));
    }
    let first = first_reply_id(knot.addr, &response, &query).await;
    if first != 0x3002 {
        notes.push(format!("QR=1 packet: Knot replied to it (id {first:#06x})"));
    }

    for n in &notes {
        println!("note (not a failure): {n}");
    }
    for f in &failures {
        println!("FAILURE {f}");
    }
    meridian.stop().await;
    assert!(
        failures.is_empty(),
        "{} malformed-input failures (above)",
        failures.len()
    );
}
