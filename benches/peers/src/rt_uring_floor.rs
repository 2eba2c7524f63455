//! The second floor: the echo and HTTP servers written by hand on io_uring, one OS thread, no
//! runtime. Where [`crate::rt_floor`] asks epoll what is ready and then makes the syscalls,
//! this one hands the kernel the operations themselves:
//! - one multishot accept on the listener (re-armed if the kernel ends it);
//! - receives, in one of two shapes (`PEERS_URING_RECV`):
//!   - `oneshot` (the default): one `recv` into the connection's own buffer, armed again after
//!     each answer has been sent;
//!   - `multishot`: one multishot `recv` per connection that picks buffers from a group the
//!     server provides (each buffer is handed back with `PROVIDE_BUFFERS` once its bytes are
//!     copied into the connection);
//! - one `send` at a time per connection (the rest of a short send is sent again);
//! - every loop submits all queued operations and waits for at least one completion in a
//!   single `io_uring_enter`, then handles every completion that is there;
//! - the ring is single-issuer with the kernel's task work deferred to that
//!   `io_uring_enter` (`PEERS_URING_SETUP=defer`, the default), or plain
//!   (`PEERS_URING_SETUP=plain`). Deferred task work measured 0.90-0.97x the epoll floor's
//!   CPU per request here, the plain ring 1.05-1.09x (2026-12-03, a quiet VM).
//!
//! A connection's buffers live in its `Conn`, which is dropped (and its fd closed) only when
//! none of its operations is in flight any more.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::http::{answer, BUF};

/// What a completion belongs to: the kind in the top byte of `user_data`, the fd below.
const ACCEPT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;
const PROVIDE: u64 = 3;

/// The provided-buffer group of the multishot shape: its id, buffer size and count.
const GROUP: u16 = 0;
const GROUP_BUF: usize = 4096;
const GROUP_BUFS: usize = 2048;

fn tag(kind: u64, fd: RawFd) -> u64 {
    (kind << 56) | fd as u32 as u64
}

struct Conn {
    /// Received bytes not yet answered (echo: not yet sent back).
    input: Box<[u8; BUF]>,
    len: usize,
    /// What is being sent, and how much of it the kernel has taken.
    out: Vec<u8>,
    sent: usize,
    sending: bool,
    receiving: bool,
    /// The peer closed, failed or sent garbage: close once nothing is in flight.
    done: bool,
}

struct Server {
    ring: IoUring,
    conns: Vec<Option<Conn>>,
    http: bool,
    multishot: bool,
    /// The provided buffers (multishot shape): `GROUP_BUFS` buffers of `GROUP_BUF` bytes.
    pool: Vec<u8>,
}

impl Server {
    /// Queues `entry`, submitting first if the submission queue is full.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every buffer an entry points to outlives its operation: a connection's
            // live in its `Conn`, which is dropped only once none of its operations is in
            // flight (`finish`), and the provided buffers live in `pool` for ever.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            self.ring.submit().expect("io_uring_enter");
        }
    }

    fn conn(&mut self, fd: RawFd) -> &mut Conn {
        self.conns[fd as usize].as_mut().expect("a live connection")
    }

    fn arm_recv(&mut self, fd: RawFd) {
        let entry = if self.multishot {
            opcode::RecvMulti::new(types::Fd(fd), GROUP).build()
        } else {
            let conn = self.conn(fd);
            let room = (BUF - conn.len) as u32;
            let buf = conn.input[conn.len..].as_mut_ptr();
            opcode::Recv::new(types::Fd(fd), buf, room).build()
        };
        self.conn(fd).receiving = true;
        self.push(entry.user_data(tag(RECV, fd)));
    }

    fn send_rest(&mut self, fd: RawFd) {
        let conn = self.conn(fd);
        conn.sending = true;
        let rest = &conn.out[conn.sent..];
        let entry = opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(tag(SEND, fd));
        self.push(entry);
    }

    /// Hands buffer `bid` back to the kernel's group.
    fn provide(&mut self, bid: u16, count: u16) {
        let addr = self.pool[bid as usize * GROUP_BUF..].as_mut_ptr();
        let entry = opcode::ProvideBuffers::new(addr, GROUP_BUF as i32, count, GROUP, bid)
            .build()
            .user_data(tag(PROVIDE, 0));
        self.push(entry);
    }

    fn accepted(&mut self, fd: RawFd) {
        crate::rt_floor::set_nodelay(fd);
        let index = fd as usize;
        if self.conns.len() <= index {
            self.conns.resize_with(index + 1, || None);
        }
        self.conns[index] = Some(Conn {
            input: Box::new([0; BUF]),
            len: 0,
            out: Vec::with_capacity(BUF),
            sent: 0,
            sending: false,
            receiving: false,
            done: false,
        });
        self.arm_recv(fd);
    }

    fn received(&mut self, fd: RawFd, result: i32, flags: u32) {
        let still_armed = self.multishot && cqueue::more(flags);
        self.conn(fd).receiving = still_armed;
        if result == -libc::ENOBUFS {
            // The group ran dry for a moment: receive again once buffers come back.
            return self.arm_recv(fd);
        }
        if result <= 0 {
            self.conn(fd).done = true; // end of file or an error
            return self.finish(fd);
        }
        let n = result as usize;
        if self.multishot {
            let bid = cqueue::buffer_select(flags).expect("a multishot recv picks a buffer");
            let start = bid as usize * GROUP_BUF;
            let bytes = &self.pool[start..start + n];
            let conn = self.conns[fd as usize].as_mut().expect("a live connection");
            if conn.len + n > BUF {
                conn.done = true; // more than a request's worth unanswered
            } else {
                conn.input[conn.len..conn.len + n].copy_from_slice(bytes);
                conn.len += n;
            }
            self.provide(bid, 1);
        } else {
            self.conn(fd).len += n;
        }
        self.answer(fd);
    }

    /// Turns what was received into output and sends it, unless a send is in flight; then
    /// makes sure a receive is armed.
    fn answer(&mut self, fd: RawFd) {
        let http = self.http;
        let conn = self.conn(fd);
        if !conn.done && !conn.sending && conn.len > 0 {
            conn.out.clear();
            conn.sent = 0;
            if http {
                match answer(&conn.input[..conn.len], &mut conn.out) {
                    Some(used) => {
                        conn.input.copy_within(used..conn.len, 0);
                        conn.len -= used;
                        if conn.len == BUF {
                            conn.done = true; // a request larger than the buffer
                        }
                    }
                    None => conn.done = true,
                }
            } else {
                conn.out.extend_from_slice(&conn.input[..conn.len]);
                conn.len = 0;
            }
            if !conn.out.is_empty() && !conn.done {
                return self.send_rest(fd);
            }
        }
        let conn = self.conn(fd);
        if !conn.done && !conn.sending && !conn.receiving {
            return self.arm_recv(fd);
        }
        self.finish(fd);
    }

    fn sent(&mut self, fd: RawFd, result: i32) {
        let conn = self.conn(fd);
        conn.sending = false;
        if result <= 0 {
            conn.done = true;
            return self.finish(fd);
        }
        conn.sent += result as usize;
        if conn.sent < conn.out.len() {
            return self.send_rest(fd);
        }
        self.answer(fd);
    }

    /// Closes a connection that is done, once none of its operations is in flight. A
    /// multishot receive still armed is cancelled; its last completion comes back here.
    fn finish(&mut self, fd: RawFd) {
        let conn = self.conn(fd);
        if !conn.done || conn.sending {
            return;
        }
        if conn.receiving {
            let entry = opcode::AsyncCancel::new(tag(RECV, fd))
                .build()
                .user_data(tag(PROVIDE, 0));
            return self.push(entry);
        }
        self.conns[fd as usize] = None;
        // SAFETY: our fd; none of its operations is in flight.
        unsafe { libc::close(fd) };
    }
}

