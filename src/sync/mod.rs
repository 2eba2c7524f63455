//! Locks and coordination primitives that park the green thread instead of blocking its
//! worker, in std's shapes (poisoning included where std has it).
//!
//! | type | what for |
//! |---|---|
//! | [`Mutex`], [`RwLock`] | exclusive / shared access, with guards and poisoning |
//! | [`Condvar`] | waiting for a condition under a [`Mutex`] |
//! | [`Semaphore`] | limiting concurrency to N permits |
//! | [`Barrier`] | N parties meeting at one point |
//! | [`WaitGroup`] | Go's: wait until a set of tasks says it is done |
//! | [`OnceLock`] | lazy one-time initialisation; latecomers park until it is done |
//!
//! A std lock held across a blocking call in a green thread would block the whole worker
//! (and deadlock if the holder is a green thread on that same worker); these park only the
//! green thread. In a plain thread they block the thread, so both kinds can share them.
//!
//! # Fairness
//!
//! An uncontended lock or unlock is a single compare-and-swap. Once anybody waits, the
//! lock is handed over in FIFO order: the unlocking party gives it directly to the first
//! waiter, and newcomers queue behind, so no waiter starves. The price is the one
//! parking_lot avoids with *eventual* fairness: under heavy contention each hand-off waits
//! for the woken party to be scheduled.

mod barrier;
mod condvar;
mod lazy;
mod mutex;
mod once_lock;
mod rwlock;
mod semaphore;
mod wait_group;

pub use self::barrier::{Barrier, BarrierWaitResult};
pub use self::condvar::{Condvar, WaitTimeoutResult};
pub use self::lazy::{LazyLock, Once, OnceState};
pub use self::mutex::{Mutex, MutexGuard};
pub use self::once_lock::OnceLock;
pub use self::rwlock::{RwLock, RwLockReadGuard, RwLockWriteGuard};
pub use self::semaphore::{Semaphore, SemaphorePermit};
pub use self::wait_group::WaitGroup;
pub use std::sync::{LockResult, PoisonError, TryLockError, TryLockResult};

/// Declares a constructor `const` in normal builds; loom's types have no const constructors.
macro_rules! const_unless_loom {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($args:tt)*) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$meta])*
        $vis const fn $name($($args)*) -> $ret $body

        #[cfg(loom)]
        $(#[$meta])*
        $vis fn $name($($args)*) -> $ret $body
    };
}
pub(crate) use const_unless_loom;

/// The poison flag of a lock: set when a guard is dropped by a panicking thread that was not
/// already panicking when it took the guard (std's rule).
#[derive(Debug)]
pub(crate) struct Poison {
    flag: crate::loom::sync::atomic::AtomicBool,
}

impl Poison {
    const_unless_loom! {
        pub(crate) fn new() -> Poison {
            Poison {
                flag: crate::loom::sync::atomic::AtomicBool::new(false),
            }
        }
    }

    /// Whether the current thread is panicking, to remember in a new guard.
    #[inline]
    pub(crate) fn panicking() -> bool {
        std::thread::panicking()
    }

    /// Called by a guard's drop with what [`Poison::panicking`] said when it was taken.
    #[inline]
    pub(crate) fn done(&self, was_panicking: bool) {
        if !was_panicking && std::thread::panicking() {
            // Relaxed: the flag is advisory and carries no data; the lock's own release
            // orders the protected data.
            self.flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn get(&self) -> bool {
        self.flag.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn clear(&self) {
        self.flag.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// `Ok(guard)`, or the guard inside a `PoisonError` if the lock is poisoned.
    #[inline]
    pub(crate) fn map<G>(&self, guard: G) -> LockResult<G> {
        if self.get() {
            Err(PoisonError::new(guard))
        } else {
            Ok(guard)
        }
    }
}

/// Locks an internal queue (a [`crate::runtime::spin::SpinLock`]: held for a few instructions, never
/// across user code or a park).
#[inline]
pub(crate) fn lock_queue<T>(
    queue: &crate::loom::sync::SpinLock<T>,
) -> crate::loom::sync::SpinGuard<'_, T> {
    queue.lock()
}

/// The slow path every lock here shares. Under the queue lock, either take the lock now
/// (`take(state)` gives the new state word when that is allowed) or CAS in the `queued` bit
/// and queue a waiter wanting `kind`; in that case park until a hand-over completes the wait,
/// after which the caller holds the lock.
///
/// The queue lock makes this exclusive with every other slow path and with the hand-overs,
/// which also run under it; only the one-CAS fast paths race with the loop below, and they
/// succeed only while `queued` is clear.
///
/// A cancel or a `timeout` boundary withdraws the wait (see `crate::runtime::blocking_point`): out
/// of the queue, under its lock, and then `rehand` runs under the same lock for whoever is
/// now at the front (a reader queued behind a writer that gave up may take the lock at
/// once); its claims are completed after the lock is released, and then the caller unwinds.
/// A wait that a hand-over claimed first is never withdrawn: the lock arrives, and the
/// interrupt takes effect at the caller's next blocking point. A `queued` bit left over with
/// an empty queue only sends the next unlock down the slow path, which finds nobody and
/// clears it.
pub(crate) fn acquire_or_wait<K>(
    state: &crate::loom::sync::atomic::AtomicUsize,
    queue: &crate::loom::sync::SpinLock<crate::runtime::wait::WaitQueue<K>>,
    queued: usize,
    kind: K,
    site: crate::runtime::blocking_point::Site,
    take: impl Fn(usize) -> Option<usize>,
    rehand: impl Fn(&mut crate::runtime::wait::WaitQueue<K>) -> Vec<crate::runtime::wait::Claimed>,
) {
    use std::sync::atomic::Ordering::{Acquire, Relaxed};

    let waiter = crate::runtime::wait::Waiter::new();
    {
        let mut waiters = lock_queue(queue);
        let mut current = state.load(Relaxed);
        loop {
            let (new, acquired) = match take(current) {
                Some(new) => (new, true),
                None => (current | queued, false),
            };
            // Acquire on taking the lock pairs with the last holder's Release unlock;
            // setting the queued bit publishes nothing (the queue lock orders the queue).
            match state.compare_exchange(current, new, Acquire, Relaxed) {
                Ok(_) if acquired => return,
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        waiters.push(&waiter, kind);
    }
    // Handed over: DONE's Acquire pairs with the hand-over's Release, which follows the
    // previous holder's critical section. No deadline: only an interrupt ends it early, and
    // that unwinds from inside once `unregister` ran.
    let unregister = || {
        let claimed = {
            let mut waiters = lock_queue(queue);
            waiters.remove(&waiter);
            rehand(&mut waiters)
        };
        drop(claimed);
    };
    let handed = waiter.wait(site, None, unregister);
    debug_assert!(
        handed.is_some(),
        "an untimed lock wait only completes or unwinds"
    );
}
