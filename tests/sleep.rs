//! Timers: sleeps never end early, many sleepers wake in deadline order, a green thread that
//! sleeps does not block its worker, and park_timeout keeps std's token semantics.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn sleep_never_returns_early() {
    common::workers(2);
    common::watchdog(60, || {
        let handles: Vec<_> = (0..200u64)
            .map(|i| {
                weft::spawn(move || {
                    let want = Duration::from_micros(100 + i * 97);
                    let start = Instant::now();
                    weft::sleep(want);
                    start.elapsed() >= want
                })
            })
            .collect();
        assert!(handles.into_iter().all(|h| h.join().unwrap()));
    });
}

#[test]
fn sleepers_wake_in_deadline_order() {
    common::workers(1);
    common::watchdog(60, || {
        let order = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        // Spawned in reverse, with deadlines 3 ms apart (coarser than the 1 ms timer
        // rounding), so arrival order can only come from the deadlines.
        let handles: Vec<_> = (0..20u64)
            .rev()
            .map(|i| {
                let order = order.clone();
                weft::spawn(move || {
                    weft::sleep_until(start + Duration::from_millis(5 + 3 * i));
                    order.lock().unwrap().push(i);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let order = order.lock().unwrap().clone();
        assert_eq!(order, (0..20).collect::<Vec<_>>());
    });
}

#[test]
fn a_sleeping_green_thread_leaves_its_worker_free() {
    common::workers(1);
    common::watchdog(60, || {
        let done = weft::run(|| {
            let sleeper = weft::spawn(|| {
                weft::sleep(Duration::from_millis(50));
                "slept"
            });
            // On one worker, this loop can only make progress if the sleep parked.
            let mut spins = 0u64;
            while !sleeper.is_finished() {
                spins += 1;
                weft::yield_now();
            }
            (sleeper.join().unwrap(), spins > 0)
        });
        assert_eq!(done, ("slept", true));
    });
}

#[test]
fn timers_fire_while_every_worker_is_busy() {
    common::workers(1);
    common::watchdog(60, || {
        let finished = weft::run(|| {
            let sleeper = weft::spawn(|| weft::sleep(Duration::from_millis(5)));
            // A yield loop keeps the only worker busy: the timer must still fire, from the
            // worker's periodic poll.
            while !sleeper.is_finished() {
                weft::yield_now();
            }
            sleeper.join().is_ok()
        });
        assert!(finished);
    });
}

#[test]
fn park_timeout_returns_after_the_timeout_or_on_unpark() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let start = Instant::now();
            weft::park_timeout(Duration::from_millis(10));
            // std allows spurious returns, but weft has nobody to unpark us here.
            assert!(start.elapsed() >= Duration::from_millis(10));

            let me = weft::current();
            let waker = weft::spawn(move || {
                weft::sleep(Duration::from_millis(1));
                me.unpark();
            });
            weft::park_timeout(Duration::from_secs(3600)); // returns on the unpark
            waker.join().unwrap();
        });
    });
}

#[test]
fn plain_threads_fall_back_to_std() {
    let start = Instant::now();
    weft::sleep(Duration::from_millis(3));
    assert!(start.elapsed() >= Duration::from_millis(3));
    let deadline = Instant::now() + Duration::from_millis(2);
    weft::sleep_until(deadline);
    assert!(Instant::now() >= deadline);
    weft::park_timeout(Duration::from_millis(1));
    weft::sleep(Duration::ZERO);
}
