//! What an operator sees over HTTP: `/api/v1/status`, `/api/v1/events` and its live stream
//! following real health changes of real backends, `/metrics` matching the DNS traffic sent
//! (parsed with a Prometheus text-format parser), admin actions and reloads through the API,
//! and the HTTP connection cap. Waits are bounded polls of what a user can observe.

use std::path::Path;

use hickory_proto::op::{Edns, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
use meridian::prober::probe::plain_http_client;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::backend::Backend;
use crate::support::{
    A, B, FALL, HTTP_OPEN, HTTP_WITH_TOKEN, Meridian, PATIENCE, QueryBuilder, TOKEN, WWW, admin,
    answer, config_text, eventually, get, ips, member, monitor, parse, pool, post, scrape, service,
    until_answer, write_token, www,
};

/// How the API names a member of [`member`] probed at `backend`: its address and port.
fn id(address: &str, backend: &Backend) -> String {
    format!("{address}:{}", backend.port())
}

/// GETs `path` and parses the JSON body.
async fn json(m: &Meridian, path: &str) -> Value {
    let (status, body) = get(m, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"))
}

/// The member `id` of pool `pool` in a status document.
fn member_of<'a>(status: &'a Value, pool: &str, id: &str) -> &'a Value {
    status["pools"]
        .as_array()
        .and_then(|pools| pools.iter().find(|p| p["name"] == pool))
        .and_then(|p| p["members"].as_array())
        .and_then(|ms| ms.iter().find(|m| m["id"] == id))
        .unwrap_or_else(|| panic!("no member {id} of pool {pool} in {status}"))
}

/// The service `name` in a status document.
fn service_of<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {status}"))
}

/// Polls `/api/v1/status` until member `id` of pool `pool` is shown in `state`.
async fn until_state(m: &Meridian, pool: &str, id: &str, state: &str) -> Value {
    eventually(&format!("{pool}/{id} shown {state}"), || async {
        let status = json(m, "/api/v1/status").await;
        if member_of(&status, pool, id)["state"] == state {
            Ok(status)
        } else {
            Err(member_of(&status, pool, id).to_string())
        }
    })
    .await
}

/// The transitions in `/api/v1/events` of member `id`.
async fn events_of(m: &Meridian, id: &str) -> Vec<Value> {
    let list = json(m, "/api/v1/events").await;
    list["events"]
        .as_array()
        .expect("events list")
        .iter()
        .filter(|e| e["member"] == id)
        .cloned()
        .collect()
}

