//! Scaling past one process: N processes share one port with `SO_REUSEPORT`, and the
//! kernel spreads incoming connections between their listeners. Each process is an
//! ordinary weft server with its own workers; nothing is shared but the port. The answer
//! says which process served it.
//!
//! ```text
//! cargo run --release --example reuseport -- [PORT [WORKERS [PROCESSES]]]
//! cargo run --release --example reuseport -- 8080 1 4    # 4 processes of 1 worker each
//! for i in $(seq 8); do curl -s http://127.0.0.1:8080/; done
//! ```
//!
//! The first process binds first (so port 0 works), starts the others with the port it
//! got, and announces the port once every process is listening. The others exit when the
//! first one does (they watch a pipe from it), so stopping it stops them all.

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use weft::net::TcpListener;

const USAGE: &str = "reuseport [PORT [WORKERS [PROCESSES]]]";
/// Set in the processes the first one starts.
const CHILD: &str = "WEFT_REUSEPORT_CHILD";

fn main() {
    let args = common::args(8080, USAGE);
    let listener = TcpListener::bind_with(&args.addr, |socket| socket.set_reuse_port(true))
        .unwrap_or_else(|e| {
            eprintln!("reuseport: cannot listen on {}: {e}", args.addr);
            std::process::exit(1)
        });
    let addr = listener.local_addr().unwrap();
    let _others: Vec<Child>;
    if std::env::var_os(CHILD).is_some() {
        // Ready: tell the first process, then leave when it goes away (its end of our
        // stdin closes).
        println!("ready");
        std::thread::spawn(|| {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            std::process::exit(0)
        });
        _others = Vec::new();
    } else {
        let processes: usize = match args.rest.first() {
            None => 2,
            Some(n) => n.parse().ok().filter(|&n| n >= 1).unwrap_or_else(|| {
                eprintln!("PROCESSES must be a number from 1\nusage: {USAGE}");
                std::process::exit(2)
            }),
        };
        let workers = args.workers.map_or("-".to_owned(), |n| n.to_string());
        _others = (1..processes)
            .map(|_| start_another(&addr.to_string(), &workers))
            .collect();
        common::announce("reuseport", addr);
        println!("reuseport: {processes} processes share the port");
    }
    let pid = std::process::id();
    weft::run(move || {
        common::serve_forever(&listener, move |mut stream, _| {
            // Read the request head (any bytes up to a blank line), answer, close.
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") && seen.len() < 16 * 1024 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let body = format!("served by process {pid}\n");
            // One write (the whole answer), then a lingering close (see common::lingering_close).
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
            common::lingering_close(&stream);
        })
    })
}

/// Starts another process of this program on the same address and waits until it listens.
fn start_another(addr: &str, workers: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args([addr, workers])
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            eprintln!("reuseport: cannot start another process: {e}");
            std::process::exit(1)
        });
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    if BufReader::new(stdout).read_line(&mut line).is_err() || line.trim() != "ready" {
        eprintln!("reuseport: process {} did not start", child.id());
        let _ = child.kill();
        std::process::exit(1);
    }
    child
}
