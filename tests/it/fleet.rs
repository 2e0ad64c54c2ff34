//! Fleet mode (docs/fleet.md) as operators see it: three Meridian instances (ns1, ns2, ns3) in
//! this process sharing one real 3-member etcd cluster on loopback, probing real backends from
//! their own loopback source address (127.0.0.21, .22, .23), observed through DNS answers,
//! `/api/v1/fleet`, `/metrics` and etcd itself.
//!
//! Every backend can be made to fail for one probe source alone, so one instance can have "a
//! broken path to a site" while the others reach it. Each test writes under its own etcd
//! prefix. Waiting for a change is a bounded poll of something a user can observe, never a
//! fixed sleep.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::etcd::EtcdCluster;
use crate::support::scrape;
use crate::support::{Meridian, QueryBuilder, answer_addrs, config_text, listening_addrs, parse};
use crate::support::{admin, get, ip, ips, write_token};

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/// The instances' names, in order; also their NSIDs.
const NAMES: [&str; 3] = ["ns1", "ns2", "ns3"];

/// Where each instance's probes come from: one loopback address per instance, so a backend can
/// fail one vantage point alone.
const SOURCES: [&str; 3] = ["127.0.0.21", "127.0.0.22", "127.0.0.23"];

/// `lease_ttl` in every test config.
const LEASE_TTL: Duration = Duration::from_secs(2);

/// The member under test in every pool (handed out in answers; probed at its own backend).
const X: &str = "192.0.2.10";

/// A member of every pool that never fails, so a pool never falls open (`when_all_down`) and
/// "X left the answer" reads as an answer of S alone.
const S: &str = "192.0.2.20";

/// The longest a test waits for a change to show on every instance (a bound, not a
/// synchronisation point).
const PATIENCE: Duration = Duration::from_secs(10);

/// Time between two looks at a changing observable.
const POLL: Duration = Duration::from_millis(20);

