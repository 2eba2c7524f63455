//! Readiness syscalls for the reactor: epoll, eventfd, poll(2), and the `O_NONBLOCK` flag.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Creates a close-on-exec epoll instance.
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds `fd` to `epoll`'s interest list for `events`, tagged with `data`.
pub(crate) fn epoll_add(
    epoll: BorrowedFd<'_>,
    fd: RawFd,
    events: u32,
    data: u64,
) -> io::Result<()> {
    let mut event = libc::epoll_event { events, u64: data };
    syscall!(epoll_ctl(
        epoll.as_raw_fd(),
        libc::EPOLL_CTL_ADD,
        fd,
        &mut event
    ))
    .map(drop)
}

/// Removes `fd` from `epoll`'s interest list.
pub(crate) fn epoll_del(epoll: BorrowedFd<'_>, fd: RawFd) -> io::Result<()> {
    // A non-null event pointer keeps pre-2.6.9 kernels happy; it is ignored otherwise.
    let mut event = libc::epoll_event { events: 0, u64: 0 };
    syscall!(epoll_ctl(
        epoll.as_raw_fd(),
        libc::EPOLL_CTL_DEL,
        fd,
        &mut event
    ))
    .map(drop)
}

/// Waits for events. `timeout` `None` waits indefinitely; a timeout is rounded *up* to whole
/// milliseconds so that a timer deadline is never reported early. `EINTR` returns `Ok(0)`:
/// the caller recomputes its timeout and comes back.
pub(crate) fn epoll_wait(
    epoll: BorrowedFd<'_>,
    events: &mut [libc::epoll_event],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
    match syscall!(epoll_wait(
        epoll.as_raw_fd(),
        events.as_mut_ptr(),
        max,
        timeout_ms(timeout)
    )) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
        Err(e) => Err(e),
    }
}

/// Milliseconds for epoll_wait/poll: rounded up, clamped, `-1` for "forever".
fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// Creates a non-blocking, close-on-exec eventfd with counter 0.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
    // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds one to an eventfd's counter, making it readable. A full counter (EAGAIN) is already
/// readable, which is all a wake-up needs.
pub(crate) fn eventfd_signal(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64, as eventfd requires.
    let _ = syscall!(retry_eintr real::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8));
}

/// Resets an eventfd's counter to zero (a non-blocking read; EAGAIN means already zero).
pub(crate) fn eventfd_drain(fd: BorrowedFd<'_>) {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64, as eventfd requires.
    let _ = syscall!(retry_eintr real::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8));
}

/// Blocks the calling OS thread until `fd` reports one of `events` (or an error or hang-up),
/// or `timeout` passes. Returns `Ok(false)` on timeout. `EINTR` returns `Ok(true)`: the
/// caller retries its operation, which re-enters here with the remaining time.
pub(crate) fn poll_fd(
    fd: RawFd,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    match syscall!(real::poll(&mut pollfd, 1, timeout_ms(timeout))) {
        Ok(0) => Ok(false),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
        Err(e) => Err(e),
    }
}

/// Reads the file status flags (`F_GETFL`).
pub(crate) fn status_flags(fd: RawFd) -> io::Result<libc::c_int> {
    syscall!(fcntl(fd, libc::F_GETFL))
}

/// Sets the file status flags (`F_SETFL`).
pub(crate) fn set_status_flags(fd: RawFd, flags: libc::c_int) -> io::Result<()> {
    syscall!(fcntl(fd, libc::F_SETFL, flags)).map(drop)
}

/// Turns `O_NONBLOCK` on for `fd`'s open file description; returns the flags from before.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<libc::c_int> {
    let flags = status_flags(fd)?;
    if flags & libc::O_NONBLOCK == 0 {
        set_status_flags(fd, flags | libc::O_NONBLOCK)?;
    }
    Ok(flags)
}

/// `read(2)` into `buf`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live, writable slice.
    syscall!(real::read(fd, buf.as_mut_ptr().cast(), buf.len())).map(|n| n as usize)
}

/// `write(2)` from `buf`.
pub(crate) fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: the pointer and length describe a live slice.
    syscall!(real::write(fd, buf.as_ptr().cast(), buf.len())).map(|n| n as usize)
}

/// The most buffers one vectored syscall takes (`IOV_MAX`; `UIO_MAXIOV` in the kernel).
/// More is `EINVAL` from `readv`/`writev` and `EMSGSIZE` from `sendmsg`, so vectored calls
/// pass at most this many and report a short transfer, as std does.
pub(crate) const IOV_MAX: usize = 1024;

/// `bufs` cut to the first [`IOV_MAX`] buffers.
pub(crate) fn iov_capped<T>(bufs: &[T]) -> &[T] {
    &bufs[..bufs.len().min(IOV_MAX)]
}

/// `readv(2)`; `IoSliceMut` is ABI-compatible with `iovec` on Unix. At most [`IOV_MAX`]
/// buffers are filled.
pub(crate) fn readv(fd: RawFd, bufs: &mut [io::IoSliceMut<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(IOV_MAX) as libc::c_int;
    // SAFETY: std guarantees IoSliceMut has iovec's layout; each describes a live buffer.
    syscall!(real::readv(fd, bufs.as_mut_ptr().cast(), count)).map(|n| n as usize)
}

/// `writev(2)`; `IoSlice` is ABI-compatible with `iovec` on Unix. At most [`IOV_MAX`]
/// buffers are written.
pub(crate) fn writev(fd: RawFd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
    let count = bufs.len().min(IOV_MAX) as libc::c_int;
    // SAFETY: std guarantees IoSlice has iovec's layout; each describes a live buffer.
    syscall!(real::writev(fd, bufs.as_ptr().cast(), count)).map(|n| n as usize)
}

/// `accept4(2)` with `SOCK_NONBLOCK | SOCK_CLOEXEC`: the new socket is ready for the reactor
/// without further syscalls.
pub(crate) fn accept_nonblocking(fd: RawFd) -> io::Result<(OwnedFd, socket2::SockAddr)> {
    let init = |storage: *mut socket2::SockAddrStorage, len: *mut libc::socklen_t| {
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        let new = syscall!(real::accept4(fd, storage.cast(), len, flags))?;
        // SAFETY: the kernel just returned this descriptor, and nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    };
    // SAFETY: `try_init` hands `init` zeroed storage and its length, which accept4 fills in
    // as `try_init` requires.
    unsafe { socket2::SockAddr::try_init(init) }
}
