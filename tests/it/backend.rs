//! Real backends for health-check tests: a server on `127.0.0.1:0` that Meridian's prober probes
//! over real TCP, HTTP or HTTPS, and that the test can fail, hang, stop and count while
//! Meridian runs, so a test reads like the scenario:
//! `let b = Backend::http().status(503).start().await;`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// Most bytes of a request head read; a probe's head is far smaller.
const MAX_HEAD: usize = 16 * 1024;

/// How long a connection may take to send its request head before it is dropped.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// What a backend speaks.
#[derive(Clone)]
enum Protocol {
    /// Accepts connections and closes them at once (for `type = "tcp"` monitors).
    Tcp,
    /// HTTP/1.1, one request per connection.
    Http,
    /// HTTP/1.1 over TLS with a self-signed certificate for `localhost`.
    Https(Arc<rustls::ServerConfig>),
}

/// How the backend answers requests now; changed by the test while Meridian probes it.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    /// Extra header lines (`Name: value`), each sent as is.
    headers: Vec<String>,
    hang: bool,
    /// How long to wait after reading a request before answering it.
    delay: Duration,
}

/// A backend to be started: `Backend::http().status(503).body("nope").start().await`.
pub struct BackendBuilder {
    protocol: Protocol,
    reply: Reply,
}

impl BackendBuilder {
    /// The status code of every answer (default 200).
    pub fn status(mut self, status: u16) -> BackendBuilder {
        self.reply.status = status;
        self
    }

    /// The body of every answer (default `ok`).
    pub fn body(mut self, body: &str) -> BackendBuilder {
        self.reply.body = body.to_string();
        self
    }

    /// Wait this long after each request before answering (default: not at all).
    pub fn delay(mut self, delay: Duration) -> BackendBuilder {
        self.reply.delay = delay;
        self
    }

    /// Binds `127.0.0.1:0` and serves until stopped or dropped.
    pub async fn start(self) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        self.serve(listener)
    }

    /// Binds `addr` (another loopback address, a chosen port), or gives up with the error.
    pub async fn start_at(self, addr: SocketAddr) -> std::io::Result<Backend> {
        Ok(self.serve(TcpListener::bind(addr).await?))
    }

    fn serve(self, listener: TcpListener) -> Backend {
        let addr = listener.local_addr().expect("backend address");
        let shared = Arc::new(Shared {
            reply: Mutex::new(self.reply),
            requests: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, self.protocol, shared.clone()));
        Backend {
            addr,
            shared,
            task: Mutex::new(Some(task)),
            _port_hold: Mutex::new(None),
        }
    }
}

/// What the accept loop and the test share.
struct Shared {
    reply: Mutex<Reply>,
    requests: AtomicU64,
}

impl Shared {
    fn reply(&self) -> MutexGuard<'_, Reply> {
        // A panicking connection task cannot leave a half-written reply; keep going.
        self.reply.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request and returns how to answer it. The count is taken under the same lock
    /// as the reply, so `let n = b.requests(); b.set_status(503);` guarantees that every 503
    /// answered is among the requests counted after `n`.
    fn take_request(&self) -> Reply {
        let reply = self.reply();
        self.requests.fetch_add(1, Ordering::SeqCst);
        reply.clone()
    }
}

/// A running backend on `127.0.0.1`; dropping it stops it.
pub struct Backend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
    /// After [`Backend::stop`]: a socket bound to the port but not listening, so connects are
    /// refused and no other test's listener can take the port meanwhile.
    _port_hold: Mutex<Option<TcpSocket>>,
}

impl Backend {
    /// An HTTP/1.1 backend answering `200 ok`, `Connection: close`.
    pub fn http() -> BackendBuilder {
        BackendBuilder {
            protocol: Protocol::Http,
            reply: Reply {
                status: 200,
                body: "ok".to_string(),
                headers: Vec::new(),
                hang: false,
                delay: Duration::ZERO,
            },
        }
    }

    /// An HTTPS backend with a fresh self-signed certificate for `localhost` (so only a
    /// monitor with `verify_tls = false` accepts it), otherwise like [`Backend::http`].
    pub fn https() -> BackendBuilder {
        BackendBuilder {
            protocol: Protocol::Https(self_signed_localhost()),
            ..Backend::http()
        }
    }

