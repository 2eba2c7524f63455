//! The floor: the echo and HTTP servers written by hand on epoll, with libc only: one OS
//! thread, no runtime, no green threads, no tasks. What a request costs here is what the
//! kernel needs (the loopback TCP work, the syscalls) plus the least bookkeeping a server can
//! do; every runtime's CPU per request is reported next to it.
//!
//! The shape is the usual best single-threaded one:
//! - level-triggered `EPOLLIN` on every connection, so a readable connection gets exactly one
//!   `read` per event (a short read is not followed by a read that can only say `EAGAIN`:
//!   if more arrived, the next `epoll_wait` reports the fd again);
//! - a whole batch of events (up to 256) handled per `epoll_wait`, which blocks only when
//!   nothing is ready;
//! - writes go straight out; the rare partial write keeps the rest and waits for `EPOLLOUT`;
//! - `accept4` with `SOCK_NONBLOCK` until `EAGAIN`, and `TCP_NODELAY` as every other server
//!   here sets it.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

use crate::http::{answer, BUF};

/// One connection's state: the HTTP input not yet answered, and output the socket did not
/// take yet.
struct Conn {
    fd: RawFd,
    input: Box<[u8; BUF]>,
    len: usize,
    pending: Vec<u8>,
}

/// epoll data for the listener; connections use their fd.
const LISTENER: u64 = u64::MAX;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn control(epoll: RawFd, op: libc::c_int, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut event = libc::epoll_event { events, u64: data };
    // SAFETY: a valid epoll fd and event; the kernel copies the event.
    check(unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) }).map(drop)
}

/// Serves until killed.
pub fn serve(addr: SocketAddr, http: bool) -> ! {
    let listener = TcpListener::bind(addr).expect("bind");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    // SAFETY: plain syscall.
    let epoll = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) }).expect("epoll");
    control(
        epoll,
        libc::EPOLL_CTL_ADD,
        listener.as_raw_fd(),
        libc::EPOLLIN as u32,
        LISTENER,
    )
    .expect("register the listener");
    // Indexed by fd: the kernel hands out the lowest free numbers, so this stays dense.
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut echo_buf = [0u8; BUF];
    let mut out = Vec::with_capacity(BUF);
    loop {
        // SAFETY: `events` has room for `len` entries.
        let ready =
            unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, -1) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            assert_eq!(
                error.kind(),
                io::ErrorKind::Interrupted,
                "epoll_wait: {error}"
            );
            continue;
        }
        for event in &events[..ready as usize] {
            let (flags, data) = (event.events, event.u64);
            if data == LISTENER {
                accept_all(&listener, epoll, &mut conns);
                continue;
            }
            let fd = data as RawFd;
            let Some(conn) = conns.get_mut(fd as usize).and_then(Option::as_mut) else {
                continue;
            };
            let mut open = true;
            if flags & libc::EPOLLOUT as u32 != 0 && !conn.pending.is_empty() {
                open = flush(conn, epoll);
            }
            let readable = (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32;
            if open && conn.pending.is_empty() && flags & readable != 0 {
                open = if http {
                    serve_http(conn, epoll, &mut out)
                } else {
                    serve_echo(conn, epoll, &mut echo_buf)
                };
            }
            if !open {
                // Closing the fd also takes it out of the epoll set.
                // SAFETY: our fd, closed once, then forgotten.
                unsafe { libc::close(fd) };
                conns[fd as usize] = None;
            }
        }
    }
}

fn accept_all(listener: &TcpListener, epoll: RawFd, conns: &mut Vec<Option<Conn>>) {
    loop {
        // SAFETY: plain syscall; the peer address is not wanted.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            return; // EAGAIN (all taken), or an error that the next event retries
        }
        set_nodelay(fd);
        if control(
            epoll,
            libc::EPOLL_CTL_ADD,
            fd,
            libc::EPOLLIN as u32,
            fd as u64,
        )
        .is_err()
        {
            // SAFETY: our fd.
            unsafe { libc::close(fd) };
            continue;
        }
        let index = fd as usize;
        if conns.len() <= index {
            conns.resize_with(index + 1, || None);
        }
        conns[index] = Some(Conn {
            fd,
            input: Box::new([0; BUF]),
            len: 0,
            pending: Vec::new(),
        });
    }
}

/// Sets `TCP_NODELAY`, as every server here does (a failure only costs latency).
pub fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: a valid socket and option buffer.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// One `read`; `Ok(0)` is end of file. `None`: nothing there (`EAGAIN`).
fn read(fd: RawFd, buf: &mut [u8]) -> Option<io::Result<usize>> {
    // SAFETY: `buf` is valid for its length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n >= 0 {
        return Some(Ok(n as usize));
    }
    let error = io::Error::last_os_error();
    match error.kind() {
        io::ErrorKind::WouldBlock => None,
        _ => Some(Err(error)),
    }
}

/// Writes `bytes`, keeping what the socket did not take in `conn.pending` and asking for
/// `EPOLLOUT`. `false` if the connection failed.
fn send(conn: &mut Conn, epoll: RawFd, bytes: &[u8]) -> bool {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: the slice is valid for its length.
        let n = unsafe { libc::write(conn.fd, bytes[done..].as_ptr().cast(), bytes.len() - done) };
        if n > 0 {
            done += n as usize;
            continue;
        }
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
            conn.pending.extend_from_slice(&bytes[done..]);
            // Only writability until it is out: the peer must take what it was sent before
            // more of its input is read (and a level-triggered EPOLLIN would fire meanwhile).
            let events = libc::EPOLLOUT as u32;
            return control(epoll, libc::EPOLL_CTL_MOD, conn.fd, events, conn.fd as u64).is_ok();
        }
        return false;
    }
    true
}

/// Sends what was pending; back to `EPOLLIN` only once it is all out.
fn flush(conn: &mut Conn, epoll: RawFd) -> bool {
    let pending = std::mem::take(&mut conn.pending);
    if !send(conn, epoll, &pending) {
        return false;
    }
    if conn.pending.is_empty() {
        let events = libc::EPOLLIN as u32;
        return control(epoll, libc::EPOLL_CTL_MOD, conn.fd, events, conn.fd as u64).is_ok();
    }
    true
}

fn serve_echo(conn: &mut Conn, epoll: RawFd, buf: &mut [u8; BUF]) -> bool {
    match read(conn.fd, buf) {
        None => true,
        Some(Ok(0)) | Some(Err(_)) => false,
        Some(Ok(n)) => send(conn, epoll, &buf[..n]),
    }
}

fn serve_http(conn: &mut Conn, epoll: RawFd, out: &mut Vec<u8>) -> bool {
    if conn.len == BUF {
        return false; // a request larger than the buffer: not this benchmark's traffic
    }
    let (fd, len) = (conn.fd, conn.len);
    match read(fd, &mut conn.input[len..]) {
        None => return true,
        Some(Ok(0)) | Some(Err(_)) => return false,
        Some(Ok(n)) => conn.len += n,
    }
    let Some(used) = answer(&conn.input[..conn.len], out) else {
        return false;
    };
    conn.input.copy_within(used..conn.len, 0);
    conn.len -= used;
    if out.is_empty() {
        return true;
    }
    let ok = send(conn, epoll, out);
    out.clear();
    ok
}
