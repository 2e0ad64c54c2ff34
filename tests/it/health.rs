//! Health checking as a user sees it: a real Meridian probing real backends on loopback with
//! its real prober, observed through DNS answers, the HTTP admin API and the `meridian admin`
//! command. Waiting for a change over real time is a bounded poll of what a user can observe,
//! never a fixed sleep.

use std::path::Path;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use serde_json::Value;
use tokio::time::Instant;

use crate::backend::Backend;
use crate::support::{
    A, B, FALL, HTTP_WITH_TOKEN, Meridian, PATIENCE, TOKEN, WWW, addresses, admin, answer,
    config_text, eventually, get, ip, ips, member, monitor, pool, post, service, until_answer,
    write_token, www,
};

/// Why the last probe of `address` in `pool` failed, as the operator would read it.
fn last_reason(m: &Meridian, pool: &str, address: &str) -> Option<String> {
    let snap = m.state.load();
    let (_, member) = snap
        .model
        .members()
        .find(|(p, mem)| p.name == pool && mem.address.ip() == Some(ip(address)))
        .unwrap_or_else(|| panic!("no member {address} in pool {pool}"));
    let health = snap.health.get(member.index);
    health.last_reason.as_deref().map(str::to_string)
}

#[tokio::test]
async fn first_answer_is_already_health_checked() {
    let failing = Backend::http().status(503).start().await;
    let healthy = Backend::http().start().await;
    let m = Meridian::start("", &www(&[member(A, &failing), member(B, &healthy)])).await;

    assert_eq!(answer(&m, WWW).await, ips(&[B]));
    assert_eq!(last_reason(&m, "web", A).as_deref(), Some("http 503"));
    assert!(failing.requests() >= 1 && healthy.requests() >= 1);
}

#[tokio::test]
async fn a_failing_member_leaves_the_answer_and_comes_back() {
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let m = Meridian::start("", &www(&[member(A, &a), member(B, &b)])).await;
    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));

    let before = a.requests();
    a.set_status(503);
    until_answer(&m, WWW, &[B]).await;
    let failed = a.requests() - before;
    assert!(
        failed >= FALL,
        "{A} left the answer after {failed} probes, fewer than fall = {FALL}"
    );

    a.set_status(200);
    until_answer(&m, WWW, &[A, B]).await;
}

