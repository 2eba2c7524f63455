//! Readiness-based IO for any file descriptor: [`NonBlocking`].
//!
//! `weft::net`'s sockets are built on the same machinery; `NonBlocking` exposes it for fds
//! weft does not wrap itself: pipes, terminals, eventfds, sockets made by other libraries.

pub(crate) mod source;

pub(crate) use source::{note_timeouts_in_use, Source};

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::ManuallyDrop;
use std::time::Duration;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use crate::runtime::reactor::{Direction, Registration};
use crate::sys;

/// Wraps any fd so that reads and writes that would block park the calling green thread
/// until the fd is ready (on a plain thread they block it, via `poll(2)`).
///
/// [`new`](NonBlocking::new) turns on `O_NONBLOCK` and registers the fd with the reactor;
/// dropping the wrapper (or [`into_inner`](NonBlocking::into_inner)) deregisters it and puts
/// the file status flags back as they were, so wrapping stdin does not leave the terminal
/// non-blocking for the shell. `O_NONBLOCK` belongs to the open file description: other
/// holders of the same file (a `dup`, a parent process) see it while the wrapper lives.
///
/// Regular files and directories cannot be waited on (epoll refuses them: they are always
/// "ready"); `new` returns an `ErrorKind::Unsupported` error for them.
///
/// ```
/// use std::io::{Read, Write};
/// use weft::io::NonBlocking;
///
/// let (reader, writer) = std::io::pipe()?;
/// let mut reader = NonBlocking::new(reader)?;
/// let mut writer = NonBlocking::new(writer)?;
/// let msg = weft::run(move || {
///     // The reader parks until the writer has written.
///     let consumer = weft::spawn(move || {
///         let mut msg = String::new();
///         reader.read_to_string(&mut msg).map(|_| msg)
///     });
///     writer.write_all(b"through a pipe")?;
///     drop(writer); // end of file for the reader
///     consumer.join().unwrap()
/// })?;
/// assert_eq!(msg, "through a pipe");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # I/O safety
///
/// `T` must implement [`AsFd`]: an owned fd (`OwnedFd`, `File`, `ChildStdout`, a pipe end…),
/// a [`BorrowedFd`] or a reference to an owner. The borrow checker then keeps the fd open for
/// as long as the wrapper lives, so dropping the wrapper (which deregisters the fd and
/// restores its flags) can never act on an unrelated fd that reused the number. A bare
/// [`RawFd`] has no such guarantee and is refused:
///
/// ```compile_fail
/// use std::os::fd::AsRawFd;
/// let (reader, _writer) = std::io::pipe().unwrap();
/// let raw = reader.as_raw_fd();
/// let wrapped = weft::io::NonBlocking::new(raw); // RawFd is not AsFd
/// ```
///
/// Borrowing works, and the wrapper must go before the owner can close the fd:
///
/// ```
/// use std::os::fd::AsFd;
/// use std::io::Write;
///
/// let (reader, writer) = std::io::pipe()?;
/// let wrapped = weft::io::NonBlocking::new(writer.as_fd())?;
/// (&wrapped).write_all(b"borrowed")?;
/// drop(wrapped); // deregistered, flags restored; `writer` still owns the fd
/// drop(writer);
/// # drop(reader);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct NonBlocking<T: AsFd> {
    // Declared first: deregistration happens before `inner` can close the fd.
    registration: Registration,
    inner: T,
    /// The status flags to restore on drop, if `new` changed them.
    restore: Option<libc::c_int>,
}

impl<T: AsFd> NonBlocking<T> {
    /// Makes `inner`'s fd non-blocking and registers it with the reactor.
    pub fn new(inner: T) -> io::Result<NonBlocking<T>> {
        let fd = inner.as_fd().as_raw_fd();
        let before = sys::fdio::set_nonblocking(fd)?;
        let restore = (before & libc::O_NONBLOCK == 0).then_some(before);
        match Registration::new(fd) {
            Ok(registration) => Ok(NonBlocking {
                registration,
                inner,
                restore,
            }),
            Err(err) => {
                if let Some(flags) = restore {
                    let _ = sys::fdio::set_status_flags(fd, flags);
                }
                Err(err)
            }
        }
    }

    /// The wrapped value. Do not change its fd's blocking mode or close it through this.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Deregisters the fd, restores its status flags and returns the wrapped value.
    pub fn into_inner(self) -> T {
        let mut this = ManuallyDrop::new(self);
        this.restore_flags();
        // SAFETY: `this` is never used or dropped again; each field is moved out once.
        unsafe {
            drop(std::ptr::read(&this.registration));
            std::ptr::read(&this.inner)
        }
    }

