//! Exhausted limits and bad sizes are clear errors, never a crash.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[test]
fn stack_size_above_one_gib_is_invalid_input() {
    common::workers(2);
    let err = weft::Builder::new()
        .stack_size(weft::MAX_STACK_SIZE + 1)
        .spawn(|| ())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("1 GiB"), "{err}");
}

#[test]
fn tiny_and_large_stack_sizes_work() {
    common::workers(2);
    // Rounded up to the 64 KiB minimum.
    assert_eq!(
        weft::Builder::new()
            .stack_size(1)
            .spawn(|| 3)
            .unwrap()
            .join()
            .unwrap(),
        3
    );
    // 8 MiB: deep recursion that would overflow the default 256 KiB.
    #[inline(never)]
    fn depth(n: u32) -> u32 {
        let pad = std::hint::black_box([n; 32]);
        if n == 0 {
            0
        } else {
            depth(n - 1) + 1 + u32::from(pad[3] == u32::MAX)
        }
    }
    let handle = weft::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| depth(20_000))
        .unwrap();
    assert_eq!(handle.join().unwrap(), 20_000);
}

#[test]
#[ignore = "child process of exhausting_vmas_is_an_error_naming_the_limit"]
fn child_exhaust_vmas() {
    if !common::is_child() {
        return;
    }
    weft::Config::new()
        .workers(1)
        .stack_size(weft::MIN_STACK_SIZE)
        .apply()
        .unwrap();
    let release = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let err = loop {
        let release = release.clone();
        match weft::Builder::new().spawn(move || {
            while !release.load(Ordering::Acquire) {
                weft::park();
            }
        }) {
            Ok(h) => handles.push(h),
            Err(e) => break e,
        }
        assert!(
            handles.len() < 100_000,
            "the mprotect fallback never hit the VMA limit"
        );
    };
    println!("spawned {} before: {err}", handles.len());
    // `spawn` panics with the same message.
    let panic = std::panic::catch_unwind(|| drop(weft::spawn(|| ()))).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    println!("spawn panicked: {message}");
    release_all(&release, handles);
    println!("all joined");
    // The mappings are back: spawning works again.
    let spawned = (0..1000)
        .map(|i| weft::spawn(move || i))
        .collect::<Vec<_>>();
    let sum: i32 = spawned.into_iter().map(|h| h.join().unwrap()).sum();
    println!("after the release: {sum}");
}

#[test]
fn exhausting_vmas_is_an_error_naming_the_limit() {
    // Forcing mprotect guards makes every stack cost two VMAs, so ~32,000 green threads
    // reach the default vm.max_map_count of 65530.
    let stdout = common::child_stdout("child_exhaust_vmas", &[("WEFT_GUARD_PAGES", "mprotect")]);
    let error_line = stdout
        .lines()
        .find(|l| l.contains("spawned "))
        .expect(&stdout);
    assert!(error_line.contains("vm.max_map_count is "), "{error_line}");
    assert!(error_line.contains("mappings in use"), "{error_line}");
    let panic_line = stdout
        .lines()
        .find(|l| l.starts_with("spawn panicked: "))
        .expect(&stdout);
    assert!(panic_line.contains("vm.max_map_count"), "{panic_line}");
    assert!(stdout.contains("all joined"), "{stdout}");
    assert!(stdout.contains("after the release: 499500"), "{stdout}");
}

#[test]
#[ignore = "child process of a_panic_on_the_smallest_stack_reaches_join"]
fn child_panic_on_smallest_stack() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    for requested in [1, weft::MIN_STACK_SIZE] {
        let n = std::hint::black_box(7);
        let err = weft::Builder::new()
            .stack_size(requested)
            .spawn(move || -> u32 { panic!("tiny stack {n}") })
            .unwrap()
            .join()
            .unwrap_err();
        let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
        println!("joined: {message}");
    }
}

