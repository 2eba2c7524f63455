//! UDP round trips, Unix-domain streams and datagrams, and `NonBlocking` on a pipe.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::path::PathBuf;
use std::time::Duration;

use weft::io::NonBlocking;
use weft::net::unix::{UnixDatagram, UnixListener, UnixStream};
use weft::net::UdpSocket;

fn temp_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("weft-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn udp_round_trips_between_green_threads() {
    common::workers(2);
    common::watchdog(60, || {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_addr = server.local_addr().unwrap();
        let echo = weft::spawn(move || {
            let mut buf = [0u8; 1500];
            for _ in 0..200 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                server.send_to(&buf[..n], from).unwrap();
            }
        });
        let client = weft::spawn(move || {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.connect(server_addr).unwrap();
            assert_eq!(socket.peer_addr().unwrap(), server_addr);
            let mut buf = [0u8; 1500];
            for i in 0..200u32 {
                let msg = i.to_le_bytes();
                socket.send(&msg).unwrap();
                // The reply parks this green thread until it arrives (loopback does not
                // drop datagrams at this rate).
                let n = socket.recv(&mut buf).unwrap();
                assert_eq!(&buf[..n], &msg);
            }
        });
        client.join().unwrap();
        echo.join().unwrap();
    });
}

#[test]
fn udp_peek_timeouts_and_options() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            b.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            let mut buf = [0u8; 16];
            assert_eq!(
                b.recv_from(&mut buf).unwrap_err().kind(),
                ErrorKind::TimedOut
            );
            a.send_to(b"peeked", b.local_addr().unwrap()).unwrap();
            let (n, from) = b.peek_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"peeked"[..], a.local_addr().unwrap()));
            let (n, _) = b.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"peeked");
            a.set_broadcast(true).unwrap();
            assert!(a.broadcast().unwrap());
            assert_eq!(
                a.send_to(b"x", "definitely not an address")
                    .unwrap_err()
                    .kind(),
                ErrorKind::InvalidInput
            );
        });
    });
}

#[test]
fn unix_stream_echo_and_half_close() {
    common::workers(2);
    common::watchdog(60, || {
        let path = temp_path("stream.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = weft::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut data = Vec::new();
            stream.read_to_end(&mut data).unwrap();
            data.reverse();
            stream.write_all(&data).unwrap();
        });
        let reply = weft::run(|| {
            let mut stream = UnixStream::connect(&path).unwrap();
            let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
            stream.write_all(&payload).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).unwrap();
            reply
        });
        server.join().unwrap();
        let mut expected: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        expected.reverse();
        assert_eq!(reply, expected);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            UnixStream::connect(&path).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    });
}

#[test]
fn unix_pair_reader_and_writer_in_separate_green_threads() {
    common::workers(2);
    common::watchdog(60, || {
        let (a, b) = UnixStream::pair().unwrap();
        let total = weft::run(move || {
            let writer = weft::spawn(move || {
                let mut a = a;
                for i in 0..1000u32 {
                    a.write_all(&[i as u8; 1000]).unwrap();
                }
            });
            let mut b = b;
            let mut buf = Vec::new();
            b.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            b.read_to_end(&mut buf).unwrap();
            writer.join().unwrap();
            buf.len()
        });
        assert_eq!(total, 1_000_000);
    });
}

#[test]
fn unix_datagrams() {
    common::workers(2);
    common::watchdog(60, || {
        let path = temp_path("dgram.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let got = weft::run(|| {
            let receiver = weft::spawn(move || {
                let mut buf = [0u8; 64];
                let (n, _) = server.recv_from(&mut buf).unwrap();
                buf[..n].to_vec()
            });
            let client = UnixDatagram::unbound().unwrap();
            client.send_to(b"datagram", &path).unwrap();
            receiver.join().unwrap()
        });
        assert_eq!(got, b"datagram");
        let (a, b) = UnixDatagram::pair().unwrap();
        b.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
        assert_eq!(
            b.recv(&mut [0u8; 4]).unwrap_err().kind(),
            ErrorKind::TimedOut
        );
        a.send(b"ok").unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(b.recv(&mut buf).unwrap(), 2);
        std::fs::remove_file(&path).unwrap();
    });
}

