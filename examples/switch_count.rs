//! A fixed amount of switching, for instruction counting with callgrind (asm-notes/switch-path.md).
//!
//! `switch_count yield N`: one green thread on one worker calls `yield_now` N times.
//! `switch_count spawn N`: one green thread on one worker spawns and joins N green threads.
//! `switch_count raw N`:   N raw corosensei resume+suspend round trips (the floor).
//! Count two sizes and subtract to cancel start-up costs.

use corosensei::{Coroutine, CoroutineResult};

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "yield".into());
    let n: u64 = args.next().map_or(100_000, |s| s.parse().expect("N"));
    match mode.as_str() {
        "yield" => {
            weft::Config::new().workers(1).apply().unwrap();
            weft::run(move || {
                for _ in 0..n {
                    weft::yield_now();
                }
            });
        }
        "spawn" => {
            weft::Config::new().workers(1).apply().unwrap();
            weft::run(move || {
                for _ in 0..n {
                    weft::spawn(|| ()).join().unwrap();
                }
            });
        }
        "raw" => {
            let mut coroutine = Coroutine::new(|yielder, ()| loop {
                yielder.suspend(());
            });
            for _ in 0..n {
                if let CoroutineResult::Return(()) = coroutine.resume(()) {
                    unreachable!();
                }
            }
        }
        other => panic!("unknown mode {other}: expected yield, spawn or raw"),
    }
}
