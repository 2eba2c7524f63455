//! The green path of the hooks: what a hooked call does in a green thread (see the module
//! docs of [`super`]). Every function returns the C convention (`-1` and `errno`).

use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::fds::{self, PIPE, SOCKET};
use crate::runtime::reactor::Direction;

/// The syscall, as the raw `libc::syscall` result (`-1` and `errno` on failure).
pub(crate) type Raw = libc::c_long;

/// Runs a green path without ever unwinding into the C caller: a cancel or a passed
/// `timeout` inside it (a weft wait raised it) becomes `interrupted(errno)` — `ECANCELED`
/// or `ETIMEDOUT` — and stays pending, so the green thread's next weft blocking point raises
/// it. Any other panic here is a bug in weft; unwinding through `extern "C"` would abort
/// anyway, so abort with a message.
pub(crate) fn shield<T>(path: impl FnOnce() -> T, interrupted: impl FnOnce(i32) -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(path)) {
        Ok(value) => value,
        Err(payload) => match crate::interrupt::errno_of(&*payload) {
            Some(code) => {
                drop(payload);
                set_errno(code);
                interrupted(code)
            }
            None => {
                crate::sys::write_stderr_raw(
                    b"weft: internal error: a panic inside a hooked libc call; aborting\n",
                );
                std::process::abort();
            }
        },
    }
}

pub(super) fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

pub(super) fn set_errno(code: i32) {
    // SAFETY: errno is this thread's own.
    unsafe { *libc::__errno_location() = code };
}

/// Returns `-1` with `errno` set from `err`.
fn fail(err: io::Error) -> Raw {
    set_errno(err.raw_os_error().unwrap_or(libc::EIO));
    -1
}

fn is_nonblocking(fd: RawFd) -> bool {
    // SAFETY: F_GETFL on any fd is harmless.
    let flags = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    flags >= 0 && flags as libc::c_int & libc::O_NONBLOCK != 0
}

/// The socket's `SO_RCVTIMEO` or `SO_SNDTIMEO`, if set.
fn socket_timeout(fd: RawFd, dir: Direction) -> Option<Duration> {
    let name = match dir {
        Direction::Read => libc::SO_RCVTIMEO,
        Direction::Write => libc::SO_SNDTIMEO,
    };
    let mut tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 0,
    };
    let mut len = std::mem::size_of::<libc::timeval>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `tv`.
    let res = unsafe {
        libc::syscall(
            libc::SYS_getsockopt,
            fd,
            libc::SOL_SOCKET,
            name,
            &mut tv as *mut libc::timeval,
            &mut len as *mut libc::socklen_t,
        )
    };
    if res != 0 || (tv.tv_sec == 0 && tv.tv_usec == 0) {
        return None;
    }
    Some(Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000))
}

/// Runs `attempt` (a non-blocking try of the call) until it stops saying `EAGAIN`, parking
/// on the reactor between tries, unless the caller made the fd non-blocking itself. `what`
/// names the wait for dumps ("read", "write", "accept", "connect").
pub(crate) fn io_loop(
    fd: RawFd,
    dir: Direction,
    what: &'static str,
    mut attempt: impl FnMut() -> Raw,
) -> Raw {
    // A wait is a blocking point: an interrupt pending from before raises here (and comes
    // back as an errno through `shield`).
    crate::runtime::blocking_point::checkpoint();
    // An fd waited on before has its registration: the readiness sequence is read before
    // the first try, so a wait needs no second try (as in weft::net).
    if let Some(registration) = fds::existing_registration(fd) {
        let seen = registration.seq(dir);
        let first = attempt();
        if first >= 0 || !would_block(errno()) || is_nonblocking(fd) {
            return first;
        }
        return wait_loop(&registration, fd, dir, what, Some(seen), attempt);
    }
    let first = attempt();
    if first >= 0 || !would_block(errno()) || is_nonblocking(fd) {
        return first;
    }
    let registration = match fds::registration(fd) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    // Just registered: an edge before the registration may be lost, so try once more.
    wait_loop(&registration, fd, dir, what, None, attempt)
}

