//! Loopback echo throughput on TWO workers: 64-byte ping-pong over 1, 100 and 1,000
//! connections at once. Server and clients are green threads in one weft runtime; each
//! client sends 64 bytes, waits for them to come back, and repeats.
//!
//! `cargo bench --bench echo`. Criterion reports round trips per second ("elements"); the
//! time per element is the runtime's cost per round trip with that many connections busy.
//! The comparison with tokio and may (same client, same machine) belongs to the peers
//! benchmarks.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weft::net::{TcpListener, TcpStream};

const MESSAGE: usize = 64;

/// Starts an echo server with one green thread per connection; returns its address.
fn start_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local_addr");
    weft::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            weft::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn echo(c: &mut Criterion) {
    weft::Config::new()
        .workers(2)
        .apply()
        .expect("configure before the first spawn");
    let addr = start_server();
    let mut group = c.benchmark_group("echo_64B");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for conns in [1usize, 100, 1000] {
        let streams: Vec<TcpStream> = (0..conns)
            .map(|_| {
                let s = TcpStream::connect(addr).expect("connect");
                s.set_nodelay(true).expect("nodelay");
                s
            })
            .collect();
        group.bench_with_input(BenchmarkId::from_parameter(conns), &conns, |b, &conns| {
            b.iter_custom(|iters| {
                // Spread the round trips over the connections; all run at once.
                let per_conn = iters.div_ceil(conns as u64);
                let start = Instant::now();
                weft::scope(|s| {
                    for stream in &streams {
                        s.spawn(move || {
                            let mut out = [7u8; MESSAGE];
                            let mut back = [0u8; MESSAGE];
                            for i in 0..per_conn {
                                out[0] = i as u8;
                                (&*stream).write_all(&out).expect("write");
                                (&*stream).read_exact(&mut back).expect("read");
                                assert_eq!(back[0], i as u8);
                            }
                        });
                    }
                });
                // Normalise to the round trips actually made.
                start
                    .elapsed()
                    .mul_f64(iters as f64 / (per_conn * conns as u64) as f64)
            });
        });
    }
    group.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
