//! Scenarios and settings shared by the bench suites. Each suite uses a subset.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use criterion::Criterion;
use weft::chan::{Receiver, Sender};

/// Configures weft with `workers` workers (before the first spawn) and returns the criterion
/// settings every suite but `echo` uses.
pub fn config(workers: usize) -> Criterion {
    weft::Config::new()
        .workers(workers)
        .apply()
        .expect("configure before the first spawn");
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

/// Runs `threads` green threads at once (in a scope, from the caller), each calling `op`
/// `iters / threads` times, rounded up; returns the time taken, scaled to `iters` calls.
pub fn spread(iters: u64, threads: u64, op: impl Fn() + Sync) -> Duration {
    let each = iters.div_ceil(threads);
    let op = &op;
    let start = Instant::now();
    weft::scope(|s| {
        for _ in 0..threads {
            s.spawn(move || {
                for _ in 0..each {
                    op();
                }
            });
        }
    });
    start
        .elapsed()
        .mul_f64(iters as f64 / (each * threads) as f64)
}

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