/// Looks at something until `check` says it is as expected (`Ok`), for at most `within`; fails
/// with `what` and the last thing seen (`Err`) otherwise.
async fn wait_until<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("{what}: not within {within:?}; last seen: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// An HTTP backend on `127.0.0.1:0` answering `200 ok`, except `503` to requests coming from
/// the source addresses the test made fail. It counts requests per source address.
struct SourceBackend {
    addr: SocketAddr,
    shared: Arc<BackendShared>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct BackendShared {
    failing: Mutex<HashSet<IpAddr>>,
    seen: Mutex<HashMap<IpAddr, u64>>,
}

impl SourceBackend {
    async fn start() -> SourceBackend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        let addr = listener.local_addr().expect("backend address");
        let shared = Arc::new(BackendShared::default());
        let task = tokio::spawn(serve_backend(listener, shared.clone()));
        SourceBackend { addr, shared, task }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests from `source` get 503 from now on.
    fn fail_from(&self, source: &str) {
        self.shared.failing.lock().unwrap().insert(ip(source));
    }

    /// Requests from `source` get 200 again.
    fn heal_from(&self, source: &str) {
        self.shared.failing.lock().unwrap().remove(&ip(source));
    }

    /// Requests seen from `source` so far.
    fn requests_from(&self, source: &str) -> u64 {
        let seen = self.shared.seen.lock().unwrap();
        seen.get(&ip(source)).copied().unwrap_or(0)
    }
}

impl Drop for SourceBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_backend(listener: TcpListener, shared: Arc<BackendShared>) {
    loop {
        let Ok((mut conn, peer)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            // Read the request head (bounded in size and time), then answer and close.
            let mut head = Vec::new();
            let mut buf = [0u8; 2048];
            let read = tokio::time::timeout(Duration::from_secs(5), async {
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return false,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                true
            })
            .await;
            if read != Ok(true) {
                return;
            }
            let source = peer.ip();
            *shared.seen.lock().unwrap().entry(source).or_default() += 1;
            let failing = shared.failing.lock().unwrap().contains(&source);
            let reply: &[u8] = if failing {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnope"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            };
            let _ = conn.write_all(reply).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// One pool under test, `fleet-POOL.example.test.` answering from pool POOL, probed by monitor
/// POOL with the given consensus: member [`X`] probed at `x`, member [`S`] at `steady`.
struct Site {
    pool: &'static str,
    /// The TOML value of `consensus` (`"\"majority\""`, `"2"`), or `None` for the default.
    consensus: Option<&'static str>,
    x: SourceBackend,
    steady: SourceBackend,
}

impl Site {
    async fn new(pool: &'static str, consensus: Option<&'static str>) -> Site {
        Site {
            pool,
            consensus,
            x: SourceBackend::start().await,
            steady: SourceBackend::start().await,
        }
    }

    fn name(&self) -> String {
        format!("fleet-{}.example.test.", self.pool)
    }

    /// The monitor, pool and service of this site as instance `i` configures them; `source`
    /// says whether its probes are sent from [`SOURCES`]`[i]`.
    fn config(&self, i: usize, source: bool) -> String {
        let consensus = self
            .consensus
            .map(|c| format!("consensus = {c}\n"))
            .unwrap_or_default();
        let source = if source {
            format!("source = {:?}\n", SOURCES[i])
        } else {
            String::new()
        };
        format!(
            r#"[monitors.{pool}]
type = "http"
interval = "200ms"
fast_interval = "100ms"
timeout = "500ms"
rise = 1
fall = 1
{consensus}{source}
[pools.{pool}]
monitor = "{pool}"
weight = 100
members = [
  {{ address = "{X}", check_address = "127.0.0.1", port = {x} }},
  {{ address = "{S}", check_address = "127.0.0.1", port = {s} }},
]

[services."{name}"]
pools = ["{pool}"]
ttl = 5

"#,
            pool = self.pool,
            x = self.x.port(),
            s = self.steady.port(),
            name = self.name(),
        )
    }
}

/// What every instance of one test's fleet is configured with.
struct Spec {
    endpoints: Vec<String>,
    prefix: String,
    sites: Vec<Site>,
    /// Whether each instance probes from its own [`SOURCES`] address.
    sources: bool,
    /// More `[fleet]` keys.
    fleet_extra: String,
}

impl Spec {
    /// A fleet on `endpoints` under a fresh prefix, probing from distinct sources.
    fn new(endpoints: Vec<String>, sites: Vec<Site>) -> Spec {
        Spec {
            endpoints,
            prefix: format!("/t/{:016x}", rand::random::<u64>()),
            sites,
            sources: true,
            fleet_extra: String::new(),
        }
    }

    /// The config of instance `i` (after the `[dns]` section `config_text` adds).
    fn config(&self, i: usize) -> String {
        let endpoints: Vec<String> = self.endpoints.iter().map(|e| format!("{e:?}")).collect();
        let mut out = format!(
            r#"[http]
listen = "127.0.0.1:0"
admin_token_file = "admin.token"

[fleet]
etcd = [{endpoints}]
name = "{name}"
prefix = "{prefix}"
lease_ttl = "{ttl}s"
timeout = "500ms"
{extra}
"#,
            endpoints = endpoints.join(", "),
            name = NAMES[i],
            prefix = self.prefix,
            ttl = LEASE_TTL.as_secs(),
            extra = self.fleet_extra,
        );
        for site in &self.sites {
            out.push_str(&site.config(i, self.sources));
        }
        out
    }

    fn site(&self, pool: &str) -> &Site {
        self.sites
            .iter()
            .find(|s| s.pool == pool)
            .unwrap_or_else(|| panic!("no site {pool}"))
    }

    /// Starts instance `i` in this process on a fresh directory.
    async fn start(&self, i: usize) -> Node {
        Node::start(&self.config(i)).await
    }

    /// Starts ns1, ns2 and ns3.
    async fn start_all(&self) -> Vec<Node> {
        let mut nodes = Vec::new();
        for i in 0..NAMES.len() {
            nodes.push(self.start(i).await);
        }
        nodes
    }
}

/// One instance in this process, with its directory (config, admin token, state file).
struct Node {
    m: Meridian,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(config: &str) -> Node {
        let dir = tempfile::tempdir().expect("tempdir");
        write_token(dir.path());
        let m = Meridian::start_at(dir.path(), "", config).await;
        Node { m, _dir: dir }
    }
}

/// A `meridian serve` child process (so it can be killed for real, with no goodbye to etcd);
/// killed when dropped.
struct ServeProcess {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl ServeProcess {
    async fn start(config: &str) -> ServeProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        write_token(dir.path());
        let path = dir.path().join("meridian.toml");
        std::fs::write(&path, config_text("", config)).expect("write config");
        let mut child = crate::support::spawn_serve(&path);
        let stderr = child.stderr.take().expect("piped stderr");
        // Read its log on a thread of its own (the instances in this process keep running
        // meanwhile), and keep reading it so it never blocks on a full pipe.
        let (started, ready) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stderr).lines();
            let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                listening_addrs(&mut lines, &["dns-udp"])
            }));
            let _ = started.send(found.is_ok());
            for _ in lines {}
        });
        let listening = tokio::task::spawn_blocking(move || ready.recv_timeout(PATIENCE))
            .await
            .expect("log reader");
        assert_eq!(
            listening,
            Ok(true),
            "meridian serve did not start listening"
        );
        ServeProcess { child, _dir: dir }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The addresses `m` answers for `name` now, sorted.
async fn answer(m: &Meridian, name: &str) -> Vec<IpAddr> {
    crate::support::answer(m, name).await
}

/// Waits until every instance answers `name` with exactly `want`.
async fn all_answer(nodes: &[&Meridian], name: &str, want: &[&str]) {
    let want = ips(want);
    for (i, m) in nodes.iter().enumerate() {
        wait_until(
            &format!("instance {i} answers {name} with {want:?}"),
            PATIENCE,
            || async {
                let got = answer(m, name).await;
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            },
        )
        .await;
    }
}

fn refs(nodes: &[Node]) -> Vec<&Meridian> {
    nodes.iter().map(|n| &n.m).collect()
}

/// `GET /api/v1/fleet`, parsed.
async fn fleet_view(m: &Meridian) -> Value {
    let (status, body) = get(m, "/api/v1/fleet").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/api/v1/fleet is not JSON: {e}: {body}"))
}

/// The `members` entry of `/api/v1/fleet` for `address` in `pool` (the member is named by its
/// id: the address, with `:port` when it has one).
fn fleet_member<'a>(view: &'a Value, pool: &str, address: &str) -> Option<&'a Value> {
    view["members"].as_array()?.iter().find(|m| {
        let id = m["member"].as_str().unwrap_or_default();
        m["pool"] == pool && (id == address || id.starts_with(&format!("{address}:")))
    })
}

