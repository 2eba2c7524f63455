//! Which workers are searching for work and which are asleep, and whom to wake.
//!
//! A cross-vCPU wake costs tens of microseconds on the machines weft targets, so the policy is
//! to wake as little as possible and never broadly:
//!
//! * a worker out of local work first *searches* (steals, polls the injector) for a bounded
//!   spin; at most half the workers (at least one) search at once;
//! * new stealable work wakes **one** sleeper, and only when no worker is searching — a
//!   searcher will find it sooner than a woken thread could start;
//! * work that the pushing worker will reach next wakes nobody (see `Worker::push_stealable`);
//!   the monitor thread catches the case where that worker then stays busy.
//!
//! # No lost wake-ups (the Dekker pair)
//!
//! A sleeper does, in order: (1) register in `sleepers` and bump `num_sleeping`, (2) leave the
//! searching count, (3) `fence(SeqCst)`, (4) re-check every queue, (5) park its thread.
//! A notifier does: (a) push the work, (b) `fence(SeqCst)`, (c) read `num_searching` and
//! `num_sleeping`. The fences order (2) and (a) in one total order. If the notifier's reads
//! come after (2), they see the sleeper registered in (1) — so it wakes someone (the thread
//! token makes an unpark before (5) stick). Otherwise the push precedes the sleeper's fence and
//! its re-check (4) finds the work. Either way the work is not stranded.
//!
//! # Wake-ups aimed at one worker ([`Asleep`])
//!
//! Work only one worker may take (its inbox, and the fresh tasks placed on it) does not go
//! through the sleeper list: the pusher pushes, fences, and wakes that worker if its own
//! [`Asleep`] flag is set. The worker sets the flag before step (1), so the same fence of
//! step (3) orders it before the re-check (4), and the same argument holds with the flag in
//! place of the list. The monitor's rescue of placed tasks (see the worker module's
//! "Placement") moves them to the global injector and then notifies through the list, which
//! the sleeper's re-check also covers. Both are checked together in
//! `loom_placement_hand_off_and_rescue`.

use crate::loom::sync::atomic::{fence, AtomicBool, AtomicUsize};
use crate::loom::sync::{OsMutex, OsMutexGuard};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

/// A worker's own flag for wake-ups aimed at it: set from just before its last re-check of
/// its queues until it wakes (see "Wake-ups aimed at one worker" above).
pub(crate) struct Asleep(AtomicBool);

impl Asleep {
    pub(crate) fn new() -> Asleep {
        Asleep(AtomicBool::new(false))
    }

    /// The sleeper, before [`Idle::register_sleeper`] (whose fence orders this store before
    /// the re-check of the queues).
    pub(crate) fn set(&self) {
        self.0.store(true, SeqCst);
    }

    /// The sleeper, once awake. Relaxed: a pusher that still reads `true` only sends a
    /// spurious wake-up, which the next sleep absorbs (it re-checks every queue first).
    pub(crate) fn clear(&self) {
        self.0.store(false, Relaxed);
    }

    /// The pusher, after pushing on one of the worker's own queues: whether it must wake the
    /// worker. The fence pairs with the sleeper's in `register_sleeper`: either the sleeper's
    /// re-check sees the push, or this load sees the flag.
    pub(crate) fn must_wake_after_push(&self) -> bool {
        fence(SeqCst);
        self.0.load(SeqCst)
    }

    /// For statistics and the monitor's heuristics, which need no ordering.
    #[cfg_attr(loom, allow(dead_code))] // neither is in the loom build
    pub(crate) fn get(&self) -> bool {
        self.0.load(Relaxed)
    }
}

pub(crate) struct Idle {
    /// Workers searching for work (spinning on steals) right now.
    num_searching: AtomicUsize,
    /// Length of `sleepers`, readable without the lock.
    num_sleeping: AtomicUsize,
    /// Indices of sleeping workers that a notifier may wake.
    sleepers: OsMutex<Vec<usize>>,
    num_workers: usize,
}

impl Idle {
    pub(crate) fn new(num_workers: usize) -> Idle {
        Idle {
            num_searching: AtomicUsize::new(0),
            num_sleeping: AtomicUsize::new(0),
            sleepers: OsMutex::new(Vec::with_capacity(num_workers)),
            num_workers,
        }
    }

