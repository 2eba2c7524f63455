//! The io_uring backend (the default): byte-exact IO through the ring, and the
//! claimed-wait rule for a buffer the kernel holds: a cancel or a timeout that races the
//! completion of a receive never loses the bytes it received, and never unwinds while the
//! kernel may still write into the frame. Each test runs in a child process with
//! `WEFT_IO=uring`, so it tests the ring whatever the environment of the test run says (the
//! whole suite runs on the default and once more with `WEFT_IO=epoll` in CI).

mod common;

use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{child_stdout, is_child, line_with, watchdog, Ticker};
use weft::net::{TcpListener, TcpStream};

fn in_ring_child(name: &'static str, workers: &'static str) -> String {
    // The scaled races run about 2 s per unit of WEFT_STRESS (the timeout race's writer
    // pauses alone take 187 s at 100).
    let secs = 120 + 3 * common::stress() as u64;
    watchdog(secs, move || {
        child_stdout(name, &[("WEFT_IO", "uring"), ("WEFT_WORKERS", workers)])
    })
}

/// A connected pair of loopback TCP streams, made in a green thread.
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = weft::spawn(move || TcpStream::connect(addr).unwrap());
    let (server, _) = listener.accept().unwrap();
    (server, client.join().unwrap())
}

/// xorshift: reproducible sizes and pauses without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn ring_echo_is_byte_exact() {
    let out = in_ring_child("ring_echo_child", "2");
    let line = line_with(&out, "ring echo:");
    assert!(line.contains("backend io_uring"), "{out}");
}

#[test]
#[ignore = "child process of ring_echo_is_byte_exact"]
fn ring_echo_child() {
    if !is_child() {
        return;
    }
    const CONNS: usize = 40;
    const ROUNDS: usize = 30;
    weft::run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = weft::spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..CONNS {
                let (mut stream, _) = listener.accept().unwrap();
                handlers.push(weft::spawn(move || {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = stream.read(&mut buf).unwrap();
                        if n == 0 {
                            return;
                        }
                        stream.write_all(&buf[..n]).unwrap();
                    }
                }));
            }
            for h in handlers {
                h.join().unwrap();
            }
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|c| {
                weft::spawn(move || {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
                    let mut moved = 0usize;
                    for _ in 0..ROUNDS {
                        let len = 1 + (next(&mut rng) % 50_000) as usize;
                        let data: Vec<u8> = (0..len).map(|_| next(&mut rng) as u8).collect();
                        // Write from a second green thread while this one reads: a large
                        // message fills both socket buffers.
                        let mut writer = stream.try_clone().unwrap();
                        let sent = data.clone();
                        let w = weft::spawn(move || writer.write_all(&sent).unwrap());
                        let mut back = vec![0u8; len];
                        stream.read_exact(&mut back).unwrap();
                        w.join().unwrap();
                        assert!(back == data, "connection {c}: echo differs");
                        moved += len;
                    }
                    moved
                })
            })
            .collect();
        let bytes: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
        server.join().unwrap();
        let stats = weft::stats();
        assert!(
            stats.ring_waits > 0,
            "no wait went through the ring: {stats:?}"
        );
        println!(
            "ring echo: backend {}, {CONNS} connections, {bytes} bytes each way, {} ring waits",
            stats.io_backend, stats.ring_waits
        );
    });
}

#[test]
fn ring_read_timeouts_lose_no_byte() {
    let out = in_ring_child("ring_read_timeout_child", "2");
    let line = line_with(&out, "ring timeouts:");
    assert!(
        !line.contains(" 0 timed out"),
        "no read timed out, so nothing raced: {out}"
    );
}

