//! The internal lock of every wait queue and channel: a spin lock whose unlock is a plain
//! store.
//!
//! Those critical sections are a few dozen instructions that never park, never run user
//! code, never take a blocking lock (with the `hooks` feature a contended std lock parks
//! the green thread, and a green thread of the same worker spinning here would never let
//! it resume) and never allocate more than a queue push. A futex-backed mutex must unlock with a
//! read-modify-write (to learn whether anyone sleeps on it), and on this hardware every
//! locked instruction costs about as much as the rest of the critical section; a channel
//! ping-pong round trip takes four of these locks. A spinner only waits for another OS thread
//! that is inside such a section: it spins briefly, then yields the CPU, in case that thread
//! was preempted. (crossbeam-channel guards its waiter lists the same way.)
//!
//! There is no poisoning: a panic inside a section (only an allocation failure could cause
//! one) unlocks on unwind, and the data is consistent between any two of its statements
//! that could panic.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering::Acquire, Ordering::Relaxed, Ordering::Release};

pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `value` to one thread at a time (Acquire on lock,
// Release on unlock), as a mutex does; `T: Send` is what that requires.
unsafe impl<T: Send> Send for SpinLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub(crate) const fn new(value: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        // Acquire: pairs with the previous holder's Release in `SpinGuard::drop`.
        if self
            .locked
            .compare_exchange_weak(false, true, Acquire, Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        SpinGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        let mut rounds = 0u32;
        loop {
            // Wait with plain loads (no cache-line ping-pong), then try again.
            while self.locked.load(Relaxed) {
                if rounds < 6 {
                    for _ in 0..(1 << rounds) {
                        std::hint::spin_loop();
                    }
                    rounds += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Acquire, Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }
}

pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard is proof that this thread holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard is proof that this thread holds the lock, and it is borrowed
        // mutably, so this is the only reference handed out.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Release: publishes the section's writes to the next holder. A plain `mov` on x86.
        self.lock.locked.store(false, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::SpinLock;

    #[test]
    fn excludes() {
        let lock = SpinLock::new(0u64);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50_000 {
                        // A non-atomic read-modify-write: lost updates if two threads overlap.
                        let mut guard = lock.lock();
                        let value = *guard;
                        std::hint::black_box(&mut *guard);
                        *guard = value + 1;
                    }
                });
            }
        });
        assert_eq!(*lock.lock(), 200_000);
    }
}
