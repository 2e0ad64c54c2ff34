//! Test fixtures: a real Meridian on `127.0.0.1:0` in this process, a small DNS client that
//! speaks real UDP and TCP to it, and the helpers the topic modules share (config text,
//! polling what a user can observe, the HTTP API, config directories), so each is written
//! once.

#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use hickory_proto::rr::{Name, RData, RecordType};
use meridian::director::stats::DirectorStats;
use meridian::prober::HealthControl;
use meridian::prober::probe::{NetProbe, plain_http_client};
use meridian::{Listeners, Model, SharedState, Telemetry};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;

/// How long a test waits for a reply before failing (a bound, not a synchronisation point).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// The fixture zone directory shared by the DNS tests and the Knot differential test.
pub fn fixture_zones() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zones")
}

/// A Meridian serving in this process until dropped.
pub struct Meridian {
    /// Where it answers UDP.
    pub udp: SocketAddr,
    /// Where it answers TCP.
    pub tcp: SocketAddr,
    /// Where its HTTP API listens, when the config has `[http]`.
    pub http: Option<SocketAddr>,
    /// Where its directors listen, in config order.
    pub directors: Vec<SocketAddr>,
    /// The directors' live counters.
    pub director_stats: DirectorStats,
    /// Its shared state (to publish new snapshots in tests).
    pub state: Arc<SharedState>,
    /// Admin actions and reloads, as the HTTP API and SIGHUP use them.
    pub control: HealthControl,
    /// The config file it was started from.
    pub config_path: PathBuf,
    /// Its metrics and transitions ring.
    pub telemetry: Telemetry,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl Meridian {
    /// Starts Meridian with `config` (TOML, without a `[dns]` section: one listening on
    /// `127.0.0.1:0` and serving `zones` is prepended) and the given extra `[dns]` keys.
    pub async fn start(extra_dns: &str, config: &str) -> Meridian {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = {:?}\n{extra_dns}\n{config}",
            fixture_zones().display().to_string()
        );
        let path = dir.path().join("meridian.toml");
        std::fs::write(&path, &text).expect("write config");
        let model = Model::load(&path).unwrap_or_else(|e| panic!("config invalid: {e}"));
        Meridian::serve(model, dir).await
    }

    /// Starts Meridian on an already-loaded model.
    pub async fn serve(model: Model, dir: tempfile::TempDir) -> Meridian {
        let config_path = model.config_path.clone();
        let http = model.http.as_ref().map(|_| "127.0.0.1:0".parse().unwrap());
        let listeners = Listeners::bind(&["127.0.0.1:0".parse().unwrap()], model.dns.workers, http)
            .and_then(|l| l.with_directors(&model.director_listen()))
            .expect("bind");
        let udp = listeners.udp_addrs()[0];
        let tcp = listeners.tcp_addrs()[0];
        let http = listeners.http_addr();
        let directors = listeners.director_addrs();
        let state = Arc::new({
            let table = meridian::health::overrides::restored(&model).expect("state file");
            SharedState::with_health(model, Arc::new(table))
        });
        let shutdown = CancellationToken::new();
        let probe = Arc::new(NetProbe::new().expect("probe client"));
        let (control, inbox) = HealthControl::new();
        let telemetry = Telemetry::new(&state, meridian::director::stats::DirectorStats::new());
        let director_stats = telemetry.directors.clone();
        let task = tokio::spawn(meridian::run(
            state.clone(),
            listeners,
            probe,
            (control.clone(), inbox),
            telemetry.clone(),
            shutdown.clone(),
        ));
        Meridian {
            udp,
            tcp,
            http,
            directors,
            director_stats,
            state,
            control,
            config_path,
            telemetry,
            shutdown,
            task: Some(task),
            _dir: dir,
        }
    }

