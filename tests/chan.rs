//! Channels: the behaviour of Go's channel tests and std's mpsc tests (ordering, capacity,
//! rendezvous, disconnection, timeouts), plus weft's own promise that plain threads and
//! green threads mix on one channel with nothing lost and nothing duplicated.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft::chan::{
    self, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError,
};

#[test]
fn messages_from_one_sender_arrive_in_order() {
    common::workers(2);
    common::watchdog(60, || {
        for cap in [None, Some(0), Some(1), Some(7)] {
            let (tx, rx) = match cap {
                None => chan::unbounded(),
                Some(cap) => chan::bounded(cap),
            };
            let producer = weft::spawn(move || {
                for i in 0..2_000u32 {
                    tx.send(i).unwrap();
                }
            });
            let got: Vec<u32> = rx.iter().collect();
            producer.join().unwrap();
            assert_eq!(got, (0..2_000).collect::<Vec<_>>(), "capacity {cap:?}");
        }
    });
}

#[test]
fn a_bounded_channel_holds_exactly_its_capacity() {
    let (tx, rx) = chan::bounded(3);
    assert_eq!(tx.capacity(), Some(3));
    for i in 0..3 {
        tx.try_send(i).unwrap();
    }
    assert_eq!(tx.len(), 3);
    assert_eq!(tx.try_send(3), Err(TrySendError::Full(3)));
    assert_eq!(rx.try_recv(), Ok(0));
    tx.try_send(3).unwrap();
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2, 3]);
    assert!(rx.is_empty());
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));

    let (tx, rx) = chan::unbounded::<u8>();
    assert_eq!((tx.capacity(), rx.capacity()), (None, None));
}

#[test]
fn a_blocked_sender_is_released_in_order_as_the_buffer_drains() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let (tx, rx) = chan::bounded(2);
            tx.send(0).unwrap();
            tx.send(1).unwrap();
            // The third send waits for room; the receive below makes it.
            let late = weft::spawn(move || tx.send(2).unwrap());
            assert_eq!(rx.recv(), Ok(0));
            late.join().unwrap();
            assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
        });
    });
}

#[test]
fn a_rendezvous_send_completes_only_when_received() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let (tx, rx) = chan::bounded(0);
            // Nobody is receiving: a rendezvous cannot buffer.
            assert_eq!(tx.try_send(1), Err(TrySendError::Full(1)));
            let sent = Arc::new(AtomicBool::new(false));
            let sender = {
                let sent = sent.clone();
                weft::spawn(move || {
                    tx.send(2).unwrap();
                    sent.store(true, Ordering::SeqCst);
                })
            };
            for _ in 0..100 {
                weft::yield_now();
                assert!(
                    !sent.load(Ordering::SeqCst),
                    "send finished with no receiver"
                );
            }
            assert_eq!(rx.len(), 0);
            assert_eq!(rx.recv(), Ok(2));
            sender.join().unwrap();
            assert!(sent.load(Ordering::SeqCst));
        });
    });
}

