//! One health probe, run once: connect to a member (TCP, a TCP dialogue, HTTP, HTTPS, DNS) or
//! run a command for it, judge the answer, and say why it failed in words an operator can act
//! on (`http 503`, `connect refused`, `tls: certificate expired`).
//!
//! This is the seam between health checking and the network, so it is a trait with a real
//! implementation ([`NetProbe`]) and a scripted one ([`FakeProbe`]) for tests of the prober and
//! of the server. Scheduling, hysteresis and publishing live elsewhere; a probe only probes.
//!
//! Every probe is bounded as a whole (connect, TLS handshake, request and body read) by
//! [`ProbeSpec::timeout`] on tokio's clock, and opens a fresh connection: no pooling, no TLS
//! session resumption, no proxy, no redirects followed. Reusing a connection or a TLS session
//! would let a dead server or an expired certificate look healthy until the cache ran out.

mod agent;
mod dns;
mod error;
mod exec;
mod fake;
mod script;
mod tls;
mod weight;

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use error::{ProbeError, ProbeSetupError, TlsError};
pub use fake::FakeProbe;
pub use tls::plain_http_client;

use error::{classify, connect_error, innermost};
use tls::{FixedVerdict, client, tls_config};

use crate::model::{HttpCheck, HttpMethod, ProbeKind, ProbeSpec, WeightFrom};

/// The outcome of one probe and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// `Ok` when the member passed, otherwise why not.
    pub outcome: Result<(), ProbeError>,
    /// Time from the start of the probe to its verdict (about the timeout when it timed out).
    pub latency: Duration,
    /// The weight share (0-100) the member reported, when it passed and its monitor reads one.
    pub weight: Option<u8>,
}

impl ProbeResult {
    /// Did the member pass?
    pub fn is_ok(&self) -> bool {
        self.outcome.is_ok()
    }
}

/// Runs one probe. Implementations must bound the whole probe by [`ProbeSpec::timeout`].
pub trait Probe: Send + Sync + 'static {
    /// Probes `spec.target` once and reports the outcome and its latency.
    fn probe(&self, spec: &ProbeSpec) -> impl Future<Output = ProbeResult> + Send;
}

/// The real probe: tokio TCP connects, and reqwest (rustls with *ring*) for HTTP and HTTPS.
///
/// Build it once at startup (it reads the system's CA certificates) and share it: cloning is
/// cheap and clones share their clients. Every probe still opens its own connection.
#[derive(Clone)]
pub struct NetProbe {
    /// For plain HTTP and for verified HTTPS whose name is the target address.
    verifying: reqwest::Client,
    /// For HTTPS with `verify_tls = false` whose name is the target address.
    insecure: reqwest::Client,
    /// TLS settings from which per-probe clients are built when a `host` must be both SNI and
    /// the name checked while connecting to the target address.
    verifying_tls: Arc<ClientConfig>,
    insecure_tls: Arc<ClientConfig>,
    /// Slots of `exec` monitors (their `max_concurrent`), shared by clones.
    exec: exec::Slots,
}

impl fmt::Debug for NetProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetProbe").finish_non_exhaustive()
    }
}

impl NetProbe {
    /// A probe trusting the system's CA certificates. Reads them from disk, so call it once.
    ///
    /// With no system CA certificates at all, verified HTTPS probes fail as `tls: unknown
    /// issuer` (and a warning is logged) rather than Meridian refusing to start.
    pub fn new() -> Result<NetProbe, ProbeSetupError> {
        NetProbe::with_root_certificates(Vec::new())
    }

    /// A probe trusting the system's CA certificates plus `roots` (DER), for members whose
    /// certificates come from a private CA.
    pub fn with_root_certificates(roots: Vec<Vec<u8>>) -> Result<NetProbe, ProbeSetupError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = RootCertStore::empty();
        for (index, der) in roots.into_iter().enumerate() {
            store
                .add(CertificateDer::from(der))
                .map_err(|source| ProbeSetupError::RootCertificate { index, source })?;
        }
        let native = rustls_native_certs::load_native_certs();
        for error in &native.errors {
            tracing::warn!(%error, "reading system CA certificates for https probes");
        }
        let (added, ignored) = store.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system CA certificates for https probes");