    /// Starts shutting down without waiting: listeners stop accepting, open connections may
    /// finish within the grace period.
    pub fn begin_stop(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has stopped (after [`Meridian::begin_stop`]).
    pub async fn stopped(&mut self) {
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }

    /// Stops it and waits until every task has ended.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }

    /// Sends `packet` over UDP and returns the reply.
    pub async fn udp_raw(&self, packet: &[u8]) -> Vec<u8> {
        udp_exchange(self.udp, packet).await
    }

    /// Sends one framed message over a fresh TCP connection and returns the reply.
    pub async fn tcp_raw(&self, packet: &[u8]) -> Vec<u8> {
        let mut s = TcpStream::connect(self.tcp).await.expect("connect");
        write_frame(&mut s, packet).await;
        read_frame(&mut s).await.expect("tcp reply")
    }

    /// Asks `name`/`qtype` over UDP with EDNS (payload 1232) and parses the reply.
    pub async fn query(&self, name: &str, qtype: RecordType) -> Message {
        parse(
            &self
                .udp_raw(&QueryBuilder::new(name, qtype).edns(1232).build())
                .await,
        )
    }

    /// Asks `name`/`qtype` over TCP with EDNS and parses the reply.
    pub async fn query_tcp(&self, name: &str, qtype: RecordType) -> Message {
        parse(
            &self
                .tcp_raw(&QueryBuilder::new(name, qtype).edns(1232).build())
                .await,
        )
    }
}

impl Drop for Meridian {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One UDP exchange with a timeout.
pub async fn udp_exchange(server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    udp_exchange_from(IpAddr::from([127, 0, 0, 1]), server, packet).await
}

/// Like [`udp_exchange`], but sent from the loopback address `from` (any 127.0.0.0/8 address
/// works on Linux), so the server sees that resolver address.
pub async fn udp_exchange_from(from: IpAddr, server: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind(SocketAddr::new(from, 0))
        .await
        .expect("bind client");
    sock.send_to(packet, server).await.expect("send");
    let mut buf = vec![0u8; 65_535];
    let (n, _) = tokio::time::timeout(REPLY_TIMEOUT, sock.recv_from(&mut buf))
        .await
        .expect("no UDP reply in time")
        .expect("recv");
    buf.truncate(n);
    buf
}

/// Sends every packet over one UDP socket, at most `window` outstanding, and returns the
/// parsed replies in packet order (matched by message ID, so each packet needs its own ID).
pub async fn udp_bulk(server: SocketAddr, packets: &[Vec<u8>], window: usize) -> Vec<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    let mut replies: Vec<Option<Message>> = vec![None; packets.len()];
    let index: std::collections::HashMap<u16, usize> = packets
        .iter()
        .enumerate()
        .map(|(i, p)| (u16::from_be_bytes([p[0], p[1]]), i))
        .collect();
    assert_eq!(index.len(), packets.len(), "every packet needs its own ID");
    let mut buf = vec![0u8; 65_535];
    for chunk in packets.chunks(window) {
        for p in chunk {
            sock.send_to(p, server).await.expect("send");
        }
        for _ in 0..chunk.len() {
            let (n, _) = tokio::time::timeout(REPLY_TIMEOUT, sock.recv_from(&mut buf))
                .await
                .expect("no UDP reply in time")
                .expect("recv");
            let msg = parse(&buf[..n]);
            let i = index[&msg.metadata.id];
            replies[i] = Some(msg);
        }
    }
    replies
        .into_iter()
        .map(|r| r.expect("one reply per query"))
        .collect()
}

/// A DNS message with its two-byte length prefix, as it goes over TCP (RFC 1035 §4.2.2).
pub fn framed(packet: &[u8]) -> Vec<u8> {
    let mut out = (packet.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(packet);
    out
}

/// Writes a length-prefixed DNS message (RFC 1035 §4.2.2).
pub async fn write_frame(s: &mut TcpStream, packet: &[u8]) {
    s.write_all(&framed(packet)).await.expect("tcp write");
}

/// Reads one length-prefixed message; `None` when the server closed the connection.
pub async fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let fut = async {
        let len = s.read_u16().await.ok()? as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(REPLY_TIMEOUT, fut)
        .await
        .expect("no TCP reply or close in time")
}

/// The A and AAAA addresses in a reply's answer section, in order.
pub fn answer_addrs(msg: &Message) -> Vec<IpAddr> {
    msg.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect()
}

/// Parses a reply, failing the test on garbage.
pub fn parse(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).unwrap_or_else(|e| panic!("reply does not parse: {e}: {bytes:02x?}"))
}

/// Builds query packets.
#[derive(Clone)]
pub struct QueryBuilder {
    msg: Message,
}

impl QueryBuilder {
    /// A QUERY for `name`/`qtype`, RD clear, ID 0x1234.
    pub fn new(name: &str, qtype: RecordType) -> QueryBuilder {
        let mut msg = Message::new(0x1234, MessageType::Query, OpCode::Query);
        msg.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
        QueryBuilder { msg }
    }

