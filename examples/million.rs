//! Creates 1,000,000 parked green threads and prints what it cost: time, resident memory per
//! green thread, and mappings (VMAs) used — then wakes and joins them all.
//!
//! `cargo run --release --example million [count]` (default 1,000,000). Runs on one worker
//! unless WEFT_WORKERS says otherwise.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn map_count() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .count()
}

/// What `count` green threads cannot avoid: first-touching one fresh page each, spaced as
/// their stacks are (a default-size stack plus its guard page apart, so page tables are
/// allocated as for the stacks). Measured in the same run, since this VM's page-fault cost
/// varies from run to run.
fn page_fault_floor(count: usize) -> std::time::Duration {
    let page = 4096;
    let stride = weft::DEFAULT_STACK_SIZE + page;
    let len = count * stride;
    // SAFETY: a fresh private anonymous mapping, unmapped below; nothing else uses it.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(base, libc::MAP_FAILED, "mmap of the floor's pages");
    let base = base.cast::<u8>();
    let start = Instant::now();
    for i in 0..count {
        // The top page of each "stack", where a green thread's first frames land.
        // SAFETY: inside the mapping.
        unsafe { base.add((i + 1) * stride - 64).write_volatile(1) };
    }
    let elapsed = start.elapsed();
    // SAFETY: the mapping made above, no longer used.
    unsafe { libc::munmap(base.cast(), len) };
    elapsed
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |s| s.parse().expect("count"));
    if std::env::var_os("WEFT_WORKERS").is_none() {
        weft::Config::new().workers(1).apply().unwrap();
    }
    let floor = page_fault_floor(count);
    // Start the runtime and warm the allocator before measuring.
    weft::spawn(|| ()).join().unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let rss_before = rss_bytes();
    let maps_before = map_count();

    // Spawned from a green thread (as an accept loop would): each new green thread goes to
    // this worker's queue and runs up to its park when the spawner yields.
    let start = Instant::now();
    let handles = weft::run(|| {
        let mut handles = Vec::with_capacity(count);
        for i in 0..count {
            let release = release.clone();
            handles.push(weft::spawn(move || {
                while !release.load(Ordering::Acquire) {
                    weft::park();
                }
            }));
            if i % 1024 == 1023 {
                weft::yield_now(); // let the batch run up to its park
            }
        }
        // Everything spawned so far runs before this green thread resumes (FIFO queues).
        weft::yield_now();
        handles
    });
    let created = start.elapsed();
    let rss = rss_bytes() - rss_before;
    let maps = map_count() - maps_before;
    println!(
        "green threads:       {count} (all parked at once, {} workers)",
        weft::stats().workers
    );
    println!(
        "created and parked:  {created:.2?} ({:.0} ns each)",
        created.as_nanos() as f64 / count as f64
    );
    println!(
        "resident memory:     {:.1} MiB ({:.2} KiB per green thread, handles included)",
        rss as f64 / (1 << 20) as f64,
        rss as f64 / 1024.0 / count as f64
    );
    println!(
        "mappings (VMAs):     +{maps} (vm.max_map_count {}; guard pages: {})",
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .unwrap()
            .trim(),
        weft::stats().guard_pages
    );

    println!(
        "page-fault floor:    {floor:.2?} to first-touch {count} fresh stack-spaced pages \
         ({:.2}x that here)",
        created.as_secs_f64() / floor.as_secs_f64()
    );

    let start = Instant::now();
    release.store(true, Ordering::Release);
    for h in &handles {
        h.coroutine().unpark();
    }
    for h in handles {
        h.join().unwrap();
    }
    println!("woken and joined:    {:.2?}", start.elapsed());
}
