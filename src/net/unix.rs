//! Unix-domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`], mirroring
//! `std::os::unix::net` the way the rest of [`weft::net`](crate::net) mirrors `std::net`.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};

use super::{fd_traits, stream_io, timeout_methods};
use crate::io::source::View;
use crate::io::Source;
use crate::runtime::reactor::Direction;

/// A Unix-domain stream listener. [`accept`](UnixListener::accept) parks the calling green
/// thread until a client connects.
///
/// ```
/// use std::io::{Read, Write};
/// use weft::net::unix::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("weft-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let listener = UnixListener::bind(&path)?;
/// let reply = weft::run(|| -> std::io::Result<String> {
///     weft::spawn(move || -> std::io::Result<()> {
///         let (mut stream, _) = listener.accept()?;
///         stream.write_all(b"hi")
///     });
///     let mut reply = String::new();
///     UnixStream::connect(&path)?.read_to_string(&mut reply)?;
///     Ok(reply)
/// })?;
/// assert_eq!(reply, "hi");
/// std::fs::remove_file(&path)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct UnixListener {
    source: Source,
}

/// A Unix-domain stream connection; `Read` and `Write` also work through `&UnixStream`.
pub struct UnixStream {
    source: Source,
}

/// A Unix-domain datagram socket.
pub struct UnixDatagram {
    source: Source,
}

fd_traits!(UnixListener, std::os::unix::net::UnixListener);
fd_traits!(UnixStream, std::os::unix::net::UnixStream);
fd_traits!(UnixDatagram, std::os::unix::net::UnixDatagram);

impl UnixListener {
    /// Creates a listener bound to the filesystem path `path` (which must not exist).
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind(path)?;
        Ok(UnixListener {
            source: Source::new(listener.into())?,
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let std = self.source.view::<std::os::unix::net::UnixListener>();
        let (stream, addr) =
            self.source
                .io(Direction::Read, || Ok(None), "accept", || std.accept())?;
        Ok((
            UnixStream {
                source: Source::new(stream.into())?,
            },
            addr,
        ))
    }

    /// Creates a listener bound to `addr`, which may be a filesystem path or (on Linux) an
    /// abstract name, as std's `UnixListener::bind_addr`.
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixListener> {
        let listener = std::os::unix::net::UnixListener::bind_addr(addr)?;
        Ok(UnixListener {
            source: Source::new(listener.into())?,
        })
    }

    /// An endless iterator of accepted streams; each `next` parks until a client connects.
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source
            .view::<std::os::unix::net::UnixListener>()
            .local_addr()
    }

    /// Reads and clears the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source
            .view::<std::os::unix::net::UnixListener>()
            .take_error()
    }

    /// A second listener on the same socket, with its own registration.
    pub fn try_clone(&self) -> io::Result<UnixListener> {
        Ok(UnixListener {
            source: self.source.try_clone()?,
        })
    }
}

impl UnixStream {
    /// Connects to the socket at `path`. If the listener's backlog is full (the kernel says
    /// `EAGAIN`, and offers no readiness event for it), retries with a short, growing sleep,
    /// as a blocking connect would wait.
    ///
    /// As std's, a path with a NUL byte (which includes an abstract name written as
    /// `"\0name"`) is refused with [`InvalidInput`](io::ErrorKind::InvalidInput); connect
    /// to an abstract name with [`connect_addr`](UnixStream::connect_addr).
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        UnixStream::connect_addr(&SocketAddr::from_pathname(path)?)
    }

    /// Connects to `addr`, a filesystem path or (on Linux) an abstract name, as std's
    /// `UnixStream::connect_addr`; waits as [`connect`](UnixStream::connect) does.
    pub fn connect_addr(addr: &SocketAddr) -> io::Result<UnixStream> {
        let addr = raw_addr(addr)?;
        let socket = Socket::new(Domain::UNIX, Type::STREAM.nonblocking(), None)?;
        let mut backoff = Duration::from_micros(50);
        loop {
            match socket.connect(&addr) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_millis(10));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(UnixStream {
            source: Source::new_nonblocking(OwnedFd::from(socket))?,
        })
    }

    /// A connected pair of streams.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((
            UnixStream {
                source: Source::new(a.into())?,
            },
            UnixStream {
                source: Source::new(b.into())?,
            },
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std().local_addr()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std().peer_addr()
    }

    /// Shuts down the read half, the write half or both; blocked peers of this socket wake.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.std().shutdown(how)
    }

    timeout_methods!();

    /// Reads and clears the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.std().take_error()
    }

    /// A second handle to the same connection, with its own registration.
    pub fn try_clone(&self) -> io::Result<UnixStream> {
        Ok(UnixStream {
            source: self.source.try_clone()?,
        })
    }

    fn std(&self) -> View<'_, std::os::unix::net::UnixStream> {
        self.source.view()
    }
}

