//! [`RwLock`]: many readers or one writer, FIFO once anybody waits.
//!
//! # State word
//!
//! | bits | name | meaning |
//! |---|---|---|
//! | 0 | `WRITER` | a writer holds the lock |
//! | 1 | `QUEUED` | the wait queue is non-empty (changed only under the queue's lock) |
//! | 2.. | readers | how many readers hold the lock, in units of `READER` |
//!
//! * *read, fast*: if neither `WRITER` nor `QUEUED`, CAS in one more reader (Acquire).
//!   Readers do not overtake a queued writer, so writers do not starve.
//! * *write, fast*: CAS `0 → WRITER` (Acquire).
//! * *slow lock*, under the queue lock: take the lock as above if nothing is queued,
//!   otherwise CAS in `QUEUED`, queue, park. A woken waiter owns the lock (handed over).
//! * *write unlock*: CAS `WRITER → 0` (Release); if `QUEUED`, hand over instead.
//! * *read unlock*: subtract `READER` (Release). The last reader out with `QUEUED` set hands
//!   over. Between its subtraction and the hand-off the word reads `QUEUED` alone: nobody
//!   holds the lock, the fast paths refuse, and slow lockers queue, so nobody barges in.
//! * *downgrade*: add `READER - WRITER` (Release), keeping `QUEUED`; if it was set, admit
//!   the readers at the front of the queue, as `admit_front_readers` does when a waiter
//!   gives up.
//! * *hand-over*, under the queue lock: the first waiter, if a writer, gets the lock alone;
//!   if readers, every reader at the front of the queue gets it together. The new word
//!   (holders, plus `QUEUED` if more wait) is stored with Release; the woken holders
//!   acquire through their wait cells.

use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{acquire_or_wait, const_unless_loom, lock_queue, Poison};
use crate::loom::sync::atomic::AtomicUsize;
use crate::runtime::blocking_point::wait_site;
use crate::runtime::wait::{Claimed, WaitQueue};
use std::sync::{LockResult, TryLockError, TryLockResult};

const WRITER: usize = 0b01;
const QUEUED: usize = 0b10;
const READER: usize = 0b100;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Read,
    Write,
}

/// A reader-writer lock that parks green threads, shaped like `std::sync::RwLock`.
///
/// ```
/// use weft::sync::RwLock;
///
/// let lock = RwLock::new(vec![1, 2]);
/// {
///     let a = lock.read().unwrap();
///     let b = lock.read().unwrap(); // readers share
///     assert_eq!(a.len() + b.len(), 4);
/// }
/// lock.write().unwrap().push(3);
/// assert_eq!(*lock.read().unwrap(), [1, 2, 3]);
/// ```
pub struct RwLock<T: ?Sized> {
    raw: RawRwLock,
    poison: Poison,
    data: UnsafeCell<T>,
}

/// The lock itself, apart from the data: the state word and the wait queue. Read guards
/// point at it and at the data separately, so that they are covariant in `T`, as std's.
struct RawRwLock {
    state: AtomicUsize,
    waiters: crate::loom::sync::SpinLock<WaitQueue<Want>>,
}

// SAFETY: as std's: moving the lock moves `T` (`T: Send`); sharing it gives `&T` to many
// readers at once (`T: Sync`) and `&mut T` to one writer, possibly on another thread
// (`T: Send`).
unsafe impl<T: ?Sized + Send> Send for RwLock<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s data.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, T: ?Sized> {
    // `NonNull` (not `&'a RwLock<T>`, whose `UnsafeCell` would make the guard invariant):
    // the guard is covariant in `T`, as std's, which is sound because it only hands out `&T`.
    data: NonNull<T>,
    raw: &'a RawRwLock,
    _not_send: PhantomData<*const ()>,
}

/// Exclusive access to an [`RwLock`]'s data.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    was_panicking: bool,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: shared guards only hand out `&T`.
unsafe impl<T: ?Sized + Sync> Sync for RwLockReadGuard<'_, T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync> Sync for RwLockWriteGuard<'_, T> {}