        let algorithms = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = if store.is_empty() {
            tracing::warn!("no CA certificates found; verified https probes will fail");
            Arc::new(FixedVerdict {
                accept: false,
                algorithms,
            })
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(ProbeSetupError::Verifier)?
        };
        let verifying_tls = Arc::new(tls_config(&provider, verifier)?);
        let insecure_tls = Arc::new(tls_config(
            &provider,
            Arc::new(FixedVerdict {
                accept: true,
                algorithms,
            }),
        )?);
        Ok(NetProbe {
            verifying: client(&verifying_tls, None, None)?,
            insecure: client(&insecure_tls, None, None)?,
            verifying_tls,
            insecure_tls,
            exec: exec::Slots::default(),
        })
    }

    /// Runs the probe; on success, the weight share the member reported, if any.
    async fn run(&self, spec: &ProbeSpec) -> Result<Option<u8>, ProbeError> {
        match &spec.kind {
            ProbeKind::Tcp => match connect(spec.target, spec.source).await {
                Ok(_stream) => Ok(None),
                Err(e) => Err(connect_error(&e)),
            },
            ProbeKind::Http(check) => self.http(check, spec, false).await,
            ProbeKind::Https(check) => self.http(check, spec, true).await,
            ProbeKind::TcpScript(script) => match connect(spec.target, spec.source).await {
                Ok(stream) => script::run(script, stream, spec.timeout)
                    .await
                    .map(|()| None),
                Err(e) => Err(connect_error(&e)),
            },
            ProbeKind::Dns(check) => dns::run(check, spec).await.map(|()| None),
            ProbeKind::Exec(check) => self.exec.run(check, spec).await,
            ProbeKind::Agent => agent::probe(spec.target, spec.source).await,
        }
    }

    async fn http(
        &self,
        check: &HttpCheck,
        spec: &ProbeSpec,
        tls: bool,
    ) -> Result<Option<u8>, ProbeError> {
        let target = spec.target;
        let scheme = if tls { "https" } else { "http" };
        let slash = if check.path.starts_with('/') { "" } else { "/" };
        let path = &check.path;
        let verify = !tls || check.verify_tls;
        // For HTTPS the host must be the URL's host, so that it is the SNI and the name the
        // certificate is checked against, while the connection still goes to the target: a
        // client of its own with a resolver override does that. An IP-literal host, or plain
        // HTTP, just needs the Host header.
        let named = check
            .host
            .as_deref()
            .filter(|h| tls && h.parse::<IpAddr>().is_err());
        let config = if verify {
            &self.verifying_tls
        } else {
            &self.insecure_tls
        };
        let source = spec.source.filter(|s| s.is_ipv4() == target.is_ipv4());
        let own_client = |resolve| {
            client(config, resolve, source).map_err(|e| ProbeError::Http(innermost(&e).to_string()))
        };
        let (client, url, tls_name) = match named {
            Some(host) => {
                let client = own_client(Some((host, target)))?;
                let url = format!("{scheme}://{host}:{}{slash}{path}", target.port());
                (client, url, host.to_string())
            }
            None => {
                let client = match source {
                    Some(_) => own_client(None)?,
                    None if verify => self.verifying.clone(),
                    None => self.insecure.clone(),
                };
                let url = format!("{scheme}://{target}{slash}{path}");
                (client, url, target.ip().to_string())
            }
        };
        let url = reqwest::Url::parse(&url)
            .map_err(|e| ProbeError::Http(format!("invalid url {url:?}: {e}")))?;
        let method = match check.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Head => reqwest::Method::HEAD,
        };
        let mut request = client
            .request(method, url)
            .header(reqwest::header::CONNECTION, "close");
        if let Some(host) = &check.host {
            request = request.header(reqwest::header::HOST, host.as_str());
        }
        let mut response = request.send().await.map_err(|e| classify(&e, &tls_name))?;
        let status = response.status().as_u16();
        if !check.expect_status.matches(status) {
            return Err(ProbeError::Status(status));
        }
        let from = check.weight_from.as_ref();
        let mut share = match from {
            Some(WeightFrom::Header(h)) => weight::from_header(response.headers(), h),
            _ => None,
        };
        if check.expect_body.is_none() && !weight::needs_body(from) {
            return Ok(share);
        }
        let mut body = Vec::new();
        while body.len() < check.body_limit {
            match response
                .chunk()
                .await
                .map_err(|e| classify(&e, &tls_name))?
            {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(check.body_limit);
        if let Some(needle) = &check.expect_body
            && !contains(&body, needle.as_bytes())
        {
            return Err(ProbeError::BodyMismatch(needle.clone()));
        }
        if let Some(WeightFrom::Json(pointer)) = from {
            share = weight::from_json(&body, pointer);
        }
        Ok(share)
    }
}

