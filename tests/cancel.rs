//! Cancellation: a cancelled green thread unwinds from the blocking point it is in (or its
//! next one), its destructors run, and `join` reports `weft::Cancelled`.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use weft::sync::{Condvar, Mutex, RwLock, Semaphore};

/// Counts drops, so a test can see that the unwinding ran destructors.
struct Dropped(Arc<AtomicUsize>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// What the blocking points below share: a lock held, a channel that stays empty, …
struct Fixture {
    mutex: Mutex<()>,
    rwlock: RwLock<()>,
    condvar_lock: Mutex<bool>,
    condvar: Condvar,
    semaphore: Semaphore,
    empty_rx: weft::chan::Receiver<u32>,
    full_tx: weft::chan::Sender<u32>,
    /// The other ends, kept so that the waits above stay waits (and for the storm's check).
    empty_tx: weft::chan::Sender<u32>,
    full_rx: weft::chan::Receiver<u32>,
    socket: weft::net::TcpStream,
}

type Wait = fn(&Fixture);

fn waits() -> Vec<(&'static str, Wait)> {
    vec![
        ("park", |_| loop {
            weft::park();
        }),
        ("sleep", |_| weft::sleep(Duration::from_secs(3600))),
        ("chan recv", |f| {
            let _ = f.empty_rx.recv();
        }),
        ("chan send", |f| {
            let _ = f.full_tx.send(2);
        }),
        ("select", |f| {
            weft::select! {
                recv(f.empty_rx) -> _ => {},
                recv(weft::chan::after(Duration::from_secs(3600))) -> _ => {},
            }
        }),
        ("mutex", |f| drop(f.mutex.lock())),
        ("rwlock", |f| drop(f.rwlock.read())),
        ("condvar", |f| {
            let guard = f.condvar_lock.lock().unwrap();
            let _guard = f.condvar.wait_while(guard, |ready| !*ready).unwrap();
        }),
        ("semaphore", |f| drop(f.semaphore.acquire())),
        ("socket read", |f| {
            let mut buf = [0u8; 16];
            let _ = (&f.socket).read(&mut buf);
        }),
        ("join", |_| {
            let sleeper = weft::spawn(|| weft::sleep(Duration::from_secs(3600)));
            let handle = sleeper.coroutine();
            // Cancel the inner sleeper too, whatever happens to us.
            struct CancelOnDrop(weft::Coroutine);
            impl Drop for CancelOnDrop {
                fn drop(&mut self) {
                    self.0.cancel();
                }
            }
            let _cleanup = CancelOnDrop(handle);
            let _ = sleeper.join();
        }),
        ("yield loop", |_| loop {
            weft::yield_now();
        }),
    ]
}

fn fixture() -> (Arc<Fixture>, impl FnOnce()) {
    let (full_tx, full_rx) = weft::chan::bounded(1);
    full_tx.send(1).unwrap();
    let (empty_tx, empty_rx) = weft::chan::unbounded();
    let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let socket = weft::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (peer, _) = listener.accept().unwrap();
    let fixture = Arc::new(Fixture {
        mutex: Mutex::new(()),
        rwlock: RwLock::new(()),
        condvar_lock: Mutex::new(false),
        condvar: Condvar::new(),
        semaphore: Semaphore::new(0),
        empty_rx,
        full_tx,
        empty_tx,
        full_rx,
        socket,
    });
    // Keep the peer alive until the end.
    let keep = move || drop((peer, listener));
    (fixture, keep)
}

/// Spawns a green thread that holds a guard and then waits in `wait`; cancels it from
/// `cancel_from` once it is (most likely) parked; checks the outcome.
fn cancel_one(name: &'static str, wait: Wait, fixture: &Arc<Fixture>, from_plain_thread: bool) {
    let dropped = Arc::new(AtomicUsize::new(0));
    let entered = Arc::new(AtomicBool::new(false));
    let target = weft::spawn({
        let (fixture, dropped, entered) = (fixture.clone(), dropped.clone(), entered.clone());
        move || {
            let _guard = Dropped(dropped);
            entered.store(true, Ordering::SeqCst);
            wait(&fixture);
            unreachable!("{name}: the wait returned");
        }
    });
    while !entered.load(Ordering::SeqCst) {
        weft::sleep(Duration::from_millis(1));
    }
    weft::sleep(Duration::from_millis(5)); // let it park
    if from_plain_thread {
        let handle = target.coroutine();
        std::thread::spawn(move || handle.cancel()).join().unwrap();
    } else {
        target.cancel();
    }
    let payload = target.join().expect_err(name);
    assert!(
        payload.is::<weft::Cancelled>(),
        "{name}: not a Cancelled payload"
    );
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "{name}: destructors did not run"
    );
}

