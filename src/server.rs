//! Binding listeners and running Meridian's tasks until shutdown. Library code never binds a
//! fixed port by itself: callers bind [`Listeners`] (tests on `127.0.0.1:0`) and pass them to
//! [`run`] with a cancellation token.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::dns::transport::{TcpLimits, serve_tcp, serve_udp};
use crate::state::SharedState;

/// How long shutdown waits for open connections before dropping them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Sockets bound for DNS: one UDP socket and one TCP listener per configured address.
#[derive(Debug)]
pub struct Listeners {
    /// UDP sockets, in config order.
    pub udp: Vec<UdpSocket>,
    /// TCP listeners, in config order.
    pub tcp: Vec<TcpListener>,
}

impl Listeners {
    /// Binds UDP and TCP on every address. For port 0 the TCP listener takes the same port the
    /// kernel gave the UDP socket, so one `-p PORT` works for both.
    pub fn bind(addrs: &[SocketAddr]) -> io::Result<Listeners> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for &addr in addrs {
            let (u, t) = bind_pair(addr)?;
            udp.push(u);
            tcp.push(t);
        }
        Ok(Listeners { udp, tcp })
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

fn bind_pair(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let with_context = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("cannot bind {what} {addr}: {e}"))
    };
    if addr.port() != 0 {
        let u = UdpSocket::bind(addr).map_err(|e| with_context("udp", e))?;
        let t = TcpListener::bind(addr).map_err(|e| with_context("tcp", e))?;
        return Ok((u, t));
    }
    let mut last = None;
    for _ in 0..20 {
        let u = UdpSocket::bind(addr).map_err(|e| with_context("udp", e))?;
        let same_port = u.local_addr()?;
        match TcpListener::bind(same_port) {
            Ok(t) => return Ok((u, t)),
            Err(e) => last = Some(e),
        }
    }
    Err(with_context(
        "tcp",
        last.unwrap_or_else(|| io::Error::other("no free port")),
    ))
}

/// Serves DNS on `listeners` from `state` until `shutdown` is cancelled, then waits up to
/// [`SHUTDOWN_GRACE`] for open TCP connections to finish.
pub async fn run(
    state: Arc<SharedState>,
    listeners: Listeners,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let tracker = TaskTracker::new();
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
        tracker.spawn(serve_udp(socket, state.clone(), shutdown.clone()));
    }
    for listener in listeners.tcp {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        info!("listening for dns-tcp on {addr}");
        tracker.spawn(serve_tcp(
            listener,
            state.clone(),
            limits.clone(),
            tracker.clone(),
            shutdown.clone(),
        ));
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
    }
    info!("stopped");
    Ok(())
}
