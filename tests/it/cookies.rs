//! DNS Cookies (RFC 7873, RFC 9018) as clients see them: `dig +cookie` (bind9-dnsutils) and
//! `kdig +cookie` (knot-dnsutils) against a real Meridian, raw queries for what the tools
//! cannot send, instances sharing a secret file, a rollover, the rate limiter's exemption, the
//! metrics and status, config errors; and a differential run against Knot's `mod-cookies`
//! with the same secret. Without the tools the tests fail instead of skipping.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use meridian::Model;
use tokio::net::UdpSocket;

use crate::knot_diff::Knot;
use crate::support::{
    HTTP_OPEN, Meridian, QueryBuilder, REPLY_TIMEOUT, VALID, ZONE, config_dir, eventually, get,
    parse, scrape,
};

/// The secret of RFC 9018 Appendix A, as a secret file holds it.
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
/// The secret after a rollover (RFC 9018 Appendix A.4).
const NEW_SECRET: &str = "445536bcd2513298075a5d379663c962";

/// A name the fast path answers and one only the general path does (MX adds addresses).
const FAST: &str = "static.example.test.";
const GENERAL: &str = "example.test.";

/// `[dns.cookies]` with its secret in `file` and `keys`.
fn cookies(file: &Path, keys: &str) -> String {
    format!(
        "[dns.cookies]\nsecret_file = {:?}\n{keys}\n",
        file.display().to_string()
    )
}

/// A temp dir holding a secret file with `lines`.
fn secret_file(lines: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cookie-secret");
    std::fs::write(&path, lines).expect("write secret");
    (dir, path)
}

/// Runs `program` (dig or kdig) against `server` with `args`, and returns what it printed.
/// Asynchronous, so the in-process server keeps serving TCP meanwhile.
async fn tool(program: &str, server: SocketAddr, args: &[&str]) -> String {
    let bounds = if program == "kdig" {
        ["+timeout=5", "+retry=0"]
    } else {
        ["+time=5", "+tries=1"]
    };
    let out = tokio::process::Command::new(program)
        .arg("+norec")
        .args(bounds)
        .arg("-p")
        .arg(server.port().to_string())
        .arg(format!("@{}", server.ip()))
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} runs (bind9-dnsutils, knot-dnsutils): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{program} {args:?} failed: {text}");
    text
}

