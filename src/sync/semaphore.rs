//! [`Semaphore`]: a permit count with FIFO hand-off.
//!
//! # State word
//!
//! `permits << 1 | QUEUED`, where `QUEUED` says the wait queue is non-empty (changed only
//! under the queue's lock).
//!
//! * *acquire, fast*: if `QUEUED` is clear and a permit is free, CAS one away (Acquire).
//! * *acquire, slow*, under the queue lock: take a permit the same way if possible,
//!   otherwise CAS in `QUEUED`, queue, park. A woken waiter was handed a permit.
//! * *release, fast*: if `QUEUED` is clear, CAS one permit in (Release).
//! * *release, slow*, under the queue lock: hand the permit to the first waiter instead
//!   (the count does not change), clearing `QUEUED` if it was the last. The queue may be
//!   empty by the time the lock is held (another release took the last waiter and cleared
//!   `QUEUED`, and fast acquires and releases may have run since): the permit is then added
//!   with a read-modify-write, as the fast path would.
//!
//! While `QUEUED` is set the count is zero: waiters queue only when no permit is free, and
//! releases hand permits over rather than adding them.

use std::fmt;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{acquire_or_wait, const_unless_loom, lock_queue};
use crate::loom::sync::atomic::AtomicUsize;
use crate::runtime::blocking_point::wait_site;
use crate::runtime::wait::WaitQueue;

const QUEUED: usize = 1;
const PERMIT: usize = 2;

/// A counting semaphore: at most N holders at a time, served in arrival order once anybody
/// waits.
///
/// ```
/// use std::sync::Arc;
/// use weft::sync::Semaphore;
///
/// let connections = Arc::new(Semaphore::new(2));
/// let handles: Vec<_> = (0..6)
///     .map(|_| {
///         let connections = connections.clone();
///         weft::go!(move || {
///             let _permit = connections.acquire(); // at most two hold one at once
///             weft::yield_now();
///         })
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(connections.available(), 2);
/// ```
pub struct Semaphore {
    state: AtomicUsize,
    waiters: crate::loom::sync::SpinLock<WaitQueue<()>>,
}

/// One permit of a [`Semaphore`]; released when dropped.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct SemaphorePermit<'a> {
    semaphore: &'a Semaphore,
}

impl Semaphore {
    /// The most permits a semaphore can count.
    pub const MAX_PERMITS: usize = usize::MAX >> 1;

    const_unless_loom! {
        /// A semaphore with `permits` free permits.
        ///
        /// # Panics
        ///
        /// If `permits` exceeds [`Semaphore::MAX_PERMITS`].
        pub fn new(permits: usize) -> Semaphore {
            assert!(permits <= Semaphore::MAX_PERMITS, "Semaphore::new: too many permits");
            Semaphore {
                state: AtomicUsize::new(permits << 1),
                waiters: crate::loom::sync::SpinLock::new(WaitQueue::new()),
            }
        }
    }

    /// Takes a permit, parking until one is free.
    #[inline]
    #[track_caller]
    pub fn acquire(&self) -> SemaphorePermit<'_> {
        crate::runtime::coop::spend();
        if !self.try_acquire_fast() {
            self.acquire_slow();
        }
        SemaphorePermit { semaphore: self }
    }

    /// Takes a permit if one is free and nobody is waiting for one.
    pub fn try_acquire(&self) -> Option<SemaphorePermit<'_>> {
        crate::runtime::coop::spend();
        self.try_acquire_fast()
            .then(|| SemaphorePermit { semaphore: self })
    }

    /// The number of free permits.
    pub fn available(&self) -> usize {
        self.state.load(Relaxed) >> 1
    }

    /// Adds a permit: wakes the longest waiter with it, or adds it to the free count.
    ///
    /// # Panics
    ///
    /// If the count would exceed [`Semaphore::MAX_PERMITS`].
    pub fn release(&self) {
        let mut state = self.state.load(Relaxed);
        while state & QUEUED == 0 {
            assert!(
                state >> 1 < Semaphore::MAX_PERMITS,
                "Semaphore::release: too many permits"
            );
            // Release: orders the holder's accesses before the next acquirer's.
            match self
                .state
                .compare_exchange_weak(state, state + PERMIT, Release, Relaxed)
            {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
        self.release_slow();
    }

    #[inline]
    fn try_acquire_fast(&self) -> bool {
        let mut state = self.state.load(Relaxed);
        while state & QUEUED == 0 && state >= PERMIT {
            // Acquire: pairs with the Release of the permit's release.
            match self
                .state
                .compare_exchange_weak(state, state - PERMIT, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
        false
    }

    #[cold]
    #[track_caller]
    fn acquire_slow(&self) {
        let site = wait_site!(crate::WaitReason::Semaphore {
            semaphore: self as *const Self as usize
        });
        // Every waiter wants one permit and permits are handed to the first waiter that has
        // not given up, so a waiter that leaves strands nobody behind it.
        acquire_or_wait(
            &self.state,
            &self.waiters,
            QUEUED,
            (),
            site,
            |state| (state & QUEUED == 0 && state >= PERMIT).then(|| state - PERMIT),
            |_| Vec::new(),
        );
    }

    #[cold]
    fn release_slow(&self) {
        let claimed = {
            let mut waiters = lock_queue(&self.waiters);
            let claimed = waiters.pop_claim();
            if waiters.is_empty() {
                let add = if claimed.is_some() { 0 } else { PERMIT };
                // A read-modify-write, not a store: `release` saw QUEUED, but another
                // release may have handed the last waiter its permit and cleared QUEUED
                // since, and the fast paths may have moved the count after that (a store
                // of `add` lost a permit then; `loom_semaphore_*`). Clearing QUEUED is
                // only ever done under the queue lock. Release: as the fast path's.
                let _ = self
                    .state
                    .fetch_update(Release, Relaxed, |state| Some((state & !QUEUED) + add));
            }
            claimed
        };
        drop(claimed);
    }
}

impl SemaphorePermit<'_> {
    /// Keeps the permit taken forever (the semaphore's count shrinks by one).
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.semaphore.release();
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::Semaphore;

    /// Three releases race one waiter's acquire. A release that saw the waiter queued and
    /// then finds the queue emptied by another release (which handed the waiter its
    /// permit) must add its permit to whatever the count is by then: fast releases may
    /// have moved it. Three releases and one acquire leave exactly two permits.
    #[test]
    fn loom_semaphore_releases_racing_a_hand_off_lose_no_permit() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let semaphore = Arc::new(Semaphore::new(0));
            let threads: Vec<_> = (0..2)
                .map(|i| {
                    let semaphore = semaphore.clone();
                    loom::thread::spawn(move || {
                        if i == 0 {
                            semaphore.acquire().forget();
                        } else {
                            semaphore.release();
                        }
                    })
                })
                .collect();
            semaphore.release();
            semaphore.release();
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(semaphore.available(), 2);
        });
    }
}
