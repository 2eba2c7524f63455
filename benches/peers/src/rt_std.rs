//! std threads: one OS thread per task, std channels, blocking sockets.

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use crate::{http, per_op, report};

pub fn micro() {
    report(
        "yield",
        per_op(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                thread::yield_now();
            }
            start.elapsed()
        }),
    );
    report(
        "yield_10",
        per_op(|iters| {
            let each = iters.div_ceil(10);
            let start = Instant::now();
            thread::scope(|s| {
                for _ in 0..10 {
                    s.spawn(move || {
                        for _ in 0..each {
                            thread::yield_now();
                        }
                    });
                }
            });
            start.elapsed().mul_f64(iters as f64 / (each * 10) as f64)
        }),
    );
    report(
        "spawn_join",
        per_op(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                thread::spawn(|| ()).join().unwrap();
            }
            start.elapsed()
        }),
    );
    report(
        "file_read_4k",
        per_op(|iters| crate::time_file_reads(|path| std::fs::File::open(path), iters)),
    );
    report(
        "ping_pong",
        per_op(|iters| {
            let (ping_tx, ping_rx) = mpsc::channel::<u64>();
            let (pong_tx, pong_rx) = mpsc::channel::<u64>();
            let echo = thread::spawn(move || {
                for value in ping_rx.iter() {
                    pong_tx.send(value).unwrap();
                }
            });
            let start = Instant::now();
            for i in 0..iters {
                ping_tx.send(i).unwrap();
                pong_rx.recv().unwrap();
            }
            let took = start.elapsed();
            drop(ping_tx);
            echo.join().unwrap();
            took
        }),
    );
}

/// One OS thread per connection.
pub fn serve(addr: SocketAddr, http: bool) -> ! {
    let listener = TcpListener::bind(addr).expect("bind");
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        thread::spawn(move || {
            if http {
                http::http_blocking(stream)
            } else {
                http::echo_blocking(stream)
            }
        });
    }
    unreachable!("the accept loop ended")
}