stream_io!(UnixStream, skips: false);

impl UnixDatagram {
    /// Creates a datagram socket bound to `path`.
    pub fn bind<P: AsRef<Path>>(path: P) -> io::Result<UnixDatagram> {
        let socket = std::os::unix::net::UnixDatagram::bind(path)?;
        Ok(UnixDatagram {
            source: Source::new(socket.into())?,
        })
    }

    /// Creates a datagram socket bound to `addr` (a path or, on Linux, an abstract name).
    pub fn bind_addr(addr: &SocketAddr) -> io::Result<UnixDatagram> {
        let socket = std::os::unix::net::UnixDatagram::bind_addr(addr)?;
        Ok(UnixDatagram {
            source: Source::new(socket.into())?,
        })
    }

    /// Creates an unbound datagram socket.
    pub fn unbound() -> io::Result<UnixDatagram> {
        let socket = std::os::unix::net::UnixDatagram::unbound()?;
        Ok(UnixDatagram {
            source: Source::new(socket.into())?,
        })
    }

    /// A connected pair of datagram sockets.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = std::os::unix::net::UnixDatagram::pair()?;
        Ok((
            UnixDatagram {
                source: Source::new(a.into())?,
            },
            UnixDatagram {
                source: Source::new(b.into())?,
            },
        ))
    }

    /// Sets the default peer to the socket at `path`.
    pub fn connect<P: AsRef<Path>>(&self, path: P) -> io::Result<()> {
        self.std().connect(path)
    }

    /// Sets the default peer to `addr`.
    pub fn connect_addr(&self, addr: &SocketAddr) -> io::Result<()> {
        self.std().connect_addr(addr)
    }

    /// Sends a datagram to the connected peer.
    #[track_caller]
    pub fn send(&self, buf: &[u8]) -> io::Result<usize> {
        let std = self.std();
        self.source.write_io("send", || std.send(buf))
    }

    /// Receives a datagram.
    #[track_caller]
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        let std = self.std();
        self.source.read_io("recv", || std.recv(buf))
    }

    /// Sends a datagram to the socket at `path`.
    #[track_caller]
    pub fn send_to<P: AsRef<Path>>(&self, buf: &[u8], path: P) -> io::Result<usize> {
        let std = self.std();
        let path = path.as_ref();
        self.source.write_io("send_to", || std.send_to(buf, path))
    }

    /// Sends a datagram to `addr`, parking while the receiver's queue is full.
    #[track_caller]
    pub fn send_to_addr(&self, buf: &[u8], addr: &SocketAddr) -> io::Result<usize> {
        let std = self.std();
        self.source
            .write_io("send_to_addr", || std.send_to_addr(buf, addr))
    }

    /// Receives a datagram and its sender's address.
    #[track_caller]
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let std = self.std();
        self.source.read_io("recv_from", || std.recv_from(buf))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std().local_addr()
    }

    /// The connected peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std().peer_addr()
    }

    timeout_methods!();

    /// Shuts down reading, writing or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.std().shutdown(how)
    }

    /// Reads and clears the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.std().take_error()
    }

    /// A second handle to the same socket, with its own registration.
    pub fn try_clone(&self) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            source: self.source.try_clone()?,
        })
    }

    fn std(&self) -> View<'_, std::os::unix::net::UnixDatagram> {
        self.source.view()
    }
}

/// The iterator of [`UnixListener::incoming`]: never ends, each item is one `accept`.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a UnixListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<UnixStream>;

    fn next(&mut self) -> Option<io::Result<UnixStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl<'a> IntoIterator for &'a UnixListener {
    type Item = io::Result<UnixStream>;
    type IntoIter = Incoming<'a>;

    fn into_iter(self) -> Incoming<'a> {
        self.incoming()
    }
}

/// std's address as socket2's, for the nonblocking connect. std keeps the raw bytes
/// private, so the address is rebuilt from what it shows: a path, an abstract name (a
/// leading NUL, which socket2 passes through), or nothing (unnamed).
fn raw_addr(addr: &SocketAddr) -> io::Result<SockAddr> {
    use std::os::linux::net::SocketAddrExt;
    if let Some(path) = addr.as_pathname() {
        return SockAddr::unix(path);
    }
    if let Some(name) = addr.as_abstract_name() {
        let mut bytes = Vec::with_capacity(name.len() + 1);
        bytes.push(0);
        bytes.extend_from_slice(name);
        return SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes));
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "cannot connect to an unnamed Unix socket address",
    ))
}

macro_rules! debug_unix {
    ($ty:ident) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($ty))
                    .field("fd", &self.source.as_raw_fd())
                    .finish()
            }
        }
    };
}
debug_unix!(UnixListener);
debug_unix!(UnixStream);
debug_unix!(UnixDatagram);
