//! The hooked C entry points. Each is a thin shell: the pass-through path (one thread-local
//! check, then the raw syscall), or the green path in [`super::green`].
//!
//! # Safety of the shells
//!
//! Their callers follow the C contracts of the functions they replace (valid buffers of the
//! stated lengths, valid fd numbers or `-1`/`EBADF` semantics). Every shell only forwards
//! those pointers and lengths to the kernel (or to weft's wait around the same syscall), so it
//! upholds exactly what libc's would.

#![allow(clippy::missing_safety_doc)] // the C contracts above

use std::time::Duration;

use libc::{c_int, c_uint, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::green::Raw;
use super::{fds, green as g};
use crate::runtime::reactor::Direction;

/// libc's own definitions of the hooked functions, found with `dlsym(RTLD_NEXT)` by a
/// constructor that runs when the program is loaded (single-threaded, before `main`), so the
/// pass-through path is an indirect call to libc, async-signal-safe, with nothing to
/// resolve. Should a slot be empty (the constructor did not run), the path makes the raw
/// syscall instead. (libc's wrappers are ~9 ns cheaper than `libc::syscall` here.)
mod libc_fns {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

    pub(super) const READ: usize = 0;
    pub(super) const WRITE: usize = 1;
    pub(super) const READV: usize = 2;
    pub(super) const WRITEV: usize = 3;
    pub(super) const RECVFROM: usize = 4;
    pub(super) const SENDTO: usize = 5;
    pub(super) const RECVMSG: usize = 6;
    pub(super) const SENDMSG: usize = 7;
    const NAMES: [&std::ffi::CStr; 8] = [
        c"read",
        c"write",
        c"readv",
        c"writev",
        c"recvfrom",
        c"sendto",
        c"recvmsg",
        c"sendmsg",
    ];
    static SLOTS: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];

    extern "C" fn in_forked_child() {
        super::super::FORKED.store(true, Relaxed);
    }

    extern "C" fn resolve() {
        // SAFETY: registering a plain function as the fork child handler.
        unsafe { libc::pthread_atfork(None, None, Some(in_forked_child)) };
        super::super::futex::init();
        super::super::fds::prepare();
        // The other lazily found libc functions, resolved now for the same reason.
        let _ = super::real_getaddrinfo();
        let _ = super::real_pthread_join();
        // Each worker learns its OS-thread-keyed futex words before it runs green threads.
        let _ = crate::runtime::scheduler::worker::WORKER_START
            .set(super::super::futex::learn_thread_words);
        for (slot, name) in SLOTS.iter().zip(NAMES) {
            // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
            let addr = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
            slot.store(addr as usize, Relaxed);
        }
    }

    #[used]
    #[link_section = ".init_array"]
    static RESOLVE: extern "C" fn() = resolve;

    /// The address of libc's function `index`, or 0.
    #[inline]
    pub(super) fn get(index: usize) -> usize {
        // Relaxed: written once before `main`, before any other thread exists.
        SLOTS[index].load(Relaxed)
    }
}

/// Calls libc's own `$index` function of type `$ty` with `$args`, or `$fallback` (a raw
/// syscall) if it was not found.
macro_rules! libc_call {
    ($index:expr, $ty:ty, ($($arg:expr),*), $fallback:expr) => {{
        match libc_fns::get($index) {
            0 => $fallback,
            addr => {
                // SAFETY: the slot holds libc's definition of this very function, of this
                // type; the arguments are the caller's (see the module docs).
                let f: $ty = unsafe { std::mem::transmute::<usize, $ty>(addr) };
                // SAFETY: as above.
                (unsafe { f($($arg),*) }) as Raw
            }
        }
    }};
}

type Rw = unsafe extern "C" fn(c_int, *mut c_void, size_t) -> ssize_t;
type Wr = unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t;
type Iov = unsafe extern "C" fn(c_int, *const iovec, c_int) -> ssize_t;
type RecvFrom = unsafe extern "C" fn(
    c_int,
    *mut c_void,
    size_t,
    c_int,
    *mut sockaddr,
    *mut socklen_t,
) -> ssize_t;
type SendTo = unsafe extern "C" fn(
    c_int,
    *const c_void,
    size_t,
    c_int,
    *const sockaddr,
    socklen_t,
) -> ssize_t;
type RecvMsg = unsafe extern "C" fn(c_int, *mut msghdr, c_int) -> ssize_t;
type SendMsg = unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t;

/// A raw syscall (never through libc's `syscall`, which [`syscall`] replaces), as `c_long`.
macro_rules! sys {
    ($nr:expr $(, $arg:expr)*) => {{
        let given: &[libc::c_long] = &[$($arg as libc::c_long),*];
        let mut args = [0; 6];
        args[..given.len()].copy_from_slice(given);
        // SAFETY: forwards the caller's arguments, which follow the C contract (see above).
        unsafe { crate::sys::raw_syscall($nr, args) }
    }};
}

