//! The lock of weft's own longer critical sections (the reactor's timers and fd slab, the
//! stack pool, the idle list, configuration): a three-state futex mutex.
//!
//! Why not `std::sync::Mutex`: with the `hooks` feature, a contended std lock in a green
//! thread parks that green thread (std waits with libc's `syscall`, which the hooks
//! replace). weft's own sections sometimes hold per-OS-thread state while they lock (the
//! worker's stack cache is borrowed across the stack pool's lock), and a second green thread
//! of the worker would walk into it. This lock waits with [`crate::sys::futex_wait`], a raw
//! system call that no hook sees, so it always blocks the OS thread, as a runtime's own
//! locks must. Its sections are short, and never park or call user code.
//!
//! # The state word
//!
//! `0` unlocked, `1` locked, `2` locked and someone may sleep on the futex. `lock` takes
//! `0 → 1` (Acquire); when that fails it spins briefly, then swaps in `2` (Acquire) and
//! sleeps while the word is `2`, until its swap finds `0`. `unlock` swaps in `0` (Release:
//! publishes the section to the next Acquire) and wakes one sleeper if it found `2`. A
//! woken thread swaps in `2` again, so a sleeper is never stranded: whoever unlocks after
//! it went to sleep sees `2`. There is no poisoning: every section's data is consistent
//! between any two of its statements that could panic.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};

use crate::sys;

pub(crate) struct OsMutex<T> {
    state: AtomicU32,
    value: UnsafeCell<T>,
}

// SAFETY: the lock hands `value` to one thread at a time (Acquire on lock, Release on
// unlock), as a mutex does; `T: Send` is what that requires.
unsafe impl<T: Send> Send for OsMutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for OsMutex<T> {}

impl<T> OsMutex<T> {
    pub(crate) const fn new(value: T) -> OsMutex<T> {
        OsMutex {
            state: AtomicU32::new(0),
            value: UnsafeCell::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> OsMutexGuard<'_, T> {
        if self
            .state
            .compare_exchange(0, 1, Acquire, Relaxed)
            .is_err()
        {
            self.lock_contended();
        }
        OsMutexGuard { lock: self }
    }

    #[cold]
    fn lock_contended(&self) {
        for _ in 0..100 {
            if self.state.load(Relaxed) == 0
                && self
                    .state
                    .compare_exchange(0, 1, Acquire, Relaxed)
                    .is_ok()
            {
                return;
            }
            std::hint::spin_loop();
        }
        // Acquire: the swap that finds 0 takes the lock.
        while self.state.swap(2, Acquire) != 0 {
            sys::futex_wait(&self.state, 2);
        }
    }
}

impl<T: Default> Default for OsMutex<T> {
    fn default() -> OsMutex<T> {
        OsMutex::new(T::default())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for OsMutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsMutex")
            .field("locked", &(self.state.load(Relaxed) != 0))
            .finish_non_exhaustive()
    }
}

pub(crate) struct OsMutexGuard<'a, T> {
    lock: &'a OsMutex<T>,
}

impl<T> Deref for OsMutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the lock is held by this thread.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for OsMutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as for `deref`, and `&mut self` makes the access unique.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for OsMutexGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Release: publishes the section to the next locker's Acquire.
        if self.lock.state.swap(0, Release) == 2 {
            sys::futex_wake(&self.lock.state, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OsMutex;
    use std::sync::Arc;

    #[test]
    fn os_mutex_excludes_under_contention() {
        let lock = Arc::new(OsMutex::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = lock.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        let mut guard = lock.lock();
                        let seen = *guard;
                        std::hint::spin_loop();
                        *guard = seen + 1;
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*lock.lock(), 80_000);
    }
}
