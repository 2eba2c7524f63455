//! With the `hooks` feature: unmodified third-party synchronous clients in green threads.
//! `ureq` against a weft server in the same process used to hang the process for ever (the
//! accept loop it waited for was homed on the worker its `recv` blocked).
#![cfg(feature = "hooks")]

mod common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tiny HTTP/1.1 server on weft::net: "hello" for every request, then close.
fn http_server() -> std::net::SocketAddr {
    let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    weft::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            weft::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
                );
            });
        }
    });
    addr
}

#[test]
fn ureq_in_green_threads_against_a_weft_server_in_the_same_process() {
    common::workers(1);
    let (ureq_time, weft_time) = common::watchdog(120, || {
        weft::run(|| {
            let addr = http_server();
            let url = format!("http://{addr}/");
            let start = Instant::now();
            let requests: Vec<_> = (0..200)
                .map(|_| {
                    let url = url.clone();
                    weft::spawn(move || ureq::get(&url).call().unwrap().into_string().unwrap())
                })
                .collect();
            for r in requests {
                assert_eq!(r.join().unwrap(), "hello");
            }
            let ureq_time = start.elapsed();
            // The same 200 requests with weft::net clients, for comparison.
            let start = Instant::now();
            let requests: Vec<_> = (0..200)
                .map(|_| {
                    weft::spawn(move || {
                        let mut s = weft::net::TcpStream::connect(addr).unwrap();
                        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
                        let mut reply = String::new();
                        s.read_to_string(&mut reply).unwrap();
                        assert!(reply.ends_with("hello"));
                    })
                })
                .collect();
            for r in requests {
                r.join().unwrap();
            }
            (ureq_time, start.elapsed())
        })
    });
    println!("200 requests: ureq {ureq_time:?}, weft::net {weft_time:?}");
}

struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<(RedisServer, u16)> {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(child) => RedisServer(child),
        Err(e) => {
            eprintln!("SKIPPED: redis-server could not be started ({e}); .ci/run installs it");
            return None;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not start listening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, port))
}

#[test]
fn redis_sync_client_100_green_threads_on_one_worker() {
    common::workers(1);
    let Some((_server, port)) = start_redis() else {
        return;
    };
    common::watchdog(120, move || {
        weft::run(move || {
            let clients: Vec<_> = (0..100u32)
                .map(|i| {
                    weft::spawn(move || {
                        let client =
                            redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                        let mut con = client.get_connection().unwrap();
                        for round in 0..10u32 {
                            let key = format!("weft:{i}:{round}");
                            let _: () = redis::cmd("SET")
                                .arg(&key)
                                .arg(i * round)
                                .query(&mut con)
                                .unwrap();
                            let value: u32 = redis::cmd("GET").arg(&key).query(&mut con).unwrap();
                            assert_eq!(value, i * round);
                        }
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
        })
    });
}