impl<T> RwLock<T> {
    const_unless_loom! {
        /// A new unlocked lock.
        pub fn new(value: T) -> RwLock<T> {
            RwLock {
                raw: RawRwLock {
                    state: AtomicUsize::new(0),
                    waiters: crate::loom::sync::SpinLock::new(WaitQueue::new()),
                },
                poison: Poison::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the lock and returns its data (poisoned if a writer panicked).
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

impl<T: ?Sized> RwLock<T> {
    /// Locks for reading, parking while a writer holds the lock or waits for it.
    #[inline]
    #[track_caller]
    pub fn read(&self) -> LockResult<RwLockReadGuard<'_, T>> {
        crate::runtime::coop::spend();
        if !self.raw.try_read_fast() {
            self.raw.lock_slow(Want::Read, self.address());
        }
        self.poison.map(self.read_guard())
    }

    /// Locks for writing, parking while anybody else holds the lock.
    #[inline]
    #[track_caller]
    pub fn write(&self) -> LockResult<RwLockWriteGuard<'_, T>> {
        crate::runtime::coop::spend();
        if self
            .raw
            .state
            .compare_exchange(0, WRITER, Acquire, Relaxed)
            .is_err()
        {
            self.raw.lock_slow(Want::Write, self.address());
        }
        self.poison.map(self.write_guard())
    }

    /// Locks for reading if that needs no waiting.
    pub fn try_read(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        crate::runtime::coop::spend();
        self.try_read_now()
    }

    /// [`try_read`](Self::try_read) without spending the cooperative budget, for `Debug`
    /// (formatting must never let another green thread run).
    fn try_read_now(&self) -> TryLockResult<RwLockReadGuard<'_, T>> {
        if self.raw.try_read_fast() {
            self.poison
                .map(self.read_guard())
                .map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Locks for writing if that needs no waiting.
    pub fn try_write(&self) -> TryLockResult<RwLockWriteGuard<'_, T>> {
        crate::runtime::coop::spend();
        if self
            .raw
            .state
            .compare_exchange(0, WRITER, Acquire, Relaxed)
            .is_ok()
        {
            self.poison
                .map(self.write_guard())
                .map_err(TryLockError::from)
        } else {
            Err(TryLockError::WouldBlock)
        }
    }

    /// Whether a writer panicked.
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

    fn read_guard(&self) -> RwLockReadGuard<'_, T> {
        RwLockReadGuard {
            // SAFETY: `UnsafeCell::get` never returns null.
            data: unsafe { NonNull::new_unchecked(self.data.get()) },
            raw: &self.raw,
            _not_send: PhantomData,
        }
    }

    fn address(&self) -> usize {
        self as *const Self as *const () as usize
    }

    fn write_guard(&self) -> RwLockWriteGuard<'_, T> {
        RwLockWriteGuard {
            lock: self,
            was_panicking: Poison::panicking(),
            _not_send: PhantomData,
        }
    }
}

impl RawRwLock {
    #[inline]
    fn try_read_fast(&self) -> bool {
        let mut state = self.state.load(Relaxed);
        while state & (WRITER | QUEUED) == 0 {
            // Acquire: pairs with the Release of the last write unlock.
            match self
                .state
                .compare_exchange_weak(state, state + READER, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => state = actual,
            }
        }
        false
    }

    /// `lock_address` is the `RwLock`'s own address, which the dump shows.
    #[cold]
    #[track_caller]
    fn lock_slow(&self, want: Want, lock_address: usize) {
        let _ = lock_address; // under loom the site is empty
        let site = wait_site!(crate::WaitReason::RwLock { lock: lock_address });
        acquire_or_wait(
            &self.state,
            &self.waiters,
            QUEUED,
            want,
            site,
            |state| match want {
                Want::Read => (state & (WRITER | QUEUED) == 0).then(|| state + READER),
                Want::Write => (state == 0).then_some(WRITER),
            },
            |waiters| self.admit_front_readers(waiters),
        );
    }

