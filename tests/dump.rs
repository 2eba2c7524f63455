//! The dump: every green thread's state, the user's line it waits at, and its spawn site.

mod common;

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weft::{ThreadState, WaitReason};

const LONG: Duration = Duration::from_secs(3600);

/// Spawns a green thread named `name` that records the line of its blocking call in
/// `lines` and then makes it (the closure does both on one line).
fn named(
    name: &'static str,
    lines: &Arc<std::sync::Mutex<HashMap<&'static str, u32>>>,
    f: impl FnOnce(&dyn Fn(u32)) + Send + 'static,
) -> weft::JoinHandle<()> {
    let lines = lines.clone();
    weft::Builder::new()
        .name(name)
        .spawn(move || {
            let record = |line: u32| {
                lines.lock().unwrap().insert(name, line);
            };
            f(&record);
        })
        .unwrap()
}

#[test]
#[rustfmt::skip]
fn the_dump_names_each_state_reason_and_line() {
    common::workers(1);
    common::watchdog(60, || {
        weft::run(|| {
            let lines = Arc::new(std::sync::Mutex::new(HashMap::new()));
            let mutex = Arc::new(weft::sync::Mutex::new(()));
            let rwlock = Arc::new(weft::sync::RwLock::new(()));
            let semaphore = Arc::new(weft::sync::Semaphore::new(0));
            let condvar = Arc::new((weft::sync::Mutex::new(false), weft::sync::Condvar::new()));
            let (_keep_tx, empty_rx) = weft::chan::unbounded::<u32>();
            let (full_tx, _keep_rx) = weft::chan::bounded::<u32>(0);
            let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let _client = weft::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (server, _) = listener.accept().unwrap();
            let _mutex_guard = mutex.lock().unwrap();
            let _write_guard = rwlock.write().unwrap();

            let mut handles = Vec::new();
            handles.push(named("sleeper", &lines, |at| { at(line!()); weft::sleep(LONG) }));
            handles.push(named("receiver", &lines, move |at| { at(line!()); let _ = empty_rx.recv(); }));
            handles.push(named("sender", &lines, move |at| { at(line!()); let _ = full_tx.send(1); }));
            let m = mutex.clone();
            handles.push(named("locker", &lines, move |at| { at(line!()); let _g = m.lock(); }));
            let r = rwlock.clone();
            handles.push(named("reader", &lines, move |at| { at(line!()); let _g = r.read(); }));
            let s = semaphore.clone();
            handles.push(named("permit", &lines, move |at| { at(line!()); let _p = s.acquire(); }));
            let c = condvar.clone();
            handles.push(named("waiter", &lines, move |at| { let g = c.0.lock().unwrap(); at(line!()); let _g = c.1.wait_while(g, |ready| !*ready); }));
            handles.push(named("socket", &lines, move |at| { let mut buf = [0u8; 4]; at(line!()); let _ = (&server).read(&mut buf); }));
            handles.push(named("acceptor", &lines, move |at| { at(line!()); let _ = listener.accept(); }));
            handles.push(named("parker", &lines, |at| { at(line!()); loop { weft::park() } }));
            handles.push(named("offloader", &lines, |at| { at(line!()); weft::offload(|| std::thread::sleep(Duration::from_secs(2))) }));
            let sleeper = handles[0].coroutine();
            handles.push(named("joiner", &lines, move |at| { let inner = weft::spawn(|| weft::sleep(LONG)); let id = inner.coroutine(); at(line!()); let _ = inner.join(); drop(id); }));
            handles.push(named("yielder", &lines, |_| loop { weft::yield_now() }));

            // Let every green thread reach its wait (one worker: they run in turn).
            weft::sleep(Duration::from_millis(100));
            let threads = weft::threads();
            let lines = lines.lock().unwrap().clone();
            let by_name: HashMap<&str, &weft::ThreadInfo> = threads
                .iter()
                .filter_map(|t| t.name.as_deref().map(|n| (n, t)))
                .collect();
            let expect = |name: &str, reason: fn(&WaitReason) -> bool| {
                let info = by_name.get(name).unwrap_or_else(|| panic!("{name} missing from {threads:#?}"));
                match info.state {
                    ThreadState::Parked(r) => assert!(reason(&r), "{name}: {r:?}"),
                    other => panic!("{name}: {other:?}"),
                }
                let at = info.waiting_at.unwrap_or_else(|| panic!("{name}: no location"));
                assert_eq!(at.file(), file!(), "{name}: {at}");
                assert_eq!(at.line(), lines[name], "{name}: {at}");
                assert_eq!(info.spawned_at.file(), file!(), "{name}");
                assert_eq!(info.home_worker, Some(0));
                assert!(info.stack_resident > 0 && info.stack_resident <= info.stack_size);
                assert!(info.waiting_for.is_some());
            };
            expect("sleeper", |r| *r == WaitReason::Sleep);
            expect("receiver", |r| matches!(r, WaitReason::Recv { .. }));
            expect("sender", |r| matches!(r, WaitReason::Send { .. }));
            expect("locker", |r| matches!(r, WaitReason::Mutex { lock } if *lock != 0));
            expect("reader", |r| matches!(r, WaitReason::RwLock { .. }));
            expect("permit", |r| matches!(r, WaitReason::Semaphore { .. }));
            expect("waiter", |r| matches!(r, WaitReason::Condvar { .. }));
            expect("socket", |r| matches!(r, WaitReason::Read { fd } if *fd > 2));
            expect("acceptor", |r| matches!(r, WaitReason::Accept { .. }));
            expect("parker", |r| *r == WaitReason::Park);
            expect("offloader", |r| *r == WaitReason::Offload);
            expect("joiner", |r| matches!(r, WaitReason::Join { .. }));
            // The caller is running; the yielder is runnable (or running, between looks).
            let me = weft::current().id();
            let mine = threads.iter().find(|t| t.id == me).unwrap();
            assert_eq!(mine.state, ThreadState::Running { worker: 0 });
            assert_eq!(by_name["yielder"].state, ThreadState::Runnable);

            // The text and JSON forms carry the same facts.
            let text = weft::dump();
            assert!(text.starts_with("weft dump: "), "{text}");
            let sleeper_id = sleeper.id();
            assert!(text.contains(&format!("green thread {sleeper_id} 'sleeper' [parked: sleep, ")), "{text}");
            assert!(text.contains(&format!("    waiting at {}:{}:", file!(), lines["sleeper"])), "{text}");
            assert!(text.contains("[running on weft-worker-0]"), "{text}");
            let json = weft::dump_json();
            assert!(json.starts_with("{\"workers\":1,"), "{json}");
            assert!(json.contains(&format!("\"id\":{sleeper_id},\"name\":\"sleeper\",\"state\":\"parked\"")), "{json}");
            assert!(json.contains("\"reason\":\"sleep\""), "{json}");

            for h in &handles {
                h.cancel();
            }
            for h in handles {
                let _ = h.join();
            }
        })
    });
}

