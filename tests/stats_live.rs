//! `stats().live` counts a green thread as finished before its result can be seen, so it
//! reads 0 right after `run` returns (it used to read 1 in about a third of runs).

mod common;

#[test]
fn live_is_zero_right_after_run_returns() {
    // The only test in this file: nothing else runs green threads in this process.
    common::workers(2);
    for round in 0..200 {
        let value = weft::run(|| {
            let handles: Vec<_> = (0..4).map(|i| weft::spawn(move || i)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
        });
        assert_eq!(value, 6);
        let stats = weft::stats();
        assert_eq!(stats.live, 0, "round {round}: {stats:?}");
    }
}
