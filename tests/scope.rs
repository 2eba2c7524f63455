//! Scoped green threads borrow from the caller and are all joined before `scope` returns.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

#[test]
fn scoped_green_threads_borrow_and_mutate() {
    common::workers(2);
    let mut data = vec![1u64, 2, 3, 4, 5, 6, 7, 8];
    let counter = AtomicUsize::new(0);
    weft::scope(|s| {
        for chunk in data.chunks_mut(2) {
            let counter = &counter;
            s.spawn(move || {
                for x in chunk.iter_mut() {
                    weft::yield_now();
                    *x *= 10;
                }
                counter.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    // Every green thread finished before scope returned, without explicit joins.
    assert_eq!(counter.load(Ordering::Relaxed), 4);
    assert_eq!(data, [10, 20, 30, 40, 50, 60, 70, 80]);
}

#[test]
fn scoped_join_returns_borrowing_results() {
    common::workers(2);
    let text = String::from("alpha beta gamma");
    let longest = weft::scope(|s| {
        let handles: Vec<_> = text
            .split(' ')
            .map(|word| s.spawn(move || (word.len(), word)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .max()
            .unwrap()
            .1
    });
    assert_eq!(longest, "gamma");
}

#[test]
fn scope_inside_a_green_thread() {
    common::workers(2);
    let total = weft::run(|| {
        let numbers: Vec<u32> = (1..=100).collect();
        let sum = AtomicUsize::new(0);
        weft::scope(|s| {
            for part in numbers.chunks(10) {
                let sum = &sum;
                s.spawn(move || {
                    sum.fetch_add(part.iter().sum::<u32>() as usize, Ordering::Relaxed)
                });
            }
        });
        sum.into_inner()
    });
    assert_eq!(total, 5050);
}

#[test]
fn an_unjoined_panicking_scoped_thread_makes_scope_panic_after_all_finish() {
    common::workers(2);
    let finished = AtomicUsize::new(0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        weft::scope(|s| {
            s.spawn(|| panic!("scoped failure"));
            for _ in 0..10 {
                s.spawn(|| {
                    weft::yield_now();
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    }));
    let err = result.unwrap_err();
    assert_eq!(
        err.downcast_ref::<&str>(),
        Some(&"a scoped green thread panicked")
    );
    assert_eq!(
        finished.load(Ordering::SeqCst),
        10,
        "scope waited for everyone"
    );
}

#[test]
fn a_joined_panic_does_not_make_scope_panic() {
    common::workers(2);
    let caught = weft::scope(|s| s.spawn(|| panic!("handled")).join().is_err());
    assert!(caught);
}
