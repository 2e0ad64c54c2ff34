//! The writer thread: takes records off the queue, encodes them in batches and writes each
//! batch with one `write`; keeps one Frame Streams connection to the configured socket
//! (READY/ACCEPT/START on open, STOP/FINISH on close), reconnects with backoff when the
//! reader goes away or refuses, and reopens the stream when a reload changes `[dnstap]`.
//! Records that arrive while no reader is connected are dropped and counted.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::encode::{Sender, encode};
use super::frame::{self, CONTENT_TYPE, Control};
use super::{DnstapStats, Record};
use crate::model::DnstapSettings;

/// A batch is written once it holds this much (or the queue is empty).
const FLUSH_AT: usize = 64 * 1024;

/// How long a handshake step, a write or the wait for FINISH may take. A write that times out
/// leaves a partial frame, so the connection is dropped and opened again.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// After writing a batch that emptied the queue, the writer waits this long before it looks
/// again, so that under load records gather and it wakes on its own timer, about once per
/// `GATHER`, rather than being woken by the transports once per record (a system call each).
const GATHER: Duration = Duration::from_millis(1);

/// How long the STOP and the reader's FINISH may take when a stream is closed.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);

/// The longest the writer waits on the queue before it looks at its settings and the
/// shutdown token again.
const TICK: Duration = Duration::from_millis(100);

/// Reconnect delays: the first retry after `FIRST_RETRY`, doubling up to `LAST_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(50);
const LAST_RETRY: Duration = Duration::from_secs(2);

/// One open stream to a reader.
struct Stream {
    socket: UnixStream,
    /// The settings it was opened with.
    settings: Arc<DnstapSettings>,
    sender: Sender,
}

impl Stream {
    /// Connects and shakes hands: READY, the reader's ACCEPT (naming our content type), START.
    fn open(settings: Arc<DnstapSettings>) -> io::Result<Stream> {
        let mut socket = UnixStream::connect(&settings.socket)?;
        socket.set_read_timeout(Some(IO_TIMEOUT))?;
        socket.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut out = Vec::new();
        frame::control(&mut out, Control::Ready, Some(CONTENT_TYPE));
        socket.write_all(&out)?;
        let accept = frame::read_control(&mut socket)?;
        if accept.kind != Control::Accept || !accept.accepts(CONTENT_TYPE) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the reader answered READY with {accept:?}"),
            ));
        }
        out.clear();
        frame::control(&mut out, Control::Start, Some(CONTENT_TYPE));
        socket.write_all(&out)?;
        let sender = Sender::new(&settings.identity, &settings.version);
        Ok(Stream {
            socket,
            settings,
            sender,
        })
    }

    /// Ends the stream: STOP, then the reader's FINISH (each given [`CLOSE_TIMEOUT`]), so
    /// a reader has everything written before it before the socket closes.
    fn close(mut self) {
        // Short: a reader that stopped reading must not hold up a reload or the shutdown.
        let _ = self.socket.set_read_timeout(Some(CLOSE_TIMEOUT));
        let _ = self.socket.set_write_timeout(Some(CLOSE_TIMEOUT));
        let mut out = Vec::new();
        frame::control(&mut out, Control::Stop, None);
        let finished = self
            .socket
            .write_all(&out)
            .and_then(|()| frame::read_control(&mut self.socket));
        match finished {
            Ok(f) if f.kind == Control::Finish => {}
            other => debug!(reply = ?other, "dnstap reader did not FINISH"),
        }
    }
}

/// The writer's state, owned by its thread.
pub(super) struct Writer {
    settings: Arc<ArcSwapOption<DnstapSettings>>,
    stats: Arc<DnstapStats>,
    shutdown: CancellationToken,
    stream: Option<Stream>,
    /// The settings the writer last followed (the gauge's socket).
    target: Option<Arc<DnstapSettings>>,
    /// When to try connecting again, and the delay after that.
    retry_at: Instant,
    retry: Duration,
    /// The last connect failure logged at warn level (further ones go to debug until a
    /// connection succeeds).
    warned: bool,
    buffer: Vec<u8>,
}

