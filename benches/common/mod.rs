//! Scenarios shared by the bench suites.

use std::time::{Duration, Instant};

use weft::chan::{Receiver, Sender};

/// Spawns an echo green thread and bounces `iters` messages off it from the caller (a plain
/// thread or a green thread) through two channels made by `make`; returns the time the
/// bouncing took, after one warm-up round trip.
pub fn bounce(iters: u64, make: fn() -> (Sender<u64>, Receiver<u64>)) -> Duration {
    let (ping_tx, ping_rx) = make();
    let (pong_tx, pong_rx) = make();
    let echo = weft::spawn(move || {
        for value in ping_rx.iter() {
            pong_tx.send(value).unwrap();
        }
    });
    ping_tx.send(0).unwrap();
    pong_rx.recv().unwrap();
    let start = Instant::now();
    for i in 0..iters {
        ping_tx.send(i).unwrap();
        pong_rx.recv().unwrap();
    }
    let elapsed = start.elapsed();
    drop(ping_tx);
    echo.join().unwrap();
    elapsed
}
