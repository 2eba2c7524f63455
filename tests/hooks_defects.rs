//! With the `hooks` feature: a hooked call keeps its C contract exactly, and parks only
//! where no per-OS-thread state can be held across the park (stdio and regular files run in
//! place). Each test here failed before its fix. (`cargo test --features hooks`.)
#![cfg(feature = "hooks")]

mod common;

use std::io::{IoSlice, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

#[test]
#[ignore = "child process of println_into_a_full_pipe_neither_panics_nor_loses_a_line"]
fn child_printers() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    weft::run(|| {
        let printers: Vec<_> = (0..20)
            .map(|i| {
                weft::spawn(move || {
                    for line in 0..200 {
                        println!("printer {i:02} line {line:03} {}", "x".repeat(80));
                    }
                })
            })
            .collect();
        for printer in printers {
            printer.join().unwrap();
        }
    });
}

#[test]
fn println_into_a_full_pipe_neither_panics_nor_loses_a_line() {
    // std's stdout lock is re-entrant per OS thread: a printer parked inside it would let
    // the next green thread of the worker walk in ("RefCell already borrowed"). stdout runs
    // in place, so printers only wait for the reader.
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_printers",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WEFT_TEST_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let the pipe fill (20 × 200 lines of ~100 bytes is far over its 64 KiB) before reading.
    std::thread::sleep(Duration::from_millis(500));
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = common::watchdog(60, move || child.wait().unwrap());
    assert!(status.success(), "{status:?}\n{stderr}");
    // (The test harness's own "test child_printers ..." may share a line with the first.)
    let lines = stdout.matches("printer ").count();
    assert_eq!(lines, 20 * 200, "{stderr}");
}

#[test]
fn a_regular_file_read_is_never_short_mid_file() {
    // The start of the file is in the page cache, the rest is not: a read that tried the
    // cache only (RWF_NOWAIT) returned what was cached. Files run in place.
    let path = std::env::temp_dir().join(format!("weft-short-read-{}", std::process::id()));
    let size = 32 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    file.sync_all().unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: advice on a valid fd.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut warm = vec![0u8; 1 << 20];
    (&file).read_exact(&mut warm).unwrap(); // caches the first MiB (and its readahead)
    let got = common::watchdog(60, move || {
        weft::run(move || {
            let mut file = std::fs::File::open(&path).unwrap();
            let mut buf = vec![0u8; size];
            let n = file.read(&mut buf).unwrap();
            std::fs::remove_file(&path).unwrap();
            (n, buf == data)
        })
    });
    assert_eq!(got, (size, true));
}

#[test]
fn clock_nanosleep_on_an_unknown_clock_is_einval() {
    let res = weft::run(|| {
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 1_000_000,
        };
        // SAFETY: a valid timespec; no remainder wanted.
        unsafe { libc::clock_nanosleep(12345, 0, &ts, std::ptr::null_mut()) }
    });
    assert_eq!(res, libc::EINVAL);
}

/// A connected pair of std TCP streams (the client side is hooked in green threads).
fn tcp_pair() -> (std::net::TcpStream, std::net::TcpStream) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

#[test]
fn recv_with_msg_waitall_waits_for_everything() {
    let (client, mut server) = tcp_pair();
    let writer = std::thread::spawn(move || {
        for chunk in 0..3u8 {
            std::thread::sleep(Duration::from_millis(20));
            server.write_all(&[chunk; 100]).unwrap();
        }
        server
    });
    let got = common::watchdog(60, move || {
        weft::run(move || {
            use std::os::fd::AsRawFd;
            let mut buf = [0u8; 300];
            // SAFETY: a valid buffer of that length.
            let n = unsafe {
                libc::recv(
                    client.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_WAITALL,
                )
            };
            (n, buf[0], buf[150], buf[299])
        })
    });
    drop(writer.join().unwrap());
    assert_eq!(got, (300, 0, 1, 2));
}