impl Writer {
    pub(super) fn new(
        settings: Arc<ArcSwapOption<DnstapSettings>>,
        stats: Arc<DnstapStats>,
        shutdown: CancellationToken,
    ) -> Writer {
        Writer {
            settings,
            stats,
            shutdown,
            stream: None,
            target: None,
            retry_at: Instant::now(),
            retry: FIRST_RETRY,
            warned: false,
            buffer: Vec::with_capacity(FLUSH_AT + 4096),
        }
    }

    /// Runs until shutdown (once the queue is quiet) or until every sender is gone, then
    /// closes the stream.
    pub(super) fn run(mut self, records: &Receiver<Record>) {
        loop {
            self.follow_settings();
            let wait = match (&self.stream, self.settings.load().is_some()) {
                (None, true) => self.retry_at.saturating_duration_since(Instant::now()),
                _ => TICK,
            }
            .min(TICK);
            match records.recv_timeout(wait) {
                Ok(first) => {
                    if self.write_batch(first, records) && !self.shutdown.is_cancelled() {
                        std::thread::sleep(GATHER);
                    }
                }
                Err(RecvTimeoutError::Timeout) if self.shutdown.is_cancelled() => break,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.disconnect(true);
    }

    /// Closes a stream opened with other settings than the current ones, and opens one when
    /// there is none and the retry time has come.
    fn follow_settings(&mut self) {
        let wanted = self.settings.load_full();
        if wanted != self.target {
            if let Some(stream) = &self.stream {
                info!(socket = %stream.settings.socket.display(), "dnstap: closing the stream (config changed)");
                self.disconnect(true);
            }
            self.stats
                .target(wanted.as_deref().map(|s| s.socket.as_path()));
            self.target = wanted.clone();
            self.retry = FIRST_RETRY;
            self.retry_at = Instant::now();
            self.warned = false;
        }
        let Some(wanted) = wanted else {
            return;
        };
        if self.stream.is_some() || Instant::now() < self.retry_at {
            return;
        }
        match Stream::open(wanted.clone()) {
            Ok(stream) => {
                info!(socket = %wanted.socket.display(), "dnstap: connected to the reader");
                self.stream = Some(stream);
                self.stats.set_connected(&wanted.socket, true);
                self.retry = FIRST_RETRY;
                self.warned = false;
            }
            Err(e) => {
                if self.warned {
                    debug!(socket = %wanted.socket.display(), error = %e, "dnstap: cannot connect");
                } else {
                    warn!(socket = %wanted.socket.display(), error = %e, "dnstap: cannot connect to the reader; dropping messages until it is back");
                    self.warned = true;
                }
                self.retry_at = Instant::now() + self.retry;
                self.retry = (self.retry * 2).min(LAST_RETRY);
            }
        }
    }

    /// Drops the stream, closing it properly when `graceful`.
    fn disconnect(&mut self, graceful: bool) {
        if let Some(stream) = self.stream.take() {
            self.stats.set_connected(&stream.settings.socket, false);
            if graceful {
                stream.close();
            }
        }
    }

    /// Encodes `first` and whatever else is queued (up to [`FLUSH_AT`] bytes) and writes it.
    /// Returns whether the queue was found empty (rather than the batch full).
    fn write_batch(&mut self, first: Record, records: &Receiver<Record>) -> bool {
        let Some(stream) = &mut self.stream else {
            self.stats.no_reader.inc_by(first.messages());
            while let Ok(r) = records.try_recv() {
                self.stats.no_reader.inc_by(r.messages());
            }
            return true;
        };
        self.buffer.clear();
        let mut messages = encode(first, &stream.sender, &mut self.buffer);
        let mut emptied = false;
        while self.buffer.len() < FLUSH_AT {
            let Ok(r) = records.try_recv() else {
                emptied = true;
                break;
            };
            messages += encode(r, &stream.sender, &mut self.buffer);
        }
        match stream.socket.write_all(&self.buffer) {
            Ok(()) => {
                self.stats.sent.inc_by(messages);
            }
            Err(e) => {
                warn!(socket = %stream.settings.socket.display(), error = %e, "dnstap: the reader went away; reconnecting");
                self.stats.no_reader.inc_by(messages);
                self.disconnect(false);
                self.warned = true;
                self.retry_at = Instant::now() + self.retry;
            }
        }
        emptied
    }
}