#[tokio::test]
async fn stopped_backend_hang_and_wrong_body_are_failures() {
    let refusing = Backend::tcp().start().await;
    let tcp_ok = Backend::tcp().start().await;
    let hanging = Backend::http().start().await;
    let wrong_body = Backend::http().body("all ok").start().await;
    let http_ok = Backend::http().body("ok").start().await;
    let config = [
        monitor("tcp", "tcp", ""),
        monitor("http", "http", ""),
        monitor("body", "http", "expect_body = \"ok\""),
        pool("tcp", "tcp", &[member(A, &refusing), member(B, &tcp_ok)]),
        pool("http", "http", &[member(A, &hanging), member(B, &http_ok)]),
        pool(
            "body",
            "body",
            &[member(A, &wrong_body), member(B, &http_ok)],
        ),
        service("tcp.example.test.", &["tcp"], ""),
        service("http.example.test.", &["http"], ""),
        service("body.example.test.", &["body"], ""),
    ]
    .concat();
    let m = Meridian::start("", &config).await;
    for name in [
        "tcp.example.test.",
        "http.example.test.",
        "body.example.test.",
    ] {
        assert_eq!(answer(&m, name).await, ips(&[A, B]), "{name}");
    }

    refusing.stop().await;
    hanging.hang();
    wrong_body.set_body("nope");

    until_answer(&m, "tcp.example.test.", &[B]).await;
    until_answer(&m, "http.example.test.", &[B]).await;
    until_answer(&m, "body.example.test.", &[B]).await;
    assert_eq!(
        last_reason(&m, "tcp", A).as_deref(),
        Some("connect refused")
    );
    assert_eq!(
        last_reason(&m, "http", A).as_deref(),
        Some("timeout after 500ms")
    );
    assert_eq!(
        last_reason(&m, "body", A).as_deref(),
        Some(r#"body did not contain "ok""#)
    );
}

#[tokio::test]
async fn when_all_down_policies() {
    let dead_a = Backend::http().status(503).start().await;
    let dead_b = Backend::http().status(503).start().await;
    let spare = Backend::http().start().await;
    let steady = Backend::http().start().await;
    let flapping = Backend::http().start().await;
    let ttl = "ttl = 30\nmin_ttl = 5";
    let config = [
        monitor("web", "http", ""),
        pool("dead", "web", &[member(A, &dead_a), member(B, &dead_b)]),
        pool("spare", "web", &[member("198.51.100.10", &spare)]),
        pool(
            "mixed",
            "web",
            &[
                member("203.0.113.10", &steady),
                member("203.0.113.11", &flapping),
            ],
        ),
        service(
            "all.example.test.",
            &["dead"],
            &format!("when_all_down = \"all\"\n{ttl}"),
        ),
        service(
            "fallback.example.test.",
            &["dead"],
            &format!("when_all_down = \"fallback\"\nfallback = \"spare\"\n{ttl}"),
        ),
        service(
            "nodata.example.test.",
            &["dead"],
            &format!("when_all_down = \"nodata\"\n{ttl}"),
        ),
        service(
            "servfail.example.test.",
            &["dead"],
            &format!("when_all_down = \"servfail\"\n{ttl}"),
        ),
        service(
            "mixed.example.test.",
            &["mixed"],
            &format!("when_all_down = \"servfail\"\n{ttl}"),
        ),
    ]
    .concat();
    let m = Meridian::start("", &config).await;

    // "all": fail open with every member, at the lowest TTL so resolvers ask again soon.
    let r = m.query("all.example.test.", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&r), ips(&[A, B]));
    assert!(r.answers.iter().all(|rr| rr.ttl == 5), "{r:?}");

    // "fallback": the fallback pool's healthy member.
    assert_eq!(
        answer(&m, "fallback.example.test.").await,
        ips(&["198.51.100.10"])
    );

    // "nodata": NOERROR, no answer, the SOA in authority (RFC 2308 §2.2).
    let r = m.query("nodata.example.test.", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.metadata.authoritative);
    assert!(r.answers.is_empty(), "{r:?}");
    assert_eq!(r.authorities.len(), 1, "{r:?}");
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);

    // "servfail".
    let r = m.query("servfail.example.test.", RecordType::A).await;
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert!(r.answers.is_empty(), "{r:?}");

    // While one member is up, no answer is ever empty: not while the other goes down, and not
    // while it comes back. Queried back to back, to catch any in-between snapshot.
    let steady_only = ips(&["203.0.113.10"]);
    let both = ips(&["203.0.113.10", "203.0.113.11"]);
    for (status, want) in [(503, &steady_only), (200, &both)] {
        flapping.set_status(status);
        let deadline = Instant::now() + PATIENCE;
        let mut queries = 0;
        loop {
            let r = m.query("mixed.example.test.", RecordType::A).await;
            queries += 1;
            let got = addresses(&r);
            assert!(
                r.metadata.response_code == ResponseCode::NoError && got.contains(&steady_only[0]),
                "query {queries} after setting {status}: the up member is missing: {r:?}"
            );
            if got == *want {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "mixed.example.test. never answered {want:?} after setting {status}; last {got:?}"
            );
        }
    }
}

#[tokio::test]
async fn check_address_is_probed_instead_of_the_answer_address() {
    let probed = Backend::http().start().await;
    let other = Backend::http().start().await;
    let m = Meridian::start("", &www(&[member(A, &probed), member(B, &other)])).await;

    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));
    assert!(
        probed.requests() >= 1,
        "{A} is in the answer but its check address {} was never probed",
        probed.addr()
    );
    // And it is the check address's health that decides whether A is handed out.
    probed.set_status(503);
    until_answer(&m, WWW, &[B]).await;
}

#[tokio::test]
async fn identical_probes_run_once() {
    let backend = Backend::http().start().await;
    let shared = member(A, &backend);
    let config = [
        "[monitors.web]\ntype = \"http\"\ninterval = \"1h\"\ntimeout = \"500ms\"\n".to_string(),
        pool("eu", "web", std::slice::from_ref(&shared)),
        pool("us", "web", std::slice::from_ref(&shared)),
        service("eu.example.test.", &["eu"], ""),
        service("us.example.test.", &["us"], ""),
    ]
    .concat();
    let m = Meridian::start("", &config).await;

    // Serving starts only after the first round, in which every distinct target reports once.
    assert_eq!(answer(&m, "eu.example.test.").await, ips(&[A]));
    assert_eq!(answer(&m, "us.example.test.").await, ips(&[A]));
    assert_eq!(
        backend.requests(),
        1,
        "one monitor on one address is one probe, however many pools list it"
    );
}