#[test]
fn cancel_unwinds_every_kind_of_wait() {
    common::workers(2);
    let cancelled_before = weft::stats().cancelled;
    common::watchdog(120, || {
        weft::run(|| {
            let (fixture, keep) = fixture();
            // Hold what the waits want.
            let mutex_guard = fixture.mutex.lock().unwrap();
            let write_guard = fixture.rwlock.write().unwrap();
            let mut count = 0;
            for from_plain_thread in [false, true] {
                for (name, wait) in waits() {
                    cancel_one(name, wait, &fixture, from_plain_thread);
                    count += 1;
                }
            }
            // The locks still work after their waiters were cancelled, and hand over to a
            // waiter queued behind the cancelled ones.
            let next = weft::spawn({
                let fixture = fixture.clone();
                move || {
                    drop(fixture.mutex.lock().unwrap());
                    drop(fixture.rwlock.read().unwrap());
                }
            });
            weft::sleep(Duration::from_millis(5));
            drop(mutex_guard);
            drop(write_guard);
            next.join().unwrap();
            keep();
            assert_eq!(count, 2 * waits().len());
        })
    });
    // The join of each "join" case cancelled its sleeper as well.
    assert!(weft::stats().cancelled >= cancelled_before + 2 * waits().len() as u64);
}

#[test]
fn cancel_before_start_skips_the_body_and_twice_is_once() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let ran = Arc::new(AtomicBool::new(false));
            let target = weft::spawn({
                let ran = ran.clone();
                move || ran.store(true, Ordering::SeqCst)
            });
            target.cancel();
            target.cancel();
            assert!(target.join().unwrap_err().is::<weft::Cancelled>());
            assert!(!ran.load(Ordering::SeqCst), "the body ran after a cancel");

            // A finished green thread: cancel is a no-op.
            let done = weft::spawn(|| 5);
            while !done.is_finished() {
                weft::yield_now();
            }
            done.cancel();
            assert_eq!(done.join().unwrap(), 5);
            assert!(!weft::is_cancelled());
        })
    });
}

#[test]
fn offload_finishes_its_closure_before_the_cancel_takes_effect() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let (started, finished) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            );
            let target = weft::spawn({
                let (started, finished) = (started.clone(), finished.clone());
                move || {
                    let borrowed = vec![1u8; 1024];
                    weft::offload(|| {
                        started.store(true, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(100));
                        // `borrowed` must still be alive here.
                        assert_eq!(borrowed.iter().map(|&b| b as usize).sum::<usize>(), 1024);
                        finished.store(true, Ordering::SeqCst);
                    });
                    unreachable!("the cancel should take effect after the offload");
                }
            });
            while !started.load(Ordering::SeqCst) {
                weft::sleep(Duration::from_millis(1));
            }
            target.cancel();
            assert!(target.join().unwrap_err().is::<weft::Cancelled>());
            assert!(
                finished.load(Ordering::SeqCst),
                "unwound before the closure returned"
            );
        })
    });
}

#[test]
fn a_scope_cancels_its_green_threads() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let dropped = Arc::new(AtomicUsize::new(0));
            let joined = weft::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        let dropped = dropped.clone();
                        s.spawn(move || {
                            let _guard = Dropped(dropped);
                            weft::sleep(Duration::from_secs(3600));
                        })
                    })
                    .collect();
                weft::sleep(Duration::from_millis(5));
                handles[0].cancel();
                s.cancel_all();
                handles.len()
            });
            assert_eq!(joined, 4);
            assert_eq!(dropped.load(Ordering::SeqCst), 4);

            // A cancelled owner cancels its scope's green threads before it unwinds.
            let inner_dropped = Arc::new(AtomicUsize::new(0));
            let owner = weft::spawn({
                let inner_dropped = inner_dropped.clone();
                move || {
                    weft::scope(|s| {
                        for _ in 0..3 {
                            let inner_dropped = inner_dropped.clone();
                            s.spawn(move || {
                                let _guard = Dropped(inner_dropped);
                                weft::sleep(Duration::from_secs(3600));
                            });
                        }
                        weft::sleep(Duration::from_secs(3600));
                    })
                }
            });
            weft::sleep(Duration::from_millis(10));
            owner.cancel();
            assert!(owner.join().unwrap_err().is::<weft::Cancelled>());
            assert_eq!(inner_dropped.load(Ordering::SeqCst), 3);
        })
    });
}

