//! Placement at first run: one accept loop's long-lived connection handlers spread across
//! the workers instead of all starting (and so staying, by the sticky rule) on the
//! acceptor's worker. Checked on 2 workers here and on 8 (more workers than vCPUs) in a
//! child process: the busiest worker homes at most 1.25× the mean.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const CONNECTIONS: usize = 1000;

/// The tests here run one at a time: each keeps both vCPUs busy (several with a child
/// process), and a worker the OS leaves off the CPU skews the spread another one measures.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens CONNECTIONS connections to one accept loop whose handlers block in `read`, and
/// returns each worker's homed count once every handler has started.
fn homed_with_long_lived_connections() -> Vec<usize> {
    let listener = weft::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let acceptor = {
        let (started, finished) = (started.clone(), finished.clone());
        weft::spawn(move || {
            for _ in 0..CONNECTIONS {
                let (mut stream, _) = listener.accept().unwrap();
                let (started, finished) = (started.clone(), finished.clone());
                weft::spawn(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    // Long-lived: parked in read until the client closes.
                    let mut buf = [0u8; 64];
                    while let Ok(1..) = stream.read(&mut buf) {}
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        })
    };
    let clients: Vec<std::net::TcpStream> = (0..CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    acceptor.join().unwrap();
    while started.load(Ordering::SeqCst) < CONNECTIONS {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stats = weft::stats();
    let homed = stats.per_worker.iter().map(|w| w.homed).collect();
    drop(clients);
    while finished.load(Ordering::SeqCst) < CONNECTIONS {
        std::thread::sleep(Duration::from_millis(5));
    }
    homed
}

fn assert_spread(homed: &[usize]) {
    let total: usize = homed.iter().sum();
    assert!(total >= CONNECTIONS, "{homed:?}");
    let mean = total as f64 / homed.len() as f64;
    let busiest = *homed.iter().max().unwrap() as f64;
    assert!(
        busiest <= 1.25 * mean,
        "the busiest worker homes {busiest}, {:.2}× the mean {mean:.0}: {homed:?}; {:?}",
        busiest / mean,
        weft::stats()
    );
    println!("homed per worker: {homed:?}");
}

#[test]
fn one_accept_loop_spreads_over_two_workers() {
    let _serial = one_at_a_time();
    common::workers(2);
    let homed = common::watchdog(120, homed_with_long_lived_connections);
    assert_eq!(homed.len(), 2);
    assert_spread(&homed);
    assert!(weft::stats().placed_elsewhere > 0);
}

#[test]
fn one_accept_loop_spreads_over_eight_workers() {
    let _serial = one_at_a_time();
    let out = common::child_stdout("eight_workers_child", &[]);
    assert!(out.contains("homed per worker"), "{out}");
}

#[test]
#[ignore]
fn eight_workers_child() {
    if !common::is_child() {
        return;
    }
    common::workers(8);
    let homed = common::watchdog(120, homed_with_long_lived_connections);
    assert_eq!(homed.len(), 8);
    assert_spread(&homed);
}

/// Placement is a hint: a fresh task handed to a worker that can never start it (blocked
/// while one of its green threads unwinds) is freed for the others. Here a destructor blocks
/// its worker until 40 long-lived green threads have started elsewhere (making the other
/// worker the heavier one), then spawns a helper and joins it. The other worker steals the
/// helper, finds itself heavier, and places it on the blocked worker; before the rescue the
/// join never returned, and the deadlock diagnosis aborted the process.
#[test]
fn a_task_placed_on_a_worker_blocked_while_unwinding_still_runs() {
    // In a process of its own: it blocks a worker, which would skew the other tests' spread.
    let _serial = one_at_a_time();
    let out = common::child_stdout("blocked_while_unwinding_child", &[]);
    assert!(out.contains("the helper ran"), "{out}");
}

#[test]
#[ignore]
fn blocked_while_unwinding_child() {
    if !common::is_child() {
        return;
    }
    common::workers(2);
    common::watchdog(120, || {
        struct HelpOnDrop {
            go: weft::chan::Receiver<()>,
            helped: Arc<AtomicUsize>,
        }
        impl Drop for HelpOnDrop {
            fn drop(&mut self) {
                // Unwinding: these waits block the worker's OS thread.
                let _ = self.go.recv();
                let helper = weft::spawn(|| 7);
                if helper.join().ok() == Some(7) {
                    self.helped.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        let (go_tx, go) = weft::chan::bounded::<()>(0);
        let helped = Arc::new(AtomicUsize::new(0));
        let unwinding = {
            let helped = helped.clone();
            weft::spawn(move || {
                let _help = HelpOnDrop { go, helped };
                panic!("planned: a destructor that waits while unwinding");
            })
        };
        // Once it blocks its worker, 40 long-lived green threads start on the other one.
        std::thread::sleep(Duration::from_millis(50));
        let started = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop) = weft::chan::bounded::<()>(0);
        let parkers: Vec<_> = (0..40)
            .map(|_| {
                let (started, stop) = (started.clone(), stop.clone());
                weft::spawn(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let _ = stop.recv();
                })
            })
            .collect();
        while started.load(Ordering::SeqCst) < 40 {
            std::thread::sleep(Duration::from_millis(5));
        }
        go_tx.send(()).unwrap();
        assert!(unwinding.join().is_err());
        assert_eq!(helped.load(Ordering::SeqCst), 1, "the helper never ran");
        drop(stop_tx);
        for p in parkers {
            p.join().unwrap();
        }
        println!("the helper ran");
    });
}