/// A member's per-instance observations as `/api/v1/fleet` shows them.
fn observations(member: &Value) -> BTreeMap<String, String> {
    member["observations"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("?").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The observation map where the first `down` instances observe the member down and the
/// others up.
fn first_down(down: usize, of: usize) -> BTreeMap<String, String> {
    (0..of)
        .map(|i| {
            let seen = if i < down { "down" } else { "up" };
            (NAMES[i].to_string(), seen.to_string())
        })
        .collect()
}

/// Waits until every instance's `/api/v1/fleet` shows exactly `want` as the observations of
/// `address` in `pool`: what each instance decides on is then what the test set up.
async fn observations_seen(
    nodes: &[&Meridian],
    pool: &str,
    address: &str,
    want: &BTreeMap<String, String>,
) {
    for (i, m) in nodes.iter().enumerate() {
        wait_until(
            &format!(
                "{} sees observations {want:?} of {address} in {pool}",
                NAMES[i]
            ),
            PATIENCE,
            || async {
                let view = fleet_view(m).await;
                let member = fleet_member(&view, pool, address);
                if member.map(observations).as_ref() == Some(want) {
                    Ok(())
                } else {
                    Err(format!("{member:?}"))
                }
            },
        )
        .await;
    }
}

/// The consensus `state` of a member on one instance, from `/api/v1/fleet`.
async fn fleet_state(m: &Meridian, pool: &str, address: &str) -> String {
    let view = fleet_view(m).await;
    let member = fleet_member(&view, pool, address)
        .unwrap_or_else(|| panic!("no {address} of {pool} in /api/v1/fleet: {view}"));
    member["state"].as_str().unwrap_or("?").to_string()
}

/// Waits until `m` reports `state` for the member in `/api/v1/fleet`.
async fn until_state(m: &Meridian, pool: &str, address: &str, state: &str) {
    wait_until(
        &format!("{address} of {pool} is {state}"),
        PATIENCE,
        || async {
            let got = fleet_state(m, pool, address).await;
            if got == state { Ok(()) } else { Err(got) }
        },
    )
    .await;
}

/// Waits until `m`'s `/api/v1/fleet` lists exactly `names` as live instances.
async fn until_instances(m: &Meridian, names: &[&str], within: Duration) {
    let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    want.sort();
    wait_until(&format!("live instances are {want:?}"), within, || async {
        let got = instance_names(&fleet_view(m).await);
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
}

fn instance_names(view: &Value) -> Vec<String> {
    let mut names: Vec<String> = view["instances"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The value of an unlabelled metric on `m`.
async fn metric(m: &Meridian, name: &str) -> f64 {
    scrape(m).await.value(name, &[])
}

/// Waits until the unlabelled metric `name` on `m` reads `want`.
async fn until_metric(m: &Meridian, name: &str, want: f64, within: Duration) {
    wait_until(&format!("{name} = {want}"), within, || async {
        let got = metric(m, name).await;
        if got == want {
            Ok(())
        } else {
            Err(got.to_string())
        }
    })
    .await;
}

/// The override keys etcd holds under `prefix` for `address` in `pool`, with their values.
async fn override_keys(
    etcd: &EtcdCluster,
    prefix: &str,
    pool: &str,
    address: &str,
) -> Vec<(String, Value)> {
    let mut client = etcd.client().await;
    let under = format!("{prefix}/overrides/{pool}/");
    let found = client
        .get(
            under.as_str(),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .expect("etcd get overrides");
    found
        .kvs()
        .iter()
        .filter_map(|kv| {
            let key = kv.key_str().ok()?.to_string();
            let member = key.strip_prefix(&under)?;
            (member == address || member.starts_with(&format!("{address}:"))).then(|| {
                let value = serde_json::from_slice(kv.value())
                    .unwrap_or_else(|e| panic!("override {key} is not JSON: {e}"));
                (key, value)
            })
        })
        .collect()
}

/// The state etcd's override of a member puts it in: `drained`, `forced-down` or `forced-up`
/// when a key holds such an override (a string anywhere in its JSON but under `by` and `at`,
/// `-` and `_` alike), else `up`.
fn etcd_override(overrides: &[(String, Value)]) -> &'static str {
    fn named(v: &Value) -> Option<&'static str> {
        match v {
            Value::String(s) => {
                let s = s.to_ascii_lowercase().replace('_', "-");
                if s.starts_with("drain") {
                    Some("drained")
                } else if s.starts_with("force-down") || s.starts_with("forced-down") {
                    Some("forced-down")
                } else if s.starts_with("force-up") || s.starts_with("forced-up") {
                    Some("forced-up")
                } else {
                    None
                }
            }
            Value::Object(o) => o
                .iter()
                .filter(|(k, _)| *k != "by" && *k != "at")
                .find_map(|(_, v)| named(v)),
            Value::Array(a) => a.iter().find_map(named),
            _ => None,
        }
    }
    overrides.iter().find_map(|(_, v)| named(v)).unwrap_or("up")
}

/// An admin action that an etcd failover may refuse for a moment (503: the write did not
/// reach etcd within `timeout`); retried, as an operator would, for at most [`PATIENCE`].
async fn admin_through_failover(m: &Meridian, action: &str, pool: &str, member: &str) {
    let started = Instant::now();
    let refusals = std::sync::atomic::AtomicU32::new(0);
    wait_until(
        &format!("{action} {pool} {member} accepted"),
        PATIENCE,
        || async {
            let (status, body) = admin(m, action, pool, member).await;
            match status {
                200 => Ok(()),
                503 => {
                    let n = 1 + refusals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Err(format!(
                        "{n} refusals in {:?}, the last: {body}",
                        started.elapsed()
                    ))
                }
                _ => panic!("{action} {pool} {member}: HTTP {status}: {body}"),
            }
        },
    )
    .await;
}

/// One A query with a short timeout: `None` when no reply came.
async fn try_query(server: SocketAddr, name: &str, id: u16) -> Option<Message> {
    let sock = UdpSocket::bind("127.0.0.1:0").await.ok()?;
    let packet = QueryBuilder::new(name, RecordType::A)
        .id(id)
        .edns(1232)
        .build();
    sock.send_to(&packet, server).await.ok()?;
    let mut buf = vec![0u8; 65_535];
    let (n, _) = tokio::time::timeout(Duration::from_secs(1), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(parse(&buf[..n]))
}

/// The NSID `m` sends back to a query asking for it (RFC 5001: an empty NSID option).
async fn nsid_of(m: &Meridian, name: &str) -> Option<String> {
    let mut query = parse(&QueryBuilder::new(name, RecordType::A).edns(1232).build());
    query
        .edns
        .as_mut()
        .expect("OPT record")
        .options_mut()
        .insert(EdnsOption::Unknown(3, Vec::new()));
    let reply = parse(&m.udp_raw(&query.to_vec().expect("encode")).await);
    let payload = match reply.edns.as_ref()?.options().get(EdnsCode::NSID)? {
        EdnsOption::NSID(payload) => payload.as_ref().to_vec(),
        EdnsOption::Unknown(_, data) => data.clone(),
        other => panic!("NSID read as {other:?}"),
    };
    Some(String::from_utf8_lossy(&payload).into_owned())
}

/// The status line a request sent from `source` gets from `backend`.
async fn status_from(backend: &SourceBackend, source: &str) -> String {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(ip(source), 0))
        .expect("bind the source address");
    let mut conn = socket.connect(backend.addr).await.expect("connect");
    conn.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut reply = String::new();
    tokio::time::timeout(PATIENCE, conn.read_to_string(&mut reply))
        .await
        .expect("reply in time")
        .expect("read");
    reply.lines().next().unwrap_or_default().to_string()
}

/// The harness itself: a backend fails for the chosen source addresses alone and counts who
/// asked.
#[tokio::test]
async fn a_source_backend_fails_only_for_the_chosen_sources() {
    let backend = SourceBackend::start().await;
    backend.fail_from(SOURCES[1]);
    assert_eq!(status_from(&backend, SOURCES[0]).await, "HTTP/1.1 200 OK");
    assert_eq!(
        status_from(&backend, SOURCES[1]).await,
        "HTTP/1.1 503 Service Unavailable"
    );
    backend.heal_from(SOURCES[1]);
    assert_eq!(status_from(&backend, SOURCES[1]).await, "HTTP/1.1 200 OK");
    assert_eq!(
        (
            backend.requests_from(SOURCES[0]),
            backend.requests_from(SOURCES[1]),
            backend.requests_from(SOURCES[2])
        ),
        (1, 2, 0)
    );
}

// ---------------------------------------------------------------------------------------------
// Consensus
// ---------------------------------------------------------------------------------------------

/// `consensus = "majority"` over three: one instance that cannot reach a member changes
/// nothing; a second one takes it out everywhere, on the instance that still reaches it too.
#[tokio::test]
async fn majority_ignores_one_broken_path_but_not_two() {
    let etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("maj", Some("\"majority\"")).await],
    );
    let site = spec.site("maj");
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    all_answer(&nodes, &site.name(), &[X, S]).await;
    for source in SOURCES {
        assert!(
            site.x.requests_from(source) >= 1,
            "no probe came from {source}"
        );
    }

    // ns1 alone fails: 1 of 3 is no majority.
    site.x.fail_from(SOURCES[0]);
    observations_seen(&nodes, "maj", X, &first_down(1, 3)).await;
    for (i, m) in nodes.iter().enumerate() {
        assert_eq!(answer(m, &site.name()).await, ips(&[X, S]), "{}", NAMES[i]);
        assert_eq!(fleet_state(m, "maj", X).await, "up", "{}", NAMES[i]);
    }
    let view = fleet_view(nodes[0]).await;
    let member = fleet_member(&view, "maj", X).expect("member in view");
    assert_eq!(member["local"], "down", "ns1's own probe fails: {member}");
    assert_eq!(member["consensus"], "majority", "{member}");

    // ns2 fails too: 2 of 3 is a majority, so ns3 drops it although its own probes pass.
    site.x.fail_from(SOURCES[1]);
    all_answer(&nodes, &site.name(), &[S]).await;
    let view = fleet_view(nodes[2]).await;
    let member = fleet_member(&view, "maj", X).expect("member in view");
    assert_eq!(
        (&member["local"], &member["state"]),
        (&Value::from("up"), &Value::from("down")),
        "{member}"
    );

    site.x.heal_from(SOURCES[0]);
    site.x.heal_from(SOURCES[1]);
    all_answer(&nodes, &site.name(), &[X, S]).await;
}

/// The consensus table: `local`, `any`, `all` and a count of 2, as one, two and then three
/// instances lose their path to the member.
#[tokio::test]
async fn local_any_all_and_a_count_decide_as_the_table_says() {
    let etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![
            Site::new("local", None).await,
            Site::new("any", Some("\"any\"")).await,
            Site::new("all", Some("\"all\"")).await,
            Site::new("two", Some("2")).await,
        ],
    );
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    for site in &spec.sites {
        all_answer(&nodes, &site.name(), &[X, S]).await;
    }

    // After `down` instances fail: is X still answered by instance i, per pool?
    let answered = |pool: &str, down: usize, i: usize| match pool {
        "local" => i >= down,
        "any" => down == 0,
        "all" => down < 3,
        "two" => down < 2,
        other => unreachable!("{other}"),
    };
    for down in 1..=3 {
        for site in &spec.sites {
            site.x.fail_from(SOURCES[down - 1]);
        }
        // Every instance has seen every observation before anything is judged.
        for pool in ["any", "all", "two"] {
            observations_seen(&nodes, pool, X, &first_down(down, 3)).await;
        }
        // Removals may take one snapshot to show: wait for them ...
        for site in &spec.sites {
            for (i, m) in nodes.iter().enumerate() {
                if !answered(site.pool, down, i) {
                    all_answer(&[m], &site.name(), &[S]).await;
                }
            }
        }
        // ... while what stays must be there now.
        for site in &spec.sites {
            for (i, m) in nodes.iter().enumerate() {
                if answered(site.pool, down, i) {
                    assert_eq!(
                        answer(m, &site.name()).await,
                        ips(&[X, S]),
                        "{} with {down} of 3 observing {X} down: {} should still answer it",
                        site.pool,
                        NAMES[i]
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Overrides
// ---------------------------------------------------------------------------------------------

/// A drain through ns1's API is applied by ns2 and ns3, kept in etcd with who and when, and an
/// undrain brings the member back everywhere.
#[tokio::test]
async fn drain_on_one_instance_is_applied_by_all_and_kept_in_etcd() {
    let etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("web", Some("\"majority\"")).await],
    );
    let name = spec.site("web").name();
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    all_answer(&nodes, &name, &[X, S]).await;

    let (status, body) = admin(nodes[0], "drain", "web", X).await;
    assert_eq!(status, 200, "{body}");
    // Applied in etcd revision order, so ns1 too may apply its own drain once etcd has it.
    all_answer(&nodes, &name, &[S]).await;
    for m in &nodes {
        until_state(m, "web", X, "drained").await;
    }

    let keys = override_keys(&etcd, &spec.prefix, "web", X).await;
    assert_eq!(keys.len(), 1, "one override key for {X}: {keys:?}");
    let (key, value) = &keys[0];
    assert!(
        value.get("by").is_some() && value.get("at").is_some(),
        "{key} says who set it and when: {value}"
    );
    assert_eq!(etcd_override(&keys), "drained", "{key}: {value}");

    let (status, body) = admin(nodes[0], "undrain", "web", X).await;
    assert_eq!(status, 200, "{body}");
    all_answer(&nodes, &name, &[X, S]).await;
}

/// Overrides live in etcd, not in one instance: after every instance is gone, new ones with no
/// state file but the same prefix still keep the member drained.
#[tokio::test]
async fn overrides_survive_a_restart_of_every_instance() {
    let etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("web", Some("\"majority\"")).await],
    );
    let name = spec.site("web").name();
    let nodes = spec.start_all().await;
    all_answer(&refs(&nodes), &name, &[X, S]).await;
    let (status, body) = admin(&nodes[1].m, "drain", "web", X).await;
    assert_eq!(status, 200, "{body}");
    all_answer(&refs(&nodes), &name, &[S]).await;

    for node in nodes {
        node.m.stop().await;
    }
    // Fresh directories: nothing of the old instances' state files is read.
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    all_answer(&nodes, &name, &[S]).await;
    for m in &nodes {
        until_state(m, "web", X, "drained").await;
    }

    let (status, body) = admin(nodes[2], "clear", "web", X).await;
    assert_eq!(status, 200, "{body}");
    all_answer(&nodes, &name, &[X, S]).await;
}

/// Two operators at once on two instances, on the same member: an undrain racing a drain, and
/// a drain racing a force-down. Whichever write etcd ordered last wins, on all three.
#[tokio::test]
async fn concurrent_overrides_end_the_same_everywhere() {
    let etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("web", Some("\"majority\"")).await],
    );
    let name = spec.site("web").name();
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    all_answer(&nodes, &name, &[X, S]).await;

    // (start drained?, instance and action of one operator, of the other)
    let rounds = [
        (true, (0, "undrain"), (1, "drain")),
        (false, (1, "drain"), (2, "force-down")),
        (true, (2, "drain"), (0, "undrain")),
        (false, (0, "force-down"), (2, "drain")),
    ];
    for (round, (drained_first, (a, action_a), (b, action_b))) in rounds.into_iter().enumerate() {
        if drained_first {
            let (status, body) = admin(nodes[a], "drain", "web", X).await;
            assert_eq!(status, 200, "{body}");
            for m in &nodes {
                until_state(m, "web", X, "drained").await;
            }
        }
        let ((s1, b1), (s2, b2)) = tokio::join!(
            admin(nodes[a], action_a, "web", X),
            admin(nodes[b], action_b, "web", X)
        );
        assert_eq!((s1, s2), (200, 200), "round {round}: {b1} / {b2}");

        let state = etcd_override(&override_keys(&etcd, &spec.prefix, "web", X).await);
        for m in &nodes {
            until_state(m, "web", X, state).await;
        }
        let want: &[&str] = if state == "up" { &[X, S] } else { &[S] };
        all_answer(&nodes, &name, want).await;
        // etcd still says the same: nothing was applied after the instances agreed.
        let again = etcd_override(&override_keys(&etcd, &spec.prefix, "web", X).await);
        assert_eq!(
            again, state,
            "round {round}: {action_a} on {a} vs {action_b} on {b}"
        );

        let (status, body) = admin(nodes[a], "clear", "web", X).await;
        assert_eq!(status, 200, "{body}");
        for m in &nodes {
            until_state(m, "web", X, "up").await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// When things break
// ---------------------------------------------------------------------------------------------

/// An instance that dies without a word (SIGKILL): its lease expires and the survivors stop
/// counting its observations within `lease_ttl` (plus an election timeout and polling margin).
#[tokio::test]
async fn a_dead_instance_stops_counting_within_the_lease() {
    let etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("maj", Some("\"majority\"")).await],
    );
    let site = spec.site("maj");
    let survivors = [spec.start(0).await, spec.start(1).await];
    let survivors = refs(&survivors);
    let mut ns3 = ServeProcess::start(&spec.config(2)).await;
    until_instances(survivors[0], &NAMES, PATIENCE).await;

    // ns1 and ns3 fail: a majority, so X is out.
    site.x.fail_from(SOURCES[0]);
    site.x.fail_from(SOURCES[2]);
    let mut want = first_down(1, 3);
    want.insert("ns3".to_string(), "down".to_string());
    observations_seen(&survivors, "maj", X, &want).await;
    all_answer(&survivors, &site.name(), &[S]).await;

    let killed = Instant::now();
    ns3.kill();
    let margin = Duration::from_millis(2000);
    for m in &survivors {
        until_instances(m, &NAMES[..2], LEASE_TTL + margin).await;
    }
    observations_seen(&survivors, "maj", X, &first_down(1, 2)).await;
    assert!(
        killed.elapsed() <= LEASE_TTL + margin + Duration::from_secs(1),
        "ns3's observations outlived it by {:?}",
        killed.elapsed()
    );
    // 1 of 2 down is no majority: X is back on both survivors.
    all_answer(&survivors, &site.name(), &[X, S]).await;
    assert_eq!(
        metric(survivors[0], "meridian_fleet_instances_live").await,
        2.0
    );
}

/// etcd unreachable at start: the instance answers from its own probes, says so on `/readyz`
/// (still 200) and in `meridian_fleet_etcd_connected 0`, and joins once etcd is there.
#[tokio::test]
async fn without_etcd_an_instance_serves_its_own_view_and_joins_later() {
    let planned = EtcdCluster::plan(3);
    let spec = Spec::new(
        planned.endpoints(),
        vec![Site::new("maj", Some("\"majority\"")).await],
    );
    let site = spec.site("maj");
    let ns1 = spec.start(0).await;
    let ns1 = &ns1.m;
    assert_eq!(answer(ns1, &site.name()).await, ips(&[X, S]));
    let (status, body) = get(ns1, "/readyz").await;
    assert_eq!(status, 200, "it answers, so it is ready: {body}");
    assert!(
        body.to_lowercase().contains("etcd"),
        "/readyz says etcd is missing: {body}"
    );
    assert_eq!(metric(ns1, "meridian_fleet_etcd_connected").await, 0.0);
    assert_eq!(fleet_view(ns1).await["etcd_connected"], false);

    // Its own observation decides meanwhile.
    site.x.fail_from(SOURCES[0]);
    all_answer(&[ns1], &site.name(), &[S]).await;
    site.x.heal_from(SOURCES[0]);
    all_answer(&[ns1], &site.name(), &[X, S]).await;

    let etcd = planned.start().await;
    until_metric(ns1, "meridian_fleet_etcd_connected", 1.0, PATIENCE).await;
    assert_eq!(fleet_view(ns1).await["etcd_connected"], true);

    // Joined for real: a drain on a newcomer reaches it.
    let ns2 = spec.start(1).await;
    until_instances(ns1, &NAMES[..2], PATIENCE).await;
    let (status, body) = admin(&ns2.m, "drain", "maj", X).await;
    assert_eq!(status, 200, "{body}");
    all_answer(&[ns1, &ns2.m], &site.name(), &[S]).await;
    drop(etcd);
}

/// The whole etcd cluster lost while serving: no DNS query waits on it or goes unanswered,
/// and the answers stay those of the last known consensus.
#[tokio::test]
async fn losing_all_of_etcd_loses_no_query() {
    let mut etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("maj", Some("\"majority\"")).await],
    );
    let name = spec.site("maj").name();
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    all_answer(&nodes, &name, &[X, S]).await;
    until_metric(nodes[0], "meridian_fleet_etcd_connected", 1.0, PATIENCE).await;

    etcd.kill_all();
    // Query all three, back to back, for longer than a lease: bounded in count and in time.
    let (mut sent, mut answered) = (0u32, 0u32);
    let until = Instant::now() + LEASE_TTL + Duration::from_secs(1);
    while Instant::now() < until && sent < 3000 {
        let m = nodes[sent as usize % 3];
        sent += 1;
        if let Some(reply) = try_query(m.udp, &name, sent as u16).await {
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::NoError,
                "{reply:?}"
            );
            let mut got = answer_addrs(&reply);
            got.sort();
            assert_eq!(got, ips(&[X, S]), "query {sent}");
            answered += 1;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(sent >= 100, "only {sent} queries sent");
    assert_eq!(answered, sent, "every query answered with etcd gone");
    until_metric(nodes[0], "meridian_fleet_etcd_connected", 0.0, PATIENCE).await;
}

/// etcd lost: peers' last observations keep counting for `stale_peers`, then each instance
/// decides on its own observations alone.
#[tokio::test]
async fn after_etcd_is_lost_peers_count_for_stale_peers_then_only_the_own_view() {
    const STALE: Duration = Duration::from_secs(3);
    let mut etcd = EtcdCluster::start(3).await;
    let mut spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("maj", Some("\"majority\"")).await],
    );
    spec.fleet_extra = format!("stale_peers = \"{}s\"\n", STALE.as_secs());
    let site = spec.site("maj");
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    // ns1 alone fails: outvoted, X stays.
    site.x.fail_from(SOURCES[0]);
    observations_seen(&nodes, "maj", X, &first_down(1, 3)).await;
    all_answer(&nodes, &site.name(), &[X, S]).await;

    etcd.kill_all();
    let lost = Instant::now();
    // ns1 keeps counting ns2's and ns3's "up" for about stale_peers, then goes by its own "down".
    all_answer(&nodes[..1], &site.name(), &[S]).await;
    let kept = lost.elapsed();
    assert!(
        kept >= STALE - Duration::from_millis(1000),
        "peers' observations were dropped after {kept:?}, before stale_peers = {STALE:?}"
    );
    // ns2 and ns3 see it up themselves: they keep answering it.
    for m in &nodes[1..] {
        assert_eq!(answer(m, &site.name()).await, ips(&[X, S]));
    }
}

