//! An echo server: one green thread per connection, written as plain blocking code.
//!
//! ```text
//! cargo run --release --example echo -- [PORT [WORKERS]]
//! cargo run --release --example echo                 # listens on 127.0.0.1:7007
//! cargo run --release --example echo -- 0.0.0.0:9000 # any HOST:PORT
//! nc 127.0.0.1 7007                                  # type lines; they come back
//! ```
//!
//! Each connection's green thread loops on `read` and `write_all`. When a read would block,
//! weft parks that green thread on the reactor and the worker serves other connections.

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};

use weft::net::TcpStream;

fn serve(mut stream: TcpStream) -> std::io::Result<u64> {
    let mut buf = [0u8; 16 * 1024];
    let mut echoed = 0;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(echoed); // the client closed its side
        }
        stream.write_all(&buf[..n])?;
        echoed += n as u64;
    }
}

fn main() {
    let args = common::args(7007, "echo [PORT [WORKERS]]");
    let listener = common::listen("echo", &args.addr);
    weft::run(move || {
        common::serve_forever(&listener, |stream, peer| {
            if let Err(e) = serve(stream) {
                eprintln!("echo: {peer}: {e}");
            }
        })
    })
}