#[test]
#[ignore = "child process of a_destructor_blocking_during_a_cancel_is_diagnosed"]
fn child_cancel_destructor_blocks() {
    if !common::is_child() {
        return;
    }
    common::workers(1);
    struct LockOnDrop(Arc<Mutex<()>>);
    impl Drop for LockOnDrop {
        fn drop(&mut self) {
            let _guard = self.0.lock();
        }
    }
    weft::run(|| {
        let lock = Arc::new(Mutex::new(()));
        let held = lock.clone();
        let (release_tx, release_rx) = weft::chan::bounded::<()>(0);
        // The holder is homed on the only worker and holds the lock until told.
        let holder = weft::spawn(move || {
            let _guard = held.lock().unwrap();
            let _ = release_rx.recv();
        });
        weft::yield_now();
        let target = weft::Builder::new()
            .name("cancelled")
            .spawn(move || {
                let _on_drop = LockOnDrop(lock);
                weft::sleep(Duration::from_secs(3600));
            })
            .unwrap();
        weft::sleep(Duration::from_millis(5));
        target.cancel();
        // The release would come from here, but this green thread shares the blocked worker.
        weft::sleep(Duration::from_millis(10));
        drop(release_tx);
        let _ = target.join();
        holder.join().unwrap();
    });
    println!("no deadlock");
}

#[test]
fn a_destructor_blocking_during_a_cancel_is_diagnosed() {
    // The documented outcome (src/interrupt.rs): the cancel unwinds like a panic, so the
    // destructor's lock blocks the worker's OS thread; the holder is homed on that worker,
    // so weft reports the deadlock by name and then aborts instead of hanging.
    let stderr = common::deadlocked_child("child_cancel_destructor_blocks");
    assert!(
        stderr.contains("weft: likely deadlock: green thread "),
        "{stderr}"
    );
    assert!(stderr.contains("'cancelled' is unwinding"), "{stderr}");
}

#[test]
#[ignore = "child process of live_returns_to_zero_after_cancels"]
fn child_live_after_cancels() {
    if !common::is_child() {
        return;
    }
    common::workers(2);
    weft::run(|| {
        let (fixture, keep) = fixture();
        let _mutex_guard = fixture.mutex.lock().unwrap();
        let _write_guard = fixture.rwlock.write().unwrap();
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let fixture = fixture.clone();
                weft::spawn(move || {
                    // Not "join": it leaves a sleeper behind that is cancelled but not joined.
                    let kinds: Vec<_> = waits().into_iter().filter(|(n, _)| *n != "join").collect();
                    let (_, wait) = kinds[i % kinds.len()];
                    wait(&fixture);
                })
            })
            .collect();
        weft::sleep(Duration::from_millis(20));
        for h in &handles {
            h.cancel();
        }
        for h in handles {
            assert!(h.join().unwrap_err().is::<weft::Cancelled>());
        }
        keep();
    });
    println!("live after the cancels: {}", weft::stats().live);
}

#[test]
fn live_returns_to_zero_after_cancels() {
    // In a process of its own, so that no other test's green threads count.
    let output = common::run_child("child_live_after_cancels", &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        common::stderr_of(&output)
    );
    assert!(stdout.contains("live after the cancels: 0"), "{stdout}");
}

