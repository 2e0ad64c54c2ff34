//! HTTPS for the status page, API and metrics: real TLS clients (reqwest, `curl`, a raw
//! tokio-rustls connection and the `meridian` command) against certificates made by the test,
//! a renewal picked up by a reload while an open connection keeps working, and the config
//! errors and warnings.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use meridian::prober::probe::plain_http_client;

use crate::support::*;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as `cert.pem`/`key.pem`
/// into `dir`; returns the certificate (DER).
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".into()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed certificate");
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write cert");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write key");
    cert.der().clone()
}

const TLS: &str = "tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n";

fn https_config(listen: &str) -> String {
    format!("[http]\nlisten = \"{listen}\"\nadmin_token_file = \"admin.token\"\n{TLS}")
}

fn trusting(cert: &CertificateDer<'static>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("trust anchor");
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn reqwest_trusting(cert: &CertificateDer<'static>) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(trusting(cert))
        .no_proxy()
        .timeout(REPLY_TIMEOUT)
        .build()
        .expect("client")
}

/// A TLS connection to `addr` as `localhost`, and the certificate the server presented.
async fn connect(
    addr: SocketAddr,
    cert: &CertificateDer<'static>,
) -> (
    tokio_rustls::client::TlsStream<TcpStream>,
    CertificateDer<'static>,
) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(trusting(cert)))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let presented = tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone();
    (tls, presented)
}

/// One keep-alive `GET path` on an open connection; the status line.
async fn get_on(tls: &mut tokio_rustls::client::TlsStream<TcpStream>, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    // `/healthz` answers "ok\n" with a content-length: read until the body is in.
    while !reply.ends_with(b"ok\n") {
        let n = tokio::time::timeout(REPLY_TIMEOUT, tls.read(&mut buf))
            .await
            .expect("reply in time")
            .expect("read");
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&reply)
        );
        reply.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    text.lines().next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn the_api_serves_https_to_reqwest_and_curl_and_refuses_plain_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = write_cert(dir.path());
    write_token(dir.path());
    let m = Meridian::start_at(dir.path(), "", &https_config("127.0.0.1:0")).await;
    let addr = m.http.expect("http");

    let client = reqwest_trusting(&cert);
    let status = client
        .get(format!("https://localhost:{}/api/v1/status", addr.port()))
        .send()
        .await
        .expect("GET /api/v1/status over HTTPS");
    assert_eq!(status.status(), 200);
    let metrics = client
        .get(format!("https://127.0.0.1:{}/metrics", addr.port()))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("meridian_snapshot_generation"),
        "{metrics}"
    );
    // Admin calls need the token over HTTPS as over HTTP.
    let reload = |auth: Option<String>| {
        let mut r = client.post(format!("https://localhost:{}/api/v1/reload", addr.port()));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    assert_eq!(reload(None).await.expect("POST").status(), 401);
    assert_eq!(
        reload(Some(format!("Bearer {TOKEN}")))
            .await
            .expect("POST")
            .status(),
        200
    );

    let out = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "5", "--cacert"])
        .arg(dir.path().join("cert.pem"))
        .arg(format!("https://localhost:{}/healthz", addr.port()))
        .output()
        .await
        .expect("curl is installed (the README's test command installs it)");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    // Without the certificate trusted, curl refuses it.
    let out = tokio::process::Command::new("curl")
        .args(["--silent", "--max-time", "5"])
        .arg(format!("https://localhost:{}/healthz", addr.port()))
        .output()
        .await
        .expect("curl");
    assert_eq!(out.status.code(), Some(60), "curl: unknown issuer: {out:?}");

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = plain_http_client()
        .expect("client")
        .get(format!("http://{addr}/healthz"))
        .timeout(REPLY_TIMEOUT)
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");
    // ... and a failed handshake did not stop the listener.
    assert_eq!(
        client
            .get(format!("https://localhost:{}/healthz", addr.port()))
            .send()
            .await
            .expect("GET after a failed handshake")
            .status(),
        200
    );
}