/// Waits for `dir` on `registration` between tries of `attempt`, within the socket's
/// timeout. `seen`: the sequence read before a try that just said `EAGAIN` (wait first), or
/// `None` (try first).
fn wait_loop(
    registration: &crate::runtime::reactor::Registration,
    fd: RawFd,
    dir: Direction,
    what: &'static str,
    seen: Option<u32>,
    mut attempt: impl FnMut() -> Raw,
) -> Raw {
    let timeout = if fds::kind(fd) == SOCKET {
        socket_timeout(fd, dir)
    } else {
        None
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut seen = seen;
    loop {
        let snapshot = match seen.take() {
            Some(seen) => seen,
            None => {
                let snapshot = registration.seq(dir);
                let res = attempt();
                if res >= 0 || !would_block(errno()) {
                    return res;
                }
                snapshot
            }
        };
        if !registration.wait_for(dir, snapshot, deadline, what) {
            // A socket timeout: std reports it as WouldBlock, from EAGAIN.
            set_errno(libc::EAGAIN);
            return -1;
        }
    }
}

fn would_block(code: i32) -> bool {
    code == libc::EAGAIN || code == libc::EWOULDBLOCK
}

/// The kind of `fd` for the green path, or `None` to run the call in place (see "The rule"
/// in the module docs): stdio (std's stdio locks are re-entrant per OS thread), regular
/// files (C libraries hold locks across file IO), fds weft owns, and kinds weft cannot wait
/// on.
pub(crate) fn hooked_kind(fd: RawFd) -> Option<u8> {
    if (0..=2).contains(&fd) {
        return None;
    }
    match fds::kind(fd) {
        SOCKET => Some(SOCKET),
        PIPE | fds::FIFO => Some(PIPE),
        _ => None,
    }
}

/// Dispatches a read- or write-like call by fd kind: `sock` for sockets (already
/// non-blocking), `pipe` for pipes and FIFOs (with `RWF_NOWAIT`); `None` runs it in place.
pub(crate) fn dispatch(
    fd: RawFd,
    dir: Direction,
    sock: impl FnMut() -> Raw,
    pipe: impl FnMut() -> Raw,
) -> Option<Raw> {
    let what = match dir {
        Direction::Read => "read",
        Direction::Write => "write",
    };
    let mut pipe = pipe;
    Some(match hooked_kind(fd)? {
        SOCKET => io_loop(fd, dir, what, sock),
        _ => {
            // (A FIFO, or a pipe on a kernel before ~6.4, refuses RWF_NOWAIT: `pipe` then
            // sets O_NONBLOCK around the call instead; see `entry::nowaitv`.)
            let first = pipe();
            if first >= 0 || !would_block(errno()) {
                return Some(first);
            }
            io_loop(fd, dir, what, pipe)
        }
    })
}

/// A blocking write's promise on a socket or pipe: all of `len` bytes, unless an error comes
/// first (then what was written, if anything). `write_at(done)` writes from byte `done`.
pub(crate) fn write_fully(
    len: usize,
    mut write_at: impl FnMut(usize) -> Option<Raw>,
) -> Option<Raw> {
    let mut done = 0usize;
    loop {
        let part = if done == 0 {
            write_at(done)
        } else {
            // Bytes already moved must be reported: an interrupt (a cancel, a passed
            // `timeout`) during a later part ends the call with what was moved, and stays
            // pending for the next weft blocking point.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write_at(done))) {
                Ok(part) => part,
                Err(payload) if crate::interrupt::errno_of(&*payload).is_some() => {
                    drop(payload);
                    return Some(done as Raw);
                }
                Err(payload) => std::panic::resume_unwind(payload),
            }
        };
        let res = match part {
            Some(res) => res,
            // Pass-through from the start is the caller's plain call; after a part was
            // written here, report that part rather than write it twice.
            None if done == 0 => return None,
            None => return Some(done as Raw),
        };
        if res < 0 {
            return Some(if done > 0 { done as Raw } else { res });
        }
        done += res as usize;
        if done >= len || res == 0 {
            return Some(done as Raw);
        }
    }
}

