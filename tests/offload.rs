//! `weft::offload`: blocking calls run on the blocking pool while the green thread parks.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Ticker;

#[test]
fn offload_returns_borrows_and_re_raises_panics() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let mut words = vec!["warp"];
            let n = weft::offload(|| {
                words.push("weft"); // a mutable borrow of the caller's stack
                words.len()
            });
            assert_eq!((n, words.as_slice()), (2, ["warp", "weft"].as_slice()));
            // It ran on another OS thread.
            let caller = std::thread::current().id();
            assert_ne!(weft::offload(|| std::thread::current().id()), caller);
            let payload = std::panic::catch_unwind(|| {
                weft::offload(|| -> u32 { std::panic::panic_any(42u16) })
            })
            .unwrap_err();
            assert_eq!(payload.downcast_ref::<u16>(), Some(&42));
        });
        // On a plain thread it is a plain call, on the calling thread.
        let caller = std::thread::current().id();
        assert_eq!(weft::offload(|| std::thread::current().id()), caller);
    });
}

#[test]
fn a_blocking_call_in_offload_does_not_stall_the_worker() {
    // One worker: a std sleep on it would stop the ticker for the whole 300 ms.
    common::workers(1);
    let during = common::watchdog(60, || {
        weft::run(|| {
            let ticker = Ticker::start();
            let ((), during) =
                ticker.during(|| weft::offload(|| std::thread::sleep(Duration::from_millis(300))));
            during
        })
    });
    assert!(during >= 30, "the ticker ticked {during} times in 300 ms");
}

#[test]
fn many_concurrent_offloads_all_complete() {
    common::workers(1);
    let before = weft::stats().offloaded;
    let total = common::watchdog(60, || {
        weft::run(|| {
            let handles: Vec<_> = (0..2_000u64)
                .map(|i| weft::spawn(move || weft::offload(move || i * 2)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
        })
    });
    assert_eq!(total, 2 * (0..2_000u64).sum::<u64>());
    let stats = weft::stats();
    assert!(stats.offloaded >= before + 2_000, "{stats:?}");
    assert!(stats.blocking_threads <= 512, "{stats:?}");
}

#[test]
#[ignore = "child process of the_pool_never_exceeds_its_maximum_and_queues_the_rest"]
fn child_bounded_pool() {
    if !common::is_child() {
        return;
    }
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    weft::run(|| {
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let (running, most) = (running.clone(), most.clone());
                weft::spawn(move || {
                    weft::offload(|| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    println!(
        "most at once: {}, threads: {}",
        most.load(Ordering::SeqCst),
        weft::stats().blocking_threads
    );
}

#[test]
fn the_pool_never_exceeds_its_maximum_and_queues_the_rest() {
    let output = common::run_child(
        "child_bounded_pool",
        &[("WEFT_MAX_BLOCKING_THREADS", "4"), ("WEFT_WORKERS", "2")],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{:?}\n{stdout}\n{}",
        output.status,
        common::stderr_of(&output)
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("most at once"))
        .expect(&stdout);
    // All 40 ran, never more than 4 at once, on at most 4 threads.
    assert!(line.contains("most at once: 4,"), "{line}");
    let threads: usize = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((1..=4).contains(&threads), "{line}");
}

#[test]
fn config_refuses_a_zero_blocking_maximum() {
    assert_eq!(
        weft::Config::new().max_blocking_threads(0).apply(),
        Err(weft::ConfigError::InvalidBlockingThreads(0))
    );
}
