//! dnstap: a real `fstrm_capture` (Debian `fstrm-bin`) receives the Frame Streams, and
//! `dnstap-ldns` (Debian `dnstap-ldns`) reads the file back; the queries and responses in it
//! are exactly those the test sent and received (names, types, IDs, UDP and TCP, addresses,
//! bytes). A reader that goes away costs records, never answers; the writer reconnects; a
//! reload turns dnstap on, changes what it logs and moves it to another socket.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;
use meridian::dnstap::encode::proto;
use prost::Message as _;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};

use crate::support::{
    Meridian, QueryBuilder, REPLY_TIMEOUT, ZONE, error_of, eventually, framed, read_frame, scrape,
};

/// A running `fstrm_capture` writing what it receives on `socket` to `file`.
struct Capture {
    child: Child,
    socket: PathBuf,
    file: PathBuf,
}

impl Capture {
    /// Starts the reader and waits until its socket is there.
    async fn start(socket: &Path, file: &Path) -> Capture {
        let child = Command::new("fstrm_capture")
            .args(["-t", "protobuf:dnstap.Dnstap", "-u"])
            .arg(socket)
            .arg("-w")
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("fstrm_capture (Debian package fstrm-bin) must be installed");
        let capture = Capture {
            child,
            socket: socket.to_path_buf(),
            file: file.to_path_buf(),
        };
        eventually("fstrm_capture listens", || async {
            if capture.socket.exists() {
                Ok(())
            } else {
                Err("no socket yet".to_string())
            }
        })
        .await;
        capture
    }

    /// Sends `signal` and waits for the reader to exit.
    async fn signal(&mut self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("signal fstrm_capture");
        let child = &mut self.child;
        eventually("fstrm_capture exits", || {
            let exited = child.try_wait().expect("wait");
            async move { exited.map(|_| ()).ok_or_else(|| "running".to_string()) }
        })
        .await;
    }

    /// Stops the reader (it closes its file) and returns what it wrote: `dnstap-ldns -y`'s
    /// reading and the messages decoded from the frames.
    async fn finish(mut self) -> (Vec<Seen>, Vec<proto::Message>) {
        self.signal(nix::sys::signal::Signal::SIGTERM).await;
        let out = Command::new("dnstap-ldns")
            .arg("-y")
            .arg("-r")
            .arg(&self.file)
            .output()
            .expect("dnstap-ldns (Debian package dnstap-ldns) must be installed");
        assert!(out.status.success(), "dnstap-ldns: {out:?}");
        let yaml = String::from_utf8(out.stdout).expect("UTF-8");
        let bytes = std::fs::read(&self.file).expect("capture file");
        (read_yaml(&yaml), decode_file(&bytes))
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as `dnstap-ldns -y` shows it: its type, transport, both ends, and the DNS
/// message's ID and question.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    kind: String,
    protocol: String,
    client: String,
    server: String,
    id: u16,
    question: String,
}

/// The messages of `dnstap-ldns -y` output, one YAML document each.
fn read_yaml(yaml: &str) -> Vec<Seen> {
    let id = regex::Regex::new(r"id: (\d+)").unwrap();
    yaml.split("\n---")
        .filter(|doc| doc.contains("message:"))
        .map(|doc| {
            let field = |key: &str| {
                doc.lines()
                    .find_map(|l| l.strip_prefix(&format!("  {key}: ")))
                    .unwrap_or_else(|| panic!("no {key} in {doc}"))
                    .trim_matches('"')
                    .to_string()
            };
            let question = doc
                .lines()
                .skip_while(|l| !l.contains(";; QUESTION SECTION:"))
                .nth(1)
                .unwrap_or_else(|| panic!("no question in {doc}"));
            Seen {
                kind: field("type"),
                protocol: field("socket_protocol"),
                client: format!("{}:{}", field("query_address"), field("query_port")),
                server: format!("{}:{}", field("response_address"), field("response_port")),
                id: id.captures(doc).expect("an id")[1].parse().unwrap(),
                question: question.trim().trim_start_matches(';').replace('\t', " "),
            }
        })
        .collect()
}

/// The dnstap messages in a Frame Streams file (control frames skipped).
fn decode_file(mut bytes: &[u8]) -> Vec<proto::Message> {
    let mut out = Vec::new();
    let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    while bytes.len() >= 4 {
        let len = word(bytes);
        if len == 0 {
            let control = word(&bytes[4..]);
            bytes = &bytes[8 + control..];
            continue;
        }
        let tap = proto::Dnstap::decode(&bytes[4..4 + len]).expect("a dnstap message");
        out.push(tap.message.expect("a message"));
        bytes = &bytes[4 + len..];
    }
    out
}

/// One exchange the test made: what it sent and got back, from where to where.
struct Exchange {
    protocol: &'static str,
    client: SocketAddr,
    server: SocketAddr,
    id: u16,
    question: String,
    query: Vec<u8>,
    reply: Vec<u8>,
}

impl Exchange {
    fn new(
        protocol: &'static str,
        (client, server): (SocketAddr, SocketAddr),
        (id, name, qtype): (u16, &str, RecordType),
        query: Vec<u8>,
        reply: Vec<u8>,
    ) -> Exchange {
        Exchange {
            protocol,
            client,
            server,
            id,
            question: format!("{name} IN {qtype}"),
            query,
            reply,
        }
    }

