//! An accept loop taking 5,000 connections, all held open at once: 10,000 sockets in one
//! process, under the 20,000 fd limit of the test machines.

mod common;

use std::io::{Read, Write};

use weft::net::{TcpListener, TcpStream};

const CONNECTIONS: usize = 5_000;

#[test]
fn five_thousand_connections_accepted_and_held() {
    common::workers(2);
    let (accepted, served) = common::watchdog(300, || {
        weft::run(|| {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let acceptor = weft::spawn(move || {
                let mut held = Vec::with_capacity(CONNECTIONS);
                for stream in listener.incoming().take(CONNECTIONS) {
                    held.push(stream.unwrap());
                }
                // Every connection is open at once here; echo each client's id back.
                for stream in held.iter_mut() {
                    let mut id = [0u8; 4];
                    stream.read_exact(&mut id).unwrap();
                    stream.write_all(&id).unwrap();
                }
                held.len()
            });
            // Clients connect in waves of 500 green threads, each keeping its stream.
            let mut streams = Vec::with_capacity(CONNECTIONS);
            for wave in 0..CONNECTIONS / 500 {
                let connectors: Vec<_> = (0..500)
                    .map(|_| weft::spawn(move || TcpStream::connect(addr).unwrap()))
                    .collect();
                for (j, connector) in connectors.into_iter().enumerate() {
                    streams.push((wave * 500 + j, connector.join().unwrap()));
                }
            }
            let writers: Vec<_> = streams
                .into_iter()
                .map(|(i, mut stream)| {
                    weft::spawn(move || {
                        stream.write_all(&(i as u32).to_le_bytes()).unwrap();
                        let mut back = [0u8; 4];
                        stream.read_exact(&mut back).unwrap();
                        u32::from_le_bytes(back) as usize == i
                    })
                })
                .collect();
            // Each client gets its own id back: no connection was mixed up with another.
            let served = writers
                .into_iter()
                .map(|w| w.join().unwrap())
                .filter(|&matched| matched)
                .count();
            (acceptor.join().unwrap(), served)
        })
    });
    assert_eq!(accepted, CONNECTIONS);
    assert_eq!(served, CONNECTIONS);
}
