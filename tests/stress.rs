//! Reliability at scale: thousands of connections with every byte checked, a million
//! spawns and a hundred thousand cancels with nothing leaked, a hundred thousand timers of
//! which none fires early, and ten thousand panics after which the runtime still serves.
//! Each test runs in a child process of its own on 2 workers (fresh counters, its own fds).
//! `WEFT_STRESS=N` multiplies the work (see the README's "Stress runs").

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{child_stdout, is_child, line_with, rss_bytes, scaled, stress, watchdog};
use weft::net::{TcpListener, TcpStream};

/// Runs the child test `name` on 2 workers, with a watchdog that grows with `WEFT_STRESS`.
fn in_child(name: &'static str) -> String {
    let secs = 300 + 120 * stress() as u64;
    watchdog(secs, move || child_stdout(name, &[("WEFT_WORKERS", "2")]))
}

/// xorshift: reproducible sizes and contents without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// FNV-1a, continued over `bytes`.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ b as u64).wrapping_mul(0x100_0000_01b3);
    }
    hash
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

const CONNECTIONS: usize = 5_000;

#[test]
fn five_thousand_connections_exchange_fragments_byte_exact() {
    let out = in_child("connection_storm_child");
    let line = line_with(&out, "connection storm:");
    println!("{line}");
}

/// 5,000 connections open at once on 2 workers (10,000 sockets, under the 20,000 fd limit),
/// each sending random-sized fragments through an echo handler and checking, by length and
/// FNV hash, that what comes back is what went out. Handlers are spread by placement; reads
/// skip the `EAGAIN` try after a short read (epoll) or try `recv` first (io_uring), as they
/// do in production; CI runs it on both backends.
#[test]
#[ignore = "child process of five_thousand_connections_exchange_fragments_byte_exact"]
fn connection_storm_child() {
    if !is_child() {
        return;
    }
    weft::run(connection_storm::<weft::net::TcpListener>);
}

/// The same storm through std's `TcpListener` and `TcpStream`, which the `hooks` feature
/// makes park instead of blocking (`cargo test --features hooks --test stress std_`).
#[cfg(feature = "hooks")]
#[test]
fn std_connection_storm_through_the_hooks() {
    let out = in_child("std_connection_storm_child");
    println!("{}", line_with(&out, "connection storm:"));
}

#[cfg(feature = "hooks")]
#[test]
#[ignore = "child process of std_connection_storm_through_the_hooks"]
fn std_connection_storm_child() {
    if !is_child() {
        return;
    }
    weft::run(connection_storm::<std::net::TcpListener>);
}

/// What the storm needs of a listener and its streams: weft's and std's have the same API.
trait Net: Send + 'static {
    type Stream: Send + Sync + 'static;
    fn bind() -> Self;
    fn addr(&self) -> std::net::SocketAddr;
    fn accept(&self) -> Self::Stream;
    fn connect(addr: std::net::SocketAddr) -> Self::Stream;
    fn read(stream: &Self::Stream, buf: &mut [u8]) -> usize;
    fn write_all(stream: &Self::Stream, buf: &[u8]);
    fn shutdown_write(stream: &Self::Stream);
}

macro_rules! net {
    ($listener:ty, $stream:ty) => {
        impl Net for $listener {
            type Stream = $stream;
            fn bind() -> Self {
                <$listener>::bind("127.0.0.1:0").unwrap()
            }
            fn addr(&self) -> std::net::SocketAddr {
                self.local_addr().unwrap()
            }
            fn accept(&self) -> $stream {
                <$listener>::accept(self).unwrap().0
            }
            fn connect(addr: std::net::SocketAddr) -> $stream {
                <$stream>::connect(addr).unwrap()
            }
            fn read(mut stream: &$stream, buf: &mut [u8]) -> usize {
                stream.read(buf).unwrap()
            }
            fn write_all(mut stream: &$stream, buf: &[u8]) {
                stream.write_all(buf).unwrap()
            }
            fn shutdown_write(stream: &$stream) {
                stream.shutdown(Shutdown::Write).unwrap()
            }
        }
    };
}
net!(weft::net::TcpListener, weft::net::TcpStream);
#[cfg(feature = "hooks")]
net!(std::net::TcpListener, std::net::TcpStream);

