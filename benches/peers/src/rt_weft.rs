//! weft: micro scenarios on one worker, servers on `PEERS_WORKERS` workers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weft::chan;
use weft::net::TcpListener;

use crate::{http, per_op, report};

/// Runs `body(iters)` in a green thread and returns what it measured.
fn inside(iters: u64, body: fn(u64) -> Duration) -> Duration {
    weft::run(move || body(iters))
}

pub fn micro() {
    weft::Config::new()
        .workers(1)
        .apply()
        .expect("configure weft");
    report(
        "yield",
        per_op(|iters| {
            inside(iters, |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    weft::yield_now();
                }
                start.elapsed()
            })
        }),
    );
    report(
        "yield_10",
        per_op(|iters| {
            inside(iters, |iters| {
                let each = iters.div_ceil(10);
                let start = Instant::now();
                weft::scope(|s| {
                    for _ in 0..10 {
                        s.spawn(move || {
                            for _ in 0..each {
                                weft::yield_now();
                            }
                        });
                    }
                });
                start.elapsed().mul_f64(iters as f64 / (each * 10) as f64)
            })
        }),
    );
    report(
        "spawn_join",
        per_op(|iters| {
            inside(iters, |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    weft::spawn(|| ()).join().unwrap();
                }
                start.elapsed()
            })
        }),
    );
    report(
        "file_read_4k",
        per_op(|iters| {
            inside(iters, |iters| {
                crate::time_file_reads(|path| weft::fs::File::open(path), iters)
            })
        }),
    );
    report(
        "ping_pong",
        per_op(|iters| {
            inside(iters, |iters| {
                let (ping_tx, ping_rx) = chan::unbounded::<u64>();
                let (pong_tx, pong_rx) = chan::unbounded::<u64>();
                let echo = weft::spawn(move || {
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
            })
        }),
    );
}

/// One green thread per connection, spawned by a green accept loop.
pub fn serve(addr: SocketAddr, http: bool) -> ! {
    weft::Config::new()
        .workers(crate::server_workers())
        .apply()
        .expect("configure weft");
    let listener = TcpListener::bind(addr).expect("bind");
    weft::run(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            weft::spawn(move || {
                if http {
                    http::http_blocking(stream)
                } else {
                    http::echo_blocking(stream)
                }
            });
        }
    });
    unreachable!("the accept loop ended")
}
