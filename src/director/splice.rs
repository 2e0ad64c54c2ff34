//! Zero-copy forwarding for bulk transfers (Linux `splice(2)`): bytes move socket → pipe →
//! socket inside the kernel, as page references, instead of being copied into a user-space
//! buffer and back. The pump switches a direction to it once that direction proves to be bulk
//! (a read filled its largest buffer), as HAProxy's `splice-auto` does; chatty connections
//! never pay for the pipe's two descriptors. `nix` provides the calls, so the crate stays free
//! of `unsafe`. Measured with `bench/director.sh` (bulk Gbit/s per core; see bench/README.md).

use std::io;
use std::os::fd::OwnedFd;
use std::task::{Context, Poll, ready};

use nix::fcntl::{FcntlArg, OFlag, SpliceFFlags, fcntl, splice};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe size asked for (the kernel may grant less; the default is 64 KiB).
const PIPE_SIZE: usize = 1024 * 1024;

/// A pipe between two sockets and how many bytes sit in it.
#[derive(Debug)]
pub struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    size: usize,
    held: usize,
}

impl Pipe {
    /// A non-blocking pipe, enlarged when the kernel allows.
    pub fn new() -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let size = match fcntl(&write, FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32)) {
            Ok(n) if n > 0 => n as usize,
            _ => 64 * 1024,
        };
        Ok(Pipe {
            read,
            write,
            size,
            held: 0,
        })
    }

    /// Bytes waiting in the pipe.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Moves what `from` has into the (empty) pipe; `Ready(Ok(0))` at the end of stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>, from: &TcpStream) -> Poll<io::Result<usize>> {
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        loop {
            ready!(from.poll_read_ready(cx))?;
            // The pipe is empty here, so "would block" can only mean the socket is.
            let moved = from.try_io(Interest::READABLE, || {
                splice(from, None, &self.write, None, self.size, flags).map_err(io::Error::from)
            });
            match moved {
                Ok(n) => {
                    self.held += n;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Moves bytes from the pipe to `to`; returns how many.
    pub fn poll_drain(&mut self, cx: &mut Context<'_>, to: &TcpStream) -> Poll<io::Result<usize>> {
        let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
        loop {
            ready!(to.poll_write_ready(cx))?;
            // The pipe holds data here, so "would block" can only mean the socket is full.
            let moved = to.try_io(Interest::WRITABLE, || {
                splice(&self.read, None, to, None, self.held, flags).map_err(io::Error::from)
            });
            match moved {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.held -= n;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
