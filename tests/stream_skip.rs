//! Skipping the read (or write) that could only say EAGAIN after a short one: it must never
//! miss readiness that arrives later, nor readiness that persists without new edges (end of
//! file, which an earlier version waited on for ever).

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;

use weft::net::{TcpListener, TcpStream};

#[test]
fn end_of_file_right_after_the_last_bytes_is_seen() {
    common::workers(2);
    common::watchdog(120, || {
        weft::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let server = weft::spawn(move || {
                for _ in 0..2_000 {
                    let (mut s, _) = listener.accept().unwrap();
                    s.write_all(&[7u8; 100]).unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                }
            });
            for _ in 0..2_000 {
                let mut c = TcpStream::connect(addr).unwrap();
                let mut buf = [0u8; 4096];
                let mut got = 0;
                // Short reads (100 < 4096) are followed by a read that must return 0.
                loop {
                    match c.read(&mut buf).unwrap() {
                        0 => break,
                        n => got += n,
                    }
                }
                assert_eq!(got, 100);
                // Reading again after the end returns 0 again, at once.
                assert_eq!(c.read(&mut buf).unwrap(), 0);
            }
            server.join().unwrap();
        })
    });
}

#[test]
fn short_reads_and_writes_in_a_ping_pong_never_stall() {
    // Every read is short (the buffer is larger than any message), so every next read is
    // skipped and waits: each message must wake it. Random sizes, both directions.
    common::workers(2);
    common::watchdog(120, || {
        weft::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let pairs: Vec<_> = (0..50u64)
                .map(|i| {
                    let (a, _) = (TcpStream::connect(addr).unwrap(), ());
                    let (b, _) = listener.accept().unwrap();
                    let echo = weft::spawn(move || {
                        let mut b = b;
                        let mut buf = vec![0u8; 1 << 16];
                        loop {
                            let n = b.read(&mut buf).unwrap();
                            if n == 0 {
                                break;
                            }
                            b.write_all(&buf[..n]).unwrap();
                        }
                    });
                    weft::spawn(move || {
                        let mut a = a;
                        let mut x = i * 2654435761 + 1;
                        let mut buf = vec![0u8; 1 << 16];
                        for round in 0..200u64 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let len = 1 + (x % 3000) as usize;
                            let msg: Vec<u8> = (0..len).map(|k| (k as u64 ^ round) as u8).collect();
                            a.write_all(&msg).unwrap();
                            let mut got = 0;
                            while got < len {
                                let n = a.read(&mut buf[got..]).unwrap();
                                assert!(n > 0, "pair {i}: early end of file");
                                got += n;
                            }
                            assert_eq!(&buf[..len], &msg[..], "pair {i} round {round}");
                        }
                        a.shutdown(Shutdown::Write).unwrap();
                        echo.join().unwrap();
                    })
                })
                .collect();
            for p in pairs {
                p.join().unwrap();
            }
        })
    });
}

#[test]
fn a_read_cut_short_by_urgent_data_does_not_wait_for_the_rest() {
    // The peer sends "abc", one urgent byte, then "def", and waits for a reply without
    // sending more. A read stops short at the urgent mark with "def" still queued; skipping
    // the next read would wait for an edge that came before it.
    use std::os::fd::AsRawFd;
    common::workers(1);
    common::watchdog(120, || {
        weft::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let peer = std::thread::spawn(move || {
                for _ in 0..20 {
                    let mut s = std::net::TcpStream::connect(addr).unwrap();
                    s.set_nodelay(true).unwrap();
                    s.write_all(b"abc").unwrap();
                    // SAFETY: a one-byte buffer that outlives the call, on an open socket.
                    let sent = unsafe {
                        libc::send(s.as_raw_fd(), b"!".as_ptr().cast(), 1, libc::MSG_OOB)
                    };
                    assert_eq!(sent, 1, "{}", std::io::Error::last_os_error());
                    s.write_all(b"def").unwrap();
                    let mut reply = [0u8; 2];
                    s.read_exact(&mut reply).unwrap();
                    assert_eq!(&reply, b"ok");
                }
            });
            for _ in 0..20 {
                let (mut s, _) = listener.accept().unwrap();
                // Let everything arrive (and its edges be harvested) before the first read.
                weft::sleep(std::time::Duration::from_millis(20));
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while got.len() < 6 {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "early end of file after {got:?}");
                    got.extend_from_slice(&buf[..n]);
                }
                // The urgent byte is out of band (no SO_OOBINLINE): not in the stream.
                assert_eq!(&got, b"abcdef");
                s.write_all(b"ok").unwrap();
            }
            peer.join().unwrap();
        })
    });
}
