//! `select!` allocates nothing on its own: a counting global allocator (this test binary's
//! only) sees no allocation across 1,000 selects whose arms are ready.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is `GlobalAlloc::alloc`'s, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_select_over_ready_arms_allocates_nothing() {
    let allocations = weft::run(|| {
        let (tx_a, rx_a) = weft::chan::bounded::<u64>(4);
        let (tx_b, rx_b) = weft::chan::bounded::<u64>(4);
        let mut got = 0;
        // Warm up: the first select seeds its random state.
        tx_a.send(0).unwrap();
        weft::select! {
            recv(rx_a) -> v => got += v.unwrap(),
            recv(rx_b) -> v => got += v.unwrap(),
        }
        COUNTING.store(true, Ordering::Relaxed);
        for i in 0..1_000 {
            tx_a.send(i).unwrap();
            tx_b.send(i).unwrap();
            for _ in 0..2 {
                weft::select! {
                    recv(rx_a) -> v => got += v.unwrap(),
                    recv(rx_b) -> v => got += v.unwrap(),
                }
            }
        }
        COUNTING.store(false, Ordering::Relaxed);
        assert_eq!(got, 2 * (0..1_000).sum::<u64>());
        ALLOCATIONS.load(Ordering::Relaxed)
    });
    assert_eq!(allocations, 0);
}