/// A blocking wait for child `pid`: parks on its pidfd until it has exited, then `reap`
/// (a `WNOHANG` wait) collects it. `None` (pass through) where no pidfd can be had (an old
/// kernel, or `pid` is not a process we may wait for: the plain call then says so).
pub(crate) fn wait_child(pid: libc::pid_t, reap: impl Fn() -> Raw) -> Option<Raw> {
    let pidfd = crate::sys::file::pidfd_open(u32::try_from(pid).ok()?).ok()?;
    let source = crate::io::Source::new_nonblocking(pidfd).ok()?;
    // The pidfd says "exited"; a traced child can also stop, which `wait4` reports and the
    // pidfd does not: look again every 50 ms while parked.
    let reaped = loop {
        let tried = source.io(
            Direction::Read,
            || Ok(Some(Duration::from_millis(50))),
            "wait",
            || match reap() {
                // Not exited yet: wait for the pidfd.
                0 => Err(io::ErrorKind::WouldBlock.into()),
                res if res < 0 => Err(io::Error::last_os_error()),
                res => Ok(res),
            },
        );
        match tried {
            Err(e) if e.kind() == io::ErrorKind::TimedOut => continue,
            other => break other,
        }
    };
    Some(match reaped {
        Ok(res) => res,
        Err(e) => fail(e),
    })
}

/// Whether `fd` is an `AF_UNIX` socket (for any other family `EAGAIN` from `connect` means
/// the kernel is short of resources, and the blocking call fails at once too).
fn is_unix_socket(fd: RawFd) -> bool {
    // SAFETY: a zeroed sockaddr_storage is a valid out-parameter of that length.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname writes at most `len` bytes.
    let got = unsafe {
        libc::syscall(
            libc::SYS_getsockname,
            fd,
            &mut addr as *mut libc::sockaddr_storage,
            &mut len as *mut libc::socklen_t,
        )
    };
    got == 0 && libc::c_int::from(addr.ss_family) == libc::AF_UNIX
}

/// `connect` on a blocking-mode socket: start it non-blocking, wait for writability, report
/// `SO_ERROR` (the flags are restored at once; the connection proceeds either way).
pub(crate) fn connect(fd: RawFd, connect: impl Fn() -> Raw) -> Option<Raw> {
    if hooked_kind(fd)? != SOCKET || is_nonblocking(fd) {
        return None;
    }
    let mut res = with_nonblocking(fd, &connect);
    // A Unix socket whose listener's backlog is full says EAGAIN, where a blocking connect
    // would wait for room; nothing signals the room, so retry after short sleeps (green),
    // within the socket's send timeout.
    if res < 0 && would_block(errno()) && is_unix_socket(fd) {
        let deadline = socket_timeout(fd, Direction::Write).map(|t| Instant::now() + t);
        let mut pause = Duration::from_millis(1);
        while res < 0 && would_block(errno()) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                set_errno(libc::EAGAIN);
                return Some(-1);
            }
            crate::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
            res = with_nonblocking(fd, &connect);
        }
    }
    if res == 0 || errno() != libc::EINPROGRESS {
        return Some(res);
    }
    let registration = match fds::registration(fd) {
        Ok(r) => r,
        Err(e) => return Some(fail(e)),
    };
    let deadline = socket_timeout(fd, Direction::Write).map(|t| Instant::now() + t);
    loop {
        let seen = registration.seq(Direction::Write);
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt writes an int into `err`.
        let got = unsafe {
            libc::syscall(
                libc::SYS_getsockopt,
                fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                &mut err as *mut libc::c_int,
                &mut len as *mut libc::socklen_t,
            )
        };
        if got != 0 {
            return Some(got);
        }
        if err != 0 {
            set_errno(err);
            return Some(-1);
        }
        // Connected once the peer address is known.
        // SAFETY: a zeroed sockaddr_storage is a valid out-parameter of that length.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut alen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: getpeername writes at most `alen` bytes.
        let peer = unsafe {
            libc::syscall(
                libc::SYS_getpeername,
                fd,
                &mut addr as *mut libc::sockaddr_storage,
                &mut alen as *mut libc::socklen_t,
            )
        };
        if peer == 0 {
            return Some(0);
        }
        if !registration.wait_for(Direction::Write, seen, deadline, "connect") {
            // Linux reports a blocking connect that hit SO_SNDTIMEO as EINPROGRESS.
            set_errno(libc::EINPROGRESS);
            return Some(-1);
        }
    }
}

