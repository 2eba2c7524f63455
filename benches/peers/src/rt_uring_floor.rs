//! The second floor: the echo and HTTP servers written by hand on io_uring, one OS thread, no
//! runtime. Where [`crate::rt_floor`] asks epoll what is ready and then makes the syscalls,
//! this one hands the kernel the operations themselves:
//! - one multishot accept on the listener (re-armed if the kernel ends it);
//! - per connection exactly one operation in flight: a `recv` into the connection's buffer,
//!   or a `send` of what is to go out (the rest of a short send is sent again);
//! - every loop submits all queued operations and waits for at least one completion in a
//!   single `io_uring_enter`, then handles every completion that is there.
//!
//! Buffers live in the connection, which lives until its last operation has completed: a
//! connection is only closed from the completion of its one in-flight operation.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use crate::http::{answer, BUF};

/// What a completion belongs to: the kind in the top byte of `user_data`, the fd below.
const ACCEPT: u64 = 0;
const RECV: u64 = 1;
const SEND: u64 = 2;

fn tag(kind: u64, fd: RawFd) -> u64 {
    (kind << 56) | fd as u32 as u64
}

struct Conn {
    fd: RawFd,
    /// Echo: the bytes received. HTTP: the input not yet answered (`len` bytes).
    input: Box<[u8; BUF]>,
    len: usize,
    /// What is being sent, and how much of it the kernel has taken.
    out: Vec<u8>,
    sent: usize,
}

struct Server {
    ring: IoUring,
    conns: Vec<Option<Conn>>,
    http: bool,
}

impl Server {
    /// Queues `entry`, submitting first if the submission queue is full.
    fn push(&mut self, entry: squeue::Entry) {
        loop {
            // SAFETY: every buffer an entry points to lives in a `Conn` (boxed or a Vec that
            // is not touched while its send is in flight), and a `Conn` is dropped only in the
            // completion handler of its one in-flight operation.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return;
            }
            self.ring.submit().expect("io_uring_enter");
        }
    }

    fn recv(&mut self, fd: RawFd) {
        let conn = self.conns[fd as usize].as_mut().expect("a live connection");
        let len = if self.http { conn.len } else { 0 };
        let buf = conn.input[len..].as_mut_ptr();
        let room = (BUF - len) as u32;
        let entry = opcode::Recv::new(types::Fd(fd), buf, room)
            .build()
            .user_data(tag(RECV, fd));
        self.push(entry);
    }

    fn send(&mut self, fd: RawFd) {
        let conn = self.conns[fd as usize].as_mut().expect("a live connection");
        let rest = &conn.out[conn.sent..];
        let entry = opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(tag(SEND, fd));
        self.push(entry);
    }

    fn close(&mut self, fd: RawFd) {
        self.conns[fd as usize] = None;
        // SAFETY: our fd; no operation of it is in flight (we are in its completion).
        unsafe { libc::close(fd) };
    }

    fn accepted(&mut self, fd: RawFd) {
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
        let index = fd as usize;
        if self.conns.len() <= index {
            self.conns.resize_with(index + 1, || None);
        }
        self.conns[index] = Some(Conn {
            fd,
            input: Box::new([0; BUF]),
            len: 0,
            out: Vec::with_capacity(BUF),
            sent: 0,
        });
        self.recv(fd);
    }

    fn received(&mut self, fd: RawFd, result: i32) {
        if result <= 0 {
            return self.close(fd); // end of file or an error
        }
        let http = self.http;
        let conn = self.conns[fd as usize].as_mut().expect("a live connection");
        let n = result as usize;
        conn.out.clear();
        conn.sent = 0;
        if http {
            conn.len += n;
            let Some(used) = answer(&conn.input[..conn.len], &mut conn.out) else {
                return self.close(fd);
            };
            conn.input.copy_within(used..conn.len, 0);
            conn.len -= used;
            if conn.out.is_empty() {
                if conn.len == BUF {
                    return self.close(fd); // a request larger than the buffer
                }
                return self.recv(fd);
            }
        } else {
            conn.out.extend_from_slice(&conn.input[..n]);
        }
        debug_assert_eq!(conn.fd, fd);
        self.send(fd);
    }

    fn sent(&mut self, fd: RawFd, result: i32) {
        if result <= 0 {
            return self.close(fd);
        }
        let conn = self.conns[fd as usize].as_mut().expect("a live connection");
        conn.sent += result as usize;
        if conn.sent < conn.out.len() {
            self.send(fd);
        } else {
            self.recv(fd);
        }
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
    let listener = TcpListener::bind(addr)?;
    let listen_fd = listener.as_raw_fd();
    let mut server = Server {
        ring: IoUring::new(4096)?,
        conns: Vec::new(),
        http,
    };
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
                RECV => server.received(fd, result),
                SEND => server.sent(fd, result),
                _ => unreachable!("unknown completion tag {data:#x}"),
            }
        }
    }
}