    /// Sets the message ID.
    pub fn id(mut self, id: u16) -> Self {
        self.msg.metadata.id = id;
        self
    }

    /// Sets RD.
    pub fn rd(mut self) -> Self {
        self.msg.metadata.recursion_desired = true;
        self
    }

    /// Adds an OPT record advertising `payload` bytes.
    pub fn edns(mut self, payload: u16) -> Self {
        let mut e = Edns::new();
        e.set_max_payload(payload);
        self.msg.set_edns(e);
        self
    }

    /// Sets the EDNS version (needs [`QueryBuilder::edns`] first).
    pub fn edns_version(mut self, v: u8) -> Self {
        self.msg.edns.as_mut().expect("edns first").set_version(v);
        self
    }

    /// Sets DO (needs [`QueryBuilder::edns`] first).
    pub fn dnssec_ok(mut self) -> Self {
        self.msg
            .edns
            .as_mut()
            .expect("edns first")
            .set_dnssec_ok(true);
        self
    }

    /// Adds an EDNS Client Subnet option (RFC 7871 §6) for `addr` with `source_prefix` bits
    /// (adds EDNS if absent). The address is sent as given, so host bits beyond the prefix can
    /// be set on purpose.
    pub fn ecs(mut self, addr: &str, source_prefix: u8) -> Self {
        if self.msg.edns.is_none() {
            self = self.edns(1232);
        }
        let subnet = ClientSubnet::new(addr.parse().expect("ecs address"), source_prefix, 0);
        self.msg
            .edns
            .as_mut()
            .expect("edns")
            .options_mut()
            .insert(EdnsOption::Subnet(subnet));
        self
    }

    /// Adds a COOKIE option (RFC 7873 §4) with `data` as sent, any length (adds EDNS if
    /// absent).
    pub fn cookie(mut self, data: &[u8]) -> Self {
        if self.msg.edns.is_none() {
            self = self.edns(1232);
        }
        self.msg
            .edns
            .as_mut()
            .expect("edns")
            .options_mut()
            .insert(EdnsOption::Unknown(10, data.to_vec()));
        self
    }

    /// Sets the opcode.
    pub fn opcode(mut self, op: OpCode) -> Self {
        self.msg.metadata.op_code = op;
        self
    }

