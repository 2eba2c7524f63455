//! File IO and the blocking pool, on ONE worker: a cached 4 KiB read through weft's
//! page-cache fast path, through `offload` of std's read (what a read costs when it must go
//! to the pool), and through std on a plain thread (the floor); and an empty `offload` round
//! trip (two cross-thread wakes).
//!
//! `cargo bench --bench fs`. Every figure is per operation; `benches/peers` has tokio::fs.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// A 1 MiB file, read once so that its pages are cached.
fn cached_file() -> PathBuf {
    let path = std::env::temp_dir().join(format!("weft-bench-fs-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
    assert_eq!(std::fs::read(&path).unwrap().len(), 1 << 20);
    path
}

/// The offset of the `i`th 4 KiB read: walks the file so each read is a different page.
fn offset(i: u64) -> u64 {
    (i % 256) * 4096
}

fn reads(c: &mut Criterion) {
    let path = cached_file();
    let mut group = c.benchmark_group("cached_read_4k");
    group.throughput(Throughput::Bytes(4096));
    group.bench_function("weft_fs_read_at", |b| {
        b.iter_custom(|iters| {
            let path = path.clone();
            weft::run(move || {
                let file = weft::fs::File::open(&path).unwrap();
                let mut buf = [0u8; 4096];
                let start = Instant::now();
                for i in 0..iters {
                    assert_eq!(file.read_at(&mut buf, offset(i)).unwrap(), 4096);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("offload_std_read_at", |b| {
        b.iter_custom(|iters| {
            let path = path.clone();
            weft::run(move || {
                let file = std::fs::File::open(&path).unwrap();
                let mut buf = [0u8; 4096];
                let start = Instant::now();
                for i in 0..iters {
                    let n = weft::offload(|| file.read_at(&mut buf, offset(i)).unwrap());
                    assert_eq!(n, 4096);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("std_read_at_plain_thread", |b| {
        let file = std::fs::File::open(&path).unwrap();
        let mut buf = [0u8; 4096];
        let mut i = 0;
        b.iter(|| {
            i += 1;
            assert_eq!(file.read_at(&mut buf, offset(i)).unwrap(), 4096);
        })
    });
    group.finish();
    std::fs::remove_file(path).unwrap();
}

fn offload_round_trip(c: &mut Criterion) {
    c.bench_function("offload_empty_round_trip", |b| {
        b.iter_custom(|iters| {
            weft::run(move || {
                let start = Instant::now();
                for _ in 0..iters {
                    weft::offload(|| ());
                }
                start.elapsed()
            })
        })
    });
}

criterion_group! {
    name = benches;
    config = common::config(1).measurement_time(Duration::from_secs(3));
    targets = reads, offload_round_trip
}
criterion_main!(benches);