/// The ring: with the kernel's task work deferred to our own `io_uring_enter` (the default,
/// `PEERS_URING_SETUP=defer`: single issuer, cooperative and deferred task running), or
/// plain (`PEERS_URING_SETUP=plain`).
fn ring() -> io::Result<IoUring> {
    match std::env::var("PEERS_URING_SETUP").as_deref() {
        Ok("defer") | Err(_) => IoUring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_defer_taskrun()
            .build(4096),
        Ok("plain") => IoUring::new(4096),
        Ok(other) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("PEERS_URING_SETUP={other}: want plain or defer"),
        )),
    }
}

/// Serves until killed.
pub fn serve(addr: SocketAddr, http: bool) -> ! {
    if let Err(e) = run(addr, http) {
        eprintln!("weft-peers: the io_uring floor cannot run here: {e}");
        std::process::exit(2);
    }
    unreachable!("the server loop only ends with an error");
}

fn run(addr: SocketAddr, http: bool) -> io::Result<()> {
    let multishot = match std::env::var("PEERS_URING_RECV").as_deref() {
        Ok("multishot") => true,
        Ok("oneshot") | Err(_) => false,
        Ok(other) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("PEERS_URING_RECV={other}: want oneshot or multishot"),
            ))
        }
    };
    let listener = TcpListener::bind(addr)?;
    let listen_fd = listener.as_raw_fd();
    let mut server = Server {
        ring: ring()?,
        conns: Vec::new(),
        http,
        multishot,
        pool: if multishot {
            vec![0; GROUP_BUF * GROUP_BUFS]
        } else {
            Vec::new()
        },
    };
    if multishot {
        server.provide(0, GROUP_BUFS as u16);
    }
    let accept = opcode::AcceptMulti::new(types::Fd(listen_fd))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(tag(ACCEPT, listen_fd));
    server.push(accept.clone());
    let mut done = Vec::with_capacity(1024);
    loop {
        match server.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        done.extend(
            server
                .ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for (data, result, flags) in done.drain(..) {
            let fd = (data & 0xFFFF_FFFF) as RawFd;
            match data >> 56 {
                ACCEPT => {
                    if result >= 0 {
                        server.accepted(result);
                    }
                    if !cqueue::more(flags) {
                        server.push(accept.clone()); // the kernel ended the multishot
                    }
                }
                RECV => server.received(fd, result, flags),
                SEND => server.sent(fd, result),
                PROVIDE => {
                    // Buffers handed back, or a cancel: only a failure is news.
                    if result < 0 && result != -libc::ENOENT && result != -libc::EALREADY {
                        return Err(io::Error::from_raw_os_error(-result));
                    }
                }
                _ => unreachable!("unknown completion tag {data:#x}"),
            }
        }
    }
}
