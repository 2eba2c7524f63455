//! The echo load generator, the same for every server: one OS thread, raw epoll, `conns`
//! connections each with one 64-byte message in flight. When a message has fully come back,
//! the next one goes out on that connection. It runs one second to warm up, then counts round
//! trips for `duration`; the result is nanoseconds per round trip over all connections
//! (the inverse of the server's throughput).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const MESSAGE: usize = 64;

struct Conn {
    stream: TcpStream,
    /// Bytes of the current message still to come back.
    pending: usize,
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

struct Epoll(libc::c_int);

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: the fd is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

pub fn run(addr: SocketAddr, conns: usize, duration: Duration) -> io::Result<f64> {
    // SAFETY: plain syscall; the result is checked.
    let epoll = Epoll(check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?);
    let mut all = Vec::with_capacity(conns);
    for i in 0..conns {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: both fds are open; `event` is a valid epoll_event.
        check(unsafe {
            libc::epoll_ctl(epoll.0, libc::EPOLL_CTL_ADD, stream.as_raw_fd(), &mut event)
        })?;
        all.push(Conn { stream, pending: 0 });
    }
    let message = [7u8; MESSAGE];
    let mut scratch = [0u8; MESSAGE];
    for conn in &mut all {
        send(conn, &message)?;
    }

    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let started = Instant::now();
    let warm = started + Duration::from_secs(1);
    let end = warm + duration;
    let mut counted = 0u64;
    let mut measuring = false;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !measuring && now >= warm {
            measuring = true;
            counted = 0;
        }
        // SAFETY: `events` has room for its length; the result is checked.
        let ready = check(unsafe {
            libc::epoll_wait(epoll.0, events.as_mut_ptr(), events.len() as i32, 100)
        })? as usize;
        for event in &events[..ready] {
            let conn = &mut all[event.u64 as usize];
            loop {
                match conn.stream.read(&mut scratch[..conn.pending]) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed a connection",
                        ))
                    }
                    Ok(n) => {
                        conn.pending -= n;
                        if conn.pending == 0 {
                            counted += 1;
                            send(conn, &message)?;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    if counted == 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no round trip completed",
        ));
    }
    Ok(duration.as_secs_f64() * 1e9 / counted as f64)
}

/// Sends one message; with at most 64 bytes in flight the socket buffer always has room.
fn send(conn: &mut Conn, message: &[u8]) -> io::Result<()> {
    conn.stream.write_all(message)?;
    conn.pending = message.len();
    Ok(())
}
