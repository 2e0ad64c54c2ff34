//! DNS over UDP and TCP (RFC 1035 §4.2, RFC 7766): receive loops that hand each message to the
//! answering core and send back what it returns. They take already-bound sockets and a shutdown
//! token, so tests run them on port 0 and every task stops when told. Each query is counted in
//! [`DnsMetrics`] (atomic adds only) after its reply is sent. UDP replies pass the response
//! rate limiter ([`super::rrl`]) when the config turns it on; TCP is never limited, since the
//! handshake proves the client's address.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, debug_span, info, warn};

use super::rrl::{Limited, MAX_TRUNCATED_LEN, truncated_reply};
use super::{ClientAddr, Request, Transport, answer};
use crate::metrics::{DnsMetrics, Protocol};
use crate::state::SharedState;

/// Largest DNS message over UDP we accept.
const UDP_BUFFER: usize = 65_535;

/// Answers queries on one UDP socket until `shutdown` is cancelled. One task, no spawn per query.
pub async fn serve_udp(
    socket: UdpSocket,
    state: Arc<SharedState>,
    metrics: Arc<DnsMetrics>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; UDP_BUFFER];
    let mut rng = SmallRng::from_rng(&mut rand::rng());
    loop {
        let (len, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(ok) => ok,
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            },
        };
        // std's clock, not tokio's: this is a measurement, never a timer.
        let received = Instant::now();
        let (reply, limited) = {
            let snap = state.peek();
            let req = Request {
                packet: &buf[..len],
                client: ClientAddr(peer),
                transport: Transport::Udp,
            };
            let reply = answer(&snap, &req, &mut rng);
            // Only a reply can be over the rate limit. The receive time is the limiter's clock
            // too (tokio's Instant is std's outside paused test runtimes).
            let limited = match (&reply, &snap.model.dns.rrl) {
                (Some(_), Some(rrl)) => {
                    rrl.check(peer.ip(), tokio::time::Instant::from_std(received))
                }
                _ => None,
            };
            (reply, limited)
        };
        if let Some(limited) = limited {
            rate_limited(&socket, &buf[..len], peer, &limited, &metrics).await;
            continue;
        }
        if let Some(reply) = &reply
            && let Err(e) = socket.send_to(reply, peer).await
        {
            debug!(error = %e, %peer, "udp send failed");
        }
        metrics.record(
            Protocol::Udp,
            &buf[..len],
            reply.as_deref(),
            received.elapsed(),
        );
    }
}

/// A response over the rate limit: nothing goes out, or (slip) a truncated reply built from the
/// query, so a real resolver asks again over TCP. Logged only when the limiter reports.
async fn rate_limited(
    socket: &UdpSocket,
    query: &[u8],
    peer: SocketAddr,
    limited: &Limited,
    metrics: &DnsMetrics,
) {
    if let Some(report) = &limited.report {
        info!("{report}");
    }
    let mut out = [0u8; MAX_TRUNCATED_LEN];
    if limited.slip
        && let Some(reply) = truncated_reply(query, &mut out)
        && let Err(e) = socket.send_to(reply, peer).await
    {
        debug!(error = %e, %peer, "udp send failed");
    }
    metrics.rrl_limited(limited.slip);
}

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
