//! DNS over UDP, one worker per OS thread: each worker owns one blocking socket (all of a
//! listen address's workers are bound to it with `SO_REUSEPORT`, so the kernel spreads clients
//! over them), receives up to [`BATCH`] queries with one `recvmmsg`, answers them in place and
//! sends the replies with one `sendmmsg`. Buffers are allocated once per worker; a query costs
//! no task, no lock and no allocation of its own here. Each reply passes the response rate
//! limiter when the config turns it on: sent, dropped, or slipped as a truncated reply;
//! replies to queries with a valid server cookie are exempt.

use std::any::Any;
use std::io::{IoSlice, IoSliceMut};
use std::net::{Shutdown, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info};

use crate::dns::cookies::Verdict;
use crate::dns::counters::{DnsMetrics, Protocol};
use crate::dns::rrl::{MAX_TRUNCATED_LEN, RateLimit, truncated_reply};
use crate::dns::{Answered, ClientAddr, Request, Transport, answer_into};
use crate::dnstap::{self, Dnstap, Logging, Record};
use crate::state::SharedState;

/// Datagrams received (and replies sent) per system call at most. `MSG_WAITFORONE` returns as
/// soon as one has arrived, so a batch is only as full as the queue was: a lone query is
/// answered at once, a burst is taken 32 at a time.
pub const BATCH: usize = 32;

/// Batches of fewer queries than this can be followed by the receive coalescing wait
/// (`[dns] udp_coalesce_us`); a fuller batch means the queue is backing up and needs none.
const COALESCE_BELOW: usize = BATCH / 2;

/// Largest DNS message over UDP we accept (RFC 1035 §4.2.1 allows 512; EDNS more). The batch's
/// buffers are one zeroed allocation that the kernel maps lazily, so a worker touches only the
/// pages its queries use (about a page per slot), not `BATCH` × 64 KiB.
const UDP_BUFFER: usize = 65_535;

/// A blocked receive returns after this long without a datagram, so a worker notices shutdown
/// even if [`wake`] could not interrupt it. `wake` normally ends the wait at once.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves DNS on one UDP `socket` on the calling thread until `shutdown` is cancelled and
/// [`wake`] (or the receive timeout) interrupts the wait. Sets the socket blocking. A panic in
/// the loop is logged at error level and the loop starts again with fresh buffers, so the
/// socket keeps being served (the kernel would otherwise keep sending this worker's share of
/// clients to a socket nobody reads). With `[dnstap]` on, every query and the reply sent
/// for it go to `tap` after the batch was sent.
pub fn serve_udp(
    socket: UdpSocket,
    state: Arc<SharedState>,
    metrics: Arc<DnsMetrics>,
    (rrl, tap): (Arc<RateLimit>, Arc<Dnstap>),
    shutdown: CancellationToken,
) {
    if let Err(e) = socket
        .set_nonblocking(false)
        .and_then(|()| socket.set_read_timeout(Some(RECEIVE_TIMEOUT)))
    {
        error!(error = %e, "udp worker cannot configure its socket; not serving it");
        return;
    }
    let worker = || Worker::new().run(&socket, &state, &metrics, (&rrl, &tap), &shutdown);
    while let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(worker)) {
        error!(
            panic = panic_message(&*panic),
            "udp worker panicked; restarting it"
        );
        if shutdown.is_cancelled() {
            return;
        }
    }
}

/// Interrupts a worker blocked receiving on `socket` (or a clone of it): on Linux, shutting
/// down the receiving side of a UDP socket wakes its readers (the call reports `ENOTCONN` for
/// an unconnected socket, but does it). The worker then sees the cancelled token and returns.
pub fn wake(socket: &UdpSocket) {
    let _ = socket2::SockRef::from(socket).shutdown(Shutdown::Read);
}

/// What became of one received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// No reply: a runt or a response (or no sender address); counted as dropped.
    Silent,
    /// The answer, in the slot's reply buffer.
    Reply,
    /// Over the rate limit: nothing, or with `slip` the truncated reply in the reply buffer.
    Limited {
        /// A truncated reply goes out instead of the answer.
        slip: bool,
    },
}

impl Outcome {
    fn sends(self) -> bool {
        matches!(self, Outcome::Reply | Outcome::Limited { slip: true })
    }
}

/// One received datagram's bookkeeping.
#[derive(Debug, Clone, Copy)]
struct Slot {
    len: usize,
    from: Option<SockaddrStorage>,
    peer: Option<SocketAddr>,
    outcome: Outcome,
    /// What answering found, for the counters and the rate limiter.
    answered: Answered,
}

