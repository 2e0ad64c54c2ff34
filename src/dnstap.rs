//! dnstap logging (`[dnstap]`): every query and response the DNS transports hand to a socket,
//! as dnstap messages to a Frame Streams reader on a Unix socket. The transports build a
//! [`Record`] from the bytes exactly as received and sent, and [`Dnstap::log`] offers it to a
//! bounded queue (`try_send`, never waiting); one writer thread ([`writer`]) encodes, frames
//! and writes. A full queue or a missing reader drops records and counts them; nothing here
//! ever slows an answer. The writer connects, reconnects with backoff, and follows a reload.

pub mod encode;
pub mod frame;
mod writer;

use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::model::DnstapSettings;

/// Records the queue holds at most; beyond that they are dropped (and counted).
pub const QUEUE: usize = 4096;

/// What is logged, copied from the snapshot's settings once per batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Logging {
    /// `AUTH_QUERY` messages.
    pub queries: bool,
    /// `AUTH_RESPONSE` messages.
    pub responses: bool,
}

impl Logging {
    /// What `settings` log, or `None` when dnstap is off.
    pub fn of(settings: Option<&DnstapSettings>) -> Option<Logging> {
        settings.map(|s| Logging {
            queries: s.log_queries,
            responses: s.log_responses,
        })
    }
}

/// The transport a message came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// UDP.
    Udp,
    /// TCP (the message without its length prefix).
    Tcp,
}

/// One query and what was sent back, as the writer thread gets it: the bytes are copied once,
/// into one buffer (query, then response), and become one or two messages.
#[derive(Debug)]
pub struct Record {
    protocol: Protocol,
    client: SocketAddr,
    server: SocketAddr,
    /// When the query was received, since the Unix epoch.
    query_time: Duration,
    /// When the response was handed to the socket, since the Unix epoch.
    response_time: Duration,
    /// The logged query's bytes (if any) followed by the logged response's (if any).
    data: Vec<u8>,
    /// Length of the query in `data` when the query is logged.
    query_len: Option<u32>,
    /// The rest of `data` is the response.
    response: bool,
}

impl Record {
    /// The messages `logging` asks for about `query` (from `ends.0`, the client, to `ends.1`,
    /// the server's address) and `response` (`None`: nothing was sent); `None` when there is
    /// nothing to log. Times are since the Unix epoch.
    pub fn new(
        logging: Logging,
        protocol: Protocol,
        ends: (SocketAddr, SocketAddr),
        query_time: Duration,
        query: &[u8],
        response: Option<&[u8]>,
        response_time: Duration,
    ) -> Option<Record> {
        let query = logging.queries.then_some(query);
        let response = response.filter(|_| logging.responses);
        if query.is_none() && response.is_none() {
            return None;
        }
        let (q, r) = (query.unwrap_or_default(), response.unwrap_or_default());
        let mut data = Vec::with_capacity(q.len() + r.len());
        data.extend_from_slice(q);
        data.extend_from_slice(r);
        Some(Record {
            protocol,
            client: ends.0,
            server: ends.1,
            query_time,
            response_time,
            data,
            query_len: query.map(|q| q.len() as u32),
            response: response.is_some(),
        })
    }

    /// How many messages this record becomes (1 or 2).
    pub fn messages(&self) -> u64 {
        u64::from(self.query_len.is_some()) + u64::from(self.response)
    }
}

/// Now, as [`Record`] times are given.
pub fn wall_clock() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Label set `{reason=…}` of the dropped counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// Label set `{socket=…}` of the connected gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SocketLabel {
    socket: String,
}

/// The dnstap counters `/metrics` exports; bumped with relaxed atomic adds.
#[derive(Debug, Clone, Default)]
pub struct DnstapStats {
    sent: Counter,
    dropped: Family<Reason, Counter>,
    queue_full: Counter,
    no_reader: Counter,
    /// One sample, for the configured socket (none while dnstap is off).
    connected: Family<SocketLabel, Gauge>,
}

