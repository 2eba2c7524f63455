//! A TCP forwarder: for each client, connect to the upstream and copy both ways at once,
//! one green thread per direction, both reading and writing the same pair of
//! `&TcpStream`s. When one side finishes sending, the forwarder passes the half-close on
//! (`shutdown(Write)` on the other side) and keeps copying the other direction until it
//! finishes too, so request/response protocols that signal the end of a request with a
//! half-close work through it.
//!
//! ```text
//! cargo run --release --example proxy -- [PORT [WORKERS [UPSTREAM]]]
//! cargo run --release --example echo                     # an upstream on 127.0.0.1:7007
//! cargo run --release --example proxy                    # 127.0.0.1:7070 -> 127.0.0.1:7007
//! nc 127.0.0.1 7070                                      # lines come back through both
//! ```
//!
//! `UPSTREAM` is `HOST:PORT` (default `127.0.0.1:7007`); a host name is resolved off the
//! worker, once per connection.

#[path = "common/mod.rs"]
mod common;

use std::io::{self, Read, Write};
use std::net::Shutdown;

use weft::net::TcpStream;

const USAGE: &str = "proxy [PORT [WORKERS [UPSTREAM]]]";

fn main() {
    let args = common::args(7070, USAGE);
    let upstream = args
        .rest
        .first()
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:7007".to_owned());
    let listener = common::listen("proxy", &args.addr);
    println!("proxy: forwarding to {upstream}");
    weft::run(move || {
        common::serve_forever(&listener, move |client, peer| {
            if let Err(e) = forward(client, &upstream) {
                eprintln!("proxy: {peer}: {e}");
            }
        })
    })
}

/// Connects `client` to `upstream` and copies both ways until both directions end.
/// Returns the bytes sent each way.
fn forward(client: TcpStream, upstream: &str) -> io::Result<(u64, u64)> {
    let server = match TcpStream::connect(upstream) {
        Ok(server) => server,
        Err(e) => {
            // Tell the client at once rather than leaving it waiting.
            let _ = client.shutdown(Shutdown::Both);
            return Err(io::Error::new(
                e.kind(),
                format!("upstream {upstream}: {e}"),
            ));
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    weft::scope(|s| {
        let up = s.spawn(|| pipe(&client, &server));
        let down = pipe(&server, &client);
        let up = up.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        match (up, down) {
            (Ok(up), Ok(down)) => Ok((up, down)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    })
}

/// Copies `from` to `to` until `from` ends, then half-closes `to`.
///
/// On an error, what ends depends on which side failed. If `to` cannot be written, it is
/// dead, and the other direction (which reads from it) ends by itself; the bytes that
/// direction still carries toward `from`, an early error answer say, are left for it to
/// deliver. If `from` cannot be read (it was reset), nothing more can reach it either, so
/// both sockets are shut down to end the other direction too, instead of leaving it
/// waiting for ever on a peer that has nobody to talk to.
fn pipe(mut from: &TcpStream, mut to: &TcpStream) -> io::Result<u64> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => {
                // ENOTCONN here means `to` was reset meanwhile: nothing left to tell it.
                let _ = to.shutdown(Shutdown::Write);
                return Ok(total);
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
                return Err(e);
            }
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}
