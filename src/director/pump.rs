//! Byte forwarding between a client and its backend: both directions in one task, byte-exact,
//! with TCP half-close (a FIN one way is passed on while the other way keeps flowing) and an
//! idle timeout. Buffers start small, so thousands of chatty connections stay cheap, and grow
//! when a read fills them, so bulk transfers need few system calls; a direction that fills the
//! largest buffer switches to `splice(2)` ([`super::splice`]).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::splice::Pipe;

/// First buffer size of each direction.
const INITIAL_BUFFER: usize = 4 * 1024;

/// Largest buffer of each direction: a read that fills the buffer makes it four times larger,
/// up to this.
const MAX_BUFFER: usize = 256 * 1024;

/// How forwarding ended.
#[derive(Debug)]
pub enum End {
    /// Both sides closed their sending direction and everything was delivered.
    Done,
    /// No byte moved either way for the idle timeout.
    Idle,
    /// A read or write failed (typically a reset); both sockets are to be closed.
    Error(io::Error),
}

/// Where the bytes moved are counted, as they are written.
pub struct Counters<'a> {
    /// Client to backend.
    pub to_backend: &'a AtomicU64,
    /// Backend to client.
    pub to_client: &'a AtomicU64,
    /// Called once, when the first bytes from the backend have been read (the `fastest`
    /// scheduler's time to first byte).
    pub first_reply: Option<&'a (dyn Fn() + Sync)>,
}

/// One direction: read into the buffer when it is empty, write it all out, and on end of
/// stream shut down the writing side of the other socket.
struct Half {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    done: bool,
    grow: bool,
    /// A read filled the largest buffer: this direction is bulk, switch to splicing.
    bulk: bool,
    /// Set once splicing: the buffer is then unused.
    pipe: Option<Pipe>,
    /// A byte was read from `from`.
    read_any: bool,
}

impl Half {
    fn new() -> Half {
        Half {
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            eof: false,
            done: false,
            grow: false,
            bulk: false,
            pipe: None,
            read_any: false,
        }
    }

    /// Moves bytes until neither side can make progress; `Ready(Ok)` once the end of stream
    /// was passed on. Sets `moved` when a byte was read or written. When `last` (the other
    /// direction has ended), the end of stream is not passed on with a shutdown: both sockets
    /// are about to be closed, which sends it anyway, and a system call is saved per
    /// connection.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut TcpStream,
        to: &mut TcpStream,
        counter: &AtomicU64,
        moved: &mut bool,
        last: bool,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.bulk && self.start == self.end {
                // Switch once the buffer is flushed; without descriptors for a pipe (EMFILE),
                // keep copying.
                self.bulk = false;
                if let Ok(pipe) = Pipe::new() {
                    self.pipe = Some(pipe);
                    self.buf = Vec::new();
                }
            }
            if let Some(pipe) = self.pipe.as_mut() {
                if pipe.held() == 0 && !self.eof {
                    let n = ready!(pipe.poll_fill(cx, from))?;
                    if n == 0 {
                        self.eof = true;
                    } else {
                        *moved = true;
                        self.read_any = true;
                    }
                }
                while pipe.held() > 0 {
                    let n = ready!(pipe.poll_drain(cx, to))?;
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    *moved = true;
                }
            } else if self.start == self.end && !self.eof {
                if self.grow {
                    self.grow = false;
                    let len = (self.buf.len() * 4).min(MAX_BUFFER);
                    self.buf = vec![0; len];
                }
                let mut rb = ReadBuf::new(&mut self.buf);
                ready!(Pin::new(&mut *from).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    self.eof = true;
                } else {
                    *moved = true;
                    self.read_any = true;
                    self.grow = n == self.buf.len() && n < MAX_BUFFER;
                    self.bulk = n == MAX_BUFFER;
                    self.start = 0;
                    self.end = n;
                    if n < self.buf.len() {
                        self.look_for_end(cx, from)?;
                    }
                }
            }
            while self.start < self.end {
                let chunk = &self.buf[self.start..self.end];
                let n = if self.eof {
                    ready!(poll_send_before_end(to, cx, chunk))?
                } else {
                    ready!(Pin::new(&mut *to).poll_write(cx, chunk))?
                };
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.start += n;
                counter.fetch_add(n as u64, Ordering::Relaxed);
                *moved = true;
            }
            if self.eof {
                if !last {
                    ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                }
                self.done = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl Half {
    /// Reads once more behind data just read, to see an end of stream that arrived with it
    /// (a response followed by the server closing). This costs no system call when nothing
    /// more arrived: after a short read tokio forgets the socket was readable, but keeps a
    /// "read closed" it saw. Knowing the end is next, the data goes out with `MSG_MORE` and the
    /// FIN joins it in one segment, as HAProxy does, instead of a segment of its own.
    fn look_for_end(&mut self, cx: &mut Context<'_>, from: &mut TcpStream) -> io::Result<()> {
        let mut rb = ReadBuf::new(&mut self.buf[self.end..]);
        match Pin::new(&mut *from).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => self.eof = true,
            Poll::Ready(Ok(())) => self.end += rb.filled().len(),
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => {}
        }
        Ok(())
    }
}

/// Writes `buf` with `MSG_MORE`: the last data before a FIN, so the kernel may send both in
/// one segment when the FIN follows (`shutdown` or `close`).
fn poll_send_before_end(
    to: &TcpStream,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(to.poll_write_ready(cx))?;
        let sent = to.try_io(Interest::WRITABLE, || {
            socket2::SockRef::from(to).send_with_flags(buf, libc::MSG_MORE | libc::MSG_NOSIGNAL)
        });
        match sent {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return Poll::Ready(other),
        }
    }
}

/// Forwards between `client` and `backend` until both directions have ended, one fails, or
/// nothing moved for `idle`.
pub async fn pump(
    client: &mut TcpStream,
    backend: &mut TcpStream,
    idle: Duration,
    counters: Counters<'_>,
) -> End {
    let mut up = Half::new();
    let mut down = Half::new();
    let mut last = Instant::now();
    let mut first_reply = counters.first_reply;
    let timer = tokio::time::sleep_until(last + idle);
    tokio::pin!(timer);
    poll_fn(|cx| {
        let mut moved = false;
        let mut step = |half: &mut Half,
                        from: &mut TcpStream,
                        to: &mut TcpStream,
                        c: &AtomicU64,
                        last: bool| {
            if half.done {
                return Poll::Ready(Ok(()));
            }
            half.poll(cx, from, to, c, &mut moved, last)
        };
        let a = step(&mut up, client, backend, counters.to_backend, down.done);
        let b = step(&mut down, backend, client, counters.to_client, up.done);
        if down.read_any
            && let Some(first) = first_reply.take()
        {
            first();
        }
        match (a, b) {
            (Poll::Ready(Err(e)), _) | (_, Poll::Ready(Err(e))) => {
                return Poll::Ready(End::Error(e));
            }
            (Poll::Ready(Ok(())), Poll::Ready(Ok(()))) => return Poll::Ready(End::Done),
            _ => {}
        }
        if moved {
            last = Instant::now();
        }
        // The timer is only moved when it fires, not on every read: cheap on busy connections.
        while timer.as_mut().poll(cx).is_ready() {
            let due = last + idle;
            if due <= Instant::now() {
                return Poll::Ready(End::Idle);
            }
            timer.as_mut().reset(due);
        }
        Poll::Pending
    })
    .await
}