    /// After a waiter left the queue (it gave up): if readers hold the lock and readers are
    /// now at the front (the one that left was the writer they queued behind), they join the
    /// holders at once instead of waiting for the next unlock, which may never come (the
    /// holders may be waiting for them). Runs under the queue lock; the caller completes the
    /// claims after releasing it.
    ///
    /// Each admission first *reserves* a read hold with a CAS that requires a reader to hold
    /// the lock already, so the count never passes through zero and no unlock's hand-over
    /// can be pending meanwhile (a hand-over runs only at zero holders, and it stores the
    /// whole word). Then it claims the front reader. If there is none (the front is a writer,
    /// or the queue is empty), the reservation is returned as a read unlock would: the last
    /// holder out hands over, here, under the lock we hold.
    fn admit_front_readers(&self, waiters: &mut WaitQueue<Want>) -> Vec<Claimed> {
        let mut claimed = Vec::new();
        let mut current = self.state.load(Relaxed);
        loop {
            if current & WRITER != 0 || current < READER {
                return claimed;
            }
            // Acquire, as a reader's fast path: the admitted reader reads what the last
            // writer published.
            match self
                .state
                .compare_exchange_weak(current, current + READER, Acquire, Relaxed)
            {
                Ok(_) => {}
                Err(actual) => {
                    current = actual;
                    continue;
                }
            }
            if let Some((_, claim)) = waiters.pop_claim_if(|w| *w == Want::Read) {
                claimed.push(claim);
                current = self.state.load(Relaxed);
                continue;
            }
            // Nobody to admit: give the reservation back (Release, as `read_unlock`).
            let previous = self.state.fetch_sub(READER, Release);
            if previous & !QUEUED == READER && previous & QUEUED != 0 {
                claimed.extend(self.hand_over_locked(waiters));
            } else if waiters.is_empty() {
                self.clear_queued_while_read();
            }
            return claimed;
        }
    }

    /// `WRITER → READER` in one step, for the holder of the write lock. While `WRITER` is
    /// set nothing else changes the word but `QUEUED` (under the queue lock), so the add
    /// keeps that bit. Release: the writer's accesses happen before those of the readers
    /// that join (fast path: their Acquire CAS; admitted: their wait cells).
    ///
    /// If waiters are queued, the readers at the front are admitted as when a writer
    /// ahead of them gives up: [`admit_front_readers`](Self::admit_front_readers), under
    /// the queue lock, which also clears `QUEUED` if the queue has emptied meanwhile. A
    /// writer at the front keeps waiting, now for the readers.
    fn downgrade(&self) {
        let previous = self.state.fetch_add(READER - WRITER, Release);
        debug_assert_eq!(
            previous & !QUEUED,
            WRITER,
            "downgrade without the write lock"
        );
        if previous & QUEUED != 0 {
            let claimed = self.admit_front_readers(&mut lock_queue(&self.waiters));
            drop(claimed);
        }
    }

    fn read_unlock(&self) {
        // Release: orders this reader's accesses before the next writer's.
        let previous = self.state.fetch_sub(READER, Release);
        if previous == READER | QUEUED {
            self.hand_over();
        }
    }

    fn write_unlock(&self) {
        if self
            .state
            .compare_exchange(WRITER, 0, Release, Relaxed)
            .is_err()
        {
            self.hand_over();
        }
    }

