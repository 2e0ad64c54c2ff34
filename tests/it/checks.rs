//! The check types beyond connect and HTTP, against real servers started by the test: a TCP
//! dialogue with real `redis-server`s (a primary and its replica, and a director in front of
//! them), DNS checks of a second Meridian, and command checks running shell scripts the test
//! writes. Reasons are read where operators read them: the status API and `/metrics`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::process::{Child, Command};

use crate::support::{
    FAST, HTTP_OPEN, Meridian, PATIENCE, eventually, get, pool, scrape, service, until_answer,
};

/// A `redis-server` on a free loopback port, killed when dropped.
struct Redis {
    port: u16,
    _child: Child,
}

impl Redis {
    async fn start(replica_of: Option<u16>) -> Redis {
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(primary) = replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = cmd
            .spawn()
            .expect("redis-server runs (Debian: apt-get install -y redis-server)");
        let redis = Redis {
            port,
            _child: child,
        };
        eventually(&format!("redis-server on {port} answers PING"), || async {
            redis_command(port, "PING\r\n").await
        })
        .await;
        redis
    }
}

/// Sends `command` to the Redis on `port` and returns the first chunk of its answer.
async fn redis_command(port: u16, command: &str) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(command.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    crate::support::child_port()
}

/// The member `id` of pool `pool` in `/api/v1/status`.
async fn member_status(m: &Meridian, pool: &str, id: &str) -> Value {
    let (status, body) = get(m, "/api/v1/status").await;
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).expect("status JSON");
    doc["pools"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == pool))
        .and_then(|p| p["members"].as_array())
        .and_then(|ms| ms.iter().find(|x| x["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no member {id} of pool {pool}: {doc}"))
}

/// Polls the status until member `id` of `pool` is `state` with reason `reason`.
pub(crate) async fn until_reason(
    m: &Meridian,
    pool: &str,
    id: &str,
    state: &str,
    reason: Option<&str>,
) {
    eventually(&format!("{pool}/{id} {state} ({reason:?})"), || async {
        let x = member_status(m, pool, id).await;
        if x["state"] == state && x["reason"].as_str() == reason {
            Ok(())
        } else {
            Err(x.to_string())
        }
    })
    .await;
}

fn monitor(name: &str, body: &str) -> String {
    format!("[monitors.{name}]\n{FAST}\n{body}\n")
}

#[tokio::test]
async fn redis_checks_tell_the_primary_from_its_replica_and_see_it_die() {
    let primary = Redis::start(None).await;
    let replica = Redis::start(Some(primary.port)).await;
    let (p, r) = (primary.port, replica.port);
    let config = [
        HTTP_OPEN.to_string(),
        monitor(
            "redis-ping",
            "type = \"tcp\"\nsend = \"PING\\r\\n\"\nexpect = \"+PONG\"",
        ),
        monitor(
            "redis-primary",
            "type = \"tcp\"\nsteps = [\n  { send = 'PING\\r\\n', expect = \"+PONG\" },\n  { send = \"INFO replication\\r\\n\", expect_regex = \"role:master\" },\n]",
        ),
        pool(
            "alive",
            "redis-ping",
            &[
                format!("{{ address = \"192.0.2.1\", check_address = \"127.0.0.1\", port = {p} }}"),
                format!("{{ address = \"192.0.2.2\", check_address = \"127.0.0.1\", port = {r} }}"),
            ],
        ),
        pool(
            "writer",
            "redis-primary",
            &[
                format!("{{ address = \"127.0.0.1\", port = {p} }}"),
                format!("{{ address = \"127.0.0.2\", check_address = \"127.0.0.1\", port = {r} }}"),
            ],
        ),
        service("alive.example.test.", &["alive"], ""),
        service("redis.example.test.", &["writer"], ""),
        "[[directors]]\nlisten = \"127.0.0.1:0\"\nservice = \"redis.example.test.\"\n".to_string(),
    ]
    .concat();
    let m = Meridian::start("", &config).await;

    // Both answer PING; only the primary says role:master.
    until_answer(&m, "alive.example.test.", &["192.0.2.1", "192.0.2.2"]).await;
    until_answer(&m, "redis.example.test.", &["127.0.0.1"]).await;
    let replica_id = format!("127.0.0.2:{r}");
    until_state(&m, "writer", &replica_id, "down").await;
    let reason = member_status(&m, "writer", &replica_id).await["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.starts_with("step 2: expected /role:master/, got \"$")
            && reason.contains("role:slave"),
        "{reason}"
    );

    // The director in front of them reaches the primary only.
    let mut conn = TcpStream::connect(m.directors[0]).await.expect("director");
    conn.write_all(b"INFO replication\r\n").await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(11).any(|w| w == b"connected_s") {
        let n = tokio::time::timeout(PATIENCE, conn.read(&mut buf))
            .await
            .expect("an answer through the director")
            .unwrap();
        assert!(n > 0, "director closed: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(
        String::from_utf8_lossy(&seen).contains("role:master"),
        "{}",
        String::from_utf8_lossy(&seen)
    );

    // The primary dies: its PING check says why, and answers move to the replica.
    drop(primary);
    until_reason(
        &m,
        "alive",
        &format!("192.0.2.1:{p}"),
        "down",
        Some("connect refused"),
    )
    .await;
    until_answer(&m, "alive.example.test.", &["192.0.2.2"]).await;
    let metrics = scrape(&m).await;
    assert!(metrics.value("meridian_probe_failures_total", &[("reason", "expect")]) >= 1.0);
    assert!(
        metrics.value(
            "meridian_probe_failures_total",
            &[("reason", "connect_refused")]
        ) >= 1.0
    );
}