#[test]
#[ignore = "child process of ring_read_timeouts_lose_no_byte"]
fn ring_read_timeout_child() {
    if !is_child() {
        return;
    }
    let chunks = common::scaled(1500);
    weft::run(|| {
        let (mut reader, mut writer) = pair();
        // A receive timeout within the range of the writer's pauses: many reads time out just
        // as data arrives, which is the race between the cancel and the completion.
        reader
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        // A plain thread, so that its pauses do not stall the reader's worker.
        let w = std::thread::spawn(move || {
            let mut rng = 7u64;
            let mut seq = 0u8;
            let mut sent = 0usize;
            for _ in 0..chunks {
                let len = 1 + (next(&mut rng) % 64) as usize;
                let chunk: Vec<u8> = (0..len)
                    .map(|_| {
                        seq = seq.wrapping_add(1);
                        seq
                    })
                    .collect();
                writer.write_all(&chunk).unwrap();
                sent += len;
                if next(&mut rng).is_multiple_of(4) {
                    std::thread::sleep(Duration::from_micros(next(&mut rng) % 10_000));
                }
            }
            sent
        });
        let mut expect = 0u8;
        let mut got = 0usize;
        let mut timeouts = 0usize;
        let mut buf = [0u8; 256];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    for &b in &buf[..n] {
                        expect = expect.wrapping_add(1);
                        assert_eq!(b, expect, "byte {got} out of order: one was lost");
                        got += 1;
                    }
                }
                Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
                    timeouts += 1;
                    if w.is_finished() {
                        break;
                    }
                }
                Err(e) => panic!("read failed: {e}"),
            }
        }
        let sent = w.join().unwrap();
        // Whatever is still queued after the writer finished.
        reader
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        while got < sent {
            let n = reader.read(&mut buf).expect("the rest of the bytes");
            for &b in &buf[..n] {
                expect = expect.wrapping_add(1);
                assert_eq!(b, expect, "byte {got} out of order: one was lost");
                got += 1;
            }
        }
        assert_eq!(got, sent);
        println!("ring timeouts: {sent} bytes sent, {got} received, {timeouts} timed out");
    });
}

#[test]
fn ring_cancels_lose_no_byte() {
    let out = in_ring_child("ring_cancel_child", "2");
    let line = line_with(&out, "ring cancels:");
    assert!(
        !line.contains(" 0 cancelled"),
        "no read was cancelled: {out}"
    );
}

#[test]
#[ignore = "child process of ring_cancels_lose_no_byte"]
fn ring_cancel_child() {
    if !is_child() {
        return;
    }
    let rounds = common::scaled(400);
    weft::run(|| {
        let (reader, mut writer) = pair();
        let (completed, cancelled) = cancel_races(
            Arc::new(reader),
            |byte| writer.write_all(&[byte]).unwrap(),
            rounds,
            11,
        );
        println!("ring cancels: {rounds} rounds, {completed} completed, {cancelled} cancelled");
    });
}

