//! Core scheduler costs on ONE worker: yield, spawn+join, spawn_many, chained_spawn, and the
//! raw corosensei switch they are built on (the floor).
//!
//! `cargo bench --bench core`. Every figure is per operation; see the README for results.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use corosensei::{Coroutine, CoroutineResult};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Runs `f(iters)` inside a green thread and returns the time it measured.
fn in_green_thread(iters: u64, f: fn(u64) -> Duration) -> Duration {
    weft::run(move || f(iters))
}

fn raw_switch(c: &mut Criterion) {
    c.bench_function("raw_corosensei_resume_suspend", |b| {
        let mut coroutine = Coroutine::new(|yielder, ()| loop {
            yielder.suspend(());
        });
        b.iter(|| match coroutine.resume(()) {
            CoroutineResult::Yield(()) => {}
            CoroutineResult::Return(()) => unreachable!(),
        });
    });
}

fn yield_now(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield");
    group.throughput(Throughput::Elements(1));
    // One green thread yielding alone: suspend to the worker, requeue, pop, resume.
    group.bench_function("yield_one", |b| {
        b.iter_custom(|iters| {
            in_green_thread(iters, |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    weft::yield_now();
                }
                start.elapsed()
            })
        })
    });
    // Ten green threads yielding round-robin (tokio's yield_many shape); per yield.
    group.bench_function("yield_many_10", |b| {
        b.iter_custom(|iters| {
            in_green_thread(iters, |iters| common::spread(iters, 10, weft::yield_now))
        })
    });
    group.finish();
}

fn spawn_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("spawn");
    group.throughput(Throughput::Elements(1));
    group.bench_function("spawn_join_from_green", |b| {
        b.iter_custom(|iters| {
            in_green_thread(iters, |iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    weft::spawn(|| ()).join().unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("spawn_join_from_plain_thread", |b| {
        b.iter(|| weft::spawn(|| ()).join().unwrap());
    });
    group.bench_function("spawn_many_1000", |b| {
        b.iter_custom(|iters| {
            in_green_thread(iters, |iters| {
                let mut handles = Vec::with_capacity(1000);
                let start = Instant::now();
                let mut left = iters;
                while left > 0 {
                    let n = left.min(1000);
                    handles.extend((0..n).map(|_| weft::spawn(|| ())));
                    for h in handles.drain(..) {
                        h.join().unwrap();
                    }
                    left -= n;
                }
                start.elapsed()
            })
        })
    });
    // Each green thread spawns the next and exits; the last one wakes the measuring thread.
    group.bench_function("chained_spawn", |b| {
        fn chain(n: u64, done: Arc<AtomicBool>, waiter: weft::Coroutine) {
            if n == 0 {
                done.store(true, Ordering::Release);
                waiter.unpark();
            } else {
                drop(weft::spawn(move || chain(n - 1, done, waiter)));
            }
        }
        b.iter_custom(|iters| {
            in_green_thread(iters, |iters| {
                let done = Arc::new(AtomicBool::new(false));
                let start = Instant::now();
                let (flag, me) = (done.clone(), weft::current());
                drop(weft::spawn(move || chain(iters, flag, me)));
                while !done.load(Ordering::Acquire) {
                    weft::park();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

/// What cancellation and deadlines cost: a `timeout` around a body that never blocks (the
/// boundary and its `catch_unwind`, no timer), and a yield inside a `timeout` (each yield
/// then checks the clock).
fn interrupt(c: &mut Criterion) {
    let mut group = c.benchmark_group("interrupt");
    group.throughput(Throughput::Elements(1));
    group.bench_function("timeout_around_a_body_that_does_not_block", |b| {
        b.iter_custom(|iters| {
            in_green_thread(iters, |iters| {
                let start = Instant::now();
                for i in 0..iters {
                    let r = weft::timeout(Duration::from_secs(60), || std::hint::black_box(i));
                    assert!(r.is_ok());
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("yield_inside_a_timeout", |b| {
        b.iter_custom(|iters| {
            in_green_thread(iters, |iters| {
                weft::timeout(Duration::from_secs(3600), || {
                    let start = Instant::now();
                    for _ in 0..iters {
                        weft::yield_now();
                    }
                    start.elapsed()
                })
                .unwrap()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config(1);
    targets = raw_switch, yield_now, spawn_join, interrupt
}
criterion_main!(benches);