fn connection_storm<N: Net>() {
    let per_connection = scaled(16 * 1024);
    let listener = N::bind();
    let addr = listener.addr();
    let server = weft::spawn(move || {
        let handlers: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let stream = listener.accept();
                weft::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let mut echoed = 0usize;
                    loop {
                        let n = N::read(&stream, &mut buf);
                        if n == 0 {
                            break;
                        }
                        N::write_all(&stream, &buf[..n]);
                        echoed += n;
                    }
                    N::shutdown_write(&stream);
                    echoed
                })
            })
            .collect();
        handlers
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    });
    // Connect in waves (the listen backlog), and hold every connection until all are
    // open: the exchange then runs on 5,000 connections at once.
    let connected = Arc::new(AtomicUsize::new(0));
    let all_open = Arc::new(weft::sync::Barrier::new(CONNECTIONS));
    let mut clients = Vec::with_capacity(CONNECTIONS);
    for wave in 0..CONNECTIONS / 500 {
        for i in wave * 500..(wave + 1) * 500 {
            let (connected, all_open) = (connected.clone(), all_open.clone());
            clients.push(weft::spawn(move || {
                let stream = Arc::new(N::connect(addr));
                connected.fetch_add(1, Ordering::SeqCst);
                all_open.wait();
                client::<N>(i, stream, per_connection)
            }));
        }
        while connected.load(Ordering::SeqCst) < (wave + 1) * 500 {
            weft::sleep(Duration::from_millis(1));
        }
    }
    let homed: Vec<usize> = weft::stats().per_worker.iter().map(|w| w.homed).collect();
    let mut fragments = 0;
    for c in clients {
        fragments += c.join().unwrap();
    }
    let echoed = server.join().unwrap();
    assert_eq!(
        echoed,
        CONNECTIONS * per_connection,
        "the server echoed too little"
    );
    println!(
        "connection storm: {CONNECTIONS} connections at once ({}), {per_connection} bytes \
         each way on each ({} MB in all), {fragments} fragments, every byte right; green \
         threads homed per worker at the peak {homed:?}, backend {}",
        std::any::type_name::<N>(),
        2 * echoed / 1_000_000,
        weft::stats().io_backend
    );
}

/// One client: a writer green thread sends `total` bytes in random fragments of 1 to 4,096
/// bytes while this one reads the echo; returns the fragments sent.
fn client<N: Net>(i: usize, stream: Arc<N::Stream>, total: usize) -> usize {
    let writer = weft::spawn({
        let stream = stream.clone();
        move || {
            let mut rng = i as u64 * 7919 + 1;
            let mut hash = FNV_START;
            let (mut sent, mut fragments) = (0, 0);
            let mut buf = vec![0u8; 4096];
            while sent < total {
                let len = ((next(&mut rng) % 4096) as usize + 1).min(total - sent);
                for b in &mut buf[..len] {
                    *b = next(&mut rng) as u8;
                }
                N::write_all(&stream, &buf[..len]);
                hash = fnv(hash, &buf[..len]);
                sent += len;
                fragments += 1;
            }
            N::shutdown_write(&stream);
            (hash, fragments)
        }
    });
    let mut hash = FNV_START;
    let mut received = 0;
    let mut buf = [0u8; 8192];
    loop {
        let n = N::read(&stream, &mut buf);
        if n == 0 {
            break;
        }
        hash = fnv(hash, &buf[..n]);
        received += n;
    }
    let (sent_hash, fragments) = writer.join().unwrap();
    assert_eq!(received, total, "connection {i}: bytes lost or added");
    assert_eq!(
        hash, sent_hash,
        "connection {i}: bytes corrupted or reordered"
    );
    fragments
}

/// How much RSS may grow between the warm-up and the end of a run: a leak of 8 bytes per
/// green thread over a million spawns would show.
const RSS_SLACK: usize = 8 << 20;

#[test]
fn a_million_spawns_and_joins_leak_nothing() {
    let out = in_child("spawn_join_leak_child");
    println!("{}", line_with(&out, "spawn/join:"));
    assert!(out.contains("live after run: 0"), "{out}");
}

#[test]
#[ignore = "child process of a_million_spawns_and_joins_leak_nothing"]
fn spawn_join_leak_child() {
    if !is_child() {
        return;
    }
    let n = scaled(1_000_000);
    weft::run(move || {
        // Batches of 1,000, so that the green threads run on both workers at once.
        let batches = |count: usize| {
            for _ in 0..count / 1000 {
                let handles: Vec<_> = (0..1000).map(|i| weft::spawn(move || i * 2)).collect();
                for (i, h) in handles.into_iter().enumerate() {
                    assert_eq!(h.join().unwrap(), i * 2);
                }
            }
        };
        batches(100_000); // warm-up: stack caches, queues, the allocator's arenas
        let warm = rss_bytes();
        let spawned = weft::stats().spawned;
        batches(n);
        let after = rss_bytes();
        assert!(weft::stats().spawned - spawned >= n as u64);
        assert!(
            after <= warm + RSS_SLACK,
            "RSS grew from {warm} to {after} bytes over {n} spawns"
        );
        println!(
            "spawn/join: {n} green threads spawned and joined; RSS {} KiB after the warm-up, \
             {} KiB after",
            warm >> 10,
            after >> 10
        );
    });
    println!("live after run: {}", weft::stats().live);
}

#[test]
fn a_hundred_thousand_cancels_leak_nothing() {
    let out = in_child("cancel_leak_child");
    println!("{}", line_with(&out, "cancels:"));
    assert!(out.contains("live after run: 0"), "{out}");
}

