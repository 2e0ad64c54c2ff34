//! HTTPS for the HTTP side: the certificate each handshake presents is the one in the snapshot
//! in force, so a reload that re-reads a renewed certificate changes what new connections get
//! while open ones carry on with theirs; and the handshake runs in the connection's own task,
//! never in the accept loop, so a slow or silent client cannot hold up the others.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::conn::Bounded;
use crate::state::SharedState;

/// The server side of TLS for the API listener.
pub fn acceptor(state: &Arc<SharedState>, first: Arc<CertifiedKey>) -> io::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Current {
            state: Arc::downgrade(state),
            first,
        }));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Presents the certificate of the snapshot in force; the one the listener started with when
/// the running config has none (TLS was turned off by a reload: that takes a restart).
struct Current {
    state: std::sync::Weak<SharedState>,
    first: Arc<CertifiedKey>,
}

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let live = self.state.upgrade().and_then(|state| {
            let snap = state.load();
            let tls = snap.model.http.as_ref()?.tls.as_ref()?;
            Some(tls.key.clone())
        });
        Some(live.unwrap_or_else(|| self.first.clone()))
    }
}

impl fmt::Debug for Current {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Current")
    }
}

/// One API connection: plain, or TLS whose handshake is driven by the first read or write.
pub enum Conn {
    /// Plain HTTP.
    Plain(Bounded),
    /// The TLS handshake is under way.
    Handshake(Box<tokio_rustls::Accept<Bounded>>),
    /// TLS established.
    Tls(Box<TlsStream<Bounded>>),
    /// The handshake failed; every further call fails.
    Failed,
}

/// A byte stream either kind of connection is, once established.
trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

impl Conn {
    /// The established stream, driving the handshake first if one is under way.
    fn established(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut dyn Io>> {
        if let Conn::Handshake(accept) = self {
            match ready!(Pin::new(&mut **accept).poll(cx)) {
                Ok(stream) => *self = Conn::Tls(Box::new(stream)),
                Err(e) => {
                    *self = Conn::Failed;
                    return Poll::Ready(Err(e));
                }
            }
        }
        Poll::Ready(match self {
            Conn::Plain(s) => Ok(s),
            Conn::Tls(s) => Ok(&mut **s),
            Conn::Handshake(_) | Conn::Failed => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake failed",
            )),
        })
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Conn::Plain(_) => "Conn::Plain",
            Conn::Handshake(_) => "Conn::Handshake",
            Conn::Tls(_) => "Conn::Tls",
            Conn::Failed => "Conn::Failed",
        })
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let io = ready!(self.get_mut().established(cx))?;
        Pin::new(io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let io = ready!(self.get_mut().established(cx))?;
        Pin::new(io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let io = ready!(self.get_mut().established(cx))?;
        Pin::new(io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
            Conn::Handshake(_) | Conn::Failed => Poll::Ready(Ok(())),
        }
    }
}