#[test]
fn a_panic_on_the_smallest_stack_reaches_join() {
    // The panic hook, and with RUST_BACKTRACE the symbolizer, run on the green thread's own
    // stack: the minimum must hold them, with and without a backtrace.
    for backtrace in ["0", "1", "full"] {
        let output = common::run_child(
            "child_panic_on_smallest_stack",
            &[("RUST_BACKTRACE", backtrace)],
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "RUST_BACKTRACE={backtrace}: {:?}\n{stdout}\n{}",
            output.status,
            common::stderr_of(&output)
        );
        assert_eq!(
            stdout.matches("joined: tiny stack 7").count(),
            2,
            "RUST_BACKTRACE={backtrace}: {stdout}"
        );
    }
}

fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(name)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn set_address_space_limit(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY (test): setrlimit with a valid struct.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
}

#[test]
#[ignore = "child process of a_failed_runtime_start_is_an_error_and_the_next_spawn_retries"]
fn child_failed_runtime_start() {
    if !common::is_child() {
        return;
    }
    weft::Config::new().workers(4).apply().unwrap();
    let threads_before = status_field("Threads:");
    // Room for about two 2 MiB thread stacks, not four: the start fails part-way.
    set_address_space_limit((status_field("VmSize:") + 5 * 1024) * 1024);
    for attempt in 0..2 {
        match weft::Builder::new().spawn(|| 1) {
            Ok(_) => panic!("the start succeeded under the address-space limit"),
            Err(e) => println!("attempt {attempt}: {e}"),
        }
        println!("workers after failure: {}", weft::stats().workers);
    }
    set_address_space_limit(libc::RLIM_INFINITY);
    // The threads of the failed starts have exited (give the last ones a moment to go).
    let mut threads = status_field("Threads:");
    for _ in 0..1000 {
        if threads == threads_before {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        threads = status_field("Threads:");
    }
    println!("leftover threads: {}", threads - threads_before);
    let value = weft::spawn(|| 6 * 7).join().unwrap();
    println!(
        "after the limit was lifted: {value} on {} workers",
        weft::stats().workers
    );
}

#[test]
fn a_failed_runtime_start_is_an_error_and_the_next_spawn_retries() {
    let stdout = common::child_stdout("child_failed_runtime_start", &[]);
    for attempt in 0..2 {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("attempt {attempt}: ")))
            .expect(&stdout);
        assert!(line.contains("runtime could not start"), "{line}");
        assert!(line.contains("cannot start worker thread"), "{line}");
    }
    assert_eq!(
        stdout.matches("workers after failure: 0").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("leftover threads: 0"), "{stdout}");
    assert!(
        stdout.contains("after the limit was lifted: 42 on 4 workers"),
        "{stdout}"
    );
}

#[test]
#[ignore = "child process of running_out_of_address_space_is_named_as_such"]
fn child_exhaust_address_space() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    // Room for a few 1 GiB stacks: their regions merge into a handful of mappings, so the
    // limit that ends the loop is address space, far below vm.max_map_count.
    set_address_space_limit((status_field("VmSize:") + 6 * 1024 * 1024) * 1024);
    let release = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let err = loop {
        let release = release.clone();
        match weft::Builder::new()
            .stack_size(weft::MAX_STACK_SIZE)
            .spawn(move || {
                while !release.load(Ordering::Acquire) {
                    weft::park();
                }
            }) {
            Ok(h) => handles.push(h),
            Err(e) => break e,
        }
        assert!(handles.len() < 64, "the address-space limit was never hit");
    };
    println!("spawned {} before: {err}", handles.len());
    release_all(&release, handles);
    println!("all joined");
}

#[test]
fn running_out_of_address_space_is_named_as_such() {
    let stdout = common::child_stdout("child_exhaust_address_space", &[]);
    let line = stdout
        .lines()
        .find(|l| l.contains("spawned "))
        .expect(&stdout);
    assert!(
        line.contains("out of address space, not mappings"),
        "{line}"
    );
    assert!(line.contains("RLIMIT_AS is "), "{line}");
    assert!(!line.contains("raise vm.max_map_count"), "{line}");
    assert!(stdout.contains("all joined"), "{stdout}");
}

