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
