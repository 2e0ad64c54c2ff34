//! Binding listeners and running Meridian's tasks until shutdown. Library code never binds a
//! fixed port by itself: callers bind [`Listeners`] (tests on `127.0.0.1:0`) and pass them to
//! [`run`] with a cancellation token.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::api::{self, ApiState};
use crate::director;
use crate::dns::rrl::RateLimit;
use crate::dns::transport::{TcpLimits, serve_tcp, serve_udp, udp};
use crate::dnstap::Dnstap;
use crate::metrics::Telemetry;
use crate::prober::probe::Probe;
use crate::prober::{self, HealthControl, Inbox};
use crate::state::SharedState;

/// How long shutdown waits for open connections before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Bound sockets: per DNS address one UDP socket per worker (all bound to it with
/// `SO_REUSEPORT`) and one TCP listener, the HTTP API's, and one TCP listener per director
/// address.
#[derive(Debug)]
pub struct Listeners {
    /// UDP sockets: per DNS address in config order, one per worker.
    pub udp: Vec<Vec<UdpSocket>>,
    /// TCP listeners, in config order.
    pub tcp: Vec<TcpListener>,
    /// The HTTP API listener, if any.
    pub http: Option<TcpListener>,
    /// Director listeners with the address each was configured as (port 0 included), which
    /// names its director in the config.
    pub director: Vec<(SocketAddr, TcpListener)>,
}

impl Listeners {
    /// Binds TCP and `workers` UDP sockets (at least one) on every DNS address, and the HTTP
    /// address if given. For port 0 the UDP sockets take the port the kernel gave the TCP
    /// listener, so one `-p PORT` works for both.
    pub fn bind(
        dns: &[SocketAddr],
        workers: usize,
        http: Option<SocketAddr>,
    ) -> io::Result<Listeners> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for &addr in dns {
            let (u, t) = bind_pair(addr, workers.max(1))?;
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

    /// Local addresses of the UDP sockets, one per DNS address.
    pub fn udp_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|group| group.first()?.local_addr().ok())
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

/// A new, unbound socket of `kind` for `addr`'s address family.
fn socket_for(
    addr: SocketAddr,
    kind: socket2::Type,
    protocol: socket2::Protocol,
) -> io::Result<socket2::Socket> {
    socket2::Socket::new(socket2::Domain::for_address(addr), kind, Some(protocol))
}

/// A TCP listener on `addr` (SO_REUSEADDR, as the standard library sets it) with
/// [`LISTEN_BACKLOG`].
fn tcp_listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket_for(addr, socket2::Type::STREAM, socket2::Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A TCP listener and `workers` UDP sockets on `addr`. The TCP listener is bound first and
/// without `SO_REUSEPORT`, so it holds the address alone: a second Meridian (or a test's second
/// server on port 0) fails there, instead of quietly joining the first one's UDP group, which
/// the kernel allows to any socket of the same user with `SO_REUSEPORT` set, even when the
/// port was picked by the kernel (port 0). For port 0, a UDP port already taken by another
/// socket means a new try with another TCP port.
fn bind_pair(addr: SocketAddr, workers: usize) -> io::Result<(Vec<UdpSocket>, TcpListener)> {
    let with_context = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("cannot bind {what} {addr}: {e}"))
    };
    if addr.port() != 0 {
        let t = tcp_listen(addr).map_err(|e| with_context("tcp", e))?;
        let u = udp_group(addr, workers).map_err(|e| with_context("udp", e))?;
        return Ok((u, t));
    }
    let mut last = None;
    for _ in 0..20 {
        let t = tcp_listen(addr).map_err(|e| with_context("tcp", e))?;
        match udp_group(t.local_addr()?, workers) {
            Ok(u) => return Ok((u, t)),
            Err(e) => last = Some(e),
        }
    }
    Err(with_context(
        "udp",
        last.unwrap_or_else(|| io::Error::other("no free port")),
    ))
}

/// `n` UDP sockets bound to `addr` with `SO_REUSEPORT`, among which the kernel spreads
/// datagrams by a hash of their source and destination (address and port), so one client's
/// queries keep going to the same worker.
fn udp_group(addr: SocketAddr, n: usize) -> io::Result<Vec<UdpSocket>> {
    (0..n)
        .map(|_| {
            let socket = socket_for(addr, socket2::Type::DGRAM, socket2::Protocol::UDP)?;
            socket.set_reuse_port(true)?;
            socket.bind(&addr.into())?;
            Ok(socket.into())
        })
        .collect()
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
    spawn_thread("meridian-health".into(), move || runtime.block_on(prober))
}