fn out(res: Raw) -> ssize_t {
    res as ssize_t
}

fn out_int(res: Raw) -> c_int {
    res as c_int
}

/// `preadv2`/`pwritev2` with `RWF_NOWAIT` on one buffer at `offset` (-1: the file position).
fn nowait(nr: libc::c_long, fd: c_int, buf: *mut c_void, len: size_t, offset: i64) -> Raw {
    let iov = iovec {
        iov_base: buf,
        iov_len: len,
    };
    nowaitv(nr, fd, &iov, 1, offset)
}

/// `preadv2`/`pwritev2` that does not block: with `RWF_NOWAIT` on a pipe; on a FIFO (the
/// kernel refuses `RWF_NOWAIT` there with `EOPNOTSUPP`, as on pipes before about 6.4,
/// remembered as the fd's kind) without it, with `O_NONBLOCK` set around the call.
fn nowaitv(nr: libc::c_long, fd: c_int, iov: *const iovec, cnt: c_int, offset: i64) -> Raw {
    // Every variadic argument as a full word (the kernel reads registers as longs).
    let call = |flags: c_int| {
        sys!(
            nr,
            fd as libc::c_long,
            iov,
            cnt as libc::c_long,
            offset,
            0 as libc::c_long,
            flags as libc::c_long
        )
    };
    if fds::kind(fd) != fds::FIFO {
        let res = call(libc::RWF_NOWAIT);
        if res >= 0 || g::errno() != libc::EOPNOTSUPP {
            return res;
        }
        fds::set_kind(fd, fds::FIFO);
    }
    g::with_nonblocking(fd, || call(0))
}

/// A `Send` wrapper for pointers handed to the blocking pool, whose caller stays parked
/// (and its buffers alive) until the pool is done with them.
#[derive(Clone, Copy)]
struct Ptr<T>(T);
// SAFETY: see `Ptr`: the pointee outlives the offloaded call, which is the only user.
unsafe impl<T> Send for Ptr<T> {}
// SAFETY: as above; shared only with the one offloaded call.
unsafe impl<T> Sync for Ptr<T> {}

impl<T: Copy> Ptr<T> {
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    fn get(self) -> T {
        self.0
    }
}

/// The green path of `read` (out of line, so the pass-through path stays small).
#[inline(never)]
fn green_read(fd: c_int, buf: *mut c_void, count: size_t) -> Option<Raw> {
    g::shield(
        || {
            g::dispatch(
                fd,
                Direction::Read,
                || {
                    sys!(
                        libc::SYS_recvfrom,
                        fd,
                        buf,
                        count,
                        libc::MSG_DONTWAIT,
                        0usize,
                        0usize
                    )
                },
                || nowait(libc::SYS_preadv2, fd, buf, count, -1),
            )
        },
        |_| Some(-1),
    )
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, count: size_t) -> ssize_t {
    if super::green() {
        if let Some(res) = green_read(fd, buf, count) {
            return out(res);
        }
    }
    out(libc_call!(
        libc_fns::READ,
        Rw,
        (fd, buf, count),
        sys!(libc::SYS_read, fd, buf, count)
    ))
}

/// The green path of `write` (out of line, so the pass-through path stays small).
#[inline(never)]
fn green_write(fd: c_int, buf: *const c_void, count: size_t) -> Option<Raw> {
    g::shield(
        || {
            // A blocking write writes everything (short writes are for non-blocking fds).
            g::write_fully(count, |at| {
                // SAFETY: `at` < `count`, inside the caller's buffer.
                let rest = unsafe { buf.cast::<u8>().add(at) }.cast::<c_void>();
                let left = count - at;
                g::dispatch(
                    fd,
                    Direction::Write,
                    || {
                        sys!(
                            libc::SYS_sendto,
                            fd,
                            rest,
                            left,
                            libc::MSG_DONTWAIT,
                            0usize,
                            0usize
                        )
                    },
                    || nowait(libc::SYS_pwritev2, fd, rest as *mut c_void, left, -1),
                )
            })
        },
        |_| Some(-1),
    )
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    if super::green() {
        if let Some(res) = green_write(fd, buf, count) {
            return out(res);
        }
    }
    out(libc_call!(
        libc_fns::WRITE,
        Wr,
        (fd, buf, count),
        sys!(libc::SYS_write, fd, buf, count)
    ))
}

/// `recvmsg`/`sendmsg` over an iovec array, for `readv`/`writev` on sockets.
fn msg_io(nr: libc::c_long, fd: c_int, iov: *const iovec, cnt: c_int, flags: c_int) -> Raw {
    // SAFETY: a zeroed msghdr is valid; we point it at the caller's iovec array.
    let mut msg: msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov as *mut iovec;
    msg.msg_iovlen = cnt as _;
    sys!(nr, fd, &msg as *const msghdr, flags)
}

