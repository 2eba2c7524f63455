//! TCP through the reactor: echo, shared streams, errors, timeouts, plain vs green threads.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use weft::net::{TcpListener, TcpStream};

/// An echo server on loopback that serves `conns` connections, one green thread each.
fn echo_server(conns: usize) -> (SocketAddr, weft::JoinHandle<std::io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = weft::spawn(move || {
        let mut handlers = Vec::new();
        for _ in 0..conns {
            let (mut stream, _) = listener.accept()?;
            handlers.push(weft::spawn(move || -> std::io::Result<u64> {
                let mut buf = vec![0u8; 16 * 1024];
                let mut total = 0;
                loop {
                    let n = stream.read(&mut buf)?;
                    if n == 0 {
                        return Ok(total);
                    }
                    stream.write_all(&buf[..n])?;
                    total += n as u64;
                }
            }));
        }
        for h in handlers {
            h.join().unwrap()?;
        }
        Ok(())
    });
    (addr, server)
}

#[test]
fn echo_round_trip_from_a_green_thread() {
    common::workers(2);
    common::watchdog(60, || {
        let (addr, server) = echo_server(1);
        let client = weft::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.write_all(b"hello weft").unwrap();
            let mut buf = [0u8; 10];
            stream.read_exact(&mut buf).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            // The server saw end of file and closed: a read after the peer's close is 0.
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).unwrap();
            (buf, rest.len())
        });
        assert_eq!(client.join().unwrap(), (*b"hello weft", 0));
        server.join().unwrap().unwrap();
    });
}

/// One function, run in a plain thread and in a green thread, against the same kind of
/// server: the types block the thread or park the green thread as appropriate.
fn talk(addr: SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(message).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    reply
}

#[test]
fn same_code_runs_in_a_plain_thread_and_a_green_thread() {
    common::workers(2);
    common::watchdog(60, || {
        let (addr, server) = echo_server(2);
        let plain = std::thread::spawn(move || talk(addr, b"from a plain thread"));
        let green = weft::spawn(move || talk(addr, b"from a green thread"));
        assert!(!weft::is_coroutine());
        assert_eq!(plain.join().unwrap(), b"from a plain thread");
        assert_eq!(green.join().unwrap(), b"from a green thread");
        server.join().unwrap().unwrap();
    });
}

#[test]
fn a_reader_and_a_writer_share_one_stream() {
    common::workers(2);
    common::watchdog(60, || {
        let (addr, server) = echo_server(1);
        const TOTAL: usize = 8 << 20; // far beyond the socket buffers: both sides must block
        let received = weft::run(move || {
            let stream = TcpStream::connect(addr).unwrap();
            weft::scope(|s| {
                let writer = s.spawn(|| {
                    let chunk: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
                    let mut sent = 0;
                    while sent < TOTAL {
                        (&stream).write_all(&chunk).unwrap();
                        sent += chunk.len();
                    }
                    stream.shutdown(Shutdown::Write).unwrap();
                });
                let reader = s.spawn(|| {
                    let mut buf = vec![0u8; 32 * 1024];
                    let mut received = 0usize;
                    loop {
                        let n = (&stream).read(&mut buf).unwrap();
                        if n == 0 {
                            return received;
                        }
                        for (i, &b) in buf[..n].iter().enumerate() {
                            assert_eq!(b, ((received + i) % 65_536 % 251) as u8);
                        }
                        received += n;
                    }
                });
                writer.join().unwrap();
                reader.join().unwrap()
            })
        });
        assert_eq!(received, TOTAL);
        server.join().unwrap().unwrap();
    });
}