#[tokio::test]
async fn a_reload_presents_a_renewed_certificate_and_open_connections_carry_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old = write_cert(dir.path());
    write_token(dir.path());
    let m = Meridian::start_at(dir.path(), "", &https_config("127.0.0.1:0")).await;
    let addr = m.http.expect("http");

    let (mut open, presented) = connect(addr, &old).await;
    assert_eq!(presented, old);
    assert_eq!(get_on(&mut open, "/healthz").await, "HTTP/1.1 200 OK");

    // `start_at` serves the config it wrote into `dir`: renew the files there and reload.
    let new = write_cert(dir.path());
    assert_ne!(new, old);
    let reloaded = meridian::reload::reload(&m.state, &m.control, &m.telemetry)
        .await
        .expect("reload with the renewed certificate");
    assert!(reloaded.warnings.is_empty(), "{reloaded:?}");

    let (mut fresh, presented) = connect(addr, &new).await;
    assert_eq!(
        presented, new,
        "a new connection gets the renewed certificate"
    );
    assert_eq!(get_on(&mut fresh, "/healthz").await, "HTTP/1.1 200 OK");
    // The connection opened before the reload still works, on its own certificate.
    assert_eq!(get_on(&mut open, "/healthz").await, "HTTP/1.1 200 OK");
    assert_eq!(open.get_ref().1.peer_certificates().unwrap()[0], old);

    // A broken renewal is refused and the running certificate stays.
    std::fs::write(dir.path().join("key.pem"), "not a key\n").expect("break key");
    let err = meridian::reload::reload(&m.state, &m.control, &m.telemetry)
        .await
        .expect_err("a reload with an unusable key is refused")
        .to_string();
    assert!(
        err.contains("meridian.toml:") && err.contains("http.tls_key") && err.contains("key.pem"),
        "{err}"
    );
    let (_, presented) = connect(addr, &new).await;
    assert_eq!(presented, new);
}

#[tokio::test]
async fn the_admin_and_explain_commands_speak_https_to_the_server_they_configure() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_cert(dir.path());
    write_token(dir.path());
    let port = child_port();
    let path = dir.path().join("meridian.toml");
    std::fs::write(
        &path,
        config_text(
            "",
            &[
                https_config(&format!("127.0.0.1:{port}")),
                format!("[pools.web]\nmembers = [{{ address = \"{A}\" }}]\n"),
                service(WWW, &["web"], ""),
            ]
            .concat(),
        ),
    )
    .expect("write config");
    let mut server = spawn_serve(&path);
    let stderr = server.stderr.take().expect("stderr");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let addrs = listening_addrs(&mut lines, &["https"]);
    assert_eq!(addrs[0].port(), port);
    // Keep reading the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));

    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .expect("run meridian")
    };
    let out = cli(&["admin", "reload"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.starts_with("reloaded (generation "), "{stdout}");

    let out = cli(&[
        "explain",
        "www.example.test.",
        "A",
        "--client",
        "192.0.2.1",
        "--json",
    ]);
    assert!(out.status.success(), "{out:?}");
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(body["health"], "live", "asked the running server: {body}");

    // Renewed on disk, not yet reloaded: the command says what to do instead of a bare
    // certificate error.
    write_cert(dir.path());
    let out = cli(&["admin", "reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr.contains("not reloaded yet"), "{stderr}");

    server.kill().expect("kill");
    server.wait().expect("wait");
}

#[test]
fn tls_keys_are_checked_with_file_and_line() {
    let zone = "$ORIGIN example.test.\n@ 300 IN SOA ns hostmaster 1 3600 600 86400 60\n@ 300 IN NS ns\nns 300 IN A 192.0.2.53\n";
    let base =
        "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n[http]\nlisten = \"127.0.0.1:0\"\n";
    let e = error_of(&format!("{base}tls_cert = \"cert.pem\"\n"), zone);
    assert_eq!(e, "DIR/meridian.toml:6: http.tls_cert needs http.tls_key");
    let e = error_of(&format!("{base}tls_key = \"key.pem\"\n"), zone);
    assert_eq!(e, "DIR/meridian.toml:6: http.tls_key needs http.tls_cert");
    let e = error_of(&format!("{base}{TLS}"), zone);
    assert!(
        e.starts_with("DIR/meridian.toml:6: http.tls_cert: DIR/cert.pem: cannot read it"),
        "{e}"
    );
}

#[test]
fn check_warns_about_admin_calls_beyond_loopback_without_tls() {
    let zone = "$ORIGIN example.test.\n@ 300 IN SOA ns hostmaster 1 3600 600 86400 60\n@ 300 IN NS ns\nns 300 IN A 192.0.2.53\n";
    let check = |http: &str| {
        let config = format!(
            "[dns]\nlisten = [\"127.0.0.1:0\"]\nzones = \"zones\"\n[http]\n{http}admin_token_file = \"admin.token\"\n"
        );
        let (dir, path) = config_dir(&config, zone);
        write_token(dir.path());
        write_cert(dir.path());
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .expect("run meridian check");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let open = check("listen = \"0.0.0.0:8053\"\n");
    assert!(
        open.contains("warning: http.listen 0.0.0.0:8053 is not a loopback address and admin calls are enabled without TLS"),
        "{open}"
    );
    assert!(!check(&format!("listen = \"0.0.0.0:8053\"\n{TLS}")).contains("warning"));
    assert!(!check("listen = \"127.0.0.1:8053\"\n").contains("warning"));
}