/// `rounds` cancels racing the byte that a fresh read of `reader` waits for, each sent by
/// `write`: sometimes the cancel wins, sometimes the receive; most often the byte has
/// arrived but its completion is not reaped yet when the cancel comes (the worker reaps
/// when it next enters the ring): the case where a careless cancel would drop a received
/// byte. A cancelled read's byte is then taken here, so that the next round's read finds
/// nothing and waits. Every byte must be read exactly once, in order. Returns `(completed,
/// cancelled)`.
fn cancel_races<R>(
    reader: Arc<R>,
    mut write: impl FnMut(u8),
    rounds: usize,
    seed: u64,
) -> (usize, usize)
where
    R: Send + Sync + 'static,
    for<'a> &'a R: Read,
{
    let received = Arc::new(Mutex::new(Vec::new()));
    let (mut cancelled, mut completed) = (0usize, 0usize);
    let mut rng = seed;
    for round in 0..rounds {
        let started = Arc::new(AtomicBool::new(false));
        let r = weft::spawn({
            let (reader, received, started) = (reader.clone(), received.clone(), started.clone());
            move || {
                let mut buf = [0u8; 64];
                started.store(true, Ordering::Release);
                let n = (&*reader).read(&mut buf).unwrap();
                received.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        while !started.load(Ordering::Acquire) {
            weft::yield_now();
        }
        match next(&mut rng) % 3 {
            0 => {
                // The cancel most likely wins.
                r.cancel();
                weft::sleep(Duration::from_millis(1));
                write(round as u8);
            }
            1 => {
                r.cancel();
                write(round as u8);
            }
            _ => {
                write(round as u8);
                for _ in 0..next(&mut rng) % 4 {
                    weft::yield_now();
                }
                r.cancel();
            }
        }
        match r.join() {
            Ok(()) => completed += 1,
            Err(payload) => {
                assert!(payload.is::<weft::Cancelled>());
                cancelled += 1;
                let mut byte = [0u8; 1];
                (&*reader).read_exact(&mut byte).unwrap();
                received.lock().unwrap().push(byte[0]);
            }
        }
    }
    let all = received.lock().unwrap().clone();
    let want: Vec<u8> = (0..rounds).map(|r| r as u8).collect();
    assert_eq!(all, want, "a byte was lost or duplicated");
    (completed, cancelled)
}

#[test]
fn a_ring_wait_leaves_the_worker_free() {
    let out = in_ring_child("ring_worker_free_child", "1");
    line_with(&out, "ring wait:");
}

#[test]
#[ignore = "child process of a_ring_wait_leaves_the_worker_free"]
fn ring_worker_free_child() {
    if !is_child() {
        return;
    }
    weft::run(|| {
        let (mut reader, writer) = pair();
        let ticker = Ticker::start();
        let before = weft::stats().ring_waits;
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            (&writer).write_all(b"late").unwrap();
            writer
        });
        let (n, ticks) = ticker.during(|| {
            let mut buf = [0u8; 16];
            reader.read(&mut buf).unwrap()
        });
        let _writer = late.join().unwrap();
        assert_eq!(n, 4);
        assert!(
            weft::stats().ring_waits > before,
            "the read did not wait on the ring"
        );
        // ~300 ticks if the worker is free; a stalled worker counts none.
        assert!(
            ticks >= 30,
            "only {ticks} ticks while the read waited on the ring"
        );
        println!("ring wait: {ticks} ticks while a read waited 300 ms");
    });
}

#[test]
fn ring_writes_wait_for_a_full_buffer() {
    let out = in_ring_child("ring_full_buffer_child", "2");
    line_with(&out, "ring writes:");
}

#[test]
#[ignore = "child process of ring_writes_wait_for_a_full_buffer"]
fn ring_full_buffer_child() {
    if !is_child() {
        return;
    }
    const LEN: usize = 8 << 20;
    weft::run(|| {
        let (mut writer, reader) = pair();
        let reader = reader.into_std();
        reader.set_nonblocking(false).unwrap();
        let slow = std::thread::spawn(move || {
            let mut reader = reader;
            let (mut sum, mut total) = (0u64, 0usize);
            let mut buf = vec![0u8; 3000];
            loop {
                let n = reader.read(&mut buf).unwrap();
                if n == 0 {
                    return (sum, total);
                }
                sum = buf[..n]
                    .iter()
                    .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                total += n;
                if total % (1 << 20) < n {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        });
        let data: Vec<u8> = (0..LEN).map(|i| (i * 7 + i / 4093) as u8).collect();
        let want = data
            .iter()
            .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
        let waits = Arc::new(AtomicUsize::new(0));
        let before = weft::stats().ring_waits;
        writer.write_all(&data).unwrap();
        waits.store(
            (weft::stats().ring_waits - before) as usize,
            Ordering::Relaxed,
        );
        drop(writer);
        let (sum, total) = slow.join().unwrap();
        assert_eq!(total, LEN);
        assert_eq!(sum, want, "the bytes differ");
        let waits = waits.load(Ordering::Relaxed);
        assert!(waits > 0, "the writer never found the send buffer full");
        println!("ring writes: {LEN} bytes, {waits} waits on a full buffer");
    });
}

#[test]
fn a_ring_read_times_out_and_the_stream_stays_usable() {
    let out = in_ring_child("ring_read_times_out_child", "2");
    line_with(&out, "ring read timeout:");
}

#[test]
#[ignore = "child process of a_ring_read_times_out_and_the_stream_stays_usable"]
fn ring_read_times_out_child() {
    if !is_child() {
        return;
    }
    weft::run(|| {
        let (mut reader, mut writer) = pair();
        reader
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let before = weft::stats().ring_waits;
        let mut buf = [0u8; 8];
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
        assert!(
            weft::stats().ring_waits > before,
            "the read did not wait on the ring"
        );
        writer.write_all(b"after").unwrap();
        let n = reader.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"after");
        println!("ring read timeout: {err}");
    });
}

#[test]
fn ring_io_completes_while_the_worker_stays_busy() {
    let out = in_ring_child("ring_busy_worker_child", "1");
    line_with(&out, "ring busy:");
}

#[test]
#[ignore = "child process of ring_io_completes_while_the_worker_stays_busy"]
fn ring_busy_worker_child() {
    if !is_child() {
        return;
    }
    weft::run(|| {
        let (mut reader, writer) = pair();
        let done = Arc::new(AtomicBool::new(false));
        // Never idle: the worker reaches the ring only through its periodic turn (every 61
        // ticks), never through running dry or sleeping.
        let spinner = weft::spawn({
            let done = done.clone();
            move || {
                let start = std::time::Instant::now();
                let mut spins = 0u64;
                while !done.load(Ordering::Acquire) {
                    // Far above the ~100 ms the reads need: reaching it means the worker
                    // never reaped its ring while busy.
                    if start.elapsed() > Duration::from_secs(20) {
                        return None;
                    }
                    weft::yield_now();
                    spins += 1;
                }
                Some(spins)
            }
        });
        let reads = weft::spawn(move || {
            let mut buf = [0u8; 8];
            let mut got = 0;
            // Until all 50 bytes are in (two may arrive together on a slow run).
            while got < 50 {
                let n = reader.read(&mut buf).unwrap();
                assert!(n > 0, "end of file after {got} bytes");
                got += n;
            }
            got
        });
        // A plain thread writes, one byte at a time with pauses, so that each byte is most
        // likely a read of its own that waited on the ring.
        let writes = std::thread::spawn(move || {
            for i in 0..50u8 {
                std::thread::sleep(Duration::from_millis(2));
                (&writer).write_all(&[i]).unwrap();
            }
            writer
        });
        // The reader is homed on the one busy worker: it finishes only if that worker reaps
        // its ring while the spinner keeps it busy.
        let got = reads.join().unwrap();
        let _writer = writes.join().unwrap();
        done.store(true, Ordering::Release);
        let spins = spinner.join().unwrap();
        assert_eq!(got, 50);
        let spins = spins.expect("the reads completed only after the spinner gave up");
        assert!(weft::stats().ring_waits > 0);
        println!("ring busy: 50 bytes read while the worker yielded {spins} times");
    });
}

/// Runs the child test `name` with io_uring refused by a seccomp filter (`io_uring_setup`
/// fails with `EPERM`, as in a container whose profile blocks it), and returns its output.
fn child_without_io_uring(name: &str, envs: &[(&str, &str)]) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut command = common::child_command(name, envs);
    // SAFETY: between fork and exec the closure only makes two prctl calls on a filter that
    // lives on its own stack; it allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(|| {
            // io_uring_setup is syscall 425 on x86_64 and aarch64 alike.
            const IO_URING_SETUP: u32 = 425;
            let filter = [
                // Load the syscall number (offset 0 of seccomp_data).
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 0,
                },
                // io_uring_setup? Fall through to EPERM; otherwise skip one.
                libc::sock_filter {
                    code: 0x15,
                    jt: 0,
                    jf: 1,
                    k: IO_URING_SETUP,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x0005_0000 | libc::EPERM as u32,
                },
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000,
                },
            ];
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.output().unwrap()
}