/// The last `COOKIE: hex` the output shows (dig and kdig both print one per reply), lower case.
fn cookie_of(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.split("COOKIE: ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .next_back()
        .map(str::to_ascii_lowercase)
}

/// The last `status: RCODE` the output shows (`,` after it in dig's output, `;` in kdig's).
fn status_of(text: &str) -> String {
    text.lines()
        .filter_map(|l| l.split("status: ").nth(1))
        .filter_map(|rest| rest.split([',', ';']).next())
        .next_back()
        .unwrap_or_else(|| panic!("no status in: {text}"))
        .to_string()
}

/// The COOKIE option data of a reply.
fn reply_cookie(m: &Message) -> Option<Vec<u8>> {
    match m.edns.as_ref()?.options().get(EdnsCode::Cookie)? {
        EdnsOption::Unknown(10, data) => Some(data.clone()),
        other => panic!("cookie read as {other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn unhex(text: &str) -> Vec<u8> {
    data_encoding::HEXLOWER_PERMISSIVE
        .decode(text.as_bytes())
        .expect("hex")
}

/// A query for `name`/`qtype` with the COOKIE option `data` over UDP, and its reply.
async fn ask(server: SocketAddr, name: &str, qtype: RecordType, data: &[u8]) -> Message {
    let q = QueryBuilder::new(name, qtype).cookie(data).build();
    parse(&crate::support::udp_exchange(server, &q).await)
}

/// A UDP query with `data` as its COOKIE option, sent to `server` over TCP.
async fn ask_tcp(server: SocketAddr, data: &[u8]) -> Message {
    let q = QueryBuilder::new(FAST, RecordType::A).cookie(data).build();
    let mut s = tokio::net::TcpStream::connect(server)
        .await
        .expect("connect");
    crate::support::write_frame(&mut s, &q).await;
    parse(&crate::support::read_frame(&mut s).await.expect("tcp reply"))
}

/// What `/metrics` counted for cookies over UDP with `result`.
async fn counted(m: &Meridian, result: &str) -> f64 {
    scrape(m).await.value(
        "meridian_dns_cookie_queries_total",
        &[("protocol", "udp"), ("result", result)],
    )
}

#[tokio::test]
async fn dig_and_kdig_get_a_server_cookie_and_their_echo_is_accepted() {
    let (_d, file) = secret_file(&format!("{SECRET}\n"));
    let m = Meridian::start("", &format!("{HTTP_OPEN}{}", cookies(&file, ""))).await;
    for program in ["dig", "kdig"] {
        let first = tool(program, m.udp, &["+cookie", FAST, "A"]).await;
        assert_eq!(status_of(&first), "NOERROR", "{first}");
        assert!(first.contains("192.0.2.80"), "{first}");
        let cookie = cookie_of(&first).unwrap_or_else(|| panic!("no cookie: {first}"));
        // Client cookie (8 bytes), then Version 1, reserved zero, timestamp, hash.
        assert_eq!(cookie.len(), 48, "{cookie}");
        assert_eq!(&cookie[16..24], "01000000", "{cookie}");
        // The cookie as it came back is valid, and young: echoed as sent.
        let again = tool(program, m.udp, &[&format!("+cookie={cookie}"), FAST, "A"]).await;
        assert_eq!(status_of(&again), "NOERROR", "{again}");
        assert_eq!(
            cookie_of(&again).as_deref(),
            Some(cookie.as_str()),
            "{again}"
        );
        if program == "dig" {
            assert!(
                again.contains("(good)"),
                "dig checks the client half: {again}"
            );
        }
    }
    assert_eq!(counted(&m, "valid").await, 2.0);
    assert_eq!(counted(&m, "client_only").await, 2.0);
    let (_, status) = get(&m, "/api/v1/status").await;
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    assert_eq!(status["cookies"]["enabled"], true, "{status}");
    assert_eq!(status["cookies"]["require"], false, "{status}");
    m.stop().await;
}

#[tokio::test]
async fn a_tampered_or_foreign_server_cookie_gets_an_answer_and_a_fresh_cookie() {
    let (_d, file) = secret_file(&format!("{SECRET}\n"));
    let m = Meridian::start("", &format!("{HTTP_OPEN}{}", cookies(&file, ""))).await;
    let first = tool("dig", m.udp, &["+cookie", FAST, "A"]).await;
    let good = cookie_of(&first).expect("cookie");
    let mut tampered = good.clone();
    let last = if tampered.ends_with('0') { "1" } else { "0" };
    tampered.replace_range(47.., last);
    for name in [FAST, GENERAL] {
        let reply = tool("dig", m.udp, &[&format!("+cookie={tampered}"), name, "MX"]).await;
        assert_eq!(status_of(&reply), "NOERROR", "{reply}");
        let fresh = cookie_of(&reply).expect("a fresh cookie");
        assert_ne!(fresh, tampered, "{reply}");
        assert_eq!(fresh[..16], good[..16], "the client half is kept");
        // The fresh one is valid: it comes back echoed.
        let echoed = tool("dig", m.udp, &[&format!("+cookie={fresh}"), name, "A"]).await;
        assert_eq!(cookie_of(&echoed), Some(fresh));
    }
    // A cookie in RFC 9018's layout from 2019 (Appendix A.1): stale, so a fresh one.
    let stale = unhex("2464c4abcf10c957010000005cf79f111f8130c3eee29480");
    let reply = ask(m.udp, FAST, RecordType::A, &stale).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply.answers.len(), 1);
    let fresh = reply_cookie(&reply).expect("cookie");
    assert_eq!(fresh[..8], stale[..8]);
    assert_ne!(fresh, stale);
    assert_eq!(counted(&m, "invalid").await, 3.0);
    m.stop().await;
}

#[tokio::test]
async fn require_answers_udp_without_a_valid_cookie_with_badcookie() {
    let (_d, file) = secret_file(&format!("{SECRET}\n"));
    let m = Meridian::start(
        "",
        &format!("{HTTP_OPEN}{}", cookies(&file, "require = true")),
    )
    .await;
    for name in [FAST, GENERAL] {
        let bad = tool("dig", m.udp, &["+cookie", "+nobadcookie", name, "MX"]).await;
        assert_eq!(status_of(&bad), "BADCOOKIE", "{bad}");
        assert!(bad.contains("ANSWER: 0"), "{bad}");
        let cookie = cookie_of(&bad).expect("a fresh cookie with BADCOOKIE");
        // Coming back with it is answered (what dig does by itself without +nobadcookie).
        let good = tool("dig", m.udp, &[&format!("+cookie={cookie}"), name, "MX"]).await;
        assert_eq!(status_of(&good), "NOERROR", "{good}");
        let retried = tool("kdig", m.udp, &["+cookie", name, "MX"]).await;
        assert_eq!(status_of(&retried), "NOERROR", "kdig retries: {retried}");
    }
    // TCP proves the address: answered, with a cookie. No cookie at all: answered, none.
    let tcp = tool("dig", m.tcp, &["+tcp", "+cookie", FAST, "A"]).await;
    assert_eq!(status_of(&tcp), "NOERROR", "{tcp}");
    assert!(cookie_of(&tcp).is_some(), "{tcp}");
    let tcp = ask_tcp(m.tcp, &[7; 8]).await;
    assert_eq!(tcp.answers.len(), 1);
    let none = tool("dig", m.udp, &["+nocookie", FAST, "A"]).await;
    assert_eq!(status_of(&none), "NOERROR", "{none}");
    assert_eq!(cookie_of(&none), None);
    // A tampered server cookie over UDP is no better than none.
    let reply = ask(
        m.udp,
        FAST,
        RecordType::A,
        &[[7; 8], [1; 8], [0; 8]].concat(),
    )
    .await;
    assert_eq!(reply.metadata.response_code, ResponseCode::BADCOOKIE);
    let badcookie = scrape(&m).await.value(
        "meridian_dns_badcookie_replies_total",
        &[("protocol", "udp")],
    );
    assert_eq!(badcookie, 5.0);
    m.stop().await;
}

#[tokio::test]
async fn malformed_cookie_options_get_formerr_on_both_paths() {
    let (_d, file) = secret_file(&format!("{SECRET}\n"));
    let m = Meridian::start("", &cookies(&file, "")).await;
    for (name, qtype) in [(FAST, "A"), (GENERAL, "MX")] {
        let dig = tool(
            "dig",
            m.udp,
            &["+nocookie", "+ednsopt=10:0011", name, qtype],
        )
        .await;
        assert_eq!(status_of(&dig), "FORMERR", "{dig}");
        let kdig = tool(
            "kdig",
            m.udp,
            &["+nocookie", "+ednsopt=10:00112233445566778899", name, qtype],
        )
        .await;
        assert_eq!(status_of(&kdig), "FORMERR", "{kdig}");
    }
    for len in [0, 7, 9, 15, 41] {
        for (name, qtype) in [(FAST, RecordType::A), (GENERAL, RecordType::MX)] {
            let reply = ask(m.udp, name, qtype, &vec![1; len]).await;
            assert_eq!(
                reply.metadata.response_code,
                ResponseCode::FormErr,
                "{len} {name}"
            );
        }
    }
    for len in [8, 16, 40] {
        let reply = ask(m.udp, FAST, RecordType::A, &vec![1; len]).await;
        assert_eq!(reply.metadata.response_code, ResponseCode::NoError, "{len}");
    }
    m.stop().await;
    // With cookies off the option is not looked at.
    let off = Meridian::start("", "").await;
    let reply = ask(off.udp, FAST, RecordType::A, &[1; 9]).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply_cookie(&reply), None);
    off.stop().await;
}

/// Responses the rate limiter dropped.
async fn dropped(m: &Meridian) -> f64 {
    scrape(m)
        .await
        .value("meridian_dns_rrl_limited_total", &[("action", "dropped")])
}

/// Sends `n` queries for [`FAST`] with the COOKIE option `data` (counted as `result`) from one
/// socket as fast as it can; once `/metrics` counted all `n` (answered or dropped), receives
/// exactly the answered ones and returns how many that was.
async fn flood(m: &Meridian, data: &[u8], n: u16, result: &str) -> usize {
    let (answered_before, dropped_before) = (counted(m, result).await, dropped(m).await);
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    for id in 0..n {
        let q = QueryBuilder::new(FAST, RecordType::A)
            .id(id)
            .cookie(data)
            .build();
        sock.send_to(&q, m.udp).await.expect("send");
    }
    let answered = eventually("the flood counted", || async {
        let answered = counted(m, result).await - answered_before;
        let dropped = dropped(m).await - dropped_before;
        if answered + dropped == f64::from(n) {
            Ok(answered as usize)
        } else {
            Err(format!("{answered} answered, {dropped} dropped of {n}"))
        }
    })
    .await;
    let mut buf = vec![0u8; 4096];
    for _ in 0..answered {
        tokio::time::timeout(REPLY_TIMEOUT, sock.recv_from(&mut buf))
            .await
            .expect("a reply the server counted")
            .expect("recv");
    }
    answered
}

#[tokio::test]
async fn a_valid_server_cookie_exempts_udp_from_rate_limiting() {
    let (_d, file) = secret_file(&format!("{SECRET}\n"));
    let rrl = "[dns.rrl]\nresponses_per_second = 1\nburst = 2\nslip = 0\n";
    let m = Meridian::start(rrl, &format!("{HTTP_OPEN}{}", cookies(&file, ""))).await;
    let first = ask(m.udp, FAST, RecordType::A, &[9; 8]).await;
    let valid = reply_cookie(&first).expect("cookie");
    let answered = flood(&m, &valid, 60, "valid").await;
    assert_eq!(answered, 60, "every query with a valid cookie is answered");
    assert_eq!(dropped(&m).await, 0.0);
    let answered = flood(&m, &[9; 8], 60, "client_only").await;
    assert!(
        answered < 30,
        "client cookies alone are limited: {answered} of 60 answered"
    );
    m.stop().await;
}

#[tokio::test]
async fn instances_sharing_a_secret_file_accept_each_others_cookies() {
    let (_d, file) = secret_file(&format!("# the fleet's secret\n{SECRET}\n"));
    let a = Meridian::start("", &cookies(&file, "")).await;
    let b = Meridian::start("", &cookies(&file, "")).await;
    let from_a = cookie_of(&tool("dig", a.udp, &["+cookie", FAST, "A"]).await).expect("cookie");
    let at_b = tool("dig", b.udp, &[&format!("+cookie={from_a}"), FAST, "A"]).await;
    assert_eq!(cookie_of(&at_b), Some(from_a.clone()), "valid at b: echoed");
    // Another secret does not know it.
    let (_o, other) = secret_file(&format!("{NEW_SECRET}\n"));
    let c = Meridian::start("", &cookies(&other, "")).await;
    let at_c = tool("dig", c.udp, &[&format!("+cookie={from_a}"), FAST, "A"]).await;
    assert_ne!(cookie_of(&at_c), Some(from_a));
    for m in [a, b, c] {
        m.stop().await;
    }
}

#[tokio::test]
async fn after_a_rollover_old_cookies_verify_and_new_ones_use_the_new_secret() {
    let (dir, file) = secret_file(&format!("{SECRET}\n"));
    let old = Meridian::start("", &cookies(&file, "")).await;
    let made_old = reply_cookie(&ask(old.udp, FAST, RecordType::A, &[3; 8]).await).expect("cookie");
    old.stop().await;

    // The new secret first (it makes cookies), the old one second (it still verifies).
    let rolled_file = dir.path().join("rolled");
    std::fs::write(&rolled_file, format!("{NEW_SECRET}\n{SECRET}\n")).expect("write");
    let rolled = Meridian::start("", &cookies(&rolled_file, "require = true")).await;
    let reply = ask(rolled.udp, FAST, RecordType::A, &made_old).await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NoError,
        "old cookie verifies"
    );
    let renewed = reply_cookie(&reply).expect("cookie");
    assert_ne!(renewed, made_old, "renewed with the new secret");

    // Only the new secret: the old cookie is refused, the renewed one accepted.
    let (_n, new_file) = secret_file(&format!("{NEW_SECRET}\n"));
    let new = Meridian::start("", &cookies(&new_file, "require = true")).await;
    let refused = ask(new.udp, FAST, RecordType::A, &made_old).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::BADCOOKIE);
    let accepted = ask(new.udp, FAST, RecordType::A, &renewed).await;
    assert_eq!(accepted.metadata.response_code, ResponseCode::NoError);
    assert_eq!(reply_cookie(&accepted), Some(renewed), "echoed");
    rolled.stop().await;
    new.stop().await;
}

