//! With the `hooks` feature: std's futex-based waits (`Mutex`, `Condvar`, `RwLock`,
//! `OnceLock`, `Barrier`) park green threads in weft's address-keyed futex table instead of
//! blocking their worker, while waits keyed by the OS thread (`thread::park`, std `mpsc`)
//! keep blocking it and stay correct. Each test runs on one worker: before the futex hook,
//! every green-thread case here deadlocked it (the waiter blocked the worker in the kernel,
//! so the holder, parked on the same worker, never ran again).
#![cfg(feature = "hooks")]

mod common;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use common::Ticker;

/// Each test's green threads run on the file's one worker, one test at a time: some tests
/// block that worker on purpose (waits that stay in the kernel), which would stall the
/// tickers of tests running beside them.
fn one_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    static SERIAL: Mutex<()> = Mutex::new(());
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    common::workers(1);
    common::watchdog(120, move || weft::run(f))
}

#[test]
fn a_std_mutex_held_across_a_hooked_sleep_parks_its_waiters() {
    let (count, ticks) = one_worker(|| {
        let ticker = Ticker::start();
        let lock = Arc::new(Mutex::new(0u64));
        ticker.during(|| {
            let handles: Vec<_> = (0..20)
                .map(|_| {
                    let lock = lock.clone();
                    weft::spawn(move || {
                        let mut guard = lock.lock().unwrap();
                        // Parks (hooked sleep) while holding the std lock.
                        std::thread::sleep(Duration::from_millis(10));
                        *guard += 1;
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap();
            }
            *lock.lock().unwrap()
        })
    });
    assert_eq!(count, 20);
    // 20 × 10 ms under the lock: ~200 ms in which the worker must stay free.
    assert!(ticks >= 30, "the ticker ticked {ticks} times in ~200 ms");
}

#[test]
fn a_std_condvar_ping_pongs_between_green_threads_of_one_worker() {
    let rounds = one_worker(|| {
        let state = Arc::new((Mutex::new((0u64, false)), Condvar::new()));
        let ponger = {
            let state = state.clone();
            weft::spawn(move || {
                let (lock, cvar) = &*state;
                for _ in 0..1000 {
                    let mut guard = cvar.wait_while(lock.lock().unwrap(), |s| !s.1).unwrap();
                    guard.0 += 1;
                    guard.1 = false;
                    cvar.notify_all();
                }
            })
        };
        let (lock, cvar) = &*state;
        for _ in 0..1000 {
            let mut guard = cvar.wait_while(lock.lock().unwrap(), |s| s.1).unwrap();
            guard.1 = true;
            cvar.notify_all();
        }
        ponger.join().unwrap();
        let rounds = lock.lock().unwrap().0;
        rounds
    });
    assert_eq!(rounds, 1000);
}

#[test]
fn a_once_lock_initialiser_that_sleeps_runs_once_and_parks_the_others() {
    let (values, ticks, runs) = one_worker(|| {
        let ticker = Ticker::start();
        let cell = Arc::new(OnceLock::new());
        let runs = Arc::new(AtomicUsize::new(0));
        let (values, ticks) = ticker.during(|| {
            let handles: Vec<_> = (0..10)
                .map(|_| {
                    let (cell, runs) = (cell.clone(), runs.clone());
                    weft::spawn(move || {
                        *cell.get_or_init(|| {
                            runs.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(Duration::from_millis(300));
                            42u32
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        (values, ticks, runs.load(Ordering::Relaxed))
    });
    assert_eq!(values, vec![42; 10]);
    assert_eq!(runs, 1, "the initialiser ran {runs} times");
    assert!(ticks >= 30, "the ticker ticked {ticks} times in ~300 ms");
}

#[test]
fn a_std_barrier_and_rwlock_among_green_threads_of_one_worker() {
    let (seen, ticks) = one_worker(|| {
        let ticker = Ticker::start();
        let barrier = Arc::new(Barrier::new(10));
        let table = Arc::new(RwLock::new(Vec::new()));
        ticker.during(|| {
            let handles: Vec<_> = (0..10u32)
                .map(|i| {
                    let (barrier, table) = (barrier.clone(), table.clone());
                    weft::spawn(move || {
                        {
                            let mut rows = table.write().unwrap();
                            std::thread::sleep(Duration::from_millis(10));
                            rows.push(i);
                        }
                        // Nobody passes until all ten have written.
                        barrier.wait();
                        let rows = table.read().unwrap();
                        std::thread::sleep(Duration::from_millis(10));
                        rows.len()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    assert_eq!(seen, vec![10; 10]);
    assert!(ticks >= 30, "the ticker ticked {ticks} times in ~110 ms");
}

#[test]
fn a_timed_condvar_wait_keeps_its_contract() {
    // Timed futex waits go to the kernel (a foreign runtime's timed park must not switch
    // green threads): the wait still times out, not early, and is still notified.
    let (timed_out, waited, notified) = one_worker(|| {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let start = Instant::now();
        let (_guard, result) = pair
            .1
            .wait_timeout(pair.0.lock().unwrap(), Duration::from_millis(200))
            .unwrap();
        let waited = start.elapsed();
        let timed_out = result.timed_out();
        drop(_guard);
        let notifier = {
            let pair = pair.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                *pair.0.lock().unwrap() = true;
                pair.1.notify_all();
            })
        };
        let (done, _) = pair
            .1
            .wait_timeout_while(pair.0.lock().unwrap(), Duration::from_secs(30), |d| !*d)
            .unwrap();
        let notified = *done;
        drop(done);
        notifier.join().unwrap();
        (timed_out, waited, notified)
    });
    assert!(timed_out);
    assert!(
        waited >= Duration::from_millis(200),
        "woke early: {waited:?}"
    );
    assert!(notified);
}

#[test]
fn green_and_plain_threads_share_std_locks_without_losing_an_update() {
    // The waker is on either side: green threads and plain threads contend for one std
    // Mutex (some holding it across a weft yield, which parks the holder), and hand a
    // token through a Condvar. Every update must land.
    const GREEN: usize = 40;
    const PLAIN: usize = 4;
    const EACH: u64 = 500;
    let counter = Arc::new(Mutex::new(0u64));
    let plain: Vec<_> = (0..PLAIN)
        .map(|_| {
            let counter = counter.clone();
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    *counter.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    let green_counter = counter.clone();
    one_worker(move || {
        let handles: Vec<_> = (0..GREEN)
            .map(|i| {
                let counter = green_counter.clone();
                weft::spawn(move || {
                    for n in 0..EACH {
                        let mut guard = counter.lock().unwrap();
                        if (n + i as u64).is_multiple_of(16) {
                            weft::yield_now();
                        }
                        *guard += 1;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    });
    for thread in plain {
        thread.join().unwrap();
    }
    assert_eq!(*counter.lock().unwrap(), (GREEN + PLAIN) as u64 * EACH);
}

#[test]
fn a_plain_thread_wakes_a_green_thread_waiting_on_a_std_condvar() {
    let (seen, ticks) = one_worker(move || {
        let state = Arc::new((Mutex::new(0u64), Condvar::new()));
        let ticker = Ticker::start();
        let notifier = {
            let state = state.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    std::thread::sleep(Duration::from_micros(200));
                    *state.0.lock().unwrap() += 1;
                    state.1.notify_all();
                }
            })
        };
        let result = ticker.during(|| {
            let (lock, cvar) = &*state;
            let guard = cvar.wait_while(lock.lock().unwrap(), |n| *n < 200).unwrap();
            *guard
        });
        notifier.join().unwrap();
        result
    });
    assert_eq!(seen, 200);
    assert!(
        ticks >= 10,
        "the ticker ticked {ticks} times while the green thread waited"
    );
}

#[test]
fn thread_park_stays_keyed_by_the_os_thread() {
    // std's park word belongs to the OS thread. If two green threads of one worker parked
    // on it at once, the second would drive it below PARKED and reset it, and the unpark
    // meant for the first would find no sleeper: a lost wake-up. Such waits block the
    // worker instead, as before: slower, never wrong.
    let waited = one_worker(|| {
        let unparked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = std::thread::current();
        let first = {
            let unparked = unparked.clone();
            weft::spawn(move || {
                let start = Instant::now();
                while !unparked.load(Ordering::Acquire) && start.elapsed() < Duration::from_secs(20)
                {
                    std::thread::park_timeout(Duration::from_secs(20));
                }
                start.elapsed()
            })
        };
        let second = weft::spawn(|| std::thread::park_timeout(Duration::from_millis(10)));
        let waker = {
            let unparked = unparked.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                unparked.store(true, Ordering::Release);
                worker.unpark();
            })
        };
        let waited = first.join().unwrap();
        second.join().unwrap();
        waker.join().unwrap();
        waited
    });
    assert!(
        waited < Duration::from_secs(10),
        "the unpark was lost: the green thread waited {waited:?}"
    );
}

#[test]
fn std_mpsc_from_a_plain_thread_reaches_a_green_thread() {
    let value = one_worker(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            for i in 0..100u64 {
                tx.send(i).unwrap();
                if i % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let sum: u64 = rx.iter().sum();
        sender.join().unwrap();
        sum
    });
    assert_eq!(value, (0..100).sum::<u64>());
}

#[test]
fn a_futex_wait_counts_as_a_wait_in_the_dump() {
    let reasons = one_worker(|| {
        let lock = Arc::new(Mutex::new(()));
        let held = lock.lock().unwrap();
        let waiting = Arc::new(AtomicU64::new(0));
        let waiter = {
            let (lock, waiting) = (lock.clone(), waiting.clone());
            weft::spawn(move || {
                waiting.store(1, Ordering::Release);
                drop(lock.lock().unwrap());
            })
        };
        while waiting.load(Ordering::Acquire) == 0 {
            weft::yield_now();
        }
        // Let the waiter reach the futex (std spins a little first).
        weft::sleep(Duration::from_millis(20));
        let dump = weft::dump();
        drop(held);
        waiter.join().unwrap();
        dump
    });
    assert!(reasons.contains("futex"), "{reasons}");
}

#[test]
#[ignore = "child process of std_locks_storm_across_two_workers"]
fn child_std_locks_storm() {
    if !common::is_child() {
        return;
    }
    common::workers(2);
    // Green threads on both workers and plain threads hammer one std Mutex, a Condvar hand-
    // off and an RwLock; wakes cross workers and thread kinds all the time.
    const GREEN: u64 = 64;
    const EACH: u64 = 300;
    let counter = Arc::new(Mutex::new(0u64));
    let table = Arc::new(RwLock::new(0u64));
    let baton = Arc::new((Mutex::new(0u64), Condvar::new()));
    let plain: Vec<_> = (0..2u64)
        .map(|parity| {
            let (counter, baton) = (counter.clone(), baton.clone());
            std::thread::spawn(move || {
                for _ in 0..EACH {
                    *counter.lock().unwrap() += 1;
                    let (lock, cvar) = &*baton;
                    let mut turn = cvar
                        .wait_while(lock.lock().unwrap(), |t| *t % 4 != parity)
                        .unwrap();
                    *turn += 1;
                    cvar.notify_all();
                }
            })
        })
        .collect();
    weft::run({
        let (counter, table, baton) = (counter.clone(), table.clone(), baton.clone());
        move || {
            let mut handles = Vec::new();
            for parity in 2..4u64 {
                let baton = baton.clone();
                handles.push(weft::spawn(move || {
                    for _ in 0..EACH {
                        let (lock, cvar) = &*baton;
                        let mut turn = cvar
                            .wait_while(lock.lock().unwrap(), |t| *t % 4 != parity)
                            .unwrap();
                        *turn += 1;
                        cvar.notify_all();
                    }
                }));
            }
            for i in 0..GREEN {
                let (counter, table) = (counter.clone(), table.clone());
                handles.push(weft::spawn(move || {
                    for n in 0..EACH {
                        if (n + i) % 8 == 0 {
                            let mut w = table.write().unwrap();
                            weft::yield_now();
                            *w += 1;
                        } else {
                            let mut guard = counter.lock().unwrap();
                            if (n + i) % 5 == 0 {
                                weft::yield_now();
                            }
                            *guard += 1;
                            drop(guard);
                            let _r = table.read().unwrap();
                        }
                    }
                }));
            }
            for handle in handles {
                handle.join().unwrap();
            }
        }
    });
    for thread in plain {
        thread.join().unwrap();
    }
    let writes = (0..GREEN)
        .map(|i| (0..EACH).filter(|n| (n + i) % 8 == 0).count() as u64)
        .sum::<u64>();
    let locked = *counter.lock().unwrap();
    let written = *table.read().unwrap();
    let turns = *baton.0.lock().unwrap();
    println!("result {} {} {}", locked, written, turns);
    assert_eq!(locked, GREEN * EACH - writes + 2 * EACH);
    assert_eq!(written, writes);
    assert_eq!(turns, 4 * EACH);
}

#[test]
fn std_locks_storm_across_two_workers() {
    let stdout = common::watchdog(120, || common::child_stdout("child_std_locks_storm", &[]));
    assert!(
        common::line_with(&stdout, "result ").contains("result "),
        "{stdout}"
    );
}

#[test]
#[ignore = "child process of weft_hooks_futex_off_sends_futex_waits_to_the_kernel"]
fn child_contended_mutex_beside_a_ticker() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    // A plain thread holds a std Mutex for 300 ms while a green thread waits for it.
    let lock = Arc::new(Mutex::new(()));
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            let _guard = lock.lock().unwrap();
            held_tx.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        })
    };
    held_rx.recv().unwrap();
    weft::run(move || {
        let ticker = Ticker::start();
        let (_, ticks) = ticker.during(|| drop(lock.lock().unwrap()));
        println!("result ticks {ticks}");
    });
    holder.join().unwrap();
}

#[test]
fn weft_hooks_futex_off_sends_futex_waits_to_the_kernel() {
    let ticks = |value: &str| -> (u64, String) {
        let output = common::run_child(
            "child_contended_mutex_beside_a_ticker",
            &[("WEFT_HOOKS_FUTEX", value)],
        );
        assert!(output.status.success(), "{}", common::stderr_of(&output));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let line = common::line_with(&stdout, "result ticks ");
        let ticks = line.rsplit(' ').next().unwrap().parse().unwrap();
        (ticks, common::stderr_of(&output))
    };
    // Off: the wait blocks the one worker, so the ticker cannot run during it.
    let (off, _) = ticks("off");
    assert!(off < 10, "the ticker ticked {off} times with the hook off");
    // On (and a bad value, which says so and keeps it on): the wait parks.
    let (on, _) = ticks("on");
    assert!(on >= 30, "the ticker ticked {on} times with the hook on");
    let (bad, stderr) = ticks("maybe");
    assert!(bad >= 30, "the ticker ticked {bad} times with a bad value");
    assert!(
        stderr.contains("WEFT_HOOKS_FUTEX must be on or off"),
        "{stderr}"
    );
}

#[test]
#[ignore = "child process of weft_own_locks_never_park_a_green_thread"]
fn child_spawn_storm_from_green_and_plain_threads() {
    if !common::is_child() {
        return;
    }
    common::workers(2);
    // Green threads of both workers and plain threads spawn at once, so the stack pool's
    // shared lock is contended while a worker's own stack cache is borrowed. A green
    // thread parked there would leave that borrow to the next green thread of its worker
    // ("RefCell already borrowed"): weft's own locks must block the OS thread instead.
    let plain: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..400 {
                    let batch: Vec<_> = (0..16).map(|_| weft::spawn(|| ())).collect();
                    for handle in batch {
                        handle.join().unwrap();
                    }
                }
            })
        })
        .collect();
    let spawned = weft::run(|| {
        let handles: Vec<_> = (0..64)
            .map(|_| {
                weft::spawn(|| {
                    let mut count = 0;
                    for _ in 0..50 {
                        let batch: Vec<_> = (0..64).map(|_| weft::spawn(|| ())).collect();
                        for handle in batch {
                            handle.join().unwrap();
                            count += 1;
                        }
                    }
                    count
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u64>()
    });
    for thread in plain {
        thread.join().unwrap();
    }
    println!("result spawned {spawned}");
}

#[test]
fn weft_own_locks_never_park_a_green_thread() {
    let stdout = common::watchdog(120, || {
        common::child_stdout("child_spawn_storm_from_green_and_plain_threads", &[])
    });
    assert!(
        common::line_with(&stdout, "result spawned ").contains("result spawned 204800"),
        "{stdout}"
    );
}

/// `syscall(SYS_futex, …)` as std makes it.
fn futex(word: &AtomicU32, op: i32, val: u32, timeout: usize, addr2: usize, val3: u32) -> i64 {
    // SAFETY: a live, aligned word; the other arguments are plain values or null.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word as *const AtomicU32,
            op,
            val,
            timeout,
            addr2,
            val3,
        )
    }
}

const WAIT: i32 = libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG;
const WAKE: i32 = libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG;

/// Waits on `word` (while it is 0) in a green thread while a plain thread sets and wakes
/// it after 200 ms; returns the ticks the worker's ticker got meanwhile.
fn ticks_while_waiting_on(word: &'static AtomicU32) -> u64 {
    one_worker(move || {
        word.store(0, Ordering::SeqCst);
        let ticker = Ticker::start();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            word.store(1, Ordering::SeqCst);
            futex(word, WAKE, i32::MAX as u32, 0, 0, 0);
        });
        let ((), ticks) = ticker.during(|| {
            while word.load(Ordering::SeqCst) == 0 {
                futex(word, WAIT, 0, 0, 0, 0);
            }
        });
        waker.join().unwrap();
        ticks
    })
}

#[test]
fn futex_words_of_the_os_thread_stay_in_the_kernel() {
    // A word on the heap parks green; a word in the worker's static TLS (parking_lot's
    // per-thread parker lives there) blocks the worker as before.
    static HEAP: std::sync::LazyLock<&'static AtomicU32> =
        std::sync::LazyLock::new(|| Box::leak(Box::new(AtomicU32::new(0))));
    thread_local! {
        static IN_TLS: AtomicU32 = const { AtomicU32::new(0) };
    }
    let green = ticks_while_waiting_on(&HEAP);
    assert!(green >= 30, "a heap word: {green} ticks");
    let tls = one_worker(|| IN_TLS.with(|w| w as *const AtomicU32 as usize));
    // SAFETY: the worker thread lives as long as the process, so its TLS does.
    let tls = ticks_while_waiting_on(unsafe { &*(tls as *const AtomicU32) });
    assert!(tls < 10, "a word in the worker's TLS: {tls} ticks");
}

#[test]
fn futex_wake_counts_and_wake_op_ordering() {
    let (first, second, woken_by_op) = one_worker(|| {
        let word: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
        let waiters: Vec<_> = (0..2)
            .map(|_| weft::spawn(move || futex(word, WAIT, 0, 0, 0, 0)))
            .collect();
        weft::sleep(Duration::from_millis(20));
        // Two green waiters: a wake of one releases one, a wake of all the other.
        let first = futex(word, WAKE, 1, 0, 0, 0);
        let second = futex(word, WAKE, i32::MAX as u32, 0, 0, 0);
        for waiter in waiters {
            assert_eq!(waiter.join().unwrap(), 0);
        }
        // FUTEX_WAKE_OP from a plain thread sets a second word and wakes its waiters: the
        // green waiter must see the new value (weft wakes it after the kernel's operation).
        let one: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
        let two: &'static AtomicU32 = Box::leak(Box::new(AtomicU32::new(0)));
        let waiter = weft::spawn(move || {
            while two.load(Ordering::SeqCst) == 0 {
                futex(two, WAIT, 0, 0, 0, 0);
            }
            true
        });
        weft::sleep(Duration::from_millis(20));
        std::thread::spawn(move || {
            let set_to_one_if_zero = 1 << 12; // FUTEX_OP(SET, 1, CMP_EQ, 0)
            let op = libc::FUTEX_WAKE_OP | libc::FUTEX_PRIVATE_FLAG;
            futex(
                one,
                op,
                0,
                1,
                two as *const AtomicU32 as usize,
                set_to_one_if_zero,
            )
        })
        .join()
        .unwrap();
        (first, second, waiter.join().unwrap())
    });
    assert_eq!((first, second), (1, 1));
    assert!(woken_by_op);
}

#[test]
fn raw_syscalls_through_the_hook_keep_libc_conventions() {
    let (tid, fd_errno, realtime_errno) = one_worker(|| {
        // SAFETY: no arguments; an invalid fd; a realtime flag the kernel refuses with WAIT.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid);
            let closed = libc::syscall(libc::SYS_close, -1);
            assert_eq!(closed, -1);
            let fd_errno = *libc::__errno_location();
            let word = AtomicU32::new(0);
            let timeout = libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000,
            };
            let res = libc::syscall(
                libc::SYS_futex,
                &word as *const AtomicU32,
                WAIT | libc::FUTEX_CLOCK_REALTIME,
                0,
                &timeout as *const libc::timespec,
            );
            assert_eq!(res, -1);
            (tid, fd_errno, *libc::__errno_location())
        }
    });
    assert!(tid > 0);
    assert_eq!(fd_errno, libc::EBADF);
    assert_eq!(realtime_errno, libc::ENOSYS);
}

#[test]
fn a_future_polled_by_block_on_may_wait_for_a_std_lock() {
    // The wait starts inside weft's blocking point (block_on polls the future there); the
    // holder is a green thread of the same worker, parked in a hooked sleep.
    let done = one_worker(|| {
        let lock = Arc::new(Mutex::new(0u32));
        let holder = {
            let lock = lock.clone();
            weft::spawn(move || {
                let mut guard = lock.lock().unwrap();
                std::thread::sleep(Duration::from_millis(100));
                *guard += 1;
            })
        };
        weft::sleep(Duration::from_millis(10));
        let seen = weft::block_on(std::future::poll_fn(|_| {
            std::task::Poll::Ready(*lock.lock().unwrap())
        }));
        holder.join().unwrap();
        seen
    });
    assert_eq!(done, 1);
}
