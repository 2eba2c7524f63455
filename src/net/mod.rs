//! Networking with std's shapes: [`TcpListener`], [`TcpStream`], [`UdpSocket`] and, in
//! [`unix`], Unix-domain sockets.
//!
//! Each type mirrors its `std::net` namesake: same method names, signatures and
//! `io::ErrorKind`s. The difference is what blocking means: in a green thread, an operation
//! that would block parks the green thread on the reactor and the worker runs others; on a
//! plain thread it blocks the thread (with `poll(2)`), so one piece of code runs either way.
//!
//! # Timeouts
//!
//! `set_read_timeout` and `set_write_timeout` store the timeout in the socket itself
//! (`SO_RCVTIMEO`/`SO_SNDTIMEO`, as std does), so it is shared with clones and survives
//! `into_std`. An operation that times out fails with `ErrorKind::TimedOut` (std on Linux
//! reports `WouldBlock`; weft does not, because `WouldBlock` is what non-blocking sockets
//! say and a timeout is not that). The timeout bounds each call, as with std, and counts
//! from the moment the call first found the socket not ready.
//!
//! # Clones, shared references and closing
//!
//! `Read` and `Write` are implemented for `&TcpStream` too, so one green thread can read
//! while another writes the same stream; each direction has its own waiters. `try_clone`
//! duplicates the fd; the clone has its own registration. A green thread blocked on a socket
//! holds a borrow of the object it waits through, so that object cannot be dropped under
//! it: the API makes "closed while waited on" impossible. Dropping *another* clone closes
//! only that clone's fd; the socket stays open while any clone lives, exactly as with std.
//! To wake a peer blocked on the same socket, use `shutdown`: a blocked reader then reads 0
//! and a blocked writer gets an error.
//!
//! # Conversions
//!
//! `From<std::net::…>` switches the socket to non-blocking mode and registers it. `into_std`
//! deregisters and returns the std type **still in non-blocking mode**: call
//! `set_nonblocking(false)` before using it with std's blocking calls. Turning blocking mode
//! back on by itself would stall any weft clone of the same socket, because the flag
//! belongs to the socket, not to the fd.
//!
//! # Name resolution
//!
//! Addresses go through weft's own [`ToSocketAddrs`], implemented for the same types as
//! std's (`"host:port"`, `("host", port)`, `SocketAddr`, `&[SocketAddr]`…), so calls written
//! for std compile unchanged. IP literals are parsed in place and never leave the worker; a
//! host name is looked up with the system resolver (`getaddrinfo`) on the blocking pool, so
//! a slow DNS server stalls only the green thread that asked. [`lookup_host`] does the same
//! lookup on its own. (A bound on std's trait could not tell a literal from a name before
//! resolving it, which is why weft has its own, sealed one.)

mod addr;
mod tcp;
mod udp;
pub mod unix;

pub use addr::{lookup_host, ToSocketAddrs};
pub use tcp::{Incoming, TcpListener, TcpStream};
pub use udp::UdpSocket;

/// The `socket2` crate that [`TcpListener::bind_with`] hands its socket from, re-exported so
/// that callers name the same version weft uses.
pub use socket2;

use std::io;
use std::net::SocketAddr;

/// Tries `f` on each address `addr` resolves to (host names on the blocking pool); returns the
/// first success or the last error.
fn each_addr<A: ToSocketAddrs, T>(
    addr: A,
    mut f: impl FnMut(&SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addr.weft_resolve()? {
        match f(&addr) {
            Ok(value) => return Ok(value),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(no_addresses))
}

/// std's error for an address that resolved to nothing.
fn no_addresses() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "could not resolve to any addresses",
    )
}

/// std's error for a zero timeout.
fn zero_timeout() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot set a 0 duration timeout",
    )
}

/// `AsRawFd`, `AsFd`, `IntoRawFd`, `FromRawFd`, `From<OwnedFd>`, `From<…> for OwnedFd` and
/// `From<std type>` for a `Source` wrapper.
macro_rules! fd_traits {
    ($ty:ident, $std:ty) => {
        impl std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                self.source.as_raw_fd()
            }
        }

        impl std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                self.source.as_fd()
            }
        }

        impl std::os::fd::IntoRawFd for $ty {
            /// Deregisters the fd from the reactor and gives it up (still non-blocking).
            fn into_raw_fd(self) -> std::os::fd::RawFd {
                std::os::fd::IntoRawFd::into_raw_fd(self.source.into_fd())
            }
        }

        impl std::os::fd::FromRawFd for $ty {
            /// Takes ownership of `fd`, makes it non-blocking and registers it.
            ///
            /// # Safety
            /// `fd` must be an open socket of the right kind that nothing else owns.
            unsafe fn from_raw_fd(fd: std::os::fd::RawFd) -> $ty {
                // SAFETY: the caller hands over ownership of an open fd.
                let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
                $ty {
                    source: crate::io::Source::new_infallible(owned),
                }
            }
        }

        impl From<std::os::fd::OwnedFd> for $ty {
            /// Takes the socket, switches it to non-blocking mode and registers it (as
            /// `FromRawFd`); the fd must be a socket of the right kind, as for std's impl.
            fn from(fd: std::os::fd::OwnedFd) -> $ty {
                $ty {
                    source: crate::io::Source::new_infallible(fd),
                }
            }
        }

        impl From<$ty> for std::os::fd::OwnedFd {
            /// Deregisters the fd from the reactor and gives it up (still non-blocking).
            fn from(socket: $ty) -> std::os::fd::OwnedFd {
                socket.source.into_fd()
            }
        }

        impl From<$std> for $ty {
            /// Switches the socket to non-blocking mode and registers it with the reactor.
            fn from(socket: $std) -> $ty {
                $ty {
                    source: crate::io::Source::new_infallible(std::os::fd::OwnedFd::from(socket)),
                }
            }
        }

        impl $ty {
            /// std's non-blocking mode: with `true`, an operation that would wait returns an
            /// `ErrorKind::WouldBlock` error at once instead of parking (for event loops of
            /// your own); `false` (the default) waits. Unlike std, it applies to this handle
            /// only: clones made with `try_clone` keep their own mode.
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.source.set_nonblocking(nonblocking);
                Ok(())
            }

            /// Deregisters the socket and returns it as the std type, **still in
            /// non-blocking mode** (see the [module docs](crate::net#conversions)).
            pub fn into_std(self) -> $std {
                <$std>::from(self.source.into_fd())
            }
        }
    };
}
pub(crate) use fd_traits;

