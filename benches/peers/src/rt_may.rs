//! may: micro scenarios on one worker, servers on `PEERS_WORKERS` workers. may's `go!` is
//! `unsafe` inside (coroutines may migrate between threads); these closures touch no
//! thread-locals, which is what that contract asks.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use may::go;
use may::net::TcpListener;
use may::sync::mpsc;

use crate::{http, per_op, report};

fn inside(iters: u64, body: fn(u64) -> Duration) -> Duration {
    go!(move || body(iters)).join().unwrap()
}

pub fn micro() {
    may::config().set_workers(1);
    report(
        "yield",
        per_op(|iters| {
            inside(iters, |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    may::coroutine::yield_now();
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
                let handles: Vec<_> = (0..10)
                    .map(|_| {
                        go!(move || {
                            for _ in 0..each {
                                may::coroutine::yield_now();
                            }
                        })
                    })
                    .collect();
                for h in handles {
                    h.join().unwrap();
                }
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
                    go!(|| ()).join().unwrap();
                }
                start.elapsed()
            })
        }),
    );
    report(
        "ping_pong",
        per_op(|iters| {
            inside(iters, |iters| {
                let (ping_tx, ping_rx) = mpsc::channel::<u64>();
                let (pong_tx, pong_rx) = mpsc::channel::<u64>();
                let echo = go!(move || {
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

/// One coroutine per connection, spawned by an accept-loop coroutine.
pub fn serve(addr: SocketAddr, http: bool) -> ! {
    may::config().set_workers(crate::server_workers());
    let listener = TcpListener::bind(addr).expect("bind");
    go!(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_nodelay(true);
            go!(move || {
                if http {
                    http::http_blocking(stream)
                } else {
                    http::echo_blocking(stream)
                }
            });
        }
    })
    .join()
    .unwrap();
    unreachable!("the accept loop ended")
}

/// may_minihttp's own server with its hello-world service: the HTTP reference point.
pub fn serve_minihttp(addr: SocketAddr) -> ! {
    use may_minihttp::{HttpServer, HttpService, Request, Response};

    #[derive(Clone)]
    struct Hello;
    impl HttpService for Hello {
        fn call(&mut self, _request: Request, response: &mut Response) -> std::io::Result<()> {
            response.body("Hello, world!");
            Ok(())
        }
    }
    may::config().set_workers(crate::server_workers());
    HttpServer(Hello).start(addr).expect("bind").join().unwrap();
    unreachable!("the server ended")
}
