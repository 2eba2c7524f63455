//! `select!`: readiness, fairness, defaults and timeouts, send arms, disconnection, and a
//! stress run of green and plain threads selecting on shared channels (Go's select tests'
//! behaviour).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weft::chan::{self, RecvError, SendError};

#[test]
fn a_ready_arm_is_chosen_and_its_body_runs() {
    let (tx1, rx1) = chan::unbounded::<u32>();
    let (_tx2, rx2) = chan::unbounded::<&str>();
    tx1.send(7).unwrap();
    let got = weft::select! {
        recv(rx1) -> msg => msg.unwrap() * 2,
        recv(rx2) -> _ => unreachable!(),
    };
    assert_eq!(got, 14);
}

#[test]
fn ready_arms_are_chosen_with_equal_chance() {
    // Three channels that are always ready; 10,000 selects. Each arm's count is binomial
    // (n = 10,000, p = 1/3, sd ≈ 47); a bound of ±600 is over 12 sd, so a fair select
    // never fails it, while a select biased towards its first ready arm always does.
    const ROUNDS: usize = 10_000;
    let channels: Vec<_> = (0..3).map(|_| chan::unbounded::<()>()).collect();
    for (tx, _) in &channels {
        for _ in 0..ROUNDS {
            tx.send(()).unwrap();
        }
    }
    let (a, b, c) = (&channels[0].1, &channels[1].1, &channels[2].1);
    let mut counts = [0usize; 3];
    for _ in 0..ROUNDS {
        let arm = weft::select! {
            recv(a) -> _ => 0,
            recv(b) -> _ => 1,
            recv(c) -> _ => 2,
        };
        counts[arm] += 1;
    }
    let expected = ROUNDS / 3;
    for count in counts {
        assert!(count.abs_diff(expected) < 600, "unfair: {counts:?}");
    }
}

#[test]
fn default_runs_when_nothing_is_ready() {
    let (tx, rx) = chan::bounded::<u8>(0);
    let mut hits = 0;
    weft::select! {
        recv(rx) -> _ => unreachable!(),
        send(tx, 1) -> _ => unreachable!(),
        default => hits += 1,
    }
    assert_eq!(hits, 1);
}

#[test]
fn default_with_a_timeout_waits_that_long() {
    common::workers(2);
    common::watchdog(60, || {
        weft::run(|| {
            let (_tx, rx) = chan::unbounded::<u8>();
            let start = Instant::now();
            let timed_out = weft::select! {
                recv(rx) -> _ => false,
                default(Duration::from_millis(3)) => true,
            };
            assert!(timed_out);
            assert!(start.elapsed() >= Duration::from_millis(3));

            // A message that arrives before the timeout wins.
            let (tx, rx) = chan::unbounded::<u8>();
            weft::spawn(move || {
                weft::sleep(Duration::from_millis(2));
                tx.send(5).unwrap();
            });
            let got = weft::select! {
                recv(rx) -> msg => msg.ok(),
                default(Duration::from_secs(30)) => None,
            };
            assert_eq!(got, Some(5));
        });
    });
}

#[test]
fn after_works_as_a_timeout_arm() {
    common::workers(2);
    common::watchdog(60, || {
        let (_tx, rx) = chan::unbounded::<u8>();
        let start = Instant::now();
        let timeout = chan::after(Duration::from_millis(4));
        let fired_at = weft::select! {
            recv(rx) -> _ => unreachable!(),
            recv(timeout) -> at => at.unwrap(),
        };
        assert!(fired_at >= start + Duration::from_millis(4));
    });
}

#[test]
fn send_arms_complete_a_rendezvous() {
    common::workers(2);
    common::watchdog(60, || {
        let (tx_a, rx_a) = chan::bounded::<u32>(0);
        let (tx_b, _rx_b) = chan::bounded::<u32>(0);
        let receiver = weft::spawn(move || rx_a.recv().unwrap());
        let which = weft::select! {
            send(tx_a, 11) -> res => { res.unwrap(); 'a' }
            send(tx_b, 22) -> res => { res.unwrap(); 'b' }
        };
        assert_eq!(which, 'a');
        assert_eq!(receiver.join().unwrap(), 11);
    });
}

#[test]
fn a_select_never_matches_its_own_arms() {
    // Both directions of one rendezvous channel in one select: only another party can
    // complete it, and then exactly one arm runs.
    common::workers(2);
    common::watchdog(60, || {
        let (tx, rx) = chan::bounded::<u32>(0);
        let (tx2, rx2) = (tx.clone(), rx.clone());
        let other = weft::spawn(move || rx2.recv().unwrap());
        let sent = weft::select! {
            send(tx, 1) -> res => res.is_ok(),
            recv(rx) -> _ => false,
        };
        assert!(sent);
        assert_eq!(other.join().unwrap(), 1);

        let other = weft::spawn(move || tx2.send(2).unwrap());
        let got = weft::select! {
            send(tx, 3) -> _ => None,
            recv(rx) -> msg => msg.ok(),
        };
        assert_eq!(got, Some(2));
        other.join().unwrap();
    });
}

