//! TCP: [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::{each_addr, fd_traits, stream_io, timeout_methods, zero_timeout, ToSocketAddrs};
use crate::io::Source;
use crate::runtime::reactor::{timed_out, Direction};
use crate::sys;

/// A TCP socket server, listening for connections. Like [`std::net::TcpListener`], but
/// [`accept`](TcpListener::accept) parks the calling green thread until a client connects.
///
/// ```no_run
/// use std::io::{Read, Write};
///
/// weft::run(|| -> std::io::Result<()> {
///     let listener = weft::net::TcpListener::bind("127.0.0.1:7000")?;
///     for stream in listener.incoming() {
///         let mut stream = stream?;
///         // One green thread per connection, written as plain blocking code.
///         weft::spawn(move || {
///             let mut buf = [0u8; 4096];
///             while let Ok(n @ 1..) = stream.read(&mut buf) {
///                 if stream.write_all(&buf[..n]).is_err() {
///                     break;
///                 }
///             }
///         });
///     }
///     Ok(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpListener {
    source: Source,
}

/// A TCP connection. Like [`std::net::TcpStream`], but reads, writes and connects that would
/// block park the calling green thread instead. `Read` and `Write` are implemented for
/// `&TcpStream` as well, so a reader and a writer can share one stream.
///
/// ```
/// use std::io::{Read, Write};
/// use weft::net::{TcpListener, TcpStream};
///
/// weft::run(|| -> std::io::Result<()> {
///     let listener = TcpListener::bind("127.0.0.1:0")?;
///     let addr = listener.local_addr()?;
///     let server = weft::spawn(move || -> std::io::Result<()> {
///         let (mut stream, _) = listener.accept()?;
///         let mut buf = [0u8; 5];
///         stream.read_exact(&mut buf)?;
///         stream.write_all(&buf)
///     });
///     let mut client = TcpStream::connect(addr)?;
///     client.write_all(b"hello")?;
///     let mut echoed = [0u8; 5];
///     client.read_exact(&mut echoed)?;
///     assert_eq!(&echoed, b"hello");
///     server.join().unwrap()
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct TcpStream {
    source: Source,
}

/// An iterator over a listener's connections, from [`TcpListener::incoming`]; never ends.
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a TcpListener,
}

fd_traits!(TcpListener, std::net::TcpListener);
fd_traits!(TcpStream, std::net::TcpStream);

impl TcpListener {
    /// Creates a listener bound to `addr` (the first address that works). The socket has
    /// `SO_REUSEADDR`, as with std, and the largest backlog the system allows.
    pub fn bind<A: ToSocketAddrs>(addr: A) -> io::Result<TcpListener> {
        TcpListener::bind_with(addr, |_| Ok(()))
    }

    /// Like [`bind`](Self::bind), but first lets `configure` set options on the new socket,
    /// which must be set before `bind` to take effect: `SO_REUSEPORT`, `IPV6_V6ONLY`, buffer
    /// sizes, `TCP_DEFER_ACCEPT` and so on. The socket is a [`socket2::Socket`](super::socket2)
    /// (re-exported as `weft::net::socket2`, so the versions always match), already
    /// non-blocking and with `SO_REUSEADDR`. `configure` runs once for each address tried;
    /// an error from it is returned like a failed `bind`.
    ///
    /// Several processes (or listeners) can share one port with `SO_REUSEPORT`, and the
    /// kernel spreads the connections between them (see `examples/reuseport.rs`):
    ///
    /// ```
    /// use weft::net::TcpListener;
    ///
    /// let first = TcpListener::bind_with("127.0.0.1:0", |s| s.set_reuse_port(true))?;
    /// let port = first.local_addr()?.port();
    /// let second = TcpListener::bind_with(("127.0.0.1", port), |s| s.set_reuse_port(true))?;
    /// assert_eq!(second.local_addr()?.port(), port);
    /// // Without the option, the port is taken.
    /// let err = TcpListener::bind(("127.0.0.1", port)).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind_with<A: ToSocketAddrs>(
        addr: A,
        mut configure: impl FnMut(&Socket) -> io::Result<()>,
    ) -> io::Result<TcpListener> {
        each_addr(addr, |addr| {
            let socket = Socket::new(
                Domain::for_address(*addr),
                Type::STREAM.nonblocking(),
                Some(Protocol::TCP),
            )?;
            socket.set_reuse_address(true)?;
            configure(&socket)?;
            socket.bind(&SockAddr::from(*addr))?;
            // The kernel caps the backlog at net.core.somaxconn.
            socket.listen(libc::c_int::MAX)?;
            Ok(TcpListener {
                source: Source::new_nonblocking(OwnedFd::from(socket))?,
            })
        })
    }

    /// Waits for a connection and returns it with the peer's address.
    #[track_caller]
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let fd = self.source.as_raw_fd();
        let (socket, addr) = self.source.io(
            Direction::Read,
            || Ok(None),
            "accept",
            || sys::fdio::accept_nonblocking(fd),
        )?;
        let addr = addr.as_socket().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "accepted a non-IP address")
        })?;
        Ok((
            TcpStream {
                source: Source::new_nonblocking(socket)?,
            },
            addr,
        ))
    }

    /// An endless iterator of [`accept`](Self::accept)ed streams (errors included, as std's).
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// The local address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.source.view::<std::net::TcpListener>().local_addr()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.source.view::<std::net::TcpListener>().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.source.view::<std::net::TcpListener>().ttl()
    }

    /// Reads and clears the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.source.view::<std::net::TcpListener>().take_error()
    }

    /// A second listener on the same socket (a duplicated fd with its own registration).
    pub fn try_clone(&self) -> io::Result<TcpListener> {
        Ok(TcpListener {
            source: self.source.try_clone()?,
        })
    }
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<TcpStream>;

    #[track_caller]
    fn next(&mut self) -> Option<io::Result<TcpStream>> {
        Some(self.listener.accept().map(|(stream, _)| stream))
    }
}

