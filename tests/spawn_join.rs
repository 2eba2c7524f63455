//! Spawning and joining: many green threads, from plain threads and from green threads.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn spawn_and_join_100_000_from_a_plain_thread() {
    common::workers(2);
    let handles: Vec<_> = (0..100_000u64)
        .map(|i| weft::spawn(move || i * 2))
        .collect();
    let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 2 * (100_000 * 99_999 / 2));
}

#[test]
fn spawn_and_join_100_000_from_a_green_thread() {
    common::workers(2);
    let sum = common::watchdog(120, || {
        weft::run(|| {
            assert!(weft::is_coroutine());
            let handles: Vec<_> = (0..100_000u64).map(|i| weft::go!(move || i + 1)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
    });
    assert_eq!(sum, 100_000 * 100_001 / 2);
}

#[test]
fn nested_spawns_join_from_green_threads() {
    common::workers(2);
    // A binary tree of green threads, each joining its two children.
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let left = weft::spawn(move || tree(depth - 1));
        let right = weft::spawn(move || tree(depth - 1));
        left.join().unwrap() + right.join().unwrap()
    }
    assert_eq!(common::watchdog(120, || weft::run(|| tree(12))), 1 << 12);
}

#[test]
fn a_dropped_handle_detaches_and_the_green_thread_still_runs() {
    common::workers(2);
    let done = Arc::new(AtomicUsize::new(0));
    for _ in 0..1000 {
        let done = done.clone();
        drop(weft::spawn(move || {
            weft::yield_now();
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    common::watchdog(60, move || {
        while done.load(Ordering::SeqCst) < 1000 {
            std::thread::yield_now();
        }
    });
}

#[test]
fn is_finished_turns_true_once_the_result_is_ready() {
    common::workers(2);
    let gate = Arc::new(std::sync::Barrier::new(2));
    let inner = gate.clone();
    let handle = weft::spawn(move || {
        // Blocks this worker briefly; fine for a test with two workers.
        inner.wait();
        7
    });
    assert!(!handle.is_finished());
    gate.wait();
    while !handle.is_finished() {
        std::thread::yield_now();
    }
    assert_eq!(handle.join().unwrap(), 7);
}

#[test]
fn builder_names_and_ids() {
    common::workers(2);
    let handle = weft::Builder::new()
        .name("named")
        .spawn(|| {
            let me = weft::current();
            (me.id(), me.name().map(str::to_owned))
        })
        .unwrap();
    let from_handle = handle.coroutine().id();
    let (id, name) = handle.join().unwrap();
    assert_eq!(id, from_handle);
    assert_eq!(name.as_deref(), Some("named"));
    assert_eq!(format!("{id}"), id.as_u64().to_string());
    let other = weft::spawn(|| weft::current().id()).join().unwrap();
    assert_ne!(other, id, "ids are unique");
    assert!(weft::spawn(|| weft::current().name().is_none())
        .join()
        .unwrap());
}

#[test]
fn run_returns_the_value_and_works_nested() {
    common::workers(2);
    assert_eq!(weft::run(|| weft::run(|| 5) + 1), 6);
}

#[test]
fn run_can_borrow_from_the_caller() {
    common::workers(2);
    let words = ["a", "bc", "def"];
    let total = weft::run(|| words.iter().map(|w| w.len()).sum::<usize>());
    assert_eq!(total, 6);
}

#[test]
fn stats_count_spawns_and_switches() {
    common::workers(2);
    let before = weft::stats();
    let handles: Vec<_> = (0..100).map(|_| weft::spawn(weft::yield_now)).collect();
    for h in handles {
        h.join().unwrap();
    }
    let after = weft::stats();
    assert!(after.spawned >= before.spawned + 100);
    // Each of the 100 ran once and resumed after its yield: at least 200 switches.
    assert!(after.switches >= before.switches + 200);
    assert_eq!(after.workers, 2);
    assert!(after.guard_pages == "madvise" || after.guard_pages == "mprotect");
}

#[test]
fn joining_your_own_handle_panics_instead_of_hanging() {
    // std panics with EDEADLK here; waiting would never end.
    common::workers(2);
    let message = common::watchdog(60, || {
        let (handle_tx, handle_rx) = weft::chan::bounded::<weft::JoinHandle<()>>(1);
        let (report_tx, report_rx) = weft::chan::bounded::<String>(1);
        let handle = weft::spawn(move || {
            let me = handle_rx.recv().unwrap();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| me.join()));
            let payload = outcome.expect_err("a self-join returned");
            let text = payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            report_tx.send(text).unwrap();
        });
        handle_tx.send(handle).unwrap();
        report_rx.recv().unwrap()
    });
    assert!(message.contains("join itself"), "{message}");
    assert!(message.contains("deadlock"), "{message}");
}

/// `weft::run` from several plain threads at once, each nesting another `run` and spawning:
/// one runtime serves them all, and each gets its own results.
#[test]
fn run_from_several_plain_threads_at_once() {
    common::workers(2);
    common::watchdog(120, || {
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                std::thread::spawn(move || {
                    weft::run(move || {
                        let handles: Vec<_> = (0..500u64)
                            .map(|i| weft::spawn(move || weft::run(move || t * 1000 + i)))
                            .collect();
                        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
                    })
                })
            })
            .collect();
        for (t, thread) in threads.into_iter().enumerate() {
            let t = t as u64;
            assert_eq!(
                thread.join().unwrap(),
                t * 1000 * 500 + (0..500).sum::<u64>()
            );
        }
    });
}
