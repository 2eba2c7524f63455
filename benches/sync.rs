//! Channel and lock costs on ONE worker: ping-pong between two green threads (the DESIGN
//! goal is ≤ 40 ns per round trip), a channel's send+recv without a switch, an uncontended
//! Mutex (goal ≤ 20 ns), and hand-offs between green threads contending on one Mutex.
//!
//! `cargo bench --bench sync`. Figures are per operation (a round trip for ping-pong).

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weft::chan::{self, Receiver, Sender};
use weft::sync::Mutex;

/// Two green threads on one worker bounce a message `iters` times.
fn ping_pong(iters: u64, make: fn() -> (Sender<u64>, Receiver<u64>)) -> Duration {
    weft::run(move || common::bounce(iters, make))
}

fn channels(c: &mut Criterion) {
    let mut group = c.benchmark_group("chan");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ping_pong_same_worker_unbounded", |b| {
        b.iter_custom(|iters| ping_pong(iters, chan::unbounded))
    });
    group.bench_function("ping_pong_same_worker_rendezvous", |b| {
        b.iter_custom(|iters| ping_pong(iters, || chan::bounded(0)))
    });
    // The same round trip with both receives made through `select!` (two arms each, one
    // of them never ready): what a select adds to a hand-off.
    group.bench_function("ping_pong_same_worker_select", |b| {
        b.iter_custom(|iters| {
            weft::run(move || {
                let (ping_tx, ping_rx) = chan::unbounded::<u64>();
                let (pong_tx, pong_rx) = chan::unbounded::<u64>();
                let (_idle_tx, idle_rx) = chan::unbounded::<u64>();
                let echo = weft::spawn({
                    let idle_rx = idle_rx.clone();
                    move || loop {
                        weft::select! {
                            recv(ping_rx) -> v => match v {
                                Ok(v) => pong_tx.send(v).unwrap(),
                                Err(_) => return,
                            },
                            recv(idle_rx) -> _v => unreachable!(),
                        }
                    }
                });
                let start = Instant::now();
                for i in 0..iters {
                    ping_tx.send(i).unwrap();
                    weft::select! {
                        recv(pong_rx) -> v => { std::hint::black_box(v.unwrap()); },
                        recv(idle_rx) -> _v => unreachable!(),
                    }
                }
                let elapsed = start.elapsed();
                drop(ping_tx);
                echo.join().unwrap();
                elapsed
            })
        })
    });
    // The channel's own cost: send then receive on one green thread, no switch.
    group.bench_function("send_recv_no_switch", |b| {
        b.iter_custom(|iters| {
            weft::run(move || {
                let (tx, rx) = chan::bounded(16);
                let start = Instant::now();
                for i in 0..iters {
                    tx.send(i).unwrap();
                    std::hint::black_box(rx.recv().unwrap());
                }
                start.elapsed()
            })
        })
    });
    // A receive that finds nothing: what a `try_recv` poll loop pays per try.
    group.bench_function("try_recv_empty", |b| {
        b.iter_custom(|iters| {
            weft::run(move || {
                let (_tx, rx) = chan::unbounded::<u64>();
                let start = Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(rx.try_recv().is_err());
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn mutexes(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex");
    group.throughput(Throughput::Elements(1));
    group.bench_function("uncontended_lock_unlock", |b| {
        let lock = Mutex::new(0u64);
        b.iter(|| *lock.lock().unwrap() += 1);
    });
    group.bench_function("std_uncontended_lock_unlock", |b| {
        let lock = std::sync::Mutex::new(0u64);
        b.iter(|| *lock.lock().unwrap() += 1);
    });
    // Four green threads on one worker, each yielding while it holds the lock: every lock
    // after the first is a FIFO hand-off to a parked waiter. Per lock.
    group.bench_function("handoff_4_green_threads", |b| {
        b.iter_custom(|iters| {
            weft::run(move || {
                let lock = Mutex::new(0u64);
                common::spread(iters, 4, || {
                    let mut n = lock.lock().unwrap();
                    *n += 1;
                    weft::yield_now();
                })
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config(1);
    targets = channels, mutexes
}
criterion_main!(benches);
