//! `Source`: an owned, non-blocking fd registered with the reactor — the core of every
//! `weft::net` type.

use std::io;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::runtime::blocking_point::wait_site;
use crate::runtime::reactor::{uring, Direction, Registration};
use crate::runtime::WaitReason;
use crate::sys;

/// An owned fd in non-blocking mode and its reactor registration.
///
/// The registration is made when the `Source` is built. Only `From<std::…>` conversions,
/// which cannot return an error, may end up without one (reactor creation failed, e.g. at the
/// fd limit); the first operation that would block then retries and reports that error.
pub(crate) struct Source {
    // Declared before `fd`: deregistration precedes the close.
    registration: OnceLock<Registration>,
    fd: OwnedFd,
    /// std's non-blocking mode (`set_nonblocking(true)`): operations that would wait return
    /// `WouldBlock` instead. The fd itself is always `O_NONBLOCK`; this is the handle's
    /// choice. Relaxed: a mode the caller sets before the operations it means to affect.
    nonblocking: AtomicBool,
    /// The last read through an io_uring ring came back short (the receive queue was
    /// drained), so the next one submits at once instead of trying `recv` first. A hint:
    /// either choice is correct. Relaxed for that reason.
    read_short: AtomicBool,
}

/// Serialises the rare late registrations, so two threads cannot both register one fd.
static LATE_REGISTRATION: Mutex<()> = Mutex::new(());

/// Whether any socket in the process may carry a read or write timeout: set when one is set
/// through weft, or an fd arrives from outside (a `From<std::…>` or `FromRawFd` conversion,
/// which may bring `SO_RCVTIMEO`/`SO_SNDTIMEO` with it). Until then a read or write that
/// would block skips the `getsockopt` that asks for the timeout: one syscall saved on every
/// wait of a server that uses no timeouts. Relaxed: a flag set before the timeout itself
/// (`setsockopt`) by the thread that sets it; another thread racing with that call may miss
/// the timeout for one wait, as it could miss it in any order of the two calls.
static TIMEOUTS_IN_USE: AtomicBool = AtomicBool::new(false);

/// Records that some socket may now have a timeout (see [`TIMEOUTS_IN_USE`]).
pub(crate) fn note_timeouts_in_use() {
    TIMEOUTS_IN_USE.store(true, Relaxed);
}

impl Source {
    /// Takes ownership of `fd`, makes it non-blocking and registers it.
    pub(crate) fn new(fd: OwnedFd) -> io::Result<Source> {
        sys::fdio::set_nonblocking(fd.as_raw_fd())?;
        Source::new_nonblocking(fd)
    }

    /// Takes ownership of an fd that is already non-blocking (saves the `fcntl`).
    ///
    /// With the io_uring backend (and without the `hooks`, which must learn at once that the
    /// fd is weft's), the epoll registration waits for the first wait that needs readiness:
    /// a socket that only ever receives and sends through the ring then costs epoll nothing,
    /// not even the kernel's callback on every packet.
    pub(crate) fn new_nonblocking(fd: OwnedFd) -> io::Result<Source> {
        if cfg!(not(feature = "hooks")) && uring::wanted() {
            return Ok(Source {
                registration: OnceLock::new(),
                fd,
                nonblocking: AtomicBool::new(false),
                read_short: AtomicBool::new(false),
            });
        }
        let registration = Registration::new(fd.as_raw_fd())?;
        Ok(Source {
            registration: OnceLock::from(registration),
            fd,
            nonblocking: AtomicBool::new(false),
            read_short: AtomicBool::new(false),
        })
    }

    /// Like [`new`](Self::new), but a failed registration is deferred to first use.
    pub(crate) fn new_infallible(fd: OwnedFd) -> Source {
        note_timeouts_in_use();
        let _ = sys::fdio::set_nonblocking(fd.as_raw_fd());
        let registration = OnceLock::new();
        if let Ok(r) = Registration::new(fd.as_raw_fd()) {
            let _ = registration.set(r);
        }
        Source {
            registration,
            fd,
            nonblocking: AtomicBool::new(false),
            read_short: AtomicBool::new(false),
        }
    }

    /// The registration (made now if a `From` conversion could not make it), for callers
    /// that drive [`Registration::wait`] themselves.
    #[inline]
    pub(crate) fn reg(&self) -> io::Result<&Registration> {
        match self.registration.get() {
            Some(registration) => Ok(registration),
            None => self.register_late(),
        }
    }

    /// The first wait of a socket that had none yet: registers it, once.
    #[cold]
    #[inline(never)]
    fn register_late(&self) -> io::Result<&Registration> {
        let _serial = LATE_REGISTRATION.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(registration) = self.registration.get() {
            return Ok(registration);
        }
        sys::fdio::set_nonblocking(self.fd.as_raw_fd())?;
        let registration = Registration::new(self.fd.as_raw_fd())?;
        Ok(self.registration.get_or_init(|| registration))
    }

    /// See [`Registration::io`].
    #[track_caller]
    pub(crate) fn io<R>(
        &self,
        dir: Direction,
        timeout: impl FnOnce() -> io::Result<Option<Duration>>,
        what: &'static str,
        mut op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        crate::runtime::coop::spend();
        if self.nonblocking.load(Relaxed) {
            // std's non-blocking mode: one try, `WouldBlock` and all.
            return op();
        }
        self.reg()?.io(dir, timeout, what, op)
    }

