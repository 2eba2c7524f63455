//! `weft::timeout` and `weft::deadline` bound every blocking call inside them.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use weft::Elapsed;

const SHORT: Duration = Duration::from_millis(20);
const LONG: Duration = Duration::from_secs(3600);

#[test]
fn timeout_interrupts_each_kind_of_wait() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            // Channel receive.
            let (_tx, rx) = weft::chan::unbounded::<u32>();
            assert_eq!(weft::timeout(SHORT, || rx.recv()), Err(Elapsed::new()));
            // A timed receive inside: the earlier deadline wins.
            assert_eq!(
                weft::timeout(SHORT, || rx.recv_timeout(LONG)),
                Err(Elapsed::new())
            );
            // Socket read.
            let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let client = weft::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (_server, _) = listener.accept().unwrap();
            let mut buf = [0u8; 8];
            assert!(weft::timeout(SHORT, || (&client).read(&mut buf)).is_err());
            // Lock.
            let lock = weft::sync::Mutex::new(0);
            let guard = lock.lock().unwrap();
            assert!(weft::timeout(SHORT, || drop(lock.lock())).is_err());
            drop(guard);
            *lock.lock().unwrap() += 1; // not poisoned, not stuck
                                        // Sleep and park.
            let start = Instant::now();
            assert_eq!(
                weft::timeout(SHORT, || weft::sleep(LONG)),
                Err(Elapsed::new())
            );
            assert!(start.elapsed() < LONG);
            assert_eq!(
                weft::timeout(SHORT, || loop {
                    weft::park()
                }),
                Err(Elapsed::new())
            );
            // Join.
            let sleeper = weft::spawn(|| weft::sleep(LONG));
            let handle = sleeper.coroutine();
            assert!(weft::timeout(SHORT, move || sleeper.join()).is_err());
            handle.cancel();
            // select! without a default.
            let outcome = weft::timeout(SHORT, || {
                weft::select! {
                    recv(rx) -> _ => "message",
                }
            });
            assert_eq!(outcome, Err(Elapsed::new()));
            // Work that finishes in time is not disturbed.
            assert_eq!(weft::timeout(LONG, || 6 * 7), Ok(42));
            let (tx, rx2) = weft::chan::bounded(1);
            weft::spawn(move || {
                weft::sleep(Duration::from_millis(2));
                tx.send(9).unwrap();
            });
            assert_eq!(
                weft::timeout(Duration::from_secs(30), || rx2.recv()),
                Ok(Ok(9))
            );
        })
    });
}

#[test]
fn nested_deadlines_take_the_earliest_and_the_right_boundary_answers() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let (_tx, rx) = weft::chan::unbounded::<u32>();
            // The outer deadline is earlier: the outer boundary answers, the inner lets the
            // unwind through.
            let mut inner_returned = false;
            let outer = weft::timeout(SHORT, || {
                let inner = weft::timeout(LONG, || rx.recv());
                inner_returned = true;
                inner
            });
            assert_eq!(outer, Err(Elapsed::new()));
            assert!(!inner_returned);
            // The inner deadline is earlier: the inner boundary answers, the outer body goes on.
            let outer = weft::timeout(LONG, || {
                let inner = weft::timeout(SHORT, || rx.recv());
                assert_eq!(inner, Err(Elapsed::new()));
                "outer body finished"
            });
            assert_eq!(outer, Ok("outer body finished"));
            // A deadline that already passed fails at the first blocking point.
            let passed = Instant::now() - Duration::from_millis(1);
            let mut before_block = false;
            let result = weft::deadline(passed, || {
                before_block = true;
                weft::yield_now();
                unreachable!("the yield is a blocking point");
            });
            assert_eq!(result, Err::<(), _>(Elapsed::new()));
            assert!(before_block);
            // After a boundary returns, nothing of it remains.
            assert_eq!(rx.try_recv(), Err(std::sync::mpsc::TryRecvError::Empty));
            weft::sleep(Duration::from_millis(1));
        })
    });
}

#[test]
fn a_timeout_inside_a_cancelled_green_thread_lets_the_cancel_through() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let target = weft::spawn(|| {
                let (_tx, rx) = weft::chan::unbounded::<u32>();
                let _ = weft::timeout(LONG, || rx.recv());
                unreachable!("the cancel is not the timeout's to catch");
            });
            weft::sleep(Duration::from_millis(5));
            target.cancel();
            assert!(target.join().unwrap_err().is::<weft::Cancelled>());
        })
    });
}

#[test]
fn timeout_works_on_a_plain_thread() {
    common::workers(2);
    let (_tx, rx) = weft::chan::unbounded::<u32>();
    let result = common::watchdog(60, move || weft::timeout(SHORT, || rx.recv()));
    assert_eq!(result, Err(Elapsed::new()));
    let lock = std::sync::Arc::new(weft::sync::Mutex::new(()));
    let held = lock.clone();
    let holder = weft::spawn(move || {
        let _guard = held.lock().unwrap();
        weft::sleep(Duration::from_millis(200));
    });
    std::thread::sleep(Duration::from_millis(20));
    assert!(weft::timeout(SHORT, || drop(lock.lock())).is_err());
    holder.join().unwrap();
}

#[test]
fn a_deadline_that_unwinds_through_a_blocking_destructor_does_not_abort() {
    // The unwind from a passed deadline runs a destructor that waits for a contended lock:
    // it must simply wait (and the boundary then returns Elapsed), not be cut short again.
    common::workers(2);
    struct LockOnDrop(std::sync::Arc<weft::sync::Mutex<u32>>);
    impl Drop for LockOnDrop {
        fn drop(&mut self) {
            *self.0.lock().unwrap() += 1;
        }
    }
    let lock = std::sync::Arc::new(weft::sync::Mutex::new(0));
    let held = lock.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    // A plain thread holds the lock for a while, so no worker is needed to release it.
    let holder = std::thread::spawn(move || {
        let _guard = held.lock().unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    });
    locked_rx.recv().unwrap();
    let outcome = common::watchdog(60, {
        let lock = lock.clone();
        move || {
            weft::run(move || {
                let (_tx, rx) = weft::chan::unbounded::<u32>();
                weft::timeout(SHORT, || {
                    let _on_drop = LockOnDrop(lock);
                    rx.recv()
                })
            })
        }
    });
    holder.join().unwrap();
    assert_eq!(outcome, Err(Elapsed::new()));
    assert_eq!(*lock.lock().unwrap(), 1, "the destructor ran to completion");
}

#[test]
fn timeout_bounds_socket_reads_and_sleeps_on_a_plain_thread() {
    common::workers(2);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = weft::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (_server, _) = listener.accept().unwrap();
    let result = common::watchdog(60, move || {
        let mut buf = [0u8; 8];
        let read = weft::timeout(SHORT, || (&client).read(&mut buf));
        let slept = weft::timeout(SHORT, || weft::sleep(LONG));
        (read.is_err(), slept)
    });
    assert_eq!(result, (true, Err(Elapsed::new())));
}