/// Lets green threads that park until `release` is set finish, and joins them.
fn release_all(release: &AtomicBool, handles: Vec<weft::JoinHandle<()>>) {
    release.store(true, Ordering::Release);
    for h in &handles {
        h.coroutine().unpark();
    }
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
#[ignore = "child process of running_out_of_fds_is_an_error_and_the_runtime_recovers"]
fn child_exhaust_fds() {
    if !common::is_child() {
        return;
    }
    // The soft limit up to the hard one (20,000 on the test machines).
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY (test): getrlimit/setrlimit with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max.min(65_536);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    weft::run(|| {
        let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut held = Vec::new();
        let error = loop {
            let client = match weft::net::TcpStream::connect(addr) {
                Ok(client) => client,
                Err(e) => break e,
            };
            match listener.accept() {
                Ok((server, _)) => held.push((client, server)),
                Err(e) => break e,
            }
        };
        let open = held.len() * 2;
        println!("fds: {open} sockets open when it failed: {error}");
        assert_eq!(error.raw_os_error(), Some(libc::EMFILE), "{error}");
        // The runtime itself still works at the limit: a spawn, a sleep, a round trip on a
        // connection it already has.
        assert_eq!(weft::spawn(|| 6 * 7).join().unwrap(), 42);
        weft::sleep(std::time::Duration::from_millis(2));
        let (client, server) = &held[0];
        (&*client).write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        (&*server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        // Given fds back, it connects and accepts again.
        held.truncate(held.len() / 2);
        let client = weft::net::TcpStream::connect(addr).unwrap();
        let (server, _) = listener.accept().unwrap();
        (&client).write_all(b"back").unwrap();
        (&server).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"back");
        println!(
            "fds: recovered after closing {} sockets",
            open - held.len() * 2
        );
    });
}

#[test]
fn running_out_of_fds_is_an_error_and_the_runtime_recovers() {
    let stdout = common::watchdog(120, || common::child_stdout("child_exhaust_fds", &[]));
    let line = common::line_with(&stdout, "sockets open when it failed");
    println!("{line}");
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "sockets").unwrap();
    let open: usize = words[at - 1].parse().unwrap();
    // Nearly every fd of the limit was a socket: nothing in weft holds fds per connection.
    assert!(open > 15_000, "{line}");
    assert!(line.contains("Too many open files"), "{line}");
    assert!(stdout.contains("fds: recovered"), "{stdout}");
}

#[test]
#[ignore = "child process of without_threads_to_spare_offload_runs_in_place"]
fn child_no_threads_for_the_pool() {
    if !common::is_child() {
        return;
    }
    weft::Config::new().workers(2).apply().unwrap();
    weft::run(|| {
        weft::sleep(std::time::Duration::from_millis(1));
        // No room for another 2 MiB thread stack: the pool cannot start a thread.
        offload_without_threads(
            || set_address_space_limit((status_field("VmSize:") + 1024) * 1024),
            || set_address_space_limit(libc::RLIM_INFINITY),
        );
    });
}

/// In a green thread: an offload while `exhaust` keeps the blocking pool from starting a
/// thread, and one after `lift`; prints what each returned and the pool's thread count.
fn offload_without_threads(exhaust: impl FnOnce(), lift: impl FnOnce()) {
    let before = weft::stats().blocking_threads;
    exhaust();
    let value = weft::offload(|| 6 * 7);
    let during = weft::stats().blocking_threads;
    lift();
    println!("offload without threads: {value}, pool threads {before} -> {during}");
    let value = weft::offload(|| 7 * 6);
    println!(
        "offload after the limit was lifted: {value}, pool threads {}",
        weft::stats().blocking_threads
    );
}

