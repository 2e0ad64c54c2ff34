//! The one TCP accept loop, shared by DNS over TCP, the directors and the HTTP API, so they
//! cannot drift apart in how they stop, pause on errors and shed connections over a limit.
//!
//! An [`Acceptor`] hands out connections until its shutdown signal. A failed `accept` (usually
//! EMFILE/ENFILE, or ENOBUFS/ENOMEM: the process or the kernel is out of something) is reported
//! to the caller's hook and pauses the loop for [`BACKOFF`] instead of spinning on an error
//! that will repeat at once; any error pauses, as each loop did before it was shared. With a
//! limit, a connection that finds no permit is closed at once (so the backlog does not fill
//! with clients that wait forever) and reported to the caller's other hook. The hooks log at
//! the caller, so each listener keeps its own messages, fields and log target.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// How long the loop pauses after a failed `accept`.
pub const BACKOFF: Duration = Duration::from_millis(50);

/// Called with each failed `accept`, before the pause.
type OnError = Box<dyn Fn(&io::Error) + Send + Sync>;
/// Called with the peer of each connection closed because the limit was reached.
type OnFull = Box<dyn Fn(SocketAddr) + Send + Sync>;

/// One accepted connection.
#[derive(Debug)]
pub struct Accepted {
    /// The connection.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// The connection's slot, with [`Acceptor::limit`]; hold it as long as the connection.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// A listener and what its accept loop does besides accepting: stop, pause, limit.
pub struct Acceptor {
    listener: TcpListener,
    gate: Gate,
}

/// Everything of an [`Acceptor`] but the listener, so the loop can borrow both.
struct Gate {
    /// The shutdown signal and one long-lived future waiting for it (not a fresh one per
    /// connection).
    stop: Option<(CancellationToken, Pin<Box<WaitForCancellationFutureOwned>>)>,
    limit: Option<(Arc<Semaphore>, OnFull)>,
    failed: OnError,
}

impl Acceptor {
    /// Accepts on `listener`, calling `failed` with every `accept` error. Without
    /// [`until`](Acceptor::until) it never stops by itself (the caller drops it).
    pub fn new(listener: TcpListener, failed: impl Fn(&io::Error) + Send + Sync + 'static) -> Self {
        Acceptor {
            listener,
            gate: Gate {
                stop: None,
                limit: None,
                failed: Box::new(failed),
            },
        }
    }

    /// Stops (`next` returns `None`) once `shutdown` is cancelled, also during a pause.
    pub fn until(mut self, shutdown: &CancellationToken) -> Self {
        let waiting = Box::pin(shutdown.clone().cancelled_owned());
        self.gate.stop = Some((shutdown.clone(), waiting));
        self
    }

    /// Hands out a connection only with one of `permits`; one that finds none is passed to
    /// `full` and closed.
    pub fn limit(
        mut self,
        permits: Arc<Semaphore>,
        full: impl Fn(SocketAddr) + Send + Sync + 'static,
    ) -> Self {
        self.gate.limit = Some((permits, Box::new(full)));
        self
    }

