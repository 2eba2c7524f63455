//! The rule of the one blocking point: a cancel or a deadline may unwind a wait only while
//! nobody else can reach the wait's memory. A wait that a waker has already claimed (a
//! value is being moved into it, a lock or a notification handed to it) completes first;
//! the interrupt takes effect at the next blocking point. Each test below races an
//! interrupt against a claim, in a loop, and checks that nothing is lost and nothing
//! crashes (before the fix these lost messages and wrote into dead stack frames).
//!
//! `WEFT_STRESS=N` multiplies the trial counts.

#![allow(clippy::result_large_err)] // the large value is the point: a slow move

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft::sync::{Condvar, Mutex};

/// A value whose move takes a while (a 4 MiB memcpy into fresh stack pages), so that the
/// window between a claim of a rendezvous wait and its `DONE` store is wide.
struct Big([u8; BIG]);
const BIG: usize = 4 << 20;

/// A rendezvous sender waits under `weft::deadline`; a receiver on a plain thread claims
/// its wait (and copies the value out) just before, at or just after the deadline. Whatever
/// the outcome, a send that returned `Ok` must have been received and a received value
/// must have been sent with `Ok`: the sender either completes the claimed wait or leaves
/// before anyone claimed it. Before the fix the sender unwound mid-claim: the value
/// arrived but the send said `Elapsed`, and the receiver then woke a dead stack frame.
#[test]
fn rendezvous_claim_against_a_deadline_loses_nothing() {
    let trials = common::scaled(30);
    let patience = Duration::from_millis(300);
    let (mut delivered, mut withdrawn) = (0, 0);
    for trial in 0..trials {
        let (tx, rx) = weft::chan::bounded::<Big>(0);
        let (start_tx, start_rx) = std::sync::mpsc::channel();
        let sender = weft::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || {
                let deadline = Instant::now() + patience;
                start_tx.send(deadline).unwrap();
                matches!(
                    weft::deadline(deadline, || tx.send(Big([7; BIG]))),
                    Ok(Ok(()))
                )
            })
            .unwrap();
        let receiver = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || {
                // Warm up: the receive path's big frames fault their pages in once, here,
                // and not between the chosen moment and the claim.
                let (_keep, idle) = weft::chan::bounded::<Big>(0);
                let _ = idle.recv_timeout(Duration::ZERO);
                let deadline = start_rx.recv().unwrap();
                // Claim between 2 ms before the deadline and 1 ms after it.
                let claim_at = deadline - Duration::from_micros(2_000)
                    + Duration::from_micros((trial as u64 % 30) * 100);
                std::thread::sleep(claim_at.saturating_duration_since(Instant::now()));
                match rx.recv_timeout(Duration::from_millis(100)) {
                    Ok(big) => {
                        assert!(big.0.iter().all(|&b| b == 7));
                        true
                    }
                    Err(_) => false,
                }
            })
            .unwrap();
        let received = receiver.join().unwrap();
        let sent = sender.join().unwrap();
        assert_eq!(
            sent, received,
            "trial {trial}: the send returned Ok: {sent}, the value arrived: {received}"
        );
        delivered += sent as usize;
        withdrawn += !sent as usize;
    }
    eprintln!("{trials} trials: {delivered} delivered, {withdrawn} withdrawn by the deadline");
}

/// `notify_all` claims every waiter under the condvar's lock and then completes them one by
/// one; meanwhile the last waiters are cancelled. A cancelled waiter that was already
/// claimed must take the notification (and unwind at its next blocking point), never leave
/// while the notifier still writes into its wait.
#[test]
fn notify_all_against_cancels_of_claimed_waiters() {
    let rounds = common::scaled(3);
    for _ in 0..rounds {
        let waiters = 20_000;
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let waiting = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..waiters)
            .map(|_| {
                let (pair, waiting) = (pair.clone(), waiting.clone());
                weft::spawn(move || {
                    let (lock, cvar) = &*pair;
                    let mut ready = lock.lock().unwrap();
                    waiting.fetch_add(1, Ordering::SeqCst);
                    while !*ready {
                        ready = cvar.wait(ready).unwrap();
                    }
                })
            })
            .collect();
        while waiting.load(Ordering::SeqCst) < waiters {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Every waiter is queued once it has released the lock inside `wait`.
        drop(pair.0.lock().unwrap());
        let last: Vec<weft::Coroutine> = handles[waiters - 2_000..]
            .iter()
            .map(|h| h.coroutine().clone())
            .collect();
        let canceller = std::thread::spawn(move || {
            for coroutine in last.iter().rev() {
                coroutine.cancel();
            }
        });
        *pair.0.lock().unwrap() = true;
        pair.1.notify_all();
        canceller.join().unwrap();
        let (mut finished, mut cancelled) = (0, 0);
        for handle in handles {
            match handle.join() {
                Ok(()) => finished += 1,
                Err(payload) => {
                    assert!(payload.is::<weft::Cancelled>());
                    cancelled += 1;
                }
            }
        }
        assert_eq!(finished + cancelled, waiters);
    }
}

/// A mutex handed to a waiter that a cancel or deadline is interrupting must never be
/// stranded: either the waiter takes it (and drops it when it unwinds at its next blocking
/// point), or the waiter leaves the queue before anyone hands it over. After every trial
/// the lock must be free.
#[test]
fn mutex_hand_off_against_interrupts_strands_no_lock() {
    let trials = common::scaled(2_000);
    weft::run(move || {
        let lock = Arc::new(Mutex::new(0u64));
        for trial in 0..trials {
            let guard = lock.lock().unwrap();
            let waiter = {
                let lock = lock.clone();
                weft::spawn(move || {
                    let _ = weft::timeout(Duration::from_micros(50 + trial as u64 % 50), || {
                        *lock.lock().unwrap() += 1;
                    });
                })
            };
            let victim = waiter.coroutine().clone();
            // Let the waiter queue, then release the lock while its deadline (or a cancel,
            // every other trial) lands.
            weft::yield_now();
            if trial % 2 == 0 {
                victim.cancel();
            } else {
                std::thread::sleep(Duration::from_micros(40));
            }
            drop(guard);
            let _ = waiter.join();
            assert!(
                lock.try_lock().is_ok(),
                "trial {trial}: the lock stayed held after its waiter was interrupted"
            );
        }
    });
}
