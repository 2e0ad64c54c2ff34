//! Load feedback through real interfaces: members that report their own capacity (HAProxy
//! agents, small TCP servers here; HTTP backends with a weight header or JSON body) and the
//! shares of DNS answers and director connections that follow it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::rr::RecordType;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::backend::Backend;
use crate::support::{
    HTTP_OPEN, Meridian, PATIENCE, QueryBuilder, WWW, answer_addrs, eventually, get, ip, udp_bulk,
    until_count,
};

/// A HAProxy agent: every connection gets the current line, then the agent closes.
struct Agent {
    line: Arc<Mutex<String>>,
    served: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Agent {
    fn start(listener: TcpListener, line: &str) -> Agent {
        let line = Arc::new(Mutex::new(line.to_string()));
        let served = Arc::new(AtomicU64::new(0));
        let (now, count) = (line.clone(), served.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let text = format!("{}\n", now.lock().unwrap());
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let _ = s.write_all(text.as_bytes()).await;
                    let _ = s.shutdown().await;
                });
            }
        });
        Agent { line, served, task }
    }

    fn say(&self, line: &str) {
        *self.line.lock().unwrap() = line.to_string();
    }

    /// Lines handed out so far.
    fn served(&self) -> u64 {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Agents on `127.0.0.2` and `127.0.0.3` on one port (a monitor has one port), and the port.
async fn agent_pair(a: &str, b: &str) -> (Agent, Agent, u16) {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.2:0").await.expect("bind agent");
        let port = first.local_addr().unwrap().port();
        if let Ok(second) = TcpListener::bind(("127.0.0.3", port)).await {
            return (Agent::start(first, a), Agent::start(second, b), port);
        }
    }
    panic!("no port free on both 127.0.0.2 and 127.0.0.3");
}

/// Backends `a` (`127.0.0.2`) and `b` (`127.0.0.3`) of weight 100, each with an agent saying
/// `a` and `b` at first, behind Meridian (see [`config`]).
async fn with_agents(a: &str, b: &str) -> (Meridian, Agent, Agent, [JoinHandle<()>; 2]) {
    let (ga, ta) = greeter("127.0.0.2", b'a').await;
    let (gb, tb) = greeter("127.0.0.3", b'b').await;
    let (agent_a, agent_b, port) = agent_pair(a, b).await;
    let monitor = format!("type = \"agent\"\nport = {port}");
    let m = Meridian::start("", &config(&monitor, &[(ga, 100), (gb, 100)])).await;
    (m, agent_a, agent_b, [ta, tb])
}

/// A backend on `ip:0` that greets every connection with `name`, then echoes.
async fn greeter(ip: &str, name: u8) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind((ip, 0)).await.expect("bind backend");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if s.write_all(&[name]).await.is_err() {
                    return;
                }
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, task)
}

/// Pool `web` of `members` (address, port, weight) probed by `monitor`, service `www` with
/// weighted selection of one answer, a `wrr` director over it and the open HTTP API.
fn config(monitor: &str, members: &[(SocketAddr, u32)]) -> String {
    let list: Vec<String> = members
        .iter()
        .map(|(a, w)| {
            format!(
                "{{ address = \"{}\", port = {}, weight = {w} }}",
                a.ip(),
                a.port()
            )
        })
        .collect();
    format!(
        "{HTTP_OPEN}\n[monitors.load]\n{monitor}\ninterval = \"100ms\"\nfast_interval = \"50ms\"\n\
         timeout = \"500ms\"\nrise = 1\nfall = 1\n\n[pools.web]\nmonitor = \"load\"\nmembers = [{}]\n\n\
         [services.\"{WWW}\"]\npools = [\"web\"]\nselect = \"weighted\"\nmax_answers = 1\n\n\
         [[directors]]\nlisten = \"127.0.0.1:0\"\nservice = \"{WWW}\"\nscheduler = \"wrr\"\n",
        list.join(", ")
    )
}

/// What `read` takes from each member in `/api/v1/status`, by member address.
pub(crate) async fn status_members<T>(
    m: &Meridian,
    read: impl Fn(&Value) -> T,
) -> HashMap<String, T> {
    let (status, body) = get(m, "/api/v1/status").await;
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).expect("status JSON");
    let mut out = HashMap::new();
    for pool in v["pools"].as_array().expect("pools") {
        for member in pool["members"].as_array().expect("members") {
            out.insert(
                member["address"].as_str().unwrap().to_string(),
                read(member),
            );
        }
    }
    out
}