    /// A TCP backend: accepts every connection and closes it.
    pub fn tcp() -> BackendBuilder {
        BackendBuilder {
            protocol: Protocol::Tcp,
            ..Backend::http()
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Requests (HTTP) or connections (TCP) received so far, hanging ones included.
    pub fn requests(&self) -> u64 {
        // Under the reply lock: see `Shared::take_request`.
        let _reply = self.shared.reply();
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// From now on, answer with `status`.
    pub fn set_status(&self, status: u16) {
        self.shared.reply().status = status;
    }

    /// From now on, answer with `body`.
    pub fn set_body(&self, body: &str) {
        self.shared.reply().body = body.to_string();
    }

    /// From now on, send these extra header lines (`"X-Weight: 30"`) with every answer.
    pub fn set_headers(&self, headers: &[&str]) {
        self.shared.reply().headers = headers.iter().map(|h| h.to_string()).collect();
    }

    /// From now on, wait this long after each request before answering it.
    pub fn set_delay(&self, delay: Duration) {
        self.shared.reply().delay = delay;
    }

    /// From now on, accept and read requests but never answer them (the connection stays open
    /// until the client gives up).
    pub fn hang(&self) {
        self.shared.reply().hang = true;
    }

    /// Stops listening: connects are refused from when this returns. The accept task and every
    /// open connection are ended and the listening socket is closed before it returns.
    pub async fn stop(&self) {
        let task = self.task.lock().expect("task lock").take();
        if let Some(task) = task {
            task.abort();
            // Resolves once the task's future (which owns the listener and, through its
            // JoinSet, every connection) has been dropped, so the socket is closed.
            let _ = task.await;
        }
        // Keep the port bound (not listening), so the kernel refuses connects to it and does
        // not hand it to another test's `bind(127.0.0.1:0)`.
        let hold = TcpSocket::new_v4().expect("socket");
        hold.set_reuseaddr(true).expect("SO_REUSEADDR");
        let held = hold.bind(self.addr);
        if held.is_ok() {
            *self._port_hold.lock().expect("hold lock") = Some(hold);
        }
        if held.is_err() {
            // Another test's socket took the port between our close and the hold: our
            // listener is gone (its task ended above), and what answers there is not ours.
            return;
        }
        let mut refused = TcpStream::connect(self.addr).await;
        // Connecting to a free port of the ephemeral range can, rarely, pick that very port as
        // its source and connect to itself (TCP simultaneous open); that is not a listener.
        for _ in 0..3 {
            match &refused {
                Ok(s) if s.local_addr().ok() == s.peer_addr().ok() => {
                    refused = TcpStream::connect(self.addr).await;
                }
                _ => break,
            }
        }
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused),
            "backend {} still accepts connections after stop: {refused:?} (holding the port: \
             {held:?})",
            self.addr
        );
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().ok().and_then(Option::take) {
            task.abort();
        }
    }
}

async fn accept_loop(listener: TcpListener, protocol: Protocol, shared: Arc<Shared>) {
    // Connection tasks live in the set, so aborting this task ends them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let protocol = protocol.clone();
                let shared = shared.clone();
                connections.spawn(async move { serve(stream, protocol, &shared).await });
            }
            // Reap finished connections so the set does not grow over a long test.
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn serve(stream: TcpStream, protocol: Protocol, shared: &Shared) {
    match protocol {
        Protocol::Tcp => {
            shared.take_request();
            drop(stream);
        }
        Protocol::Http => answer(stream, shared).await,
        Protocol::Https(config) => {
            // A handshake the client rejects (an unverified certificate) just ends here.
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            if let Ok(Ok(stream)) =
                tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await
            {
                answer(stream, shared).await;
            }
        }
    }
}

/// Reads one request head and answers it as the reply says now.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, shared: &Shared) {
    let Ok(head) = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await else {
        return;
    };
    if head.is_empty() {
        return;
    }
    let reply = shared.take_request();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    if reply.hang {
        // Keep the connection open and silent until the client gives up and closes it.
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
        return;
    }
    let body = if head.starts_with("HEAD ") {
        ""
    } else {
        reply.body.as_str()
    };
    let response = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{body}",
        reply.status,
        reason(reply.status),
        body.len(),
        reply
            .headers
            .iter()
            .map(|h| format!("{h}\r\n"))
            .collect::<String>(),
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request head (up to the blank line, at most [`MAX_HEAD`] bytes); empty when the client
/// sent nothing.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

fn self_signed_localhost() -> Arc<rustls::ServerConfig> {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(vec![cert.der().clone()], key)
    .expect("server certificate");
    Arc::new(config)
}