/// One etcd member of three frozen (SIGSTOP), then one killed: drains still reach every
/// instance.
#[tokio::test]
async fn one_etcd_member_frozen_or_killed_changes_nothing() {
    let mut etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("web", Some("\"majority\"")).await],
    );
    let name = spec.site("web").name();
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    all_answer(&nodes, &name, &[X, S]).await;

    // The leader frozen: it holds its connections open and answers nothing.
    let frozen = etcd.leader().await;
    etcd.stop(frozen);
    admin_through_failover(nodes[0], "drain", "web", X).await;
    all_answer(&nodes, &name, &[S]).await;
    etcd.cont(frozen);
    etcd.wait_healthy().await;

    // The (possibly new) leader killed.
    let killed = etcd.leader().await;
    etcd.kill(killed);
    admin_through_failover(nodes[1], "undrain", "web", X).await;
    all_answer(&nodes, &name, &[X, S]).await;
    admin_through_failover(nodes[2], "drain", "web", X).await;
    all_answer(&nodes, &name, &[S]).await;
}

// ---------------------------------------------------------------------------------------------
// Seeing the fleet
// ---------------------------------------------------------------------------------------------

/// An instance whose config differs (one pool weight) is flagged by the others and by itself.
#[tokio::test]
async fn a_differing_config_is_flagged() {
    let etcd = EtcdCluster::start(3).await;
    let mut spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("web", Some("\"majority\"")).await],
    );
    // Same probe source everywhere, so the configs differ in the weight alone.
    spec.sources = false;
    let odd = spec.config(2).replace("weight = 100", "weight = 50");
    assert_ne!(odd, spec.config(2));
    let nodes = [
        spec.start(0).await,
        spec.start(1).await,
        Node::start(&odd).await,
    ];
    let nodes = refs(&nodes);
    until_instances(nodes[0], &NAMES, PATIENCE).await;

    let view = fleet_view(nodes[0]).await;
    let instances: BTreeMap<String, &Value> = view["instances"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| (i["name"].as_str().unwrap_or("?").to_string(), i))
        .collect();
    assert_eq!(instances["ns1"]["config_matches"], true, "{view}");
    assert_eq!(instances["ns2"]["config_matches"], true, "{view}");
    assert_eq!(instances["ns3"]["config_matches"], false, "{view}");
    assert_eq!(
        instances["ns1"]["config_digest"], view["config_digest"],
        "{view}"
    );
    assert_eq!(
        instances["ns1"]["config_digest"],
        instances["ns2"]["config_digest"]
    );
    assert_ne!(
        instances["ns1"]["config_digest"],
        instances["ns3"]["config_digest"]
    );
    assert!(metric(nodes[0], "meridian_fleet_config_mismatch").await >= 1.0);
    // ns3 sees the other two differ from itself.
    until_instances(nodes[2], &NAMES, PATIENCE).await;
    assert!(metric(nodes[2], "meridian_fleet_config_mismatch").await >= 1.0);
}