impl TcpStream {
    /// Connects to `addr`, trying each address it resolves to in turn; returns the first
    /// connection made or the last error (`ConnectionRefused`, …).
    #[track_caller]
    pub fn connect<A: ToSocketAddrs>(addr: A) -> io::Result<TcpStream> {
        // A loop rather than `each_addr`'s closure, so the caller's location reaches the
        // wait (`#[track_caller]` does not pass through closures).
        let mut last = None;
        for addr in addr.weft_resolve()? {
            match TcpStream::connect_addr(&addr, None) {
                Ok(stream) => return Ok(stream),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(super::no_addresses))
    }

    /// Connects to `addr`, failing with `ErrorKind::TimedOut` if the connection is not made
    /// within `timeout`. A zero timeout is an `InvalidInput` error, as with std.
    #[track_caller]
    pub fn connect_timeout(addr: &SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        if timeout.is_zero() {
            return Err(zero_timeout());
        }
        TcpStream::connect_addr(addr, Instant::now().checked_add(timeout))
    }

    #[track_caller]
    fn connect_addr(addr: &SocketAddr, deadline: Option<Instant>) -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(*addr),
            Type::STREAM.nonblocking(),
            Some(Protocol::TCP),
        )?;
        let stream = TcpStream {
            source: Source::new_nonblocking(OwnedFd::from(socket))?,
        };
        let registration = stream.source.reg()?;
        let mut seen = registration.seq(Direction::Write);
        match stream.source.sock().connect(&SockAddr::from(*addr)) {
            Ok(()) => return Ok(stream),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        // Writability means the handshake ended, one way or the other; a wake-up can also be
        // a stale edge (the fresh socket's hang-up), so the socket's own state decides.
        loop {
            if !registration.wait_for(Direction::Write, seen, deadline, "connect") {
                return Err(timed_out("connect"));
            }
            seen = registration.seq(Direction::Write);
            if let Some(err) = stream.take_error()? {
                return Err(err);
            }
            match stream.peer_addr() {
                Ok(_) => return Ok(stream),
                Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.std().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.std().local_addr()
    }

    /// Shuts down the read half, the write half or both. Green threads blocked on the
    /// stream (through clones or shared references) wake: readers read 0, writers fail.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.std().shutdown(how)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when true).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.std().set_nodelay(nodelay)
    }

    /// Reads `TCP_NODELAY`.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.std().nodelay()
    }

    /// Sets `IP_TTL`.
    pub fn set_ttl(&self, ttl: u32) -> io::Result<()> {
        self.std().set_ttl(ttl)
    }

    /// Reads `IP_TTL`.
    pub fn ttl(&self) -> io::Result<u32> {
        self.std().ttl()
    }

    timeout_methods!();

    /// Reads without consuming: the data stays queued for the next read. Waits like `read`.
    #[track_caller]
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        let std = self.std();
        self.source.read_io("peek", || std.peek(buf))
    }

    /// Reads and clears the pending socket error (`SO_ERROR`).
    pub fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.std().take_error()
    }

    /// A second handle to the same connection (a duplicated fd with its own registration),
    /// e.g. to move the reading half into another green thread.
    pub fn try_clone(&self) -> io::Result<TcpStream> {
        Ok(TcpStream {
            source: self.source.try_clone()?,
        })
    }

    fn std(&self) -> crate::io::source::View<'_, std::net::TcpStream> {
        self.source.view()
    }
}

stream_io!(TcpStream, skips: true);

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpListener");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        d.field("fd", &self.source.as_raw_fd()).finish()
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TcpStream");
        if let Ok(addr) = self.local_addr() {
            d.field("addr", &addr);
        }
        if let Ok(peer) = self.peer_addr() {
            d.field("peer", &peer);
        }
        d.field("fd", &self.source.as_raw_fd()).finish()
    }
}