#[test]
fn connection_refused_is_reported_as_such() {
    common::workers(2);
    // Bind then drop a listener: its port is closed now.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let green = weft::spawn(move || TcpStream::connect(addr).map(drop));
    let err = common::watchdog(60, move || green.join().unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let plain = TcpStream::connect(addr).map(drop).unwrap_err();
    assert_eq!(plain.kind(), ErrorKind::ConnectionRefused);
}

#[test]
fn address_in_use_and_bad_addresses_are_errors() {
    common::workers(2);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(
        TcpListener::bind(addr).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    assert_eq!(
        TcpStream::connect("not an address").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let empty: &[SocketAddr] = &[];
    assert_eq!(
        TcpStream::connect(empty).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[test]
fn read_timeout_is_timed_out_not_would_block() {
    common::workers(2);
    common::watchdog(60, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let result = weft::run(move || {
            let stream = TcpStream::connect(addr).unwrap();
            let (_server_side, _) = listener.accept().unwrap();
            assert_eq!(
                stream
                    .set_read_timeout(Some(Duration::ZERO))
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidInput
            );
            stream
                .set_read_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            assert_eq!(
                stream.read_timeout().unwrap(),
                Some(Duration::from_millis(20))
            );
            let mut buf = [0u8; 8];
            (&stream).read(&mut buf).map_err(|e| e.kind())
        });
        assert_eq!(result, Err(ErrorKind::TimedOut));
    });
}

#[test]
fn write_timeout_fires_when_the_peer_does_not_read() {
    common::workers(2);
    common::watchdog(60, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (result, written) = weft::run(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            let (_server_side, _) = listener.accept().unwrap();
            stream
                .set_write_timeout(Some(Duration::from_millis(20)))
                .unwrap();
            let chunk = vec![7u8; 64 * 1024];
            let mut written = 0usize;
            // Bounded: the socket buffers hold a few MiB at most.
            for _ in 0..100_000 {
                match stream.write(&chunk) {
                    Ok(n) => written += n,
                    Err(e) => return (Err(e.kind()), written),
                }
            }
            (Ok(()), written)
        });
        assert_eq!(result, Err(ErrorKind::TimedOut));
        assert!(written > 0);
    });
}

#[test]
fn timeouts_also_apply_on_plain_threads() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_server_side, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let err = (&stream).read(&mut [0u8; 4]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
}

/// A listener with backlog 0 whose connections are never accepted: once its queue is full
/// the kernel drops further SYNs, so a connect cannot complete and must time out.
#[test]
fn connect_timeout_against_a_full_backlog() {
    common::workers(2);
    common::watchdog(120, || {
        // SAFETY (test): plain libc calls on a socket this test owns.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0);
        let full = unsafe { <std::net::TcpListener as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        assert_eq!(
            unsafe { libc::bind(fd, (&sin as *const libc::sockaddr_in).cast(), len) },
            0
        );
        assert_eq!(unsafe { libc::listen(fd, 0) }, 0);
        let addr = full.local_addr().unwrap();
        let outcome = weft::run(move || {
            let mut held = Vec::new();
            for _ in 0..64 {
                match TcpStream::connect_timeout(&addr, Duration::from_millis(100)) {
                    Ok(stream) => held.push(stream),
                    Err(e) => return Some((e.kind(), held.len())),
                }
            }
            None
        });
        let (kind, accepted_first) = outcome.expect("64 connects to a full backlog all succeeded");
        assert_eq!(kind, ErrorKind::TimedOut);
        assert!(
            accepted_first >= 1,
            "the queue admits at least one connection"
        );
        assert_eq!(
            TcpStream::connect_timeout(&addr, Duration::ZERO)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
        drop(full);
    });
}

#[test]
fn try_clone_reads_in_one_green_thread_while_another_writes() {
    common::workers(2);
    common::watchdog(60, || {
        let (addr, server) = echo_server(1);
        let lines = weft::run(move || {
            let stream = TcpStream::connect(addr).unwrap();
            let mut reader = stream.try_clone().unwrap();
            let consumer = weft::spawn(move || {
                let mut all = String::new();
                reader.read_to_string(&mut all).unwrap();
                all
            });
            let mut writer = stream;
            for i in 0..100 {
                writeln!(writer, "line {i}").unwrap();
                if i % 10 == 0 {
                    weft::sleep(Duration::from_millis(1));
                }
            }
            writer.shutdown(Shutdown::Write).unwrap();
            drop(writer); // the clone keeps the connection open
            consumer.join().unwrap()
        });
        assert_eq!(lines.lines().count(), 100);
        assert_eq!(lines.lines().last(), Some("line 99"));
        server.join().unwrap().unwrap();
    });
}

#[test]
fn std_conversions_round_trip() {
    common::workers(2);
    common::watchdog(60, || {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = std_listener.local_addr().unwrap();
        let listener = TcpListener::from(std_listener);
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"std").unwrap();
        });
        let (stream, peer) = listener.accept().unwrap();
        assert_eq!(stream.peer_addr().unwrap(), peer);
        client.join().unwrap();
        let std_stream = stream.into_std();
        std_stream.set_nonblocking(false).unwrap();
        let mut buf = Vec::new();
        (&std_stream).read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"std");
        let raw = std::os::fd::IntoRawFd::into_raw_fd(listener);
        // SAFETY: `raw` was just given up by the listener.
        let back = unsafe { <TcpListener as std::os::fd::FromRawFd>::from_raw_fd(raw) };
        assert_eq!(back.local_addr().unwrap(), addr);
    });
}

#[test]
fn socket_options_pass_through() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_ttl(42).unwrap();
    assert_eq!(listener.ttl().unwrap(), 42);
    assert!(listener.take_error().unwrap().is_none());
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    stream.set_nodelay(true).unwrap();
    assert!(stream.nodelay().unwrap());
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(
        stream.write_timeout().unwrap(),
        Some(Duration::from_secs(3))
    );
    let (server_side, _) = listener.accept().unwrap();
    (&server_side).write_all(b"peek").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(stream.peek(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"peek");
    let mut again = [0u8; 4];
    (&stream).read_exact(&mut again).unwrap();
    assert_eq!(&again, b"peek");
}

