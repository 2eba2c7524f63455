//! Fairness on ONE worker: green threads that yield in a loop starve neither their local
//! neighbours nor work spawned from plain threads (the global injector).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Spawns `n` green threads that yield until `stop` is set, counting their yields.
fn spinners(
    n: usize,
    stop: &Arc<AtomicBool>,
    yields: &Arc<AtomicU64>,
) -> Vec<weft::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let (stop, yields) = (stop.clone(), yields.clone());
            weft::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    yields.fetch_add(1, Ordering::Relaxed);
                    weft::yield_now();
                }
            })
        })
        .collect()
}

#[test]
fn yielding_loops_do_not_starve_later_green_threads() {
    common::workers(1);
    let stop = Arc::new(AtomicBool::new(false));
    let yields = Arc::new(AtomicU64::new(0));
    common::watchdog(60, {
        let (stop, yields) = (stop.clone(), yields.clone());
        move || {
            weft::run(move || {
                let spinning = spinners(3, &stop, &yields);
                // Spawned after the spinners, from a green thread: it must get its turn.
                let stopper = weft::spawn({
                    let stop = stop.clone();
                    move || stop.store(true, Ordering::Release)
                });
                stopper.join().unwrap();
                for s in spinning {
                    s.join().unwrap();
                }
            })
        }
    });
    assert!(stop.load(Ordering::Acquire));
}

#[test]
fn busy_worker_still_takes_work_from_plain_threads() {
    common::workers(1);
    let stop = Arc::new(AtomicBool::new(false));
    let yields = Arc::new(AtomicU64::new(0));
    // Two spinners keep the worker's own queue non-empty forever, so only the periodic
    // look at the global injector lets the plain thread's green thread in.
    let spinning = spinners(2, &stop, &yields);
    while yields.load(Ordering::Relaxed) < 1_000 {
        std::thread::yield_now();
    }
    let stopper = weft::spawn({
        let stop = stop.clone();
        move || stop.store(true, Ordering::Release)
    });
    common::watchdog(60, move || {
        stopper.join().unwrap();
        for s in spinning {
            s.join().unwrap();
        }
    });
    assert!(stop.load(Ordering::Acquire));
}

#[test]
fn a_yielding_spawner_does_not_outrun_its_backlog() {
    // A loop that spawns two green threads and yields: the yield must wait behind the work
    // that was runnable when it yielded (Go's Gosched), so the backlog stays small. It used
    // to get every other pick however long the queue was, and grew by one per iteration.
    common::workers(1);
    let max_backlog = common::watchdog(60, || {
        weft::run(|| {
            let finished = Arc::new(AtomicU64::new(0));
            let mut spawned = 0u64;
            let mut max_backlog = 0;
            for _ in 0..20_000 {
                for _ in 0..2 {
                    let finished = finished.clone();
                    drop(weft::spawn(move || {
                        finished.fetch_add(1, Ordering::Relaxed);
                    }));
                    spawned += 1;
                }
                weft::yield_now();
                max_backlog = max_backlog.max(spawned - finished.load(Ordering::Relaxed));
            }
            max_backlog
        })
    });
    assert!(
        max_backlog <= 64,
        "{max_backlog} spawned green threads were waiting at once"
    );
}

#[test]
fn woken_green_threads_keep_running_under_a_spawn_storm() {
    // While one green thread spawns and yields as fast as it can, two green threads that
    // wake each other (their wakes land in the worker's pinned queue) must keep making
    // progress *during* the storm, not only after it.
    common::workers(1);
    let (during, total) = common::watchdog(60, || {
        weft::run(|| {
            let rounds = Arc::new(AtomicU64::new(0));
            let stop = Arc::new(AtomicBool::new(false));
            let (ping_tx, ping_rx) = weft::chan::bounded::<()>(0);
            let (pong_tx, pong_rx) = weft::chan::bounded::<()>(0);
            let pinger = weft::spawn({
                let (rounds, stop) = (rounds.clone(), stop.clone());
                move || {
                    while !stop.load(Ordering::Acquire) {
                        ping_tx.send(()).unwrap();
                        pong_rx.recv().unwrap();
                        rounds.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            let ponger = weft::spawn(move || {
                while ping_rx.recv().is_ok() {
                    if pong_tx.send(()).is_err() {
                        break;
                    }
                }
            });
            // Let the pair start, so both have a home here and are woken as pinned tasks.
            while rounds.load(Ordering::Relaxed) < 10 {
                weft::yield_now();
            }
            let before = rounds.load(Ordering::Relaxed);
            for _ in 0..20_000 {
                drop(weft::spawn(|| ()));
                weft::yield_now();
            }
            let during = rounds.load(Ordering::Relaxed) - before;
            stop.store(true, Ordering::Release);
            pinger.join().unwrap();
            ponger.join().unwrap();
            (during, rounds.load(Ordering::Relaxed))
        })
    });
    assert!(
        during >= 1_000,
        "the woken pair made {during} round trips during 20,000 spawn+yields ({total} in all)"
    );
}

#[test]
fn two_yielders_do_not_starve_a_woken_green_thread() {
    // Two green threads spin on `yield_now` until a flag is set; the one that sets it is
    // woken into the worker's pinned queue. The yielders must leave it a turn (they once
    // took turns with each other for ever).
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let flag = Arc::new(AtomicBool::new(false));
            let (wake_tx, wake_rx) = weft::chan::bounded::<()>(0);
            let setter = weft::spawn({
                let flag = flag.clone();
                move || {
                    wake_rx.recv().unwrap(); // parks until a yielder wakes it
                    flag.store(true, Ordering::Release);
                }
            });
            let spin = |flag: Arc<AtomicBool>, wake: Option<weft::chan::Sender<()>>| {
                weft::spawn(move || {
                    if let Some(wake) = wake {
                        wake.send(()).unwrap(); // the setter becomes runnable (pinned)
                    }
                    while !flag.load(Ordering::Acquire) {
                        weft::yield_now();
                    }
                })
            };
            let first = spin(flag.clone(), None);
            weft::yield_now();
            let second = spin(flag.clone(), Some(wake_tx));
            setter.join().unwrap();
            first.join().unwrap();
            second.join().unwrap();
        })
    });
}
