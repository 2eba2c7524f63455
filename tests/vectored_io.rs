//! Vectored IO with more buffers than one syscall takes (`IOV_MAX`, 1024) behaves as std's:
//! a short transfer of the first buffers, never `EMSGSIZE` or `EINVAL`.

mod common;

use std::io::{IoSlice, IoSliceMut, Read, Write};

use weft::io::NonBlocking;
use weft::net::unix::UnixStream;
use weft::net::{TcpListener, TcpStream};

/// 2,000 one-byte slices: byte `i` is `i % 251`.
fn payload() -> Vec<u8> {
    (0..2000u32).map(|i| (i % 251) as u8).collect()
}

/// Writes all of `data` through `write_vectored` with one slice per byte, checking that each
/// call takes at most 1024 slices and makes progress.
fn write_all_vectored(mut w: impl Write, data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        let slices: Vec<IoSlice<'_>> = data[at..].chunks(1).map(IoSlice::new).collect();
        let n = w.write_vectored(&slices).expect("vectored write");
        assert!(n > 0 && n <= 1024, "wrote {n} of {} slices", slices.len());
        at += n;
    }
}

fn read_exact_to_vec(mut r: impl Read, len: usize) -> Vec<u8> {
    let mut got = vec![0u8; len];
    r.read_exact(&mut got).unwrap();
    got
}

#[test]
fn tcp_write_vectored_beyond_iov_max() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let reader = weft::spawn(move || {
                let (stream, _) = listener.accept().unwrap();
                read_exact_to_vec(&stream, 2000)
            });
            let stream = TcpStream::connect(addr).unwrap();
            let data = payload();
            write_all_vectored(&stream, &data);
            assert_eq!(reader.join().unwrap(), data);
        });
    });
}

#[test]
fn unix_stream_vectored_both_ways_beyond_iov_max() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let (a, b) = UnixStream::pair().unwrap();
            let data = payload();
            write_all_vectored(&a, &data);
            // A read into 2,000 one-byte buffers fills at most 1024 of them per call.
            let mut got = vec![0u8; 2000];
            let mut at = 0;
            while at < got.len() {
                let mut bufs: Vec<IoSliceMut<'_>> =
                    got[at..].chunks_mut(1).map(IoSliceMut::new).collect();
                let n = (&b).read_vectored(&mut bufs).unwrap();
                assert!(n > 0 && n <= 1024, "read {n}");
                at += n;
            }
            assert_eq!(got, data);
        });
    });
}

#[test]
fn nonblocking_pipe_vectored_beyond_iov_max() {
    common::workers(1);
    common::watchdog(60, || {
        let (reader, writer) = std::io::pipe().unwrap();
        let reader = NonBlocking::new(reader).unwrap();
        let writer = NonBlocking::new(writer).unwrap();
        weft::run(move || {
            let data = payload();
            write_all_vectored(&writer, &data);
            let mut got = vec![0u8; 2000];
            let mut at = 0;
            while at < got.len() {
                let mut bufs: Vec<IoSliceMut<'_>> =
                    got[at..].chunks_mut(1).map(IoSliceMut::new).collect();
                let n = (&reader).read_vectored(&mut bufs).unwrap();
                assert!(n > 0 && n <= 1024, "read {n}");
                at += n;
            }
            assert_eq!(got, data);
        });
    });
}
