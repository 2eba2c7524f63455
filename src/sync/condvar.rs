//! [`Condvar`]: a FIFO of waiters, each queued *before* it releases the mutex.
//!
//! `wait` queues its waiter under the condvar's queue lock, then unlocks the mutex, then
//! parks. A notifier that changed the condition did so under the mutex, so either it ran
//! before the waiter checked the condition (and the waiter never waits), or after the waiter
//! queued itself (and the notify finds it). No notification is lost. A waiter that times
//! out aborts its wait cell; if a notify claimed it first, the wake-up counts as a
//! notification, not a timeout, so a `notify_one` is never swallowed by a timeout.

use std::fmt;
use std::time::{Duration, Instant};

use super::{const_unless_loom, lock_queue, MutexGuard};
use crate::runtime::blocking_point::wait_site;
use crate::runtime::wait::{self, WaitQueue, Waiter};
use std::sync::{LockResult, PoisonError};

/// A condition variable for [`Mutex`](super::Mutex), shaped like `std::sync::Condvar`.
///
/// ```
/// use std::sync::Arc;
/// use weft::sync::{Condvar, Mutex};
///
/// let pair = Arc::new((Mutex::new(false), Condvar::new()));
/// let pair2 = pair.clone();
/// weft::go!(move || {
///     let (ready, cv) = &*pair2;
///     *ready.lock().unwrap() = true;
///     cv.notify_one();
/// });
/// let (ready, cv) = &*pair;
/// let guard = cv.wait_while(ready.lock().unwrap(), |ready| !*ready).unwrap();
/// assert!(*guard);
/// ```
pub struct Condvar {
    waiters: crate::loom::sync::SpinLock<WaitQueue<()>>,
}

/// Whether a timed wait on a [`Condvar`] ended by timing out.
#[derive(Debug, PartialEq, Eq, Copy, Clone)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// `true` if the wait timed out rather than being notified.
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

impl Condvar {
    const_unless_loom! {
        /// A new condition variable.
        pub fn new() -> Condvar {
            Condvar {
                waiters: crate::loom::sync::SpinLock::new(WaitQueue::new()),
            }
        }
    }

    /// Unlocks `guard`'s mutex, parks until notified, and locks it again. As with std,
    /// wake-ups may be spurious: check the condition in a loop, or use
    /// [`Condvar::wait_while`].
    #[track_caller]
    pub fn wait<'a, T: ?Sized>(&self, guard: MutexGuard<'a, T>) -> LockResult<MutexGuard<'a, T>> {
        match self.wait_until(guard, None) {
            Ok((guard, _)) => Ok(guard),
            Err(poisoned) => Err(PoisonError::new(poisoned.into_inner().0)),
        }
    }

    /// Waits until `condition` returns `false`, checking it first.
    #[track_caller]
    pub fn wait_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        mut condition: F,
    ) -> LockResult<MutexGuard<'a, T>>
    where
        F: FnMut(&mut T) -> bool,
    {
        while condition(&mut *guard) {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Like [`Condvar::wait`], giving up after `timeout`.
    #[track_caller]
    pub fn wait_timeout<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        self.wait_until(guard, wait::deadline_after(timeout))
    }

    /// Like [`Condvar::wait_while`], giving up after `timeout`; the result says whether the
    /// condition was still true at the end.
    #[track_caller]
    pub fn wait_timeout_while<'a, T: ?Sized, F>(
        &self,
        mut guard: MutexGuard<'a, T>,
        timeout: Duration,
        mut condition: F,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)>
    where
        F: FnMut(&mut T) -> bool,
    {
        let deadline = wait::deadline_after(timeout);
        loop {
            if !condition(&mut *guard) {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            guard = match self.wait_until(guard, deadline) {
                Ok((guard, _)) => guard,
                Err(err) => {
                    let (guard, result) = err.into_inner();
                    return Err(PoisonError::new((guard, result)));
                }
            };
        }
    }

    #[track_caller]
    fn wait_until<'a, T: ?Sized>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Option<Instant>,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let mutex = guard.mutex;
        let waiter = Waiter::new();
        let site = wait_site!(crate::WaitReason::Condvar {
            condvar: self as *const Self as usize
        });
        lock_queue(&self.waiters).push(&waiter, ());
        drop(guard);
        // Interrupted (a cancel, a `timeout` boundary): the wait leaves the queue and unwinds
        // without taking the lock back (the guard is gone already). A notification that
        // claimed the wait first is taken instead, and passed on below if re-locking is
        // interrupted.
        let notified = waiter
            .wait(site, deadline, || lock_queue(&self.waiters).remove(&waiter))
            .is_some();
        let result = WaitTimeoutResult(!notified);
        // A notification consumed here must not vanish if re-taking the lock is interrupted
        // (a cancel, a `timeout`): then it goes on to the next waiter.
        struct PassOn<'c>(&'c Condvar, bool);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                if self.1 {
                    self.0.notify_one();
                }
            }
        }
        let mut pass_on = PassOn(self, notified);
        let relocked = mutex.lock();
        pass_on.1 = false;
        match relocked {
            Ok(guard) => Ok((guard, result)),
            Err(poisoned) => Err(PoisonError::new((poisoned.into_inner(), result))),
        }
    }

    /// Wakes the longest-waiting party, if any.
    pub fn notify_one(&self) {
        let claimed = lock_queue(&self.waiters).pop_claim();
        drop(claimed);
    }

    /// Wakes every waiting party.
    pub fn notify_all(&self) {
        let mut claimed = Vec::new();
        {
            let mut waiters = lock_queue(&self.waiters);
            while let Some((_, claim)) = waiters.pop_claim() {
                claimed.push(claim);
            }
        }
        drop(claimed);
    }
}

// As std's: a condvar has no data of its own that a panic could leave half-written.
impl std::panic::UnwindSafe for Condvar {}
impl std::panic::RefUnwindSafe for Condvar {}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar").finish_non_exhaustive()
    }
}

/// Model check: a notify racing a waiter that is about to park is never lost (run: see
/// `src/loom.rs`).
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::Condvar;
    use crate::sync::Mutex;

    #[test]
    fn loom_condvar_loses_no_notification() {
        loom::model(|| {
            let pair = Arc::new((Mutex::new(false), Condvar::new()));
            let notifier = {
                let pair = pair.clone();
                loom::thread::spawn(move || {
                    *pair.0.lock().unwrap() = true;
                    pair.1.notify_one();
                })
            };
            let guard = pair.1.wait_while(pair.0.lock().unwrap(), |ready| !*ready);
            assert!(*guard.unwrap());
            notifier.join().unwrap();
        });
    }
}
