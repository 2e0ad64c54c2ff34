//! Binding listeners and running Meridian's tasks until shutdown. Library code never binds a
//! fixed port by itself: callers bind [`Listeners`] (tests on `127.0.0.1:0`) and pass them to
//! [`run`] with a cancellation token.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::api::{self, ApiState};
use crate::director;
use crate::dns::transport::{TcpLimits, serve_tcp, serve_udp};
use crate::health::probe::Probe;
use crate::health::prober::{self, Command, HealthControl};
use crate::metrics::Telemetry;
use crate::state::SharedState;

/// How long shutdown waits for open connections before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Bound sockets: one UDP socket and one TCP listener per DNS address, the HTTP API's, and one
/// TCP listener per director address.
#[derive(Debug)]
pub struct Listeners {
    /// UDP sockets, in config order.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners, in config order.
    pub tcp: Vec<TcpListener>,
    /// The HTTP API listener, if any.
    pub http: Option<TcpListener>,
    /// Director listeners with the address each was configured as (port 0 included), which
    /// names its director in the config.
    pub director: Vec<(SocketAddr, TcpListener)>,
}

impl Listeners {
    /// Binds UDP and TCP on every DNS address, and the HTTP address if given. For port 0 the
    /// DNS TCP listener takes the same port the kernel gave the UDP socket, so one `-p PORT`
    /// works for both.
    pub fn bind(dns: &[SocketAddr], http: Option<SocketAddr>) -> io::Result<Listeners> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for &addr in dns {
            let (u, t) = bind_pair(addr)?;
            udp.push(u);
            tcp.push(t);
        }
        let http = http
            .map(|addr| {
                tcp_listen(addr)
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot bind http {addr}: {e}")))
            })
            .transpose()?;
        Ok(Listeners {
            udp,
            tcp,
            http,
            director: Vec::new(),
        })
    }

    /// Also binds a TCP listener on every director address (`Model::director_listen`).
    pub fn with_directors(mut self, addrs: &[SocketAddr]) -> io::Result<Listeners> {
        for &addr in addrs {
            let listener = tcp_listen(addr).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot bind director {addr}: {e}"))
            })?;
            self.director.push((addr, listener));
        }
        Ok(self)
    }

    /// Local addresses of the director listeners, in config order.
    pub fn director_addrs(&self) -> Vec<SocketAddr> {
        self.director
            .iter()
            .filter_map(|(_, l)| l.local_addr().ok())
            .collect()
    }

    /// Local address of the HTTP listener.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Local addresses of the UDP sockets.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }

    /// Local addresses of the TCP listeners.
    pub fn tcp_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

/// Pending connections the kernel queues per TCP listener before `accept`. The standard
/// library's 128 overflows under connection bursts (clients then wait a full second for a SYN
/// retransmit); the kernel caps this at `net.core.somaxconn`.
const LISTEN_BACKLOG: i32 = 4096;

/// A TCP listener on `addr` (SO_REUSEADDR, as the standard library sets it) with
/// [`LISTEN_BACKLOG`].
fn tcp_listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let with_context = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("cannot bind {what} {addr}: {e}"))
    };
    if addr.port() != 0 {
        let u = UdpSocket::bind(addr).map_err(|e| with_context("udp", e))?;
        let t = tcp_listen(addr).map_err(|e| with_context("tcp", e))?;
        return Ok((u, t));
    }
    let mut last = None;
    for _ in 0..20 {
        let u = UdpSocket::bind(addr).map_err(|e| with_context("udp", e))?;
        let same_port = u.local_addr()?;
        match tcp_listen(same_port) {
            Ok(t) => return Ok((u, t)),
            Err(e) => last = Some(e),
        }
    }
    Err(with_context(
        "tcp",
        last.unwrap_or_else(|| io::Error::other("no free port")),
    ))
}

/// Runs the prober on its own thread with its own single-threaded runtime, so probe I/O
/// (connects, TLS handshakes, timers for thousands of targets) never queues behind DNS work on
/// the serving runtime's workers, and the operating system can schedule it on another core.
/// The returned receiver completes when the thread has finished.
fn spawn_health_thread(
    prober: impl Future<Output = ()> + Send + 'static,
) -> io::Result<tokio::sync::oneshot::Receiver<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("meridian-health".into())
        .spawn(move || {
            runtime.block_on(prober);
            let _ = done.send(());
        })?;
    Ok(finished)
}