/// `www` over two healthy members A and B, with the admin API and its token in `dir`.
async fn two_healthy_members_with_admin_api(dir: &Path) -> (Backend, Backend, Meridian, String) {
    write_token(dir);
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let config = format!("{HTTP_WITH_TOKEN}{}", www(&[member(A, &a), member(B, &b)]));
    let m = Meridian::start_at(dir, "", &config).await;
    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));
    (a, b, m, config)
}

#[tokio::test]
async fn drain_via_api_removes_member_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_a, _b, m, config) = two_healthy_members_with_admin_api(dir.path()).await;
    assert_eq!(get(&m, "/readyz").await, (200, "ready\n".to_string()));

    let (status, body) = admin(&m, "drain", "web", A).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"].as_array().map(Vec::len), Some(1), "{body}");
    let change = &body["changed"][0];
    assert_eq!(
        (
            &change["pool"],
            &change["member"],
            &change["from"],
            &change["to"]
        ),
        (
            &Value::from("web"),
            &Value::from(A),
            &Value::from("up"),
            &Value::from("drained")
        ),
        "{body}"
    );
    // The call returns after publishing: the very next answer excludes it.
    assert_eq!(answer(&m, WWW).await, ips(&[B]));
    assert!(dir.path().join("meridian.state").is_file());

    // A restart on the same directory reads the state file: still drained, though its
    // probes pass.
    m.stop().await;
    let m = Meridian::start_at(dir.path(), "", &config).await;
    assert_eq!(answer(&m, WWW).await, ips(&[B]));

    let (status, body) = admin(&m, "clear", "web", A).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"][0]["from"], "drained", "{body}");
    assert_eq!(body["changed"][0]["to"], "up", "{body}");
    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));
}

#[tokio::test]
async fn admin_api_auth() {
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let members = [member(A, &a), member(B, &b)];
    let drain_a = format!("/api/v1/pools/web/members/{A}/drain");
    let bearer = format!("Bearer {TOKEN}");

    // No token configured: admin actions are disabled, whatever is presented.
    let open = format!("[http]\nlisten = \"127.0.0.1:0\"\n{}", www(&members));
    let m = Meridian::start("", &open).await;
    let (status, body) = post(&m, &drain_a, Some(&bearer)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].is_string(), "{body}");
    m.stop().await;

    let dir = tempfile::tempdir().expect("tempdir");
    write_token(dir.path());
    let config = format!("{HTTP_WITH_TOKEN}{}", www(&members));
    let m = Meridian::start_at(dir.path(), "", &config).await;
    for (presented, why) in [
        (None, "no Authorization header"),
        (Some("Bearer wrong-token".to_string()), "a wrong token"),
        (Some(format!("Bearer {TOKEN}x")), "a longer token"),
        (Some(format!("Basic {TOKEN}")), "another scheme"),
        (Some(TOKEN.to_string()), "no scheme"),
    ] {
        let (status, body) = post(&m, &drain_a, presented.as_deref()).await;
        assert_eq!(status, 401, "{why}: {body}");
        assert!(body["error"].is_string(), "{why}: {body}");
    }
    // Nothing was changed by the refused calls.
    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));

    let cases = [
        (format!("/api/v1/pools/nope/members/{A}/drain"), "nope"),
        (
            "/api/v1/pools/web/members/192.0.2.99/drain".to_string(),
            "192.0.2.99",
        ),
        (format!("/api/v1/pools/web/members/{A}/explode"), "explode"),
        ("/api/v1/pools/nope/drain".to_string(), "nope"),
    ];
    for (path, named) in cases {
        let (status, body) = post(&m, &path, Some(&bearer)).await;
        assert_eq!(status, 404, "{path}: {body}");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(named),
            "{path}: the error names {named:?}: {body}"
        );
    }
    assert_eq!(answer(&m, WWW).await, ips(&[A, B]));
}

