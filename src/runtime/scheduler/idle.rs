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

use crate::loom::sync::atomic::{fence, AtomicUsize};
use crate::loom::sync::{OsMutex, OsMutexGuard};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

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

/// The idle protocol under loom: `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_idle`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::Idle;
    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;
    use loom::thread;
    use std::sync::atomic::Ordering::Relaxed;

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
