//! The `loom` facade: the synchronisation types the waiting protocols are written against.
//!
//! Normally these are std's own types. Built with `RUSTFLAGS="--cfg loom"`, they are loom's,
//! and only the modules whose protocols are model-checked are compiled: the park state
//! machine ([`crate::runtime::park`]), the wait cells ([`crate::runtime::wait`]), the
//! channels and the locks, the workers' idle protocol (`runtime::scheduler::idle`, whose
//! file is compiled alone as `runtime::idle_model`), and the reactor's readiness protocol
//! (`runtime::reactor::slab`, compiled alone as `runtime::reactor_model`).
//! Everything that needs the scheduler or the reactor is left out of that build, and a wait
//! with a deadline becomes a yield that may time out, so loom explores the race between a
//! waker and a waiter that gives up.
//!
//! Run the models with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test --release --lib loom_
//! ```

#[cfg(not(loom))]
pub(crate) mod sync {
    pub(crate) use crate::runtime::os_lock::{OsMutex, OsMutexGuard};
    pub(crate) use crate::runtime::spin::{SpinGuard, SpinLock};
    pub(crate) use std::sync::Mutex;

    pub(crate) mod atomic {
        pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    }
}

#[cfg(loom)]
pub(crate) mod sync {
    pub(crate) use loom::sync::{Mutex, MutexGuard};

    /// The model of [`crate::runtime::spin::SpinLock`]: loom's mutex, which explores the same
    /// orderings of critical sections.
    pub(crate) struct SpinLock<T>(Mutex<T>);
    pub(crate) type SpinGuard<'a, T> = MutexGuard<'a, T>;

    impl<T> SpinLock<T> {
        pub(crate) fn new(value: T) -> SpinLock<T> {
            SpinLock(Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
            self.0.lock().unwrap()
        }
    }

    /// The model of [`crate::runtime::os_lock::OsMutex`] (the idle list's lock), as above.
    pub(crate) type OsMutex<T> = SpinLock<T>;
    pub(crate) type OsMutexGuard<'a, T> = MutexGuard<'a, T>;

    pub(crate) mod atomic {
        pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    }
}

#[cfg(loom)]
pub(crate) mod thread {
    pub(crate) use loom::thread::{current, Thread};
}

#[cfg(not(loom))]
pub(crate) mod thread {
    pub(crate) use std::thread::{current, Thread};
}
