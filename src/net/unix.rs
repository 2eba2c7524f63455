//! Unix-domain sockets: [`UnixListener`], [`UnixStream`] and [`UnixDatagram`], mirroring
//! `std::os::unix::net` the way the rest of [`weft::net`](crate::net) mirrors `std::net`.

use std::fmt;
use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, OwnedFd};
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

    /// An endless iterator of accepted streams.
    pub fn incoming(&self) -> impl Iterator<Item = io::Result<UnixStream>> + '_ {
        std::iter::repeat_with(move || self.accept().map(|(stream, _)| stream))
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
    pub fn connect<P: AsRef<Path>>(path: P) -> io::Result<UnixStream> {
        let addr = SockAddr::unix(path)?;
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