    fn restore_flags(&mut self) {
        if let Some(flags) = self.restore.take() {
            let _ = sys::fdio::set_status_flags(self.inner.as_fd().as_raw_fd(), flags);
        }
    }

    /// Waits until the fd is readable (or at end of file, or in error). Returns at once if
    /// it already is.
    #[track_caller]
    pub fn readable(&self) -> io::Result<()> {
        self.ready(Direction::Read)
    }

    /// Waits until the fd is writable (or in error). Returns at once if it already is.
    #[track_caller]
    pub fn writable(&self) -> io::Result<()> {
        self.ready(Direction::Write)
    }

    #[track_caller]
    fn ready(&self, dir: Direction) -> io::Result<()> {
        let events = match dir {
            Direction::Read => libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP,
            Direction::Write => libc::POLLOUT,
        };
        loop {
            let seen = self.registration.seq(dir);
            // Level check of the current state; an edge after it moves the sequence.
            if sys::fdio::poll_fd(
                self.inner.as_fd().as_raw_fd(),
                events,
                Some(std::time::Duration::ZERO),
            )? {
                return Ok(());
            }
            self.registration.wait(dir, seen, None);
        }
    }

    /// Runs `op` (a custom syscall on the fd) until it stops failing with `WouldBlock`,
    /// parking until the fd is readable between tries.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use weft::io::NonBlocking;
    ///
    /// let (reader, writer) = std::io::pipe()?;
    /// let reader = NonBlocking::new(reader)?;
    /// let n = weft::run(move || {
    ///     weft::spawn(move || std::io::Write::write_all(&mut &writer, b"xyz"));
    ///     let mut buf = [0u8; 8];
    ///     reader.read_with(|r| {
    ///         // Any call that reports EAGAIN as `WouldBlock` fits here.
    ///         let n = unsafe { libc::read(r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    ///         if n < 0 { Err(std::io::Error::last_os_error()) } else { Ok(n as usize) }
    ///     })
    /// })?;
    /// assert_eq!(n, 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[track_caller]
    pub fn read_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.io(Direction::Read, || Ok(None), "read", || op(&self.inner))
    }

    /// Like [`read_with`](Self::read_with), waiting for writability between tries.
    #[track_caller]
    pub fn write_with<R>(&self, mut op: impl FnMut(&T) -> io::Result<R>) -> io::Result<R> {
        self.io(Direction::Write, || Ok(None), "write", || op(&self.inner))
    }

    fn fd(&self) -> RawFd {
        self.inner.as_fd().as_raw_fd()
    }

    /// Every read and write: one unit of the cooperative budget (see `runtime::coop`),
    /// then the reactor's try-wait-retry loop.
    #[track_caller]
    fn io<R>(
        &self,
        dir: Direction,
        timeout: impl FnOnce() -> io::Result<Option<Duration>>,
        what: &'static str,
        op: impl FnMut() -> io::Result<R>,
    ) -> io::Result<R> {
        crate::runtime::coop::spend();
        self.registration.io(dir, timeout, what, op)
    }
}

impl<T: AsFd> Drop for NonBlocking<T> {
    fn drop(&mut self) {
        self.restore_flags();
        // `registration` then drops before `inner` (field order).
    }
}

impl<T: AsFd> Read for &NonBlocking<T> {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let fd = self.fd();
        self.io(
            Direction::Read,
            || Ok(None),
            "read",
            || sys::fdio::read(fd, buf),
        )
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        let fd = self.fd();
        self.io(
            Direction::Read,
            || Ok(None),
            "read",
            || sys::fdio::readv(fd, bufs),
        )
    }
}

impl<T: AsFd> Read for NonBlocking<T> {
    #[track_caller]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    #[track_caller]
    fn read_vectored(&mut self, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
        (&*self).read_vectored(bufs)
    }
}

impl<T: AsFd> Write for &NonBlocking<T> {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let fd = self.fd();
        self.io(
            Direction::Write,
            || Ok(None),
            "write",
            || sys::fdio::write(fd, buf),
        )
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.fd();
        self.io(
            Direction::Write,
            || Ok(None),
            "write",
            || sys::fdio::writev(fd, bufs),
        )
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: AsFd> Write for NonBlocking<T> {
    #[track_caller]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    #[track_caller]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        (&*self).write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<T: AsFd> AsRawFd for NonBlocking<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_fd().as_raw_fd()
    }
}

impl<T: AsFd> AsFd for NonBlocking<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl<T: AsFd + fmt::Debug> fmt::Debug for NonBlocking<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonBlocking")
            .field("inner", &self.inner)
            .finish()
    }
}