    /// The next connection, or `None` at shutdown. Cancel-safe: dropping the future loses no
    /// accepted connection.
    pub async fn next(&mut self) -> Option<Accepted> {
        let listener = &self.listener;
        self.gate.next(|| listener.accept()).await
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acceptor")
            .field("listener", &self.listener)
            .field("stops", &self.gate.stop.is_some())
            .field("limit", &self.gate.limit.as_ref().map(|(p, _)| p))
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// The loop, over any source of connections (the listener's `accept`, or one that fails
    /// on cue in the tests).
    async fn next<F, A>(&mut self, mut accept: F) -> Option<Accepted>
    where
        F: FnMut() -> A,
        A: Future<Output = io::Result<(TcpStream, SocketAddr)>>,
    {
        loop {
            let accepted = match &mut self.stop {
                // Checked before every accept, so a loop that always finds a connection
                // waiting still stops; accepting first keeps that busy loop cheap.
                Some((token, _)) if token.is_cancelled() => return None,
                Some((_, stopped)) => tokio::select! {
                    biased;
                    accepted = accept() => accepted,
                    _ = stopped.as_mut() => return None,
                },
                None => accept().await,
            };
            let (stream, peer) = match accepted {
                Ok(ok) => ok,
                Err(e) => {
                    (self.failed)(&e);
                    let pause = tokio::time::sleep(BACKOFF);
                    match &mut self.stop {
                        Some((_, stopped)) => tokio::select! {
                            _ = pause => {}
                            _ = stopped.as_mut() => return None,
                        },
                        None => pause.await,
                    }
                    continue;
                }
            };
            let permit = match &self.limit {
                None => None,
                Some((permits, full)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => {
                        full(peer);
                        drop(stream);
                        continue;
                    }
                },
            };
            return Some(Accepted {
                stream,
                peer,
                permit,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;

    /// An acceptor on a fresh 127.0.0.1:0 listener that counts its errors and refusals.
    async fn acceptor(shutdown: &CancellationToken) -> (Acceptor, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let errors = Arc::new(AtomicUsize::new(0));
        let counted = errors.clone();
        let acceptor = Acceptor::new(listener, move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        })
        .until(shutdown);
        (acceptor, errors)
    }

    #[tokio::test(start_paused = true)]
    async fn survives_a_transient_error_and_stops_on_shutdown() {
        let shutdown = CancellationToken::new();
        let (mut acceptor, errors) = acceptor(&shutdown).await;
        let addr = acceptor.local_addr().unwrap();
        // The client connects before the loop runs: the kernel completes the handshake and
        // queues the connection, so no timing is involved.
        let client = TcpStream::connect(addr).await.unwrap();

        // The first accept fails as if out of file descriptors; the rest are the listener's.
        let failures = Mutex::new(vec![io::Error::from_raw_os_error(24)]); // EMFILE
        let Acceptor { listener, gate } = &mut acceptor;
        let listener = &*listener;
        let accepted = gate
            .next(|| {
                let failure = failures.lock().unwrap().pop();
                async move {
                    match failure {
                        Some(e) => Err(e),
                        None => listener.accept().await,
                    }
                }
            })
            .await
            .expect("a connection after the error");
        assert_eq!(errors.load(Ordering::Relaxed), 1);
        assert_eq!(accepted.peer, client.local_addr().unwrap());
        assert!(accepted.permit.is_none());

        shutdown.cancel();
        assert!(acceptor.next().await.is_none());
        // A connection already queued is not handed out after shutdown either.
        let _late = TcpStream::connect(addr).await.unwrap();
        assert!(acceptor.next().await.is_none());
    }

    #[tokio::test]
    async fn a_pause_ends_at_shutdown() {
        let shutdown = CancellationToken::new();
        let (acceptor, errors) = acceptor(&shutdown).await;
        let Acceptor { mut gate, .. } = acceptor;
        let next = gate.next(|| {
            // Cancelled from inside the failing accept: the loop is then in its pause.
            shutdown.cancel();
            async { Err(io::Error::from_raw_os_error(23)) } // ENFILE
        });
        assert!(next.await.is_none());
        assert_eq!(errors.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_connection_over_the_limit_is_closed() {
        let shutdown = CancellationToken::new();
        let (acceptor, _) = acceptor(&shutdown).await;
        let refused = Arc::new(AtomicUsize::new(0));
        let counted = refused.clone();
        let mut acceptor = acceptor.limit(Arc::new(Semaphore::new(1)), move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        let addr = acceptor.local_addr().unwrap();
        let _first = TcpStream::connect(addr).await.unwrap();
        let held = acceptor.next().await.unwrap();
        assert!(held.permit.is_some());

        // The only permit is held: the next connection is closed as soon as it is accepted.
        let mut second = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 1];
        tokio::select! {
            _ = acceptor.next() => panic!("handed out a connection with no permit free"),
            read = second.read(&mut buf) => assert!(matches!(read, Ok(0) | Err(_))),
        }
        assert_eq!(refused.load(Ordering::Relaxed), 1);

        // Given back, the permit goes to the next connection.
        drop(held);
        let third = TcpStream::connect(addr).await.unwrap();
        let accepted = acceptor.next().await.unwrap();
        assert_eq!(accepted.peer, third.local_addr().unwrap());
        assert!(accepted.permit.is_some());
    }
}