#[test]
fn nonblocking_pipe_parks_the_reader_until_the_writer_writes() {
    common::workers(1); // one worker: a blocking read here would deadlock the writer
    common::watchdog(60, || {
        let (reader, writer) = std::io::pipe().unwrap();
        let reader = NonBlocking::new(reader).unwrap();
        let writer = NonBlocking::new(writer).unwrap();
        let received = weft::run(move || {
            let consumer = weft::spawn(move || {
                let mut all = Vec::new();
                (&reader).read_to_end(&mut all).unwrap();
                all.len()
            });
            // 1 MiB through a 64 KiB pipe: the writer parks too, again and again.
            let mut writer = writer;
            let chunk = [0xA5u8; 4096];
            for _ in 0..256 {
                writer.write_all(&chunk).unwrap();
            }
            drop(writer);
            consumer.join().unwrap()
        });
        assert_eq!(received, 1 << 20);
    });
}

#[test]
fn nonblocking_restores_flags_and_refuses_regular_files() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let wrapped = NonBlocking::new(reader).unwrap();
    let reader = wrapped.into_inner();
    // SAFETY (test): F_GETFL on an fd we own.
    let flags = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&reader), libc::F_GETFL) };
    assert_eq!(flags & libc::O_NONBLOCK, 0, "blocking mode restored");

    let file = std::fs::File::open("Cargo.toml").unwrap();
    let err = NonBlocking::new(file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("regular files"), "{err}");
}

#[test]
fn nonblocking_readable_and_read_with() {
    common::workers(2);
    common::watchdog(60, || {
        let (reader, writer) = std::io::pipe().unwrap();
        let reader = NonBlocking::new(reader).unwrap();
        let n = weft::run(move || {
            weft::spawn(move || {
                weft::sleep(Duration::from_millis(5));
                (&writer).write_all(b"ready").unwrap();
            });
            reader.readable().unwrap();
            reader
                .read_with(|r| {
                    let mut buf = [0u8; 16];
                    (&*r).read(&mut buf)
                })
                .unwrap()
        });
        assert_eq!(n, 5);
    });
}

#[test]
fn nonblocking_borrows_the_fd_it_wraps() {
    // I/O safety: the wrapper borrows (or owns) the fd, so the fd cannot be closed, and its
    // number reused by an unrelated socket, while the wrapper still lives; dropping the
    // wrapper then deregisters and restores only the fd it wrapped. (A bare `RawFd` no
    // longer compiles: see the compile_fail example on `NonBlocking`.)
    use std::os::fd::{AsFd, AsRawFd};
    common::workers(1);
    common::watchdog(60, || {
        let (reader, writer) = std::io::pipe().unwrap();
        weft::run(|| {
            let borrowed = NonBlocking::new(reader.as_fd()).unwrap();
            let by_ref = NonBlocking::new(&writer).unwrap();
            (&by_ref).write_all(b"via a borrow").unwrap();
            let mut buf = [0u8; 12];
            (&borrowed).read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"via a borrow");
            drop(borrowed);
            drop(by_ref);
            // SAFETY (test): F_GETFL on fds we own.
            let flags = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_GETFL) };
            assert_eq!(flags & libc::O_NONBLOCK, 0, "blocking mode restored");
            // The owners are intact and can be wrapped again.
            let again = NonBlocking::new(reader).unwrap();
            (&writer).write_all(b"x").unwrap();
            let mut one = [0u8; 1];
            (&again).read_exact(&mut one).unwrap();
        });
    });
}

/// A pipe closed with readiness pending, whose fd numbers the next pipe reuses, through
/// `NonBlocking`: the new pipe's reader sees only its own bytes and waits for them.
#[test]
fn a_reused_pipe_fd_never_inherits_the_old_pipes_events() {
    use std::os::fd::AsRawFd;
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let rounds = common::scaled(300);
            let mut reused = 0;
            for round in 0..rounds {
                let (reader, writer) = std::io::pipe().unwrap();
                let (old, old_writer) = (
                    NonBlocking::new(reader).unwrap(),
                    NonBlocking::new(writer).unwrap(),
                );
                (&old_writer).write_all(b"old!").unwrap();
                let mut byte = [0u8; 1];
                (&old).read_exact(&mut byte).unwrap();
                let fd = old.as_raw_fd();
                drop(old);
                drop(old_writer);
                let (reader, writer) = std::io::pipe().unwrap();
                let (new, new_writer) = (
                    NonBlocking::new(reader).unwrap(),
                    NonBlocking::new(writer).unwrap(),
                );
                reused += usize::from(common::reused_fd_round(round, fd, new, new_writer));
            }
            assert!(
                reused > rounds / 2,
                "fd numbers were reused in only {reused} rounds"
            );
        })
    });
}