    /// Under the queue lock, with the queue empty: clears a `QUEUED` bit left by waiters
    /// that gave up, while readers hold the lock, so new readers take the fast path again
    /// instead of queueing behind nobody (until the last holder's unlock). Only while at
    /// least one reader holds and no writer does: then no hand-over can be pending (one runs
    /// only at zero holders, and stores the whole word). A CAS, as the fast paths still
    /// change the count.
    fn clear_queued_while_read(&self) {
        let mut current = self.state.load(Relaxed);
        while current & QUEUED != 0 && current & WRITER == 0 && current >= READER {
            // Relaxed: `QUEUED` orders nothing; the queue lock orders the queue.
            match self
                .state
                .compare_exchange_weak(current, current & !QUEUED, Relaxed, Relaxed)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Gives the lock to the front of the queue; the caller's hold has ended.
    #[cold]
    fn hand_over(&self) {
        let claimed = self.hand_over_locked(&mut lock_queue(&self.waiters));
        drop(claimed);
    }

    /// [`hand_over`](Self::hand_over) under the queue lock, at zero holders; the caller
    /// completes the returned claims after releasing the lock.
    fn hand_over_locked(&self, waiters: &mut WaitQueue<Want>) -> Vec<Claimed> {
        let mut claimed = Vec::new();
        let mut holders = 0;
        // The first waiter that has not given up decides: a writer alone, or every reader
        // up to the next writer.
        match waiters.pop_claim() {
            Some((Want::Write, claim)) => {
                claimed.push(claim);
                holders = WRITER;
            }
            Some((Want::Read, claim)) => {
                claimed.push(claim);
                holders = READER;
                while let Some((_, claim)) = waiters.pop_claim_if(|w| *w == Want::Read) {
                    claimed.push(claim);
                    holders += READER;
                }
            }
            None => {}
        }
        let queued = if waiters.is_empty() { 0 } else { QUEUED };
        self.state.store(holders | queued, Release);
        claimed
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> Self {
        RwLock::new(T::default())
    }
}

impl<T> From<T> for RwLock<T> {
    fn from(value: T) -> Self {
        RwLock::new(value)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("RwLock");
        match self.try_read_now() {
            Ok(guard) => d.field("data", &&*guard),
            Err(TryLockError::Poisoned(err)) => d.field("data", &&**err.get_ref()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.poison.get())
            .finish_non_exhaustive()
    }
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a read guard proves no writer holds the lock, and `data` points into the
        // `RwLock` that `raw` borrows for `'a`.
        unsafe { self.data.as_ref() }
    }
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: a write guard proves nobody else holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and the guard is borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<'a, T: ?Sized> RwLockWriteGuard<'a, T> {
    /// Turns a write hold into a read hold without letting any writer in between, as std's
    /// `RwLockWriteGuard::downgrade`. Readers queued at the front of the wait queue join at
    /// once; a queued writer still waits for every reader.
    ///
    /// ```
    /// use weft::sync::{RwLock, RwLockWriteGuard};
    ///
    /// let lock = RwLock::new(1);
    /// let mut write = lock.write().unwrap();
    /// *write += 1;
    /// let read = RwLockWriteGuard::downgrade(write);
    /// assert_eq!(*read, 2);
    /// assert!(lock.try_write().is_err());
    /// assert_eq!(*lock.try_read().unwrap(), 2);
    /// ```
    pub fn downgrade(s: Self) -> RwLockReadGuard<'a, T> {
        let s = ManuallyDrop::new(s);
        let lock = s.lock;
        // A panic that began while the write hold lasted poisons the lock, as a drop would.
        lock.poison.done(s.was_panicking);
        lock.raw.downgrade();
        lock.read_guard()
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        self.raw.read_unlock();
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.done(self.was_panicking);
        self.lock.raw.write_unlock();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized + fmt::Display> fmt::Display for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

// As std's: a panic while the lock is held poisons it, which callers see.
impl<T: ?Sized> std::panic::UnwindSafe for RwLock<T> {}
impl<T: ?Sized> std::panic::RefUnwindSafe for RwLock<T> {}

/// Model checks of `downgrade` (run: see `src/loom.rs`).
#[cfg(all(test, loom))]
mod loom_tests {
    use std::sync::atomic::Ordering::{Acquire, Release};

    use loom::sync::atomic::AtomicBool;
    use loom::sync::Arc;

    use super::{RwLock, RwLockWriteGuard};

    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(f);
    }

    /// A reader that queued behind the writer gets in as soon as the writer downgrades:
    /// the downgraded holder waits for it (a spin that only that admission ends; without
    /// it loom reports the livelock), and it reads what the writer wrote.
    #[test]
    fn loom_downgrade_admits_the_queued_reader() {
        model(|| {
            let lock = Arc::new(RwLock::new(0));
            let reader_in = Arc::new(AtomicBool::new(false));
            let mut write = lock.write().unwrap();
            let reader = {
                let (lock, reader_in) = (lock.clone(), reader_in.clone());
                loom::thread::spawn(move || {
                    let read = lock.read().unwrap();
                    assert_eq!(*read, 1);
                    reader_in.store(true, Release);
                })
            };
            *write = 1;
            let read = RwLockWriteGuard::downgrade(write);
            while !reader_in.load(Acquire) {
                loom::thread::yield_now();
            }
            drop(read);
            reader.join().unwrap();
            drop(lock.try_write().expect("the lock was stranded"));
        });
    }

    /// A reader and a writer queue, in either order, while the writer downgrades: nobody
    /// is left parked, the writer's update lands, and the reader sees a whole state.
    #[test]
    fn loom_downgrade_with_a_reader_and_a_writer_queued() {
        model(|| {
            let lock = Arc::new(RwLock::new(0));
            let mut write = lock.write().unwrap();
            let reader = {
                let lock = lock.clone();
                loom::thread::spawn(move || {
                    let seen = *lock.read().unwrap();
                    assert!(seen == 1 || seen == 11, "saw {seen}");
                })
            };
            let writer = {
                let lock = lock.clone();
                loom::thread::spawn(move || *lock.write().unwrap() += 10)
            };
            *write = 1;
            let read = RwLockWriteGuard::downgrade(write);
            assert_eq!(*read, 1);
            drop(read);
            reader.join().unwrap();
            writer.join().unwrap();
            assert_eq!(*lock.try_read().expect("the lock was stranded"), 11);
        });
    }
}
