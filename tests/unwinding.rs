//! A destructor that blocks while its green thread unwinds blocks the worker's OS thread
//! (std counts panics per OS thread). Its waits must still wake promptly, and a block that
//! strands the worker's own green threads must end in a diagnosis, never a silent hang.

mod common;

use std::time::{Duration, Instant};

/// Runs `wait` from a destructor while its green thread unwinds; returns what it returned
/// and how long it took.
fn wait_while_unwinding<T: Send + 'static>(
    wait: impl FnOnce() -> T + Send + 'static,
) -> (T, Duration) {
    struct OnDrop<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for OnDrop<F> {
        fn drop(&mut self) {
            assert!(std::thread::panicking());
            (self.0.take().unwrap())();
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let unwinding = weft::spawn(move || {
        let _on_drop = OnDrop(Some(move || {
            let start = Instant::now();
            let value = wait();
            tx.send((value, start.elapsed())).unwrap();
        }));
        panic!("unwinding through a blocking destructor");
    });
    assert!(unwinding.join().is_err());
    rx.recv().unwrap()
}

#[test]
fn timed_waits_while_unwinding_wake_when_woken_not_at_their_deadline() {
    // The waker used to set only the green thread's token while the OS thread slept in
    // `thread::park_timeout`: a message sent at 200 ms arrived at the 30 s deadline.
    common::workers(1);
    common::watchdog(120, || {
        let (tx, rx) = weft::chan::bounded::<u32>(0);
        let sender = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            tx.send(7).unwrap();
        });
        let (got, took) = wait_while_unwinding(move || rx.recv_timeout(Duration::from_secs(30)));
        sender.join().unwrap();
        assert_eq!(got, Ok(7));
        assert!(took < Duration::from_secs(15), "woken after {took:?}");

        let (tx, rx) = weft::chan::bounded::<weft::Coroutine>(1);
        let unparker = std::thread::spawn(move || {
            let target = rx.recv().unwrap();
            std::thread::sleep(Duration::from_millis(200));
            target.unpark();
        });
        let ((), took) = wait_while_unwinding(move || {
            tx.send(weft::current()).unwrap();
            weft::park_timeout(Duration::from_secs(30));
        });
        unparker.join().unwrap();
        assert!(
            took < Duration::from_secs(15),
            "park_timeout woken after {took:?}"
        );

        // A condvar too.
        let pair = std::sync::Arc::new((weft::sync::Mutex::new(false), weft::sync::Condvar::new()));
        let notifier = std::thread::spawn({
            let pair = pair.clone();
            move || {
                std::thread::sleep(Duration::from_millis(200));
                *pair.0.lock().unwrap() = true;
                pair.1.notify_one();
            }
        });
        let (ready, took) = wait_while_unwinding(move || {
            let (lock, condvar) = &*pair;
            let guard = lock.lock().unwrap();
            let (guard, _) = condvar
                .wait_timeout_while(guard, Duration::from_secs(30), |ready| !*ready)
                .unwrap();
            *guard
        });
        notifier.join().unwrap();
        assert!(ready);
        assert!(
            took < Duration::from_secs(15),
            "condvar woken after {took:?}"
        );
    });
}

#[test]
#[ignore = "child process of timed_waits_without_a_reactor_wake_when_woken"]
fn child_no_reactor() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    weft::spawn(|| ()).join().unwrap(); // the runtime starts; the reactor does not yet
                                        // No fd left: the reactor (an epoll fd and an eventfd) cannot be created.
    let mut open = 0;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap() {
        let fd: u64 = entry
            .unwrap()
            .file_name()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        open = open.max(fd + 1);
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY (test): getrlimit and setrlimit with a valid struct; the hard limit stays.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = open;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    // Fill the free numbers below the limit too (kept open for the rest of the process).
    let mut filler = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        filler.push(file);
    }
    let (tx, rx) = weft::chan::bounded::<u32>(0);
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        tx.send(9).unwrap();
    });
    let (got, took) = weft::spawn(move || {
        let start = Instant::now();
        (rx.recv_timeout(Duration::from_secs(30)), start.elapsed())
    })
    .join()
    .unwrap();
    sender.join().unwrap();
    println!("received {got:?} after {} ms", took.as_millis());
}

