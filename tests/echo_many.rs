//! The load test: 1,000 concurrent clients, each sending 1 MiB in random-sized
//! chunks through an echo server, every byte checked. Both ends are green threads; each
//! client writes and reads at once (two green threads on one stream), since neither side
//! could otherwise get past full socket buffers.

mod common;

use std::io::{Read, Write};
use std::net::Shutdown;

use weft::net::{TcpListener, TcpStream};

const CLIENTS: usize = 1_000;
const BYTES: usize = 1 << 20;

/// A deterministic pseudo-random byte source (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn a_thousand_clients_each_echo_a_mebibyte() {
    common::workers(2);
    // One shared random pattern; client `i` sends it rotated by a client-specific offset,
    // so a byte delivered to the wrong client or out of order is caught.
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let pattern: Vec<u8> = (0..BYTES + 4096).map(|_| rng.next() as u8).collect();
    let pattern: &'static [u8] = Box::leak(pattern.into_boxed_slice());

    let totals = common::watchdog(600, move || {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        weft::run(move || {
            let server = weft::spawn(move || {
                let handlers: Vec<_> = (0..CLIENTS)
                    .map(|_| {
                        let (mut stream, _) = listener.accept().unwrap();
                        weft::spawn(move || {
                            let mut buf = vec![0u8; 8 * 1024];
                            loop {
                                let n = stream.read(&mut buf).unwrap();
                                if n == 0 {
                                    break;
                                }
                                stream.write_all(&buf[..n]).unwrap();
                            }
                        })
                    })
                    .collect();
                for handler in handlers {
                    handler.join().unwrap();
                }
            });
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    weft::spawn(move || {
                        let stream = TcpStream::connect(addr).unwrap();
                        let offset = (i * 4099) % 4096;
                        let expected = &pattern[offset..offset + BYTES];
                        weft::scope(|s| {
                            s.spawn(|| {
                                let mut rng = Rng(i as u64 * 7919 + 1);
                                let mut sent = 0;
                                while sent < BYTES {
                                    let len = (1 + rng.next() as usize % 65_536).min(BYTES - sent);
                                    (&stream).write_all(&expected[sent..sent + len]).unwrap();
                                    sent += len;
                                }
                                stream.shutdown(Shutdown::Write).unwrap();
                            });
                            let mut rng = Rng(i as u64 * 104_729 + 3);
                            let mut buf = vec![0u8; 65_536];
                            let mut received = 0;
                            loop {
                                let want = 1 + rng.next() as usize % buf.len();
                                let n = (&stream).read(&mut buf[..want]).unwrap();
                                if n == 0 {
                                    break;
                                }
                                assert!(received + n <= BYTES, "client {i} got extra bytes");
                                assert!(
                                    buf[..n] == expected[received..received + n],
                                    "client {i}: wrong bytes at offset {received}"
                                );
                                received += n;
                            }
                            received
                        })
                    })
                })
                .collect();
            let totals: Vec<usize> = clients.into_iter().map(|c| c.join().unwrap()).collect();
            server.join().unwrap();
            totals
        })
    });
    assert_eq!(totals.len(), CLIENTS);
    assert!(totals.iter().all(|&t| t == BYTES), "some client lost bytes");
}