#[test]
fn shutdown_wakes_a_reader_blocked_on_a_clone() {
    common::workers(2);
    common::watchdog(60, || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let read = weft::run(move || {
            let stream = TcpStream::connect(addr).unwrap();
            let (_server_side, _) = listener.accept().unwrap();
            let mut reader = stream.try_clone().unwrap();
            let blocked = weft::spawn(move || reader.read(&mut [0u8; 16]));
            // Let the reader block, then shut the socket down through the other handle
            // and drop it: the reader wakes with end of file, not a hang.
            weft::sleep(Duration::from_millis(10));
            stream.shutdown(Shutdown::Both).unwrap();
            drop(stream);
            blocked.join().unwrap()
        });
        assert_eq!(read.unwrap(), 0);
    });
}

#[test]
fn set_nonblocking_returns_would_block_instead_of_waiting() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let err = listener.accept().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            // Poll until the connection is there, as a std event loop would.
            let (server, _) = loop {
                match listener.accept() {
                    Ok(pair) => break pair,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => weft::yield_now(),
                    Err(e) => panic!("{e}"),
                }
            };
            server.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 8];
            let err = (&server).read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
            (&client).write_all(b"hi").unwrap();
            // Back to waiting: the read parks until the data is there.
            server.set_nonblocking(false).unwrap();
            let n = (&server).read(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hi");
        })
    });
}

/// Sets `SO_LINGER` to 0, so that dropping the stream resets the connection (RST).
fn linger_zero(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY (test): setsockopt with a valid option struct and its size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// A connected pair, made in a green thread.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn a_reset_mid_read_or_mid_write_is_an_error_not_a_hang() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            for round in 0..common::scaled(20) {
                // A reader parked in `read` when the peer resets.
                let (reader, peer) = pair();
                let blocked = weft::spawn(move || {
                    let mut buf = [0u8; 64];
                    (&reader).read(&mut buf)
                });
                weft::sleep(Duration::from_millis(2));
                linger_zero(&peer);
                drop(peer);
                let err = blocked.join().unwrap().expect_err("a read after a reset");
                assert_eq!(
                    err.kind(),
                    ErrorKind::ConnectionReset,
                    "round {round}: {err}"
                );

                // A writer parked on a full send buffer when the peer resets, or (odd rounds)
                // simply goes away without reading: its unread data makes the close a reset.
                let (writer, peer) = pair();
                let blocked = weft::spawn(move || {
                    let chunk = vec![1u8; 256 * 1024];
                    loop {
                        if let Err(e) = (&writer).write(&chunk) {
                            return e;
                        }
                    }
                });
                weft::sleep(Duration::from_millis(5));
                if round % 2 == 0 {
                    linger_zero(&peer);
                }
                drop(peer);
                let err = blocked.join().unwrap();
                assert!(
                    matches!(
                        err.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
                    ),
                    "round {round}: {err}"
                );
            }
        })
    });
}

#[test]
fn a_half_closed_connection_still_carries_the_other_way() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let (client, server) = pair();
            let replier = weft::spawn(move || {
                // Read the request to its end (the client's half-close), then answer with
                // more than the socket buffers hold.
                let mut request = Vec::new();
                (&server).read_to_end(&mut request).unwrap();
                let answer: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
                (&server).write_all(&answer).unwrap();
                (request, answer)
            });
            (&client).write_all(b"the whole request").unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            let mut got = Vec::new();
            (&client).read_to_end(&mut got).unwrap();
            let (request, answer) = replier.join().unwrap();
            assert_eq!(request, b"the whole request");
            assert_eq!(got, answer);
            // Writing after our own half-close is an error, as in std.
            assert_eq!(
                (&client).write(b"x").unwrap_err().kind(),
                ErrorKind::BrokenPipe
            );
        })
    });
}

/// A socket closed with readiness pending, whose fd number the next socket reuses: the new
/// socket's reader sees only its own bytes and waits for them (a stale event of the old
/// socket may wake it, never hand it the old data or strand it).
#[test]
fn a_reused_fd_number_never_inherits_the_old_sockets_events() {
    use std::os::fd::AsRawFd;
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let rounds = common::scaled(300);
            let mut reused = 0;
            for round in 0..rounds {
                let (old, old_peer) = pair();
                // Readiness pending on the old socket: unread data, and its reader woke.
                (&old_peer).write_all(b"old").unwrap();
                let mut buf = [0u8; 1];
                (&old).read_exact(&mut buf).unwrap();
                let fd = old.as_raw_fd();
                drop(old);
                drop(old_peer);
                let (new, new_peer) = pair();
                reused += usize::from(common::reused_fd_round(round, fd, new, new_peer));
            }
            assert!(
                reused > rounds / 2,
                "fd numbers were reused in only {reused} rounds"
            );
        })
    });
}