/// A worker's buffers, allocated once: [`BATCH`] receive buffers, reply buffers (which grow to
/// the largest reply once and stay), and the `mmsghdr` arrays for both directions.
struct Worker {
    received: Vec<u8>,
    slots: [Slot; BATCH],
    replies: Vec<Vec<u8>>,
    headers_in: MultiHeaders<SockaddrStorage>,
    headers_out: MultiHeaders<SockaddrStorage>,
    send_to: [Option<SockaddrStorage>; BATCH],
    send_slot: [usize; BATCH],
    rng: SmallRng,
    /// What this batch logs to dnstap and when it was received; `None` while dnstap is off.
    logging: Option<(Logging, Duration)>,
    /// The receive coalescing wait of the snapshot the last batch was answered from.
    coalesce: Duration,
}

impl Worker {
    fn new() -> Worker {
        let empty = Slot {
            len: 0,
            from: None,
            peer: None,
            outcome: Outcome::Silent,
            answered: Answered::default(),
        };
        Worker {
            received: vec![0; BATCH * UDP_BUFFER],
            slots: [empty; BATCH],
            replies: (0..BATCH).map(|_| Vec::with_capacity(1232)).collect(),
            headers_in: MultiHeaders::preallocate(BATCH, None),
            headers_out: MultiHeaders::preallocate(BATCH, None),
            send_to: [None; BATCH],
            send_slot: [0; BATCH],
            rng: SmallRng::from_rng(&mut rand::rng()),
            logging: None,
            coalesce: Duration::ZERO,
        }
    }

