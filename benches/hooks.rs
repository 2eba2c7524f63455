//! The `hooks` feature's costs (`cargo bench --features hooks --bench hooks`):
//! * the pass-through path: `write(2)` of one byte to /dev/null from a plain thread through
//!   weft's hook, against libc's own `write` (found with `dlsym(RTLD_NEXT)`), which is what
//!   the call costs without the feature;
//! * the green path: an echo round trip (64 B, one worker) over `std::net` sockets made green
//!   by the hooks, against the same over `weft::net`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

type Write3 = unsafe extern "C" fn(libc::c_int, *const libc::c_void, libc::size_t) -> libc::ssize_t;

fn pass_through(c: &mut Criterion) {
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&devnull);
    // SAFETY (bench): dlsym for libc's write, of this type.
    let libc_write: Write3 =
        unsafe { std::mem::transmute(libc::dlsym(libc::RTLD_NEXT, c"write".as_ptr())) };
    let byte = [0u8; 1];
    let mut group = c.benchmark_group("hooks_pass_through");
    group.throughput(Throughput::Elements(1));
    group.bench_function("write_devnull_libc", |b| {
        // SAFETY (bench): a valid fd and buffer.
        b.iter(|| unsafe { libc_write(fd, byte.as_ptr().cast(), 1) })
    });
    group.bench_function("write_devnull_raw_syscall", |b| {
        // SAFETY (bench): as above.
        b.iter(|| unsafe { libc::syscall(libc::SYS_write, fd, byte.as_ptr(), 1usize) })
    });
    group.bench_function("write_devnull_hooked", |b| {
        // SAFETY (bench): as above; `libc::write` binds to weft's hook with the feature.
        b.iter(|| unsafe { libc::write(fd, byte.as_ptr().cast(), 1) })
    });
    group.finish();
}

/// An echo round-trip loop (64 B, client and server green threads on one worker) over the
/// listener and stream types of a module: `std::net` (made green by the hooks) or
/// `weft::net` (same method names), so both run exactly the same code.
macro_rules! echo {
    ($name:ident, $net:path) => {
        fn $name(iters: u64) -> Duration {
            use $net as net;
            weft::run(move || {
                let listener = net::TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let server = weft::spawn(move || {
                    let (mut s, _) = listener.accept().unwrap();
                    let mut buf = [0u8; 64];
                    while let Ok(n @ 1..) = s.read(&mut buf) {
                        s.write_all(&buf[..n]).unwrap();
                    }
                });
                let mut client = net::TcpStream::connect(addr).unwrap();
                client.set_nodelay(true).unwrap();
                let msg = [7u8; 64];
                let mut back = [0u8; 64];
                let start = Instant::now();
                for _ in 0..iters {
                    client.write_all(&msg).unwrap();
                    client.read_exact(&mut back).unwrap();
                }
                let took = start.elapsed();
                drop(client);
                server.join().unwrap();
                took
            })
        }
    };
}

echo!(echo_std, std::net);
echo!(echo_weft, weft::net);

fn green_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("hooks_green_echo_one_worker");
    group.throughput(Throughput::Elements(1));
    group.bench_function("std_net_hooked", |b| b.iter_custom(echo_std));
    group.bench_function("weft_net", |b| b.iter_custom(echo_weft));
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::config(1);
    targets = pass_through, green_path
}
criterion_main!(benches);