#[tokio::test]
async fn the_three_rollover_steps_are_file_changes_and_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cookie-secret");
    std::fs::write(&file, format!("{SECRET}\n")).expect("write");
    let keys = format!("{HTTP_OPEN}{}", cookies(&file, "require = true"));
    let m = Meridian::start_at(dir.path(), "", &keys).await;
    let made_old = reply_cookie(&ask(m.udp, FAST, RecordType::A, &[8; 8]).await).unwrap();
    let reload = |lines: String| {
        std::fs::write(&file, lines).expect("write");
        meridian::reload::reload(&m.state, &m.control, &m.telemetry)
    };
    let udp = m.udp;
    let asked = move |data: Vec<u8>| async move { ask(udp, FAST, RecordType::A, &data).await };

    // 1. The new secret only verifies: cookies are still made, and echoed, with the old one.
    let summary = reload(format!("{SECRET}\n{NEW_SECRET}\n"))
        .await
        .expect("reload")
        .summary;
    assert!(
        summary.contains("DNS cookies (required over UDP, previous secret accepted"),
        "{summary}"
    );
    let r = asked(made_old.clone()).await;
    assert_eq!(
        reply_cookie(&r),
        Some(made_old.clone()),
        "still current: echoed"
    );

    // 2. Swapped: new cookies come from the new secret, the old cookie is renewed.
    reload(format!("{NEW_SECRET}\n{SECRET}\n"))
        .await
        .expect("reload");
    let r = asked(made_old.clone()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    let made_new = reply_cookie(&r).unwrap();
    assert_ne!(made_new, made_old);
    let (_, status) = get(&m, "/api/v1/status").await;
    assert!(status.contains("\"previous_secret\":true"), "{status}");

    // 3. The old secret dropped: its cookies are refused, the new ones echoed.
    reload(format!("{NEW_SECRET}\n")).await.expect("reload");
    let r = asked(made_old.clone()).await;
    assert_eq!(r.metadata.response_code, ResponseCode::BADCOOKIE);
    assert_eq!(
        reply_cookie(&asked(made_new.clone()).await),
        Some(made_new.clone())
    );

    // A broken file is refused by the reload; the running secret stays.
    let refused = reload("not hex\n".into())
        .await
        .expect_err("a bad secret file");
    assert!(
        refused
            .to_string()
            .contains("is not a secret of 32 hex digits"),
        "{refused}"
    );
    assert_eq!(reply_cookie(&asked(made_new.clone()).await), Some(made_new));
    m.stop().await;
}

