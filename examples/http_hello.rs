//! An HTTP/1.1 keep-alive server: one green thread per connection, written as plain
//! blocking code, with `httparse` for parsing (see `examples/common/http.rs` for what it
//! answers: `GET /`, `GET /files/NAME`, `POST /echo`, pipelining, 400 on garbage).
//!
//! ```text
//! cargo run --release --example http_hello -- [PORT [WORKERS [DIR]]] [--std-threads]
//! cargo run --release --example http_hello                # 127.0.0.1:8080, files from .
//! curl -i http://127.0.0.1:8080/                          # Hello, World!
//! curl -i http://127.0.0.1:8080/files/Cargo.toml          # a file, read with weft::fs
//! wrk -t2 -c256 -d10s http://127.0.0.1:8080/
//! ab -k -c100 -n50000 http://127.0.0.1:8080/
//! ```
//!
//! `PORT` may be `HOST:PORT`, and 0 picks a free port (printed on the first line);
//! `WORKERS` defaults to one per CPU; `DIR` is where `/files/` reads from (default `.`).
//! `--std-threads` serves the same code with `std::net` and one OS thread per connection,
//! for comparing the two under the same client.

#[path = "common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::http;
use weft::net::TcpStream;

const USAGE: &str = "http_hello [PORT [WORKERS [DIR]]] [--std-threads]";

fn main() {
    let std_threads = std::env::args().any(|a| a == "--std-threads");
    let args = common::args(8080, USAGE);
    let files: Arc<Path> = PathBuf::from(args.rest.first().map_or(".", |d| d.as_str())).into();
    if std_threads {
        serve_with_std_threads(&args.addr, files);
    }
    let listener = common::listen("http_hello", &args.addr);
    weft::run(move || {
        common::serve_forever(&listener, move |stream, _peer| connection(stream, &files))
    })
}

/// One connection's green thread.
fn connection(mut stream: TcpStream, files: &Path) {
    // Responses go out whole, one write per batch: Nagle would only delay them.
    let _ = stream.set_nodelay(true);
    if let Err(e) = http::serve(&mut stream, files) {
        if !matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ) {
            eprintln!("http_hello: {e}");
        }
    }
    common::lingering_close(&stream);
}

/// The comparison server: the same request loop on std's blocking sockets, one OS thread
/// per connection.
fn serve_with_std_threads(addr: &str, files: Arc<Path>) -> ! {
    let listener = std::net::TcpListener::bind(addr).unwrap_or_else(|e| {
        eprintln!("http_hello: cannot listen on {addr}: {e}");
        std::process::exit(1)
    });
    common::announce("http_hello (std threads)", listener.local_addr().unwrap());
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let files = files.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    let _ = http::serve(&mut stream, &files);
                });
            }
            Err(e) => {
                eprintln!("accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