impl DnstapStats {
    /// The counters, each label set created up front.
    pub fn new() -> DnstapStats {
        let dropped = Family::<Reason, Counter>::default();
        let queue_full = dropped
            .get_or_create(&Reason {
                reason: "queue_full",
            })
            .clone();
        let no_reader = dropped
            .get_or_create(&Reason {
                reason: "no_reader",
            })
            .clone();
        DnstapStats {
            dropped,
            queue_full,
            no_reader,
            ..DnstapStats::default()
        }
    }

    /// Registers the counters in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "meridian_dnstap_sent",
            "dnstap messages written to the reader",
            self.sent.clone(),
        );
        registry.register(
            "meridian_dnstap_dropped",
            "dnstap messages dropped: the queue was full (reader too slow) or no reader was connected",
            self.dropped.clone(),
        );
        registry.register(
            "meridian_dnstap_connected",
            "1 while the dnstap reader on this socket has accepted the stream, 0 while there is none",
            self.connected.clone(),
        );
    }

    /// The writer now writes to `socket` (or to nothing): the gauge has that one sample, 0.
    fn target(&self, socket: Option<&std::path::Path>) {
        self.connected.clear();
        if let Some(socket) = socket {
            self.set_connected(socket, false);
        }
    }

    /// Whether a reader on `socket` has accepted the stream.
    fn set_connected(&self, socket: &std::path::Path, connected: bool) {
        let label = SocketLabel {
            socket: socket.display().to_string(),
        };
        self.connected
            .get_or_create(&label)
            .set(i64::from(connected));
    }
}

/// The dnstap sink of one running instance: the queue the transports offer records to and
/// the settings the writer thread follows. Created off; [`Dnstap::follow`] turns it on.
#[derive(Debug)]
pub struct Dnstap {
    /// Set when the writer thread starts (the first time the config turns dnstap on).
    queue: OnceLock<SyncSender<Record>>,
    start: Mutex<()>,
    settings: Arc<ArcSwapOption<DnstapSettings>>,
    stats: Arc<DnstapStats>,
    shutdown: CancellationToken,
}

impl Dnstap {
    /// A sink counting into `stats`; its writer stops at `shutdown`.
    pub fn new(stats: Arc<DnstapStats>, shutdown: CancellationToken) -> Dnstap {
        Dnstap {
            queue: OnceLock::new(),
            start: Mutex::new(()),
            settings: Arc::new(ArcSwapOption::empty()),
            stats,
            shutdown,
        }
    }

    /// Offers `record` to the writer without waiting; when the queue is full or there is no
    /// writer, it is dropped and counted.
    pub fn log(&self, record: Record) {
        let Some(queue) = self.queue.get() else {
            self.stats.no_reader.inc_by(record.messages());
            return;
        };
        match queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(r)) => {
                self.stats.queue_full.inc_by(r.messages());
            }
            Err(TrySendError::Disconnected(r)) => {
                self.stats.no_reader.inc_by(r.messages());
            }
        }
    }

    /// Makes the writer follow `settings` (a new config's `[dnstap]`): a new socket, identity
    /// or version closes the stream and opens the new one; `None` closes it. The first time
    /// `settings` is on, the writer thread (`meridian-dnstap`) starts; it is returned, and
    /// ends at shutdown after closing its stream.
    pub fn follow(
        &self,
        settings: Option<&DnstapSettings>,
    ) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
        if self.settings.load().as_deref() != settings {
            self.settings.store(settings.cloned().map(Arc::new));
        }
        if settings.is_none() || self.queue.get().is_some() {
            return Ok(None);
        }
        let _once = self.start.lock().unwrap_or_else(|e| e.into_inner());
        if self.queue.get().is_some() {
            return Ok(None);
        }
        let (queue, records) = std::sync::mpsc::sync_channel(QUEUE);
        let writer = writer::Writer::new(
            self.settings.clone(),
            self.stats.clone(),
            self.shutdown.clone(),
        );
        let thread = std::thread::Builder::new()
            .name("meridian-dnstap".into())
            .spawn(move || writer.run(&records))?;
        let _ = self.queue.set(queue);
        Ok(Some(thread))
    }
}