/// A msghdr's iovec count (its type differs between C libraries).
#[allow(clippy::unnecessary_cast)]
fn iov_count(msg: &msghdr) -> usize {
    msg.msg_iovlen as usize
}

/// Linux's limit on an iovec array (`UIO_MAXIOV`).
const UIO_MAXIOV: usize = 1024;

/// A blocking call's promise over an iovec array (`writev`, `sendmsg` on a stream, `recvmsg`
/// with `MSG_WAITALL`): all of its bytes, unless an error or end of file comes first (then
/// what was moved, if anything). `call(iov, cnt, first)` moves bytes from the array as far as
/// it has been consumed; `first` says whether this is the first call (ancillary data goes
/// with the first only). `None` from the first call is the caller's plain call.
fn iov_fully(
    iov: *const iovec,
    cnt: c_int,
    mut call: impl FnMut(*const iovec, c_int, bool) -> Option<Raw>,
) -> Option<Raw> {
    // Counts the kernel refuses (over UIO_MAXIOV) are its to refuse, in one plain call.
    let len = match usize::try_from(cnt) {
        Ok(len) if len > 0 && len <= UIO_MAXIOV && !iov.is_null() => len,
        _ => return call(iov, cnt, true),
    };
    // SAFETY: the caller passed `cnt` iovecs at `iov` (the kernel would read them too).
    let mut left: Vec<iovec> = unsafe { std::slice::from_raw_parts(iov, len) }.to_vec();
    let total = left
        .iter()
        .fold(0usize, |sum, v| sum.saturating_add(v.iov_len));
    let mut at = 0usize; // the first iovec with bytes left
    let mut consumed = 0usize; // bytes the iovecs have been advanced past
    g::write_fully(total, |done| {
        let mut moved = done - consumed;
        consumed = done;
        while at < left.len() && (moved > 0 || left[at].iov_len == 0) {
            let v = &mut left[at];
            if moved >= v.iov_len {
                moved -= v.iov_len;
                at += 1;
            } else {
                // SAFETY: inside the caller's buffer: `moved` < its length.
                v.iov_base = unsafe { v.iov_base.cast::<u8>().add(moved) }.cast();
                v.iov_len -= moved;
                moved = 0;
            }
        }
        let rest = &left[at..];
        call(rest.as_ptr(), rest.len() as c_int, done == 0)
    })
}

/// One part of a `sendmsg` over the rest of the caller's iovecs: ancillary data (passed
/// fds) go with the first part only, so they are never sent twice.
fn msg_part(whole: &msghdr, iov: *const iovec, cnt: c_int, first: bool) -> msghdr {
    let mut part = *whole;
    part.msg_iov = iov as *mut iovec;
    part.msg_iovlen = cnt as _;
    if !first {
        part.msg_control = std::ptr::null_mut();
        part.msg_controllen = 0;
        part.msg_name = std::ptr::null_mut();
        part.msg_namelen = 0;
    }
    part
}

/// The green path of `readv` (out of line, so the pass-through path stays small).
#[inline(never)]
fn green_readv(fd: c_int, iov: *const iovec, cnt: c_int) -> Option<Raw> {
    g::shield(
        || {
            g::dispatch(
                fd,
                Direction::Read,
                || msg_io(libc::SYS_recvmsg, fd, iov, cnt, libc::MSG_DONTWAIT),
                || nowaitv(libc::SYS_preadv2, fd, iov, cnt, -1),
            )
        },
        |_| Some(-1),
    )
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    if super::green() {
        if let Some(res) = green_readv(fd, iov, cnt) {
            return out(res);
        }
    }
    out(libc_call!(
        libc_fns::READV,
        Iov,
        (fd, iov, cnt),
        sys!(libc::SYS_readv, fd, iov, cnt)
    ))
}

/// The green path of `writev` (out of line, so the pass-through path stays small).
#[inline(never)]
fn green_writev(fd: c_int, iov: *const iovec, cnt: c_int) -> Option<Raw> {
    g::shield(
        || {
            // A blocking writev writes everything (short writes are for non-blocking fds).
            iov_fully(iov, cnt, |iov, cnt, _| {
                g::dispatch(
                    fd,
                    Direction::Write,
                    || msg_io(libc::SYS_sendmsg, fd, iov, cnt, libc::MSG_DONTWAIT),
                    || nowaitv(libc::SYS_pwritev2, fd, iov, cnt, -1),
                )
            })
        },
        |_| Some(-1),
    )
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    if super::green() {
        if let Some(res) = green_writev(fd, iov, cnt) {
            return out(res);
        }
    }
    out(libc_call!(
        libc_fns::WRITEV,
        Iov,
        (fd, iov, cnt),
        sys!(libc::SYS_writev, fd, iov, cnt)
    ))
}