#[test]
fn blocking_vectored_and_addressed_stream_sends_send_everything() {
    // writev (std's write_vectored), sendmsg and sendto on a blocking stream promise every
    // byte, as write does; they returned about half of 8 MiB.
    let (mut client, server) = tcp_pair();
    let total = 8 << 20;
    let reader = std::thread::spawn(move || {
        let mut server = server;
        let mut all = Vec::new();
        server.read_to_end(&mut all).unwrap();
        all.len()
    });
    let sent = common::watchdog(60, move || {
        weft::run(move || {
            use std::os::fd::AsRawFd;
            let half = vec![7u8; total / 2];
            let vectored = client
                .write_vectored(&[IoSlice::new(&half), IoSlice::new(&half)])
                .unwrap();
            let mut iov = [libc::iovec {
                iov_base: half.as_ptr() as *mut libc::c_void,
                iov_len: half.len(),
            }; 2];
            // SAFETY: a zeroed msghdr pointing at two valid iovecs.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = iov.as_mut_ptr();
            msg.msg_iovlen = 2;
            // SAFETY: a valid msghdr.
            let by_msg = unsafe { libc::sendmsg(client.as_raw_fd(), &msg, 0) };
            // SAFETY: a valid buffer; no address (connected).
            let by_to = unsafe {
                libc::sendto(
                    client.as_raw_fd(),
                    half.as_ptr().cast(),
                    half.len(),
                    0,
                    std::ptr::null(),
                    0,
                )
            };
            (vectored, by_msg as usize, by_to as usize)
        })
    });
    assert_eq!(sent, (total, total, total / 2));
    assert_eq!(reader.join().unwrap(), total * 2 + total / 2);
}

#[test]
fn a_blocking_unix_connect_to_a_full_backlog_waits() {
    let dir = std::env::temp_dir().join(format!("weft-backlog-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("sock");
    let listener = UnixListener::bind(&path).unwrap();
    // Fill the backlog with non-blocking connects until the kernel says EAGAIN.
    let mut queued = Vec::new();
    loop {
        let socket =
            socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        socket.set_nonblocking(true).unwrap();
        match socket.connect(&socket2::SockAddr::unix(&path).unwrap()) {
            Ok(()) => queued.push(socket),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
        assert!(queued.len() < 100_000, "the backlog never filled");
    }
    // Room appears after a while: a plain thread accepts one.
    let acceptor = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let accepted = listener.accept().unwrap();
        (listener, accepted)
    });
    let connected = common::watchdog(60, {
        let path = path.clone();
        move || weft::run(move || UnixStream::connect(&path).map(drop))
    });
    let _keep = acceptor.join().unwrap();
    drop(queued);
    std::fs::remove_dir_all(&dir).unwrap();
    connected.expect("a blocking connect waits for room in the backlog");
}

/// In a child process on one worker: runs `call` (300 ms of waiting outside weft) beside a
/// ticker green thread and prints `result <call's result> ticks <ticks during it>`.
fn run_beside_a_ticker<T: std::fmt::Debug>(call: impl FnOnce() -> T + Send) {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    weft::run(|| {
        let ticker = common::Ticker::start();
        let (value, ticks) = ticker.during(call);
        println!("result {value:?} ticks {ticks}");
    });
}

/// Runs child test `name` and checks it printed `result <expected>` with 30+ ticks.
fn ticked_beside(name: &str, expected: &str) {
    let name = name.to_owned();
    let stdout = common::watchdog(60, move || common::child_stdout(&name, &[]));
    // (The harness's "test child_… ..." may share the line.)
    let line = common::line_with(&stdout, "result ");
    assert!(line.contains(&format!("result {expected} ")), "{line}");
    let ticks: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        ticks >= 30,
        "the ticker ticked {ticks} times during 300 ms: {line}"
    );
}

#[test]
#[ignore = "child process of waiting_for_a_std_child_parks_the_green_thread"]
fn child_std_command_status() {
    run_beside_a_ticker(|| {
        std::process::Command::new("sleep")
            .arg("0.3")
            .status()
            .unwrap()
            .success()
    });
}

#[test]
fn waiting_for_a_std_child_parks_the_green_thread() {
    // `Command::status` waits in `waitpid`: on one worker, a ticker green thread must keep
    // ticking while the child runs (the wait parks on the child's pidfd).
    ticked_beside("child_std_command_status", "true");
}