#[test]
#[ignore = "child process of sigquit_prints_a_dump_and_the_process_carries_on"]
fn child_dump_signal() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    weft::run(|| {
        let napper = weft::Builder::new()
            .name("napper")
            .spawn(|| weft::sleep(LONG))
            .unwrap();
        weft::sleep(Duration::from_millis(20));
        // SAFETY (test): raising SIGQUIT, which weft handles under WEFT_DUMP_SIGNAL=1.
        assert_eq!(unsafe { libc::raise(libc::SIGQUIT) }, 0);
        weft::sleep(Duration::from_millis(200));
        napper.cancel();
        let _ = napper.join();
    });
    println!("carried on");
}

#[test]
fn sigquit_prints_a_dump_and_the_process_carries_on() {
    let output = common::run_child("child_dump_signal", &[("WEFT_DUMP_SIGNAL", "1")]);
    let stderr = common::stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("carried on"));
    assert!(stderr.contains("weft dump: "), "{stderr}");
    assert!(stderr.contains("'napper' [parked: sleep"), "{stderr}");
}

#[test]
#[ignore = "child process of schedtrace_prints_lines"]
fn child_schedtrace() {
    if !common::is_child() {
        return;
    }
    common::workers(2);
    weft::run(|| weft::sleep(Duration::from_millis(100)));
}

#[test]
fn schedtrace_prints_lines() {
    let output = common::run_child("child_schedtrace", &[("WEFT_SCHEDTRACE", "10")]);
    let stderr = common::stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    let lines = stderr
        .lines()
        .filter(|l| l.starts_with("weft schedtrace "))
        .count();
    assert!(lines >= 3, "{stderr}");
    assert!(stderr.contains(" [w0 homed="), "{stderr}");
}

#[test]
fn per_worker_stats_count_homed_green_threads() {
    common::workers(1);
    let count = Arc::new(AtomicU32::new(0));
    common::watchdog(60, move || {
        weft::run(move || {
            let before = weft::stats().per_worker[0].homed;
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    let count = count.clone();
                    weft::spawn(move || {
                        count.fetch_add(1, Ordering::SeqCst);
                        weft::sleep(LONG)
                    })
                })
                .collect();
            while count.load(Ordering::SeqCst) < 10 {
                weft::yield_now();
            }
            let stats = weft::stats();
            assert_eq!(stats.per_worker.len(), 1);
            assert!(stats.per_worker[0].homed >= before + 10, "{stats:?}");
            for h in &handles {
                h.cancel();
            }
            for h in handles {
                let _ = h.join();
            }
        })
    });
}