/// Polls the status until member `id` of `pool` is shown in `state`.
async fn until_state(m: &Meridian, pool: &str, id: &str, state: &str) {
    eventually(&format!("{pool}/{id} {state}"), || async {
        let x = member_status(m, pool, id).await;
        if x["state"] == state {
            Ok(())
        } else {
            Err(x.to_string())
        }
    })
    .await;
}

/// A pool of one member, probed at `127.0.0.1:port` by `monitor`, handed out as `address`.
fn probed_pool(name: &str, monitor: &str, address: &str, port: u16) -> String {
    pool(
        name,
        monitor,
        &[format!(
            "{{ address = \"{address}\", check_address = \"127.0.0.1\", port = {port} }}"
        )],
    )
}

#[tokio::test]
async fn dns_checks_judge_rcode_and_address_and_retry_truncated_answers_over_tcp() {
    // The DNS server checked: a second Meridian, with a name too big for UDP.
    let members: Vec<String> = (1..=100)
        .map(|i| format!("{{ address = \"10.0.0.{i}\" }}"))
        .collect();
    let target = Meridian::start(
        "",
        &[
            format!("[pools.big]\nmembers = [{}]\n", members.join(", ")),
            service("many.example.test.", &["big"], ""),
        ]
        .concat(),
    )
    .await;
    assert_eq!(target.udp.port(), target.tcp.port());
    let port = target.udp.port();
    // A DNS server that never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();

    let dns = |name: &str, keys: &str| monitor(name, &format!("type = \"dns\"\n{keys}"));
    let config = [
        HTTP_OPEN.to_string(),
        // Without the final dot, as typed for dig.
        dns("static", "query_name = \"static.example.test\"\nexpect_address = \"192.0.2.80\""),
        dns("wrong", "query_name = \"static.example.test.\"\nexpect_address = \"192.0.2.1\""),
        dns("outside", "query_name = \"www.elsewhere.invalid.\""),
        dns("nx", "query_name = \"nothing.example.test.\"\nexpect_rcode = \"NXDOMAIN\""),
        dns("big", "query_name = \"many.example.test.\"\nexpect_address = \"10.0.0.100\""),
        dns("aaaa", "query_name = \"static.example.test.\"\nquery_type = \"AAAA\"\nexpect_address = \"2001:db8::80\""),
        probed_pool("static", "static", "192.0.2.1", port),
        probed_pool("wrong", "wrong", "192.0.2.2", port),
        probed_pool("outside", "outside", "192.0.2.3", port),
        probed_pool("nx", "nx", "192.0.2.4", port),
        probed_pool("big", "big", "192.0.2.5", port),
        probed_pool("aaaa", "aaaa", "192.0.2.6", port),
        probed_pool("silent", "static", "192.0.2.7", silent_port),
    ]
    .concat();
    let m = Meridian::start("", &config).await;
    let id = |address: &str, port: u16| format!("{address}:{port}");
    let cases = [
        ("static", id("192.0.2.1", port), "up", None),
        (
            "wrong",
            id("192.0.2.2", port),
            "down",
            Some("dns: no address 192.0.2.1 in answer"),
        ),
        (
            "outside",
            id("192.0.2.3", port),
            "down",
            Some("dns: rcode REFUSED"),
        ),
        ("nx", id("192.0.2.4", port), "up", None),
        // The UDP answer is truncated to the question: only TCP holds 10.0.0.100.
        ("big", id("192.0.2.5", port), "up", None),
        ("aaaa", id("192.0.2.6", port), "up", None),
        (
            "silent",
            id("192.0.2.7", silent_port),
            "down",
            Some("dns: timeout"),
        ),
    ];
    for (pool, member, state, reason) in cases {
        until_reason(&m, pool, &member, state, reason).await;
    }
    let metrics = scrape(&m).await;
    assert!(metrics.value("meridian_probe_failures_total", &[("reason", "dns")]) >= 3.0);
}

