//! Byte forwarding between a client and its backend: both directions in one task, byte-exact,
//! with TCP half-close (a FIN one way is passed on while the other way keeps flowing) and an
//! idle timeout. Buffers start small, so thousands of chatty connections stay cheap, and grow
//! when a read fills them, so bulk transfers need few system calls.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// First buffer size of each direction.
const INITIAL_BUFFER: usize = 16 * 1024;

/// Largest buffer of each direction: a read that fills the buffer doubles it up to this.
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
        }
    }

    /// Moves bytes until neither side can make progress; `Ready(Ok)` once the end of stream
    /// was passed on. Sets `moved` when a byte was read or written.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut TcpStream,
        to: &mut TcpStream,
        counter: &AtomicU64,
        moved: &mut bool,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.start == self.end && !self.eof {
                if self.grow {
                    self.grow = false;
                    let len = (self.buf.len() * 2).min(MAX_BUFFER);
                    self.buf = vec![0; len];
                }
                let mut rb = ReadBuf::new(&mut self.buf);
                ready!(Pin::new(&mut *from).poll_read(cx, &mut rb))?;
                let n = rb.filled().len();
                if n == 0 {
                    self.eof = true;
                } else {
                    *moved = true;
                    self.grow = n == self.buf.len() && n < MAX_BUFFER;
                    self.start = 0;
                    self.end = n;
                }
            }
            while self.start < self.end {
                let n = ready!(Pin::new(&mut *to).poll_write(cx, &self.buf[self.start..self.end]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.start += n;
                counter.fetch_add(n as u64, Ordering::Relaxed);
                *moved = true;
            }
            if self.eof {
                ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
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
    let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep_until(last + idle));
    poll_fn(|cx| {
        let mut moved = false;
        let mut step =
            |half: &mut Half, from: &mut TcpStream, to: &mut TcpStream, c: &AtomicU64| {
                if half.done {
                    return Poll::Ready(Ok(()));
                }
                half.poll(cx, from, to, c, &mut moved)
            };
        let a = step(&mut up, client, backend, counters.to_backend);
        let b = step(&mut down, backend, client, counters.to_client);
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