/// Socket calls with flags: the caller's `MSG_DONTWAIT` means it wants `EAGAIN`.
fn socket_call(fd: c_int, flags: c_int, dir: Direction, call: impl Fn(c_int) -> Raw) -> Raw {
    if !super::green() || flags & libc::MSG_DONTWAIT != 0 || g::hooked_kind(fd) != Some(fds::SOCKET)
    {
        return call(flags);
    }
    let what = match dir {
        Direction::Read => "read",
        Direction::Write => "write",
    };
    g::shield(
        || g::io_loop(fd, dir, what, || call(flags | libc::MSG_DONTWAIT)),
        |_| -1,
    )
}

/// A blocking stream `send`: all of `len` bytes unless an error comes first (`call(at)`
/// sends from byte `at`, non-blocking).
fn send_fully(fd: c_int, flags: c_int, len: size_t, call: impl Fn(usize, c_int) -> Raw) -> Raw {
    if !super::green() || flags & libc::MSG_DONTWAIT != 0 || g::hooked_kind(fd) != Some(fds::SOCKET)
    {
        return call(0, flags);
    }
    g::shield(
        || {
            g::write_fully(len, |at| {
                Some(g::io_loop(fd, Direction::Write, "write", || {
                    call(at, flags | libc::MSG_DONTWAIT)
                }))
            })
            .unwrap_or(-1)
        },
        |_| -1,
    )
}

/// Whether a receive on `fd` with `flags` is a blocking stream receive of everything asked
/// (`MSG_WAITALL`), which the green path must loop for: only on stream sockets (datagrams
/// keep their boundaries, and the kernel ignores the flag there), and not with flags whose
/// repeated use would not move along the stream (`MSG_PEEK`, `MSG_OOB`, `MSG_ERRQUEUE`,
/// `MSG_TRUNC`).
fn waits_for_all(fd: c_int, flags: c_int) -> bool {
    let single = libc::MSG_DONTWAIT | libc::MSG_PEEK | libc::MSG_OOB | libc::MSG_ERRQUEUE;
    flags & libc::MSG_WAITALL != 0
        && flags & (single | libc::MSG_TRUNC) == 0
        && super::green()
        && g::hooked_kind(fd) == Some(fds::SOCKET)
        && socket_type(fd) == Some(libc::SOCK_STREAM)
}

/// The socket's `SO_TYPE`.
fn socket_type(fd: c_int) -> Option<c_int> {
    let mut kind: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as socklen_t;
    let got = sys!(
        libc::SYS_getsockopt,
        fd,
        libc::SOL_SOCKET,
        libc::SO_TYPE,
        &mut kind as *mut c_int,
        &mut len as *mut socklen_t
    );
    (got == 0).then_some(kind)
}