#[test]
fn timed_waits_without_a_reactor_wake_when_woken() {
    // With the fd limit reached before the reactor existed, a timed wait used to sleep the
    // worker through to its deadline.
    let stdout = common::child_stdout("child_no_reactor", &[]);
    let line = stdout
        .lines()
        .find(|l| l.contains("received "))
        .expect(&stdout);
    assert!(line.contains("received Ok(9)"), "{line}");
    let ms: u64 = line
        .split("after ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect(line);
    assert!(ms < 15_000, "{line}");
}

#[test]
#[ignore = "child process of a_deadlock_while_unwinding_is_diagnosed_by_name"]
fn child_unwind_deadlock() {
    use std::sync::Arc;
    if !common::is_child() {
        return;
    }
    common::workers(1);
    struct LockOnDrop(Arc<weft::sync::Mutex<()>>);
    impl Drop for LockOnDrop {
        fn drop(&mut self) {
            let _guard = self.0.lock();
        }
    }
    weft::run(|| {
        let lock = Arc::new(weft::sync::Mutex::new(()));
        let held = lock.clone();
        let holder = weft::spawn(move || {
            let _guard = held.lock().unwrap();
            weft::sleep(Duration::from_millis(50));
        });
        weft::yield_now(); // the holder starts here: this worker is its home
        let victim = weft::Builder::new()
            .name("victim")
            .spawn(move || {
                let _on_drop = LockOnDrop(lock);
                panic!("unwinding into a lock held on this worker");
            })
            .unwrap();
        let _ = victim.join();
        holder.join().unwrap();
    });
    println!("no deadlock");
}

#[test]
fn a_deadlock_while_unwinding_is_diagnosed_by_name() {
    // The audit's hang: the destructor waits for a lock whose holder is homed on the same,
    // now blocked, worker. weft cannot resolve it; it must name it and end the process.
    let stderr = common::deadlocked_child("child_unwind_deadlock");
    let report = stderr
        .lines()
        .find(|l| l.starts_with("weft: deadlock: "))
        .unwrap_or_else(|| panic!("no diagnosis in:\n{stderr}"));
    assert!(report.contains("green thread "), "{report}");
    assert!(report.contains("'victim'"), "{report}");
    assert!(report.contains("is unwinding from a panic"), "{report}");
    assert!(report.contains("weft-worker-0"), "{report}");
    assert!(report.contains("1 green thread(s)"), "{report}");
    // First the report at one second, then the abort.
    let warned = stderr
        .find("weft: likely deadlock: ")
        .unwrap_or_else(|| panic!("no early report in:\n{stderr}"));
    assert!(
        warned < stderr.find("weft: deadlock: ").unwrap(),
        "{stderr}"
    );
    // The backtrace names the wait.
    assert!(stderr.contains("Mutex"), "{stderr}");
    assert!(stderr.contains("LockOnDrop"), "{stderr}");
}

#[test]
#[ignore = "child process of spawning_and_joining_a_helper_while_unwinding_is_diagnosed"]
fn child_unwind_joins_a_helper() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    /// A destructor that hands its last words to a helper green thread and waits for it:
    /// on one worker, nobody but the blocked worker can ever run the helper.
    struct FlushOnDrop;
    impl Drop for FlushOnDrop {
        fn drop(&mut self) {
            let _ = weft::spawn(|| "flushed").join();
        }
    }
    weft::run(|| {
        let victim = weft::Builder::new()
            .name("victim")
            .spawn(|| {
                let _on_drop = FlushOnDrop;
                panic!("unwinding into a destructor that joins a helper");
            })
            .unwrap();
        let _ = victim.join();
    });
    println!("no deadlock");
}

#[test]
fn spawning_and_joining_a_helper_while_unwinding_is_diagnosed() {
    // The helper is fresh work in the blocked worker's own queue (or the injector): with
    // one worker it counts as stuck behind the block, so the hang is named and ended.
    let stderr = common::deadlocked_child("child_unwind_joins_a_helper");
    assert!(stderr.contains("'victim'"), "{stderr}");
    assert!(stderr.contains("FlushOnDrop"), "{stderr}");
}

/// A destructor that runs while its green thread unwinds may spawn (a detached green
/// thread runs), cancel another green thread (it unwinds too) and take a weft lock that is
/// free: none of these waits for anyone, so none is diagnosed or refused.
#[test]
fn spawning_and_cancelling_from_a_destructor_while_unwinding() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let victim = weft::spawn(|| loop {
                weft::park();
            });
            let victim_handle = victim.coroutine();
            let (tx, rx) = weft::chan::unbounded();
            let lock = std::sync::Arc::new(weft::sync::Mutex::new(0));
            struct OnDrop<F: FnMut()>(F);
            impl<F: FnMut()> Drop for OnDrop<F> {
                fn drop(&mut self) {
                    (self.0)();
                }
            }
            let unwinding = weft::spawn({
                let lock = lock.clone();
                move || {
                    let _on_drop = OnDrop(move || {
                        assert!(std::thread::panicking());
                        victim_handle.cancel();
                        let tx = tx.clone();
                        drop(weft::spawn(move || {
                            tx.send("spawned while unwinding").unwrap()
                        }));
                        *lock.lock().unwrap() += 1;
                    });
                    panic!("unwinding");
                }
            });
            assert!(unwinding.join().is_err());
            assert!(victim.join().unwrap_err().is::<weft::Cancelled>());
            assert_eq!(rx.recv().unwrap(), "spawned while unwinding");
            assert_eq!(*lock.lock().unwrap(), 1);
        })
    });
}
