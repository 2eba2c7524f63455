//! A tour of weft's core: spawn many green threads, borrow with scope, see the sticky rule,
//! read the counters. `cargo run --release --example demo`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn main() {
    weft::run(|| {
        // 1. Spawn 100,000 green threads and join them all.
        let start = Instant::now();
        let handles: Vec<_> = (0..100_000u64)
            .map(|i| {
                weft::go!(move || {
                    weft::yield_now(); // let the others run, then continue
                    i % 7
                })
            })
            .collect();
        let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        println!(
            "100,000 green threads spawned, yielded and joined in {:.1?} (sum {sum})",
            start.elapsed()
        );

        // 2. Scoped green threads borrow from this stack.
        let words = [
            "weft", "is", "the", "thread", "woven", "across", "the", "warp",
        ];
        let letters = AtomicU64::new(0);
        weft::scope(|s| {
            for word in &words {
                let letters = &letters;
                s.spawn(move || letters.fetch_add(word.len() as u64, Ordering::Relaxed));
            }
        });
        println!(
            "scope: {} letters counted by {} borrowing green threads",
            letters.into_inner(),
            words.len()
        );

        // 3. The sticky rule: once started, a green thread stays on its worker.
        let handle = weft::Builder::new()
            .name("sticky")
            .spawn(|| {
                let home = std::thread::current().id();
                (0..10_000).all(|_| {
                    weft::yield_now();
                    std::thread::current().id() == home
                })
            })
            .unwrap();
        let name = handle.coroutine().name().unwrap_or("?").to_owned();
        println!(
            "green thread '{name}' stayed on one OS thread across 10,000 yields: {}",
            handle.join().unwrap()
        );

        // 4. A panic stays inside its green thread.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {})); // this panic is planned: keep the output tidy
        let err = weft::spawn(|| -> () { panic!("contained") })
            .join()
            .unwrap_err();
        std::panic::set_hook(default_hook);
        println!(
            "a panicking green thread reported: {:?}",
            err.downcast_ref::<&str>().unwrap()
        );
    });
    println!("{:#?}", weft::stats());
}