#[test]
fn receivers_drain_buffered_messages_before_seeing_disconnection() {
    let (tx, rx) = chan::bounded(4);
    tx.send(1).unwrap();
    tx.send(2).unwrap();
    assert!(!rx.is_disconnected());
    drop(tx);
    assert!(rx.is_disconnected());
    assert_eq!(rx.recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(rx.recv(), Err(RecvError));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn a_send_without_receivers_returns_the_message() {
    let (tx, rx) = chan::unbounded();
    drop(rx);
    assert!(tx.is_disconnected());
    assert_eq!(
        tx.send(String::from("kept")),
        Err(SendError(String::from("kept")))
    );
    assert_eq!(
        tx.try_send(5.to_string()),
        Err(TrySendError::Disconnected("5".into()))
    );
    assert_eq!(
        tx.send_timeout("6".into(), Duration::from_secs(1)),
        Err(SendTimeoutError::Disconnected("6".into()))
    );
}

#[test]
fn parked_parties_wake_when_the_other_side_goes_away() {
    common::workers(2);
    common::watchdog(60, || {
        // A receiver parked on an empty channel wakes when the last sender drops.
        let (tx, rx) = chan::unbounded::<u32>();
        let receiver = weft::spawn(move || rx.recv());
        weft::spawn(move || {
            weft::sleep(Duration::from_millis(5));
            drop(tx);
        });
        assert_eq!(receiver.join().unwrap(), Err(RecvError));

        // A sender parked on a full channel gets its message back when the receiver drops.
        let (tx, rx) = chan::bounded(0);
        let sender = weft::spawn(move || tx.send(vec![1, 2, 3]));
        weft::spawn(move || {
            weft::sleep(Duration::from_millis(5));
            drop(rx);
        });
        assert_eq!(sender.join().unwrap(), Err(SendError(vec![1, 2, 3])));
    });
}

#[test]
fn timeouts_expire_and_return_the_message() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let (tx, rx) = chan::bounded(0);
            let start = Instant::now();
            assert_eq!(
                rx.recv_timeout(Duration::from_millis(3)),
                Err(RecvTimeoutError::Timeout)
            );
            assert!(start.elapsed() >= Duration::from_millis(3));
            assert_eq!(
                tx.send_timeout(9, Duration::from_millis(3)),
                Err(SendTimeoutError::Timeout(9))
            );
            assert!(rx.is_empty(), "a timed-out send left its message behind");
            // A message that arrives in time is received, not timed out.
            let tx2 = tx.clone();
            weft::spawn(move || {
                weft::sleep(Duration::from_millis(2));
                tx2.send(10).unwrap();
            });
            assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(10));
            let deadline = Instant::now() + Duration::from_millis(2);
            assert_eq!(rx.recv_deadline(deadline), Err(RecvTimeoutError::Timeout));
            assert!(Instant::now() >= deadline);
        });
    });
}

#[test]
fn timed_out_waits_never_lose_a_message() {
    // Senders with short timeouts race receivers with short timeouts: every message is
    // either received or returned in a Timeout error, exactly once.
    common::workers(2);
    common::watchdog(120, || {
        let (tx, rx) = chan::bounded::<u64>(0);
        let senders: Vec<_> = (0..4u64)
            .map(|s| {
                let tx = tx.clone();
                weft::spawn(move || {
                    let mut returned = 0u64;
                    for i in 0..500u64 {
                        let value = s * 1_000 + i;
                        if let Err(err) = tx.send_timeout(value, Duration::from_micros(50)) {
                            assert!(err.is_timeout());
                            assert_eq!(err.into_inner(), value);
                            returned += value;
                        }
                    }
                    returned
                })
            })
            .collect();
        drop(tx);
        let receivers: Vec<_> = (0..3)
            .map(|_| {
                let rx = rx.clone();
                weft::spawn(move || {
                    let mut got = 0u64;
                    loop {
                        match rx.recv_timeout(Duration::from_micros(70)) {
                            Ok(value) => got += value,
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => return got,
                        }
                    }
                })
            })
            .collect();
        drop(rx);
        let returned: u64 = senders.into_iter().map(|h| h.join().unwrap()).sum();
        let received: u64 = receivers.into_iter().map(|h| h.join().unwrap()).sum();
        let all: u64 = (0..4u64)
            .flat_map(|s| (0..500).map(move |i| s * 1_000 + i))
            .sum();
        assert_eq!(returned + received, all);
    });
}

#[test]
fn plain_threads_and_green_threads_share_a_channel() {
    common::workers(2);
    common::watchdog(60, || {
        let (to_green, green_rx) = chan::bounded::<u32>(0);
        let (to_plain, plain_rx) = chan::bounded::<u32>(0);
        // A green thread echoes back what a plain thread sends, through rendezvous channels.
        let echo = weft::spawn(move || {
            for value in green_rx {
                to_plain.send(value + 1).unwrap();
            }
        });
        for i in 0..1_000 {
            to_green.send(i).unwrap();
            assert_eq!(plain_rx.recv(), Ok(i + 1));
        }
        drop(to_green);
        echo.join().unwrap();
        assert_eq!(plain_rx.recv(), Err(RecvError));
    });
}