#[test]
#[ignore = "child process of a_hundred_thousand_cancels_leak_nothing"]
fn cancel_leak_child() {
    if !is_child() {
        return;
    }
    let n = scaled(100_000);
    let dropped = Arc::new(AtomicUsize::new(0));
    weft::run({
        let dropped = dropped.clone();
        move || {
            struct Counted(Arc<AtomicUsize>);
            impl Drop for Counted {
                fn drop(&mut self) {
                    self.0.fetch_add(1, Ordering::Relaxed);
                }
            }
            let batches = |count: usize| {
                for _ in 0..count / 1000 {
                    let started = Arc::new(AtomicUsize::new(0));
                    let handles: Vec<_> = (0..1000)
                        .map(|_| {
                            let (started, dropped) = (started.clone(), dropped.clone());
                            weft::spawn(move || {
                                let _counted = Counted(dropped);
                                started.fetch_add(1, Ordering::SeqCst);
                                loop {
                                    weft::park();
                                }
                            })
                        })
                        .collect();
                    while started.load(Ordering::SeqCst) < 1000 {
                        weft::yield_now();
                    }
                    for h in &handles {
                        h.cancel();
                    }
                    for h in handles {
                        assert!(h.join().unwrap_err().is::<weft::Cancelled>());
                    }
                }
            };
            batches(10_000);
            let warm = rss_bytes();
            batches(n);
            let after = rss_bytes();
            assert!(
                after <= warm + RSS_SLACK,
                "RSS grew from {warm} to {after} bytes over {n} cancels"
            );
            println!(
                "cancels: {n} parked green threads cancelled and joined, every destructor \
                 run; RSS {} KiB after the warm-up, {} KiB after",
                warm >> 10,
                after >> 10
            );
        }
    });
    assert_eq!(dropped.load(Ordering::Relaxed), n + 10_000);
    println!("live after run: {}", weft::stats().live);
}

#[test]
fn a_hundred_thousand_timers_fire_none_early() {
    let out = in_child("timers_child");
    println!("{}", line_with(&out, "timers:"));
}

/// 100,000 green threads at once, half sleeping and half waiting under `weft::timeout` for
/// a message that never comes, each with a random deadline up to 200 ms: every one fires,
/// and none before its deadline.
#[test]
#[ignore = "child process of a_hundred_thousand_timers_fire_none_early"]
fn timers_child() {
    if !is_child() {
        return;
    }
    const TIMERS: usize = 100_000;
    weft::run(|| {
        let (_never_tx, never) = weft::chan::unbounded::<()>();
        let mut latest_late = Duration::ZERO;
        for round in 0..stress() {
            let fired = Arc::new(AtomicUsize::new(0));
            let mut rng = round as u64 + 3;
            let handles: Vec<_> = (0..TIMERS)
                .map(|i| {
                    let wait = Duration::from_micros(next(&mut rng) % 200_000);
                    let (fired, never) = (fired.clone(), never.clone());
                    weft::spawn(move || {
                        let start = Instant::now();
                        if i % 2 == 0 {
                            weft::sleep(wait);
                        } else {
                            assert!(weft::timeout(wait, || never.recv()).is_err());
                        }
                        let took = start.elapsed();
                        assert!(took >= wait, "a timer of {wait:?} fired after {took:?}");
                        fired.fetch_add(1, Ordering::Relaxed);
                        took - wait
                    })
                })
                .collect();
            for h in handles {
                latest_late = latest_late.max(h.join().unwrap());
            }
            assert_eq!(fired.load(Ordering::Relaxed), TIMERS);
        }
        println!(
            "timers: {} sleeps and timeouts of up to 200 ms, all fired, none early; the \
             latest fired {latest_late:?} after its deadline",
            TIMERS * stress()
        );
    });
}

#[test]
fn ten_thousand_panics_leave_the_runtime_serving() {
    let out = in_child("panics_child");
    println!("{}", line_with(&out, "panics:"));
}

#[test]
#[ignore = "child process of ten_thousand_panics_leave_the_runtime_serving"]
fn panics_child() {
    if !is_child() {
        return;
    }
    // The default hook would print 10,000 messages; the payloads are checked instead.
    std::panic::set_hook(Box::new(|_| {}));
    let n = scaled(10_000);
    weft::run(move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let handles: Vec<_> = (0..n)
            .map(|i| {
                weft::spawn(move || {
                    if i % 3 == 0 {
                        weft::yield_now();
                    }
                    if i % 2 == 0 {
                        panic!("green thread {i} panics");
                    }
                    std::panic::panic_any(i);
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let payload = h.join().unwrap_err();
            if i % 2 == 0 {
                assert_eq!(
                    payload.downcast_ref::<String>().unwrap(),
                    &format!("green thread {i} panics")
                );
            } else {
                assert_eq!(*payload.downcast_ref::<usize>().unwrap(), i);
            }
        }
        // Still serving: a round trip through the reactor on both workers.
        let server = weft::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            stream.read_exact(&mut buf).unwrap();
            stream.write_all(&buf).unwrap();
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.write_all(b"alive").unwrap();
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).unwrap();
        server.join().unwrap();
        assert_eq!(&buf, b"alive");
        println!("panics: {n} green threads panicked (string and non-string payloads), each payload reached join, then a round trip was served");
    });
}
