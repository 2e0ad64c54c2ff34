//! DNS over TCP (RFC 7766): an accept loop per listener and a task per connection. A connection
//! reads as much as the socket has, answers every complete length-prefixed query in it, in
//! order, and writes all the replies with one write, so a client pipelining many queries costs
//! one read and one write per batch rather than per query. Every connection is bounded in
//! number, in idle time and in the time a whole message may take to arrive.

use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, debug_span, warn};

use crate::accept::{Accepted, Acceptor};
use crate::dns::counters::{DnsMetrics, Protocol};
use crate::dns::{Answered, ClientAddr, Request, Transport, answer_into};
use crate::dnstap::{self, Dnstap, Logging, Record};
use crate::state::{SharedState, Snapshot};

/// Limits shared by every DNS-over-TCP listener.
#[derive(Debug, Clone)]
pub struct TcpLimits {
    /// Permits for concurrent connections (RFC 7766 §6.2.2).
    pub connections: Arc<Semaphore>,
    /// A connection with no complete query for this long is closed (RFC 7766 §6.2.3).
    pub idle_timeout: Duration,
}

/// Accepts DNS-over-TCP connections until `shutdown` is cancelled; each connection runs as a
/// task in `tracker` so shutdown can wait for them. With `[dnstap]` on, every query and the
/// reply written for it go to `tap` once the write is done.
pub async fn serve_tcp(
    listener: TcpListener,
    state: Arc<SharedState>,
    (metrics, tap): (Arc<DnsMetrics>, Arc<Dnstap>),
    limits: TcpLimits,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let mut acceptor = Acceptor::new(listener, |e| warn!(error = %e, "tcp accept failed"))
        .until(&shutdown)
        .limit(limits.connections.clone(), |peer| {
            debug!(%peer, "tcp connection limit reached, closing");
        });
    while let Some(Accepted {
        stream,
        peer,
        permit,
    }) = acceptor.next().await
    {
        let state = state.clone();
        let (metrics, tap) = (metrics.clone(), tap.clone());
        let shutdown = shutdown.clone();
        let idle = limits.idle_timeout;
        let span = debug_span!("dns-tcp", %peer);
        tracker.spawn(
            async move {
                Connection::new(peer)
                    .serve(stream, (&state, &metrics, &tap), idle, &shutdown)
                    .await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// What a connection reads into first; it grows to hold one whole message when a longer one
/// is announced, and shrinks back once that has been answered, so 10,000 idle connections
/// cost 40 MB at most.
const READ_BUFFER: usize = 4096;

/// Replies are written once this much is waiting, even if more queries are buffered, so a
/// client pipelining large answers cannot make a connection hold more than about this (plus
/// one reply).
const WRITE_AT: usize = 64 * 1024;

/// One connection's state and buffers, reused for every query on it.
struct Connection {
    peer: SocketAddr,
    rng: SmallRng,
    /// Bytes read; `input[start..end]` is not answered yet.
    input: Vec<u8>,
    start: usize,
    end: usize,
    /// Framed replies waiting to be written.
    output: Vec<u8>,
    /// The answering core's reply, before it is framed into `output`.
    reply: Vec<u8>,
    /// What answering each query of this round found (no reply for one that gets none or
    /// whose reply cannot be framed), for the counters.
    answered: Vec<Answered>,
    /// With dnstap on: what this round logs, when it was read, and where each answered
    /// query is in `input` and its reply (without the length) in `output`.
    logging: Option<(Logging, std::time::Duration)>,
    logged: Vec<(Range<usize>, Range<usize>)>,
}

impl Connection {
    fn new(peer: SocketAddr) -> Connection {
        Connection {
            peer,
            rng: SmallRng::from_rng(&mut rand::rng()),
            input: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            output: Vec::new(),
            reply: Vec::new(),
            answered: Vec::new(),
            logging: None,
            logged: Vec::new(),
        }
    }

    /// Serves the connection: queries answered in order (pipelining allowed), closed on idle
    /// timeout, when a client stops reading, at end of stream, or at shutdown.
    async fn serve(
        mut self,
        mut stream: TcpStream,
        (state, metrics, tap): (&SharedState, &DnsMetrics, &Dnstap),
        idle: Duration,
        shutdown: &CancellationToken,
    ) {
        let _ = stream.set_nodelay(true);
        let local = stream
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        // The whole message, length included, must arrive within the idle timeout of the
        // previous one being answered, so a client trickling bytes cannot hold a connection.
        let mut deadline = tokio::time::Instant::now() + idle;
        loop {
            // Answer what is complete, writing whenever enough has piled up.
            loop {
                let received = Instant::now();
                let more = self.answer(&state.peek(), tokio::time::Instant::from_std(received));
                if self.answered.is_empty() {
                    break;
                }
                // Counted as the replies are handed to the socket, so a client that has its
                // reply finds it in the metrics.
                self.count(metrics, received.elapsed());
                // A client that stops reading must not pin the task either.
                let sent = tokio::time::timeout(idle, stream.write_all(&self.output)).await;
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
                if let Some(logging) = self.logging {
                    self.tap(tap, logging, local);
                }
                deadline = tokio::time::Instant::now() + idle;
                if !more {
                    break;
                }
            }
            self.make_room();
            let read = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout_at(deadline, stream.read(&mut self.input[self.end..])) => r,
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(n)) => self.end += n,
                Err(_) => {
                    debug!("idle timeout");
                    return;
                }
            }
        }
    }

    /// Answers the complete messages in `input[start..end]` from `snap`, in order, framing each
    /// reply into `output`, until `output` holds [`WRITE_AT`] bytes. Returns whether complete
    /// messages are left for another round.
    fn answer(&mut self, snap: &Snapshot, now: tokio::time::Instant) -> bool {
        self.output.clear();
        self.answered.clear();
        self.logged.clear();
        self.logging = Logging::of(snap.model.dnstap.as_ref()).map(|l| (l, dnstap::wall_clock()));
        let unix = crate::dns::unix_now();
        while let [hi, lo, ..] = self.input[self.start..self.end] {
            let query = self.start + 2..self.start + 2 + usize::from(u16::from_be_bytes([hi, lo]));
            if query.end > self.end {
                return false;
            }
            if self.output.len() >= WRITE_AT {
                return true;
            }
            self.start = query.end;
            let req = Request {
                packet: &self.input[query.clone()],
                client: ClientAddr(self.peer),
                transport: Transport::Tcp,
                unix_time: unix,
                now,
            };
            let mut answered = answer_into(snap, &req, &mut self.rng, &mut self.reply);
            match u16::try_from(self.reply.len()) {
                Ok(len) if answered.replied() => {
                    self.output.extend_from_slice(&len.to_be_bytes());
                    let at = self.output.len();
                    self.output.extend_from_slice(&self.reply);
                    if self.logging.is_some() {
                        self.logged.push((query, at..self.output.len()));
                    }
                }
                _ => answered.reply = None,
            }
            self.answered.push(answered);
        }
        false
    }

    /// Hands the queries answered in this round, with the replies as written, to dnstap.
    fn tap(
        &self,
        tap: &Dnstap,
        (logging, received): (Logging, std::time::Duration),
        local: SocketAddr,
    ) {
        let sent = dnstap::wall_clock();
        let ends = (self.peer, local);
        for (query, reply) in &self.logged {
            let (query, reply) = (&self.input[query.clone()], &self.output[reply.clone()]);
            let protocol = dnstap::Protocol::Tcp;
            if let Some(r) =
                Record::new(logging, protocol, ends, received, query, Some(reply), sent)
            {
                tap.log(r);
            }
        }
    }

    /// Counts the queries answered in this round.
    fn count(&self, metrics: &DnsMetrics, elapsed: Duration) {
        for answered in &self.answered {
            metrics.record(Protocol::Tcp, answered, elapsed);
        }
    }

    /// Moves the unanswered bytes (less than one message: every complete one was answered) to
    /// the front and sizes the buffer for the next read: the whole announced message must fit,
    /// and a buffer grown for a long message shrinks back.
    fn make_room(&mut self) {
        self.input.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        let needed = match self.input[..self.end] {
            [hi, lo, ..] => 2 + usize::from(u16::from_be_bytes([hi, lo])),
            _ => 0,
        }
        .max(READ_BUFFER);
        if self.input.len() < needed {
            self.input.resize(needed, 0);
        } else if self.input.len() > needed {
            self.input.truncate(needed);
            self.input.shrink_to_fit();
        }
    }
}
