//! The status page in a real browser: headless Chromium (Debian's `chromium`; the test fails
//! rather than skips without it) opens `/`, sees a member up, the test stops that member's
//! backend, and the page shows it down without a reload. Driven over the DevTools protocol
//! (`--remote-debugging-port=0`, the port read from Chromium's stderr); screenshots of a
//! desktop and a phone-sized viewport go to `CARGO_TARGET_TMPDIR` for a person to look at.
//! A signed zone's DNSSEC table shows the key, DS and signature cache `/api/v1/status` reports.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::backend::Backend;
use crate::support::{A, B, Meridian, QueryBuilder, get, member, udp_exchange, www};

/// Bound on Chromium's start-up and on each page change the test waits for.
const PATIENCE: Duration = Duration::from_secs(30);

/// A headless Chromium and a DevTools session on one page.
struct Browser {
    child: Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium and opens `url` in a new page.
    async fn open(url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium runs (Debian package `chromium`)");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let endpoint = tokio::time::timeout(PATIENCE, async {
            while let Some(line) = lines.next_line().await.expect("chromium stderr") {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_string();
                }
            }
            panic!("chromium exited without a DevTools endpoint")
        })
        .await
        .expect("chromium printed its DevTools endpoint in time");
        // Keep draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(endpoint.as_str())
            .await
            .expect("DevTools websocket");
        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({ "url": url }))
            .await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        browser.session = attached["sessionId"]
            .as_str()
            .expect("session id")
            .to_string();
        browser
    }

    /// Sends one DevTools command (to the page once attached) and returns its result.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = Value::from(self.session.clone());
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .await
            .expect("send to DevTools");
        let reply = tokio::time::timeout(PATIENCE, async {
            loop {
                let frame = self.ws.next().await.expect("DevTools open").expect("frame");
                let Message::Text(text) = frame else { continue };
                let value: Value = serde_json::from_str(&text).expect("DevTools JSON");
                if value["id"] == id {
                    return value;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{method}: no reply in time"));
        assert!(reply["error"].is_null(), "{method}: {reply}");
        reply["result"].clone()
    }

    /// Evaluates `expression` in the page and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it evaluates to `want`, for at most [`PATIENCE`].
    async fn until(&mut self, expression: &str, want: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.eval(expression).await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "page: {expression} is {got}, never {want:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves a PNG of the page at `width`×`height` CSS pixels to `path`.
    async fn screenshot(&mut self, path: &PathBuf, (width, height): (u32, u32), mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .await;
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = data_encoding::BASE64
            .decode(shot["data"].as_str().expect("screenshot data").as_bytes())
            .expect("base64 PNG");
        std::fs::write(path, png).expect("write screenshot");
    }

    async fn close(mut self) {
        self.session.clear();
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.call("Browser.close", json!({})),
        )
        .await;
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

#[tokio::test]
async fn status_page_shows_a_member_going_down_without_a_reload() {
    let a = Backend::http().start().await;
    let b = Backend::http().start().await;
    let m = Meridian::start(
        "",
        &format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n{}",
            www(&[member(A, &a), member(B, &b)])
        ),
    )
    .await;
    let page = format!("http://{}/", m.http.expect("[http]"));
    let mut browser = Browser::open(&page).await;

    let state_of = |address: &str, backend: &Backend| {
        format!(
            "document.querySelector('[data-member=\"web/{address}:{}\"] .state')?.textContent ?? ''",
            backend.port()
        )
    };
    browser.until(&state_of(A, &a), "up").await;
    browser.until(&state_of(B, &b), "up").await;
    let loads = browser
        .eval("performance.getEntriesByType('navigation').length")
        .await;

    a.stop().await;
    browser.until(&state_of(A, &a), "down").await;
    // The same document, updated in place: no navigation happened.
    assert_eq!(
        browser
            .eval("performance.getEntriesByType('navigation').length")
            .await,
        loads
    );
    browser.until(&state_of(B, &b), "up").await;
    // The timeline shows the flip with its reason.
    let timeline = browser
        .eval("document.getElementById('events').textContent")
        .await;
    let timeline = timeline.as_str().unwrap_or_default();
    assert!(timeline.contains("connect refused"), "{timeline}");

    // B fails, recovers: its reason column shows the failure as past.
    b.set_status(503);
    browser.until(&state_of(B, &b), "down").await;
    b.set_status(200);
    browser.until(&state_of(B, &b), "up").await;
    let reason = format!(
        "document.querySelector('[data-member=\"web/{B}:{}\"] td[data-label=\"reason\"]')?.textContent ?? ''",
        b.port()
    );
    let text = browser.eval(&reason).await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.starts_with("last failure ") && text.ends_with(" ago: http 503"),
        "{text}"
    );

    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&dir.join("status-page.png"), (1280, 900), false)
        .await;
    browser
        .screenshot(&dir.join("status-page-phone.png"), (390, 844), true)
        .await;
    browser.close().await;
}

#[tokio::test]
async fn status_page_shows_the_dnssec_table_the_api_reports() {
    let key = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keys/example.test.pem");
    let m = Meridian::start(
        "",
        &format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n[dnssec.\"example.test.\"]\nkey = {:?}\n",
            key.display().to_string()
        ),
    )
    .await;
    // One signature made, then served three times from the cache: 1 entry, 75.0% hits.
    for _ in 0..4 {
        let q = QueryBuilder::new("static.example.test.", hickory_proto::rr::RecordType::A)
            .edns(1232)
            .dnssec_ok()
            .build();
        udp_exchange(m.udp, &q).await;
    }
    let (code, body) = get(&m, "/api/v1/status").await;
    assert_eq!(code, 200, "{body}");
    let status: Value = serde_json::from_str(&body).expect("status JSON");
    let zone = &status["dnssec"][0];
    assert_eq!(zone["zone"], "example.test.", "{status}");
    assert_eq!(zone["cache_entries"], 1, "{zone}");
    assert_eq!(zone["cache_hit_rate"], 0.75, "{zone}");

    let mut browser = Browser::open(&format!("http://{}/", m.http.expect("[http]"))).await;
    let cell = |label: &str| {
        format!(
            "document.querySelector('#dnssec tr[data-zone=\"example.test.\"] td[data-label=\"{label}\"]')?.textContent ?? ''"
        )
    };
    let key_cell = format!(
        "tag {}, algorithm {} ({})",
        zone["key_tag"],
        zone["algorithm"],
        zone["algorithm_name"].as_str().expect("algorithm name")
    );
    browser.until(&cell("key"), &key_cell).await;
    browser
        .until(&cell("DS"), zone["ds"].as_str().expect("ds"))
        .await;
    browser.until(&cell("cache"), "1 entries, 75.0% hits").await;
    assert_eq!(
        browser
            .eval("document.getElementById('dnssec-section').hidden")
            .await,
        false
    );
    browser
        .screenshot(
            &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page-dnssec.png"),
            (1280, 900),
            false,
        )
        .await;
    browser.close().await;
}