#[test]
fn a_missing_secret_file_is_created_private_and_kept() {
    let config = VALID.replace("zones = \"zones\"\n", "zones = \"zones\"\n[dns.cookies]\n");
    let (dir, path) = config_dir(&config, ZONE);
    let first = Model::load(&path).expect("loads");
    let file = dir.path().join(meridian::model::DEFAULT_SECRET_FILE);
    let meta = std::fs::metadata(&file).expect("secret file created");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).expect("read");
    assert_eq!(text.trim().len(), 32, "{text}");
    let second = Model::load(&path).expect("loads again");
    let secret = |m: &Model| m.dns.cookies.as_ref().expect("on").secret;
    assert_eq!(secret(&first), secret(&second), "kept across loads");
    let off = VALID.replace(
        "zones = \"zones\"\n",
        "zones = \"zones\"\n[dns.cookies]\nenabled = false\n",
    );
    let (_d, path) = config_dir(&off, ZONE);
    assert!(Model::load(&path).expect("loads").dns.cookies.is_none());
}

#[test]
fn config_errors_name_file_line_and_key() {
    let error = |keys: &str, secret: Option<&str>| {
        let config = VALID.replace(
            "zones = \"zones\"\n",
            &format!("zones = \"zones\"\n[dns.cookies]\n{keys}\n"),
        );
        let (dir, path) = config_dir(&config, ZONE);
        if let Some(text) = secret {
            std::fs::write(dir.path().join("secret"), text).expect("write");
        }
        match Model::load(&path) {
            Ok(_) => panic!("accepted: {keys}"),
            Err(e) => e
                .to_string()
                .replace(&dir.path().display().to_string(), "DIR"),
        }
    };
    let file = "secret_file = \"secret\"";
    assert_eq!(
        error(file, Some("e5e973e5a6b2a43f48e7dc849e37bfc\n")),
        "DIR/meridian.toml:5: dns.cookies.secret_file: DIR/secret:1: \"e5e973e5a6b2a43f48e7dc849e37bfc\" is not a secret of 32 hex digits (16 bytes)"
    );
    assert_eq!(
        error(file, Some(&format!("{SECRET}\nxyz{}\n", &SECRET[3..]))),
        format!(
            "DIR/meridian.toml:5: dns.cookies.secret_file: DIR/secret:2: \"xyz{}\" is not a secret of 32 hex digits (16 bytes)",
            &SECRET[3..]
        )
    );
    assert_eq!(
        error(file, Some(&format!("{SECRET}\n{SECRET}\n{SECRET}\n"))),
        "DIR/meridian.toml:5: dns.cookies.secret_file: DIR/secret:3: a third secret; the file holds the secret cookies are made with and at most one previous one"
    );
    assert_eq!(
        error(file, Some("\n")),
        "DIR/meridian.toml:5: dns.cookies.secret_file: DIR/secret: holds no secret (one line of 32 hex digits)"
    );
    assert_eq!(
        error("secret_file = \"zones\"", None),
        "DIR/meridian.toml:5: dns.cookies.secret_file: DIR/zones is not a regular file"
    );
    assert_eq!(
        error("secret_file = \"nowhere/secret\"", None),
        "DIR/meridian.toml:5: dns.cookies.secret_file: cannot create DIR/nowhere/secret: No such file or directory (os error 2)"
    );
    let typed = error("require = \"yes\"", None);
    assert!(typed.starts_with("DIR/meridian.toml:5: "), "{typed}");
    let unknown = error("secret = \"x\"", None);
    assert!(
        unknown.starts_with("DIR/meridian.toml:5: ") && unknown.contains("secret"),
        "{unknown}"
    );
}