/// The effective weights and their sources in `/api/v1/status`, by member address.
async fn weights(m: &Meridian) -> HashMap<String, (u64, String)> {
    status_members(m, |member| {
        (
            member["effective_weight"].as_u64().unwrap(),
            member["weight_source"].as_str().unwrap().to_string(),
        )
    })
    .await
}

/// Waits until the status page shows these (address, effective weight, source).
async fn until_weights(m: &Meridian, want: &[(&str, u64, &str)]) {
    eventually("effective weights", || async {
        let got = weights(m).await;
        let ok = want
            .iter()
            .all(|(a, w, s)| got.get(*a) == Some(&(*w, s.to_string())));
        if ok { Ok(()) } else { Err(format!("{got:?}")) }
    })
    .await
}

/// The share (0-100) of `n` one-answer DNS queries each address got.
pub(crate) async fn dns_shares(m: &Meridian, n: u16) -> HashMap<IpAddr, f64> {
    let packets: Vec<Vec<u8>> = (0..n)
        .map(|i| QueryBuilder::new(WWW, RecordType::A).id(i).build())
        .collect();
    let mut counts: HashMap<IpAddr, f64> = HashMap::new();
    for reply in udp_bulk(m.udp, &packets, 200).await {
        for a in answer_addrs(&reply) {
            *counts.entry(a).or_default() += 100.0 / f64::from(n);
        }
    }
    counts
}

/// A connection through the director and the name its backend greeted with.
pub(crate) async fn through(director: SocketAddr) -> (TcpStream, u8) {
    let mut s = tokio::time::timeout(PATIENCE, TcpStream::connect(director))
        .await
        .expect("connect in time")
        .expect("connect");
    let mut g = [0u8; 1];
    tokio::time::timeout(PATIENCE, s.read_exact(&mut g))
        .await
        .expect("greeting in time")
        .expect("greeting");
    (s, g[0])
}

/// `n` connections one after the other: how many each backend name got.
async fn director_counts(director: SocketAddr, n: usize) -> HashMap<u8, usize> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        *counts.entry(through(director).await.1).or_default() += 1;
    }
    counts
}

fn near(share: f64, want: f64) -> bool {
    (share - want).abs() <= 2.0
}

#[tokio::test]
async fn agent_reports_set_the_shares_of_answers_and_connections() {
    let (m, agent_a, _agent_b, _backends) = with_agents("up 25%", "75%").await;
    until_weights(
        &m,
        &[("127.0.0.2", 25, "agent"), ("127.0.0.3", 75, "agent")],
    )
    .await;
    let shares = dns_shares(&m, 20_000).await;
    let a = shares.get(&ip("127.0.0.2")).copied().unwrap_or(0.0);
    assert!(near(a, 25.0), "DNS shares {shares:?}");
    // Smooth weighted round robin is exact: 2,000 connections split 500 / 1,500.
    let counts = director_counts(m.directors[0], 2_000).await;
    assert_eq!((counts[&b'a'], counts[&b'b']), (500, 1_500), "{counts:?}");

    // A new report moves the shares; a move under weight_step (10 points) does not.
    agent_a.say("up 75%");
    until_weights(&m, &[("127.0.0.2", 75, "agent")]).await;
    let generation = m.state.load().generation;
    let served = agent_a.served();
    agent_a.say("up 70%");
    // Four more lines handed out, so at least three of the new reports were applied: neither
    // the weight nor the snapshot moves.
    until_count("four more agent reports", served + 4, || agent_a.served()).await;
    assert_eq!(
        weights(&m).await["127.0.0.2"].0,
        75,
        "a 5-point move was taken"
    );
    assert_eq!(
        m.state.load().generation,
        generation,
        "reports under weight_step published a snapshot"
    );
    let shares = dns_shares(&m, 20_000).await;
    let a = shares.get(&ip("127.0.0.2")).copied().unwrap_or(0.0);
    assert!(near(a, 50.0), "DNS shares {shares:?}");
}

