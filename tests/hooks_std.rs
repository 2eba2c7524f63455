//! With the `hooks` feature: std's blocking calls park green threads instead of blocking
//! their worker. (`cargo test --features hooks`; without the feature this file is empty.)
#![cfg(feature = "hooks")]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::Ticker;

#[test]
fn std_thread_sleep_no_longer_blocks_the_worker() {
    common::workers(1);
    let ticks = common::watchdog(60, || {
        weft::run(|| {
            let ticker = Ticker::start();
            let ((), ticks) = ticker.during(|| std::thread::sleep(Duration::from_millis(300)));
            ticks
        })
    });
    assert!(
        ticks >= 30,
        "the ticker ticked {ticks} times during a 300 ms std sleep"
    );
}

#[test]
fn std_net_echo_with_1000_connections_on_2_workers() {
    common::workers(2);
    common::watchdog(120, || {
        weft::run(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = weft::spawn(move || {
                let mut handlers = Vec::new();
                for _ in 0..1000 {
                    let (mut stream, _) = listener.accept().unwrap();
                    handlers.push(weft::spawn(move || {
                        let mut buf = [0u8; 4096];
                        loop {
                            match stream.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => stream.write_all(&buf[..n]).unwrap(),
                                Err(e) => panic!("server read: {e}"),
                            }
                        }
                    }));
                }
                for h in handlers {
                    h.join().unwrap();
                }
            });
            let clients: Vec<_> = (0..1000u32)
                .map(|i| {
                    weft::spawn(move || {
                        let mut stream = std::net::TcpStream::connect(addr).unwrap();
                        let message: Vec<u8> = (0..1000u32).map(|j| (i ^ j) as u8).collect();
                        stream.write_all(&message).unwrap();
                        let mut back = vec![0u8; message.len()];
                        stream.read_exact(&mut back).unwrap();
                        assert_eq!(back, message);
                    })
                })
                .collect();
            for c in clients {
                c.join().unwrap();
            }
            server.join().unwrap();
        })
    });
}

#[test]
fn pass_through_on_plain_threads_nonblocking_fds_and_files() {
    common::workers(2);
    // A plain thread: std blocking IO as ever.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut b = [0u8; 5];
        s.read_exact(&mut b).unwrap();
        b
    });
    std::net::TcpStream::connect(addr)
        .unwrap()
        .write_all(b"plain")
        .unwrap();
    assert_eq!(&t.join().unwrap(), b"plain");
    common::watchdog(60, || {
        weft::run(|| {
            // A socket the caller made non-blocking: WouldBlock, as without hooks.
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            assert_eq!(
                listener.accept().unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock
            );
            // A read timeout still times out (WouldBlock, std's report on Linux).
            let l2 = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let c = std::net::TcpStream::connect(l2.local_addr().unwrap()).unwrap();
            c.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut buf = [0u8; 4];
            assert_eq!(
                (&c).read(&mut buf).unwrap_err().kind(),
                std::io::ErrorKind::WouldBlock
            );
            // Regular files through std, in a green thread.
            let path = std::env::temp_dir().join(format!("weft-hooks-{}", std::process::id()));
            std::fs::write(&path, b"file contents").unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"file contents");
            std::fs::remove_file(&path).unwrap();
            // Host names through std resolve (on the pool).
            use std::net::ToSocketAddrs;
            assert!(("localhost", 80)
                .to_socket_addrs()
                .unwrap()
                .next()
                .is_some());
        })
    });
}

#[test]
fn cancels_and_timeouts_inside_hooked_calls_surface_without_aborting() {
    // A hooked call must never unwind into its C caller: the interrupt comes back as an
    // error from the call, and unwinds at the next weft blocking point.
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (_server, _) = listener.accept().unwrap();
            // A read with no data, inside a timeout.
            let outcome = weft::timeout(Duration::from_millis(30), || {
                let mut buf = [0u8; 8];
                let read = (&client).read(&mut buf);
                let err = read.expect_err("no data was sent");
                assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
                weft::yield_now(); // a weft blocking point: the deadline unwinds here
                "not reached"
            });
            assert_eq!(outcome, Err(weft::Elapsed::new()));
            // A std sleep, cancelled: it returns early, and the cancel takes effect after.
            let sleeper = weft::spawn(|| {
                std::thread::sleep(Duration::from_secs(3600));
                weft::yield_now();
            });
            weft::sleep(Duration::from_millis(20));
            sleeper.cancel();
            assert!(sleeper.join().unwrap_err().is::<weft::Cancelled>());
        })
    });
}

/// Through the hooks: a std socket or pipe closed with readiness pending, whose fd number
/// the next one reuses, never hands the new one's reader the old one's events or data, and
/// the reader waits for its own bytes (the hooks register fds lazily and must drop a closed
/// fd's registration before the number comes back).
#[test]
fn reused_fd_numbers_through_the_hooks_never_inherit_old_events() {
    use std::os::fd::AsRawFd;
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let rounds = common::scaled(200);
            let (mut reused, mut pipes_reused) = (0, 0);
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            for round in 0..rounds {
                // Sockets.
                let old = std::net::TcpStream::connect(addr).unwrap();
                let (old_peer, _) = listener.accept().unwrap();
                (&old_peer).write_all(b"old").unwrap();
                let mut byte = [0u8; 1];
                (&old).read_exact(&mut byte).unwrap();
                let fd = old.as_raw_fd();
                drop((old, old_peer));
                let new = std::net::TcpStream::connect(addr).unwrap();
                let (new_peer, _) = listener.accept().unwrap();
                reused += usize::from(common::reused_fd_round(round, fd, new, new_peer));

                // Pipes.
                let (old, old_writer) = std::io::pipe().unwrap();
                (&old_writer).write_all(b"old").unwrap();
                (&old).read_exact(&mut byte).unwrap();
                let fd = old.as_raw_fd();
                drop((old, old_writer));
                let (new, new_writer) = std::io::pipe().unwrap();
                pipes_reused += usize::from(common::reused_fd_round(round, fd, new, new_writer));
            }
            assert!(
                reused > rounds / 2,
                "socket fds were reused in only {reused} rounds"
            );
            assert!(
                pipes_reused > rounds / 2,
                "pipe fds were reused in only {pipes_reused} rounds"
            );
        })
    });
}