/// Runs `f` on a new OS thread called `name`. The returned receiver completes when the thread
/// has finished, whether `f` returned or panicked (the sender is dropped either way), so a
/// task can wait for it without blocking the runtime.
fn spawn_thread(
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<tokio::sync::oneshot::Receiver<()>> {
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name(name).spawn(move || {
        f();
        let _ = done.send(());
    })?;
    Ok(finished)
}

/// Keeps the dnstap writer on the `[dnstap]` of the snapshot in force: at start and after
/// every publish (a reload changes the model; health publishes cost a comparison). At
/// shutdown, waits for the writer thread to close its stream.
async fn follow_dnstap(state: Arc<SharedState>, tap: Arc<Dnstap>, shutdown: CancellationToken) {
    let mut changes = state.subscribe();
    let mut writer = None;
    loop {
        let model = state.load().model.clone();
        match tap.follow(model.dnstap.as_ref()) {
            Ok(Some(thread)) => writer = Some(thread),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "dnstap: cannot start the writer thread"),
        }
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { break },
            _ = shutdown.cancelled() => break,
        }
    }
    drop(tap);
    if let Some(thread) = writer {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
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
    (control, inbox): (HealthControl, Inbox),
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
    let mut inbox = inbox;
    let fleet_settings = state.load().model.fleet.clone();
    if let Some(settings) = fleet_settings {
        let (writer_end, fleet_end) = crate::health::fleet::link(settings.stale_peers);
        inbox.fleet = Some(writer_end);
        let (task, status) =
            crate::fleet::spawn(settings, fleet_end, state.clone(), shutdown.clone());
        let _ = telemetry.fleet.set(status);
        tracker.spawn(async move {
            let _ = task.await;
        });
    }
    let health = spawn_health_thread(prober::run(
        probe,
        state.clone(),
        inbox,
        telemetry.health(),
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
        let scheme = http.as_ref().map_or("http", |h| h.scheme());
        for w in http.iter().flat_map(|h| h.warnings()) {
            warn!("{w}");
        }
        let api = ApiState {
            state: state.clone(),
            control: control.clone(),
            telemetry: telemetry.clone(),
            token: http.and_then(|h| h.admin_token),
            ready,
            started: (std::time::SystemTime::now(), tokio::time::Instant::now()),
            shutdown: shutdown.clone(),
        };
        info!("listening for {scheme} on {addr}");
        bound_to.push(format!("{scheme} {addr}"));
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
    // One thread per UDP socket: a worker per listen address. Each blocks in its receive;
    // at shutdown a clone of its socket is shut down for reading, which wakes it. The threads
    // start at once (so the line below means they run) but answer only once everything is
    // up and `/readyz` says so; until then queries wait in their sockets.
    let mut wakers = Vec::new();
    let mut gates = Vec::new();
    // The rate limiter's table lives here, not in the model: a reload that keeps `[dns.rrl]`
    // keeps every bucket.
    let rrl = Arc::new(RateLimit::new());
    let tap = Arc::new(Dnstap::new(
        telemetry.metrics.dnstap.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(follow_dnstap(state.clone(), tap.clone(), shutdown.clone()));
    for group in listeners.udp {
        let Some(addr) = group.first().map(UdpSocket::local_addr).transpose()? else {
            continue;
        };
        let mut started = Vec::new();
        for socket in group {
            wakers.push(socket.try_clone()?);
            let (state, metrics) = (state.clone(), telemetry.metrics.dns.clone());
            let (rrl, tap) = (rrl.clone(), tap.clone());
            let shutdown = shutdown.clone();
            let (up, running) = tokio::sync::oneshot::channel();
            let (open, gate) = tokio::sync::oneshot::channel::<()>();
            started.push(running);
            gates.push(open);
            let done = spawn_thread(format!("meridian-dns-{}", wakers.len() - 1), move || {
                let _ = up.send(());
                // Dropped unopened when start-up failed: then there is nothing to serve.
                if gate.blocking_recv().is_ok() {
                    serve_udp(socket, state, metrics, (rrl, tap), shutdown);
                }
            })?;
            tracker.spawn(async move {
                let _ = done.await;
            });
        }
        for running in started {
            let _ = running.await;
        }
        info!("listening for dns-udp on {addr}");
        bound_to.push(format!("dns-udp {addr}"));
    }
    {
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            shutdown.cancelled().await;
            wakers.iter().for_each(udp::wake);
        });
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
            (telemetry.metrics.dns.clone(), tap.clone()),
            limits.clone(),
            tracker.clone(),
            shutdown.clone(),
        ));
    }
    if !listeners.director.is_empty() {
        let ctx = director::Context {
            state: state.clone(),
            stats: directors.clone(),
            health: control.passive(),
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
        "serving {}; {} DNS workers; listeners: {}",
        state.load().model.summary(),
        settings.workers,
        bound_to.join(", ")
    );
    let _ = ready_tx.send(true);
    for open in gates {
        let _ = open.send(());
    }
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