/// A receive: with `MSG_WAITALL` (a blocking stream receive that waits for all `n` bytes),
/// the green path receives until it has them, the peer closes, or an error comes;
/// `call(at, flags)` receives into the buffer from byte `at`.
fn recv_call(fd: c_int, flags: c_int, n: size_t, call: impl Fn(usize, c_int) -> Raw) -> Raw {
    if !waits_for_all(fd, flags) {
        return socket_call(fd, flags, Direction::Read, |f| call(0, f));
    }
    let once = (flags & !libc::MSG_WAITALL) | libc::MSG_DONTWAIT;
    g::shield(
        || {
            // `write_fully`'s loop serves reads too: until `n`, an error, or 0 (end of file).
            g::write_fully(n, |at| {
                Some(g::io_loop(fd, Direction::Read, "read", || call(at, once)))
            })
            .unwrap_or(-1)
        },
        |_| -1,
    )
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    let null_addr = std::ptr::null_mut::<sockaddr>();
    let null_len = std::ptr::null_mut::<socklen_t>();
    out(recv_call(fd, flags, n, |at, f| {
        // SAFETY: `at` <= `n`, inside the caller's buffer.
        let rest = unsafe { buf.cast::<u8>().add(at) }.cast::<c_void>();
        let left = n - at;
        libc_call!(
            libc_fns::RECVFROM,
            RecvFrom,
            (fd, rest, left, f, null_addr, null_len),
            sys!(libc::SYS_recvfrom, fd, rest, left, f, 0usize, 0usize)
        )
    }))
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    addrlen: *mut socklen_t,
) -> ssize_t {
    out(recv_call(fd, flags, n, |at, f| {
        // SAFETY: `at` <= `n`, inside the caller's buffer.
        let rest = unsafe { buf.cast::<u8>().add(at) }.cast::<c_void>();
        let left = n - at;
        libc_call!(
            libc_fns::RECVFROM,
            RecvFrom,
            (fd, rest, left, f, addr, addrlen),
            sys!(libc::SYS_recvfrom, fd, rest, left, f, addr, addrlen)
        )
    }))
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's msghdr, if any.
    let iovlen = unsafe { msg.as_ref() }.map_or(0, iov_count);
    if !msg.is_null() && iovlen <= UIO_MAXIOV && waits_for_all(fd, flags) {
        // SAFETY: the caller's msghdr.
        let whole = unsafe { &mut *msg };
        let once = (flags & !libc::MSG_WAITALL) | libc::MSG_DONTWAIT;
        let (iov, cnt) = (whole.msg_iov, iovlen as c_int);
        let mut flags_out = 0;
        let mut control_len = 0;
        let res = g::shield(
            || {
                iov_fully(iov, cnt, |iov, cnt, first| {
                    // Like the kernel's own loop: stop after a part that brought ancillary
                    // data (passed fds), and offer the control buffer to every part until
                    // then, so none is dropped; the address is the first part's.
                    if control_len > 0 {
                        return None;
                    }
                    let mut part = *whole;
                    part.msg_iov = iov as *mut iovec;
                    part.msg_iovlen = cnt as _;
                    part.msg_flags = 0;
                    if !first {
                        part.msg_name = std::ptr::null_mut();
                        part.msg_namelen = 0;
                    }
                    let res = g::io_loop(fd, Direction::Read, "read", || {
                        sys!(libc::SYS_recvmsg, fd, &mut part as *mut msghdr, once)
                    });
                    if res >= 0 {
                        if first {
                            whole.msg_namelen = part.msg_namelen;
                        }
                        control_len = part.msg_controllen;
                        flags_out |= part.msg_flags;
                    }
                    Some(res)
                })
                .unwrap_or(-1)
            },
            |_| -1,
        );
        whole.msg_controllen = control_len;
        whole.msg_flags = flags_out;
        return out(res);
    }
    out(socket_call(fd, flags, Direction::Read, |f| {
        libc_call!(
            libc_fns::RECVMSG,
            RecvMsg,
            (fd, msg, f),
            sys!(libc::SYS_recvmsg, fd, msg, f)
        )
    }))
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    let null_addr = std::ptr::null::<sockaddr>();
    out(send_fully(fd, flags, n, |at, f| {
        // SAFETY: `at` <= `n`, inside the caller's buffer.
        let rest = unsafe { buf.cast::<u8>().add(at) }.cast::<c_void>();
        let left = n - at;
        libc_call!(
            libc_fns::SENDTO,
            SendTo,
            (fd, rest, left, f, null_addr, 0),
            sys!(libc::SYS_sendto, fd, rest, left, f, 0usize, 0usize)
        )
    }))
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    // A datagram goes whole or not at all; a stream's blocking send sends everything.
    out(send_fully(fd, flags, n, |at, f| {
        // SAFETY: `at` <= `n`, inside the caller's buffer.
        let rest = unsafe { buf.cast::<u8>().add(at) }.cast::<c_void>();
        let left = n - at;
        libc_call!(
            libc_fns::SENDTO,
            SendTo,
            (fd, rest, left, f, addr, addrlen),
            sys!(libc::SYS_sendto, fd, rest, left, f, addr, addrlen)
        )
    }))
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: the caller's msghdr, if any.
    let iovlen = unsafe { msg.as_ref() }.map_or(0, iov_count);
    if !msg.is_null()
        && iovlen <= UIO_MAXIOV
        && super::green()
        && flags & libc::MSG_DONTWAIT == 0
        && g::hooked_kind(fd) == Some(fds::SOCKET)
    {
        // SAFETY: the caller's msghdr.
        let whole = unsafe { &*msg };
        let once = flags | libc::MSG_DONTWAIT;
        // A blocking stream send sends everything; ancillary data (passed fds) go with the
        // first part only, so they are never sent twice.
        let res = g::shield(
            || {
                iov_fully(whole.msg_iov, iovlen as c_int, |iov, cnt, first| {
                    let part = msg_part(whole, iov, cnt, first);
                    Some(g::io_loop(fd, Direction::Write, "write", || {
                        sys!(libc::SYS_sendmsg, fd, &part as *const msghdr, once)
                    }))
                })
                .unwrap_or(-1)
            },
            |_| -1,
        );
        return out(res);
    }
    out(socket_call(fd, flags, Direction::Write, |f| {
        libc_call!(
            libc_fns::SENDMSG,
            SendMsg,
            (fd, msg, f),
            sys!(libc::SYS_sendmsg, fd, msg, f)
        )
    }))
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let call = || sys!(libc::SYS_connect, fd, addr, len);
    if super::green() {
        if let Some(res) = g::shield(|| g::connect(fd, call), |_| Some(-1)) {
            return out_int(res);
        }
    }
    out_int(call())
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let call = || sys!(libc::SYS_accept4, fd, addr, len, flags);
    if super::green() {
        if let Some(res) = g::shield(|| g::accept(fd, call), |_| Some(-1)) {
            return out_int(res);
        }
    }
    out_int(call())
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: forwarded (see the module docs).
    unsafe { accept4(fd, addr, len, 0) }
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout: c_int) -> c_int {
    if super::green() && timeout != 0 {
        return out_int(g::shield(|| g::poll(fds, n, timeout), |_| -1));
    }
    // Mutable: the kernel writes the time left back into it.
    let mut ts;
    let tsp = if timeout < 0 {
        std::ptr::null_mut()
    } else {
        ts = libc::timespec {
            tv_sec: (timeout / 1000) as libc::time_t,
            tv_nsec: ((timeout % 1000) * 1_000_000) as libc::c_long,
        };
        &mut ts as *mut libc::timespec
    };
    out_int(sys!(libc::SYS_ppoll, fds, n, tsp, 0usize))
}