/// Reads a Server-Sent Events response until a `transition` event satisfies `want`, for at
/// most [`PATIENCE`].
async fn next_sse_transition(
    response: &mut reqwest::Response,
    buffer: &mut String,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let is_transition = block.lines().any(|l| l == "event: transition");
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            if is_transition {
                let event: Value = serde_json::from_str(&data).expect("SSE data is JSON");
                if want(&event) {
                    return event;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("the awaited transition did not arrive on the stream in time")
            .expect("stream readable")
            .expect("stream still open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
    }
}

#[tokio::test]
async fn status_events_and_stream_follow_a_stopped_backend() {
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let m = Meridian::start(
        "",
        &format!("{HTTP_OPEN}{}", www(&[member(A, &a), member(B, &b)])),
    )
    .await;

    // DNS answers once the first probe round is done, and readiness follows.
    until_answer(&m, WWW, &[A, B]).await;
    eventually("ready", || async {
        match get(&m, "/readyz").await {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let id_a = id(A, &a);
    let status = json(&m, "/api/v1/status").await;
    assert_eq!(status["ready"], true, "{status}");
    let www_status = service_of(&status, WWW);
    assert_eq!(www_status["steering"], "failover");
    assert_eq!(www_status["selection"], "all");
    assert_eq!(www_status["A"]["outcome"], "members");
    assert_eq!(www_status["A"]["pool"], "web");
    assert_eq!(www_status["A"]["addresses"], serde_json::json!([A, B]));
    let first = member_of(&status, "web", &id_a);
    assert_eq!(first["state"], "up", "{first}");
    assert_eq!(first["last_probe"]["result"], "ok", "{first}");
    assert!(
        first["last_probe"]["latency_ms"].as_f64().is_some(),
        "{first}"
    );
    assert_eq!(first["usable"], true);
    // The first probe result took it from unknown to up.
    let events = events_of(&m, &id_a).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&events[0]["from"], &events[0]["to"], &events[0]["cause"]),
        (
            &Value::from("unknown"),
            &Value::from("up"),
            &Value::from("probe")
        )
    );

    // A live stream opened now replays nothing older than ?after= and delivers the flip.
    let last_seq = json(&m, "/api/v1/events").await["events"]
        .as_array()
        .and_then(|e| e.last())
        .map_or(0, |e| e["seq"].as_u64().expect("seq"));
    let url = format!(
        "http://{}/api/v1/events/stream?after={last_seq}",
        m.http.expect("[http]")
    );
    let mut stream = plain_http_client()
        .expect("client")
        .get(&url)
        .send()
        .await
        .expect("stream opens");
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    a.stop().await;
    let status = until_state(&m, "web", &id_a, "down").await;
    let down = member_of(&status, "web", &id_a);
    assert_eq!(down["reason"], "connect refused", "{down}");
    assert_eq!(down["last_probe"]["result"], "fail", "{down}");
    assert_eq!(down["usable"], false, "{down}");
    assert!(down["in_state_s"].as_f64().unwrap() < PATIENCE.as_secs_f64());
    assert_eq!(
        service_of(&status, WWW)["A"]["addresses"],
        serde_json::json!([B])
    );
    assert_eq!(answer(&m, WWW).await, ips(&[B]));

    let flip = events_of(&m, &id_a)
        .await
        .into_iter()
        .find(|e| e["to"] == "down")
        .expect("the flip down is in /api/v1/events");
    assert_eq!(flip["from"], "up", "{flip}");
    assert_eq!(flip["reason"], "connect refused", "{flip}");
    assert_eq!(flip["cause"], "probe", "{flip}");
    assert_eq!(flip["streak"], FALL, "{flip}");
    assert_eq!(flip["pool"], "web", "{flip}");

    let mut buffer = String::new();
    let streamed = next_sse_transition(&mut stream, &mut buffer, |e| e["member"] == id_a).await;
    assert_eq!(streamed, flip, "the stream carries the same transition");
}

#[tokio::test]
async fn metrics_count_the_traffic_sent() {
    let dead = Backend::tcp().start().await;
    dead.stop().await;
    let config = [
        HTTP_OPEN.to_string(),
        monitor("tcp", "tcp", ""),
        pool("dead", "tcp", &[member(A, &dead)]),
    ]
    .concat();
    let m = Meridian::start("", &config).await;
    let id_dead = id(A, &dead);

    const UDP_A: u64 = 5;
    const TCP_A: u64 = 3;
    const NXDOMAIN: u64 = 2;
    for _ in 0..UDP_A {
        let r = m.query("static.example.test.", RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    }
    for _ in 0..TCP_A {
        let r = m.query_tcp("static.example.test.", RecordType::A).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    }
    for _ in 0..NXDOMAIN {
        let r = m.query("nothing.example.test.", RecordType::AAAA).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    }
    // Without EDNS, 40 A records do not fit in 512 bytes: truncated.
    let r = parse(
        &m.udp_raw(&QueryBuilder::new("big.example.test.", RecordType::A).build())
            .await,
    );
    assert!(r.metadata.truncation);
    // One MX query carrying an EDNS Client Subnet option.
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.options_mut()
        .insert(EdnsOption::Subnet(ClientSubnet::new(
            "198.51.100.0".parse().unwrap(),
            24,
            0,
        )));
    let mut msg = hickory_proto::op::Message::new(
        7,
        hickory_proto::op::MessageType::Query,
        hickory_proto::op::OpCode::Query,
    );
    msg.add_query(hickory_proto::op::Query::query(
        "example.test.".parse().unwrap(),
        RecordType::MX,
    ));
    msg.set_edns(edns);
    let r = parse(&m.udp_raw(&msg.to_vec().unwrap()).await);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    // A response (QR=1) gets no reply; the next query proves it was read and counted.
    let mut response = QueryBuilder::new("static.example.test.", RecordType::A).build();
    response[2] |= 0x80;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&response, m.udp).await.unwrap();
    let probe = QueryBuilder::new("static.example.test.", RecordType::TXT).build();
    sock.send_to(&probe, m.udp).await.unwrap();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(PATIENCE, sock.recv_from(&mut buf))
        .await
        .expect("reply to the TXT query")
        .unwrap();

    let metrics = scrape(&m).await;
    let (scrape, text) = (&metrics.scrape, &metrics.text);
    let value = |name: &str, labels: &[(&str, &str)]| metrics.value(name, labels);
    let queries = "meridian_dns_queries_total";
    let q = |protocol, qtype, rcode| {
        value(
            queries,
            &[("protocol", protocol), ("qtype", qtype), ("rcode", rcode)],
        )
    };
    assert_eq!(
        q("udp", "A", "NOERROR"),
        (UDP_A + 1) as f64,
        "5 + the truncated one"
    );
    assert_eq!(q("tcp", "A", "NOERROR"), TCP_A as f64);
    assert_eq!(q("udp", "AAAA", "NXDOMAIN"), NXDOMAIN as f64);
    assert_eq!(q("udp", "MX", "NOERROR"), 1.0);
    assert_eq!(q("udp", "TXT", "NOERROR"), 1.0);
    let all: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == queries)
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(
        all,
        (UDP_A + 1 + TCP_A + NXDOMAIN + 2) as f64,
        "nothing else"
    );
    let per_protocol = |name: &str, protocol| value(name, &[("protocol", protocol)]);
    assert_eq!(per_protocol("meridian_dns_truncated_total", "udp"), 1.0);
    assert_eq!(per_protocol("meridian_dns_truncated_total", "tcp"), 0.0);
    assert_eq!(per_protocol("meridian_dns_ecs_queries_total", "udp"), 1.0);
    assert_eq!(per_protocol("meridian_dns_dropped_total", "udp"), 1.0);

    let histogram = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "meridian_dns_response_duration_seconds"
                && s.labels.get("protocol") == Some("tcp")
        })
        .expect("response time histogram");
    let prometheus_parse::Value::Histogram(buckets) = &histogram.value else {
        panic!("{histogram:?}")
    };
    let inf = buckets.iter().find(|b| b.less_than.is_infinite()).unwrap();
    assert_eq!(inf.count, TCP_A as f64, "every TCP reply timed once");

    // Health and snapshot families.
    assert_eq!(
        value(
            "meridian_member_state",
            &[("pool", "dead"), ("member", &id_dead), ("state", "down")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "meridian_member_state",
            &[("pool", "dead"), ("member", &id_dead), ("state", "up")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "meridian_member_usable",
            &[("pool", "dead"), ("member", &id_dead)]
        ),
        0.0
    );
    assert!(
        value(
            "meridian_probe_failures_total",
            &[("reason", "connect_refused")]
        ) >= 1.0
    );
    assert_eq!(
        value("meridian_probe_failures_total", &[("reason", "tls")]),
        0.0
    );
    assert_eq!(
        value("meridian_health_transitions_total", &[("to", "down")]),
        1.0
    );
    assert_eq!(
        value("meridian_snapshot_generation", &[]),
        m.state.load().generation as f64
    );
    assert_eq!(
        value("meridian_config_reloads_total", &[("result", "ok")]),
        0.0
    );
    assert!(
        text.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
}

/// `www` over A and B (both healthy), with the admin API and its token in `dir`.
async fn with_admin(dir: &Path) -> (Backend, Backend, Meridian) {
    write_token(dir);
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let config = format!("{HTTP_WITH_TOKEN}{}", www(&[member(A, &a), member(B, &b)]));
    let m = Meridian::start_at(dir, "", &config).await;
    until_answer(&m, WWW, &[A, B]).await;
    (a, b, m)
}

#[tokio::test]
async fn an_up_member_shows_its_last_failure_as_past() {
    let a = Backend::http().start().await;
    let config = format!("{HTTP_OPEN}{}", www(&[member(A, &a)]));
    let m = Meridian::start("", &config).await;
    let id_a = id(A, &a);
    let status = until_state(&m, "web", &id_a, "up").await;
    let fresh = member_of(&status, "web", &id_a);
    assert_eq!(fresh["reason"], Value::Null, "{fresh}");
    assert_eq!(fresh["last_failure"], Value::Null, "{fresh}");

    a.set_status(503);
    let status = until_state(&m, "web", &id_a, "down").await;
    let down = member_of(&status, "web", &id_a);
    assert_eq!(down["reason"], "http 503", "{down}");
    assert_eq!(down["last_failure"]["reason"], "http 503", "{down}");

    a.set_status(200);
    let status = until_state(&m, "web", &id_a, "up").await;
    let up = member_of(&status, "web", &id_a);
    assert_eq!(
        up["reason"],
        Value::Null,
        "an up member has no current reason: {up}"
    );
    assert_eq!(up["last_failure"]["reason"], "http 503", "{up}");
    let ago = up["last_failure"]["ago_s"].as_f64().expect("an age");
    assert!((0.0..PATIENCE.as_secs_f64()).contains(&ago), "{up}");
    assert!(up["last_failure"]["at"].is_string(), "{up}");
}

#[tokio::test]
async fn admin_actions_change_answers_status_and_events() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b, m) = with_admin(dir.path()).await;
    let (id_a, id_b) = (id(A, &a), id(B, &b));

    // Each action, what the next answer holds, and what the status shows for A.
    let steps = [
        ("drain", vec![B], "drained", false),
        ("undrain", vec![A, B], "up", true),
        ("force-down", vec![B], "forced-down", false),
        ("clear", vec![A, B], "up", true),
    ];
    for (action, want, shown, usable) in steps {
        let (status, body) = admin(&m, action, "web", A).await;
        assert_eq!(status, 200, "{action}: {body}");
        assert_eq!(answer(&m, WWW).await, ips(&want), "after {action}");
        let status = json(&m, "/api/v1/status").await;
        let shown_a = member_of(&status, "web", &id_a);
        assert_eq!(shown_a["state"], shown, "after {action}: {shown_a}");
        assert_eq!(shown_a["usable"], usable, "after {action}: {shown_a}");
        assert_eq!(shown_a["probe_state"], "up", "probes still pass: {shown_a}");
        let last = events_of(&m, &id_a)
            .await
            .pop()
            .expect("an event per action");
        assert_eq!(last["cause"], "admin", "{last}");
        assert_eq!(last["to"], shown, "{last}");
        assert_eq!(last["reason"], format!("admin {action}"), "{last}");
    }

    // force-up hands out a member whose probes fail.
    b.set_status(503);
    until_answer(&m, WWW, &[A]).await;
    let (status, body) = admin(&m, "force-up", "web", B).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));
    let status = json(&m, "/api/v1/status").await;
    let forced = member_of(&status, "web", &id_b);
    assert_eq!(
        (&forced["state"], &forced["probe_state"], &forced["reason"]),
        (
            &Value::from("forced-up"),
            &Value::from("down"),
            &Value::from("http 503")
        ),
        "{forced}"
    );
}