/// Runs Meridian until `shutdown` is cancelled: starts health probing with `probe`, waits for
/// the first probe round (bounded by the probes' timeouts) so the first answers are already
/// health-checked, serves DNS (counting queries in `telemetry`), the directors and the HTTP API
/// on `listeners` from `state`, then waits up to [`SHUTDOWN_GRACE`] for open connections to
/// finish.
pub async fn run<P: Probe>(
    state: Arc<SharedState>,
    listeners: Listeners,
    probe: Arc<P>,
    (control, commands): (HealthControl, mpsc::Receiver<Command>),
    telemetry: Telemetry,
    shutdown: CancellationToken,
) -> io::Result<()> {
    // The directors keep their live state and counters here, where `/metrics` and the status
    // API read them.
    let directors = telemetry.directors.clone();
    let tracker = TaskTracker::new();
    let (probed_tx, mut probed) = watch::channel(false);
    let (ready_tx, ready) = watch::channel(false);
    let (bound, http) = {
        let model = state.load().model.clone();
        (
            prober::first_round_bound(&model, &prober::plan(&model)),
            model.http.clone(),
        )
    };
    let health = spawn_health_thread(prober::run(
        probe,
        state.clone(),
        commands,
        telemetry.clone(),
        probed_tx,
        shutdown.clone(),
    ))?;
    tracker.spawn(async move {
        // The sender is dropped when the thread ends, whether the prober returned or panicked.
        let _ = health.await;
    });
    let mut bound_to = Vec::new();
    if let Some(listener) = listeners.http {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let max_connections = http.as_ref().map_or(128, |h| h.max_connections);
        let api = ApiState {
            state: state.clone(),
            control: control.clone(),
            telemetry: telemetry.clone(),
            token: http.and_then(|h| h.admin_token),
            ready,
            started: (std::time::SystemTime::now(), tokio::time::Instant::now()),
            shutdown: shutdown.clone(),
        };
        info!("listening for http on {addr}");
        bound_to.push(format!("http {addr}"));
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = api::serve(listener, max_connections, api, shutdown).await {
                warn!(error = %e, "http server stopped");
            }
        });
    }
    tokio::select! {
        _ = probed.wait_for(|r| *r) => {}
        _ = tokio::time::sleep(bound) => warn!(
            "health: first probe round not complete after {bound:?}; serving with what is known"
        ),
        _ = shutdown.cancelled() => {}
    }

    let settings = state.load().model.dns.clone();
    let limits = TcpLimits {
        connections: Arc::new(Semaphore::new(settings.tcp_max_connections as usize)),
        idle_timeout: settings.tcp_idle_timeout,
    };
    for socket in listeners.udp {
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let socket = tokio::net::UdpSocket::from_std(socket)?;
        info!("listening for dns-udp on {addr}");
        bound_to.push(format!("dns-udp {addr}"));
        tracker.spawn(serve_udp(
            socket,
            state.clone(),
            telemetry.metrics.dns.clone(),
            shutdown.clone(),
        ));
    }
    for listener in listeners.tcp {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        info!("listening for dns-tcp on {addr}");
        bound_to.push(format!("dns-tcp {addr}"));
        tracker.spawn(serve_tcp(
            listener,
            state.clone(),
            telemetry.metrics.dns.clone(),
            limits.clone(),
            tracker.clone(),
            shutdown.clone(),
        ));
    }
    if !listeners.director.is_empty() {
        let ctx = director::Context {
            state: state.clone(),
            stats: directors.clone(),
            health: control.clone(),
            tracker: tracker.clone(),
        };
        tracker.spawn(director::supervise(ctx.clone(), shutdown.clone()));
        for (configured, listener) in listeners.director {
            listener.set_nonblocking(true)?;
            let addr = listener.local_addr()?;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            info!("listening for director on {addr}");
            bound_to.push(format!("director {addr}"));
            tracker.spawn(director::serve(
                listener,
                configured,
                ctx.clone(),
                shutdown.clone(),
            ));
        }
    }
    info!(
        "serving {}; listeners: {}",
        state.load().model.summary(),
        bound_to.join(", ")
    );
    let _ = ready_tx.send(true);
    shutdown.cancelled().await;
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            "{} tasks still running after {:?}, stopping anyway",
            tracker.len(),
            SHUTDOWN_GRACE
        );
        // Director connections close when told; give them a moment to do so.
        directors.close_all();
        let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    }
    info!("stopped");
    Ok(())
}
