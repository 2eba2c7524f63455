//! The echo load generator, the same for every server: one OS thread, raw epoll, `conns`
//! connections each with one 64-byte message in flight. When a message has fully come back,
//! the next one goes out on that connection. It runs one second to warm up, then counts round
//! trips for `duration`; the result is nanoseconds per round trip over all connections
//! (the inverse of the server's throughput). Given the server's pid, it also reads the
//! server's CPU time (user + system, from `/proc/PID/stat`) at the start and the end of the
//! counted window: CPU nanoseconds per round trip, the figure that survives a noisy machine.
//!
//! [`idle`] measures memory instead: the server's resident set per idle connection.

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

/// What one run measured.
pub struct Report {
    /// Wall nanoseconds per round trip in the counted window.
    pub ns: f64,
    /// The server's CPU nanoseconds per round trip in the counted window.
    pub cpu_ns: Option<f64>,
    /// Round trips over the whole run, warm-up included (for per-request syscall counts
    /// taken over the whole run).
    pub total: u64,
}

/// The user + system CPU time of process `pid` so far, in nanoseconds.
pub fn cpu_ns(pid: u32) -> io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces; the fields after it are plain.
    let after_name = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15, so 11 and 12 after "pid (name)" and state.
    let ticks = |i: usize| -> io::Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected /proc stat"))
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11)? + ticks(12)?) * 1e9 / hz)
}

pub fn run(
    addr: SocketAddr,
    conns: usize,
    duration: Duration,
    server: Option<u32>,
) -> io::Result<Report> {
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
    let mut total = 0u64;
    let mut measuring = false;
    let mut cpu_start = None;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        if !measuring && now >= warm {
            measuring = true;
            counted = 0;
            cpu_start = server.map(cpu_ns).transpose()?;
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
                            total += 1;
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
    let cpu_end = server.map(cpu_ns).transpose()?;
    Ok(Report {
        ns: duration.as_secs_f64() * 1e9 / counted as f64,
        cpu_ns: cpu_start
            .zip(cpu_end)
            .map(|(start, end)| (end - start) / counted as f64),
        total,
    })
}

/// The resident set of process `pid`, in bytes.
pub fn rss(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmRSS"))
}

/// Opens `conns` connections to the echo server `pid` at `addr` and leaves them idle (each
/// server task then waits in `read` with its 4 KiB buffer); returns the growth of the
/// server's resident set per connection, once it has stopped growing.
pub fn idle(addr: SocketAddr, conns: usize, server: u32) -> io::Result<f64> {
    let before = rss(server)?;
    let mut all = Vec::with_capacity(conns);
    for _ in 0..conns {
        let stream = TcpStream::connect(addr)?;
        // One round trip proves the server's task for it is running and has been in `read`.
        (&stream).write_all(&[1])?;
        let mut byte = [0u8; 1];
        (&stream).read_exact(&mut byte)?;
        all.push(stream);
    }
    // Settle: the last tasks park, allocators return what they will.
    let mut last = rss(server)?;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = rss(server)?;
        if now == last {
            break;
        }
        last = now;
    }
    let per_conn = last.saturating_sub(before) as f64 / conns as f64;
    drop(all);
    Ok(per_conn)
}

/// Sends one message; with at most 64 bytes in flight the socket buffer always has room.
fn send(conn: &mut Conn, message: &[u8]) -> io::Result<()> {
    conn.stream.write_all(message)?;
    conn.pending = message.len();
    Ok(())
}
