//! DNS over UDP and TCP (RFC 1035 §4.2, RFC 7766): the loops that move messages between sockets
//! and the answering core. They take already-bound sockets and a shutdown token, so tests run
//! them on port 0 and every loop stops when told. Both answer with the same pure core
//! ([`super::answer_into`]) into buffers they reuse, and count each query in
//! [`DnsMetrics`](crate::dns::counters::DnsMetrics) (atomic adds only) as its reply is handed to the
//! socket.
//!
//! - [`udp`]: one OS thread per worker and listen address, each with its own `SO_REUSEPORT`
//!   socket, receiving and sending in batches (`recvmmsg`/`sendmmsg`). UDP replies pass the
//!   response rate limiter ([`super::rrl`]) when the config turns it on.
//! - [`tcp`]: an accept loop per listener and a task per connection on the tokio runtime; every
//!   complete query in what one read brought is answered, the replies go out in one write. TCP
//!   is never rate limited, since the handshake proves the client's address.

pub mod tcp;
pub mod udp;

pub use tcp::{TcpLimits, serve_tcp};
pub use udp::serve_udp;