#[tokio::test]
async fn ttl_is_lowered_while_a_member_is_transitioning() {
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let config = [
        // fall = 50 keeps A in the answer for ~5 s of failures: long enough to look at it.
        "[monitors.web]\ntype = \"http\"\ninterval = \"100ms\"\nfast_interval = \"100ms\"\n\
         timeout = \"500ms\"\nrise = 2\nfall = 50\n"
            .to_string(),
        pool("web", "web", &[member(A, &a), member(B, &b)]),
        service(WWW, &["web"], "ttl = 60\nmin_ttl = 1"),
    ]
    .concat();
    let m = Meridian::start("", &config).await;
    let ttls = |r: &Message| r.answers.iter().map(|rr| rr.ttl).collect::<Vec<_>>();
    let r = m.query(WWW, RecordType::A).await;
    assert_eq!(ttls(&r), [60, 60], "steady: the full TTL");

    a.set_status(503);
    let lowered = eventually("the TTL drops below 60", || async {
        let r = m.query(WWW, RecordType::A).await;
        match ttls(&r).first() {
            Some(&ttl) if ttl < 60 => Ok(r),
            _ => Err(format!("{r:?}")),
        }
    })
    .await;
    // A is on its way down but not there (fall = 50), so it is still handed out, with a TTL
    // no longer than the time it could take to flip: fast_interval × probes left ≤ 0.1 s × 49.
    assert_eq!(addresses(&lowered), ips(&[A, B]));
    for ttl in ttls(&lowered) {
        assert!(
            (1..=5).contains(&ttl),
            "TTL {ttl} outside 1..=5: {lowered:?}"
        );
    }

    a.set_status(200);
    eventually("the TTL is back to 60", || async {
        let r = m.query(WWW, RecordType::A).await;
        if ttls(&r) == [60, 60] {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn https_monitor_accepts_a_self_signed_backend_only_without_verification() {
    let backend = Backend::https().start().await;
    let config = [
        monitor("unverified", "https", "verify_tls = false"),
        monitor("verified", "https", ""),
        pool("unverified", "unverified", &[member(A, &backend)]),
        pool("verified", "verified", &[member(A, &backend)]),
        service(
            "unverified.example.test.",
            &["unverified"],
            "when_all_down = \"nodata\"",
        ),
        service(
            "verified.example.test.",
            &["verified"],
            "when_all_down = \"nodata\"",
        ),
    ]
    .concat();
    let m = Meridian::start("", &config).await;

    assert_eq!(answer(&m, "unverified.example.test.").await, ips(&[A]));
    assert_eq!(answer(&m, "verified.example.test.").await, ips(&[]));
    assert_eq!(
        last_reason(&m, "verified", A).as_deref(),
        Some("tls: unknown issuer")
    );
    assert!(backend.requests() >= 1, "the unverified probe reached HTTP");
}

#[tokio::test]
async fn admin_command_drains_through_the_running_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_a, _b, m, _) = two_healthy_members_with_admin_api(dir.path()).await;

    // The command reads `[http] listen` from its config; the server's says port 0, so the
    // command gets a config naming the port actually bound, and the same token file.
    let cli_config = dir.path().join("cli.toml");
    let http = m.http.expect("[http] is configured");
    let text = config_text(
        "",
        &format!("[http]\nlisten = \"{http}\"\nadmin_token_file = \"admin.token\"\n"),
    );
    std::fs::write(&cli_config, text).expect("write CLI config");
    let run = |args: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
            .arg("admin")
            .arg("--config")
            .arg(&cli_config)
            .args(args)
            .output()
    };

    let out = run(&["drain", "web", A]).await.expect("run meridian admin");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout.trim(),
        format!("member {A} of pool web: up -> drained")
    );
    assert_eq!(answer(&m, WWW).await, ips(&[B]));

    let out = run(&["drain", "nope"]).await.expect("run meridian admin");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr.contains(r#"error: drain failed (HTTP 404): no pool named "nope""#),
        "{stderr}"
    );
}

#[tokio::test]
async fn drained_members_are_never_handed_out_even_when_failing_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_a, _b, m, _) = two_healthy_members_with_admin_api(dir.path()).await;

    // Maintenance of the whole site: the operator drains every member of the pool.
    let (status, body) = post(
        &m,
        "/api/v1/pools/web/drain",
        Some(&format!("Bearer {TOKEN}")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Fail-open is for members that fail their probes; a drain is an operator's explicit "no
    // new answers" (health::Override::Drain), so a drained member must not come back in one.
    let got = answer(&m, WWW).await;
    assert!(
        !got.contains(&ip(A)) && !got.contains(&ip(B)),
        "drained members handed out: {got:?}"
    );
}