/// What the differential run compares of a reply: its RCODE, whether it carries a cookie and
/// the client half of it.
fn shape(m: &Message) -> (ResponseCode, Option<Vec<u8>>) {
    (
        m.metadata.response_code,
        reply_cookie(m).map(|c| c[..8].to_vec()),
    )
}

#[tokio::test]
async fn knot_mod_cookies_with_the_same_secret_agrees() {
    let (_d, file) = secret_file(&format!("{SECRET}\n"));
    let module =
        format!("mod-cookies:\n  - id: meridian\n    secret: 0x{SECRET}\n    badcookie-slip: 1\n");
    let knot = Knot::start_with(&module, "    global-module: mod-cookies/meridian\n").await;
    // Knot answers every UDP query without a valid server cookie with BADCOOKIE.
    let m = Meridian::start("", &cookies(&file, "require = true")).await;
    let both = |data: Vec<u8>, name: &'static str, qtype: RecordType| {
        let (knot, ours) = (knot.addr, m.udp);
        async move {
            let k = ask(knot, name, qtype, &data).await;
            let o = ask(ours, name, qtype, &data).await;
            assert_eq!(
                shape(&k),
                shape(&o),
                "{name} {qtype} {}:\nknot: {k:?}\nmeridian: {o:?}",
                hex(&data)
            );
            (k, o)
        }
    };
    for (name, qtype) in [
        (FAST, RecordType::A),
        (GENERAL, RecordType::MX),
        ("nope.example.test.", RecordType::A),
    ] {
        let (k, o) = both(vec![5; 8], name, qtype).await;
        assert_eq!(k.metadata.response_code, ResponseCode::BADCOOKIE);
        let (from_knot, from_us) = (reply_cookie(&k).unwrap(), reply_cookie(&o).unwrap());
        // Each server's cookie is valid at the other: answered, and echoed as it came.
        let (k2, o2) = both(from_us.clone(), name, qtype).await;
        assert_eq!(k2.metadata.response_code, o2.metadata.response_code);
        assert_ne!(k2.metadata.response_code, ResponseCode::BADCOOKIE, "{k2:?}");
        assert_eq!(reply_cookie(&k2), Some(from_us.clone()));
        let (_, o3) = both(from_knot.clone(), name, qtype).await;
        assert_eq!(reply_cookie(&o3), Some(from_knot.clone()));
        // Tampered, another secret's, stale: BADCOOKIE at both.
        let mut tampered = from_knot.clone();
        tampered[23] ^= 1;
        both(tampered, name, qtype).await;
        both(
            unhex("2464c4abcf10c957010000005cf79f111f8130c3eee29480"),
            name,
            qtype,
        )
        .await;
        // Malformed: FORMERR at both.
        for len in [7, 9, 41] {
            let (k, _) = both(vec![1; len], name, qtype).await;
            assert_eq!(k.metadata.response_code, ResponseCode::FormErr);
        }
        // No cookie: answered by both, no cookie in either.
        let plain = QueryBuilder::new(name, qtype).edns(1232).build();
        let k = parse(&crate::support::udp_exchange(knot.addr, &plain).await);
        let o = parse(&crate::support::udp_exchange(m.udp, &plain).await);
        assert_eq!(shape(&k), shape(&o));
    }
    // Over TCP neither asks for a cookie.
    let k = ask_tcp(knot.addr, &[5; 8]).await;
    let o = ask_tcp(m.tcp, &[5; 8]).await;
    assert_eq!(shape(&k), shape(&o));
    assert_eq!(k.metadata.response_code, ResponseCode::NoError);
    m.stop().await;
}

