//! weft next to its peers: the same scenarios on weft, may, tokio (both schedulers) and plain
//! std threads, one process per runtime, one table at the end.
//!
//! ```text
//! weft-peers micro RUNTIME               yield, yield_10, spawn_join, ping_pong,
//!                                        file_read_4k (ns per op)
//! weft-peers echo-server RUNTIME ADDR    a 4 KiB-buffer echo server, until killed
//! weft-peers http-server RUNTIME ADDR    a keep-alive "Hello, world!" server, until killed
//! weft-peers echo-load ADDR CONNS SECS [PID]
//!                                        the one load generator for every echo server;
//!                                        with the server's PID, also its CPU per round trip
//! weft-peers idle-load ADDR CONNS PID    CONNS idle connections: server RSS per connection
//! weft-peers cpu PID                     CPU nanoseconds (user + sys) PID has used so far
//! weft-peers table RESULTS.tsv           the markdown table, with each ratio to weft
//! ```
//!
//! RUNTIME is one of `weft`, `may`, `tokio-ct` (current_thread), `tokio-mt` (multi_thread) and
//! `std` (one OS thread per task); `echo-server` and `http-server` also take `epoll-floor` and
//! `uring-floor` (hand-written single-threaded servers on epoll and on io_uring, the floors
//! every runtime is compared with), and
//! `http-server` also takes `may_minihttp`. `run.sh` drives it
//! all. Every output line of `micro`, `echo-load` and `idle-load` is `scenario<TAB>value`:
//! nanoseconds per operation, except `*_sys` (syscalls per operation) and `idle_*` (bytes).

mod http;
mod load;
mod rt_floor;
mod rt_may;
mod rt_std;
mod rt_tokio;
mod rt_uring_floor;
mod rt_weft;
mod table;

use std::net::SocketAddr;
use std::process::exit;
use std::time::{Duration, Instant};

/// Worker threads for every multi-threaded server, and for tokio-mt's micro scenarios
/// (`PEERS_WORKERS`, default 2). The micro scenarios of weft and may run on one worker, as the
/// design's table does.
pub fn server_workers() -> usize {
    std::env::var("PEERS_WORKERS")
        .ok()
        .map(|v| {
            v.parse()
                .ok()
                .filter(|&n| n > 0)
                .unwrap_or_else(|| fail(&format!("PEERS_WORKERS={v}: want a positive integer")))
        })
        .unwrap_or(2)
}

/// Time per operation of `run(iters)`, which performs `iters` operations and returns the time
/// they took: calibrates `iters` to ~100 ms a sample, then returns the median of 7 samples.
pub fn per_op(mut run: impl FnMut(u64) -> Duration) -> f64 {
    let mut iters = 16u64;
    let one = loop {
        let took = run(iters);
        if took >= Duration::from_millis(20) {
            break took.as_secs_f64() / iters as f64;
        }
        iters *= 2;
    };
    let iters = ((0.1 / one) as u64).max(1);
    let mut samples: Vec<f64> = (0..7)
        .map(|_| run(iters).as_secs_f64() * 1e9 / iters as f64)
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// A 1 MiB file whose pages are cached (it was just written and read back), for the
/// `file_read_4k` scenario: sequential 4 KiB reads, back to the start every 256.
pub fn cached_file() -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("weft-peers-{}", std::process::id()));
    std::fs::write(&path, vec![7u8; 1 << 20]).expect("write the bench file");
    assert_eq!(std::fs::read(&path).expect("read it back").len(), 1 << 20);
    path
}

/// The `file_read_4k` loop for a blocking-style file type: opens the [`cached_file`] with
/// `open`, times `iters` reads, removes the file.
pub fn time_file_reads<F: std::io::Read + std::io::Seek>(
    open: impl FnOnce(&std::path::Path) -> std::io::Result<F>,
    iters: u64,
) -> Duration {
    use std::io::SeekFrom;
    let path = cached_file();
    let mut file = open(&path).unwrap();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    for i in 0..iters {
        if i % 256 == 0 {
            file.seek(SeekFrom::Start(0)).unwrap();
        }
        file.read_exact(&mut buf).unwrap();
    }
    let took = start.elapsed();
    std::fs::remove_file(path).unwrap();
    took
}