impl Probe for NetProbe {
    async fn probe(&self, spec: &ProbeSpec) -> ProbeResult {
        let start = Instant::now();
        let outcome = match tokio::time::timeout(spec.timeout, self.run(spec)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) if matches!(spec.kind, ProbeKind::Dns(_)) => {
                Err(ProbeError::Dns("timeout".to_string()))
            }
            Err(_elapsed) => Err(ProbeError::Timeout(spec.timeout)),
        };
        let weight = outcome.as_ref().ok().copied().flatten();
        ProbeResult {
            outcome: outcome.map(|_| ()),
            latency: start.elapsed(),
            weight,
        }
    }
}

/// A TCP connect to `target`, from `source` when one of its address family is set.
async fn connect(target: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source.filter(|s| s.is_ipv4() == target.is_ipv4()) else {
        return TcpStream::connect(target).await;
    };
    let socket = if target.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(target).await
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DEFAULT_BODY_LIMIT, StatusMatch};

    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd,
    };
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpSocket};
    use tokio::sync::mpsc;
    use tokio::task::{JoinHandle, JoinSet};

    /// Timeout of probes expected to finish: generous, so only a real hang trips it.
    const LONG: Duration = Duration::from_secs(5);

    /// How a [`Backend`] treats a request.
    #[derive(Clone, Copy)]
    enum Reply {
        Canned,
        /// Reads the request and never answers.
        Silent,
        /// Reads the request and resets the connection.
        Reset,
    }

    /// A backend on 127.0.0.1:0 answering every request with one canned HTTP/1.1 response.
    struct Backend {
        status: u16,
        body: String,
        headers: String,
        reply: Reply,
        tls: Option<Arc<rustls::ServerConfig>>,
    }

    impl Backend {
        fn http() -> Backend {
            Backend {
                status: 200,
                body: "ok\n".to_string(),
                headers: String::new(),
                reply: Reply::Canned,
                tls: None,
            }
        }

        fn https(cert: &Leaf) -> Backend {
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.clone()], cert.key.clone_key())
            .unwrap();
            Backend {
                tls: Some(Arc::new(config)),
                ..Backend::http()
            }
        }

        fn status(mut self, status: u16) -> Backend {
            self.status = status;
            self
        }

        fn body(mut self, body: &str) -> Backend {
            self.body = body.to_string();
            self
        }

        fn header(mut self, line: &str) -> Backend {
            self.headers.push_str(line);
            self.headers.push_str("\r\n");
            self
        }

        fn silent(mut self) -> Backend {
            self.reply = Reply::Silent;
            self
        }

        fn reset(mut self) -> Backend {
            self.reply = Reply::Reset;
            self
        }

        async fn start(self) -> Running {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (seen, requests) = mpsc::unbounded_channel();
            let this = Arc::new(self);
            let task = tokio::spawn(async move {
                // Connection tasks live in the set, so aborting this task ends them too.
                let mut connections = JoinSet::new();
                while let Ok((stream, _)) = listener.accept().await {
                    let this = this.clone();
                    let seen = seen.clone();
                    connections.spawn(async move { this.serve(stream, seen).await });
                }
            });
            Running {
                addr,
                requests,
                task,
            }
        }

        async fn serve(&self, stream: TcpStream, seen: mpsc::UnboundedSender<String>) {
            match (&self.tls, self.reply) {
                (None, Reply::Reset) => {
                    let mut stream = stream;
                    let _ = seen.send(read_head(&mut stream).await);
                    stream.set_zero_linger().unwrap();
                }
                (None, _) => self.answer(stream, seen).await,
                (Some(config), _) => {
                    // A handshake the client rejects just ends the connection.
                    let acceptor = tokio_rustls::TlsAcceptor::from(config.clone());
                    if let Ok(stream) = acceptor.accept(stream).await {
                        self.answer(stream, seen).await;
                    }
                }
            }
        }

        async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
            &self,
            mut stream: S,
            seen: mpsc::UnboundedSender<String>,
        ) {
            let head = read_head(&mut stream).await;
            let head_only = head.starts_with("HEAD ");
            let _ = seen.send(head);
            if let Reply::Silent = self.reply {
                std::future::pending::<()>().await;
            }
            let body = if head_only { "" } else { self.body.as_str() };
            let response = format!(
                "HTTP/1.1 {} Canned\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{body}",
                self.status,
                self.body.len(),
                self.headers,
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }

    /// A started [`Backend`]; dropping it stops it.
    struct Running {
        addr: SocketAddr,
        requests: mpsc::UnboundedReceiver<String>,
        task: JoinHandle<()>,
    }

    impl Running {
        /// The head of the next request the backend received.
        async fn request(&mut self) -> String {
            tokio::time::timeout(LONG, self.requests.recv())
                .await
                .expect("a request within the timeout")
                .expect("backend running")
        }
    }

    impl Drop for Running {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> String {
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    /// A server certificate and its key.
    struct Leaf {
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    }

    fn key_der(key: &KeyPair) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
    }

    fn self_signed(name: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Leaf {
            cert: cert.der().clone(),
            key: key_der(&key),
        }
    }

    fn ca() -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Meridian test CA");
        CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
    }

    fn issued(ca: &CertifiedIssuer<'static, KeyPair>, name: &str, expired: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, ca).unwrap();
        Leaf {
            cert: cert.der().clone(),
            key: key_der(&key),
        }
    }

    fn spec(kind: ProbeKind, target: SocketAddr) -> ProbeSpec {
        ProbeSpec {
            kind,
            target,
            timeout: LONG,
            source: None,
        }
    }

    /// The outcome of one probe, as operators would read it.
    async fn outcome(probe: &NetProbe, spec: ProbeSpec) -> Result<(), String> {
        probe.probe(&spec).await.outcome.map_err(|e| e.to_string())
    }

    async fn http(probe: &NetProbe, target: SocketAddr, check: HttpCheck) -> Result<(), String> {
        outcome(probe, spec(ProbeKind::Http(check), target)).await
    }

    async fn https(probe: &NetProbe, target: SocketAddr, check: HttpCheck) -> Result<(), String> {
        outcome(probe, spec(ProbeKind::Https(check), target)).await
    }

    fn host(name: &str, verify_tls: bool) -> HttpCheck {
        HttpCheck {
            host: Some(name.to_string()),
            verify_tls,
            ..HttpCheck::default()
        }
    }

    fn expect_body(text: &str) -> HttpCheck {
        HttpCheck {
            expect_body: Some(text.to_string()),
            ..HttpCheck::default()
        }
    }

    #[tokio::test]
    async fn tcp_listening_port_passes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let probe = NetProbe::new().unwrap();
        let result = probe
            .probe(&spec(ProbeKind::Tcp, listener.local_addr().unwrap()))
            .await;
        assert_eq!(result.outcome, Ok(()));
        assert!(result.latency < LONG);
    }

    #[tokio::test]
    async fn tcp_closed_port_is_refused() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let probe = NetProbe::new().unwrap();
        assert_eq!(
            outcome(&probe, spec(ProbeKind::Tcp, closed)).await,
            Err("connect refused".to_string())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tcp_timeout_runs_on_tokio_time() {
        // A listener with a backlog of 0 whose one queue slot is taken and never accepted:
        // the kernel drops further SYNs, so the probe's connect hangs.
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(0).unwrap();
        let addr = listener.local_addr().unwrap();
        let _queued = TcpStream::connect(addr).await.unwrap();
        let probe = NetProbe::new().unwrap();
        let result = probe
            .probe(&ProbeSpec {
                kind: ProbeKind::Tcp,
                target: addr,
                timeout: Duration::from_secs(1),
                source: None,
            })
            .await;
        assert_eq!(result.outcome.unwrap_err().to_string(), "timeout after 1s");
        assert_eq!(result.latency, Duration::from_secs(1));
    }

    #[tokio::test]
    async fn http_status_decides() {
        let probe = NetProbe::new().unwrap();
        let up = Backend::http().start().await;
        assert_eq!(http(&probe, up.addr, HttpCheck::default()).await, Ok(()));

        let down = Backend::http().status(503).start().await;
        let result = http(&probe, down.addr, HttpCheck::default()).await;
        assert_eq!(result, Err("http 503".to_string()));

        let only_204 = HttpCheck {
            expect_status: StatusMatch::Codes(vec![204]),
            ..HttpCheck::default()
        };
        let result = http(&probe, up.addr, only_204).await;
        assert_eq!(result, Err("http 200".to_string()));
    }

    #[tokio::test]
    async fn http_redirects_are_statuses_not_followed() {
        let probe = NetProbe::new().unwrap();
        let mut moved = Backend::http()
            .status(302)
            .header("Location: /elsewhere")
            .start()
            .await;
        assert_eq!(http(&probe, moved.addr, HttpCheck::default()).await, Ok(()));
        let only_200 = HttpCheck {
            expect_status: StatusMatch::Codes(vec![200]),
            ..HttpCheck::default()
        };
        let result = http(&probe, moved.addr, only_200).await;
        assert_eq!(result, Err("http 302".to_string()));
        moved.request().await;
        moved.request().await;
        assert!(
            moved.requests.try_recv().is_err(),
            "the redirect was followed"
        );
    }

    #[tokio::test]
    async fn http_body_must_contain_the_expected_text() {
        let probe = NetProbe::new().unwrap();
        let good = Backend::http().body("status: ok\n").start().await;
        assert_eq!(http(&probe, good.addr, expect_body("ok")).await, Ok(()));

        let other = Backend::http().body("all good").start().await;
        let result = http(&probe, other.addr, expect_body("ok")).await;
        assert_eq!(result, Err(r#"body did not contain "ok""#.to_string()));

        let late = format!("{}ok", "x".repeat(DEFAULT_BODY_LIMIT));
        let too_late = Backend::http().body(&late).start().await;
        let result = http(&probe, too_late.addr, expect_body("ok")).await;
        assert_eq!(result, Err(r#"body did not contain "ok""#.to_string()));
    }

    #[tokio::test]
    async fn http_silent_server_times_out() {
        let probe = NetProbe::new().unwrap();
        let mut silent = Backend::http().silent().start().await;
        let result = probe
            .probe(&ProbeSpec {
                kind: ProbeKind::Http(HttpCheck::default()),
                target: silent.addr,
                timeout: Duration::from_millis(200),
                source: None,
            })
            .await;
        assert_eq!(
            result.outcome.unwrap_err().to_string(),
            "timeout after 200ms"
        );
        assert!(result.latency >= Duration::from_millis(200));
        silent.request().await;
    }

    #[tokio::test]
    async fn http_reset_is_reported() {
        let probe = NetProbe::new().unwrap();
        let reset = Backend::http().reset().start().await;
        let result = http(&probe, reset.addr, HttpCheck::default()).await;
        assert_eq!(result, Err("connection reset".to_string()));
    }

    #[tokio::test]
    async fn http_sends_method_path_host_and_user_agent() {
        let probe = NetProbe::new().unwrap();
        let mut backend = Backend::http().start().await;
        let check = HttpCheck {
            path: "/healthz?deep=1".to_string(),
            ..host("probe.example", true)
        };
        assert_eq!(http(&probe, backend.addr, check).await, Ok(()));
        let head = backend.request().await.to_ascii_lowercase();
        assert!(
            head.starts_with("get /healthz?deep=1 http/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nhost: probe.example\r\n"), "{head}");
        let agent = format!(
            "\r\nuser-agent: meridian-health/{}\r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert!(head.contains(&agent), "{head}");

        let head_check = HttpCheck {
            method: HttpMethod::Head,
            ..HttpCheck::default()
        };
        assert_eq!(http(&probe, backend.addr, head_check).await, Ok(()));
        let head = backend.request().await.to_ascii_lowercase();
        assert!(head.starts_with("head / http/1.1\r\n"), "{head}");
        let ip_host = format!("\r\nhost: {}\r\n", backend.addr);
        assert!(head.contains(&ip_host), "{head}");
    }

    #[tokio::test]
    async fn https_self_signed_passes_only_unverified() {
        let probe = NetProbe::new().unwrap();
        let backend = Backend::https(&self_signed("localhost")).start().await;
        let unverified = HttpCheck {
            verify_tls: false,
            ..HttpCheck::default()
        };
        assert_eq!(https(&probe, backend.addr, unverified).await, Ok(()));
        let result = https(&probe, backend.addr, host("localhost", false)).await;
        assert_eq!(result, Ok(()));
        let result = https(&probe, backend.addr, host("localhost", true)).await;
        assert_eq!(result, Err("tls: unknown issuer".to_string()));
    }

    #[tokio::test]
    async fn https_private_ca_checks_expiry_and_name() {
        let ca = ca();
        let probe = NetProbe::with_root_certificates(vec![ca.der().to_vec()]).unwrap();

        let mut good = Backend::https(&issued(&ca, "localhost", false))
            .start()
            .await;
        assert_eq!(
            https(&probe, good.addr, host("localhost", true)).await,
            Ok(())
        );
        let head = good.request().await.to_ascii_lowercase();
        assert!(head.contains("\r\nhost: localhost\r\n"), "{head}");
        let result = https(&probe, good.addr, HttpCheck::default()).await;
        assert_eq!(
            result,
            Err(r#"tls: certificate not valid for name "127.0.0.1""#.to_string())
        );
        let system_only = NetProbe::new().unwrap();
        let result = https(&system_only, good.addr, host("localhost", true)).await;
        assert_eq!(result, Err("tls: unknown issuer".to_string()));

        let expired = Backend::https(&issued(&ca, "localhost", true))
            .start()
            .await;
        let result = https(&probe, expired.addr, host("localhost", true)).await;
        assert_eq!(result, Err("tls: certificate expired".to_string()));

        let elsewhere = Backend::https(&issued(&ca, "other.example", false))
            .start()
            .await;
        let result = https(&probe, elsewhere.addr, host("localhost", true)).await;
        assert_eq!(
            result,
            Err(r#"tls: certificate not valid for name "localhost""#.to_string())
        );

        let failing = Backend::https(&issued(&ca, "localhost", false))
            .status(503)
            .start()
            .await;
        let result = https(&probe, failing.addr, host("localhost", true)).await;
        assert_eq!(result, Err("http 503".to_string()));
    }

    #[test]
    fn bad_root_certificate_is_refused() {
        let err =
            NetProbe::with_root_certificates(vec![b"not a certificate".to_vec()]).unwrap_err();
        assert!(matches!(
            err,
            ProbeSetupError::RootCertificate { index: 0, .. }
        ));
    }
}