#[tokio::test]
async fn drain_keeps_open_connections_down_takes_out_and_silence_falls_back() {
    let (m, _agent_a, agent_b, _backends) = with_agents("up", "up").await;
    until_weights(
        &m,
        &[
            ("127.0.0.2", 100, "configured"),
            ("127.0.0.3", 100, "configured"),
        ],
    )
    .await;
    // An open connection to b, then b reports drain.
    let mut open = loop {
        let (s, g) = through(m.directors[0]).await;
        if g == b'b' {
            break s;
        }
    };
    agent_b.say("drain");
    until_weights(&m, &[("127.0.0.3", 0, "agent")]).await;
    let counts = director_counts(m.directors[0], 50).await;
    assert_eq!(counts.get(&b'b'), None, "a draining member got connections");
    let shares = dns_shares(&m, 500).await;
    assert_eq!(shares.get(&ip("127.0.0.3")), None, "{shares:?}");
    open.write_all(b"still here").await.unwrap();
    let mut back = [0u8; 10];
    tokio::time::timeout(PATIENCE, open.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("the drained member's connection stays open");
    assert_eq!(&back, b"still here");

    // `down` fails the probe: b is down, not just drained.
    agent_b.say("down #maintenance window");
    eventually("b down", || async {
        let (_, body) = get(&m, "/api/v1/status").await;
        let v: Value = serde_json::from_str(&body).unwrap();
        let b = &v["pools"][0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["address"] == "127.0.0.3")
            .unwrap()
            .clone();
        if b["state"] == "down" && b["reason"] == "agent: down (maintenance window)" {
            Ok(())
        } else {
            Err(b.to_string())
        }
    })
    .await;

    // Back with 40 %, then a line without a percentage: the share is kept for one result,
    // then the configured weight applies again.
    agent_b.say("up 40%");
    until_weights(&m, &[("127.0.0.3", 40, "agent")]).await;
    agent_b.say("up");
    until_weights(&m, &[("127.0.0.3", 100, "configured")]).await;
}

/// Members `192.0.2.10` and `192.0.2.11`, probed at backends `a` and `b`.
fn two_members(a: &Backend, b: &Backend) -> String {
    format!(
        "{{ address = \"192.0.2.10\", check_address = \"127.0.0.1\", port = {} }}, \
         {{ address = \"192.0.2.11\", check_address = \"127.0.0.1\", port = {} }}",
        a.port(),
        b.port()
    )
}

#[tokio::test]
async fn http_weight_reports_from_a_header_or_a_json_body() {
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    a.set_headers(&["X-Weight: 20"]);
    b.set_headers(&["X-Weight: 80%"]);
    let members = two_members(&a, &b);
    let config = format!(
        "{HTTP_OPEN}\n[monitors.web]\ntype = \"http\"\nweight_from = \"header:X-Weight\"\n\
         interval = \"100ms\"\nfast_interval = \"50ms\"\ntimeout = \"500ms\"\n\n\
         [pools.web]\nmonitor = \"web\"\nmembers = [{members}]\n\n\
         [services.\"{WWW}\"]\npools = [\"web\"]\nselect = \"weighted\"\nmax_answers = 1\n"
    );
    let m = Meridian::start("", &config).await;
    until_weights(
        &m,
        &[
            ("192.0.2.10", 20, "header:X-Weight"),
            ("192.0.2.11", 80, "header:X-Weight"),
        ],
    )
    .await;
    let shares = dns_shares(&m, 20_000).await;
    let got = shares.get(&ip("192.0.2.10")).copied().unwrap_or(0.0);
    assert!(near(got, 20.0), "DNS shares {shares:?}");
    // No header any more: configured weight after the one result of grace.
    a.set_headers(&[]);
    until_weights(&m, &[("192.0.2.10", 100, "configured")]).await;
    m.stop().await;

    let config = config
        .replace("header:X-Weight", "json:/load/capacity")
        .replace(
            "interval = \"100ms\"",
            "interval = \"100ms\"\nweight_step = 5",
        );
    a.set_body(r#"{"load": {"capacity": 35}}"#);
    b.set_body(r#"{"load": {"capacity": "90%"}}"#);
    let m = Meridian::start("", &config).await;
    until_weights(
        &m,
        &[
            ("192.0.2.10", 35, "json:/load/capacity"),
            ("192.0.2.11", 90, "json:/load/capacity"),
        ],
    )
    .await;
    // weight_step = 5: a 5-point move is taken.
    a.set_body(r#"{"load": {"capacity": 40}}"#);
    until_weights(&m, &[("192.0.2.10", 40, "json:/load/capacity")]).await;
    let (_, metrics) = get(&m, "/metrics").await;
    assert!(
        metrics.contains("kind=\"effective\",source=\"json:/load/capacity\"} 40"),
        "{metrics}"
    );
    let (_, explain) = get(&m, &format!("/api/v1/explain?name={WWW}&client=192.0.2.1")).await;
    assert!(explain.contains("\"weight_source\""), "{explain}");
}

/// `slow_start_percent` of the member at `address` on the status page (`None`: not ramping).
async fn ramp_of(m: &Meridian, address: &str) -> Option<u64> {
    let (_, body) = get(m, "/api/v1/status").await;
    let v: Value = serde_json::from_str(&body).expect("status JSON");
    v["pools"][0]["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|x| x["address"] == address)
        .expect("member")["slow_start_percent"]
        .as_u64()
}

/// Three points on the way up of the slow start of the member at `address`: at each, the
/// member's `share` (0-100, of answers or connections) follows the ramp's percentage p
/// (weight p against its peer's 100: p / (100 + p)), measured between two looks at p, and
/// rises; then waits for the ramp to end.
async fn follows_the_ramp<F, Fut>(m: &Meridian, address: &str, mut share: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = f64>,
{
    let expected = |p: u64| 100.0 * p as f64 / (100.0 + p as f64);
    let mut last = 0.0;
    for at_least in [15, 40, 70] {
        let p1 = eventually(&format!("ramp at {at_least}%"), || async {
            match ramp_of(m, address).await {
                Some(p) if p >= at_least => Ok(p),
                seen => Err(format!("{seen:?}")),
            }
        })
        .await;
        let got = share().await;
        let p2 = ramp_of(m, address).await.unwrap_or(100);
        assert!(
            got >= expected(p1) - 3.0 && got <= expected(p2) + 3.0,
            "ramp {p1}%..{p2}%: share {got:.1} (expected {:.1}..{:.1})",
            expected(p1),
            expected(p2)
        );
        assert!(got > last, "the share did not rise: {got} after {last}");
        last = got;
    }
    eventually("ramp over", || async {
        match ramp_of(m, address).await {
            None => Ok(()),
            seen => Err(format!("{seen:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn slow_start_ramps_a_recovered_members_share_of_answers() {
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let members = two_members(&a, &b);
    let config = format!(
        "{HTTP_OPEN}\n[monitors.web]\ntype = \"http\"\ninterval = \"100ms\"\nfast_interval = \"50ms\"\n\
         timeout = \"500ms\"\nrise = 1\nfall = 1\n\n\
         [pools.web]\nmonitor = \"web\"\nslow_start = \"8s\"\nmembers = [{members}]\n\n\
         [services.\"{WWW}\"]\npools = [\"web\"]\nselect = \"weighted\"\nmax_answers = 1\n"
    );
    let m = Meridian::start("", &config).await;
    // At start-up nothing ramps.
    assert_eq!(ramp_of(&m, "192.0.2.11").await, None);
    b.set_status(503);
    eventually("b down", || async {
        let (_, body) = get(&m, "/api/v1/status").await;
        if body.contains("\"address\":\"192.0.2.11\",\"port\"")
            && serde_json::from_str::<Value>(&body).unwrap()["pools"][0]["members"][1]["state"]
                == "down"
        {
            Ok(())
        } else {
            Err(body)
        }
    })
    .await;
    b.set_status(200);
    follows_the_ramp(&m, "192.0.2.11", || async {
        let shares = dns_shares(&m, 4_000).await;
        shares.get(&ip("192.0.2.11")).copied().unwrap_or(0.0)
    })
    .await;
    let shares = dns_shares(&m, 20_000).await;
    let got = shares.get(&ip("192.0.2.11")).copied().unwrap_or(0.0);
    assert!(near(got, 50.0), "after the ramp: {shares:?}");
}

#[tokio::test]
async fn slow_start_ramps_a_recovered_members_share_of_director_connections() {
    let (ga, _ta) = greeter("127.0.0.2", b'a').await;
    let (gb, _tb) = greeter("127.0.0.3", b'b').await;
    let (_agent_a, agent_b, port) = agent_pair("up", "up").await;
    let monitor = format!("type = \"agent\"\nport = {port}");
    let config = config(&monitor, &[(ga, 100), (gb, 100)]).replace(
        "monitor = \"load\"\nmembers",
        "monitor = \"load\"\nslow_start = \"8s\"\nmembers",
    );
    assert!(config.contains("slow_start"), "{config}");
    let m = Meridian::start("", &config).await;
    until_weights(
        &m,
        &[
            ("127.0.0.2", 100, "configured"),
            ("127.0.0.3", 100, "configured"),
        ],
    )
    .await;
    agent_b.say("down");
    eventually("b out", || async {
        let counts = director_counts(m.directors[0], 4).await;
        if counts.contains_key(&b'b') {
            Err(format!("{counts:?}"))
        } else {
            Ok(())
        }
    })
    .await;
    agent_b.say("up");
    follows_the_ramp(&m, "127.0.0.3", || async {
        let counts = director_counts(m.directors[0], 300).await;
        100.0 * *counts.get(&b'b').unwrap_or(&0) as f64 / 300.0
    })
    .await;
    // Full weight: an even split (smooth round robin may carry a step of the ramp's state).
    let counts = director_counts(m.directors[0], 200).await;
    assert!(
        counts[&b'b'].abs_diff(100) <= 2,
        "after the ramp: {counts:?}"
    );
}

#[tokio::test]
async fn exec_exit_codes_set_the_shares_of_answers() {
    let dir = tempfile::tempdir().unwrap();
    let codes = dir.path().to_path_buf();
    let check = crate::checks::script(
        dir.path(),
        "weight.sh",
        &format!("exit \"$(cat '{}/'\"$1\")\"", codes.display()),
    );
    let set = |ip: &str, code: u8| std::fs::write(codes.join(ip), code.to_string()).unwrap();
    // keepalived's misc_dynamic as a share: status - 2.
    set("127.0.0.2", 27);
    set("127.0.0.3", 77);
    let (ga, _ta) = greeter("127.0.0.2", b'a').await;
    let (gb, _tb) = greeter("127.0.0.3", b'b').await;
    let monitor = format!(
        "type = \"exec\"\ncommand = \"{check}\"\nargs = [\"{{address}}\"]\nweight_from = \"exit\""
    );
    let m = Meridian::start("", &config(&monitor, &[(ga, 100), (gb, 100)])).await;
    until_weights(&m, &[("127.0.0.2", 25, "exit"), ("127.0.0.3", 75, "exit")]).await;
    let shares = dns_shares(&m, 20_000).await;
    let a = shares.get(&ip("127.0.0.2")).copied().unwrap_or(0.0);
    assert!(near(a, 25.0), "DNS shares {shares:?}");

    // Exit 0 is up at the full weight; above 102 counts as 100 %.
    set("127.0.0.2", 0);
    set("127.0.0.3", 200);
    until_weights(
        &m,
        &[("127.0.0.2", 100, "exit"), ("127.0.0.3", 100, "exit")],
    )
    .await;
    let shares = dns_shares(&m, 20_000).await;
    let a = shares.get(&ip("127.0.0.2")).copied().unwrap_or(0.0);
    assert!(near(a, 50.0), "DNS shares {shares:?}");

    // Exit 2 is a share of 0 (drain), exit 1 is down: neither is answered.
    set("127.0.0.2", 2);
    until_weights(&m, &[("127.0.0.2", 0, "exit")]).await;
    let shares = dns_shares(&m, 500).await;
    assert_eq!(shares.get(&ip("127.0.0.2")), None, "{shares:?}");
    set("127.0.0.2", 1);
    eventually("a down by exit 1", || async {
        let (_, body) = get(&m, "/api/v1/status").await;
        let v: Value = serde_json::from_str(&body).unwrap();
        let a = &v["pools"][0]["members"][0];
        if a["state"] == "down" && a["reason"] == "exit 1" {
            Ok(())
        } else {
            Err(a.to_string())
        }
    })
    .await;
}