#[test]
#[ignore = "child process of joining_an_os_thread_parks_the_green_thread"]
fn child_thread_join() {
    run_beside_a_ticker(|| {
        // The hooks make std's sleep green only on green threads: this is a plain one.
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            7
        })
        .join()
        .unwrap()
    });
}

#[test]
fn joining_an_os_thread_parks_the_green_thread() {
    // `JoinHandle::join` waits in pthread_join (a futex keyed by the thread): the join goes
    // to the blocking pool, and a ticker on the same worker keeps ticking meanwhile.
    ticked_beside("child_thread_join", "7");
}

#[test]
fn a_forked_childs_close_leaves_the_parents_registrations_alone() {
    // The child shares the parent's epoll set: a hooked `close` in the child that dropped
    // the hooks' registration of a socket took the parent's fd out of epoll, and the green
    // thread the parent had parked on it never woke.
    let (client, mut server) = tcp_pair();
    let got = common::watchdog(60, move || {
        weft::run(move || {
            use std::os::fd::AsRawFd;
            let fd = client.as_raw_fd();
            let (tx, rx) = weft::chan::bounded(1);
            let reader = weft::spawn(move || {
                let mut buf = [0u8; 1];
                let n = (&client).read(&mut buf).unwrap();
                tx.send((n, buf[0])).unwrap();
            });
            // Let the reader park on the socket (and the hooks register it).
            weft::sleep(Duration::from_millis(50));
            // SAFETY: the child only closes an fd and exits, both async-signal-safe.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: as above.
                unsafe {
                    libc::close(fd);
                    libc::_exit(0);
                }
            }
            assert!(pid > 0, "fork failed");
            let mut status = 0;
            // SAFETY: our own child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            server.write_all(b"!").unwrap();
            let got = rx.recv_timeout(Duration::from_secs(5));
            if got.is_ok() {
                reader.join().unwrap();
            }
            got
        })
    });
    assert_eq!(got, Ok((1, b'!')), "the parent's reader never woke");
}

#[test]
fn msg_waitall_keeps_datagram_boundaries_and_reports_a_partial_stream_receive() {
    let (datagram, partial) = common::watchdog(60, || {
        weft::run(|| {
            use std::os::fd::AsRawFd;
            // A datagram socket: MSG_WAITALL means nothing there; one datagram, as is.
            let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            a.send_to(&[1u8; 100], b.local_addr().unwrap()).unwrap();
            a.send_to(&[2u8; 100], b.local_addr().unwrap()).unwrap();
            let mut buf = [0u8; 1500];
            // SAFETY: a valid buffer of that length.
            let datagram = unsafe {
                libc::recv(
                    b.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_WAITALL,
                )
            };
            // A stream receive cut short by a deadline reports the bytes it moved.
            let (client, mut server) = tcp_pair();
            server.write_all(&[3u8; 30]).unwrap();
            let partial = weft::timeout(Duration::from_millis(100), || {
                let mut buf = [0u8; 300];
                // SAFETY: a valid buffer of that length.
                unsafe {
                    libc::recv(
                        client.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        libc::MSG_WAITALL,
                    )
                }
            });
            (datagram, partial)
        })
    });
    assert_eq!(datagram, 100);
    assert_eq!(partial, Ok(30));
}

#[test]
#[ignore = "child process of opening_a_fifo_whose_writer_shares_the_worker_completes"]
fn child_fifo_open() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    let dir = std::env::temp_dir().join(format!("weft-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let fifo = dir.join("fifo");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let got = weft::run(move || {
        let reader = {
            let fifo = fifo.clone();
            weft::spawn(move || std::fs::read(&fifo).unwrap())
        };
        // The writer is a green thread of the same (only) worker: the reader's open must
        // not hold the worker while it waits for it.
        let writer = weft::spawn(move || std::fs::write(&fifo, b"through the fifo").unwrap());
        writer.join().unwrap();
        reader.join().unwrap()
    });
    std::fs::remove_dir_all(&dir).unwrap();
    println!("read {}", String::from_utf8(got).unwrap());
}

#[test]
fn opening_a_fifo_whose_writer_shares_the_worker_completes() {
    let stdout = common::watchdog(60, || common::child_stdout("child_fifo_open", &[]));
    assert!(stdout.contains("read through the fifo"), "{stdout}");
}