/// A green sleep of `duration` (interruptible by a cancel or a `timeout`, like weft::sleep).
/// A green sleep of `duration`; `false` if a cancel or a passed `timeout` cut it short
/// (then `errno` is set, and the interrupt stays pending for the next weft blocking point).
fn green_sleep(duration: Duration) -> bool {
    g::shield(
        || {
            crate::sleep(duration);
            true
        },
        |_| false,
    )
}

/// An interrupted green sleep reports no time left: a caller that sleeps again for the
/// rest (as std's `thread::sleep` does on EINTR) then stops, instead of retrying for ever.
fn zero_rem(rem: *mut libc::timespec) {
    if !rem.is_null() {
        // SAFETY: the caller's out-parameter.
        unsafe {
            *rem = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            }
        };
    }
}

/// `-1` with `errno = EINTR`, what an interrupted sleep returns.
fn eintr() -> c_int {
    // SAFETY: errno is this thread's own.
    unsafe { *libc::__errno_location() = libc::EINTR };
    -1
}

fn duration_of(ts: &libc::timespec) -> Option<Duration> {
    (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec))
        .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    if super::green() && !req.is_null() {
        // SAFETY: the caller's timespec.
        if let Some(d) = duration_of(unsafe { &*req }) {
            if green_sleep(d) {
                return 0;
            }
            zero_rem(rem);
            return eintr();
        }
    }
    out_int(sys!(libc::SYS_nanosleep, req, rem))
}

#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    // Only the clocks a sleep can measure go green; any other (an unknown id, a CPU-time
    // clock) goes to the kernel, which sleeps on it or says EINVAL.
    let known = matches!(
        clock,
        libc::CLOCK_MONOTONIC | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI
    );
    if super::green() && known && !req.is_null() {
        // SAFETY: the caller's timespec.
        let req_ts = unsafe { &*req };
        let duration = if flags & libc::TIMER_ABSTIME != 0 {
            // The remaining time until the absolute deadline on that clock.
            // SAFETY: a zeroed timespec is a valid out-parameter.
            let mut now: libc::timespec = unsafe { std::mem::zeroed() };
            if sys!(
                libc::SYS_clock_gettime,
                clock,
                &mut now as *mut libc::timespec
            ) == 0
            {
                duration_of(req_ts)
                    .zip(duration_of(&now))
                    .map(|(at, now)| at.saturating_sub(now))
            } else {
                None
            }
        } else {
            duration_of(req_ts)
        };
        if let Some(d) = duration {
            // clock_nanosleep returns the error number itself.
            if green_sleep(d) {
                return 0;
            }
            zero_rem(rem);
            return libc::EINTR;
        }
    }
    // clock_nanosleep returns the error number rather than setting errno.
    let res = sys!(libc::SYS_clock_nanosleep, clock, flags, req, rem);
    if res < 0 {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL)
    } else {
        0
    }
}

#[no_mangle]
pub unsafe extern "C" fn usleep(usec: libc::useconds_t) -> c_int {
    let d = Duration::from_micros(u64::from(usec));
    if super::green() {
        return if green_sleep(d) { 0 } else { eintr() };
    }
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    };
    out_int(sys!(
        libc::SYS_nanosleep,
        &ts as *const libc::timespec,
        0usize
    ))
}

#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let d = Duration::from_secs(u64::from(secs));
    if super::green() {
        // Interrupted: report the whole time as unslept (weft does not track the rest).
        return if green_sleep(d) { 0 } else { secs };
    }
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: 0,
    };
    let mut rem = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if sys!(
        libc::SYS_nanosleep,
        &ts as *const libc::timespec,
        &mut rem as *mut libc::timespec
    ) == 0
    {
        0
    } else {
        rem.tv_sec as c_uint
    }
}

type GetAddrInfo = unsafe extern "C" fn(
    *const libc::c_char,
    *const libc::c_char,
    *const libc::addrinfo,
    *mut *mut libc::addrinfo,
) -> c_int;