    /// The wire bytes.
    pub fn build(&self) -> Vec<u8> {
        self.msg.to_vec().expect("encode query")
    }
}

/// The config text [`Meridian::start`] writes: a `[dns]` section on `127.0.0.1:0` serving the
/// fixture zones, the extra `[dns]` keys, then `config`.
pub fn config_text(extra_dns: &str, config: &str) -> String {
    format!(
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = {:?}\n{extra_dns}\n{config}",
        fixture_zones().display().to_string()
    )
}

impl Meridian {
    /// Like [`Meridian::start`], but with `meridian.toml` written into `dir`, which the caller
    /// owns: files the config names (an admin token) can be put there first, and what Meridian
    /// writes there (its state file) outlives this instance, so a restart on the same `dir`
    /// sees it.
    pub async fn start_at(dir: &Path, extra_dns: &str, config: &str) -> Meridian {
        let path = dir.join("meridian.toml");
        std::fs::write(&path, config_text(extra_dns, config)).expect("write config");
        let model = Model::load(&path).unwrap_or_else(|e| panic!("config invalid: {e}"));
        // `serve` keeps a directory alive for the instance's lifetime; this one stays empty.
        Meridian::serve(model, tempfile::tempdir().expect("tempdir")).await
    }
}

/// Runs the compiled `meridian serve` on `config`, logging at info to a piped stderr.
pub fn spawn_serve(config: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn meridian serve")
}

/// Reads log `lines` until a `listening for KIND on ADDR` line has been seen for every kind
/// (`dns-udp`, `dns-tcp`, `http`, `director`), and returns the addresses in `kinds` order.
/// Panics if the log ends first.
pub fn listening_addrs(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    kinds: &[&str],
) -> Vec<SocketAddr> {
    let mut found: Vec<Option<SocketAddr>> = vec![None; kinds.len()];
    for line in lines {
        let line = line.expect("log line");
        for (kind, slot) in kinds.iter().zip(&mut found) {
            let tag = format!("listening for {kind} on ");
            if let Some(rest) = line.split(tag.as_str()).nth(1) {
                *slot = slot.or(rest.trim().parse().ok());
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    kinds
        .iter()
        .zip(found)
        .map(|(kind, a)| a.unwrap_or_else(|| panic!("no 'listening for {kind} on ADDR' line")))
        .collect()
}

// Scenario helpers shared by the topic modules: config text, polling what a user can observe,
// and the HTTP API.

/// The longest a test waits for a health change it caused (a bound, not a synchronisation
/// point: every wait below returns as soon as the change is observed).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Time between two looks at a changing observable.
pub const POLL: Duration = Duration::from_millis(20);

/// Monitor timings that make changes show within a second or two.
pub const FAST: &str = r#"interval = "100ms"
fast_interval = "50ms"
timeout = "500ms"
rise = 2
fall = 3"#;

/// `fall` in [`FAST`].
pub const FALL: u64 = 3;

pub const WWW: &str = "www.example.test.";
pub const A: &str = "192.0.2.10";
pub const B: &str = "192.0.2.11";

pub const TOKEN: &str = "s3cret-admin-token";

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("IP address")
}

pub fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

/// A member handed out in answers as `address` (a documentation address nobody contacts) and
/// probed at `backend`, on loopback.
pub fn member(address: &str, backend: &Backend) -> String {
    format!(
        r#"{{ address = "{address}", check_address = "127.0.0.1", port = {} }}"#,
        backend.port()
    )
}

/// `[monitors.NAME]` of `kind` with the [`FAST`] timings and any `extra` keys.
pub fn monitor(name: &str, kind: &str, extra: &str) -> String {
    format!("[monitors.{name}]\ntype = \"{kind}\"\n{FAST}\n{extra}\n")
}

/// `[pools.NAME]` probed by monitor `monitor`.
pub fn pool(name: &str, monitor: &str, members: &[String]) -> String {
    format!(
        "[pools.{name}]\nmonitor = \"{monitor}\"\nmembers = [{}]\n",
        members.join(", ")
    )
}

/// `[services."NAME"]` answering from `pools`, with any `extra` keys.
pub fn service(name: &str, pools: &[&str], extra: &str) -> String {
    let pools: Vec<String> = pools.iter().map(|p| format!("{p:?}")).collect();
    format!(
        "[services.\"{name}\"]\npools = [{}]\n{extra}\n",
        pools.join(", ")
    )
}

/// The usual scenario: `www.example.test.` answers from pool `web`, whose members are probed
/// over HTTP with the [`FAST`] timings.
pub fn www(members: &[String]) -> String {
    [
        monitor("web", "http", ""),
        pool("web", "web", members),
        service(WWW, &["web"], ""),
    ]
    .concat()
}

/// An `[http]` section with the admin API on a free loopback port, the token read from
/// `admin.token` next to the config.
pub const HTTP_WITH_TOKEN: &str =
    "[http]\nlisten = \"127.0.0.1:0\"\nadmin_token_file = \"admin.token\"\n";

/// `[http]` on a free port without an admin token (read-only API).
pub const HTTP_OPEN: &str = "[http]\nlisten = \"127.0.0.1:0\"\n";

pub fn write_token(dir: &Path) {
    std::fs::write(dir.join("admin.token"), format!("{TOKEN}\n")).expect("write token");
}

/// The A and AAAA addresses of an answer, sorted.
pub fn addresses(msg: &Message) -> Vec<IpAddr> {
    let mut out = answer_addrs(msg);
    out.sort();
    out
}

/// The addresses Meridian hands out for `name` now.
pub async fn answer(m: &Meridian, name: &str) -> Vec<IpAddr> {
    let r = m.query(name, RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{r:?}");
    addresses(&r)
}

/// Looks at something until `check` says it is as expected (`Ok`), for at most [`PATIENCE`];
/// fails with `what` and the last thing seen (`Err`) otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("{what}: not after {PATIENCE:?}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// Waits until `count` (requests a backend served, lines an agent handed out) reaches
/// `target`.
pub async fn until_count(what: &str, target: u64, count: impl Fn() -> u64) {
    eventually(what, || async {
        let n = count();
        if n >= target {
            Ok(())
        } else {
            Err(n.to_string())
        }
    })
    .await
}

/// Polls `name` until it answers exactly `want`.
pub async fn until_answer(m: &Meridian, name: &str, want: &[&str]) {
    let want = ips(want);
    eventually(&format!("{name} answers {want:?}"), || async {
        let got = answer(m, name).await;
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
}

/// POSTs to Meridian's API with the given `Authorization` header value, as `meridian admin`
/// does; returns the status and the JSON body (`null` when there is none).
pub async fn post(m: &Meridian, path: &str, authorization: Option<&str>) -> (u16, Value) {
    let client = plain_http_client().expect("HTTP client");
    let url = format!("http://{}{path}", m.http.expect("[http] is configured"));
    let mut request = client.post(&url);
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    let response = request.send().await.expect("API reachable");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GETs `path` from Meridian's API; returns the status and the body.
pub async fn get(m: &Meridian, path: &str) -> (u16, String) {
    let client = plain_http_client().expect("HTTP client");
    let url = format!("http://{}{path}", m.http.expect("[http] is configured"));
    let response = client.get(&url).send().await.expect("API reachable");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// An admin action on one member with the right token.
pub async fn admin(m: &Meridian, action: &str, pool: &str, member: &str) -> (u16, Value) {
    let path = format!("/api/v1/pools/{pool}/members/{member}/{action}");
    post(m, &path, Some(&format!("Bearer {TOKEN}"))).await
}

/// A scrape of `/metrics`: the text and what a Prometheus text-format parser makes of it.
pub struct Scraped {
    /// The parsed samples.
    pub scrape: prometheus_parse::Scrape,
    /// The exposition text as served.
    pub text: String,
}

impl Scraped {
    /// The value of the one sample of `name` with (at least) `labels`; fails the test when
    /// there is none or more than one.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<&prometheus_parse::Sample> = self
            .scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}\n{}", self.text);
        match &found[0].value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// GETs `/metrics` and parses it.
pub async fn scrape(m: &Meridian) -> Scraped {
    let (status, text) = get(m, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).expect("parses");
    Scraped { scrape, text }
}

// A config directory written by hand, for tests that load a `Model` without serving it.

/// A zone file for `example.test.` with one static name.
pub const ZONE: &str = "$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 60\n@ NS ns1\nns1 A 192.0.2.1\nstatic A 192.0.2.2\n";

/// A complete valid config for [`config_dir`]: one monitored pool behind one service.
pub const VALID: &str = r#"[dns]
listen = ["127.0.0.1:0"]
zones = "zones"

[monitors.web]
type = "http"

[pools.eu]
monitor = "web"
members = [
  { address = "192.0.2.10" },
]

[services."www.example.test."]
pools = ["eu"]
"#;

/// A temp dir holding `meridian.toml` (`config`) and `zones/example.test.zone` (`zone`), and
/// the config's path. The dir is removed when the returned guard drops.
pub fn config_dir(config: &str, zone: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("zones")).unwrap();
    std::fs::write(dir.path().join("zones/example.test.zone"), zone).unwrap();
    let path = dir.path().join("meridian.toml");
    std::fs::write(&path, config).unwrap();
    (dir, path)
}

/// Writes `config` and a zone file, loads them, and returns the error with the temp dir
/// replaced by `DIR`.
pub fn error_of(config: &str, zone: &str) -> String {
    let (dir, path) = config_dir(config, zone);
    match Model::load(&path) {
        Ok(_) => panic!("config was accepted:\n{config}"),
        Err(e) => e
            .to_string()
            .replace(&dir.path().display().to_string(), "DIR"),
    }
}

/// Free loopback ports for child processes (etcd, unbound, knotd, redis-server), free for both
/// TCP and UDP, chosen below Linux's ephemeral range (32768 and up): a port bound to 0 and
/// released could be handed out again at once as the source port of one of the many
/// connections other tests open, and the child would then fail to listen. Ports here are only
/// taken by someone binding them explicitly. Each is held while the others are chosen (so they
/// are distinct), then released.
pub fn child_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    for _ in 0..10_000 {
        if held.len() == n {
            break;
        }
        let port = 21_000 + (rand::random::<u16>() % 11_000);
        if let (Ok(t), Ok(u)) = (
            std::net::TcpListener::bind(("127.0.0.1", port)),
            std::net::UdpSocket::bind(("127.0.0.1", port)),
        ) {
            held.push((port, t, u));
        }
    }
    assert_eq!(held.len(), n, "no {n} free ports in 21000-31999");
    held.into_iter().map(|(port, _, _)| port).collect()
}

/// One port of [`child_ports`].
pub fn child_port() -> u16 {
    child_ports(1)[0]
}