/// `/api/v1/fleet` and the fleet metrics as the contract names them, NSID naming the instance,
/// and `{"enabled": false}` without `[fleet]`.
#[tokio::test]
async fn fleet_api_metrics_and_nsid() {
    let etcd = EtcdCluster::start(3).await;
    let spec = Spec::new(
        etcd.endpoints(),
        vec![Site::new("web", Some("\"majority\"")).await],
    );
    let name = spec.site("web").name();
    let nodes = spec.start_all().await;
    let nodes = refs(&nodes);
    all_answer(&nodes, &name, &[X, S]).await;
    observations_seen(&nodes, "web", X, &first_down(0, 3)).await;

    for (i, m) in nodes.iter().enumerate() {
        until_instances(m, &NAMES, PATIENCE).await;
        let view = fleet_view(m).await;
        assert_eq!(view["enabled"], true, "{view}");
        assert_eq!(view["name"], NAMES[i], "{view}");
        assert_eq!(view["prefix"], spec.prefix.as_str(), "{view}");
        assert_eq!(view["etcd_connected"], true, "{view}");
        let digest = view["config_digest"].as_str().unwrap_or_default();
        assert!(
            !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "config_digest is hex: {view}"
        );
        let instances = view["instances"].as_array().expect("instances");
        for instance in instances {
            assert!(instance["version"].is_string(), "{instance}");
            assert!(instance["config_digest"].is_string(), "{instance}");
            assert!(instance["config_matches"].is_boolean(), "{instance}");
            assert!(instance["generation"].is_u64(), "{instance}");
            // Seen since it started: its registration at least.
            let (started, seen) = (&instance["started"], &instance["last_seen"]);
            assert!(
                seen.as_u64()
                    .zip(started.as_u64())
                    .is_some_and(|(s, t)| s >= t),
                "last_seen not before started: {instance}"
            );
            assert_eq!(instance["self"], instance["name"] == NAMES[i], "{instance}");
        }
        let me = instances.iter().find(|x| x["self"] == true).expect("self");
        assert_eq!(me["version"], env!("CARGO_PKG_VERSION"), "{me}");
        assert_eq!(me["config_matches"], true, "itself: {me}");
        for address in [X, S] {
            let member = fleet_member(&view, "web", address)
                .unwrap_or_else(|| panic!("{address} in {view}"));
            assert_eq!(member["consensus"], "majority", "{member}");
            assert_eq!(member["state"], "up", "{member}");
            assert_eq!(member["local"], "up", "{member}");
            assert_eq!(observations(member), first_down(0, 3), "{member}");
        }

        let metrics = scrape(m).await;
        assert_eq!(metrics.value("meridian_fleet_instances_live", &[]), 3.0);
        assert_eq!(metrics.value("meridian_fleet_etcd_connected", &[]), 1.0);
        assert_eq!(
            metrics.value("meridian_fleet_observations_disagreeing", &[]),
            0.0
        );
        assert!(metrics.value("meridian_fleet_config_mismatch", &[]) >= 0.0);
        assert!(
            metrics.value("meridian_fleet_etcd_writes_total", &[]) >= 1.0,
            "joining writes at least the instance key"
        );

        // Without `[dns] nsid` the fleet name is the NSID.
        assert_eq!(nsid_of(m, &name).await.as_deref(), Some(NAMES[i]));
    }

    // One instance's observation differing from the consensus is counted as a disagreement.
    let site = spec.site("web");
    site.x.fail_from(SOURCES[0]);
    observations_seen(&nodes, "web", X, &first_down(1, 3)).await;
    until_metric(
        nodes[1],
        "meridian_fleet_observations_disagreeing",
        1.0,
        PATIENCE,
    )
    .await;
    site.x.heal_from(SOURCES[0]);

    // No [fleet]: the endpoint says so.
    let plain = Node::start(&format!(
        "[http]\nlisten = \"127.0.0.1:0\"\nadmin_token_file = \"admin.token\"\n{}",
        Site::new("web", None).await.config(0, false)
    ))
    .await;
    assert_eq!(fleet_view(&plain.m).await["enabled"], false);
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// A bad `[fleet]` (or a consensus without one) is refused with `file:line: reason`.
#[test]
fn bad_fleet_config_is_refused_with_file_line_and_reason() {
    use crate::support::{VALID, ZONE, config_dir, error_of};

    const GOOD: &str = "[fleet]\netcd = [\"http://127.0.0.1:2379\", \"http://127.0.0.1:2380\"]\nname = \"ns1\"\nprefix = \"/meridian/test\"\nlease_ttl = \"2s\"\ntimeout = \"500ms\"\n";
    let with_fleet = |fleet: &str| format!("{VALID}\n{fleet}");
    let with_consensus = |fleet: &str, consensus: &str| {
        with_fleet(fleet).replace(
            "type = \"http\"",
            &format!("type = \"http\"\nconsensus = {consensus}"),
        )
    };

    // The good one loads, with every consensus form.
    for consensus in ["\"local\"", "\"any\"", "\"all\"", "\"majority\"", "2"] {
        let (_dir, path) = config_dir(&with_consensus(GOOD, consensus), ZONE);
        meridian::Model::load(&path).unwrap_or_else(|e| panic!("consensus = {consensus}: {e}"));
    }

    // (config, the line it must name (the last line starting so; `a|b`: either), what the
    // reason mentions). An empty `etcd` may be blamed on its key or on its table.
    let long_name = format!("name = \"{}\"", "n".repeat(64));
    let cases: Vec<(String, &str, &str)> = vec![
        (
            with_fleet(&GOOD.replace(
                "etcd = [\"http://127.0.0.1:2379\", \"http://127.0.0.1:2380\"]\n",
                "",
            )),
            "[fleet]",
            "fleet.etcd",
        ),
        (
            with_fleet(&GOOD.replace(
                "etcd = [\"http://127.0.0.1:2379\", \"http://127.0.0.1:2380\"]",
                "etcd = []",
            )),
            "etcd =|[fleet]",
            "fleet.etcd",
        ),
        (
            with_fleet(&GOOD.replace("127.0.0.1:2380", "127.0.0.1:2379")),
            "etcd =",
            "http://127.0.0.1:2379",
        ),
        (
            with_fleet(&GOOD.replace("http://127.0.0.1:2380", "127.0.0.1:2380")),
            "etcd =",
            "127.0.0.1:2380",
        ),
        (
            with_fleet(&GOOD.replace("http://127.0.0.1:2380", "ftp://127.0.0.1:2380")),
            "etcd =",
            "ftp://127.0.0.1:2380",
        ),
        (
            with_fleet(&GOOD.replace("http://127.0.0.1:2380", "http://127.0.0.1")),
            "etcd =",
            "http://127.0.0.1",
        ),
        (
            with_fleet(&GOOD.replace("name = \"ns1\"", "name = \"\"")),
            "name =",
            "fleet.name",
        ),
        (
            with_fleet(&GOOD.replace("name = \"ns1\"", &long_name)),
            "name =",
            "fleet.name",
        ),
        (
            with_fleet(&GOOD.replace("name = \"ns1\"", "name = \"ns 1\"")),
            "name =",
            "fleet.name",
        ),
        (
            with_fleet(&GOOD.replace("name = \"ns1\"", "name = \"ns/1\"")),
            "name =",
            "fleet.name",
        ),
        (
            with_fleet(&GOOD.replace("\"/meridian/test\"", "\"meridian/test\"")),
            "prefix =",
            "fleet.prefix",
        ),
        (
            with_fleet(&GOOD.replace("\"/meridian/test\"", "\"/meridian/test/\"")),
            "prefix =",
            "fleet.prefix",
        ),
        (
            with_fleet(&GOOD.replace("lease_ttl = \"2s\"", "lease_ttl = \"1s\"")),
            "lease_ttl =",
            "fleet.lease_ttl",
        ),
        (with_consensus(GOOD, "0"), "consensus =", "consensus"),
        (with_consensus(GOOD, "\"most\""), "consensus =", "consensus"),
        (
            VALID.replace(
                "type = \"http\"",
                "type = \"http\"\nconsensus = \"majority\"",
            ),
            "consensus =",
            "fleet",
        ),
    ];
    for (config, line_starts, mentions) in cases {
        let prefixes: Vec<String> = line_starts
            .split('|')
            .map(|start| {
                let line = config
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| l.starts_with(start))
                    .map(|(n, _)| n + 1)
                    .last()
                    .unwrap_or_else(|| panic!("no line starting {start:?}"));
                format!("DIR/meridian.toml:{line}: ")
            })
            .collect();
        let e = error_of(&config, ZONE);
        assert!(
            prefixes.iter().any(|p| e.starts_with(p)) && e.contains(mentions),
            "expected {prefixes:?}…{mentions}…, got: {e}\n--- config:\n{config}"
        );
    }
}