/// Many producers and consumers, plain and green, on a small buffer: every value arrives
/// exactly once.
#[test]
fn mpmc_nothing_lost_nothing_duplicated() {
    common::workers(2);
    common::watchdog(120, || {
        let per_producer = common::scaled(5_000);
        const PRODUCERS: usize = 6; // 4 green, 2 plain
        let (tx, rx) = chan::bounded::<usize>(16);
        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let tx = tx.clone();
            let work = move || {
                for i in 0..per_producer {
                    tx.send(p * per_producer + i).unwrap();
                }
            };
            if p < 4 {
                let h = weft::spawn(work);
                producers.push(Box::new(move || h.join().unwrap()) as Box<dyn FnOnce()>);
            } else {
                let h = std::thread::spawn(work);
                producers.push(Box::new(move || h.join().unwrap()));
            }
        }
        drop(tx);
        let mut consumers = Vec::new();
        for c in 0..4 {
            let rx = rx.clone();
            let work = move || rx.iter().collect::<Vec<usize>>();
            if c < 3 {
                let h = weft::spawn(work);
                consumers.push(Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() -> _>);
            } else {
                let h = std::thread::spawn(work);
                consumers.push(Box::new(move || h.join().unwrap()));
            }
        }
        drop(rx);
        producers.into_iter().for_each(|join| join());
        let mut seen = vec![false; PRODUCERS * per_producer];
        for join in consumers {
            let got = join();
            // Per consumer, each producer's values arrive in increasing order.
            let mut last = [None; PRODUCERS];
            for value in got {
                assert!(!seen[value], "{value} received twice");
                seen[value] = true;
                let p = value / per_producer;
                assert!(last[p] < Some(value), "producer {p} reordered");
                last[p] = Some(value);
            }
        }
        assert!(seen.iter().all(|&s| s), "a message was lost");
    });
}

#[test]
fn buffered_messages_are_dropped_with_the_channel() {
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let drops = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = chan::unbounded();
    for _ in 0..5 {
        tx.send(Counted(drops.clone())).unwrap();
    }
    drop(rx.recv().unwrap());
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    drop(tx);
    drop(rx);
    assert_eq!(drops.load(Ordering::SeqCst), 5);
}

#[test]
fn after_fires_once_and_tick_keeps_ticking() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let start = Instant::now();
            // Long enough that the try below comes first even under valgrind on a busy VM
            // (3 ms did not, once).
            let timer = chan::after(Duration::from_millis(100));
            assert_eq!(timer.try_recv(), Err(TryRecvError::Empty));
            let fired = timer.recv().unwrap();
            assert!(fired >= start + Duration::from_millis(100));
            // Delivered once: afterwards it stays empty.
            assert_eq!(timer.try_recv(), Err(TryRecvError::Empty));
            assert_eq!(
                timer.recv_timeout(Duration::from_millis(2)),
                Err(RecvTimeoutError::Timeout)
            );

            let ticks = chan::tick(Duration::from_millis(1));
            let mut last = start;
            for _ in 0..5 {
                let at = ticks.recv().unwrap();
                assert!(at > last);
                last = at;
            }
            assert!(last >= start + Duration::from_millis(5));
        });
    });
}

#[test]
fn iterators_follow_std() {
    let (tx, rx) = chan::unbounded();
    for i in 0..3 {
        tx.send(i).unwrap();
    }
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [0, 1, 2]);
    tx.send(3).unwrap();
    drop(tx);
    let mut all = Vec::new();
    for value in &rx {
        all.push(value);
    }
    assert_eq!(all, [3]);
    assert_eq!(rx.into_iter().count(), 0);
}

#[test]
fn zero_sized_messages_count() {
    let (tx, rx) = chan::bounded(2);
    tx.send(()).unwrap();
    tx.send(()).unwrap();
    assert_eq!(tx.try_send(()), Err(TrySendError::Full(())));
    assert_eq!(rx.len(), 2);
}

#[test]
fn buffered_messages_are_dropped_when_the_last_receiver_goes() {
    // std's drop_unreceived: a queued request that carries a reply `Sender` must not keep
    // its client waiting once the server's receiver is gone, though senders remain.
    type Reply = chan::Sender<u32>;
    let (requests, server) = chan::unbounded::<Reply>();
    let (reply_tx, reply_rx) = chan::bounded::<u32>(1);
    requests.send(reply_tx).unwrap();
    drop(server); // the server goes away without answering; `requests` stays alive
    assert_eq!(
        reply_rx.recv_timeout(Duration::from_secs(5)),
        Err(RecvTimeoutError::Disconnected)
    );
    // And the senders that remain see the disconnection, keeping their message.
    let (tx, _) = chan::bounded::<u32>(1);
    assert_eq!(requests.len(), 0);
    assert!(matches!(requests.send(tx), Err(SendError(_))));
}