    /// The two messages dnstap should hold about it, as `dnstap-ldns` shows them.
    fn seen(&self, kinds: &[&str]) -> Vec<Seen> {
        kinds
            .iter()
            .map(|kind| Seen {
                kind: kind.to_string(),
                protocol: self.protocol.to_string(),
                client: self.client.to_string(),
                server: self.server.to_string(),
                id: self.id,
                question: self.question.clone(),
            })
            .collect()
    }
}

/// Asks `queries` (ID, name, type) over one UDP socket, one at a time.
async fn udp(server: SocketAddr, queries: &[(u16, &str, RecordType)]) -> Vec<Exchange> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut out = Vec::new();
    for &q @ (id, name, qtype) in queries {
        let query = QueryBuilder::new(name, qtype).id(id).edns(1232).build();
        sock.send_to(&query, server).await.unwrap();
        let mut buf = vec![0; 65_535];
        let (n, _) = tokio::time::timeout(REPLY_TIMEOUT, sock.recv_from(&mut buf))
            .await
            .expect("every query is answered")
            .unwrap();
        buf.truncate(n);
        let ends = (sock.local_addr().unwrap(), server);
        out.push(Exchange::new("UDP", ends, q, query, buf));
    }
    out
}

/// Asks `queries` over one TCP connection, pipelined in one write.
async fn tcp(server: SocketAddr, queries: &[(u16, &str, RecordType)]) -> Vec<Exchange> {
    let mut s = TcpStream::connect(server).await.unwrap();
    let built: Vec<Vec<u8>> = queries
        .iter()
        .map(|&(id, name, qtype)| QueryBuilder::new(name, qtype).id(id).build())
        .collect();
    s.write_all(&built.iter().flat_map(|q| framed(q)).collect::<Vec<u8>>())
        .await
        .unwrap();
    let mut out = Vec::new();
    for (&q, query) in queries.iter().zip(built) {
        let reply = read_frame(&mut s).await.expect("a reply");
        let ends = (s.local_addr().unwrap(), server);
        out.push(Exchange::new("TCP", ends, q, query, reply));
    }
    out
}

/// The `[http]` and `[dnstap]` sections for a reader on `socket`, with `extra` keys.
fn tap_config(socket: &Path, extra: &str) -> String {
    format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\n[dnstap]\nsocket = {:?}\n{extra}\n",
        socket.display().to_string()
    )
}

/// Values of the dnstap metrics: sent, dropped (all reasons), and whether the reader on
/// `socket` is connected (no sample before the writer has started on it: 0).
async fn tap_metrics(m: &Meridian, socket: &Path) -> (f64, f64, f64) {
    let s = scrape(m).await;
    let dropped = s.value("meridian_dnstap_dropped_total", &[("reason", "queue_full")])
        + s.value("meridian_dnstap_dropped_total", &[("reason", "no_reader")]);
    let socket = socket.display().to_string();
    let connected = s
        .scrape
        .samples
        .iter()
        .find(|x| {
            x.metric == "meridian_dnstap_connected" && x.labels.get("socket") == Some(&socket)
        })
        .map_or(0.0, |x| match x.value {
            prometheus_parse::Value::Gauge(v) => v,
            _ => panic!("{x:?}"),
        });
    (
        s.value("meridian_dnstap_sent_total", &[]),
        dropped,
        connected,
    )
}