#[test]
fn a_late_cancel_does_not_cut_end_of_life_cleanup_short() {
    // The body has returned; a coroutine-local destructor then blocks (hands something
    // over). A cancel that arrives now must not interrupt it, nor replace the result.
    common::workers(2);
    weft::coroutine_local! {
        static HANDOFF: std::cell::RefCell<Option<Handoff>> = std::cell::RefCell::new(None);
    }
    struct Handoff(weft::chan::Sender<&'static str>);
    impl Drop for Handoff {
        fn drop(&mut self) {
            // A rendezvous: waits until the test receives.
            let _ = self.0.send("returned the connection");
        }
    }
    common::watchdog(60, || {
        weft::run(|| {
            let (tx, rx) = weft::chan::bounded(0);
            let target = weft::spawn(move || {
                HANDOFF.set(Some(Handoff(tx)));
                7
            });
            weft::sleep(Duration::from_millis(10)); // the destructor now waits in send
            target.cancel();
            assert_eq!(rx.recv(), Ok("returned the connection"));
            assert_eq!(target.join().unwrap(), 7);
        })
    });
}

#[test]
fn a_notification_is_passed_on_when_its_waiter_is_cancelled() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let pair = Arc::new((Mutex::new(()), Condvar::new()));
            let entered = Arc::new(AtomicUsize::new(0));
            let waiter = |pair: Arc<(Mutex<()>, Condvar)>, entered: Arc<AtomicUsize>| {
                weft::spawn(move || {
                    let guard = pair.0.lock().unwrap();
                    entered.fetch_add(1, Ordering::SeqCst);
                    let (_guard, result) =
                        pair.1.wait_timeout(guard, Duration::from_secs(30)).unwrap();
                    result.timed_out()
                })
            };
            let first = waiter(pair.clone(), entered.clone());
            while entered.load(Ordering::SeqCst) < 1 {
                weft::sleep(Duration::from_millis(1));
            }
            let second = waiter(pair.clone(), entered.clone());
            while entered.load(Ordering::SeqCst) < 2 {
                weft::sleep(Duration::from_millis(1));
            }
            weft::sleep(Duration::from_millis(5));
            {
                // Notify the first (FIFO) while holding the lock, then cancel it: it wakes,
                // fails to re-take the lock, and unwinds with the notification consumed.
                let _guard = pair.0.lock().unwrap();
                pair.1.notify_one();
                first.cancel();
                weft::sleep(Duration::from_millis(10));
            }
            assert!(first.join().unwrap_err().is::<weft::Cancelled>());
            assert!(
                !second.join().unwrap(),
                "the second waiter timed out: notification lost"
            );
        })
    });
}

#[test]
fn a_green_thread_spawned_after_cancel_all_is_cancelled_too() {
    common::workers(2);
    common::watchdog(60, || {
        weft::scope(|s| {
            s.cancel_all();
            let late = s.spawn(|| weft::sleep(Duration::from_secs(3600)));
            assert!(late.join().unwrap_err().is::<weft::Cancelled>());
        });
    });
}

#[test]
fn a_cancel_that_wakes_a_park_unwinds_it() {
    // `weft::park` is a blocking point on wake-up too: the cancel that unparks it takes
    // effect there, not at some later blocking point the body may never reach.
    let parked = Arc::new(AtomicBool::new(false));
    let flag = parked.clone();
    let handle = weft::spawn(move || {
        flag.store(true, Ordering::SeqCst);
        weft::park();
        42
    });
    while !parked.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(10)); // most likely parked by now
    handle.cancel();
    let payload = handle.join().expect_err("the park returned normally");
    assert!(payload.is::<weft::Cancelled>());
}

#[test]
fn park_timeout_zero_on_a_plain_thread_consumes_the_token() {
    // As std's: a token left by an unpark is consumed even by a zero timeout, so the park
    // after it waits (at least until its own timeout: a lower bound, never early).
    std::thread::current().unpark();
    weft::park_timeout(Duration::ZERO);
    let start = std::time::Instant::now();
    weft::park_timeout(Duration::from_millis(50));
    assert!(start.elapsed() >= Duration::from_millis(50));
}