/// Runs `call` with `O_NONBLOCK` set on `fd` (restored afterwards).
pub(crate) fn with_nonblocking(fd: RawFd, call: impl Fn() -> Raw) -> Raw {
    // SAFETY: fcntl get/set of the status flags.
    let flags = unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_GETFL) };
    if flags < 0 {
        return call();
    }
    let flags = flags as libc::c_int;
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFL, flags | libc::O_NONBLOCK) };
    let res = call();
    let code = errno();
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_fcntl, fd, libc::F_SETFL, flags) };
    set_errno(code);
    res
}

/// `accept`/`accept4` on a blocking-mode listener.
pub(crate) fn accept(fd: RawFd, accept: impl Fn() -> Raw) -> Option<Raw> {
    if hooked_kind(fd)? != SOCKET || is_nonblocking(fd) {
        return None;
    }
    Some(io_loop(fd, Direction::Read, "accept", || {
        with_nonblocking(fd, &accept)
    }))
}

/// `poll` with a timeout (milliseconds, negative: forever) from a green thread.
pub(crate) fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout_ms: i32) -> Raw {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    let try_once = || {
        // SAFETY: the caller's array of `n` pollfds, and a zero timeout.
        unsafe {
            libc::syscall(
                libc::SYS_ppoll,
                fds,
                n,
                &zero as *const libc::timespec,
                0usize,
            )
        }
    };
    let deadline =
        (timeout_ms >= 0).then(|| Instant::now() + Duration::from_millis(timeout_ms as u64));
    let mut nap = Duration::from_millis(1);
    loop {
        let res = try_once();
        if res != 0 {
            return res;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return 0;
        }
        if n == 1 {
            // One fd a hook can wait on: park on the reactor instead of napping.
            // SAFETY: one pollfd, the caller's.
            let pfd = unsafe { &*fds };
            // One direction only (both, or POLLPRI, would need two waits: nap instead).
            let single = pfd.events & !(libc::POLLIN | libc::POLLRDNORM) == 0
                || pfd.events & !(libc::POLLOUT | libc::POLLWRNORM) == 0;
            if single && matches!(hooked_kind(pfd.fd), Some(SOCKET | PIPE)) {
                if let Ok(registration) = fds::registration(pfd.fd) {
                    let dir = if pfd.events & libc::POLLOUT != 0 {
                        Direction::Write
                    } else {
                        Direction::Read
                    };
                    let seen = registration.seq(dir);
                    // Readiness since `seen` is caught by the sequence: check once more.
                    if try_once() != 0 {
                        continue;
                    }
                    let what = match dir {
                        Direction::Read => "read",
                        Direction::Write => "write",
                    };
                    registration.wait_for(dir, seen, deadline, what);
                    continue;
                }
            }
        }
        let until = deadline.map_or(now + nap, |d| d.min(now + nap));
        crate::sleep_until(until);
        nap = (nap * 2).min(Duration::from_millis(10));
    }
}
