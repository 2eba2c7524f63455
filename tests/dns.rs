//! Host names resolve on the blocking pool; literals never leave the worker.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;

use common::Ticker;
use weft::net::{TcpListener, TcpStream, UdpSocket};

#[test]
fn host_names_go_to_the_pool_and_literals_do_not() {
    // One test in this file, so the offload counter moves only for what it does.
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = weft::spawn(move || {
                for stream in listener.incoming().take(201) {
                    let mut stream = stream.unwrap();
                    weft::spawn(move || {
                        let mut buf = [0u8; 8];
                        let n = stream.read(&mut buf).unwrap();
                        stream.write_all(&buf[..n]).unwrap();
                    });
                }
            });

            // Literals of every shape: parsed in place, no hand-off.
            let before = weft::stats().offloaded;
            let literal: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            drop(TcpStream::connect(format!("127.0.0.1:{port}")).unwrap());
            let addrs: Vec<_> = weft::net::lookup_host(("127.0.0.1", port))
                .unwrap()
                .collect();
            assert_eq!(addrs, [literal]);
            assert_eq!(weft::net::lookup_host(&[literal][..]).unwrap().count(), 1);
            let udp = UdpSocket::bind("[::1]:0").or_else(|_| UdpSocket::bind("127.0.0.1:0"));
            drop(udp.unwrap());
            assert_eq!(
                weft::stats().offloaded,
                before,
                "a literal went to the pool"
            );

            // std's errors for malformed addresses, without a lookup.
            for bad in ["localhost", "localhost:port", "localhost:99999"] {
                let err = TcpStream::connect(bad).unwrap_err();
                assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {err}");
            }
            assert_eq!(
                weft::stats().offloaded,
                before,
                "a malformed address went to the pool"
            );

            // 200 connections by host name at once, while a ticker keeps running.
            let ticker = Ticker::start();
            let ((), ticks) = ticker.during(|| {
                let clients: Vec<_> = (0..200u32)
                    .map(|i| {
                        weft::spawn(move || {
                            // Both spellings of a host name.
                            let mut stream = if i % 2 == 0 {
                                TcpStream::connect(("localhost", port)).unwrap()
                            } else {
                                TcpStream::connect(format!("localhost:{port}")).unwrap()
                            };
                            stream.write_all(&i.to_le_bytes()).unwrap();
                            let mut back = [0u8; 4];
                            stream.read_exact(&mut back).unwrap();
                            assert_eq!(u32::from_le_bytes(back), i);
                        })
                    })
                    .collect();
                for client in clients {
                    client.join().unwrap();
                }
            });
            let lookups = weft::stats().offloaded - before;
            assert!(lookups >= 200, "only {lookups} lookups went to the pool");
            assert!(ticks >= 1, "the ticker never ran during the lookups");
            drop(ticker);
            // The literal connection and the 200 end the server's accept loop.
            server.join().unwrap();
        })
    });
}