/// xorshift: reproducible choices without a dependency.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
#[ignore = "child process of a_storm_of_cancels_leaves_nothing_behind"]
fn child_cancel_storm() {
    if !common::is_child() {
        return;
    }
    common::workers(2);
    let total = common::scaled(10_000);
    let created = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    weft::run(|| {
        let (fixture, keep) = fixture();
        let mutex_guard = fixture.mutex.lock().unwrap();
        let write_guard = fixture.rwlock.write().unwrap();
        // Every kind of wait of `waits()`, plus an offload and a child process's exit.
        let mut kinds: Vec<(&'static str, Wait)> = waits();
        kinds.push(("offload", |_| {
            weft::offload(|| std::thread::sleep(Duration::from_millis(2)));
            loop {
                weft::park();
            }
        }));
        let mut rng = 0x5eed_u64;
        let mut by_kind = vec![0usize; kinds.len() + 1];
        let yield_loop = kinds.iter().position(|&(n, _)| n == "yield loop").unwrap();
        let mut handles = Vec::with_capacity(total);
        for i in 0..total {
            // One in 500 waits for a child process, 20 in all whatever WEFT_STRESS says
            // (the storm is about cancels, not about starting processes).
            // Green threads in a yield loop are capped at 1,000 too: each is run at every
            // turn of its worker, so at WEFT_STRESS=100 their ~66,000 made the storm
            // quadratic (it did not end in 10 minutes) without racing anything new.
            let kind = if i % 500 == 499 && i < 10_000 {
                kinds.len()
            } else {
                loop {
                    let kind = (next(&mut rng) % kinds.len() as u64) as usize;
                    if kind != yield_loop || by_kind[kind] < 1_000 {
                        break kind;
                    }
                }
            };
            by_kind[kind] += 1;
            let wait = kinds.get(kind).map(|&(_, wait)| wait);
            let (fixture, created, dropped) = (fixture.clone(), created.clone(), dropped.clone());
            handles.push(weft::spawn(move || {
                created.fetch_add(1, Ordering::SeqCst);
                let _guard = Dropped(dropped);
                match wait {
                    Some(wait) => wait(&fixture),
                    None => {
                        // Killed (not reaped) by its guard, whatever ends the wait.
                        struct Kill(weft::process::Child);
                        impl Drop for Kill {
                            fn drop(&mut self) {
                                let _ = self.0.kill();
                            }
                        }
                        let child = weft::process::Command::new("sleep").arg("3600").spawn();
                        let mut child = Kill(child.unwrap());
                        let _ = child.0.wait();
                    }
                }
                unreachable!("a wait of the storm returned");
            }));
            // Cancel at random points: some before they start, some while they enter their
            // wait, most once they wait.
            match next(&mut rng) % 8 {
                0 => handles[i].cancel(),
                1 => {
                    let victim = (next(&mut rng) % (i as u64 + 1)) as usize;
                    handles[victim].cancel();
                }
                2 => weft::yield_now(),
                _ => {}
            }
        }
        weft::sleep(Duration::from_millis(20));
        // The rest, in a random order, from here and from a plain thread.
        let mut order: Vec<usize> = (0..total).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, (next(&mut rng) % (i as u64 + 1)) as usize);
        }
        let (here, there) = order.split_at(total / 2);
        let remote: Vec<weft::Coroutine> = there.iter().map(|&i| handles[i].coroutine()).collect();
        let canceller = std::thread::spawn(move || remote.iter().for_each(|c| c.cancel()));
        for (n, &i) in here.iter().enumerate() {
            handles[i].cancel();
            if n % 64 == 0 {
                weft::yield_now();
            }
        }
        canceller.join().unwrap();
        for h in handles {
            assert!(h.join().unwrap_err().is::<weft::Cancelled>());
        }
        assert_eq!(
            dropped.load(Ordering::SeqCst),
            created.load(Ordering::SeqCst),
            "a destructor did not run, or ran twice"
        );
        // No wait queue kept an entry of a cancelled waiter: each primitive serves a new
        // waiter at once (an entry left behind would take its hand-off or notification).
        let fresh = weft::spawn({
            let fixture = fixture.clone();
            move || {
                drop(fixture.mutex.lock().unwrap());
                drop(fixture.rwlock.read().unwrap());
                fixture.semaphore.acquire().forget();
                let guard = fixture.condvar_lock.lock().unwrap();
                drop(fixture.condvar.wait_while(guard, |ready| !*ready).unwrap());
                fixture.full_tx.send(5).unwrap();
                fixture.empty_rx.recv().unwrap()
            }
        });
        weft::sleep(Duration::from_millis(5));
        drop(mutex_guard);
        drop(write_guard);
        fixture.semaphore.release();
        *fixture.condvar_lock.lock().unwrap() = true;
        fixture.condvar.notify_one();
        // The full channel takes the fresh sender's message after its first, and none of
        // a cancelled sender's (they sent 2).
        assert_eq!(fixture.full_rx.recv().unwrap(), 1);
        assert_eq!(fixture.full_rx.recv().unwrap(), 5);
        fixture.empty_tx.send(77).unwrap();
        assert_eq!(fresh.join().unwrap(), 77);
        assert!(
            fixture.full_rx.try_recv().is_err(),
            "a cancelled send got through"
        );
        keep();
        println!(
            "cancel storm: {total} green threads, {} started, kinds {by_kind:?}, every \
             destructor once",
            created.load(Ordering::SeqCst)
        );
    });
    // The "join" waits leave their cancelled sleepers to finish on their own.
    let start = std::time::Instant::now();
    while weft::stats().live != 0 && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    println!("live after the storm: {}", weft::stats().live);
}

#[test]
fn a_storm_of_cancels_leaves_nothing_behind() {
    let secs = 300 + 60 * common::stress() as u64;
    let out = common::watchdog(secs, || common::child_stdout("child_cancel_storm", &[]));
    println!("{}", common::line_with(&out, "cancel storm:"));
    assert!(out.contains("live after the storm: 0"), "{out}");
}