#[test]
fn a_disconnected_channel_is_ready_with_its_error() {
    let (tx, rx) = chan::unbounded::<u8>();
    drop(tx);
    let got = weft::select! {
        recv(rx) -> msg => msg,
    };
    assert_eq!(got, Err(RecvError));

    let (tx, rx) = chan::bounded::<String>(0);
    drop(rx);
    let got = weft::select! {
        send(tx, "back".to_string()) -> res => res,
    };
    assert_eq!(got, Err(SendError("back".to_string())));
}

#[test]
fn a_parked_select_wakes_on_disconnection() {
    common::workers(2);
    common::watchdog(60, || {
        let (tx, rx) = chan::unbounded::<u8>();
        let (_keep, never) = chan::unbounded::<u8>();
        let selector = weft::spawn(move || {
            weft::select! {
                recv(rx) -> msg => msg,
                recv(never) -> msg => msg,
            }
        });
        weft::sleep(Duration::from_millis(3));
        drop(tx);
        assert_eq!(selector.join().unwrap(), Err(RecvError));
    });
}

#[test]
fn the_value_of_an_arm_not_chosen_is_dropped_not_sent() {
    let drops = Arc::new(AtomicUsize::new(0));
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let (ready_tx, ready_rx) = chan::unbounded::<u8>();
    let (full_tx, full_rx) = chan::bounded::<Counted>(0);
    ready_tx.send(1).unwrap();
    weft::select! {
        recv(ready_rx) -> _ => {}
        send(full_tx, Counted(drops.clone())) -> _ => unreachable!(),
    }
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert!(full_rx.try_recv().is_err());
}

#[test]
fn bodies_can_break_out_of_a_loop() {
    let (tx, rx) = chan::unbounded();
    for i in 0..5 {
        tx.send(i).unwrap();
    }
    drop(tx);
    let mut sum = 0;
    loop {
        weft::select! {
            recv(rx) -> msg => match msg {
                Ok(v) => sum += v,
                Err(_) => break,
            },
        }
    }
    assert_eq!(sum, 10);
}

/// Go's select stress shape: producers send through selects over two channels, consumers
/// receive through selects over both; green and plain threads on both sides. Every value
/// arrives exactly once.
#[test]
fn select_stress_nothing_lost_nothing_duplicated() {
    common::workers(2);
    common::watchdog(120, || {
        let per_producer = common::scaled(3_000);
        const PRODUCERS: usize = 4;
        let (tx_a, rx_a) = chan::bounded::<usize>(0);
        let (tx_b, rx_b) = chan::bounded::<usize>(4);
        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let (tx_a, tx_b) = (tx_a.clone(), tx_b.clone());
            let work = move || {
                for i in 0..per_producer {
                    let value = p * per_producer + i;
                    weft::select! {
                        send(tx_a, value) -> res => res.unwrap(),
                        send(tx_b, value) -> res => res.unwrap(),
                    }
                }
            };
            producers.push(if p % 2 == 0 {
                let h = weft::spawn(work);
                Box::new(move || h.join().unwrap()) as Box<dyn FnOnce()>
            } else {
                let h = std::thread::spawn(work);
                Box::new(move || h.join().unwrap())
            });
        }
        drop((tx_a, tx_b));
        let mut consumers = Vec::new();
        for c in 0..3 {
            let (rx_a, rx_b) = (rx_a.clone(), rx_b.clone());
            let work = move || {
                let mut got = Vec::new();
                // Once one channel reports disconnection, the other is drained to its end.
                loop {
                    weft::select! {
                        recv(rx_a) -> msg => match msg {
                            Ok(v) => got.push(v),
                            Err(_) => {
                                got.extend(rx_b.iter());
                                break;
                            }
                        },
                        recv(rx_b) -> msg => match msg {
                            Ok(v) => got.push(v),
                            Err(_) => {
                                got.extend(rx_a.iter());
                                break;
                            }
                        },
                    }
                }
                got
            };
            consumers.push(if c == 0 {
                let h = std::thread::spawn(work);
                Box::new(move || h.join().unwrap()) as Box<dyn FnOnce() -> Vec<usize>>
            } else {
                let h = weft::spawn(work);
                Box::new(move || h.join().unwrap())
            });
        }
        drop((rx_a, rx_b));
        producers.into_iter().for_each(|join| join());
        let mut seen = vec![false; PRODUCERS * per_producer];
        for join in consumers {
            for value in join() {
                assert!(!seen[value], "{value} received twice");
                seen[value] = true;
            }
        }
        assert!(seen.iter().all(|&s| s), "a message was lost");
    });
}

#[test]
fn select_works_in_a_plain_thread_with_timeouts() {
    common::watchdog(60, || {
        let (tx, rx) = chan::bounded::<u8>(0);
        let start = Instant::now();
        let got = weft::select! {
            recv(rx) -> msg => msg.ok(),
            default(Duration::from_millis(3)) => None,
        };
        assert_eq!(got, None);
        assert!(start.elapsed() >= Duration::from_millis(3));
        let t = std::thread::spawn(move || tx.send(1));
        let got = weft::select! {
            recv(rx) -> msg => msg.ok(),
        };
        assert_eq!(got, Some(1));
        t.join().unwrap().unwrap();
    });
}
