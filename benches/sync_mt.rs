//! Channel and lock costs across TWO workers: ping-pong between a green thread and a plain
//! thread (every message is a cross-thread wake), ping-pong between two green threads placed
//! by the scheduler, bounded(1024) MPMC throughput with 4 producers and 4 consumers, and a
//! Mutex contended by 4 green threads.
//!
//! `cargo bench --bench sync_mt`. Figures are per round trip, per message or per lock.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weft::chan;
use weft::sync::Mutex;

fn two_workers() {
    weft::Config::new()
        .workers(2)
        .apply()
        .expect("configure before the first spawn");
}

/// Ping-pong over rendezvous channels, from whoever calls it.
fn bounce(iters: u64) -> Duration {
    common::bounce(iters, || chan::bounded(0))
}

fn ping_pong(c: &mut Criterion) {
    let mut group = c.benchmark_group("chan_mt");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ping_pong_green_and_plain_thread", |b| {
        b.iter_custom(bounce)
    });
    group.bench_function("ping_pong_two_green_threads_2_workers", |b| {
        b.iter_custom(|iters| weft::run(move || bounce(iters)))
    });
    group.finish();
}

fn mpmc(c: &mut Criterion) {
    let mut group = c.benchmark_group("chan_mt");
    group.throughput(Throughput::Elements(1));
    // Per message, 4 green producers and 4 green consumers on bounded(1024).
    group.bench_function("mpmc_bounded_1024_4p_4c", |b| {
        b.iter_custom(|iters| {
            weft::run(move || {
                let per_producer = iters / 4 + 1;
                let (tx, rx) = chan::bounded::<u64>(1024);
                let start = Instant::now();
                weft::scope(|s| {
                    for _ in 0..4 {
                        let tx = tx.clone();
                        s.spawn(move || {
                            for i in 0..per_producer {
                                tx.send(i).unwrap();
                            }
                        });
                    }
                    drop(tx);
                    for _ in 0..4 {
                        let rx = rx.clone();
                        s.spawn(move || rx.iter().map(std::hint::black_box).count());
                    }
                });
                start.elapsed() * (iters as u32).max(1) / ((per_producer * 4) as u32).max(1)
            })
        })
    });
    group.finish();
}

fn contended_mutex(c: &mut Criterion) {
    let mut group = c.benchmark_group("mutex_mt");
    group.throughput(Throughput::Elements(1));
    group.bench_function("contended_4_green_threads_2_workers", |b| {
        b.iter_custom(|iters| {
            weft::run(move || {
                let lock = Arc::new(Mutex::new(0u64));
                let per_thread = iters / 4 + 1;
                let start = Instant::now();
                weft::scope(|s| {
                    for _ in 0..4 {
                        let lock = lock.clone();
                        s.spawn(move || {
                            for _ in 0..per_thread {
                                *lock.lock().unwrap() += 1;
                            }
                        });
                    }
                });
                start.elapsed() * (iters as u32).max(1) / ((per_thread * 4) as u32).max(1)
            })
        })
    });
    group.finish();
}

fn config() -> Criterion {
    two_workers();
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = ping_pong, mpmc, contended_mutex
}
criterion_main!(benches);
