//! An echo server: one green thread per connection, written as plain blocking code.
//!
//! ```text
//! cargo run --release --example echo              # listens on 127.0.0.1:7007
//! cargo run --release --example echo -- 0.0.0.0:9000
//! nc 127.0.0.1 7007                               # type lines; they come back
//! ```
//!
//! Each connection's green thread loops on `read` and `write_all`. When a read would block,
//! weft parks that green thread on the reactor and the worker serves other connections.

use std::io::{Read, Write};

use weft::net::{TcpListener, TcpStream};

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

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7007".to_owned());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("echo: listening on {}", listener.local_addr()?);
    weft::run(move || loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                weft::spawn(move || match serve(stream) {
                    Ok(bytes) => eprintln!("echo: {peer} done, {bytes} bytes"),
                    Err(e) => eprintln!("echo: {peer}: {e}"),
                });
            }
            // Out of fds, or a connection reset before we took it: report and go on.
            Err(e) => {
                eprintln!("echo: accept: {e}");
                weft::sleep(std::time::Duration::from_millis(10));
            }
        }
    })
}
