//! `coroutine_local!`: one value per green thread, dropped when it ends.

mod common;

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

weft::coroutine_local! {
    static ID: Cell<u64> = Cell::new(0);
    static LOG: RefCell<Vec<u64>> = RefCell::new(Vec::new());
    static GUARD: RefCell<Option<DropCounter>> = RefCell::new(None);
}

struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn each_green_thread_has_its_own_values_across_yields_and_workers() {
    common::workers(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let results = common::watchdog(60, {
        let drops = drops.clone();
        move || {
            weft::run(move || {
                let handles: Vec<_> = (1..=1000u64)
                    .map(|id| {
                        let drops = drops.clone();
                        weft::spawn(move || {
                            assert_eq!(ID.get(), 0, "a fresh green thread starts fresh");
                            ID.set(id);
                            GUARD.set(Some(DropCounter(drops)));
                            for round in 0..5 {
                                weft::yield_now();
                                LOG.with_borrow_mut(|log| log.push(id * 10 + round));
                                assert_eq!(ID.get(), id);
                            }
                            (ID.replace(0), LOG.take())
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            })
        }
    });
    for (i, (id, log)) in results.into_iter().enumerate() {
        let id_expected = i as u64 + 1;
        assert_eq!(id, id_expected);
        assert_eq!(
            log,
            (0..5).map(|r| id_expected * 10 + r).collect::<Vec<_>>()
        );
    }
    // Every green thread's value was dropped when it ended.
    assert_eq!(drops.load(Ordering::SeqCst), 1000);
}

#[test]
fn a_plain_thread_has_its_own_values() {
    let on_thread = std::thread::spawn(|| {
        ID.set(7);
        ID.get()
    })
    .join()
    .unwrap();
    assert_eq!(on_thread, 7);
    assert_eq!(ID.get(), 0);
}

#[test]
fn values_recreated_by_destructors_are_dropped_on_their_green_thread() {
    // A value whose destructor uses its own key re-creates it, for ever. Teardown drops it
    // round after round on the green thread, then closes the storage; nothing is left in
    // the task to be dropped later on another OS thread (unsound for `!Send` values).
    struct Stubborn;
    weft::coroutine_local! {
        static STUBBORN: RefCell<Option<Stubborn>> = RefCell::new(None);
    }
    static DROPS: AtomicUsize = AtomicUsize::new(0);
    static WRONG_THREAD: AtomicUsize = AtomicUsize::new(0);
    impl Drop for Stubborn {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
            if !std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("weft-worker"))
            {
                WRONG_THREAD.fetch_add(1, Ordering::SeqCst);
            }
            STUBBORN.with_borrow_mut(|slot| *slot = Some(Stubborn));
        }
    }
    let handle = weft::spawn(|| STUBBORN.with_borrow_mut(|slot| *slot = Some(Stubborn)));
    let task = handle.coroutine().clone();
    handle.join().unwrap();
    // Make the last reference to the task this thread's: the worker lets go of its own.
    std::thread::sleep(std::time::Duration::from_millis(50));
    drop(task);
    assert!(DROPS.load(Ordering::SeqCst) >= 16);
    assert_eq!(WRONG_THREAD.load(Ordering::SeqCst), 0);
}
