//! 100,000 green threads alive at once, under the default vm.max_map_count: guarded stacks
//! cost no VMA each.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn one_hundred_thousand_parked_green_threads() {
    common::workers(2);
    const N: usize = 100_000;
    let limit: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let maps_before = common::map_count();
    let release = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..N)
        .map(|i| {
            let release = release.clone();
            weft::spawn(move || {
                while !release.load(Ordering::Acquire) {
                    weft::park();
                }
                i
            })
        })
        .collect();
    // Wait until every one of them is alive at the same time (none can finish yet).
    common::watchdog(120, || {
        while weft::stats().live < N as u64 {
            std::thread::yield_now();
        }
    });
    assert!(weft::stats().live >= N as u64);
    let maps_during = common::map_count();
    assert!(maps_during < limit, "{maps_during} mappings, limit {limit}");
    assert!(
        maps_during - maps_before < 1_000,
        "{N} stacks cost {} mappings (guard mode {})",
        maps_during - maps_before,
        weft::stats().guard_pages
    );
    release.store(true, Ordering::Release);
    for h in &handles {
        h.coroutine().unpark();
    }
    let sum: usize = common::watchdog(120, move || {
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(sum, N * (N - 1) / 2);
}
