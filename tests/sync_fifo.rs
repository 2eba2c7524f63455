//! FIFO hand-off, observed deterministically on one worker: after each spawn the spawner
//! yields until the new green thread has started, and so (one worker) has run until it
//! parked: the queues fill in spawn order.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use weft::chan;
use weft::sync::{Condvar, Mutex, RwLock, Semaphore, TryLockError};

/// Spawns a green thread running `f` and yields until it has run up to its first park.
fn spawn_and_let_park<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> weft::JoinHandle<T> {
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let handle = weft::spawn(move || {
        s.store(1, Ordering::SeqCst);
        f()
    });
    // One worker: once we see the flag, the new green thread has suspended, i.e. parked.
    while started.load(Ordering::SeqCst) == 0 {
        weft::yield_now();
    }
    handle
}

/// Spawns `n` green threads running `f(i)`, each parked before the next one starts.
fn spawn_in_order(
    n: usize,
    f: impl Fn(usize) + Send + Sync + 'static,
) -> Vec<weft::JoinHandle<()>> {
    let f = Arc::new(f);
    (0..n)
        .map(|i| {
            let f = f.clone();
            spawn_and_let_park(move || f(i))
        })
        .collect()
}

#[test]
fn mutex_waiters_get_the_lock_in_arrival_order_without_barging() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let order = Arc::new(Mutex::new(Vec::new()));
            let guard = order.lock().unwrap();
            let o = order.clone();
            let waiters = spawn_in_order(5, move |i| o.lock().unwrap().push(i));
            drop(guard);
            // Handed to the first waiter: the unlocker cannot take it straight back.
            assert!(matches!(order.try_lock(), Err(TryLockError::WouldBlock)));
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(*order.lock().unwrap(), [0, 1, 2, 3, 4]);
        });
    });
}

#[test]
fn a_lock_hog_cannot_starve_a_waiter() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let lock = Arc::new(Mutex::new(()));
            let hog_rounds = Arc::new(AtomicUsize::new(0));
            let guard = lock.lock().unwrap();
            let (l, r) = (lock.clone(), hog_rounds.clone());
            // The hog queues for the lock first, then the waiter.
            let hog = spawn_and_let_park(move || {
                for _ in 0..100 {
                    let _g = l.lock().unwrap();
                    r.fetch_add(1, Ordering::SeqCst);
                    weft::yield_now();
                }
            });
            let (l, r) = (lock.clone(), hog_rounds.clone());
            let waiter = spawn_and_let_park(move || {
                let _g = l.lock().unwrap();
                r.load(Ordering::SeqCst)
            });
            drop(guard);
            // The hog gets one turn, then must queue behind the waiter.
            assert_eq!(waiter.join().unwrap(), 1);
            hog.join().unwrap();
        });
    });
}

#[test]
fn rwlock_readers_queue_behind_a_waiting_writer() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let lock = Arc::new(RwLock::new(Vec::new()));
            let read = lock.read().unwrap();
            let l = lock.clone();
            let writer = spawn_and_let_park(move || l.write().unwrap().push("writer"));
            // A reader arriving now would overtake the queued writer: it must wait instead.
            assert!(matches!(lock.try_read(), Err(TryLockError::WouldBlock)));
            let l = lock.clone();
            let reader = spawn_and_let_park(move || {
                let seen = l.read().unwrap().clone();
                seen
            });
            drop(read);
            writer.join().unwrap();
            assert_eq!(reader.join().unwrap(), ["writer"]);
        });
    });
}

#[test]
fn condvar_notify_one_wakes_the_longest_waiter() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let shared = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
            let s = shared.clone();
            let waiters = spawn_in_order(4, move |i| {
                let guard = s.0.lock().unwrap();
                let mut guard = s.1.wait(guard).unwrap();
                guard.push(i);
            });
            for _ in 0..4 {
                shared.1.notify_one();
                weft::yield_now();
            }
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(*shared.0.lock().unwrap(), [0, 1, 2, 3]);
        });
    });
}

#[test]
fn semaphore_permits_go_to_waiters_in_order() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let state = Arc::new((Semaphore::new(1), Mutex::new(Vec::new())));
            let permit = state.0.acquire();
            let s = state.clone();
            let waiters = spawn_in_order(4, move |i| {
                let _permit = s.0.acquire();
                s.1.lock().unwrap().push(i);
            });
            // Queued waiters come first: a newcomer's try_acquire fails even after a release.
            drop(permit);
            assert!(state.0.try_acquire().is_none());
            for w in waiters {
                w.join().unwrap();
            }
            assert_eq!(*state.1.lock().unwrap(), [0, 1, 2, 3]);
            assert_eq!(state.0.available(), 1);
        });
    });
}

#[test]
fn parked_receivers_are_served_in_arrival_order() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let (tx, rx) = chan::unbounded::<usize>();
            let (report, reports) = chan::unbounded();
            let receivers = spawn_in_order(4, move |i| {
                let got = rx.recv().unwrap();
                report.send((i, got)).unwrap();
            });
            for value in 0..4 {
                tx.send(value).unwrap();
            }
            for r in receivers {
                r.join().unwrap();
            }
            let mut got: Vec<_> = reports.try_iter().collect();
            got.sort();
            assert_eq!(got, [(0, 0), (1, 1), (2, 2), (3, 3)]);
        });
    });
}
