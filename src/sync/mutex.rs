//! [`Mutex`]: one CAS to lock or unlock when uncontended, FIFO hand-off when not.
//!
//! # State word
//!
//! | bit | name | meaning |
//! |---|---|---|
//! | 0 | `LOCKED` | somebody holds the lock |
//! | 1 | `QUEUED` | the wait queue is non-empty (changed only under the queue's lock) |
//!
//! * *lock, fast*: CAS `0 → LOCKED` (Acquire).
//! * *lock, slow*, under the queue lock: if `LOCKED` is clear, take it as above; otherwise
//!   CAS in `QUEUED`, queue a waiter, and park. A woken waiter owns the lock: it was handed
//!   over, `LOCKED` never dropped in between.
//! * *unlock, fast*: CAS `LOCKED → 0` (Release).
//! * *unlock, slow* (`QUEUED` set), under the queue lock: claim the first waiter, store
//!   `LOCKED`, plus `QUEUED` if more wait (Release), then wake it after unlocking the queue.
//!   The store cannot race: with `LOCKED` set the fast paths fail, and slow lockers hold the
//!   queue lock.
//!
//! A free lock never has waiters (an unlock with waiters hands over), so a slow locker that
//! finds `LOCKED` clear may take it without queueing.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{acquire_or_wait, const_unless_loom, lock_queue, Poison};
use crate::loom::sync::atomic::AtomicUsize;
use crate::runtime::blocking_point::wait_site;
use crate::runtime::wait::WaitQueue;
use std::sync::{LockResult, TryLockError, TryLockResult};

const LOCKED: usize = 0b01;
const QUEUED: usize = 0b10;

/// A mutual-exclusion lock that parks green threads, shaped like `std::sync::Mutex`.
///
/// ```
/// use std::sync::Arc;
/// use weft::sync::Mutex;
///
/// let counter = Arc::new(Mutex::new(0));
/// let handles: Vec<_> = (0..8)
///     .map(|_| {
///         let counter = counter.clone();
///         weft::go!(move || {
///             for _ in 0..100 {
///                 let mut n = counter.lock().unwrap();
///                 *n += 1;
///                 weft::yield_now(); // other green threads run; they queue for the lock
///             }
///         })
///     })
///     .collect();
/// for h in handles {
///     h.join().unwrap();
/// }
/// assert_eq!(*counter.lock().unwrap(), 800);
/// ```
pub struct Mutex<T: ?Sized> {
    state: AtomicUsize,
    poison: Poison,
    waiters: crate::loom::sync::SpinLock<WaitQueue<()>>,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands `T` between threads (so `T: Send`) and only one guard at a time
// gives access to it, so sharing the mutex needs no more than `T: Send` (as std's).
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

/// Access to a [`Mutex`]'s data; unlocks when dropped.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    pub(super) mutex: &'a Mutex<T>,
    was_panicking: bool,
    /// Like std's guard: not `Send`.
    _not_send: PhantomData<*const ()>,
}