/// libc's `getaddrinfo` (not a syscall): the next definition after ours.
fn real_getaddrinfo() -> Option<GetAddrInfo> {
    static REAL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let addr = *REAL.get_or_init(|| {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
        unsafe { libc::dlsym(libc::RTLD_NEXT, c"getaddrinfo".as_ptr()) as usize }
    });
    // SAFETY: a non-null symbol is libc's getaddrinfo, of this type. (A static binary has
    // none: the caller then reports EAI_SYSTEM.)
    (addr != 0).then(|| unsafe { std::mem::transmute::<usize, GetAddrInfo>(addr) })
}

#[no_mangle]
pub unsafe extern "C" fn getaddrinfo(
    node: *const libc::c_char,
    service: *const libc::c_char,
    hints: *const libc::addrinfo,
    res: *mut *mut libc::addrinfo,
) -> c_int {
    let Some(real) = real_getaddrinfo() else {
        // SAFETY: errno is this thread's own.
        unsafe { *libc::__errno_location() = libc::ENOSYS };
        return libc::EAI_SYSTEM;
    };
    if super::green() {
        let args = Ptr((node, service, hints, res));
        return g::shield(
            || {
                // An interrupt raises before the lookup starts, not after: its result
                // (which owns memory) always reaches the caller.
                crate::runtime::blocking_point::checkpoint();
                crate::blocking::offload_then(move || {
                    let (node, service, hints, res) = args.get();
                    // SAFETY: the caller's pointers, alive while it is parked in `offload`.
                    unsafe { real(node, service, hints, res) }
                })
            },
            // Interrupted before the lookup: a system error, with errno set.
            |_| libc::EAI_SYSTEM,
        );
    }
    // SAFETY: forwarded.
    unsafe { real(node, service, hints, res) }
}

#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    // A forked child shares the parent's epoll set: forgetting a registration there would
    // take the parent's fd out of it. The child forgets nothing (it has no reactor of its
    // own, and everything it does passes through).
    if !super::forked() {
        fds::unmark(fd);
    }
    out_int(sys!(libc::SYS_close, fd))
}

#[no_mangle]
pub unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if !super::forked() {
        fds::unmark(new); // see `close`
    }
    out_int(sys!(libc::SYS_dup3, old, new, flags))
}

#[no_mangle]
pub unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // dup2's special case (dup3 refuses it): `new` if `old` is valid.
        return if sys!(libc::SYS_fcntl, old, libc::F_GETFD) < 0 {
            -1
        } else {
            new
        };
    }
    if !super::forked() {
        fds::unmark(new); // see `close`
    }
    out_int(sys!(libc::SYS_dup3, old, new, 0))
}

/// `wait4` for one child, without `WNOHANG`: a green thread parks on the child's pidfd
/// (readable at exit, as `weft::process` waits) and then reaps it without blocking. Any
/// other form (any child, a process group, stopped or continued children) and a kernel
/// without pidfds pass through.
#[no_mangle]
pub unsafe extern "C" fn wait4(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
    rusage: *mut libc::rusage,
) -> libc::pid_t {
    // Exits only, and only options the kernel accepts here (anything else is the kernel's
    // to refuse at once, with EINVAL).
    let only_exit = options & !(libc::__WALL | libc::__WCLONE | libc::__WNOTHREAD) == 0;
    if pid > 0 && only_exit && super::green() {
        let reap = || {
            sys!(
                libc::SYS_wait4,
                pid,
                status,
                options | libc::WNOHANG,
                rusage
            )
        };
        if let Some(res) = g::shield(|| g::wait_child(pid, reap), |_| Some(-1)) {
            return res as libc::pid_t;
        }
    }
    sys!(libc::SYS_wait4, pid, status, options, rusage) as libc::pid_t
}

/// `waitpid` is `wait4` without the usage (std's `Child::wait` calls it).
#[no_mangle]
pub unsafe extern "C" fn waitpid(
    pid: libc::pid_t,
    status: *mut c_int,
    options: c_int,
) -> libc::pid_t {
    // SAFETY: forwarded.
    unsafe { wait4(pid, status, options, std::ptr::null_mut()) }
}

type PthreadJoin = unsafe extern "C" fn(libc::pthread_t, *mut *mut c_void) -> c_int;

/// libc's `pthread_join`: the next definition after ours.
fn real_pthread_join() -> Option<PthreadJoin> {
    static REAL: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let addr = *REAL.get_or_init(|| {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name.
        unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_join".as_ptr()) as usize }
    });
    // SAFETY: a non-null symbol is libc's pthread_join, of this type.
    (addr != 0).then(|| unsafe { std::mem::transmute::<usize, PthreadJoin>(addr) })
}

