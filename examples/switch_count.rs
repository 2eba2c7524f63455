//! A fixed amount of switching, for instruction counting with callgrind (asm-notes/switch-path.md).
//!
//! `switch_count yield N`: one green thread on one worker calls `yield_now` N times.
//! `switch_count spawn N`: one green thread on one worker spawns and joins N green threads.
//! `switch_count pingpong N`: two green threads on one worker bounce a value N times
//! through two unbounded channels.
//! `switch_count yield10 N`: ten green threads on one worker yield N times in all.
//! `switch_count tryrecv N`: one green thread calls `try_recv` on an empty channel N times
//! (the cooperative budget's cost per operation, and its forced yield every 128).
//! `switch_count burst N`: the demo's first step: one green thread spawns N green threads
//! that each yield once, then joins them all.
//! `switch_count plainspawn N`: a plain thread spawns N empty green threads (two workers),
//! then joins them all: how many worker wake-ups the spawns cost (count futex wakes).
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
        "pingpong" => {
            weft::Config::new().workers(1).apply().unwrap();
            weft::run(move || {
                let (ping_tx, ping_rx) = weft::chan::unbounded::<u64>();
                let (pong_tx, pong_rx) = weft::chan::unbounded::<u64>();
                let echo = weft::spawn(move || {
                    for value in ping_rx.iter() {
                        pong_tx.send(value).unwrap();
                    }
                });
                for i in 0..n {
                    ping_tx.send(i).unwrap();
                    pong_rx.recv().unwrap();
                }
                drop(ping_tx);
                echo.join().unwrap();
            });
        }
        "tryrecv" => {
            weft::Config::new().workers(1).apply().unwrap();
            weft::run(move || {
                let (_tx, rx) = weft::chan::unbounded::<u64>();
                for _ in 0..n {
                    std::hint::black_box(rx.try_recv().is_err());
                }
            });
        }
        "burst" => {
            weft::Config::new().workers(1).apply().unwrap();
            weft::run(move || {
                let handles: Vec<_> = (0..n)
                    .map(|i| {
                        weft::spawn(move || {
                            weft::yield_now();
                            i % 7
                        })
                    })
                    .collect();
                let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
                std::hint::black_box(sum);
            });
        }
        "plainspawn" => {
            weft::Config::new().workers(2).apply().unwrap();
            let handles: Vec<_> = (0..n).map(|i| weft::spawn(move || i)).collect();
            let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
            std::hint::black_box(sum);
        }
        "yield10" => {
            weft::Config::new().workers(1).apply().unwrap();
            weft::run(move || {
                weft::scope(|s| {
                    for _ in 0..10 {
                        s.spawn(move || {
                            for _ in 0..n / 10 {
                                weft::yield_now();
                            }
                        });
                    }
                });
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
        other => panic!("unknown mode {other}: expected yield, yield10, spawn, pingpong or raw"),
    }
}