// SAFETY: a shared guard only hands out `&T`.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<T> Mutex<T> {
    const_unless_loom! {
        /// A new unlocked mutex.
        pub fn new(value: T) -> Mutex<T> {
            Mutex {
                state: AtomicUsize::new(0),
                poison: Poison::new(),
                waiters: crate::loom::sync::SpinLock::new(WaitQueue::new()),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the mutex and returns its data (poisoned if a holder panicked).
    pub fn into_inner(self) -> LockResult<T> {
        let poisoned = self.poison.get();
        let value = self.data.into_inner();
        if poisoned {
            Err(std::sync::PoisonError::new(value))
        } else {
            Ok(value)
        }
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, parking the green thread (or blocking the plain thread) while another holds it.
    /// Fails if a holder panicked; the error still carries the guard.
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        crate::runtime::coop::spend();
        if self
            .state
            .compare_exchange(0, LOCKED, Acquire, Relaxed)
            .is_err()
        {
            self.lock_slow();
        }
        self.poison.map(self.guard())
    }

    /// Locks if that needs no waiting.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        crate::runtime::coop::spend();
        self.try_lock_now()
    }

    /// [`try_lock`](Self::try_lock) without spending the cooperative budget: `Debug` uses
    /// it, as formatting must never let another green thread run (a logger may hold a std
    /// lock while it formats).
    fn try_lock_now(&self) -> TryLockResult<MutexGuard<'_, T>> {
        // Only from 0: with waiters queued the lock belongs to them next (FIFO).
        if self
            .state
            .compare_exchange(0, LOCKED, Acquire, Relaxed)
            .is_ok()
        {
            self.poison.map(self.guard()).map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether a holder panicked.
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// The data, through a unique borrow: no locking needed.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        let poisoned = self.poison.get();
        let data = self.data.get_mut();
        if poisoned {
            Err(std::sync::PoisonError::new(data))
        } else {
            Ok(data)
        }
    }

    fn guard(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            was_panicking: Poison::panicking(),
            _not_send: PhantomData,
        }
    }

    #[cold]
    #[track_caller]
    fn lock_slow(&self) {
        let site = wait_site!(crate::WaitReason::Mutex {
            lock: self as *const Self as *const () as usize
        });
        // A free lock has no waiters (unlocking with waiters hands over), so take it if free.
        // A waiter that leaves changes nothing for the others: the lock is held meanwhile,
        // and its unlock hands over to whoever is first then.
        acquire_or_wait(
            &self.state,
            &self.waiters,
            QUEUED,
            (),
            site,
            |state| (state & LOCKED == 0).then_some(state | LOCKED),
            |_| Vec::new(),
        );
    }

    /// Releases the lock held by a guard that is going away.
    #[inline]
    fn unlock(&self) {
        if self
            .state
            .compare_exchange(LOCKED, 0, Release, Relaxed)
            .is_err()
        {
            self.unlock_slow();
        }
    }

    #[cold]
    fn unlock_slow(&self) {
        let claimed = {
            let mut waiters = lock_queue(&self.waiters);
            let next = waiters.pop_claim();
            let state = match (&next, waiters.is_empty()) {
                (None, _) => 0,
                (Some(_), true) => LOCKED,
                (Some(_), false) => LOCKED | QUEUED,
            };
            self.state.store(state, Release);
            next
        };
        drop(claimed);
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> From<T> for Mutex<T> {
    fn from(value: T) -> Self {
        Mutex::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock_now() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poison.get())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held, so no other reference exists.
        unsafe { &*self.mutex.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and the guard is borrowed uniquely.
        unsafe { &mut *self.mutex.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.poison.done(self.was_panicking);
        self.mutex.unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

// As std's: a panic while the lock is held poisons it, which callers see.
impl<T: ?Sized> std::panic::UnwindSafe for Mutex<T> {}
impl<T: ?Sized> std::panic::RefUnwindSafe for Mutex<T> {}

impl<T: ?Sized + fmt::Display> fmt::Display for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// Model checks of the lock and hand-off protocol (run: see `src/loom.rs`): exclusion holds,
/// and no unlock leaves a queued waiter parked (loom reports a deadlock if one does).
#[cfg(all(test, loom))]
mod loom_tests {
    use loom::sync::Arc;

    use super::Mutex;

    #[test]
    fn loom_mutex_hands_over_without_losing_a_waiter() {
        // Three parties, so two can queue at once; a preemption bound keeps the run short
        // (bugs in protocols this size show up within two or three preemptions).
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let lock = Arc::new(Mutex::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let lock = lock.clone();
                    loom::thread::spawn(move || *lock.lock().unwrap() += 1)
                })
                .collect();
            *lock.lock().unwrap() += 1;
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(*lock.lock().unwrap(), 3);
        });
    }
}