    /// Receives, answers and sends batches until `shutdown` is cancelled.
    fn run(
        &mut self,
        socket: &UdpSocket,
        state: &SharedState,
        metrics: &DnsMetrics,
        (rrl, tap): (&RateLimit, &Dnstap),
        shutdown: &CancellationToken,
    ) {
        // The server's side of every dnstap message (the bound address: a wildcard for
        // `0.0.0.0`).
        let local = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        while !shutdown.is_cancelled() {
            // std's clock, not tokio's: these are measurements, never timers.
            let waiting = Instant::now();
            let n = match self.receive(socket) {
                Ok(n) => n,
                // The receive timeout, a signal, or `wake`: look at the token again.
                Err(Errno::EAGAIN | Errno::EINTR) => continue,
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    continue;
                }
            };
            if shutdown.is_cancelled() {
                return;
            }
            let received = Instant::now();
            self.answer(n, state, rrl, received);
            // Counted as the replies are handed to the socket, so a client that has its reply
            // finds it in the metrics.
            self.count(n, metrics, received.elapsed());
            self.send(socket, n);
            if let Some(logging) = self.logging {
                self.tap(n, tap, logging, local);
            }
            // Receive coalescing: the batch came within one wait of asking for it (queries
            // arrive at least that often), so let the queue fill before the next system call
            // instead of waking for every query or two. After a quiet spell the first query
            // finds the worker blocked for longer than the wait and is never delayed; a batch
            // of half the maximum or more means there is no need.
            if n < COALESCE_BELOW && received - waiting < self.coalesce {
                std::thread::sleep(self.coalesce);
            }
        }
    }

    /// One `recvmmsg`: blocks until a datagram arrives, then takes what else is queued, up to
    /// [`BATCH`]. Returns how many slots were filled.
    fn receive(&mut self, socket: &UdpSocket) -> nix::Result<usize> {
        let mut buffers = self.received.chunks_exact_mut(UDP_BUFFER);
        let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
            std::array::from_fn(|_| [IoSliceMut::new(buffers.next().unwrap_or_default())]);
        let got = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers_in,
            iovs.iter_mut(),
            MsgFlags::MSG_WAITFORONE,
            None,
        )?;
        let mut n = 0;
        for (slot, msg) in self.slots.iter_mut().zip(got) {
            slot.len = msg.bytes;
            slot.from = msg.address;
            slot.peer = msg.address.and_then(|a| socket_addr(&a));
            n += 1;
        }
        Ok(n)
    }

    /// Answers the first `n` slots from one snapshot, each into its reply buffer, and applies
    /// the rate limiter (its clock is the batch's receive time).
    fn answer(&mut self, n: usize, state: &SharedState, rrl: &RateLimit, received: Instant) {
        let snap = state.peek();
        // tokio's Instant is std's outside paused test runtimes.
        let now = tokio::time::Instant::from_std(received);
        let limiter = rrl.follow(snap.model.dns.rrl.as_ref(), now);
        let unix = crate::dns::unix_now();
        self.logging = Logging::of(snap.model.dnstap.as_ref()).map(|l| (l, dnstap::wall_clock()));
        self.coalesce = snap.model.dns.udp_coalesce;
        let queries = self.received.chunks_exact(UDP_BUFFER);
        for ((slot, reply), query) in self.slots[..n]
            .iter_mut()
            .zip(&mut self.replies)
            .zip(queries)
        {
            slot.outcome = Outcome::Silent;
            slot.answered = Answered::default();
            let (Some(peer), Some(query)) = (slot.peer, query.get(..slot.len)) else {
                continue;
            };
            let req = Request {
                packet: query,
                client: ClientAddr(peer),
                transport: Transport::Udp,
                unix_time: unix,
                now,
            };
            slot.answered = answer_into(&snap, &req, &mut self.rng, reply);
            if !slot.answered.replied() {
                continue;
            }
            slot.outcome = Outcome::Reply;
            // Only a reply can be over the rate limit, and not one to a query with a valid
            // server cookie: the client proved its address (RFC 7873 §5.3).
            if slot.answered.cookie == Some(Verdict::Valid) {
                continue;
            }
            let Some(limited) = limiter.as_ref().and_then(|l| l.check(peer.ip(), now)) else {
                continue;
            };
            if let Some(report) = &limited.report {
                info!("{report}");
            }
            let mut out = [0u8; MAX_TRUNCATED_LEN];
            let slipped = limited.slip && {
                reply.clear();
                match truncated_reply(query, slot.answered.question_len, &mut out) {
                    Some(truncated) => {
                        reply.extend_from_slice(truncated);
                        true
                    }
                    None => false,
                }
            };
            slot.outcome = Outcome::Limited { slip: slipped };
        }
    }

    /// Sends every reply of the first `n` slots, as few `sendmmsg` calls as the socket takes.
    /// A reply the kernel refuses is logged at debug level and skipped.
    fn send(&mut self, socket: &UdpSocket, n: usize) {
        let mut iovs: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|_| [IoSlice::new(&[])]);
        let mut count = 0;
        for (i, (slot, reply)) in self.slots[..n].iter().zip(&self.replies).enumerate() {
            if slot.outcome.sends() {
                iovs[count] = [IoSlice::new(reply)];
                self.send_to[count] = slot.from;
                self.send_slot[count] = i;
                count += 1;
            }
        }
        let mut start = 0;
        while start < count {
            let no_control: [ControlMessage<'_>; 0] = [];
            match sendmmsg(
                socket.as_raw_fd(),
                &mut self.headers_out,
                &iovs[start..count],
                &self.send_to[start..count],
                no_control,
                MsgFlags::empty(),
            ) {
                // A blocking socket sends at least one or fails; never loop on zero.
                Ok(sent) => start += sent.count().max(1),
                Err(Errno::EINTR) => {}
                Err(e) => {
                    let peer = self.slots[self.send_slot[start]].peer;
                    debug!(error = %e, peer = ?peer, "udp send failed");
                    start += 1;
                }
            }
        }
    }

    /// Hands the first `n` queries that got an answer (sent, dropped or slipped by the rate
    /// limiter), with the bytes that were sent for each, to dnstap.
    fn tap(
        &self,
        n: usize,
        tap: &Dnstap,
        (logging, received): (Logging, Duration),
        local: SocketAddr,
    ) {
        let sent = dnstap::wall_clock();
        let queries = self.received.chunks_exact(UDP_BUFFER);
        for ((slot, reply), query) in self.slots[..n].iter().zip(&self.replies).zip(queries) {
            let (Some(peer), Some(query)) = (slot.peer, query.get(..slot.len)) else {
                continue;
            };
            if !slot.answered.replied() {
                continue;
            }
            let response = slot.outcome.sends().then_some(&reply[..]);
            let ends = (peer, local);
            let protocol = dnstap::Protocol::Udp;
            if let Some(r) = Record::new(logging, protocol, ends, received, query, response, sent) {
                tap.log(r);
            }
        }
    }

    /// Counts the first `n` queries: a reply or a silence in the query metrics, a limited
    /// response only in the limiter's.
    fn count(&self, n: usize, metrics: &DnsMetrics, elapsed: Duration) {
        for slot in &self.slots[..n] {
            match slot.outcome {
                Outcome::Silent | Outcome::Reply => {
                    metrics.record(Protocol::Udp, &slot.answered, elapsed)
                }
                Outcome::Limited { slip } => metrics.rrl_limited(slip),
            }
        }
    }
}

/// The sender of a datagram as a standard address (IPv4, or IPv6 including v4-mapped).
fn socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    addr.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

/// The text a panic was raised with, when it has one.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}
