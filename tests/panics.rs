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
