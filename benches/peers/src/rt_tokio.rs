//! tokio, with either scheduler: current_thread (everything on the calling thread) or
//! multi_thread with `PEERS_WORKERS` workers. Every scenario runs in a spawned task, not in
//! `block_on`, so multi_thread measures its workers.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::{Builder, Runtime};
use tokio::sync::mpsc;

use crate::{http, per_op, report};

#[derive(Clone, Copy)]
pub enum Flavor {
    CurrentThread,
    MultiThread,
}

fn runtime(flavor: Flavor) -> Runtime {
    match flavor {
        Flavor::CurrentThread => Builder::new_current_thread(),
        Flavor::MultiThread => {
            let mut b = Builder::new_multi_thread();
            b.worker_threads(crate::server_workers());
            b
        }
    }
    .enable_io()
    .build()
    .expect("tokio runtime")
}

fn inside<F>(rt: &Runtime, future: F) -> Duration
where
    F: Future<Output = Duration> + Send + 'static,
{
    rt.block_on(rt.spawn(future)).unwrap()
}

pub fn micro(flavor: Flavor) {
    let rt = runtime(flavor);
    report(
        "yield",
        per_op(|iters| {
            inside(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::task::yield_now().await;
                }
                start.elapsed()
            })
        }),
    );
    report(
        "yield_10",
        per_op(|iters| {
            inside(&rt, async move {
                let each = iters.div_ceil(10);
                let start = Instant::now();
                let tasks: Vec<_> = (0..10)
                    .map(|_| {
                        tokio::spawn(async move {
                            for _ in 0..each {
                                tokio::task::yield_now().await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed().mul_f64(iters as f64 / (each * 10) as f64)
            })
        }),
    );
    report(
        "spawn_join",
        per_op(|iters| {
            inside(&rt, async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::spawn(async {}).await.unwrap();
                }
                start.elapsed()
            })
        }),
    );
    report(
        "file_read_4k",
        per_op(|iters| {
            inside(&rt, async move {
                use tokio::io::AsyncSeekExt;
                let path = crate::cached_file();
                let mut file = tokio::fs::File::open(&path).await.unwrap();
                let mut buf = [0u8; 4096];
                let start = Instant::now();
                for i in 0..iters {
                    if i % 256 == 0 {
                        file.seek(std::io::SeekFrom::Start(0)).await.unwrap();
                    }
                    file.read_exact(&mut buf).await.unwrap();
                }
                let took = start.elapsed();
                std::fs::remove_file(path).unwrap();
                took
            })
        }),
    );
    report(
        "ping_pong",
        per_op(|iters| {
            inside(&rt, async move {
                let (ping_tx, mut ping_rx) = mpsc::unbounded_channel::<u64>();
                let (pong_tx, mut pong_rx) = mpsc::unbounded_channel::<u64>();
                let echo = tokio::spawn(async move {
                    while let Some(value) = ping_rx.recv().await {
                        pong_tx.send(value).unwrap();
                    }
                });
                let start = Instant::now();
                for i in 0..iters {
                    ping_tx.send(i).unwrap();
                    pong_rx.recv().await.unwrap();
                }
                let took = start.elapsed();
                drop(ping_tx);
                echo.await.unwrap();
                took
            })
        }),
    );
}

async fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; http::BUF];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stream.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The same loop as `http::http_blocking`, awaiting instead of blocking.
async fn hello(mut stream: TcpStream) {
    let mut input = [0u8; http::BUF];
    let mut len = 0;
    let mut out = Vec::with_capacity(http::BUF);
    loop {
        if len == input.len() {
            return;
        }
        match stream.read(&mut input[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => len += n,
        }
        let Some(used) = http::answer(&input[..len], &mut out) else {
            return;
        };
        input.copy_within(used..len, 0);
        len -= used;
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

/// One task per connection, spawned by an accept-loop task.
pub fn serve(flavor: Flavor, addr: SocketAddr, http: bool) -> ! {
    let rt = runtime(flavor);
    let accept = async move {
        let listener = TcpListener::bind(addr).await.expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            if http {
                tokio::spawn(hello(stream));
            } else {
                tokio::spawn(echo(stream));
            }
        }
    };
    rt.block_on(rt.spawn(accept)).unwrap()
}