/// Waits until the reader on `socket` has accepted the stream.
async fn until_connected(m: &Meridian, socket: &Path) {
    eventually("the dnstap reader is connected", || async {
        let (_, _, connected) = tap_metrics(m, socket).await;
        if connected == 1.0 {
            Ok(())
        } else {
            Err(format!("connected = {connected}"))
        }
    })
    .await;
}

/// Waits until `sent` messages have been written.
async fn until_sent(m: &Meridian, socket: &Path, sent: f64) {
    eventually(&format!("{sent} dnstap messages sent"), || async {
        let (got, _, _) = tap_metrics(m, socket).await;
        if got == sent {
            Ok(())
        } else {
            Err(format!("sent = {got}"))
        }
    })
    .await;
}

/// Every dnstap message `exchanges` should produce (`kinds` of each), sorted.
fn expected(exchanges: &[Exchange], kinds: &[&str]) -> Vec<Seen> {
    let mut want: Vec<Seen> = exchanges.iter().flat_map(|e| e.seen(kinds)).collect();
    want.sort();
    want
}

fn sorted(mut seen: Vec<Seen>) -> Vec<Seen> {
    seen.sort();
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fstrm_capture_receives_exactly_the_queries_and_responses_sent() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tap.sock");
    let capture = Capture::start(&socket, &dir.path().join("tap.fstrm")).await;
    let m = Meridian::start("", &tap_config(&socket, "identity = \"tap-test\"")).await;
    until_connected(&m, &socket).await;

    // Answered by the fast path (exact name, NXDOMAIN) and the general path (a CNAME chain,
    // a wildcard), over UDP and TCP.
    let mut exchanges = udp(
        m.udp,
        &[
            (0x1001, "static.example.test.", RecordType::A),
            (0x1002, "nothing.example.test.", RecordType::A),
            (0x1003, "alias2.example.test.", RecordType::A),
            (0x1004, "x.wild.example.test.", RecordType::TXT),
        ],
    )
    .await;
    exchanges.extend(
        tcp(
            m.tcp,
            &[
                (0x2001, "static.example.test.", RecordType::AAAA),
                (0x2002, "alias.example.test.", RecordType::A),
            ],
        )
        .await,
    );
    until_sent(&m, &socket, 2.0 * exchanges.len() as f64).await;
    // Shutting down closes the stream (STOP, then the reader's FINISH): the reader has it all.
    m.stop().await;
    let (seen, messages) = capture.finish().await;

    assert_eq!(
        sorted(seen),
        expected(&exchanges, &["AUTH_QUERY", "AUTH_RESPONSE"])
    );
    // Byte for byte what went over the wire, from both ends.
    let mut got: Vec<(i32, u32, Vec<u8>)> = messages
        .iter()
        .map(|msg| {
            let bytes = msg.query_message.clone().or(msg.response_message.clone());
            (msg.r#type, msg.query_port.unwrap(), bytes.unwrap().to_vec())
        })
        .collect();
    let mut want: Vec<(i32, u32, Vec<u8>)> = exchanges
        .iter()
        .flat_map(|e| {
            let port = u32::from(e.client.port());
            [
                (
                    proto::message::Type::AuthQuery as i32,
                    port,
                    e.query.clone(),
                ),
                (
                    proto::message::Type::AuthResponse as i32,
                    port,
                    e.reply.clone(),
                ),
            ]
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    for msg in &messages {
        assert!(msg.query_time_sec.unwrap() > 1_700_000_000, "{msg:?}");
        if msg.response_message.is_some() {
            let q = Duration::new(msg.query_time_sec.unwrap(), msg.query_time_nsec.unwrap());
            let r = Duration::new(
                msg.response_time_sec.unwrap(),
                msg.response_time_nsec.unwrap(),
            );
            assert!(r >= q, "{msg:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_reader_loses_records_but_no_query_and_is_found_again() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tap.sock");
    let mut first = Capture::start(&socket, &dir.path().join("first.fstrm")).await;
    let m = Meridian::start("", &tap_config(&socket, "")).await;
    until_connected(&m, &socket).await;
    udp(m.udp, &[(1, "static.example.test.", RecordType::A)]).await;
    until_sent(&m, &socket, 2.0).await;

    // The reader dies: every query is still answered; the messages are dropped and counted.
    first.signal(nix::sys::signal::Signal::SIGKILL).await;
    let lost: Vec<(u16, &str, RecordType)> = (100..120)
        .map(|id| (id, "static.example.test.", RecordType::A))
        .collect();
    let answered = udp(m.udp, &lost).await;
    assert_eq!(answered.len(), lost.len());
    answered
        .iter()
        .chain(&tcp(m.tcp, &lost[..5]).await)
        .for_each(|e| {
            let reply = crate::support::parse(&e.reply);
            assert_eq!(reply.answers.len(), 1, "{reply:?}");
        });
    eventually("dropped messages are counted", || async {
        let (sent, dropped, connected) = tap_metrics(&m, &socket).await;
        if dropped > 0.0 && connected == 0.0 && sent == 2.0 {
            Ok(())
        } else {
            Err(format!(
                "sent {sent}, dropped {dropped}, connected {connected}"
            ))
        }
    })
    .await;

    // A new reader on the same socket: the writer reconnects by itself.
    let _ = std::fs::remove_file(&socket);
    let second = Capture::start(&socket, &dir.path().join("second.fstrm")).await;
    until_connected(&m, &socket).await;
    let (sent_before, _, _) = tap_metrics(&m, &socket).await;
    let found = udp(
        m.udp,
        &[
            (200, "static.example.test.", RecordType::A),
            (201, "alias.example.test.", RecordType::A),
        ],
    )
    .await;
    until_sent(&m, &socket, sent_before + 4.0).await;
    m.stop().await;
    let (seen, _) = second.finish().await;
    assert_eq!(
        sorted(seen),
        expected(&found, &["AUTH_QUERY", "AUTH_RESPONSE"])
    );
}

/// A reader that completes the handshake on every connection and then never reads; it stops
/// at the first connection that does not shake hands.
fn stalled_reader(socket: &Path) -> std::thread::JoinHandle<usize> {
    use meridian::dnstap::frame::{self, CONTENT_TYPE, Control};
    let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Ok((mut conn, _)) = listener.accept() {
            match frame::read_control(&mut conn) {
                Ok(ready) if ready.kind == Control::Ready && ready.accepts(CONTENT_TYPE) => {}
                _ => break,
            }
            let mut accept = Vec::new();
            frame::control(&mut accept, Control::Accept, Some(CONTENT_TYPE));
            std::io::Write::write_all(&mut conn, &accept).unwrap();
            let start = frame::read_control(&mut conn).unwrap();
            assert_eq!(start.kind, Control::Start);
            held.push(conn);
        }
        held.len()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_costs_records_not_answers() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("stalled.sock");
    let reader = stalled_reader(&socket);
    let m = Meridian::start("", &tap_config(&socket, "")).await;
    until_connected(&m, &socket).await;
    // Batches of queries until the queue has overflowed: far more than the socket buffer and
    // the queue hold. Every one is answered at once all the same.
    let mut full = 0.0;
    for batch in 0..40u16 {
        let packets: Vec<Vec<u8>> = (0..1000u16)
            .map(|i| {
                QueryBuilder::new("static.example.test.", RecordType::A)
                    .id(batch.wrapping_mul(1000).wrapping_add(i))
                    .build()
            })
            .collect();
        let replies = crate::support::udp_bulk(m.udp, &packets, 64).await;
        assert!(replies.iter().all(|r| r.answers.len() == 1));
        full = scrape(&m)
            .await
            .value("meridian_dnstap_dropped_total", &[("reason", "queue_full")]);
        if full > 0.0 {
            break;
        }
    }
    assert!(full > 0.0, "the queue never overflowed");
    m.stop().await;
    // A connection that does not shake hands ends the reader.
    drop(std::os::unix::net::UnixStream::connect(&socket).unwrap());
    assert!(reader.join().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_turns_dnstap_on_changes_what_it_logs_and_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
    let first = Capture::start(&a, &dir.path().join("a.fstrm")).await;
    let second = Capture::start(&b, &dir.path().join("b.fstrm")).await;
    let http = "[http]\nlisten = \"127.0.0.1:0\"\n";
    let m = Meridian::start_at(dir.path(), "", http).await;
    let reload = |config: String| {
        let m = &m;
        async move {
            std::fs::write(&m.config_path, crate::support::config_text("", &config)).unwrap();
            meridian::reload::reload(&m.state, &m.control, &m.telemetry)
                .await
                .expect("reloaded");
        }
    };
    udp(m.udp, &[(1, "static.example.test.", RecordType::A)]).await;

    // On, responses only, to the first reader.
    reload(tap_config(&a, "log_queries = false")).await;
    until_connected(&m, &a).await;
    let to_a = udp(m.udp, &[(2, "static.example.test.", RecordType::A)]).await;
    until_sent(&m, &a, 1.0).await;

    // Both, to the second reader; the first one's stream is closed.
    reload(tap_config(&b, "")).await;
    until_connected(&m, &b).await;
    let to_b = tcp(m.tcp, &[(3, "alias.example.test.", RecordType::A)]).await;
    until_sent(&m, &b, 3.0).await;
    m.stop().await;

    let (seen_a, _) = first.finish().await;
    assert_eq!(sorted(seen_a), expected(&to_a, &["AUTH_RESPONSE"]));
    let (seen_b, _) = second.finish().await;
    assert_eq!(
        sorted(seen_b),
        expected(&to_b, &["AUTH_QUERY", "AUTH_RESPONSE"])
    );
}

/// `[dnstap]` errors name the file, the line and the key.
#[test]
fn bad_dnstap_settings_are_refused_with_their_line() {
    let config = |dnstap: &str| {
        format!("[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n\n[dnstap]\n{dnstap}\n")
    };
    let long = format!("socket = \"/{}\"", "s".repeat(120));
    let label = format!("socket = \"t.sock\"\nversion = \"{}\"", "v".repeat(256));
    let cases: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        ("", ("5", "missing field `socket`")),
        ("socket = \"\"", ("6", "dnstap.socket must not be empty")),
        (
            "socket = 53",
            ("6", "invalid type: integer `53`, expected a string"),
        ),
        (long.as_str(), ("6", "a Unix socket path holds at most 107")),
        (
            "socket = \"t.sock\"\nlog_queries = \"yes\"",
            ("7", "invalid type: string \"yes\", expected a boolean"),
        ),
        (
            "socket = \"t.sock\"\nlog_responses = 1",
            ("7", "invalid type: integer `1`, expected a boolean"),
        ),
        (
            "socket = \"t.sock\"\nlog_queries = false\nlog_responses = false",
            ("5", "dnstap: log_queries and log_responses are both false"),
        ),
        (
            "socket = \"t.sock\"\nidentity = 7",
            ("7", "invalid type: integer `7`, expected a string"),
        ),
        (
            label.as_str(),
            ("7", "dnstap.version must be at most 255 bytes long"),
        ),
        (
            "socket = \"t.sock\"\nidentity = \"x\"\nsocket_path = \"y\"",
            ("8", "unknown field `socket_path`"),
        ),
    ]);
    for (dnstap, (line, reason)) in cases {
        let e = error_of(&config(dnstap), ZONE);
        let prefix = format!("DIR/meridian.toml:{line}: ");
        assert!(
            e.starts_with(&prefix) && e.contains(reason),
            "{dnstap:?}: want {prefix}…{reason}, got {e}"
        );
    }
}

#[test]
fn dnstap_defaults_are_both_directions_the_host_name_and_the_version() {
    let text =
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n\n[dnstap]\nsocket = \"tap.sock\"\n";
    let (dir, path) = crate::support::config_dir(text, ZONE);
    let model = meridian::Model::load(&path).unwrap();
    let tap = model.dnstap.expect("[dnstap] is on");
    assert_eq!(tap.socket, dir.path().join("tap.sock"));
    assert!(tap.log_queries && tap.log_responses);
    let host = nix::unistd::gethostname().unwrap();
    assert_eq!(tap.identity, host.to_string_lossy());
    assert_eq!(
        tap.version,
        format!("meridian {}", env!("CARGO_PKG_VERSION"))
    );
}