#[tokio::test]
async fn reload_over_the_api_and_the_admin_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_token(dir.path());
    let unmonitored = |members: &[&str]| {
        let list: Vec<String> = members
            .iter()
            .map(|a| format!("{{ address = \"{a}\" }}"))
            .collect();
        format!(
            "{HTTP_WITH_TOKEN}[pools.web]\nmembers = [{}]\n{}",
            list.join(", "),
            service(WWW, &["web"], "")
        )
    };
    let m = Meridian::start_at(dir.path(), "", &unmonitored(&[A])).await;
    assert_eq!(answer(&m, WWW).await, ips(&[A]));
    let path = dir.path().join("meridian.toml");
    let bearer = format!("Bearer {TOKEN}");

    // Refused without the token; nothing reloaded.
    std::fs::write(&path, config_text("", &unmonitored(&[A, B]))).unwrap();
    for presented in [None, Some("Bearer wrong")] {
        let (status, body) = post(&m, "/api/v1/reload", presented).await;
        assert_eq!(status, 401, "{body}");
    }
    assert_eq!(answer(&m, WWW).await, ips(&[A]));

    // A good config: 200 with the summary, answers change at once.
    let before = m.state.load().generation;
    let (status, body) = post(&m, "/api/v1/reload", Some(&bearer)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["generation"].as_u64().unwrap() > before, "{body}");
    assert!(
        body["summary"].as_str().unwrap().contains("2 members"),
        "{body}"
    );
    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));
    let added = events_of(&m, B).await;
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(
        (&added[0]["from"], &added[0]["to"], &added[0]["cause"]),
        (
            &Value::from("absent"),
            &Value::from("up"),
            &Value::from("reload")
        )
    );

    // A bad config: 422 naming file and line; the running config stays.
    let broken = unmonitored(&[A]).replace("pools = [\"web\"]", "pools = [\"nowhere\"]");
    std::fs::write(&path, config_text("", &broken)).unwrap();
    let (status, body) = post(&m, "/api/v1/reload", Some(&bearer)).await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("meridian.toml:") && error.contains("nowhere"),
        "{error}"
    );
    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));

    // The command line goes through the same call.
    std::fs::write(&path, config_text("", &unmonitored(&[B]))).unwrap();
    let cli_config = dir.path().join("cli.toml");
    let http = m.http.expect("[http]");
    std::fs::write(
        &cli_config,
        config_text(
            "",
            &format!("[http]\nlisten = \"{http}\"\nadmin_token_file = \"admin.token\"\n"),
        ),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["admin", "--config"])
        .arg(&cli_config)
        .arg("reload")
        .output()
        .await
        .expect("run meridian admin reload");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("reloaded (generation "), "{stdout}");
    assert_eq!(answer(&m, WWW).await, ips(&[B]));

    let metrics = get(&m, "/metrics").await.1;
    assert!(
        metrics.contains("meridian_config_reloads_total{result=\"ok\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("meridian_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn reload_is_forbidden_without_a_configured_token() {
    let m = Meridian::start("", HTTP_OPEN).await;
    let (status, body) = post(&m, "/api/v1/reload", Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn http_connections_are_capped() {
    let m = Meridian::start(
        "",
        "[http]\nlisten = \"127.0.0.1:0\"\nmax_connections = 2\n",
    )
    .await;
    let http = m.http.expect("[http]");
    let idle_1 = TcpStream::connect(http).await.unwrap();
    let idle_2 = TcpStream::connect(http).await.unwrap();
    // Both slots are taken: the next connection is closed without an answer.
    let mut third = TcpStream::connect(http).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(PATIENCE, third.read(&mut byte))
        .await
        .expect("closed in time");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "over the cap: closed, got {read:?}"
    );
    // Closing one gives its slot back.
    drop(idle_1);
    eventually("a request is served once a slot is free", || async {
        let client = plain_http_client().expect("client");
        match client.get(format!("http://{http}/healthz")).send().await {
            Ok(r) if r.status() == 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    drop(idle_2);
}

#[tokio::test]
async fn status_page_is_served_self_contained() {
    let m = Meridian::start("", HTTP_OPEN).await;
    let client = plain_http_client().expect("client");
    let response = client
        .get(format!("http://{}/", m.http.unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("/api/v1/status"));
    for external in ["src=\"http", "href=\"http", "@import", "<link"] {
        assert!(!page.contains(external), "external asset: {external}");
    }
}