/// Prints one result line.
pub fn report(scenario: &str, ns: f64) {
    println!("{scenario}\t{ns:.1}");
}

fn fail(message: &str) -> ! {
    eprintln!("weft-peers: {message}");
    exit(2)
}

fn addr(arg: Option<&String>) -> SocketAddr {
    let arg = arg.unwrap_or_else(|| fail("missing ADDR (e.g. 127.0.0.1:7001)"));
    arg.parse()
        .unwrap_or_else(|e| fail(&format!("ADDR {arg}: {e}")))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i);
    let runtime = || arg(1).map(String::as_str).unwrap_or("");
    match arg(0).map(String::as_str) {
        Some("micro") => match runtime() {
            "weft" => rt_weft::micro(),
            "may" => rt_may::micro(),
            "tokio-ct" => rt_tokio::micro(rt_tokio::Flavor::CurrentThread),
            "tokio-mt" => rt_tokio::micro(rt_tokio::Flavor::MultiThread),
            "std" => rt_std::micro(),
            other => fail(&format!("micro: unknown runtime {other:?}")),
        },
        Some(kind @ ("echo-server" | "http-server")) => {
            let addr = addr(arg(2));
            let http = kind == "http-server";
            match runtime() {
                "weft" => rt_weft::serve(addr, http),
                "may" => rt_may::serve(addr, http),
                "may_minihttp" if http => rt_may::serve_minihttp(addr),
                "tokio-ct" => rt_tokio::serve(rt_tokio::Flavor::CurrentThread, addr, http),
                "tokio-mt" => rt_tokio::serve(rt_tokio::Flavor::MultiThread, addr, http),
                "std" => rt_std::serve(addr, http),
                "epoll-floor" => rt_floor::serve(addr, http),
                "uring-floor" => rt_uring_floor::serve(addr, http),
                other => fail(&format!("{kind}: unknown runtime {other:?}")),
            }
        }
        Some("echo-load") => {
            let addr = addr(arg(1));
            let number = |i: usize, what: &str| -> u64 {
                arg(i)
                    .and_then(|s| s.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| {
                        fail(&format!("echo-load: {what} must be a positive integer"))
                    })
            };
            let conns = number(2, "CONNS") as usize;
            let secs = number(3, "SECS");
            // Optional: the server's pid, for its CPU time per round trip.
            let server = arg(4).map(|_| number(4, "SERVER_PID") as u32);
            match load::run(addr, conns, Duration::from_secs(secs), server) {
                Ok(r) => {
                    report(&format!("echo_{conns}"), r.ns);
                    if let Some(cpu) = r.cpu_ns {
                        report(&format!("echo_{conns}_cpu"), cpu);
                    }
                    eprintln!("round trips, warm-up included: {}", r.total);
                }
                Err(e) => fail(&format!("echo-load against {addr}: {e}")),
            }
        }
        Some("idle-load") => {
            let addr = addr(arg(1));
            let conns: usize = arg(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| fail("idle-load: CONNS must be a number"));
            let server: u32 = arg(3)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| fail("idle-load: SERVER_PID must be a pid"));
            match load::idle(addr, conns, server) {
                Ok(bytes) => report(&format!("idle_{conns}"), bytes),
                Err(e) => fail(&format!("idle-load against {addr}: {e}")),
            }
        }
        Some("cpu") => {
            // The CPU nanoseconds process PID has used so far (for run.sh's HTTP runs).
            let pid: u32 = arg(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| fail("cpu: PID must be a pid"));
            match load::cpu_ns(pid) {
                Ok(ns) => println!("{ns:.0}"),
                Err(e) => fail(&format!("cpu: {e}")),
            }
        }
        Some("table") => {
            let path = arg(1).unwrap_or_else(|| fail("table: missing RESULTS.tsv"));
            let text = std::fs::read_to_string(path)
                .unwrap_or_else(|e| fail(&format!("table: {path}: {e}")));
            print!("{}", table::render(&text));
        }
        _ => fail(
            "usage: weft-peers micro|echo-server|http-server|echo-load|idle-load|cpu|table … \
             (see src/main.rs)",
        ),
    }
}
