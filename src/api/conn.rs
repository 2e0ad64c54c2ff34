//! Bounds on HTTP connections: at most `max_connections` open at once (further ones are
//! accepted and closed at once, so the backlog does not fill with clients that wait forever),
//! and a connection with no bytes moving either way for [`IDLE_TIMEOUT`] is closed, so idle
//! keep-alives and clients that never finish a request give their slot back. Live event
//! streams send a keep-alive comment well within the timeout.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};
use tracing::{debug, warn};

use tokio_rustls::TlsAcceptor;

use super::tls::Conn;
use crate::accept::Acceptor;

/// A connection with no bytes read or written for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A TCP listener that hands out at most `max` connections at a time.
pub struct Limited {
    acceptor: Acceptor,
    tls: Option<TlsAcceptor>,
}

impl Limited {
    /// Wraps `listener`; with `tls`, every connection starts with a TLS handshake (run by the
    /// connection's task at its first read, not here).
    pub fn new(listener: TcpListener, max: usize, tls: Option<TlsAcceptor>) -> Limited {
        let acceptor = Acceptor::new(listener, |e| warn!(error = %e, "http accept failed")).limit(
            Arc::new(Semaphore::new(max.max(1))),
            |peer| debug!(%peer, "http connection limit reached, closing"),
        );
        Limited { acceptor, tls }
    }
}

impl std::fmt::Debug for Limited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limited")
            .field("acceptor", &self.acceptor)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl axum::serve::Listener for Limited {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Conn, SocketAddr) {
        // No shutdown signal here: at graceful shutdown axum stops calling `accept`.
        match self.acceptor.next().await {
            Some(a) => {
                let io = Bounded::new(a.stream, a.permit);
                let conn = match &self.tls {
                    Some(tls) => Conn::Handshake(Box::new(tls.accept(io))),
                    None => Conn::Plain(io),
                };
                (conn, a.peer)
            }
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.acceptor.local_addr()
    }
}

/// One accepted connection: holds its permit until dropped and fails once idle too long.
#[derive(Debug)]
pub struct Bounded {
    stream: TcpStream,
    idle: Pin<Box<Sleep>>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Bounded {
    fn new(stream: TcpStream, permit: Option<OwnedSemaphorePermit>) -> Bounded {
        Bounded {
            stream,
            idle: Box::pin(tokio::time::sleep(IDLE_TIMEOUT)),
            _permit: permit,
        }
    }

    fn moved(&mut self) {
        self.idle.as_mut().reset(Instant::now() + IDLE_TIMEOUT);
    }

    /// Ready with an error once the idle deadline has passed; registers the waker otherwise.
    fn expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        match self.idle.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(
                io::ErrorKind::TimedOut,
                "http connection idle",
            )),
            Poll::Pending => Poll::Pending,
        }
    }

    /// What a write returns: bytes written restart the idle clock; a write that has to wait
    /// fails instead once the connection has been idle too long.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        r: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match r {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    self.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending => self.expired(cx).map(Err),
        }
    }
}

impl AsyncRead for Bounded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.expired(cx).map(Err),
        }
    }
}

impl AsyncWrite for Bounded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(cx, r)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
