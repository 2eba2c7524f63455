//! A tour of weft: spawn many green threads, borrow with scope, see the sticky rule, contain
//! a panic, pass messages through channels and select!, do file IO and a host-name lookup
//! without blocking the worker, cancel a green thread, bound code with a timeout, see where
//! a parked green thread waits, read the counters; and an echo server with 1,000 clients.
//! `cargo run --release --example demo`.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    weft::run(|| {
        // 1. Spawn 100,000 green threads and join them all.
        let start = Instant::now();
        let handles: Vec<_> = (0..100_000u64)
            .map(|i| {
                weft::go!(move || {
                    weft::yield_now(); // let the others run, then continue
                    i % 7
                })
            })
            .collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        println!(
            "100,000 green threads spawned, yielded and joined in {:.1?} (sum {sum})",
            start.elapsed()
        );

        // 2. Scoped green threads borrow from this stack.
        let words = [
            "weft", "is", "the", "thread", "woven", "across", "the", "warp",
        ];
        let letters = AtomicU64::new(0);
        weft::scope(|s| {
            for word in &words {
                let letters = &letters;
                s.spawn(move || letters.fetch_add(word.len() as u64, Ordering::Relaxed));
            }
        });
        println!(
            "scope: {} letters counted by {} borrowing green threads",
            letters.into_inner(),
            words.len()
        );

        // 3. The sticky rule: once started, a green thread stays on its worker.
        let handle = weft::Builder::new()
            .name("sticky")
            .spawn(|| {
                let home = std::thread::current().id();
                (0..10_000).all(|_| {
                    weft::yield_now();
                    std::thread::current().id() == home
                })
            })
            .unwrap();
        let name = handle.coroutine().name().unwrap_or("?").to_owned();
        println!(
            "green thread '{name}' stayed on one OS thread across 10,000 yields: {}",
            handle.join().unwrap()
        );

        // 4. A panic stays inside its green thread.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {})); // this panic is planned: keep the output tidy
        let err = weft::spawn(|| -> () { panic!("contained") })
            .join()
            .unwrap_err();
        std::panic::set_hook(default_hook);
        println!(
            "a panicking green thread reported: {:?}",
            err.downcast_ref::<&str>().unwrap()
        );

        // 5. Channels: a two-stage pipeline, then a select! that times out.
        let (numbers_tx, numbers) = weft::chan::bounded(64);
        let (squares_tx, squares) = weft::chan::bounded(64);
        weft::go!(move || {
            for n in 1..=10_000u64 {
                numbers_tx.send(n).unwrap();
            }
        });
        weft::go!(move || {
            for n in numbers {
                squares_tx.send(n * n).unwrap();
            }
        });
        let total: u64 = squares.iter().sum();
        println!("pipeline: the squares of 1..=10,000 sum to {total}");
        let (_quiet_tx, quiet) = weft::chan::unbounded::<u64>();
        let timeout = weft::chan::after(Duration::from_millis(5));
        let outcome = weft::select! {
            recv(quiet) -> _ => "a message",
            recv(timeout) -> _ => "the 5 ms timeout",
        };
        println!("select: {outcome} came first");

        // 6. An echo server and 1,000 client green threads over loopback, every byte checked.
        let start = Instant::now();
        let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        weft::go!(move || {
            // The server: one green thread per connection, written as blocking code.
            for stream in listener.incoming() {
                weft::go!(move || {
                    let mut stream = stream.unwrap();
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf).unwrap() {
                            0 => break, // the client is done
                            n => stream.write_all(&buf[..n]).unwrap(),
                        }
                    }
                });
            }
        });
        let clients: Vec<_> = (0..1000u32)
            .map(|client| {
                weft::go!(move || {
                    let mut stream = weft::net::TcpStream::connect(addr).unwrap();
                    // 16 KiB that only this client sends: 4,096 copies of its own number.
                    let sent: Vec<u8> = (0..4096).flat_map(|_| client.to_le_bytes()).collect();
                    let mut received = vec![0u8; sent.len()];
                    weft::scope(|s| {
                        let writer = &stream;
                        s.spawn(|| (&*writer).write_all(&sent).unwrap());
                        (&stream).read_exact(&mut received).unwrap();
                    });
                    stream.shutdown(std::net::Shutdown::Write).unwrap();
                    assert_eq!(stream.read(&mut [0u8; 1]).unwrap(), 0, "nothing extra");
                    received == sent
                })
            })
            .collect();
        let intact = clients
            .into_iter()
            .map(|c| c.join().unwrap())
            .filter(|&intact| intact)
            .count();
        println!(
            "echo: {intact} of 1,000 concurrent clients got their 16 KiB back byte for byte \
             in {:.1?}",
            start.elapsed()
        );

        // 7. Files and host names: the page cache on the worker, the rest on the blocking pool.
        let path = std::env::temp_dir().join(format!("weft-demo-{}", std::process::id()));
        weft::fs::write(&path, "a file round trip").unwrap();
        let text = weft::fs::read_to_string(&path).unwrap();
        weft::fs::remove_file(&path).unwrap();
        println!("fs: wrote and read back {text:?}");
        let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = weft::net::TcpStream::connect(("localhost", port)).unwrap();
        println!(
            "dns: \"localhost\" resolved off the worker and connected to {}",
            stream.peer_addr().unwrap()
        );

        // 8. Control and visibility: a parked green thread shows the line it waits at, a
        //    cancel unwinds it (destructors run), a timeout bounds any blocking code.
        let napper = weft::Builder::new()
            .name("napper")
            .spawn(|| weft::sleep(Duration::from_secs(3600)))
            .unwrap();
        weft::sleep(Duration::from_millis(5));
        let info = weft::threads()
            .into_iter()
            .find(|t| t.name.as_deref() == Some("napper"))
            .unwrap();
        println!(
            "dump: green thread {} 'napper' is {:?} at {}",
            info.id,
            info.state,
            info.waiting_at.unwrap()
        );
        napper.cancel();
        let cancelled = napper.join().unwrap_err().is::<weft::Cancelled>();
        println!("cancel: the hour-long sleep unwound at once: {cancelled}");
        let (_never_tx, never) = weft::chan::unbounded::<u32>();
        let outcome = weft::timeout(Duration::from_millis(10), || never.recv());
        println!("timeout: a receive with no sender gave {outcome:?}");
    });
    println!("{:#?}", weft::stats());
}
