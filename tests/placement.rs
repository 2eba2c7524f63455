//! Placement at first run: one accept loop's long-lived connection handlers spread across
//! the workers instead of all starting (and so staying, by the sticky rule) on the
//! acceptor's worker. Checked on 2 workers here and on 8 (more workers than vCPUs) in a
//! child process: the busiest worker homes at most 1.25× the mean.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CONNECTIONS: usize = 1000;

/// Opens CONNECTIONS connections to one accept loop whose handlers block in `read`, and
/// returns each worker's homed count once every handler has started.
fn homed_with_long_lived_connections() -> Vec<usize> {
    let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let acceptor = {
        let (started, finished) = (started.clone(), finished.clone());
        weft::spawn(move || {
            for _ in 0..CONNECTIONS {
                let (mut stream, _) = listener.accept().unwrap();
                let (started, finished) = (started.clone(), finished.clone());
                weft::spawn(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    // Long-lived: parked in read until the client closes.
                    let mut buf = [0u8; 64];
                    while let Ok(1..) = stream.read(&mut buf) {}
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    };
    let clients: Vec<std::net::TcpStream> = (0..CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    acceptor.join().unwrap();
    while started.load(Ordering::SeqCst) < CONNECTIONS {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = weft::stats();
    let homed = stats.per_worker.iter().map(|w| w.homed).collect();
    drop(clients);
    while finished.load(Ordering::SeqCst) < CONNECTIONS {
        std::thread::sleep(Duration::from_millis(5));
    }
    homed
}

fn assert_spread(homed: &[usize]) {
    let total: usize = homed.iter().sum();
    assert!(total >= CONNECTIONS, "{homed:?}");
    let mean = total as f64 / homed.len() as f64;
    let busiest = *homed.iter().max().unwrap() as f64;
    assert!(
        busiest <= 1.25 * mean,
        "the busiest worker homes {busiest}, {:.2}× the mean {mean:.0}: {homed:?}; {:?}",
        busiest / mean,
        weft::stats()
    );
    println!("homed per worker: {homed:?}");
}

#[test]
fn one_accept_loop_spreads_over_two_workers() {
    common::workers(2);
    let homed = common::watchdog(120, homed_with_long_lived_connections);
    assert_eq!(homed.len(), 2);
    assert_spread(&homed);
    assert!(weft::stats().placed_elsewhere > 0);
}

#[test]
fn one_accept_loop_spreads_over_eight_workers() {
    let out = common::child_stdout("eight_workers_child", &[]);
    assert!(out.contains("homed per worker"), "{out}");
}

#[test]
#[ignore]
fn eight_workers_child() {
    if !common::is_child() {
        return;
    }
    common::workers(8);
    let homed = common::watchdog(120, homed_with_long_lived_connections);
    assert_eq!(homed.len(), 8);
    assert_spread(&homed);
}
