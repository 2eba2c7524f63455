//! The cooperative budget on ONE worker: a green thread that keeps completing weft
//! operations without waiting lets the other green threads of its worker run. Each test
//! counts what a neighbour got done *while* the busy loop ran; before the budget, each of
//! these loops ran to its end (or for ever) with the neighbour frozen.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A green thread that counts its turns (one per `yield_now`) until dropped.
struct Neighbour {
    turns: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<weft::JoinHandle<()>>,
}

impl Neighbour {
    fn start() -> Neighbour {
        let turns = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handle = weft::spawn({
            let (turns, stop) = (turns.clone(), stop.clone());
            move || {
                while !stop.load(Ordering::Acquire) {
                    turns.fetch_add(1, Ordering::Relaxed);
                    weft::yield_now();
                }
            }
        });
        // Let it start, so it is homed here and queued as a yielder.
        while turns.load(Ordering::Relaxed) == 0 {
            weft::yield_now();
        }
        Neighbour {
            turns,
            stop,
            handle: Some(handle),
        }
    }

    /// Runs `f` (which must not yield or wait by itself) and returns its result with the
    /// neighbour's turns during it.
    fn during<T>(&self, f: impl FnOnce() -> T) -> (T, u64) {
        let before = self.turns.load(Ordering::Relaxed);
        let value = f();
        (value, self.turns.load(Ordering::Relaxed) - before)
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            handle.join().unwrap();
        }
    }
}

fn one_worker<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    common::workers(1);
    common::watchdog(60, move || weft::run(f))
}

#[test]
fn unbounded_sends_let_the_receiver_run_and_memory_stays_bounded() {
    const N: u64 = 100_000;
    let (longest_queue, received, in_order) = one_worker(|| {
        let (tx, rx) = weft::chan::unbounded::<u64>();
        let receiver = weft::spawn(move || {
            let mut expected = 0;
            let mut in_order = true;
            for value in rx.iter() {
                in_order &= value == expected;
                expected += 1;
            }
            (expected, in_order)
        });
        // Let the receiver start and park in `recv`.
        weft::yield_now();
        let mut longest = 0;
        for i in 0..N {
            tx.send(i).unwrap();
            longest = longest.max(tx.len());
        }
        drop(tx);
        let (received, in_order) = receiver.join().unwrap();
        (longest, received, in_order)
    });
    assert_eq!(received, N);
    assert!(in_order);
    // Without the budget the queue held all 100,000 before the receiver first ran.
    assert!(
        longest_queue <= 4 * 128,
        "the receiver fell {longest_queue} messages behind"
    );
}

#[test]
fn a_try_recv_spin_lets_the_sender_on_its_worker_run() {
    let (value, forced) = one_worker(|| {
        let before = weft::stats().budget_yields;
        let (tx, rx) = weft::chan::unbounded();
        let spinner = weft::spawn(move || loop {
            if let Ok(value) = rx.try_recv() {
                return value;
            }
        });
        // Spawned after the spinner, homed on the same (only) worker: without the budget
        // it never ran, and the spinner spun for ever.
        let sender = weft::spawn(move || tx.send(7).unwrap());
        let value = spinner.join().unwrap();
        sender.join().unwrap();
        (value, weft::stats().budget_yields - before)
    });
    assert_eq!(value, 7);
    assert!(forced > 0);
}

#[test]
fn a_spawn_burst_on_one_worker_starts_a_bounded_number_at_once() {
    const N: usize = 20_000;
    let (peak, done) = one_worker(|| {
        let active = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..N)
            .map(|_| {
                let (active, peak) = (active.clone(), peak.clone());
                weft::spawn(move || {
                    let now = active.fetch_add(1, Ordering::Relaxed) + 1;
                    peak.fetch_max(now, Ordering::Relaxed);
                    weft::yield_now();
                    active.fetch_sub(1, Ordering::Relaxed);
                })
            })
            .collect();
        let done = handles.into_iter().filter_map(|h| h.join().ok()).count();
        (peak.load(Ordering::Relaxed), done)
    });
    assert_eq!(done, N);
    // Started and unfinished at once (each holds a touched stack): without the budget all
    // 20,000 started before the first finished.
    assert!(peak <= 1_000, "{peak} green threads were in flight at once");
}

#[test]
fn a_yielder_runs_while_fresh_spawns_keep_arriving() {
    let turns = one_worker(|| {
        let neighbour = Neighbour::start();
        let (handles, turns) = neighbour.during(|| {
            (0..20_000)
                .map(|i| weft::spawn(move || i))
                .collect::<Vec<_>>()
        });
        for handle in handles {
            handle.join().unwrap();
        }
        turns
    });
    assert!(
        turns >= 10,
        "the yielder ran {turns} times during the burst"
    );
}

#[test]
fn uncontended_locks_and_ready_io_let_others_run() {
    use std::io::{Read, Write};
    let (lock_turns, io_turns) = one_worker(|| {
        let neighbour = Neighbour::start();
        let lock = weft::sync::Mutex::new(0u64);
        let ((), lock_turns) = neighbour.during(|| {
            for _ in 0..10_000 {
                *lock.lock().unwrap() += 1;
            }
        });
        let (mut a, mut b) = weft::net::unix::UnixStream::pair().unwrap();
        let ((), io_turns) = neighbour.during(|| {
            let mut byte = [0];
            // Every read finds its byte: nothing here ever waits.
            for i in 0..10_000u32 {
                a.write_all(&[i as u8]).unwrap();
                b.read_exact(&mut byte).unwrap();
                assert_eq!(byte[0], i as u8);
            }
        });
        (lock_turns, io_turns)
    });
    assert!(lock_turns > 0);
    assert!(io_turns > 0);
}

#[test]
fn formatting_a_lock_never_lets_another_green_thread_run() {
    // A logger may hold a std lock while it formats its arguments: `{:?}` of a weft lock
    // must not switch, or a neighbour that logs would block the worker on that std lock.
    let (turns, yields) = one_worker(|| {
        let neighbour = Neighbour::start();
        let mutex = weft::sync::Mutex::new(1);
        let rwlock = weft::sync::RwLock::new(2);
        let before = weft::stats().budget_yields;
        let (len, turns) = neighbour.during(|| {
            let mut len = 0;
            for _ in 0..1_000 {
                len += format!("{mutex:?} {rwlock:?}").len();
            }
            len
        });
        assert!(len > 0);
        (turns, weft::stats().budget_yields - before)
    });
    assert_eq!(turns, 0);
    assert_eq!(yields, 0);
}

#[test]
fn cached_file_reads_let_others_run() {
    use std::os::unix::fs::FileExt;
    let path = std::env::temp_dir().join(format!("weft-coop-{}.bin", std::process::id()));
    std::fs::write(&path, vec![7u8; 4096]).unwrap();
    let turns = one_worker({
        let path = path.clone();
        move || {
            let neighbour = Neighbour::start();
            let file = weft::fs::File::open(&path).unwrap();
            let mut buf = [0u8; 4096];
            // Page-cache reads are served on the worker: none of them waits.
            let ((), turns) = neighbour.during(|| {
                for _ in 0..2_000 {
                    assert_eq!(file.read_at(&mut buf, 0).unwrap(), 4096);
                }
            });
            turns
        }
    });
    std::fs::remove_file(&path).unwrap();
    assert!(turns > 0);
}