    /// See `nonblocking`.
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) {
        self.nonblocking.store(nonblocking, Relaxed);
    }

    /// The calling green thread's ring and the deadline (from `SO_RCVTIMEO` if `reads`, else
    /// `SO_SNDTIMEO`) for a stream read or write of `len` bytes, or `None` when the call
    /// cannot use a ring (see `reactor::uring`: a plain or migratable thread, no ring, std's
    /// non-blocking mode, nothing to transfer).
    #[inline]
    fn ring_for(
        &self,
        len: usize,
        reads: bool,
    ) -> Option<io::Result<(&'static uring::Ring, Option<Instant>)>> {
        let ring = uring::current()?;
        if len == 0 || self.nonblocking.load(Relaxed) {
            return None;
        }
        crate::runtime::coop::spend();
        let timeout = self.timeout(|s| {
            if reads {
                s.read_timeout()
            } else {
                s.write_timeout()
            }
        });
        Some(timeout.map(|t| (ring, t.map(|t| Instant::now() + t))))
    }

    /// A stream read into `buf` through the worker's io_uring ring, if the calling green
    /// thread may use one; `None`: use the readiness path.
    #[track_caller]
    #[inline]
    pub(crate) fn ring_read(&self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        let (ring, deadline) = match self.ring_for(buf.len(), true)? {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        let fd = self.fd.as_raw_fd();
        let try_first = !self.read_short.load(Relaxed);
        let site = wait_site!(WaitReason::Read { fd });
        match uring::recv(ring, fd, buf, try_first, site, deadline) {
            Ok(Some(n)) => {
                self.read_short.store(n > 0 && n < buf.len(), Relaxed);
                Some(Ok(n))
            }
            // The kernel would not wait for this socket: wait for readiness instead.
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// A stream write of `buf` through the worker's io_uring ring, if the calling green
    /// thread may use one; `None`: use the readiness path.
    #[track_caller]
    #[inline]
    pub(crate) fn ring_write(&self, buf: &[u8]) -> Option<io::Result<usize>> {
        let (ring, deadline) = match self.ring_for(buf.len(), false)? {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        let fd = self.fd.as_raw_fd();
        let site = wait_site!(WaitReason::Write { fd });
        uring::send(ring, fd, buf, site, deadline).transpose()
    }

    /// A stream read of `len` bytes with the socket's `SO_RCVTIMEO`, skipping the try after
    /// a short read (see [`Registration::io_stream`]).
    #[track_caller]
    pub(crate) fn read_stream(
        &self,
        skips: bool,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.stream_io(Direction::Read, skips, len, op)
    }

    /// A stream write of `len` bytes with the socket's `SO_SNDTIMEO`, skipping the try after
    /// a short write.
    #[track_caller]
    pub(crate) fn write_stream(
        &self,
        skips: bool,
        len: usize,
        op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.stream_io(Direction::Write, skips, len, op)
    }

    #[track_caller]
    fn stream_io(
        &self,
        dir: Direction,
        skips: bool,
        len: usize,
        mut op: impl FnMut() -> io::Result<usize>,
    ) -> io::Result<usize> {
        crate::runtime::coop::spend();
        if self.nonblocking.load(Relaxed) || len == 0 {
            return op();
        }
        let (what, reads) = match dir {
            Direction::Read => ("read", true),
            Direction::Write => ("write", false),
        };
        let timeout = || {
            self.timeout(|s| {
                if reads {
                    s.read_timeout()
                } else {
                    s.write_timeout()
                }
            })
        };
        self.reg()?
            .io_stream(dir, timeout, what, skips.then_some(len), op)
    }

    /// The socket's timeout as `get` reads it, or `None` without a syscall when no socket in
    /// the process can have one.
    fn timeout(
        &self,
        get: impl FnOnce(&socket2::Socket) -> io::Result<Option<Duration>>,
    ) -> io::Result<Option<Duration>> {
        if TIMEOUTS_IN_USE.load(Relaxed) {
            get(&self.sock())
        } else {
            Ok(None)
        }
    }

    /// Reads with the socket's `SO_RCVTIMEO` as the timeout.
    #[track_caller]
    pub(crate) fn read_io<R>(
        &self,
        what: &'static str,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io(
            Direction::Read,
            || self.timeout(|s| s.read_timeout()),
            what,
            op,
        )
    }

    /// Writes with the socket's `SO_SNDTIMEO` as the timeout.
    #[track_caller]
    pub(crate) fn write_io<R>(
        &self,
        what: &'static str,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        self.io(
            Direction::Write,
            || self.timeout(|s| s.write_timeout()),
            what,
            op,
        )
    }

    /// A borrowed std (or socket2) object over the same fd, for the many calls that do not
    /// block (addresses, options, shutdown) and for the non-blocking syscalls themselves.
    pub(crate) fn view<T: FromRawFd + IntoRawFd>(&self) -> View<'_, T> {
        View {
            // SAFETY: the fd is open for as long as `&self` lives, which bounds the view;
            // `ManuallyDrop` keeps the view from closing it.
            inner: ManuallyDrop::new(unsafe { T::from_raw_fd(self.fd.as_raw_fd()) }),
            _source: PhantomData,
        }
    }

    pub(crate) fn sock(&self) -> socket2::SockRef<'_> {
        socket2::SockRef::from(&self.fd)
    }

    /// A new `Source` for a duplicate of the fd (`try_clone`): it shares the socket, and has
    /// its own registration and waiters.
    pub(crate) fn try_clone(&self) -> io::Result<Source> {
        Source::new(self.fd.try_clone()?)
    }

    /// Deregisters and returns the fd as it is (non-blocking).
    pub(crate) fn into_fd(self) -> OwnedFd {
        let Source {
            registration, fd, ..
        } = self;
        drop(registration);
        fd
    }
}

impl AsRawFd for Source {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Source {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A non-owning view of a `Source`'s fd as `T`.
pub(crate) struct View<'a, T: IntoRawFd> {
    inner: ManuallyDrop<T>,
    _source: PhantomData<&'a Source>,
}

impl<T: IntoRawFd> Deref for View<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}
