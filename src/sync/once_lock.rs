//! [`OnceLock`]: lazy initialisation where latecomers park on a [`Mutex`](super::Mutex).
//!
//! `ready` is set (Release) after the value is written, and read (Acquire) before it is
//! read, so a reader that sees `ready` sees the value. Initialisation runs under the
//! mutex, so it runs once; if it panics, the mutex passes to the next caller, who tries.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
// With `&mut self` no other access can race, so those paths use Relaxed.
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::{const_unless_loom, Condvar, Mutex};
use crate::loom::sync::atomic::AtomicBool;

/// A cell written once, shaped like `std::sync::OnceLock`, whose `get_or_init` parks a green
/// thread (instead of blocking its worker) while another initialises.
///
/// ```
/// use weft::sync::OnceLock;
///
/// static CONFIG: OnceLock<String> = OnceLock::new();
///
/// let handles: Vec<_> = (0..4)
///     .map(|_| weft::go!(|| CONFIG.get_or_init(|| "loaded once".to_string()).len()))
///     .collect();
/// for h in handles {
///     assert_eq!(h.join().unwrap(), 11);
/// }
/// ```
pub struct OnceLock<T> {
    ready: AtomicBool,
    init: Mutex<()>,
    /// Notified (under `init`) when the value is set, for [`OnceLock::wait`].
    set: Condvar,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value is written once (under `init`) and then only read, so sharing the cell
// shares `&T` (`T: Sync`) and may drop or hand out `T` on another thread (`T: Send`).
unsafe impl<T: Sync + Send> Sync for OnceLock<T> {}
// SAFETY: moving the cell moves the `T`.
unsafe impl<T: Send> Send for OnceLock<T> {}

impl<T> OnceLock<T> {
    const_unless_loom! {
        /// An empty cell.
        pub fn new() -> OnceLock<T> {
            OnceLock {
                ready: AtomicBool::new(false),
                init: Mutex::new(()),
                set: Condvar::new(),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }
        }
    }

    /// The value, if initialised.
    #[inline]
    pub fn get(&self) -> Option<&T> {
        if self.ready.load(Acquire) {
            // SAFETY: `ready` is set only after the value was written, never cleared while
            // shared, and the Acquire pairs with that Release.
            Some(unsafe { (*self.value.get()).assume_init_ref() })
        } else {
            None
        }
    }

    /// The value, through a unique borrow.
    pub fn get_mut(&mut self) -> Option<&mut T> {
        if self.ready.load(Relaxed) {
            // SAFETY: initialised, and `&mut self` excludes every other access.
            Some(unsafe { self.value.get_mut().assume_init_mut() })
        } else {
            None
        }
    }

    /// Sets the value if the cell is empty; otherwise gives `value` back.
    pub fn set(&self, value: T) -> Result<(), T> {
        let mut value = Some(value);
        self.get_or_init(|| value.take().expect("taken once"));
        match value {
            None => Ok(()),
            Some(value) => Err(value),
        }
    }

    /// The value, initialising it with `f` if the cell is empty. Other callers park until
    /// `f` returns. If `f` panics, the panic propagates and the cell stays empty.
    #[track_caller]
    pub fn get_or_init<F: FnOnce() -> T>(&self, f: F) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        self.initialize(f)
    }

    #[cold]
    #[track_caller]
    fn initialize<F: FnOnce() -> T>(&self, f: F) -> &T {
        // Poison only tells us an earlier initialiser panicked; the cell is still empty then.
        let _init = self.init.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(value) = self.get() {
            return value;
        }
        // If `f` unwinds, waiters that watch for that (`Once::wait`) look again. Dropped
        // before `_init`, so the notify happens under the lock they check under.
        struct NotifyOnUnwind<'a>(&'a Condvar);
        impl Drop for NotifyOnUnwind<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.notify_all();
                }
            }
        }
        let notify = NotifyOnUnwind(&self.set);
        let value = f();
        std::mem::forget(notify);
        // SAFETY: we hold `init` and `ready` is false, so nobody reads or writes the slot.
        unsafe { (*self.value.get()).write(value) };
        // Release: publishes the value to every `get` that sees `ready`.
        self.ready.store(true, Release);
        self.set.notify_all();
        self.get().expect("just initialised")
    }

    /// The value, waiting until some caller initialises the cell; parks a green thread.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let cell = Arc::new(weft::sync::OnceLock::new());
    /// let waiter = weft::go!({
    ///     let cell = cell.clone();
    ///     move || *cell.wait()
    /// });
    /// cell.set(7).unwrap();
    /// assert_eq!(waiter.join().unwrap(), 7);
    /// ```
    #[track_caller]
    pub fn wait(&self) -> &T {
        self.wait_until(|| false).expect("waits until set")
    }

    /// Parks until the cell is set (`Some`) or `stop()` holds (`None`). `stop` is checked
    /// under the cell's lock, after every notification: when the value is set, and when an
    /// initialiser unwinds.
    #[track_caller]
    pub(super) fn wait_until(&self, stop: impl Fn() -> bool) -> Option<&T> {
        if let Some(value) = self.get() {
            return Some(value);
        }
        let mut init = self.init.lock().unwrap_or_else(|p| p.into_inner());
        while !self.ready.load(Acquire) {
            if stop() {
                return None;
            }
            init = self.set.wait(init).unwrap_or_else(|p| p.into_inner());
        }
        drop(init);
        self.get()
    }

    /// Takes the value out, leaving the cell empty.
    pub fn take(&mut self) -> Option<T> {
        if self.ready.load(Relaxed) {
            self.ready.store(false, Relaxed);
            // SAFETY: it was initialised, and clearing `ready` first means it is read once.
            Some(unsafe { self.value.get_mut().assume_init_read() })
        } else {
            None
        }
    }

    /// Consumes the cell, returning the value if it was set.
    pub fn into_inner(mut self) -> Option<T> {
        self.take()
    }
}

impl<T> Drop for OnceLock<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T: PartialEq> PartialEq for OnceLock<T> {
    /// Equal when both are empty, or both hold equal values.
    fn eq(&self, other: &OnceLock<T>) -> bool {
        self.get() == other.get()
    }
}

impl<T: Eq> Eq for OnceLock<T> {}

// As std's.
impl<T: std::panic::UnwindSafe> std::panic::UnwindSafe for OnceLock<T> {}
impl<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe> std::panic::RefUnwindSafe
    for OnceLock<T>
{
}

impl<T> Default for OnceLock<T> {
    fn default() -> Self {
        OnceLock::new()
    }
}

impl<T> From<T> for OnceLock<T> {
    fn from(value: T) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(value);
        cell
    }
}

impl<T: fmt::Debug> fmt::Debug for OnceLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.get() {
            Some(value) => f.debug_tuple("OnceLock").field(value).finish(),
            None => f.write_str("OnceLock(<uninit>)"),
        }
    }
}

impl<T: Clone> Clone for OnceLock<T> {
    fn clone(&self) -> Self {
        match self.get() {
            Some(value) => OnceLock::from(value.clone()),
            None => OnceLock::new(),
        }
    }
}