/// The four timeout methods, inside an `impl` block of a type with a `std()` view whose std
/// type has them. The timeout lives in the socket (`SO_RCVTIMEO`/`SO_SNDTIMEO`).
macro_rules! timeout_methods {
    () => {
        /// Sets the read (receive) timeout; `None` waits forever, a zero duration is an
        /// `InvalidInput` error. Operations that time out fail with `ErrorKind::TimedOut`.
        pub fn set_read_timeout(
            &self,
            timeout: Option<std::time::Duration>,
        ) -> std::io::Result<()> {
            crate::io::note_timeouts_in_use();
            self.std().set_read_timeout(timeout)
        }

        /// Sets the write (send) timeout; `None` waits forever, a zero duration is an
        /// `InvalidInput` error. Operations that time out fail with `ErrorKind::TimedOut`.
        pub fn set_write_timeout(
            &self,
            timeout: Option<std::time::Duration>,
        ) -> std::io::Result<()> {
            crate::io::note_timeouts_in_use();
            self.std().set_write_timeout(timeout)
        }

        /// The read (receive) timeout.
        pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            self.std().read_timeout()
        }

        /// The write (send) timeout.
        pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
            self.std().write_timeout()
        }
    };
}
pub(crate) use timeout_methods;

/// `Read` and `Write` for a stream socket type and for shared references to it. Reads go
/// through the std view; writes use `send` with `MSG_NOSIGNAL`, so a closed peer is an
/// `EPIPE` error, never a `SIGPIPE`.
///
/// `$skips` turns on skipping the try that can only fail after a short transfer (see the
/// reactor's module docs). Only TCP has it: a Unix stream read also stops short, with data
/// still queued, at a boundary between messages from different senders or carrying
/// descriptors, and skipping the next read would wait for an edge that already came.
macro_rules! stream_io {
    ($ty:ident, skips: $skips:expr) => {
        impl std::io::Read for &$ty {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if let Some(result) = self.source.ring_read(buf) {
                    return result;
                }
                let std = self.std();
                let len = buf.len();
                self.source.read_stream($skips, len, || (&*std).read(buf))
            }

            #[track_caller]
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                let std = self.std();
                // std's readv takes at most IOV_MAX buffers: a short read is only a sign of a
                // drained socket when it asked for what the kernel was offered.
                let len = bufs
                    .iter()
                    .take(crate::sys::fdio::IOV_MAX)
                    .map(|b| b.len())
                    .sum();
                self.source
                    .read_stream($skips, len, || (&*std).read_vectored(bufs))
            }

            // std's provided `read_exact`, with `#[track_caller]` so that a dump names the
            // caller's line rather than std's.
            #[track_caller]
            fn read_exact(&mut self, mut buf: &mut [u8]) -> std::io::Result<()> {
                while !buf.is_empty() {
                    match self.read(buf) {
                        Ok(0) => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                "failed to fill whole buffer",
                            ))
                        }
                        Ok(n) => buf = &mut buf[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }

        impl std::io::Write for &$ty {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if let Some(result) = self.source.ring_write(buf) {
                    return result;
                }
                let sock = self.source.sock();
                self.source.write_stream($skips, buf.len(), || {
                    sock.send_with_flags(buf, libc::MSG_NOSIGNAL)
                })
            }

            #[track_caller]
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                let sock = self.source.sock();
                // More than IOV_MAX buffers is EMSGSIZE from sendmsg: send the first ones.
                let bufs = crate::sys::fdio::iov_capped(bufs);
                let len = bufs.iter().map(|b| b.len()).sum();
                self.source.write_stream($skips, len, || {
                    sock.send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL)
                })
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }

            // std's provided `write_all`, with `#[track_caller]` (see `read_exact`).
            #[track_caller]
            fn write_all(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
                while !buf.is_empty() {
                    match self.write(buf) {
                        Ok(0) => {
                            return Err(std::io::Error::new(
                                std::io::ErrorKind::WriteZero,
                                "failed to write whole buffer",
                            ))
                        }
                        Ok(n) => buf = &buf[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
        }

        impl std::io::Read for $ty {
            #[track_caller]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            #[track_caller]
            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }

            #[track_caller]
            fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
                (&*self).read_exact(buf)
            }
        }

        impl std::io::Write for $ty {
            #[track_caller]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            #[track_caller]
            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }

            #[track_caller]
            fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
                (&*self).write_all(buf)
            }
        }
    };
}
pub(crate) use stream_io;
