//! File IO and the blocking pool, on ONE worker: a cached 4 KiB read through weft's
//! page-cache fast path, through `offload` of std's read (what a read costs when it must go
//! to the pool), and through std on a plain thread (the floor); and an empty `offload` round
//! trip (two cross-thread wakes); and cold 4 KiB reads that wait for the disk (through the
//! worker's io_uring ring by default, through the pool with `WEFT_IO=epoll`).
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

/// A 256 MiB file whose pages are dropped from the page cache before each batch of reads
/// (`POSIX_FADV_DONTNEED`), so that every read waits for the disk.
struct ColdFile {
    path: PathBuf,
    file: std::fs::File,
}

const COLD_PAGES: u64 = 65536;

impl ColdFile {
    fn new() -> ColdFile {
        let path = std::env::temp_dir().join(format!("weft-bench-cold-{}", std::process::id()));
        let chunk = vec![5u8; 1 << 20];
        let mut file = std::fs::File::create(&path).unwrap();
        for _ in 0..(COLD_PAGES * 4096) >> 20 {
            std::io::Write::write_all(&mut file, &chunk).unwrap();
        }
        file.sync_all().unwrap();
        let file = std::fs::File::open(&path).unwrap();
        ColdFile { path, file }
    }

    fn evict(&self) {
        use std::os::fd::AsRawFd;
        // SAFETY: an advice call on an open fd; it touches no memory of ours.
        let rc =
            unsafe { libc::posix_fadvise(self.file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
    }
}

impl Drop for ColdFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The offset of the `i`th cold read: a page picked by a multiplicative hash, so that reads
/// are random and readahead does not serve the next one.
fn cold_offset(i: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % COLD_PAGES * 4096
}

/// Cold 4 KiB reads: each waits for the disk. weft's `File` goes to the worker's io_uring
/// ring after the `RWF_NOWAIT` miss (run with `WEFT_IO=epoll` for the blocking pool
/// instead); std on a plain thread is the floor. One reader, and 16 readers at once.
fn cold_reads(c: &mut Criterion) {
    let cold = ColdFile::new();
    let path = cold.path.clone();
    let mut group = c.benchmark_group("cold_read_4k");
    group.sample_size(20);
    for readers in [1u64, 16] {
        group.bench_function(format!("weft_fs_read_at_{readers}_readers"), |b| {
            b.iter_custom(|iters| {
                cold.evict();
                let path = path.clone();
                weft::run(move || {
                    let file = std::sync::Arc::new(weft::fs::File::open(&path).unwrap());
                    let start = Instant::now();
                    let handles: Vec<_> = (0..readers)
                        .map(|r| {
                            let file = file.clone();
                            weft::spawn(move || {
                                let mut buf = [0u8; 4096];
                                for i in (r..iters).step_by(readers as usize) {
                                    let n = file.read_at(&mut buf, cold_offset(i)).unwrap();
                                    assert_eq!(n, 4096);
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().unwrap();
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.bench_function("std_read_at_plain_thread", |b| {
        b.iter_custom(|iters| {
            cold.evict();
            let mut buf = [0u8; 4096];
            let start = Instant::now();
            for i in 0..iters {
                assert_eq!(cold.file.read_at(&mut buf, cold_offset(i)).unwrap(), 4096);
            }
            start.elapsed()
        })
    });
    group.finish();
}

/// Buffered 4 KiB writes (no sync) into the page cache, 1 writer and 16 writers, each on its
/// own file. ext4 does not take `RWF_NOWAIT` for buffered writes, so each one leaves the
/// worker: to the ring by default, to the pool with `WEFT_IO=epoll`.
fn writes(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_4k");
    group.throughput(Throughput::Bytes(4096));
    for writers in [1u64, 16] {
        group.bench_function(format!("weft_fs_write_at_{writers}_writers"), |b| {
            b.iter_custom(|iters| {
                weft::run(move || {
                    let files: Vec<_> = (0..writers)
                        .map(|w| {
                            let path = std::env::temp_dir()
                                .join(format!("weft-bench-w{w}-{}", std::process::id()));
                            (weft::fs::File::create(&path).unwrap(), path)
                        })
                        .collect();
                    let files = std::sync::Arc::new(files);
                    let start = Instant::now();
                    let handles: Vec<_> = (0..writers)
                        .map(|w| {
                            let files = files.clone();
                            weft::spawn(move || {
                                let buf = [3u8; 4096];
                                let file = &files[w as usize].0;
                                for i in (w..iters).step_by(writers as usize) {
                                    assert_eq!(file.write_at(&buf, i * 4096).unwrap(), 4096);
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.join().unwrap();
                    }
                    let elapsed = start.elapsed();
                    for (_, path) in files.iter() {
                        std::fs::remove_file(path).unwrap();
                    }
                    elapsed
                })
            })
        });
    }
    group.finish();
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
    targets = reads, cold_reads, writes, offload_round_trip
}
criterion_main!(benches);
