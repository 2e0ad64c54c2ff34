//! Backend connects without an event-loop round trip when the handshake is already done.
//! `tokio::net::TcpStream::connect` always waits for the socket to be reported writable, then
//! asks for `SO_ERROR`; on loopback and fast networks the handshake completes inside
//! `connect(2)` itself, so that wait costs a pass through `epoll_wait` and a task wake-up per
//! connection. Here the socket is made with `socket2` (non-blocking, `TCP_NODELAY`), and a
//! `getpeername` right after `connect` tells whether it is already established; only when it
//! is not does the connection wait for writability (bounded by the caller's timeout).
//! Measured with `bench/director.sh` (new connections per core, see bench/README.md).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpStream;

/// Connects to `addr` with `TCP_NODELAY` set. The caller bounds the time it may take.
pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_tcp_nodelay(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket))?;
    loop {
        if stream.peer_addr().is_ok() {
            return Ok(stream);
        }
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
        // Still connecting: wait until the kernel says the handshake ended either way.
        stream.writable().await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_and_reports_refusal() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = connect(addr).await.unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(stream.peer_addr().unwrap(), addr);
        drop(listener);
        let refused = connect(addr).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
    }
}
