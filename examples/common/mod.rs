//! What the network examples share (this directory is not an example of its own): the
//! `PORT [WORKERS]` arguments, binding with a "listening on" line that tests and scripts
//! read, and an accept loop that survives a full fd table.
//!
//! Each example includes it with `#[path = "common/mod.rs"] mod common;`.
#![allow(dead_code)] // each example uses a different subset

pub mod http;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use weft::net::{TcpListener, TcpStream};

/// The parsed command line: `PORT [WORKERS] [MORE...]`.
pub struct Args {
    /// Where to listen: `PORT` alone means `127.0.0.1:PORT`; `HOST:PORT` is taken as is.
    /// Port 0 picks a free port, which the "listening on" line then reports.
    pub addr: String,
    /// How many worker threads; `None` keeps weft's default (one per CPU).
    pub workers: Option<usize>,
    /// The positional arguments after `WORKERS`, for the example to read.
    pub rest: Vec<String>,
}

/// Reads `PORT [WORKERS] [MORE...]` (PORT defaults to `default_port`; `-` or nothing keeps a
/// default) and configures the worker count. A bad argument prints `usage` and exits with 2.
/// Flags (`--name`) may come anywhere; they are left for the example to look for.
pub fn args(default_port: u16, usage: &str) -> Args {
    let mut argv = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let fail = |what: &str| -> ! {
        eprintln!("{what}\nusage: {usage}");
        std::process::exit(2)
    };
    let addr = match argv.next() {
        None => format!("127.0.0.1:{default_port}"),
        Some(p) if p == "-" => format!("127.0.0.1:{default_port}"),
        Some(p) if p == "-h" || p == "--help" => fail("weft example"),
        Some(p) => match p.parse::<u16>() {
            Ok(port) => format!("127.0.0.1:{port}"),
            Err(_) if p.contains(':') => p,
            Err(_) => fail(&format!(
                "PORT must be a port number or HOST:PORT, not {p:?}"
            )),
        },
    };
    let workers = match argv.next() {
        None => None,
        Some(w) if w == "-" => None,
        Some(w) => match w.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => fail(&format!("WORKERS must be a number, not {w:?}")),
        },
    };
    if let Some(n) = workers {
        if let Err(e) = weft::Config::new().workers(n).apply() {
            fail(&format!("WORKERS: {e}"));
        }
    }
    Args {
        addr,
        workers,
        rest: argv.collect(),
    }
}

/// Prints `NAME: listening on ADDR` on stdout (flushed at once: tests wait for this line to
/// learn the port when they asked for port 0).
pub fn announce(name: &str, addr: SocketAddr) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{name}: listening on {addr}");
    let _ = out.flush();
}

/// Binds `addr` and announces it; a failure to bind ends the program with a message.
pub fn listen(name: &str, addr: &str) -> TcpListener {
    let listener = TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("{name}: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    announce(
        name,
        listener
            .local_addr()
            .expect("a bound socket has an address"),
    );
    listener
}

/// Closes a connection gracefully once the server is done with it: shut down the sending
/// side, then read and discard whatever the client still sends (at most 1 MiB, for at most
/// a second) until it closes too. Closing a socket with unread input makes the kernel send
/// a reset, which can destroy the last response before the client reads it (a 400 sent
/// while the client was still writing, say). The second is a `weft::timeout`, not a socket
/// timeout, so the server's other reads keep their fast path.
pub fn lingering_close(stream: &TcpStream) {
    use std::io::Read;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = weft::timeout(Duration::from_secs(1), || {
        io::copy(&mut stream.take(1 << 20), &mut io::sink())
    });
}

/// Accepts for ever, handing each connection to a new green thread running `handle`.
/// An accept error (out of fds, or a connection reset before it was taken) is reported, and
/// the loop pauses briefly so that a full fd table does not become a busy loop.
pub fn serve_forever<F>(listener: &TcpListener, handle: F) -> !
where
    F: Fn(TcpStream, SocketAddr) + Clone + Send + 'static,
{
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                let handle = handle.clone();
                weft::spawn(move || handle(stream, peer));
            }
            Err(e) => {
                eprintln!("accept: {e}");
                weft::sleep(Duration::from_millis(10));
            }
        }
    }
}