/// A blocking pool that cannot start a thread (the process is out of threads or address
/// space) runs the call on the caller's worker, as its docs say: slow, never a failure or a
/// hang; once threads can be made again, the pool uses them.
#[test]
fn without_threads_to_spare_offload_runs_in_place() {
    let stdout = common::watchdog(60, || {
        common::child_stdout("child_no_threads_for_the_pool", &[])
    });
    assert!(
        stdout.contains("offload without threads: 42, pool threads 0 -> 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("offload after the limit was lifted: 42, pool threads 1"),
        "{stdout}"
    );
}

/// Sets the soft `RLIMIT_NPROC` to `threads`, or (`None`) back to the hard limit, which is
/// kept: anyone may move the soft limit below it.
fn set_thread_limit(threads: Option<u64>) {
    // SAFETY (test): a zeroed rlimit is a valid out-parameter.
    let mut limit: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY (test): getrlimit and setrlimit with a valid struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NPROC, &mut limit), 0);
        limit.rlim_cur = threads.unwrap_or(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NPROC, &limit), 0);
    }
}

#[test]
#[ignore = "child process of running_out_of_threads_is_an_error_and_the_runtime_recovers"]
fn child_out_of_threads() {
    if !common::is_child() {
        return;
    }
    weft::Config::new().workers(2).apply().unwrap();
    // RLIMIT_NPROC counts every thread of the user's processes, and root is exempt: a child
    // run as root leaves root for `nobody` (keeping the hard limit, which the soft one may
    // be raised to again). A limit of 1 is below the threads the child already has, so no
    // thread starts.
    set_thread_limit(Some(1));
    // SAFETY (test): getuid cannot fail.
    if unsafe { libc::getuid() } == 0 {
        // SAFETY (test): plain calls; the group first, while still allowed to change it.
        unsafe {
            assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
            assert_eq!(libc::setgid(65534), 0);
            assert_eq!(libc::setuid(65534), 0);
        }
    }
    match weft::Builder::new().spawn(|| 1) {
        Ok(_) => panic!("the runtime started without threads"),
        Err(e) => println!("start: {e}"),
    }
    set_thread_limit(None);
    weft::run(|| {
        println!(
            "after the limit was lifted: {}",
            weft::spawn(|| 6 * 7).join().unwrap()
        );
        // Out of threads again, with the runtime up: green threads need none, and the
        // blocking pool runs an offload in place.
        set_thread_limit(Some(1));
        let spawned = (0..100).map(|i| weft::spawn(move || i)).collect::<Vec<_>>();
        let sum: i32 = spawned.into_iter().map(|h| h.join().unwrap()).sum();
        println!("green threads without threads: {sum}");
        offload_without_threads(|| (), || set_thread_limit(None));
    });
}

/// Threads run out (`RLIMIT_NPROC`, in a child that leaves root, which the limit exempts):
/// the runtime's start is an error that names the limits, green threads go on without new
/// threads, the blocking pool runs in place, and all recovers once the limit is lifted.
#[test]
fn running_out_of_threads_is_an_error_and_the_runtime_recovers() {
    let stdout = common::watchdog(60, || common::child_stdout("child_out_of_threads", &[]));
    let line = common::line_with(&stdout, "start: ");
    assert!(line.contains("the runtime could not start"), "{line}");
    assert!(line.contains("cannot start worker thread 0 of 2"), "{line}");
    assert!(
        line.contains("RLIMIT_NPROC is 1 threads for user "),
        "{line}"
    );
    assert!(line.contains("kernel.threads-max is "), "{line}");
    assert!(
        stdout.contains("after the limit was lifted: 42"),
        "{stdout}"
    );
    assert!(
        stdout.contains("green threads without threads: 4950"),
        "{stdout}"
    );
    assert!(
        stdout.contains("offload without threads: 42, pool threads 0 -> 0"),
        "{stdout}"
    );
    assert!(
        stdout.contains("offload after the limit was lifted: 42, pool threads 1"),
        "{stdout}"
    );
}
