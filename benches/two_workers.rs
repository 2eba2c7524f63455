//! Costs on TWO workers: yield; the latency of one cross-thread wake (a plain thread or a
//! green thread on the other worker unparks a parked green thread whose worker went to
//! sleep); channel ping-pong between a green thread and a plain thread, between two green
//! threads placed by the scheduler, and between two green threads forced onto different
//! workers; bounded(1024) MPMC throughput with 4 producers and 4 consumers; a Mutex contended
//! by 4 green threads.
//!
//! `cargo bench --bench two_workers`. Figures are per yield, wake, round trip, message or
//! lock.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Release};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use weft::chan;
use weft::sync::Mutex;

/// Ping-pong over rendezvous channels, from whoever calls it.
fn bounce(iters: u64) -> Duration {
    common::bounce(iters, || chan::bounded(0))
}

/// Runs `first` and `second` as green threads on *different* workers: `first` keeps its
/// worker busy until `second` has started, so `second` can only start on the other worker,
/// and a started green thread never changes worker. Returns `second`'s result.
fn on_two_workers<T: Send + 'static>(
    first: impl FnOnce() + Send + 'static,
    second: impl FnOnce() -> T + Send + 'static,
) -> T {
    let started = Arc::new(AtomicBool::new(false));
    let seen = started.clone();
    let first = weft::spawn(move || {
        while !seen.load(Acquire) {
            std::hint::spin_loop();
        }
        first()
    });
    let result = weft::spawn(move || {
        started.store(true, Release);
        second()
    })
    .join()
    .unwrap();
    first.join().unwrap();
    result
}

fn yield_now(c: &mut Criterion) {
    let mut group = c.benchmark_group("yield_mt");
    group.throughput(Throughput::Elements(1));
    // The other worker has nothing to do: it searches, then sleeps.
    group.bench_function("yield_one_2_workers", |b| {
        b.iter_custom(|iters| {
            weft::run(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    weft::yield_now();
                }
                start.elapsed()
            })
        })
    });
    // Ten yielders spread by stealing over both workers; per yield.
    group.bench_function("yield_many_10_2_workers", |b| {
        b.iter_custom(|iters| weft::run(move || common::spread(iters, 10, weft::yield_now)))
    });
    group.finish();
}

/// One-way wake latency: round `i` stamps the time, raises `round` to `i` and unparks the
/// parked green thread, which adds the time until it runs to `total` and acknowledges. The
/// waker spins on the acknowledgement, then lets the wakee's worker go back to sleep.
struct Wake {
    base: Instant,
    round: AtomicU64,
    acked: AtomicU64,
    sent_at: AtomicU64,
    total: AtomicU64,
}

impl Wake {
    fn new() -> Arc<Wake> {
        Arc::new(Wake {
            base: Instant::now(),
            round: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            sent_at: AtomicU64::new(0),
            total: AtomicU64::new(0),
        })
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    /// The wakee's side: `iters` rounds, parked in between.
    fn wakee(&self, iters: u64) {
        for i in 1..=iters {
            while self.round.load(Acquire) < i {
                weft::park();
            }
            let latency = self.now() - self.sent_at.load(Acquire);
            self.total
                .store(self.total.load(Acquire) + latency, Release);
            self.acked.store(i, Release);
        }
    }

    /// The waker's side; returns the summed latency.
    fn waker(&self, iters: u64, wakee: weft::Coroutine) -> Duration {
        for i in 1..=iters {
            self.sent_at.store(self.now(), Release);
            self.round.store(i, Release);
            wakee.unpark();
            while self.acked.load(Acquire) < i {
                std::hint::spin_loop();
            }
            // Long enough for the wakee's worker to finish searching and sleep (~20–50 µs).
            let pause = Instant::now();
            while pause.elapsed() < Duration::from_micros(150) {
                std::hint::spin_loop();
            }
        }
        Duration::from_nanos(self.total.load(Acquire))
    }
}

fn wake_latency(c: &mut Criterion) {
    let mut group = c.benchmark_group("wake");
    group.throughput(Throughput::Elements(1));
    group.bench_function("plain_thread_wakes_green_thread_on_sleeping_worker", |b| {
        b.iter_custom(|iters| {
            let wake = Wake::new();
            let w = wake.clone();
            let wakee = weft::spawn(move || w.wakee(iters));
            let total = wake.waker(iters, wakee.coroutine());
            wakee.join().unwrap();
            total
        })
    });
    group.bench_function("green_thread_wakes_green_thread_on_sleeping_worker", |b| {
        b.iter_custom(|iters| {
            let wake = Wake::new();
            let (w, handle) = (wake.clone(), Arc::new(std::sync::OnceLock::new()));
            let h = handle.clone();
            on_two_workers(
                move || {
                    h.set(weft::current()).unwrap();
                    w.wakee(iters)
                },
                move || {
                    // `first` registers itself once it sees this one started.
                    let wakee: weft::Coroutine = loop {
                        match handle.get() {
                            Some(wakee) => break weft::Coroutine::clone(wakee),
                            None => std::hint::spin_loop(),
                        }
                    };
                    wake.waker(iters, wakee)
                },
            )
        })
    });
    group.finish();
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
    // Every message a wake of the other worker (which may be searching or asleep).
    group.bench_function("ping_pong_across_workers", |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = chan::bounded::<u64>(0);
            let (pong_tx, pong_rx) = chan::bounded::<u64>(0);
            on_two_workers(
                move || {
                    for value in ping_rx.iter() {
                        pong_tx.send(value).unwrap();
                    }
                },
                move || {
                    let start = Instant::now();
                    for i in 0..iters {
                        ping_tx.send(i).unwrap();
                        pong_rx.recv().unwrap();
                    }
                    start.elapsed()
                },
            )
        })
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
                let lock = Mutex::new(0u64);
                common::spread(iters, 4, || *lock.lock().unwrap() += 1)
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config(2).sample_size(20);
    targets = yield_now, wake_latency, ping_pong, mpmc, contended_mutex
}
criterion_main!(benches);