    /// Tries to enter the searching state; refused when half the workers already search.
    pub(crate) fn try_start_searching(&self) -> bool {
        let limit = (self.num_workers / 2).max(1);
        let mut current = self.num_searching.load(Relaxed);
        loop {
            if current >= limit {
                return false;
            }
            // Relaxed: the count is a heuristic bound; the no-lost-wake-up argument relies only
            // on the SeqCst operations in `register_sleeper` and `notify_one`.
            match self
                .num_searching
                .compare_exchange_weak(current, current + 1, Relaxed, Relaxed)
            {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }

    /// Leaves the searching state (after finding work). Returns true if it was the last
    /// searcher, in which case the caller should consider waking another worker.
    pub(crate) fn stop_searching(&self) -> bool {
        self.num_searching.fetch_sub(1, SeqCst) == 1
    }

    /// Steps (1)–(3) of the sleep protocol.
    pub(crate) fn register_sleeper(&self, index: usize, was_searching: bool) {
        {
            let mut sleepers = self.lock();
            sleepers.push(index);
            self.num_sleeping.fetch_add(1, SeqCst);
        }
        if was_searching {
            self.num_searching.fetch_sub(1, SeqCst);
        }
        fence(SeqCst);
    }

    /// Called by a worker after it woke up (or decided not to sleep after all). Returns true
    /// if a notifier chose it, in which case it was counted as searching on its behalf.
    pub(crate) fn unregister_sleeper(&self, index: usize) -> bool {
        let mut sleepers = self.lock();
        match sleepers.iter().position(|&i| i == index) {
            Some(pos) => {
                sleepers.swap_remove(pos);
                self.num_sleeping.fetch_sub(1, SeqCst);
                false
            }
            None => true,
        }
    }

    /// Steps (b)–(c): after pushing stealable work, picks one sleeper to wake, if any should
    /// be. The chosen worker is counted as searching before it runs, so a burst of pushes
    /// wakes one worker, not one per push.
    pub(crate) fn notify_one(&self) -> Option<usize> {
        fence(SeqCst);
        if self.num_searching.load(SeqCst) != 0 || self.num_sleeping.load(SeqCst) == 0 {
            return None;
        }
        let mut sleepers = self.lock();
        let index = sleepers.pop()?;
        self.num_sleeping.fetch_sub(1, SeqCst);
        self.num_searching.fetch_add(1, SeqCst);
        Some(index)
    }

    #[cfg(test)]
    fn num_sleeping(&self) -> usize {
        self.num_sleeping.load(Relaxed)
    }

    fn lock(&self) -> OsMutexGuard<'_, Vec<usize>> {
        // Plain pushes and removals of integers: consistent even after a panic elsewhere.
        self.sleepers.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn searching_is_bounded_to_half() {
        let idle = Idle::new(4);
        assert!(idle.try_start_searching());
        assert!(idle.try_start_searching());
        assert!(!idle.try_start_searching());
        assert!(!idle.stop_searching());
        assert!(idle.stop_searching());
    }

    #[test]
    fn notify_wakes_one_sleeper_and_counts_it_searching() {
        let idle = Idle::new(2);
        idle.register_sleeper(0, false);
        idle.register_sleeper(1, false);
        assert_eq!(idle.notify_one(), Some(1));
        // The woken worker counts as searching, so a second push wakes nobody.
        assert_eq!(idle.notify_one(), None);
        assert!(idle.unregister_sleeper(1), "chosen by a notifier");
        assert!(!idle.unregister_sleeper(0), "woke on its own");
        assert_eq!(idle.num_sleeping(), 0);
    }
}

/// The idle protocol, and with it placement's hand-off, under loom:
/// `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::{Asleep, Idle};
    use loom::sync::atomic::{AtomicBool, AtomicUsize};
    use loom::sync::{Arc, Mutex, Notify};
    use loom::thread;
    use std::sync::atomic::Ordering::Relaxed;

    /// A task queue: its contents under a lock, and a length for a look without it,
    /// written under the lock and read Relaxed (crossbeam's `is_empty` is no stronger than
    /// what the fences need).
    #[derive(Default)]
    struct Queue {
        tasks: Mutex<usize>,
        len: AtomicUsize,
    }

    impl Queue {
        fn push(&self) {
            let mut tasks = self.tasks.lock().unwrap();
            *tasks += 1;
            self.len.store(*tasks, Relaxed);
        }

        fn pop(&self) -> bool {
            let mut tasks = self.tasks.lock().unwrap();
            if *tasks == 0 {
                return false;
            }
            *tasks -= 1;
            self.len.store(*tasks, Relaxed);
            true
        }

        fn is_empty(&self) -> bool {
            self.len.load(Relaxed) == 0
        }
    }

    /// Placement's hand-off and the monitor's rescue. Worker 1 places a fresh task on
    /// worker 0's `placed` queue and wakes it through its [`Asleep`] flag
    /// (`Worker::push_and_wake`), while worker 0 runs out of work and goes to sleep
    /// (`Local::sleep`: flag, sleeper list, re-check of `placed` and the injector, park),
    /// and the monitor may move the task to the global injector and notify through the
    /// sleeper list (the rescue). The task is run exactly once, and worker 0 never sleeps
    /// through it: a lost wake-up leaves it parked for ever, a deadlock for loom.
    #[test]
    fn loom_placement_hand_off_and_rescue() {
        // Three threads, each taking locks and waiting: bounded preemptions keep the run in
        // seconds (the lost wake-ups a missing fence causes need one).
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let idle = Arc::new(Idle::new(2));
            let asleep = Arc::new(Asleep::new());
            let placed = Arc::new(Queue::default());
            let injector = Arc::new(Queue::default());
            // Worker 0's thread token (loom's `unpark` would also wake a thread that waits
            // for a mutex, which std's never does, so the token is a `Notify`).
            let token = Arc::new(Notify::new());
            let target = {
                let (idle, asleep, token) = (idle.clone(), asleep.clone(), token.clone());
                let (placed, injector) = (placed.clone(), injector.clone());
                thread::spawn(move || loop {
                    if placed.pop() || injector.pop() {
                        return;
                    }
                    asleep.set();
                    idle.register_sleeper(0, false);
                    if placed.is_empty() && injector.is_empty() {
                        token.wait();
                    }
                    if idle.unregister_sleeper(0) {
                        // Chosen by a notifier, which counted it as searching.
                        idle.stop_searching();
                    }
                    asleep.clear();
                })
            };
            let monitor = {
                let (idle, placed, injector) = (idle.clone(), placed.clone(), injector.clone());
                let token = token.clone();
                thread::spawn(move || {
                    if !placed.is_empty() {
                        if placed.pop() {
                            injector.push();
                        }
                        if let Some(index) = idle.notify_one() {
                            assert_eq!(index, 0);
                            token.notify();
                        }
                    }
                })
            };
            placed.push();
            if asleep.must_wake_after_push() {
                token.notify();
            }
            target.join().unwrap();
            monitor.join().unwrap();
            assert!(
                placed.is_empty() && injector.is_empty(),
                "the task was left in a queue"
            );
            assert!(
                idle.try_start_searching(),
                "a searcher was counted and never left"
            );
        });
    }

    /// A searching worker that found nothing goes to sleep (the steps of the module docs)
    /// while another thread pushes work and notifies. Either its re-check sees the work, or
    /// the notifier picks it and unparks it; a lost wake-up leaves it parked for ever, which
    /// loom reports as a deadlock. The push and the re-check are Relaxed: the fences alone
    /// must carry the argument.
    #[test]
    fn loom_idle_sleep_races_a_push() {
        loom::model(|| {
            let idle = Arc::new(Idle::new(2));
            let work = Arc::new(AtomicBool::new(false));
            assert!(idle.try_start_searching());
            let sleeper = {
                let (idle, work) = (idle.clone(), work.clone());
                thread::spawn(move || {
                    idle.register_sleeper(0, true);
                    if !work.load(Relaxed) {
                        thread::park();
                    }
                    if idle.unregister_sleeper(0) {
                        // A notifier counted it as searching; it finds the work and stops.
                        idle.stop_searching();
                    }
                    assert!(work.load(Relaxed), "woke without the work");
                })
            };
            work.store(true, Relaxed);
            if let Some(index) = idle.notify_one() {
                assert_eq!(index, 0);
                sleeper.thread().unpark();
            }
            sleeper.join().unwrap();
        });
    }
}