#[tokio::test]
async fn after_a_rollover_cookies_verify_at_knot_with_the_new_secret() {
    // Made with the old secret, before the rollover.
    let (dir, old) = secret_file(&format!("{SECRET}\n"));
    let before = Meridian::start("", &cookies(&old, "")).await;
    let made_old = reply_cookie(&ask(before.udp, FAST, RecordType::A, &[4; 8]).await).unwrap();
    before.stop().await;
    // Meridian with the new secret first and the old one second; Knot 3.2 takes one secret
    // only: the new one.
    let rolled = dir.path().join("rolled");
    std::fs::write(&rolled, format!("{NEW_SECRET}\n{SECRET}\n")).expect("write");
    let module = format!("mod-cookies:\n  - id: new\n    secret: 0x{NEW_SECRET}\n");
    let knot = Knot::start_with(&module, "    global-module: mod-cookies/new\n").await;
    let m = Meridian::start("", &cookies(&rolled, "require = true")).await;
    let o = ask(m.udp, FAST, RecordType::A, &made_old).await;
    assert_eq!(
        o.metadata.response_code,
        ResponseCode::NoError,
        "the old cookie verifies"
    );
    let renewed = reply_cookie(&o).unwrap();
    let k = ask(knot.addr, FAST, RecordType::A, &made_old).await;
    assert_eq!(
        k.metadata.response_code,
        ResponseCode::BADCOOKIE,
        "Knot knows the new secret only"
    );
    // Meridian's cookies are made with the new secret: Knot accepts them, and Meridian Knot's.
    let at_knot = ask(knot.addr, FAST, RecordType::A, &renewed).await;
    assert_eq!(at_knot.metadata.response_code, ResponseCode::NoError);
    let from_knot = reply_cookie(&ask(knot.addr, FAST, RecordType::A, &[6; 8]).await).unwrap();
    let from_us = reply_cookie(&ask(m.udp, FAST, RecordType::A, &[6; 8]).await).unwrap();
    let at_us = ask(m.udp, FAST, RecordType::A, &from_knot).await;
    let at_knot = ask(knot.addr, FAST, RecordType::A, &from_us).await;
    assert_eq!(at_us.metadata.response_code, ResponseCode::NoError);
    assert_eq!(at_knot.metadata.response_code, ResponseCode::NoError);
    m.stop().await;
}