/// Writes an executable shell script `name` into `dir` and returns its path.
pub(crate) fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

/// Is process `pid` gone (or a zombie nobody reaped yet)?
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[tokio::test]
async fn exec_checks_run_commands_with_the_member_and_kill_them_on_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = script(
        d,
        "ok.sh",
        "[ \"$1\" = \"$MERIDIAN_ADDRESS\" ] && [ \"$2\" = \"$MERIDIAN_PORT\" ] || { echo \"args $1 $2\" >&2; exit 3; }",
    );
    let fail = script(
        d,
        "fail.sh",
        "echo \"no replica at $1:$2\" >&2\necho more >&2\nexit 1",
    );
    let quiet = script(d, "quiet.sh", "exit 4");
    let hang = script(
        d,
        "hang.sh",
        &format!(
            "sleep 30 &\necho $! > {0}/child.pid.tmp && mv {0}/child.pid.tmp {0}/child.pid\nwait",
            d.display()
        ),
    );
    let running = d.join("running");
    std::fs::create_dir(&running).unwrap();
    let busy = script(
        d,
        "busy.sh",
        &format!(
            ": > {r}/$$\nn=$(ls {r} | wc -l)\nsleep 0.1\nrm {r}/$$\necho $n >> {d}/counts",
            r = running.display(),
            d = d.display()
        ),
    );
    let exec = |name: &str, command: &str, extra: &str| {
        monitor(
            name,
            &format!(
                "type = \"exec\"\ncommand = \"{command}\"\nargs = [\"{{address}}\", \"{{port}}\"]\n{extra}"
            ),
        )
    };
    let busy_members: Vec<String> = (1..=3)
        .map(|i| {
            format!(
                "{{ address = \"192.0.2.{}\", check_address = \"127.0.0.1\", port = {} }}",
                20 + i,
                2000 + i
            )
        })
        .collect();
    let config = [
        HTTP_OPEN.to_string(),
        exec("ok", &ok, ""),
        exec("fail", &fail, ""),
        exec("quiet", &quiet, ""),
        exec("hang", &hang, ""),
        // Its own timings: a generous timeout, so no run is killed before it cleans up.
        format!(
            "[monitors.busy]\ntype = \"exec\"\ncommand = \"{busy}\"\ninterval = \"100ms\"\ntimeout = \"5s\"\nmax_concurrent = 2\n"
        ),
        monitor(
            "shell",
            "type = \"exec\"\ncommand = \"sh\"\nargs = [\"-c\", \"test \\\"$MERIDIAN_PORT\\\" = 1005\"]",
        ),
        probed_pool("ok", "ok", "192.0.2.1", 1001),
        probed_pool("fail", "fail", "192.0.2.2", 1002),
        probed_pool("quiet", "quiet", "192.0.2.3", 1003),
        probed_pool("hang", "hang", "192.0.2.4", 1004),
        probed_pool("shell", "shell", "192.0.2.5", 1005),
        pool("busy", "busy", &busy_members),
    ]
    .concat();
    let m = Meridian::start("", &config).await;
    let cases = [
        ("ok", "192.0.2.1:1001", "up", None),
        (
            "fail",
            "192.0.2.2:1002",
            "down",
            Some("no replica at 127.0.0.1:1002"),
        ),
        ("quiet", "192.0.2.3:1003", "down", Some("exit 4")),
        (
            "hang",
            "192.0.2.4:1004",
            "down",
            Some("timeout after 500ms"),
        ),
        ("shell", "192.0.2.5:1005", "up", None),
    ];
    for (pool, member, state, reason) in cases {
        until_reason(&m, pool, member, state, reason).await;
    }
    // The timed-out command's whole process group was killed, its background child too.
    let child = eventually("hang.sh wrote its child's pid", || async {
        std::fs::read_to_string(d.join("child.pid")).map_err(|e| e.to_string())
    })
    .await;
    let child = child.trim().to_string();
    eventually(&format!("background child {child} killed"), || async {
        if gone(&child) {
            Ok(())
        } else {
            Err("running".to_string())
        }
    })
    .await;
    // Never more than max_concurrent of one monitor's commands at once.
    let counts = eventually("busy.sh ran eight times", || async {
        let text = std::fs::read_to_string(d.join("counts")).unwrap_or_default();
        let counts: Vec<u32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if counts.len() >= 8 {
            Ok(counts)
        } else {
            Err(text)
        }
    })
    .await;
    assert!(counts.iter().all(|&n| (1..=2).contains(&n)), "{counts:?}");
    assert!(
        counts.contains(&2),
        "two ran at once at some point: {counts:?}"
    );
    let metrics = scrape(&m).await;
    assert!(metrics.value("meridian_probe_failures_total", &[("reason", "exec")]) >= 2.0);
}
