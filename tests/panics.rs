//! A panic stays inside its green thread: the payload reaches `join`, the rest carry on.

mod common;

use std::panic;

#[test]
fn panic_payload_reaches_join() {
    common::workers(2);
    let n = std::hint::black_box(42);
    let err = weft::spawn(move || -> u32 { panic!("boom {n}") })
        .join()
        .unwrap_err();
    assert_eq!(
        err.downcast_ref::<String>().map(String::as_str),
        Some("boom 42")
    );

    let err = weft::spawn(|| -> u32 { panic!("static boom") })
        .join()
        .unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"static boom"));

    let err = weft::spawn(|| panic::panic_any(17u8)).join().unwrap_err();
    assert_eq!(err.downcast_ref::<u8>(), Some(&17));
}

#[test]
fn other_green_threads_carry_on_after_panics() {
    common::workers(2);
    let handles: Vec<_> = (0..200u32)
        .map(|i| {
            weft::spawn(move || {
                weft::yield_now();
                if i % 3 == 0 {
                    panic!("planned failure {i}");
                }
                weft::yield_now();
                i
            })
        })
        .collect();
    let mut ok = 0;
    let mut failed = 0;
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(v) => {
                assert_eq!(v as usize, i);
                ok += 1;
            }
            Err(_) => failed += 1,
        }
    }
    assert_eq!((ok, failed), (133, 67));
    // The workers survived: new work still runs.
    assert_eq!(weft::spawn(|| 1).join().unwrap(), 1);
}

#[test]
fn run_re_raises_the_panic() {
    common::workers(2);
    let err = panic::catch_unwind(|| weft::run(|| panic!("from run"))).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"from run"));
}

#[test]
fn blocking_in_a_destructor_while_unwinding_blocks_the_os_thread() {
    common::workers(2);
    // A destructor that joins another green thread while its own green thread unwinds: the
    // join must block the OS thread (no switch mid-unwind), and still complete.
    struct JoinOnDrop(Option<weft::JoinHandle<u32>>);
    impl Drop for JoinOnDrop {
        fn drop(&mut self) {
            assert!(std::thread::panicking());
            let value = self.0.take().unwrap().join().unwrap();
            assert_eq!(value, 9);
        }
    }
    let result = common::watchdog(60, || {
        weft::spawn(|| {
            // The helper is spawned from a green thread, so it may only run on another
            // worker once this one blocks: with two workers it gets stolen.
            let helper = weft::spawn(|| 9u32);
            let _guard = JoinOnDrop(Some(helper));
            panic!("unwinding with a blocking destructor");
        })
        .join()
    });
    assert!(result.is_err());
    // Other green threads on the same workers are not confused about panicking.
    let clean = weft::spawn(std::thread::panicking).join().unwrap();
    assert!(!clean);
}

/// A result whose destructor panics.
struct PanicsOnDrop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
        panic!("the result panicked on drop");
    }
}

#[test]
fn a_detached_result_that_panics_on_drop_is_contained() {
    // Nobody joins, so the result is dropped on the green thread as it finishes. Its panic
    // is handled as any green thread's panic (reported by the hook, contained); it used to
    // escape into the worker and abort the process.
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    common::workers(2);
    let dropped = Arc::new(AtomicBool::new(false));
    common::watchdog(60, {
        let dropped = dropped.clone();
        move || {
            let (tx, rx) = weft::chan::bounded::<()>(0);
            drop(weft::spawn(move || {
                rx.recv().unwrap();
                PanicsOnDrop(dropped)
            }));
            tx.send(()).unwrap();
        }
    });
    while !dropped.load(Ordering::Acquire) {
        std::thread::yield_now();
    }
    // Both workers still run green threads.
    let handles: Vec<_> = (0..64).map(|i| weft::spawn(move || i)).collect();
    let sum: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(sum, 64 * 63 / 2);
}

#[test]
fn a_scoped_result_that_panics_on_drop_fails_the_scope() {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    common::workers(2);
    let dropped = Arc::new(AtomicBool::new(false));
    let outcome = common::watchdog(60, {
        let dropped = dropped.clone();
        move || {
            panic::catch_unwind(panic::AssertUnwindSafe(|| {
                weft::scope(|s| {
                    s.spawn(move || PanicsOnDrop(dropped));
                })
            }))
        }
    });
    assert!(outcome.is_err(), "the scope reports the panic");
    assert!(dropped.load(std::sync::atomic::Ordering::Acquire));
}