/// Joining an OS thread (std's `JoinHandle::join`) waits in a glibc-internal futex keyed by
/// the joined thread: a green thread hands the join to the blocking pool, an OS thread that
/// runs nothing else, and parks meanwhile. It is not interrupted: the thread's result (the
/// `retval` it owns) always reaches the caller, and a cancel or deadline takes effect at
/// the green thread's next weft blocking point.
#[no_mangle]
pub unsafe extern "C" fn pthread_join(thread: libc::pthread_t, retval: *mut *mut c_void) -> c_int {
    let Some(real) = real_pthread_join() else {
        // A static binary has no next definition to call.
        return libc::ENOSYS;
    };
    if super::green() {
        let out = Ptr(retval);
        return g::shield(
            || {
                crate::blocking::offload_then(move || {
                    // SAFETY: the caller's arguments, alive while it is parked in `offload`.
                    unsafe { real(thread, out.get()) }
                })
            },
            // Only an interrupt raised before the hand-off comes back here: nothing joined.
            |_| libc::EINTR,
        );
    }
    // SAFETY: forwarded.
    unsafe { real(thread, retval) }
}

/// Whether `path` (relative to `dirfd`) names a FIFO, without following a final symlink
/// only when the caller asked not to (`O_NOFOLLOW`).
fn is_fifo(dirfd: c_int, path: *const libc::c_char, flags: c_int) -> bool {
    // SAFETY: a zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let nofollow = if flags & libc::O_NOFOLLOW != 0 {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    // SAFETY: the caller's NUL-terminated path; fstatat writes the struct it is given (libc's
    // own function: weft does not hook it).
    (unsafe { libc::fstatat(dirfd, path, &mut st, nofollow) }) == 0
        && st.st_mode & libc::S_IFMT == libc::S_IFIFO
}

/// `openat` for every `open` form. Opening a FIFO blocks until the other end opens too,
/// which may be a green thread of this very worker: a green thread hands that open to the
/// blocking pool and parks. Everything else (and `O_NONBLOCK`, `O_PATH`) is the plain call.
fn open_at(dirfd: c_int, path: *const libc::c_char, flags: c_int, mode: c_uint) -> c_int {
    if flags & (libc::O_NONBLOCK | libc::O_PATH) == 0
        && !path.is_null()
        && super::green()
        && is_fifo(dirfd, path, flags)
    {
        let p = Ptr(path);
        let (res, code) = g::shield(
            || {
                crate::blocking::offload_then(move || {
                    let res = sys!(libc::SYS_openat, dirfd, p.get(), flags, mode);
                    (
                        res,
                        std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
                    )
                })
            },
            // Interrupted before the hand-off: nothing was opened.
            |code| (-1, code),
        );
        if res < 0 {
            // SAFETY: errno is this thread's own.
            unsafe { *libc::__errno_location() = code };
        }
        return res as c_int;
    }
    out_int(sys!(libc::SYS_openat, dirfd, path, flags, mode))
}

// The mode is variadic in C, passed where a third (fourth) integer argument goes on the
// Linux targets weft supports; it is read only with O_CREAT or O_TMPFILE, as the kernel does.

#[no_mangle]
pub unsafe extern "C" fn open(path: *const libc::c_char, flags: c_int, mode: c_uint) -> c_int {
    open_at(libc::AT_FDCWD, path, flags, mode)
}

#[no_mangle]
pub unsafe extern "C" fn open64(path: *const libc::c_char, flags: c_int, mode: c_uint) -> c_int {
    open_at(libc::AT_FDCWD, path, flags, mode)
}

#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const libc::c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    open_at(dirfd, path, flags, mode)
}

#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const libc::c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    open_at(dirfd, path, flags, mode)
}

/// libc's `syscall`, variadic in C. Stable Rust cannot define a variadic function, but on
/// the two architectures this is built for, the Linux calling conventions pass variadic
/// integer and pointer arguments exactly as named ones (x86_64: the six registers, then the
/// stack; aarch64: x0–x7), so a definition with the number and six words reads what any
/// caller passed. Words the caller did not pass hold garbage that the kernel ignores for
/// that call, as it does when libc's own `syscall` forwards all six; an `int` argument's
/// upper half may be garbage too, so the futex path truncates before it reads one.
///
/// Every call but `SYS_futex` goes straight to the kernel; futex calls go through
/// [`super::futex`], which parks green threads in address-keyed waits.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[no_mangle]
pub unsafe extern "C" fn syscall(
    nr: libc::c_long,
    a1: libc::c_long,
    a2: libc::c_long,
    a3: libc::c_long,
    a4: libc::c_long,
    a5: libc::c_long,
    a6: libc::c_long,
) -> libc::c_long {
    let args = [a1, a2, a3, a4, a5, a6];
    if nr == libc::SYS_futex && !super::forked() {
        if let Some(res) = super::futex::futex(args) {
            return res;
        }
    }
    // SAFETY: the caller's system call, as libc's `syscall` would make it.
    unsafe { crate::sys::raw_syscall(nr, args) }
}