#[test]
fn without_io_uring_weft_falls_back_to_epoll() {
    // By default the fallback is silent. (An empty WEFT_IO means the default, whatever the
    // test run's own environment says: CI runs the suite once with WEFT_IO=epoll.)
    let quiet = watchdog(120, || {
        child_without_io_uring("ring_fallback_child", &[("WEFT_IO", "")])
    });
    let (stdout, stderr) = (
        String::from_utf8_lossy(&quiet.stdout).into_owned(),
        common::stderr_of(&quiet),
    );
    assert!(quiet.status.success(), "{stdout}\n{stderr}");
    let line = line_with(&stdout, "fallback:");
    assert!(
        line.contains("epoll (io_uring could not be set up)"),
        "{line}"
    );
    assert!(!stderr.contains("io_uring cannot be set up"), "{stderr}");
    // Asked for by name, the ring's absence is said once.
    let asked = watchdog(120, || {
        child_without_io_uring("ring_fallback_child", &[("WEFT_IO", "uring")])
    });
    let stderr = common::stderr_of(&asked);
    assert!(asked.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("weft: WEFT_IO=uring, but io_uring cannot be set up")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
#[ignore = "child process of without_io_uring_weft_falls_back_to_epoll"]
fn ring_fallback_child() {
    if !is_child() {
        return;
    }
    weft::run(|| {
        let (mut a, mut b) = pair();
        a.write_all(b"still works").unwrap();
        let mut buf = [0u8; 11];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still works");
        let stats = weft::stats();
        assert_eq!(stats.ring_waits, 0);
        println!("fallback: {}", stats.io_backend);
    });
}

/// The byte at `at` of the file the file tests write: a function of the offset, so a read
/// from the wrong place or a torn write shows.
fn file_byte(at: u64) -> u8 {
    (at.wrapping_mul(31) >> 3) as u8 ^ (at >> 12) as u8
}

#[test]
fn cold_file_reads_and_refused_writes_go_through_the_ring() {
    let out = in_ring_child("ring_file_child", "2");
    println!("{}", line_with(&out, "ring files:"));
}

#[test]
#[ignore = "child process of cold_file_reads_and_refused_writes_go_through_the_ring"]
fn ring_file_child() {
    if !is_child() {
        return;
    }
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    const CHUNK: u64 = 64 * 1024;
    const CHUNKS: u64 = 128; // 8 MiB
    let path = std::env::temp_dir().join(format!("weft-ring-file-{}", std::process::id()));
    weft::run(|| {
        let file = Arc::new(weft::fs::File::create(&path).unwrap());
        // 16 writers fill disjoint chunks of a new file: ext4 refuses `RWF_NOWAIT` for
        // writes that allocate, so these go to the ring.
        let before = weft::stats();
        let writers: Vec<_> = (0..16)
            .map(|w| {
                let file = file.clone();
                weft::spawn(move || {
                    for chunk in (w..CHUNKS).step_by(16) {
                        let at = chunk * CHUNK;
                        let data: Vec<u8> = (at..at + CHUNK).map(file_byte).collect();
                        let mut done = 0;
                        while done < data.len() {
                            done += file.write_at(&data[done..], at + done as u64).unwrap();
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let written = weft::stats();
        file.sync_all().unwrap();
        // Drop the (now clean) pages, so that every read below must wait for the disk.
        // SAFETY (test): an advice call on an open fd.
        let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        let file = Arc::new(weft::fs::File::open(&path).unwrap());
        let cold = weft::stats();
        let readers: Vec<_> = (0..16u64)
            .map(|r| {
                let file = file.clone();
                weft::spawn(move || {
                    let mut rng = r + 1;
                    let mut buf = vec![0u8; 4096];
                    for _ in 0..64 {
                        let at = next(&mut rng) % (CHUNK * CHUNKS - 4096);
                        let n = file.read_at(&mut buf, at).unwrap();
                        assert_eq!(n, 4096);
                        for (i, &b) in buf.iter().enumerate() {
                            assert_eq!(
                                b,
                                file_byte(at + i as u64),
                                "byte {} is wrong",
                                at + i as u64
                            );
                        }
                    }
                })
            })
            .collect();
        for r in readers {
            r.join().unwrap();
        }
        let read = weft::stats();
        // The whole file, in order, through `Read` and the file position.
        let mut all = Vec::new();
        (&*file).read_to_end(&mut all).unwrap();
        assert_eq!(all.len() as u64, CHUNK * CHUNKS);
        assert!(all
            .iter()
            .enumerate()
            .all(|(i, &b)| b == file_byte(i as u64)));
        let write_waits = written.ring_waits - before.ring_waits;
        let read_waits = read.ring_waits - cold.ring_waits;
        assert!(write_waits > 0, "no write went to the ring");
        assert!(read_waits > 0, "no cold read went to the ring");
        assert_eq!(
            read.offloaded, cold.offloaded,
            "a cold read went to the blocking pool"
        );
        println!(
            "ring files: 8 MiB written by 16 green threads ({write_waits} ring waits), \
             1,024 cold reads ({read_waits} ring waits, {} from the page cache), all bytes right",
            read.fs_fast_path - cold.fs_fast_path
        );
    });
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_ring_read_of_a_fifo_leaves_the_worker_free_and_cancels_lose_no_byte() {
    let out = in_ring_child("ring_fifo_child", "1");
    let line = line_with(&out, "ring fifo:");
    println!("{line}");
    assert!(
        !line.contains(" 0 cancelled"),
        "no read was cancelled: {out}"
    );
}

#[test]
#[ignore = "child process of a_ring_read_of_a_fifo_leaves_the_worker_free_and_cancels_lose_no_byte"]
fn ring_fifo_child() {
    if !is_child() {
        return;
    }
    let rounds = common::scaled(300);
    let path = std::env::temp_dir().join(format!("weft-ring-fifo-{}", std::process::id()));
    let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY (test): mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    weft::run(|| {
        // Read and write opens of a FIFO do not wait for the other end.
        let reader = Arc::new(
            weft::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap(),
        );
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        // A read that waits 300 ms for its data leaves the only worker free.
        let ticker = Ticker::start();
        let before = weft::stats();
        let late = std::thread::spawn({
            let writer = writer.try_clone().unwrap();
            move || {
                std::thread::sleep(Duration::from_millis(300));
                (&writer).write_all(b"late").unwrap();
            }
        });
        let (n, ticks) = ticker.during(|| {
            let mut buf = [0u8; 16];
            (&*reader).read(&mut buf).unwrap()
        });
        late.join().unwrap();
        assert_eq!(n, 4);
        assert!(
            weft::stats().ring_waits > before.ring_waits,
            "the read did not wait on the ring"
        );
        assert_eq!(
            weft::stats().offloaded,
            before.offloaded,
            "the read went to the pool"
        );
        assert!(
            ticks >= 30,
            "only {ticks} ticks while the read waited on the ring"
        );
        // Cancels racing the byte each read waits for.
        let (completed, cancelled) = cancel_races(
            reader,
            |byte| (&writer).write_all(&[byte]).unwrap(),
            rounds,
            5,
        );
        println!(
            "ring fifo: {ticks} ticks during a 300 ms read; {rounds} cancel races, \
             {completed} completed, {cancelled} cancelled"
        );
    });
    std::fs::remove_file(&path).unwrap();
}
