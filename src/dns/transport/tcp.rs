//! DNS over TCP (RFC 7766): an accept loop per listener and a task per connection, answering
//! length-prefixed queries in order. Every connection is bounded in number, in idle time and in
//! the time a whole message may take to arrive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, debug_span, warn};

use crate::dns::{ClientAddr, Request, Transport, answer};
use crate::metrics::{DnsMetrics, Protocol};
use crate::state::SharedState;

/// Limits shared by every DNS-over-TCP listener.
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Permits for concurrent connections (RFC 7766 §6.2.2).
    pub connections: Arc<Semaphore>,
    /// A connection with no complete query for this long is closed (RFC 7766 §6.2.3).
    pub idle_timeout: Duration,
}

/// Accepts DNS-over-TCP connections until `shutdown` is cancelled; each connection runs as a
/// task in `tracker` so shutdown can wait for them.
pub async fn serve_tcp(
    listener: TcpListener,
    state: Arc<SharedState>,
    metrics: Arc<DnsMetrics>,
    limits: TcpLimits,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(ok) => ok,
                Err(e) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limits.connections.clone().try_acquire_owned() else {
            debug!(%peer, "tcp connection limit reached, closing");
            drop(stream);
            continue;
        };
        let state = state.clone();
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        let idle = limits.idle_timeout;
        let span = debug_span!("dns-tcp", %peer);
        tracker.spawn(
            async move {
                serve_connection(stream, peer, (state, metrics), idle, shutdown).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Serves one connection: length-prefixed queries, answered in order (pipelining allowed),
/// closed on idle timeout, on a malformed frame, or at shutdown.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    (state, metrics): (Arc<SharedState>, Arc<DnsMetrics>),
    idle: Duration,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    let mut message = Vec::new();
    loop {
        // The whole message, length included, must arrive within the idle timeout, so a client
        // trickling bytes cannot hold a connection forever.
        let frame = async {
            let len = read.read_u16().await? as usize;
            message.resize(len, 0);
            read.read_exact(&mut message).await?;
            Ok::<usize, std::io::Error>(len)
        };
        let len = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            r = tokio::time::timeout(idle, frame) => match r {
                Ok(Ok(len)) => len,
                Ok(Err(_)) => break,
                Err(_) => {
                    debug!("idle timeout");
                    break;
                }
            },
        };
        let received = Instant::now();
        let reply = {
            let snap = state.peek();
            let req = Request {
                packet: &message[..len],
                client: ClientAddr(peer),
                transport: Transport::Tcp,
            };
            answer(&snap, &req, &mut rng)
        };
        let Some(reply) = reply else {
            metrics.record(Protocol::Tcp, &message[..len], None, received.elapsed());
            continue;
        };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&(reply.len() as u16).to_be_bytes());
        out.extend_from_slice(&reply);
        // A client that stops reading must not pin the task either.
        let sent = tokio::time::timeout(idle, write.write_all(&out)).await;
        metrics.record(
            Protocol::Tcp,
            &message[..len],
            Some(&reply),
            received.elapsed(),
        );
        match sent {
            Ok(Ok(())) => {}
            _ => break,
        }
    }
}
