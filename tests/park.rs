//! park/unpark: tokens, races, and the plain-thread fallback.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn unpark_before_park_is_not_lost() {
    common::workers(2);
    let unparked = Arc::new(AtomicBool::new(false));
    let flag = unparked.clone();
    let handle = weft::spawn(move || {
        // Wait (without parking) until the unpark has certainly happened...
        while !flag.load(Ordering::Acquire) {
            weft::yield_now();
        }
        // ...then park: the stored token makes this return at once.
        weft::park();
        "returned"
    });
    handle.coroutine().unpark();
    unparked.store(true, Ordering::Release);
    assert_eq!(
        common::watchdog(60, move || handle.join().unwrap()),
        "returned"
    );
}

#[test]
fn many_unparks_collapse_into_one_token() {
    common::workers(2);
    let step = Arc::new(AtomicUsize::new(0));
    let seen = step.clone();
    let handle = weft::spawn(move || {
        while seen.load(Ordering::Acquire) == 0 {
            weft::yield_now();
        }
        weft::park(); // consumes the single token left by three unparks
        seen.store(2, Ordering::Release);
        // This park needs a fresh unpark; it must not return on the old ones.
        weft::park();
    });
    let me = handle.coroutine();
    me.unpark();
    me.unpark();
    me.unpark();
    step.store(1, Ordering::Release);
    common::watchdog(60, {
        let step = step.clone();
        move || {
            while step.load(Ordering::Acquire) != 2 {
                std::thread::yield_now();
            }
        }
    });
    // Give the green thread every chance to (wrongly) finish without a token.
    for _ in 0..1000 {
        std::thread::yield_now();
    }
    assert!(!handle.is_finished(), "park returned without a token");
    me.unpark();
    common::watchdog(60, move || handle.join().unwrap());
}

/// Wakes one side of the handshake, whether it is a green thread or a plain thread.
type Waker = Box<dyn Fn() + Send + Sync>;

/// A handshake in which each side parks until the other has bumped a counter, many times.
/// A lost wake-up hangs it (the watchdog turns that into a failure).
fn ping_pong(rounds: u64, spawn_a: bool, spawn_b: bool) {
    let counter = Arc::new(AtomicU64::new(0));
    let peers: Arc<std::sync::Mutex<[Option<Waker>; 2]>> = Arc::default();
    let side = |parity: u64, green: bool| {
        let counter = counter.clone();
        let peers = peers.clone();
        let body = move || {
            let me: Waker = if weft::is_coroutine() {
                let c = weft::current();
                Box::new(move || c.unpark())
            } else {
                let t = std::thread::current();
                Box::new(move || t.unpark())
            };
            peers.lock().unwrap()[parity as usize] = Some(me);
            let other = 1 - parity as usize;
            let wake_other = || {
                if let Some(w) = &peers.lock().unwrap()[other] {
                    w();
                }
            };
            loop {
                let value = counter.load(Ordering::Acquire);
                if value >= rounds {
                    wake_other();
                    return;
                }
                if value % 2 == parity {
                    counter.store(value + 1, Ordering::Release);
                    wake_other();
                } else {
                    weft::park();
                }
            }
        };
        if green {
            let h = weft::spawn(body);
            Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() + Send>
        } else {
            let h = std::thread::spawn(body);
            Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() + Send>
        }
    };
    let a = side(0, spawn_a);
    let b = side(1, spawn_b);
    common::watchdog(120, move || {
        a();
        b();
    });
    assert_eq!(counter.load(Ordering::Acquire), rounds);
}

#[test]
fn park_unpark_races_green_to_green() {
    common::workers(2);
    ping_pong(20_000, true, true);
}

#[test]
fn park_unpark_races_green_and_plain_thread() {
    common::workers(2);
    ping_pong(20_000, true, false);
}

#[test]
fn weft_park_falls_back_to_the_os_thread() {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let t = std::thread::spawn(move || {
        assert!(!weft::is_coroutine());
        while !flag.load(Ordering::Acquire) {
            weft::park();
        }
        weft::yield_now(); // std::thread::yield_now here
    });
    done.store(true, Ordering::Release);
    t.thread().unpark();
    t.join().unwrap();
}

#[test]
#[should_panic(expected = "outside a green thread")]
fn current_panics_outside_a_green_thread() {
    weft::current();
}
