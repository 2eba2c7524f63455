//! The soundness rule: a started green thread resumes on its home worker only, unless it
//! opted into migration.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

#[test]
fn a_started_green_thread_never_changes_os_thread() {
    common::workers(2);
    let steals_before = weft::stats().steals;
    let helper_threads = Arc::new(Mutex::new(HashSet::<ThreadId>::new()));
    let helpers_seen = helper_threads.clone();
    let (threads, yields) = common::watchdog(120, move || {
        weft::spawn(move || {
            let home = std::thread::current().id();
            let mut seen = HashSet::new();
            let mut yields = 0u64;
            // At least 10,000 yields, and on until the other worker has been seen stealing
            // and running helpers (bounded: the test ends by itself either way).
            while yields < 10_000 || (helpers_seen.lock().unwrap().len() < 2 && yields < 1_000_000)
            {
                weft::yield_now();
                yields += 1;
                seen.insert(std::thread::current().id());
                if yields.is_multiple_of(50) {
                    // Stealable work, so the other worker wakes up and steals.
                    for _ in 0..8 {
                        let helpers_seen = helpers_seen.clone();
                        drop(weft::spawn(move || {
                            weft::yield_now();
                            helpers_seen
                                .lock()
                                .unwrap()
                                .insert(std::thread::current().id());
                        }));
                    }
                }
            }
            assert!(seen.contains(&home));
            (seen, yields)
        })
        .join()
        .unwrap()
    });
    assert_eq!(
        threads.len(),
        1,
        "a sticky green thread ran on {} OS threads",
        threads.len()
    );
    // The check only means something if the other worker was active meanwhile.
    assert_eq!(
        helper_threads.lock().unwrap().len(),
        2,
        "the other worker never ran helpers"
    );
    assert!(weft::stats().steals > steals_before, "no steals happened");
    assert!(yields >= 10_000);
}

#[test]
fn a_migratable_green_thread_does_move_under_load() {
    common::workers(2);
    // Four CPU-busy migratable green threads on two workers: when one worker's queue runs dry
    // it steals from the other, moving started green threads. Bounded rounds; one move is
    // enough evidence.
    let moved = common::watchdog(120, || {
        for _round in 0..50 {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    // SAFETY: the closure holds no thread-local or thread-affine value across
                    // yield_now; it only records thread ids by value.
                    let builder = unsafe { weft::Builder::new().migratable() };
                    builder
                        .spawn(|| {
                            let mut seen = HashSet::new();
                            for _ in 0..2_000 {
                                seen.insert(std::thread::current().id());
                                let mut x = 0u64;
                                for i in 0..200 {
                                    x = std::hint::black_box(x.wrapping_add(i));
                                }
                                weft::yield_now();
                            }
                            seen.len()
                        })
                        .unwrap()
                })
                .collect();
            let max = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .max()
                .unwrap();
            if max > 1 {
                return true;
            }
        }
        false
    });
    assert!(moved, "no migratable green thread ever changed OS thread");
}
